// Multi-stream MD5 (crypto/md5-lanes.ts) and the worker that runs it for uploads
// (crypto/md5-offload.ts, md5-worker.ts): the same digests as node's MD5 for any data, any
// number of streams hashed side by side, any chunking and interleaving, streams dropped midway,
// and more concurrent uploads than the worker has slots.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { CONTROL_BYTES, LANES, Md5Lanes, newMd5State } from '../../src/crypto/md5-lanes.ts';
import { OffloadedMd5, stopMd5Worker } from '../../src/crypto/md5-offload.ts';
import { alignedSharedMemory, copyIntoShared } from '../../src/shared/aligned-memory.ts';

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

describe('Md5Lanes', () => {
  const PAGES = 64; // 4 MiB
  const memory = new WebAssembly.Memory({ initial: PAGES, maximum: PAGES, shared: true });
  const bytes = new Uint8Array(memory.buffer as ArrayBufferLike);
  const engine = new Md5Lanes(memory, 0);
  const DATA_AT = 65536;
  assert.ok(CONTROL_BYTES <= DATA_AT);

  /** Hashes `streams` (laid out one after the other from DATA_AT) side by side, then each tail. */
  function hashTogether(streams: Buffer[], split: number): string[] {
    const ptrs: number[] = [];
    let at = DATA_AT;
    for (const s of streams) {
      bytes.set(s, at);
      ptrs.push(at);
      at += s.length + 64;
    }
    const states = streams.map(() => newMd5State());
    const blocks = Math.min(...streams.map((s) => Math.floor(s.length / 64)));
    // Two calls, to carry state across calls; then each stream's remaining whole blocks alone.
    const first = Math.min(split, blocks);
    if (first > 0) engine.lanes(states, ptrs, first);
    if (blocks - first > 0)
      engine.lanes(
        states,
        ptrs.map((p) => p + first * 64),
        blocks - first,
      );
    return streams.map((s, i) => {
      const whole = Math.floor(s.length / 64);
      if (whole > blocks) engine.one(states[i]!, ptrs[i]! + blocks * 64, whole - blocks);
      return engine.finish(states[i]!, s.subarray(whole * 64)).toString('hex');
    });
  }

  test('the digests of the empty string and RFC 1321 test suite', () => {
    const suite = ['', 'a', 'abc', 'message digest', 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', '1234567890'.repeat(8)];
    const expected = [
      'd41d8cd98f00b204e9800998ecf8427e',
      '0cc175b9c0f1b6a831c399e269772661',
      '900150983cd24fb0d6963f7d28e17f72',
      'f96b697d7cb7938d525a2f31aaf161d0',
      'c3fcd3d76192e4007dfb496cca67e13b',
      'd174ab98d277d9f5a5611c2c9f419d9f',
      '57edf4a22be3c955ac49da2e2107b67a',
    ];
    for (let i = 0; i < suite.length; i++) assert.equal(hashTogether([Buffer.from(suite[i]!)], 0)[0], expected[i], JSON.stringify(suite[i]));
  });

  test('every tail length 0..63 around the padding boundary (55, 56)', () => {
    for (let tail = 0; tail < 64; tail++) {
      const data = randomBytes(128 + tail);
      assert.equal(hashTogether([data], 1)[0], md5(data), `tail ${tail}`);
    }
  });

  test('1 to LANES streams side by side: the same digests as node, for any lengths', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 40_000 }), { minLength: 1, maxLength: LANES }), fc.integer({ min: 0, max: 700 }), (lengths, split) => {
        const streams = lengths.map((n) => randomBytes(n));
        assert.deepEqual(hashTogether(streams, split), streams.map(md5));
      }),
      { numRuns: 60 },
    );
  });

  test('block() hashes a block held outside the memory', () => {
    const data = randomBytes(64 * 3 + 5);
    const s = newMd5State();
    for (let i = 0; i < 3; i++) engine.block(s, data.subarray(i * 64, i * 64 + 64));
    assert.equal(engine.finish(s, data.subarray(192)).toString('hex'), md5(data));
    assert.throws(() => engine.block(newMd5State(), new Uint8Array(63)), RangeError);
  });
});

describe('copyIntoShared', () => {
  test('copies sources of any alignment into shared memory exactly, touching nothing else', () => {
    const target = Buffer.from(alignedSharedMemory(65536));
    const source = randomBytes(10_000);
    for (const [from, length, at] of [[0, 4096, 0], [3, 5000, 8], [1, 9999, 17], [7, 1, 65535], [5, 0, 100]] as const) {
      target.fill(0xee);
      copyIntoShared(target, at, source.subarray(from, from + length));
      assert.ok(target.subarray(at, at + length).equals(source.subarray(from, from + length)), `${from}/${length}/${at}`);
      assert.ok(target.subarray(0, at).every((b) => b === 0xee));
      assert.ok(target.subarray(at + length).every((b) => b === 0xee));
    }
  });
});

