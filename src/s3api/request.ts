// The S3 request context handed to every handler, and the helpers handlers share: header
// access, small-body reading behind a limit, response writing, and request validation rules
// (bucket names, keys, user metadata, Content-MD5, SSE headers).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { KEY_BYTES, SecretKey } from '../crypto/keys.ts';
import type { SseDescription } from '../service/encryption.ts';
import type { Principal } from '../service/identities.ts';
import type { RequestedEncryption, Requester } from '../service/objects.ts';
import { S3Error } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { Operation } from './router.ts';

export interface Owner {
  id: string;
  displayName: string;
}

export interface S3Context {
  id: string;
  req: IncomingMessage;
  res: ServerResponse;
  secure: boolean;
  log: Logger;
  op: Operation;
  query: URLSearchParams;
  signal: AbortSignal;
  /** Who sent the request (the signer, or anonymous). */
  principal: Principal;
  /** How services act on the caller's behalf (the KMS caller for SSE-KMS). */
  requester: Requester;
  /** The decoded request payload (aws-chunked removed, hashes and checksums verified). */
  body(): Readable;
  /** The verified checksum the client sent, once the body has been read. */
  checksum(): { algorithm: string; value: string } | undefined;
}

export function header(ctx: S3Context, name: string): string | undefined {
  const v = ctx.req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** Reads a small request body (XML) into memory, refusing more than `limit` bytes. */
export async function readSmallBody(ctx: S3Context, limit = 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of ctx.body()) {
    n += (c as Buffer).length;
    if (n > limit) throw new S3Error('MaxMessageLengthExceeded');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * A small request body whose Content-MD5, when given, must match (BadDigest); a malformed
 * Content-MD5 is refused before the body is read (InvalidDigest).
 */
export async function readCheckedBody(ctx: S3Context, limit?: number): Promise<Buffer> {
  const md5 = contentMd5(ctx);
  const body = await readSmallBody(ctx, limit);
  if (md5 && !md5.equals(createHash('md5').update(body).digest())) throw new S3Error('BadDigest');
  return body;
}

export function send(ctx: S3Context, status: number, body?: string | Buffer, headers: Record<string, string | number> = {}): void {
  const res = ctx.res;
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (body !== undefined && ctx.req.method !== 'HEAD') {
    if (typeof body === 'string' && !res.hasHeader('content-type')) res.setHeader('content-type', 'application/xml');
    res.setHeader('content-length', Buffer.byteLength(body));
    res.end(body);
  } else {
    if (!res.hasHeader('content-length')) res.setHeader('content-length', 0);
    res.end();
  }
}

// ---- validation ----

const RESERVED_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-'];
const RESERVED_SUFFIXES = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'];

/** General purpose bucket naming rules (docs: bucketnamingrules). */
export function validBucketName(name: string): boolean {
  if (name.length < 3 || name.length > 63) return false;
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) return false;
  if (name.includes('..')) return false;
  if (/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)) return false;
  if (RESERVED_PREFIXES.some((p) => name.startsWith(p))) return false;
  if (RESERVED_SUFFIXES.some((s) => name.endsWith(s))) return false;
  return true;
}

/**
 * Object keys: 1 to 1024 bytes of UTF-8. Coffer refuses NUL and "." / ".." path segments:
 * such keys cannot be written back to a file system by `aws s3 sync`-style clients and are a
 * classic path traversal vector in tools that mirror buckets (see docs/s3-compatibility.md).
 */
export function validateKey(key: string): void {
  if (Buffer.byteLength(key) > 1024) throw new S3Error('KeyTooLongError', undefined, { Size: Buffer.byteLength(key), MaxSizeAllowed: 1024 });
  if (key.includes('\u0000')) throw new S3Error('InvalidArgument', 'Object key must not contain a NUL character.', { ArgumentName: 'key' });
  if (key.split('/').some((seg) => seg === '.' || seg === '..')) {
    throw new S3Error('InvalidArgument', 'Object key must not contain "." or ".." path segments.', { ArgumentName: 'key' });
  }
  if (!isWellFormedUtf16(key)) throw new S3Error('InvalidURI');
}

function isWellFormedUtf16(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

export const METADATA_LIMIT = 2048;
export const STORED_HEADERS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'];

/** x-amz-meta-* headers (names lower-cased, prefix removed); at most 2 KB in all, as AWS. */
export function userMetadata(ctx: S3Context): Record<string, string> {
  const out: Record<string, string> = {};
  let size = 0;
  const raw = ctx.req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!name.startsWith('x-amz-meta-')) continue;
    const k = name.slice('x-amz-meta-'.length);
    const v = raw[i + 1]!;
    out[k] = k in out ? `${out[k]},${v}` : v;
    size += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (size > METADATA_LIMIT) throw new S3Error('MetadataTooLarge', undefined, { Size: size, MaxSizeAllowed: METADATA_LIMIT });
  return out;
}

