// A minimal HTTP/1.1 client for the load generator: keep-alive connections from net/tls with a
// fixed per-connection read buffer (the `onread` option), so receiving costs no allocation. Node's
// http client allocates a fresh 64 KiB buffer per socket read; on this machine that costs a page
// fault per 4 KiB received and about one core for ~900 MB/s, which would make the client, not the
// server, the limit of a GET benchmark (see docs/performance.md). Responses are parsed just enough:
// status, headers, Content-Length or chunked bodies; bodies are counted and optionally hashed.
import { createHash, type Hash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  bytes: number;
  sha256?: string;
  /** First 4 KiB of the body of an error response. */
  errorBody?: string;
}

export type RawBody = Buffer | Iterable<Buffer> | AsyncIterable<Buffer>;

const READ_BUFFER = 256 * 1024;
const CRLF2 = Buffer.from('\r\n\r\n');

interface Pending {
  resolve(r: RawResponse): void;
  reject(e: Error): void;
  hash: boolean;
  method: string;
}

class Conn {
  readonly socket: net.Socket;
  reusable = true;
  /** Body bytes of the current request handed to the socket so far. */
  bodyWritten = 0;
  #pending: Pending | undefined;
  #head: Buffer[] = [];
  #headLen = 0;
  #status = 0;
  #headers: Record<string, string> = {};
  #state: 'idle' | 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailer' = 'idle';
  #remaining = 0;
  #bytes = 0;
  #hash: Hash | undefined;
  #err: Buffer[] = [];
  #errLen = 0;
  #line = '';
  #closed = false;
  #onClose: () => void;

  constructor(host: string, port: number, secure: boolean, ca: Buffer | undefined, onClose: () => void) {
    this.#onClose = onClose;
    const onread = { buffer: Buffer.allocUnsafe(READ_BUFFER), callback: (n: number, buf: Buffer) => this.#onData(buf, n) };
    this.socket = secure
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...(ca ? { ca } : {}), onread } as tls.ConnectionOptions)
      : net.connect({ host, port, onread } as net.NetConnectOpts);
    this.socket.setNoDelay(true);
    this.socket.on('error', (e) => this.#fail(e));
    this.socket.on('close', () => {
      this.#closed = true;
      this.reusable = false;
      this.#fail(new Error('connection closed before the response ended'));
      this.#onClose();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  #fail(e: Error): void {
    const p = this.#pending;
    this.#pending = undefined;
    this.reusable = false;
    if (p) {
      p.reject(e);
      this.socket.destroy();
    }
  }

  start(p: Pending): void {
    this.#pending = p;
    this.#state = 'head';
    this.#head = [];
    this.#headLen = 0;
    this.#bytes = 0;
    this.#err = [];
    this.#errLen = 0;
    this.#hash = undefined;
  }

  /** Writes the request; resolves when all of it is handed to the socket. */
  async send(head: string, body: RawBody | undefined): Promise<void> {
    const s = this.socket;
    this.bodyWritten = 0;
    if (body === undefined) {
      s.write(head);
      return;
    }
    if (Buffer.isBuffer(body)) {
      s.cork();
      s.write(head);
      s.write(body);
      this.bodyWritten = body.length;
      s.uncork();
      return;
    }
    s.write(head);
    for await (const chunk of body) {
      if (this.#closed || this.#state === 'idle') return; // answered early (e.g. an error): stop sending
      this.bodyWritten += chunk.length;
      if (!s.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            s.off('drain', done);
            s.off('close', done);
            resolve();
          };
          s.on('drain', done);
          s.on('close', done);
        });
      }
    }
  }

