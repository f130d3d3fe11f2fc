// The seed scenario of every S3 security guide, with real clients: a bucket policy that denies
// s3:PutObject when s3:x-amz-server-side-encryption is absent (Null), another with
// StringNotEquals ["AES256", "aws:kms"], and AWS's documented pair of both. An upload that asks
// for AES256 succeeds, one without the header gets 403 AccessDenied, one with a wrong value is
// refused: for PutObject, CopyObject and multipart uploads, through @aws-sdk/client-s3 (and
// lib-storage's managed upload) and the AWS CLI v2 (aws s3 cp of a 20 MiB file, aws s3api).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketPolicyCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { awsCliOver } from '../helpers/aws-cli.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/coffer.ts';
import { rejectsWith } from '../helpers/identities.ts';

const BUCKET = 'sse-required';

const deny = (sid: string, condition: Record<string, unknown>) => ({
  Sid: sid,
  Effect: 'Deny',
  Principal: '*',
  Action: 's3:PutObject',
  Resource: `arn:aws:s3:::${BUCKET}/*`,
  Condition: condition,
});
const NULL_POLICY = { Version: '2012-10-17', Statement: [deny('DenyUnEncryptedObjectUploads', { Null: { 's3:x-amz-server-side-encryption': 'true' } })] };
const NOT_EQUALS_POLICY = {
  Version: '2012-10-17',
  Statement: [deny('DenyIncorrectEncryptionHeader', { StringNotEquals: { 's3:x-amz-server-side-encryption': ['AES256', 'aws:kms'] } })],
};
/** AWS's documented example: both statements. */
const AWS_EXAMPLE = { Version: '2012-10-17', Id: 'PutObjectPolicy', Statement: [...NOT_EQUALS_POLICY.Statement, ...NULL_POLICY.Statement] };

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
  await srv.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'source', Body: 'the copy source' }));
});
after(async () => {
  await srv?.stop();
});

const setPolicy = (p: unknown) => srv.s3.send(new PutBucketPolicyCommand({ Bucket: BUCKET, Policy: JSON.stringify(p) }));
const clearPolicy = () => srv.s3.send(new DeleteBucketPolicyCommand({ Bucket: BUCKET }));
const exists = async (key: string) => {
  try {
    await srv.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    return true;
  } catch {
    return false;
  }
};

const PART = Buffer.alloc(5 * 1024 * 1024, 0x61);

async function multipart(key: string, sse?: string): Promise<void> {
  const up = await srv.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ...(sse ? { ServerSideEncryption: sse as ServerSideEncryption } : {}) }));
  const p1 = await srv.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: up.UploadId, PartNumber: 1, Body: PART }));
  const p2 = await srv.s3.send(new UploadPartCopyCommand({ Bucket: BUCKET, Key: key, UploadId: up.UploadId, PartNumber: 2, CopySource: `${BUCKET}/source` }));
  await srv.s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: BUCKET,
      Key: key,
      UploadId: up.UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag! }, { PartNumber: 2, ETag: p2.CopyPartResult!.ETag! }] },
    }),
  );
}