/** Content-Type and the standard headers S3 stores with an object. */
export function writeAttributes(ctx: S3Context): { contentType: string; headers: Record<string, string>; userMetadata: Record<string, string> } {
  const headers: Record<string, string> = {};
  for (const h of STORED_HEADERS) {
    let v = header(ctx, h);
    if (v === undefined) continue;
    if (h === 'content-encoding') {
      v = v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '' && s !== 'aws-chunked')
        .join(',');
      if (v === '') continue;
    }
    headers[h] = v;
  }
  return { contentType: header(ctx, 'content-type') || 'binary/octet-stream', headers, userMetadata: userMetadata(ctx) };
}

/** DeleteObjects and PutBucketEncryption require an integrity header (Content-MD5 or a checksum). */
export function requireIntegrityHeader(ctx: S3Context): void {
  if (header(ctx, 'content-md5') === undefined && !Object.keys(ctx.req.headers).some((h) => h.startsWith('x-amz-checksum-')) && !header(ctx, 'x-amz-trailer')) {
    throw new S3Error('InvalidRequest', 'Missing required header for this request: Content-Md5.');
  }
}

/** Decodes and checks Content-MD5 (base64 of 16 bytes), or undefined when absent. */
export function contentMd5(ctx: S3Context): Buffer | undefined {
  const v = header(ctx, 'content-md5');
  if (v === undefined) return undefined;
  const b = Buffer.from(v.trim(), 'base64');
  if (b.length !== 16 || b.toString('base64') !== v.trim()) throw new S3Error('InvalidDigest', undefined, { 'Content-MD5': v });
  return b;
}

/** The plaintext length the client announced (Content-Length, or the decoded length for aws-chunked). */
export function announcedLength(ctx: S3Context): number {
  const decoded = header(ctx, 'x-amz-decoded-content-length');
  const raw = decoded ?? header(ctx, 'content-length');
  if (raw === undefined) throw new S3Error('MissingContentLength');
  if (!/^\d{1,16}$/.test(raw.trim())) throw new S3Error('InvalidArgument', 'Invalid Content-Length', { ArgumentName: 'Content-Length' });
  return Number(raw);
}

const SSE_C_PREFIX = 'x-amz-server-side-encryption-customer-';
const COPY_SSE_C_PREFIX = 'x-amz-copy-source-server-side-encryption-customer-';

/** A customer-provided key (SSE-C) taken from a request: zeroed when the response is done. */
export interface CustomerKey {
  key: SecretKey;
  /** base64 MD5 of the key, as the request gave it (and as responses echo it). */
  keyMd5: string;
}

const SSE_C_MESSAGES = {
  insecure: 'Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.',
  incompatible: 'Server Side Encryption with Customer provided key is incompatible with the encryption method specified',
  algorithm: 'Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.',
  key: 'Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.',
  md5Missing: 'Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.',
  md5: 'The calculated MD5 hash of the key did not match the hash that was provided.',
  length: 'The secret key was invalid for the specified algorithm.',
  wrongKey: 'Requests specifying Server Side Encryption with Customer provided keys must provide the correct secret key.',
} as const;

/** Whether the request names any SSE-C header (of the target, or with `copySource` of the copy source). */
export function hasCustomerKeyHeaders(ctx: S3Context, copySource = false): boolean {
  const prefix = copySource ? COPY_SSE_C_PREFIX : SSE_C_PREFIX;
  return ['algorithm', 'key', 'key-md5'].some((h) => header(ctx, prefix + h) !== undefined);
}

/**
 * The SSE-C trio of a request (or, with `copySource`, the x-amz-copy-source-... trio), checked
 * in AWS's order (docs/s3-compatibility.md, "SSE-C"): over plain HTTP nothing further is looked
 * at; then the x-amz-server-side-encryption clash, the algorithm, the key, its MD5, its length
 * (`write`: a read with a key of another length simply holds the wrong key). The key never
 * appears in an error.
 */
