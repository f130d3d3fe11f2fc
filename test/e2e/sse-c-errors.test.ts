// Every row of AWS's SSE-C validation table (reference c.3) as raw requests: status, code,
// message and ArgumentName/Value, and the order of the checks (a request with several faults
// gets the first one's error: an MD5 mismatch on a 31-byte key is the MD5 error). The server
// trusts 127.0.0.1 as a TLS-terminating proxy (--trust-proxy-tls), so these plain-HTTP test
// requests count as HTTPS when they carry X-Forwarded-Proto: https, which also tests that mode:
// without the header, or from an untrusted proxy, SSE-C is refused as plain HTTP.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, PutBucketEncryptionCommand } from '@aws-sdk/client-s3';
import { startTestServer, type TestServer } from '../helpers/coffer.ts';
import { assertS3Error, blobFiles, rawRequest, xmlField, type RawRequest, type RawResponse } from '../helpers/raw-s3.ts';

const BUCKET = 'ssec-errors';
const BLOCKED = 'ssec-errors-blocked';
const A = 'x-amz-server-side-encryption-customer-algorithm';
const K = 'x-amz-server-side-encryption-customer-key';
const M = 'x-amz-server-side-encryption-customer-key-md5';
const CA = 'x-amz-copy-source-server-side-encryption-customer-algorithm';
const CK = 'x-amz-copy-source-server-side-encryption-customer-key';
const CM = 'x-amz-copy-source-server-side-encryption-customer-key-md5';
const TLS = { 'x-forwarded-proto': 'https' };

const MSG = {
  incompatible: 'Server Side Encryption with Customer provided key is incompatible with the encryption method specified',
  algorithm: 'The Encryption request you specified is not valid. Supported value: AES256.',
  noAlgorithm: 'Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.',
  noKey: 'Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.',
  md5: 'The calculated MD5 hash of the key did not match the hash that was provided.',
  length: 'The secret key was invalid for the specified algorithm.',
  needKey: 'The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.',
  wrongKey: 'Requests specifying Server Side Encryption with Customer provided keys must provide the correct secret key.',
  notApplicable: 'The encryption parameters are not applicable to this object.',
  partNeedsKey: 'The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters.',
  partOtherKey: 'The provided encryption parameters did not match the ones used originally.',
  insecure: 'Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.',
};

function trio(raw: Buffer, md5Of: Buffer = raw): Record<string, string> {
  return { [A]: 'AES256', [K]: raw.toString('base64'), [M]: createHash('md5').update(md5Of).digest('base64') };
}

