// Uploads sealed in the crypto worker, in the stages their blob is written from
// (src/crypto/seal-offload.ts): the blob must be byte for byte what EncryptStream makes from the
// same key and salt, whatever the plaintext's size (segment ends, tags split across stage edges,
// the last stage a tag longer than the others) and however the source chunks it; a source that
// gives more or fewer bytes than announced, fails or is cut off, and a store that gives up,
// fail the stream; and every slot comes back.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { stopCryptoWorker } from '../../src/crypto/crypto-offload.ts';
import { md5SlotsInUse, stopMd5Worker } from '../../src/crypto/md5-offload.ts';
import { Meter } from '../../src/service/streams.ts';
import { createEncryptStream, encryptedSize, HEADER_SIZE, SEGMENT_SIZE, TAG_SIZE, type PlainTap } from '../../src/crypto/format.ts';
import { blobOffsetOf, SEAL_STAGE_BYTES, SealedStages } from '../../src/crypto/seal-offload.ts';
import { slotsInUse } from '../../src/shared/slots.ts';
import type { Stage } from '../../src/shared/stages.ts';
import { S3Error } from '../../src/shared/errors.ts';
import { keyFrom, pattern, randomChunks, run, seededRng } from './helpers.ts';

const S = SEAL_STAGE_BYTES;

/** Drains `src` as a store would: stages in order, copied out, released. */
async function collect(src: SealedStages, opts: { failAfter?: number; stageBytes?: number; from?: number } = {}): Promise<Buffer> {
  const stageBytes = opts.stageBytes ?? S;
  const parts: Buffer[] = [];
  let position = opts.from ?? 0;
  for (let st = await src.next(); st; st = await src.next()) {
    assert.equal(st.position, position, 'stages come in order');
    assert.ok(st.last || st.length === stageBytes, 'every stage but the last is full');
    assert.ok(st.bytes.length >= st.length + 4096 - (st.length % 4096), 'room for the last page');
    parts.push(Buffer.from(st.bytes.subarray(0, st.length)));
    position += st.length;
    src.release(st);
    if (opts.failAfter !== undefined && parts.length >= opts.failAfter) {
      src.destroy(new Error('the store gave up'));
      await assert.rejects(src.next(), /the store gave up/);
      break;
    }
    if (st.last) {
      assert.equal(await src.next(), undefined);
      break;
    }
  }
  return Buffer.concat(parts);
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
}

/** A tap that hashes what it sees, and says when the last byte passed. */
function md5Tap(): PlainTap & { hex(): string; ended: boolean } {
  const h = createHash('md5');
  const tap = {
    ended: false,
    update(c: Buffer) {
      h.update(c);
      return undefined;
    },
    end() {
      tap.ended = true;
    },
    hex: () => h.digest('hex'),
  };
  return tap;
}

/** The plaintext size whose last byte ends at blob offset `end` (undefined when `end` is in a tag). */
function endingAt(end: number): number | undefined {
  const x = end - HEADER_SIZE;
  const segment = Math.floor((x - 1) / (SEGMENT_SIZE + TAG_SIZE));
  const r = x - segment * (SEGMENT_SIZE + TAG_SIZE);
  return r >= 1 && r <= SEGMENT_SIZE ? segment * SEGMENT_SIZE + r : undefined;
}

/** Where a stage of `stageBytes` ends inside a (non-final) tag: the stage index, or undefined. */
function edgeInTag(stageBytes: number, maxStages: number): number | undefined {
  for (let k = 1; k <= maxStages; k++) if ((k * stageBytes - HEADER_SIZE) % (SEGMENT_SIZE + TAG_SIZE) >= SEGMENT_SIZE) return k;
  return undefined;
}

