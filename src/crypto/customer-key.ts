// SSE-C: what Coffer keeps of a customer-provided key is never the key nor its MD5. Per object
// version (or multipart upload) a random 32-byte salt; from the customer key and the salt,
// HKDF-SHA256 derives 64 bytes: the first 32 are the key-encryption key that seals the data
// key (with dataKeyAad(..., "SSE-C")), the last 32 are the verifier stored beside it, against
// which a later request's key is checked in constant time. Spec and vectors:
// docs/key-hierarchy.md ("SSE-C").
import { timingSafeEqual } from 'node:crypto';
import { hkdfSha256 } from './hkdf.ts';
import { SecretKey, systemRng, type Rng } from './keys.ts';

export const SSEC_INFO = 'coffer/sse-c/v1';
export const SSEC_SALT_BYTES = 32;

export interface CustomerKeyMaterial {
  /** Seals the object's data key. Zero it after use. */
  kek: SecretKey;
  /** Stored: proves a later request holds the same key. */
  verifier: Buffer;
}

/** The KEK and verifier of a customer key under `salt`. */
export function deriveCustomerKeys(customerKey: SecretKey, salt: Buffer): CustomerKeyMaterial {
  if (salt.length !== SSEC_SALT_BYTES) throw new RangeError(`the SSE-C salt must be ${SSEC_SALT_BYTES} bytes`);
  const okm = hkdfSha256(customerKey.expose(), salt, Buffer.from(SSEC_INFO, 'utf8'), 64);
  try {
    return { kek: SecretKey.from(okm.subarray(0, 32)), verifier: Buffer.from(okm.subarray(32)) };
  } finally {
    okm.fill(0);
  }
}

export function newCustomerKeySalt(rng: Rng = systemRng): Buffer {
  return rng.randomBytes(SSEC_SALT_BYTES);
}

/** Whether `customerKey` is the key `verifier` was made from (constant time). */
export function customerKeyMatches(customerKey: SecretKey, salt: Buffer, verifier: Buffer): { matches: boolean; kek?: SecretKey } {
  const m = deriveCustomerKeys(customerKey, salt);
  const matches = m.verifier.length === verifier.length && timingSafeEqual(m.verifier, verifier);
  if (!matches) {
    m.kek.zero();
    return { matches };
  }
  return { matches, kek: m.kek };
}
