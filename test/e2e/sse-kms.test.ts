// SSE-KMS in S3 end to end (issue 4's acceptance) with @aws-sdk/client-s3, lib-storage and
// @aws-sdk/client-kms against the real server: PutObject under a key named by id, ARN, alias or
// alias ARN (the response always names the key ARN) or under the managed alias/aws/s3 key; GET
// and HEAD headers (never the encryption context); bodies across the inline threshold and
// segment boundaries, ranges; ETag not the MD5; the encryption context header; copies between
// SSE modes; multipart; KMS errors as S3 errors (unknown, disabled, pending deletion); the
// separate permission to use a key (key policies, explicit Deny on Decrypt, kms:ViaService);
// default bucket encryption; Bucket Keys (fewer KMS calls, restart, cache, disable);
// crypto-shredding with an injected clock; rotation; and the audit trail of S3's KMS calls.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  ListAliasesCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  ListKeyRotationsCommand,
  EnableKeyRotationCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketEncryptionCommand,
  GetBucketEncryptionCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketEncryptionCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  UploadPartCommand,
  type PutObjectCommandInput,
  type S3Client,
  type ServerSideEncryptionConfiguration,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { CloudTrailEvent } from '../../src/kms/audit.ts';
import type { AuditQuery } from '../../src/storage/ports.ts';
import { rejectsKms } from '../helpers/kms.ts';
import { kmsClientFor, startTestServer, tempDir, type TestServer } from '../helpers/coffer.ts';
import { clientAs, rejectsWith, testUser, type TestUser } from '../helpers/identities.ts';
import { assertS3Error, blobFiles, rawRequest } from '../helpers/raw-s3.ts';

const ACCOUNT = '111122223333';
const REGION = 'us-east-1';
const ROOT_ARN = `arn:aws:iam::${ACCOUNT}:root`;
const userArn = (u: TestUser) => `arn:aws:iam::${ACCOUNT}:user/${u.name}`;

const ann = testUser('ann', 1); // s3:* and kms:GenerateDataKey/Decrypt by identity policy
const dave = testUser('dave', 2); // s3:* only; not in the key policy
const erin = testUser('erin', 3); // s3:*; named by the key policy
const frank = testUser('frank', 4); // s3:*; key policy allows GenerateDataKey, denies Decrypt
const gina = testUser('gina', 5); // s3:*; key policy allows her only via S3 (kms:ViaService)

const s3All = { name: 's3-all', document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] } };
const BUCKET = 'sse-kms';

const md5hex = (b: Buffer) => createHash('md5').update(b).digest('hex');
const md5b64 = (b: Buffer) => createHash('md5').update(b).digest('base64');
const b64json = (o: unknown) => Buffer.from(JSON.stringify(o), 'utf8').toString('base64');
const unb64json = (s: string | undefined) => JSON.parse(Buffer.from(s ?? '', 'base64').toString('utf8')) as Record<string, string>;


/** Asserts an S3 SDK error: code, status and (optionally) the message. */
async function s3Rejects(p: Promise<unknown>, code: string, status: number, message?: RegExp | string): Promise<void> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    assert.equal(err.name, code, `expected ${code}, got ${err.name}: ${err.message}`);
    assert.equal(err.$metadata?.httpStatusCode, status);
    if (typeof message === 'string') assert.equal(err.message, message);
    else if (message) assert.match(err.message, message);
    return;
  }
  assert.fail(`expected ${code}, but the request succeeded`);
}

async function getBytes(c: S3Client, bucket: string, key: string, range?: string): Promise<{ body: Buffer; out: GetObjectCommandOutput }> {
  const out = await c.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(range ? { Range: range } : {}) }));
  const body = Buffer.from(await out.Body!.transformToByteArray());
  return { body, out };
}

async function createKey(kms: KMSClient, opts: { description?: string; policy?: unknown } = {}): Promise<{ id: string; arn: string }> {
  const { KeyMetadata: m } = await kms.send(
    new CreateKeyCommand({ Description: opts.description ?? 'sse-kms test key', ...(opts.policy ? { Policy: JSON.stringify(opts.policy) } : {}) }),
  );
  return { id: m!.KeyId!, arn: m!.Arn! };
}

/** Events of the audit trail, parsed. */
async function audit(srv: TestServer, q: AuditQuery): Promise<CloudTrailEvent[]> {
  return (await srv.coffer.stores.meta.listAudit({ limit: 10_000, ...q })).map((r) => JSON.parse(r.event) as CloudTrailEvent);
}

async function auditSeq(srv: TestServer): Promise<number> {
  return (await srv.coffer.stores.meta.auditHead())?.seq ?? 0;
}

function bootstrap(extraBuckets: string[] = []): string {
  const user = (u: TestUser, policies: unknown[] = [s3All]) => ({ name: u.name, accessKeys: [{ accessKeyId: u.accessKeyId, secretAccessKey: u.secretAccessKey }], policies });
  return JSON.stringify({
    users: [
      user(ann, [
        s3All,
        { name: 'kms-use', document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kms:GenerateDataKey', 'kms:Decrypt'], Resource: '*' }] } },
      ]),
      user(dave),
      user(erin),
      user(frank),
      user(gina),
    ],
    buckets: [{ name: BUCKET }, ...extraBuckets.map((name) => ({ name }))],
  });
}

let srv: TestServer;
let port: number;
let kms: KMSClient;
let keyA: { id: string; arn: string };
let keyB: { id: string; arn: string };
const clients: { destroy(): void }[] = [];
const as = (u: TestUser) => {
  const c = clientAs(u, srv.httpUrl);
  clients.push(c);
  return c;
};
const kmsAs = (u: TestUser) => {
  const c = kmsClientFor(srv.httpUrl, { credentials: { accessKeyId: u.accessKeyId, secretAccessKey: u.secretAccessKey } });
  clients.push(c);
  return c;
};

before(async () => {
  srv = await startTestServer({ config: { bootstrap: bootstrap(), accountId: ACCOUNT } });
  port = srv.coffer.listeners.http!.port;
  kms = kmsClientFor(srv.httpUrl);
  keyA = await createKey(kms, { description: 'key A' });
  keyB = await createKey(kms, { description: 'key B' });
  await kms.send(new CreateAliasCommand({ AliasName: 'alias/key-a', TargetKeyId: keyA.id }));
});

after(async () => {
  for (const c of clients) c.destroy();
  kms?.destroy();
  await srv?.stop();
});

const put = (input: Omit<PutObjectCommandInput, 'Bucket'> & { Bucket?: string }, c: S3Client = srv.s3) =>
  c.send(new PutObjectCommand({ Bucket: BUCKET, ...input } as PutObjectCommandInput));
const head = (key: string, bucket = BUCKET, c: S3Client = srv.s3) => c.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));

