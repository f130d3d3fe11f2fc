// What the server logs at debug level, captured from a real server driven by the SDK and raw
// requests (PUT, GET, multipart, SSE-C, refusals including SignatureDoesNotMatch, an internal
// error): every request is logged with its request id and operation name, and no secret ever
// appears: not the root secret key, the root key, any object's data key, any Authorization or
// chunk signature, an SSE-C key, nor any object plaintext.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createLogger } from '../../src/shared/logger.ts';
import { ROOT_KEY, SECRET_KEY, startTestServer, type TestServer } from '../helpers/coffer.ts';
import { eventually, rawRequest, send, sendPartly, signRequest } from '../helpers/raw-s3.ts';
import { fanOut } from '../../src/storage/fs-blob/fs-blob-store.ts';

const BUCKET = 'logs';
const lines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    cb();
  },
});

let srv: TestServer;
let port: number;
/** Every Authorization header signature the SDK clients sent. */
const signatures: string[] = [];
/** Every x-amz-request-id the server answered with. */
const requestIds: string[] = [];
/** Secrets that must not appear in the logs, with what they are. */
const secrets: [string, string][] = [];

function record(c: S3Client): void {
  c.middlewareStack.add(
    (next) => async (args) => {
      const auth = (args.request as { headers: Record<string, string> }).headers.authorization;
      const m = auth && /Signature=([0-9a-f]{64})/.exec(auth);
      if (m) signatures.push(m[1]!);
      try {
        const out = await next(args);
        const id = (out.response as { headers: Record<string, string> }).headers['x-amz-request-id'];
        if (id) requestIds.push(id);
        return out;
      } catch (e) {
        const id = (e as { $metadata?: { requestId?: string } }).$metadata?.requestId;
        if (id) requestIds.push(id);
        throw e;
      }
    },
    { step: 'deserialize', name: 'recordSignature' },
  );
}

const plaintext = (label: string) => `PLAINTEXT-${label}-${randomBytes(12).toString('hex')}`;

before(async () => {
  srv = await startTestServer({ log: createLogger('debug', sink) });
  port = srv.coffer.listeners.http!.port;
  record(srv.s3);
  record(srv.s3s);
  secrets.push(['root secret key', SECRET_KEY], ['root key (hex)', ROOT_KEY], ['root key (base64)', Buffer.from(ROOT_KEY, 'hex').toString('base64')]);
});
after(async () => {
  await srv?.stop();
});

async function dataKeyOf(key: string): Promise<Buffer> {
  const obj = (await srv.coffer.stores.meta.getObject(BUCKET, key))!;
  const dk = await srv.coffer.stores.masterKeys.openDataKey(obj.sse, { bucket: BUCKET, key, versionId: obj.versionId });
  const bytes = Buffer.from(dk.expose());
  dk.zero();
  return bytes;
}

