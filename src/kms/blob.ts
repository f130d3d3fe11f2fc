// The KMS ciphertext blob and the encryption-context binding. Spec: docs/kms.md
// ("Ciphertext blob").
//
//   version(1) = 0x01 | keyId(16, the UUID's bytes) | materialVersion(u32be) | iv(12) | ct | tag(16)
//
// AES-256-GCM under the key's material version, AAD = the 21-byte header || the canonical
// encryption context. The header names the key and the material version, so Decrypt needs no
// KeyId and works after rotation; any change to it, to the context or to the ciphertext fails
// authentication.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { labelAad } from '../crypto/envelope.ts';
import { systemRng, type Rng } from '../crypto/keys.ts';

/** DO NOT CHANGE: ciphertext blob format version 1 (docs/kms.md). */
export const BLOB_VERSION = 1;
export const BLOB_HEADER_SIZE = 1 + 16 + 4;
export const BLOB_IV_SIZE = 12;
export const BLOB_TAG_SIZE = 16;
export const BLOB_OVERHEAD = BLOB_HEADER_SIZE + BLOB_IV_SIZE + BLOB_TAG_SIZE;
export const CONTEXT_LABEL = 'coffer/kms-context/v1';

export type EncryptionContext = Record<string, string>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isKeyUuid(s: string): boolean {
  return UUID.test(s);
}

export function uuidToBytes(id: string): Buffer {
  if (!UUID.test(id)) throw new TypeError('not a lower-case UUID');
  return Buffer.from(id.replace(/-/g, ''), 'hex');
}

export function bytesToUuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The canonical encoding of an encryption context: its pairs sorted by key in UTF-8 byte
 * order, as labelAad("coffer/kms-context/v1", k1, v1, k2, v2, ...). An absent and an empty
 * context encode the same.
 */
export function canonicalContext(ctx: EncryptionContext | undefined): Buffer {
  const keys = Object.keys(ctx ?? {}).sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
  const fields: string[] = [];
  for (const k of keys) fields.push(k, ctx![k]!);
  return labelAad(CONTEXT_LABEL, ...fields);
}

export interface BlobHeader {
  keyId: string;
  materialVersion: number;
}

export function blobHeader(h: BlobHeader): Buffer {
  const b = Buffer.alloc(BLOB_HEADER_SIZE);
  b[0] = BLOB_VERSION;
  uuidToBytes(h.keyId).copy(b, 1);
  b.writeUInt32BE(h.materialVersion, 17);
  return b;
}

/** The header of a blob, or undefined if it is not a version-1 blob. Not authenticated yet. */
export function parseBlobHeader(blob: Buffer): BlobHeader | undefined {
  if (blob.length < BLOB_OVERHEAD || blob[0] !== BLOB_VERSION) return undefined;
  return { keyId: bytesToUuid(blob.subarray(1, 17)), materialVersion: blob.readUInt32BE(17) };
}

export function encryptBlob(material: Buffer, h: BlobHeader, plaintext: Buffer, ctx: EncryptionContext | undefined, rng: Rng = systemRng): Buffer {
  const header = blobHeader(h);
  const iv = rng.randomBytes(BLOB_IV_SIZE);
  const c = createCipheriv('aes-256-gcm', material, iv);
  c.setAAD(Buffer.concat([header, canonicalContext(ctx)]));
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([header, iv, ct, c.getAuthTag()]);
}

/** The plaintext, or undefined when the blob does not authenticate (tampered, wrong context or key). */
export function decryptBlob(material: Buffer, blob: Buffer, ctx: EncryptionContext | undefined): Buffer | undefined {
  if (!parseBlobHeader(blob)) return undefined;
  const header = blob.subarray(0, BLOB_HEADER_SIZE);
  const iv = blob.subarray(BLOB_HEADER_SIZE, BLOB_HEADER_SIZE + BLOB_IV_SIZE);
  const tag = blob.subarray(blob.length - BLOB_TAG_SIZE);
  const ct = blob.subarray(BLOB_HEADER_SIZE + BLOB_IV_SIZE, blob.length - BLOB_TAG_SIZE);
  try {
    const d = createDecipheriv('aes-256-gcm', material, iv);
    d.setAAD(Buffer.concat([header, canonicalContext(ctx)]));
    d.setAuthTag(tag);
    return Buffer.concat([d.update(ct), d.final()]);
  } catch {
    return undefined;
  }
}