describe('PutObject / GetObject / HeadObject with SSE-KMS', () => {
  test('the key named by id, ARN, alias name or alias ARN: the response always names the key ARN', async () => {
    const forms = { id: keyA.id, arn: keyA.arn, alias: 'alias/key-a', aliasArn: `arn:aws:kms:${REGION}:${ACCOUNT}:alias/key-a` };
    for (const [form, keyId] of Object.entries(forms)) {
      const r = await put({ Key: `named-by-${form}`, Body: `body ${form}`, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyId });
      assert.equal(r.ServerSideEncryption, 'aws:kms', form);
      assert.equal(r.SSEKMSKeyId, keyA.arn, form);
      assert.equal(r.BucketKeyEnabled, undefined, `${form}: no Bucket Key header unless one is used`);
      const h = await head(`named-by-${form}`);
      assert.equal(h.ServerSideEncryption, 'aws:kms');
      assert.equal(h.SSEKMSKeyId, keyA.arn);
      const g = await getBytes(srv.s3, BUCKET, `named-by-${form}`);
      assert.equal(g.body.toString(), `body ${form}`);
      assert.equal(g.out.ServerSideEncryption, 'aws:kms');
      assert.equal(g.out.SSEKMSKeyId, keyA.arn);
    }
  });

  test('aws:kms without a key id uses the AWS managed key alias/aws/s3', async () => {
    const r = await put({ Key: 'managed', Body: 'managed key', ServerSideEncryption: 'aws:kms' });
    assert.equal(r.ServerSideEncryption, 'aws:kms');
    const { KeyMetadata: m } = await kms.send(new DescribeKeyCommand({ KeyId: 'alias/aws/s3' }));
    assert.equal(m!.KeyManager, 'AWS');
    assert.equal(r.SSEKMSKeyId, m!.Arn);
    assert.notEqual(r.SSEKMSKeyId, keyA.arn);
    const { Aliases } = await kms.send(new ListAliasesCommand({}));
    const managed = Aliases!.find((a) => a.AliasName === 'alias/aws/s3');
    assert.ok(managed, 'ListAliases lists alias/aws/s3 once S3 used it');
    assert.equal(managed.TargetKeyId, m!.KeyId);
    assert.equal((await head('managed')).SSEKMSKeyId, m!.Arn);
    assert.equal((await getBytes(srv.s3, BUCKET, 'managed')).body.toString(), 'managed key');
    // A second object under the managed key: the same key, not a new one.
    const r2 = await put({ Key: 'managed-2', Body: 'again', ServerSideEncryption: 'aws:kms' });
    assert.equal(r2.SSEKMSKeyId, m!.Arn);
  });

  test('bodies round-trip across the inline threshold and segment boundaries', async () => {
    for (const size of [0, 1, 32 * 1024, 32 * 1024 + 1, 65536, 65537, 1024 * 1024 + 7]) {
      const body = randomBytes(size);
      const r = await put({ Key: `size-${size}`, Body: body, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.id });
      assert.equal(r.SSEKMSKeyId, keyA.arn);
      const g = await getBytes(srv.s3, BUCKET, `size-${size}`);
      assert.equal(g.body.length, size);
      assert.ok(g.body.equals(body), `size ${size}`);
      assert.equal(g.out.ContentLength, size);
      assert.equal((await head(`size-${size}`)).ContentLength, size);
    }
  });

  test('Range GET at segment boundaries and suffix ranges', async () => {
    const size = 1024 * 1024 + 7;
    const body = randomBytes(size);
    await put({ Key: 'ranges', Body: body, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.arn });
    const cases: [string, number, number][] = [
      ['bytes=65530-65545', 65530, 65545],
      ['bytes=65535-65536', 65535, 65536],
      ['bytes=65536-65536', 65536, 65536],
      ['bytes=0-65535', 0, 65535],
      ['bytes=131071-196608', 131071, 196608],
      ['bytes=1048576-', 1048576, size - 1],
      ['bytes=-7', size - 7, size - 1],
      ['bytes=-65537', size - 65537, size - 1],
    ];
    for (const [range, start, end] of cases) {
      const g = await getBytes(srv.s3, BUCKET, 'ranges', range);
      assert.ok(g.body.equals(body.subarray(start, end + 1)), range);
      assert.equal(g.out.ContentRange, `bytes ${start}-${end}/${size}`, range);
      assert.equal(g.out.ServerSideEncryption, 'aws:kms');
      assert.equal(g.out.SSEKMSKeyId, keyA.arn);
    }
  });

  test('the ETag of an SSE-KMS single PUT is not the MD5 of the plaintext; Content-MD5 is still checked', async () => {
    const body = Buffer.from('guess my etag');
    const r = await put({ Key: 'etag', Body: body, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.id, ContentMD5: md5b64(body) });
    assert.match(r.ETag!, /^"[0-9a-f]{32}"$/);
    assert.notEqual(r.ETag, `"${md5hex(body)}"`);
    assert.equal((await head('etag')).ETag, r.ETag);
    assert.equal((await getBytes(srv.s3, BUCKET, 'etag')).out.ETag, r.ETag);
    // The same bytes under SSE-S3 do get the MD5.
    const s3 = await put({ Key: 'etag-s3', Body: body, ServerSideEncryption: 'AES256' });
    assert.equal(s3.ETag, `"${md5hex(body)}"`);
    await rejectsWith(put({ Key: 'etag-bad', Body: body, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.id, ContentMD5: md5b64(Buffer.from('other')) }), 'BadDigest', 400);
    await rejectsWith(head('etag-bad'), 'NotFound', 404);
  });

  test('SSEKMSEncryptionContext: the response carries it with aws:s3:arn; GET works; GET and HEAD never send it', async () => {
    const ctx = { project: 'coffer', team: 'storage' };
    const r = await put({ Key: 'ctx/obj', Body: 'with context', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.id, SSEKMSEncryptionContext: b64json(ctx) });
    assert.equal(r.SSEKMSKeyId, keyA.arn);
    assert.deepEqual(unb64json(r.SSEKMSEncryptionContext), { ...ctx, 'aws:s3:arn': `arn:aws:s3:::${BUCKET}/ctx/obj` });
    assert.equal((await getBytes(srv.s3, BUCKET, 'ctx/obj')).body.toString(), 'with context');
    // Without a request context the response still names the object ARN.
    const plain = await put({ Key: 'ctx/none', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.id });
    assert.deepEqual(unb64json(plain.SSEKMSEncryptionContext), { 'aws:s3:arn': `arn:aws:s3:::${BUCKET}/ctx/none` });
    for (const method of ['GET', 'HEAD']) {
      const res = await rawRequest(port, { method, path: `/${BUCKET}/ctx/obj` });
      assert.equal(res.status, 200, `${method} ${res.body}`);
      assert.equal(res.headers['x-amz-server-side-encryption'], 'aws:kms');
      assert.equal(res.headers['x-amz-server-side-encryption-aws-kms-key-id'], keyA.arn);
      assert.equal(res.headers['x-amz-server-side-encryption-context'], undefined, `${method} never carries the context`);
      if (method === 'GET') assert.equal(res.body, 'with context');
    }
    // The raw PUT response carries the context header (base64 JSON).
    const res = await rawRequest(port, {
      method: 'PUT',
      path: `/${BUCKET}/ctx/raw`,
      headers: { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'alias/key-a', 'x-amz-server-side-encryption-context': b64json({ a: 'b' }) },
      body: 'raw',
    });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(unb64json(res.headers['x-amz-server-side-encryption-context'] as string), { a: 'b', 'aws:s3:arn': `arn:aws:s3:::${BUCKET}/ctx/raw` });
  });

  test('a malformed context header is 400 InvalidArgument', async () => {
    const msg = "The header 'x-amz-server-side-encryption-context' shall be Base64-encoded UTF-8 string holding JSON which represents a string-string map";
    const bad = {
      'not base64': 'this is not base64!',
      'not JSON': Buffer.from('{not json').toString('base64'),
      'a non-string value': b64json({ a: 1 }),
      'an array': b64json(['a', 'b']),
      'a nested object': b64json({ a: { b: 'c' } }),
    };
    for (const [what, value] of Object.entries(bad)) {
      const res = await rawRequest(port, {
        method: 'PUT',
        path: `/${BUCKET}/ctx/bad`,
        headers: { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-context': value },
        body: 'x',
      });
      assertS3Error(res, 'InvalidArgument', 400, msg);
      assert.ok(res.status === 400, what);
    }
    await rejectsWith(head('ctx/bad'), 'NotFound', 404);
  });

  test('a KMS key id header without aws:kms is 400 InvalidArgument', async () => {
    const msg = 'Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms';
    for (const sse of [undefined, 'AES256']) {
      const res = await rawRequest(port, {
        method: 'PUT',
        path: `/${BUCKET}/kms-id-alone`,
        headers: { ...(sse ? { 'x-amz-server-side-encryption': sse } : {}), 'x-amz-server-side-encryption-aws-kms-key-id': keyA.id },
        body: 'x',
      });
      assertS3Error(res, 'InvalidArgument', 400, msg);
    }
    await s3Rejects(put({ Key: 'kms-id-alone', Body: 'x', SSEKMSKeyId: keyA.id }), 'InvalidArgument', 400, msg);
    await rejectsWith(head('kms-id-alone'), 'NotFound', 404);
  });
});

describe('CopyObject between SSE modes', () => {
  test('SSE-S3 → SSE-KMS, SSE-KMS → SSE-S3, key A → key B', async () => {
    const body = randomBytes(70_000);
    await put({ Key: 'copy/s3', Body: body, ServerSideEncryption: 'AES256' });

    const toKms = await srv.s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'copy/kms-a', CopySource: `${BUCKET}/copy/s3`, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/key-a' }));
    assert.equal(toKms.ServerSideEncryption, 'aws:kms');
    assert.equal(toKms.SSEKMSKeyId, keyA.arn);
    assert.deepEqual(unb64json(toKms.SSEKMSEncryptionContext), { 'aws:s3:arn': `arn:aws:s3:::${BUCKET}/copy/kms-a` });
    const h1 = await head('copy/kms-a');
    assert.equal(h1.ServerSideEncryption, 'aws:kms');
    assert.equal(h1.SSEKMSKeyId, keyA.arn);
    assert.ok((await getBytes(srv.s3, BUCKET, 'copy/kms-a')).body.equals(body));

    const toS3 = await srv.s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'copy/back-to-s3', CopySource: `${BUCKET}/copy/kms-a`, ServerSideEncryption: 'AES256' }));
    assert.equal(toS3.ServerSideEncryption, 'AES256');
    assert.equal(toS3.SSEKMSKeyId, undefined);
    const h2 = await head('copy/back-to-s3');
    assert.equal(h2.ServerSideEncryption, 'AES256');
    assert.equal(h2.SSEKMSKeyId, undefined);
    assert.ok((await getBytes(srv.s3, BUCKET, 'copy/back-to-s3')).body.equals(body));
    assert.equal(h2.ETag, `"${md5hex(body)}"`, 'an SSE-S3 copy has the MD5 ETag');

    const toB = await srv.s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'copy/kms-b', CopySource: `${BUCKET}/copy/kms-a`, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyB.id }));
    assert.equal(toB.SSEKMSKeyId, keyB.arn);
    assert.equal((await head('copy/kms-b')).SSEKMSKeyId, keyB.arn);
    assert.ok((await getBytes(srv.s3, BUCKET, 'copy/kms-b')).body.equals(body));
  });

  test('the source encryption context is not copied', async () => {
    await put({ Key: 'copy/ctx-src', Body: 'ctx', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.id, SSEKMSEncryptionContext: b64json({ origin: 'src' }) });
    const c = await srv.s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'copy/ctx-dst', CopySource: `${BUCKET}/copy/ctx-src`, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.id }));
    assert.deepEqual(unb64json(c.SSEKMSEncryptionContext), { 'aws:s3:arn': `arn:aws:s3:::${BUCKET}/copy/ctx-dst` });
    assert.equal((await getBytes(srv.s3, BUCKET, 'copy/ctx-dst')).body.toString(), 'ctx');
  });

  test('copy in place with an SSE header is legal (re-encrypts under the new key); without one it is not', async () => {
    await put({ Key: 'copy/in-place', Body: 'in place', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.id });
    const c = await srv.s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'copy/in-place', CopySource: `${BUCKET}/copy/in-place`, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyB.arn }));
    assert.equal(c.ServerSideEncryption, 'aws:kms');
    assert.equal(c.SSEKMSKeyId, keyB.arn);
    const h = await head('copy/in-place');
    assert.equal(h.SSEKMSKeyId, keyB.arn);
    assert.equal((await getBytes(srv.s3, BUCKET, 'copy/in-place')).body.toString(), 'in place');
    // Same key again is still a change the client asked for (naming SSE makes it legal).
    const again = await srv.s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'copy/in-place', CopySource: `${BUCKET}/copy/in-place`, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyB.arn }));
    assert.equal(again.SSEKMSKeyId, keyB.arn);
    await s3Rejects(srv.s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'copy/in-place', CopySource: `${BUCKET}/copy/in-place` })), 'InvalidRequest', 400, /copy an object to itself/);
  });
});

