// Raw S3 requests for tests that need input the SDK will not produce: requests signed with the
// real @smithy/signature-v4 signer (node-crypto sha256) and sent with node:http exactly as built,
// plus assertions on the S3 XML error envelope and a blob-file counter for "nothing stored".
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { HttpRequest, buildQueryString } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../auth/helpers.ts';
import { ACCESS_KEY, SECRET_KEY } from './coffer.ts';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  raw: Buffer;
}

export interface RawRequest {
  method: string;
  /** Already percent-encoded path, e.g. `/bucket/key`. */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Sign the request (default true). */
  sign?: boolean;
  accessKey?: string;
  secret?: string;
  signingDate?: Date;
  region?: string;
  /** Host header value; default `127.0.0.1:<port>`. */
  host?: string;
}

/** Signs a request as an S3 client would (path not re-encoded, x-amz-content-sha256 added). */
export async function signRequest(r: RawRequest, port: number): Promise<{ path: string; headers: Record<string, string> }> {
  const host = r.host ?? `127.0.0.1:${port}`;
  const headers: Record<string, string> = { host, ...(r.headers ?? {}) };
  if (r.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
    headers['content-length'] = String(Buffer.byteLength(r.body));
  }
  const query = r.query ?? {};
  if (r.sign === false) {
    const qs = buildQueryString(query);
    return { path: r.path + (qs ? `?${qs}` : ''), headers };
  }
  const signer = new SignatureV4({
    service: 's3',
    region: r.region ?? 'us-east-1',
    credentials: { accessKeyId: r.accessKey ?? ACCESS_KEY, secretAccessKey: r.secret ?? SECRET_KEY },
    sha256: NodeSha256,
    uriEscapePath: false,
    applyChecksum: true,
  });
  const req = new HttpRequest({ method: r.method, protocol: 'http:', hostname: host.replace(/:\d+$/, ''), path: r.path, query, headers, body: r.body });
  const signed = (await signer.sign(req, { signingDate: r.signingDate ?? new Date() })) as unknown as HttpRequest;
  const qs = buildQueryString(signed.query as Record<string, string>);
  return { path: signed.path + (qs ? `?${qs}` : ''), headers: signed.headers as Record<string, string> };
}

/** Sends a (signed) request with node:http and collects the whole response. */
export async function rawRequest(port: number, r: RawRequest): Promise<RawResponse> {
  const { path, headers } = await signRequest(r, port);
  return send(port, r.method, path, headers, r.body);
}

export function send(port: number, method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: raw.toString('utf8'), raw });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The head of an HTTP/1.1 request as written on the wire (request line, headers, blank line). */
export function requestHead(method: string, signed: { path: string; headers: Record<string, string> }): string {
  return `${method} ${signed.path} HTTP/1.1\r\n${Object.entries(signed.headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}

/**
 * A client that gives up halfway: sends the request head and `body` (part of what the head
 * announced) on a raw socket, waits 100 ms and closes the connection.
 */
export async function sendPartly(port: number, method: string, signed: { path: string; headers: Record<string, string> }, body: Buffer): Promise<void> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  sock.write(requestHead(method, signed));
  sock.write(body);
  await new Promise((r) => setTimeout(r, 100));
  sock.destroy();
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** The text (entities decoded) of the first element with this name in an XML body, or undefined. */
export function xmlField(body: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(body);
  if (!m) return undefined;
  return m[1]!.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (all, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : (ENTITIES[e] ?? all),
  );
}

/**
 * Asserts an S3 error response: status, the XML envelope (Error with Code, Message, RequestId,
 * HostId) and the x-amz-request-id / x-amz-id-2 headers matching it. HEAD errors have no body.
 */
export function assertS3Error(res: RawResponse, code: string, status: number, message?: string | RegExp, method = ''): void {
  const ctx = `${res.status} ${res.body}`;
  assert.equal(res.status, status, `status: ${ctx}`);
  const id = res.headers['x-amz-request-id'];
  assert.ok(typeof id === 'string' && id.length > 0, `x-amz-request-id header: ${ctx}`);
  assert.ok(typeof res.headers['x-amz-id-2'] === 'string', `x-amz-id-2 header: ${ctx}`);
  if (method === 'HEAD') {
    assert.equal(res.raw.length, 0, 'a HEAD error has no body');
    return;
  }
  assert.match(res.headers['content-type'] ?? '', /^application\/xml/);
  assert.match(res.body, /^<\?xml version="1\.0" encoding="UTF-8"\?>\s*<Error>/, `XML envelope: ${ctx}`);
  assert.match(res.body, /<\/Error>\s*$/);
  assert.equal(xmlField(res.body, 'Code'), code, `code: ${ctx}`);
  const msg = xmlField(res.body, 'Message');
  assert.ok(msg !== undefined && msg.length > 0, `Message: ${ctx}`);
  if (typeof message === 'string') assert.equal(msg, message);
  else if (message) assert.match(msg, message);
  assert.equal(xmlField(res.body, 'RequestId'), id, 'RequestId equals the x-amz-request-id header');
  assert.equal(xmlField(res.body, 'HostId'), res.headers['x-amz-id-2'], 'HostId equals the x-amz-id-2 header');
}

/**
 * Every file under <dataDir>/blobs that holds bytes: committed blobs and any leftover of a write
 * alike. Empty files are left out: the store makes files ahead for new blobs (FsBlobStore.newId)
 * and they hold nothing until written (every blob holds at least its header).
 */
export function blobFiles(dataDir: string): string[] {
  return filesUnder(join(dataDir, 'blobs'), (p) => statSync(p).size > 0);
}

/** Every regular file under `root` (names only, sorted). */
export function filesUnder(root: string, keep: (path: string) => boolean = () => true): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (keep(p)) out.push(n);
    }
  };
  walk(root);
  return out.sort();
}

/** Waits until `cond` holds (polling), failing with `what` after `timeoutMs`. */
export async function eventually(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
