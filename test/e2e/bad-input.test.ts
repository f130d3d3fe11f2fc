// Bad input against the real server: every refusal is AWS's error code, status and XML envelope
// (with RequestId/HostId and the x-amz-request-id header; no body on HEAD), the server keeps
// serving afterwards, and nothing is stored: the object is absent or unchanged and no blob file
// (committed or temporary) is left under <dataDir>/blobs.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { deriveKey, encodeChunked } from '../auth/helpers.ts';
import { ACCESS_KEY, clientFor, SECRET_KEY, startTestServer, type TestServer } from '../helpers/coffer.ts';
import { assertS3Error, blobFiles, eventually, rawRequest, send, sendPartly, signRequest, xmlField } from '../helpers/raw-s3.ts';

const BUCKET = 'bad-input';
let srv: TestServer;
let port: number;

before(async () => {
  srv = await startTestServer();
  port = srv.coffer.listeners.http!.port;
  await srv.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'existing', Body: 'original content' }));
});
after(async () => {
  await srv?.stop();
});

const md5b64 = (b: string | Buffer) => createHash('md5').update(b).digest('base64');
const sha256hex = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

async function content(key: string, bucket = BUCKET): Promise<string | undefined> {
  try {
    const r = await srv.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await r.Body!.transformToString();
  } catch (e) {
    if ((e as S3ServiceException).name === 'NoSuchKey') return undefined;
    throw e;
  }
}

/** A normal request succeeds (the server still serves). */
async function alive(): Promise<void> {
  const r = await srv.s3.send(new ListBucketsCommand({}));
  assert.ok(r.Buckets!.some((b) => b.Name === BUCKET));
  assert.equal(await content('existing'), 'original content');
}

/** Runs `fn` and asserts it leaves the blob files exactly as they were. */
async function noNewBlobs(fn: () => Promise<void>): Promise<void> {
  const before = blobFiles(srv.dataDir);
  await fn();
  await eventually(() => blobFiles(srv.dataDir).join() === before.join(), 'blob files back to what they were');
}

async function sdkRejects(p: Promise<unknown>, code: string, status: number): Promise<S3ServiceException> {
  try {
    await p;
  } catch (e) {
    const err = e as S3ServiceException;
    assert.equal(err.name, code, `expected ${code}, got ${err.name}: ${err.message}`);
    assert.equal(err.$metadata.httpStatusCode, status);
    assert.ok(err.$metadata.requestId, 'the SDK read a request id');
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe('malformed XML bodies', () => {
  const bodies = ['this is not xml', '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>', '<<>>', '<Wrong/>'];

  test('CompleteMultipartUpload → MalformedXML 400; the upload and its parts remain, no object', async () => {
    const key = 'mpu-malformed';
    const up = await srv.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    await srv.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: up.UploadId, PartNumber: 1, Body: 'part one' }));
    await noNewBlobs(async () => {
      for (const body of bodies) {
        const res = await rawRequest(port, { method: 'POST', path: `/${BUCKET}/${key}`, query: { uploadId: up.UploadId! }, body });
        assertS3Error(res, 'MalformedXML', 400, 'The XML you provided was not well-formed or did not validate against our published schema');
      }
    });
    assert.equal(await content(key), undefined);
    const parts = await srv.s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: up.UploadId }));
    assert.equal(parts.Parts?.length, 1);
    await alive();
  });

  test('DeleteObjects → MalformedXML 400; nothing deleted', async () => {
    for (const body of [...bodies, '<Delete></Delete>', '<Delete><Object></Object></Delete>']) {
      const res = await rawRequest(port, {
        method: 'POST',
        path: `/${BUCKET}`,
        query: { delete: '' },
        headers: { 'content-md5': md5b64(body), 'content-type': 'application/xml' },
        body,
      });
      assertS3Error(res, 'MalformedXML', 400);
    }
    await alive();
  });

  test('CreateBucket → MalformedXML 400; no bucket', async () => {
    for (const body of ['not xml at all', '<CreateBucketConfiguration><LocationConstraint>', '<Other/>']) {
      const res = await rawRequest(port, { method: 'PUT', path: '/malformed-create', body });
      assertS3Error(res, 'MalformedXML', 400);
    }
    const list = await srv.s3.send(new ListBucketsCommand({}));
    assert.ok(!list.Buckets!.some((b) => b.Name === 'malformed-create'));
    await alive();
  });
});