describe('multipart uploads with SSE-KMS', () => {
  test('CreateMultipartUpload aws:kms + key, 3 parts, Complete; whole and a range spanning parts', async () => {
    const parts = [randomBytes(5 * 1024 * 1024), randomBytes(5 * 1024 * 1024), randomBytes(1024)];
    const whole = Buffer.concat(parts);
    const key = 'mpu/three-parts';
    const c = await srv.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/key-a', SSEKMSEncryptionContext: b64json({ mpu: 'yes' }) }));
    assert.equal(c.ServerSideEncryption, 'aws:kms');
    assert.equal(c.SSEKMSKeyId, keyA.arn);
    assert.deepEqual(unb64json(c.SSEKMSEncryptionContext), { mpu: 'yes', 'aws:s3:arn': `arn:aws:s3:::${BUCKET}/${key}` });
    const etags: string[] = [];
    for (const [i, p] of parts.entries()) {
      const r = await srv.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: c.UploadId, PartNumber: i + 1, Body: p }));
      assert.equal(r.ServerSideEncryption, 'aws:kms', `part ${i + 1}`);
      assert.equal(r.SSEKMSKeyId, keyA.arn, `part ${i + 1}`);
      etags.push(r.ETag!);
    }
    const done = await srv.s3.send(
      new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: c.UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }),
    );
    assert.equal(done.ServerSideEncryption, 'aws:kms');
    assert.equal(done.SSEKMSKeyId, keyA.arn);
    assert.match(done.ETag!, /-3"$/);
    const h = await head(key);
    assert.equal(h.ServerSideEncryption, 'aws:kms');
    assert.equal(h.SSEKMSKeyId, keyA.arn);
    assert.equal(h.ContentLength, whole.length);
    assert.ok((await getBytes(srv.s3, BUCKET, key)).body.equals(whole));
    const start = 5 * 1024 * 1024 - 100;
    const end = 10 * 1024 * 1024 + 99;
    const g = await getBytes(srv.s3, BUCKET, key, `bytes=${start}-${end}`);
    assert.ok(g.body.equals(whole.subarray(start, end + 1)));
    assert.equal(g.out.ContentRange, `bytes ${start}-${end}/${whole.length}`);
  });

  test('lib-storage Upload of ~12 MiB with SSE-KMS', async () => {
    const body = randomBytes(12 * 1024 * 1024 + 333);
    const up = new Upload({ client: srv.s3, params: { Bucket: BUCKET, Key: 'mpu/lib-storage', Body: body, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyB.id } });
    const r = await up.done();
    assert.equal((r as { ServerSideEncryption?: string }).ServerSideEncryption, 'aws:kms');
    assert.equal((r as { SSEKMSKeyId?: string }).SSEKMSKeyId, keyB.arn);
    const h = await head('mpu/lib-storage');
    assert.equal(h.ServerSideEncryption, 'aws:kms');
    assert.equal(h.SSEKMSKeyId, keyB.arn);
    assert.match(h.ETag!, /-3"$/);
    assert.ok((await getBytes(srv.s3, BUCKET, 'mpu/lib-storage')).body.equals(body));
  });
});

