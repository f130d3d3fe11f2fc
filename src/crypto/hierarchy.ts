// The key hierarchy's primitives: root key parsing, master keys sealed under the root key,
// data keys sealed under a master key and bound to their object, per-stream keys via HKDF.
// Spec: docs/key-hierarchy.md. Storage, rotation scheduling and re-wrap jobs live elsewhere.
import { CryptoError } from '../shared/errors.ts';
import { dataKeyAad, masterKeyAad, seal, unseal, type DataKeyBinding } from './envelope.ts';
import { KEY_BYTES, SecretKey, systemRng, type Rng } from './keys.ts';

export { deriveStreamKey } from './format.ts';
export type { DataKeyBinding } from './envelope.ts';

/** A fresh random 256-bit data key (one per object version, or per multipart upload). */
export function generateDataKey(rng: Rng = systemRng): SecretKey {
  return SecretKey.generate(rng);
}

function sealKey(kek: SecretKey, key: SecretKey, aad: Buffer, rng: Rng): Buffer {
  return seal(kek, key.expose(), aad, rng);
}

function unsealKey(kek: SecretKey, sealed: Buffer, aad: Buffer): SecretKey {
  const raw = unseal(kek, sealed, aad);
  try {
    if (raw.length !== KEY_BYTES) throw new CryptoError();
    return SecretKey.from(raw);
  } finally {
    raw.fill(0);
  }
}

/** Seals a data key under a master key, bound to its object (dataKeyAad). */
export function sealDataKey(masterKey: SecretKey, dataKey: SecretKey, binding: DataKeyBinding, rng: Rng = systemRng): Buffer {
  return sealKey(masterKey, dataKey, dataKeyAad(binding), rng);
}

/** Opens a sealed data key; CryptoError if the key, the binding or the bytes are wrong. */
export function unsealDataKey(masterKey: SecretKey, sealed: Buffer, binding: DataKeyBinding): SecretKey {
  return unsealKey(masterKey, sealed, dataKeyAad(binding));
}

/** Seals SSE-S3 master key `version` under the root key (masterKeyAad(version)). */
export function sealMasterKey(rootKey: SecretKey, masterKey: SecretKey, version: number, rng: Rng = systemRng): Buffer {
  return sealKey(rootKey, masterKey, masterKeyAad(version), rng);
}

/** Opens a sealed master key; CryptoError if the root key, version or bytes are wrong. */
export function unsealMasterKey(rootKey: SecretKey, sealed: Buffer, version: number): SecretKey {
  return unsealKey(rootKey, sealed, masterKeyAad(version));
}

const ROOT_KEY_FORMAT = 'the root key must be 64 hex characters or the base64 of 32 bytes';

/**
 * Parses a root key given as 64 hex characters or base64 (standard or URL-safe, padding
 * optional) of exactly 32 bytes, surrounding whitespace ignored. Refuses the all-zero key.
 * Error messages never include the input.
 */
export function parseRootKey(text: string): SecretKey {
  const t = text.trim();
  let raw: Buffer;
  if (/^[0-9a-fA-F]{64}$/.test(t)) raw = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=?$/.test(t) || /^[A-Za-z0-9_-]{43}=?$/.test(t)) {
    raw = Buffer.from(t.replace(/=$/, ''), t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
  } else throw new Error(ROOT_KEY_FORMAT);
  try {
    if (raw.length !== KEY_BYTES) throw new Error(ROOT_KEY_FORMAT);
    if (raw.every((b) => b === 0)) throw new Error('the root key must not be all zeros');
    return SecretKey.from(raw);
  } finally {
    raw.fill(0);
  }
}

/** Text form of a root key for a key file: 64 lowercase hex characters and a newline. */
export function encodeRootKey(key: SecretKey): string {
  return key.expose().toString('hex') + '\n';
}
