// KMS grants, the pure part: validating CreateGrant's parameters as AWS does, whether a grant
// lets a principal perform an operation with a given encryption context (its constraints),
// whether a grant that carries CreateGrant may create another (a subset of its operations, at
// least its constraints), and grant tokens. KmsService stores grants through the KmsStore port
// and consults them in authorize(). docs/kms.md, "Grants".
import { randomBytes } from 'node:crypto';
import type { Principal } from '../service/identities.ts';
import type { KmsGrantConstraints, KmsGrantRecord } from '../storage/ports.ts';
import { isKeyUuid, uuidToBytes } from './blob.ts';
import type { EncryptionContext } from './blob.ts';
import { KmsError } from './errors.ts';

/** Every GrantOperation of AWS's API model. */
export const GRANT_OPERATIONS = [
  'Decrypt',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'ReEncryptFrom',
  'ReEncryptTo',
  'Sign',
  'Verify',
  'GetPublicKey',
  'CreateGrant',
  'RetireGrant',
  'DescribeKey',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'GenerateMac',
  'VerifyMac',
  'DeriveSharedSecret',
] as const;

/** The grant operations AWS allows on a symmetric encryption key: all but the asymmetric and HMAC ones. */
const SYMMETRIC_OPERATIONS: ReadonlySet<string> = new Set(
  GRANT_OPERATIONS.filter((op) => !['Sign', 'Verify', 'GetPublicKey', 'GenerateMac', 'VerifyMac', 'DeriveSharedSecret'].includes(op)),
);

/** Operations with an encryption context: the only ones a grant's constraints restrict. */
const CONTEXT_OPERATIONS = new Set([
  'Decrypt',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'ReEncryptFrom',
  'ReEncryptTo',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
]);

const PRINCIPAL = /^[\w+=,.@:/-]{1,256}$/;
const GRANT_NAME = /^[a-zA-Z0-9:/_-]{1,256}$/;
const GRANT_ID = /^[0-9a-f]{64}$/;
const MAX_CONSTRAINT_PAIRS = 8;

function validation(message: string): KmsError {
  return new KmsError('ValidationException', message);
}

export function validatePrincipal(v: unknown, field: 'granteePrincipal' | 'retiringPrincipal'): string {
  if (typeof v !== 'string' || !PRINCIPAL.test(v)) {
    throw validation(`1 validation error detected: Value '${String(v)}' at '${field}' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[\\w+=,.@:/-]+$ and have length between 1 and 256`);
  }
  return v;
}

export function validateGrantName(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !GRANT_NAME.test(v)) {
    throw validation(`1 validation error detected: Value '${String(v)}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$ and have length between 1 and 256`);
  }
  return v;
}

/** The Operations list: AWS's enum values, at least one, and only those a symmetric key supports. */
export function validateOperations(v: unknown): string[] {
  if (v === undefined || v === null) throw validation("1 validation error detected: Value null at 'operations' failed to satisfy constraint: Member must not be null");
  if (!Array.isArray(v) || v.length === 0) throw validation("1 validation error detected: Value at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1");
  const bad = v.filter((o) => typeof o !== 'string' || !(GRANT_OPERATIONS as readonly string[]).includes(o));
  if (bad.length) {
    throw validation(
      `1 validation error detected: Value '[${v.map(String).join(', ')}]' at 'operations' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [${GRANT_OPERATIONS.join(', ')}]]`,
    );
  }
  const unsupported = (v as string[]).filter((o) => !SYMMETRIC_OPERATIONS.has(o));
  if (unsupported.length) throw validation(`Grant operations [${unsupported.join(', ')}] are not valid for a KMS key with key spec SYMMETRIC_DEFAULT and key usage ENCRYPT_DECRYPT.`);
  return [...new Set(v as string[])];
}

