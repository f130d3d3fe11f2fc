// SigV4 building blocks shared by header and presigned verification: AWS URI encoding, the
// canonical URI / query / headers, the string to sign, HMAC helpers, the signing-key cache and
// a constant-time signature comparison. Pure functions over plain strings and buffers.
import * as nodeCrypto from 'node:crypto';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

const oneShotHash: typeof nodeCrypto.hash | undefined = (nodeCrypto as { hash?: typeof nodeCrypto.hash }).hash;

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

// ---- URI encoding ----

const HEX = '0123456789ABCDEF';
/** True for AWS's unreserved characters A-Z a-z 0-9 - . _ ~ (never percent-encoded). */
function isUnreserved(b: number): boolean {
  return (
    (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) ||
    b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e
  );
}

/** AWS UriEncode of raw bytes: every byte except unreserved ones becomes %XX (upper-case hex). */
export function uriEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    out += isUnreserved(b) ? String.fromCharCode(b) : '%' + HEX[b >> 4] + HEX[b & 15];
  }
  return out;
}

export function uriEncode(s: string): string {
  return uriEncodeBytes(Buffer.from(s, 'utf8'));
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Percent-decodes `s` to bytes. Valid `%XX` escapes become the byte; anything else (including
 * a stray '%') stays literal, UTF-8 encoded. With `plusIsSpace` (query strings) '+' is a space.
 */
export function percentDecode(s: string, plusIsSpace: boolean): Buffer {
  if (s.indexOf('%') < 0 && !(plusIsSpace && s.indexOf('+') >= 0)) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let run = 0; // start of the current literal run
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && i + 2 < s.length && hexVal(s.charCodeAt(i + 1)) >= 0 && hexVal(s.charCodeAt(i + 2)) >= 0) {
      if (run < i) parts.push(Buffer.from(s.slice(run, i), 'utf8'));
      parts.push(Buffer.of((hexVal(s.charCodeAt(i + 1)) << 4) | hexVal(s.charCodeAt(i + 2))));
      i += 2;
      run = i + 1;
    } else if (c === 0x2b && plusIsSpace) {
      if (run < i) parts.push(Buffer.from(s.slice(run, i), 'utf8'));
      parts.push(Buffer.of(0x20));
      run = i + 1;
    }
  }
  if (run < s.length) parts.push(Buffer.from(s.slice(run), 'utf8'));
  return Buffer.concat(parts);
}

/** Re-encodes an already (maybe partially) encoded component into AWS canonical form. */
export function normalizeEncoded(s: string, plusIsSpace: boolean): string {
  return uriEncodeBytes(percentDecode(s, plusIsSpace));
}

// ---- canonical URI ----

/** A path of unreserved characters and '/' only (each segment already canonical). */
const PLAIN_PATH = /^[A-Za-z0-9\-._~/]*$/;

/**
 * The canonical URI. For S3 each '/'-separated segment of the raw path is decoded and
 * re-encoded once (S3 neither double-encodes nor collapses '.', '..' or empty segments).
 * Other services (kms) use the generic rule: drop empty and '.' segments, resolve '..',
 * then encode the already-encoded path a second time.
 */
export function canonicalUri(rawPath: string, service: string): string {
  const path = rawPath === '' ? '/' : rawPath;
  if (service === 's3') {
    // Only unreserved characters and '/': every segment is already in canonical form.
    if (PLAIN_PATH.test(path)) return path;
    return path
      .split('/')
      .map((seg) => normalizeEncoded(seg, false))
      .join('/');
  }
  const segs: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segs.pop();
    else segs.push(seg);
  }
  const trailing = segs.length > 0 && path.endsWith('/') ? '/' : '';
  const normalized = (path.startsWith('/') ? '/' : '') + segs.join('/') + trailing;
  return normalized
    .split('/')
    .map((seg) => uriEncode(seg))
    .join('/');
}

// ---- query ----

