// The KMS audit trail over a real SQLite store, with an injected clock: every call (success and
// failure) is one CloudTrail-shaped event with principal, operation, key and context; no
// plaintext, data key or ciphertext blob ever appears; KMS's own DeleteKey (end of the window)
// and RotateKey (rotation due) are recorded; the chain verifies, and an edited, re-filed or
// removed row is named; two stores on one file (as two processes) append without forking the
// chain; a trail that cannot be written fails the call; throttled calls are recorded.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { SecretKey } from '../../src/crypto/keys.ts';
import { verifyAuditTrail, type CloudTrailEvent } from '../../src/kms/audit.ts';
import { KmsError } from '../../src/kms/errors.ts';
import { KmsQuota } from '../../src/kms/quota.ts';
import { KmsService, type KmsCaller, type KmsDeps } from '../../src/kms/service.ts';
import { parsePolicy, type Policy } from '../../src/policy/index.ts';
import { canonicalJson, chainHash, GENESIS_HASH } from '../../src/shared/audit-chain.ts';
import type { AuditRecord } from '../../src/storage/ports.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite-meta/sqlite-metadata-store.ts';

const ACCOUNT = '123456789012';
const DAY = 86_400_000;
const root: KmsCaller = {
  principal: { type: 'Root', arn: `arn:aws:iam::${ACCOUNT}:root`, account: ACCOUNT, userId: ACCOUNT, accessKeyId: 'AKROOT' },
  sourceIp: '192.0.2.7',
  userAgent: 'test-agent/1.0',
  requestId: 'req-1',
};
const alice: KmsCaller = {
  principal: { type: 'IAMUser', arn: `arn:aws:iam::${ACCOUNT}:user/alice`, account: ACCOUNT, userId: 'AIDAALICE', userName: 'alice', accessKeyId: 'AKALICE' },
};

interface Ctx {
  kms: KmsService;
  store: SqliteMetadataStore;
  clock: { t: number };
  path: string;
  policies: Map<string, Policy[]>;
  events: () => Promise<{ r: AuditRecord; e: CloudTrailEvent }[]>;
}

