// Committed test vectors: recomputing them must give the committed files byte for byte (a
// format change fails here), a minimal reimplementation written from the docs alone must
// agree with them, the committed ciphertexts must decrypt, and the docs must quote them.
import assert from 'node:assert/strict';
import { createCipheriv, createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { masterKeyAad } from '../../src/crypto/envelope.ts';
import { decryptBuffer } from '../../src/crypto/format.ts';
import { parseRootKey, unsealDataKey, unsealMasterKey } from '../../src/crypto/hierarchy.ts';
import { SecretKey } from '../../src/crypto/keys.ts';
import { pattern } from './helpers.ts';
import { computeKeyHierarchyVectors, computeObjectVectors, type ObjectVector } from './vectors/compute.ts';

const read = (rel: string) => readFileSync(new URL(rel, import.meta.url), 'utf8');
const objectFile = JSON.parse(read('./vectors/object-format.json')) as ReturnType<typeof computeObjectVectors>;
const keyFile = JSON.parse(read('./vectors/key-hierarchy.json')) as ReturnType<typeof computeKeyHierarchyVectors>;
const hex = (s: string) => Buffer.from(s, 'hex');

/** RFC 5869 HKDF-SHA256 from HMAC, independent of node's hkdf. */
function hkdf(ikm: Buffer, salt: Buffer, info: Buffer, length: number): Buffer {
  const prk = createHmac('sha256', salt).update(ikm).digest();
  const out: Buffer[] = [];
  let t = Buffer.alloc(0);
  for (let i = 1; out.length * 32 < length; i++) {
    t = createHmac('sha256', prk).update(t).update(info).update(Buffer.from([i])).digest();
    out.push(t);
  }
  return Buffer.concat(out).subarray(0, length);
}

/** CFR1 encryption as docs/object-format.md describes it, in one function. */
function referenceEncrypt(dataKey: Buffer, salt: Buffer, streamIndex: number, plain: Buffer): Buffer {
  const header = Buffer.concat([Buffer.from('CFR1'), Buffer.from([16, 0, 0, 0]), salt]);
  const idx = Buffer.alloc(4);
  idx.writeUInt32BE(streamIndex);
  const key = hkdf(dataKey, salt, Buffer.concat([Buffer.from('coffer/object/v1'), idx]), 32);
  const count = Math.max(1, Math.ceil(plain.length / 65536));
  const out = [header];
  for (let i = 0; i < count; i++) {
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64BE(BigInt(i), 0);
    nonce[11] = i === count - 1 ? 1 : 0;
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(header);
    out.push(c.update(plain.subarray(i * 65536, (i + 1) * 65536)), c.final(), c.getAuthTag());
  }
  return Buffer.concat(out);
}

describe('committed vectors', () => {
  it('object-format.json is what the code computes', () => {
    assert.deepEqual(computeObjectVectors(), objectFile);
  });

  it('key-hierarchy.json is what the code computes', () => {
    assert.deepEqual(computeKeyHierarchyVectors(), keyFile);
  });

  it('a reimplementation from the spec reproduces every object vector', () => {
    for (const v of objectFile.vectors as ObjectVector[]) {
      const plain = pattern(v.plaintextLength);
      if (v.plaintext !== undefined) assert.equal(plain.toString('hex'), v.plaintext);
      const blob = referenceEncrypt(hex(v.dataKey), hex(v.salt), v.streamIndex, plain);
      assert.equal(blob.length, v.encryptedSize, v.name);
      assert.equal(createHash('sha256').update(blob).digest('hex'), v.ciphertextSha256, v.name);
      if (v.ciphertext !== undefined) assert.equal(blob.toString('hex'), v.ciphertext, v.name);
      assert.ok(decryptBuffer(SecretKey.from(hex(v.dataKey)), blob, { streamIndex: v.streamIndex }).equals(plain), v.name);
    }
  });

  it('the key hierarchy vectors open with the code and match the spec encodings', () => {
    for (const text of keyFile.rootKey.acceptedTexts) assert.equal(parseRootKey(text).expose().toString('hex'), keyFile.rootKey.key);
    const root = SecretKey.from(hex(keyFile.rootKey.key));
    const mk = keyFile.masterKey;
    assert.equal(unsealMasterKey(root, hex(mk.sealed), mk.version).expose().toString('hex'), mk.key);
    assert.equal(masterKeyAad(mk.version).toString('hex'), mk.aad);
    const dk = keyFile.dataKey;
    const master = SecretKey.from(hex(mk.key));
    assert.equal(unsealDataKey(master, hex(dk.sealed), dk.binding).expose().toString('hex'), dk.key);
    for (const s of keyFile.streamKeys) {
      const idx = Buffer.alloc(4);
      idx.writeUInt32BE(s.streamIndex);
      const k = hkdf(hex(s.dataKey), hex(s.salt), Buffer.concat([Buffer.from('coffer/object/v1'), idx]), 32);
      assert.equal(k.toString('hex'), s.streamKey);
    }
  });

  it('the docs quote the small vectors', () => {
    const objectDoc = read('../../docs/object-format.md');
    for (const v of objectFile.vectors as ObjectVector[]) {
      assert.ok(objectDoc.includes(v.ciphertextSha256), `object-format.md lacks the SHA-256 of "${v.name}"`);
      if (v.ciphertext !== undefined) assert.ok(objectDoc.includes(v.ciphertext), `object-format.md lacks "${v.name}"`);
    }
    const keyDoc = read('../../docs/key-hierarchy.md');
    for (const h of [keyFile.masterKey.sealed, keyFile.masterKey.aad, keyFile.dataKey.sealed, keyFile.dataKey.aad]) {
      assert.ok(keyDoc.includes(h), `key-hierarchy.md lacks ${h.slice(0, 16)}...`);
    }
    for (const s of keyFile.streamKeys) assert.ok(keyDoc.includes(s.streamKey), 'key-hierarchy.md lacks a stream key');
  });
});
