// The access services without a server: the operation → action table, condition keys from
// request facts, the owner's policy-API exception, GetBucketPolicyStatus's notion of public,
// the encryption-header warning, the policy caches and the bootstrap's idempotence.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SecretKey } from '../../src/crypto/keys.ts';
import { parsePolicy } from '../../src/policy/index.ts';
import { OPERATION_ACCESS, resourceArn } from '../../src/s3api/authz.ts';
import { route } from '../../src/s3api/router.ts';
import { Authorizer, conditionKeys, judge, simulate, tlsVersionOf } from '../../src/service/authorization.ts';
import { applyBootstrap, BootstrapError, readBootstrap } from '../../src/service/bootstrap.ts';
import { IdentityService } from '../../src/service/identities.ts';
import { encryptionHeaderRequirements, isPublicPolicy, PolicyService } from '../../src/service/policies.ts';
import type { MetadataStore } from '../../src/storage/ports.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite-meta/sqlite-metadata-store.ts';

const bucketPolicy = (statements: unknown[]) => parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: statements }), { kind: 'bucket', resourceArnPrefix: 'arn:aws:s3:::b' });

describe('the operation table', () => {
  test('every routed operation maps to an s3: action; the ones the issue names map as AWS documents', () => {
    for (const [name, a] of Object.entries(OPERATION_ACCESS)) assert.match(a.action, /^s3:[A-Za-z]+$/, name);
    const expect: Record<string, string> = {
      ListBuckets: 's3:ListAllMyBuckets',
      HeadBucket: 's3:ListBucket',
      ListObjectsV2: 's3:ListBucket',
      CreateMultipartUpload: 's3:PutObject',
      UploadPart: 's3:PutObject',
      UploadPartCopy: 's3:PutObject',
      CompleteMultipartUpload: 's3:PutObject',
      AbortMultipartUpload: 's3:AbortMultipartUpload',
      ListParts: 's3:ListMultipartUploadParts',
      ListMultipartUploads: 's3:ListBucketMultipartUploads',
      DeleteObjects: 's3:DeleteObject',
      PutBucketPolicy: 's3:PutBucketPolicy',
      GetBucketPolicyStatus: 's3:GetBucketPolicyStatus',
      GetBucketEncryption: 's3:GetEncryptionConfiguration',
      GetObjectTagging: 's3:GetObjectTagging',
      PutObjectTagging: 's3:PutObjectTagging',
      DeleteObjectTagging: 's3:DeleteObjectTagging',
    };
    for (const [op, action] of Object.entries(expect)) assert.equal(OPERATION_ACCESS[op as keyof typeof OPERATION_ACCESS].action, action, op);
    assert.equal(OPERATION_ACCESS.CopyObject.sourceAction, 's3:GetObject');
    assert.equal(OPERATION_ACCESS.UploadPartCopy.sourceAction, 's3:GetObject');
  });

  test('resource ARNs: the service, a bucket, an object', () => {
    assert.equal(resourceArn(OPERATION_ACCESS.ListBuckets, undefined, undefined), 'arn:aws:s3:::*');
    assert.equal(resourceArn(OPERATION_ACCESS.ListObjectsV2, 'b', undefined), 'arn:aws:s3:::b');
    assert.equal(resourceArn(OPERATION_ACCESS.GetObject, 'b', 'a/b c'), 'arn:aws:s3:::b/a/b c');
  });

  test('the router knows the bucket policy sub-resources', () => {
    const q = (s: string) => new URLSearchParams(s);
    assert.equal(route('PUT', 'b', undefined, q('policy'), {}).name, 'PutBucketPolicy');
    assert.equal(route('GET', 'b', undefined, q('policy'), {}).name, 'GetBucketPolicy');
    assert.equal(route('DELETE', 'b', undefined, q('policy'), {}).name, 'DeleteBucketPolicy');
    assert.equal(route('GET', 'b', undefined, q('policyStatus'), {}).name, 'GetBucketPolicyStatus');
  });

  test('the router knows object tagging; other object sub-resources stay NotImplemented', () => {
    const q = (s: string) => new URLSearchParams(s);
    assert.equal(route('GET', 'b', 'k', q('tagging'), {}).name, 'GetObjectTagging');
    assert.equal(route('PUT', 'b', 'k', q('tagging'), {}).name, 'PutObjectTagging');
    assert.equal(route('DELETE', 'b', 'k', q('tagging'), {}).name, 'DeleteObjectTagging');
    const notImplemented = (e: unknown) => (e as { code?: string }).code === 'NotImplemented';
    assert.throws(() => route('POST', 'b', 'k', q('tagging'), {}), notImplemented);
    assert.throws(() => route('GET', 'b', 'k', q('acl'), {}), notImplemented);
    assert.throws(() => route('GET', 'b', undefined, q('tagging'), {}), notImplemented);
  });
});

