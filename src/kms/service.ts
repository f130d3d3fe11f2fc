// KmsService: the built-in KMS. Symmetric keys (SYMMETRIC_DEFAULT, AES-256-GCM) with UUID ids
// and ARNs arn:aws:kms:<region>:<account>:key/<uuid>; key material versions sealed under the
// root key; key states, aliases, rotation, key policies and tags; the cryptographic
// operations with the encryption context bound as AAD. Every call is authorized here, with the
// key policy and the caller's identity policies (kms/authorize.ts), so S3 (later) calls the
// same methods with the requesting principal. Stored through the KmsStore port. Every operation
// is recorded in the audit trail (kms/audit.ts, AuditStore port) and the cryptographic ones are
// counted against the request quota (kms/quota.ts). docs/kms.md.
import { randomUUID } from 'node:crypto';
import { labelAad, seal, unseal } from '../crypto/envelope.ts';
import { SecretKey, systemRng, type Rng } from '../crypto/keys.ts';
import { isPolicyError, parsePolicy, type ContextValue, type Policy } from '../policy/index.ts';
import type { Principal } from '../service/identities.ts';
import type { AuditStore, KmsAliasRecord, KmsGrantRecord, KmsKeyRecord, KmsMaterialRecord, KmsStore, KmsTag } from '../storage/ports.ts';
import { authorizeKms, accessDeniedMessage, type KmsDecisionInput } from './authorize.ts';
import { decryptBlob, encryptBlob, isKeyUuid, parseBlobHeader, type EncryptionContext } from './blob.ts';
import { KmsError } from './errors.ts';
import { apiEvent, serviceEvent, toAppend, type CloudTrailEvent } from './audit.ts';
import { QUOTA_OPERATIONS, THROTTLING_MESSAGE, type KmsQuota, type QuotaStatus } from './quota.ts';
import {
  atLeastAsStrict,
  constraintsOut,
  constraintTypes,
  grantAllows,
  grantToken,
  isGrantee,
  newGrantId,
  parseGrantToken,
  sameGrantParameters,
  validateConstraints,
  validateGrantId,
  validateGrantName,
  validateOperations,
  validatePrincipal,
} from './grants.ts';
import type { Logger } from '../shared/logger.ts';

export const MATERIAL_LABEL = 'coffer/kms-material/v1';
export const MAX_PLAINTEXT = 4096;
export const MAX_CIPHERTEXT = 6144;
export const MAX_ON_DEMAND_ROTATIONS = 10;
export const MANAGED_S3_ALIAS = 'alias/aws/s3';
const DAY_MS = 86_400_000;
const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;

/** AAD of a sealed material version: labelAad("coffer/kms-material/v1", keyId, version). */
export function materialAad(keyId: string, version: number): Buffer {
  return labelAad(MATERIAL_LABEL, keyId, String(version));
}

/** Who calls, and the request's condition keys (aws:SourceIp, aws:SecureTransport, ...). */
export interface KmsCaller {
  principal: Principal;
  /** kms:ViaService, when another service (S3) calls on the principal's behalf. */
  viaService?: string;
  conditionKeys?: Record<string, ContextValue>;
  // For the audit trail (docs/kms.md, "Audit trail"); each is optional.
  /** The client's IP address (CloudTrail sourceIPAddress). */
  sourceIp?: string;
  /** The client's User-Agent. */
  userAgent?: string;
  /** The request id the client saw (x-amzn-RequestId, or S3's x-amz-request-id). */
  requestId?: string;
  /** The access key that signed the request (default: the principal's). */
  accessKeyId?: string;
}

export interface KeyMetadata {
  AWSAccountId: string;
  KeyId: string;
  Arn: string;
  /** epoch seconds */
  CreationDate: number;
  Enabled: boolean;
  Description: string;
  KeyUsage: 'ENCRYPT_DECRYPT';
  KeyState: KmsKeyRecord['state'];
  DeletionDate?: number;
  PendingDeletionWindowInDays?: number;
  Origin: 'AWS_KMS';
  KeyManager: 'CUSTOMER' | 'AWS';
  CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT';
  KeySpec: 'SYMMETRIC_DEFAULT';
  EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'];
  MultiRegion: false;
}

export interface CreateKeyInput {
  description?: string;
  policy?: string;
  tags?: KmsTag[];
  bypassPolicyLockoutSafetyCheck?: boolean;
  keyUsage?: string;
  keySpec?: string;
  origin?: string;
  multiRegion?: boolean;
}

export interface CreateGrantInput {
  keyId: unknown;
  granteePrincipal: unknown;
  retiringPrincipal?: unknown;
  operations: unknown;
  /** {EncryptionContextSubset?, EncryptionContextEquals?} as the API gives it. */
  constraints?: unknown;
  name?: unknown;
  dryRun?: boolean;
}

/** A grant as ListGrants / ListRetirableGrants answer it. */
export interface GrantListEntry {
  KeyId: string;
  GrantId: string;
  Name?: string;
  CreationDate: number;
  GranteePrincipal: string;
  RetiringPrincipal?: string;
  IssuingAccount: string;
  Operations: string[];
  Constraints?: Record<string, Record<string, string>>;
}

export interface Page<T> {
  items: T[];
  nextMarker?: string;
}

export interface KmsDeps {
  /** Keys and the audit trail (every call appends an event). */
  store: KmsStore & AuditStore;
  root: SecretKey;
  accountId: string;
  region: string;
  /** The caller's identity policies (IAM users' inline policies). */
  identityPolicies: (principal: Principal) => Promise<readonly Policy[]>;
  now?: () => number;
  rng?: Rng;
  /** The request-rate quota of the cryptographic operations (absent: no quota). */
  quota?: KmsQuota;
  /** For what cannot be answered to a caller (an audit event that could not be stored). */
  log?: Logger;
}

export function defaultKeyPolicy(accountId: string): string {
  return JSON.stringify(
    {
      Version: '2012-10-17',
      Id: 'key-default-1',
      Statement: [
        {
          Sid: 'Enable IAM User Permissions',
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${accountId}:root` },
          Action: 'kms:*',
          Resource: '*',
        },
      ],
    },
    null,
    2,
  );
}

/** The key policy of the AWS-managed alias/aws/s3 key, as AWS writes it. */
export function managedS3KeyPolicy(accountId: string, region: string): string {
  return JSON.stringify(
    {
      Version: '2012-10-17',
      Id: 'auto-s3-2',
      Statement: [
        {
          Sid: 'Allow access through S3 for all principals in the account that are authorized to use S3',
          Effect: 'Allow',
          Principal: { AWS: '*' },
          Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey'],
          Resource: '*',
          Condition: { StringEquals: { 'kms:ViaService': `s3.${region}.amazonaws.com`, 'kms:CallerAccount': accountId } },
        },
        {
          Sid: 'Allow direct access to key metadata to the account',
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${accountId}:root` },
          Action: ['kms:Describe*', 'kms:Get*', 'kms:List*'],
          Resource: '*',
        },
      ],
    },
    null,
    2,
  );
}

function parseKeyPolicy(text: string): Policy {
  try {
    return parsePolicy(text, { kind: 'key' });
  } catch (e) {
    if (isPolicyError(e)) throw new KmsError('MalformedPolicyDocumentException', e.message);
    throw e;
  }
}

function validateContext(ctx: unknown, field = 'EncryptionContext'): EncryptionContext | undefined {
  if (ctx === undefined || ctx === null) return undefined;
  if (typeof ctx !== 'object' || Array.isArray(ctx)) throw new KmsError('ValidationException', `${field} must be a map of strings to strings`);
  for (const [k, v] of Object.entries(ctx)) {
    if (typeof v !== 'string' || k === '') throw new KmsError('ValidationException', `${field} must be a map of non-empty strings to strings`);
  }
  return ctx as EncryptionContext;
}

function validateTags(tags: KmsTag[]): void {
  if (tags.length > 50) throw new KmsError('TagException', 'A key can have at most 50 tags');
  for (const t of tags) {
    if (typeof t.key !== 'string' || t.key.length < 1 || t.key.length > 128) throw new KmsError('TagException', 'TagKey must be 1 to 128 characters');
    if (typeof t.value !== 'string' || t.value.length > 256) throw new KmsError('TagException', 'TagValue must be at most 256 characters');
    if (t.key.toLowerCase().startsWith('aws:')) throw new KmsError('TagException', 'Tags beginning with aws: are reserved');
  }
}

const seconds = (ms: number) => ms / 1000;

export class KmsService {
  private readonly store: KmsStore & AuditStore;
  private readonly now: () => number;
  private readonly rng: Rng;
  private managedCreating: Promise<KmsKeyRecord> | undefined;

  constructor(private readonly deps: KmsDeps) {
    this.store = deps.store;
    this.now = deps.now ?? Date.now;
    this.rng = deps.rng ?? systemRng;
  }

  keyArn(keyId: string): string {
    return `arn:aws:kms:${this.deps.region}:${this.deps.accountId}:key/${keyId}`;
  }

  aliasArn(name: string): string {
    return `arn:aws:kms:${this.deps.region}:${this.deps.accountId}:${name}`;
  }

  // ---- key lookup ----

