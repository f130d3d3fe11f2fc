// Storage ports: what the services need from a blob store and a metadata store. Adapters
// (fs-blob, sqlite-meta; later s3-blob, postgres-meta) implement these and pass the shared
// conformance suite in storage/conformance.
import type { Readable } from 'node:stream';
import type { StageSource } from '../shared/stages.ts';

export type { Stage, StageSource } from '../shared/stages.ts';

export interface BlobRange {
  start: number;
  /** Exclusive end offset. */
  end: number;
}

export interface BlobStore {
  /**
   * Stream `source` into a new blob `id`. Resolves only once the bytes are durable (fsync'd)
   * and readable under `id`; on any failure (including `signal` abort) nothing remains. A
   * write a crash interrupts may leave a blob that nothing refers to (the owner's start-up
   * sweep of unreferenced blobs removes it) or a leftover for sweepIncomplete.
   */
  write(id: string, source: Readable, signal?: AbortSignal): Promise<{ size: number }>;
  /**
   * Optional: write() for a blob that arrives as stages, pieces of page-aligned memory that the
   * store writes where they are (no copy): FsBlobStore's direct writes. Same contract as write();
   * every stage `source.next()` gave is handed back with `source.release()` once the store is
   * done with it, also on failure, and on failure the store calls `source.destroy()`.
   */
  writeStages?(id: string, source: StageSource, signal?: AbortSignal): Promise<{ size: number }>;
  /**
   * A fresh id for a blob about to be written (random, base64url, unguessable). A store may hand
   * out ids it has prepared for (FsBlobStore: files made ahead, off the upload's path); write()
   * accepts any valid id all the same. Until written, the id names no blob (size, reads and
   * list() do not see it); one never written leaves nothing after close() or the start-up sweep.
   */
  newId(): string;
  /**
   * A byte range read into memory in one call (the caller bounds the size: readers go window
   * by window). A range that runs past the end yields only the bytes that exist (fewer than
   * asked; callers detect truncation, e.g. the decryptor authenticates every segment and its
   * length); errors if the blob is missing.
   */
  readBytes(id: string, range: BlobRange): Promise<Buffer>;
  /**
   * readBytes into `target` (which must hold range.end - range.start bytes): resolves with the
   * number of bytes read, fewer when the blob is shorter; errors if it is missing.
   */
  readInto(id: string, range: BlobRange, target: Uint8Array): Promise<number>;
  /** Size in bytes, or undefined if absent. */
  size(id: string): Promise<number | undefined>;
  /** Remove a blob; removing an absent blob is not an error. */
  delete(id: string): Promise<void>;
  /** Every stored blob id (complete blobs only). */
  list(): AsyncIterable<string>;
  /** Remove leftovers of interrupted writes; returns how many were removed. */
  sweepIncomplete(): Promise<number>;
  /** Releases what the store holds open (after the last write has settled). */
  close(): Promise<void>;
}

export type SseMode = 'SSE-S3' | 'SSE-KMS' | 'SSE-C';

/** How an object version's data key is kept. Only sealed material is ever stored. */
export interface SseRecord {
  mode: SseMode;
  /** SSE-S3: the master key version that seals `sealedKey` (0 for other modes). */
  masterKeyVersion: number;
  /**
   * base64 of the sealed data key. SSE-S3: sealed under the master key. SSE-KMS: the KMS
   * ciphertext blob of the data key, or (with a Bucket Key) the data key sealed under the
   * bucket key.
   */
  sealedKey: string;
  /** SSE-KMS: the KMS key's id (UUID). */
  kmsKeyId?: string;
  /** SSE-KMS: the JSON of the encryption context the request added to aws:s3:arn (absent when none). */
  kmsContext?: string;
  /** SSE-KMS with a Bucket Key: base64 of the bucket key's KMS ciphertext blob. */
  bucketKeyBlob?: string;
  /** SSE-C: base64 of the 32-byte salt the customer key's KEK and verifier are derived with. */
  ssecSalt?: string;
  /** SSE-C: base64 of the verifier (never the key, never its MD5). */
  ssecVerifier?: string;
}

/** One encrypted write stream (a PUT body or one multipart part) of an object. */
export interface StreamRecord {
  blobId: string;
  /** Stream index used in key derivation: 0 for a single PUT, the part number for parts. */
  streamIndex: number;
  plainSize: number;
  /** Plaintext MD5 (hex) of this stream, for part ETags. */
  md5: string;
  /**
   * base64 of the stream's 40-byte format header (its salt). Reads use this copy instead of
   * the blob's, so a blob rolled back to an older write of the same stream fails to decrypt.
   */
  header: string;
}

