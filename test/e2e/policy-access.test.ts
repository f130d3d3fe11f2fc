// Identities and bucket policies on the real server, with @aws-sdk/client-s3 and raw signed
// requests: users from the bootstrap, a user with no policy denied everything, a prefix-only
// reader, presigned URLs acting as their signer, aws:SecureTransport over HTTP vs HTTPS,
// aws:SourceIp, a Principal naming one user, anonymous access only through Principal "*",
// DeleteObjects refusing per key, the owner never locked out of the policy API, and malformed
// policies refused with MalformedPolicy while the previous policy stays in force.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketPolicyCommand,
  DeleteObjectCommand,
  DeleteObjectTaggingCommand,
  DeleteObjectsCommand,
  GetBucketPolicyCommand,
  GetBucketPolicyStatusCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createLogger } from '../../src/shared/logger.ts';
import { startTestServer, type TestServer } from '../helpers/coffer.ts';
import { allowAll, clientAs, rejectsWith, testUser } from '../helpers/identities.ts';
import { assertS3Error, rawRequest, send, xmlField } from '../helpers/raw-s3.ts';

const ACCOUNT = '111122223333';
const alice = testUser('alice', 1); // reads home/ only
const bob = testUser('bob', 2); // no policy at all
const carol = testUser('carol', 3); // s3:* everywhere
const BUCKET = 'policy-access';

let srv: TestServer;
let port: number;
const logLines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logLines.push(JSON.parse(line) as Record<string, unknown>);
    cb();
  },
});
const clients: S3Client[] = [];
const as = (u: { accessKeyId: string; secretAccessKey: string }, https = false) => {
  const c = clientAs(u, https ? srv.httpsUrl : srv.httpUrl, https ? srv.caPath : undefined);
  clients.push(c);
  return c;
};