export function customerKey(ctx: S3Context, opts: { copySource?: boolean; write?: boolean; checkOnly?: boolean } = {}): CustomerKey | undefined {
  if (!hasCustomerKeyHeaders(ctx, opts.copySource)) return undefined;
  if (!ctx.secure) throw new S3Error('InvalidRequest', SSE_C_MESSAGES.insecure);
  const prefix = opts.copySource ? COPY_SSE_C_PREFIX : SSE_C_PREFIX;
  const sse = header(ctx, 'x-amz-server-side-encryption');
  if (!opts.copySource && sse !== undefined) {
    throw new S3Error('InvalidArgument', SSE_C_MESSAGES.incompatible, { ArgumentName: 'x-amz-server-side-encryption', ArgumentValue: sse });
  }
  const algorithm = header(ctx, prefix + 'algorithm');
  const keyText = header(ctx, prefix + 'key');
  const md5Text = header(ctx, prefix + 'key-md5');
  if (algorithm !== undefined && algorithm.trim() !== 'AES256') {
    throw new S3Error('InvalidEncryptionAlgorithmError', undefined, { ArgumentName: prefix + 'algorithm', ArgumentValue: algorithm });
  }
  if (algorithm === undefined) throw new S3Error('InvalidArgument', SSE_C_MESSAGES.algorithm, { ArgumentName: prefix + 'algorithm', ArgumentValue: 'null' });
  if (keyText === undefined || keyText.trim() === '') throw new S3Error('InvalidArgument', SSE_C_MESSAGES.key, { ArgumentName: prefix + 'key', ArgumentValue: 'null' });
  if (md5Text === undefined) throw new S3Error('InvalidArgument', SSE_C_MESSAGES.md5Missing, { ArgumentName: prefix + 'key-MD5', ArgumentValue: 'null' });
  const raw = Buffer.from(keyText.trim(), 'base64');
  try {
    const md5 = createHash('md5').update(raw).digest('base64');
    if (md5 !== md5Text.trim()) throw new S3Error('InvalidArgument', SSE_C_MESSAGES.md5, { ArgumentName: 'x-amz-server-side-encryption', ArgumentValue: 'null' });
    if (opts.checkOnly) return undefined;
    if (raw.length !== KEY_BYTES) {
      if (opts.write) throw new S3Error('InvalidArgument', SSE_C_MESSAGES.length, { ArgumentName: 'x-amz-server-side-encryption', ArgumentValue: 'null' });
      // On a read, a key of another length is simply not the object's key.
      throw new S3Error('AccessDenied', SSE_C_MESSAGES.wrongKey);
    }
    const key = SecretKey.from(raw);
    ctx.res.once('close', () => key.zero());
    return { key, keyMd5: md5 };
  } finally {
    raw.fill(0);
  }
}

/** SSE-C errors the services raise (the object needs a key; the key is not the object's). */
export const SSE_C_ERRORS = SSE_C_MESSAGES;

const KMS_REQUIRES_HEADER = 'Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms';
const CONTEXT_HEADER = 'x-amz-server-side-encryption-context';
const BUCKET_KEY_HEADER = 'x-amz-server-side-encryption-bucket-key-enabled';

/** x-amz-server-side-encryption-context: base64 of UTF-8 JSON holding a string-to-string map. */
function encryptionContext(ctx: S3Context): Record<string, string> | undefined {
  const raw = header(ctx, CONTEXT_HEADER);
  if (raw === undefined) return undefined;
  const bad = () =>
    new S3Error('InvalidArgument', "The header 'x-amz-server-side-encryption-context' shall be Base64-encoded UTF-8 string holding JSON which represents a string-string map", {
      ArgumentName: CONTEXT_HEADER,
    });
  const text = raw.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(text, 'base64')));
  } catch {
    throw bad();
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw bad();
  for (const [k, v] of Object.entries(parsed)) if (typeof v !== 'string' || k === '') throw bad();
  return parsed as Record<string, string>;
}

/**
 * The SSE request headers of a write (PutObject, CopyObject, CreateMultipartUpload): SSE-C
 * (the customer-key trio), SSE-S3 (AES256) or SSE-KMS (aws:kms, with key id, context and
 * Bucket Key headers); absent means the bucket default. DSSE-KMS answers NotImplemented;
 * anything else the AWS error.
 */