export interface ObjectRecord {
  bucket: string;
  key: string;
  /** Internal version id: every write gets a fresh one; bound into the sealed data key. */
  versionId: string;
  size: number;
  etag: string; // without quotes
  lastModified: number; // ms since epoch
  contentType: string;
  /** Standard stored headers: cache-control, content-disposition, content-encoding, content-language, expires. */
  headers: Record<string, string>;
  /** x-amz-meta-* (names lower-case, without the prefix). */
  userMetadata: Record<string, string>;
  sse: SseRecord;
  streams: StreamRecord[];
  /** Multipart: number of parts (for the md5-N ETag and PartsCount). 0 for single PUTs. */
  partsCount: number;
  /** Checksum the client sent and we verified (algorithm and base64 value). */
  checksum?: { algorithm: string; value: string };
  /**
   * Small objects: the single stream's whole ciphertext (CFR1 blob bytes) kept in the metadata
   * store instead of the blob store; the stream's blobId is then ''. listObjects need not
   * return it.
   */
  inlineData?: Buffer;
  /** Object tags (PutObjectTagging, x-amz-tagging), in the order they were given; absent: none. */
  tags?: ObjectTag[];
}

/** One object tag (docs/s3-compatibility.md: at most 10 per object, keys unique). */
export interface ObjectTag {
  key: string;
  value: string;
}

export interface BucketRecord {
  name: string;
  createdAt: number;
  location: string;
  /** Default encryption set by PutBucketEncryption (absent: the SSE-S3 default). */
  encryption?: BucketEncryption;
}

/** A bucket's default encryption (ServerSideEncryptionConfiguration's one rule). */
export interface BucketEncryption {
  algorithm: 'AES256' | 'aws:kms';
  /** With aws:kms: the key as configured (id, ARN, alias or alias ARN); absent means alias/aws/s3. */
  kmsMasterKeyId?: string;
  bucketKeyEnabled: boolean;
  /** BlockedEncryptionTypes (e.g. ["SSE-C"]); absent when the configuration named none. */
  blockedEncryptionTypes?: string[];
  /**
   * Set by the server, not by PutBucketEncryption: a new bucket's SSE-C block, or what
   * DeleteBucketEncryption leaves of it. The default encryption itself is then SSE-S3, as if
   * never configured.
   */
  implicit?: boolean;
}

export interface UploadRecord {
  uploadId: string;
  bucket: string;
  key: string;
  /** The version id the completed object will have (bound into the data key). */
  versionId: string;
  initiated: number;
  contentType: string;
  headers: Record<string, string>;
  userMetadata: Record<string, string>;
  sse: SseRecord;
  checksumAlgorithm?: string;
  /**
   * The x-amz-server-side-encryption header value CreateMultipartUpload carried (absent when it
   * had none). UploadPart, UploadPartCopy and CompleteMultipartUpload are authorized with it as
   * s3:x-amz-server-side-encryption (docs/policy.md, "Multipart uploads").
   */
  requestedSse?: string;
  /** Likewise the x-amz-server-side-encryption-aws-kms-key-id value (s3:x-amz-server-side-encryption-aws-kms-key-id). */
  requestedKmsKeyId?: string;
  /** Tags from CreateMultipartUpload's x-amz-tagging: the completed object gets them. */
  tags?: ObjectTag[];
}

export interface PartRecord {
  uploadId: string;
  partNumber: number;
  blobId: string;
  plainSize: number;
  md5: string; // hex
  /** base64 of the part stream's format header (see StreamRecord.header). */
  header: string;
  lastModified: number;
}

export interface ListObjectsQuery {
  bucket: string;
  prefix: string;
  /** Keys strictly greater than this are returned. */
  after: string;
  limit: number;
}

export interface MasterKeyRecord {
  version: number;
  /** base64 of the master key sealed under the root key. */
  sealed: string;
  createdAt: number;
  retiredAt?: number;
}

/** The result of replacing an object: blob ids that are no longer referenced. */
export interface Replaced {
  garbageBlobIds: string[];
}

export interface UserRecord {
  name: string;
  /** Stable unique id (AIDA...), as IAM's UserId. */
  userId: string;
  createdAt: number;
}