describe('authentication', () => {
  test('no signature → AccessDenied 403 (anonymous), object not created', async () => {
    const get = await send(port, 'GET', `/${BUCKET}/existing`, { host: `127.0.0.1:${port}` });
    assertS3Error(get, 'AccessDenied', 403, 'Access Denied');
    const head = await send(port, 'HEAD', `/${BUCKET}/existing`, { host: `127.0.0.1:${port}` });
    assertS3Error(head, 'AccessDenied', 403, undefined, 'HEAD');
    const list = await send(port, 'GET', '/', { host: `127.0.0.1:${port}` });
    assertS3Error(list, 'AccessDenied', 403);
    // Anonymous requests learn nothing about what is implemented or allowed: AccessDenied first.
    for (const [method, path] of [
      ['GET', `/${BUCKET}?acl`],
      ['GET', `/${BUCKET}/existing?tagging`],
      ['PATCH', `/${BUCKET}/existing`],
      ['POST', '/'],
    ] as const) {
      assertS3Error(await send(port, method, path, { host: `127.0.0.1:${port}` }), 'AccessDenied', 403);
    }
    await noNewBlobs(async () => {
      const put = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/anon`, body: 'anonymous data', sign: false });
      assertS3Error(put, 'AccessDenied', 403);
    });
    assert.equal(await content('anon'), undefined);
    await alive();
  });

  test('wrong secret → SignatureDoesNotMatch 403, nothing stored', async () => {
    await noNewBlobs(async () => {
      const put = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/badsig`, body: 'x', secret: 'not-the-secret-key-at-all-00000000000000' });
      assertS3Error(put, 'SignatureDoesNotMatch', 403, /does not match the signature you provided/);
      assert.equal(xmlField(put.body, 'AWSAccessKeyId'), ACCESS_KEY);
      assert.ok(!put.body.includes(SECRET_KEY));
    });
    const head = await rawRequest(port, { method: 'HEAD', path: `/${BUCKET}/existing`, secret: 'wrong-secret-0000000000000000000000000000' });
    assertS3Error(head, 'SignatureDoesNotMatch', 403, undefined, 'HEAD');
    assert.equal(await content('badsig'), undefined);
    await alive();
  });

  test('unknown access key → InvalidAccessKeyId 403', async () => {
    const res = await rawRequest(port, { method: 'GET', path: `/${BUCKET}/existing`, accessKey: 'AKNOSUCHKEY000000000' });
    assertS3Error(res, 'InvalidAccessKeyId', 403, 'The AWS Access Key Id you provided does not exist in our records.');
    assert.equal(xmlField(res.body, 'AWSAccessKeyId'), 'AKNOSUCHKEY000000000');
    await alive();
  });

  test('request time skewed by 20 minutes (either way) → RequestTimeTooSkewed 403', async () => {
    for (const offset of [-20, 20]) {
      await noNewBlobs(async () => {
        const res = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/skewed`, body: 'late', signingDate: new Date(Date.now() + offset * 60_000) });
        assertS3Error(res, 'RequestTimeTooSkewed', 403, 'The difference between the request time and the current time is too large.');
        assert.equal(xmlField(res.body, 'MaxAllowedSkewMilliseconds'), '900000');
        assert.ok(xmlField(res.body, 'RequestTime'));
        assert.ok(xmlField(res.body, 'ServerTime'));
      });
    }
    // The SDK sees the same error.
    const skewed = clientFor(srv.httpUrl, undefined, { systemClockOffset: -20 * 60_000, maxAttempts: 1 });
    try {
      await sdkRejects(skewed.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'existing' })), 'RequestTimeTooSkewed', 403);
    } finally {
      skewed.destroy();
    }
    assert.equal(await content('skewed'), undefined);
    await alive();
  });
});

describe('presigned URLs', () => {
  // Presigning with checksums "when required" keeps the URL free of a checksum of an empty body.
  let presigner: S3Client;
  before(() => {
    presigner = clientFor(srv.httpUrl, undefined, { requestChecksumCalculation: 'WHEN_REQUIRED' });
  });
  after(() => presigner.destroy());

  test('a presigned GET and PUT work with plain fetch', async () => {
    const put = await getSignedUrl(presigner, new PutObjectCommand({ Bucket: BUCKET, Key: 'presigned/put me.txt' }), { expiresIn: 300 });
    const r1 = await fetch(put, { method: 'PUT', body: 'presigned body' });
    assert.equal(r1.status, 200, await r1.text());
    assert.equal(r1.headers.get('x-amz-server-side-encryption'), 'AES256');
    assert.equal(r1.headers.get('etag'), `"${createHash('md5').update('presigned body').digest('hex')}"`);
    const get = await getSignedUrl(presigner, new GetObjectCommand({ Bucket: BUCKET, Key: 'presigned/put me.txt' }), { expiresIn: 300 });
    const r2 = await fetch(get);
    assert.equal(r2.status, 200);
    assert.equal(await r2.text(), 'presigned body');
    const head = await getSignedUrl(presigner, new HeadObjectCommand({ Bucket: BUCKET, Key: 'presigned/put me.txt' }), { expiresIn: 300 });
    const r3 = await fetch(head, { method: 'HEAD' });
    assert.equal(r3.status, 200);
    assert.equal(r3.headers.get('content-length'), String('presigned body'.length));
    await alive();
  });

  test('an expired presigned URL → 403 AccessDenied "Request has expired"; PUT stores nothing', async () => {
    const signingDate = new Date(Date.now() - 10 * 60_000);
    const get = await getSignedUrl(presigner, new GetObjectCommand({ Bucket: BUCKET, Key: 'existing' }), { expiresIn: 60, signingDate });
    const r = await fetch(get);
    const body = await r.text();
    assert.equal(r.status, 403);
    assert.equal(xmlField(body, 'Code'), 'AccessDenied');
    assert.equal(xmlField(body, 'Message'), 'Request has expired');
    assert.equal(xmlField(body, 'X-Amz-Expires'), '60');
    assert.equal(xmlField(body, 'RequestId'), r.headers.get('x-amz-request-id'));
    const put = await getSignedUrl(presigner, new PutObjectCommand({ Bucket: BUCKET, Key: 'presigned/expired' }), { expiresIn: 60, signingDate });
    await noNewBlobs(async () => {
      const r2 = await fetch(put, { method: 'PUT', body: 'too late' });
      assert.equal(r2.status, 403);
      assert.equal(xmlField(await r2.text(), 'Message'), 'Request has expired');
    });
    assert.equal(await content('presigned/expired'), undefined);
    await alive();
  });

  test('a tampered presigned URL → SignatureDoesNotMatch', async () => {
    const url = new URL(await getSignedUrl(presigner, new GetObjectCommand({ Bucket: BUCKET, Key: 'existing' }), { expiresIn: 300 }));
    const tampered: URL[] = [];
    const otherKey = new URL(url);
    otherKey.pathname = `/${BUCKET}/presigned/put%20me.txt`;
    tampered.push(otherKey);
    const longer = new URL(url);
    longer.searchParams.set('X-Amz-Expires', '600');
    tampered.push(longer);
    const sig = new URL(url);
    const s = sig.searchParams.get('X-Amz-Signature')!;
    sig.searchParams.set('X-Amz-Signature', (s[0] === 'a' ? 'b' : 'a') + s.slice(1));
    tampered.push(sig);
    const extra = new URL(url);
    extra.searchParams.set('response-content-type', 'text/html');
    tampered.push(extra);
    for (const u of tampered) {
      const r = await fetch(u);
      const body = await r.text();
      assert.equal(r.status, 403, `${u}: ${body}`);
      assert.equal(xmlField(body, 'Code'), 'SignatureDoesNotMatch', body);
    }
    const put = new URL(await getSignedUrl(presigner, new PutObjectCommand({ Bucket: BUCKET, Key: 'existing' }), { expiresIn: 300 }));
    put.pathname = `/${BUCKET}/presigned/other`;
    await noNewBlobs(async () => {
      const r = await fetch(put, { method: 'PUT', body: 'overwrite attempt' });
      assert.equal(r.status, 403);
      assert.equal(xmlField(await r.text(), 'Code'), 'SignatureDoesNotMatch');
    });
    assert.equal(await content('presigned/other'), undefined);
    await alive();
  });
});

describe('body integrity', () => {
  test('wrong Content-MD5 → BadDigest 400; new object not created, old content unchanged', async () => {
    await noNewBlobs(async () => {
      await sdkRejects(srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'md5-new', Body: 'hello', ContentMD5: md5b64('other') })), 'BadDigest', 400);
      await sdkRejects(srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'existing', Body: 'replacement', ContentMD5: md5b64('other') })), 'BadDigest', 400);
      const raw = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/existing`, headers: { 'content-md5': md5b64('nope') }, body: 'replacement' });
      assertS3Error(raw, 'BadDigest', 400, 'The Content-MD5 you specified did not match what we received.');
    });
    assert.equal(await content('md5-new'), undefined);
    await alive();
  });

  test('malformed Content-MD5 → InvalidDigest 400', async () => {
    await noNewBlobs(async () => {
      for (const v of ['not-base64!', 'AAAA', md5b64('x') + 'AA', createHash('md5').update('x').digest('hex')]) {
        const res = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/existing`, headers: { 'content-md5': v }, body: 'x' });
        assertS3Error(res, 'InvalidDigest', 400, 'The Content-MD5 you specified is not valid.');
      }
    });
    await alive();
  });

  test('x-amz-content-sha256 that does not match the body → XAmzContentSHA256Mismatch 400, nothing stored', async () => {
    await noNewBlobs(async () => {
      const body = randomBytes(150_000);
      for (const key of ['sha-new', 'existing']) {
        const res = await rawRequest(port, {
          method: 'PUT',
          path: `/${BUCKET}/${key}`,
          headers: { 'x-amz-content-sha256': sha256hex('something else') },
          body,
        });
        assertS3Error(res, 'XAmzContentSHA256Mismatch', 400, "The provided 'x-amz-content-sha256' header does not match what was computed.");
        assert.equal(xmlField(res.body, 'ClientComputedContentSHA256'), sha256hex('something else'));
        assert.equal(xmlField(res.body, 'S3ComputedContentSHA256'), sha256hex(body));
      }
    });
    assert.equal(await content('sha-new'), undefined);
    await alive();
  });

  test('aws-chunked upload with a corrupted chunk signature → SignatureDoesNotMatch, nothing stored', async () => {
    const data = randomBytes(3 * 8192 + 100);
    // undefined: the same request with good chunk signatures, which must be accepted.
    for (const badChunk of [undefined, 0, 2, 4]) {
      const signingDate = new Date();
      const pre = {
        method: 'PUT',
        path: `/${BUCKET}/chunked-bad`,
        headers: {
          'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
          'content-encoding': 'aws-chunked',
          'x-amz-decoded-content-length': String(data.length),
          'content-length': '0', // replaced below, once the body is encoded
        },
        signingDate,
      };
      // The seed signature depends on Content-Length, which depends on the signature's length only.
      const probe = encodeChunked(data, { chunkSize: 8192, signing: { key: Buffer.alloc(32), amzDate: 'x', scope: 'x', seed: '0'.repeat(64) } });
      pre.headers['content-length'] = String(probe.body.length);
      const signed = await signRequest(pre, port);
      const seed = /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization!)![1]!;
      const amzDate = signed.headers['x-amz-date']!;
      const date = amzDate.slice(0, 8);
      const signing = { key: deriveKey(SECRET_KEY, date, 'us-east-1', 's3'), amzDate, scope: `${date}/us-east-1/s3/aws4_request`, seed };
      if (badChunk === undefined) {
        const good = encodeChunked(data, { chunkSize: 8192, signing });
        const ok = await send(port, 'PUT', signed.path, signed.headers, good.body);
        assert.equal(ok.status, 200, ok.body);
        assert.ok(Buffer.from(await (await srv.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'chunked-bad' }))).Body!.transformToByteArray()).equals(data));
        await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'chunked-bad', Body: 'kept' }));
        continue;
      }
      await noNewBlobs(async () => {
        const bad = encodeChunked(data, { chunkSize: 8192, signing, badChunk });
        const res = await send(port, 'PUT', signed.path, signed.headers, bad.body);
        assertS3Error(res, 'SignatureDoesNotMatch', 403);
      });
      assert.equal(await content('chunked-bad'), 'kept');
    }
    await alive();
  });

  test('a body shorter than Content-Length (client closes early) → nothing stored, server fine', async () => {
    for (const key of ['short-new', 'existing']) {
      await noNewBlobs(async () => {
        const signed = await signRequest(
          { method: 'PUT', path: `/${BUCKET}/${key}`, headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-length': String(1024 * 1024) } },
          port,
        );
        await sendPartly(port, 'PUT', signed, randomBytes(200_000));
      });
    }
    assert.equal(await content('short-new'), undefined);
    await alive();
  });
});

describe('more body integrity', () => {
  test('a wrong x-amz-checksum-crc32 → BadDigest 400, nothing stored', async () => {
    await noNewBlobs(async () => {
      const res = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/existing`, headers: { 'x-amz-checksum-crc32': 'AAAAAA==' }, body: 'not matching' });
      assertS3Error(res, 'BadDigest', 400, 'The CRC32 you specified did not match the calculated checksum.');
    });
    await alive();
  });

  /** An aws-chunked upload of `data` announcing `decodedLength` bytes: IncompleteBody, nothing stored. */
  async function misannouncedChunked(key: string, data: Buffer, decodedLength: number, chunkSize: number): Promise<void> {
    const wire = encodeChunked(data, { chunkSize }).body;
    const signed = await signRequest(
      {
        method: 'PUT',
        path: `/${BUCKET}/${key}`,
        headers: {
          'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
          'content-encoding': 'aws-chunked',
          'x-amz-decoded-content-length': String(decodedLength),
          'content-length': String(wire.length),
        },
      },
      port,
    );
    await noNewBlobs(async () => {
      const res = await send(port, 'PUT', signed.path, signed.headers, wire);
      assertS3Error(res, 'IncompleteBody', 400);
    });
    assert.equal(await content(key), undefined);
  }

  test('an aws-chunked body shorter than x-amz-decoded-content-length → IncompleteBody 400, nothing stored', async () => {
    await misannouncedChunked('chunked-short', randomBytes(10_000), 10_005, 4096);
    await alive();
  });

  test('an aws-chunked body longer than x-amz-decoded-content-length → IncompleteBody 400, nothing stored', async () => {
    for (const size of [10_000, 2 * 1024 * 1024]) await misannouncedChunked('chunked-long', randomBytes(size), size - 5, 65536);
    await alive();
  });

  test('Transfer-Encoding: chunked without Content-Length → 411 MissingContentLength', async () => {
    const signed = await signRequest({ method: 'PUT', path: `/${BUCKET}/no-length`, headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'transfer-encoding': 'chunked' } }, port);
    await noNewBlobs(async () => {
      const res = await send(port, 'PUT', signed.path, signed.headers, 'some bytes');
      assertS3Error(res, 'MissingContentLength', 411, 'You must provide the Content-Length HTTP header.');
    });
    assert.equal(await content('no-length'), undefined);
    await alive();
  });

  test('UploadPart with a wrong Content-MD5, or closed early: no part, no blob', async () => {
    const key = 'mpu-bad-part';
    const up = await srv.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    await noNewBlobs(async () => {
      await sdkRejects(
        srv.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: up.UploadId, PartNumber: 1, Body: 'part', ContentMD5: md5b64('other') })),
        'BadDigest',
        400,
      );
      const signed = await signRequest(
        { method: 'PUT', path: `/${BUCKET}/${key}`, query: { partNumber: '2', uploadId: up.UploadId! }, headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-length': String(6 * 1024 * 1024) } },
        port,
      );
      await sendPartly(port, 'PUT', signed, randomBytes(300_000));
    });
    const parts = await srv.s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: up.UploadId }));
    assert.equal(parts.Parts?.length ?? 0, 0);
    await alive();
  });
});

