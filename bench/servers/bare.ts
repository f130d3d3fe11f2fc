// The ceiling for any Node server on this machine: a bare HTTP(S) server that only moves bytes.
// PUT drains the body and answers 200 with an ETag-like header; GET streams as many bytes as the
// last PUT of that path had, from one preallocated buffer. No auth, no storage, no hashing.
//   node --import tsx bench/servers/bare.ts [--tls CERT KEY]
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

const BUF = Buffer.alloc(1024 * 1024, 0x61);
const sizes = new Map<string, number>();

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0]!;
  const isObject = path.indexOf('/', 1) > 0;
  if (req.method === 'PUT') {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      if (isObject) sizes.set(path, n);
      res.writeHead(200, { etag: `"${n.toString(16).padStart(32, '0')}"`, 'content-length': 0 });
      res.end();
    });
    return;
  }
  if (req.method === 'GET' || req.method === 'HEAD') {
    const size = sizes.get(path);
    if (size === undefined) {
      res.writeHead(404, { 'content-length': 0 });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
    if (req.method === 'HEAD') return void res.end();
    let left = size;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, BUF.length);
        left -= n;
        if (!res.write(n === BUF.length ? BUF : BUF.subarray(0, n))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
    return;
  }
  req.resume();
  res.writeHead(200, { 'content-length': 0 });
  res.end();
}

const opts: http.ServerOptions = { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 };
const tlsAt = process.argv.indexOf('--tls');
const server =
  tlsAt > 0
    ? https.createServer({ ...opts, cert: readFileSync(process.argv[tlsAt + 1]!), key: readFileSync(process.argv[tlsAt + 2]!) }, handler)
    : http.createServer(opts, handler);
server.listen(0, '127.0.0.1', () => {
  const a = server.address() as AddressInfo;
  process.stdout.write(`bare listening on ${tlsAt > 0 ? 'https' : 'http'}://127.0.0.1:${a.port}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
});
