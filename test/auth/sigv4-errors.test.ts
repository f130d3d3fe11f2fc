// Negative cases for Authorization-header SigV4: each AWS error code, status and message the
// verifier answers (unknown key, bad signature, skew, malformed header, unsupported schemes,
// mixed mechanisms, missing/invalid x-amz-content-sha256, unsigned headers), and no secret leaks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SignatureV4 } from '@smithy/signature-v4';
import { parseAmzDate, verifySigV4, type SigV4Request } from '../../src/auth/index.ts';
import { CRED, NOW, NodeSha256, deriveKey, fromHttpRequest, lookup, rejectsS3, signHeader, toHttpRequest } from './helpers.ts';

const opts = { now: NOW, service: 's3' as const, region: 'us-east-1' };
const base = { method: 'GET', path: '/bucket/key', headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } };

function withAuth(req: SigV4Request, authorization: string): SigV4Request {
  return { ...req, headers: { ...req.headers, authorization } };
}

describe('credential and signature errors', () => {
  it('unknown access key -> InvalidAccessKeyId (403)', async () => {
    const req = await signHeader(base);
    const auth = String(req.headers.authorization).replace('AKIDEXAMPLE', 'AKIDUNKNOWN');
    const e = await rejectsS3(verifySigV4(withAuth(req, auth), lookup, opts), 'InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.');
    assert.equal(e.status, 403);
  });

  it('async lookups work too', async () => {
    const req = await signHeader(base);
    assert.equal((await verifySigV4(req, async (ak) => lookup(ak), opts)).kind, 'signed');
  });

  it('wrong secret -> SignatureDoesNotMatch (403) without leaking the expected signature or key', async () => {
    const req = await signHeader(base, { secret: 'not-the-secret' });
    const e = await rejectsS3(verifySigV4(req, lookup, opts), 'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
    assert.equal(e.status, 403);
    const expected = String((await signHeader(base)).headers.authorization).split('Signature=')[1];
    const key = deriveKey(CRED.secretKey, '20240305', 'us-east-1', 's3');
    const dump = JSON.stringify({ m: e.message, d: e.details });
    assert.ok(!dump.includes(expected), 'expected signature leaked');
    assert.ok(!dump.includes(key.toString('hex')) && !dump.includes(CRED.secretKey), 'key material leaked');
    assert.equal(e.details.SignatureProvided, String(req.headers.authorization).split('Signature=')[1]);
    assert.match(String(e.details.CanonicalRequest), /^GET\n\/bucket\/key\n/);
  });

  it('any tampering -> SignatureDoesNotMatch', async () => {
    const req = await signHeader({ ...base, query: { versionId: '1' }, headers: { ...base.headers, range: 'bytes=0-1' } });
    const tampered: SigV4Request[] = [
      { ...req, method: 'DELETE' },
      { ...req, rawPath: '/bucket/key2' },
      { ...req, rawPath: '/bucket/Key' },
      { ...req, rawQuery: 'versionId=2' },
      { ...req, rawQuery: 'versionId=1&acl' },
      { ...req, headers: { ...req.headers, range: 'bytes=0-2' } },
      { ...req, headers: { ...req.headers, host: 'evil.test' } },
      withAuth(req, String(req.headers.authorization).replace(/Signature=.*/, 'Signature=abc')),
      withAuth(req, String(req.headers.authorization).replace(/Signature=.*/, 'Signature=')),
    ];
    for (const t of tampered) await rejectsS3(verifySigV4(t, lookup, opts), 'SignatureDoesNotMatch');
  });

  it('verifies many scopes (signing-key cache eviction keeps results correct)', async () => {
    for (let i = 0; i < 300; i++) {
      const req = await signHeader(base, { region: `r-${i}` });
      assert.equal((await verifySigV4(req, lookup, { now: NOW, service: 's3' })).kind, 'signed');
    }
    assert.equal((await verifySigV4(await signHeader(base, { region: 'r-0' }), lookup, { now: NOW, service: 's3' })).kind, 'signed');
  });
});

describe('time errors', () => {
  it('accepts 14 minutes of skew and rejects 16 with RequestTimeTooSkewed details', async () => {
    const req = await signHeader(base);
    for (const m of [-14, 14]) assert.equal((await verifySigV4(req, lookup, { ...opts, now: new Date(NOW.getTime() + m * 60_000) })).kind, 'signed');
    for (const m of [-16, 16]) {
      const now = new Date(NOW.getTime() + m * 60_000);
      const e = await rejectsS3(verifySigV4(req, lookup, { ...opts, now }), 'RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.');
      assert.equal(e.status, 403);
      assert.equal(e.details.RequestTime, '20240305T123456Z');
      assert.equal(e.details.ServerTime, now.toISOString().replace('.000', ''));
    }
    const strict = await signHeader(base, { date: new Date(NOW.getTime() - 61_000) });
    await rejectsS3(verifySigV4(strict, lookup, { ...opts, maxSkewMs: 60_000 }), 'RequestTimeTooSkewed');
  });

  it('missing or unreadable dates -> AccessDenied', async () => {
    const req = await signHeader(base);
    const msg = 'AWS authentication requires a valid Date or x-amz-date header';
    const noDate = { ...req, headers: { ...req.headers, 'x-amz-date': undefined } };
    await rejectsS3(verifySigV4(noDate, lookup, opts), 'AccessDenied', msg);
    for (const bad of ['\x07', '20240305T123456', '2024-03-05T12:34:56Z', '20241305T123456Z', '20240230T000000Z']) {
      await rejectsS3(verifySigV4({ ...req, headers: { ...req.headers, 'x-amz-date': bad } }, lookup, opts), 'AccessDenied', msg);
    }
    await rejectsS3(verifySigV4({ ...noDate, headers: { ...noDate.headers, date: 'yesterday' } }, lookup, opts), 'AccessDenied', msg);
  });
});

describe('malformed Authorization headers', () => {
  const prefix = 'The authorization header is malformed; ';
  const cases: [string, (a: string) => string, string, Record<string, string>?][] = [
    ['missing Signature', (a) => a.replace(/, Signature=.*/, ''), 'the authorization header requires three components: Credential, SignedHeaders, and Signature.'],
    ['missing SignedHeaders', (a) => a.replace(/ SignedHeaders=[^,]*,/, ''), 'the authorization header requires three components: Credential, SignedHeaders, and Signature.'],
    ['component without =', (a) => a.replace('SignedHeaders=', 'SignedHeaders'), /the authorization component "SignedHeaders.*" is malformed\./.source],
    ['short credential', (a) => a.replace('/us-east-1/s3/aws4_request', '/us-east-1/s3'),
      'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'],
    ['empty credential part', (a) => a.replace('/us-east-1/', '//'), 'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'],
    ['wrong region', (a) => a.replace('/us-east-1/', '/eu-west-1/'), "the region 'eu-west-1' is wrong; expecting 'us-east-1'", { Region: 'us-east-1' }],
    ['wrong service', (a) => a.replace('/s3/', '/kms/'), 'incorrect service "kms". This endpoint belongs to "s3".'],
    ['wrong terminal', (a) => a.replace('aws4_request', 'aws5_request'), 'incorrect terminal "aws5_request". This endpoint uses "aws4_request".'],
    ['credential date mismatch', (a) => a.replace('/20240305/', '/20240304/'), 'Invalid credential date. Date is not the same as X-Amz-Date.'],
  ];
  for (const [name, edit, detail, details] of cases) {
    it(`${name} -> AuthorizationHeaderMalformed (400)`, async () => {
      const req = await signHeader(base);
      const e = await rejectsS3(
        verifySigV4(withAuth(req, edit(String(req.headers.authorization))), lookup, opts),
        'AuthorizationHeaderMalformed',
        detail.startsWith('the authorization component') ? new RegExp('^' + prefix + detail) : prefix + detail,
      );
      assert.equal(e.status, 400);
      if (details) assert.deepEqual(e.details, details);
    });
  }

  it('accepts any region when none is configured', async () => {
    const req = await signHeader(base, { region: 'moon-1' });
    assert.equal((await verifySigV4(req, lookup, { now: NOW, service: 's3' })).kind, 'signed');
  });
});

describe('unsupported and mixed mechanisms', () => {
  const v2 = 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.';

  it('SigV2 header and SigV2 query -> InvalidRequest (400)', async () => {
    const req: SigV4Request = { method: 'GET', rawPath: '/b/k', rawQuery: '', headers: { host: 'x', date: NOW.toUTCString() } };
    const e = await rejectsS3(verifySigV4(withAuth(req, 'AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg='), lookup, opts), 'InvalidRequest', v2);
    assert.equal(e.status, 400);
    await rejectsS3(verifySigV4({ ...req, rawQuery: 'AWSAccessKeyId=AKIDEXAMPLE&Expires=1&Signature=abc' }, lookup, opts), 'InvalidRequest', v2);
  });

  it('SigV4a -> InvalidRequest; unknown schemes -> InvalidArgument "Unsupported Authorization Type"', async () => {
    const req: SigV4Request = { method: 'GET', rawPath: '/b/k', rawQuery: '', headers: { host: 'x' } };
    await rejectsS3(verifySigV4(withAuth(req, 'AWS4-ECDSA-P256-SHA256 Credential=AK/20240305/s3/aws4_request, SignedHeaders=host, Signature=00'), lookup, opts), 'InvalidRequest', v2);
    for (const a of ['Bearer eyJhbGciOi', 'Basic dXNlcjpwYXNz', 'AWS4-HMAC-SHA512 Credential=x', 'AWS4-HMAC-SHA256Credential=x']) {
      const e = await rejectsS3(verifySigV4(withAuth(req, a), lookup, opts), 'InvalidArgument', 'Unsupported Authorization Type');
      assert.equal(e.details.ArgumentName, 'Authorization');
      assert.ok(!String(e.details.ArgumentValue).includes('eyJhbGciOi') || a.startsWith('AWS4'));
    }
  });

  it('header and query authentication together -> InvalidArgument (400)', async () => {
    const req = await signHeader(base);
    const msg =
      'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified';
    for (const q of ['X-Amz-Algorithm=AWS4-HMAC-SHA256', 'Signature=abc', 'X-Amz-Signature=00', 'X-Amz-Credential=x']) {
      const e = await rejectsS3(verifySigV4({ ...req, rawQuery: q }, lookup, opts), 'InvalidArgument', msg);
      assert.equal(e.status, 400);
    }
  });
});

describe('x-amz-content-sha256 and signed-header requirements', () => {
  it('missing x-amz-content-sha256 (s3) -> InvalidRequest', async () => {
    const req = await signHeader({ method: 'GET', path: '/b/k' }, { applyChecksum: false });
    await rejectsS3(verifySigV4(req, lookup, opts), 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  });

  it('invalid x-amz-content-sha256 -> InvalidArgument with AWS message', async () => {
    const req = await signHeader({ method: 'PUT', path: '/b/k', headers: { 'x-amz-content-sha256': 'GIBBERISH' } });
    const e = await rejectsS3(verifySigV4(req, lookup, opts), 'InvalidArgument', /^x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, .* or a valid sha256 value\.$/);
    assert.deepEqual(e.details, { ArgumentName: 'x-amz-content-sha256', ArgumentValue: 'GIBBERISH' });
  });

  it('SigV4a streaming payloads -> NotImplemented', async () => {
    const req = await signHeader({ method: 'PUT', path: '/b/k', headers: { 'x-amz-content-sha256': 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD' } });
    await rejectsS3(verifySigV4(req, lookup, opts), 'NotImplemented');
  });

  it('host not signed -> AccessDenied HeadersNotSigned', async () => {
    const signer = new SignatureV4({
      service: 's3', region: 'us-east-1', sha256: NodeSha256, uriEscapePath: false,
      credentials: { accessKeyId: CRED.accessKeyId, secretAccessKey: CRED.secretKey },
    });
    const signed = await signer.sign(toHttpRequest(base), { signingDate: NOW, unsignableHeaders: new Set(['host']) });
    const req = fromHttpRequest(signed as never);
    assert.doesNotMatch(String(req.headers.authorization), /host/);
    const e = await rejectsS3(verifySigV4(req, lookup, opts), 'AccessDenied', 'There were headers present in the request which were not signed');
    assert.deepEqual(e.details, { HeadersNotSigned: 'host' });
  });

  it('x-amz-* headers added after signing -> AccessDenied HeadersNotSigned', async () => {
    const req = await signHeader(base);
    const e = await rejectsS3(
      verifySigV4({ ...req, headers: { ...req.headers, 'x-amz-acl': 'public-read', 'x-amz-meta-a': '1' } }, lookup, opts),
      'AccessDenied',
    );
    assert.deepEqual(e.details, { HeadersNotSigned: 'x-amz-acl, x-amz-meta-a' });
    // Unsigned non-x-amz headers are fine (user-agent, content-type, ...).
    assert.equal((await verifySigV4({ ...req, headers: { ...req.headers, 'user-agent': 'x', 'content-type': 'a/b' } }, lookup, opts)).kind, 'signed');
  });
});

describe('parseAmzDate (remembers the last date it parsed)', () => {
  it('gives each string its own answer, valid and invalid alternating', () => {
    const cases: [string, number][] = [
      ['20261128T023000Z', Date.UTC(2026, 10, 28, 2, 30, 0)],
      ['20260230T000000Z', NaN], // 30 February
      ['20261128T023000Z', Date.UTC(2026, 10, 28, 2, 30, 0)],
      ['20261128T023001Z', Date.UTC(2026, 10, 28, 2, 30, 1)],
      ['2026-11-28T02:30:00Z', NaN],
      ['20261128T236000Z', NaN], // minute 60
      ['20261128T023001Z', Date.UTC(2026, 10, 28, 2, 30, 1)],
    ];
    for (let round = 0; round < 2; round++) {
      for (const [s, t] of cases) assert.deepEqual(parseAmzDate(s), t, s);
    }
  });
});