describe('KMS errors as S3 errors', () => {
  test("an unknown key: 400 KMS.NotFoundException, nothing stored", async () => {
    const res = await rawRequest(port, {
      method: 'PUT',
      path: `/${BUCKET}/err/fake`,
      headers: { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'fake-key-id' },
      body: 'x',
    });
    assertS3Error(res, 'KMS.NotFoundException', 400, "Invalid keyId 'fake-key-id'");
    await s3Rejects(put({ Key: 'err/fake', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'fake-key-id' }), 'KMS.NotFoundException', 400);
    const missing = '00000000-1111-4222-8333-444444444444';
    await s3Rejects(
      put({ Key: 'err/fake', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: missing }),
      'KMS.NotFoundException',
      400,
      `Key 'arn:aws:kms:${REGION}:${ACCOUNT}:key/${missing}' does not exist`,
    );
    await s3Rejects(put({ Key: 'err/fake', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/no-such-alias' }), 'KMS.NotFoundException', 400);
    await rejectsWith(head('err/fake'), 'NotFound', 404);
  });

  test('a disabled key: PUT and GET are 400 KMS.DisabledException (HEAD works); EnableKey brings both back', async () => {
    const k = await createKey(kms);
    await put({ Key: 'err/disabled', Body: 'before', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id });
    await kms.send(new DisableKeyCommand({ KeyId: k.id }));
    const message = `${k.arn} is disabled.`;
    await s3Rejects(put({ Key: 'err/disabled-2', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id }), 'KMS.DisabledException', 400, message);
    await s3Rejects(getBytes(srv.s3, BUCKET, 'err/disabled'), 'KMS.DisabledException', 400, message);
    const h = await head('err/disabled');
    assert.equal(h.SSEKMSKeyId, k.arn, 'HEAD needs no KMS call');
    await rejectsWith(head('err/disabled-2'), 'NotFound', 404);
    await kms.send(new EnableKeyCommand({ KeyId: k.id }));
    assert.equal((await getBytes(srv.s3, BUCKET, 'err/disabled')).body.toString(), 'before');
    await put({ Key: 'err/disabled-2', Body: 'after', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id });
    assert.equal((await getBytes(srv.s3, BUCKET, 'err/disabled-2')).body.toString(), 'after');
  });

  test('a key pending deletion: 400 KMS.KMSInvalidStateException; CancelKeyDeletion + EnableKey make it readable again', async () => {
    const k = await createKey(kms);
    await put({ Key: 'err/pending', Body: 'keep me', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.arn });
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: k.id, PendingWindowInDays: 7 }));
    const message = `${k.arn} is pending deletion.`;
    await s3Rejects(put({ Key: 'err/pending-2', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.arn }), 'KMS.KMSInvalidStateException', 400, message);
    await s3Rejects(getBytes(srv.s3, BUCKET, 'err/pending'), 'KMS.KMSInvalidStateException', 400, message);
    await kms.send(new CancelKeyDeletionCommand({ KeyId: k.id }));
    // CancelKeyDeletion leaves the key Disabled, as AWS.
    await s3Rejects(getBytes(srv.s3, BUCKET, 'err/pending'), 'KMS.DisabledException', 400);
    await kms.send(new EnableKeyCommand({ KeyId: k.id }));
    assert.equal((await getBytes(srv.s3, BUCKET, 'err/pending')).body.toString(), 'keep me');
  });
});

describe('the separate permission to use a KMS key', () => {
  test('a user with s3:* whom the key policy does not admit: 403 AccessDenied, nothing stored; a user it names may', async () => {
    const k = await createKey(kms, {
      policy: {
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Root', Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' },
          { Sid: 'Erin', Effect: 'Allow', Principal: { AWS: userArn(erin) }, Action: ['kms:GenerateDataKey', 'kms:Decrypt'], Resource: '*' },
        ],
      },
    });
    const blobsBefore = blobFiles(srv.dataDir).length;
    await s3Rejects(put({ Key: 'perm/dave', Body: randomBytes(100_000), ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id }, as(dave)), 'AccessDenied', 403);
    await rejectsWith(head('perm/dave'), 'NotFound', 404);
    const listed = await srv.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'perm/' }));
    assert.equal(listed.KeyCount, 0);
    assert.equal(blobFiles(srv.dataDir).length, blobsBefore, 'no blob written');
    // Dave's S3 permissions are intact: SSE-S3 works.
    await put({ Key: 'perm/dave-s3', Body: 'fine', ServerSideEncryption: 'AES256' }, as(dave));

    const erinS3 = as(erin);
    const r = await put({ Key: 'perm/erin', Body: 'erin was here', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id }, erinS3);
    assert.equal(r.SSEKMSKeyId, k.arn);
    assert.equal((await getBytes(erinS3, BUCKET, 'perm/erin')).body.toString(), 'erin was here');
    // Dave can read the object's metadata (no KMS call) but not its data.
    assert.equal((await head('perm/erin', BUCKET, as(dave))).SSEKMSKeyId, k.arn);
    await s3Rejects(getBytes(as(dave), BUCKET, 'perm/erin'), 'AccessDenied', 403);
  });

  test('GenerateDataKey allowed but Decrypt explicitly denied: upload works, GET is 403, HEAD works, the root reads', async () => {
    const k = await createKey(kms, {
      policy: {
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Root', Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' },
          { Sid: 'FrankWrites', Effect: 'Allow', Principal: { AWS: userArn(frank) }, Action: 'kms:GenerateDataKey', Resource: '*' },
          { Sid: 'FrankNoDecrypt', Effect: 'Deny', Principal: { AWS: userArn(frank) }, Action: 'kms:Decrypt', Resource: '*' },
        ],
      },
    });
    const f = as(frank);
    const r = await put({ Key: 'perm/frank', Body: 'write only', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id, ChecksumAlgorithm: 'SHA256' }, f);
    assert.equal(r.SSEKMSKeyId, k.arn);
    assert.ok(r.ChecksumSHA256);
    await s3Rejects(getBytes(f, BUCKET, 'perm/frank'), 'AccessDenied', 403);
    await s3Rejects(getBytes(f, BUCKET, 'perm/frank', 'bytes=0-1'), 'AccessDenied', 403);
    const h = await head('perm/frank', BUCKET, f);
    assert.equal(h.ServerSideEncryption, 'aws:kms');
    assert.equal(h.SSEKMSKeyId, k.arn);
    assert.equal((await getBytes(srv.s3, BUCKET, 'perm/frank')).body.toString(), 'write only');
    // A copy reads the source: Decrypt again.
    await s3Rejects(f.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'perm/frank-copy', CopySource: `${BUCKET}/perm/frank`, ServerSideEncryption: 'AES256' })), 'AccessDenied', 403);
    // A multipart upload needs kms:Decrypt for its parts (AWS: GenerateDataKey and Decrypt).
    const mpu = await f.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'perm/frank-mpu', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id }));
    assert.equal(mpu.SSEKMSKeyId, k.arn);
    await s3Rejects(f.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'perm/frank-mpu', UploadId: mpu.UploadId, PartNumber: 1, Body: 'part' })), 'AccessDenied', 403);
    // The checksum of an SSE-KMS object is stored encrypted: asking for it needs kms:Decrypt (AWS HeadObject, ChecksumMode).
    await assert.rejects(f.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'perm/frank', ChecksumMode: 'ENABLED' })), (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 403);
    const raw = await rawRequest(port, { method: 'HEAD', path: `/${BUCKET}/perm/frank`, headers: { 'x-amz-checksum-mode': 'ENABLED' }, accessKey: frank.accessKeyId, secret: frank.secretAccessKey });
    assertS3Error(raw, 'AccessDenied', 403, undefined, 'HEAD');
    assert.equal(raw.headers['x-amz-checksum-sha256'], undefined);
    const rootHead = await srv.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'perm/frank', ChecksumMode: 'ENABLED' }));
    assert.equal(rootHead.ChecksumSHA256, r.ChecksumSHA256);
    // The refusal is in the audit trail as the user's denied Decrypt.
    const denied = await audit(srv, { principalArn: userArn(frank), eventName: 'Decrypt', errorCode: 'AccessDeniedException' });
    assert.ok(denied.length >= 1);
    assert.match(denied[0]!.errorMessage!, /explicit deny/);
  });

  test('kms:ViaService: a key usable only through S3 works through S3, not directly (AccessDeniedException)', async () => {
    const k = await createKey(kms, {
      policy: {
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Root', Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' },
          {
            Sid: 'GinaViaS3',
            Effect: 'Allow',
            Principal: { AWS: userArn(gina) },
            Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'],
            Resource: '*',
            Condition: { StringEquals: { 'kms:ViaService': `s3.${REGION}.amazonaws.com` } },
          },
        ],
      },
    });
    const g = as(gina);
    const r = await put({ Key: 'perm/gina', Body: 'via s3', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id }, g);
    assert.equal(r.SSEKMSKeyId, k.arn);
    assert.equal((await getBytes(g, BUCKET, 'perm/gina')).body.toString(), 'via s3');
    await rejectsKms(kmsAs(gina).send(new EncryptCommand({ KeyId: k.id, Plaintext: Buffer.from('direct') })), 'AccessDeniedException', 400, /kms:Encrypt/);
  });

  test('the AWS managed key is usable by any user allowed S3 (through S3 only)', async () => {
    const d = as(dave);
    const r = await put({ Key: 'perm/dave-managed', Body: 'managed', ServerSideEncryption: 'aws:kms' }, d);
    const { KeyMetadata: m } = await kms.send(new DescribeKeyCommand({ KeyId: 'alias/aws/s3' }));
    assert.equal(r.SSEKMSKeyId, m!.Arn);
    assert.equal((await getBytes(d, BUCKET, 'perm/dave-managed')).body.toString(), 'managed');
    await rejectsKms(kmsAs(dave).send(new EncryptCommand({ KeyId: 'alias/aws/s3', Plaintext: Buffer.from('direct') })), 'AccessDeniedException');
  });
});

