// HTTP and HTTPS listeners sharing one request handler. TLS 1.2 minimum. Requests whose header
// section is too large, or that do not parse, get an S3 error envelope, not a bare socket close.
import http from 'node:http';
import https from 'node:https';
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

const SERVER_OPTIONS: http.ServerOptions = {
  // Large objects may take long; only idle sockets and slow headers are timed out.
  requestTimeout: 0,
  headersTimeout: 60_000,
  keepAliveTimeout: 65_000,
  maxHeaderSize: 16 * 1024,
};

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
}): Promise<Listeners> {
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
    const s = http.createServer(SERVER_OPTIONS, (req, res) => opts.handler(req, res, false));
    s.on('clientError', onClientError(opts.log));
    servers.push(s);
    out.http = await listenOn(s, opts.http);
  }
  if (opts.https) {
    if (!opts.tls) throw new Error('HTTPS needs TLS material');
    const s = https.createServer({ ...SERVER_OPTIONS, cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, (req, res) =>
      opts.handler(req, res, true),
    );
    s.on('clientError', onClientError(opts.log));
    servers.push(s);
    out.https = await listenOn(s, opts.https);
  }
  return out;
}
