// Envelope sealing and the canonical AAD encodings: round trips, tamper and wrong-AAD
// failures, and the unambiguity of labelAad / dataKeyAad.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  ENVELOPE_OVERHEAD,
  dataKeyAad,
  labelAad,
  masterKeyAad,
  seal,
  unseal,
  type DataKeyBinding,
} from '../../src/crypto/envelope.ts';
import { CryptoError } from '../../src/shared/errors.ts';
import { fixedRng, keyFrom } from './helpers.ts';

const kek = keyFrom('kek');
const aad = Buffer.from('context');

describe('seal / unseal', () => {
  it('round trips any plaintext and AAD (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 100 }), (pt, a) => {
        const sealed = seal(kek, Buffer.from(pt), Buffer.from(a));
        assert.equal(sealed.length, pt.length + ENVELOPE_OVERHEAD);
        assert.equal(sealed[0], 1);
        assert.ok(unseal(kek, sealed, Buffer.from(a)).equals(Buffer.from(pt)));
      }),
    );
  });

  it('lays out version | nonce | ciphertext | tag, with the nonce from the rng', () => {
    const nonce = Buffer.alloc(12, 0xab);
    const sealed = seal(kek, Buffer.from('secret'), aad, fixedRng(nonce));
    assert.ok(sealed.subarray(1, 13).equals(nonce));
    assert.ok(seal(kek, Buffer.from('secret'), aad, fixedRng(nonce)).equals(sealed), 'deterministic given the nonce');
    assert.ok(!seal(kek, Buffer.from('secret'), aad).equals(seal(kek, Buffer.from('secret'), aad)), 'random nonces by default');
  });

  it('fails with CryptoError on a wrong AAD, a wrong key, any flipped byte, or a short input', () => {
    const sealed = seal(kek, Buffer.from('a 32 byte data key, for example!'), aad);
    assert.throws(() => unseal(kek, sealed, Buffer.from('contexT')), CryptoError);
    assert.throws(() => unseal(kek, sealed, Buffer.alloc(0)), CryptoError);
    assert.throws(() => unseal(keyFrom('other'), sealed, aad), CryptoError);
    for (let i = 0; i < sealed.length; i++) {
      const b = Buffer.from(sealed);
      b[i] ^= 0x10;
      assert.throws(() => unseal(kek, b, aad), CryptoError, `byte ${i}`);
    }
    for (let n = 0; n < sealed.length; n++) assert.throws(() => unseal(kek, sealed.subarray(0, n), aad), CryptoError);
    assert.throws(() => unseal(kek, Buffer.concat([sealed, Buffer.alloc(1)]), aad), CryptoError);
  });

  it('binds the version byte: an envelope claiming version 2 fails even with a matching tag layout', () => {
    const sealed = seal(kek, Buffer.from('x'), aad);
    sealed[0] = 2;
    assert.throws(() => unseal(kek, sealed, aad), CryptoError);
  });
});

describe('AAD encodings', () => {
  const base: DataKeyBinding = { bucket: 'photos', key: 'cat.jpg', versionId: 'v1', mode: 'SSE-S3', masterKeyVersion: 3 };

  it('labelAad is length-prefixed and unambiguous (property)', () => {
    const strs = fc.array(fc.string({ maxLength: 6 }), { maxLength: 4 });
    fc.assert(
      fc.property(fc.string({ maxLength: 6 }), strs, fc.string({ maxLength: 6 }), strs, (l1, f1, l2, f2) => {
        const same = l1 === l2 && f1.length === f2.length && f1.every((v, i) => v === f2[i]);
        assert.equal(labelAad(l1, ...f1).equals(labelAad(l2, ...f2)), same);
      }),
      { numRuns: 500 },
    );
    assert.equal(labelAad('ab', 'c').toString('hex'), '000000026162' + '00000001' + '0000000163');
  });

  it('dataKeyAad changes with every field', () => {
    const variants: DataKeyBinding[] = [
      { ...base, bucket: 'photos2' },
      { ...base, key: 'cat.jpeg' },
      { ...base, versionId: 'v2' },
      { ...base, mode: 'SSE-KMS' },
      { ...base, mode: 'SSE-C' },
      { ...base, masterKeyVersion: 4 },
      { ...base, masterKeyVersion: undefined },
      { ...base, masterKeyVersion: 0 },
    ];
    const encodings = new Set([dataKeyAad(base).toString('hex')]);
    for (const v of variants) encodings.add(dataKeyAad(v).toString('hex'));
    assert.equal(encodings.size, variants.length + 1);
    assert.ok(dataKeyAad({ ...base }).equals(dataKeyAad(base)));
  });

  it('dataKeyAad cannot be confused by moving bytes between fields', () => {
    const a = dataKeyAad({ ...base, bucket: 'a', key: 'bc' });
    const b = dataKeyAad({ ...base, bucket: 'ab', key: 'c' });
    assert.ok(!a.equals(b));
    const c = dataKeyAad({ ...base, key: 'k', versionId: '' });
    const d = dataKeyAad({ ...base, key: '', versionId: 'k' });
    assert.ok(!c.equals(d));
  });

  it('a data key sealed for one object does not open for another', () => {
    const sealed = seal(kek, Buffer.alloc(32, 7), dataKeyAad(base));
    assert.equal(unseal(kek, sealed, dataKeyAad(base)).length, 32);
    assert.throws(() => unseal(kek, sealed, dataKeyAad({ ...base, key: 'dog.jpg' })), CryptoError);
    assert.throws(() => unseal(kek, sealed, masterKeyAad(3)), CryptoError);
  });

  it('domain-separates data keys, master keys and other labels', () => {
    assert.ok(!masterKeyAad(1).equals(masterKeyAad(2)));
    assert.ok(!masterKeyAad(1).equals(labelAad('coffer/access-key-secret/v1', '1')));
    assert.ok(masterKeyAad(1).equals(labelAad('coffer/master-key/v1', '1')));
  });

  it('counts lengths in UTF-8 bytes, not characters', () => {
    const u32 = (n: number) => Buffer.from([0, 0, 0, n]);
    const expected = Buffer.concat([u32(2), Buffer.from('é'), u32(3), u32(6), Buffer.from('日本'), u32(0), u32(4), Buffer.from('😀')]);
    assert.deepEqual(labelAad('é', '日本', '', '😀'), expected);
  });

  it('refuses malformed inputs instead of encoding them ambiguously', () => {
    assert.throws(() => labelAad('x', 'bad \ud800 surrogate'), TypeError);
    assert.throws(() => labelAad('bad \udc00 label'), TypeError);
    assert.throws(() => dataKeyAad({ ...base, mode: 'SSE-X' as 'SSE-S3' }), TypeError);
    assert.throws(() => dataKeyAad({ ...base, masterKeyVersion: -1 }), RangeError);
    assert.throws(() => masterKeyAad(1.5), RangeError);
  });
});