describe('early errors during uploads', () => {
  /** PUTs `size` bytes through a keep-alive agent; gives up (failing the test) after 5 s. */
  async function put(agent: http.Agent, path: string, size: number, signedPayload = false): Promise<{ status: number; connection?: string; code?: string; reused: boolean }> {
    const payloadHash = signedPayload ? sha256hex(Buffer.alloc(size)) : 'UNSIGNED-PAYLOAD';
    const signed = await signRequest({ method: 'PUT', path, headers: { 'x-amz-content-sha256': payloadHash, 'content-length': String(size) } }, port);
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: signed.path, headers: signed.headers, agent }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () =>
          resolve({ status: res.statusCode!, ...(res.headers.connection ? { connection: res.headers.connection } : {}), ...(xmlField(body, 'Code') ? { code: xmlField(body, 'Code')! } : {}), reused: req.reusedSocket }),
        );
      });
      req.on('error', reject);
      const timer = setTimeout(() => req.destroy(new Error('no answer in 5 s')), 5000);
      req.on('close', () => clearTimeout(timer));
      req.end(Buffer.alloc(size));
    });
  }

  for (const signedPayload of [false, true]) {
    test(`a large upload refused early gets its error at once and the connection closes; a small one keeps it (${signedPayload ? 'signed payload hash' : 'UNSIGNED-PAYLOAD'})`, async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        await noNewBlobs(async () => {
          const big = await put(agent, '/no-such-bucket-here/k', 32 * 1024 * 1024, signedPayload); // above the 16 MiB drain limit
          assert.deepEqual([big.status, big.code, big.connection], [404, 'NoSuchBucket', 'close']);
          // The next request is not stuck behind the unread upload.
          const small = await put(agent, '/no-such-bucket-here/k', 100, signedPayload);
          assert.deepEqual([small.status, small.code], [404, 'NoSuchBucket']);
        });
        const again = await put(agent, `/${BUCKET}/early-small`, 100, signedPayload);
        assert.equal(again.status, 200);
        assert.equal(again.reused, true, 'the small refused body was drained and the connection reused');
      } finally {
        agent.destroy();
      }
      await alive();
    });
  }
});

