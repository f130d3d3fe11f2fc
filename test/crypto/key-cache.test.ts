// The opened-key cache (crypto/key-cache.ts): least recently used out, copies handed out, one
// stream key kept per slot, and a slot dropped or reused keeps nothing for handles from before.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { KeyCache } from '../../src/crypto/key-cache.ts';
import { SecretKey } from '../../src/crypto/keys.ts';

const key = () => SecretKey.from(randomBytes(32));

test('keeps up to max keys, drops the least recently used, and hands out copies', () => {
  const cache = new KeyCache(3);
  const keys = Array.from({ length: 4 }, key);
  const bytes = keys.map((k) => Buffer.from(k.expose()));
  for (let i = 0; i < 3; i++) {
    const copy = cache.put(`k${i}`, keys[i]!);
    assert.ok(copy.expose().equals(bytes[i]!));
    copy.zero(); // the caller's copy: the kept one stays
  }
  assert.ok(cache.get('k0')?.expose().equals(bytes[0]!)); // k0 now the most recently used
  cache.put('k3', keys[3]!); // drops k1
  assert.equal(cache.size, 3);
  assert.equal(cache.get('k1'), undefined);
  for (const i of [0, 2, 3]) assert.ok(cache.get(`k${i}`)?.expose().equals(bytes[i]!), `k${i}`);
  cache.deleteWhere((id) => id === 'k2');
  assert.equal(cache.get('k2'), undefined);
  cache.clear();
  assert.equal(cache.size, 0);
  assert.equal(cache.get('k0'), undefined);
});

test('one stream key per slot, by stream index and salt; a dropped or reused slot keeps nothing for copies handed out before', () => {
  const cache = new KeyCache(1);
  const a = cache.put('a', key());
  const salt = randomBytes(32);
  const sk = randomBytes(32);
  assert.equal(a.derived?.get(0, salt), undefined);
  a.derived!.set(0, salt, sk);
  assert.ok(a.derived!.get(0, salt)?.equals(sk));
  assert.ok(cache.get('a')!.derived!.get(0, salt)?.equals(sk), 'shared by every copy');
  assert.equal(a.derived!.get(1, salt), undefined);
  assert.equal(a.derived!.get(0, randomBytes(32)), undefined);
  // Another derivation takes its place.
  const salt2 = randomBytes(32);
  a.derived!.set(5, salt2, randomBytes(32));
  assert.equal(a.derived!.get(0, salt), undefined);
  assert.ok(a.derived!.get(5, salt2));
  // The slot goes to another key: the old copy neither sees nor writes the new key's stream key.
  const b = cache.put('b', key());
  assert.equal(cache.get('a'), undefined);
  assert.equal(b.derived!.get(5, salt2), undefined, 'nothing of the key before');
  a.derived!.set(0, salt, sk);
  assert.equal(b.derived!.get(0, salt), undefined, 'a stale copy keeps nothing in a reused slot');
  b.derived!.set(0, salt, sk);
  assert.equal(a.derived!.get(0, salt), undefined, 'nor reads from it');
  // Putting an id again replaces its key and forgets its stream key.
  const b2 = cache.put('b', key());
  assert.equal(b2.derived!.get(0, salt), undefined);
  assert.equal(b.derived!.get(0, salt), undefined);
});

test('any sequence of puts, gets and drops: the cache answers as a least-recently-used map of copies would', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.array(fc.tuple(fc.constantFrom('put', 'get', 'drop'), fc.integer({ min: 0, max: 7 })), { maxLength: 60 }),
      (max, ops) => {
        const cache = new KeyCache(max);
        const model = new Map<string, Buffer>(); // least recently used first
        for (const [op, n] of ops) {
          const id = `id${n}`;
          if (op === 'put') {
            const k = key();
            model.delete(id);
            model.set(id, Buffer.from(k.expose()));
            if (model.size > max) model.delete(model.keys().next().value!);
            assert.ok(cache.put(id, k).expose().equals(model.get(id)!));
          } else if (op === 'get') {
            const want = model.get(id);
            if (want) {
              model.delete(id);
              model.set(id, want);
            }
            const got = cache.get(id);
            assert.equal(got?.expose().toString('hex'), want?.toString('hex'));
          } else {
            model.delete(id);
            cache.deleteWhere((i) => i === id);
          }
          assert.equal(cache.size, model.size);
        }
      },
    ),
    { numRuns: 200 },
  );
});
