// Multipart uploads through the SDK: 100 MiB with parts sent out of order and one part sent
// twice, lib-storage's Upload, UploadPartCopy with ranges, the part rules, listing and abort.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { startTestServer, type TestServer } from '../helpers/coffer.ts';

let srv: TestServer;
const B = 'multipart-tests';
before(async () => {
  srv = await startTestServer();
  await srv.s3.send(new CreateBucketCommand({ Bucket: B }));
});
after(async () => {
  await srv?.stop();
});

const MiB = 1024 * 1024;

async function rejects(p: Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(p, (e: S3ServiceException) => {
    assert.equal(e.name, name, e.message);
    return true;
  });
}

function md5(b: Buffer): Buffer {
  return createHash('md5').update(b).digest();
}

async function sha256Of(stream: AsyncIterable<Uint8Array>): Promise<{ hex: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of stream) {
    h.update(c);
    size += c.length;
  }
  return { hex: h.digest('hex'), size };
}

test('100 MiB in parts sent out of order, one part twice, over HTTPS', async () => {
  const s3 = srv.s3s;
  const partSize = 8 * MiB;
  const total = 100 * MiB;
  const data = randomBytes(total);
  const key = 'big/100MiB';
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key, ContentType: 'application/x-big', Metadata: { m: 'v' } }));
  const n = Math.ceil(total / partSize);
  const order = Array.from({ length: n }, (_, i) => i + 1).reverse();
  const etags = new Map<number, string>();
  for (const pn of order) {
    const part = data.subarray((pn - 1) * partSize, Math.min(pn * partSize, total));
    const r = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: pn, Body: part }));
    assert.equal(r.ServerSideEncryption, 'AES256');
    assert.equal(r.ETag, `"${md5(part).toString('hex')}"`);
    etags.set(pn, r.ETag!);
  }
  // Part 3 again, first with wrong bytes and then with the right ones: the last upload wins.
  const p3 = data.subarray(2 * partSize, 3 * partSize);
  await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 3, Body: randomBytes(partSize) }));
  const again = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 3, Body: p3 }));
  assert.equal(again.ETag, etags.get(3));
  const listed = await s3.send(new ListPartsCommand({ Bucket: B, Key: key, UploadId }));
  assert.equal(listed.Parts!.length, n);
  const done = await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: B,
      Key: key,
      UploadId,
      MultipartUpload: { Parts: [...etags.keys()].sort((a, b) => a - b).map((pn) => ({ PartNumber: pn, ETag: etags.get(pn)! })) },
    }),
  );
  const expectEtag = createHash('md5')
    .update(Buffer.concat([...etags.keys()].sort((a, b) => a - b).map((pn) => Buffer.from(etags.get(pn)!.slice(1, -1), 'hex'))))
    .digest('hex');
  assert.equal(done.ETag, `"${expectEtag}-${n}"`);
  assert.equal(done.ServerSideEncryption, 'AES256');
  const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: key }));
  assert.equal(got.ContentLength, total);
  assert.equal(got.ContentType, 'application/x-big');
  assert.deepEqual(got.Metadata, { m: 'v' });
  const sum = await sha256Of(got.Body as AsyncIterable<Uint8Array>);
  assert.equal(sum.size, total);
  assert.equal(sum.hex, createHash('sha256').update(data).digest('hex'));
  // Ranges that cross part boundaries.
  for (const [a, b] of [
    [partSize - 10, partSize + 10],
    [0, 3 * partSize + 5],
    [total - 100, total - 1],
    [5 * partSize - 65536, 5 * partSize + 65536],
  ] as const) {
    const r = await s3.send(new GetObjectCommand({ Bucket: B, Key: key, Range: `bytes=${a}-${b}` }));
    assert.ok(Buffer.from(await r.Body!.transformToByteArray()).equals(data.subarray(a, b + 1)), `range ${a}-${b}`);
  }
  const part2 = await s3.send(new GetObjectCommand({ Bucket: B, Key: key, PartNumber: 2 }));
  assert.equal(part2.PartsCount, n);
  assert.ok(Buffer.from(await part2.Body!.transformToByteArray()).equals(data.subarray(partSize, 2 * partSize)));
});

test('lib-storage Upload (unknown length stream) over HTTP', async () => {
  const data = randomBytes(17 * MiB + 3);
  const up = new Upload({ client: srv.s3, params: { Bucket: B, Key: 'lib/upload', Body: data }, partSize: 5 * MiB, queueSize: 3 });
  await up.done();
  const got = await srv.s3.send(new GetObjectCommand({ Bucket: B, Key: 'lib/upload' }));
  assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(data));
});

