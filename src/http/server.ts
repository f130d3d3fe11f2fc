// HTTP and HTTPS listeners sharing one request handler. TLS 1.2 minimum. Requests whose header
// section is too large, or that do not parse, get an S3 error envelope, not a bare socket close;
// so does a request whose body stalls (RequestTimeout).
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import type { ListenAddress } from '../config/config.ts';
import type { Logger } from '../shared/logger.ts';
import type { RequestHandler } from '../s3api/app.ts';
import { errorBody, requestId } from '../s3api/app.ts';
import { S3Error } from '../shared/errors.ts';
import type { TlsMaterial } from './tls.ts';

export interface Listeners {
  http?: AddressInfo;
  https?: AddressInfo;
  close(): Promise<void>;
}

/**
 * TLS 1.2 at least; node's cipher list with AES-128-GCM moved first, and the server's order
 * honoured. OpenSSL clients (node, the AWS CLI, curl) list AES-256-GCM first, and every byte of
 * an object over HTTPS is sealed or opened once more by TLS on the main thread: AES-128-GCM has
 * 10 rounds to AES-256's 14 (OpenSSL here: 4.1 against 3.1 GB/s on 16 KiB records; HTTPS 1 MiB
 * GET +6.7% in interleaved A/B, docs/performance.md "Session 11"). Nothing weaker is added: the
 * same suites as node's default, in another order.
 */
const TLS_OPTIONS = {
  minVersion: 'TLSv1.2',
  ciphers: ['TLS_AES_128_GCM_SHA256', ...tls.DEFAULT_CIPHERS.split(':').filter((c) => c !== 'TLS_AES_128_GCM_SHA256')].join(':'),
  honorCipherOrder: true,
} as const satisfies tls.TlsOptions;

const SERVER_OPTIONS: http.ServerOptions = {
  // Large objects may take long; only idle sockets and slow headers are timed out.
  requestTimeout: 0,
  headersTimeout: 60_000,
  keepAliveTimeout: 65_000,
  maxHeaderSize: 16 * 1024,
};

/**
 * How long a request body may stall (no byte arriving) before the request fails, as AWS's
 * `400 RequestTimeout` does (AWS waits about 20 s; a minute here leaves room for a slow disk's
 * backpressure). Without it a client that stops mid-upload would hold its connection and a
 * partial blob forever: `requestTimeout` is off so large uploads may take as long as they need.
 */
export const BODY_IDLE_TIMEOUT_MS = 60_000;

/**
 * Watches a request while its body is incomplete: when no byte has arrived for `idleMs`, it
 * answers RequestTimeout (if nothing was sent yet) and closes the connection; the handler then
 * sees the body abort and discards what it wrote. Node's socket timeouts are not used, as they
 * would also fire while a complete request is being processed, and would stand in for the
 * keep-alive timeout between requests.
 */
function watchBody(req: http.IncomingMessage, res: http.ServerResponse, idleMs: number, log: Logger): void {
  if (idleMs <= 0 || req.complete) return;
  const socket = req.socket;
  let seen = socket.bytesRead;
  let since = Date.now();
  const stop = () => clearInterval(timer);
  const timer = setInterval(
    () => {
      if (req.complete || res.writableEnded || socket.destroyed) return stop();
      if (socket.bytesRead !== seen) {
        seen = socket.bytesRead;
        since = Date.now();
        return;
      }
      if (Date.now() - since < idleMs) return;
      stop();
      const id = String(res.getHeader('x-amz-request-id') ?? requestId());
      log.debug({ reqId: id }, 'request body stalled; closing the connection');
      // Destroying the request (not just the socket) is what makes its body stream fail, also
      // once the response has finished, so the handler discards what it wrote.
      const abort = () => {
        req.destroy();
        socket.destroy();
      };
      if (res.headersSent) {
        abort();
        return;
      }
      const body = errorBody(new S3Error('RequestTimeout'), id);
      res.statusCode = 400;
      res.shouldKeepAlive = false;
      res.setHeader('content-type', 'application/xml');
      res.setHeader('content-length', Buffer.byteLength(body));
      res.setHeader('connection', 'close');
      res.end(body, abort);
    },
    Math.max(10, Math.floor(idleMs / 4)),
  );
  timer.unref();
  req.once('end', stop);
  res.once('close', stop);
}

function onClientError(log: Logger) {
  return (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || (err as { bytesParsed?: number }).bytesParsed === 0 && err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const e =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? new S3Error('RequestHeaderSectionTooLarge')
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT'
          ? new S3Error('RequestTimeout')
          : new S3Error('InvalidRequest', 'The request could not be parsed.');
    const id = requestId();
    const body = errorBody(e, id);
    log.debug({ reqId: id, code: err.code }, 'client error');
    // The same envelope and request-id headers as every other S3 error (HostId is x-amz-id-2).
    socket.end(
      `HTTP/1.1 ${e.status} ${http.STATUS_CODES[e.status]}\r\n` +
        `x-amz-request-id: ${id}\r\nx-amz-id-2: ${Buffer.from(id).toString('base64')}\r\nServer: Coffer\r\n` +
        `Content-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  };
}

function listenOn(server: http.Server, addr: ListenAddress): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startListeners(opts: {
  handler: RequestHandler;
  http: ListenAddress | null;
  https: ListenAddress | null;
  tls?: TlsMaterial;
  log: Logger;
  /** See BODY_IDLE_TIMEOUT_MS; 0 disables. */
  bodyIdleTimeoutMs?: number;
}): Promise<Listeners> {
  const idleMs = opts.bodyIdleTimeoutMs ?? BODY_IDLE_TIMEOUT_MS;
  const serve = (secure: boolean) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    watchBody(req, res, idleMs, opts.log);
    opts.handler(req, res, secure);
  };
  const servers: http.Server[] = [];
  const out: Listeners = {
    close: async () => {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
    },
  };
  if (opts.http) {
    const s = http.createServer(SERVER_OPTIONS, serve(false));
    // Expect: 100-continue reaches the handler, which sends 100 only when it reads the body.
    s.on('checkContinue', serve(false));
    s.on('clientError', onClientError(opts.log));
    servers.push(s);
    out.http = await listenOn(s, opts.http);
  }
  if (opts.https) {
    if (!opts.tls) throw new Error('HTTPS needs TLS material');
    const s = https.createServer({ ...SERVER_OPTIONS, ...TLS_OPTIONS, cert: opts.tls.cert, key: opts.tls.key }, serve(true));
    s.on('checkContinue', serve(true));
    s.on('clientError', onClientError(opts.log));
    servers.push(s);
    out.https = await listenOn(s, opts.https);
  }
  return out;
}