export interface QueryParam {
  /** Decoded (UTF-8) name and value, for reading X-Amz-* parameters. */
  name: string;
  value: string;
  /** AWS-canonical encodings, for the canonical query string. */
  encName: string;
  encValue: string;
}

/** Splits a raw query string ('a=1&b', no leading '?') into decoded and canonical pairs. */
export function parseQuery(rawQuery: string): QueryParam[] {
  const out: QueryParam[] = [];
  if (rawQuery === '') return out;
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    const nameBytes = percentDecode(rawName, true);
    const valueBytes = percentDecode(rawValue, true);
    out.push({
      name: nameBytes.toString('utf8'),
      value: valueBytes.toString('utf8'),
      encName: uriEncodeBytes(nameBytes),
      encValue: uriEncodeBytes(valueBytes),
    });
  }
  return out;
}

/** Canonical query string: pairs sorted by encoded name, then encoded value (byte order). */
export function canonicalQuery(params: readonly QueryParam[], exclude?: string): string {
  const pairs = params.filter((p) => p.name !== exclude);
  pairs.sort((a, b) =>
    a.encName < b.encName ? -1 : a.encName > b.encName ? 1 : a.encValue < b.encValue ? -1 : a.encValue > b.encValue ? 1 : 0,
  );
  return pairs.map((p) => `${p.encName}=${p.encValue}`).join('&');
}

// ---- headers ----

export type HeaderMap = Record<string, string | string[] | undefined>;

/** A header value as a single string: arrays joined with ',' (AWS's multi-value rule). */
export function headerValue(headers: HeaderMap, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

/** Trim leading/trailing blanks and collapse inner runs of spaces/tabs (AWS "Trimall"). */
export function trimAll(v: string): string {
  return v.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');
}

function canonicalHeaderValue(v: string | string[] | undefined): string {
  if (v === undefined) return '';
  return Array.isArray(v) ? v.map(trimAll).join(',') : trimAll(v);
}

/** The canonical headers block (each `name:value\n`) for the given sorted, lower-case names. */
export function canonicalHeaders(headers: HeaderMap, signedHeaders: readonly string[]): string {
  let out = '';
  for (const name of signedHeaders) out += `${name}:${canonicalHeaderValue(headers[name])}\n`;
  return out;
}

// ---- request / string to sign ----

export function canonicalRequest(parts: {
  method: string;
  uri: string;
  query: string;
  headers: string;
  signedHeaders: string;
  payloadHash: string;
}): string {
  return [parts.method, parts.uri, parts.query, parts.headers, parts.signedHeaders, parts.payloadHash].join('\n');
}

/** Hex SHA-256. One-shot `crypto.hash` (node 20.12+): a third of a Hash object's cost per call. */
export function sha256Hex(data: string | Uint8Array): string {
  return oneShotHash ? oneShotHash('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex');
}

export function hmac(key: string | Uint8Array, data: string | Uint8Array): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function stringToSign(amzDate: string, scope: string, canonicalRequestText: string): string {
  return `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequestText)}`;
}

// ---- signing keys ----

const KEY_CACHE_MAX = 256;
const keyCache = new Map<string, Buffer>();

/**
 * kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
 * Cached in a small LRU keyed by a hash of the secret (the secret itself is not kept as a key).
 */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const id = `${sha256Hex(secret)}/${date}/${region}/${service}`;
  const hit = keyCache.get(id);
  if (hit) {
    keyCache.delete(id);
    keyCache.set(id, hit);
    return hit;
  }
  const kDate = hmac('AWS4' + secret, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  const key = hmac(kService, 'aws4_request');
  keyCache.set(id, key);
  if (keyCache.size > KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string);
  return key;
}

export function clearSigningKeyCache(): void {
  keyCache.clear();
}

/** Constant-time comparison of two hex signatures (length mismatch is still a full compare). */
export function signaturesEqual(expectedHex: string, providedHex: string): boolean {
  const a = Buffer.from(expectedHex, 'latin1');
  const b = Buffer.from(providedHex, 'latin1');
  if (a.length !== b.length) {
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}
