// The S3 request context handed to every handler, and the helpers handlers share: header
// access, small-body reading behind a limit, response writing, and request validation rules
// (bucket names, keys, user metadata, Content-MD5, SSE headers).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
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

const SSE_HEADERS_C = [
  'x-amz-server-side-encryption-customer-algorithm',
  'x-amz-server-side-encryption-customer-key',
  'x-amz-server-side-encryption-customer-key-md5',
];

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
 * The SSE request headers of a write (PutObject, CopyObject, CreateMultipartUpload): SSE-S3
 * (AES256) or SSE-KMS (aws:kms, with key id, context and Bucket Key headers); absent means the
 * bucket default. DSSE-KMS and SSE-C answer NotImplemented until they land; anything else the
 * AWS error.
 */
export function writeEncryption(ctx: S3Context): RequestedEncryption | undefined {
  const sse = header(ctx, 'x-amz-server-side-encryption');
  const kmsKey = header(ctx, 'x-amz-server-side-encryption-aws-kms-key-id');
  if (SSE_HEADERS_C.some((h) => header(ctx, h) !== undefined)) {
    throw new S3Error('NotImplemented', 'Server-side encryption with customer-provided keys (SSE-C) is not implemented yet.');
  }
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
    return sse === undefined ? undefined : { mode: 'SSE-S3' };
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
  const h: Record<string, string> = { 'x-amz-server-side-encryption': d.algorithm };
  if (d.kmsKeyArn) h['x-amz-server-side-encryption-aws-kms-key-id'] = d.kmsKeyArn;
  if (d.bucketKeyEnabled) h[BUCKET_KEY_HEADER] = 'true';
  if (withContext && d.context) h[CONTEXT_HEADER] = Buffer.from(JSON.stringify(d.context), 'utf8').toString('base64');
  return h;
}

/** GET/HEAD must not carry SSE-S3/KMS headers; SSE-C headers do not apply to SSE-S3 objects. */
export function checkReadSse(ctx: S3Context): void {
  if (
    header(ctx, 'x-amz-server-side-encryption') !== undefined ||
    header(ctx, 'x-amz-server-side-encryption-aws-kms-key-id') !== undefined ||
    header(ctx, CONTEXT_HEADER) !== undefined
  ) {
    throw new S3Error('InvalidArgument', 'x-amz-server-side-encryption header is not supported for this operation.', {
      ArgumentName: 'x-amz-server-side-encryption',
    });
  }
  if (SSE_HEADERS_C.some((h) => header(ctx, h) !== undefined)) {
    throw new S3Error('InvalidRequest', 'The encryption parameters are not applicable to this object.');
  }
}
