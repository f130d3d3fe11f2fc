// The AWS CLI, unmodified, against the real server over HTTP and over HTTPS (trusting the
// generated CA through --ca-bundle): aws s3 mb / cp / ls / sync / rm and aws s3api calls.
// Runs with every CLI found: Debian's awscli (v2, installed by .ci/run) and a pip one (v1).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { awsCliOver } from '../helpers/aws-cli.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/coffer.ts';


function findClis(): { name: string; path: string }[] {
  const out: { name: string; path: string }[] = [];
  if (existsSync('/usr/bin/aws')) out.push({ name: 'aws-cli v2 (Debian)', path: '/usr/bin/aws' });
  for (const p of [`${process.env.HOME}/.pyenv/shims/aws`, '/usr/local/bin/aws']) {
    if (existsSync(p) && !out.some((c) => c.path === p)) {
      out.push({ name: `aws-cli (${p})`, path: p });
      break;
    }
  }
  return out;
}

const CLIS = findClis();
if (process.env.CI && !CLIS.some((c) => c.path === '/usr/bin/aws')) throw new Error('CI must provide the AWS CLI v2 (/usr/bin/aws)');

let srv: TestServer;
let work: string;
before(async () => {
  srv = await startTestServer();
  work = tempDir('coffer-cli-');
});
after(async () => {
  await srv?.stop();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const cli of CLIS) {
  for (const transport of ['http', 'https'] as const) {
    describe(`${cli.name} over ${transport}`, () => {
      const bucket = `cli-${transport}-${cli.path.includes('pyenv') ? 'v1' : 'v2'}`;
      const aws = awsCliOver(() => srv, transport, { cli: cli.path, home: () => work });

      test('s3 mb, cp up and down (single and multipart), ls', async () => {
        await aws('s3', 'mb', `s3://${bucket}`);
        const dir = join(work, bucket);
        mkdirSync(dir, { recursive: true });
        const small = randomBytes(1234);
        const big = randomBytes(20 * 1024 * 1024 + 11); // above the CLI's 8 MiB multipart threshold
        writeFileSync(join(dir, 'small.bin'), small);
        writeFileSync(join(dir, 'big.bin'), big);
        await aws('s3', 'cp', join(dir, 'small.bin'), `s3://${bucket}/small.bin`);
        await aws('s3', 'cp', join(dir, 'big.bin'), `s3://${bucket}/big.bin`);
        const ls = await aws('s3', 'ls', `s3://${bucket}/`);
        assert.match(ls, /1234 small\.bin/);
        assert.match(ls, /20971531 big\.bin/);
        await aws('s3', 'cp', `s3://${bucket}/small.bin`, join(dir, 'small.out'));
        await aws('s3', 'cp', `s3://${bucket}/big.bin`, join(dir, 'big.out'));
        assert.equal(sha(readFileSync(join(dir, 'small.out'))), sha(small));
        assert.equal(sha(readFileSync(join(dir, 'big.out'))), sha(big));
        const head = JSON.parse(await aws('s3api', 'head-object', '--bucket', bucket, '--key', 'big.bin'));
        assert.equal(head.ServerSideEncryption, 'AES256');
        assert.match(head.ETag, /-\d+"$/);
        assert.match(await aws('s3', 'ls'), new RegExp(bucket));
      });

      test('s3 sync up, sync again (nothing to do), rm --recursive', async () => {
        const dir = join(work, `${bucket}-sync`);
        for (const p of ['a.txt', 'sub/b.txt', 'sub/deeper/c.txt', 'with space.txt']) {
          mkdirSync(join(dir, p, '..'), { recursive: true });
          writeFileSync(join(dir, p), `content of ${p}`);
        }
        const first = await aws('s3', 'sync', dir, `s3://${bucket}/synced`);
        assert.equal((first.match(/upload:/g) ?? []).length, 4);
        const second = await aws('s3', 'sync', dir, `s3://${bucket}/synced`);
        assert.equal((second.match(/upload:/g) ?? []).length, 0);
        const listed = JSON.parse(await aws('s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'synced/'));
        assert.deepEqual(listed.Contents.map((c: { Key: string }) => c.Key).sort(), [
          'synced/a.txt',
          'synced/sub/b.txt',
          'synced/sub/deeper/c.txt',
          'synced/with space.txt',
        ]);
        const down = join(work, `${bucket}-down`);
        await aws('s3', 'sync', `s3://${bucket}/synced`, down);
        assert.equal(readFileSync(join(down, 'sub/deeper/c.txt'), 'utf8'), 'content of sub/deeper/c.txt');
        const rm = await aws('s3', 'rm', `s3://${bucket}/synced`, '--recursive');
        assert.equal((rm.match(/delete:/g) ?? []).length, 4);
        const after = JSON.parse((await aws('s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'synced/')) || '{}');
        assert.equal(after.Contents, undefined);
      });

      test('s3 cp between buckets: a large object (multipart copy) with its tags, and s3api tagging calls', async () => {
        // Above the 8 MiB threshold the CLI copies in parts. CLI v2 (--copy-props default) reads
        // the source's tags (GetObjectTagging) and gives them to CreateMultipartUpload; v1 has no
        // --copy-props and copies no tags, against AWS as here.
        const copiesTags = cli.path === '/usr/bin/aws';
        const target = `${bucket}-copy`;
        await aws('s3', 'mb', `s3://${target}`);
        const f = join(work, `${bucket}-tagged.bin`);
        const data = randomBytes(9 * 1024 * 1024 + 5);
        writeFileSync(f, data);
        await aws('s3api', 'put-object', '--bucket', bucket, '--key', 'tagged.bin', '--body', f, '--tagging', 'team=storage&tier=gold%20plus');
        await aws('s3', 'cp', `s3://${bucket}/tagged.bin`, `s3://${target}/tagged.bin`);
        const tags = JSON.parse(await aws('s3api', 'get-object-tagging', '--bucket', target, '--key', 'tagged.bin'));
        assert.deepEqual(
          tags.TagSet,
          copiesTags
            ? [
                { Key: 'team', Value: 'storage' },
                { Key: 'tier', Value: 'gold plus' },
              ]
            : [],
        );
        assert.deepEqual(JSON.parse(await aws('s3api', 'get-object-tagging', '--bucket', bucket, '--key', 'tagged.bin')).TagSet.length, 2);
        const out = join(work, `${bucket}-tagged.out`);
        await aws('s3', 'cp', `s3://${target}/tagged.bin`, out);
        assert.equal(sha(readFileSync(out)), sha(data));
        await aws('s3api', 'put-object-tagging', '--bucket', target, '--key', 'tagged.bin', '--tagging', 'TagSet=[{Key=k,Value=v}]');
        assert.deepEqual(JSON.parse(await aws('s3api', 'get-object-tagging', '--bucket', target, '--key', 'tagged.bin')).TagSet, [{ Key: 'k', Value: 'v' }]);
        await aws('s3api', 'delete-object-tagging', '--bucket', target, '--key', 'tagged.bin');
        assert.deepEqual(JSON.parse(await aws('s3api', 'get-object-tagging', '--bucket', target, '--key', 'tagged.bin')).TagSet, []);
        await aws('s3', 'rb', `s3://${target}`, '--force');
      });

      test('s3api put-object with SSE header, get-object with a range, copy, errors', async () => {
        const f = join(work, `${bucket}-api.bin`);
        const data = randomBytes(200_000);
        writeFileSync(f, data);
        const put = JSON.parse(await aws('s3api', 'put-object', '--bucket', bucket, '--key', 'api.bin', '--body', f, '--server-side-encryption', 'AES256', '--metadata', 'k1=v1'));
        assert.equal(put.ServerSideEncryption, 'AES256');
        const out = join(work, `${bucket}-api.out`);
        const got = JSON.parse(await aws('s3api', 'get-object', '--bucket', bucket, '--key', 'api.bin', '--range', 'bytes=65530-131080', out));
        assert.equal(got.ContentRange, 'bytes 65530-131080/200000');
        assert.equal(got.Metadata.k1, 'v1');
        assert.ok(readFileSync(out).equals(data.subarray(65530, 131081)));
        await aws('s3api', 'copy-object', '--bucket', bucket, '--key', 'api-copy.bin', '--copy-source', `${bucket}/api.bin`);
        await aws('s3api', 'get-object', '--bucket', bucket, '--key', 'api-copy.bin', out);
        assert.ok(readFileSync(out).equals(data));
        await assert.rejects(aws('s3api', 'get-object', '--bucket', bucket, '--key', 'missing', out), /NoSuchKey/);
        await assert.rejects(aws('s3api', 'put-object', '--bucket', bucket, '--key', 'x', '--body', f, '--server-side-encryption', 'aws:fsx'), /InvalidArgument/);
        const mpu = JSON.parse(await aws('s3api', 'create-multipart-upload', '--bucket', bucket, '--key', 'mpu'));
        await aws('s3api', 'upload-part', '--bucket', bucket, '--key', 'mpu', '--upload-id', mpu.UploadId, '--part-number', '1', '--body', f);
        const parts = JSON.parse(await aws('s3api', 'list-parts', '--bucket', bucket, '--key', 'mpu', '--upload-id', mpu.UploadId));
        assert.equal(parts.Parts.length, 1);
        await aws('s3api', 'abort-multipart-upload', '--bucket', bucket, '--key', 'mpu', '--upload-id', mpu.UploadId);
        await aws('s3', 'rm', `s3://${bucket}`, '--recursive');
        await aws('s3', 'rb', `s3://${bucket}`);
      });
    });
  }
}
