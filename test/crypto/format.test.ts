// CFR1 object format: size math, round trips at every size boundary with arbitrary input
// chunking, streaming behaviour (buffering, final marking, byte counters) and range reads.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  HEADER_SIZE,
  SEGMENT_SIZE,
  TAG_SIZE,
  cipherRangeFor,
  createEncryptStream,
  decryptBuffer,
  encryptBuffer,
  encryptedSize,
  plainSizeFromEncrypted,
  segmentCount,
} from '../../src/crypto/format.ts';
import { CryptoError } from '../../src/shared/errors.ts';
import { decryptChunked, encryptChunked, keyFrom, pattern, randomChunks, rangeInput, run, seededRng } from './helpers.ts';

const S = SEGMENT_SIZE;
const key = keyFrom('format-test');
const random = (n: number, seed: string) => seededRng(seed).randomBytes(n);

describe('size math', () => {
  it('matches the formulas at the boundaries', () => {
    const table: Array<[number, number, number]> = [
      [0, 1, HEADER_SIZE + TAG_SIZE],
      [1, 1, HEADER_SIZE + 1 + TAG_SIZE],
      [S - 1, 1, HEADER_SIZE + S - 1 + TAG_SIZE],
      [S, 1, HEADER_SIZE + S + TAG_SIZE],
      [S + 1, 2, HEADER_SIZE + S + 1 + 2 * TAG_SIZE],
      [2 * S, 2, HEADER_SIZE + 2 * S + 2 * TAG_SIZE],
      [2 * S + 1, 3, HEADER_SIZE + 2 * S + 1 + 3 * TAG_SIZE],
    ];
    for (const [n, segs, enc] of table) {
      assert.equal(segmentCount(n), segs, `segmentCount(${n})`);
      assert.equal(encryptedSize(n), enc, `encryptedSize(${n})`);
      assert.equal(plainSizeFromEncrypted(enc), n, `plainSizeFromEncrypted(${enc})`);
    }
  });

  it('plainSizeFromEncrypted inverts encryptedSize and rejects impossible sizes', () => {
    fc.assert(fc.property(fc.nat({ max: 2 ** 40 }), (n) => plainSizeFromEncrypted(encryptedSize(n)) === n));
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 30 }), (e) => {
        let n: number;
        try {
          n = plainSizeFromEncrypted(e);
        } catch (err) {
          assert.ok(err instanceof CryptoError);
          return true;
        }
        return encryptedSize(n) === e;
      }),
    );
    for (const bad of [0, HEADER_SIZE, HEADER_SIZE + TAG_SIZE - 1, HEADER_SIZE + S + 2 * TAG_SIZE, HEADER_SIZE + S + TAG_SIZE + 5]) {
      assert.throws(() => plainSizeFromEncrypted(bad), CryptoError, String(bad));
    }
    assert.throws(() => encryptedSize(-1), RangeError);
    assert.throws(() => encryptedSize(1.5), RangeError);
  });

  it('cipherRangeFor gives the touched segments and their blob offsets', () => {
    const n = 3 * S + 10;
    assert.deepEqual(cipherRangeFor(n), {
      firstSegment: 0,
      lastSegment: 3,
      cipherStart: HEADER_SIZE,
      cipherEndExclusive: encryptedSize(n),
      skipBytes: 0,
      plainLength: n,
    });
    assert.deepEqual(cipherRangeFor(n, S + 5, 2 * S), {
      firstSegment: 1,
      lastSegment: 2,
      cipherStart: HEADER_SIZE + (S + TAG_SIZE),
      cipherEndExclusive: HEADER_SIZE + 3 * (S + TAG_SIZE),
      skipBytes: 5,
      plainLength: S - 4,
    });
    assert.deepEqual(cipherRangeFor(n, n - 1, n - 1).cipherEndExclusive, encryptedSize(n));
    assert.equal(cipherRangeFor(0).cipherEndExclusive, encryptedSize(0));
    assert.equal(cipherRangeFor(n, 5).plainLength, n - 5);
    assert.equal(cipherRangeFor(n, undefined, 9).plainLength, 10);
    for (const [s, e] of [[-1, 3], [4, 3], [0, n], [n, n], [0.5, 2]]) {
      assert.throws(() => cipherRangeFor(n, s, e), RangeError, `${s}-${e}`);
    }
    assert.throws(() => cipherRangeFor(0, 0, 0), RangeError);
  });
});

