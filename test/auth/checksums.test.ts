// Checksum algorithms against published check values ("123456789") and incremental consistency.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  checksumAlgorithmOfHeader,
  checksumBase64,
  crc32c,
  Crc64Nvme,
  createChecksummer,
  isValidChecksumValue,
  CHECKSUM_ALGORITHMS,
} from '../../src/auth/index.ts';

const CHECK = Buffer.from('123456789');

describe('checksums', () => {
  it('match the published check values', () => {
    assert.equal(crc32c(CHECK), 0xe3069283);
    assert.equal(new Crc64Nvme().update(CHECK).value(), 0xae8b14860a799888n);
    assert.equal(checksumBase64('CRC32', CHECK), Buffer.from('cbf43926', 'hex').toString('base64'));
    assert.equal(checksumBase64('CRC32C', CHECK), Buffer.from('e3069283', 'hex').toString('base64'));
    assert.equal(checksumBase64('CRC64NVME', CHECK), Buffer.from('ae8b14860a799888', 'hex').toString('base64'));
    assert.equal(checksumBase64('SHA1', CHECK), createHash('sha1').update(CHECK).digest('base64'));
    assert.equal(checksumBase64('SHA256', CHECK), createHash('sha256').update(CHECK).digest('base64'));
  });

  it('give the values S3 documents / SDKs send', () => {
    assert.equal(checksumBase64('CRC32', Buffer.from('hello world')), 'DUoRhQ==');
    assert.equal(checksumBase64('CRC32C', Buffer.from('x')), 'qTxfkw==');
    assert.equal(crc32c(Buffer.alloc(0)), 0);
    assert.equal(new Crc64Nvme().value(), 0n);
  });

  it('are the same however the input is split', () => {
    const data = Buffer.alloc(10_007);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919 + (i >> 3)) & 0xff;
    for (const alg of CHECKSUM_ALGORITHMS) {
      const whole = checksumBase64(alg, data);
      for (const step of [1, 3, 7, 8, 9, 64, 4096]) {
        const c = createChecksummer(alg);
        for (let i = 0; i < data.length; i += step) c.update(data.subarray(i, i + step));
        assert.equal(c.digest().toString('base64'), whole, `${alg} step ${step}`);
      }
    }
    assert.equal(crc32c(data.subarray(5000), crc32c(data.subarray(0, 5000))), crc32c(data));
  });

  it('recognise header names and validate values', () => {
    assert.equal(checksumAlgorithmOfHeader('x-amz-checksum-crc64nvme'), 'CRC64NVME');
    assert.equal(checksumAlgorithmOfHeader('X-Amz-Checksum-CRC32C'), 'CRC32C');
    assert.equal(checksumAlgorithmOfHeader('x-amz-checksum-type'), undefined);
    assert.equal(checksumAlgorithmOfHeader('x-amz-checksum-md5'), undefined);
    assert.ok(isValidChecksumValue('CRC32', 'DUoRhQ=='));
    assert.ok(!isValidChecksumValue('CRC32', 'DUoRhQ'));
    assert.ok(!isValidChecksumValue('CRC32', 'DUoRhQAA'));
    assert.ok(!isValidChecksumValue('SHA1', 'DUoRhQ=='));
    assert.ok(!isValidChecksumValue('CRC32', 'DUo*hQ=='));
  });
});