export function writeEncryption(ctx: S3Context): RequestedEncryption | undefined {
  const customer = customerKey(ctx, { write: true });
  if (customer) return { mode: 'SSE-C', ...customer };
  const sse = header(ctx, 'x-amz-server-side-encryption');
  const kmsKey = header(ctx, 'x-amz-server-side-encryption-aws-kms-key-id');
  const bucketKeyRaw = header(ctx, BUCKET_KEY_HEADER);
  let bucketKey: boolean | undefined;
  if (bucketKeyRaw !== undefined) {
    const v = bucketKeyRaw.trim().toLowerCase();
    if (v !== 'true' && v !== 'false') throw new S3Error('InvalidArgument', 'Bucket Key Enabled value must be either true or false', { ArgumentName: BUCKET_KEY_HEADER, ArgumentValue: bucketKeyRaw });
    bucketKey = v === 'true';
  }
  if (sse === 'aws:kms') {
    const context = encryptionContext(ctx);
    return { mode: 'SSE-KMS', ...(kmsKey !== undefined ? { keyId: kmsKey.trim() } : {}), ...(context ? { context } : {}), ...(bucketKey !== undefined ? { bucketKey } : {}) };
  }
  if (sse === 'aws:kms:dsse') {
    throw new S3Error('NotImplemented', 'Dual-layer server-side encryption with AWS KMS keys (DSSE-KMS) is not implemented.');
  }
  if (sse === undefined || sse === 'AES256') {
    if (kmsKey !== undefined || header(ctx, CONTEXT_HEADER) !== undefined) {
      throw new S3Error('InvalidArgument', KMS_REQUIRES_HEADER, { ArgumentName: 'x-amz-server-side-encryption', ArgumentValue: sse ?? 'null' });
    }
    if (sse === undefined) return bucketKey === undefined ? undefined : { mode: 'bucket-default', bucketKey };
    return { mode: 'SSE-S3' };
  }
  throw new S3Error('InvalidArgument', 'The encryption method specified is not supported', {
    ArgumentName: 'x-amz-server-side-encryption',
    ArgumentValue: sse,
  });
}

/**
 * The response headers that describe an object's encryption. `withContext`: write responses
 * (PutObject, CopyObject, CreateMultipartUpload) also carry the SSE-KMS encryption context;
 * GET and HEAD never do.
 */
export function encryptionHeaders(d: SseDescription, withContext = false): Record<string, string> {
  const h: Record<string, string> = {};
  if (d.algorithm) h['x-amz-server-side-encryption'] = d.algorithm;
  if (d.customerKeyMd5) {
    // SSE-C responses echo the algorithm and the key's MD5, and carry no x-amz-server-side-encryption.
    h['x-amz-server-side-encryption-customer-algorithm'] = 'AES256';
    h['x-amz-server-side-encryption-customer-key-md5'] = d.customerKeyMd5;
  }
  if (d.kmsKeyArn) h['x-amz-server-side-encryption-aws-kms-key-id'] = d.kmsKeyArn;
  if (d.bucketKeyEnabled) h[BUCKET_KEY_HEADER] = 'true';
  if (withContext && d.context) h[CONTEXT_HEADER] = Buffer.from(JSON.stringify(d.context), 'utf8').toString('base64');
  return h;
}

/**
 * The SSE headers of a read (GetObject, HeadObject) of `obj`: never x-amz-server-side-encryption
 * (AWS answers 400); an SSE-C object needs its key (400 without it), other objects must not be
 * given one. Returns the customer key for an SSE-C object.
 */
export function readEncryption(ctx: S3Context, obj: { sse: { mode: string } }): CustomerKey | undefined {
  if (
    header(ctx, 'x-amz-server-side-encryption') !== undefined ||
    header(ctx, 'x-amz-server-side-encryption-aws-kms-key-id') !== undefined ||
    header(ctx, CONTEXT_HEADER) !== undefined
  ) {
    throw new S3Error('InvalidArgument', 'x-amz-server-side-encryption header is not supported for this operation.', {
      ArgumentName: 'x-amz-server-side-encryption',
    });
  }
  return sourceCustomerKey(ctx, obj, false);
}

/**
 * UploadPart / UploadPartCopy: the part repeats the upload's SSE-C key (no more, no less).
 */
export function partCustomerKey(ctx: S3Context, upload: { sse: { mode: string } }): CustomerKey | undefined {
  const given = customerKey(ctx, { write: true });
  if ((upload.sse.mode === 'SSE-C') !== (given !== undefined)) {
    throw new S3Error('InvalidRequest', 'The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters.');
  }
  return given;
}

/**
 * The customer key that opens `obj` (a read's, or with `copySource` a copy source's): required
 * for SSE-C objects, refused for others.
 */
export function sourceCustomerKey(ctx: S3Context, obj: { sse: { mode: string } }, copySource: boolean): CustomerKey | undefined {
  if (obj.sse.mode !== 'SSE-C') {
    if (!hasCustomerKeyHeaders(ctx, copySource)) return undefined;
    // The headers are still checked (plain HTTP, algorithm, key, MD5) before they are found
    // not to apply; a key of any length is then simply not applicable.
    customerKey(ctx, { copySource, checkOnly: true });
    throw new S3Error('InvalidRequest', 'The encryption parameters are not applicable to this object.');
  }
  const given = customerKey(ctx, { copySource });
  if (!given) {
    throw new S3Error('InvalidRequest', 'The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.');
  }
  return given;
}