describe('default bucket encryption', () => {
  const DB = 'sse-default';
  const config = (c: ServerSideEncryptionConfiguration) => srv.s3.send(new PutBucketEncryptionCommand({ Bucket: DB, ServerSideEncryptionConfiguration: c }));
  const getConfig = async (bucket = DB) => (await srv.s3.send(new GetBucketEncryptionCommand({ Bucket: bucket }))).ServerSideEncryptionConfiguration!.Rules!;

  before(async () => {
    await srv.s3.send(new CreateBucketCommand({ Bucket: DB }));
  });

  test('a fresh bucket answers AES256 with BucketKeyEnabled false', async () => {
    const rules = await getConfig();
    assert.equal(rules.length, 1);
    assert.equal(rules[0]!.ApplyServerSideEncryptionByDefault!.SSEAlgorithm, 'AES256');
    assert.equal(rules[0]!.ApplyServerSideEncryptionByDefault!.KMSMasterKeyID, undefined);
    assert.equal(rules[0]!.BucketKeyEnabled, false);
  });

  test('aws:kms with a customer key: header-less PutObject, CopyObject and CreateMultipartUpload use it; AES256 wins when asked', async () => {
    await config({ Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyB.arn } }] });
    const rules = await getConfig();
    assert.equal(rules[0]!.ApplyServerSideEncryptionByDefault!.SSEAlgorithm, 'aws:kms');
    assert.equal(rules[0]!.ApplyServerSideEncryptionByDefault!.KMSMasterKeyID, keyB.arn);
    assert.equal(rules[0]!.BucketKeyEnabled, false);

    const p = await srv.s3.send(new PutObjectCommand({ Bucket: DB, Key: 'plain-put', Body: 'default' }));
    assert.equal(p.ServerSideEncryption, 'aws:kms');
    assert.equal(p.SSEKMSKeyId, keyB.arn);
    assert.equal((await head('plain-put', DB)).SSEKMSKeyId, keyB.arn);
    assert.equal((await getBytes(srv.s3, DB, 'plain-put')).body.toString(), 'default');

    await put({ Key: 'copy-src', Body: 'copied', ServerSideEncryption: 'AES256' });
    const c = await srv.s3.send(new CopyObjectCommand({ Bucket: DB, Key: 'copied', CopySource: `${BUCKET}/copy-src` }));
    assert.equal(c.ServerSideEncryption, 'aws:kms');
    assert.equal(c.SSEKMSKeyId, keyB.arn);
    assert.equal((await head('copied', DB)).SSEKMSKeyId, keyB.arn);
    assert.equal((await getBytes(srv.s3, DB, 'copied')).body.toString(), 'copied');

    const m = await srv.s3.send(new CreateMultipartUploadCommand({ Bucket: DB, Key: 'mpu' }));
    assert.equal(m.ServerSideEncryption, 'aws:kms');
    assert.equal(m.SSEKMSKeyId, keyB.arn);
    const part = await srv.s3.send(new UploadPartCommand({ Bucket: DB, Key: 'mpu', UploadId: m.UploadId, PartNumber: 1, Body: 'only part' }));
    assert.equal(part.SSEKMSKeyId, keyB.arn);
    await srv.s3.send(new CompleteMultipartUploadCommand({ Bucket: DB, Key: 'mpu', UploadId: m.UploadId, MultipartUpload: { Parts: [{ ETag: part.ETag, PartNumber: 1 }] } }));
    assert.equal((await head('mpu', DB)).SSEKMSKeyId, keyB.arn);
    assert.equal((await getBytes(srv.s3, DB, 'mpu')).body.toString(), 'only part');

    const explicit = await srv.s3.send(new PutObjectCommand({ Bucket: DB, Key: 'explicit-aes', Body: 'x', ServerSideEncryption: 'AES256' }));
    assert.equal(explicit.ServerSideEncryption, 'AES256');
    assert.equal(explicit.SSEKMSKeyId, undefined);
    assert.equal((await head('explicit-aes', DB)).ServerSideEncryption, 'AES256');
    // An explicit aws:kms key beats the default key.
    const other = await srv.s3.send(new PutObjectCommand({ Bucket: DB, Key: 'explicit-a', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.id }));
    assert.equal(other.SSEKMSKeyId, keyA.arn);
  });

  test('copy in place with no headers is legal when the bucket has a configured default', async () => {
    await srv.s3.send(new PutObjectCommand({ Bucket: DB, Key: 'in-place', Body: 'in place', ServerSideEncryption: 'AES256' }));
    const c = await srv.s3.send(new CopyObjectCommand({ Bucket: DB, Key: 'in-place', CopySource: `${DB}/in-place` }));
    assert.equal(c.ServerSideEncryption, 'aws:kms');
    assert.equal(c.SSEKMSKeyId, keyB.arn);
    assert.equal((await head('in-place', DB)).SSEKMSKeyId, keyB.arn);
    assert.equal((await getBytes(srv.s3, DB, 'in-place')).body.toString(), 'in place');
  });

  test('aws:kms without a key id: the managed key', async () => {
    await config({ Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' } }] });
    const rules = await getConfig();
    assert.equal(rules[0]!.ApplyServerSideEncryptionByDefault!.SSEAlgorithm, 'aws:kms');
    assert.equal(rules[0]!.ApplyServerSideEncryptionByDefault!.KMSMasterKeyID, undefined);
    const p = await srv.s3.send(new PutObjectCommand({ Bucket: DB, Key: 'managed-default', Body: 'x' }));
    const { KeyMetadata: m } = await kms.send(new DescribeKeyCommand({ KeyId: 'alias/aws/s3' }));
    assert.equal(p.SSEKMSKeyId, m!.Arn);
  });

  test('DeleteBucketEncryption: back to AES256; header-less uploads are SSE-S3 again', async () => {
    await srv.s3.send(new DeleteBucketEncryptionCommand({ Bucket: DB }));
    const rules = await getConfig();
    assert.equal(rules[0]!.ApplyServerSideEncryptionByDefault!.SSEAlgorithm, 'AES256');
    assert.equal(rules[0]!.BucketKeyEnabled, false);
    const p = await srv.s3.send(new PutObjectCommand({ Bucket: DB, Key: 'after-delete', Body: 'x' }));
    assert.equal(p.ServerSideEncryption, 'AES256');
    assert.equal(p.SSEKMSKeyId, undefined);
    // Objects written under the old default stay SSE-KMS and readable.
    assert.equal((await head('plain-put', DB)).SSEKMSKeyId, keyB.arn);
    assert.equal((await getBytes(srv.s3, DB, 'plain-put')).body.toString(), 'default');
    // And a copy in place without headers is illegal again.
    await s3Rejects(srv.s3.send(new CopyObjectCommand({ Bucket: DB, Key: 'after-delete', CopySource: `${DB}/after-delete` })), 'InvalidRequest', 400);
  });

  test('validation: zero or two rules MalformedXML; AES256 with a KMSMasterKeyID InvalidArgument; a missing bucket NoSuchBucket', async () => {
    await s3Rejects(config({ Rules: [] }), 'MalformedXML', 400);
    await s3Rejects(
      config({ Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }, { ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' } }] }),
      'MalformedXML',
      400,
    );
    await s3Rejects(
      config({ Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256', KMSMasterKeyID: keyA.arn } }] }),
      'InvalidArgument',
      400,
      'a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse',
    );
    assert.equal((await getConfig())[0]!.ApplyServerSideEncryptionByDefault!.SSEAlgorithm, 'AES256', 'a refused configuration changes nothing');
    const cfg = { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' as const } }] };
    await s3Rejects(srv.s3.send(new PutBucketEncryptionCommand({ Bucket: 'no-such-bucket-here', ServerSideEncryptionConfiguration: cfg })), 'NoSuchBucket', 404);
    await s3Rejects(srv.s3.send(new GetBucketEncryptionCommand({ Bucket: 'no-such-bucket-here' })), 'NoSuchBucket', 404);
    await s3Rejects(srv.s3.send(new DeleteBucketEncryptionCommand({ Bucket: 'no-such-bucket-here' })), 'NoSuchBucket', 404);
  });

  test('a default naming a key that does not exist is accepted; uploads then fail with KMS.NotFoundException', async () => {
    await config({ Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: 'alias/not-there' } }] });
    await s3Rejects(srv.s3.send(new PutObjectCommand({ Bucket: DB, Key: 'bad-default', Body: 'x' })), 'KMS.NotFoundException', 400);
    await srv.s3.send(new DeleteBucketEncryptionCommand({ Bucket: DB }));
  });
});

describe('a bucket policy requiring one KMS key', () => {
  test('multipart uploads under that key pass every step (the key id recorded at CreateMultipartUpload counts for UploadPart and Complete); others are refused', async () => {
    const k = await createKey(kms);
    const other = await createKey(kms);
    const bucket = 'kms-policy-mp';
    await srv.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await srv.s3.send(
      new PutBucketPolicyCommand({
        Bucket: bucket,
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Sid: 'OnlyThisKey', Effect: 'Deny', Principal: '*', Action: 's3:PutObject', Resource: `arn:aws:s3:::${bucket}/*`, Condition: { StringNotEquals: { 's3:x-amz-server-side-encryption-aws-kms-key-id': k.arn } } },
          ],
        }),
      }),
    );
    const up = await srv.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mp', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.arn }));
    const body = randomBytes(5 * 1024 * 1024);
    const p1 = await srv.s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'mp', UploadId: up.UploadId, PartNumber: 1, Body: body }));
    const p2 = await srv.s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'mp', UploadId: up.UploadId, PartNumber: 2, Body: 'tail' }));
    await srv.s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'mp', UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] } }));
    assert.equal((await head('mp', bucket)).SSEKMSKeyId, k.arn);
    await s3Rejects(srv.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mp2', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: other.arn })), 'AccessDenied', 403);
    await s3Rejects(put({ Bucket: bucket, Key: 'single', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: other.arn }), 'AccessDenied', 403);
    await put({ Bucket: bucket, Key: 'single', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.arn });
  });
});