  /** A key by id, applying what time has made due: deletion at the end of its window, automatic rotation. */
  private async load(keyId: string): Promise<KmsKeyRecord | undefined> {
    const k = await this.store.getKmsKey(keyId);
    if (!k) return undefined;
    const now = this.now();
    if (k.state === 'PendingDeletion' && k.deletionDate !== undefined && k.deletionDate <= now) {
      // The window has ended: the material is destroyed, and with it everything encrypted under the key.
      await this.shred(keyId);
      return undefined;
    }
    if (k.rotationEnabled && k.state === 'Enabled' && k.nextRotation !== undefined && k.nextRotation <= now) {
      if (await this.addMaterial(k, 'AUTOMATIC')) {
        await this.appendEvent(serviceEvent({ eventName: 'RotateKey', time: now, region: this.deps.region, accountId: this.deps.accountId, keyArn: this.keyArn(keyId), additionalEventData: { rotationType: 'AUTOMATIC' } }));
      }
      return this.store.getKmsKey(keyId);
    }
    return k;
  }

  private notFound(id: string): KmsError {
    return new KmsError('NotFoundException', isKeyUuid(id) || id.includes(':key/') ? `Key '${id.includes(':') ? id : this.keyArn(id)}' does not exist` : `Alias '${id.startsWith('arn:') ? id : this.aliasArn(id)}' is not found.`);
  }

  /**
   * Resolves a KeyId as AWS accepts it: key id or key ARN, and (where `aliases`) alias name or
   * alias ARN. alias/aws/s3 is created on first use.
   */
  async resolve(id: unknown, opts: { aliases: boolean } = { aliases: true }): Promise<KmsKeyRecord> {
    if (typeof id !== 'string' || id.length === 0 || id.length > 2048) throw new KmsError('ValidationException', 'KeyId must be a string of 1 to 2048 characters');
    let keyId: string | undefined;
    let alias: string | undefined;
    const arn = /^arn:aws:kms:([^:]*):(\d{12}):(key\/.+|alias\/.+)$/.exec(id);
    if (arn) {
      if (arn[1] !== this.deps.region || arn[2] !== this.deps.accountId) throw this.notFound(id);
      if (arn[3]!.startsWith('key/')) keyId = arn[3]!.slice(4);
      else alias = arn[3];
    } else if (id.startsWith('alias/')) alias = id;
    else if (id.startsWith('arn:')) throw new KmsError('InvalidArnException', `Invalid arn ${id}`);
    else keyId = id;
    if (alias !== undefined) {
      if (!opts.aliases) throw new KmsError('NotFoundException', `Invalid keyId ${id}`);
      const a = await this.store.getKmsAlias(alias);
      let k = a ? await this.load(a.keyId) : undefined;
      if (!k && alias === MANAGED_S3_ALIAS) k = await this.managedS3Key();
      if (!k) throw new KmsError('NotFoundException', `Alias '${this.aliasArn(alias)}' is not found.`);
      return k;
    }
    if (!isKeyUuid(keyId!)) throw new KmsError('NotFoundException', `Invalid keyId ${id}`);
    const k = await this.load(keyId!);
    if (!k) throw this.notFound(id);
    return k;
  }

  /** The AWS-managed key behind alias/aws/s3, created on first use. */
  async managedS3Key(): Promise<KmsKeyRecord> {
    const a = await this.store.getKmsAlias(MANAGED_S3_ALIAS);
    const existing = a ? await this.load(a.keyId) : undefined;
    if (existing) return existing;
    this.managedCreating ??= (async () => {
      const k = await this.newKey('Default key that protects my S3 objects when no other key is defined', 'AWS', managedS3KeyPolicy(this.deps.accountId, this.deps.region), []);
      const at = this.now();
      if (!(await this.store.createKmsAlias({ name: MANAGED_S3_ALIAS, keyId: k.keyId, createdAt: at, updatedAt: at }))) {
        // Another node created it first: use theirs (ours stays unused).
        const theirs = await this.store.getKmsAlias(MANAGED_S3_ALIAS);
        const t = theirs ? await this.load(theirs.keyId) : undefined;
        if (t) return t;
        await this.store.updateKmsAlias(MANAGED_S3_ALIAS, k.keyId, at);
      }
      return k;
    })().finally(() => (this.managedCreating = undefined));
    return this.managedCreating;
  }

  /**
   * Applies what time has made due to every key, not only to keys someone uses: destroys keys
   * whose deletion window has ended (crypto-shredding happens on time even for a key nobody
   * touches again) and performs due automatic rotations. The server runs it periodically.
   */
  async maintain(): Promise<{ deleted: number; rotated: number }> {
    const now = this.now();
    let deleted = 0;
    let rotated = 0;
    for (const k of await this.store.listKmsKeys()) {
      const dueDeletion = k.state === 'PendingDeletion' && k.deletionDate !== undefined && k.deletionDate <= now;
      const dueRotation = k.rotationEnabled && k.state === 'Enabled' && k.nextRotation !== undefined && k.nextRotation <= now;
      if (!dueDeletion && !dueRotation) continue;
      const after = await this.load(k.keyId);
      if (dueDeletion && !after) deleted++;
      if (dueRotation && after && after.currentMaterial > k.currentMaterial) rotated++;
    }
    return { deleted, rotated };
  }

  /**
   * A key's state as of now (deletion and rotation applied), or undefined once it is gone. Not
   * a KMS operation (nothing is authorized or audited): S3 uses it to stop using a cached
   * Bucket Key the moment its KMS key is disabled or deleted.
   */
  async keyState(keyId: string): Promise<KmsKeyRecord['state'] | undefined> {
    return (await this.load(keyId))?.state;
  }

  private async newKey(description: string, manager: 'CUSTOMER' | 'AWS', policy: string, tags: KmsTag[]): Promise<KmsKeyRecord> {
    const keyId = randomUUID();
    const at = this.now();
    const k: KmsKeyRecord = { keyId, createdAt: at, description, keyManager: manager, state: 'Enabled', currentMaterial: 1, rotationEnabled: manager === 'AWS' };
    if (manager === 'AWS') {
      k.rotationPeriodInDays = 365;
      k.nextRotation = at + 365 * DAY_MS;
    }
    const material = this.sealMaterial(keyId, 1, 'CREATE');
    if (!(await this.store.createKmsKey(k, material, policy, tags))) throw new KmsError('KMSInternalException', 'key id collision');
    return k;
  }

  /** A material version sealed under the root key: `given` material (left to its owner to wipe), else random. */
  private sealMaterial(keyId: string, version: number, origin: KmsMaterialRecord['origin'], given?: Buffer): KmsMaterialRecord {
    const raw = given ?? this.rng.randomBytes(32);
    try {
      const sealed = seal(this.deps.root, raw, materialAad(keyId, version), this.rng);
      return { keyId, version, sealed: sealed.toString('base64'), createdAt: this.now(), origin };
    } finally {
      if (!given) raw.fill(0);
    }
  }

  private async material(keyId: string, version: number): Promise<SecretKey | undefined> {
    const m = await this.store.getKmsMaterial(keyId, version);
    if (!m) return undefined;
    const raw = unseal(this.deps.root, Buffer.from(m.sealed, 'base64'), materialAad(keyId, version));
    try {
      return SecretKey.from(raw);
    } finally {
      raw.fill(0);
    }
  }

  private async addMaterial(k: KmsKeyRecord, origin: 'AUTOMATIC' | 'ON_DEMAND'): Promise<boolean> {
    const next = k.currentMaterial + 1;
    const m = this.sealMaterial(k.keyId, next, origin);
    const update: KmsKeyRecord = { ...k, currentMaterial: next };
    if (k.rotationEnabled && k.rotationPeriodInDays) update.nextRotation = this.now() + k.rotationPeriodInDays * DAY_MS;
    // false: another rotation got there first, which is as good.
    return this.store.addKmsMaterial(m, update);
  }

  metadata(k: KmsKeyRecord): KeyMetadata {
    return {
      AWSAccountId: this.deps.accountId,
      KeyId: k.keyId,
      Arn: this.keyArn(k.keyId),
      CreationDate: seconds(k.createdAt),
      Enabled: k.state === 'Enabled',
      Description: k.description,
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: k.state,
      ...(k.state === 'PendingDeletion' && k.deletionDate !== undefined ? { DeletionDate: seconds(k.deletionDate), PendingDeletionWindowInDays: k.pendingWindowInDays! } : {}),
      Origin: 'AWS_KMS',
      KeyManager: k.keyManager,
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      KeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      MultiRegion: false,
    };
  }

  // ---- authorization ----

  /** Parsed key policies by their text: a policy is parsed once, not on every call. */
  private readonly parsed = new Map<string, Policy>();

  private async keyPolicy(k: KmsKeyRecord): Promise<Policy> {
    const text = await this.store.getKmsKeyPolicy(k.keyId);
    if (text === undefined) throw new KmsError('KMSInternalException', 'the key has no key policy');
    let policy = this.parsed.get(text);
    if (!policy) {
      policy = parseKeyPolicy(text);
      if (this.parsed.size >= 1000) this.parsed.clear();
      this.parsed.set(text, policy);
    }
    return policy;
  }

  private contextKeys(caller: KmsCaller, extra: Record<string, ContextValue> = {}): Record<string, ContextValue> {
    return {
      ...(caller.conditionKeys ?? {}),
      'kms:CallerAccount': caller.principal.account,
      ...(caller.viaService ? { 'kms:ViaService': caller.viaService } : {}),
      ...extra,
    };
  }

  private static encryptionContextKeys(ctx: EncryptionContext | undefined): Record<string, ContextValue> {
    const out: Record<string, ContextValue> = {};
    if (!ctx) return out;
    const keys = Object.keys(ctx);
    if (keys.length) out['kms:EncryptionContextKeys'] = keys;
    for (const k of keys) out[`kms:EncryptionContext:${k}`] = ctx[k];
    return out;
  }

