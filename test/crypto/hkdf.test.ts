// hkdfSha256 (crypto/hkdf.ts) is RFC 5869 HKDF-SHA256: the RFC's SHA-256 test vectors, and the
// same bytes as node's hkdfSync for any input.
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { hkdfSha256 } from '../../src/crypto/hkdf.ts';

const hex = (s: string) => Buffer.from(s, 'hex');

describe('hkdfSha256', () => {
  test('RFC 5869 A.1: basic test case', () => {
    const okm = hkdfSha256(Buffer.alloc(22, 0x0b), hex('000102030405060708090a0b0c'), hex('f0f1f2f3f4f5f6f7f8f9'), 42);
    assert.equal(okm.toString('hex'), '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  });

  test('RFC 5869 A.2: longer inputs and outputs', () => {
    const range = (from: number, n: number) => Buffer.from(Array.from({ length: n }, (_, i) => from + i));
    const okm = hkdfSha256(range(0x00, 80), range(0x60, 80), range(0xb0, 80), 82);
    assert.equal(
      okm.toString('hex'),
      'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
    );
  });

  test('RFC 5869 A.3: no salt, no info', () => {
    const okm = hkdfSha256(Buffer.alloc(22, 0x0b), Buffer.alloc(0), Buffer.alloc(0), 42);
    assert.equal(okm.toString('hex'), '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8');
  });

  test('property: the same bytes as node:crypto hkdfSync', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 80 }),
        fc.uint8Array({ minLength: 0, maxLength: 80 }),
        fc.uint8Array({ minLength: 0, maxLength: 80 }),
        fc.integer({ min: 1, max: 200 }),
        (ikm, salt, info, length) => {
          const ours = hkdfSha256(ikm, salt, info, length);
          const node = Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
          assert.ok(ours.equals(node));
        },
      ),
      { numRuns: 300 },
    );
  });

  test('refuses lengths HKDF cannot give', () => {
    assert.throws(() => hkdfSha256(Buffer.alloc(32), Buffer.alloc(32), Buffer.alloc(0), 255 * 32 + 1), RangeError);
    assert.throws(() => hkdfSha256(Buffer.alloc(32), Buffer.alloc(32), Buffer.alloc(0), -1), RangeError);
  });
});
