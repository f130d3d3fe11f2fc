// The upload data path's shared memory (src/crypto/seal-offload.ts): large uploads are placed in
// slots where their ciphertext goes, sealed there by the crypto worker and written from there.
// Every slot must come back however an upload ends (whole, cut off by the client, refused); with
// every slot taken, uploads are encrypted on the main thread instead; a crypto worker that dies
// fails the uploads it was sealing, not later ones; and nothing is left on disk by a failed one.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { stopCryptoWorker } from '../../src/crypto/crypto-offload.ts';
import { returnSlot, slotsInUse, takeSlot, type Slot } from '../../src/shared/slots.ts';
import { startTestServer, type TestServer } from '../helpers/coffer.ts';
import { filesUnder } from '../helpers/raw-s3.ts';

const MiB = 1024 * 1024;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

/**
 * PUTs `body` to a presigned URL, writing it in pieces with pauses; `during` runs once the first
 * `pauseAfter` bytes are sent. With `cutAfter`, the connection is destroyed after that many bytes.
 */
function slowPut(url: string, body: Buffer, opts: { pauseAfter: number; during?: () => Promise<void> | void; cutAfter?: number }): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', headers: { 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', (e) => (opts.cutAfter !== undefined ? resolve({ status: 0, text: e.message }) : reject(e)));
    const first = opts.cutAfter ?? opts.pauseAfter;
    req.write(body.subarray(0, first), async () => {
      await new Promise((r) => setTimeout(r, 100));
      await opts.during?.();
      if (opts.cutAfter !== undefined) {
        req.destroy();
        resolve({ status: 0, text: 'cut off' });
        return;
      }
      req.end(body.subarray(first));
    });
  });
}

describe('uploads sealed in shared slots', () => {
  let srv: TestServer;
  const blobsDir = () => join(srv.dataDir, 'blobs');
  // Blob files with bytes in them (files made ahead for uploads to come are empty).
  const written = () => filesUnder(blobsDir(), (p) => statSync(p).size > 0).length;

  before(async () => {
    srv = await startTestServer();
    await srv.s3.send(new CreateBucketCommand({ Bucket: 'upl' }));
  });
  after(async () => srv.stop());

  test('an upload holds slots while its body arrives and gives every one back; the object reads back whole', async () => {
    const body = randomBytes(7 * MiB + 4321);
    const url = await getSignedUrl(srv.s3, new PutObjectCommand({ Bucket: 'upl', Key: 'slow' }), { expiresIn: 300 });
    const before = slotsInUse();
    let during = 0;
    const r = await slowPut(url, body, { pauseAfter: 3 * MiB, during: () => void (during = slotsInUse() - before) });
    assert.equal(r.status, 200, r.text);
    assert.ok(during >= 1 && during <= 3, `slots held mid-upload: ${during}`);
    await until(() => slotsInUse() === before);
    assert.equal(slotsInUse(), before);
    const got = Buffer.from(await (await srv.s3.send(new GetObjectCommand({ Bucket: 'upl', Key: 'slow' }))).Body!.transformToByteArray());
    assert.equal(md5(got), md5(body));
    const head = await srv.s3.send(new HeadObjectCommand({ Bucket: 'upl', Key: 'slow' }));
    assert.equal(head.ETag, `"${md5(body)}"`, 'the ETag is the MD5 of the plaintext');
  });

  test('uploads cut off by the client give their slots back and leave no blob', async () => {
    const body = randomBytes(5 * MiB);
    const before = slotsInUse();
    const files = written();
    for (const cut of [1, 64 * 1024, MiB + 17, 3 * MiB]) {
      const url = await getSignedUrl(srv.s3, new PutObjectCommand({ Bucket: 'upl', Key: `cut-${cut}` }), { expiresIn: 300 });
      await slowPut(url, body, { pauseAfter: cut, cutAfter: cut });
    }
    await until(() => slotsInUse() === before && written() <= files);
    assert.equal(slotsInUse(), before, 'every slot is free again');
    assert.ok(written() <= files, 'no blob of a cut-off upload remains');
    await assert.rejects(srv.s3.send(new HeadObjectCommand({ Bucket: 'upl', Key: `cut-${3 * MiB}` })), { name: 'NotFound' });
    // And the server serves on.
    const again = randomBytes(2 * MiB);
    await srv.s3.send(new PutObjectCommand({ Bucket: 'upl', Key: 'after-cuts', Body: again }));
    assert.equal(md5(Buffer.from(await (await srv.s3.send(new GetObjectCommand({ Bucket: 'upl', Key: 'after-cuts' }))).Body!.transformToByteArray())), md5(again));
  });

  test('with every slot taken, uploads are encrypted on the main thread and read back whole', async () => {
    const held: Slot[] = [];
    for (let s = takeSlot(); s; s = takeSlot()) held.push(s);
    try {
      assert.ok(held.length >= 8);
      const body = randomBytes(3 * MiB + 1);
      await srv.s3.send(new PutObjectCommand({ Bucket: 'upl', Key: 'no-slots', Body: body }));
      const got = Buffer.from(await (await srv.s3.send(new GetObjectCommand({ Bucket: 'upl', Key: 'no-slots' }))).Body!.transformToByteArray());
      assert.equal(md5(got), md5(body));
    } finally {
      for (const s of held) returnSlot(s);
    }
  });

  test('a crypto worker stopped mid-upload fails that upload (nothing stored); the next upload starts a new one', async () => {
    const body = randomBytes(6 * MiB);
    const url = await getSignedUrl(srv.s3, new PutObjectCommand({ Bucket: 'upl', Key: 'worker-stopped' }), { expiresIn: 300 });
    const before = slotsInUse();
    const r = await slowPut(url, body, { pauseAfter: 2 * MiB, during: () => stopCryptoWorker() });
    assert.equal(r.status, 500, r.text);
    assert.match(r.text, /<Code>InternalError<\/Code>/);
    await assert.rejects(srv.s3.send(new HeadObjectCommand({ Bucket: 'upl', Key: 'worker-stopped' })), { name: 'NotFound' });
    await until(() => slotsInUse() === before);
    assert.equal(slotsInUse(), before);
    await srv.s3.send(new PutObjectCommand({ Bucket: 'upl', Key: 'worker-stopped', Body: body }));
    const got = Buffer.from(await (await srv.s3.send(new GetObjectCommand({ Bucket: 'upl', Key: 'worker-stopped' }))).Body!.transformToByteArray());
    assert.equal(md5(got), md5(body));
  });
});
