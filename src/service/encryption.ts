// Data keys for every server-side encryption mode S3 offers, in one place: SSE-S3 (sealed under
// the master key), SSE-C (sealed under a key-encryption key derived from the customer's key and
// a salt, with a verifier for later requests; crypto/customer-key.ts), SSE-KMS (a KMS data key, GenerateDataKey on write and Decrypt on read, with
// the object ARN as encryption context, called with the requesting principal's identity), and
// SSE-KMS with a Bucket Key (a bucket-level KMS data key, held for a limited time, seals the
// object's data key). KMS errors become the S3 errors AWS answers. docs/key-hierarchy.md.
import { createHash } from 'node:crypto';
import { customerKeyMatches, deriveCustomerKeys, newCustomerKeySalt } from '../crypto/customer-key.ts';
import { sealDataKey, unsealDataKey, generateDataKey } from '../crypto/hierarchy.ts';
import { SecretKey } from '../crypto/keys.ts';
import type { EncryptionContext } from '../kms/blob.ts';
import { isKmsError } from '../kms/errors.ts';
import type { KmsCaller, KmsService } from '../kms/service.ts';
import { S3Error } from '../shared/errors.ts';
import type { SseRecord } from '../storage/ports.ts';
import type { MasterKeyService } from './master-keys.ts';
import { bucketArn, objectArn } from './policies.ts';

/** What a write asks for, after request headers and the bucket default are combined. */
export type EncryptionRequest =
  | { mode: 'SSE-S3' }
  | { mode: 'SSE-C'; key: SecretKey; keyMd5: string }
  | {
      mode: 'SSE-KMS';
      /** As the request (or bucket default) named it: id, ARN, alias, alias ARN; absent = alias/aws/s3. */
      keyId?: string;
      /** The context the request added (x-amz-server-side-encryption-context). */
      context?: EncryptionContext;
      bucketKey: boolean;
    };

export interface ObjectBinding {
  bucket: string;
  key: string;
  versionId: string;
}

/** The key facts a response reports: x-amz-server-side-encryption and friends. */
export interface SseDescription {
  /** x-amz-server-side-encryption (absent for SSE-C). */
  algorithm?: 'AES256' | 'aws:kms';
  /** SSE-C: the customer key's MD5 (base64) as the request gave it; responses echo it with the algorithm. */
  customerKeyMd5?: string;
  /** SSE-KMS: the KMS key's ARN. */
  kmsKeyArn?: string;
  bucketKeyEnabled?: boolean;
  /** SSE-KMS: the full encryption context (aws:s3:arn and the request's), for write responses. */
  context?: EncryptionContext;
}

export const MANAGED_KEY = 'alias/aws/s3';
export const BUCKET_KEY_TTL_MS = 10 * 60_000;
const BUCKET_KEY_CACHE_MAX = 4096;