  /**
   * Authorizes `action` on key `k` (key policy + identity policies), or throws
   * AccessDeniedException. An implicit deny is overturned by a grant of the key whose grantee
   * is the caller, which lists the operation, and whose constraints the request's encryption
   * context (the kms:EncryptionContext:* keys of `extra`) satisfies; `grantFilter` narrows the
   * grants that count (CreateGrant through a grant). An explicit Deny wins over any grant.
   */
  private async authorize(
    caller: KmsCaller,
    action: string,
    k: KmsKeyRecord | undefined,
    extra: Record<string, ContextValue> = {},
    grantFilter?: (g: KmsGrantRecord) => boolean,
  ): Promise<void> {
    const identity = await this.deps.identityPolicies(caller.principal);
    const resource = k ? this.keyArn(k.keyId) : '*';
    const input: KmsDecisionInput = {
      principal: caller.principal,
      action,
      resource,
      identityPolicies: identity,
      ...(k ? { keyPolicy: await this.keyPolicy(k) } : {}),
      conditionKeys: this.contextKeys(caller, extra),
    };
    const decision = authorizeKms(input);
    if (decision.effect === 'Allow') return;
    if (decision.effect === 'ImplicitDeny' && k && action.startsWith('kms:')) {
      const operation = action.slice(4);
      const ctx: EncryptionContext = {};
      for (const [name, v] of Object.entries(extra)) if (name.startsWith('kms:EncryptionContext:') && typeof v === 'string') ctx[name.slice(22)] = v;
      for (const g of await this.store.listKmsGrants(k.keyId)) {
        if (grantAllows(g, caller.principal, operation, ctx) && (!grantFilter || grantFilter(g))) return;
      }
    }
    throw new KmsError('AccessDeniedException', accessDeniedMessage(input, decision));
  }

  private requireEnabled(k: KmsKeyRecord): void {
    if (k.state === 'Disabled') throw new KmsError('DisabledException', `${this.keyArn(k.keyId)} is disabled.`);
    if (k.state === 'PendingDeletion') throw new KmsError('KMSInvalidStateException', `${this.keyArn(k.keyId)} is pending deletion.`);
  }

  private requireNotPendingDeletion(k: KmsKeyRecord): void {
    if (k.state === 'PendingDeletion') throw new KmsError('KMSInvalidStateException', `${this.keyArn(k.keyId)} is pending deletion.`);
  }

  // ---- the operations: quota, audit trail, then the work (docs/kms.md, "Audit trail") ----

  /** Errors this service has already recorded in the audit trail (the API adapter records the others). */
  private readonly auditedErrors = new WeakSet<object>();
  private readonly shredding = new Map<string, Promise<void>>();

  /** Whether the audit trail already has an event for this error (thrown by an operation). */
  wasAudited(err: unknown): boolean {
    return typeof err === 'object' && err !== null && this.auditedErrors.has(err);
  }

  /** The request-rate quota: its limit and, per account, current rate and throttle counts (this node). */
  quotaStatus(): QuotaStatus {
    return this.deps.quota?.status() ?? { limit: 0, scope: 'node', accounts: [] };
  }

  private lastThrottleLog = 0;

  /** Throttling is logged (at most every 10 s) so an operator sees it without asking. */
  private throttled(accountId: string): void {
    const t = this.now();
    if (t - this.lastThrottleLog < 10_000) return;
    this.lastThrottleLog = t;
    const a = this.quotaStatus().accounts.find((x) => x.accountId === accountId);
    this.deps.log?.warn({ accountId, limit: this.deps.quota?.limit, throttledTotal: a?.throttledTotal, allowedLastSecond: a?.allowedLastSecond }, 'KMS requests throttled: over the request quota of this node');
  }

  private async appendEvent(e: CloudTrailEvent, time = this.now()): Promise<void> {
    await this.store.appendAudit([toAppend(e, time)]);
  }

  /**
   * Records a call that failed before it reached an operation (a malformed request the API
   * adapter refused after authenticating it). Never throws.
   */
  async recordFailure(caller: KmsCaller, eventName: string, err: unknown): Promise<void> {
    if (this.wasAudited(err)) return;
    const e = err instanceof KmsError ? err : internalError();
    try {
      await this.appendEvent(
        apiEvent({ caller, eventName: eventName.slice(0, 128), time: this.now(), region: this.deps.region, accountId: this.deps.accountId, requestParameters: null, keyArns: [], error: { code: e.type, message: e.message } }),
      );
    } catch (auditErr) {
      this.deps.log?.error({ err: auditErr, eventName }, 'could not record a failed KMS call in the audit trail');
    }
    if (typeof err === 'object' && err !== null) this.auditedErrors.add(err);
  }

  /**
   * One audited operation: the quota (cryptographic operations), the work, then its event.
   * The event is durable before the answer goes out; if it cannot be stored the call fails
   * (KMSInternalException) and any plaintext is wiped: no record, no key.
   */
  private async call<T>(
    caller: KmsCaller,
    eventName: string,
    requestParameters: Record<string, unknown> | null,
    fn: () => Promise<T>,
    opts: { keyIds?: unknown[]; blob?: Buffer; keyArns?: (r: T) => string[]; response?: (r: T) => Record<string, unknown> | null } = {},
  ): Promise<T> {
    const time = this.now();
    const base = { caller, eventName, time, region: this.deps.region, accountId: this.deps.accountId, requestParameters: prune(requestParameters) };
    let result: T;
    try {
      if (this.deps.quota && QUOTA_OPERATIONS.has(eventName) && !this.deps.quota.tryTake(caller.principal.account)) {
        this.throttled(caller.principal.account);
        throw new KmsError('ThrottlingException', THROTTLING_MESSAGE);
      }
      result = await fn();
    } catch (err) {
      const e = err instanceof KmsError ? err : internalError();
      try {
        await this.appendEvent(apiEvent({ ...base, keyArns: await this.peekKeyArns(opts.keyIds ?? [], opts.blob), error: { code: e.type, message: e.message } }), time);
      } catch (auditErr) {
        this.deps.log?.error({ err: auditErr, eventName }, 'could not record a failed KMS call in the audit trail');
      }
      if (typeof err === 'object' && err !== null) this.auditedErrors.add(err);
      throw err;
    }
    try {
      const keyArns = opts.keyArns ? opts.keyArns(result) : await this.peekKeyArns(opts.keyIds ?? []);
      await this.appendEvent(apiEvent({ ...base, keyArns, responseElements: opts.response ? opts.response(result) : null }), time);
    } catch (auditErr) {
      wipe(result);
      this.deps.log?.error({ err: auditErr, eventName }, 'could not record a KMS call in the audit trail: the call fails');
      const e = internalError();
      this.auditedErrors.add(e);
      throw e;
    }
    return result;
  }

  /** The keys a request names, for its event, without side effects (no deletion, rotation, creation). */
  private async peekKeyArns(ids: unknown[], blob?: Buffer): Promise<string[]> {
    const out: string[] = [];
    for (const id of ids) {
      if (typeof id !== 'string' || id.length > 2048) continue;
      const arn = /^arn:aws:kms:([^:]*):(\d{12}):(key\/.+|alias\/.+)$/.exec(id);
      if (arn && (arn[1] !== this.deps.region || arn[2] !== this.deps.accountId)) continue;
      const rest = arn ? arn[3]! : id;
      if (rest.startsWith('alias/')) {
        const a = await this.store.getKmsAlias(rest);
        if (a) out.push(this.keyArn(a.keyId));
      } else {
        const keyId = rest.startsWith('key/') ? rest.slice(4) : rest;
        if (isKeyUuid(keyId)) out.push(this.keyArn(keyId));
      }
    }
    if (blob) {
      const h = parseBlobHeader(blob);
      if (h) out.push(this.keyArn(h.keyId));
    }
    return [...new Set(out)];
  }

  /** Deletes a key whose window has ended, recording DeleteKey (by KMS itself) in the same commit. */
  private shred(keyId: string): Promise<void> {
    let p = this.shredding.get(keyId);
    if (!p) {
      const event = serviceEvent({ eventName: 'DeleteKey', time: this.now(), region: this.deps.region, accountId: this.deps.accountId, keyArn: this.keyArn(keyId) });
      // Both are queued in the same turn, so the group commit writes them in one transaction.
      p = Promise.all([this.appendEvent(event), this.store.deleteKmsKey(keyId)])
        .then(() => undefined)
        .finally(() => this.shredding.delete(keyId));
      this.shredding.set(keyId, p);
    }
    return p;
  }

  createKey(caller: KmsCaller, input: CreateKeyInput): Promise<KeyMetadata> {
    const params = {
      description: input.description,
      keyUsage: input.keyUsage ?? 'ENCRYPT_DECRYPT',
      keySpec: input.keySpec ?? 'SYMMETRIC_DEFAULT',
      origin: input.origin ?? 'AWS_KMS',
      multiRegion: input.multiRegion ?? false,
      bypassPolicyLockoutSafetyCheck: input.bypassPolicyLockoutSafetyCheck ?? false,
      policy: input.policy,
      tags: input.tags?.map((t) => ({ tagKey: t.key, tagValue: t.value })),
    };
    return this.call(caller, 'CreateKey', params, () => this.doCreateKey(caller, input), {
      keyArns: (m) => [m.Arn],
      response: (m) => ({ keyMetadata: { AWSAccountId: m.AWSAccountId, keyId: m.KeyId, arn: m.Arn, keyState: m.KeyState, keyManager: m.KeyManager, keySpec: m.KeySpec, keyUsage: m.KeyUsage, origin: m.Origin } }),
    });
  }