async function withKms(fn: (c: Ctx) => Promise<void>, extra: Partial<KmsDeps> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-audit-'));
  const path = join(dir, 'metadata.db');
  const store = new SqliteMetadataStore(path);
  const clock = { t: Date.UTC(2026, 0, 1) };
  const policies = new Map<string, Policy[]>();
  const kms = new KmsService({
    store,
    root: SecretKey.from(Buffer.alloc(32, 7)),
    accountId: ACCOUNT,
    region: 'us-east-1',
    identityPolicies: async (p) => policies.get(p.userName ?? '') ?? [],
    now: () => clock.t,
    ...extra,
  });
  const events = async () => (await store.listAudit({ limit: 100_000 })).map((r) => ({ r, e: JSON.parse(r.event) as CloudTrailEvent }));
  try {
    await fn({ kms, store, clock, path, policies, events });
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fails(p: Promise<unknown>, type: string) {
  await assert.rejects(p, (e: unknown) => e instanceof KmsError && e.type === type);
}

test('every call is an event: CloudTrail shape, principal, operation, key as named, context in the clear', () =>
  withKms(async ({ kms, events }) => {
    const k = await kms.createKey(root, { description: 'audited' });
    await kms.createAlias(root, 'alias/app', k.KeyId);
    const dk = await kms.generateDataKey(root, { keyId: 'alias/app', keySpec: 'AES_256', context: { 'aws:s3:arn': 'arn:aws:s3:::b/k' }, withPlaintext: true });
    await kms.decrypt({ ...root, viaService: 's3.us-east-1.amazonaws.com' }, dk.blob, { 'aws:s3:arn': 'arn:aws:s3:::b/k' });
    const all = await events();
    assert.deepEqual(all.map(({ e }) => e.eventName), ['CreateKey', 'CreateAlias', 'GenerateDataKey', 'Decrypt']);
    const { e: gdk, r } = all[2]!;
    assert.equal(gdk.eventVersion, '1.11');
    assert.equal(gdk.eventSource, 'kms.amazonaws.com');
    assert.equal(gdk.eventType, 'AwsApiCall');
    assert.equal(gdk.eventTime, '2026-01-01T00:00:00Z');
    assert.equal(gdk.awsRegion, 'us-east-1');
    assert.equal(gdk.recipientAccountId, ACCOUNT);
    assert.deepEqual(gdk.userIdentity, { type: 'Root', principalId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:root`, accountId: ACCOUNT, accessKeyId: 'AKROOT' });
    assert.equal(gdk.sourceIPAddress, '192.0.2.7');
    assert.equal(gdk.userAgent, 'test-agent/1.0');
    assert.equal(gdk.requestID, 'req-1');
    assert.match(gdk.eventID, /^[0-9a-f-]{36}$/);
    assert.equal(gdk.readOnly, true);
    assert.deepEqual(gdk.requestParameters, { keyId: 'alias/app', keySpec: 'AES_256', encryptionContext: { 'aws:s3:arn': 'arn:aws:s3:::b/k' } });
    assert.equal(gdk.responseElements, null);
    assert.deepEqual(gdk.resources, [{ ARN: k.Arn, accountId: ACCOUNT, type: 'AWS::KMS::Key' }]);
    assert.deepEqual(r.keyIds, [k.KeyId]);
    assert.equal(r.principalArn, `arn:aws:iam::${ACCOUNT}:root`);
    // S3 calling on the user's behalf
    const dec = all[3]!.e;
    assert.equal(dec.userIdentity.invokedBy, 's3.amazonaws.com');
    assert.deepEqual(dec.resources.map((x) => x.ARN), [k.Arn], 'Decrypt names the key from the blob');
    // management: small responseElements
    assert.equal(all[0]!.e.readOnly, false);
    assert.equal((all[0]!.e.responseElements as { keyMetadata: { keyId: string } }).keyMetadata.keyId, k.KeyId);
    assert.deepEqual(all[1]!.e.requestParameters, { aliasName: 'alias/app', targetKeyId: k.KeyId });
    // Never a secret: no data key, plaintext or blob, in any encoding.
    const trail = all.map(({ r }) => r.event).join('\n');
    for (const secret of [dk.plaintext!, dk.blob]) {
      for (const enc of ['base64', 'hex', 'base64url'] as const) assert.ok(!trail.includes(secret.toString(enc)), `no ${enc} secret in the trail`);
    }
  }));

test('failures are recorded with errorCode and errorMessage: AccessDenied, Disabled, NotFound, validation', () =>
  withKms(async ({ kms, events, policies }) => {
    const k = await kms.createKey(root, {});
    await fails(kms.encrypt(alice, k.KeyId, Buffer.from('top secret plaintext'), { purpose: 'x' }), 'AccessDeniedException');
    policies.set('alice', [parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] }), { kind: 'identity' })]);
    await kms.disableKey(alice, k.KeyId);
    await fails(kms.generateDataKey(alice, { keyId: k.Arn, keySpec: 'AES_256', withPlaintext: true }), 'DisabledException');
    await fails(kms.describeKey(alice, 'alias/none'), 'NotFoundException');
    await fails(kms.generateRandom(alice, 5000), 'ValidationException');
    const all = await events();
    const failed = all.filter(({ e }) => e.errorCode);
    assert.deepEqual(failed.map(({ e }) => [e.eventName, e.errorCode]), [
      ['Encrypt', 'AccessDeniedException'],
      ['GenerateDataKey', 'DisabledException'],
      ['DescribeKey', 'NotFoundException'],
      ['GenerateRandom', 'ValidationException'],
    ]);
    const denied = failed[0]!;
    assert.match(denied.e.errorMessage!, /User: arn:aws:iam::123456789012:user\/alice is not authorized to perform: kms:Encrypt/);
    assert.equal(denied.e.responseElements, null);
    assert.deepEqual(denied.e.resources.map((x) => x.ARN), [k.Arn], 'a denied call names the key');
    assert.deepEqual(denied.e.requestParameters, { keyId: k.KeyId, encryptionContext: { purpose: 'x' }, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
    assert.equal(denied.e.userIdentity.userName, 'alice');
    assert.equal(denied.r.errorCode, 'AccessDeniedException');
    assert.ok(!all.some(({ r }) => r.event.includes('top secret') || r.event.includes(Buffer.from('top secret plaintext').toString('base64'))));
    assert.equal(kms.wasAudited(new Error('x')), false);
  }));

test("KMS's own events: DeleteKey at the end of the window (crypto-shredding), RotateKey when due", () =>
  withKms(async ({ kms, events, clock }) => {
    const k = await kms.createKey(root, {});
    const r = await kms.createKey(root, {});
    await kms.enableKeyRotation(root, r.KeyId, 90);
    await kms.scheduleKeyDeletion(root, k.KeyId, 7);
    clock.t += 91 * DAY;
    await fails(kms.describeKey(root, k.KeyId), 'NotFoundException');
    await kms.describeKey(root, r.KeyId); // rotation due
    const all = await events();
    const del = all.find(({ e }) => e.eventName === 'DeleteKey')!;
    assert.equal(del.e.eventType, 'AwsServiceEvent');
    assert.deepEqual(del.e.userIdentity, { accountId: ACCOUNT, invokedBy: 'kms.amazonaws.com' });
    assert.deepEqual(del.e.resources.map((x) => x.ARN), [k.Arn]);
    assert.equal(del.r.principalArn, 'kms.amazonaws.com');
    assert.equal(all.filter(({ e }) => e.eventName === 'DeleteKey').length, 1);
    const rot = all.find(({ e }) => e.eventName === 'RotateKey')!;
    assert.deepEqual(rot.e.resources.map((x) => x.ARN), [r.Arn]);
    const sched = all.find(({ e }) => e.eventName === 'ScheduleKeyDeletion')!;
    assert.deepEqual(sched.e.responseElements, { keyId: k.Arn, keyState: 'PendingDeletion', deletionDate: '2026-01-08T00:00:00.000Z', pendingWindowInDays: 7 });
    // Concurrent lookups after the window record one deletion.
    const j = await kms.createKey(root, {});
    await kms.scheduleKeyDeletion(root, j.KeyId, 7);
    clock.t += 8 * DAY;
    await Promise.all([1, 2, 3].map(() => kms.describeKey(root, j.KeyId).catch(() => undefined)));
    assert.equal((await events()).filter(({ e }) => e.eventName === 'DeleteKey' && e.resources[0]!.ARN === j.Arn).length, 1);
  }));

test('verify: intact, then an edited event, a re-filed row and a removed row are named', () =>
  withKms(async ({ kms, store, path }) => {
    const k = await kms.createKey(root, {});
    for (let i = 0; i < 5; i++) await kms.encrypt(root, k.KeyId, Buffer.from('x'), { n: String(i) });
    let v = await verifyAuditTrail(store);
    assert.equal(v.ok, true);
    assert.equal(v.count, 6);
    assert.equal(v.head!.seq, 6);
    // By hand: SHA-256 over the previous hash's bytes and the stored event text.
    const rows = await store.listAudit({});
    let prev = GENESIS_HASH;
    for (const r of rows) {
      assert.equal(canonicalJson(JSON.parse(r.event)), r.event, 'stored in canonical form');
      assert.equal(chainHash(prev, r.event), r.hash);
      prev = r.hash;
    }
    const db = new Database(path);
    try {
      const original = db.prepare<[number], { event: string }>('SELECT event FROM kms_audit WHERE seq = ?').get(3)!.event;
      db.prepare('UPDATE kms_audit SET event = ? WHERE seq = 3').run(original.replace('"n":"1"', '"n":"9"'));
      v = await verifyAuditTrail(store);
      assert.equal(v.ok, false);
      assert.equal(v.firstBad!.seq, 3);
      assert.match(v.firstBad!.reason, /hash mismatch/);
      assert.equal(v.count, 2);
      db.prepare('UPDATE kms_audit SET event = ? WHERE seq = 3').run(original);
      assert.equal((await verifyAuditTrail(store)).ok, true);
      // Hiding an event from a filter by changing its (unhashed) filter column.
      db.prepare("UPDATE kms_audit SET principal_arn = 'arn:aws:iam::123456789012:user/nobody' WHERE seq = 4").run();
      v = await verifyAuditTrail(store);
      assert.equal(v.firstBad!.seq, 4);
      assert.match(v.firstBad!.reason, /principal/);
      db.prepare("UPDATE kms_audit SET principal_arn = 'arn:aws:iam::123456789012:root' WHERE seq = 4").run();
      db.prepare('DELETE FROM kms_audit WHERE seq = 5').run();
      v = await verifyAuditTrail(store);
      assert.equal(v.firstBad!.seq, 5);
      assert.match(v.firstBad!.reason, /missing/);
    } finally {
      db.close();
    }
  }));

test('two stores on one database file (as two processes) append in turn: one unbroken chain', async () => {
  await withKms(async ({ kms, store, path }) => {
    const other = new SqliteMetadataStore(path);
    try {
      const kms2 = new KmsService({ store: other, root: SecretKey.from(Buffer.alloc(32, 7)), accountId: ACCOUNT, region: 'us-east-1', identityPolicies: async () => [] });
      const k = await kms.createKey(root, {});
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? kms : kms2).generateDataKey(root, { keyId: k.KeyId, numberOfBytes: 16, withPlaintext: false })),
      );
      const v = await verifyAuditTrail(store);
      assert.equal(v.ok, true, JSON.stringify(v.firstBad));
      assert.equal(v.count, 41);
    } finally {
      await other.close();
    }
  });
});

test('an event that cannot be stored fails the call (KMSInternalException): no record, no key', async () => {
  await withKms(async ({ store }) => {
    let broken = false;
    const flaky = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'appendAudit' && broken) return async () => Promise.reject(new Error('disk full'));
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const kms = new KmsService({ store: flaky, root: SecretKey.from(Buffer.alloc(32, 7)), accountId: ACCOUNT, region: 'us-east-1', identityPolicies: async () => [] });
    const k = await kms.createKey(root, {});
    broken = true;
    await fails(kms.generateDataKey(root, { keyId: k.KeyId, keySpec: 'AES_256', withPlaintext: true }), 'KMSInternalException');
    // A failed call that cannot be recorded still answers its own error.
    await fails(kms.describeKey(root, 'alias/none'), 'NotFoundException');
  });
});

test('quota: cryptographic operations over the limit are ThrottlingException, and recorded; management calls are not counted', () => {
  const clock = { t: Date.UTC(2026, 0, 1) };
  return withKms(
    async ({ kms, events }) => {
      const k = await kms.createKey(root, {});
      for (let i = 0; i < 20; i++) await kms.describeKey(root, k.KeyId); // not counted
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => kms.generateDataKey(root, { keyId: k.KeyId, keySpec: 'AES_256', withPlaintext: true })));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 5);
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.ok(rejected.every((r) => r.reason instanceof KmsError && r.reason.type === 'ThrottlingException'));
      const throttled = (await events()).filter(({ e }) => e.errorCode === 'ThrottlingException');
      assert.equal(throttled.length, 3);
      assert.equal(throttled[0]!.e.errorMessage, 'You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.');
      assert.deepEqual(throttled[0]!.e.resources.map((x) => x.ARN), [k.Arn]);
      const s = kms.quotaStatus();
      assert.equal(s.limit, 5);
      assert.equal(s.accounts[0]!.throttledTotal, 3);
      clock.t += 1000;
      await kms.encrypt(root, k.KeyId, Buffer.from('x'), undefined); // refilled
    },
    { quota: new KmsQuota({ limit: 5, now: () => clock.t }) },
  );
});
