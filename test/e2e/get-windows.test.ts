// The GET data path's shared memory: windows are read into slots, decrypted by the crypto
// worker and sent from the slot. Every slot must come back, however a GET ends (whole, cut off
// by the client mid-body, or failing on damage); when none is free, GETs still work (decrypted
// on the main thread); and a crypto worker that dies fails the GETs it was serving, not later
// ones.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { decryptStats, stopCryptoWorker } from '../../src/crypto/crypto-offload.ts';
import { returnSlot, slotsInUse, takeSlot, type Slot } from '../../src/shared/slots.ts';
import { startTestServer, type TestServer } from '../helpers/coffer.ts';

const MiB = 1024 * 1024;

async function bodyOf(srv: TestServer, key: string, range?: string): Promise<Buffer> {
  const r = await srv.s3.send(new GetObjectCommand({ Bucket: 'win', Key: key, ...(range ? { Range: range } : {}) }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

/** GETs `url` and destroys the connection after `after` bytes of body. */
function cutOff(url: string, afterBytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      let got = 0;
      res.on('data', (c: Buffer) => {
        got += c.length;
        if (got >= afterBytes) {
          req.destroy();
          resolve(got);
        }
      });
      res.on('end', () => resolve(got));
      res.on('error', () => resolve(got));
    });
    req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
    req.end();
  });
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('GET windows in shared slots', () => {
  let srv: TestServer;
  const big = randomBytes(9 * MiB + 12345);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  before(async () => {
    srv = await startTestServer();
    await srv.s3.send(new CreateBucketCommand({ Bucket: 'win' }));
    await srv.s3.send(new PutObjectCommand({ Bucket: 'win', Key: 'big', Body: big }));
  });
  after(async () => srv.stop());

  test('whole and ranged GETs give every slot back', async () => {
    const before = slotsInUse();
    assert.equal(sha(await bodyOf(srv, 'big')), sha(big));
    const r = await bodyOf(srv, 'big', `bytes=${MiB - 7}-${5 * MiB + 3}`);
    assert.ok(r.equals(big.subarray(MiB - 7, 5 * MiB + 4)));
    await until(() => slotsInUse() === before);
    assert.equal(slotsInUse(), before);
  });

  test('GETs cut off by the client mid-body give their slots back, and the server serves on', async () => {
    const before = slotsInUse();
    const url = await getSignedUrl(srv.s3, new GetObjectCommand({ Bucket: 'win', Key: 'big' }), { expiresIn: 300 });
    const cuts = await Promise.all(Array.from({ length: 24 }, (_, i) => cutOff(url, 1 + i * 300_000)));
    for (const n of cuts) assert.ok(n > 0 && n < big.length);
    await until(() => slotsInUse() === before);
    assert.equal(slotsInUse(), before, 'every slot of the cut-off GETs is free again');
    // Windows whose reads ended after their GET was given up (its key wiped) count as answered.
    assert.equal(decryptStats().waiting, 0, 'no window left counted as waiting for the worker');
    assert.equal(sha(await bodyOf(srv, 'big')), sha(big));
  });

  test('with every slot taken, GETs decrypt on the main thread and still come back whole', async () => {
    const held: Slot[] = [];
    for (let s = takeSlot(); s; s = takeSlot()) held.push(s);
    try {
      assert.ok(held.length >= 8);
      assert.equal(sha(await bodyOf(srv, 'big')), sha(big));
      assert.ok((await bodyOf(srv, 'big', 'bytes=3000000-3999999')).equals(big.subarray(3_000_000, 4_000_000)));
    } finally {
      for (const s of held) returnSlot(s);
    }
  });

  test('many GETs at once: the main thread decrypts some windows while the worker is behind, every body whole', async () => {
    const before = decryptStats();
    const bodies = await Promise.all(Array.from({ length: 6 }, (_, i) => bodyOf(srv, 'big', i % 2 ? `bytes=${i * 1000}-${8 * MiB + i}` : undefined)));
    for (const [i, b] of bodies.entries()) {
      if (i % 2) assert.ok(b.equals(big.subarray(i * 1000, 8 * MiB + i + 1)), `ranged GET ${i}`);
      else assert.equal(sha(b), sha(big), `GET ${i}`);
    }
    const now = decryptStats();
    assert.ok(now.here > before.here, 'some windows decrypted on the main thread');
    assert.ok(now.worker > before.worker, 'and others in the worker');
    assert.equal(now.waiting, 0);
  });

  test('a crypto worker stopped mid-GET fails that GET (never wrong bytes); the next GET starts a new one', async () => {
    const url = await getSignedUrl(srv.s3, new GetObjectCommand({ Bucket: 'win', Key: 'big' }), { expiresIn: 300 });
    const got = await new Promise<{ bytes: Buffer; complete: boolean }>((resolve) => {
      const chunks: Buffer[] = [];
      const req = request(url, (res) => {
        let stopped = false;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          if (!stopped) {
            stopped = true;
            void stopCryptoWorker();
          }
        });
        res.on('end', () => resolve({ bytes: Buffer.concat(chunks), complete: res.complete }));
        res.on('error', () => resolve({ bytes: Buffer.concat(chunks), complete: false }));
        res.on('aborted', () => resolve({ bytes: Buffer.concat(chunks), complete: false }));
      });
      req.on('error', () => resolve({ bytes: Buffer.concat(chunks), complete: false }));
      req.end();
    });
    // Whatever arrived is a prefix of the object; the transfer either completed (the windows
    // were already decrypted) or was cut off, never padded with other bytes.
    assert.ok(got.bytes.equals(big.subarray(0, got.bytes.length)), 'only bytes of the object');
    if (got.complete) assert.equal(got.bytes.length, big.length);
    assert.equal(sha(await bodyOf(srv, 'big')), sha(big));
  });
});
