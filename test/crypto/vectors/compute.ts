// Computes the committed test vectors (object-format.json, key-hierarchy.json) from fixed
// inputs. generate.ts writes them once; vectors.test.ts recomputes and compares, so any
// change to the formats shows up as a test failure instead of a silent incompatibility.
import { createHash } from 'node:crypto';
import { dataKeyAad, labelAad, masterKeyAad, seal, type DataKeyBinding } from '../../../src/crypto/envelope.ts';
import {
  HEADER_SIZE,
  SEGMENT_SIZE,
  TAG_SIZE,
  encryptBuffer,
  encryptedSize,
  segmentCount,
  segmentPlainLength,
} from '../../../src/crypto/format.ts';
import { deriveStreamKey, parseRootKey, sealDataKey, sealMasterKey } from '../../../src/crypto/hierarchy.ts';
import { SecretKey } from '../../../src/crypto/keys.ts';
import { fixedRng, pattern } from '../helpers.ts';

/** Bytes start, start+1, ... (mod 256): the fixed keys, salts and nonces of the vectors. */
export function counting(n: number, start: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (start + i) & 0xff;
  return b;
}

const hex = (b: Buffer) => b.toString('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const FULL_HEX_MAX = 200; // blobs up to this size are written out in full

export const PATTERN = 'byte i = i mod 251';

export interface ObjectVector {
  name: string;
  dataKey: string;
  streamIndex: number;
  salt: string;
  plaintextLength: number;
  plaintextPattern: string;
  plaintext?: string;
  streamKey: string;
  header: string;
  encryptedSize: number;
  segmentTags: string[];
  ciphertextSha256: string;
  ciphertext?: string;
}

const OBJECT_CASES: Array<[string, number, number]> = [
  ['empty object', 0, 0],
  ['one byte', 1, 0],
  ['multipart part 3, 33 bytes', 33, 3],
  ['one full segment', SEGMENT_SIZE, 0],
  ['full segment plus one byte', SEGMENT_SIZE + 1, 0],
  ['multipart part 10000, two segments plus one byte', 2 * SEGMENT_SIZE + 1, 10000],
];

export function computeObjectVectors() {
  const dataKeyBytes = counting(32, 0x00);
  const salt = counting(32, 0xa0);
  const vectors: ObjectVector[] = OBJECT_CASES.map(([name, n, streamIndex]) => {
    const dataKey = SecretKey.from(dataKeyBytes);
    const plain = pattern(n);
    const blob = encryptBuffer(dataKey, plain, { streamIndex, rng: fixedRng(salt) });
    const tags: string[] = [];
    let off = HEADER_SIZE;
    for (let i = 0; i < segmentCount(n); i++) {
      off += segmentPlainLength(n, i) + TAG_SIZE;
      tags.push(hex(blob.subarray(off - TAG_SIZE, off)));
    }
    return {
      name,
      dataKey: hex(dataKeyBytes),
      streamIndex,
      salt: hex(salt),
      plaintextLength: n,
      plaintextPattern: PATTERN,
      ...(n <= 64 ? { plaintext: hex(plain) } : {}),
      streamKey: hex(deriveStreamKey(dataKey, salt, streamIndex).expose()),
      header: hex(blob.subarray(0, HEADER_SIZE)),
      encryptedSize: encryptedSize(n),
      segmentTags: tags,
      ciphertextSha256: sha256(blob),
      ...(blob.length <= FULL_HEX_MAX ? { ciphertext: hex(blob) } : {}),
    };
  });
  return {
    description:
      'CFR1 object format vectors (docs/object-format.md). "ciphertext" is the whole stream: header || segments. ' +
      'Plaintext byte i is i mod 251.',
    source: 'test/crypto/vectors/compute.ts (written by generate.ts)',
    vectors,
  };
}

export function computeKeyHierarchyVectors() {
  const rootBytes = counting(32, 0x40);
  const root = parseRootKey(hex(rootBytes));
  const masterBytes = counting(32, 0x80);
  const master = SecretKey.from(masterBytes);
  const masterNonce = counting(12, 0x10);
  const masterVersion = 1;

  const binding: DataKeyBinding = {
    bucket: 'photos',
    key: 'cats/tom.jpg',
    versionId: '3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY',
    mode: 'SSE-S3',
    masterKeyVersion: masterVersion,
  };
  const dataBytes = counting(32, 0x00);
  const dataNonce = counting(12, 0x20);

  const aadOnly: DataKeyBinding[] = [
    { bucket: 'a', key: 'bc', versionId: 'null', mode: 'SSE-KMS' },
    { bucket: 'ab', key: 'c', versionId: 'null', mode: 'SSE-KMS' },
    { bucket: 'docs', key: 'résumé/ü.txt', versionId: 'null', mode: 'SSE-C' },
  ];

  const accessAad = labelAad('coffer/access-key-secret/v1', 'AKIAIOSFODNN7EXAMPLE');
  const accessSecret = Buffer.from('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'utf8');
  const accessNonce = counting(12, 0x30);

  const streamSalt = counting(32, 0xa0);
  return {
    description: 'Coffer key hierarchy vectors (docs/key-hierarchy.md). All byte strings are hex.',
    source: 'test/crypto/vectors/compute.ts (written by generate.ts)',
    rootKey: {
      key: hex(rootBytes),
      acceptedTexts: [hex(rootBytes), hex(rootBytes).toUpperCase(), rootBytes.toString('base64'), rootBytes.toString('base64url')],
    },
    masterKey: {
      version: masterVersion,
      key: hex(masterBytes),
      nonce: hex(masterNonce),
      aad: hex(masterKeyAad(masterVersion)),
      sealed: hex(sealMasterKey(root, master, masterVersion, fixedRng(masterNonce))),
    },
    dataKey: {
      binding,
      key: hex(dataBytes),
      nonce: hex(dataNonce),
      aad: hex(dataKeyAad(binding)),
      sealed: hex(sealDataKey(master, SecretKey.from(dataBytes), binding, fixedRng(dataNonce))),
    },
    dataKeyAads: aadOnly.map((b) => ({ binding: b, aad: hex(dataKeyAad(b)) })),
    accessKeySecret: {
      label: 'coffer/access-key-secret/v1',
      fields: ['AKIAIOSFODNN7EXAMPLE'],
      aad: hex(accessAad),
      secret: hex(accessSecret),
      nonce: hex(accessNonce),
      sealed: hex(seal(root, accessSecret, accessAad, fixedRng(accessNonce))),
    },
    streamKeys: [0, 1, 10000].map((streamIndex) => ({
      dataKey: hex(dataBytes),
      salt: hex(streamSalt),
      streamIndex,
      streamKey: hex(deriveStreamKey(SecretKey.from(dataBytes), streamSalt, streamIndex).expose()),
    })),
  };
}
