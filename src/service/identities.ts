// Identities: the account (12-digit id), its root user and IAM-style users with access keys
// and inline identity policies. Access-key secrets are stored sealed under the root key.
// Credential lookups (every signed request) are served from a short-lived cache, so a
// disabled or deleted key stops working within CACHE_MS on every node.
import { randomBytes, randomInt } from 'node:crypto';
import { labelAad, seal, unseal } from '../crypto/envelope.ts';
import type { SecretKey } from '../crypto/keys.ts';
import type { AccessKeyRecord, MetadataStore, UserRecord } from '../storage/ports.ts';

export interface Principal {
  type: 'Root' | 'IAMUser' | 'Anonymous';
  /** arn:aws:iam::<account>:root, arn:aws:iam::<account>:user/<name>, or '*' for anonymous. */
  arn: string;
  account: string;
  /** IAM UserId (AIDA...) for users; the account id for root; 'anonymous'. */
  userId: string;
  userName?: string;
  accessKeyId?: string;
}

export interface ResolvedCredential {
  accessKeyId: string;
  secretKey: string;
  principal: Principal;
}

export class IdentityError extends Error {
  constructor(
    message: string,
    readonly code: 'NoSuchEntity' | 'EntityAlreadyExists' | 'ValidationError' | 'LimitExceeded',
  ) {
    super(message);
    this.name = 'IdentityError';
  }
}

const CACHE_MS = 5_000;
const USER_NAME = /^[\w+=,.@-]{1,64}$/;
const KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export const MAX_KEYS_PER_USER = 2;

export function secretAad(accessKeyId: string): Buffer {
  return labelAad('coffer/access-key-secret/v1', accessKeyId);
}

/** `prefix` and `length` characters of the base32 alphabet IAM key ids use. */
export function randomId(prefix: string, length: number): string {
  const b = randomBytes(length);
  let s = prefix;
  for (let i = 0; i < length; i++) s += KEY_ALPHABET[b[i]! & 31];
  return s;
}

export function newAccessKeyId(): string {
  return randomId('AKIA', 16);
}

export function newSecretKey(): string {
  return randomBytes(30).toString('base64').replace(/[+/]/g, (c) => (c === '+' ? 'x' : 'y'));
}

/** The account id: configured, or generated (12 digits) at first start; fixed afterwards. */
export async function loadAccountId(meta: MetadataStore, configured?: string): Promise<string> {
  const generated = String(randomInt(100_000_000_000, 999_999_999_999));
  const stored = await meta.initSetting('account-id', configured ?? generated);
  if (configured && stored !== configured) {
    throw new Error(`this data directory belongs to account ${stored}; --account-id ${configured} would change every ARN`);
  }
  return stored;
}

export class IdentityService {
  private cache = new Map<string, { at: number; cred: ResolvedCredential | undefined }>();
  private rootResolved: ResolvedCredential | undefined;

