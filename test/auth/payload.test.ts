// The body decoder for non-chunked bodies: x-amz-content-sha256 verification (failing before
// 'end'), unsigned pass-through, x-amz-checksum-* headers, computed default checksums, backpressure.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { checksumBase64, createPayloadDecoder, type AuthResult } from '../../src/auth/index.ts';
import { fakeAuth, rejectsS3, runThrough } from './helpers.ts';

const body = Buffer.from('The quick brown fox jumps over the lazy dog\n'.repeat(1000));
const pieces = (b: Buffer, n = 997) => Array.from({ length: Math.ceil(b.length / n) }, (_, i) => b.subarray(i * n, i * n + n));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('sha256 payloads', () => {
  it('passes bytes through and ends when the hash matches', async () => {
    const d = createPayloadDecoder(fakeAuth({ type: 'sha256', hex: sha256(body) }), {});
    assert.deepEqual(await runThrough(d, pieces(body)), body);
    assert.equal(d.decodedLength, body.length);
    assert.equal(d.checksum, undefined);
  });

  it('errors with XAmzContentSHA256Mismatch instead of ending', async () => {
    const d = createPayloadDecoder(fakeAuth({ type: 'sha256', hex: sha256(body) }), {});
    const bad = Buffer.from(body);
    bad[100] ^= 1;
    const e = await rejectsS3(runThrough(d, pieces(bad)), 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
    assert.equal(e.status, 400);
    assert.equal(e.details.S3ComputedContentSHA256, sha256(bad));
    await rejectsS3(runThrough(createPayloadDecoder(fakeAuth({ type: 'sha256', hex: sha256(body) }), {}), [body.subarray(1)]), 'XAmzContentSHA256Mismatch');
  });

  it('verifies an empty body', async () => {
    const d = createPayloadDecoder(fakeAuth({ type: 'sha256', hex: sha256(Buffer.alloc(0)) }), {});
    assert.equal((await runThrough(d, [])).length, 0);
  });
});

describe('unsigned and anonymous payloads', () => {
  it('passes unsigned bodies through', async () => {
    assert.deepEqual(await runThrough(createPayloadDecoder(fakeAuth({ type: 'unsigned' }), {}), pieces(body)), body);
  });

  it('anonymous requests follow their x-amz-content-sha256 header', async () => {
    const anon: AuthResult = { kind: 'anonymous' };
    assert.deepEqual(await runThrough(createPayloadDecoder(anon, {}), [body]), body);
    await rejectsS3(runThrough(createPayloadDecoder(anon, { 'x-amz-content-sha256': sha256(Buffer.from('x')) }), [body]), 'XAmzContentSHA256Mismatch');
    await rejectsS3(() => createPayloadDecoder(anon, { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'x-amz-decoded-content-length': '1' }), 'InvalidRequest');
  });
});

describe('x-amz-checksum-* headers', () => {
  for (const alg of ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as const) {
    it(`verifies ${alg} and exposes it; a mismatch is BadDigest`, async () => {
      const name = `x-amz-checksum-${alg.toLowerCase()}`;
      const value = checksumBase64(alg, body);
      const d = createPayloadDecoder(fakeAuth({ type: 'unsigned' }), { [name]: value });
      assert.deepEqual(await runThrough(d, pieces(body)), body);
      assert.deepEqual(d.checksum, { algorithm: alg, value, source: 'header' });

      const wrong = checksumBase64(alg, Buffer.from('other'));
      const e = await rejectsS3(
        runThrough(createPayloadDecoder(fakeAuth({ type: 'unsigned' }), { [name]: wrong }), pieces(body)),
        'BadDigest',
        `The ${alg} you specified did not match the calculated checksum.`,
      );
      assert.equal(e.status, 400);
    });
  }

  it('checks the checksum alongside the sha256 payload hash', async () => {
    const headers = { 'x-amz-checksum-sha256': checksumBase64('SHA256', body) };
    const d = createPayloadDecoder(fakeAuth({ type: 'sha256', hex: sha256(body) }), headers);
    assert.deepEqual(await runThrough(d, [body]), body);
    assert.equal(d.checksum?.value, checksumBase64('SHA256', body));
  });

  it('rejects invalid values and multiple checksum headers up front', async () => {
    const auth = fakeAuth({ type: 'unsigned' });
    await rejectsS3(() => createPayloadDecoder(auth, { 'x-amz-checksum-crc32': 'nope' }), 'InvalidRequest', 'Value for x-amz-checksum-crc32 header is invalid.');
    await rejectsS3(() => createPayloadDecoder(auth, { 'x-amz-checksum-crc32': 'DUoRhQ==', 'x-amz-checksum-crc32c': 'qTxfkw==' }), 'InvalidRequest',
      'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
  });

  it('computes a default checksum when the client sent none', async () => {
    const d = createPayloadDecoder(fakeAuth({ type: 'unsigned' }), {}, { defaultChecksum: 'CRC64NVME' });
    await runThrough(d, pieces(body));
    assert.deepEqual(d.checksum, { algorithm: 'CRC64NVME', value: checksumBase64('CRC64NVME', body), source: 'computed' });
  });
});

describe('streaming behaviour', () => {
  it('honours backpressure from a slow consumer and keeps memory flat', async () => {
    const total = 32 * 1024 * 1024;
    const block = Buffer.alloc(64 * 1024, 7);
    const hash = createHash('sha256');
    for (let i = 0; i < total / block.length; i++) hash.update(block);
    const d = createPayloadDecoder(fakeAuth({ type: 'sha256', hex: hash.digest('hex') }), {});
    let maxBuffered = 0;
    let received = 0;
    async function* source() {
      for (let i = 0; i < total / block.length; i++) {
        maxBuffered = Math.max(maxBuffered, d.readableLength + d.writableLength);
        yield block;
      }
    }
    const sink = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _e, cb) {
        received += chunk.length;
        setImmediate(cb);
      },
    });
    await pipeline(Readable.from(source()), d, sink);
    assert.equal(received, total);
    assert.ok(maxBuffered <= 4 * block.length, `buffered ${maxBuffered}`);
  });
});
