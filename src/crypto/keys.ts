// Secret key material and randomness. `SecretKey` is plaintext key material that must never be
// logged, serialized or stored in the clear; `SealedKey` bytes may be stored anywhere.
// Randomness is injected (`Rng`) so tests can be deterministic.
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';

export interface Rng {
  randomBytes(size: number): Buffer;
}

/**
 * The system CSPRNG, drawn in 4 KiB batches: a call into OpenSSL per salt, nonce and key costs
 * more than the bytes. Each returned Buffer is a fresh copy; pooled bytes are used once and
 * wiped as they are handed out.
 */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

export const systemRng: Rng = {
  randomBytes(size: number): Buffer {
    if (size > POOL_BYTES / 4) return randomBytes(size);
    if (poolOffset + size > pool.length) {
      pool = randomBytes(POOL_BYTES);
      poolOffset = 0;
    }
    const out = Buffer.from(pool.subarray(poolOffset, poolOffset + size));
    pool.fill(0, poolOffset, poolOffset + size);
    poolOffset += size;
    return out;
  },
};

export const KEY_BYTES = 32;

export class SecretKey {
  #bytes: Buffer;
  #zeroed = false;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /** Takes ownership of a copy of `bytes` (the caller should zero its own copy). */
  static from(bytes: Uint8Array): SecretKey {
    if (bytes.length !== KEY_BYTES) throw new Error(`a key must be ${KEY_BYTES} bytes`);
    return new SecretKey(Buffer.from(bytes));
  }

  static generate(rng: Rng = systemRng): SecretKey {
    return new SecretKey(rng.randomBytes(KEY_BYTES));
  }

  /** The raw bytes, for crypto primitives only. Never log, store or return them. */
  expose(): Buffer {
    if (this.#zeroed) throw new Error('key material was zeroed');
    return this.#bytes;
  }

  zero(): void {
    this.#bytes.fill(0);
    this.#zeroed = true;
  }

  toString(): string {
    return '[SecretKey]';
  }
  toJSON(): string {
    return '[SecretKey]';
  }
  [inspect.custom](): string {
    return '[SecretKey]';
  }
}