test('a day of traffic leaves request ids and operation names in the logs, and no secret', async () => {
  // PUT and GET (HTTP and HTTPS)
  await srv.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const small = plaintext('small');
  await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'small', Body: small }));
  assert.equal(await (await srv.s3s.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'small' }))).Body!.transformToString(), small);
  await srv.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'small' }));

  // Multipart
  const part1 = Buffer.concat([Buffer.from(plaintext('part1')), Buffer.alloc(5 * 1024 * 1024, 0x41)]);
  const part2 = plaintext('part2');
  const up = await srv.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'multi' }));
  const p1 = await srv.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'multi', UploadId: up.UploadId, PartNumber: 1, Body: part1 }));
  const p2 = await srv.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'multi', UploadId: up.UploadId, PartNumber: 2, Body: part2 }));
  await srv.s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: BUCKET,
      Key: 'multi',
      UploadId: up.UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag! }, { PartNumber: 2, ETag: p2.ETag! }] },
    }),
  );
  await (await srv.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'multi' }))).Body!.transformToByteArray();

  // Refusals
  await assert.rejects(srv.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'missing' })), { name: 'NoSuchKey' });
  const ssecKey = randomBytes(32).toString('base64');
  // New buckets block SSE-C (403); over plain HTTP it is refused before anything else (400).
  await assert.rejects(
    srv.s3s.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'ssec', Body: plaintext('ssec'), SSECustomerAlgorithm: 'AES256', SSECustomerKey: ssecKey })),
    { name: 'AccessDenied' },
  );
  await assert.rejects(
    srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'ssec', Body: plaintext('ssec'), SSECustomerAlgorithm: 'AES256', SSECustomerKey: ssecKey })),
    { name: 'InvalidRequest' },
  );
  await assert.rejects(srv.s3.send(new GetObjectAclCommand({ Bucket: BUCKET, Key: 'small' })), { name: 'NotImplemented' });
  secrets.push(['SSE-C key', ssecKey], ['SSE-C key MD5', createHash('md5').update(Buffer.from(ssecKey, 'base64')).digest('base64')]);

  const badSigBody = plaintext('badsig');
  const bad = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/badsig`, body: badSigBody, secret: 'a-wrong-secret-key-0000000000000000000000' });
  assert.equal(bad.status, 403);
  assert.match(bad.body, /<Code>SignatureDoesNotMatch<\/Code>/);
  const provided = /<SignatureProvided>([0-9a-f]+)</.exec(bad.body)![1]!;
  signatures.push(provided);
  requestIds.push(bad.headers['x-amz-request-id'] as string);
  secrets.push(['plaintext of a refused PUT', badSigBody]);

  const unknown = await rawRequest(port, { method: 'GET', path: `/${BUCKET}/small`, accessKey: 'AKUNKNOWN00000000000' });
  assert.equal(unknown.status, 403);
  requestIds.push(unknown.headers['x-amz-request-id'] as string);
  const anon = await send(port, 'GET', `/${BUCKET}/small`, { host: `127.0.0.1:${port}` });
  assert.equal(anon.status, 403);
  requestIds.push(anon.headers['x-amz-request-id'] as string);
  const malformed = await rawRequest(port, { method: 'POST', path: `/${BUCKET}/multi`, query: { uploadId: 'nope' }, body: `<${plaintext('xml')}` });
  requestIds.push(malformed.headers['x-amz-request-id'] as string);

  // An internal error: the blob of an object vanishes.
  // (large enough to live in the blob store, not inline in the metadata)
  const lost = plaintext('lost').padEnd(64 * 1024, '.');
  await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'lost', Body: lost }));
  secrets.push(['data key of lost (hex)', (await dataKeyOf('lost')).toString('hex')]);
  const rec = (await srv.coffer.stores.meta.getObject(BUCKET, 'lost'))!;
  const blobId = rec.streams[0]!.blobId;
  rmSync(join(srv.dataDir, 'blobs', fanOut(blobId), blobId), { force: true });
  await assert.rejects(srv.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'lost' })), { name: 'InternalError' });

  // A client that closes the connection halfway through an upload: no server fault.
  const cut = await signRequest({ method: 'PUT', path: `/${BUCKET}/cut`, headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-length': String(2 * 1024 * 1024) } }, port);
  await sendPartly(port, 'PUT', cut, Buffer.alloc(1024 * 1024, 0x42));
  await eventually(() => lines.some((l) => l.includes('"disconnected":true')), 'the cut-off upload is logged');

  for (const key of ['small', 'multi']) {
    const dk = await dataKeyOf(key);
    secrets.push([`data key of ${key} (hex)`, dk.toString('hex')], [`data key of ${key} (base64)`, dk.toString('base64')]);
  }
  secrets.push(['plaintext small', small], ['plaintext part 1', part1.subarray(0, 40).toString()], ['plaintext part 2', part2], ['plaintext lost', lost]);
  for (const s of signatures) secrets.push(['a request signature', s]);

  await srv.stop();
  await new Promise((r) => setImmediate(r));
  const text = lines.join('\n');
  assert.ok(lines.length > 20, `expected many log lines, got ${lines.length}`);
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);

  // Request ids and operation names.
  const logged = new Set(parsed.map((p) => p.reqId).filter(Boolean));
  for (const id of requestIds) assert.ok(logged.has(id), `request id ${id} is in the logs`);
  const ops = new Set(parsed.filter((p) => p.msg === 'request').map((p) => p.op));
  for (const op of ['CreateBucket', 'PutObject', 'GetObject', 'HeadObject', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload']) {
    assert.ok(ops.has(op), `op ${op} is logged`);
  }
  const refused = parsed.filter((p) => p.msg === 'request refused' || p.msg === 'request failed').map((p) => p.code);
  for (const code of ['NoSuchKey', 'SignatureDoesNotMatch', 'InvalidAccessKeyId', 'AccessDenied', 'NotImplemented']) {
    assert.ok(refused.includes(code), `refusal ${code} is logged`);
  }
  // Refused requests carry their operation too, even when authentication refused them.
  const sigRefusal = parsed.find((p) => p.code === 'SignatureDoesNotMatch' && p.reqId === bad.headers['x-amz-request-id']);
  assert.equal(sigRefusal?.op, 'PutObject');
  const failed = parsed.find((p) => p.level === 50 && typeof p.reqId === 'string');
  assert.ok(failed, 'the internal error is logged at error level with its request id');
  // ... and it is the only error: the cut-off upload is a request without a status, not a fault.
  // (the SDK retries an InternalError: the same message up to three times)
  assert.deepEqual(new Set(parsed.filter((p) => (p.level as number) >= 50).map((p) => p.msg)), new Set(['object data is missing from the blob store']));
  const disconnected = parsed.filter((p) => p.msg === 'request' && p.disconnected === true);
  assert.deepEqual(
    disconnected.map((p) => [p.op, p.status]),
    [['PutObject', undefined]],
  );
  for (const p of parsed.filter((p) => p.msg === 'request' && !p.disconnected)) {
    assert.equal(typeof p.status, 'number');
    assert.equal(typeof p.ms, 'number');
  }

  // No secret, in any form we know.
  assert.ok(secrets.length > 15);
  for (const [what, value] of secrets) {
    assert.ok(value.length >= 16, what);
    assert.ok(!text.includes(value), `the logs contain the ${what}`);
  }
  assert.ok(!/AWS4-HMAC-SHA256 Credential=/.test(text), 'no Authorization header');
  assert.ok(!/X-Amz-Signature=/i.test(text), 'no presigned signature');
});
