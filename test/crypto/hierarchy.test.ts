// Key hierarchy helpers: data and master key sealing, rotation re-wrap, stream key derivation
// and root key parsing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dataKeyAad, seal, type DataKeyBinding } from '../../src/crypto/envelope.ts';
import { decryptBuffer, encryptBuffer } from '../../src/crypto/format.ts';
import {
  deriveStreamKey,
  encodeRootKey,
  generateDataKey,
  parseRootKey,
  sealDataKey,
  sealMasterKey,
  unsealDataKey,
  unsealMasterKey,
} from '../../src/crypto/hierarchy.ts';
import { SecretKey } from '../../src/crypto/keys.ts';
import { CryptoError } from '../../src/shared/errors.ts';
import { keyFrom, pattern, seededRng } from './helpers.ts';

const root = keyFrom('root');
const binding: DataKeyBinding = { bucket: 'b', key: 'k', versionId: 'v', mode: 'SSE-S3', masterKeyVersion: 1 };

describe('data and master keys', () => {
  it('generateDataKey draws 32 bytes from the rng', () => {
    const a = generateDataKey(seededRng('x'));
    const b = generateDataKey(seededRng('x'));
    assert.ok(a.expose().equals(b.expose()));
    assert.ok(!generateDataKey().expose().equals(generateDataKey().expose()));
  });

  it('seals and unseals a data key bound to its object', () => {
    const mk = keyFrom('mk1');
    const dk = generateDataKey();
    const sealed = sealDataKey(mk, dk, binding);
    assert.ok(unsealDataKey(mk, sealed, binding).expose().equals(dk.expose()));
    for (const other of [
      { ...binding, bucket: 'c' },
      { ...binding, key: 'k2' },
      { ...binding, versionId: 'w' },
      { ...binding, mode: 'SSE-KMS' as const },
      { ...binding, masterKeyVersion: 2 },
    ]) {
      assert.throws(() => unsealDataKey(mk, sealed, other), CryptoError);
    }
    assert.throws(() => unsealDataKey(keyFrom('mk2'), sealed, binding), CryptoError);
  });

  it('refuses a sealed secret that is not a 32-byte key', () => {
    const mk = keyFrom('mk1');
    const short = seal(mk, Buffer.alloc(31), dataKeyAad(binding));
    assert.throws(() => unsealDataKey(mk, short, binding), CryptoError);
  });

  it('seals master keys under the root key, bound to their version', () => {
    const mk = SecretKey.generate();
    const sealed = sealMasterKey(root, mk, 7);
    assert.ok(unsealMasterKey(root, sealed, 7).expose().equals(mk.expose()));
    assert.throws(() => unsealMasterKey(root, sealed, 8), CryptoError);
    assert.throws(() => unsealMasterKey(keyFrom('other root'), sealed, 7), CryptoError);
  });

  it('rotation re-wrap moves a data key to the newest master key without touching the object', () => {
    const sealedMk1 = sealMasterKey(root, keyFrom('mk-v1'), 1);
    const sealedMk2 = sealMasterKey(root, keyFrom('mk-v2'), 2);
    const dk = generateDataKey();
    const blob = encryptBuffer(dk, pattern(70000), { streamIndex: 0 });
    const sealedV1 = sealDataKey(unsealMasterKey(root, sealedMk1, 1), dk, binding);
    // Re-wrap: unseal with the old version, re-seal with the newest.
    const recovered = unsealDataKey(unsealMasterKey(root, sealedMk1, 1), sealedV1, binding);
    const b2 = { ...binding, masterKeyVersion: 2 };
    const sealedV2 = sealDataKey(unsealMasterKey(root, sealedMk2, 2), recovered, b2);
    const dk2 = unsealDataKey(unsealMasterKey(root, sealedMk2, 2), sealedV2, b2);
    assert.ok(decryptBuffer(dk2, blob, { streamIndex: 0 }).equals(pattern(70000)));
    assert.throws(() => unsealDataKey(unsealMasterKey(root, sealedMk1, 1), sealedV2, b2), CryptoError);
  });
});

describe('deriveStreamKey', () => {
  it('depends on the data key, the salt and the stream index', () => {
    const dk = keyFrom('dk');
    const salt = Buffer.alloc(32, 1);
    const k = deriveStreamKey(dk, salt, 1).expose().toString('hex');
    assert.equal(deriveStreamKey(dk, salt, 1).expose().toString('hex'), k);
    const others = [
      deriveStreamKey(dk, salt, 2),
      deriveStreamKey(dk, salt, 0),
      deriveStreamKey(dk, Buffer.alloc(32, 2), 1),
      deriveStreamKey(keyFrom('dk2'), salt, 1),
    ].map((x) => x.expose().toString('hex'));
    assert.equal(new Set([k, ...others]).size, 5);
    assert.throws(() => deriveStreamKey(dk, Buffer.alloc(31), 1), RangeError);
    assert.throws(() => deriveStreamKey(dk, salt, 2 ** 32), RangeError);
    assert.throws(() => deriveStreamKey(dk, salt, -1), RangeError);
  });
});

describe('parseRootKey', () => {
  const bytes = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
  const hex = bytes.toString('hex');

  it('accepts hex (either case) and base64 (standard or URL-safe, padded or not), trimmed', () => {
    for (const text of [
      hex,
      hex.toUpperCase(),
      `  ${hex}\n`,
      bytes.toString('base64'),
      `${bytes.toString('base64')}\r\n`,
      bytes.toString('base64').replace(/=$/, ''),
      Buffer.alloc(32, 0xfb).toString('base64url'),
    ]) {
      const k = parseRootKey(text);
      assert.equal(k.expose().length, 32, text);
    }
    assert.ok(parseRootKey(bytes.toString('base64')).expose().equals(bytes));
    assert.ok(parseRootKey(Buffer.alloc(32, 0xfb).toString('base64url')).expose().equals(Buffer.alloc(32, 0xfb)));
    assert.ok(parseRootKey(encodeRootKey(parseRootKey(hex))).expose().equals(bytes));
  });

  it('rejects anything else, without echoing the input', () => {
    const secretish = 'deadbeefcafebabe'.repeat(4);
    const cases = [
      '',
      '   ',
      secretish.slice(0, 63),
      secretish + 'a',
      secretish.slice(0, 63) + 'g',
      Buffer.alloc(31, 9).toString('base64'),
      Buffer.alloc(33, 9).toString('base64'),
      '0'.repeat(64),
      Buffer.alloc(32).toString('base64'),
      `${hex} ${hex}`,
    ];
    for (const text of cases) {
      assert.throws(
        () => parseRootKey(text),
        (e: Error) => {
          assert.ok(!(e instanceof CryptoError));
          const t = text.trim();
          for (let i = 0; i + 8 <= t.length; i++) assert.ok(!e.message.includes(t.slice(i, i + 8)), 'message echoes input');
          return true;
        },
        JSON.stringify(text),
      );
    }
  });
});