function contextMap(v: unknown, field: string): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new KmsError('SerializationException', `${field} must be a map of strings to strings`);
  const entries = Object.entries(v);
  if (entries.length > MAX_CONSTRAINT_PAIRS) throw validation(`${field} can have at most ${MAX_CONSTRAINT_PAIRS} encryption context pairs`);
  for (const [k, x] of entries) {
    if (typeof x !== 'string') throw new KmsError('SerializationException', `${field} must be a map of strings to strings`);
    if (k === '') throw validation(`${field} keys must not be empty`);
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/** Constraints as the API gives them ({EncryptionContextSubset?, EncryptionContextEquals?}). */
export function validateConstraints(v: unknown): KmsGrantConstraints | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new KmsError('SerializationException', 'Constraints must be a structure');
  const o = v as Record<string, unknown>;
  const out: KmsGrantConstraints = {};
  if (o['EncryptionContextSubset'] !== undefined && o['EncryptionContextSubset'] !== null) out.encryptionContextSubset = contextMap(o['EncryptionContextSubset'], 'EncryptionContextSubset');
  if (o['EncryptionContextEquals'] !== undefined && o['EncryptionContextEquals'] !== null) out.encryptionContextEquals = contextMap(o['EncryptionContextEquals'], 'EncryptionContextEquals');
  return out.encryptionContextSubset || out.encryptionContextEquals ? out : undefined;
}

/** The API's shape of stored constraints. */
export function constraintsOut(c: KmsGrantConstraints | undefined): Record<string, Record<string, string>> | undefined {
  if (!c) return undefined;
  return {
    ...(c.encryptionContextSubset ? { EncryptionContextSubset: c.encryptionContextSubset } : {}),
    ...(c.encryptionContextEquals ? { EncryptionContextEquals: c.encryptionContextEquals } : {}),
  };
}

/** kms:GrantConstraintType values of a CreateGrant request. */
export function constraintTypes(c: KmsGrantConstraints | undefined): string[] {
  if (!c) return [];
  return [...(c.encryptionContextEquals ? ['EncryptionContextEquals'] : []), ...(c.encryptionContextSubset ? ['EncryptionContextSubset'] : [])];
}

function sameMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && b[k] === a[k]);
}

function includes(big: Record<string, string>, small: Record<string, string>): boolean {
  return Object.entries(small).every(([k, v]) => Object.hasOwn(big, k) && big[k] === v);
}

/** Does the request's encryption context satisfy the constraints (absent context = empty)? */
export function contextSatisfies(c: KmsGrantConstraints | undefined, ctx: EncryptionContext | undefined): boolean {
  if (!c) return true;
  const have = ctx ?? {};
  if (c.encryptionContextEquals && !sameMap(have, c.encryptionContextEquals)) return false;
  if (c.encryptionContextSubset && !includes(have, c.encryptionContextSubset)) return false;
  return true;
}

/**
 * Is `child` at least as strict as `parent`: does every encryption context that satisfies
 * `child` satisfy `parent`? (A grant with CreateGrant may only create grants this strict.)
 */
export function atLeastAsStrict(child: KmsGrantConstraints | undefined, parent: KmsGrantConstraints | undefined): boolean {
  if (!parent) return true;
  if (!child) return false;
  if (child.encryptionContextEquals) {
    // Only that exact context satisfies the child (if any does).
    return contextSatisfies(parent, child.encryptionContextEquals);
  }
  // The child admits every superset of its subset: the parent must require no exact context and
  // a subset of the child's pairs.
  if (parent.encryptionContextEquals) return false;
  return includes(child.encryptionContextSubset ?? {}, parent.encryptionContextSubset ?? {});
}

/** Is this principal the grant's grantee? Exact ARN match (an account root ARN names the root user). */
export function isGrantee(g: KmsGrantRecord, p: Principal): boolean {
  return p.type !== 'Anonymous' && g.granteePrincipal === p.arn;
}

/** Does grant `g` let principal `p` perform `operation` (e.g. 'Decrypt') with this encryption context? */
export function grantAllows(g: KmsGrantRecord, p: Principal, operation: string, ctx: EncryptionContext | undefined): boolean {
  if (!isGrantee(g, p) || !g.operations.includes(operation)) return false;
  return CONTEXT_OPERATIONS.has(operation) ? contextSatisfies(g.constraints, ctx) : true;
}

