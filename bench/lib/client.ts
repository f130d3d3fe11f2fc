// The load generator's S3 client: node's http/https with a keep-alive Agent and the tiny SigV4
// signer, nothing else on the data path. Bodies are a Buffer (sent with one end()) or an
// iterable of Buffers (written with backpressure, never collected). Response bodies are counted,
// optionally hashed, and never kept (except a few KiB of an error body).
import { createHash, type Hash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { RawHttpPool } from './raw-http.ts';
import { objectPath, SigV4Signer, type Credentials } from './sigv4.ts';

/** BENCH_CLIENT=node uses node's http/https with a keep-alive Agent; default: the raw client. */
export const CLIENT_KIND: 'raw' | 'node' = process.env.BENCH_CLIENT === 'node' ? 'node' : 'raw';

export interface EndpointSpec {
  /** e.g. http://127.0.0.1:9000 */
  url: string;
  /** PEM CA bundle (HTTPS). */
  ca?: Buffer;
  creds: Credentials;
  /** Extra headers on every object PUT (e.g. SSE-KMS). They are signed. */
  putHeaders?: Record<string, string>;
}

export interface Result {
  status: number;
  /** Response body bytes received. */
  bytes: number;
  headers: Record<string, string | string[] | undefined>;
  /** Hex SHA-256 of the response body, when asked for. */
  sha256?: string;
  /** Start of the body of an error response. */
  errorBody?: string;
}

export class HttpError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly result: Result,
  ) {
    super(`${method} ${path}: HTTP ${result.status} ${(result.errorBody ?? '').replace(/\s+/g, ' ').slice(0, 300)}`);
  }
}

export type Body = Buffer | Iterable<Buffer> | AsyncIterable<Buffer>;

export class S3Client {
  readonly agent: http.Agent;
  readonly raw: RawHttpPool | undefined;
  readonly signer: SigV4Signer;
  readonly host: string;
  readonly hostname: string;
  readonly port: number;
  readonly secure: boolean;

  constructor(
    readonly spec: EndpointSpec,
    maxSockets = 64,
    readonly kind: 'raw' | 'node' = CLIENT_KIND,
    /** The SigV4 service name: s3, or kms for KMS JSON requests (bench/lib/kms.ts). */
    service = 's3',
  ) {
    const u = new URL(spec.url);
    this.secure = u.protocol === 'https:';
    this.hostname = u.hostname;
    this.port = Number(u.port || (this.secure ? 443 : 80));
    this.host = u.host;
    const opts = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' as const };
    this.agent = this.secure ? new https.Agent({ ...opts, ...(spec.ca ? { ca: spec.ca } : {}) }) : new http.Agent(opts);
    this.signer = new SigV4Signer(spec.creds, service);
    this.raw = kind === 'raw' ? new RawHttpPool(this.hostname, this.port, this.secure, spec.ca) : undefined;
  }

  close(): void {
    this.agent.destroy();
    this.raw?.close();
  }

  /** One request. Resolves for any status (check `status`); rejects on a transport error. */
  request(
    method: string,
    path: string,
    opts: { body?: Body; contentLength?: number; headers?: Record<string, string>; hash?: boolean; timeoutMs?: number; payloadHash?: string } = {},
  ): Promise<Result> {
    const headers = this.signer.sign(method, this.host, path, opts.headers ?? {}, opts.payloadHash);
    const body = opts.body;
    if (body !== undefined) {
      const len = Buffer.isBuffer(body) ? body.length : opts.contentLength;
      if (len === undefined) throw new Error('streamed bodies need contentLength');
      headers['content-length'] = String(len);
    } else if (method === 'PUT' || method === 'POST') {
      headers['content-length'] = '0';
    }
    if (this.raw) return this.raw.request(method, path, headers, body, opts);
    const mod = this.secure ? https : http;
    return new Promise<Result>((resolve, reject) => {
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        req.destroy();
        reject(e);
      };
      const req = mod.request(
        { method, hostname: this.hostname, port: this.port, path, headers, agent: this.agent },
        (res) => {
          const status = res.statusCode ?? 0;
          let bytes = 0;
          const h: Hash | undefined = opts.hash && status < 300 ? createHash('sha256') : undefined;
          const errChunks: Buffer[] = [];
          res.on('data', (c: Buffer) => {
            bytes += c.length;
            if (h) h.update(c);
            else if (status >= 300 && bytes <= 4096) errChunks.push(c);
          });
          res.on('end', () => {
            if (settled) return;
            settled = true;
            resolve({
              status,
              bytes,
              headers: res.headers,
              ...(h ? { sha256: h.digest('hex') } : {}),
              ...(status >= 300 ? { errorBody: Buffer.concat(errChunks).toString('utf8') } : {}),
            });
          });
          res.on('error', fail);
          res.on('aborted', () => fail(new Error(`${method} ${path}: response aborted after ${bytes} bytes`)));
        },
      );
      req.on('error', fail);
      req.setTimeout(opts.timeoutMs ?? 120_000, () => fail(new Error(`${method} ${path}: timed out`)));
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else void writeStreamed(req, body).catch(fail);
    });
  }

  async createBucket(bucket: string): Promise<void> {
    const r = await this.request('PUT', objectPath(bucket));
    // 409 BucketAlreadyOwnedByYou is fine for a re-run.
    if (r.status >= 300 && r.status !== 409) throw new HttpError('PUT', objectPath(bucket), r);
  }

  /** `headers` are sent (and signed) besides the endpoint's `putHeaders`. */
  async put(bucket: string, key: string, body: Body, contentLength?: number, headers?: Record<string, string>): Promise<Result> {
    const path = objectPath(bucket, key);
    const all = this.spec.putHeaders || headers ? { ...this.spec.putHeaders, ...headers } : undefined;
    return this.request('PUT', path, {
      body,
      ...(contentLength !== undefined ? { contentLength } : {}),
      ...(all ? { headers: all } : {}),
    });
  }

  async get(bucket: string, key: string, hash = false, headers?: Record<string, string>): Promise<Result> {
    return this.request('GET', objectPath(bucket, key), { hash, ...(headers ? { headers } : {}) });
  }
}

async function writeStreamed(req: http.ClientRequest, body: Iterable<Buffer> | AsyncIterable<Buffer>): Promise<void> {
  for await (const chunk of body) {
    if (req.destroyed) return;
    if (!req.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          req.off('drain', done);
          req.off('close', done);
          resolve();
        };
        req.on('drain', done);
        req.on('close', done);
      });
    }
  }
  req.end();
}
