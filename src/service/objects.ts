// Object use cases: put, get, head, delete, copy, and multipart uploads. Every write follows
// the write protocol: stream the ciphertext to a fresh blob (fsync), commit the metadata in
// one transaction, then delete what it replaced. Every object is encrypted (SSE-S3).
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createEncryptStream, encryptBuffer, encryptedSize, HEADER_SIZE } from '../crypto/format.ts';
import { systemRng, type SecretKey } from '../crypto/keys.ts';
import { S3Error } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import {
  UploadGoneError,
  type BlobStore,
  type BucketEncryption,
  type BucketRecord,
  type MetadataStore,
  type ObjectRecord,
  type ObjectTag,
  type PartRecord,
  type StreamRecord,
  type UploadRecord,
} from '../storage/ports.ts';
import type { KmsCaller } from '../kms/service.ts';
import type { EncryptionRequest, EncryptionService, SseDescription } from './encryption.ts';
import { decryptInline, Meter, OFFLOAD_MIN_BYTES, plaintextWindows, readKnownLength, readPlaintext, type PlainRange, type PlainWindows } from './streams.ts';
import { SealedStages } from '../crypto/seal-offload.ts';

export const MAX_OBJECT_SIZE = 5 * 1024 ** 3;
export const MIN_PART_SIZE = 5 * 1024 ** 2;
export const MAX_PARTS = 10_000;
/**
 * Objects up to this size keep their ciphertext in the metadata store: one transaction per
 * PUT instead of a file write, fsync, rename and directory fsync, and no file open per GET.
 */
export const INLINE_MAX_BYTES = 32 * 1024;

