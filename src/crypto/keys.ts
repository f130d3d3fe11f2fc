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

/**
 * Where keys derived from a data key are kept for its next use: the stream key of an object
 * whose data key is kept opened in memory (key-cache.ts), shared by every copy of that key
 * handed out. In memory only; wiped when the data key is dropped. A derivation is named by its
 * stream index and salt, never by the key.
 */
export interface DerivedKeys {
  get(streamIndex: number, salt: Uint8Array): Buffer | undefined;
  /** Keeps a copy of `key` (what is kept, and how much, is the keeper's choice). */
  set(streamIndex: number, salt: Uint8Array, key: Uint8Array): void;
}

export class SecretKey {
  #bytes: Buffer;
  #zeroed = false;
  readonly #derived: DerivedKeys | undefined;

  private constructor(bytes: Buffer, derived?: DerivedKeys) {
    this.#bytes = bytes;
    this.#derived = derived;
  }

  /**
   * Takes ownership of a copy of `bytes` (the caller should zero its own copy). `derived`: where
   * keys derived from this one are kept (see DerivedKeys); zeroing this copy does not wipe them.
   */
  static from(bytes: Uint8Array, derived?: DerivedKeys): SecretKey {
    if (bytes.length !== KEY_BYTES) throw new Error(`a key must be ${KEY_BYTES} bytes`);
    return new SecretKey(Buffer.from(bytes), derived);
  }

  /** Where keys derived from this one are kept, if anywhere. */
  get derived(): DerivedKeys | undefined {
    return this.#derived;
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
