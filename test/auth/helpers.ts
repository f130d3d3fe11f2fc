// Test helpers for the auth module: a node-crypto hash for the real @smithy/signature-v4 signer,
// a fixed credential, conversion of a signed smithy request into the plain SigV4Request the
// verifier takes, an independent aws-chunked encoder written from AWS's spec, and stream helpers.
import assert from 'node:assert/strict';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { SignatureV4 } from '@smithy/signature-v4';
import { HttpRequest, buildQueryString, extendedEncodeURIComponent } from '@smithy/core/protocols';
import type { Credential, PayloadMode, SignedAuth, SigV4Request } from '../../src/auth/index.ts';
import { isS3Error } from '../../src/shared/errors.ts';

type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: SourceData): string | Uint8Array =>
  typeof d === 'string' ? d : d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** The smithy Checksum interface backed by node:crypto (sha256, or HMAC-SHA256 with a secret). */
export class NodeSha256 {
  #h: Hash | Hmac;
  readonly #secret: string | Uint8Array | undefined;
  constructor(secret?: SourceData) {
    this.#secret = secret === undefined ? undefined : bytes(secret);
    this.#h = this.#secret === undefined ? createHash('sha256') : createHmac('sha256', this.#secret);
  }
  update(data: SourceData): void {
    this.#h.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#h.digest());
  }
  reset(): void {
    this.#h = this.#secret === undefined ? createHash('sha256') : createHmac('sha256', this.#secret);
  }
}

export const CRED: Credential = {
  accessKeyId: 'AKIDEXAMPLE',
  secretKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  principal: { user: 'alice' },
};

export const lookup = (ak: string): Credential | undefined => (ak === CRED.accessKeyId ? CRED : undefined);

export const NOW = new Date('2024-03-05T12:34:56Z');

/** S3 keys that stress path encoding: reserved characters, '%', '+', unicode, empty and dot segments. */
export const TRICKY_KEYS = [
  'simple.txt',
  'a b',
  'a+b',
  'a%2Fb',
  '%',
  '%%41',
  '100%25',
  'dir/sub/file.bin',
  'dir//double//slash',
  './dot/../dotdot',
  'trailing/',
  ' leading and trailing ',
  'üñíçødé/文件.txt',
  'emoji 😀 key',
  "!'()*",
  '~tilde~',
  'a=b&c=d',
  'q?x#y',
  'semi;colon,comma:colon',
  '$dollar@at',
  '[brackets]{braces}<angles>',
  '^caret`backtick|pipe"quote',
  'back\\slash',
  'tab\there',
  'nl\nline',
  'A-Z_a-z.0-9',
];

export function makeSigner(opts: { service?: string; region?: string; secret?: string; applyChecksum?: boolean; sessionToken?: string } = {}) {
  const service = opts.service ?? 's3';
  return new SignatureV4({
    service,
    region: opts.region ?? 'us-east-1',
    credentials: {
      accessKeyId: CRED.accessKeyId,
      secretAccessKey: opts.secret ?? CRED.secretKey,
      ...(opts.sessionToken ? { sessionToken: opts.sessionToken } : {}),
    },
    sha256: NodeSha256,
    // S3 clients sign the already-encoded path as is; other services double-encode.
    uriEscapePath: service !== 's3',
    applyChecksum: opts.applyChecksum ?? true,
  });
}

/** Encodes an S3 key into a path exactly as the S3 client does. */
export function keyPath(bucket: string, key: string): string {
  return `/${bucket}/${key.split('/').map(extendedEncodeURIComponent).join('/')}`;
}