describe('OffloadedMd5 (the upload MD5 worker)', () => {
  after(() => stopMd5Worker());

  /**
   * Feeds each stream in its chunks, the streams interleaved in `order`, awaiting backpressure;
   * the streams in `ended` are told their end (end()) as soon as their last chunk is given, and
   * their digests asked for (digest()) only once every stream has been fed, as an upload asks
   * once its blob is durable.
   */
  async function run(streams: Buffer[][], order: number[], ended: number[] = []): Promise<string[]> {
    const hashes = streams.map(() => new OffloadedMd5());
    const next = streams.map(() => 0);
    for (const i of order) {
      const s = i % streams.length;
      const chunk = streams[s]![next[s]!];
      if (!chunk) continue;
      next[s]!++;
      await hashes[s]!.update(chunk);
      if (next[s] === streams[s]!.length && ended.includes(s)) hashes[s]!.end();
    }
    for (let s = 0; s < streams.length; s++) {
      for (; next[s]! < streams[s]!.length; next[s]!++) await hashes[s]!.update(streams[s]![next[s]!]!);
      if (ended.includes(s)) hashes[s]!.end();
    }
    return Promise.all(hashes.map(async (h) => (await h.digest()).toString('hex')));
  }

  test('concurrent streams in any chunking and interleaving get node\'s digests', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.integer({ min: 0, max: 300_000 }), { maxLength: 6 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.array(fc.nat({ max: 9 }), { maxLength: 10 }),
        async (chunking, order, ended) => {
          const streams = chunking.map((sizes) => sizes.map((n) => randomBytes(n)));
          const got = await run(streams, order, ended);
          assert.deepEqual(
            got,
            streams.map((chunks) => md5(Buffer.concat(chunks))),
          );
        },
      ),
      { numRuns: 25 },
    );
  });

  test('a large stream (past the bytes allowed in flight) beside small ones', async () => {
    const big = Array.from({ length: 24 }, () => randomBytes(256 * 1024 + 1));
    const small = [[randomBytes(1000)], [randomBytes(70_000), randomBytes(3)], []];
    const got = await run([big, ...small], [0, 1, 0, 2, 0, 3, 0, 0, 0]);
    assert.deepEqual(got, [big, ...small].map((c) => md5(Buffer.concat(c))));
  });

  test('streams told their end wait for company until a digest is asked for, and then give it', async () => {
    // Three ended uploads of 1 MiB and one still sending: fewer than the four lanes, none
    // backlogged, so the worker holds them; each digest() must still come (and be right).
    const data = Array.from({ length: 4 }, () => randomBytes(1024 * 1024));
    const hashes = data.map(() => new OffloadedMd5());
    for (let i = 0; i < 4; i++) await hashes[i]!.update(data[i]!.subarray(0, i === 3 ? 300_000 : undefined));
    for (let i = 0; i < 3; i++) hashes[i]!.end();
    assert.equal((await hashes[1]!.digest()).toString('hex'), md5(data[1]!));
    await hashes[3]!.update(data[3]!.subarray(300_000));
    const rest = await Promise.all([0, 2, 3].map(async (i) => (await hashes[i]!.digest()).toString('hex')));
    assert.deepEqual(rest, [0, 2, 3].map((i) => md5(data[i]!)));
  });

  test('an ended stream dropped before its digest is asked for gives its slots back', async () => {
    // Ended and dropped uploads, over and over, more bytes than the pool's slots hold (32 MiB):
    // if their batches were kept, a later update would wait for a slot forever.
    const chunk = randomBytes(1024 * 1024);
    for (let i = 0; i < 40; i++) {
      const h = new OffloadedMd5();
      await h.update(chunk);
      h.end();
      h.discard();
    }
    const last = new OffloadedMd5();
    await last.update(chunk);
    assert.equal((await last.digest()).toString('hex'), md5(chunk));
  });

  test('a stream dropped midway does not disturb the others, and gives its slots back', async () => {
    const keep = new OffloadedMd5();
    const drop = new OffloadedMd5();
    const a = randomBytes(900_000);
    await keep.update(a.subarray(0, 300_000));
    await drop.update(randomBytes(600_000));
    drop.discard();
    await keep.update(a.subarray(300_000));
    assert.equal((await keep.digest()).toString('hex'), md5(a));
  });

  test('more uploads at once than the worker has slots: partly filled slots go out, nobody waits forever', async () => {
    const n = 200; // the pool has 128 slots
    const hashes = Array.from({ length: n }, () => new OffloadedMd5());
    const data = Array.from({ length: n }, (_, i) => randomBytes(1 + ((i * 7919) % 5000)));
    // Every upload takes a slot and leaves it partly filled...
    await Promise.all(hashes.map((h, i) => h.update(data[i]!.subarray(0, 1))));
    // ...then the rest, all at once.
    await Promise.all(hashes.map((h, i) => h.update(data[i]!.subarray(1))));
    const got = await Promise.all(hashes.map(async (h) => (await h.digest()).toString('hex')));
    assert.deepEqual(got, data.map(md5));
  });
});