describe('round trip', () => {
  const sizes = [0, 1, 16, S - 1, S, S + 1, 2 * S, 2 * S + 1, 5 * 1024 * 1024 + 1];
  for (const n of sizes) {
    it(`size ${n}, random input chunking`, async () => {
      const plain = random(n, `plain-${n}`);
      for (const seed of [1, 2, 3]) {
        const blob = await encryptChunked(key, plain, 7, seed, seededRng(`salt-${n}`));
        assert.equal(blob.length, encryptedSize(n));
        // Chunking must not change the output: same rng bytes give the same blob.
        assert.ok(blob.equals(encryptBuffer(key, plain, { streamIndex: 7, rng: seededRng(`salt-${n}`) })));
        const r = await decryptChunked(key, blob, { streamIndex: 7, plainSize: n }, seed + 10);
        assert.equal(r.error, undefined);
        assert.ok(r.out.equals(plain));
        assert.ok(decryptBuffer(key, blob, { streamIndex: 7 }).equals(plain));
      }
    });
  }

  it('random sizes and chunkings (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 4 * S + 100 }), fc.nat(), fc.nat(), fc.nat({ max: 10_000 }), async (n, s1, s2, idx) => {
        const plain = random(n, `p${s1}`);
        const blob = await encryptChunked(key, plain, idx, s1);
        assert.equal(blob.length, encryptedSize(n));
        const r = await decryptChunked(key, blob, { streamIndex: idx, plainSize: n }, s2);
        assert.equal(r.error, undefined);
        assert.ok(r.out.equals(plain));
      }),
      { numRuns: 40 },
    );
  });

  it('uses a fresh salt per stream, so equal inputs give different blobs', async () => {
    const plain = pattern(1000);
    const a = await encryptChunked(key, plain, 1, 1);
    const b = await encryptChunked(key, plain, 1, 1);
    assert.ok(!a.subarray(8, HEADER_SIZE).equals(b.subarray(8, HEADER_SIZE)));
    assert.ok(!a.subarray(HEADER_SIZE).equals(b.subarray(HEADER_SIZE)));
  });
});

describe('encrypt stream', () => {
  it('buffers at most one segment and marks the final one only at the end', async () => {
    const enc = createEncryptStream(key, { streamIndex: 0 });
    const got: Buffer[] = [];
    enc.on('data', (c: Buffer) => got.push(c));
    const outLen = () => got.reduce((a, c) => a + c.length, 0);
    const tick = () => new Promise((r) => setImmediate(r));
    enc.write(Buffer.alloc(S));
    await tick();
    assert.equal(outLen(), HEADER_SIZE, 'a full segment waits: it may be the final one');
    enc.write(Buffer.alloc(1));
    await tick();
    assert.equal(outLen(), HEADER_SIZE + S + TAG_SIZE, 'one byte more proves segment 0 is not final');
    enc.write(Buffer.alloc(S - 1));
    await tick();
    assert.equal(outLen(), HEADER_SIZE + S + TAG_SIZE);
    await new Promise<void>((r) => enc.end(r));
    await tick();
    assert.equal(outLen(), encryptedSize(2 * S));
    assert.equal(enc.bytesIn, 2 * S);
    assert.equal(enc.bytesOut, encryptedSize(2 * S));
    const r = await decryptChunked(key, Buffer.concat(got), { streamIndex: 0, plainSize: 2 * S });
    assert.equal(r.error, undefined);
  });

  it('honours backpressure: an unread stream stops pulling input after a few segments', async () => {
    let pulled = 0;
    const source = new Readable({
      read() {
        pulled++;
        this.push(pulled > 160 ? null : Buffer.alloc(S));
      },
    });
    const enc = createEncryptStream(key, { streamIndex: 0 });
    source.pipe(enc);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(pulled < 8, `pulled ${pulled} segments with nobody reading`);
    assert.ok(enc.readableLength <= 3 * (S + TAG_SIZE));
    enc.destroy();
    source.destroy();
  });

  it('with the length announced, gives the same blob as gathering, whatever the chunking', async () => {
    for (const n of [0, 1, S - 1, S, S + 1, 2 * S, 3 * S + 17]) {
      const plain = random(n, `known-${n}`);
      for (const seed of [1, 2, 3]) {
        const gathered = await run(randomChunks(plain, seed), createEncryptStream(key, { streamIndex: 4, rng: seededRng(`salt-${n}`) }));
        const known = await run(randomChunks(plain, seed + 10), createEncryptStream(key, { streamIndex: 4, rng: seededRng(`salt-${n}`), plainSize: n }));
        assert.equal(known.error, undefined, `${n}`);
        assert.ok(known.out.equals(gathered.out), `size ${n}, chunking ${seed}: same bytes as the gathering encryptor`);
      }
    }
  });

  it('with the length announced, seals each segment as its bytes arrive', async () => {
    const enc = createEncryptStream(key, { streamIndex: 0, plainSize: 2 * S });
    const got: Buffer[] = [];
    enc.on('data', (c: Buffer) => got.push(c));
    const outLen = () => got.reduce((a, c) => a + c.length, 0);
    const tick = () => new Promise((r) => setImmediate(r));
    enc.write(Buffer.alloc(S / 2));
    await tick();
    assert.equal(outLen(), HEADER_SIZE + S / 2, 'ciphertext leaves as plaintext arrives');
    enc.write(Buffer.alloc(S / 2));
    await tick();
    assert.equal(outLen(), HEADER_SIZE + S + TAG_SIZE, 'segment 0 sealed without waiting for a byte beyond it');
    enc.write(Buffer.alloc(S));
    await new Promise<void>((r) => enc.end(r));
    const r = await decryptChunked(key, Buffer.concat(got), { streamIndex: 0, plainSize: 2 * S });
    assert.equal(r.error, undefined);
  });

  it('with the length announced, fails on a byte more or a byte less', async () => {
    const plain = random(S + 5, 'mismatch');
    const longer = await run([plain], createEncryptStream(key, { streamIndex: 0, plainSize: S + 4 }));
    assert.ok(longer.error instanceof RangeError, String(longer.error));
    const shorter = await run([plain], createEncryptStream(key, { streamIndex: 0, plainSize: S + 6 }));
    assert.ok(shorter.error instanceof RangeError, String(shorter.error));
    assert.throws(() => createEncryptStream(key, { streamIndex: 0, plainSize: -1 }), RangeError);
  });

  it('shows every chunk to its tap before sealing it, waits on the tap, and fails with it', async () => {
    for (const plainSize of [undefined, 3 * S + 1]) {
      const plain = random(3 * S + 1, 'tap');
      const seen: Buffer[] = [];
      let ended = 0;
      let waits = 0;
      const tap = {
        update(c: Buffer) {
          seen.push(Buffer.from(c));
          if (seen.length % 2 === 0) return undefined;
          waits++;
          return new Promise<void>((r) => setTimeout(r, 1));
        },
        end() {
          ended++;
        },
      };
      const r = await run(randomChunks(plain, 7), createEncryptStream(key, { streamIndex: 0, tap, ...(plainSize === undefined ? {} : { plainSize }) }));
      assert.equal(r.error, undefined);
      assert.ok(Buffer.concat(seen).equals(plain));
      assert.equal(ended, 1);
      assert.ok(waits > 0);
      const back = await decryptChunked(key, r.out, { streamIndex: 0, plainSize: plain.length });
      assert.ok(back.out.equals(plain));
      const failing = { update: () => { throw new Error('over the limit'); } };
      const f = await run([plain], createEncryptStream(key, { streamIndex: 0, tap: failing, ...(plainSize === undefined ? {} : { plainSize }) }));
      assert.equal((f.error as Error).message, 'over the limit');
    }
  });

  it('does not consume or alter the data key', async () => {
    const k = keyFrom('keep');
    const before = Buffer.from(k.expose());
    await encryptChunked(k, pattern(S + 3), 0, 1);
    assert.ok(k.expose().equals(before));
  });
});

