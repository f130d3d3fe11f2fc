// SSE-KMS with the AWS CLI v2, unmodified, over HTTP and HTTPS (--ca-bundle): aws s3 cp with
// --sse aws:kms --sse-kms-key-id (a small file and a 20 MiB one that goes multipart), head-object
// naming the key ARN, downloads to stdout and to a file, s3api put-object / get-object with
// SSE-KMS, the managed key and an encryption context, put/get/delete-bucket-encryption with
// header-less uploads following the default, copies between keys with --sse aws:kms, and the
// KMS errors as the CLI reports them.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateAliasCommand, CreateKeyCommand, DescribeKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { awsCliOver } from '../helpers/aws-cli.ts';
import { kmsClientFor, startTestServer, tempDir, type TestServer } from '../helpers/coffer.ts';

const CLI = '/usr/bin/aws';
if (process.env.CI && !existsSync(CLI)) throw new Error('CI must provide the AWS CLI v2 (/usr/bin/aws)');

let srv: TestServer;
let kms: KMSClient;
let work: string;
before(async () => {
  srv = await startTestServer();
  kms = kmsClientFor(srv.httpUrl);
  work = tempDir('coffer-sse-kms-cli-');
});
after(async () => {
  kms?.destroy();
  await srv?.stop();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface HeadOut {
  ServerSideEncryption?: string;
  SSEKMSKeyId?: string;
  BucketKeyEnabled?: boolean;
  ETag?: string;
  ContentLength?: number;
}

// The two transports run side by side (each one's steps in order): the CLI starts slowly.
describe('aws-cli v2 SSE-KMS', { concurrency: true, skip: existsSync(CLI) ? false : 'no AWS CLI v2 at /usr/bin/aws' }, () => {
  for (const transport of ['http', 'https'] as const) {
    describe(`over ${transport}`, { concurrency: 1 }, () => {
      const bucket = `kms-cli-${transport}`;
      const alias = `alias/cli-${transport}`;
      let key: { id: string; arn: string };
      let key2: { id: string; arn: string };
      let dir: string;
      const aws = awsCliOver(() => srv, transport, { cli: CLI, home: () => work });
      const headObject = async (k: string) => JSON.parse(await aws('s3api', 'head-object', '--bucket', bucket, '--key', k)) as HeadOut;
      const small = randomBytes(4321);
      const big = randomBytes(20 * 1024 * 1024 + 5); // above the CLI's 8 MiB multipart threshold
      const mid = randomBytes(9 * 1024 * 1024 + 3); // just above it: 2 parts

      before(async () => {
        const a = await kms.send(new CreateKeyCommand({ Description: `cli ${transport} A` }));
        const b = await kms.send(new CreateKeyCommand({ Description: `cli ${transport} B` }));
        key = { id: a.KeyMetadata!.KeyId!, arn: a.KeyMetadata!.Arn! };
        key2 = { id: b.KeyMetadata!.KeyId!, arn: b.KeyMetadata!.Arn! };
        await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.id }));
        dir = join(work, bucket, 'files');
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'small.bin'), small);
        writeFileSync(join(dir, 'big.bin'), big);
        writeFileSync(join(dir, 'text.txt'), 'hello from the aws cli, encrypted under a KMS key\n');
        writeFileSync(join(dir, '..', 'mid.bin'), mid);
        await aws('s3', 'mb', `s3://${bucket}`);
      });

      test('s3 cp --sse aws:kms --sse-kms-key-id <alias>: small and multipart; head-object names the key ARN; downloads round-trip', async () => {
        // One `aws s3 cp --recursive` uploads the three files (the 20 MiB one multipart).
        const out = await aws('s3', 'cp', dir, `s3://${bucket}/up/`, '--recursive', '--sse', 'aws:kms', '--sse-kms-key-id', alias);
        assert.equal(out.match(/upload:/g)?.length, 3, out);
        const [smallHead, bigHead] = await Promise.all([headObject('up/small.bin'), headObject('up/big.bin')]);
        for (const h of [smallHead, bigHead]) {
          assert.equal(h.ServerSideEncryption, 'aws:kms');
          assert.equal(h.SSEKMSKeyId, key.arn);
        }
        assert.match(bigHead.ETag!, /-\d+"$/, 'the 20 MiB file went multipart');
        assert.equal(bigHead.ContentLength, big.length);
        assert.notEqual(smallHead.ETag, `"${createHash('md5').update(small).digest('hex')}"`, 'not the MD5');
        // A single-file upload too.
        await aws('s3', 'cp', join(dir, 'small.bin'), `s3://${bucket}/up/single.bin`, '--sse', 'aws:kms', '--sse-kms-key-id', key.arn);

        const [text] = await Promise.all([
          aws('s3', 'cp', `s3://${bucket}/up/text.txt`, '-'),
          aws('s3', 'cp', `s3://${bucket}/up/big.bin`, join(dir, '..', 'big.out')),
          aws('s3', 'cp', `s3://${bucket}/up/single.bin`, join(dir, '..', 'single.out')),
        ]);
        assert.equal(text, 'hello from the aws cli, encrypted under a KMS key\n');
        assert.equal(sha(readFileSync(join(dir, '..', 'big.out'))), sha(big));
        assert.equal(sha(readFileSync(join(dir, '..', 'single.out'))), sha(small));
      });

      test('s3api get-object --range across a segment boundary and into the second part of a multipart object', async () => {
        for (const [k, body, from, to] of [
          ['up/small.bin', small, 4000, 4320],
          ['up/big.bin', big, 65530, 65545],
          ['up/big.bin', big, 8 * 1024 * 1024 - 3, 8 * 1024 * 1024 + 2],
        ] as const) {
          const out = join(dir, '..', `range-${from}.out`);
          const r = JSON.parse(await aws('s3api', 'get-object', '--bucket', bucket, '--key', k, '--range', `bytes=${from}-${to}`, out)) as { ContentRange?: string; ServerSideEncryption?: string };
          assert.equal(r.ContentRange, `bytes ${from}-${to}/${body.length}`);
          assert.equal(r.ServerSideEncryption, 'aws:kms');
          assert.ok(readFileSync(out).equals(body.subarray(from, to + 1)), `${k} ${from}-${to}`);
        }
      });

      test('s3api put-object / get-object with --server-side-encryption aws:kms (customer key, managed key, context)', async () => {
        const put = JSON.parse(
          await aws('s3api', 'put-object', '--bucket', bucket, '--key', 'api/customer', '--body', join(dir, 'small.bin'), '--server-side-encryption', 'aws:kms', '--ssekms-key-id', key.id),
        ) as HeadOut & { SSEKMSEncryptionContext?: string };
        assert.equal(put.ServerSideEncryption, 'aws:kms');
        assert.equal(put.SSEKMSKeyId, key.arn);
        const got = JSON.parse(await aws('s3api', 'get-object', '--bucket', bucket, '--key', 'api/customer', join(dir, '..', 'api-customer.out'))) as HeadOut & Record<string, unknown>;
        assert.equal(got.ServerSideEncryption, 'aws:kms');
        assert.equal(got.SSEKMSKeyId, key.arn);
        assert.equal(got.SSEKMSEncryptionContext, undefined, 'GET never returns the context');
        assert.equal(sha(readFileSync(join(dir, '..', 'api-customer.out'))), sha(small));

        const managed = JSON.parse(await aws('s3api', 'put-object', '--bucket', bucket, '--key', 'api/managed', '--body', join(dir, 'text.txt'), '--server-side-encryption', 'aws:kms')) as HeadOut;
        const { KeyMetadata: m } = await kms.send(new DescribeKeyCommand({ KeyId: 'alias/aws/s3' }));
        assert.equal(m!.KeyManager, 'AWS');
        assert.equal(managed.SSEKMSKeyId, m!.Arn);

        const ctx = Buffer.from(JSON.stringify({ app: 'cli-test' })).toString('base64');
        const withCtx = JSON.parse(
          await aws('s3api', 'put-object', '--bucket', bucket, '--key', 'api/ctx', '--body', join(dir, 'text.txt'), '--server-side-encryption', 'aws:kms', '--ssekms-key-id', alias, '--ssekms-encryption-context', ctx),
        ) as { SSEKMSEncryptionContext?: string; SSEKMSKeyId?: string };
        assert.equal(withCtx.SSEKMSKeyId, key.arn);
        assert.deepEqual(JSON.parse(Buffer.from(withCtx.SSEKMSEncryptionContext!, 'base64').toString()), { app: 'cli-test', 'aws:s3:arn': `arn:aws:s3:::${bucket}/api/ctx` });
        await aws('s3api', 'get-object', '--bucket', bucket, '--key', 'api/ctx', join(dir, '..', 'api-ctx.out'));
        assert.equal(readFileSync(join(dir, '..', 'api-ctx.out'), 'utf8'), readFileSync(join(dir, 'text.txt'), 'utf8'));

        const bk = JSON.parse(
          await aws('s3api', 'put-object', '--bucket', bucket, '--key', 'api/bk', '--body', join(dir, 'text.txt'), '--server-side-encryption', 'aws:kms', '--ssekms-key-id', key.arn, '--bucket-key-enabled'),
        ) as HeadOut;
        assert.equal(bk.BucketKeyEnabled, true);
      });

      test('KMS errors as the CLI shows them: unknown key, key id without aws:kms', async () => {
        await assert.rejects(
          aws('s3api', 'put-object', '--bucket', bucket, '--key', 'api/fake', '--body', join(dir, 'text.txt'), '--server-side-encryption', 'aws:kms', '--ssekms-key-id', 'fake-key-id'),
          /KMS\.NotFoundException.*Invalid keyId 'fake-key-id'/s,
        );
        await assert.rejects(
          aws('s3api', 'put-object', '--bucket', bucket, '--key', 'api/fake', '--body', join(dir, 'text.txt'), '--ssekms-key-id', key.id),
          /InvalidArgument.*requires HTTP header x-amz-server-side-encryption : aws:kms/s,
        );
      });

      test('put-bucket-encryption / get-bucket-encryption / delete-bucket-encryption; header-less uploads follow the default', async () => {
        const fresh = JSON.parse(await aws('s3api', 'get-bucket-encryption', '--bucket', bucket)) as {
          ServerSideEncryptionConfiguration: { Rules: { ApplyServerSideEncryptionByDefault: { SSEAlgorithm: string; KMSMasterKeyID?: string }; BucketKeyEnabled: boolean }[] };
        };
        assert.equal(fresh.ServerSideEncryptionConfiguration.Rules[0]!.ApplyServerSideEncryptionByDefault.SSEAlgorithm, 'AES256');
        assert.equal(fresh.ServerSideEncryptionConfiguration.Rules[0]!.BucketKeyEnabled, false);

        const cfg = { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: key2.arn }, BucketKeyEnabled: true }] };
        await aws('s3api', 'put-bucket-encryption', '--bucket', bucket, '--server-side-encryption-configuration', JSON.stringify(cfg));
        const got = JSON.parse(await aws('s3api', 'get-bucket-encryption', '--bucket', bucket)) as typeof fresh;
        assert.deepEqual(got.ServerSideEncryptionConfiguration.Rules, cfg.Rules);

        // Header-less uploads (a PUT and a multipart upload), and one asking for AES256, which wins.
        await Promise.all([
          aws('s3', 'cp', join(dir, 'small.bin'), `s3://${bucket}/default/small.bin`),
          aws('s3', 'cp', join(dir, '..', 'mid.bin'), `s3://${bucket}/default/mid.bin`),
          aws('s3', 'cp', join(dir, 'text.txt'), `s3://${bucket}/default/aes.txt`, '--sse', 'AES256'),
        ]);
        const heads = await Promise.all(['small.bin', 'mid.bin', 'aes.txt'].map((f) => headObject(`default/${f}`)));
        assert.match(heads[1]!.ETag!, /-2"$/, 'a multipart upload under the default');
        for (const h of heads.slice(0, 2)) {
          assert.equal(h.ServerSideEncryption, 'aws:kms');
          assert.equal(h.SSEKMSKeyId, key2.arn);
          assert.equal(h.BucketKeyEnabled, true);
        }
        assert.equal(heads[2]!.ServerSideEncryption, 'AES256');
        assert.equal(heads[2]!.SSEKMSKeyId, undefined);

        await aws('s3api', 'delete-bucket-encryption', '--bucket', bucket);
        const after = JSON.parse(await aws('s3api', 'get-bucket-encryption', '--bucket', bucket)) as typeof fresh;
        assert.equal(after.ServerSideEncryptionConfiguration.Rules[0]!.ApplyServerSideEncryptionByDefault.SSEAlgorithm, 'AES256');
        assert.equal(after.ServerSideEncryptionConfiguration.Rules[0]!.ApplyServerSideEncryptionByDefault.KMSMasterKeyID, undefined);
        await aws('s3', 'cp', join(dir, 'small.bin'), `s3://${bucket}/default/after.bin`);
        const h = await headObject('default/after.bin');
        assert.equal(h.ServerSideEncryption, 'AES256');
        assert.equal(h.SSEKMSKeyId, undefined);

        await assert.rejects(
          aws('s3api', 'put-bucket-encryption', '--bucket', bucket, '--server-side-encryption-configuration', JSON.stringify({ Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256', KMSMasterKeyID: key.arn } }] })),
          /InvalidArgument.*a KMSMasterKeyID is not applicable/s,
        );
      });

      test('s3 cp between keys with --sse aws:kms (single and multipart copy) re-encrypts under the named key', async () => {
        // The big one is a multipart copy (UploadPartCopy). The CLI's default --copy-props also
        // copies tags (GetObjectTagging), which Coffer does not implement (docs/s3-compatibility.md).
        await Promise.all([
          aws('s3', 'cp', `s3://${bucket}/up/small.bin`, `s3://${bucket}/copied/small.bin`, '--sse', 'aws:kms', '--sse-kms-key-id', key2.id),
          aws('s3', 'cp', `s3://${bucket}/up/big.bin`, `s3://${bucket}/copied/big.bin`, '--sse', 'aws:kms', '--sse-kms-key-id', key2.id, '--copy-props', 'metadata-directive'),
          aws('s3', 'cp', `s3://${bucket}/up/single.bin`, `s3://${bucket}/copied/small-aes.bin`, '--sse', 'AES256'),
        ]);
        const [hs, hb, ha] = await Promise.all([headObject('copied/small.bin'), headObject('copied/big.bin'), headObject('copied/small-aes.bin')]);
        for (const [h, size] of [[hs, small.length], [hb, big.length]] as const) {
          assert.equal(h.ServerSideEncryption, 'aws:kms');
          assert.equal(h.SSEKMSKeyId, key2.arn);
          assert.equal(h.ContentLength, size);
        }
        assert.match(hb.ETag!, /-\d+"$/, 'a multipart copy');
        assert.equal(ha.ServerSideEncryption, 'AES256', 'SSE-KMS → SSE-S3');
        assert.equal(ha.SSEKMSKeyId, undefined);
        await Promise.all([
          aws('s3', 'cp', `s3://${bucket}/copied/big.bin`, join(dir, '..', 'copied-big.out')),
          aws('s3', 'cp', `s3://${bucket}/copied/small.bin`, join(dir, '..', 'copied-small.out')),
        ]);
        assert.equal(sha(readFileSync(join(dir, '..', 'copied-big.out'))), sha(big));
        assert.equal(sha(readFileSync(join(dir, '..', 'copied-small.out'))), sha(small));
      });
    });
  }
});