export interface AccessKeyRecord {
  accessKeyId: string;
  userName: string;
  /** base64 of the secret sealed under the root key. */
  sealedSecret: string;
  status: 'Active' | 'Inactive';
  createdAt: number;
}

export interface NamedPolicy {
  name: string;
  /** The policy document as the user wrote it (JSON text). */
  document: string;
}

export interface MetadataStore extends KmsStore, AuditStore {
  close(): Promise<void>;

  // Identities: IAM-style users, their access keys and inline identity policies.
  createUser(u: UserRecord): Promise<boolean>; // false if the name exists
  getUser(name: string): Promise<UserRecord | undefined>;
  /** By name. */
  listUsers(): Promise<UserRecord[]>;
  /** Deletes the user with its access keys and policies; false if absent. */
  deleteUser(name: string): Promise<boolean>;
  putAccessKey(k: AccessKeyRecord): Promise<void>;
  getAccessKey(accessKeyId: string): Promise<AccessKeyRecord | undefined>;
  listAccessKeys(userName: string): Promise<AccessKeyRecord[]>;
  setAccessKeyStatus(accessKeyId: string, status: 'Active' | 'Inactive'): Promise<boolean>;
  deleteAccessKey(accessKeyId: string): Promise<boolean>;
  /** Attaches (or replaces) an inline policy of a user. */
  putUserPolicy(userName: string, policy: NamedPolicy): Promise<void>;
  /** By policy name. */
  listUserPolicies(userName: string): Promise<NamedPolicy[]>;
  deleteUserPolicy(userName: string, policyName: string): Promise<boolean>;

  // Bucket policies (the JSON text as put; undefined when none)
  getBucketPolicy(bucket: string): Promise<string | undefined>;
  /** Sets or (with undefined) deletes a bucket's policy; false if the bucket is absent. */
  setBucketPolicy(bucket: string, policy: string | undefined): Promise<boolean>;

  // Settings (small values: account id, sealed root credentials, ...)
  getSetting(name: string): Promise<string | undefined>;
  /** Sets a value only if none is set; returns the value now stored. */
  initSetting(name: string, value: string): Promise<string>;
  setSetting(name: string, value: string): Promise<void>;

  // Buckets
  createBucket(b: BucketRecord): Promise<boolean>; // false if it exists
  getBucket(name: string): Promise<BucketRecord | undefined>;
  /** By name. */
  listBuckets(): Promise<BucketRecord[]>;
  /** Deletes an empty bucket (no objects, no uploads). */
  deleteBucket(name: string): Promise<'deleted' | 'not-empty' | 'missing'>;
  /** Sets or (with undefined) removes a bucket's default encryption; false if the bucket is absent. */
  setBucketEncryption(name: string, encryption: BucketEncryption | undefined): Promise<boolean>;

  // Objects
  getObject(bucket: string, key: string): Promise<ObjectRecord | undefined>;
  /**
   * Commits `obj` in one transaction, replacing any current object at its key. Returns the
   * blobs that became garbage (the caller deletes them after the commit); blobs `obj` itself
   * names are never garbage. With `expectedVersionId`: only if the current object is that
   * version (compare and swap; otherwise nothing changes and `conflict` is set).
   */
  putObject(obj: ObjectRecord, expectedVersionId?: string): Promise<Replaced & { conflict?: true }>;
  deleteObject(bucket: string, key: string): Promise<Replaced & { deleted: boolean }>;
  /**
   * Replaces the tags of the object's current version (undefined or empty: removes them); false
   * when there is no such object. `expectedVersionId`, when given, must be the current version.
   */
  setObjectTags(bucket: string, key: string, tags: ObjectTag[] | undefined, expectedVersionId?: string): Promise<boolean>;
  /** Keys in UTF-8 byte order (as S3 lists them, not JavaScript's UTF-16 order). */
  listObjects(q: ListObjectsQuery): Promise<ObjectRecord[]>;

  // Multipart
  createUpload(u: UploadRecord): Promise<void>;
  getUpload(uploadId: string): Promise<UploadRecord | undefined>;
  /** By key (UTF-8 byte order), then initiation time. */
  listUploads(bucket: string): Promise<UploadRecord[]>;
  /** Records a part, replacing an earlier upload of the same number. */
  putPart(p: PartRecord): Promise<Replaced>;
  /** By part number. */
  listParts(uploadId: string): Promise<PartRecord[]>;
  /**
   * Atomically: commit `obj` (whose streams are some of this upload's parts), delete the
   * upload and its remaining parts. Returns garbage (unused parts, the replaced object).
   */
  completeUpload(uploadId: string, obj: ObjectRecord): Promise<Replaced>;
  abortUpload(uploadId: string): Promise<Replaced & { aborted: boolean }>;

