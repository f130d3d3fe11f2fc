// Payloads: random bytes generated once and reused. Large objects are a stream of 1 MiB views
// into one 8 MiB random buffer, at offsets that move in a non-repeating pattern, so the stream
// is never held in memory and swapped or repeated chunks would change its SHA-256.
import { createHash, randomBytes } from 'node:crypto';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

const BASE = randomBytes(8 * MiB);
const CHUNK = MiB;

export function randomPayload(size: number): { data: Buffer; sha256: string } {
  const data = randomBytes(size);
  return { data, sha256: createHash('sha256').update(data).digest('hex') };
}

/** The `total`-byte pattern stream as views into BASE (no copies). */
export function* patternChunks(total: number, chunk = CHUNK): Generator<Buffer> {
  let sent = 0;
  let i = 0;
  const span = BASE.length - chunk;
  while (sent < total) {
    const n = Math.min(chunk, total - sent);
    const off = Number((BigInt(i) * 2654435761n) % BigInt(span));
    yield BASE.subarray(off, off + n);
    sent += n;
    i++;
  }
}

const shaCache = new Map<number, string>();

/** SHA-256 of the pattern stream of `total` bytes (computed once per size). */
export function patternSha256(total: number): string {
  let v = shaCache.get(total);
  if (!v) {
    const h = createHash('sha256');
    for (const c of patternChunks(total)) h.update(c);
    v = h.digest('hex');
    shaCache.set(total, v);
  }
  return v;
}