for (const [name, policy, wrongValueError] of [
  ['Null', NULL_POLICY, ['InvalidArgument', 400]],
  ['StringNotEquals', NOT_EQUALS_POLICY, ['AccessDenied', 403]],
  ['both (the AWS example)', AWS_EXAMPLE, ['AccessDenied', 403]],
] as const) {
  describe(`@aws-sdk/client-s3, policy ${name}`, () => {
    const tag = name.split(' ')[0]!.toLowerCase();
    before(() => setPolicy(policy));
    after(() => clearPolicy());

    test('PutObject: AES256 succeeds, no header → 403 AccessDenied, a wrong value is refused', async () => {
      const ok = await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${tag}/put-aes`, Body: 'x', ServerSideEncryption: 'AES256' }));
      assert.equal(ok.ServerSideEncryption, 'AES256');
      await rejectsWith(srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${tag}/put-none`, Body: 'x' })), 'AccessDenied', 403);
      await rejectsWith(
        srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${tag}/put-wrong`, Body: 'x', ServerSideEncryption: 'AES128' as ServerSideEncryption })),
        wrongValueError[0], wrongValueError[1],
      );
      assert.equal(await exists(`${tag}/put-aes`), true);
      assert.equal(await exists(`${tag}/put-none`), false);
      assert.equal(await exists(`${tag}/put-wrong`), false);
    });

    test('CopyObject: AES256 succeeds, no header → 403 AccessDenied, a wrong value is refused', async () => {
      await srv.s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: `${tag}/copy-aes`, CopySource: `${BUCKET}/source`, ServerSideEncryption: 'AES256' }));
      const body = await (await srv.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${tag}/copy-aes` }))).Body!.transformToString();
      assert.equal(body, 'the copy source');
      await rejectsWith(srv.s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: `${tag}/copy-none`, CopySource: `${BUCKET}/source` })), 'AccessDenied', 403);
      await rejectsWith(
        srv.s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: `${tag}/copy-wrong`, CopySource: `${BUCKET}/source`, ServerSideEncryption: 'AES128' as ServerSideEncryption })),
        wrongValueError[0], wrongValueError[1],
      );
      assert.equal(await exists(`${tag}/copy-none`), false);
    });

    test('multipart: AES256 at CreateMultipartUpload carries through UploadPart, UploadPartCopy and Complete; no header → 403', async () => {
      await multipart(`${tag}/mp-aes`, 'AES256');
      const head = await srv.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${tag}/mp-aes` }));
      assert.equal(head.ContentLength, PART.length + 'the copy source'.length);
      await rejectsWith(multipart(`${tag}/mp-none`), 'AccessDenied', 403);
      await rejectsWith(multipart(`${tag}/mp-wrong`, 'AES128'), wrongValueError[0], wrongValueError[1]);
      assert.equal(await exists(`${tag}/mp-none`), false);
    });

    test('lib-storage managed upload (12 MiB): with ServerSideEncryption succeeds, without is denied', async () => {
      const body = randomBytes(12 * 1024 * 1024);
      await new Upload({ client: srv.s3, params: { Bucket: BUCKET, Key: `${tag}/managed-aes`, Body: body, ServerSideEncryption: 'AES256' } }).done();
      assert.equal((await srv.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${tag}/managed-aes` }))).ContentLength, body.length);
      await rejectsWith(new Upload({ client: srv.s3, params: { Bucket: BUCKET, Key: `${tag}/managed-none`, Body: body } }).done(), 'AccessDenied', 403);
    });
  });
}

describe('multipart steps are judged by the SSE header recorded at CreateMultipartUpload', () => {
  test('an upload started without the header before the policy cannot go on; one started with it can', async () => {
    const bare = await srv.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'early/bare' }));
    const withSse = await srv.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'early/sse', ServerSideEncryption: 'AES256' }));
    await setPolicy(NULL_POLICY);
    try {
      // UploadPart requests never carry the header; what CreateMultipartUpload asked for counts.
      await rejectsWith(srv.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'early/bare', UploadId: bare.UploadId, PartNumber: 1, Body: 'x' })), 'AccessDenied', 403);
      await rejectsWith(
        srv.s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: 'early/bare', UploadId: bare.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"x"' }] } })),
        'AccessDenied',
        403,
      );
      const p = await srv.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'early/sse', UploadId: withSse.UploadId, PartNumber: 1, Body: 'y' }));
      await srv.s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: 'early/sse', UploadId: withSse.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p.ETag! }] } }));
      assert.equal(await exists('early/sse'), true);
    } finally {
      await clearPolicy();
    }
  });
});