  describeKey(caller: KmsCaller, keyId: unknown): Promise<KeyMetadata> {
    return this.call(caller, 'DescribeKey', { keyId }, () => this.doDescribeKey(caller, keyId), { keyIds: [keyId], keyArns: (m) => [m.Arn] });
  }

  listKeys(caller: KmsCaller, limit?: number, marker?: string): Promise<Page<{ KeyId: string; KeyArn: string }>> {
    return this.call(caller, 'ListKeys', { limit, marker }, () => this.doListKeys(caller, limit, marker), { keyArns: () => [] });
  }

  enableKey(caller: KmsCaller, keyId: unknown): Promise<void> {
    return this.call(caller, 'EnableKey', { keyId }, () => this.doEnableKey(caller, keyId), { keyIds: [keyId] });
  }

  disableKey(caller: KmsCaller, keyId: unknown): Promise<void> {
    return this.call(caller, 'DisableKey', { keyId }, () => this.doDisableKey(caller, keyId), { keyIds: [keyId] });
  }

  scheduleKeyDeletion(caller: KmsCaller, keyId: unknown, days?: number): Promise<{ keyArn: string; deletionDate: number; state: 'PendingDeletion'; days: number }> {
    return this.call(caller, 'ScheduleKeyDeletion', { keyId, pendingWindowInDays: days }, () => this.doScheduleKeyDeletion(caller, keyId, days), {
      keyIds: [keyId],
      keyArns: (r) => [r.keyArn],
      response: (r) => ({ keyId: r.keyArn, keyState: r.state, deletionDate: new Date(r.deletionDate * 1000).toISOString(), pendingWindowInDays: r.days }),
    });
  }

  cancelKeyDeletion(caller: KmsCaller, keyId: unknown): Promise<string> {
    return this.call(caller, 'CancelKeyDeletion', { keyId }, () => this.doCancelKeyDeletion(caller, keyId), { keyIds: [keyId], keyArns: (arn) => [arn], response: (arn) => ({ keyId: arn }) });
  }

  createAlias(caller: KmsCaller, aliasName: unknown, targetKeyId: unknown): Promise<void> {
    return this.call(caller, 'CreateAlias', { aliasName, targetKeyId }, () => this.doCreateAlias(caller, aliasName, targetKeyId), { keyIds: [targetKeyId] });
  }

  async updateAlias(caller: KmsCaller, aliasName: unknown, targetKeyId: unknown): Promise<void> {
    // The alias's old key and the new one, looked up before the update re-points it.
    const arns = await this.peekKeyArns([aliasName, targetKeyId]);
    return this.call(caller, 'UpdateAlias', { aliasName, targetKeyId }, () => this.doUpdateAlias(caller, aliasName, targetKeyId), { keyIds: [aliasName, targetKeyId], keyArns: () => arns });
  }

  async deleteAlias(caller: KmsCaller, aliasName: unknown): Promise<void> {
    const arns = await this.peekKeyArns([aliasName]);
    return this.call(caller, 'DeleteAlias', { aliasName }, () => this.doDeleteAlias(caller, aliasName), { keyIds: [aliasName], keyArns: () => arns });
  }

  listAliases(caller: KmsCaller, keyId?: unknown, limit?: number, marker?: string): Promise<Page<KmsAliasRecord & { arn: string }>> {
    return this.call(caller, 'ListAliases', { keyId, limit, marker }, () => this.doListAliases(caller, keyId, limit, marker), { keyIds: [keyId] });
  }

  encrypt(caller: KmsCaller, keyId: unknown, plaintext: Buffer, context: unknown): Promise<{ blob: Buffer; keyArn: string }> {
    return this.call(caller, 'Encrypt', { keyId, encryptionContext: context, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' }, () => this.doEncrypt(caller, keyId, plaintext, context), {
      keyIds: [keyId],
      keyArns: (r) => [r.keyArn],
    });
  }

  decrypt(caller: KmsCaller, blob: Buffer, context: unknown, keyId?: unknown): Promise<{ plaintext: Buffer; keyArn: string }> {
    return this.call(caller, 'Decrypt', { keyId, encryptionContext: context, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' }, () => this.doDecrypt(caller, blob, context, keyId), {
      keyIds: [keyId],
      blob,
      keyArns: (r) => [r.keyArn],
    });
  }

  reEncrypt(
    caller: KmsCaller,
    input: { blob: Buffer; sourceContext?: unknown; sourceKeyId?: unknown; destinationKeyId: unknown; destinationContext?: unknown },
  ): Promise<{ blob: Buffer; sourceKeyArn: string; keyArn: string }> {
    const params = {
      sourceKeyId: input.sourceKeyId,
      destinationKeyId: input.destinationKeyId,
      sourceEncryptionContext: input.sourceContext,
      destinationEncryptionContext: input.destinationContext,
      sourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      destinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    };
    return this.call(caller, 'ReEncrypt', params, () => this.doReEncrypt(caller, input), {
      keyIds: [input.sourceKeyId, input.destinationKeyId],
      blob: input.blob,
      keyArns: (r) => [...new Set([r.sourceKeyArn, r.keyArn])],
    });
  }

  generateDataKey(
    caller: KmsCaller,
    input: { keyId: unknown; keySpec?: unknown; numberOfBytes?: unknown; context?: unknown; withPlaintext: boolean },
  ): Promise<{ blob: Buffer; plaintext?: Buffer; keyArn: string }> {
    const params = { keyId: input.keyId, keySpec: input.keySpec, numberOfBytes: input.numberOfBytes, encryptionContext: input.context };
    return this.call(caller, input.withPlaintext ? 'GenerateDataKey' : 'GenerateDataKeyWithoutPlaintext', params, () => this.doGenerateDataKey(caller, input), {
      keyIds: [input.keyId],
      keyArns: (r) => [r.keyArn],
    });
  }

  generateRandom(caller: KmsCaller, numberOfBytes: unknown): Promise<Buffer> {
    return this.call(caller, 'GenerateRandom', { numberOfBytes }, () => this.doGenerateRandom(caller, numberOfBytes), { keyArns: () => [] });
  }

  enableKeyRotation(caller: KmsCaller, keyId: unknown, periodInDays?: number): Promise<void> {
    return this.call(caller, 'EnableKeyRotation', { keyId, rotationPeriodInDays: periodInDays }, () => this.doEnableKeyRotation(caller, keyId, periodInDays), { keyIds: [keyId] });
  }

  disableKeyRotation(caller: KmsCaller, keyId: unknown): Promise<void> {
    return this.call(caller, 'DisableKeyRotation', { keyId }, () => this.doDisableKeyRotation(caller, keyId), { keyIds: [keyId] });
  }

  getKeyRotationStatus(caller: KmsCaller, keyId: unknown): Promise<{ enabled: boolean; keyArn: string; periodInDays?: number; nextRotation?: number }> {
    return this.call(caller, 'GetKeyRotationStatus', { keyId }, () => this.doGetKeyRotationStatus(caller, keyId), { keyIds: [keyId], keyArns: (r) => [r.keyArn] });
  }

  rotateKeyOnDemand(caller: KmsCaller, keyId: unknown): Promise<string> {
    return this.call(caller, 'RotateKeyOnDemand', { keyId }, () => this.doRotateKeyOnDemand(caller, keyId), { keyIds: [keyId], keyArns: (arn) => [arn], response: (arn) => ({ keyId: arn }) });
  }

  listKeyRotations(caller: KmsCaller, keyId: unknown, limit?: number, marker?: string): Promise<Page<{ KeyId: string; RotationDate: number; RotationType: 'AUTOMATIC' | 'ON_DEMAND' }>> {
    return this.call(caller, 'ListKeyRotations', { keyId, limit, marker }, () => this.doListKeyRotations(caller, keyId, limit, marker), { keyIds: [keyId] });
  }

  putKeyPolicy(caller: KmsCaller, keyId: unknown, policyName: unknown, text: unknown, bypass?: boolean): Promise<void> {
    return this.call(caller, 'PutKeyPolicy', { keyId, policyName: policyName ?? 'default', policy: text, bypassPolicyLockoutSafetyCheck: bypass ?? false }, () => this.doPutKeyPolicy(caller, keyId, policyName, text, bypass), {
      keyIds: [keyId],
    });
  }

  getKeyPolicy(caller: KmsCaller, keyId: unknown, policyName: unknown): Promise<string> {
    return this.call(caller, 'GetKeyPolicy', { keyId, policyName }, () => this.doGetKeyPolicy(caller, keyId, policyName), { keyIds: [keyId] });
  }

  listKeyPolicies(caller: KmsCaller, keyId: unknown): Promise<string[]> {
    return this.call(caller, 'ListKeyPolicies', { keyId }, () => this.doListKeyPolicies(caller, keyId), { keyIds: [keyId] });
  }

  tagResource(caller: KmsCaller, keyId: unknown, tags: KmsTag[]): Promise<void> {
    return this.call(caller, 'TagResource', { keyId, tags: tags.map((t) => ({ tagKey: t.key, tagValue: t.value })) }, () => this.doTagResource(caller, keyId, tags), { keyIds: [keyId] });
  }

  untagResource(caller: KmsCaller, keyId: unknown, tagKeys: string[]): Promise<void> {
    return this.call(caller, 'UntagResource', { keyId, tagKeys }, () => this.doUntagResource(caller, keyId, tagKeys), { keyIds: [keyId] });
  }

