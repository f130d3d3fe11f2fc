// KMS request quotas seen from S3: with a quota of 50 cryptographic operations per second, a
// burst of 500 concurrent SSE-KMS uploads gets 503 SlowDown ("Please reduce your request rate
// for operations involving AWS KMS.") for the excess, leaves no corrupt or partial object, and
// every upload succeeds when the SDK's standard retry mode retries it. The throttles show in
// the audit trail and in the quota status the admin sees.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import { ACCESS_KEY, SECRET_KEY, kmsClientFor, startTestServer, type TestServer } from '../helpers/coffer.ts';
import { assertS3Error, eventually, rawRequest } from '../helpers/raw-s3.ts';

const run = promisify(execFile);

const BUCKET = 'quota-burst';
const N = 500;
const body = (i: number) => `object ${i} `.repeat(300 + (i % 50));

describe('KMS quota through S3 (quota 50/s)', () => {
  let srv: TestServer;
  let keyId: string;
  const clients: S3Client[] = [];
  const client = (extra: Record<string, unknown>) => {
    const c = new S3Client({
      endpoint: srv.httpUrl,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
      ...extra,
    });
    clients.push(c);
    return c;
  };

  before(async () => {
    srv = await startTestServer({ config: { kmsQuota: 50 } });
    await srv.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    const kms = kmsClientFor(srv.httpUrl);
    keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    kms.destroy();
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await srv?.stop();
  });

  test('a burst of 500 concurrent uploads: the excess gets 503 SlowDown, nothing partial is stored', async () => {
    const c = client({ maxAttempts: 1 });
    const started = Date.now();
    const results = await Promise.allSettled(
      Array.from({ length: N }, (_, i) =>
        c.send(new PutObjectCommand({ Bucket: BUCKET, Key: `burst/${i}`, Body: body(i), ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyId })),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    for (const r of refused) {
      const e = r.reason as S3ServiceException;
      assert.equal(e.name, 'SlowDown', `unexpected ${e.name}: ${e.message}`);
      assert.equal(e.$metadata.httpStatusCode, 503);
      assert.equal(e.message, 'Please reduce your request rate for operations involving AWS KMS.');
    }
    // One second's worth passes at once, then 50 more per second the burst lasts.
    const seconds = (Date.now() - started) / 1000;
    assert.ok(ok >= 50 && ok <= 50 + 50 * Math.ceil(seconds) + 10, `${ok} uploads passed a 50/s quota in ${seconds.toFixed(1)} s`);
    assert.equal(ok + refused.length, N);

    // Exactly the successful uploads exist, each whole.
    const listed: string[] = [];
    let token: string | undefined;
    do {
      const page = await srv.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'burst/', ContinuationToken: token }));
      for (const o of page.Contents ?? []) listed.push(o.Key!);
      token = page.NextContinuationToken;
    } while (token);
    const succeeded = results.flatMap((r, i) => (r.status === 'fulfilled' ? [`burst/${i}`] : [])).sort();
    assert.deepEqual(listed.sort(), succeeded);
    // Reads are KMS Decrypt calls too: read them at a pace the quota allows, checking every byte.
    const reader = client({ retryMode: 'standard', maxAttempts: 10 });
    for (const key of succeeded.slice(0, 40)) {
      const i = Number(key.split('/')[1]);
      const got = await (await reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();
      assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(body(i)).digest('hex'));
    }

    // The throttles are in the audit trail, as the KMS's ThrottlingException, and in the quota status.
    const status = srv.coffer.kms.quotaStatus();
    assert.equal(status.limit, 50);
    const account = status.accounts.find((a) => a.accountId === srv.coffer.access.accountId)!;
    assert.ok(account.throttledTotal >= refused.length, `quota status counts ${account.throttledTotal} throttles`);

    // The admin sees it from another process: `coffer kms quota` reads what the server publishes.
    let shown: { limit: number; accounts: { accountId: string; throttledTotal: number; allowedTotal: number }[] } | undefined;
    await eventually(async () => {
      const r = await run(process.execPath, ['bin/coffer.js', 'kms', 'quota', '--json', '--data-dir', srv.dataDir]);
      shown = r.stdout.startsWith('{') ? JSON.parse(r.stdout) : undefined;
      return (shown?.accounts.find((a) => a.accountId === srv.coffer.access.accountId)?.throttledTotal ?? 0) >= refused.length;
    }, 'coffer kms quota shows the throttles', 10_000);
    assert.equal(shown!.limit, 50);
    const text = (await run(process.execPath, ['bin/coffer.js', 'kms', 'quota', '--data-dir', srv.dataDir])).stdout;
    assert.match(text, /KMS quota: 50 cryptographic operations per second per account/);
    assert.match(text, new RegExp(srv.coffer.access.accountId));
  });

  test('a raw request over the quota: 503 SlowDown in the S3 XML envelope', async () => {
    const port = srv.coffer.listeners.http!.port;
    const c = client({ maxAttempts: 1 });
    // A raw request inside a burst well over the quota (timing on a loaded machine decides
    // which requests of a burst are refused: try a few bursts until the raw one is).
    let refused: Awaited<ReturnType<typeof rawRequest>> | undefined;
    for (let attempt = 0; attempt < 10 && !refused; attempt++) {
      const burst = Promise.allSettled(
        Array.from({ length: 150 }, (_, i) => c.send(new PutObjectCommand({ Bucket: BUCKET, Key: `drain/${i}`, Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyId }))),
      );
      const res = await rawRequest(port, { method: 'PUT', path: `/${BUCKET}/raw`, headers: { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': keyId }, body: 'x' });
      await burst;
      if (res.status !== 200) refused = res;
    }
    assert.ok(refused, 'a raw request inside bursts of 150 at 50/s was never refused');
    assertS3Error(refused, 'SlowDown', 503, 'Please reduce your request rate for operations involving AWS KMS.');
  });

  test("with the SDK's standard retry mode, all 500 uploads of a burst succeed", async () => {
    // One client per 10 uploads: the standard retry mode keeps a retry budget per client.
    const pool = Array.from({ length: N / 10 }, () => client({ retryMode: 'standard', maxAttempts: 12 }));
    const started = Date.now();
    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        pool[i % pool.length]!.send(new PutObjectCommand({ Bucket: BUCKET, Key: `retried/${i}`, Body: body(i), ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyId })),
      ),
    );
    // At 50 per second, 500 uploads cannot have finished in much under 9 seconds: they were throttled and retried.
    assert.ok(Date.now() - started > 5000, 'the burst was not throttled');
    let count = 0;
    let token: string | undefined;
    do {
      const page = await srv.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'retried/', ContinuationToken: token }));
      count += page.KeyCount ?? 0;
      token = page.NextContinuationToken;
    } while (token);
    assert.equal(count, N);
  });
});