describe('names and keys', () => {
  const badNames = ['ab', 'a'.repeat(64), 'UpperCase', 'under_score', '192.168.5.4', 'xn--bucket', 'my..bucket', '-leading', 'trailing-', 'bucket-s3alias', 'sthree-bucket'];
  for (const name of badNames) {
    test(`invalid bucket name ${JSON.stringify(name)} → InvalidBucketName 400`, async () => {
      const res = await rawRequest(port, { method: 'PUT', path: `/${encodeURIComponent(name)}` });
      assertS3Error(res, 'InvalidBucketName', 400, 'The specified bucket is not valid.');
      assert.equal(xmlField(res.body, 'BucketName'), name);
    });
  }

  test('the SDK sees InvalidBucketName too, and no bad bucket was created', async () => {
    await sdkRejects(srv.s3.send(new CreateBucketCommand({ Bucket: 'Bad_Name' })), 'InvalidBucketName', 400);
    const list = await srv.s3.send(new ListBucketsCommand({}));
    for (const name of badNames) assert.ok(!list.Buckets!.some((b) => b.Name === name));
    await alive();
  });

  test('keys with "." / ".." segments or NUL → InvalidArgument 400', async () => {
    await noNewBlobs(async () => {
      for (const key of ['../escape', 'a/../b', 'a/./b', '..', 'dir/..', 'nul\u0000byte']) {
        await sdkRejects(srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'x' })), 'InvalidArgument', 400);
        await sdkRejects(srv.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key })), 'InvalidArgument', 400);
      }
      const raw = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/x/../y`, body: 'x' });
      assertS3Error(raw, 'InvalidArgument', 400, 'Object key must not contain "." or ".." path segments.');
      assert.equal(xmlField(raw.body, 'ArgumentName'), 'key');
    });
    // Dots that are not whole segments are fine.
    await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'a..b/.hidden/...', Body: 'dots' }));
    assert.equal(await content('a..b/.hidden/...'), 'dots');
    await alive();
  });

  test('a key over 1024 bytes → KeyTooLongError 400; 1024 bytes is fine', async () => {
    await noNewBlobs(async () => {
      const res = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/${'k'.repeat(1025)}`, body: 'x' });
      assertS3Error(res, 'KeyTooLongError', 400, 'Your key is too long');
      await sdkRejects(srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'é'.repeat(513), Body: 'x' })), 'KeyTooLongError', 400);
    });
    const max = 'é'.repeat(512);
    await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: max, Body: 'max' }));
    assert.equal(await content(max), 'max');
    await alive();
  });
});