describe('sealed stages (crypto worker)', () => {
  after(() => stopCryptoWorker());

  const key = keyFrom('seal-offload');
  const sizes = [
    1,
    SEGMENT_SIZE - 1,
    SEGMENT_SIZE,
    SEGMENT_SIZE + 1,
    1024 * 1024,
    1024 * 1024 + 1,
    // The last segment's plaintext ending around the first and second stages' ends: its tag
    // across the edge, starting or ending on it, a plaintext byte either side.
    ...[-8, -1, 0, 1, 8, 15, 16, 17, 30].map((d) => endingAt(S - d)!),
    ...[-3, 0, 5, 16].map((d) => endingAt(2 * S - d)!),
    2 * S + 12345,
    5 * 1024 * 1024 + 1,
  ];

  for (const [i, size] of sizes.entries()) {
    test(`${size} bytes: the blob EncryptStream makes, whatever the chunks`, async () => {
      const plain = pattern(size);
      const expected = (await run(randomChunks(plain, i), createEncryptStream(key, { streamIndex: 3, plainSize: size, rng: seededRng(`s${i}`) }))).out;
      assert.equal(expected.length, encryptedSize(size));
      const before = slotsInUse();
      const tap = md5Tap();
      const src = SealedStages.open(key, Readable.from(randomChunks(plain, i + 100), { objectMode: false }), { streamIndex: 3, plainSize: size, tap, rng: seededRng(`s${i}`) });
      assert.ok(src, 'a slot was free');
      const got = await collect(src);
      assert.equal(got.length, expected.length);
      assert.ok(got.equals(expected), 'byte for byte');
      assert.equal(tap.hex(), createHash('md5').update(plain).digest('hex'), 'the tap saw every byte, in order');
      assert.ok(tap.ended);
      await until(() => slotsInUse() === before);
      assert.equal(slotsInUse(), before, 'every slot is back');
    });
  }

  test('the test sizes do put the last tag across a stage end', () => {
    const across = sizes.filter((p) => {
      const end = blobOffsetOf(p - 1) + 1;
      return end < S && end + TAG_SIZE > S;
    });
    assert.equal(across.length, 3);
  });

  test('a tag across the edge between two stages (smaller stages: with the real ones, 3.7 GB in)', async () => {
    // With stages of 154 pages, the 53rd ends 8 bytes into a tag: the worker keeps the tag's
    // tail for the next stage.
    const stageBytes = 154 * 4096;
    const k = edgeInTag(stageBytes, 60);
    assert.equal(k, 53);
    assert.equal(edgeInTag(S, 1000), undefined, 'not within 1000 real stages');
    const size = (k + 2) * stageBytes;
    const plain = pattern(size);
    const expected = (await run(randomChunks(plain, 5), createEncryptStream(key, { streamIndex: 1, plainSize: size, rng: seededRng('tag') }))).out;
    const before = slotsInUse();
    const src = SealedStages.open(key, Readable.from(randomChunks(plain, 6), { objectMode: false }), { streamIndex: 1, plainSize: size, rng: seededRng('tag'), stageBytes });
    assert.ok(src);
    const got = await collect(src, { stageBytes });
    assert.ok(got.equals(expected), 'byte for byte');
    await until(() => slotsInUse() === before);
    assert.equal(slotsInUse(), before);
  });

  test('more bytes than announced, fewer, a failing source, a source cut off: the stream fails and its slots come back', async () => {
    const before = slotsInUse();
    const size = 3 * 1024 * 1024;
    const plain = pattern(size + 10);
    const cases: [string, () => Readable, RegExp | ((e: unknown) => boolean)][] = [
      ['more', () => Readable.from(randomChunks(plain, 1), { objectMode: false }), /more plaintext than announced/],
      ['fewer', () => Readable.from(randomChunks(plain.subarray(0, size - 1), 2), { objectMode: false }), /less plaintext than announced/],
      [
        'failing',
        () => {
          const p = new PassThrough();
          p.write(plain.subarray(0, 2 * 1024 * 1024));
          setTimeout(() => p.destroy(new Error('socket reset')), 20);
          return p;
        },
        /socket reset/,
      ],
      [
        'cut off',
        () => {
          const p = new PassThrough();
          p.write(plain.subarray(0, 1024 * 1024 + 7));
          setTimeout(() => p.destroy(), 20);
          return p;
        },
        (e) => e instanceof S3Error && e.code === 'IncompleteBody',
      ],
    ];
    for (const [what, source, expected] of cases) {
      const src = SealedStages.open(key, source(), { streamIndex: 0, plainSize: size });
      assert.ok(src);
      await assert.rejects(collect(src), expected, what);
    }
    await until(() => slotsInUse() === before);
    assert.equal(slotsInUse(), before, 'every slot is back');
  });

  test('a store that gives up after a stage: the source stops, slots come back', async () => {
    const before = slotsInUse();
    const size = 4 * S;
    const src = SealedStages.open(key, Readable.from(randomChunks(pattern(size), 7), { objectMode: false }), { streamIndex: 0, plainSize: size });
    assert.ok(src);
    await collect(src, { failAfter: 1 });
    await until(() => slotsInUse() === before);
    assert.equal(slotsInUse(), before);
  });

  test('a tap that refuses a chunk (a size limit) fails the stream', async () => {
    const size = 2 * 1024 * 1024;
    let seen = 0;
    const tap: PlainTap = {
      update(c) {
        seen += c.length;
        if (seen > 1024 * 1024) throw new S3Error('EntityTooLarge');
        return undefined;
      },
    };
    const src = SealedStages.open(key, Readable.from(randomChunks(pattern(size), 9), { objectMode: false }), { streamIndex: 0, plainSize: size, tap });
    assert.ok(src);
    await assert.rejects(collect(src), (e) => e instanceof S3Error && e.code === 'EntityTooLarge');
  });

  test('stages a store holds on to keep their slots; the upload waits for one of its own (three at most)', async () => {
    const before = slotsInUse();
    const size = 6 * S;
    const src = SealedStages.open(key, Readable.from(randomChunks(pattern(size), 11), { objectMode: false }), { streamIndex: 0, plainSize: size });
    assert.ok(src);
    const held: Stage[] = [];
    for (let i = 0; i < 3; i++) held.push((await src.next())!);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(slotsInUse() - before, 3, 'no fourth slot while three stages are out');
    for (const st of held) src.release(st);
    const rest = await collect(src, { from: 3 * S });
    assert.equal(3 * S + rest.length, encryptedSize(size));
    await until(() => slotsInUse() === before);
    assert.equal(slotsInUse(), before);
  });
});

