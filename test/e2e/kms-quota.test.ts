// The KMS request quota through @aws-sdk/client-kms: with 50 requests per second, a burst of
// 200 concurrent GenerateDataKey calls without retries gets ThrottlingException (HTTP 400,
// AWS's message) for the excess and about one second's worth succeeds; with the SDK's standard
// retries a burst the quota can clear all succeeds; throttled calls are in the audit trail;
// quotaStatus() reports them; management calls are not counted.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Agent } from 'node:http';
import { CreateKeyCommand, DescribeKeyCommand, GenerateDataKeyCommand, KMSClient, type KMSServiceException } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ACCESS_KEY, SECRET_KEY, startTestServer, type TestServer } from '../helpers/coffer.ts';

describe('KMS request quota (e2e, 50/s)', () => {
  let srv: TestServer;
  let keyId: string;
  const clients: KMSClient[] = [];
  const client = (maxAttempts: number) => {
    // Enough sockets for the whole burst at once (the SDK's default is 50).
    const c = new KMSClient({
      endpoint: srv.httpUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
      maxAttempts,
      requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 256 }) }),
    });
    clients.push(c);
    return c;
  };

  before(async () => {
    srv = await startTestServer({ config: { kmsQuota: 50 } });
    const { KeyMetadata } = await client(1).send(new CreateKeyCommand({}));
    keyId = KeyMetadata!.KeyId!;
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await srv?.stop();
  });

  test('a burst of 200 without retries: the excess is ThrottlingException, about 50 succeed; all audited', async () => {
    const kms = client(1);
    // Management calls do not count against the quota.
    for (let i = 0; i < 60; i++) await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    const before = (await srv.coffer.stores.meta.auditHead())!.seq;
    await new Promise((r) => setTimeout(r, 1100)); // a full bucket
    const started = Date.now();
    const results = await Promise.allSettled(Array.from({ length: 200 }, () => kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }))));
    const elapsed = (Date.now() - started) / 1000;
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const errors = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as KMSServiceException);
    for (const e of errors) {
      assert.equal(e.name, 'ThrottlingException', e.message);
      assert.equal(e.$metadata.httpStatusCode, 400);
      assert.equal(e.message, 'You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.');
    }
    assert.ok(ok >= 50, `${ok} succeeded: a full second's worth should pass`);
    assert.ok(ok <= 50 + Math.ceil(elapsed * 50) + 2, `${ok} succeeded in ${elapsed}s: at most 50 + the refill`);
    assert.ok(errors.length >= 100, `${errors.length} throttled (${ok} succeeded in ${elapsed}s)`);

    const trail = await srv.coffer.stores.meta.listAudit({ afterSeq: before, eventName: 'GenerateDataKey', limit: 10_000 });
    assert.equal(trail.length, 200, 'every call, allowed or throttled, is recorded');
    assert.equal(trail.filter((r) => r.errorCode === 'ThrottlingException').length, errors.length);
    assert.equal(trail.filter((r) => r.errorCode === undefined).length, ok);

    const status = srv.coffer.kms.quotaStatus();
    assert.equal(status.limit, 50);
    assert.equal(status.scope, 'node');
    const acct = status.accounts.find((a) => a.accountId === srv.coffer.access.accountId)!;
    assert.equal(acct.throttledTotal, errors.length);
  });

  test("with the SDK's standard retries (maxAttempts 10) a burst the quota can clear all succeeds", async () => {
    await new Promise((r) => setTimeout(r, 1100));
    const kms = client(10);
    const results = await Promise.allSettled(Array.from({ length: 80 }, () => kms.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: 32 }))));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(failed.length, 0, failed.map((f) => String(f.reason)).slice(0, 3).join('; '));
    const retried = results.filter((r) => r.status === 'fulfilled' && (r.value.$metadata.attempts ?? 1) > 1).length;
    assert.ok(retried > 0, 'some calls were throttled and retried');
  });
});
