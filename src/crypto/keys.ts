// Secret key material and randomness. `SecretKey` is plaintext key material that must never be
// logged, serialized or stored in the clear; `SealedKey` bytes may be stored anywhere.
// Randomness is injected (`Rng`) so tests can be deterministic.
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';

export interface Rng {
  randomBytes(size: number): Buffer;
}

export const systemRng: Rng = { randomBytes: (size) => randomBytes(size) };

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