describe('headers', () => {
  test('a 20 KB header → 400 RequestHeaderSectionTooLarge in the XML envelope; the server still serves', async () => {
    const res = await send(port, 'GET', `/${BUCKET}/existing`, { host: `127.0.0.1:${port}`, 'x-padding': 'p'.repeat(20 * 1024) });
    assertS3Error(res, 'RequestHeaderSectionTooLarge', 400, 'Your request header section exceeds the maximum allowed size.');
    await alive();
  });

  test('user metadata over 2 KB → MetadataTooLarge 400, nothing stored', async () => {
    await noNewBlobs(async () => {
      await sdkRejects(
        srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'meta-big', Body: 'x', Metadata: { big: 'v'.repeat(2046) } })),
        'MetadataTooLarge',
        400,
      );
      const res = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/meta-big`, headers: { 'x-amz-meta-a': 'v'.repeat(1500), 'x-amz-meta-b': 'v'.repeat(1500) }, body: 'x' });
      assertS3Error(res, 'MetadataTooLarge', 400);
      assert.equal(xmlField(res.body, 'MaxSizeAllowed'), '2048');
      await sdkRejects(srv.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'meta-big', Metadata: { big: 'v'.repeat(3000) } })), 'MetadataTooLarge', 400);
    });
    assert.equal(await content('meta-big'), undefined);
    // Exactly 2 KB (name + value) is allowed.
    await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'meta-ok', Body: 'x', Metadata: { big: 'v'.repeat(2045) } }));
    await alive();
  });

  test('unknown subresources → 501 NotImplemented; unsupported methods → 405 MethodNotAllowed', async () => {
    for (const [method, path, query] of [
      ['GET', `/${BUCKET}/existing`, { retention: '' }],
      ['PUT', `/${BUCKET}/existing`, { 'legal-hold': '' }],
      ['GET', `/${BUCKET}`, { tagging: '' }],
      ['GET', `/${BUCKET}/existing`, { acl: '' }],
      ['GET', `/${BUCKET}`, { acl: '' }],
      ['PUT', `/${BUCKET}`, { replication: '' }],
      ['GET', `/${BUCKET}`, { lifecycle: '' }],
      ['DELETE', `/${BUCKET}`, { cors: '' }],
    ] as const) {
      const res = await rawRequest(port, { method, path, query: { ...query } });
      assertS3Error(res, 'NotImplemented', 501);
    }
    for (const [method, path] of [
      ['PATCH', `/${BUCKET}/existing`],
      ['PATCH', `/${BUCKET}`],
      ['POST', '/'],
      ['DELETE', '/'],
    ] as const) {
      const res = await rawRequest(port, { method, path });
      assertS3Error(res, 'MethodNotAllowed', 405, 'The specified method is not allowed against this resource.');
      assert.equal(xmlField(res.body, 'Method'), method);
    }
    assert.equal(await content('existing'), 'original content');
    await alive();
  });
});

describe('server-side encryption headers', () => {
  test('GET/HEAD with x-amz-server-side-encryption → 400 InvalidArgument', async () => {
    const get = await rawRequest(port, { method: 'GET', path: `/${BUCKET}/existing`, headers: { 'x-amz-server-side-encryption': 'AES256' } });
    assertS3Error(get, 'InvalidArgument', 400);
    const head = await rawRequest(port, { method: 'HEAD', path: `/${BUCKET}/existing`, headers: { 'x-amz-server-side-encryption': 'AES256' } });
    assertS3Error(head, 'InvalidArgument', 400, undefined, 'HEAD');
    await alive();
  });

  test('SSE-C over plain HTTP → 400 InvalidRequest; into a bucket that blocks SSE-C (the default) → 403; nothing stored', async () => {
    const key = randomBytes(32);
    await noNewBlobs(async () => {
      for (const s3 of [srv.s3, srv.s3s]) {
        const [code, status] = s3 === srv.s3 ? ['InvalidRequest', 400] : ['AccessDenied', 403];
        await sdkRejects(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'ssec', Body: 'secret', SSECustomerAlgorithm: 'AES256', SSECustomerKey: key.toString('base64') })), code, status);
        await sdkRejects(s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'ssec', SSECustomerAlgorithm: 'AES256', SSECustomerKey: key.toString('base64') })), code, status);
      }
    });
    assert.equal(await content('ssec'), undefined);
    await alive();
  });

  test('SSE-KMS with a key that does not exist → 400 KMS.NotFoundException; DSSE → 501; unknown value → InvalidArgument', async () => {
    await noNewBlobs(async () => {
      await sdkRejects(srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'kms', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'fake-key-id' })), 'KMS.NotFoundException', 400);
      const res = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/kms`, headers: { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'alias/none' }, body: 'x' });
      assertS3Error(res, 'KMS.NotFoundException', 400, /alias\/none' is not found/);
      const dsse = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/kms`, headers: { 'x-amz-server-side-encryption': 'aws:kms:dsse' }, body: 'x' });
      assertS3Error(dsse, 'NotImplemented', 501);
      const bad = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/kms`, headers: { 'x-amz-server-side-encryption': 'AES512' }, body: 'x' });
      assertS3Error(bad, 'InvalidArgument', 400, 'The encryption method specified is not supported');
      assert.equal(xmlField(bad.body, 'ArgumentValue'), 'AES512');
    });
    assert.equal(await content('kms'), undefined);
    await alive();
  });
});

