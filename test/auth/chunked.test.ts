// aws-chunked bodies: AWS's documented multi-chunk example, signed and unsigned trailers, every
// checksum as a trailer, bad chunk/trailer signatures, truncation, decoded-length mismatches, and
// chunk framing parsed across every possible input split.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checksumBase64, createPayloadDecoder, verifySigV4, type SignedAuth, type SigV4Request } from '../../src/auth/index.ts';
import { NOW, deriveKey, encodeChunked, fakeAuth, lookup, rejectsS3, runThrough, signHeader, type ChunkedOptions } from './helpers.ts';

const opts = { now: NOW, service: 's3' as const, region: 'us-east-1' };
const SCOPE = '20240305/us-east-1/s3/aws4_request';

async function signedStreaming(length: number, trailer?: string): Promise<{ req: SigV4Request; auth: SignedAuth }> {
  const req = await signHeader({
    method: 'PUT',
    path: '/bucket/chunked%20object',
    headers: {
      'x-amz-content-sha256': trailer ? 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER' : 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': String(length),
      ...(trailer ? { 'x-amz-trailer': trailer } : {}),
    },
  });
  const auth = await verifySigV4(req, lookup, opts);
  assert.ok(auth.kind === 'signed');
  return { req, auth };
}

/** Signing material computed independently of src/ (the seed comes from the signed request). */
function signing(auth: SignedAuth): NonNullable<ChunkedOptions['signing']> {
  return { key: deriveKey('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', '20240305', 'us-east-1', 's3'), amzDate: '20240305T123456Z', scope: SCOPE, seed: auth.signature };
}