test('part rules: EntityTooSmall, InvalidPart, InvalidPartOrder, NoSuchUpload, MalformedXML', async () => {
  const s3 = srv.s3;
  const key = 'rules';
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key }));
  const p1 = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 1, Body: randomBytes(1000) }));
  const p2 = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 2, Body: randomBytes(1000) }));
  const complete = (Parts: { PartNumber: number; ETag: string }[]) =>
    s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: key, UploadId, MultipartUpload: { Parts } }));
  await rejects(complete([{ PartNumber: 1, ETag: p1.ETag! }, { PartNumber: 2, ETag: p2.ETag! }]), 'EntityTooSmall');
  await rejects(complete([{ PartNumber: 2, ETag: p2.ETag! }, { PartNumber: 1, ETag: p1.ETag! }]), 'InvalidPartOrder');
  await rejects(complete([{ PartNumber: 1, ETag: '"00000000000000000000000000000000"' }]), 'InvalidPart');
  await rejects(complete([{ PartNumber: 7, ETag: p1.ETag! }]), 'InvalidPart');
  await rejects(complete([]), 'MalformedXML');
  await rejects(s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId: 'nope', PartNumber: 1, Body: 'x' })), 'NoSuchUpload');
  await rejects(s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 10001, Body: 'x' })), 'InvalidArgument');
  // A single small part is a valid upload (the last part may be small).
  const one = await complete([{ PartNumber: 2, ETag: p2.ETag! }]);
  assert.match(one.ETag!, /-1"$/);
  await rejects(complete([{ PartNumber: 2, ETag: p2.ETag! }]), 'NoSuchUpload');
});

test('UploadPartCopy with ranges, abort, list uploads', async () => {
  const s3 = srv.s3;
  const src = randomBytes(12 * MiB);
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'copy-src', Body: src }));
  const key = 'copied';
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key }));
  const c1 = await s3.send(new UploadPartCopyCommand({ Bucket: B, Key: key, UploadId, PartNumber: 1, CopySource: `${B}/copy-src`, CopySourceRange: `bytes=0-${6 * MiB - 1}` }));
  const c2 = await s3.send(new UploadPartCopyCommand({ Bucket: B, Key: key, UploadId, PartNumber: 2, CopySource: `${B}/copy-src`, CopySourceRange: `bytes=${6 * MiB}-${12 * MiB - 1}` }));
  const c3 = await s3.send(new UploadPartCopyCommand({ Bucket: B, Key: key, UploadId, PartNumber: 3, CopySource: `${B}/copy-src`, CopySourceRange: 'bytes=100-199' }));
  await rejects(
    s3.send(new UploadPartCopyCommand({ Bucket: B, Key: key, UploadId, PartNumber: 4, CopySource: `${B}/copy-src`, CopySourceRange: `bytes=0-${12 * MiB}` })),
    'InvalidArgument',
  );
  const ups = await s3.send(new ListMultipartUploadsCommand({ Bucket: B }));
  assert.ok(ups.Uploads!.some((u) => u.UploadId === UploadId && u.Key === key));
  await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: B,
      Key: key,
      UploadId,
      MultipartUpload: {
        Parts: [
          { PartNumber: 1, ETag: c1.CopyPartResult!.ETag! },
          { PartNumber: 2, ETag: c2.CopyPartResult!.ETag! },
          { PartNumber: 3, ETag: c3.CopyPartResult!.ETag! },
        ],
      },
    }),
  );
  const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: key }));
  const buf = Buffer.from(await got.Body!.transformToByteArray());
  assert.ok(buf.equals(Buffer.concat([src, src.subarray(100, 200)])));
  const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: key }));
  assert.equal(head.ServerSideEncryption, 'AES256');

  const ab = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'aborted' }));
  await s3.send(new UploadPartCommand({ Bucket: B, Key: 'aborted', UploadId: ab.UploadId, PartNumber: 1, Body: randomBytes(1000) }));
  await s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key: 'aborted', UploadId: ab.UploadId }));
  await rejects(s3.send(new ListPartsCommand({ Bucket: B, Key: 'aborted', UploadId: ab.UploadId })), 'NoSuchUpload');
  await rejects(s3.send(new GetObjectCommand({ Bucket: B, Key: 'aborted' })), 'NoSuchKey');
});