describe('uploads cut off by the client', () => {
  // The connection closes halfway through the body, with a signed payload hash and aws-chunked
  // (the body goes through the payload decoder); "a body shorter than Content-Length" above is
  // the same with UNSIGNED-PAYLOAD (the body is read directly).
  // 3 MiB goes to a blob; 16 KiB is kept inline (read whole, then sealed).
  for (const [mode, size] of [['signed hash', 3 * 1024 * 1024], ['aws-chunked', 3 * 1024 * 1024], ['signed hash', 16 * 1024], ['aws-chunked', 16 * 1024]] as const) {
    test(`${mode}, ${size} bytes: nothing is stored, the old object stays, the server keeps serving`, async () => {
      await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'cut-off', Body: 'before the cut' }));
      const body = randomBytes(size);
      const headers: Record<string, string> = { 'content-length': String(size) };
      let wire: Buffer = body;
      if (mode === 'signed hash') headers['x-amz-content-sha256'] = sha256hex(body);
      let signed = await signRequest({ method: 'PUT', path: `/${BUCKET}/cut-off`, headers }, port);
      if (mode === 'aws-chunked') {
        // The seed signature covers Content-Length, which depends only on the signatures' length.
        const length = encodeChunked(body, { chunkSize: 65536, signing: { key: Buffer.alloc(32), amzDate: 'x', scope: 'x', seed: '0'.repeat(64) } }).body.length;
        const chunkedHeaders = {
          'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
          'content-encoding': 'aws-chunked',
          'x-amz-decoded-content-length': String(size),
          'content-length': String(length),
        };
        signed = await signRequest({ method: 'PUT', path: `/${BUCKET}/cut-off`, headers: chunkedHeaders }, port);
        const amzDate = signed.headers['x-amz-date']!;
        const date = amzDate.slice(0, 8);
        const seed = /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization!)![1]!;
        wire = encodeChunked(body, { chunkSize: 65536, signing: { key: deriveKey(SECRET_KEY, date, 'us-east-1', 's3'), amzDate, scope: `${date}/us-east-1/s3/aws4_request`, seed } }).body;
        assert.equal(wire.length, length);
      }
      await noNewBlobs(async () => {
        await sendPartly(port, 'PUT', signed, wire.subarray(0, Math.floor(wire.length / 2)));
      });
      assert.equal(await content('cut-off'), 'before the cut');
      await alive();
    });
  }
});
