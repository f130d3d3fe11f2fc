// SSE-C end to end through @aws-sdk/client-s3 over HTTPS: put, get, head, ranges at segment
// boundaries, multipart with three parts, copy with a key change (in place: the data is not
// rewritten), SSE-C to SSE-S3 / SSE-KMS and back, presigned GET with the headers; wrong and
// missing keys; plain HTTP refused with nothing stored; blocked-by-default buckets; and a scan
// of the data directory and the logs for the keys and their MD5s.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { Writable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetBucketEncryptionCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketEncryptionCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createLogger } from '../../src/shared/logger.ts';
import { kmsClientFor, startTestServer, type TestServer } from '../helpers/coffer.ts';
import { rejectsWith } from '../helpers/identities.ts';
import { blobFiles } from '../helpers/raw-s3.ts';

const BUCKET = 'ssec-bucket';
const BLOCKED = 'ssec-blocked';

const newKey = () => {
  const raw = randomBytes(32);
  return { raw, b64: raw.toString('base64'), md5: createHash('md5').update(raw).digest('base64') };
};
const ssec = (k: { b64: string }) => ({ SSECustomerAlgorithm: 'AES256', SSECustomerKey: k.b64 });
const copySsec = (k: { b64: string }) => ({ CopySourceSSECustomerAlgorithm: 'AES256', CopySourceSSECustomerKey: k.b64 });
const md5hex = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

/** HEAD errors have no body: the SDK knows only the status. */
async function rejectsStatus(p: Promise<unknown>, status: number): Promise<void> {
  await assert.rejects(p, (e: { $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(e.$metadata?.httpStatusCode, status);
    return true;
  });
}

/** Every regular file under `root`, with its path. */
function pathsUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));
}