describe('range reads', () => {
  const sizes = [1, 100, S - 1, S, S + 1, 2 * S, 2 * S + 1, 3 * S + 5];
  for (const n of sizes) {
    it(`size ${n}: every range between boundary points, from its cipher range only`, async () => {
      const plain = random(n, `range-${n}`);
      const blob = encryptBuffer(key, plain, { streamIndex: 2 });
      const points = new Set<number>([0, 1, n - 2, n - 1]);
      for (let b = S; b <= n; b += S) for (const p of [b - 1, b, b + 1]) points.add(p);
      const pts = [...points].filter((p) => p >= 0 && p < n).sort((a, b) => a - b);
      for (const s of pts) {
        for (const e of pts) {
          if (e < s) continue;
          const input = rangeInput(blob, n, s, e);
          const r = await decryptChunked(key, input, { streamIndex: 2, plainSize: n, start: s, endInclusive: e }, s * 31 + e);
          assert.equal(r.error, undefined, `${s}-${e}`);
          assert.ok(r.out.equals(plain.subarray(s, e + 1)), `${s}-${e}`);
        }
      }
    });
  }

  it('random ranges (property), and one byte more or less than the cipher range fails', async () => {
    const n = 5 * S + 123;
    const plain = random(n, 'range-prop');
    const blob = encryptBuffer(key, plain, { streamIndex: 0 });
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: n - 1 }), fc.nat({ max: n - 1 }), fc.nat(), async (a, b, seed) => {
        const [s, e] = a <= b ? [a, b] : [b, a];
        const opts = { streamIndex: 0, plainSize: n, start: s, endInclusive: e };
        const input = rangeInput(blob, n, s, e);
        const r = await decryptChunked(key, input, opts, seed);
        assert.equal(r.error, undefined);
        assert.ok(r.out.equals(plain.subarray(s, e + 1)));
        const short = await decryptChunked(key, input.subarray(0, input.length - 1), opts, seed);
        assert.ok(short.error instanceof CryptoError);
        const long = await decryptChunked(key, Buffer.concat([input, Buffer.alloc(1)]), opts, seed);
        assert.ok(long.error instanceof CryptoError);
      }),
      { numRuns: 60 },
    );
  });

  it('defaults a missing bound to the object edge', async () => {
    const n = 2 * S + 9;
    const plain = random(n, 'edges');
    const blob = encryptBuffer(key, plain, { streamIndex: 0 });
    const fromStart = await decryptChunked(key, rangeInput(blob, n, S + 1), { streamIndex: 0, plainSize: n, start: S + 1 });
    assert.ok(fromStart.out.equals(plain.subarray(S + 1)));
    const toEnd = await decryptChunked(key, rangeInput(blob, n, undefined, 70000), {
      streamIndex: 0,
      plainSize: n,
      endInclusive: 70000,
    });
    assert.ok(toEnd.out.equals(plain.subarray(0, 70001)));
  });
});