  listResourceTags(caller: KmsCaller, keyId: unknown, limit?: number, marker?: string): Promise<Page<KmsTag>> {
    return this.call(caller, 'ListResourceTags', { keyId, limit, marker }, () => this.doListResourceTags(caller, keyId, limit, marker), { keyIds: [keyId] });
  }

  createGrant(caller: KmsCaller, input: CreateGrantInput): Promise<{ grantId: string; grantToken: string; keyArn: string }> {
    const params = {
      keyId: input.keyId,
      granteePrincipal: input.granteePrincipal,
      retiringPrincipal: input.retiringPrincipal,
      operations: input.operations,
      constraints: input.constraints,
      name: input.name,
      dryRun: input.dryRun,
    };
    return this.call(caller, 'CreateGrant', params, () => this.doCreateGrant(caller, input), {
      keyIds: [input.keyId],
      keyArns: (r) => [r.keyArn],
      response: (r) => ({ grantId: r.grantId }),
    });
  }

  listGrants(caller: KmsCaller, input: { keyId: unknown; grantId?: unknown; granteePrincipal?: unknown; limit?: number; marker?: string }): Promise<Page<GrantListEntry>> {
    return this.call(caller, 'ListGrants', { ...input }, () => this.doListGrants(caller, input), { keyIds: [input.keyId] });
  }

  listRetirableGrants(caller: KmsCaller, retiringPrincipal: unknown, limit?: number, marker?: string): Promise<Page<GrantListEntry>> {
    return this.call(caller, 'ListRetirableGrants', { retiringPrincipal, limit, marker }, () => this.doListRetirableGrants(caller, retiringPrincipal, limit, marker), { keyArns: () => [] });
  }

  retireGrant(caller: KmsCaller, input: { grantToken?: unknown; keyId?: unknown; grantId?: unknown; dryRun?: boolean }): Promise<string> {
    // The token is not secret, but long: the event names the key and grant it stands for.
    let named: { keyId?: unknown; grantId?: unknown } = { keyId: input.keyId, grantId: input.grantId };
    if (input.grantToken !== undefined) {
      try {
        named = parseGrantToken(input.grantToken);
      } catch {
        named = {};
      }
    }
    return this.call(caller, 'RetireGrant', { ...named, dryRun: input.dryRun }, () => this.doRetireGrant(caller, input), { keyIds: [named.keyId], keyArns: (arn) => [arn] });
  }

  revokeGrant(caller: KmsCaller, keyId: unknown, grantId: unknown, dryRun?: boolean): Promise<void> {
    return this.call(caller, 'RevokeGrant', { keyId, grantId, dryRun }, () => this.doRevokeGrant(caller, keyId, grantId, dryRun), { keyIds: [keyId] });
  }

  /**
   * `coffer kms import`: creates a symmetric key with a chosen id and, optionally, chosen
   * 32-byte material (else random), sealed under the root key like any other, with the default
   * key policy, and optionally an alias. Not a KMS API call (an administrator with the root
   * key runs it); recorded in the audit trail as ImportKey by the account root. The caller's
   * `material` buffer is left to the caller to wipe.
   */
  async importKey(input: { keyId: string; material?: Buffer; alias?: string; description?: string }): Promise<KeyMetadata> {
    const keyId = input.keyId.toLowerCase();
    if (!isKeyUuid(keyId)) throw new KmsError('ValidationException', `The key id must be a UUID (such as 1234abcd-12ab-34cd-56ef-1234567890ab), got "${input.keyId}"`);
    if (input.material !== undefined && input.material.length !== 32) throw new KmsError('ValidationException', `Key material must be 32 bytes (AES-256), got ${input.material.length}`);
    const description = input.description ?? '';
    if (description.length > 8192) throw new KmsError('ValidationException', 'Description must be at most 8192 characters');
    const alias = input.alias !== undefined ? this.validateAliasName(input.alias, true) : undefined;
    if (alias !== undefined && (await this.store.getKmsAlias(alias))) throw new KmsError('AlreadyExistsException', `An alias with the name ${this.aliasArn(alias)} already exists`);
    if (await this.store.getKmsKey(keyId)) throw new KmsError('AlreadyExistsException', `A key with the id ${keyId} already exists (${this.keyArn(keyId)})`);
    const at = this.now();
    const k: KmsKeyRecord = { keyId, createdAt: at, description, keyManager: 'CUSTOMER', state: 'Enabled', currentMaterial: 1, rotationEnabled: false };
    const material = this.sealMaterial(keyId, 1, 'CREATE', input.material);
    if (!(await this.store.createKmsKey(k, material, defaultKeyPolicy(this.deps.accountId), []))) {
      throw new KmsError('AlreadyExistsException', `A key with the id ${keyId} already exists (${this.keyArn(keyId)})`);
    }
    if (alias !== undefined && !(await this.store.createKmsAlias({ name: alias, keyId, createdAt: at, updatedAt: at }))) {
      throw new KmsError('AlreadyExistsException', `The key ${keyId} was imported, but the alias ${alias} was created meanwhile by someone else`);
    }
    const account = this.deps.accountId;
    const root: Principal = { type: 'Root', arn: `arn:aws:iam::${account}:root`, account, userId: account };
    await this.appendEvent(
      apiEvent({
        caller: { principal: root, userAgent: 'coffer kms import', sourceIp: 'coffer kms import' },
        eventName: 'ImportKey',
        time: at,
        region: this.deps.region,
        accountId: account,
        requestParameters: prune({ keyId, materialSupplied: input.material !== undefined, description: input.description, aliasName: alias }),
        responseElements: { keyId, arn: this.keyArn(keyId) },
        keyArns: [this.keyArn(keyId)],
      }),
      at,
    );
    return this.metadata(k);
  }

  // ---- keys ----

  private async doCreateKey(caller: KmsCaller, input: CreateKeyInput): Promise<KeyMetadata> {
    if (input.keyUsage !== undefined && input.keyUsage !== 'ENCRYPT_DECRYPT') {
      throw new KmsError('UnsupportedOperationException', `KeyUsage ${input.keyUsage} is not supported: Coffer has symmetric ENCRYPT_DECRYPT keys only`);
    }
    if (input.keySpec !== undefined && input.keySpec !== 'SYMMETRIC_DEFAULT') {
      throw new KmsError('UnsupportedOperationException', `KeySpec ${input.keySpec} is not supported: Coffer has SYMMETRIC_DEFAULT keys only`);
    }
    if (input.origin !== undefined && input.origin !== 'AWS_KMS') throw new KmsError('UnsupportedOperationException', `Origin ${input.origin} is not supported`);
    if (input.multiRegion) throw new KmsError('UnsupportedOperationException', 'Multi-Region keys are not supported');
    const description = input.description ?? '';
    if (typeof description !== 'string' || description.length > 8192) throw new KmsError('ValidationException', 'Description must be at most 8192 characters');
    const tags = input.tags ?? [];
    validateTags(tags);
    await this.authorize(caller, 'kms:CreateKey', undefined);
    if (tags.length) await this.authorize(caller, 'kms:TagResource', undefined);
    const policyText = input.policy ?? defaultKeyPolicy(this.deps.accountId);
    const policy = parseKeyPolicy(policyText);
    if (input.policy !== undefined && !input.bypassPolicyLockoutSafetyCheck) this.lockoutCheck(caller, policy, await this.deps.identityPolicies(caller.principal));
    const k = await this.newKey(description, 'CUSTOMER', policyText, tags);
    return this.metadata(k);
  }

  /** AWS's policy lockout safety check: the caller must still be allowed to PutKeyPolicy. */
  private lockoutCheck(caller: KmsCaller, policy: Policy, identity: readonly Policy[]): void {
    const d = authorizeKms({ principal: caller.principal, action: 'kms:PutKeyPolicy', resource: '*', identityPolicies: identity, keyPolicy: policy, conditionKeys: this.contextKeys(caller) });
    if (d.effect !== 'Allow') {
      throw new KmsError('MalformedPolicyDocumentException', 'The new key policy will not allow you to update the key policy in the future.');
    }
  }

  private async doDescribeKey(caller: KmsCaller, keyId: unknown): Promise<KeyMetadata> {
    const k = await this.resolve(keyId);
    await this.authorize(caller, 'kms:DescribeKey', k);
    return this.metadata(k);
  }

  private async doListKeys(caller: KmsCaller, limit?: number, marker?: string): Promise<Page<{ KeyId: string; KeyArn: string }>> {
    await this.authorize(caller, 'kms:ListKeys', undefined);
    const keys: KmsKeyRecord[] = [];
    for (const k of await this.store.listKmsKeys()) {
      const live = await this.load(k.keyId);
      if (live) keys.push(live);
    }
    return paginate(keys.map((k) => ({ KeyId: k.keyId, KeyArn: this.keyArn(k.keyId) })), (x) => x.KeyId, limit, marker);
  }

  private async doEnableKey(caller: KmsCaller, keyId: unknown): Promise<void> {
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:EnableKey', k);
    this.requireNotPendingDeletion(k);
    if (k.state !== 'Enabled') await this.store.updateKmsKey({ ...k, state: 'Enabled' });
  }

  private async doDisableKey(caller: KmsCaller, keyId: unknown): Promise<void> {
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:DisableKey', k);
    this.requireNotPendingDeletion(k);
    if (k.state !== 'Disabled') await this.store.updateKmsKey({ ...k, state: 'Disabled' });
  }