  // Blob references (for the orphan sweep)
  isBlobReferenced(blobId: string): Promise<boolean>;

  // SSE-S3 master keys
  /** By version. */
  listMasterKeys(): Promise<MasterKeyRecord[]>;
  addMasterKey(k: MasterKeyRecord): Promise<boolean>; // false if the version exists
  /** Sets retiredAt and wipes the sealed material (sealed becomes ''). */
  retireMasterKey(version: number, at: number): Promise<void>;
  /** Count of object versions and uploads whose data key each master key version seals (SSE-S3 items only). */
  countByMasterKey(): Promise<Map<number, number>>;
  /** Up to `limit` items sealed by a master key version older than `newest`. */
  findSealedBefore(newest: number, limit: number): Promise<RewrapItem[]>;
  /**
   * Replace the sealed key of one item if it is still sealed by `fromVersion` (compare and
   * swap, so a concurrent overwrite is never clobbered). Returns whether it changed.
   */
  rewrap(item: RewrapItem, sse: SseRecord): Promise<boolean>;
}

// ---- KMS (src/kms) ----

export type KmsKeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';

/** A KMS key's metadata (its material is in KmsMaterialRecord, sealed). */
export interface KmsKeyRecord {
  /** UUID. */
  keyId: string;
  createdAt: number;
  description: string;
  keyManager: 'CUSTOMER' | 'AWS';
  state: KmsKeyState;
  /** ms since epoch; with state PendingDeletion. */
  deletionDate?: number;
  pendingWindowInDays?: number;
  /** The material version new encryptions use (the newest). */
  currentMaterial: number;
  rotationEnabled: boolean;
  rotationPeriodInDays?: number;
  /** When automatic rotation next falls due (ms), while rotation is enabled. */
  nextRotation?: number;
}

export interface KmsMaterialRecord {
  keyId: string;
  version: number;
  /** base64 of the 32-byte material sealed under the root key. */
  sealed: string;
  createdAt: number;
  /** How the version came to be: the key's creation, or a rotation. */
  origin: 'CREATE' | 'AUTOMATIC' | 'ON_DEMAND';
}

export interface KmsAliasRecord {
  /** alias/<name> */
  name: string;
  keyId: string;
  createdAt: number;
  updatedAt: number;
}

export interface KmsTag {
  key: string;
  value: string;
}

/** The KMS tables of a metadata store: keys, material versions, aliases, key policies, tags. */
export interface KmsStore {
  /** Creates a key with its first material version and its key policy; false if the id exists. */
  createKmsKey(k: KmsKeyRecord, material: KmsMaterialRecord, policy: string, tags: KmsTag[]): Promise<boolean>;
  getKmsKey(keyId: string): Promise<KmsKeyRecord | undefined>;
  /** By key id. */
  listKmsKeys(): Promise<KmsKeyRecord[]>;
  /** Replaces a key's metadata; false if absent. */
  updateKmsKey(k: KmsKeyRecord): Promise<boolean>;
  /** Deletes a key for good: its metadata, every material version, its aliases, policy, tags and grants. */
  deleteKmsKey(keyId: string): Promise<boolean>;
  /**
   * Adds a material version and makes it the key's current one (compare and swap: only if the
   * key's current version is still `version - 1`). Returns whether it was added.
   */
  addKmsMaterial(m: KmsMaterialRecord, keyUpdate: KmsKeyRecord): Promise<boolean>;
  getKmsMaterial(keyId: string, version: number): Promise<KmsMaterialRecord | undefined>;
  /** By version. */
  listKmsMaterials(keyId: string): Promise<KmsMaterialRecord[]>;
  /** false if the alias name exists. */
  createKmsAlias(a: KmsAliasRecord): Promise<boolean>;
  /** Points an existing alias at another key; false if absent. */
  updateKmsAlias(name: string, keyId: string, at: number): Promise<boolean>;
  deleteKmsAlias(name: string): Promise<boolean>;
  getKmsAlias(name: string): Promise<KmsAliasRecord | undefined>;
  /** By name. */
  listKmsAliases(): Promise<KmsAliasRecord[]>;
  getKmsKeyPolicy(keyId: string): Promise<string | undefined>;
  putKmsKeyPolicy(keyId: string, policy: string): Promise<void>;
  /** By tag key. */
  listKmsTags(keyId: string): Promise<KmsTag[]>;
  /** Adds or replaces tags. */
  putKmsTags(keyId: string, tags: KmsTag[]): Promise<void>;
  deleteKmsTags(keyId: string, tagKeys: string[]): Promise<void>;
  /** Adds a grant; false if its key does not exist or the grant id is taken. */
  createKmsGrant(g: KmsGrantRecord): Promise<boolean>;
  getKmsGrant(keyId: string, grantId: string): Promise<KmsGrantRecord | undefined>;
  /** A key's grants, oldest first (by creation time, then grant id). */
  listKmsGrants(keyId: string): Promise<KmsGrantRecord[]>;
  /** The grants of every key naming this retiring principal, oldest first. */
  listKmsGrantsByRetiringPrincipal(principal: string): Promise<KmsGrantRecord[]>;
  /** Removes a grant (retired or revoked); false if absent. */
  deleteKmsGrant(keyId: string, grantId: string): Promise<boolean>;
}

