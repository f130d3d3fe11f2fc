// SSE-C key derivation (docs/key-hierarchy.md, "SSE-C"): the committed vector (cross-checked
// with an independent HKDF in Python), verifier matching in constant time, and the salt making
// every object's KEK and verifier different for the same customer key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { customerKeyMatches, deriveCustomerKeys, newCustomerKeySalt } from '../../src/crypto/customer-key.ts';
import { SecretKey } from '../../src/crypto/keys.ts';

const KEY = SecretKey.from(Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex'));
const SALT = Buffer.alloc(32, 0xa5);

test('the documented vector: HKDF-SHA256(key, salt, "coffer/sse-c/v1", 64) = KEK || verifier', () => {
  const m = deriveCustomerKeys(KEY, SALT);
  assert.equal(m.kek.expose().toString('hex'), 'cdb3a4a685b723032ec492e203031ea3ea15af43adf06b7128944fa35fdafde9');
  assert.equal(m.verifier.toString('hex'), '670bdbb62759eeba2a6c9a68d9b7a5df0f9a90d3c34a623c864df5ca21bcefb3');
});

test('the verifier recognises the key and nothing else; the salt separates objects', () => {
  const salt = newCustomerKeySalt();
  const { verifier } = deriveCustomerKeys(KEY, salt);
  const ok = customerKeyMatches(KEY, salt, verifier);
  assert.equal(ok.matches, true);
  assert.ok(ok.kek);
  const other = SecretKey.from(Buffer.alloc(32, 7));
  assert.deepEqual(customerKeyMatches(other, salt, verifier), { matches: false });
  assert.equal(customerKeyMatches(KEY, newCustomerKeySalt(), verifier).matches, false);
  assert.notEqual(deriveCustomerKeys(KEY, newCustomerKeySalt()).verifier.toString('hex'), verifier.toString('hex'));
  assert.throws(() => deriveCustomerKeys(KEY, Buffer.alloc(16)), /salt/);
});
