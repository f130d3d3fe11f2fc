// Virtual-hosted-style addressing (`<bucket>.coffer.test`, with the server's domain set) and
// path-style addressing side by side, with the real S3Client: every name resolves to 127.0.0.1
// through the HTTP agents' `lookup`. Keys with special characters round-trip in both styles,
// and what one style writes the other reads.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ACCESS_KEY, SECRET_KEY, startTestServer, type TestServer } from '../helpers/coffer.ts';
import { assertS3Error, rawRequest, send, xmlField } from '../helpers/raw-s3.ts';

const DOMAIN = 'coffer.test';

/** Resolves every host name to 127.0.0.1 (both callback shapes node uses). */
const lookup = ((_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) => {
  if (opts?.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
}) as unknown as LookupFunction;

let srv: TestServer;
let vhost: S3Client;
let vhostTls: S3Client;
const requests: { host: string; path: string }[] = [];

function client(endpoint: string, forcePathStyle: boolean, ca?: Buffer): S3Client {
  const c = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    requestHandler: new NodeHttpHandler({
      httpAgent: new http.Agent({ keepAlive: true, lookup }),
      httpsAgent: new https.Agent({ keepAlive: true, lookup, ...(ca ? { ca } : {}) }),
    }),
  });
  // Record what went on the wire, to prove which addressing style was used.
  c.middlewareStack.add(
    (next) => async (args) => {
      const r = args.request as { hostname: string; port?: number; path: string };
      requests.push({ host: r.hostname, path: r.path });
      return next(args);
    },
    { step: 'deserialize', name: 'recordHost' },
  );
  return c;
}

before(async () => {
  srv = await startTestServer({ config: { domain: DOMAIN } });
  const httpPort = srv.coffer.listeners.http!.port;
  const httpsPort = srv.coffer.listeners.https!.port;
  vhost = client(`http://${DOMAIN}:${httpPort}`, false);
  vhostTls = client(`https://${DOMAIN}:${httpsPort}`, false, readFileSync(srv.caPath));
});
after(async () => {
  vhost?.destroy();
  vhostTls?.destroy();
  await srv?.stop();
});

const KEYS = [
  'plain.txt',
  'with space.txt',
  'plus+sign',
  'a+b c',
  'percent%20literal',
  '100%',
  '%2F',
  'ünïcødé/文件.txt',
  'emoji 😀',
  'a//b',
  'trailing/',
  '/leading',
  'dir/sub/',
  'q?x#y',
  'a=b&c=d',
  "!'()*~",
  '[brackets]{braces}',
  'semi;colon,comma:colon',
  'back\\slash',
  '..dots../...',
];

async function text(c: S3Client, Bucket: string, Key: string): Promise<string> {
  const r = await c.send(new GetObjectCommand({ Bucket, Key }));
  return r.Body!.transformToString();
}

