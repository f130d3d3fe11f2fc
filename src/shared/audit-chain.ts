// The audit trail's hash chain (docs/kms.md, "Audit trail"): each stored event carries
// hash_n = SHA-256(hash_{n-1} || event_n), the previous hash as its 32 raw bytes (32 zero
// bytes before the first event) and the event as the UTF-8 bytes of its canonical JSON. Here,
// not in kms/, because the metadata store computes the hash inside its write transaction (it
// alone can read the chain head atomically), and storage adapters import only shared code.
import { createHash } from 'node:crypto';

/** The hash "before" the first event: 32 zero bytes, hex. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * Canonical JSON: object keys sorted (JavaScript's default sort, by UTF-16 code units) at
 * every level, no whitespace, `undefined` members dropped, strings and numbers as
 * JSON.stringify writes them. Events hold no floating-point numbers.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const s = JSON.stringify(value);
    return s === undefined ? 'null' : s;
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(obj).sort()) {
    const v = obj[k];
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

/** hex SHA-256(bytes(prevHash) || utf8(eventJson)). */
export function chainHash(prevHash: string, eventJson: string): string {
  return createHash('sha256').update(Buffer.from(prevHash, 'hex')).update(eventJson, 'utf8').digest('hex');
}