describe('Bucket Keys', () => {
  test('the Bucket Key header alone overrides the bucket default\'s setting', async () => {
    const k = await createKey(kms);
    for (const [bucket, defaultBk] of [['bk-hdr-on', true], ['bk-hdr-off', false]] as const) {
      await srv.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      await srv.s3.send(
        new PutBucketEncryptionCommand({ Bucket: bucket, ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: k.id }, BucketKeyEnabled: defaultBk }] } }),
      );
      const r = await srv.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'o', Body: 'x', BucketKeyEnabled: !defaultBk }));
      assert.equal(r.SSEKMSKeyId, k.arn);
      assert.equal(r.BucketKeyEnabled, !defaultBk ? true : undefined);
      const plain = await srv.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'p', Body: 'x' }));
      assert.equal(plain.BucketKeyEnabled, defaultBk ? true : undefined);
    }
  });

  test('a cached Bucket Key is used only under the request facts it was authorized with (aws:SecureTransport)', async () => {
    const account = srv.coffer.access.accountId;
    const k = await createKey(kms, {
      policy: {
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Admin', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' },
          { Sid: 'TlsOnly', Effect: 'Deny', Principal: '*', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
        ],
      },
    });
    await put({ Key: 'bk/tls', Body: 'tls only', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id, BucketKeyEnabled: true }, srv.s3s);
    await s3Rejects(getBytes(srv.s3, BUCKET, 'bk/tls'), 'AccessDenied', 403);
    assert.equal((await getBytes(srv.s3s, BUCKET, 'bk/tls')).body.toString(), 'tls only');
    // The Bucket Key is cached now, from the HTTPS read; plain HTTP is still refused.
    await s3Rejects(getBytes(srv.s3, BUCKET, 'bk/tls'), 'AccessDenied', 403);
    await s3Rejects(put({ Key: 'bk/tls2', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id, BucketKeyEnabled: true }), 'AccessDenied', 403);
  });

  test('a copy refused by the destination key leaks no file descriptor (the source stream is closed)', async () => {
    await put({ Key: 'fd/src', Body: randomBytes(4 * 1024 * 1024) });
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 30; i++) {
      await s3Rejects(
        srv.s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: `fd/dst${i}`, CopySource: `${BUCKET}/fd/src`, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: '0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b' })),
        'KMS.NotFoundException',
        400,
      );
    }
    assert.ok(fds() - before < 10, `open file descriptors grew from ${before} to ${fds()}`);
  });

  test('SSE-KMS parts and objects keep no plaintext MD5: part ETags are not the MD5, nor is any MD5 stored', async () => {
    const body = randomBytes(100_000);
    const md5 = createHash('md5').update(body).digest('hex');
    await put({ Key: 'nomd5/single', Body: body, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.id });
    const single = (await srv.coffer.stores.meta.getObject(BUCKET, 'nomd5/single'))!;
    assert.notEqual(single.streams[0]!.md5, md5);
    assert.notEqual(single.etag, md5);
    const up = await srv.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'nomd5/mp', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.id }));
    const part = await srv.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'nomd5/mp', UploadId: up.UploadId, PartNumber: 1, Body: body }));
    assert.notEqual(part.ETag, `"${md5}"`);
    await srv.s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: 'nomd5/mp', UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
    const mp = (await srv.coffer.stores.meta.getObject(BUCKET, 'nomd5/mp'))!;
    assert.notEqual(mp.streams[0]!.md5, md5);
    assert.ok((await getBytes(srv.s3, BUCKET, 'nomd5/mp')).body.equals(body));
  });

  test('PutObject with BucketKeyEnabled: the response and HEAD report it; GET works', async () => {
    const r = await put({ Key: 'bk/one', Body: 'bucket key', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.id, BucketKeyEnabled: true });
    assert.equal(r.BucketKeyEnabled, true);
    assert.equal(r.SSEKMSKeyId, keyA.arn);
    assert.deepEqual(unb64json(r.SSEKMSEncryptionContext), { 'aws:s3:arn': `arn:aws:s3:::${BUCKET}` }, 'a Bucket Key is bound to the bucket ARN');
    const h = await head('bk/one');
    assert.equal(h.BucketKeyEnabled, true);
    assert.equal(h.SSEKMSKeyId, keyA.arn);
    const g = await getBytes(srv.s3, BUCKET, 'bk/one');
    assert.equal(g.body.toString(), 'bucket key');
    assert.equal(g.out.BucketKeyEnabled, true);
    const off = await put({ Key: 'bk/off', Body: 'no bucket key', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA.id, BucketKeyEnabled: false });
    assert.equal(off.BucketKeyEnabled, undefined);
    assert.equal((await head('bk/off')).BucketKeyEnabled, undefined);
  });

  test('1,000 header-less uploads: fewer than 10 GenerateDataKey calls with the bucket default Bucket Key, 1,000 without (audit trail)', async () => {
    const N = 1000;
    const k = await createKey(kms);
    for (const [bucket, bucketKey] of [['bk-on', true], ['bk-off', false]] as const) {
      await srv.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      await srv.s3.send(
        new PutBucketEncryptionCommand({
          Bucket: bucket,
          ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: k.id }, BucketKeyEnabled: bucketKey }] },
        }),
      );
      const rules = (await srv.s3.send(new GetBucketEncryptionCommand({ Bucket: bucket }))).ServerSideEncryptionConfiguration!.Rules!;
      assert.equal(rules[0]!.BucketKeyEnabled, bucketKey);
      const since = await auditSeq(srv);
      // 25 at a time: concurrent uploads share one Bucket Key request.
      for (let start = 0; start < N; start += 25) {
        await Promise.all(
          Array.from({ length: 25 }, async (_, j) => {
            const i = start + j;
            const r = await srv.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `o${i}`, Body: `object ${i}` }));
            assert.equal(r.SSEKMSKeyId, k.arn);
            assert.equal(r.BucketKeyEnabled, bucketKey ? true : undefined);
          }),
        );
      }
      const calls = await audit(srv, { keyId: k.id, eventName: 'GenerateDataKey', afterSeq: since });
      if (bucketKey) assert.ok(calls.length >= 1 && calls.length < 10, `with Bucket Keys: ${calls.length} GenerateDataKey calls`);
      else assert.equal(calls.length, N, 'without Bucket Keys: one per object');
      for (const e of calls) {
        const ctx = (e.requestParameters as { encryptionContext: Record<string, string> }).encryptionContext;
        assert.deepEqual(Object.keys(ctx), ['aws:s3:arn']);
        if (bucketKey) assert.equal(ctx['aws:s3:arn'], `arn:aws:s3:::${bucket}`, 'a Bucket Key is bound to the bucket');
        else assert.match(ctx['aws:s3:arn']!, new RegExp(`^arn:aws:s3:::${bucket}/o\\d+$`));
      }
      // Reads: with Bucket Keys, one Decrypt serves them all.
      const readSince = await auditSeq(srv);
      for (let i = 0; i < 50; i += 7) assert.equal((await getBytes(srv.s3, bucket, `o${i}`)).body.toString(), `object ${i}`);
      const decrypts = await audit(srv, { keyId: k.id, eventName: 'Decrypt', afterSeq: readSince });
      if (bucketKey) assert.ok(decrypts.length <= 1, `${decrypts.length} Decrypt calls`);
      else assert.equal(decrypts.length, 8);
      assert.equal((await head('o3', bucket)).BucketKeyEnabled, bucketKey ? true : undefined);
    }
  });

  test('bucket-key objects are readable after clearBucketKeys(); disabling the key stops uploads and reads at once', async () => {
    const k = await createKey(kms);
    const w = (key: string) => put({ Key: key, Body: `${key} body`, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id, BucketKeyEnabled: true });
    await w('bk/d1');
    await w('bk/d2');
    assert.equal((await getBytes(srv.s3, BUCKET, 'bk/d1')).body.toString(), 'bk/d1 body');
    srv.coffer.encryption.clearBucketKeys();
    assert.equal((await getBytes(srv.s3, BUCKET, 'bk/d2')).body.toString(), 'bk/d2 body');
    // Both the write and the read bucket keys are cached now.
    await w('bk/d3');
    await kms.send(new DisableKeyCommand({ KeyId: k.id }));
    await s3Rejects(w('bk/d4'), 'KMS.DisabledException', 400, `${k.arn} is disabled.`);
    await s3Rejects(getBytes(srv.s3, BUCKET, 'bk/d1'), 'KMS.DisabledException', 400);
    await s3Rejects(getBytes(srv.s3, BUCKET, 'bk/d2'), 'KMS.DisabledException', 400);
    await rejectsWith(head('bk/d4'), 'NotFound', 404);
    await kms.send(new EnableKeyCommand({ KeyId: k.id }));
    for (const key of ['bk/d1', 'bk/d2', 'bk/d3']) assert.equal((await getBytes(srv.s3, BUCKET, key)).body.toString(), `${key} body`);
    await w('bk/d4');
  });

  test('objects written with a Bucket Key are readable after a server restart', async () => {
    const dataDir = tempDir();
    const cfg = { config: { accountId: ACCOUNT }, dataDir };
    let s = await startTestServer(cfg);
    const body = randomBytes(100_000);
    let k: { id: string; arn: string };
    {
      const kc = kmsClientFor(s.httpUrl);
      k = await createKey(kc);
      kc.destroy();
      await s.s3.send(new CreateBucketCommand({ Bucket: 'restart' }));
      await s.s3.send(new PutObjectCommand({ Bucket: 'restart', Key: 'big', Body: body, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id, BucketKeyEnabled: true }));
      await s.s3.send(new PutObjectCommand({ Bucket: 'restart', Key: 'small', Body: 'small', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id, BucketKeyEnabled: true }));
      await s.s3.send(new PutObjectCommand({ Bucket: 'restart', Key: 'plain-kms', Body: 'no bk', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id }));
      await s.stop();
    }
    s = await startTestServer(cfg);
    try {
      assert.ok((await getBytes(s.s3, 'restart', 'big')).body.equals(body));
      assert.equal((await getBytes(s.s3, 'restart', 'small')).body.toString(), 'small');
      assert.equal((await getBytes(s.s3, 'restart', 'plain-kms')).body.toString(), 'no bk');
      const h = await s.s3.send(new HeadObjectCommand({ Bucket: 'restart', Key: 'big' }));
      assert.equal(h.BucketKeyEnabled, true);
      assert.equal(h.SSEKMSKeyId, k.arn);
    } finally {
      await s.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('rotation', () => {
  test('RotateKeyOnDemand between two PUTs: both readable, and a Bucket Key object too', async () => {
    const k = await createKey(kms);
    await put({ Key: 'rot/before', Body: 'before rotation', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id });
    await put({ Key: 'rot/bk-before', Body: 'bk before', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id, BucketKeyEnabled: true });
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: k.id }));
    await put({ Key: 'rot/after', Body: 'after rotation', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id });
    srv.coffer.encryption.clearBucketKeys();
    await put({ Key: 'rot/bk-after', Body: 'bk after', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id, BucketKeyEnabled: true });
    srv.coffer.encryption.clearBucketKeys();
    for (const [key, text] of [['rot/before', 'before rotation'], ['rot/after', 'after rotation'], ['rot/bk-before', 'bk before'], ['rot/bk-after', 'bk after']]) {
      assert.equal((await getBytes(srv.s3, BUCKET, key!)).body.toString(), text, key);
      assert.equal((await head(key!)).SSEKMSKeyId, k.arn, 'the key ARN does not change with rotation');
    }
  });
});