/** The S3 error AWS answers when the KMS refuses an S3 request's key operation. */
export function kmsToS3Error(e: unknown): unknown {
  if (!isKmsError(e)) return e;
  switch (e.type) {
    case 'NotFoundException':
    case 'InvalidArnException':
      // S3 quotes a key id that is not one: "Invalid keyId 'fake-key-id'".
      return new S3Error('KMS.NotFoundException', e.message.replace(/^Invalid keyId (?!')(.*)$/s, "Invalid keyId '$1'"));
    case 'DisabledException':
      return new S3Error('KMS.DisabledException', e.message);
    case 'KMSInvalidStateException':
      return new S3Error('KMS.KMSInvalidStateException', e.message);
    case 'AccessDeniedException':
      return new S3Error('AccessDenied', e.message);
    case 'ThrottlingException':
      return new S3Error('SlowDown', 'Please reduce your request rate for operations involving AWS KMS.');
    case 'InvalidCiphertextException':
    case 'IncorrectKeyException':
      return new S3Error('KMS.InvalidCiphertextException', 'The object\'s encrypted data key could not be decrypted by the KMS.');
    case 'ValidationException':
      return new S3Error('InvalidArgument', e.message);
    default:
      return new S3Error('InternalError');
  }
}

interface BucketKey {
  key: SecretKey;
  /** Its KMS ciphertext blob (stored with each object it seals). */
  blob: Buffer;
  kmsKeyId: string;
}

interface CachedKey {
  /** Resolves to the bucket key; entries are shared by concurrent requests (single flight). */
  key: Promise<BucketKey>;
  expires: number;
}

export interface EncryptionDeps {
  masterKeys: MasterKeyService;
  kms?: KmsService;
  now?: () => number;
  bucketKeyTtlMs?: number;
}

export class EncryptionService {
  private readonly now: () => number;
  private readonly ttl: number;
  /** Bucket keys by principal and bucket/key/context (writes) or by ciphertext blob (reads). */
  private readonly bucketKeys = new Map<string, CachedKey>();

  constructor(private readonly deps: EncryptionDeps) {
    this.now = deps.now ?? Date.now;
    this.ttl = deps.bucketKeyTtlMs ?? BUCKET_KEY_TTL_MS;
  }

  private get kms(): KmsService {
    if (!this.deps.kms) throw new S3Error('NotImplemented', 'Server-side encryption with AWS KMS keys (SSE-KMS) is not available on this server.');
    return this.deps.kms;
  }

  /** The KMS key's ARN for a key id (UUID). */
  keyArn(kmsKeyId: string): string {
    return this.kms.keyArn(kmsKeyId);
  }

  /**
   * Describes a stored object's encryption for response headers (never the context). SSE-C:
   * `customerKeyMd5` is the request's (the key is never kept, nor its MD5).
   */
  describe(sse: SseRecord, customerKeyMd5?: string): SseDescription {
    if (sse.mode === 'SSE-C') return customerKeyMd5 ? { customerKeyMd5 } : {};
    if (sse.mode === 'SSE-KMS' && sse.kmsKeyId) {
      return { algorithm: 'aws:kms', kmsKeyArn: this.keyArn(sse.kmsKeyId), ...(sse.bucketKeyBlob ? { bucketKeyEnabled: true } : {}) };
    }
    return { algorithm: 'AES256' };
  }

  /** A fresh data key for a new object version (or upload) and how it is kept. */
  async newDataKey(binding: ObjectBinding, req: EncryptionRequest, caller?: KmsCaller): Promise<{ dataKey: SecretKey; sse: SseRecord; description: SseDescription }> {
    if (req.mode === 'SSE-S3') {
      const { dataKey, sse } = this.deps.masterKeys.newDataKey(binding);
      return { dataKey, sse, description: { algorithm: 'AES256' } };
    }
    if (req.mode === 'SSE-C') {
      const dataKey = generateDataKey();
      return { dataKey, sse: this.sealForCustomer(dataKey, binding, req.key), description: { customerKeyMd5: req.keyMd5 } };
    }
    const who = requireCaller(caller);
    if (req.bucketKey) {
      const dataKey = generateDataKey();
      return { dataKey, ...(await this.sealUnderBucketKey(dataKey, binding, req, who)) };
    }
    const userContext = req.context ?? {};
    const context = { ...userContext, 'aws:s3:arn': objectArn(binding.bucket, binding.key) };
    let generated: { blob: Buffer; plaintext?: Buffer; keyArn: string };
    try {
      generated = await this.kms.generateDataKey(who, { keyId: req.keyId ?? MANAGED_KEY, keySpec: 'AES_256', context, withPlaintext: true });
    } catch (e) {
      throw kmsToS3Error(e);
    }
    return {
      dataKey: takeKey(generated.plaintext!),
      sse: { mode: 'SSE-KMS', masterKeyVersion: 0, sealedKey: generated.blob.toString('base64'), kmsKeyId: keyIdOf(generated.keyArn), ...contextField(userContext) },
      description: { algorithm: 'aws:kms', kmsKeyArn: generated.keyArn, context },
    };
  }

  /** SSE-KMS with a Bucket Key: `dataKey` sealed under the (cached) bucket key for `req`. */
  private async sealUnderBucketKey(
    dataKey: SecretKey,
    binding: ObjectBinding,
    req: Extract<EncryptionRequest, { mode: 'SSE-KMS' }>,
    who: KmsCaller,
  ): Promise<{ sse: SseRecord; description: SseDescription }> {
    const userContext = req.context ?? {};
    const context = { ...userContext, 'aws:s3:arn': bucketArn(binding.bucket) };
    const bk = await this.bucketKeyForWrite(who, binding.bucket, req.keyId ?? MANAGED_KEY, context);
    const sealed = sealDataKey(bk.key, dataKey, { ...binding, mode: 'SSE-KMS' });
    return {
      sse: { mode: 'SSE-KMS', masterKeyVersion: 0, sealedKey: sealed.toString('base64'), kmsKeyId: bk.kmsKeyId, bucketKeyBlob: bk.blob.toString('base64'), ...contextField(userContext) },
      description: { algorithm: 'aws:kms', kmsKeyArn: this.keyArn(bk.kmsKeyId), bucketKeyEnabled: true, context },
    };
  }

  /**
   * Re-keys: seals an existing data key for `req` (bound to `binding`), so an object changes
   * encryption without its data being rewritten. Undefined for SSE-KMS without a Bucket Key
   * (its data key must come from GenerateDataKey, and S3 writes need no more permission than
   * that): the caller copies the data instead.
   */
  async reseal(dataKey: SecretKey, binding: ObjectBinding, req: EncryptionRequest, caller?: KmsCaller): Promise<{ sse: SseRecord; description: SseDescription } | undefined> {
    if (req.mode === 'SSE-S3') return { sse: this.deps.masterKeys.sealExisting(dataKey, binding), description: { algorithm: 'AES256' } };
    if (req.mode === 'SSE-C') return { sse: this.sealForCustomer(dataKey, binding, req.key), description: { customerKeyMd5: req.keyMd5 } };
    if (!req.bucketKey) return undefined;
    return this.sealUnderBucketKey(dataKey, binding, req, requireCaller(caller));
  }

  /** Seals `dataKey` for an SSE-C object under a KEK derived from the customer key and a fresh salt. */
  sealForCustomer(dataKey: SecretKey, binding: ObjectBinding, customerKey: SecretKey): SseRecord {
    const salt = newCustomerKeySalt();
    const { kek, verifier } = deriveCustomerKeys(customerKey, salt);
    try {
      const sealed = sealDataKey(kek, dataKey, { ...binding, mode: 'SSE-C' });
      return { mode: 'SSE-C', masterKeyVersion: 0, sealedKey: sealed.toString('base64'), ssecSalt: salt.toString('base64'), ssecVerifier: verifier.toString('base64') };
    } finally {
      kek.zero();
    }
  }

  /**
   * Checks a customer key against an SSE-C object's verifier: 403 AccessDenied when it is not
   * the object's key. Returns the KEK (the caller zeroes it).
   */
  verifyCustomerKey(sse: SseRecord, customerKey: SecretKey | undefined): SecretKey {
    if (!customerKey) {
      throw new S3Error('InvalidRequest', 'The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.');
    }
    const { matches, kek } = customerKeyMatches(customerKey, Buffer.from(sse.ssecSalt ?? '', 'base64'), Buffer.from(sse.ssecVerifier ?? '', 'base64'));
    if (!matches || !kek) throw new S3Error('AccessDenied', 'Requests specifying Server Side Encryption with Customer provided keys must provide the correct secret key.');
    return kek;
  }

  /**
   * Opens a stored data key: SSE-S3 locally, SSE-C with the customer's key, SSE-KMS through
   * the KMS as `caller`.
   */
  async openDataKey(sse: SseRecord, binding: ObjectBinding, caller?: KmsCaller, customerKey?: SecretKey): Promise<SecretKey> {
    if (sse.mode === 'SSE-S3') return this.deps.masterKeys.openDataKey(sse, binding);
    if (sse.mode === 'SSE-C') {
      const kek = this.verifyCustomerKey(sse, customerKey);
      try {
        return unsealDataKey(kek, Buffer.from(sse.sealedKey, 'base64'), { ...binding, mode: 'SSE-C' });
      } finally {
        kek.zero();
      }
    }
    if (sse.mode !== 'SSE-KMS' || !sse.kmsKeyId) throw new Error(`cannot open a data key of mode ${sse.mode}`);
    const who = requireCaller(caller);
    const userContext = sse.kmsContext ? (JSON.parse(sse.kmsContext) as EncryptionContext) : {};
    if (sse.bucketKeyBlob) {
      const context = { ...userContext, 'aws:s3:arn': bucketArn(binding.bucket) };
      const bk = await this.bucketKeyForRead(who, sse.kmsKeyId, Buffer.from(sse.bucketKeyBlob, 'base64'), context);
      return unsealDataKey(bk, Buffer.from(sse.sealedKey, 'base64'), { ...binding, mode: 'SSE-KMS' });
    }
    const context = { ...userContext, 'aws:s3:arn': objectArn(binding.bucket, binding.key) };
    try {
      return takeKey((await this.kms.decrypt(who, Buffer.from(sse.sealedKey, 'base64'), context)).plaintext);
    } catch (e) {
      throw await this.readError(e, sse.kmsKeyId);
    }
  }

  /** A read whose key is gone for good (deleted: crypto-shredded) says so. */
  private async readError(e: unknown, kmsKeyId: string): Promise<unknown> {
    if (isKmsError(e) && (e.type === 'InvalidCiphertextException' || e.type === 'NotFoundException') && (await this.kms.keyState(kmsKeyId)) === undefined) {
      return new S3Error('KMS.NotFoundException', `Key '${this.keyArn(kmsKeyId)}' does not exist`);
    }
    return kmsToS3Error(e);
  }

  // ---- Bucket Keys ----

  private cacheGet(id: string): CachedKey | undefined {
    const hit = this.bucketKeys.get(id);
    if (!hit) return undefined;
    if (hit.expires <= this.now()) {
      this.evict(id, hit);
      return undefined;
    }
    return hit;
  }

  private cachePut(id: string, entry: CachedKey): void {
    if (this.bucketKeys.size >= BUCKET_KEY_CACHE_MAX) {
      const oldest = this.bucketKeys.keys().next().value as string;
      this.evict(oldest, this.bucketKeys.get(oldest)!);
    }
    this.bucketKeys.set(id, entry);
    // A failed KMS call is not cached.
    entry.key.catch(() => {
      if (this.bucketKeys.get(id) === entry) this.bucketKeys.delete(id);
    });
  }

  private evict(id: string, entry: CachedKey): void {
    if (this.bucketKeys.get(id) === entry) this.bucketKeys.delete(id);
    // Zeroed a little later: a request that already holds the key finishes with it first.
    entry.key.then((k) => setTimeout(() => k.key.zero(), 1000).unref(), () => undefined);
  }

  /** A cached bucket key is used only while its KMS key is still Enabled. */
  private async usable(id: string, entry: CachedKey): Promise<BucketKey | undefined> {
    let k: BucketKey;
    try {
      k = await entry.key;
    } catch {
      return undefined;
    }
    if ((await this.kms.keyState(k.kmsKeyId)) === 'Enabled') return k;
    this.evict(id, entry);
    return undefined;
  }

  /**
   * A bucket key from the cache, or from `fetch` (one KMS call shared by concurrent requests);
   * a hit is used only while its KMS key is Enabled. KMS errors go through `toError`.
   */
  private async cachedBucketKey(id: string, fetch: () => Promise<BucketKey>, toError: (e: unknown) => Promise<unknown>): Promise<BucketKey> {
    const hit = this.cacheGet(id);
    if (hit) {
      const k = await this.usable(id, hit);
      if (k) return k;
    }
    const entry: CachedKey = { expires: this.now() + this.ttl, key: fetch() };
    this.cachePut(id, entry);
    try {
      return await entry.key;
    } catch (e) {
      throw await toError(e);
    }
  }

  private bucketKeyForWrite(caller: KmsCaller, bucket: string, keyId: string, context: EncryptionContext): Promise<BucketKey> {
    return this.cachedBucketKey(
      ['w', callerId(caller), bucket, keyId, JSON.stringify(context)].join('\n'),
      async () => {
        const g = await this.kms.generateDataKey(caller, { keyId, keySpec: 'AES_256', context, withPlaintext: true });
        return { key: takeKey(g.plaintext!), blob: g.blob, kmsKeyId: keyIdOf(g.keyArn) };
      },
      async (e) => kmsToS3Error(e),
    );
  }

  private async bucketKeyForRead(caller: KmsCaller, kmsKeyId: string, blob: Buffer, context: EncryptionContext): Promise<SecretKey> {
    const id = ['r', callerId(caller), createHash('sha256').update(blob).update(JSON.stringify(context)).digest('base64')].join('\n');
    const bk = await this.cachedBucketKey(
      id,
      async () => ({ key: takeKey((await this.kms.decrypt(caller, blob, context)).plaintext), blob, kmsKeyId }),
      (e) => this.readError(e, kmsKeyId),
    );
    return bk.key;
  }

  /** Forgets every cached bucket key (tests, and an operator's "drop caches"). */
  clearBucketKeys(): void {
    for (const [id, entry] of [...this.bucketKeys]) this.evict(id, entry);
  }
}

/**
 * What a cached Bucket Key is keyed by besides the bucket and key: the principal and every
 * request fact the KMS authorized the call with (kms:ViaService, aws:SourceIp,
 * aws:SecureTransport ...), so a key policy condition on any of them holds for every use, not
 * only for the call that filled the cache.
 */
function callerId(caller: KmsCaller): string {
  const keys = caller.conditionKeys ?? {};
  return JSON.stringify([caller.principal.arn, caller.viaService ?? '', Object.keys(keys).sort().map((k) => [k, keys[k]])]);
}

/** A KMS plaintext as a SecretKey; the plaintext buffer is wiped. */
function takeKey(plaintext: Buffer): SecretKey {
  try {
    return SecretKey.from(plaintext);
  } finally {
    plaintext.fill(0);
  }
}

/** The key id (UUID) of a KMS key ARN. */
function keyIdOf(keyArn: string): string {
  return keyArn.slice(keyArn.lastIndexOf('/') + 1);
}

/** The request's own encryption context, as stored with the object (absent when empty). */
function contextField(userContext: EncryptionContext): { kmsContext?: string } {
  return Object.keys(userContext).length ? { kmsContext: JSON.stringify(userContext) } : {};
}

function requireCaller(caller: KmsCaller | undefined): KmsCaller {
  if (!caller || caller.principal.type === 'Anonymous') {
    throw new S3Error('InvalidArgument', 'Requests specifying Server Side Encryption with AWS KMS managed keys require AWS Signature Version 4.', { ArgumentName: 'Authorization' });
  }
  return caller;
}
