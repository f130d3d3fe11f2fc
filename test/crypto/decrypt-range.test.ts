// decryptRange (the in-memory fast path) agrees with the plaintext for every range on segment
// boundaries, and fails on any altered, missing or extra byte, as DecryptStream does.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { cipherRangeFor, decryptBlobRangeInPlace, decryptRange, encryptBuffer, HEADER_SIZE, SEGMENT_SIZE } from '../../src/crypto/format.ts';
import { SecretKey } from '../../src/crypto/keys.ts';
import { CryptoError } from '../../src/shared/errors.ts';

const S = SEGMENT_SIZE;

test('decryptRange returns exactly the requested plaintext for boundary ranges', () => {
  const key = SecretKey.generate();
  for (const size of [1, S - 1, S, S + 1, 3 * S + 7]) {
    const plain = randomBytes(size);
    const blob = encryptBuffer(key, plain, { streamIndex: 3 });
    const header = blob.subarray(0, HEADER_SIZE);
    const points = [0, 1, S - 1, S, S + 1, 2 * S, 3 * S, size - 1].filter((p) => p >= 0 && p < size);
    for (const a of points) {
      for (const b of points) {
        if (b < a) continue;
        const cr = cipherRangeFor(size, a, b);
        const got = Buffer.concat(decryptRange(key, { streamIndex: 3, plainSize: size, start: a, endInclusive: b, header }, blob.subarray(cr.cipherStart, cr.cipherEndExclusive)));
        assert.ok(got.equals(plain.subarray(a, b + 1)), `size ${size} range ${a}-${b}`);
      }
    }
  }
});

test('decryptRange fails on a flipped byte, a short or long input, a wrong index or header', () => {
  const key = SecretKey.generate();
  const size = 2 * S + 10;
  const plain = randomBytes(size);
  const blob = encryptBuffer(key, plain, { streamIndex: 1 });
  const header = blob.subarray(0, HEADER_SIZE);
  const cipher = blob.subarray(HEADER_SIZE);
  const opts = { streamIndex: 1, plainSize: size, header };
  for (const pos of [0, 100, S + 15, cipher.length - 1]) {
    const bad = Buffer.from(cipher);
    bad[pos]! ^= 1;
    assert.throws(() => decryptRange(key, opts, bad), CryptoError);
  }
  assert.throws(() => decryptRange(key, opts, cipher.subarray(0, cipher.length - 1)), CryptoError);
  assert.throws(() => decryptRange(key, opts, Buffer.concat([cipher, Buffer.alloc(1)])), CryptoError);
  assert.throws(() => decryptRange(key, { ...opts, streamIndex: 2 }, cipher), CryptoError);
  const otherHeader = Buffer.from(header);
  otherHeader[HEADER_SIZE - 1]! ^= 1;
  assert.throws(() => decryptRange(key, { ...opts, header: otherHeader }, cipher), CryptoError);
  assert.ok(Buffer.concat(decryptRange(key, opts, cipher)).equals(plain));
});

test('decrypted in place (as in a GET slot), each range gives the same plaintext, with or without the blob header', () => {
  // Each segment's plaintext is copied over the bytes as soon as it verifies: it must never
  // overwrite ciphertext not yet read, whatever the range's first and last byte.
  const key = SecretKey.generate();
  for (const size of [S - 1, S, S + 1, 3 * S + 7, 16 * S]) {
    const plain = randomBytes(size);
    const blob = encryptBuffer(key, plain, { streamIndex: 2 });
    const header = blob.subarray(0, HEADER_SIZE);
    const points = [0, 1, S - 1, S, S + 1, 2 * S - 3, 3 * S, size - 1].filter((p) => p >= 0 && p < size);
    for (const a of points) {
      for (const b of points) {
        if (b < a) continue;
        const cr = cipherRangeFor(size, a, b);
        const withHeader = cr.cipherStart === HEADER_SIZE;
        const bytes = Buffer.from(new SharedArrayBuffer(cr.cipherEndExclusive));
        const src = blob.subarray(withHeader ? 0 : cr.cipherStart, cr.cipherEndExclusive);
        src.copy(bytes);
        const n = decryptBlobRangeInPlace(key, { streamIndex: 2, plainSize: size, start: a, endInclusive: b, header }, bytes.subarray(0, src.length), withHeader);
        assert.equal(n, b - a + 1);
        assert.ok(bytes.subarray(0, n).equals(plain.subarray(a, b + 1)), `size ${size} range ${a}-${b}`);
      }
    }
  }
});

test('in place, a damaged segment fails the whole window with a CryptoError', () => {
  const key = SecretKey.generate();
  const size = 4 * S;
  const blob = encryptBuffer(key, randomBytes(size), { streamIndex: 0 });
  const header = blob.subarray(0, HEADER_SIZE);
  for (const pos of [HEADER_SIZE + 5, HEADER_SIZE + 2 * (S + 16) + 9, blob.length - 1]) {
    const bytes = Buffer.from(new SharedArrayBuffer(blob.length));
    blob.copy(bytes);
    bytes[pos]! ^= 1;
    assert.throws(() => decryptBlobRangeInPlace(key, { streamIndex: 0, plainSize: size, header }, bytes, true), CryptoError, `flipped byte at ${pos}`);
  }
});