  private async doScheduleKeyDeletion(caller: KmsCaller, keyId: unknown, days?: number): Promise<{ keyArn: string; deletionDate: number; state: 'PendingDeletion'; days: number }> {
    const window = days ?? 30;
    if (!Number.isInteger(window) || window < 7 || window > 30) {
      throw new KmsError('ValidationException', `1 validation error detected: Value '${days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30`);
    }
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:ScheduleKeyDeletion', k);
    if (k.keyManager === 'AWS') throw new KmsError('UnsupportedOperationException', `${this.keyArn(k.keyId)} is an AWS managed key: it cannot be deleted`);
    this.requireNotPendingDeletion(k);
    const deletionDate = this.now() + window * DAY_MS;
    await this.store.updateKmsKey({ ...k, state: 'PendingDeletion', deletionDate, pendingWindowInDays: window });
    return { keyArn: this.keyArn(k.keyId), deletionDate: seconds(deletionDate), state: 'PendingDeletion', days: window };
  }

  private async doCancelKeyDeletion(caller: KmsCaller, keyId: unknown): Promise<string> {
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:CancelKeyDeletion', k);
    if (k.state !== 'PendingDeletion') throw new KmsError('KMSInvalidStateException', `${this.keyArn(k.keyId)} is not pending deletion.`);
    const { deletionDate: _d, pendingWindowInDays: _w, ...rest } = k;
    await this.store.updateKmsKey({ ...rest, state: 'Disabled' });
    return this.keyArn(k.keyId);
  }

  // ---- aliases ----

  private validateAliasName(name: unknown, creating: boolean): string {
    if (typeof name !== 'string' || !ALIAS_NAME.test(name)) {
      throw new KmsError('ValidationException', `Alias must start with the prefix "alias/" and contain only letters, digits, /, _ and -: ${String(name)}`);
    }
    if (creating && name.startsWith('alias/aws/')) throw new KmsError('NotAuthorizedException', `Cannot create or change alias ${name}: the prefix alias/aws/ is reserved for AWS managed keys`);
    return name;
  }

  private async aliasTarget(caller: KmsCaller, targetKeyId: unknown, action: string): Promise<KmsKeyRecord> {
    const k = await this.resolve(targetKeyId, { aliases: false });
    await this.authorize(caller, action, k);
    if (k.keyManager === 'AWS') throw new KmsError('UnsupportedOperationException', 'An alias cannot point to an AWS managed key');
    this.requireNotPendingDeletion(k);
    return k;
  }

  private async doCreateAlias(caller: KmsCaller, aliasName: unknown, targetKeyId: unknown): Promise<void> {
    const name = this.validateAliasName(aliasName, true);
    const k = await this.aliasTarget(caller, targetKeyId, 'kms:CreateAlias');
    const at = this.now();
    if (!(await this.store.createKmsAlias({ name, keyId: k.keyId, createdAt: at, updatedAt: at }))) {
      throw new KmsError('AlreadyExistsException', `An alias with the name ${this.aliasArn(name)} already exists`);
    }
  }

  private async doUpdateAlias(caller: KmsCaller, aliasName: unknown, targetKeyId: unknown): Promise<void> {
    const name = this.validateAliasName(aliasName, true);
    const current = await this.store.getKmsAlias(name);
    if (!current) throw new KmsError('NotFoundException', `Alias ${this.aliasArn(name)} is not found.`);
    const old = await this.load(current.keyId);
    if (old) await this.authorize(caller, 'kms:UpdateAlias', old);
    const k = await this.aliasTarget(caller, targetKeyId, 'kms:UpdateAlias');
    await this.store.updateKmsAlias(name, k.keyId, this.now());
  }

  private async doDeleteAlias(caller: KmsCaller, aliasName: unknown): Promise<void> {
    const name = this.validateAliasName(aliasName, true);
    const current = await this.store.getKmsAlias(name);
    if (!current) throw new KmsError('NotFoundException', `Alias ${this.aliasArn(name)} is not found.`);
    const k = await this.load(current.keyId);
    if (k) await this.authorize(caller, 'kms:DeleteAlias', k);
    await this.store.deleteKmsAlias(name);
  }

  private async doListAliases(caller: KmsCaller, keyId?: unknown, limit?: number, marker?: string): Promise<Page<KmsAliasRecord & { arn: string }>> {
    // ListAliases is judged by identity policies alone (resource "*"), with or without KeyId, as on AWS.
    await this.authorize(caller, 'kms:ListAliases', undefined);
    const filter = keyId !== undefined ? (await this.resolve(keyId, { aliases: false })).keyId : undefined;
    const aliases = (await this.store.listKmsAliases()).filter((a) => filter === undefined || a.keyId === filter);
    return paginate(aliases.map((a) => ({ ...a, arn: this.aliasArn(a.name) })), (a) => a.name, limit, marker);
  }

  // ---- cryptographic operations ----

  private async doEncrypt(caller: KmsCaller, keyId: unknown, plaintext: Buffer, context: unknown): Promise<{ blob: Buffer; keyArn: string }> {
    const ctx = validateContext(context);
    if (plaintext.length < 1 || plaintext.length > MAX_PLAINTEXT) {
      throw new KmsError('ValidationException', `1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length between 1 and ${MAX_PLAINTEXT}`);
    }
    const k = await this.resolve(keyId);
    await this.authorize(caller, 'kms:Encrypt', k, { ...KmsService.encryptionContextKeys(ctx), ...requestAlias(keyId) });
    this.requireEnabled(k);
    return { blob: await this.encryptUnder(k, plaintext, ctx), keyArn: this.keyArn(k.keyId) };
  }

  private async encryptUnder(k: KmsKeyRecord, plaintext: Buffer, ctx: EncryptionContext | undefined): Promise<Buffer> {
    const material = await this.material(k.keyId, k.currentMaterial);
    if (!material) throw new KmsError('KMSInternalException', 'the key material is missing');
    try {
      return encryptBlob(material.expose(), { keyId: k.keyId, materialVersion: k.currentMaterial }, plaintext, ctx, this.rng);
    } finally {
      material.zero();
    }
  }

  /** Opens a ciphertext blob (authorizing `action` on its key); the key named by `keyId`, if given, must be the blob's. */
  private async open(caller: KmsCaller, action: string, blob: Buffer, ctx: EncryptionContext | undefined, keyId: unknown): Promise<{ plaintext: Buffer; key: KmsKeyRecord }> {
    if (blob.length < 1 || blob.length > MAX_CIPHERTEXT) {
      throw new KmsError('ValidationException', `1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length between 1 and ${MAX_CIPHERTEXT}`);
    }
    const header = parseBlobHeader(blob);
    if (!header) throw new KmsError('InvalidCiphertextException', '');
    const named = keyId !== undefined && keyId !== null ? await this.resolve(keyId) : undefined;
    if (named && named.keyId !== header.keyId) {
      throw new KmsError(
        'IncorrectKeyException',
        'The key ID in the request does not identify a KMS key that can perform this operation.',
      );
    }
    const k = named ?? (await this.load(header.keyId));
    // A blob naming no key we have is indistinguishable from garbage.
    if (!k) throw new KmsError('InvalidCiphertextException', '');
    await this.authorize(caller, action, k, KmsService.encryptionContextKeys(ctx));
    this.requireEnabled(k);
    const material = await this.material(k.keyId, header.materialVersion);
    if (!material) throw new KmsError('InvalidCiphertextException', '');
    try {
      const plaintext = decryptBlob(material.expose(), blob, ctx);
      if (!plaintext) throw new KmsError('InvalidCiphertextException', '');
      return { plaintext, key: k };
    } finally {
      material.zero();
    }
  }

  private async doDecrypt(caller: KmsCaller, blob: Buffer, context: unknown, keyId?: unknown): Promise<{ plaintext: Buffer; keyArn: string }> {
    const ctx = validateContext(context);
    const { plaintext, key } = await this.open(caller, 'kms:Decrypt', blob, ctx, keyId);
    return { plaintext, keyArn: this.keyArn(key.keyId) };
  }

  private async doReEncrypt(
    caller: KmsCaller,
    input: { blob: Buffer; sourceContext?: unknown; sourceKeyId?: unknown; destinationKeyId: unknown; destinationContext?: unknown },
  ): Promise<{ blob: Buffer; sourceKeyArn: string; keyArn: string }> {
    const src = validateContext(input.sourceContext, 'SourceEncryptionContext');
    const dst = validateContext(input.destinationContext, 'DestinationEncryptionContext');
    const dest = await this.resolve(input.destinationKeyId);
    const { plaintext, key } = await this.open(caller, 'kms:ReEncryptFrom', input.blob, src, input.sourceKeyId);
    try {
      await this.authorize(caller, 'kms:ReEncryptTo', dest, { ...KmsService.encryptionContextKeys(dst), ...requestAlias(input.destinationKeyId) });
      this.requireEnabled(dest);
      return { blob: await this.encryptUnder(dest, plaintext, dst), sourceKeyArn: this.keyArn(key.keyId), keyArn: this.keyArn(dest.keyId) };
    } finally {
      plaintext.fill(0);
    }
  }

