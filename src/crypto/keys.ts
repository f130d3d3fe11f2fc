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

/** Derived keys kept per DerivedKeys (a data key's stream keys: one per stream read). */
const DERIVED_MAX = 16;

/**
 * Keys derived from one data key, kept for its next use: the stream keys of an object whose data
 * key is kept opened in memory (MasterKeyService), shared by every copy of that key handed out.
 * In memory only; wiped when the data key is dropped. Ids name the derivation (stream index,
 * salt), never the key.
 */
export class DerivedKeys {
  #keys = new Map<string, Buffer>();
  /** Wiped with its data key: a copy of that key handed out earlier keeps nothing more here. */
  #wiped = false;

  get(id: string): Buffer | undefined {
    return this.#keys.get(id);
  }

  /** Keeps a copy of `bytes` (up to DERIVED_MAX keys; past that, nothing more is kept). */
  set(id: string, bytes: Uint8Array): void {
    if (!this.#wiped && this.#keys.size < DERIVED_MAX && !this.#keys.has(id)) this.#keys.set(id, Buffer.from(bytes));
  }

  get size(): number {
    return this.#keys.size;
  }

  wipe(): void {
    this.#wiped = true;
    for (const b of this.#keys.values()) b.fill(0);
    this.#keys.clear();
  }
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