describe('virtual-hosted style', () => {
  const bucket = 'vhost-bucket';

  test('bucket operations go to <bucket>.coffer.test', async () => {
    requests.length = 0;
    await vhost.send(new CreateBucketCommand({ Bucket: bucket }));
    assert.deepEqual(requests.at(-1), { host: `${bucket}.${DOMAIN}`, path: '/' });
    await vhost.send(new HeadBucketCommand({ Bucket: bucket }));
    const loc = await vhost.send(new GetBucketLocationCommand({ Bucket: bucket }));
    assert.equal(loc.LocationConstraint ?? '', '');
    const list = await vhost.send(new ListBucketsCommand({}));
    assert.equal(requests.at(-1)!.host, DOMAIN);
    assert.ok(list.Buckets!.some((b) => b.Name === bucket));
    // The same bucket, seen path-style.
    await srv.s3.send(new HeadBucketCommand({ Bucket: bucket }));
  });

  test('keys with special characters round-trip, and path-style reads them', async () => {
    for (const key of KEYS) {
      requests.length = 0;
      const body = `vhost content of ${key}`;
      const put = await vhost.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      assert.equal(put.ServerSideEncryption, 'AES256');
      assert.equal(requests.at(-1)!.host, `${bucket}.${DOMAIN}`, 'sent virtual-hosted style');
      assert.ok(!requests.at(-1)!.path.startsWith(`/${bucket}/`), `path has no bucket: ${requests.at(-1)!.path}`);
      assert.equal(await text(vhost, bucket, key), body, key);
      assert.equal(await text(srv.s3, bucket, key), body, `path-style reads ${key}`);
      const head = await vhost.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      assert.equal(head.ContentLength, Buffer.byteLength(body));
    }
    const listed = await vhost.send(new ListObjectsV2Command({ Bucket: bucket }));
    assert.deepEqual(
      listed.Contents!.map((c) => c.Key).sort(),
      [...KEYS].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).sort(),
    );
    const url = await vhost.send(new ListObjectsV2Command({ Bucket: bucket, EncodingType: 'url' }));
    assert.deepEqual(url.Contents!.map((c) => decodeURIComponent(c.Key!.replace(/\+/g, ' '))).sort(), [...KEYS].sort());
  });

  test('copy, multipart (Location is virtual-hosted) and delete with special keys', async () => {
    const src = 'a+b c';
    const dst = 'copied/ü %.txt';
    await vhost.send(new CopyObjectCommand({ Bucket: bucket, Key: dst, CopySource: `${bucket}/${encodeURIComponent(src)}` }));
    assert.equal(await text(vhost, bucket, dst), `vhost content of ${src}`);

    const key = 'multi part/ü+1';
    const up = await vhost.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const p1 = await vhost.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: up.UploadId, PartNumber: 1, Body: 'only part' }));
    const done = await vhost.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag! }] } }),
    );
    const port = srv.coffer.listeners.http!.port;
    assert.equal(done.Location, `http://${bucket}.${DOMAIN}:${port}/multi%20part/%C3%BC%2B1`);
    assert.equal(done.Bucket, bucket);
    assert.equal(done.Key, key);
    assert.equal(await text(srv.s3, bucket, key), 'only part');

    await vhost.send(new DeleteObjectCommand({ Bucket: bucket, Key: dst }));
    const del = await vhost.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: key }, { Key: 'a//b' }, { Key: '/leading' }] } }));
    assert.deepEqual(del.Deleted!.map((d) => d.Key).sort(), ['/leading', 'a//b', key].sort());
    await assert.rejects(srv.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'a//b' })), { name: 'NotFound' });
    await assert.rejects(vhost.send(new HeadObjectCommand({ Bucket: bucket, Key: '/leading' })), { name: 'NotFound' });
  });

  test('a presigned virtual-hosted URL works', async () => {
    const url = new URL(await getSignedUrl(vhost, new GetObjectCommand({ Bucket: bucket, Key: 'with space.txt' }), { expiresIn: 60 }));
    assert.equal(url.hostname, `${bucket}.${DOMAIN}`);
    const res = await send(srv.coffer.listeners.http!.port, 'GET', url.pathname + url.search, { host: url.host });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.body, 'vhost content of with space.txt');
  });

  test('over HTTPS the generated certificate covers *.coffer.test', async () => {
    requests.length = 0;
    await vhostTls.send(new PutObjectCommand({ Bucket: bucket, Key: 'tls key', Body: 'over tls' }));
    assert.equal(requests.at(-1)!.host, `${bucket}.${DOMAIN}`);
    assert.equal(await text(vhostTls, bucket, 'tls key'), 'over tls');
  });

  test('errors name the bucket and key taken from the host and path', async () => {
    const port = srv.coffer.listeners.http!.port;
    await assert.rejects(vhost.send(new GetObjectCommand({ Bucket: bucket, Key: 'missing key' })), { name: 'NoSuchKey' });
    await assert.rejects(vhost.send(new HeadBucketCommand({ Bucket: 'no-such-vhost-bucket' })), { name: 'NotFound' });
    const nokey = await rawRequest(port, { method: 'GET', path: '/missing%20key', host: `${bucket}.${DOMAIN}:${port}` });
    assertS3Error(nokey, 'NoSuchKey', 404);
    assert.equal(xmlField(nokey.body, 'Key'), 'missing key');
    const nobucket = await rawRequest(port, { method: 'GET', path: '/', host: `no-such-vhost-bucket.${DOMAIN}:${port}` });
    assertS3Error(nobucket, 'NoSuchBucket', 404);
    assert.equal(xmlField(nobucket.body, 'BucketName'), 'no-such-vhost-bucket');
    const anon = await send(port, 'GET', '/missing%20key', { host: `${bucket}.${DOMAIN}:${port}` });
    assertS3Error(anon, 'AccessDenied', 403);
  });
});

describe('path style on the same server', () => {
  const bucket = 'path-bucket';

  test('keys with special characters round-trip, and virtual-hosted style reads them', async () => {
    await srv.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    for (const key of KEYS) {
      const body = `path content of ${key}`;
      await srv.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      assert.equal(await text(srv.s3, bucket, key), body, key);
      assert.equal(await text(vhost, bucket, key), body, `vhost reads ${key}`);
    }
    const listed = await srv.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    assert.deepEqual(listed.Contents!.map((c) => c.Key).sort(), [...KEYS].sort());
  });

  test('multipart Location is path-style', async () => {
    const key = 'mp/ü';
    const up = await srv.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const p1 = await srv.s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: up.UploadId, PartNumber: 1, Body: 'x' }));
    const done = await srv.s3.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag! }] } }),
    );
    assert.equal(done.Location, `${srv.httpUrl}/${bucket}/mp/%C3%BC`);
  });

  test('a Host that is the bare domain, or another name, is path-style', async () => {
    const port = srv.coffer.listeners.http!.port;
    for (const host of [`${DOMAIN}:${port}`, `127.0.0.1:${port}`, `localhost:${port}`, `other.example:${port}`]) {
      const c = client(`http://${host}`, true);
      try {
        assert.equal(await text(c, bucket, 'plain.txt'), 'path content of plain.txt', host);
      } finally {
        c.destroy();
      }
    }
  });
});