// The meter's MD5 (md5-offload.ts) shares its copies of the plaintext: the main thread copies
// nothing into the stages, the crypto worker reads from the MD5 worker's slots, which stay pinned
// until the stages reading them are sealed.
describe('sealed stages reading the MD5 worker\'s copies', () => {
  after(async () => {
    await stopCryptoWorker();
    await stopMd5Worker();
  });

  const key = keyFrom('seal-shared');

  /** A meter (the tap PUTs use) that counts the pieces it tells of, and the bytes in them. */
  function sharingMeter(size: number): { meter: Meter; tap: PlainTap; shared: { pieces: number; bytes: number } } {
    const meter = new Meter(Number.MAX_SAFE_INTEGER, size);
    const shared = { pieces: 0, bytes: 0 };
    const tap: PlainTap = {
      update: (c) => meter.update(c),
      end: () => meter.end(),
      shareCopies(l) {
        return meter.shareCopies({
          copied(at, n) {
            shared.pieces++;
            shared.bytes += n;
            l.copied(at, n);
          },
          starved: () => l.starved(),
        });
      },
    };
    return { meter, tap, shared };
  }

  const sizes = [1024 * 1024, 1024 * 1024 + 1, endingAt(S - 8)!, endingAt(2 * S + 5)!, 2 * S + 12345, 5 * 1024 * 1024 + 1];
  for (const [i, size] of sizes.entries()) {
    test(`${size} bytes: the blob EncryptStream makes, the MD5 of the plaintext, every slot back`, async () => {
      // Once, a new MD5 worker (and memory) between uploads: the crypto worker is told of it.
      if (i === 3) await stopMd5Worker();
      const plain = pattern(size);
      const expected = (await run(randomChunks(plain, i), createEncryptStream(key, { streamIndex: 2, plainSize: size, rng: seededRng(`m${i}`) }))).out;
      const before = slotsInUse();
      const { meter, tap, shared } = sharingMeter(size);
      const src = SealedStages.open(key, Readable.from(randomChunks(plain, i + 50), { objectMode: false }), { streamIndex: 2, plainSize: size, tap, rng: seededRng(`m${i}`) });
      assert.ok(src);
      const got = await collect(src);
      assert.ok(got.equals(expected), 'byte for byte');
      assert.equal(shared.bytes, size, 'every plaintext byte was read from the MD5 slots');
      assert.ok(shared.pieces >= size / (256 * 1024));
      assert.equal((await meter.md5()).toString('hex'), createHash('md5').update(plain).digest('hex'));
      await until(() => slotsInUse() === before && md5SlotsInUse() === 0);
      assert.equal(slotsInUse(), before, 'every stage slot is back');
      assert.equal(md5SlotsInUse(), 0, 'every MD5 slot is free again');
    });
  }

  test('uploads whose stages pin every MD5 slot: the stages being filled copy their bytes in, nobody waits forever', { timeout: 60_000 }, async () => {
    // 44 uploads of 1.5 MiB: each sends 768 KiB (three MD5 slots of 256 KiB, pinned by its
    // first stage, which waits for more) before any sends the rest. 128 slots are not enough:
    // the last uploads wait for slots, and the stages being filled give theirs back (starved()).
    const n = 44;
    const size = 1536 * 1024;
    const first = 768 * 1024;
    const before = slotsInUse();
    const uploads = Array.from({ length: n }, (_, i) => {
      const plain = pattern(size + i).subarray(i);
      const source = new PassThrough();
      const { meter, tap } = sharingMeter(size);
      const src = SealedStages.open(key, source, { streamIndex: 1, plainSize: size, tap, rng: seededRng(`p${i}`) });
      assert.ok(src, `a stage slot for upload ${i}`);
      source.write(plain.subarray(0, first));
      return { plain, source, meter, done: collect(src) };
    });
    await new Promise((r) => setTimeout(r, 100));
    for (const u of uploads) u.source.end(u.plain.subarray(first));
    for (const [i, u] of uploads.entries()) {
      const got = await u.done;
      const expected = (await run([u.plain], createEncryptStream(key, { streamIndex: 1, plainSize: size, rng: seededRng(`p${i}`) }))).out;
      assert.ok(got.equals(expected), `upload ${i} byte for byte`);
      assert.equal((await u.meter.md5()).toString('hex'), createHash('md5').update(u.plain).digest('hex'));
    }
    await until(() => slotsInUse() === before && md5SlotsInUse() === 0);
    assert.equal(slotsInUse(), before);
    assert.equal(md5SlotsInUse(), 0);
  });

  test('a source that fails, a store that gives up: the MD5 slots are unpinned', async () => {
    const size = 4 * S;
    const plain = pattern(size);
    {
      const source = new PassThrough();
      const { meter, tap } = sharingMeter(size);
      const src = SealedStages.open(key, source, { streamIndex: 0, plainSize: size, tap });
      assert.ok(src);
      source.write(plain.subarray(0, 2 * 1024 * 1024 + 3));
      setTimeout(() => source.destroy(new Error('socket reset')), 30);
      await assert.rejects(collect(src), /socket reset/);
      meter.discard();
    }
    {
      const { meter, tap } = sharingMeter(size);
      const src = SealedStages.open(key, Readable.from(randomChunks(plain, 3), { objectMode: false }), { streamIndex: 0, plainSize: size, tap });
      assert.ok(src);
      await collect(src, { failAfter: 1 });
      meter.discard();
    }
    await until(() => md5SlotsInUse() === 0);
    assert.equal(md5SlotsInUse(), 0, 'every MD5 slot is free again');
  });
});
