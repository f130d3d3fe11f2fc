// End to end with the real AWS SDK: an S3Client talks HTTP to a tiny node:http server that runs
// verifySigV4 on req.url / req.headersDistinct and pipes the body through createPayloadDecoder.
// Covers the SDK's own path/query encoding for tricky keys, checksum headers, aws-chunked
// uploads with unsigned trailers, and the errors the SDK surfaces.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type ChecksumAlgorithm } from '@aws-sdk/client-s3';
import { createPayloadDecoder, verifySigV4, type AuthResult, type VerifiedChecksum } from '../../src/auth/index.ts';
import { isS3Error } from '../../src/shared/errors.ts';
import { CRED, TRICKY_KEYS, lookup } from './helpers.ts';

interface Seen {
  auth: AuthResult;
  rawPath: string;
  rawQuery: string;
  body: Buffer;
  checksum: VerifiedChecksum | undefined;
}

let server: http.Server;
let endpoint = '';
const seen: Seen[] = [];

const xmlEscape = (s: string) => s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c] as string);

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  try {
    const auth = await verifySigV4({ method: req.method ?? 'GET', rawPath, rawQuery, headers: req.headersDistinct }, lookup, {
      now: new Date(),
      service: 's3',
      region: 'us-east-1',
    });
    const decoder = createPayloadDecoder(auth, req.headers);
    const parts: Buffer[] = [];
    await pipeline(req, decoder, new Writable({ write: (c: Buffer, _e, cb) => (parts.push(c), cb()) }));
    seen.push({ auth, rawPath, rawQuery, body: Buffer.concat(parts), checksum: decoder.checksum });
    if (req.method === 'GET' && rawQuery.includes('list-type=2')) {
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bucket</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>');
    } else if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '4' });
      res.end('data');
    } else {
      res.writeHead(200, { etag: '"0"' });
      res.end();
    }
  } catch (e) {
    req.resume();
    const err = isS3Error(e) ? e : { code: 'InternalError', status: 500, message: String(e) };
    res.writeHead(err.status, { 'content-type': 'application/xml' });
    res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${err.code}</Code><Message>${xmlEscape(err.message)}</Message></Error>`);
  }
}

function client(secret = CRED.secretKey): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: { accessKeyId: CRED.accessKeyId, secretAccessKey: secret },
  });
}

before(async () => {
  process.removeAllListeners('warning'); // the SDK warns about Node 20 support
  server = http.createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

describe('real S3Client against verifySigV4 + createPayloadDecoder', () => {
  it('PutObject with tricky keys (string bodies, CRC32 checksum header)', async () => {
    const s3 = client();
    for (const key of TRICKY_KEYS) {
      seen.length = 0;
      await s3.send(new PutObjectCommand({ Bucket: 'bucket', Key: key, Body: `body of ${key}` }));
      const s = seen[0];
      assert.equal(s.auth.kind, 'signed');
      assert.equal(s.body.toString(), `body of ${key}`);
      assert.equal(s.checksum?.algorithm, 'CRC32');
      assert.equal(s.checksum?.source, 'header');
      const decodedKey = s.rawPath.slice('/bucket/'.length).split('/').map(decodeURIComponent).join('/');
      assert.equal(decodedKey, key);
    }
  });

  it('GetObject and ListObjectsV2 with tricky query values', async () => {
    const s3 = client();
    seen.length = 0;
    const got = await s3.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'a b/ü', VersionId: 'v+1 /=&?', Range: 'bytes=0-3' }));
    assert.equal(await got.Body?.transformToString(), 'data');
    await s3.send(new ListObjectsV2Command({ Bucket: 'bucket', Prefix: 'dir a+b/ü~!*()', Delimiter: '/', StartAfter: 'x=y&z', MaxKeys: 7 }));
    assert.equal(seen.length, 2);
    assert.ok(seen.every((s) => s.auth.kind === 'signed'));
  });

  for (const alg of ['CRC32', 'CRC32C', 'SHA1', 'SHA256'] as ChecksumAlgorithm[]) {
    it(`streams an aws-chunked upload with a ${alg} trailer`, async () => {
      const s3 = client();
      seen.length = 0;
      const blocks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(10_000, i));
      const total = Buffer.concat(blocks);
      await s3.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'stream', Body: Readable.from(blocks), ContentLength: total.length, ChecksumAlgorithm: alg }));
      const s = seen[0];
      assert.ok(s.auth.kind === 'signed');
      assert.deepEqual(s.auth.payload, { type: 'streaming-unsigned-trailer' });
      assert.deepEqual(s.body, total);
      assert.equal(s.checksum?.algorithm, alg);
      assert.equal(s.checksum?.source, 'trailer');
    });
  }

  it('surfaces SignatureDoesNotMatch and BadDigest to the SDK', async () => {
    await assert.rejects(client('wrong-secret').send(new PutObjectCommand({ Bucket: 'bucket', Key: 'k', Body: 'x' })), { name: 'SignatureDoesNotMatch' });
    await assert.rejects(client().send(new PutObjectCommand({ Bucket: 'bucket', Key: 'k', Body: 'x', ChecksumCRC32: 'AAAAAA==' })), {
      name: 'BadDigest',
      message: 'The CRC32 you specified did not match the calculated checksum.',
    });
  });
});
