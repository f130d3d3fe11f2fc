// CFR1 object format under attack: flipped bytes, truncation, trailing bytes, reordered and
// spliced segments, swapped streams, wrong keys. Every failure must be a CryptoError, and no
// plaintext of a segment that failed (or of any later one) may ever be emitted.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  HEADER_SIZE,
  SEGMENT_SIZE,
  TAG_SIZE,
  createDecryptStream,
  encryptBuffer,
  plainSizeFromEncrypted,
} from '../../src/crypto/format.ts';
import { CryptoError } from '../../src/shared/errors.ts';
import { decryptChunked, keyFrom, rangeInput, run, seededRng } from './helpers.ts';

const S = SEGMENT_SIZE;
const C = S + TAG_SIZE; // cipher segment size
const key = keyFrom('tamper-test');

/**
 * Decrypts and expects a CryptoError; the output must be a prefix of `plain` that stops
 * before segment `badSegment` (and, as the last segment is held until the end, before the
 * last one too).
 */
async function expectFailure(input: Buffer, plain: Buffer, opts: { streamIndex: number; plainSize: number }, badSegment: number, seed = 1) {
  const r = await decryptChunked(key, input, opts, seed);
  assert.ok(r.error instanceof CryptoError, `expected CryptoError, got ${String(r.error)}`);
  assert.equal((r.error as Error).message, 'decryption failed');
  assert.ok(r.out.length <= Math.max(0, badSegment) * S, `leaked ${r.out.length} bytes`);
  assert.ok(r.out.equals(plain.subarray(0, r.out.length)), 'output is not a prefix of the plaintext');
}

function flip(buf: Buffer, pos: number, mask = 0x01): Buffer {
  const b = Buffer.from(buf);
  b[pos] ^= mask;
  return b;
}

/** Segment that blob offset `pos` belongs to (-1 for the header). */
const segmentAt = (pos: number) => (pos < HEADER_SIZE ? -1 : Math.floor((pos - HEADER_SIZE) / C));

describe('flipped bytes', () => {
  for (const n of [0, 1, 100]) {
    it(`size ${n}: every byte of the blob, every bit position mask`, async () => {
      const plain = seededRng(`f${n}`).randomBytes(n);
      const blob = encryptBuffer(key, plain, { streamIndex: 0 });
      for (let pos = 0; pos < blob.length; pos++) {
        for (const mask of [0x01, 0x80]) {
          await expectFailure(flip(blob, pos, mask), plain, { streamIndex: 0, plainSize: n }, 0);
        }
      }
    });
  }

  it('multi-segment blob: header, boundaries, tags and random positions', async () => {
    const n = 3 * S + 77;
    const plain = seededRng('multi').randomBytes(n);
    const blob = encryptBuffer(key, plain, { streamIndex: 4 });
    const opts = { streamIndex: 4, plainSize: n };
    const positions = new Set<number>();
    for (let p = 0; p < HEADER_SIZE; p++) positions.add(p);
    for (let k = 0; k < 4; k++) {
      const segStart = HEADER_SIZE + k * C;
      for (const d of [0, 1, S - 1, S, S + 1, S + TAG_SIZE - 1]) positions.add(segStart + d);
    }
    positions.add(blob.length - 1);
    for (const pos of positions) {
      if (pos >= blob.length) continue;
      await expectFailure(flip(blob, pos), plain, opts, Math.max(segmentAt(pos), 0), pos);
    }
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: blob.length - 1 }), fc.integer({ min: 1, max: 255 }), fc.nat(), async (pos, mask, seed) => {
        await expectFailure(flip(blob, pos, mask), plain, opts, Math.max(segmentAt(pos), 0), seed);
      }),
      { numRuns: 100 },
    );
  });

  it('a flipped byte inside a range read fails; the plaintext of earlier segments is authentic', async () => {
    const n = 4 * S;
    const plain = seededRng('rr').randomBytes(n);
    const blob = encryptBuffer(key, plain, { streamIndex: 0 });
    const input = rangeInput(blob, n, S + 10, 3 * S + 10);
    const bad = flip(input, HEADER_SIZE + C + 5); // second segment of the range (segment 2)
    const r = await decryptChunked(key, bad, { streamIndex: 0, plainSize: n, start: S + 10, endInclusive: 3 * S + 10 });
    assert.ok(r.error instanceof CryptoError);
    assert.ok(r.out.equals(plain.subarray(S + 10, 2 * S)));
  });
});