  #onData(buf: Buffer, n: number): boolean {
    let off = 0;
    while (off < n) {
      if (!this.#pending) {
        // Bytes with no request outstanding: the server misbehaved; stop using this connection.
        this.reusable = false;
        this.socket.destroy();
        return false;
      }
      switch (this.#state) {
        case 'head': {
          // Headers are small: copy until the blank line, then hand the rest to the body.
          const piece = buf.subarray(off, n);
          const joined = this.#headLen ? Buffer.concat([...this.#head, piece]) : piece;
          const end = joined.indexOf(CRLF2);
          if (end < 0) {
            this.#head.push(Buffer.from(piece));
            this.#headLen += piece.length;
            if (this.#headLen > 64 * 1024) this.#fail(new Error('response header too large'));
            return true;
          }
          const consumed = end + 4 - this.#headLen;
          this.#parseHead(joined.subarray(0, end).toString('latin1'));
          off += consumed;
          break;
        }
        case 'body': {
          const take = Math.min(this.#remaining, n - off);
          this.#consume(buf.subarray(off, off + take));
          off += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#finish();
          break;
        }
        case 'chunk-size':
        case 'chunk-crlf':
        case 'trailer': {
          const nl = buf.indexOf(10, off);
          const stop = nl < 0 || nl >= n ? n : nl + 1;
          this.#line += buf.subarray(off, stop).toString('latin1');
          off = stop;
          if (!this.#line.endsWith('\n')) break;
          const line = this.#line.trim();
          this.#line = '';
          if (this.#state === 'chunk-crlf') this.#state = 'chunk-size';
          else if (this.#state === 'trailer') {
            if (line === '') this.#finish();
          } else {
            const size = parseInt(line.split(';')[0]!, 16);
            if (!Number.isFinite(size)) return void this.#fail(new Error('bad chunk size')), false;
            if (size === 0) this.#state = 'trailer';
            else {
              this.#remaining = size;
              this.#state = 'chunk-data';
            }
          }
          break;
        }
        case 'chunk-data': {
          const take = Math.min(this.#remaining, n - off);
          this.#consume(buf.subarray(off, off + take));
          off += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = 'chunk-crlf';
          break;
        }
        case 'idle':
          this.reusable = false;
          this.socket.destroy();
          return false;
      }
    }
    return true;
  }

  #parseHead(text: string): void {
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!m) return this.#fail(new Error(`bad status line: ${lines[0]}`));
    this.#status = Number(m[1]);
    const h: Record<string, string> = {};
    for (let i = 1; i < lines.length; i++) {
      const c = lines[i]!.indexOf(':');
      if (c > 0) h[lines[i]!.slice(0, c).trim().toLowerCase()] = lines[i]!.slice(c + 1).trim();
    }
    this.#headers = h;
    if (h.connection?.toLowerCase() === 'close') this.reusable = false;
    const p = this.#pending!;
    if (p.hash && this.#status < 300) this.#hash = createHash('sha256');
    const noBody = p.method === 'HEAD' || this.#status === 204 || this.#status === 304 || (this.#status >= 100 && this.#status < 200);
    if (this.#status >= 100 && this.#status < 200) {
      this.#state = 'head'; // 100 Continue and friends: the real response follows
      return;
    }
    if (noBody) return this.#finish();
    if (h['transfer-encoding']?.toLowerCase().includes('chunked')) {
      this.#state = 'chunk-size';
      this.#line = '';
      return;
    }
    if (h['content-length'] === undefined) return this.#fail(new Error('response without Content-Length or chunked encoding'));
    this.#remaining = Number(h['content-length']);
    if (this.#remaining === 0) return this.#finish();
    this.#state = 'body';
  }

  #consume(piece: Buffer): void {
    this.#bytes += piece.length;
    if (this.#hash) this.#hash.update(piece);
    else if (this.#status >= 300 && this.#errLen < 4096) {
      this.#err.push(Buffer.from(piece));
      this.#errLen += piece.length;
    }
  }

  #finish(): void {
    const p = this.#pending!;
    this.#pending = undefined;
    this.#state = 'idle';
    p.resolve({
      status: this.#status,
      headers: this.#headers,
      bytes: this.#bytes,
      ...(this.#hash ? { sha256: this.#hash.digest('hex') } : {}),
      ...(this.#status >= 300 ? { errorBody: Buffer.concat(this.#err).toString('utf8') } : {}),
    });
  }
}

/** A pool of keep-alive connections to one host:port. */
export class RawHttpPool {
  #free: Conn[] = [];
  #all = new Set<Conn>();

  constructor(
    readonly host: string,
    readonly port: number,
    readonly secure: boolean,
    readonly ca?: Buffer,
  ) {}

  #take(): Conn {
    for (;;) {
      const c = this.#free.pop();
      if (!c) break;
      if (!c.closed && c.reusable) return c;
    }
    const c: Conn = new Conn(this.host, this.port, this.secure, this.ca, () => this.#all.delete(c));
    this.#all.add(c);
    return c;
  }

  request(method: string, path: string, headers: Record<string, string>, body: RawBody | undefined, opts: { hash?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
    const conn = this.#take();
    const bodyLength = Number(headers['content-length'] ?? 0);
    let head = `${method} ${path} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    head += '\r\n';
    return new Promise<RawResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        conn.reusable = false;
        conn.socket.destroy(new Error(`${method} ${path}: timed out`));
      }, opts.timeoutMs ?? 120_000);
      const done = () => {
        clearTimeout(timer);
        // Answered before the whole body went out (an early error): the connection is unusable.
        if (conn.bodyWritten < bodyLength) conn.reusable = false;
        if (conn.reusable && !conn.closed) this.#free.push(conn);
        else conn.socket.destroy();
      };
      conn.start({
        method,
        hash: !!opts.hash,
        resolve: (r) => {
          done();
          resolve(r);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      conn.send(head, body).catch((e: Error) => conn.socket.destroy(e));
    });
  }

  close(): void {
    for (const c of this.#all) c.socket.destroy();
    this.#all.clear();
    this.#free = [];
  }
}