describe('SSE-C (e2e, @aws-sdk/client-s3 over HTTPS)', () => {
  let srv: TestServer;
  let s3s: S3Client;
  const keys: ReturnType<typeof newKey>[] = [];
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString('utf8'));
      cb();
    },
  });
  const key = () => {
    const k = newKey();
    keys.push(k);
    return k;
  };
  const get = async (Key: string, k?: { b64: string }, extra: Record<string, unknown> = {}) =>
    Buffer.from(await (await s3s.send(new GetObjectCommand({ Bucket: BUCKET, Key, ...(k ? ssec(k) : {}), ...extra }))).Body!.transformToByteArray());

  before(async () => {
    srv = await startTestServer({ log: createLogger('debug', sink) });
    s3s = srv.s3s;
    await s3s.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3s.send(new CreateBucketCommand({ Bucket: BLOCKED }));
    // New buckets block SSE-C; this one is unblocked.
    await s3s.send(new PutBucketEncryptionCommand({ Bucket: BUCKET, ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' }, BlockedEncryptionTypes: { EncryptionType: ['NONE'] } }] } }));
  });
  after(async () => srv?.stop());

  test('put, get, head: the key round-trips, responses echo algorithm and key MD5, no x-amz-server-side-encryption', async () => {
    const k = key();
    for (const size of [0, 1, 32 * 1024, 32 * 1024 + 1, 65536, 65537, 3 * 65536 + 5]) {
      const body = randomBytes(size);
      const put = await s3s.send(new PutObjectCommand({ Bucket: BUCKET, Key: `obj-${size}`, Body: body, ...ssec(k) }));
      assert.equal(put.SSECustomerAlgorithm, 'AES256');
      assert.equal(put.SSECustomerKeyMD5, k.md5);
      assert.equal(put.ServerSideEncryption, undefined);
      assert.notEqual(put.ETag, `"${md5hex(body)}"`, 'the ETag of an SSE-C object is not the MD5 of its plaintext');
      const r = await s3s.send(new GetObjectCommand({ Bucket: BUCKET, Key: `obj-${size}`, ...ssec(k) }));
      assert.equal(r.SSECustomerAlgorithm, 'AES256');
      assert.equal(r.SSECustomerKeyMD5, k.md5);
      assert.equal(r.ServerSideEncryption, undefined);
      assert.equal(r.ETag, put.ETag);
      assert.ok(Buffer.from(await r.Body!.transformToByteArray()).equals(body), `size ${size}`);
      const h = await s3s.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `obj-${size}`, ...ssec(k) }));
      assert.equal(h.ContentLength, size);
      assert.equal(h.SSECustomerKeyMD5, k.md5);
    }
  });

  test('the same body and key twice: different ETags (not deterministic)', async () => {
    const k = key();
    const a = await s3s.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'twice', Body: 'same', ...ssec(k) }));
    const b = await s3s.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'twice', Body: 'same', ...ssec(k) }));
    assert.notEqual(a.ETag, b.ETag);
  });

  test('range GETs at segment boundaries', async () => {
    const k = key();
    const body = randomBytes(4 * 65536 + 123);
    await s3s.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'ranged', Body: body, ...ssec(k) }));
    for (const [start, end] of [
      [0, 0],
      [65535, 65536],
      [65530, 65545],
      [65536, 131071],
      [131071, 196608],
      [4 * 65536, 4 * 65536 + 122],
    ] as const) {
      const r = await s3s.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'ranged', Range: `bytes=${start}-${end}`, ...ssec(k) }));
      assert.equal(r.ContentRange, `bytes ${start}-${end}/${body.length}`);
      assert.ok(Buffer.from(await r.Body!.transformToByteArray()).equals(body.subarray(start, end + 1)), `${start}-${end}`);
    }
    const suffix = await get('ranged', k, { Range: 'bytes=-70000' });
    assert.ok(suffix.equals(body.subarray(body.length - 70000)));
  });

  test('conditional GET on an SSE-C object: If-None-Match → 304, If-Match mismatch → 412, with the key', async () => {
    const k = key();
    const put = await s3s.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'conditional', Body: 'conditional body', ...ssec(k) }));
    await rejectsStatus(s3s.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'conditional', IfNoneMatch: put.ETag, ...ssec(k) })), 304);
    await rejectsWith(s3s.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'conditional', IfMatch: '"0123456789abcdef0123456789abcdef"', ...ssec(k) })), 'PreconditionFailed', 412);
    assert.equal((await get('conditional', k, { IfMatch: put.ETag })).toString(), 'conditional body');
    // The key is checked before the conditions: a wrong key never learns whether the ETag matched.
    await rejectsWith(s3s.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'conditional', IfNoneMatch: put.ETag, ...ssec(key()) })), 'AccessDenied', 403);
  });

  test('wrong key on GET and HEAD → 403 AccessDenied; no key → 400 InvalidRequest; the object is intact afterwards', async () => {
    const k = key();
    const body = randomBytes(100_000);
    await s3s.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'guarded', Body: body, ...ssec(k) }));
    const wrong = key();
    await rejectsWith(s3s.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'guarded', ...ssec(wrong) })), 'AccessDenied', 403);
    await rejectsStatus(s3s.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'guarded', ...ssec(wrong) })), 403);
    await rejectsWith(s3s.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'guarded' })), 'InvalidRequest', 400);
    await rejectsStatus(s3s.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'guarded' })), 400);
    // Another object's key (made the same moment) is wrong too.
    await rejectsWith(s3s.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'guarded', ...ssec(keys[0]!) })), 'AccessDenied', 403);
    assert.ok((await get('guarded', k)).equals(body));
  });

  test('SSE-C headers on an object that is not SSE-C → 400 InvalidRequest', async () => {
    await s3s.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'plain-sse-s3', Body: 'x' }));
    await rejectsWith(s3s.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'plain-sse-s3', ...ssec(key()) })), 'InvalidRequest', 400);
  });

  test('multipart with three parts: every UploadPart repeats the key; a missing or different key is refused', async () => {
    const k = key();
    const parts = [randomBytes(5 * 1024 * 1024), randomBytes(5 * 1024 * 1024 + 17), randomBytes(1000)];
    const up = await s3s.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'mp', ...ssec(k) }));
    assert.equal(up.SSECustomerKeyMD5, k.md5);
    await rejectsWith(s3s.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'mp', UploadId: up.UploadId, PartNumber: 1, Body: parts[0] })), 'InvalidRequest', 400);
    await rejectsWith(s3s.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'mp', UploadId: up.UploadId, PartNumber: 1, Body: parts[0], ...ssec(key()) })), 'InvalidRequest', 400);
    const etags: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = await s3s.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'mp', UploadId: up.UploadId, PartNumber: i + 1, Body: parts[i], ...ssec(k) }));
      assert.equal(p.SSECustomerKeyMD5, k.md5);
      assert.equal(p.ServerSideEncryption, undefined);
      etags.push(p.ETag!);
    }
    const done = await s3s.send(
      new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: 'mp', UploadId: up.UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }),
    );
    assert.match(done.ETag!, /-3"$/);
    const all = Buffer.concat(parts);
    assert.ok((await get('mp', k)).equals(all));
    const span = await get('mp', k, { Range: `bytes=${5 * 1024 * 1024 - 10}-${5 * 1024 * 1024 + 10}` });
    assert.ok(span.equals(all.subarray(5 * 1024 * 1024 - 10, 5 * 1024 * 1024 + 11)));
    await rejectsWith(s3s.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'mp' })), 'InvalidRequest', 400);
  });

  test('UploadPartCopy from an SSE-C source into an SSE-C upload (both trios)', async () => {
    const src = key();
    const dst = key();
    const body = randomBytes(6 * 1024 * 1024);
    await s3s.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'upc-src', Body: body, ...ssec(src) }));
    const up = await s3s.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'upc-dst', ...ssec(dst) }));
    await rejectsWith(s3s.send(new UploadPartCopyCommand({ Bucket: BUCKET, Key: 'upc-dst', UploadId: up.UploadId, PartNumber: 1, CopySource: `${BUCKET}/upc-src`, ...ssec(dst) })), 'InvalidRequest', 400);
    const p1 = await s3s.send(
      new UploadPartCopyCommand({ Bucket: BUCKET, Key: 'upc-dst', UploadId: up.UploadId, PartNumber: 1, CopySource: `${BUCKET}/upc-src`, CopySourceRange: 'bytes=0-5242879', ...ssec(dst), ...copySsec(src) }),
    );
    const p2 = await s3s.send(
      new UploadPartCopyCommand({ Bucket: BUCKET, Key: 'upc-dst', UploadId: up.UploadId, PartNumber: 2, CopySource: `${BUCKET}/upc-src`, CopySourceRange: `bytes=5242880-${body.length - 1}`, ...ssec(dst), ...copySsec(src) }),
    );
    await s3s.send(
      new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: 'upc-dst', UploadId: up.UploadId, MultipartUpload: { Parts: [{ ETag: p1.CopyPartResult!.ETag, PartNumber: 1 }, { ETag: p2.CopyPartResult!.ETag, PartNumber: 2 }] } }),
    );
    assert.ok((await get('upc-dst', dst)).equals(body));
  });

  test('copy onto itself with a new key rotates the key without rewriting the data', async () => {
    const old = key();
    const next = key();
    const body = randomBytes(200_000);
    await s3s.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'rotate', Body: body, ...ssec(old) }));
    const before = blobFiles(srv.dataDir).sort();
    const r = await s3s.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'rotate', CopySource: `${BUCKET}/rotate`, ...ssec(next), ...copySsec(old) }));
    assert.equal(r.SSECustomerKeyMD5, next.md5);
    assert.deepEqual(blobFiles(srv.dataDir).sort(), before, 'no blob was written or removed: the data was not re-encrypted');
    assert.ok((await get('rotate', next)).equals(body));
    await rejectsWith(s3s.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'rotate', ...ssec(old) })), 'AccessDenied', 403);
    // Without the source key the copy is refused.
    await rejectsWith(s3s.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'rotate', CopySource: `${BUCKET}/rotate`, ...ssec(old) })), 'InvalidRequest', 400);
    await rejectsWith(s3s.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'rotate', CopySource: `${BUCKET}/rotate`, ...ssec(old), ...copySsec(old) })), 'AccessDenied', 403);
  });

  test('copy between modes: SSE-C → SSE-S3 → SSE-KMS → SSE-C, and to another key', async () => {
    const k = key();
    const body = randomBytes(70_000);
    await s3s.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'modes', Body: body, ...ssec(k) }));
    const toS3 = await s3s.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'modes-s3', CopySource: `${BUCKET}/modes`, ...copySsec(k) }));
    assert.equal(toS3.ServerSideEncryption, 'AES256');
    assert.equal(toS3.SSECustomerKeyMD5, undefined);
    assert.ok((await get('modes-s3')).equals(body));
    const kms = kmsClientFor(srv.httpUrl);
    const kmsKey = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    kms.destroy();
    const toKms = await s3s.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'modes-kms', CopySource: `${BUCKET}/modes-s3`, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: kmsKey.KeyId }));
    assert.equal(toKms.SSEKMSKeyId, kmsKey.Arn);
    const k2 = key();
    const back = await s3s.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'modes-back', CopySource: `${BUCKET}/modes-kms`, ...ssec(k2) }));
    assert.equal(back.SSECustomerKeyMD5, k2.md5);
    assert.ok((await get('modes-back', k2)).equals(body));
    // In place: SSE-C → SSE-S3 (the copy-source key names the change).
    await s3s.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'modes-back', CopySource: `${BUCKET}/modes-back`, ...copySsec(k2), ServerSideEncryption: 'AES256' }));
    assert.ok((await get('modes-back')).equals(body));
  });

  test('presigned GET: the algorithm is signed, the key headers are still required', async () => {
    const k = key();
    await s3s.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'presigned', Body: 'presigned secret', ...ssec(k) }));
    const url = await getSignedUrl(s3s, new GetObjectCommand({ Bucket: BUCKET, Key: 'presigned', ...ssec(k) }), { expiresIn: 300 });
    const fetchWith = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpsRequest(url, { ca: readFileSync(srv.caPath), headers }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const ok = await fetchWith({
      'x-amz-server-side-encryption-customer-algorithm': 'AES256',
      'x-amz-server-side-encryption-customer-key': k.b64,
      'x-amz-server-side-encryption-customer-key-md5': k.md5,
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'presigned secret');
    const without = await fetchWith({});
    assert.equal(without.status, 403, 'the signed headers are missing: the signature does not match');
  });

  test('over plain HTTP every SSE-C request is refused (400) and nothing is stored', async () => {
    const k = key();
    const before = blobFiles(srv.dataDir).length;
    const msg = 'Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.';
    const expect400 = async (p: Promise<unknown>) => {
      try {
        await p;
        assert.fail('accepted over HTTP');
      } catch (e) {
        const err = e as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
        assert.equal(err.$metadata?.httpStatusCode, 400);
        if (err.name !== '400' && err.name !== 'Unknown') {
          assert.equal(err.name, 'InvalidRequest');
          assert.equal(err.message, msg);
        }
      }
    };
    await expect400(srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'http-put', Body: randomBytes(100_000), ...ssec(k) })));
    await expect400(srv.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'http-mp', ...ssec(k) })));
    await expect400(srv.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'guarded', ...ssec(keys[0]!) })));
    await expect400(srv.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'guarded', ...ssec(keys[0]!) })));
    await expect400(srv.s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'http-copy', CopySource: `${BUCKET}/plain-sse-s3`, ...ssec(k) })));
    assert.equal(blobFiles(srv.dataDir).length, before);
    await rejectsStatus(s3s.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'http-put', ...ssec(k) })), 404);
  });

  test('a bucket blocks SSE-C by default: writes get 403, existing SSE-C objects stay readable', async () => {
    const enc = await s3s.send(new GetBucketEncryptionCommand({ Bucket: BLOCKED }));
    assert.deepEqual(enc.ServerSideEncryptionConfiguration!.Rules![0]!.BlockedEncryptionTypes?.EncryptionType, ['SSE-C']);
    const k = key();
    await rejectsWith(s3s.send(new PutObjectCommand({ Bucket: BLOCKED, Key: 'x', Body: 'x', ...ssec(k) })), 'AccessDenied', 403);
    await rejectsWith(s3s.send(new CreateMultipartUploadCommand({ Bucket: BLOCKED, Key: 'x', ...ssec(k) })), 'AccessDenied', 403);
    await rejectsWith(s3s.send(new CopyObjectCommand({ Bucket: BLOCKED, Key: 'x', CopySource: `${BUCKET}/plain-sse-s3`, ...ssec(k) })), 'AccessDenied', 403);
    // SSE-S3 and SSE-KMS writes go on.
    await s3s.send(new PutObjectCommand({ Bucket: BLOCKED, Key: 'fine', Body: 'fine' }));
    // Unblock, write SSE-C, block again: the object stays readable, new SSE-C writes (and parts) are refused.
    const rule = (types: string[]) => ({ Bucket: BLOCKED, ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' as const }, BlockedEncryptionTypes: { EncryptionType: types as 'SSE-C'[] } }] } });
    await s3s.send(new PutBucketEncryptionCommand(rule(['NONE'])));
    await s3s.send(new PutObjectCommand({ Bucket: BLOCKED, Key: 'kept', Body: 'kept', ...ssec(k) }));
    const up = await s3s.send(new CreateMultipartUploadCommand({ Bucket: BLOCKED, Key: 'mp', ...ssec(k) }));
    await s3s.send(new PutBucketEncryptionCommand(rule(['SSE-C'])));
    const denied = s3s.send(new UploadPartCommand({ Bucket: BLOCKED, Key: 'mp', UploadId: up.UploadId, PartNumber: 1, Body: 'p', ...ssec(k) }));
    await rejectsWith(denied, 'AccessDenied', 403);
    const r = await s3s.send(new GetObjectCommand({ Bucket: BLOCKED, Key: 'kept', ...ssec(k) }));
    assert.equal(await r.Body!.transformToString(), 'kept');
  });

  test('a write that committed stays whole even if recording the first-SSE-C-write event fails', async () => {
    await s3s.send(new CreateBucketCommand({ Bucket: 'ssec-event-fails' }));
    await s3s.send(new PutBucketEncryptionCommand({ Bucket: 'ssec-event-fails', ServerSideEncryptionConfiguration: { Rules: [{ BlockedEncryptionTypes: { EncryptionType: ['NONE'] } }] } }));
    const meta = srv.coffer.stores.meta;
    const original = meta.initSetting.bind(meta);
    meta.initSetting = async (name: string, value: string) => {
      if (name.startsWith('sse-c-first-write:')) throw new Error('disk full (injected)');
      return original(name, value);
    };
    try {
      const k = key();
      const body = randomBytes(100_000); // a blob, not inline
      await s3s.send(new PutObjectCommand({ Bucket: 'ssec-event-fails', Key: 'big', Body: body, ...ssec(k) }));
      const r = await s3s.send(new GetObjectCommand({ Bucket: 'ssec-event-fails', Key: 'big', ...ssec(k) }));
      assert.ok(Buffer.from(await r.Body!.transformToByteArray()).equals(body));
    } finally {
      meta.initSetting = original;
    }
  });

  test('SSE-C objects and parts keep no plaintext MD5 (ETags and the metadata store)', async () => {
    const k = key();
    const body = randomBytes(50_000);
    const md5 = md5hex(body);
    await s3s.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'nomd5', Body: body, ...ssec(k) }));
    assert.notEqual((await srv.coffer.stores.meta.getObject(BUCKET, 'nomd5'))!.streams[0]!.md5, md5);
    const up = await s3s.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'nomd5-mp', ...ssec(k) }));
    const p = await s3s.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'nomd5-mp', UploadId: up.UploadId, PartNumber: 1, Body: body, ...ssec(k) }));
    assert.notEqual(p.ETag, `"${md5}"`);
    await s3s.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: 'nomd5-mp', UploadId: up.UploadId, MultipartUpload: { Parts: [{ ETag: p.ETag, PartNumber: 1 }] } }));
    assert.ok((await get('nomd5-mp', k)).equals(body));
  });

  test('a multipart SSE-C upload is a first SSE-C write too', async () => {
    await s3s.send(new CreateBucketCommand({ Bucket: 'ssec-mp-only' }));
    await s3s.send(new PutBucketEncryptionCommand({ Bucket: 'ssec-mp-only', ServerSideEncryptionConfiguration: { Rules: [{ BlockedEncryptionTypes: { EncryptionType: ['NONE'] } }] } }));
    await s3s.send(new CreateMultipartUploadCommand({ Bucket: 'ssec-mp-only', Key: 'big', ...ssec(key()) }));
  });

  test('the first SSE-C write into a bucket is logged as a security event', async () => {
    const events = logLines
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { securityEvent?: string; bucket?: string })
      .filter((e) => e.securityEvent === 'first-sse-c-write');
    assert.deepEqual(events.map((e) => e.bucket).sort(), [BLOCKED, BUCKET, 'ssec-mp-only'].sort());
  });

  test('neither a key nor its MD5 is anywhere in the data directory or the logs', async () => {
    assert.ok(keys.length > 10);
    const needles: [string, Buffer][] = [];
    for (const k of keys) {
      needles.push(['key', k.raw], ['key (base64)', Buffer.from(k.b64)], ['key MD5', createHash('md5').update(k.raw).digest()], ['key MD5 (base64)', Buffer.from(k.md5)]);
      needles.push(['key MD5 (hex)', Buffer.from(md5hex(k.raw))], ['key (hex)', Buffer.from(k.raw.toString('hex'))]);
    }
    const logs = Buffer.from(logLines.join(''));
    for (const [what, n] of needles) assert.equal(logs.indexOf(n), -1, `${what} is in the logs`);
    const files = pathsUnder(srv.dataDir);
    assert.ok(files.length > 5);
    for (const file of files) {
      const bytes = readFileSync(file);
      for (const [what, n] of needles) assert.equal(bytes.indexOf(n), -1, `${what} is in ${file}`);
    }
  });
});
