// Authorization-header SigV4: requests signed by the real @smithy/signature-v4 signer (tricky keys,
// queries, header whitespace, other wire encodings of the same request), AWS's documented
// examples, the Date-header form, and service kms.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { signatureV4Context, verifySigV4, type SigV4Request } from '../../src/auth/index.ts';
import { CRED, NOW, TRICKY_KEYS, keyPath, lookup, signHeader } from './helpers.ts';

const opts = { now: NOW, service: 's3' as const, region: 'us-east-1' };

/** Alternative but equivalent wire encodings of an encoded path (S3 normalizes these). */
function variants(path: string): string[] {
  const lowerHex = path.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
  const overEncoded = path.replace(/[~a]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  const underEncoded = path.replace(/%(21|27|28|29|2A|24|40|3A|2C|3B|3D)/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  return [lowerHex, overEncoded, underEncoded];
}

describe('SigV4 header auth with the real signer', () => {
  for (const key of TRICKY_KEYS) {
    it(`verifies key ${JSON.stringify(key)} and equivalent encodings`, async () => {
      const req = await signHeader({
        method: 'PUT',
        path: keyPath('bucket', key),
        headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-type': 'text/plain' },
      });
      const res = await verifySigV4(req, lookup, opts);
      assert.equal(res.kind, 'signed');
      for (const rawPath of variants(req.rawPath)) {
        const again = await verifySigV4({ ...req, rawPath }, lookup, opts);
        assert.equal(again.kind, 'signed', rawPath);
      }
    });
  }

  it('returns the verified identity and request facts', async () => {
    const req = await signHeader({
      method: 'GET',
      path: '/bucket/key',
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', range: 'bytes=0-9' },
    });
    const res = await verifySigV4(req, lookup, opts);
    assert.ok(res.kind === 'signed');
    assert.equal(res.method, 'header');
    assert.equal(res.credential, CRED);
    assert.deepEqual(res.scope, { date: '20240305', region: 'us-east-1', service: 's3' });
    assert.equal(res.amzDate, '20240305T123456Z');
    assert.deepEqual(res.signedHeaders, ['host', 'range', 'x-amz-content-sha256', 'x-amz-date']);
    assert.deepEqual(res.payload, { type: 'unsigned' });
    assert.equal(res.signingKey.length, 32);
    assert.match(res.signature, /^[0-9a-f]{64}$/);
    assert.deepEqual(signatureV4Context(res, new Date(NOW.getTime() + 5000)), {
      signatureVersion: 'AWS4-HMAC-SHA256',
      authType: 'REST-HEADER',
      contentSha256: 'UNSIGNED-PAYLOAD',
      accessKeyId: CRED.accessKeyId,
      signatureAgeMs: 5000,
    });
    assert.equal(signatureV4Context({ kind: 'anonymous' }), undefined);
  });

  it('maps x-amz-content-sha256 to payload modes', async () => {
    const cases: [string, unknown][] = [
      ['UNSIGNED-PAYLOAD', { type: 'unsigned' }],
      ['E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855', { type: 'sha256', hex: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' }],
      ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD', { type: 'streaming-signed', trailer: false }],
      ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', { type: 'streaming-signed', trailer: true }],
      ['STREAMING-UNSIGNED-PAYLOAD-TRAILER', { type: 'streaming-unsigned-trailer' }],
    ];
    for (const [value, mode] of cases) {
      const req = await signHeader({ method: 'PUT', path: '/b/k', headers: { 'x-amz-content-sha256': value } });
      const res = await verifySigV4(req, lookup, opts);
      assert.ok(res.kind === 'signed');
      assert.deepEqual(res.payload, mode);
      assert.equal(res.contentSha256, value);
    }
  });

  it('verifies tricky queries, repeated keys, empty values and "+" for space', async () => {
    const req = await signHeader({
      method: 'GET',
      path: '/bucket',
      query: {
        'list-type': '2',
        prefix: 'a b+c/ü~!*',
        delimiter: '/',
        'continuation-token': 'x=y&z%',
        'encoding-type': 'url',
        empty: '',
        multi: ['b', 'a', 'a b'],
        'weird key': 'v',
      },
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    assert.equal((await verifySigV4(req, lookup, opts)).kind, 'signed');
    const plus = { ...req, rawQuery: req.rawQuery.replace(/%20/g, '+') };
    assert.equal((await verifySigV4(plus, lookup, opts)).kind, 'signed');
    const reordered = { ...req, rawQuery: req.rawQuery.split('&').reverse().join('&') };
    assert.equal((await verifySigV4(reordered, lookup, opts)).kind, 'signed');
  });

  it('treats a valueless query parameter as an empty value (?uploads)', async () => {
    const req = await signHeader({ method: 'POST', path: '/b/k', query: { uploads: '' }, headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    assert.equal((await verifySigV4({ ...req, rawQuery: 'uploads' }, lookup, opts)).kind, 'signed');
  });

  it('trims and collapses header whitespace; accepts string[] header values', async () => {
    const req = await signHeader({
      method: 'PUT',
      path: '/b/k',
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-meta-note': '  a   b \t c  ' },
    });
    assert.equal((await verifySigV4(req, lookup, opts)).kind, 'signed');
    const asArray = { ...req, headers: { ...req.headers, 'x-amz-meta-note': ['a    b c'] } };
    assert.equal((await verifySigV4(asArray, lookup, opts)).kind, 'signed');
  });

  it('treats an empty path as "/"', async () => {
    const req = await signHeader({ method: 'GET', path: '/', headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    assert.equal((await verifySigV4({ ...req, rawPath: '' }, lookup, opts)).kind, 'signed');
  });

  it('returns anonymous without any authentication', async () => {
    const req: SigV4Request = { method: 'GET', rawPath: '/b/k', rawQuery: 'versionId=1', headers: { host: 'x' } };
    assert.deepEqual(await verifySigV4(req, lookup, opts), { kind: 'anonymous' });
    assert.deepEqual(await verifySigV4({ ...req, headers: { host: 'x', authorization: '' } }, lookup, opts), { kind: 'anonymous' });
  });
});

describe('AWS documented examples (S3 "Examples: Signature Calculations")', () => {
  const awsCred = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', principal: 'aws' };
  const awsLookup = (ak: string) => (ak === awsCred.accessKeyId ? awsCred : undefined);
  const awsOpts = { now: new Date('2013-05-24T00:05:00Z'), service: 's3' as const, region: 'us-east-1' };
  const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
  const auth = (signed: string, sig: string) =>
    `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=${signed},Signature=${sig}`;

  it('GET Object', async () => {
    const req: SigV4Request = {
      method: 'GET',
      rawPath: '/test.txt',
      rawQuery: '',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        range: 'bytes=0-9',
        'x-amz-content-sha256': EMPTY,
        'x-amz-date': '20130524T000000Z',
        authorization: auth('host;range;x-amz-content-sha256;x-amz-date', 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'),
      },
    };
    assert.equal((await verifySigV4(req, awsLookup, awsOpts)).kind, 'signed');
  });

  it('PUT Object (with a Date header and "$" in the key)', async () => {
    const req: SigV4Request = {
      method: 'PUT',
      rawPath: '/test$file.text',
      rawQuery: '',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        date: 'Fri, 24 May 2013 00:00:00 GMT',
        'x-amz-date': '20130524T000000Z',
        'x-amz-storage-class': 'REDUCED_REDUNDANCY',
        'x-amz-content-sha256': '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
        authorization: auth(
          'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
          '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
        ),
      },
    };
    const res = await verifySigV4(req, awsLookup, awsOpts);
    assert.ok(res.kind === 'signed');
    assert.deepEqual(res.payload, { type: 'sha256', hex: '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072' });
  });

  it('GET Bucket Lifecycle (?lifecycle)', async () => {
    const req: SigV4Request = {
      method: 'GET',
      rawPath: '/',
      rawQuery: 'lifecycle',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        'x-amz-content-sha256': EMPTY,
        'x-amz-date': '20130524T000000Z',
        authorization: auth('host;x-amz-content-sha256;x-amz-date', 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543'),
      },
    };
    assert.equal((await verifySigV4(req, awsLookup, awsOpts)).kind, 'signed');
  });

  it('GET Bucket (list objects with max-keys and prefix)', async () => {
    const req: SigV4Request = {
      method: 'GET',
      rawPath: '/',
      rawQuery: 'max-keys=2&prefix=J',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        'x-amz-content-sha256': EMPTY,
        'x-amz-date': '20130524T000000Z',
        authorization: auth('host;x-amz-content-sha256;x-amz-date', '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7'),
      },
    };
    assert.equal((await verifySigV4(req, awsLookup, awsOpts)).kind, 'signed');
  });
});

describe('Date header instead of x-amz-date', () => {
  it('uses the Date header (converted to basic ISO 8601) when x-amz-date is absent', async () => {
    // Signed by hand, following the AWS documentation, independently of src/.
    const date = 'Tue, 05 Mar 2024 12:34:56 GMT';
    const headers = { host: 'coffer.test', date, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
    const creq = ['GET', '/b/a%20b', '', `date:${date}\nhost:coffer.test\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n`, 'date;host;x-amz-content-sha256', 'UNSIGNED-PAYLOAD'].join('\n');
    const scope = '20240305/us-east-1/s3/aws4_request';
    const sts = ['AWS4-HMAC-SHA256', '20240305T123456Z', scope, createHash('sha256').update(creq).digest('hex')].join('\n');
    let k: Buffer = createHmac('sha256', 'AWS4' + CRED.secretKey).update('20240305').digest();
    for (const p of ['us-east-1', 's3', 'aws4_request']) k = createHmac('sha256', k).update(p).digest();
    const sig = createHmac('sha256', k).update(sts).digest('hex');
    const req: SigV4Request = {
      method: 'GET',
      rawPath: '/b/a%20b',
      rawQuery: '',
      headers: { ...headers, authorization: `AWS4-HMAC-SHA256 Credential=${CRED.accessKeyId}/${scope}, SignedHeaders=date;host;x-amz-content-sha256, Signature=${sig}` },
    };
    const res = await verifySigV4(req, lookup, opts);
    assert.ok(res.kind === 'signed');
    assert.equal(res.amzDate, '20240305T123456Z');
  });
});

describe('service kms', () => {
  const body = JSON.stringify({ KeyId: 'alias/x', Plaintext: 'aGk=' });
  const bodySha256 = createHash('sha256').update(body).digest('hex');
  const kmsOpts = { now: NOW, service: 'kms' as const, region: 'eu-west-1' };
  const plain = {
    method: 'POST',
    path: '/',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.Encrypt' },
    body,
  };

  it('verifies with the body hash supplied by the caller (no x-amz-content-sha256)', async () => {
    const req = await signHeader(plain, { service: 'kms', region: 'eu-west-1', applyChecksum: false });
    assert.equal(req.headers['x-amz-content-sha256'], undefined);
    const res = await verifySigV4({ ...req, bodySha256 }, lookup, kmsOpts);
    assert.ok(res.kind === 'signed');
    assert.deepEqual(res.payload, { type: 'sha256', hex: bodySha256 });
    const other = createHash('sha256').update(body + ' ').digest('hex');
    await assert.rejects(verifySigV4({ ...req, bodySha256: other }, lookup, kmsOpts), { code: 'SignatureDoesNotMatch' });
  });

  it('uses x-amz-content-sha256 when the client sends it (the decoder then checks the body)', async () => {
    const req = await signHeader(plain, { service: 'kms', region: 'eu-west-1' });
    const res = await verifySigV4(req, lookup, kmsOpts);
    assert.ok(res.kind === 'signed');
    assert.deepEqual(res.payload, { type: 'sha256', hex: bodySha256 });
  });

  it('double-encodes and normalizes the path like non-S3 services', async () => {
    const req = await signHeader({ ...plain, path: '/a/./b/../c%20d' }, { service: 'kms', region: 'eu-west-1', applyChecksum: false });
    assert.equal((await verifySigV4({ ...req, bodySha256 }, lookup, kmsOpts)).kind, 'signed');
  });

  it('needs the body hash from the caller when the header is absent', async () => {
    const req = await signHeader(plain, { service: 'kms', region: 'eu-west-1', applyChecksum: false });
    await assert.rejects(verifySigV4(req, lookup, kmsOpts), TypeError);
  });
});