const CLI = '/usr/bin/aws';
if (process.env.CI && !existsSync(CLI)) throw new Error('CI must provide the AWS CLI v2 (/usr/bin/aws)');

describe('AWS CLI v2, the AWS example policy', { skip: existsSync(CLI) ? false : 'no /usr/bin/aws' }, () => {
  let work: string;
  let big: string;
  let small: string;
  before(async () => {
    work = tempDir('coffer-sse-cli-');
    big = join(work, 'big.bin');
    small = join(work, 'small.bin');
    writeFileSync(big, randomBytes(20 * 1024 * 1024 + 3)); // multipart in the CLI (8 MiB threshold)
    writeFileSync(small, randomBytes(1000));
    await setPolicy(AWS_EXAMPLE);
  });
  after(() => clearPolicy());

  for (const transport of ['http', 'https'] as const) {
    const aws = awsCliOver(() => srv, transport, { cli: CLI, home: () => work });

    test(`over ${transport}: aws s3 cp of 20 MiB with --sse AES256 succeeds, without it AccessDenied`, async () => {
      await aws('s3', 'cp', big, `s3://${BUCKET}/cli-${transport}/big-sse`, '--sse', 'AES256');
      const head = JSON.parse(await aws('s3api', 'head-object', '--bucket', BUCKET, '--key', `cli-${transport}/big-sse`));
      assert.equal(head.ContentLength, 20 * 1024 * 1024 + 3);
      assert.match(head.ETag, /-\d+"$/, 'a multipart upload');
      await assert.rejects(aws('s3', 'cp', big, `s3://${BUCKET}/cli-${transport}/big-none`), /AccessDenied.*CreateMultipartUpload|CreateMultipartUpload.*AccessDenied/s);
      await assert.rejects(aws('s3', 'cp', small, `s3://${BUCKET}/cli-${transport}/small-none`), /AccessDenied/);
      assert.equal(await exists(`cli-${transport}/big-none`), false);
    });

    test(`over ${transport}: aws s3api put-object with AES256 succeeds; without, or with a wrong value, AccessDenied`, async () => {
      const put = JSON.parse(await aws('s3api', 'put-object', '--bucket', BUCKET, '--key', `cli-${transport}/api-sse`, '--body', small, '--server-side-encryption', 'AES256'));
      assert.equal(put.ServerSideEncryption, 'AES256');
      await assert.rejects(aws('s3api', 'put-object', '--bucket', BUCKET, '--key', `cli-${transport}/api-none`, '--body', small), /AccessDenied/);
      await assert.rejects(aws('s3api', 'put-object', '--bucket', BUCKET, '--key', `cli-${transport}/api-wrong`, '--body', small, '--server-side-encryption', 'AES128'), /AccessDenied/);
      assert.equal(await exists(`cli-${transport}/api-none`), false);
      assert.equal(await exists(`cli-${transport}/api-wrong`), false);
    });

    test(`over ${transport}: copies (aws s3 cp s3→s3, s3api copy-object) need the header too`, async () => {
      await aws('s3', 'cp', `s3://${BUCKET}/source`, `s3://${BUCKET}/cli-${transport}/copy-sse`, '--sse', 'AES256');
      await assert.rejects(aws('s3', 'cp', `s3://${BUCKET}/source`, `s3://${BUCKET}/cli-${transport}/copy-none`), /AccessDenied/);
      await aws('s3api', 'copy-object', '--bucket', BUCKET, '--key', `cli-${transport}/copy-api`, '--copy-source', `${BUCKET}/source`, '--server-side-encryption', 'AES256');
      await assert.rejects(aws('s3api', 'copy-object', '--bucket', BUCKET, '--key', `cli-${transport}/copy-api-none`, '--copy-source', `${BUCKET}/source`), /AccessDenied/);
      assert.equal(await exists(`cli-${transport}/copy-sse`), true);
      assert.equal(await exists(`cli-${transport}/copy-none`), false);
    });
  }
});
