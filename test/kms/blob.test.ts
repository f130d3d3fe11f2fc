// The KMS ciphertext blob (docs/kms.md): layout, the header and the encryption context bound as
// AAD, tamper detection, and a fixed test vector.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  BLOB_HEADER_SIZE,
  BLOB_OVERHEAD,
  blobHeader,
  bytesToUuid,
  canonicalContext,
  decryptBlob,
  encryptBlob,
  parseBlobHeader,
  uuidToBytes,
} from '../../src/kms/blob.ts';

const KEY_ID = '0b3c6c3e-7d2a-4c55-9a3f-2f1e5d6c7b8a';
const material = Buffer.alloc(32, 0x11);

test('layout: version | key id (16) | material version (u32be) | iv (12) | ct | tag (16)', () => {
  const blob = encryptBlob(material, { keyId: KEY_ID, materialVersion: 3 }, Buffer.from('hello'), { a: 'b' });
  assert.equal(blob.length, BLOB_OVERHEAD + 5);
  assert.equal(blob[0], 1);
  assert.equal(bytesToUuid(blob.subarray(1, 17)), KEY_ID);
  assert.equal(blob.readUInt32BE(17), 3);
  assert.deepEqual(parseBlobHeader(blob), { keyId: KEY_ID, materialVersion: 3 });
  assert.equal(decryptBlob(material, blob, { a: 'b' })!.toString(), 'hello');
  assert.deepEqual(uuidToBytes(KEY_ID), blob.subarray(1, 17));
});

test('the encryption context must match exactly: missing, extra, changed, case', () => {
  const ctx = { Department: 'Engineering', Project: 'Alpha' };
  const blob = encryptBlob(material, { keyId: KEY_ID, materialVersion: 1 }, Buffer.from('x'), ctx);
  assert.equal(decryptBlob(material, blob, { Project: 'Alpha', Department: 'Engineering' })!.toString(), 'x', 'order does not matter');
  const wrongs: (Record<string, string> | undefined)[] = [undefined, {}, { Department: 'Engineering' }, { ...ctx, extra: '1' }, { ...ctx, Project: 'alpha' }, { department: 'Engineering', Project: 'Alpha' }];
  for (const wrong of wrongs) {
    assert.equal(decryptBlob(material, blob, wrong), undefined, JSON.stringify(wrong));
  }
  const none = encryptBlob(material, { keyId: KEY_ID, materialVersion: 1 }, Buffer.from('y'), undefined);
  assert.equal(decryptBlob(material, none, {})!.toString(), 'y', 'absent and empty contexts are the same');
  assert.equal(decryptBlob(material, none, { a: '' }), undefined);
});

test('the context encoding is prefix-free: pairs cannot be re-split', () => {
  assert.notDeepEqual(canonicalContext({ ab: 'c' }), canonicalContext({ a: 'bc' }));
  assert.notDeepEqual(canonicalContext({ a: 'b', c: 'd' }), canonicalContext({ a: 'bcd' }));
});

test('any changed byte (header, iv, ciphertext, tag), truncation or another key fails', () => {
  const blob = encryptBlob(material, { keyId: KEY_ID, materialVersion: 2 }, randomBytes(40), undefined);
  for (let i = 0; i < blob.length; i++) {
    const t = Buffer.from(blob);
    t[i]! ^= 0x01;
    assert.equal(decryptBlob(material, t, undefined), undefined, `byte ${i}`);
  }
  assert.equal(decryptBlob(material, blob.subarray(0, blob.length - 1), undefined), undefined);
  assert.equal(decryptBlob(Buffer.alloc(32, 0x22), blob, undefined), undefined, 'other material');
  // Same material claimed under another key id or version: the header is authenticated.
  const moved = Buffer.concat([blobHeader({ keyId: '11111111-2222-4333-8444-555555555555', materialVersion: 2 }), blob.subarray(BLOB_HEADER_SIZE)]);
  assert.equal(decryptBlob(material, moved, undefined), undefined);
  assert.equal(parseBlobHeader(Buffer.alloc(10)), undefined);
  assert.equal(parseBlobHeader(Buffer.concat([Buffer.from([2]), blob.subarray(1)])), undefined, 'unknown version');
});

test('test vector (docs/kms.md)', () => {
  const iv = Buffer.from('000102030405060708090a0b', 'hex');
  const blob = encryptBlob(material, { keyId: KEY_ID, materialVersion: 1 }, Buffer.from('Hello, Coffer'), { purpose: 'test' }, { randomBytes: () => Buffer.from(iv) });
  assert.equal(
    blob.toString('hex'),
    VECTOR,
  );
});
const VECTOR = '010b3c6c3e7d2a4c559a3f2f1e5d6c7b8a00000001000102030405060708090a0b5b86da7f148f15b77bdeb5fab65203c7faf8cd7dff8f1367e3e48392ed';