describe('audit trail of S3 calls to the KMS', () => {
  test('each SSE-KMS upload is a GenerateDataKey event and each read a Decrypt event, as the user, via S3', async () => {
    const k = await createKey(kms);
    const a = as(ann);
    const since = await auditSeq(srv);
    await put({ Key: 'audit/one', Body: 'one', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id }, a);
    await put({ Key: 'audit/two', Body: 'two', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'fake-key-id' }, a).catch(() => undefined);
    await getBytes(a, BUCKET, 'audit/one');
    await getBytes(a, BUCKET, 'audit/one');
    const events = await audit(srv, { keyId: k.id, afterSeq: since });
    assert.deepEqual(
      events.map((e) => e.eventName),
      ['GenerateDataKey', 'Decrypt', 'Decrypt'],
    );
    const objectArn = `arn:aws:s3:::${BUCKET}/audit/one`;
    for (const e of events) {
      assert.equal(e.userIdentity.arn, userArn(ann));
      assert.equal(e.userIdentity.type, 'IAMUser');
      assert.equal(e.userIdentity.userName, 'ann');
      assert.equal(e.userIdentity.accessKeyId, ann.accessKeyId);
      assert.equal(e.userIdentity.invokedBy, 's3.amazonaws.com');
      assert.deepEqual((e.requestParameters as { encryptionContext: unknown }).encryptionContext, { 'aws:s3:arn': objectArn });
      assert.deepEqual(e.resources.map((r) => r.ARN), [k.arn]);
      assert.equal(e.errorCode, undefined);
      assert.equal(e.eventType, 'AwsApiCall');
    }
    assert.equal((events[0]!.requestParameters as { keySpec: string }).keySpec, 'AES_256');
    assert.equal((events[0]!.requestParameters as { keyId: string }).keyId, k.id, 'the key as the request named it');
    // The failed upload with an unknown key is recorded too, as ann's NotFoundException.
    const failed = await audit(srv, { principalArn: userArn(ann), eventName: 'GenerateDataKey', errorCode: 'NotFoundException', afterSeq: since });
    assert.equal(failed.length, 1);
    assert.equal((failed[0]!.requestParameters as { keyId: string }).keyId, 'fake-key-id');
    assert.equal(failed[0]!.userIdentity.invokedBy, 's3.amazonaws.com');
    // The object data never appears in the trail.
    assert.ok(!JSON.stringify(events).includes('"one"'));
  });

  test('a user without kms permission on a default-policy key: AccessDenied through S3, recorded as their denied call', async () => {
    const k = await createKey(kms);
    const since = await auditSeq(srv);
    await s3Rejects(put({ Key: 'audit/dave', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.arn }, as(dave)), 'AccessDenied', 403);
    const events = await audit(srv, { keyId: k.id, afterSeq: since });
    assert.equal(events.length, 1);
    assert.equal(events[0]!.eventName, 'GenerateDataKey');
    assert.equal(events[0]!.errorCode, 'AccessDeniedException');
    assert.equal(events[0]!.userIdentity.arn, userArn(dave));
    assert.equal(events[0]!.userIdentity.invokedBy, 's3.amazonaws.com');
  });
});