describe('truncation and trailing bytes', () => {
  const n = 3 * S + 7;
  const plain = seededRng('trunc').randomBytes(n);
  const blob = encryptBuffer(key, plain, { streamIndex: 0 });

  it('fails when the input is cut anywhere (size from metadata unchanged)', async () => {
    const cuts = [0, 1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 1, blob.length - 1, blob.length - TAG_SIZE];
    for (let k = 1; k <= 3; k++) for (const d of [-1, 0, 1]) cuts.push(HEADER_SIZE + k * C + d);
    for (const cut of cuts) {
      await expectFailure(blob.subarray(0, cut), plain, { streamIndex: 0, plainSize: n }, Math.max(segmentAt(cut), 0));
    }
  });

  it('fails when cut at a segment boundary even if the claimed size matches (no final flag)', async () => {
    for (let k = 1; k <= 3; k++) {
      const cut = blob.subarray(0, HEADER_SIZE + k * C);
      assert.equal(plainSizeFromEncrypted(cut.length), k * S);
      await expectFailure(cut, plain, { streamIndex: 0, plainSize: k * S }, k - 1);
    }
  });

  it('fails when cut inside a segment and the claimed size is what the cut length implies', async () => {
    const cut = blob.subarray(0, HEADER_SIZE + C + 500);
    await expectFailure(cut, plain, { streamIndex: 0, plainSize: plainSizeFromEncrypted(cut.length) }, 1);
  });

  it('fails on trailing bytes, in the same chunk or arriving after the end', async () => {
    for (const extra of [Buffer.alloc(1), Buffer.alloc(TAG_SIZE), blob.subarray(HEADER_SIZE, HEADER_SIZE + C)]) {
      const input = Buffer.concat([blob, extra]);
      for (const seed of [1, 2, 3]) await expectFailure(input, plain, { streamIndex: 0, plainSize: n }, 3, seed);
    }
    // A one-segment blob followed by a stray byte emits nothing at all.
    const small = encryptBuffer(key, plain.subarray(0, 10), { streamIndex: 0 });
    await expectFailure(Buffer.concat([small, Buffer.from([0])]), plain, { streamIndex: 0, plainSize: 10 }, 0);
    const late = await run([small, Buffer.from([0])], createDecryptStream(key, { streamIndex: 0, plainSize: 10 }));
    assert.ok(late.error instanceof CryptoError);
    assert.equal(late.out.length, 0, 'the last segment is held until the input ends cleanly');
  });
});

describe('reordering, splicing, wrong keys', () => {
  const n = 3 * S;
  const plain = seededRng('order').randomBytes(n);
  const blob = encryptBuffer(key, plain, { streamIndex: 1 });
  const seg = (b: Buffer, k: number) => b.subarray(HEADER_SIZE + k * C, HEADER_SIZE + (k + 1) * C);
  const header = (b: Buffer) => b.subarray(0, HEADER_SIZE);

  it('swapped or dropped segments fail', async () => {
    const swapped = Buffer.concat([header(blob), seg(blob, 1), seg(blob, 0), seg(blob, 2)]);
    await expectFailure(swapped, plain, { streamIndex: 1, plainSize: n }, 0);
    const lastTwo = Buffer.concat([header(blob), seg(blob, 0), seg(blob, 2), seg(blob, 1)]);
    await expectFailure(lastTwo, plain, { streamIndex: 1, plainSize: n }, 1);
    const dropped = Buffer.concat([header(blob), seg(blob, 0), seg(blob, 2)]);
    await expectFailure(dropped, plain, { streamIndex: 1, plainSize: 2 * S }, 1);
  });

  it('segments or headers spliced from another stream fail', async () => {
    const other = encryptBuffer(key, plain, { streamIndex: 1 }); // same key and index, new salt
    const spliced = Buffer.concat([header(blob), seg(blob, 0), seg(other, 1), seg(blob, 2)]);
    await expectFailure(spliced, plain, { streamIndex: 1, plainSize: n }, 1);
    const otherHeader = Buffer.concat([header(other), blob.subarray(HEADER_SIZE)]);
    await expectFailure(otherHeader, plain, { streamIndex: 1, plainSize: n }, 0);
  });

  it('a stream decrypted at another stream index (swapped parts) fails', async () => {
    await expectFailure(blob, plain, { streamIndex: 2, plainSize: n }, 0);
    await expectFailure(blob, plain, { streamIndex: 0, plainSize: n }, 0);
  });

  it('a wrong data key fails', async () => {
    const r = await decryptChunked(keyFrom('another key'), blob, { streamIndex: 1, plainSize: n });
    assert.ok(r.error instanceof CryptoError);
    assert.equal(r.out.length, 0);
  });

  it('a bad magic, version, segment size or reserved byte fails', async () => {
    for (const [pos, value] of [[0, 0x44], [3, 0x32], [4, 17], [5, 1], [7, 1]] as const) {
      const b = Buffer.from(blob);
      b[pos] = value;
      await expectFailure(b, plain, { streamIndex: 1, plainSize: n }, 0);
    }
  });
});