  private async doGenerateDataKey(
    caller: KmsCaller,
    input: { keyId: unknown; keySpec?: unknown; numberOfBytes?: unknown; context?: unknown; withPlaintext: boolean },
  ): Promise<{ blob: Buffer; plaintext?: Buffer; keyArn: string }> {
    const ctx = validateContext(input.context);
    let n: number;
    if (input.keySpec !== undefined && input.numberOfBytes !== undefined) throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec, not both.');
    if (input.keySpec !== undefined) {
      if (input.keySpec === 'AES_256') n = 32;
      else if (input.keySpec === 'AES_128') n = 16;
      else throw new KmsError('ValidationException', `1 validation error detected: Value '${String(input.keySpec)}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]`);
    } else if (input.numberOfBytes !== undefined) {
      n = input.numberOfBytes as number;
      if (!Number.isInteger(n) || n < 1 || n > 1024) {
        throw new KmsError('ValidationException', `1 validation error detected: Value '${String(input.numberOfBytes)}' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024`);
      }
    } else throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec.');
    const k = await this.resolve(input.keyId);
    const action = input.withPlaintext ? 'kms:GenerateDataKey' : 'kms:GenerateDataKeyWithoutPlaintext';
    await this.authorize(caller, action, k, { ...KmsService.encryptionContextKeys(ctx), ...requestAlias(input.keyId) });
    this.requireEnabled(k);
    const plaintext = this.rng.randomBytes(n);
    const blob = await this.encryptUnder(k, plaintext, ctx);
    if (!input.withPlaintext) plaintext.fill(0);
    return { blob, ...(input.withPlaintext ? { plaintext } : {}), keyArn: this.keyArn(k.keyId) };
  }

  private async doGenerateRandom(caller: KmsCaller, numberOfBytes: unknown): Promise<Buffer> {
    const n = numberOfBytes as number;
    if (!Number.isInteger(n) || n < 1 || n > 1024) {
      throw new KmsError('ValidationException', `1 validation error detected: Value '${String(numberOfBytes)}' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024`);
    }
    await this.authorize(caller, 'kms:GenerateRandom', undefined);
    return this.rng.randomBytes(n);
  }

  // ---- rotation ----

  private async doEnableKeyRotation(caller: KmsCaller, keyId: unknown, periodInDays?: number): Promise<void> {
    const period = periodInDays ?? 365;
    if (!Number.isInteger(period) || period < 90 || period > 2560) {
      throw new KmsError('ValidationException', `1 validation error detected: Value '${periodInDays}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between 90 and 2560`);
    }
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:EnableKeyRotation', k);
    this.requireEnabled(k);
    const base = k.rotationEnabled && k.nextRotation !== undefined && k.rotationPeriodInDays !== undefined ? k.nextRotation - k.rotationPeriodInDays * DAY_MS : this.now();
    await this.store.updateKmsKey({ ...k, rotationEnabled: true, rotationPeriodInDays: period, nextRotation: base + period * DAY_MS });
  }

  private async doDisableKeyRotation(caller: KmsCaller, keyId: unknown): Promise<void> {
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:DisableKeyRotation', k);
    this.requireEnabled(k);
    const { nextRotation: _n, ...rest } = k;
    await this.store.updateKmsKey({ ...rest, rotationEnabled: false });
  }

  private async doGetKeyRotationStatus(caller: KmsCaller, keyId: unknown): Promise<{ enabled: boolean; keyArn: string; periodInDays?: number; nextRotation?: number }> {
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:GetKeyRotationStatus', k);
    this.requireNotPendingDeletion(k);
    return {
      enabled: k.rotationEnabled,
      keyArn: this.keyArn(k.keyId),
      ...(k.rotationEnabled && k.rotationPeriodInDays ? { periodInDays: k.rotationPeriodInDays } : {}),
      ...(k.rotationEnabled && k.nextRotation !== undefined ? { nextRotation: seconds(k.nextRotation) } : {}),
    };
  }

  private async doRotateKeyOnDemand(caller: KmsCaller, keyId: unknown): Promise<string> {
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:RotateKeyOnDemand', k);
    this.requireEnabled(k);
    const onDemand = (await this.store.listKmsMaterials(k.keyId)).filter((m) => m.origin === 'ON_DEMAND').length;
    if (onDemand >= MAX_ON_DEMAND_ROTATIONS) {
      throw new KmsError('LimitExceededException', `The on-demand rotations limit has been reached for the given key (${MAX_ON_DEMAND_ROTATIONS}).`);
    }
    await this.addMaterial(k, 'ON_DEMAND');
    return this.keyArn(k.keyId);
  }

  private async doListKeyRotations(caller: KmsCaller, keyId: unknown, limit?: number, marker?: string): Promise<Page<{ KeyId: string; RotationDate: number; RotationType: 'AUTOMATIC' | 'ON_DEMAND' }>> {
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:ListKeyRotations', k);
    const rotations = (await this.store.listKmsMaterials(k.keyId))
      .filter((m) => m.origin !== 'CREATE')
      .map((m) => ({ version: m.version, KeyId: this.keyArn(k.keyId), RotationDate: seconds(m.createdAt), RotationType: m.origin as 'AUTOMATIC' | 'ON_DEMAND' }));
    const page = paginate(rotations, (r) => String(r.version).padStart(10, '0'), limit, marker);
    return { ...page, items: page.items.map(({ version: _v, ...r }) => r) };
  }

  // ---- key policies ----

  private async doPutKeyPolicy(caller: KmsCaller, keyId: unknown, policyName: unknown, text: unknown, bypass?: boolean): Promise<void> {
    if (policyName !== undefined && policyName !== 'default') throw new KmsError('ValidationException', 'PolicyName must be "default"');
    if (typeof text !== 'string') throw new KmsError('ValidationException', 'Policy is required');
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:PutKeyPolicy', k);
    this.requireNotPendingDeletion(k);
    const policy = parseKeyPolicy(text);
    if (!bypass) this.lockoutCheck(caller, policy, await this.deps.identityPolicies(caller.principal));
    await this.store.putKmsKeyPolicy(k.keyId, text);
  }

  private async doGetKeyPolicy(caller: KmsCaller, keyId: unknown, policyName: unknown): Promise<string> {
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:GetKeyPolicy', k);
    if (policyName !== undefined && policyName !== 'default') throw new KmsError('NotFoundException', `No such policy exists: ${String(policyName)}`);
    return (await this.store.getKmsKeyPolicy(k.keyId)) ?? '';
  }

  private async doListKeyPolicies(caller: KmsCaller, keyId: unknown): Promise<string[]> {
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:ListKeyPolicies', k);
    return ['default'];
  }

  // ---- tags ----

  private async doTagResource(caller: KmsCaller, keyId: unknown, tags: KmsTag[]): Promise<void> {
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:TagResource', k);
    this.requireNotPendingDeletion(k);
    validateTags(tags);
    const existing = new Map((await this.store.listKmsTags(k.keyId)).map((t) => [t.key, t.value]));
    for (const t of tags) existing.set(t.key, t.value);
    if (existing.size > 50) throw new KmsError('LimitExceededException', 'A key can have at most 50 tags');
    await this.store.putKmsTags(k.keyId, tags);
  }

  private async doUntagResource(caller: KmsCaller, keyId: unknown, tagKeys: string[]): Promise<void> {
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:UntagResource', k);
    this.requireNotPendingDeletion(k);
    await this.store.deleteKmsTags(k.keyId, tagKeys);
  }

  private async doListResourceTags(caller: KmsCaller, keyId: unknown, limit?: number, marker?: string): Promise<Page<KmsTag>> {
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:ListResourceTags', k);
    return paginate(await this.store.listKmsTags(k.keyId), (t) => t.key, limit, marker);
  }

  // ---- grants (docs/kms.md, "Grants") ----

  private grantEntry(g: KmsGrantRecord): GrantListEntry {
    const c = constraintsOut(g.constraints);
    return {
      KeyId: this.keyArn(g.keyId),
      GrantId: g.grantId,
      ...(g.name !== undefined ? { Name: g.name } : {}),
      CreationDate: seconds(g.createdAt),
      GranteePrincipal: g.granteePrincipal,
      ...(g.retiringPrincipal !== undefined ? { RetiringPrincipal: g.retiringPrincipal } : {}),
      IssuingAccount: g.issuingAccount,
      Operations: g.operations,
      ...(c ? { Constraints: c } : {}),
    };
  }

  private static dryRun(): KmsError {
    return new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
  }

  private async doCreateGrant(caller: KmsCaller, input: CreateGrantInput): Promise<{ grantId: string; grantToken: string; keyArn: string }> {
    const granteePrincipal = validatePrincipal(input.granteePrincipal, 'granteePrincipal');
    const retiringPrincipal = input.retiringPrincipal === undefined || input.retiringPrincipal === null ? undefined : validatePrincipal(input.retiringPrincipal, 'retiringPrincipal');
    const operations = validateOperations(input.operations);
    const constraints = validateConstraints(input.constraints);
    const name = validateGrantName(input.name);
    const k = await this.resolve(input.keyId, { aliases: false });
    const ctxKeys: Record<string, ContextValue> = {};
    for (const m of [constraints?.encryptionContextSubset, constraints?.encryptionContextEquals]) Object.assign(ctxKeys, KmsService.encryptionContextKeys(m));
    const types = constraintTypes(constraints);
    await this.authorize(
      caller,
      'kms:CreateGrant',
      k,
      {
        ...ctxKeys,
        'kms:GrantOperations': operations,
        'kms:GranteePrincipal': granteePrincipal,
        ...(retiringPrincipal !== undefined ? { 'kms:RetiringPrincipal': retiringPrincipal } : {}),
        'kms:GrantIsForAWSResource': caller.viaService ? 'true' : 'false',
        ...(types.length ? { 'kms:GrantConstraintType': types } : {}),
      },
      // Through a grant: only a subset of its operations, and at least its constraints.
      (parent) => operations.every((o) => parent.operations.includes(o)) && atLeastAsStrict(constraints, parent.constraints),
    );
    this.requireNotPendingDeletion(k);
    if (input.dryRun) throw KmsService.dryRun();
    const wanted = {
      keyId: k.keyId,
      granteePrincipal,
      operations,
      ...(name !== undefined ? { name } : {}),
      ...(retiringPrincipal !== undefined ? { retiringPrincipal } : {}),
      ...(constraints ? { constraints } : {}),
    };
    if (name !== undefined) {
      // A named grant with identical parameters exists: the same grant (and a new token), as AWS.
      const same = (await this.store.listKmsGrants(k.keyId)).find((g) => sameGrantParameters(wanted, g));
      if (same) return { grantId: same.grantId, grantToken: grantToken(k.keyId, same.grantId), keyArn: this.keyArn(k.keyId) };
    }
    const g: KmsGrantRecord = { ...wanted, grantId: newGrantId(), createdAt: this.now(), issuingAccount: `arn:aws:iam::${this.deps.accountId}:root` };
    if (!(await this.store.createKmsGrant(g))) throw this.notFound(k.keyId);
    return { grantId: g.grantId, grantToken: grantToken(k.keyId, g.grantId), keyArn: this.keyArn(k.keyId) };
  }