describe('crypto-shredding with an injected clock', () => {
  let clock = Date.now();
  let cs: TestServer;
  let ckms: KMSClient;
  const DAY = 86_400_000;

  before(async () => {
    cs = await startTestServer({ now: () => clock, config: { accountId: ACCOUNT } });
    ckms = kmsClientFor(cs.httpUrl);
    await cs.s3.send(new CreateBucketCommand({ Bucket: 'shred' }));
  });
  after(async () => {
    ckms?.destroy();
    await cs?.stop();
  });

  test('ScheduleKeyDeletion 7 days, 8 days later: GET fails for good (KMS.NotFoundException), DescribeKey NotFound, DeleteKey audited', async () => {
    const k = await createKey(ckms);
    const keep = await createKey(ckms);
    const big = randomBytes(200_000);
    await cs.s3.send(new PutObjectCommand({ Bucket: 'shred', Key: 'plain', Body: big, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id }));
    await cs.s3.send(new PutObjectCommand({ Bucket: 'shred', Key: 'bk', Body: 'bucket key', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id, BucketKeyEnabled: true }));
    await cs.s3.send(new PutObjectCommand({ Bucket: 'shred', Key: 'ctx', Body: 'ctx', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id, SSEKMSEncryptionContext: b64json({ x: 'y' }) }));
    await cs.s3.send(new PutObjectCommand({ Bucket: 'shred', Key: 'other-key', Body: 'survivor', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keep.id }));
    // Warm the read caches: the Bucket Key is cached for reads too.
    assert.equal((await getBytes(cs.s3, 'shred', 'bk')).body.toString(), 'bucket key');

    const s = await ckms.send(new ScheduleKeyDeletionCommand({ KeyId: k.id, PendingWindowInDays: 7 }));
    assert.equal(s.KeyState, 'PendingDeletion');
    assert.ok(Math.abs(s.DeletionDate!.getTime() - (clock + 7 * DAY)) < 1000, 'deleted 7 days after the (injected) now');
    await s3Rejects(getBytes(cs.s3, 'shred', 'plain'), 'KMS.KMSInvalidStateException', 400);

    clock += 6 * DAY;
    // Still pending on day 6.
    await s3Rejects(getBytes(cs.s3, 'shred', 'bk'), 'KMS.KMSInvalidStateException', 400, `${k.arn} is pending deletion.`);
    clock += 2 * DAY;

    const gone = `Key '${k.arn}' does not exist`;
    for (const key of ['plain', 'bk', 'ctx']) {
      await s3Rejects(getBytes(cs.s3, 'shred', key), 'KMS.NotFoundException', 400, gone);
      await s3Rejects(getBytes(cs.s3, 'shred', key), 'KMS.NotFoundException', 400, gone);
    }
    cs.coffer.encryption.clearBucketKeys();
    await s3Rejects(getBytes(cs.s3, 'shred', 'bk'), 'KMS.NotFoundException', 400, gone);
    await s3Rejects(getBytes(cs.s3, 'shred', 'plain', 'bytes=0-9'), 'KMS.NotFoundException', 400);
    // HEAD still shows the (now useless) object's metadata.
    assert.equal((await cs.s3.send(new HeadObjectCommand({ Bucket: 'shred', Key: 'plain' }))).SSEKMSKeyId, k.arn);
    await rejectsKms(ckms.send(new DescribeKeyCommand({ KeyId: k.id })), 'NotFoundException');
    await rejectsKms(ckms.send(new CancelKeyDeletionCommand({ KeyId: k.id })), 'NotFoundException');
    await s3Rejects(
      cs.s3.send(new PutObjectCommand({ Bucket: 'shred', Key: 'new', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id })),
      'KMS.NotFoundException',
      400,
    );
    // Objects under other keys are untouched.
    assert.equal((await getBytes(cs.s3, 'shred', 'other-key')).body.toString(), 'survivor');

    const deletions = await audit(cs, { keyId: k.id, eventName: 'DeleteKey' });
    assert.equal(deletions.length, 1, 'the deletion is recorded once');
    const d = deletions[0]!;
    assert.equal(d.eventType, 'AwsServiceEvent');
    assert.equal(d.userIdentity.invokedBy, 'kms.amazonaws.com');
    assert.deepEqual(d.resources.map((r) => r.ARN), [k.arn]);
    assert.equal(d.eventTime, new Date(clock).toISOString().replace(/\.\d{3}Z$/, 'Z'), 'at the (injected) time it happened');
  });

  test('the material of a key nobody touches again is destroyed when its window ends (server maintenance), and audited', async () => {
    const k = await createKey(ckms);
    await cs.s3.send(new PutObjectCommand({ Bucket: 'shred', Key: 'untouched', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id }));
    await ckms.send(new ScheduleKeyDeletionCommand({ KeyId: k.id, PendingWindowInDays: 7 }));
    assert.deepEqual(await cs.coffer.kms.maintain(), { deleted: 0, rotated: 0 }, 'nothing is due yet');
    assert.ok(await cs.coffer.stores.meta.getKmsMaterial(k.id, 1));
    clock += 7 * DAY + 1;
    // No request names the key: the periodic maintenance (run here by hand) destroys it.
    assert.deepEqual(await cs.coffer.kms.maintain(), { deleted: 1, rotated: 0 });
    assert.equal(await cs.coffer.stores.meta.getKmsKey(k.id), undefined);
    assert.equal(await cs.coffer.stores.meta.getKmsMaterial(k.id, 1), undefined, 'the material is gone from the store');
    assert.equal((await audit(cs, { keyId: k.id, eventName: 'DeleteKey' })).length, 1);
    await s3Rejects(getBytes(cs.s3, 'shred', 'untouched'), 'KMS.NotFoundException', 400);
  });

  test('automatic rotation falls due on the injected clock: maintenance rotates, old and new objects read', async () => {
    const k = await createKey(ckms);
    await ckms.send(new EnableKeyRotationCommand({ KeyId: k.id, RotationPeriodInDays: 90 }));
    await cs.s3.send(new PutObjectCommand({ Bucket: 'shred', Key: 'before-rotation', Body: 'old', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id }));
    clock += 91 * DAY;
    const due = await cs.coffer.kms.maintain();
    assert.ok(due.rotated >= 1, 'the key rotated');
    const rotations = await ckms.send(new ListKeyRotationsCommand({ KeyId: k.id }));
    assert.equal(rotations.Rotations?.[0]?.RotationType, 'AUTOMATIC');
    await cs.s3.send(new PutObjectCommand({ Bucket: 'shred', Key: 'after-rotation', Body: 'new', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.id }));
    assert.equal((await getBytes(cs.s3, 'shred', 'before-rotation')).body.toString(), 'old');
    assert.equal((await getBytes(cs.s3, 'shred', 'after-rotation')).body.toString(), 'new');
  });
});