before(async () => {
  const bootstrap = {
    users: [
      {
        name: alice.name,
        accessKeys: [{ accessKeyId: alice.accessKeyId, secretAccessKey: alice.secretAccessKey }],
        policies: [
          {
            name: 'read-home',
            document: { Version: '2012-10-17', Statement: [{ Sid: 'ReadHome', Effect: 'Allow', Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/home/*` }] },
          },
        ],
      },
      { name: bob.name, accessKeys: [{ accessKeyId: bob.accessKeyId, secretAccessKey: bob.secretAccessKey }] },
      { name: carol.name, accessKeys: [{ accessKeyId: carol.accessKeyId, secretAccessKey: carol.secretAccessKey }], policies: [{ name: 'all', document: allowAll }] },
    ],
    buckets: [{ name: BUCKET }],
  };
  srv = await startTestServer({ config: { bootstrap: JSON.stringify(bootstrap), accountId: ACCOUNT }, log: createLogger('debug', sink) });
  port = srv.coffer.listeners.http!.port;
  for (const k of ['home/a.txt', 'home/sub/b.txt', 'private/c.txt', 'pub/d.txt']) {
    await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: k, Body: `content of ${k}` }));
  }
});
after(async () => {
  for (const c of clients) c.destroy();
  await srv?.stop();
});

const putPolicy = (policy: unknown, bucket = BUCKET) => srv.s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify(policy) }));
const deletePolicy = (bucket = BUCKET) => srv.s3.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
const read = async (c: S3Client, key: string, bucket = BUCKET) => (await c.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();

describe('identities', () => {
  test('the bootstrap made users with ARNs in the configured account; it is idempotent', async () => {
    const a = srv.coffer.access;
    assert.equal(a.accountId, ACCOUNT);
    const cred = await a.identities.lookup(alice.accessKeyId);
    assert.equal((cred!.principal as { arn: string }).arn, `arn:aws:iam::${ACCOUNT}:user/alice`);
    assert.deepEqual((await a.identities.listUsers()).map((u) => u.name), ['alice', 'bob', 'carol']);
  });

  test('a user with no policy is denied everything', async () => {
    const c = as(bob);
    await rejectsWith(c.send(new ListBucketsCommand({})), 'AccessDenied', 403);
    await rejectsWith(c.send(new CreateBucketCommand({ Bucket: 'bobs-bucket' })), 'AccessDenied', 403);
    await assert.rejects(c.send(new HeadBucketCommand({ Bucket: BUCKET })), (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 403);
    await rejectsWith(c.send(new ListObjectsV2Command({ Bucket: BUCKET })), 'AccessDenied', 403);
    await rejectsWith(c.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'home/a.txt' })), 'AccessDenied', 403);
    await rejectsWith(c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'bob.txt', Body: 'x' })), 'AccessDenied', 403);
    await rejectsWith(c.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'pub/d.txt' })), 'AccessDenied', 403);
    await rejectsWith(c.send(new GetBucketPolicyCommand({ Bucket: BUCKET })), 'AccessDenied', 403);
    await rejectsWith(c.send(new PutBucketPolicyCommand({ Bucket: BUCKET, Policy: JSON.stringify(allowAll) })), 'AccessDenied', 403);
    assert.equal(await read(srv.s3, 'pub/d.txt'), 'content of pub/d.txt');
  });

  test('a user allowed only s3:GetObject on home/ reads there and nowhere else', async () => {
    const c = as(alice);
    assert.equal(await read(c, 'home/a.txt'), 'content of home/a.txt');
    assert.equal(await read(c, 'home/sub/b.txt'), 'content of home/sub/b.txt');
    await rejectsWith(read(c, 'private/c.txt'), 'AccessDenied', 403);
    await rejectsWith(read(c, 'home'), 'AccessDenied', 403);
    await rejectsWith(c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'home/' })), 'AccessDenied', 403);
    await rejectsWith(c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'home/new.txt', Body: 'x' })), 'AccessDenied', 403);
    // Reading a missing key under home/ is allowed, so it is NoSuchKey, not AccessDenied.
    await rejectsWith(read(c, 'home/missing'), 'NoSuchKey', 404);
  });

  test('presigned URLs carry the signer\'s permissions', async () => {
    const byBob = await getSignedUrl(as(bob), new GetObjectCommand({ Bucket: BUCKET, Key: 'home/a.txt' }), { expiresIn: 300 });
    const byAlice = await getSignedUrl(as(alice), new GetObjectCommand({ Bucket: BUCKET, Key: 'home/a.txt' }), { expiresIn: 300 });
    const aliceElsewhere = await getSignedUrl(as(alice), new GetObjectCommand({ Bucket: BUCKET, Key: 'private/c.txt' }), { expiresIn: 300 });
    const denied = await fetch(byBob);
    assert.equal(denied.status, 403);
    assert.equal(xmlField(await denied.text(), 'Code'), 'AccessDenied');
    const ok = await fetch(byAlice);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), 'content of home/a.txt');
    assert.equal((await fetch(aliceElsewhere)).status, 403);
  });

  test('a disabled or deleted access key stops working', async () => {
    const { identities } = srv.coffer.access;
    const k = await identities.createAccessKey('carol');
    const c = as({ accessKeyId: k.accessKeyId, secretAccessKey: k.secretKey });
    assert.equal(await read(c, 'private/c.txt'), 'content of private/c.txt');
    await identities.setAccessKeyStatus('carol', k.accessKeyId, 'Inactive');
    await rejectsWith(read(c, 'private/c.txt'), 'InvalidAccessKeyId', 403);
    await identities.setAccessKeyStatus('carol', k.accessKeyId, 'Active');
    assert.equal(await read(c, 'private/c.txt'), 'content of private/c.txt');
    await identities.deleteAccessKey('carol', k.accessKeyId);
    await rejectsWith(read(c, 'private/c.txt'), 'InvalidAccessKeyId', 403);
  });
});

describe('bucket policies', () => {
  test('every denial is logged with the statement that decided it', async () => {
    await putPolicy({ Version: '2012-10-17', Statement: [{ Sid: 'NoPrivate', Effect: 'Deny', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/private/*` }] });
    try {
      logLines.length = 0;
      await rejectsWith(read(as(carol), 'private/c.txt'), 'AccessDenied', 403);
      await rejectsWith(read(as(bob), 'pub/d.txt'), 'AccessDenied', 403);
      await new Promise((r) => setTimeout(r, 50));
      const denials = logLines.filter((l) => l.msg === 'access denied');
      assert.deepEqual(
        denials.map((l) => [l.level, l.op, l.principal, l.action, l.resource, l.reason]),
        [
          [30, 'GetObject', `arn:aws:iam::${ACCOUNT}:user/carol`, 's3:GetObject', `arn:aws:s3:::${BUCKET}/private/c.txt`, 'denied by statement NoPrivate (index 0) of the bucket policy'],
          [30, 'GetObject', `arn:aws:iam::${ACCOUNT}:user/bob`, 's3:GetObject', `arn:aws:s3:::${BUCKET}/pub/d.txt`, `implicitly denied: no statement allows s3:GetObject on arn:aws:s3:::${BUCKET}/pub/d.txt by arn:aws:iam::${ACCOUNT}:user/bob`],
        ],
      );
      assert.ok(denials.every((l) => typeof l.reqId === 'string'));
      assert.ok(!JSON.stringify(logLines).includes(carol.secretAccessKey), 'no secret in the logs');
    } finally {
      await deletePolicy();
    }
  });

  test('Principal naming one user: that user is allowed, another is not', async () => {
    await putPolicy({
      Version: '2012-10-17',
      Statement: [{ Sid: 'BobReadsPub', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/bob` }, Action: ['s3:GetObject', 's3:ListBucket'], Resource: [`arn:aws:s3:::${BUCKET}`, `arn:aws:s3:::${BUCKET}/pub/*`] }],
    });
    try {
      assert.equal(await read(as(bob), 'pub/d.txt'), 'content of pub/d.txt');
      const list = await as(bob).send(new ListObjectsV2Command({ Bucket: BUCKET }));
      assert.equal(list.KeyCount, 4);
      await rejectsWith(read(as(bob), 'private/c.txt'), 'AccessDenied', 403);
      await rejectsWith(read(as(alice), 'pub/d.txt'), 'AccessDenied', 403);
    } finally {
      await deletePolicy();
    }
    await rejectsWith(read(as(bob), 'pub/d.txt'), 'AccessDenied', 403);
  });

  test('a Principal for the account only delegates to IAM: it lets no user in by itself', async () => {
    await putPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/*` }] });
    try {
      await rejectsWith(read(as(bob), 'pub/d.txt'), 'AccessDenied', 403);
      assert.equal(await read(srv.s3, 'pub/d.txt'), 'content of pub/d.txt');
    } finally {
      await deletePolicy();
    }
  });

  test('aws:SecureTransport false denies plain HTTP and allows the same request over HTTPS', async () => {
    await putPolicy({
      Version: '2012-10-17',
      Statement: [{ Sid: 'HttpsOnly', Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: [`arn:aws:s3:::${BUCKET}`, `arn:aws:s3:::${BUCKET}/*`], Condition: { Bool: { 'aws:SecureTransport': 'false' } } }],
    });
    try {
      await rejectsWith(read(srv.s3, 'pub/d.txt'), 'AccessDenied', 403);
      assert.equal(await read(srv.s3s, 'pub/d.txt'), 'content of pub/d.txt');
      await rejectsWith(read(as(carol), 'pub/d.txt'), 'AccessDenied', 403);
      assert.equal(await read(as(carol, true), 'pub/d.txt'), 'content of pub/d.txt');
      // The owner keeps the policy API, even over HTTP.
      await deletePolicy();
    } finally {
      await deletePolicy();
    }
    assert.equal(await read(srv.s3, 'pub/d.txt'), 'content of pub/d.txt');
  });

  test('aws:SourceIp: 127.0.0.1 is allowed by a range containing it, denied by one that does not', async () => {
    const only = (cidr: string) => ({
      Version: '2012-10-17',
      Statement: [{ Sid: 'OnlyFrom', Effect: 'Deny', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/*`, Condition: { NotIpAddress: { 'aws:SourceIp': cidr } } }],
    });
    try {
      await putPolicy(only('127.0.0.0/8'));
      assert.equal(await read(as(carol), 'pub/d.txt'), 'content of pub/d.txt');
      await putPolicy(only('192.0.2.0/24'));
      await rejectsWith(read(as(carol), 'pub/d.txt'), 'AccessDenied', 403);
      await rejectsWith(read(srv.s3, 'pub/d.txt'), 'AccessDenied', 403);
      // An allow that names a source range: only from there.
      await putPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/pub/*`, Condition: { IpAddress: { 'aws:SourceIp': ['127.0.0.1/32', '::1/128'] } } }] });
      assert.equal(await read(as(bob), 'pub/d.txt'), 'content of pub/d.txt');
      await putPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/pub/*`, Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } } }] });
      await rejectsWith(read(as(bob), 'pub/d.txt'), 'AccessDenied', 403);
    } finally {
      await deletePolicy();
    }
  });

  test('anonymous access works only where Principal "*" grants it', async () => {
    const anonGet = (key: string) => send(port, 'GET', `/${BUCKET}/${key}`, { host: `127.0.0.1:${port}` });
    assertS3Error(await anonGet('pub/d.txt'), 'AccessDenied', 403);
    // A grant to a user is not a grant to everyone.
    await putPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/bob` }, Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/pub/*` }] });
    assertS3Error(await anonGet('pub/d.txt'), 'AccessDenied', 403);
    const status1 = await srv.s3.send(new GetBucketPolicyStatusCommand({ Bucket: BUCKET }));
    assert.equal(status1.PolicyStatus?.IsPublic, false);
    await putPolicy({ Version: '2012-10-17', Statement: [{ Sid: 'PublicRead', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/pub/*` }] });
    try {
      const ok = await anonGet('pub/d.txt');
      assert.equal(ok.status, 200);
      assert.equal(ok.body, 'content of pub/d.txt');
      assert.equal((await send(port, 'HEAD', `/${BUCKET}/pub/d.txt`, { host: `127.0.0.1:${port}` })).status, 200);
      assertS3Error(await anonGet('private/c.txt'), 'AccessDenied', 403);
      assertS3Error(await send(port, 'GET', `/${BUCKET}`, { host: `127.0.0.1:${port}` }), 'AccessDenied', 403);
      const put = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/pub/anon.txt`, body: 'anonymous', sign: false });
      assertS3Error(put, 'AccessDenied', 403);
      assertS3Error(await send(port, 'GET', `/${BUCKET}/pub/d.txt?response-content-type=text%2Fhtml`, { host: `127.0.0.1:${port}` }), 'InvalidRequest', 400);
      // A signed user without permissions gets it too, through the Principal "*" grant.
      assert.equal(await read(as(bob), 'pub/d.txt'), 'content of pub/d.txt');
      const status = await srv.s3.send(new GetBucketPolicyStatusCommand({ Bucket: BUCKET }));
      assert.equal(status.PolicyStatus?.IsPublic, true);
    } finally {
      await deletePolicy();
    }
    assertS3Error(await anonGet('pub/d.txt'), 'AccessDenied', 403);
    await rejectsWith(srv.s3.send(new GetBucketPolicyStatusCommand({ Bucket: BUCKET })), 'NoSuchBucketPolicy', 404);
  });

  test('DeleteObjects checks s3:DeleteObject per key and reports AccessDenied per key', async () => {
    await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'tmp/one', Body: '1' }));
    await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'keep/two', Body: '2' }));
    await putPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/bob` }, Action: 's3:DeleteObject', Resource: `arn:aws:s3:::${BUCKET}/tmp/*` }] });
    try {
      const r = await as(bob).send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: 'tmp/one' }, { Key: 'keep/two' }] } }));
      assert.deepEqual(r.Deleted?.map((d) => d.Key), ['tmp/one']);
      assert.deepEqual(r.Errors?.map((e) => [e.Key, e.Code]), [['keep/two', 'AccessDenied']]);
      assert.equal(await read(srv.s3, 'keep/two'), '2');
      await rejectsWith(read(srv.s3, 'tmp/one'), 'NoSuchKey', 404);
    } finally {
      await deletePolicy();
    }
  });

  test('CopyObject needs s3:GetObject on the source as well as s3:PutObject on the target', async () => {
    await putPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/alice` }, Action: 's3:PutObject', Resource: `arn:aws:s3:::${BUCKET}/home/*` }] });
    try {
      await as(alice).send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'home/copy.txt', CopySource: `${BUCKET}/home/a.txt` }));
      assert.equal(await read(srv.s3, 'home/copy.txt'), 'content of home/a.txt');
      await rejectsWith(as(alice).send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'home/stolen.txt', CopySource: `${BUCKET}/private/c.txt` })), 'AccessDenied', 403);
      await rejectsWith(read(srv.s3, 'home/stolen.txt'), 'NoSuchKey', 404);
    } finally {
      await deletePolicy();
    }
  });

  test('the account root is refused what a bucket policy denies it: on the target, and on a copy source in another bucket with no policy of its own', async () => {
    const other = 'policy-access-root';
    await srv.s3.send(new CreateBucketCommand({ Bucket: other }));
    const denyRoot = (action: string, resource: string) => ({
      Version: '2012-10-17',
      Statement: [{ Sid: 'NotEvenRoot', Effect: 'Deny', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: action, Resource: resource }],
    });
    try {
      // No policy anywhere: the root may do anything.
      await srv.s3.send(new CopyObjectCommand({ Bucket: other, Key: 'copy.txt', CopySource: `${BUCKET}/private/c.txt` }));
      assert.equal(await read(srv.s3, 'copy.txt', other), 'content of private/c.txt');
      // The source bucket denies the root reads: a copy into the bucket without a policy fails.
      await putPolicy(denyRoot('s3:GetObject', `arn:aws:s3:::${BUCKET}/private/*`));
      await rejectsWith(srv.s3.send(new CopyObjectCommand({ Bucket: other, Key: 'copy2.txt', CopySource: `${BUCKET}/private/c.txt` })), 'AccessDenied', 403);
      await rejectsWith(read(srv.s3, 'private/c.txt'), 'AccessDenied', 403);
      await deletePolicy();
      // The target bucket denies the root writes.
      await putPolicy(denyRoot('s3:PutObject', `arn:aws:s3:::${other}/*`), other);
      await rejectsWith(srv.s3.send(new PutObjectCommand({ Bucket: other, Key: 'new.txt', Body: 'x' })), 'AccessDenied', 403);
      await rejectsWith(srv.s3.send(new CopyObjectCommand({ Bucket: other, Key: 'copy3.txt', CopySource: `${BUCKET}/home/a.txt` })), 'AccessDenied', 403);
      await deletePolicy(other);
      await srv.s3.send(new PutObjectCommand({ Bucket: other, Key: 'new.txt', Body: 'x' }));
    } finally {
      await deletePolicy().catch(() => {});
      await deletePolicy(other).catch(() => {});
    }
  });

  test('object tagging: its own actions, and x-amz-tagging on a write needs s3:PutObjectTagging too', async () => {
    const bobArn = `arn:aws:iam::${ACCOUNT}:user/bob`;
    const grant = (actions: string[]) =>
      putPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: bobArn }, Action: actions, Resource: `arn:aws:s3:::${BUCKET}/tags/*` }] });
    await grant(['s3:PutObject', 's3:GetObject']);
    try {
      await as(bob).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'tags/plain', Body: 'p' }));
      await rejectsWith(as(bob).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'tags/tagged', Body: 't', Tagging: 'a=1' })), 'AccessDenied', 403);
      await rejectsWith(read(srv.s3, 'tags/tagged'), 'NoSuchKey', 404);
      await rejectsWith(as(bob).send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: 'tags/plain' })), 'AccessDenied', 403);
      await rejectsWith(as(bob).send(new PutObjectTaggingCommand({ Bucket: BUCKET, Key: 'tags/plain', Tagging: { TagSet: [] } })), 'AccessDenied', 403);
      await rejectsWith(as(bob).send(new DeleteObjectTaggingCommand({ Bucket: BUCKET, Key: 'tags/plain' })), 'AccessDenied', 403);
      await grant(['s3:PutObject', 's3:GetObject', 's3:PutObjectTagging', 's3:GetObjectTagging', 's3:DeleteObjectTagging']);
      await as(bob).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'tags/tagged', Body: 't', Tagging: 'a=1' }));
      assert.deepEqual((await as(bob).send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: 'tags/tagged' }))).TagSet, [{ Key: 'a', Value: '1' }]);
      await as(bob).send(new DeleteObjectTaggingCommand({ Bucket: BUCKET, Key: 'tags/tagged' }));
    } finally {
      await deletePolicy();
    }
  });

  test('the bucket owner is never locked out of the policy API', async () => {
    await putPolicy({ Version: '2012-10-17', Statement: [{ Sid: 'DenyAll', Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: [`arn:aws:s3:::${BUCKET}`, `arn:aws:s3:::${BUCKET}/*`] }] });
    await rejectsWith(read(srv.s3, 'pub/d.txt'), 'AccessDenied', 403);
    await rejectsWith(read(as(carol), 'pub/d.txt'), 'AccessDenied', 403);
    const got = await srv.s3.send(new GetBucketPolicyCommand({ Bucket: BUCKET }));
    assert.match(got.Policy!, /DenyAll/);
    await rejectsWith(as(carol).send(new DeleteBucketPolicyCommand({ Bucket: BUCKET })), 'AccessDenied', 403);
    await deletePolicy();
    assert.equal(await read(srv.s3, 'pub/d.txt'), 'content of pub/d.txt');
  });

  test('GetBucketPolicy returns the document as put; NoSuchBucketPolicy when there is none', async () => {
    await rejectsWith(srv.s3.send(new GetBucketPolicyCommand({ Bucket: BUCKET })), 'NoSuchBucketPolicy', 404);
    const raw = await rawRequest(port, { method: 'GET', path: `/${BUCKET}`, query: { policy: '' } });
    assertS3Error(raw, 'NoSuchBucketPolicy', 404, 'The bucket policy does not exist');
    const text = JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'x y', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/pub/*` }] }, null, 2);
    await srv.s3.send(new PutBucketPolicyCommand({ Bucket: BUCKET, Policy: text }));
    assert.equal((await srv.s3.send(new GetBucketPolicyCommand({ Bucket: BUCKET }))).Policy, text);
    const del = await rawRequest(port, { method: 'DELETE', path: `/${BUCKET}`, query: { policy: '' } });
    assert.equal(del.status, 204);
    assert.equal((await rawRequest(port, { method: 'DELETE', path: `/${BUCKET}`, query: { policy: '' } })).status, 204);
    await rejectsWith(srv.s3.send(new PutBucketPolicyCommand({ Bucket: 'no-such-bucket', Policy: text })), 'NoSuchBucket', 404);
  });

  test('malformed policies: MalformedPolicy with a useful message; the previous policy stays in force', async () => {
    const good = { Version: '2012-10-17', Statement: [{ Sid: 'PublicPub', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/pub/*` }] };
    await putPolicy(good);
    try {
      const stmt = (extra: Record<string, unknown>) => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/*`, ...extra }] });
      const cases: [string, string, RegExp][] = [
        ['bad JSON', '{"Version": "2012-10-17", "Statement": [}', /Invalid JSON at position \d+/],
        ['not JSON at all', 'Allow everything', /valid JSON/],
        ['unknown operator', stmt({ Condition: { StringEqualz: { 's3:prefix': 'a' } } }), /Unknown condition operator 'StringEqualz' in statement 0/],
        ['bad ARN', stmt({ Resource: 'arn:aws:s3' }), /invalid resource in statement 0/],
        ['resource outside the bucket', stmt({ Resource: 'arn:aws:s3:::other-bucket/*' }), /resource/i],
        ['empty statement', JSON.stringify({ Version: '2012-10-17', Statement: [] }), /Statement is empty/],
        ['over 20 KB', JSON.stringify({ ...good, Id: 'x'.repeat(21 * 1024) }), /exceeds the maximum allowed size: \d+ bytes, the limit is 20480/],
      ];
      for (const [what, body, message] of cases) {
        const res = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}`, query: { policy: '' }, body });
        assertS3Error(res, 'MalformedPolicy', 400, message);
        assert.ok(true, what);
      }
      await rejectsWith(srv.s3.send(new PutBucketPolicyCommand({ Bucket: BUCKET, Policy: '{"Statement": "nope"' })), 'MalformedPolicy', 400);
      const still = await srv.s3.send(new GetBucketPolicyCommand({ Bucket: BUCKET }));
      assert.deepEqual(JSON.parse(still.Policy!), good);
      const anon = await send(port, 'GET', `/${BUCKET}/pub/d.txt`, { host: `127.0.0.1:${port}` });
      assert.equal(anon.status, 200, 'the previous policy is still enforced');
    } finally {
      await deletePolicy();
    }
  });
});
