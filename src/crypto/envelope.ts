// Envelope sealing of small secrets (data keys, master keys, access-key secrets) with
// AES-256-GCM, and the canonical AAD encodings that bind a sealed secret to its owner.
// Spec: docs/key-hierarchy.md ("Sealed envelope", "AAD encodings").
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { CryptoError } from '../shared/errors.ts';
import { systemRng, type Rng, type SecretKey } from './keys.ts';

/** DO NOT CHANGE: envelope format version 1 (docs/key-hierarchy.md). */
export const ENVELOPE_VERSION = 1;
export const ENVELOPE_NONCE_SIZE = 12;
export const ENVELOPE_TAG_SIZE = 16;
/** Bytes a sealed envelope adds to its plaintext: version + nonce + tag. */
export const ENVELOPE_OVERHEAD = 1 + ENVELOPE_NONCE_SIZE + ENVELOPE_TAG_SIZE;

const VERSION_BYTE = Buffer.from([ENVELOPE_VERSION]);

/**
 * Seals `plaintext` under `kek`: `version(1) | nonce(12) | ciphertext | tag(16)`, AES-256-GCM
 * with a random nonce and AAD = version byte || `aad`.
 */
export function seal(kek: SecretKey, plaintext: Buffer, aad: Buffer, rng: Rng = systemRng): Buffer {
  const nonce = rng.randomBytes(ENVELOPE_NONCE_SIZE);
  if (nonce.length !== ENVELOPE_NONCE_SIZE) throw new Error('rng returned the wrong number of bytes');
  const cipher = createCipheriv('aes-256-gcm', kek.expose(), nonce);
  cipher.setAAD(Buffer.concat([VERSION_BYTE, aad]));
  const ct = cipher.update(plaintext);
  const rest = cipher.final();
  return Buffer.concat([VERSION_BYTE, nonce, ct, rest, cipher.getAuthTag()]);
}

/** Opens an envelope made by `seal`. Any failure (format, key, AAD, tamper) is a CryptoError. */
export function unseal(kek: SecretKey, sealed: Buffer, aad: Buffer): Buffer {
  const key = kek.expose();
  if (sealed.length < ENVELOPE_OVERHEAD || sealed[0] !== ENVELOPE_VERSION) throw new CryptoError();
  const nonce = sealed.subarray(1, 1 + ENVELOPE_NONCE_SIZE);
  const tag = sealed.subarray(sealed.length - ENVELOPE_TAG_SIZE);
  const ct = sealed.subarray(1 + ENVELOPE_NONCE_SIZE, sealed.length - ENVELOPE_TAG_SIZE);
  let out: Buffer | undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(Buffer.concat([VERSION_BYTE, aad]));
    decipher.setAuthTag(tag);
    out = decipher.update(ct);
    const rest = decipher.final();
    return rest.length === 0 ? out : Buffer.concat([out, rest]);
  } catch {
    out?.fill(0);
    throw new CryptoError();
  }
}

/** Lone surrogates would all encode to U+FFFD and make distinct strings collide. */
function checkWellFormed(s: string): void {
  // String#isWellFormed: ES2024, in node since 20 (the lib here is ES2022).
  if (!(s as string & { isWellFormed(): boolean }).isWellFormed()) throw new TypeError('AAD field is not well-formed Unicode');
}

/**
 * Canonical AAD: `u32be(len(label)) | label | u32be(count) | (u32be(len(f)) | f)*`, all strings
 * UTF-8. Prefix-free, so no two (label, fields) lists share an encoding. Written into one buffer
 * (a data key's AAD is built on every read of an object whose key is not kept opened).
 */
export function labelAad(label: string, ...fields: string[]): Buffer {
  checkWellFormed(label);
  let size = 8 + Buffer.byteLength(label, 'utf8');
  for (const f of fields) {
    checkWellFormed(f);
    size += 4 + Buffer.byteLength(f, 'utf8');
  }
  const out = Buffer.allocUnsafe(size);
  let at = writeField(out, 0, label);
  out.writeUInt32BE(fields.length, at);
  at += 4;
  for (const f of fields) at = writeField(out, at, f);
  return out;
}

function writeField(out: Buffer, at: number, s: string): number {
  const n = out.write(s, at + 4, 'utf8');
  out.writeUInt32BE(n, at);
  return at + 4 + n;
}

export type SseMode = 'SSE-S3' | 'SSE-KMS' | 'SSE-C';
const SSE_MODES: readonly string[] = ['SSE-S3', 'SSE-KMS', 'SSE-C'];

/** What a sealed data key is bound to. The same values must be given to seal and unseal. */
export interface DataKeyBinding {
  bucket: string;
  key: string;
  versionId: string;
  mode: SseMode;
  /** The SSE-S3 master key version that seals the data key (absent for other modes). */
  masterKeyVersion?: number;
}

function versionField(v: number | undefined): string {
  if (v === undefined) return '';
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError('key version must be a non-negative integer');
  return String(v);
}

export const DATA_KEY_LABEL = 'coffer/data-key/v1';
export const MASTER_KEY_LABEL = 'coffer/master-key/v1';

/** AAD for a sealed data key: labelAad("coffer/data-key/v1", bucket, key, versionId, mode, mkv). */
export function dataKeyAad(b: DataKeyBinding): Buffer {
  if (!SSE_MODES.includes(b.mode)) throw new TypeError('unknown SSE mode');
  return labelAad(DATA_KEY_LABEL, b.bucket, b.key, b.versionId, b.mode, versionField(b.masterKeyVersion));
}

/** AAD for a master key sealed under the root key: labelAad("coffer/master-key/v1", version). */
export function masterKeyAad(version: number): Buffer {
  if (typeof version !== 'number') throw new RangeError('a master key version is required');
  return labelAad(MASTER_KEY_LABEL, versionField(version));
}
