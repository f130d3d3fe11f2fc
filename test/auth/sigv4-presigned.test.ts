// Presigned-URL SigV4: URLs produced by the real @smithy/signature-v4 presigner for tricky keys
// and queries, AWS's documented example, expiry and not-yet-valid handling, and parameter errors.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signatureV4Context, verifySigV4, type SigV4Request } from '../../src/auth/index.ts';
import { NOW, TRICKY_KEYS, keyPath, lookup, presign, rejectsS3 } from './helpers.ts';

const opts = { now: NOW, service: 's3' as const, region: 'us-east-1' };
const later = (ms: number) => ({ ...opts, now: new Date(NOW.getTime() + ms) });

function setParam(req: SigV4Request, name: string, value: string | undefined): SigV4Request {
  const parts = req.rawQuery.split('&').filter((p) => !p.startsWith(name + '='));
  if (value !== undefined) parts.push(`${name}=${encodeURIComponent(value)}`);
  return { ...req, rawQuery: parts.join('&') };
}

describe('presigned URLs from the real presigner', () => {
  for (const key of TRICKY_KEYS) {
    it(`verifies key ${JSON.stringify(key)}`, async () => {
      const req = await presign({ method: 'GET', path: keyPath('bucket', key), query: { 'response-content-type': 'text/plain; charset=utf-8' } });
      const res = await verifySigV4(req, lookup, opts);
      assert.ok(res.kind === 'signed');
      assert.equal(res.method, 'presigned');
      assert.deepEqual(res.payload, { type: 'unsigned' });
      assert.equal(res.contentSha256, 'UNSIGNED-PAYLOAD');
      assert.equal(res.expiresSeconds, 3600);
      const reordered = { ...req, rawQuery: req.rawQuery.split('&').reverse().join('&') };
      assert.equal((await verifySigV4(reordered, lookup, opts)).kind, 'signed');
    });
  }

  it('gives the policy context of a query-string request', async () => {
    const req = await presign({ method: 'GET', path: '/b/k' });
    const res = await verifySigV4(req, lookup, opts);
    assert.deepEqual(signatureV4Context(res), {
      signatureVersion: 'AWS4-HMAC-SHA256',
      authType: 'REST-QUERY-STRING',
      contentSha256: 'UNSIGNED-PAYLOAD',
      accessKeyId: 'AKIDEXAMPLE',
    });
  });

  it('honours X-Amz-Content-Sha256 carried in the URL (as the S3 presigner adds it)', async () => {
    const unsigned = await presign({ method: 'PUT', path: '/b/k', headers: { 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' } });
    assert.match(unsigned.rawQuery, /X-Amz-Content-Sha256=UNSIGNED-PAYLOAD/);
    const r1 = await verifySigV4(unsigned, lookup, opts);
    assert.ok(r1.kind === 'signed');
    assert.deepEqual(r1.payload, { type: 'unsigned' });

    const hex = 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9';
    const hashed = await presign({ method: 'PUT', path: '/b/k', headers: { 'x-amz-content-sha256': hex } });
    const r2 = await verifySigV4(hashed, lookup, opts);
    assert.ok(r2.kind === 'signed');
    assert.deepEqual(r2.payload, { type: 'sha256', hex });
  });

  it('passes the session token through and verifies signed non-hoisted headers', async () => {
    const req = await presign({ method: 'PUT', path: '/b/k', headers: { 'content-type': 'image/png' } }, { sessionToken: 'tok/en+==' });
    const res = await verifySigV4(req, lookup, opts);
    assert.ok(res.kind === 'signed');
    assert.equal(res.securityToken, 'tok/en+==');
    assert.deepEqual(res.signedHeaders, ['content-type', 'host']);
    await rejectsS3(verifySigV4({ ...req, headers: { ...req.headers, 'content-type': 'text/html' } }, lookup, opts), 'SignatureDoesNotMatch');
  });

  it('verifies AWS\'s documented presigned example', async () => {
    const req: SigV4Request = {
      method: 'GET',
      rawPath: '/test.txt',
      rawQuery:
        'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
      headers: { host: 'examplebucket.s3.amazonaws.com' },
    };
    const awsCred = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', principal: 1 };
    const res = await verifySigV4(req, () => awsCred, { now: new Date('2013-05-24T12:00:00Z'), service: 's3' });
    assert.equal(res.kind, 'signed');
  });
});

describe('presigned URL time checks', () => {
  it('accepts up to the expiry instant and rejects after it with AWS details', async () => {
    const req = await presign({ method: 'GET', path: '/b/k' }, { expiresIn: 60 });
    assert.equal((await verifySigV4(req, lookup, later(60_000))).kind, 'signed');
    const e = await rejectsS3(verifySigV4(req, lookup, later(61_000)), 'AccessDenied', 'Request has expired');
    assert.equal(e.status, 403);
    assert.deepEqual(e.details, { 'X-Amz-Expires': '60', Expires: '2024-03-05T12:35:56Z', ServerTime: '2024-03-05T12:35:57Z' });
  });

  it('rejects URLs dated more than the allowed skew in the future', async () => {
    const req = await presign({ method: 'GET', path: '/b/k' });
    assert.equal((await verifySigV4(req, lookup, later(-14 * 60_000))).kind, 'signed');
    await rejectsS3(verifySigV4(req, lookup, later(-16 * 60_000)), 'AccessDenied', 'Request is not valid yet');
  });

  it('accepts a week and rejects longer X-Amz-Expires', async () => {
    const week = await presign({ method: 'GET', path: '/b/k' }, { expiresIn: 604800 });
    assert.equal((await verifySigV4(week, lookup, later(604_000_000))).kind, 'signed');
    await rejectsS3(
      verifySigV4(setParam(week, 'X-Amz-Expires', '604801'), lookup, opts),
      'AuthorizationQueryParametersError',
      'X-Amz-Expires must be less than a week (in seconds) that is, the given X-Amz-Expires must be less than 604800 seconds',
    );
  });
});

describe('presigned URL parameter errors', () => {
  const required = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'];
  for (const name of required) {
    it(`rejects a URL without ${name}`, async () => {
      const req = await presign({ method: 'GET', path: '/b/k' });
      const e = await rejectsS3(verifySigV4(setParam(req, name, undefined), lookup, opts), 'AuthorizationQueryParametersError');
      assert.equal(e.status, 400);
    });
  }

  it('rejects bad algorithm, date, expires and credential values', async () => {
    const req = await presign({ method: 'GET', path: '/b/k' });
    const code = 'AuthorizationQueryParametersError';
    await rejectsS3(verifySigV4(setParam(req, 'X-Amz-Algorithm', 'AWS4-HMAC-SHA1'), lookup, opts), code, 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
    await rejectsS3(verifySigV4(setParam(req, 'X-Amz-Date', '2024-03-05T12:34:56Z'), lookup, opts), code, /ISO8601 Long Format/);
    await rejectsS3(verifySigV4(setParam(req, 'X-Amz-Expires', 'soon'), lookup, opts), code, 'X-Amz-Expires should be a number');
    await rejectsS3(verifySigV4(setParam(req, 'X-Amz-Expires', '-5'), lookup, opts), code, 'X-Amz-Expires must be non-negative');
    await rejectsS3(verifySigV4(setParam(req, 'X-Amz-Credential', 'AKIDEXAMPLE/20240305/us-east-1/s3'), lookup, opts), code, /Credential is mal-formed/);
    const e = await rejectsS3(
      verifySigV4(setParam(req, 'X-Amz-Credential', 'AKIDEXAMPLE/20240305/eu-west-1/s3/aws4_request'), lookup, opts),
      code,
      "Error parsing the X-Amz-Credential parameter; the region 'eu-west-1' is wrong; expecting 'us-east-1'",
    );
    assert.deepEqual(e.details, { Region: 'us-east-1' });
    await rejectsS3(
      verifySigV4(setParam(req, 'X-Amz-Credential', 'AKIDEXAMPLE/20240304/us-east-1/s3/aws4_request'), lookup, opts),
      code,
      /Invalid credential date/,
    );
  });

  it('rejects unknown keys, bad signatures, host not signed and unsigned x-amz-* headers', async () => {
    const req = await presign({ method: 'GET', path: '/b/k' });
    await rejectsS3(verifySigV4(setParam(req, 'X-Amz-Credential', 'NOPE/20240305/us-east-1/s3/aws4_request'), lookup, opts), 'InvalidAccessKeyId');
    await rejectsS3(verifySigV4(setParam(req, 'X-Amz-Signature', '0'.repeat(64)), lookup, opts), 'SignatureDoesNotMatch');
    await rejectsS3(verifySigV4({ ...req, rawPath: '/b/other' }, lookup, opts), 'SignatureDoesNotMatch');
    await rejectsS3(verifySigV4({ ...req, rawQuery: req.rawQuery + '&versionId=2' }, lookup, opts), 'SignatureDoesNotMatch');
    const e1 = await rejectsS3(verifySigV4(setParam(req, 'X-Amz-SignedHeaders', 'x-amz-date'), lookup, opts), 'AccessDenied');
    assert.equal(e1.details.HeadersNotSigned, 'host');
    const e2 = await rejectsS3(
      verifySigV4({ ...req, headers: { ...req.headers, 'x-amz-acl': 'public-read' } }, lookup, opts),
      'AccessDenied',
      'There were headers present in the request which were not signed',
    );
    assert.equal(e2.details.HeadersNotSigned, 'x-amz-acl');
  });
});
