// A client that stops sending in the middle of a request body gets AWS's 400 RequestTimeout
// and the connection is closed; nothing is stored (no object, no part, no blob file), the old
// object is unchanged and the server keeps serving. A slow but steady upload is not cut off,
// and an idle keep-alive connection is left alone. The same stores as a running Coffer are
// served here through a second listener whose idle limit is short (300 ms instead of 60 s).
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Readable, Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { startListeners, type Listeners } from '../../src/http/server.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { createS3Handler } from '../../src/s3api/app.ts';
import { ACCESS_KEY, clientFor, SECRET_KEY, startTestServer, type TestServer } from '../helpers/coffer.ts';
import { blobFiles, eventually, requestHead, signRequest, xmlField } from '../helpers/raw-s3.ts';

const IDLE_MS = 300;
const BUCKET = 'stall';
let srv: TestServer;
let listeners: Listeners;
let port: number;
let s3: S3Client;

before(async () => {
  srv = await startTestServer();
  const { coffer } = srv;
  const handler = createS3Handler({
    meta: coffer.stores.meta,
    objects: coffer.objects,
    owner: { id: 'owner', displayName: 'coffer' },
    region: 'us-east-1',
    credentials: (id) => coffer.access.identities.lookup(id),
    // What the handler logs: each request's line comes when its handling has settled.
    log: createLogger('info', sink),
    authorizer: coffer.access.authorizer,
    policies: coffer.access.policies,
  });
  listeners = await startListeners({ handler, http: { host: '127.0.0.1', port: 0 }, https: null, log: coffer.log, bodyIdleTimeoutMs: IDLE_MS });
  port = listeners.http!.port;
  s3 = clientFor(`http://127.0.0.1:${port}`);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'existing', Body: 'original' }));
});
after(async () => {
  s3?.destroy();
  await listeners?.close();
  await srv?.stop();
});

const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
    cb();
  },
});

/** The handling of request `id` has finished (its request line is logged): no upload is left waiting. */
async function settled(id: string): Promise<void> {
  await eventually(() => lines.some((l) => l.msg === 'request' && l.reqId === id), `request ${id} settled`);
}

async function content(key: string): Promise<string | undefined> {
  try {
    return await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();
  } catch (e) {
    if ((e as Error).name === 'NoSuchKey') return undefined;
    throw e;
  }
}

/** Sends the request head and `sent` bytes of a longer body, then stalls; resolves what the server said. */
async function stall(path: string, query: Record<string, string>, length: number, sent: number): Promise<{ text: string; closedByServer: boolean; ms: number }> {
  const signed = await signRequest({ method: 'PUT', path, query, headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-length': String(length) } }, port);
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  const started = Date.now();
  let text = '';
  sock.on('data', (d) => (text += d));
  sock.write(requestHead('PUT', signed));
  sock.write(Buffer.alloc(sent, 0x61));
  const closedByServer = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), 20 * IDLE_MS);
    sock.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
  sock.destroy();
  return { text, closedByServer, ms: Date.now() - started };
}

function assertRequestTimeout(r: { text: string; closedByServer: boolean; ms: number }): string {
  assert.ok(r.closedByServer, 'the server closed the connection');
  assert.ok(r.ms >= IDLE_MS, `not before the idle limit (${r.ms} ms)`);
  const [head, body] = r.text.split('\r\n\r\n', 2) as [string, string];
  assert.match(head, /^HTTP\/1\.1 400 /);
  assert.match(head, /\r\nconnection: close/i);
  const id = /\r\nx-amz-request-id: (\S+)/i.exec(head)?.[1];
  assert.ok(id, head);
  assert.equal(xmlField(body, 'Code'), 'RequestTimeout');
  assert.equal(xmlField(body, 'RequestId'), id);
  return id!;
}

test('a PUT whose body stalls → 400 RequestTimeout, connection closed, nothing stored', async () => {
  const before = blobFiles(srv.dataDir).join();
  for (const key of ['stalled-new', 'existing']) {
    await settled(assertRequestTimeout(await stall(`/${BUCKET}/${key}`, {}, 1024 * 1024, 100_000)));
  }
  await eventually(() => blobFiles(srv.dataDir).join() === before, 'no blob file left');
  assert.equal(await content('stalled-new'), undefined);
  assert.equal(await content('existing'), 'original');
  await s3.send(new ListBucketsCommand({}));
});

test('an UploadPart whose body stalls stores no part', async () => {
  const up = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'mpu' }));
  const before = blobFiles(srv.dataDir).join();
  await settled(assertRequestTimeout(await stall(`/${BUCKET}/mpu`, { partNumber: '1', uploadId: up.UploadId! }, 6 * 1024 * 1024, 70_000)));
  await eventually(() => blobFiles(srv.dataDir).join() === before, 'no blob file left');
  const parts = await s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: 'mpu', UploadId: up.UploadId }));
  assert.equal(parts.Parts?.length ?? 0, 0);
});

test('a slow but steady upload (longer than the idle limit in all) is not cut off', async () => {
  const pieces = 12;
  const body = Readable.from(
    (async function* () {
      for (let i = 0; i < pieces; i++) {
        await new Promise((r) => setTimeout(r, IDLE_MS / 3));
        yield Buffer.alloc(1000, 0x30 + i);
      }
    })(),
  );
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'slow', Body: body, ContentLength: pieces * 1000 }));
  assert.equal((await content('slow'))?.length, pieces * 1000);
});

test('an idle keep-alive connection is not closed by the body watchdog', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const get = async () => {
      const signed = await signRequest({ method: 'GET', path: `/${BUCKET}/existing` }, port);
      return new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: signed.path, headers: signed.headers, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket }));
        });
        req.on('error', reject);
        req.end();
      });
    };
    assert.equal((await get()).status, 200);
    await new Promise((r) => setTimeout(r, 3 * IDLE_MS));
    const second = await get();
    assert.equal(second.status, 200);
    assert.equal(second.reused, true, 'the same connection served the second request');
  } finally {
    agent.destroy();
  }
});