describe('SSE-C validation, in AWS order (reference c.3)', () => {
  let srv: TestServer;
  let port: number;
  const key = randomBytes(32);
  const req = (r: RawRequest): Promise<RawResponse> => rawRequest(port, { ...r, headers: { ...TLS, ...(r.headers ?? {}) } });
  const put = (k: string, headers: Record<string, string>, bucket = BUCKET) => req({ method: 'PUT', path: `/${bucket}/${k}`, headers, body: 'payload' });
  const arg = (res: RawResponse, name: string | undefined, value?: string) => {
    assert.equal(xmlField(res.body, 'ArgumentName'), name);
    if (value !== undefined) assert.equal(xmlField(res.body, 'ArgumentValue'), value);
  };

  before(async () => {
    srv = await startTestServer({ config: { trustProxyTls: ['127.0.0.1', '::1'] } });
    port = srv.coffer.listeners.http!.port;
    await srv.s3s.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await srv.s3s.send(new CreateBucketCommand({ Bucket: BLOCKED }));
    await srv.s3s.send(new PutBucketEncryptionCommand({ Bucket: BUCKET, ServerSideEncryptionConfiguration: { Rules: [{ BlockedEncryptionTypes: { EncryptionType: ['NONE'] } }] } }));
    const ok = await put('sealed', trio(key));
    assert.equal(ok.status, 200, ok.body);
    assert.equal((await req({ method: 'PUT', path: `/${BUCKET}/plain`, body: 'plain' })).status, 200);
  });
  after(async () => srv?.stop());

  test('1: SSE-C headers with x-amz-server-side-encryption → 400 InvalidArgument', async () => {
    for (const sse of ['AES256', 'aws:kms']) {
      const res = await put('r1', { ...trio(key), 'x-amz-server-side-encryption': sse });
      assertS3Error(res, 'InvalidArgument', 400, MSG.incompatible);
      arg(res, 'x-amz-server-side-encryption', sse);
    }
  });

  test('2: an algorithm other than AES256 (PUT, GET, copy source) → 400 InvalidEncryptionAlgorithmError', async () => {
    assertS3Error(await put('r2', { ...trio(key), [A]: 'AES128' }), 'InvalidEncryptionAlgorithmError', 400, MSG.algorithm);
    assertS3Error(await req({ method: 'GET', path: `/${BUCKET}/sealed`, headers: { ...trio(key), [A]: 'aes256' } }), 'InvalidEncryptionAlgorithmError', 400, MSG.algorithm);
    const copy = await put('r2c', { 'x-amz-copy-source': `/${BUCKET}/sealed`, [CA]: 'AES512', [CK]: key.toString('base64'), [CM]: trio(key)[M]! });
    assertS3Error(copy, 'InvalidEncryptionAlgorithmError', 400, MSG.algorithm);
    // Order: the algorithm comes before a bad MD5.
    assertS3Error(await put('r2o', { ...trio(key, randomBytes(32)), [A]: 'AES128' }), 'InvalidEncryptionAlgorithmError', 400);
  });

  test('3: key or MD5 without an algorithm → 400 InvalidArgument', async () => {
    const { [A]: _a, ...noAlg } = trio(key);
    assertS3Error(await put('r3', noAlg), 'InvalidArgument', 400, MSG.noAlgorithm);
    assertS3Error(await put('r3b', { [M]: trio(key)[M]! }), 'InvalidArgument', 400, MSG.noAlgorithm);
    assertS3Error(await put('r3c', { [K]: key.toString('base64') }), 'InvalidArgument', 400, MSG.noAlgorithm);
  });

  test('4: an algorithm without a key → 400 InvalidArgument', async () => {
    assertS3Error(await put('r4', { [A]: 'AES256' }), 'InvalidArgument', 400, MSG.noKey);
    assertS3Error(await put('r4b', { [A]: 'AES256', [M]: trio(key)[M]! }), 'InvalidArgument', 400, MSG.noKey);
  });

  test('5: an MD5 that is not the key\'s → 400 InvalidArgument, checked before the length', async () => {
    const res = await put('r5', trio(key, randomBytes(32)));
    assertS3Error(res, 'InvalidArgument', 400, MSG.md5);
    arg(res, 'x-amz-server-side-encryption', 'null');
    // A 31-byte key with a wrong MD5 gets the MD5 error, not the length error.
    const short = randomBytes(31);
    assertS3Error(await put('r5b', trio(short, randomBytes(31))), 'InvalidArgument', 400, MSG.md5);
  });

  test('6: a key that is not 32 bytes (with its right MD5) on a write → 400 InvalidArgument', async () => {
    for (const n of [16, 31, 33]) assertS3Error(await put(`r6-${n}`, trio(randomBytes(n))), 'InvalidArgument', 400, MSG.length);
  });

  test('7: GET, HEAD or copy of an SSE-C object without its key → 400 InvalidRequest', async () => {
    assertS3Error(await req({ method: 'GET', path: `/${BUCKET}/sealed` }), 'InvalidRequest', 400, MSG.needKey);
    assertS3Error(await req({ method: 'HEAD', path: `/${BUCKET}/sealed` }), 'InvalidRequest', 400, undefined, 'HEAD');
    assertS3Error(await put('r7', { 'x-amz-copy-source': `/${BUCKET}/sealed` }), 'InvalidRequest', 400, MSG.needKey);
  });

  test('8: the wrong key on a read → 403 AccessDenied (GET, HEAD, copy source); a read with a key of another length too', async () => {
    const other = randomBytes(32);
    assertS3Error(await req({ method: 'GET', path: `/${BUCKET}/sealed`, headers: trio(other) }), 'AccessDenied', 403, MSG.wrongKey);
    assertS3Error(await req({ method: 'HEAD', path: `/${BUCKET}/sealed`, headers: trio(other) }), 'AccessDenied', 403, undefined, 'HEAD');
    assertS3Error(await req({ method: 'GET', path: `/${BUCKET}/sealed`, headers: trio(randomBytes(16)) }), 'AccessDenied', 403, MSG.wrongKey);
    const copy = await put('r8', { 'x-amz-copy-source': `/${BUCKET}/sealed`, [CA]: 'AES256', [CK]: other.toString('base64'), [CM]: trio(other)[M]! });
    assertS3Error(copy, 'AccessDenied', 403, MSG.wrongKey);
    // The object is intact.
    const ok = await req({ method: 'GET', path: `/${BUCKET}/sealed`, headers: trio(key) });
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'payload');
    assert.equal(ok.headers[A], 'AES256');
    assert.equal(ok.headers[M], trio(key)[M]);
    assert.equal(ok.headers['x-amz-server-side-encryption'], undefined);
  });

  test('9: SSE-C headers on an object that is not SSE-C → 400 InvalidRequest (GET, HEAD, copy source)', async () => {
    assertS3Error(await req({ method: 'GET', path: `/${BUCKET}/plain`, headers: trio(key) }), 'InvalidRequest', 400, MSG.notApplicable);
    // A key of another length is not applicable either (not "the wrong key").
    assertS3Error(await req({ method: 'GET', path: `/${BUCKET}/plain`, headers: trio(randomBytes(16)) }), 'InvalidRequest', 400, MSG.notApplicable);
    assertS3Error(await req({ method: 'HEAD', path: `/${BUCKET}/plain`, headers: trio(key) }), 'InvalidRequest', 400, undefined, 'HEAD');
    const copy = await put('r9', { 'x-amz-copy-source': `/${BUCKET}/plain`, [CA]: 'AES256', [CK]: key.toString('base64'), [CM]: trio(key)[M]! });
    assertS3Error(copy, 'InvalidRequest', 400, MSG.notApplicable);
  });

  test('10, 11: UploadPart without the key, with a key on a non-SSE-C upload, or with another key → 400 InvalidRequest', async () => {
    const create = async (headers: Record<string, string>) => {
      const r = await req({ method: 'POST', path: `/${BUCKET}/mp`, query: { uploads: '' }, headers });
      assert.equal(r.status, 200, r.body);
      return xmlField(r.body, 'UploadId')!;
    };
    const part = (uploadId: string, headers: Record<string, string>) => req({ method: 'PUT', path: `/${BUCKET}/mp`, query: { partNumber: '1', uploadId }, headers, body: 'part' });
    const sealed = await create(trio(key));
    const plain = await create({});
    assertS3Error(await part(sealed, {}), 'InvalidRequest', 400, MSG.partNeedsKey);
    assertS3Error(await part(plain, trio(key)), 'InvalidRequest', 400, MSG.partNeedsKey);
    assertS3Error(await part(sealed, trio(randomBytes(32))), 'InvalidRequest', 400, MSG.partOtherKey);
    const ok = await part(sealed, trio(key));
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.headers[M], trio(key)[M]);
  });

  test('12: over plain HTTP (no trusted proxy header) every SSE-C request → 400 InvalidRequest, before anything else, nothing stored', async () => {
    const before = blobFiles(srv.dataDir).length;
    const plainHttp = (r: RawRequest) => rawRequest(port, r);
    assertS3Error(await plainHttp({ method: 'PUT', path: `/${BUCKET}/r12`, headers: trio(key), body: randomBytes(100_000) }), 'InvalidRequest', 400, MSG.insecure);
    // Even a request with other faults: the connection is checked first.
    assertS3Error(await plainHttp({ method: 'PUT', path: `/${BUCKET}/r12`, headers: { ...trio(key), [A]: 'AES128', 'x-amz-server-side-encryption': 'AES256' }, body: 'x' }), 'InvalidRequest', 400, MSG.insecure);
    assertS3Error(await plainHttp({ method: 'GET', path: `/${BUCKET}/sealed`, headers: trio(key) }), 'InvalidRequest', 400, MSG.insecure);
    assertS3Error(await plainHttp({ method: 'PUT', path: `/${BUCKET}/r12c`, headers: { 'x-amz-copy-source': `/${BUCKET}/sealed`, [CA]: 'AES256', [CK]: key.toString('base64'), [CM]: trio(key)[M]! } }), 'InvalidRequest', 400, MSG.insecure);
    // The trusted proxy says its client used plain HTTP (untrusted addresses: test/unit/trust-proxy.test.ts).
    assertS3Error(await plainHttp({ method: 'PUT', path: `/${BUCKET}/r12`, headers: { ...trio(key), 'x-forwarded-proto': 'http' }, body: 'x' }), 'InvalidRequest', 400, MSG.insecure);
    // Whatever the operation, even on an object that does not exist or one that is not SSE-C.
    assertS3Error(await plainHttp({ method: 'GET', path: `/${BUCKET}/no-such-object`, headers: trio(key) }), 'InvalidRequest', 400, MSG.insecure);
    assertS3Error(await plainHttp({ method: 'DELETE', path: `/${BUCKET}/plain`, headers: trio(key) }), 'InvalidRequest', 400, MSG.insecure);
    assertS3Error(await plainHttp({ method: 'GET', path: `/${BUCKET}`, query: { 'list-type': '2' }, headers: trio(key) }), 'InvalidRequest', 400, MSG.insecure);
    assert.equal(blobFiles(srv.dataDir).length, before);
    assert.equal((await req({ method: 'HEAD', path: `/${BUCKET}/r12`, headers: trio(key) })).status, 404);
    assert.equal((await req({ method: 'GET', path: `/${BUCKET}/plain` })).status, 200, 'the refused DELETE deleted nothing');
  });

  test('13: an SSE-C write into a bucket that blocks SSE-C → 403 AccessDenied with AWS\'s message', async () => {
    const res = await put('obj', trio(key), BLOCKED);
    assertS3Error(
      res,
      'AccessDenied',
      403,
      `User: arn:aws:iam::${srv.coffer.access.accountId}:root is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::${BLOCKED}/obj" because this bucket has blocked upload requests that specify Server Side Encryption with Customer provided keys (SSE-C). Please specify a different server-side encryption type`,
    );
  });
});