/** The encryption-context constraints of a grant (at most one of them is set). */
export interface KmsGrantConstraints {
  /** Every pair must be in the request's encryption context. */
  encryptionContextSubset?: Record<string, string>;
  /** The request's encryption context must be exactly this. */
  encryptionContextEquals?: Record<string, string>;
}

/** A KMS grant: its grantee may call the listed operations on the key. */
export interface KmsGrantRecord {
  /** 64 hex characters. */
  grantId: string;
  keyId: string;
  name?: string;
  createdAt: number;
  /** An ARN (arn:aws:iam::<account>:user/<name>, ...:root). */
  granteePrincipal: string;
  retiringPrincipal?: string;
  /** arn:aws:iam::<account>:root of the account that created it. */
  issuingAccount: string;
  /** Grant operations (Encrypt, Decrypt, GenerateDataKey, CreateGrant, RetireGrant, DescribeKey, ...). */
  operations: string[];
  constraints?: KmsGrantConstraints;
}

export interface RewrapItem {
  kind: 'object' | 'upload';
  bucket: string;
  key: string;
  versionId: string;
  uploadId?: string;
  sse: SseRecord;
}

/** The upload vanished (completed or aborted concurrently) or a part it names is gone. */
export class UploadGoneError extends Error {
  constructor() {
    super('upload no longer exists');
    this.name = 'UploadGoneError';
  }
}

// ---- KMS audit trail (src/kms/audit.ts, docs/kms.md "Audit trail") ----

/** An event to append: its canonical JSON and the fields it is filtered by. */
export interface AuditAppend {
  /** The event's canonical JSON (shared/audit-chain.ts): the bytes the chain hashes. */
  event: string;
  /** ms since epoch (the event's eventTime). */
  time: number;
  /** eventName: the KMS operation (GenerateDataKey, ...). */
  eventName: string;
  /** The caller's ARN (userIdentity.arn), or the service (kms.amazonaws.com) for service events. */
  principalArn: string;
  /** errorCode, when the call failed. */
  errorCode?: string;
  /** Ids (UUIDs) of the KMS keys the event names (its resources). */
  keyIds: string[];
}

/** A stored event: what was appended, its sequence number (1, 2, ...) and its chain hash. */
export interface AuditRecord extends AuditAppend {
  seq: number;
  /** hex SHA-256(previous record's hash || event), shared/audit-chain.ts. */
  hash: string;
}

export interface AuditQuery {
  /** Only events naming this key id (UUID). */
  keyId?: string;
  principalArn?: string;
  eventName?: string;
  errorCode?: string;
  /** time >= since (ms). */
  since?: number;
  /** time < until (ms). */
  until?: number;
  /** seq > afterSeq. */
  afterSeq?: number;
  /** At most this many (default 1000). */
  limit?: number;
}

/**
 * The KMS audit trail: append-only and hash-chained. `appendAudit` reads the chain head and
 * writes the events in one write transaction, so concurrent appenders (in one process or
 * several sharing the store) never fork the chain; it resolves once the events are durable.
 */
export interface AuditStore {
  /** Appends `events` in order after the current head; returns their records. */
  appendAudit(events: AuditAppend[]): Promise<AuditRecord[]>;
  /** Matching events by sequence number. */
  listAudit(q: AuditQuery): Promise<AuditRecord[]>;
  /** The newest record's sequence number and hash, or undefined for an empty trail. */
  auditHead(): Promise<{ seq: number; hash: string } | undefined>;
}