describe('condition keys', () => {
  const now = new Date('2026-03-04T05:06:07.890Z');
  test('from the facts of a request', () => {
    const k = conditionKeys({
      secure: true,
      sourceIp: '::ffff:127.0.0.1',
      headers: { 'user-agent': 'aws-cli/2', referer: 'https://example.com/', 'x-amz-server-side-encryption': 'AES256' },
      tlsVersion: '1.3',
      signature: { signatureVersion: 'AWS4-HMAC-SHA256', authType: 'REST-HEADER', contentSha256: 'UNSIGNED-PAYLOAD' },
      listing: { prefix: 'home/', delimiter: '/', maxKeys: null },
      now,
    });
    assert.deepEqual(k, {
      'aws:SecureTransport': 'true',
      'aws:CurrentTime': '2026-03-04T05:06:07Z',
      'aws:EpochTime': String(Math.floor(now.getTime() / 1000)),
      'aws:SourceIp': '::ffff:127.0.0.1',
      'aws:Referer': 'https://example.com/',
      'aws:UserAgent': 'aws-cli/2',
      's3:x-amz-server-side-encryption': 'AES256',
      's3:signatureversion': 'AWS4-HMAC-SHA256',
      's3:authType': 'REST-HEADER',
      's3:x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      's3:TlsVersion': '1.3',
      's3:prefix': 'home/',
      's3:delimiter': '/',
    });
  });

  test('multipart steps take the recorded header, not the request\'s; anonymous requests have no signature keys', () => {
    const k = conditionKeys({ secure: false, headers: { 'x-amz-server-side-encryption': 'AES256' }, recordedSse: {}, now });
    assert.equal(k['s3:x-amz-server-side-encryption'], undefined);
    assert.equal(k['s3:authType'], undefined);
    assert.equal(k['aws:SecureTransport'], 'false');
    assert.equal(conditionKeys({ secure: false, headers: {}, recordedSse: { value: 'AES256' }, now })['s3:x-amz-server-side-encryption'], 'AES256');
  });

  test('s3:TlsVersion from the TLS protocol name', () => {
    assert.equal(tlsVersionOf('TLSv1.3'), '1.3');
    assert.equal(tlsVersionOf('TLSv1.2'), '1.2');
    assert.equal(tlsVersionOf('TLSv1'), '1.0');
    assert.equal(tlsVersionOf(null), undefined);
  });
});

describe('decisions', () => {
  const root = { type: 'Root' as const, arn: 'arn:aws:iam::111122223333:root', account: '111122223333', isRoot: true };
  const denyAll = bucketPolicy([{ Sid: 'DenyAll', Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: ['arn:aws:s3:::b', 'arn:aws:s3:::b/*'] }]);
  const req = (action: string, resource = 'arn:aws:s3:::b') => ({ principal: root, action, resource, conditionKeys: {} });

  test('the root user keeps Put/Get/DeleteBucketPolicy against a Deny, and nothing else', () => {
    for (const a of ['s3:PutBucketPolicy', 's3:GetBucketPolicy', 's3:DeleteBucketPolicy']) {
      const r = judge([], denyAll, req(a));
      assert.equal(r.allowed, true, a);
      assert.equal(r.ownerOverride, true);
      assert.match(r.explanation, /denied by statement DenyAll .*; allowed anyway: the bucket owner keeps access/);
    }
    const r = judge([], denyAll, req('s3:GetObject', 'arn:aws:s3:::b/k'));
    assert.equal(r.allowed, false);
    assert.equal(r.statement?.sid, 'DenyAll');
    const user = { type: 'IAMUser' as const, arn: 'arn:aws:iam::111122223333:user/u', account: '111122223333' };
    assert.equal(judge([], denyAll, { ...req('s3:PutBucketPolicy'), principal: user }).allowed, false);
  });

  test('identity policies are named in the explanation', () => {
    const p = parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'Read', Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }] }), { kind: 'identity' });
    const user = { type: 'IAMUser' as const, arn: 'arn:aws:iam::111122223333:user/u', account: '111122223333' };
    const r = judge([{ name: 'readers', policy: p }], undefined, { principal: user, action: 's3:GetObject', resource: 'arn:aws:s3:::b/k', conditionKeys: {} });
    assert.equal(r.explanation, "allowed by statement Read (index 0) of identity policy 'readers'");
  });
});