  constructor(
    private readonly meta: MetadataStore,
    private readonly root: SecretKey,
    readonly accountId: string,
    /** Undefined in admin commands run before the server's first start generated one. */
    private readonly rootCredential: { accessKeyId: string; secretKey: string } | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  rootPrincipal(): Principal {
    return { type: 'Root', arn: `arn:aws:iam::${this.accountId}:root`, account: this.accountId, userId: this.accountId };
  }

  userPrincipal(u: UserRecord, accessKeyId?: string): Principal {
    return {
      type: 'IAMUser',
      arn: `arn:aws:iam::${this.accountId}:user/${u.name}`,
      account: this.accountId,
      userId: u.userId,
      userName: u.name,
      ...(accessKeyId ? { accessKeyId } : {}),
    };
  }

  static anonymous(): Principal {
    return { type: 'Anonymous', arn: '*', account: '', userId: 'anonymous' };
  }

  /** The credential for an access key id (root or an active user key), or undefined. */
  async lookup(accessKeyId: string): Promise<ResolvedCredential | undefined> {
    if (this.rootCredential && accessKeyId === this.rootCredential.accessKeyId) {
      // One frozen object for every request the root signs (built on first use).
      this.rootResolved ??= Object.freeze({ ...this.rootCredential, principal: Object.freeze({ ...this.rootPrincipal(), accessKeyId }) });
      return this.rootResolved;
    }
    const hit = this.cache.get(accessKeyId);
    if (hit && this.now() - hit.at < CACHE_MS) return hit.cred;
    const cred = await this.load(accessKeyId);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(accessKeyId, { at: this.now(), cred });
    return cred;
  }

  private async load(accessKeyId: string): Promise<ResolvedCredential | undefined> {
    const k = await this.meta.getAccessKey(accessKeyId);
    if (!k || k.status !== 'Active') return undefined;
    const user = await this.meta.getUser(k.userName);
    if (!user) return undefined;
    const secretKey = unseal(this.root, Buffer.from(k.sealedSecret, 'base64'), secretAad(accessKeyId)).toString('utf8');
    return { accessKeyId, secretKey, principal: this.userPrincipal(user, accessKeyId) };
  }

  /** Forget cached lookups (after a change made in this process). */
  invalidate(): void {
    this.cache.clear();
  }

  // ---- users ----

  async createUser(name: string): Promise<UserRecord> {
    if (!USER_NAME.test(name)) {
      throw new IdentityError(`user name "${name}" must be 1 to 64 characters of letters, digits and +=,.@_-`, 'ValidationError');
    }
    const u: UserRecord = { name, userId: randomId('AIDA', 17), createdAt: this.now() };
    if (!(await this.meta.createUser(u))) throw new IdentityError(`user ${name} already exists`, 'EntityAlreadyExists');
    return u;
  }

  async requireUser(name: string): Promise<UserRecord> {
    const u = await this.meta.getUser(name);
    if (!u) throw new IdentityError(`no user named ${name}`, 'NoSuchEntity');
    return u;
  }

  listUsers(): Promise<UserRecord[]> {
    return this.meta.listUsers();
  }

  async deleteUser(name: string): Promise<void> {
    if (!(await this.meta.deleteUser(name))) throw new IdentityError(`no user named ${name}`, 'NoSuchEntity');
    this.invalidate();
  }

  // ---- access keys ----

  /** Creates an access key; the secret is returned once and stored only sealed. */
  async createAccessKey(userName: string, given?: { accessKeyId: string; secretKey: string }): Promise<{ accessKeyId: string; secretKey: string }> {
    await this.requireUser(userName);
    const keys = await this.meta.listAccessKeys(userName);
    if (!given && keys.length >= MAX_KEYS_PER_USER) {
      throw new IdentityError(`user ${userName} already has ${MAX_KEYS_PER_USER} access keys (the IAM limit)`, 'LimitExceeded');
    }
    const accessKeyId = given?.accessKeyId ?? newAccessKeyId();
    if (!/^[A-Z0-9]{16,128}$/.test(accessKeyId)) throw new IdentityError('an access key id is 16 to 128 upper-case letters and digits', 'ValidationError');
    if (accessKeyId === this.rootCredential?.accessKeyId) throw new IdentityError('that access key id is the root credential', 'EntityAlreadyExists');
    const existing = await this.meta.getAccessKey(accessKeyId);
    if (existing && existing.userName !== userName) throw new IdentityError(`access key ${accessKeyId} belongs to another user`, 'EntityAlreadyExists');
    const secretKey = given?.secretKey ?? newSecretKey();
    if (secretKey.length < 16) throw new IdentityError('a secret access key has at least 16 characters', 'ValidationError');
    const rec: AccessKeyRecord = {
      accessKeyId,
      userName,
      sealedSecret: seal(this.root, Buffer.from(secretKey), secretAad(accessKeyId)).toString('base64'),
      status: 'Active',
      createdAt: existing?.createdAt ?? this.now(),
    };
    await this.meta.putAccessKey(rec);
    this.invalidate();
    return { accessKeyId, secretKey };
  }

  async listAccessKeys(userName: string): Promise<Omit<AccessKeyRecord, 'sealedSecret'>[]> {
    await this.requireUser(userName);
    return (await this.meta.listAccessKeys(userName)).map(({ sealedSecret: _s, ...rest }) => rest);
  }

  async setAccessKeyStatus(userName: string, accessKeyId: string, status: 'Active' | 'Inactive'): Promise<void> {
    const k = await this.meta.getAccessKey(accessKeyId);
    if (!k || k.userName !== userName) throw new IdentityError(`user ${userName} has no access key ${accessKeyId}`, 'NoSuchEntity');
    await this.meta.setAccessKeyStatus(accessKeyId, status);
    this.invalidate();
  }

  async deleteAccessKey(userName: string, accessKeyId: string): Promise<void> {
    const k = await this.meta.getAccessKey(accessKeyId);
    if (!k || k.userName !== userName) throw new IdentityError(`user ${userName} has no access key ${accessKeyId}`, 'NoSuchEntity');
    await this.meta.deleteAccessKey(accessKeyId);
    this.invalidate();
  }
}