/** Reads a stream of at most `max` bytes into memory (small objects only). */
async function collect(r: Readable, max: number, signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of r) {
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    n += (c as Buffer).length;
    if (n > max) throw new S3Error('IncompleteBody');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export function newId(bytes = 24): string {
  return systemRng.randomBytes(bytes).toString('base64url');
}

/**
 * An upload id: URL-safe, never starting with '-' or '_' (command lines such as the AWS CLI's
 * `--upload-id -abc` would read it as an option).
 */
export function newUploadId(): string {
  for (;;) {
    const id = newId(36);
    if (/^[A-Za-z0-9]/.test(id)) return id;
  }
}

export interface WriteAttributes {
  contentType: string;
  headers: Record<string, string>;
  userMetadata: Record<string, string>;
  /** Object tags (checked by the caller); absent or empty: none. */
  tags?: ObjectTag[];
}

/**
 * The encryption a write's headers asked for: absent means the bucket's default. For SSE-KMS,
 * `bucketKey` absent means the bucket's Bucket Key setting.
 */
export type RequestedEncryption =
  | { mode: 'SSE-S3' }
  /** No SSE header, but x-amz-server-side-encryption-bucket-key-enabled: the bucket default, with that Bucket Key setting. */
  | { mode: 'bucket-default'; bucketKey: boolean }
  | { mode: 'SSE-C'; key: SecretKey; keyMd5: string }
  | { mode: 'SSE-KMS'; keyId?: string; context?: Record<string, string>; bucketKey?: boolean };

/** Who writes or reads: S3 uses the KMS as this caller (its principal, its request's keys). */
export interface Requester {
  kms?: KmsCaller;
  /** The requesting principal's ARN (for messages), when signed. */
  principalArn?: string;
}

/** A new bucket's encryption configuration: SSE-C blocked, unless the server allows it (as AWS since April 2026). */
export function newBucketEncryption(allowSseC: boolean): BucketEncryption | undefined {
  return allowSseC ? undefined : { algorithm: 'AES256', bucketKeyEnabled: false, blockedEncryptionTypes: ['SSE-C'], implicit: true };
}

/** A bucket whose default encryption was set by PutBucketEncryption (not just the server's SSE-C block). */
export function hasConfiguredEncryption(bucket: BucketRecord): boolean {
  return bucket.encryption !== undefined && !bucket.encryption.implicit;
}

/** With BlockedEncryptionTypes SSE-C, AWS's 403 for an SSE-C write. */
export function checkSseCAllowed(bucket: BucketRecord, key: string, requester: Requester | undefined): void {
  if (!bucket.encryption?.blockedEncryptionTypes?.includes('SSE-C')) return;
  throw new S3Error(
    'AccessDenied',
    `User: ${requester?.principalArn ?? 'anonymous'} is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::${bucket.name}/${key}" because this bucket has blocked upload requests that specify Server Side Encryption with Customer provided keys (SSE-C). Please specify a different server-side encryption type`,
  );
}

/** The encryption a write gets: its request's, else the bucket default (docs/s3-compatibility.md). */
export function effectiveEncryption(bucket: BucketRecord, requested: RequestedEncryption | undefined): EncryptionRequest {
  const def = bucket.encryption;
  if (!requested || requested.mode === 'bucket-default') {
    const bucketKey = requested?.mode === 'bucket-default' ? requested.bucketKey : def?.bucketKeyEnabled;
    if (def?.algorithm === 'aws:kms') return { mode: 'SSE-KMS', ...(def.kmsMasterKeyId ? { keyId: def.kmsMasterKeyId } : {}), bucketKey: bucketKey ?? false };
    return { mode: 'SSE-S3' };
  }
  if (requested.mode === 'SSE-S3' || requested.mode === 'SSE-C') return requested;
  return {
    mode: 'SSE-KMS',
    ...(requested.keyId !== undefined ? { keyId: requested.keyId } : {}),
    ...(requested.context ? { context: requested.context } : {}),
    bucketKey: requested.bucketKey ?? def?.bucketKeyEnabled ?? false,
  };
}

export interface PutInput extends WriteAttributes {
  bucket: string;
  key: string;
  body: Readable;
  /** Expected plaintext length (Content-Length or x-amz-decoded-content-length). */
  length: number;
  /** base64 Content-MD5, already syntax-checked. */
  contentMd5?: Buffer;
  signal?: AbortSignal;
  /** Called once the body is fully read, before commit: last chance to refuse (e.g. checksums). */
  beforeCommit?: () => void;
  checksum?: () => { algorithm: string; value: string } | undefined;
  encryption?: RequestedEncryption;
  requester?: Requester;
}

export interface CopyInput extends WriteAttributes {
  source: ObjectRecord;
  bucket: string;
  key: string;
  signal?: AbortSignal;
  encryption?: RequestedEncryption;
  requester?: Requester;
  /** SSE-C sources: the customer key that opens the source. */
  sourceCustomerKey?: SecretKey;
}

export interface WriteResult {
  object: ObjectRecord;
  /** The encryption it got, for the response headers (with the full KMS context). */
  encryption: SseDescription;
}

/** An announced upload (PutObject, UploadPart) larger than S3 allows is refused before its body. */
export function checkUploadSize(length: number): void {
  if (length > MAX_OBJECT_SIZE) throw new S3Error('EntityTooLarge', undefined, { ProposedSize: length, MaxSizeAllowed: MAX_OBJECT_SIZE });
}

/** CopyObject and UploadPartCopy copy at most 5 GiB per request, as S3. */
export function checkCopySize(length: number): void {
  if (length > MAX_OBJECT_SIZE) {
    throw new S3Error('InvalidRequest', `The specified copy source is larger than the maximum allowable size for a copy source: ${MAX_OBJECT_SIZE}`);
  }
}

export class ObjectService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly keys: EncryptionService,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async requireBucket(bucket: string): Promise<BucketRecord> {
    const b = await this.meta.getBucket(bucket);
    if (!b) throw new S3Error('NoSuchBucket', undefined, { BucketName: bucket });
    return b;
  }

  /** Describes an object's (or upload's) encryption for response headers. */
  describeEncryption(sse: ObjectRecord['sse'], customerKeyMd5?: string): SseDescription {
    return this.keys.describe(sse, customerKeyMd5);
  }

  /** HEAD of an SSE-C object: the key must be the object's (403 otherwise); nothing is decrypted. */
  checkCustomerKey(obj: Pick<ObjectRecord, 'sse'>, customerKey: SecretKey | undefined): void {
    if (obj.sse.mode !== 'SSE-C') return;
    this.keys.verifyCustomerKey(obj.sse, customerKey).zero();
  }

  /** The first SSE-C write into a bucket is a security event (the ransomware pattern that made AWS block SSE-C). */
  private async noteSseCWrite(bucket: string, key: string, requester: Requester | undefined): Promise<void> {
    const marker = `sse-c-first-write:${bucket}`;
    const value = JSON.stringify({ at: new Date(this.now()).toISOString(), key, principal: requester?.principalArn ?? 'anonymous' });
    let first: boolean;
    try {
      first = (await this.meta.initSetting(marker, value)) === value;
    } catch (err) {
      // Best effort: the write it reports is already committed.
      this.log.warn({ err, bucket }, 'could not record the first SSE-C write into this bucket');
      return;
    }
    if (first) {
      this.log.warn(
        { securityEvent: 'first-sse-c-write', bucket, key, principal: requester?.principalArn },
        'first SSE-C write into this bucket: data under customer-provided keys is unreadable without them (watch for ransomware-style re-encryption)',
      );
    }
  }

  async getObject(bucket: string, key: string): Promise<ObjectRecord> {
    const obj = await this.meta.getObject(bucket, key);
    if (!obj) {
      await this.requireBucket(bucket);
      throw new S3Error('NoSuchKey', undefined, { Key: key });
    }
    return obj;
  }

  /** Encrypts `source` into a new blob; returns the stream record. Removes the blob on failure. */
  private async writeStream(
    dataKey: SecretKey,
    streamIndex: number,
    source: Readable,
    limit: number,
    expectedLength: number,
    signal?: AbortSignal,
    inline = false,
    opaque = false,
  ): Promise<{ record: StreamRecord; md5: Buffer; inlineData?: Buffer }> {
    const blobId = inline ? '' : this.blobs.newId();
    const meter = new Meter(limit, expectedLength);
    // The length is announced (Content-Length, x-amz-decoded-content-length or the copy source's
    // size): segments are sealed as their bytes arrive. A body of another length fails the write.
    const known = Number.isSafeInteger(expectedLength) && expectedLength >= 0 && expectedLength <= limit;
    // Large uploads into a store that takes stages are sealed in the crypto worker, in the
    // memory the blob is written from (crypto/seal-offload.ts).
    const sealed = !inline && known && expectedLength >= OFFLOAD_MIN_BYTES && this.blobs.writeStages ? SealedStages.open(dataKey, source, { streamIndex, plainSize: expectedLength, tap: meter }) : undefined;
    let header: Buffer;
    let inlineData: Buffer | undefined;
    try {
      if (sealed) {
        header = sealed.header;
        await this.blobs.writeStages!(blobId, sealed, signal);
      } else if (inline && known) {
        // A small body of announced length: read whole, then hashed and sealed in one go (the
        // same blob the encrypt stream makes).
        const plain = await readKnownLength(source, expectedLength);
        if (signal?.aborted) throw signal.reason ?? new Error('aborted');
        await meter.update(plain);
        meter.end();
        inlineData = encryptBuffer(dataKey, plain, { streamIndex });
        header = Buffer.from(inlineData.subarray(0, HEADER_SIZE));
      } else {
        const enc = createEncryptStream(dataKey, { streamIndex, tap: meter, ...(known ? { plainSize: expectedLength } : {}) });
        header = enc.header;
        source.on('error', (e) => enc.destroy(e));
        // A source destroyed without an error before its end (a request the body watchdog closed)
        // emits neither 'end' nor 'error': pipe() would leave the write waiting forever.
        source.on('close', () => {
          if (!source.readableEnded) enc.destroy(new S3Error('IncompleteBody'));
        });
        const encrypted = source.pipe(enc);
        if (inline) inlineData = await collect(encrypted, encryptedSize(INLINE_MAX_BYTES), signal);
        else await this.blobs.write(blobId, encrypted, signal);
      }
    } catch (e) {
      meter.discard();
      // More or fewer bytes than announced.
      if (e instanceof RangeError && known) throw new S3Error('IncompleteBody');
      throw e;
    }
    let md5: Buffer;
    try {
      md5 = await meter.md5();
    } catch (e) {
      await this.discard([blobId]);
      throw e;
    }
    return {
      // SSE-KMS and SSE-C keep no plaintext MD5 (it would let anyone holding a guess confirm it,
      // from an ETag or from the metadata store): their part ETags are random instead.
      record: { blobId, streamIndex, plainSize: meter.bytes, md5: opaque ? randomBytes(16).toString('hex') : md5.toString('hex'), header: header.toString('base64') },
      md5,
      ...(inlineData ? { inlineData } : {}),
    };
  }

  private async discard(blobIds: string[]): Promise<void> {
    for (const id of blobIds) {
      if (id === '') continue; // inline data has no blob
      try {
        await this.blobs.delete(id);
      } catch (e) {
        this.log.warn({ err: e, blobId: id }, 'could not delete a replaced blob; the start-up sweep will');
      }
    }
  }

  /** Replaces the tags of an object's current version (undefined: removes them). */
  async setTags(bucket: string, key: string, tags: ObjectTag[] | undefined): Promise<void> {
    if (await this.meta.setObjectTags(bucket, key, tags)) return;
    await this.requireBucket(bucket);
    throw new S3Error('NoSuchKey', undefined, { Key: key });
  }

  async putObject(input: PutInput): Promise<WriteResult> {
    const bucket = await this.requireBucket(input.bucket);
    const versionId = newId(16);
    const encryption = effectiveEncryption(bucket, input.encryption);
    if (encryption.mode === 'SSE-C') checkSseCAllowed(bucket, input.key, input.requester);
    const { dataKey, sse, description } = await this.keys.newDataKey({ bucket: input.bucket, key: input.key, versionId }, encryption, input.requester?.kms);
    let written: { record: StreamRecord; md5: Buffer; inlineData?: Buffer };
    const inline = input.length <= INLINE_MAX_BYTES;
    try {
      written = await this.writeStream(dataKey, 0, input.body, inline ? INLINE_MAX_BYTES : MAX_OBJECT_SIZE, input.length, input.signal, inline, sse.mode !== 'SSE-S3');
    } finally {
      dataKey.zero();
    }
    const { record, md5, inlineData } = written;
    let obj: ObjectRecord;
    let replaced: string[];
    try {
      if (record.plainSize !== input.length) throw new S3Error('IncompleteBody');
      if (input.contentMd5 && !input.contentMd5.equals(md5)) throw new S3Error('BadDigest');
      input.beforeCommit?.();
      const checksum = input.checksum?.();
      obj = {
        bucket: input.bucket,
        key: input.key,
        versionId,
        size: record.plainSize,
        // As on AWS, the ETag of an SSE-KMS or SSE-C object is not the MD5 of its plaintext
        // (record.md5 is random for them).
        etag: record.md5,
        lastModified: this.now(),
        contentType: input.contentType,
        headers: input.headers,
        userMetadata: input.userMetadata,
        ...(input.tags?.length ? { tags: input.tags } : {}),
        sse,
        streams: [record],
        partsCount: 0,
        ...(checksum ? { checksum } : {}),
        ...(inlineData ? { inlineData } : {}),
      };
      replaced = (await this.meta.putObject(obj)).garbageBlobIds;
    } catch (e) {
      // Not committed: the new blob is nobody's.
      await this.discard([record.blobId]);
      throw e;
    }
    // Committed: nothing below may fail the write or touch its blob.
    await this.discard(replaced);
    if (sse.mode === 'SSE-C') await this.noteSseCWrite(input.bucket, input.key, input.requester);
    return { object: obj, encryption: description };
  }

  /** The data key of an object version (or an upload), opened for `kms` / with `customerKey`. */
  private openKey(o: Pick<ObjectRecord, 'sse' | 'bucket' | 'key' | 'versionId'>, kms?: KmsCaller, customerKey?: SecretKey): Promise<SecretKey> {
    return this.keys.openDataKey(o.sse, { bucket: o.bucket, key: o.key, versionId: o.versionId }, kms, customerKey);
  }

  /** Plaintext of an object or a range of it; errors (never wrong bytes) on any damage. */
  async openPlaintext(obj: ObjectRecord, range?: PlainRange, requester?: Requester, customerKey?: SecretKey): Promise<Readable> {
    const dataKey = await this.openKey(obj, requester?.kms, customerKey);
    const stream = readPlaintext(plaintextWindows(this.blobs, dataKey, obj.streams, range, obj.inlineData));
    // On close, even if nobody ever read from it (the write it fed failed first).
    stream.on('close', () => dataKey.zero());
    return stream;
  }

  /**
   * The same as windows of decrypted bytes for a sender that releases each once it is sent
   * (GET: no copy between the decryptor and the socket). The data key is wiped when the
   * generator finishes, fails or is returned early.
   */
  async openPlaintextWindows(obj: ObjectRecord, range?: PlainRange, requester?: Requester, customerKey?: SecretKey): Promise<PlainWindows> {
    const dataKey = await this.openKey(obj, requester?.kms, customerKey);
    const windows = plaintextWindows(this.blobs, dataKey, obj.streams, range, obj.inlineData);
    async function* keyed(): PlainWindows {
      try {
        yield* windows;
      } finally {
        dataKey.zero();
      }
    }
    return keyed();
  }

  /**
   * Proves `requester` may open the object's data key (kms:Decrypt for SSE-KMS) without reading
   * it: the checksum of an SSE-KMS object goes only to a caller who could decrypt the object
   * (AWS, HeadObject with ChecksumMode ENABLED).
   */
  async checkDecryptable(obj: ObjectRecord, requester?: Requester): Promise<void> {
    if (obj.sse.mode !== 'SSE-KMS') return;
    const dataKey = await this.openKey(obj, requester?.kms);
    dataKey.zero();
  }

  /**
   * The plaintext (or a range) of a small object kept inline, as one buffer; undefined for other
   * objects (read them with openPlaintext). The caller zeroes nothing: it is the object's data.
   */
  async readInlinePlaintext(obj: ObjectRecord, range?: PlainRange, requester?: Requester, customerKey?: SecretKey): Promise<Buffer | undefined> {
    const s = obj.streams[0];
    if (obj.streams.length !== 1 || !obj.inlineData || !s || s.blobId !== '') return undefined;
    const dataKey = await this.openKey(obj, requester?.kms, customerKey);
    try {
      return decryptInline(dataKey, s, obj.inlineData, range);
    } finally {
      dataKey.zero();
    }
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    await this.requireBucket(bucket);
    const { garbageBlobIds } = await this.meta.deleteObject(bucket, key);
    await this.discard(garbageBlobIds);
  }

  /** Copies (a range of) `source` to bucket/key: decrypt, re-encrypt under a new data key. */
  async copyObject(input: CopyInput): Promise<WriteResult> {
    const bucket = await this.requireBucket(input.bucket);
    if (input.source.bucket === input.bucket && input.source.key === input.key) {
      const rekeyed = await this.rekeyInPlace(bucket, input);
      if (rekeyed) return rekeyed;
    }
    const plain = await this.openPlaintext(input.source, undefined, input.requester, input.sourceCustomerKey);
    // If the write fails before it reads the source (a refused key, a blocked bucket ...), the
    // source stream is closed, its file and data key released.
    try {
      return await this.putObject({
        bucket: input.bucket,
        key: input.key,
        body: plain,
        length: input.source.size,
        contentType: input.contentType,
        headers: input.headers,
        userMetadata: input.userMetadata,
        ...(input.tags ? { tags: input.tags } : {}),
        ...(input.signal ? { signal: input.signal } : {}),
        ...(input.encryption ? { encryption: input.encryption } : {}),
        ...(input.requester ? { requester: input.requester } : {}),
      });
    } finally {
      plain.destroy();
    }
  }

  /**
   * A copy of an object onto itself changes its metadata and encryption without rewriting its
   * data: the data key is unsealed and sealed again for the new encryption (SSE-C key rotation,
   * SSE-S3 / SSE-C / SSE-KMS with a Bucket Key). Committed only if the object is still the
   * version that was read. Undefined when the data must be copied instead (SSE-KMS without a
   * Bucket Key), or when the object changed meanwhile.
   */
  private async rekeyInPlace(bucket: BucketRecord, input: CopyInput): Promise<WriteResult | undefined> {
    const source = input.source;
    const encryption = effectiveEncryption(bucket, input.encryption);
    if (encryption.mode === 'SSE-C') checkSseCAllowed(bucket, input.key, input.requester);
    // Only where the stored MD5s stay right: SSE-S3 objects keep their plaintext MD5 (their
    // ETag), SSE-KMS and SSE-C objects keep none (random ones). Between the two the data is
    // copied, and so is SSE-KMS without a Bucket Key (its data key must come from GenerateDataKey).
    const opaque = (mode: string) => mode !== 'SSE-S3';
    if (opaque(source.sse.mode) !== opaque(encryption.mode)) return undefined;
    if (encryption.mode === 'SSE-KMS' && !encryption.bucketKey) return undefined;
    const versionId = newId(16);
    const dataKey = await this.openKey(source, input.requester?.kms, input.sourceCustomerKey);
    let sealed: Awaited<ReturnType<EncryptionService['reseal']>>;
    try {
      sealed = await this.keys.reseal(dataKey, { bucket: input.bucket, key: input.key, versionId }, encryption, input.requester?.kms);
    } finally {
      dataKey.zero();
    }
    if (!sealed) return undefined;
    const single = source.partsCount === 0;
    const { tags: _sourceTags, ...untagged } = source;
    const obj: ObjectRecord = {
      ...untagged,
      ...(input.tags?.length ? { tags: input.tags } : {}),
      versionId,
      lastModified: this.now(),
      contentType: input.contentType,
      headers: input.headers,
      userMetadata: input.userMetadata,
      sse: sealed.sse,
      // A single-part object's ETag is its MD5 under SSE-S3 and opaque otherwise; a multipart
      // object keeps its md5-N ETag (its data is unchanged).
      etag: !single ? source.etag : sealed.sse.mode === 'SSE-S3' ? source.streams[0]!.md5 : randomBytes(16).toString('hex'),
    };
    const r = await this.meta.putObject(obj, source.versionId);
    // The object changed (or went) since it was read; the version read may be gone with its
    // blobs. As S3 does for conflicting writes, answer 409 OperationAborted: try again.
    if (r.conflict) throw new S3Error('OperationAborted');
    await this.discard(r.garbageBlobIds);
    if (sealed.sse.mode === 'SSE-C') await this.noteSseCWrite(input.bucket, input.key, input.requester);
    return { object: obj, encryption: sealed.description };
  }

  // ---- multipart ----

  /** `requestedSse`: the request's x-amz-server-side-encryption value, kept for authorizing later steps. */
  async createUpload(
    bucket: string,
    key: string,
    attrs: WriteAttributes,
    opts: { checksumAlgorithm?: string; requestedSse?: string; requestedKmsKeyId?: string; encryption?: RequestedEncryption; requester?: Requester } = {},
  ): Promise<{ upload: UploadRecord; encryption: SseDescription }> {
    const { checksumAlgorithm, requestedSse } = opts;
    const b = await this.requireBucket(bucket);
    const versionId = newId(16);
    const encryption = effectiveEncryption(b, opts.encryption);
    if (encryption.mode === 'SSE-C') checkSseCAllowed(b, key, opts.requester);
    const { dataKey, sse, description } = await this.keys.newDataKey({ bucket, key, versionId }, encryption, opts.requester?.kms);
    dataKey.zero();
    const upload: UploadRecord = {
      uploadId: newUploadId(),
      bucket,
      key,
      versionId,
      initiated: this.now(),
      ...attrs,
      sse,
      ...(checksumAlgorithm ? { checksumAlgorithm } : {}),
      ...(requestedSse !== undefined ? { requestedSse } : {}),
      ...(opts.requestedKmsKeyId !== undefined ? { requestedKmsKeyId: opts.requestedKmsKeyId } : {}),
    };
    await this.meta.createUpload(upload);
    if (sse.mode === 'SSE-C') await this.noteSseCWrite(bucket, key, opts.requester);
    return { upload, encryption: description };
  }

  async getUpload(bucket: string, key: string, uploadId: string): Promise<UploadRecord> {
    const u = await this.meta.getUpload(uploadId);
    if (!u || u.bucket !== bucket || u.key !== key) {
      await this.requireBucket(bucket);
      throw new S3Error('NoSuchUpload', undefined, { UploadId: uploadId });
    }
    return u;
  }

  async uploadPart(
    upload: UploadRecord,
    partNumber: number,
    body: Readable,
    length: number,
    opts: { contentMd5?: Buffer; signal?: AbortSignal; beforeCommit?: () => void; requester?: Requester; customerKey?: SecretKey } = {},
  ): Promise<PartRecord> {
    if (upload.sse.mode === 'SSE-C') checkSseCAllowed(await this.requireBucket(upload.bucket), upload.key, opts.requester);
    let dataKey: SecretKey;
    try {
      dataKey = await this.openKey(upload, opts.requester?.kms, opts.customerKey);
    } catch (e) {
      // A part with another key than the upload's is a bad request, not a denied read.
      if (upload.sse.mode === 'SSE-C' && e instanceof S3Error && e.code === 'AccessDenied') {
        throw new S3Error('InvalidRequest', 'The provided encryption parameters did not match the ones used originally.');
      }
      throw e;
    }
    let written: { record: StreamRecord; md5: Buffer };
    try {
      written = await this.writeStream(dataKey, partNumber, body, MAX_OBJECT_SIZE, length, opts.signal, false, upload.sse.mode !== 'SSE-S3');
    } finally {
      dataKey.zero();
    }
    const { record, md5 } = written;
    try {
      if (record.plainSize !== length) throw new S3Error('IncompleteBody');
      if (opts.contentMd5 && !opts.contentMd5.equals(md5)) throw new S3Error('BadDigest');
      opts.beforeCommit?.();
      const part: PartRecord = {
        uploadId: upload.uploadId,
        partNumber,
        blobId: record.blobId,
        plainSize: record.plainSize,
        md5: record.md5,
        header: record.header,
        lastModified: this.now(),
      };
      const { garbageBlobIds } = await this.meta.putPart(part);
      await this.discard(garbageBlobIds);
      return part;
    } catch (e) {
      await this.discard([record.blobId]);
      if (e instanceof UploadGoneError) throw new S3Error('NoSuchUpload', undefined, { UploadId: upload.uploadId });
      throw e;
    }
  }

  async completeUpload(upload: UploadRecord, requested: { partNumber: number; etag: string }[]): Promise<ObjectRecord> {
    if (requested.length === 0) {
      throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
    }
    const parts = new Map((await this.meta.listParts(upload.uploadId)).map((p) => [p.partNumber, p]));
    let prev = 0;
    const chosen: PartRecord[] = [];
    for (const r of requested) {
      if (r.partNumber <= prev) throw new S3Error('InvalidPartOrder');
      prev = r.partNumber;
      const p = parts.get(r.partNumber);
      if (!p || normalizeEtag(r.etag) !== p.md5) {
        throw new S3Error('InvalidPart', undefined, { UploadId: upload.uploadId, PartNumber: r.partNumber, ETag: r.etag });
      }
      chosen.push(p);
    }
    for (let i = 0; i < chosen.length - 1; i++) {
      const p = chosen[i]!;
      if (p.plainSize < MIN_PART_SIZE) {
        throw new S3Error('EntityTooSmall', undefined, {
          ProposedSize: p.plainSize,
          MinSizeAllowed: MIN_PART_SIZE,
          PartNumber: p.partNumber,
          ETag: `"${p.md5}"`,
        });
      }
    }
    const size = chosen.reduce((n, p) => n + p.plainSize, 0);
    if (size > MAX_OBJECT_SIZE) throw new S3Error('EntityTooLarge', undefined, { ProposedSize: size, MaxSizeAllowed: MAX_OBJECT_SIZE });
    const etagHash = createHash('md5');
    for (const p of chosen) etagHash.update(Buffer.from(p.md5, 'hex'));
    const obj: ObjectRecord = {
      bucket: upload.bucket,
      key: upload.key,
      versionId: upload.versionId,
      size,
      etag: `${etagHash.digest('hex')}-${chosen.length}`,
      lastModified: this.now(),
      contentType: upload.contentType,
      headers: upload.headers,
      userMetadata: upload.userMetadata,
      ...(upload.tags?.length ? { tags: upload.tags } : {}),
      sse: upload.sse,
      streams: chosen.map((p) => ({ blobId: p.blobId, streamIndex: p.partNumber, plainSize: p.plainSize, md5: p.md5, header: p.header })),
      partsCount: chosen.length,
    };
    try {
      const { garbageBlobIds } = await this.meta.completeUpload(upload.uploadId, obj);
      await this.discard(garbageBlobIds);
    } catch (e) {
      if (e instanceof UploadGoneError) throw new S3Error('NoSuchUpload', undefined, { UploadId: upload.uploadId });
      throw e;
    }
    return obj;
  }

  async abortUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.getUpload(bucket, key, uploadId);
    const { aborted, garbageBlobIds } = await this.meta.abortUpload(uploadId);
    await this.discard(garbageBlobIds);
    if (!aborted) throw new S3Error('NoSuchUpload', undefined, { UploadId: uploadId });
  }

  /** Removes blobs no metadata refers to (left by a crash between write and commit). */
  async sweepOrphans(): Promise<{ incomplete: number; orphans: number }> {
    const incomplete = await this.blobs.sweepIncomplete();
    let orphans = 0;
    for await (const id of this.blobs.list()) {
      if (!(await this.meta.isBlobReferenced(id))) {
        await this.blobs.delete(id);
        orphans++;
      }
    }
    return { incomplete, orphans };
  }
}

export function normalizeEtag(e: string): string {
  return e.trim().replace(/^"|"$/g, '').toLowerCase();
}
