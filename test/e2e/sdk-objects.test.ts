// The real server driven by @aws-sdk/client-s3 over HTTP and HTTPS: buckets, objects of every
// size boundary, ranges on every segment boundary, metadata, conditionals, copy, delete.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { startTestServer, type TestServer } from '../helpers/coffer.ts';

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
});
after(async () => {
  await srv?.stop();
});

async function body(c: S3Client, Bucket: string, Key: string, Range?: string): Promise<Buffer> {
  const r = await c.send(new GetObjectCommand({ Bucket, Key, ...(Range ? { Range } : {}) }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

async function rejects(p: Promise<unknown>, name: string, status?: number): Promise<S3ServiceException> {
  try {
    await p;
  } catch (e) {
    const err = e as S3ServiceException;
    // A 304 has no body, so the SDK can only report its status (as against AWS).
    if (status !== 304) assert.equal(err.name, name, `expected ${name}, got ${err.name}: ${err.message}`);
    if (status !== undefined) assert.equal(err.$metadata.httpStatusCode, status);
    return err;
  }
  assert.fail(`expected ${name}`);
}

for (const transport of ['http', 'https'] as const) {
  describe(`SDK over ${transport}`, () => {
    const c = () => (transport === 'http' ? srv.s3 : srv.s3s);
    const bucket = `sdk-${transport}`;

    test('bucket lifecycle', async () => {
      await c().send(new CreateBucketCommand({ Bucket: bucket }));
      await c().send(new HeadBucketCommand({ Bucket: bucket }));
      const list = await c().send(new ListBucketsCommand({}));
      assert.ok(list.Buckets!.some((b) => b.Name === bucket));
      const loc = await c().send(new GetBucketLocationCommand({ Bucket: bucket }));
      assert.equal(loc.LocationConstraint ?? '', '');
      await rejects(c().send(new CreateBucketCommand({ Bucket: bucket })), 'BucketAlreadyOwnedByYou', 409);
      await rejects(c().send(new CreateBucketCommand({ Bucket: 'Bad_Name' })), 'InvalidBucketName', 400);
      await rejects(c().send(new HeadBucketCommand({ Bucket: 'no-such-bucket-here' })), 'NotFound', 404);
    });

    // Every format boundary, the inline-storage limit (32 KiB), the 1 MiB fast-read and MD5
    // offload thresholds, and a stream larger than the MD5 worker's in-flight window.
    const sizes = [0, 1, 32 * 1024, 32 * 1024 + 1, 65535, 65536, 65537, 1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 1, 5 * 1024 * 1024 + 1, 8 * 1024 * 1024 + 1];
    for (const size of sizes) {
      test(`object of ${size} bytes round-trips with SSE-S3 and MD5 ETag`, async () => {
        const data = randomBytes(size);
        const key = `size/${size}`;
        const put = await c().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data }));
        assert.equal(put.ServerSideEncryption, 'AES256');
        assert.equal(put.ETag, `"${createHash('md5').update(data).digest('hex')}"`);
        const got = await c().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        assert.equal(got.ServerSideEncryption, 'AES256');
        assert.equal(got.ContentLength, size);
        assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(data));
        const head = await c().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        assert.equal(head.ContentLength, size);
        assert.equal(head.ServerSideEncryption, 'AES256');
      });
    }

    test('range reads on every segment boundary', async () => {
      const S = 65536;
      const size = 3 * S + 100;
      const data = randomBytes(size);
      await c().send(new PutObjectCommand({ Bucket: bucket, Key: 'ranges', Body: data }));
      const points = [0, 1, S - 1, S, S + 1, 2 * S - 1, 2 * S, 2 * S + 1, 3 * S - 1, 3 * S, 3 * S + 1, size - 1];
      for (const a of points) {
        for (const b of points) {
          if (b < a) continue;
          const got = await body(c(), bucket, 'ranges', `bytes=${a}-${b}`);
          assert.ok(got.equals(data.subarray(a, b + 1)), `range ${a}-${b}`);
        }
      }
      assert.ok((await body(c(), bucket, 'ranges', 'bytes=-70000')).equals(data.subarray(size - 70000)));
      assert.ok((await body(c(), bucket, 'ranges', `bytes=${2 * S}-`)).equals(data.subarray(2 * S)));
      assert.ok((await body(c(), bucket, 'ranges', `bytes=5-${size + 1000}`)).equals(data.subarray(5)));
      await rejects(c().send(new GetObjectCommand({ Bucket: bucket, Key: 'ranges', Range: `bytes=${size}-` })), 'InvalidRange', 416);
      const partial = await c().send(new GetObjectCommand({ Bucket: bucket, Key: 'ranges', Range: 'bytes=10-19' }));
      assert.equal(partial.ContentRange, `bytes 10-19/${size}`);
      assert.equal(partial.$metadata.httpStatusCode, 206);
    });

    test('metadata, standard headers and response overrides', async () => {
      await c().send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: 'meta',
          Body: 'hello',
          ContentType: 'text/plain',
          CacheControl: 'max-age=60',
          ContentDisposition: 'attachment; filename="a.txt"',
          ContentLanguage: 'en',
          Metadata: { colour: 'blue', 'two-words': 'x y' },
        }),
      );
      const h = await c().send(new HeadObjectCommand({ Bucket: bucket, Key: 'meta' }));
      assert.equal(h.ContentType, 'text/plain');
      assert.equal(h.CacheControl, 'max-age=60');
      assert.equal(h.ContentDisposition, 'attachment; filename="a.txt"');
      assert.equal(h.ContentLanguage, 'en');
      assert.deepEqual(h.Metadata, { colour: 'blue', 'two-words': 'x y' });
      const g = await c().send(new GetObjectCommand({ Bucket: bucket, Key: 'meta', ResponseContentType: 'application/x-test', ResponseCacheControl: 'no-cache' }));
      assert.equal(g.ContentType, 'application/x-test');
      assert.equal(g.CacheControl, 'no-cache');
      await g.Body!.transformToString();
    });

    test('conditional reads', async () => {
      const put = await c().send(new PutObjectCommand({ Bucket: bucket, Key: 'cond', Body: 'abc' }));
      const etag = put.ETag!;
      await rejects(c().send(new GetObjectCommand({ Bucket: bucket, Key: 'cond', IfMatch: '"0000"' })), 'PreconditionFailed', 412);
      const ok = await c().send(new GetObjectCommand({ Bucket: bucket, Key: 'cond', IfMatch: etag }));
      assert.equal(await ok.Body!.transformToString(), 'abc');
      await rejects(c().send(new GetObjectCommand({ Bucket: bucket, Key: 'cond', IfNoneMatch: etag })), '304', 304);
      await rejects(
        c().send(new GetObjectCommand({ Bucket: bucket, Key: 'cond', IfModifiedSince: new Date(Date.now() + 3600_000) })),
        '304',
        304,
      );
      await rejects(
        c().send(new GetObjectCommand({ Bucket: bucket, Key: 'cond', IfUnmodifiedSince: new Date(Date.now() - 3600_000) })),
        'PreconditionFailed',
        412,
      );
    });

    test('copy: across buckets, metadata directive, copy-in-place rule, conditions', async () => {
      const other = `${bucket}-copy`;
      await c().send(new CreateBucketCommand({ Bucket: other }));
      const data = randomBytes(200_000);
      await c().send(new PutObjectCommand({ Bucket: bucket, Key: 'src', Body: data, Metadata: { a: '1' }, ContentType: 'x/y' }));
      const cp = await c().send(new CopyObjectCommand({ Bucket: other, Key: 'dst', CopySource: `${bucket}/src` }));
      assert.equal(cp.ServerSideEncryption, 'AES256');
      assert.equal(cp.CopyObjectResult!.ETag, `"${createHash('md5').update(data).digest('hex')}"`);
      assert.ok((await body(c(), other, 'dst')).equals(data));
      const h = await c().send(new HeadObjectCommand({ Bucket: other, Key: 'dst' }));
      assert.deepEqual(h.Metadata, { a: '1' });
      assert.equal(h.ContentType, 'x/y');
      await c().send(new CopyObjectCommand({ Bucket: other, Key: 'dst2', CopySource: `${bucket}/src`, MetadataDirective: 'REPLACE', Metadata: { b: '2' } }));
      assert.deepEqual((await c().send(new HeadObjectCommand({ Bucket: other, Key: 'dst2' }))).Metadata, { b: '2' });
      await rejects(c().send(new CopyObjectCommand({ Bucket: bucket, Key: 'src', CopySource: `${bucket}/src` })), 'InvalidRequest', 400);
      await c().send(new CopyObjectCommand({ Bucket: bucket, Key: 'src', CopySource: `${bucket}/src`, MetadataDirective: 'REPLACE', Metadata: { c: '3' } }));
      await c().send(new CopyObjectCommand({ Bucket: bucket, Key: 'src', CopySource: `${bucket}/src`, ServerSideEncryption: 'AES256' }));
      await rejects(
        c().send(new CopyObjectCommand({ Bucket: other, Key: 'dst3', CopySource: `${bucket}/src`, CopySourceIfMatch: '"nope"' })),
        'PreconditionFailed',
        412,
      );
      await rejects(c().send(new CopyObjectCommand({ Bucket: other, Key: 'dst3', CopySource: `${bucket}/missing` })), 'NoSuchKey', 404);
      const key = 'weird key+with spaces/ünïcödé?&=#%.txt';
      await c().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'w' }));
      await c().send(new CopyObjectCommand({ Bucket: other, Key: key, CopySource: encodeURIComponent(`${bucket}/${key}`) }));
      assert.equal((await body(c(), other, key)).toString(), 'w');
    });

    test('delete, delete-objects (quiet and verbose), bucket not empty', async () => {
      const b = `${bucket}-del`;
      await c().send(new CreateBucketCommand({ Bucket: b }));
      for (const k of ['a', 'b', 'c', 'd']) await c().send(new PutObjectCommand({ Bucket: b, Key: k, Body: k }));
      await rejects(c().send(new DeleteBucketCommand({ Bucket: b })), 'BucketNotEmpty', 409);
      await c().send(new DeleteObjectCommand({ Bucket: b, Key: 'a' }));
      await c().send(new DeleteObjectCommand({ Bucket: b, Key: 'a' })); // idempotent
      await rejects(c().send(new GetObjectCommand({ Bucket: b, Key: 'a' })), 'NoSuchKey', 404);
      const verbose = await c().send(new DeleteObjectsCommand({ Bucket: b, Delete: { Objects: [{ Key: 'b' }, { Key: 'zz' }] } }));
      assert.deepEqual(verbose.Deleted!.map((d) => d.Key).sort(), ['b', 'zz']);
      const quiet = await c().send(new DeleteObjectsCommand({ Bucket: b, Delete: { Quiet: true, Objects: [{ Key: 'c' }, { Key: 'd' }] } }));
      assert.equal(quiet.Deleted ?? undefined, undefined);
      await c().send(new DeleteBucketCommand({ Bucket: b }));
      await rejects(c().send(new DeleteBucketCommand({ Bucket: b })), 'NoSuchBucket', 404);
    });

    test('unsupported encryption values get the AWS error', async () => {
      await rejects(
        c().send(new PutObjectCommand({ Bucket: bucket, Key: 'x', Body: 'x', ServerSideEncryption: 'bogus' as never })),
        'InvalidArgument',
        400,
      );
      await rejects(c().send(new GetObjectCommand({ Bucket: bucket, Key: 'no/such/key' })), 'NoSuchKey', 404);
      await rejects(c().send(new GetObjectCommand({ Bucket: 'no-such-bucket-x', Key: 'k' })), 'NoSuchBucket', 404);
    });
  });
}