export interface PlainRequest {
  method: string;
  path: string; // already encoded
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

export function toHttpRequest(r: PlainRequest): HttpRequest {
  return new HttpRequest({
    method: r.method,
    protocol: 'https:',
    hostname: 'coffer.test',
    path: r.path,
    query: r.query ?? {},
    headers: { host: 'coffer.test', ...(r.headers ?? {}) },
    body: r.body,
  });
}

/** What the server would see for a signed smithy request sent on the wire. */
export function fromHttpRequest(req: { method: string; path: string; query?: Record<string, unknown>; headers: Record<string, string> }): SigV4Request {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v;
  return {
    method: req.method,
    rawPath: req.path,
    rawQuery: buildQueryString((req.query ?? {}) as Record<string, string | string[]>),
    headers,
  };
}

export async function signHeader(r: PlainRequest, opts: Parameters<typeof makeSigner>[0] & { date?: Date } = {}): Promise<SigV4Request> {
  const signed = await makeSigner(opts).sign(toHttpRequest(r), { signingDate: opts.date ?? NOW });
  return fromHttpRequest(signed as unknown as HttpRequest);
}

export async function presign(
  r: PlainRequest,
  opts: Parameters<typeof makeSigner>[0] & { date?: Date; expiresIn?: number } = {},
): Promise<SigV4Request> {
  // Like @aws-sdk/s3-request-presigner: the payload is UNSIGNED-PAYLOAD, announced through an
  // X-Amz-Content-Sha256 header that the signer hoists into the query string.
  const hasSha = Object.keys(r.headers ?? {}).some((k) => k.toLowerCase() === 'x-amz-content-sha256');
  const req = toHttpRequest(hasSha ? r : { ...r, headers: { ...r.headers, 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' } });
  const signed = await makeSigner(opts).presign(req, { signingDate: opts.date ?? NOW, expiresIn: opts.expiresIn ?? 3600 });
  return fromHttpRequest(signed as unknown as HttpRequest);
}

/** Asserts that `p` rejects/throws an S3Error with this code (and optionally message). */
export async function rejectsS3(p: Promise<unknown> | (() => unknown), code: string, message?: string | RegExp) {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(isS3Error(e), `expected S3Error ${code}, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected S3Error ${code}, but it succeeded`);
}

/** A signed auth result for decoder tests that do not need a real signature chain. */
export function fakeAuth(payload: PayloadMode, extra: Partial<SignedAuth> = {}): SignedAuth {
  return {
    kind: 'signed',
    method: 'header',
    credential: CRED,
    signature: '0'.repeat(64),
    amzDate: '20240305T123456Z',
    scope: { date: '20240305', region: 'us-east-1', service: 's3' },
    signedHeaders: ['host'],
    payload,
    contentSha256: 'UNSIGNED-PAYLOAD',
    signingKey: Buffer.alloc(32),
    ...extra,
  };
}

// ---- aws-chunked encoder (independent of src/, written from the AWS documentation) ----

const EMPTY = createHash('sha256').digest('hex');
const sha = (d: string | Uint8Array) => createHash('sha256').update(d).digest('hex');
const hmacHex = (k: Uint8Array, s: string) => createHmac('sha256', k).update(s).digest('hex');

export function deriveKey(secret: string, date: string, region: string, service: string): Buffer {
  let k: Buffer = createHmac('sha256', 'AWS4' + secret).update(date).digest();
  for (const part of [region, service, 'aws4_request']) k = createHmac('sha256', k).update(part).digest();
  return k;
}

export interface ChunkedOptions {
  chunkSize: number;
  /** Signed mode: the signing material and seed signature. Omit for unsigned (STREAMING-UNSIGNED-PAYLOAD-TRAILER). */
  signing?: { key: Buffer; amzDate: string; scope: string; seed: string };
  /** Trailer lines (name -> value), e.g. {'x-amz-checksum-crc32': '...'}; undefined = no trailer section. */
  trailers?: Record<string, string>;
  /** Corrupt the signature of chunk i (0-based; the final empty chunk is index = number of data chunks). */
  badChunk?: number;
  badTrailerSignature?: boolean;
}

export function encodeChunked(data: Buffer, o: ChunkedOptions): { body: Buffer; signatures: string[] } {
  const parts: Buffer[] = [];
  const signatures: string[] = [];
  let prev = o.signing?.seed ?? '';
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += o.chunkSize) chunks.push(data.subarray(i, i + o.chunkSize));
  chunks.push(Buffer.alloc(0));
  chunks.forEach((c, i) => {
    let head = c.length.toString(16);
    if (o.signing) {
      const s = o.signing;
      let sig = hmacHex(s.key, ['AWS4-HMAC-SHA256-PAYLOAD', s.amzDate, s.scope, prev, EMPTY, sha(c)].join('\n'));
      if (o.badChunk === i) sig = sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0');
      signatures.push(sig);
      prev = sig;
      head += `;chunk-signature=${sig}`;
    }
    parts.push(Buffer.from(head + '\r\n'), c);
    if (c.length > 0) parts.push(Buffer.from('\r\n'));
  });
  if (o.trailers) {
    let canonical = '';
    for (const [k, v] of Object.entries(o.trailers)) {
      parts.push(Buffer.from(`${k}:${v}\r\n`));
      canonical += `${k}:${v}\n`;
    }
    if (o.signing) {
      const s = o.signing;
      let sig = hmacHex(s.key, ['AWS4-HMAC-SHA256-TRAILER', s.amzDate, s.scope, prev, sha(canonical)].join('\n'));
      if (o.badTrailerSignature) sig = '0'.repeat(64);
      parts.push(Buffer.from(`x-amz-trailer-signature:${sig}\r\n`));
    }
  }
  parts.push(Buffer.from('\r\n'));
  return { body: Buffer.concat(parts), signatures };
}

/** Pipes `pieces` through `t`, resolving the concatenated output (or rejecting with the stream error). */
export async function runThrough(t: NodeJS.ReadWriteStream, pieces: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  let ended = false;
  const done = new Promise<Buffer>((resolve, reject) => {
    t.on('data', (c: Buffer) => out.push(c));
    t.on('end', () => {
      ended = true;
      resolve(Buffer.concat(out));
    });
    t.on('error', (e) => {
      assert.equal(ended, false, "'end' must not precede an error");
      reject(e);
    });
  });
  Readable.from(pieces, { objectMode: false }).pipe(t as unknown as NodeJS.WritableStream);
  return done;
}