function data(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

describe('AWS example: "Transferring Payload in Multiple Chunks"', () => {
  const awsCred = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', principal: 'aws' };
  const req: SigV4Request = {
    method: 'PUT',
    rawPath: '/examplebucket/chunkObject.txt',
    rawQuery: '',
    headers: {
      host: 's3.amazonaws.com',
      'x-amz-date': '20130524T000000Z',
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': '66560',
      'content-length': '66824',
    },
  };

  it('verifies the seed signature, reproduces the chunk signatures and decodes the body', async () => {
    const auth = await verifySigV4(req, () => awsCred, { now: new Date('2013-05-24T00:00:00Z'), service: 's3', region: 'us-east-1' });
    assert.ok(auth.kind === 'signed');
    assert.deepEqual(auth.payload, { type: 'streaming-signed', trailer: false });
    const payload = Buffer.alloc(66560, 'a');
    const { body, signatures } = encodeChunked(payload, {
      chunkSize: 65536,
      signing: {
        key: deriveKey(awsCred.secretKey, '20130524', 'us-east-1', 's3'),
        amzDate: '20130524T000000Z',
        scope: '20130524/us-east-1/s3/aws4_request',
        seed: '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
      },
    });
    assert.equal(signatures[0], 'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648');
    assert.equal(signatures[1], '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497');
    assert.equal(signatures[2], 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9');
    assert.equal(body.length, 66824);
    const d = createPayloadDecoder(auth, req.headers);
    assert.deepEqual(await runThrough(d, [body.subarray(0, 1000), body.subarray(1000, 65700), body.subarray(65700)]), payload);
    assert.equal(d.decodedLength, 66560);
  });
});

describe('STREAMING-AWS4-HMAC-SHA256-PAYLOAD', () => {
  for (const [size, chunk] of [[0, 64], [1, 64], [100, 64], [128, 64], [70_000, 8192]] as const) {
    it(`decodes ${size} bytes in ${chunk}-byte chunks`, async () => {
      const { req, auth } = await signedStreaming(size);
      const payload = data(size);
      const { body } = encodeChunked(payload, { chunkSize: chunk, signing: signing(auth) });
      assert.deepEqual(await runThrough(createPayloadDecoder(auth, req.headers), [body]), payload);
    });
  }

  it('rejects a bad signature on the first, a middle and the final chunk', async () => {
    const { req, auth } = await signedStreaming(300);
    for (const badChunk of [0, 2, 5]) {
      const { body } = encodeChunked(data(300), { chunkSize: 64, signing: signing(auth), badChunk });
      await rejectsS3(runThrough(createPayloadDecoder(auth, req.headers), [body]), 'SignatureDoesNotMatch');
    }
  });

  it('rejects tampered chunk data, reordered chunks and a wrong seed', async () => {
    const { req, auth } = await signedStreaming(300);
    const { body } = encodeChunked(data(300), { chunkSize: 64, signing: signing(auth) });
    const tampered = Buffer.from(body);
    tampered[100] ^= 0x20; // inside the first chunk's data
    await rejectsS3(runThrough(createPayloadDecoder(auth, req.headers), [tampered]), 'SignatureDoesNotMatch');
    const other = encodeChunked(data(300), { chunkSize: 64, signing: { ...signing(auth), seed: 'f'.repeat(64) } });
    await rejectsS3(runThrough(createPayloadDecoder(auth, req.headers), [other.body]), 'SignatureDoesNotMatch');
  });

  it('requires the decoded length to match x-amz-decoded-content-length', async () => {
    for (const declared of [299, 301]) {
      const { req, auth } = await signedStreaming(declared);
      const { body } = encodeChunked(data(300), { chunkSize: 64, signing: signing(auth) });
      await rejectsS3(runThrough(createPayloadDecoder(auth, req.headers), [body]), 'IncompleteBody');
    }
    const { req, auth } = await signedStreaming(10);
    await rejectsS3(() => createPayloadDecoder(auth, { ...req.headers, 'x-amz-decoded-content-length': undefined }), 'MissingContentLength');
  });

  it('rejects trailers in the non-trailer mode and bytes after the end', async () => {
    const { req, auth } = await signedStreaming(10);
    const withTrailer = encodeChunked(data(10), { chunkSize: 64, signing: signing(auth), trailers: { 'x-amz-checksum-crc32': checksumBase64('CRC32', data(10)) } });
    await rejectsS3(runThrough(createPayloadDecoder(auth, req.headers), [withTrailer.body]), 'InvalidRequest');
    const { body } = encodeChunked(data(10), { chunkSize: 64, signing: signing(auth) });
    await rejectsS3(runThrough(createPayloadDecoder(auth, req.headers), [Buffer.concat([body, Buffer.from('x')])]), 'InvalidRequest');
  });
});

describe('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', () => {
  const payload = data(200);
  const crc = checksumBase64('CRC32', payload);

  it('verifies chunk and trailer signatures and exposes the trailer checksum', async () => {
    const { req, auth } = await signedStreaming(200, 'x-amz-checksum-crc32');
    const { body } = encodeChunked(payload, { chunkSize: 64, signing: signing(auth), trailers: { 'x-amz-checksum-crc32': crc } });
    const d = createPayloadDecoder(auth, req.headers);
    assert.deepEqual(await runThrough(d, [body]), payload);
    assert.deepEqual(d.checksum, { algorithm: 'CRC32', value: crc, source: 'trailer' });
  });

  it('rejects a bad or missing trailer signature', async () => {
    const { req, auth } = await signedStreaming(200, 'x-amz-checksum-crc32');
    const bad = encodeChunked(payload, { chunkSize: 64, signing: signing(auth), trailers: { 'x-amz-checksum-crc32': crc }, badTrailerSignature: true });
    await rejectsS3(runThrough(createPayloadDecoder(auth, req.headers), [bad.body]), 'SignatureDoesNotMatch');
    const good = encodeChunked(payload, { chunkSize: 64, signing: signing(auth), trailers: { 'x-amz-checksum-crc32': crc } });
    const stripped = Buffer.from(good.body.toString('latin1').replace(/x-amz-trailer-signature:[0-9a-f]{64}\r\n/, ''), 'latin1');
    await rejectsS3(runThrough(createPayloadDecoder(auth, req.headers), [stripped]), 'SignatureDoesNotMatch');
    // A trailer value swapped after signing breaks the trailer signature.
    const swapped = Buffer.from(good.body.toString('latin1').replace(crc, checksumBase64('CRC32', Buffer.from('x'))), 'latin1');
    await rejectsS3(runThrough(createPayloadDecoder(auth, req.headers), [swapped]), 'SignatureDoesNotMatch');
  });

  it('a correctly signed but wrong checksum is BadDigest', async () => {
    const { req, auth } = await signedStreaming(200, 'x-amz-checksum-crc32');
    const wrong = checksumBase64('CRC32', Buffer.from('different'));
    const { body } = encodeChunked(payload, { chunkSize: 64, signing: signing(auth), trailers: { 'x-amz-checksum-crc32': wrong } });
    await rejectsS3(runThrough(createPayloadDecoder(auth, req.headers), [body]), 'BadDigest', 'The CRC32 you specified did not match the calculated checksum.');
  });
});

describe('STREAMING-UNSIGNED-PAYLOAD-TRAILER', () => {
  const unsignedHeaders = (len: number, trailer?: string) => ({
    'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
    'x-amz-decoded-content-length': String(len),
    ...(trailer ? { 'x-amz-trailer': trailer } : {}),
  });
  const auth = fakeAuth({ type: 'streaming-unsigned-trailer' });

  it('decodes the exact body the AWS JS SDK sends', async () => {
    const body = Buffer.from('6\r\nhello \r\n6\r\nstream\r\n0\r\nx-amz-checksum-crc32:gtnkmQ==\r\n\r\n');
    const d = createPayloadDecoder(auth, unsignedHeaders(12, 'x-amz-checksum-crc32'));
    assert.equal((await runThrough(d, [body])).toString(), 'hello stream');
    assert.deepEqual(d.checksum, { algorithm: 'CRC32', value: 'gtnkmQ==', source: 'trailer' });
  });

  for (const alg of ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as const) {
    it(`verifies a ${alg} trailer`, async () => {
      const name = `x-amz-checksum-${alg.toLowerCase()}`;
      const payload = data(1000);
      const ok = encodeChunked(payload, { chunkSize: 300, trailers: { [name]: checksumBase64(alg, payload) } });
      const d = createPayloadDecoder(auth, unsignedHeaders(1000, name));
      assert.deepEqual(await runThrough(d, [ok.body]), payload);
      assert.equal(d.checksum?.algorithm, alg);
      const bad = encodeChunked(payload, { chunkSize: 300, trailers: { [name]: checksumBase64(alg, Buffer.from('nope')) } });
      await rejectsS3(runThrough(createPayloadDecoder(auth, unsignedHeaders(1000, name)), [bad.body]), 'BadDigest', `The ${alg} you specified did not match the calculated checksum.`);
    });
  }

  it('rejects missing, undeclared and duplicate checksums', async () => {
    const payload = data(50);
    const none = encodeChunked(payload, { chunkSize: 64 });
    await rejectsS3(runThrough(createPayloadDecoder(auth, unsignedHeaders(50, 'x-amz-checksum-crc32')), [none.body]), 'InvalidRequest');
    const undeclared = encodeChunked(payload, { chunkSize: 64, trailers: { 'x-amz-checksum-crc32': checksumBase64('CRC32', payload) } });
    await rejectsS3(runThrough(createPayloadDecoder(auth, unsignedHeaders(50)), [undeclared.body]), 'InvalidRequest');
    await rejectsS3(() => createPayloadDecoder(auth, { ...unsignedHeaders(50, 'x-amz-checksum-crc32'), 'x-amz-checksum-sha1': checksumBase64('SHA1', payload) }), 'InvalidRequest',
      'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
    await rejectsS3(() => createPayloadDecoder(auth, unsignedHeaders(50, 'x-amz-meta-foo')), 'InvalidRequest');
    // No trailer at all is fine when none was announced.
    assert.deepEqual(await runThrough(createPayloadDecoder(auth, unsignedHeaders(50)), [none.body]), payload);
  });

  it('rejects malformed framing', async () => {
    const bodies = ['zz\r\nabc\r\n0\r\n\r\n', '3\nabc\r\n0\r\n\r\n', '3\r\nabcX\n0\r\n\r\n', '3\r\nabc\r\n0\r\nno-colon\r\n\r\n'];
    for (const b of bodies) await rejectsS3(runThrough(createPayloadDecoder(auth, unsignedHeaders(3)), [Buffer.from(b)]), 'InvalidRequest');
    const huge = Buffer.from('1' + '0'.repeat(5000) + '\r\n');
    await rejectsS3(runThrough(createPayloadDecoder(auth, unsignedHeaders(3)), [huge]), 'InvalidRequest');
  });
});

describe('framing across input boundaries', () => {
  async function cases() {
    const payload = data(150);
    const crc32c = checksumBase64('CRC32C', payload);
    const signed = await signedStreaming(150, 'x-amz-checksum-crc32c');
    const signedBody = encodeChunked(payload, { chunkSize: 64, signing: signing(signed.auth), trailers: { 'x-amz-checksum-crc32c': crc32c } }).body;
    const unsignedAuth = fakeAuth({ type: 'streaming-unsigned-trailer' });
    const unsignedHeaders = { 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'x-amz-decoded-content-length': '150', 'x-amz-trailer': 'x-amz-checksum-crc32c' };
    const unsignedBody = encodeChunked(payload, { chunkSize: 64, trailers: { 'x-amz-checksum-crc32c': crc32c } }).body;
    return {
      payload,
      list: [
        { name: 'signed with trailer', auth: signed.auth as SignedAuth, headers: signed.req.headers, body: signedBody },
        { name: 'unsigned trailer', auth: unsignedAuth, headers: unsignedHeaders, body: unsignedBody },
      ],
    };
  }

  it('decodes the same whatever two pieces the body arrives in', async () => {
    const { payload, list } = await cases();
    for (const c of list) {
      for (let i = 0; i <= c.body.length; i++) {
        const d = createPayloadDecoder(c.auth, c.headers);
        const out = await runThrough(d, [c.body.subarray(0, i), c.body.subarray(i)]);
        assert.deepEqual(out, payload, `${c.name} split at ${i}`);
        assert.equal(d.checksum?.algorithm, 'CRC32C');
      }
      const oneByOne = Array.from(c.body, (b) => Buffer.of(b));
      assert.deepEqual(await runThrough(createPayloadDecoder(c.auth, c.headers), oneByOne), payload);
    }
  });

  it('reports IncompleteBody for a body truncated at any position', async () => {
    const { list } = await cases();
    for (const c of list) {
      for (let i = 0; i < c.body.length; i++) {
        const cut = c.body.subarray(0, i);
        const run = runThrough(createPayloadDecoder(c.auth, c.headers), [cut]);
        if (i === c.body.length - 2) {
          // Only the final empty line is missing: everything, signatures included, was received.
          await run;
          continue;
        }
        await rejectsS3(run, 'IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header.');
      }
    }
  });
});