  private static grantsLimit(limit?: number): number {
    const n = limit ?? 50;
    if (!Number.isInteger(n) || n < 1 || n > 100) {
      throw new KmsError('ValidationException', `1 validation error detected: Value '${limit}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 100`);
    }
    return n;
  }

  private async doListGrants(caller: KmsCaller, input: { keyId: unknown; grantId?: unknown; granteePrincipal?: unknown; limit?: number; marker?: string }): Promise<Page<GrantListEntry>> {
    const limit = KmsService.grantsLimit(input.limit);
    const grantId = input.grantId === undefined || input.grantId === null ? undefined : validateGrantId(input.grantId);
    const grantee = input.granteePrincipal === undefined || input.granteePrincipal === null ? undefined : validatePrincipal(input.granteePrincipal, 'granteePrincipal');
    const k = await this.resolve(input.keyId, { aliases: false });
    await this.authorize(caller, 'kms:ListGrants', k);
    const grants = (await this.store.listKmsGrants(k.keyId)).filter((g) => (grantId === undefined || g.grantId === grantId) && (grantee === undefined || g.granteePrincipal === grantee));
    const page = paginate(grants, grantSortKey, limit, input.marker);
    return { ...page, items: page.items.map((g) => this.grantEntry(g)) };
  }

  private async doListRetirableGrants(caller: KmsCaller, retiringPrincipal: unknown, limit?: number, marker?: string): Promise<Page<GrantListEntry>> {
    const n = KmsService.grantsLimit(limit);
    const principal = validatePrincipal(retiringPrincipal, 'retiringPrincipal');
    // Judged by identity policies alone (resource "*"), as AWS.
    await this.authorize(caller, 'kms:ListRetirableGrants', undefined);
    const page = paginate(await this.store.listKmsGrantsByRetiringPrincipal(principal), grantSortKey, n, marker);
    return { ...page, items: page.items.map((g) => this.grantEntry(g)) };
  }

  /** The grant a RetireGrant / RevokeGrant names, with its key. */
  private async namedGrant(keyId: unknown, grantId: string): Promise<{ k: KmsKeyRecord; g: KmsGrantRecord }> {
    const k = await this.resolve(keyId, { aliases: false });
    const g = await this.store.getKmsGrant(k.keyId, grantId);
    if (!g) throw new KmsError('NotFoundException', `Grant ID ${grantId} not found for key ${this.keyArn(k.keyId)}`);
    return { k, g };
  }

  private async doRetireGrant(caller: KmsCaller, input: { grantToken?: unknown; keyId?: unknown; grantId?: unknown; dryRun?: boolean }): Promise<string> {
    let keyId: unknown;
    let grantId: string;
    if (input.grantToken !== undefined && input.grantToken !== null) {
      const t = parseGrantToken(input.grantToken);
      keyId = t.keyId;
      grantId = t.grantId;
    } else {
      if (input.keyId === undefined || input.keyId === null || input.grantId === undefined || input.grantId === null) {
        throw new KmsError('ValidationException', 'Either GrantToken, or both KeyId and GrantId, must be specified.');
      }
      grantId = validateGrantId(input.grantId);
      keyId = input.keyId;
    }
    const { k, g } = await this.namedGrant(keyId, grantId);
    // Who may retire a grant is decided by the grant, not by policies (as AWS): its retiring
    // principal, its grantee when it lists RetireGrant, or the account that issued it.
    const p = caller.principal;
    const allowed =
      (g.retiringPrincipal !== undefined && p.type !== 'Anonymous' && g.retiringPrincipal === p.arn) ||
      (isGrantee(g, p) && g.operations.includes('RetireGrant')) ||
      (p.type === 'Root' && g.issuingAccount === `arn:aws:iam::${p.account}:root`);
    if (!allowed) {
      throw new KmsError('AccessDeniedException', `User: ${p.arn} is not authorized to perform: kms:RetireGrant on resource: ${this.keyArn(k.keyId)} because it is not the grant's retiring principal, its grantee with the RetireGrant operation, or the account that issued it`);
    }
    if (input.dryRun) throw KmsService.dryRun();
    await this.store.deleteKmsGrant(k.keyId, g.grantId);
    return this.keyArn(k.keyId);
  }

  private async doRevokeGrant(caller: KmsCaller, keyId: unknown, grantId: unknown, dryRun?: boolean): Promise<void> {
    const id = validateGrantId(grantId);
    const k = await this.resolve(keyId, { aliases: false });
    await this.authorize(caller, 'kms:RevokeGrant', k);
    const { g } = await this.namedGrant(k.keyId, id);
    if (dryRun) throw KmsService.dryRun();
    await this.store.deleteKmsGrant(k.keyId, g.grantId);
  }
}

function internalError(): KmsError {
  return new KmsError('KMSInternalException', 'The request was rejected because an internal exception occurred.');
}

/**
 * Request parameters as the audit trail keeps them: absent members dropped, strings capped,
 * an encryption context only when it is a map of strings. Never plaintexts or blobs: the
 * operations' wrappers pass only what may be logged.
 */
function prune(params: Record<string, unknown> | null): Record<string, unknown> | null {
  if (!params) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue;
    if (typeof v === 'string') out[k] = v.length > 2048 ? `${v.slice(0, 2048)}...` : v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = Number.isFinite(v as number) || typeof v === 'boolean' ? v : String(v);
    else if (k.toLowerCase().endsWith('encryptioncontext')) {
      if (typeof v === 'object' && !Array.isArray(v) && Object.values(v as object).every((x) => typeof x === 'string')) out[k] = v;
    } else if (k === 'constraints') {
      // A grant's constraints: encryption contexts (not secret), kept only as maps of strings.
      const c = grantConstraintsParam(v);
      if (c) out[k] = c;
    } else if (Array.isArray(v)) out[k] = v.slice(0, 50);
  }
  return Object.keys(out).length ? out : null;
}

/** CreateGrant's Constraints as the audit trail keeps them: {encryptionContextSubset?, encryptionContextEquals?} of string maps. */
function grantConstraintsParam(v: unknown): Record<string, Record<string, string>> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, Record<string, string>> = {};
  for (const [from, to] of [
    ['EncryptionContextSubset', 'encryptionContextSubset'],
    ['EncryptionContextEquals', 'encryptionContextEquals'],
  ] as const) {
    const m = (v as Record<string, unknown>)[from];
    if (typeof m === 'object' && m !== null && !Array.isArray(m) && Object.values(m).every((x) => typeof x === 'string')) out[to] = m as Record<string, string>;
  }
  return Object.keys(out).length ? out : undefined;
}

/** ListGrants order: oldest first, then by grant id (the marker is the last one's key). */
function grantSortKey(g: KmsGrantRecord): string {
  return `${String(g.createdAt).padStart(15, '0')}:${g.grantId}`;
}

/** Zeroes the plaintext of a result that cannot be answered. */
function wipe(result: unknown): void {
  if (Buffer.isBuffer(result)) result.fill(0);
  else if (typeof result === 'object' && result !== null && Buffer.isBuffer((result as { plaintext?: unknown }).plaintext)) (result as { plaintext: Buffer }).plaintext.fill(0);
}

/** kms:RequestAlias: the alias a request named its key by. */
function requestAlias(keyId: unknown): Record<string, ContextValue> {
  if (typeof keyId !== 'string') return {};
  const m = /^(?:arn:aws:kms:[^:]*:\d{12}:)?(alias\/.+)$/.exec(keyId);
  return m ? { 'kms:RequestAlias': m[1] } : {};
}

/** Limit (1..1000, default 100) and an opaque marker: the base64url of the last item's sort key. */
export function paginate<T>(all: T[], sortKey: (t: T) => string, limit?: number, marker?: string): Page<T> {
  const n = limit ?? 100;
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    throw new KmsError('ValidationException', `1 validation error detected: Value '${limit}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000`);
  }
  let start = 0;
  if (marker !== undefined) {
    const after = Buffer.from(marker, 'base64url').toString('utf8');
    if (typeof marker !== 'string' || marker === '' || Buffer.from(after, 'utf8').toString('base64url') !== marker) {
      throw new KmsError('InvalidMarkerException', 'The request was rejected because the marker that specifies where pagination should next begin is not valid.');
    }
    start = all.findIndex((t) => sortKey(t) > after);
    if (start < 0) start = all.length;
  }
  const items = all.slice(start, start + n);
  const more = start + n < all.length;
  return { items, ...(more ? { nextMarker: Buffer.from(sortKey(items[items.length - 1]!), 'utf8').toString('base64url') } : {}) };
}