describe('what a bucket policy says', () => {
  const allowAnon = (extra: Record<string, unknown> = {}) => ({ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/*', ...extra });
  test('public: an Allow to "*" without a condition pinning the requester or its source', () => {
    assert.equal(isPublicPolicy(bucketPolicy([allowAnon()])), true);
    assert.equal(isPublicPolicy(bucketPolicy([{ ...allowAnon(), Principal: { AWS: '*' } }])), true);
    assert.equal(isPublicPolicy(bucketPolicy([allowAnon({ Condition: { IpAddress: { 'aws:SourceIp': '192.0.2.0/24' } } })])), false);
    assert.equal(isPublicPolicy(bucketPolicy([allowAnon({ Condition: { IpAddress: { 'aws:SourceIp': '0.0.0.0/0' } } })])), true);
    assert.equal(isPublicPolicy(bucketPolicy([allowAnon({ Condition: { StringEquals: { 'aws:PrincipalArn': 'arn:aws:iam::111122223333:user/u' } } })])), false);
    assert.equal(isPublicPolicy(bucketPolicy([allowAnon({ Condition: { Bool: { 'aws:SecureTransport': 'true' } } })])), true);
    assert.equal(isPublicPolicy(bucketPolicy([{ ...allowAnon(), Principal: { AWS: 'arn:aws:iam::111122223333:user/u' } }])), false);
    assert.equal(isPublicPolicy(bucketPolicy([{ ...allowAnon(), Effect: 'Deny' }])), false);
  });

  test('requiring the encryption header: Null true, or a negated string operator, in a Deny covering PutObject', () => {
    const denyPut = (cond: unknown, action: unknown = 's3:PutObject') => ({ Sid: 'S', Effect: 'Deny', Principal: '*', Action: action, Resource: 'arn:aws:s3:::b/*', Condition: cond });
    const n = (p: ReturnType<typeof bucketPolicy>) => encryptionHeaderRequirements(p).length;
    assert.equal(n(bucketPolicy([denyPut({ Null: { 's3:x-amz-server-side-encryption': 'true' } })])), 1);
    assert.equal(n(bucketPolicy([denyPut({ StringNotEquals: { 's3:x-amz-server-side-encryption': ['AES256', 'aws:kms'] } })])), 1);
    assert.equal(n(bucketPolicy([denyPut({ StringNotEquals: { 'S3:X-Amz-Server-Side-Encryption': 'AES256' } }, 's3:*')])), 1);
    assert.equal(n(bucketPolicy([denyPut({ Null: { 's3:x-amz-server-side-encryption': 'false' } })])), 0);
    assert.equal(n(bucketPolicy([denyPut({ Null: { 's3:x-amz-server-side-encryption': 'true' } }, 's3:GetObject')])), 0);
    assert.equal(n(bucketPolicy([{ ...denyPut({ Null: { 's3:x-amz-server-side-encryption': 'true' } }), Effect: 'Allow' }])), 0);
  });
});

describe('caches, bootstrap and simulation over a real store', () => {
  let dir: string;
  let meta: MetadataStore;
  let calls = 0;
  let clock = 1_000_000;
  let policies: PolicyService;
  let identities: IdentityService;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'coffer-access-'));
    const store = new SqliteMetadataStore(join(dir, 'metadata.db'));
    meta = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop === 'getBucketPolicy' || prop === 'listUserPolicies') return (...a: unknown[]) => (calls++, (v as (...x: unknown[]) => unknown).apply(target, a));
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    policies = new PolicyService(meta, () => clock);
    identities = new IdentityService(meta, SecretKey.generate(), '111122223333', { accessKeyId: 'AKROOT0000000000000', secretKey: 'root-secret-0000000000' });
    await meta.createBucket({ name: 'b', createdAt: 1, location: 'us-east-1' });
  });
  after(async () => {
    await meta.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('parsed policies are served from the cache, refreshed after 5 s, invalidated by a change here', async () => {
    calls = 0;
    await policies.putBucketPolicy('b', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/*' }] }));
    const first = await policies.bucketPolicy('b');
    const second = await policies.bucketPolicy('b');
    assert.equal(first, second);
    assert.equal(calls, 1);
    clock += 5_001;
    await policies.bucketPolicy('b');
    assert.equal(calls, 2);
    await policies.deleteBucketPolicy('b');
    assert.equal(await policies.bucketPolicy('b'), undefined);
    assert.equal(calls, 3);
  });

  test('a refused bucket policy leaves the previous one in place', async () => {
    const good = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/*' }] });
    await policies.putBucketPolicy('b', good);
    await assert.rejects(policies.putBucketPolicy('b', '{"Statement": []}'), { code: 'MalformedPolicy', message: /Statement is empty/ });
    assert.equal(await policies.getBucketPolicyText('b'), good);
    await policies.deleteBucketPolicy('b');
  });

  test('the bootstrap is idempotent, and a bad policy in it changes nothing', async () => {
    const doc = readBootstrap(
      JSON.stringify({
        users: [{ name: 'u1', accessKeys: [{ accessKeyId: 'AKIABOOTUNIT000001', secretAccessKey: 'unit-secret-000000000' }], policies: [{ name: 'p', document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] } }] }],
        buckets: [{ name: 'boot-b', policy: JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::boot-b/*' }] }) }],
      }),
    );
    const deps = { meta, identities, policies, region: 'us-east-1' };
    const s1 = await applyBootstrap(doc, deps);
    assert.deepEqual(s1, { usersCreated: 1, keys: 1, policies: 1, bucketsCreated: 1, bucketPolicies: 1 });
    const s2 = await applyBootstrap(doc, deps);
    assert.equal(s2.usersCreated, 0);
    assert.equal(s2.bucketsCreated, 0);
    assert.equal((await identities.listAccessKeys('u1')).length, 1);
    assert.equal((await identities.lookup('AKIABOOTUNIT000001'))?.secretKey, 'unit-secret-000000000');
    const bad = readBootstrap(JSON.stringify({ users: [{ name: 'u2', policies: [{ name: 'p', document: '{"Statement": [}' }] }] }));
    await assert.rejects(applyBootstrap(bad, deps), (e: Error) => e instanceof BootstrapError && /policy p of user u2: Invalid JSON/.test(e.message));
    assert.equal(await meta.getUser('u2'), undefined);
    assert.throws(() => readBootstrap('{"users": [{"nam": "x"}]}'), /bootstrap: users\.0/);
    assert.throws(() => readBootstrap('/no/such/file.json'), /bootstrap: cannot read/);
  });

  test('simulate: a user, root and anonymous; the outage warning', async () => {
    await identities.createUser('sim');
    await policies.putBucketPolicy(
      'b',
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Sid: 'NeedSse', Effect: 'Deny', Principal: '*', Action: 's3:PutObject', Resource: 'arn:aws:s3:::b/*', Condition: { Null: { 's3:x-amz-server-side-encryption': 'true' } } },
          { Sid: 'PublicRead', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/pub/*' },
        ],
      }),
    );
    const deps = { identities, policies, authorizer: new Authorizer(policies) };
    const anon = await simulate({ anonymous: true, action: 's3:GetObject', bucket: 'b', key: 'pub/x' }, deps);
    assert.equal(anon.allowed, true);
    assert.equal(anon.principal, 'anonymous');
    assert.deepEqual(anon.writtenStatement, { Sid: 'PublicRead', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/pub/*' });
    const user = await simulate({ user: 'sim', action: 's3:PutObject', bucket: 'b', key: 'k', headers: { 'X-Amz-Server-Side-Encryption': 'AES256' } }, deps);
    assert.equal(user.allowed, false, 'no identity policy');
    assert.match(user.explanation, /implicitly denied/);
    const rootPut = await simulate({ action: 's3:PutObject', bucket: 'b', key: 'k' }, deps);
    assert.equal(rootPut.allowed, false);
    assert.match(rootPut.explanation, /denied by statement NeedSse \(index 0\) of the bucket policy/);
    assert.equal(rootPut.warnings.length, 1);
    await assert.rejects(simulate({ user: 'nobody', action: 's3:GetObject' }, deps), /no user named nobody/);
  });
});
