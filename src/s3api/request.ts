// The S3 request context handed to every handler, and the helpers handlers share: header
// access, small-body reading behind a limit, response writing, and request validation rules
// (bucket names, keys, user metadata, Content-MD5, SSE headers).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
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

/**
 * The SSE request headers on a write (PutObject, CopyObject, CreateMultipartUpload). Every
 * object is SSE-S3 here; AES256 is accepted, SSE-KMS and SSE-C answer NotImplemented until
 * their issues land, anything else the AWS error.
 */
export function checkWriteSse(ctx: S3Context): void {
  const sse = header(ctx, 'x-amz-server-side-encryption');
  const kmsKey = header(ctx, 'x-amz-server-side-encryption-aws-kms-key-id');
  if (SSE_HEADERS_C.some((h) => header(ctx, h) !== undefined)) {
    throw new S3Error('NotImplemented', 'Server-side encryption with customer-provided keys (SSE-C) is not implemented yet.');
  }
  if (sse === undefined) {
    if (kmsKey !== undefined) {
      throw new S3Error('InvalidArgument', 'Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms', {
        ArgumentName: 'x-amz-server-side-encryption',
        ArgumentValue: 'null',
      });
    }
    return;
  }
  if (sse === 'AES256') {
    if (kmsKey !== undefined) {
      throw new S3Error('InvalidArgument', 'Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms', {
        ArgumentName: 'x-amz-server-side-encryption',
        ArgumentValue: sse,
      });
    }
    return;
  }
  if (sse === 'aws:kms' || sse === 'aws:kms:dsse') {
    throw new S3Error('NotImplemented', 'Server-side encryption with AWS KMS keys (SSE-KMS) is not implemented yet.');
  }
  throw new S3Error('InvalidArgument', 'The encryption method specified is not supported', {
    ArgumentName: 'x-amz-server-side-encryption',
    ArgumentValue: sse,
  });
}

/** GET/HEAD must not carry SSE-S3/KMS headers; SSE-C headers do not apply to SSE-S3 objects. */
export function checkReadSse(ctx: S3Context): void {
  if (header(ctx, 'x-amz-server-side-encryption') !== undefined || header(ctx, 'x-amz-server-side-encryption-aws-kms-key-id') !== undefined) {
    throw new S3Error('InvalidArgument', 'x-amz-server-side-encryption header is not supported for this operation.', {
      ArgumentName: 'x-amz-server-side-encryption',
    });
  }
  if (SSE_HEADERS_C.some((h) => header(ctx, h) !== undefined)) {
    throw new S3Error('InvalidRequest', 'The encryption parameters are not applicable to this object.');
  }
}