/** Same grantee, retiring principal, operations (as a set) and constraints: a named CreateGrant retried. */
export function sameGrantParameters(a: Omit<KmsGrantRecord, 'grantId' | 'createdAt' | 'issuingAccount'>, b: KmsGrantRecord): boolean {
  const eq = (x?: Record<string, string>, y?: Record<string, string>) => (x === undefined ? y === undefined : y !== undefined && sameMap(x, y));
  return (
    a.keyId === b.keyId &&
    a.name === b.name &&
    a.granteePrincipal === b.granteePrincipal &&
    a.retiringPrincipal === b.retiringPrincipal &&
    a.operations.length === b.operations.length &&
    a.operations.every((o) => b.operations.includes(o)) &&
    eq(a.constraints?.encryptionContextEquals, b.constraints?.encryptionContextEquals) &&
    eq(a.constraints?.encryptionContextSubset, b.constraints?.encryptionContextSubset)
  );
}

export function newGrantId(): string {
  return randomBytes(32).toString('hex');
}

export function validateGrantId(v: unknown): string {
  if (typeof v !== 'string' || v.length < 1 || v.length > 128) {
    throw validation(`1 validation error detected: Value '${String(v)}' at 'grantId' failed to satisfy constraint: Member must have length between 1 and 128`);
  }
  if (!GRANT_ID.test(v)) throw new KmsError('InvalidGrantIdException', 'The request was rejected because the specified GrantId is not valid.');
  return v;
}

// Grant tokens are not secret (AWS says as much): a token names its grant. Coffer's grants
// take effect at once, so a token only has to be recognisable; each CreateGrant answers a new one.
// Layout, base64url: 0x01 | key id (16) | grant id (32) | random (16).
const TOKEN_VERSION = 1;

export function grantToken(keyId: string, grantId: string): string {
  return Buffer.concat([Buffer.from([TOKEN_VERSION]), uuidToBytes(keyId), Buffer.from(grantId, 'hex'), randomBytes(16)]).toString('base64url');
}

/** The key and grant a token names, or InvalidGrantTokenException. */
export function parseGrantToken(v: unknown): { keyId: string; grantId: string } {
  if (typeof v !== 'string' || v.length < 1 || v.length > 8192) {
    throw validation(`1 validation error detected: Value at 'grantToken' failed to satisfy constraint: Member must have length between 1 and 8192`);
  }
  const b = /^[A-Za-z0-9_-]+$/.test(v) ? Buffer.from(v, 'base64url') : Buffer.alloc(0);
  if (b.length !== 65 || b[0] !== TOKEN_VERSION) throw new KmsError('InvalidGrantTokenException', 'The request was rejected because the specified grant token is not valid.');
  const hex = b.subarray(1, 17).toString('hex');
  const keyId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  if (!isKeyUuid(keyId)) throw new KmsError('InvalidGrantTokenException', 'The request was rejected because the specified grant token is not valid.');
  return { keyId, grantId: b.subarray(17, 49).toString('hex') };
}

/**
 * The GrantTokens parameter of the operations that take one: at most 10 strings of 1 to 8192
 * characters. Grants here take effect at once, so the tokens themselves are not needed.
 */
export function validateGrantTokens(v: unknown): void {
  if (v === undefined || v === null) return;
  if (!Array.isArray(v)) throw new KmsError('SerializationException', 'GrantTokens must be a list of strings');
  if (v.length > 10) throw validation("1 validation error detected: Value at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10");
  for (const t of v) {
    if (typeof t !== 'string') throw new KmsError('SerializationException', 'GrantTokens must be a list of strings');
    if (t.length < 1 || t.length > 8192) {
      throw validation("1 validation error detected: Value at 'grantTokens' failed to satisfy constraint: Member must satisfy constraint: [Member must have length between 1 and 8192]");
    }
  }
}
