// Shared helpers for the crypto tests: deterministic randomness, plaintext patterns, random
// chunking of inputs, and drivers that run the format streams and capture output and errors.
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SecretKey, type Rng } from '../../src/crypto/keys.ts';
import {
  HEADER_SIZE,
  cipherRangeFor,
  createDecryptStream,
  createEncryptStream,
  type DecryptOptions,
} from '../../src/crypto/format.ts';

/** Deterministic Rng: SHA-256(seed || u32be(counter)) blocks, concatenated. */
export function seededRng(seed: string): Rng {
  let counter = 0;
  return {
    randomBytes(size: number): Buffer {
      const out: Buffer[] = [];
      let have = 0;
      while (have < size) {
        const c = Buffer.alloc(4);
        c.writeUInt32BE(counter++);
        const block = createHash('sha256').update(seed).update(c).digest();
        out.push(block);
        have += block.length;
      }
      return Buffer.concat(out).subarray(0, size);
    },
  };
}

/** An Rng that returns the given bytes, in order, then fails. */
export function fixedRng(...values: Buffer[]): Rng {
  const queue = [...values];
  return {
    randomBytes(size: number): Buffer {
      const v = queue.shift();
      if (!v || v.length !== size) throw new Error(`fixedRng: no ${size}-byte value queued`);
      return Buffer.from(v);
    },
  };
}

export function keyFrom(seed: string): SecretKey {
  return SecretKey.from(createHash('sha256').update(seed).digest());
}

/** Plaintext pattern used by the vectors: byte i = i mod 251. */
export function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

/** Small deterministic PRNG (mulberry32) for chunking decisions. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cuts `buf` into chunks of log-uniform random sizes (1 byte up to ~200 KiB). */
export function randomChunks(buf: Buffer, seed: number): Buffer[] {
  const rand = prng(seed);
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const n = Math.max(1, Math.floor(Math.exp(rand() * Math.log(200_000))));
    out.push(buf.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

export interface RunResult {
  out: Buffer;
  error: unknown;
}

/** Pipes `chunks` through `t`, collecting every byte pushed (also those before an error). */
export async function run(chunks: Buffer[], t: NodeJS.ReadWriteStream): Promise<RunResult> {
  const got: Buffer[] = [];
  let error: unknown;
  try {
    await pipeline(
      Readable.from(chunks, { objectMode: false }),
      t,
      new Writable({
        write(c: Buffer, _e, cb) {
          got.push(c);
          cb();
        },
      }),
    );
  } catch (e) {
    error = e;
  }
  return { out: Buffer.concat(got), error };
}

export async function encryptChunked(key: SecretKey, plain: Buffer, streamIndex: number, seed: number, rng?: Rng): Promise<Buffer> {
  const r = await run(randomChunks(plain, seed), createEncryptStream(key, { streamIndex, rng }));
  if (r.error) throw r.error;
  return r.out;
}

/** The decryptor's input for a range: header || blob[cipherStart, cipherEndExclusive). */
export function rangeInput(blob: Buffer, plainSize: number, start?: number, endInclusive?: number): Buffer {
  const r = cipherRangeFor(plainSize, start, endInclusive);
  return Buffer.concat([blob.subarray(0, HEADER_SIZE), blob.subarray(r.cipherStart, r.cipherEndExclusive)]);
}

export function decryptChunked(key: SecretKey, input: Buffer, opts: DecryptOptions, seed = 1): Promise<RunResult> {
  return run(randomChunks(input, seed), createDecryptStream(key, opts));
}
