// Object tagging through @aws-sdk/client-s3 and lib-storage: PutObjectTagging, GetObjectTagging,
// DeleteObjectTagging, x-amz-tagging on PutObject, CopyObject (x-amz-tagging-directive) and
// CreateMultipartUpload, x-amz-tagging-count on GET, and AWS's errors for bad tag sets.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectTaggingCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
  type Tag,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { startTestServer, type TestServer } from '../helpers/coffer.ts';
import { rejectsWith } from '../helpers/identities.ts';
import { assertS3Error, rawRequest } from '../helpers/raw-s3.ts';

let srv: TestServer;
const Bucket = 'tags';
before(async () => {
  srv = await startTestServer();
  await srv.s3.send(new CreateBucketCommand({ Bucket }));
});
after(async () => {
  await srv?.stop();
});

const tagsOf = async (Key: string): Promise<Tag[]> => (await srv.s3.send(new GetObjectTaggingCommand({ Bucket, Key }))).TagSet ?? [];
const tagCount = async (Key: string): Promise<number | undefined> => {
  const r = await srv.s3.send(new GetObjectCommand({ Bucket, Key }));
  await r.Body!.transformToByteArray();
  return r.TagCount;
};

describe('object tagging', () => {
  test('PutObject with x-amz-tagging; Get, Put and DeleteObjectTagging; the count on GET', async () => {
    await srv.s3.send(new PutObjectCommand({ Bucket, Key: 'a', Body: 'x', Tagging: 'project=coffer&note=two%20words&empty=' }));
    assert.deepEqual(await tagsOf('a'), [
      { Key: 'project', Value: 'coffer' },
      { Key: 'note', Value: 'two words' },
      { Key: 'empty', Value: '' },
    ]);
    assert.equal(await tagCount('a'), 3);
    // Replaces the whole set.
    await srv.s3.send(new PutObjectTaggingCommand({ Bucket, Key: 'a', Tagging: { TagSet: [{ Key: 'k', Value: 'ü+-=._:/@ 1' }] } }));
    assert.deepEqual(await tagsOf('a'), [{ Key: 'k', Value: 'ü+-=._:/@ 1' }]);
    await srv.s3.send(new DeleteObjectTaggingCommand({ Bucket, Key: 'a' }));
    assert.deepEqual(await tagsOf('a'), []);
    assert.equal(await tagCount('a'), undefined);
    // An overwrite is a new object: the old one's tags do not carry over.
    await srv.s3.send(new PutObjectTaggingCommand({ Bucket, Key: 'a', Tagging: { TagSet: [{ Key: 'k', Value: 'v' }] } }));
    await srv.s3.send(new PutObjectCommand({ Bucket, Key: 'a', Body: 'y' }));
    assert.deepEqual(await tagsOf('a'), []);
  });

  test('CopyObject copies the source tags by default, replaces them with REPLACE', async () => {
    await srv.s3.send(new PutObjectCommand({ Bucket, Key: 'src', Body: 'data', Tagging: 'a=1&b=2' }));
    await srv.s3.send(new CopyObjectCommand({ Bucket, Key: 'copy', CopySource: `${Bucket}/src`, Tagging: 'ignored=1' }));
    assert.deepEqual(await tagsOf('copy'), [
      { Key: 'a', Value: '1' },
      { Key: 'b', Value: '2' },
    ]);
    await srv.s3.send(new CopyObjectCommand({ Bucket, Key: 'copy', CopySource: `${Bucket}/src`, TaggingDirective: 'REPLACE', Tagging: 'c=3' }));
    assert.deepEqual(await tagsOf('copy'), [{ Key: 'c', Value: '3' }]);
    await srv.s3.send(new CopyObjectCommand({ Bucket, Key: 'copy', CopySource: `${Bucket}/src`, TaggingDirective: 'REPLACE' }));
    assert.deepEqual(await tagsOf('copy'), []);
    // A copy onto itself with new metadata (the data key is resealed, not the data copied) keeps the tags.
    await srv.s3.send(new CopyObjectCommand({ Bucket, Key: 'src', CopySource: `${Bucket}/src`, MetadataDirective: 'REPLACE', Metadata: { m: '1' } }));
    assert.deepEqual(await tagsOf('src'), [
      { Key: 'a', Value: '1' },
      { Key: 'b', Value: '2' },
    ]);
    await rejectsWith(srv.s3.send(new CopyObjectCommand({ Bucket, Key: 'copy', CopySource: `${Bucket}/src`, TaggingDirective: 'MOVE' as 'COPY' })), 'InvalidArgument', 400);
  });

  test('multipart uploads: tags from CreateMultipartUpload, and lib-storage (which sets them after)', async () => {
    const created = await srv.s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'mp', Tagging: 'stage=raw' }));
    const part = await srv.s3.send(new UploadPartCommand({ Bucket, Key: 'mp', UploadId: created.UploadId!, PartNumber: 1, Body: randomBytes(1000) }));
    await srv.s3.send(
      new CompleteMultipartUploadCommand({ Bucket, Key: 'mp', UploadId: created.UploadId!, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag! }] } }),
    );
    assert.deepEqual(await tagsOf('mp'), [{ Key: 'stage', Value: 'raw' }]);

    const upload = new Upload({ client: srv.s3, params: { Bucket, Key: 'lib', Body: randomBytes(11 * 1024 * 1024) }, tags: [{ Key: 'via', Value: 'lib-storage' }], partSize: 5 * 1024 * 1024 });
    await upload.done();
    assert.deepEqual(await tagsOf('lib'), [{ Key: 'via', Value: 'lib-storage' }]);
    assert.equal(await tagCount('lib'), 1);
  });

  test("bad tag sets get AWS's errors and change nothing", async () => {
    await srv.s3.send(new PutObjectCommand({ Bucket, Key: 'b', Body: 'x', Tagging: 'keep=me' }));
    const put = (TagSet: Tag[]) => srv.s3.send(new PutObjectTaggingCommand({ Bucket, Key: 'b', Tagging: { TagSet } }));
    const eleven = Array.from({ length: 11 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
    await rejectsWith(put(eleven), 'BadRequest', 400);
    await rejectsWith(put([{ Key: 'k', Value: '1' }, { Key: 'k', Value: '2' }]), 'InvalidTag', 400);
    await rejectsWith(put([{ Key: 'k'.repeat(129), Value: '1' }]), 'InvalidTag', 400);
    await rejectsWith(put([{ Key: 'k', Value: 'v'.repeat(257) }]), 'InvalidTag', 400);
    await rejectsWith(put([{ Key: 'aws:owner', Value: 'me' }]), 'InvalidTag', 400);
    await rejectsWith(put([{ Key: 'semi;colon', Value: 'v' }]), 'InvalidTag', 400);
    await rejectsWith(put([{ Key: '', Value: 'v' }]), 'InvalidTag', 400);
    assert.deepEqual(await tagsOf('b'), [{ Key: 'keep', Value: 'me' }]);
    // Ten tags of the longest sizes are fine.
    const ten = Array.from({ length: 10 }, (_, i) => ({ Key: `${i}`.padEnd(128, 'k'), Value: 'v'.repeat(256) }));
    await put(ten);
    assert.deepEqual(await tagsOf('b'), ten);

    await rejectsWith(srv.s3.send(new PutObjectCommand({ Bucket, Key: 'c', Body: 'x', Tagging: 'a=1&a=2' })), 'InvalidArgument', 400);
    await rejectsWith(srv.s3.send(new PutObjectCommand({ Bucket, Key: 'c', Body: 'x', Tagging: 'a=%E0%A4%A' })), 'InvalidArgument', 400);
    await rejectsWith(srv.s3.send(new PutObjectCommand({ Bucket, Key: 'c', Body: 'x', Tagging: 'aws:x=1' })), 'InvalidTag', 400);
    await rejectsWith(srv.s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'c', Tagging: eleven.map((t) => `${t.Key}=1`).join('&') })), 'BadRequest', 400);
    await rejectsWith(srv.s3.send(new GetObjectCommand({ Bucket, Key: 'c' })), 'NoSuchKey', 404);

    for (const send of [
      () => srv.s3.send(new GetObjectTaggingCommand({ Bucket, Key: 'missing' })),
      () => srv.s3.send(new PutObjectTaggingCommand({ Bucket, Key: 'missing', Tagging: { TagSet: [] } })),
      () => srv.s3.send(new DeleteObjectTaggingCommand({ Bucket, Key: 'missing' })),
    ]) {
      await rejectsWith(send(), 'NoSuchKey', 404);
    }
    await rejectsWith(srv.s3.send(new GetObjectTaggingCommand({ Bucket: 'no-such-bucket', Key: 'k' })), 'NoSuchBucket', 404);
  });

  test('PutObjectTagging needs an integrity header, a matching Content-MD5 and well-formed XML', async () => {
    await srv.s3.send(new PutObjectCommand({ Bucket, Key: 'raw', Body: 'x', Tagging: 'keep=me' }));
    const port = srv.coffer.listeners.http!.port;
    const path = `/${Bucket}/raw`;
    const query = { tagging: '' };
    const md5 = (b: string) => ({ 'content-md5': createHash('md5').update(b).digest('base64') });
    const body = '<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>';
    assertS3Error(await rawRequest(port, { method: 'PUT', path, query, body }), 'InvalidRequest', 400, /Content-Md5/);
    assertS3Error(await rawRequest(port, { method: 'PUT', path, query, body, headers: md5('other') }), 'BadDigest', 400);
    for (const bad of ['<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>', '<Tagging>', 'not xml', '<Other/>']) {
      assertS3Error(await rawRequest(port, { method: 'PUT', path, query, body: bad, headers: md5(bad) }), 'MalformedXML', 400);
    }
    assert.deepEqual(await tagsOf('raw'), [{ Key: 'keep', Value: 'me' }]);
    const ok = await rawRequest(port, { method: 'PUT', path, query, body, headers: md5(body) });
    assert.equal(ok.status, 200, ok.body);
    const got = await rawRequest(port, { method: 'GET', path, query });
    assert.equal(got.body, '<?xml version="1.0" encoding="UTF-8"?>\n<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>');
    const head = await rawRequest(port, { method: 'HEAD', path });
    assert.equal(head.headers['x-amz-tagging-count'], '1');
  });
});
