// KmsService over a real SQLite store with an injected clock: key states, the deletion window
// ending (material destroyed), automatic and on-demand rotation, the context binding through
// the service's errors, and authorization with the key policy.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SecretKey } from '../../src/crypto/keys.ts';
import { KmsError } from '../../src/kms/errors.ts';
import { KmsService, type KmsCaller } from '../../src/kms/service.ts';
import { parsePolicy, type Policy } from '../../src/policy/index.ts';
import type { Principal } from '../../src/service/identities.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite-meta/sqlite-metadata-store.ts';

const ACCOUNT = '123456789012';
const DAY = 86_400_000;
const root: KmsCaller = { principal: { type: 'Root', arn: `arn:aws:iam::${ACCOUNT}:root`, account: ACCOUNT, userId: ACCOUNT } };
const alice: Principal = { type: 'IAMUser', arn: `arn:aws:iam::${ACCOUNT}:user/alice`, account: ACCOUNT, userId: 'AIDAALICE', userName: 'alice' };

async function withKms(fn: (kms: KmsService, clock: { t: number }, userPolicies: Map<string, Policy[]>, store: SqliteMetadataStore) => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-kms-'));
  const store = new SqliteMetadataStore(join(dir, 'metadata.db'));
  const clock = { t: Date.UTC(2026, 0, 1) };
  const userPolicies = new Map<string, Policy[]>();
  const kms = new KmsService({
    store,
    root: SecretKey.from(Buffer.alloc(32, 7)),
    accountId: ACCOUNT,
    region: 'us-east-1',
    identityPolicies: async (p) => userPolicies.get(p.userName ?? '') ?? [],
    now: () => clock.t,
  });
  try {
    await fn(kms, clock, userPolicies, store);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rejects(p: Promise<unknown>, name: string, message?: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof KmsError, String(e));
    assert.equal(e.type, name, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

test('encrypt/decrypt: context must match, other key refused, tamper detected', () =>
  withKms(async (kms) => {
    const a = await kms.createKey(root, {});
    const b = await kms.createKey(root, {});
    const { blob, keyArn } = await kms.encrypt(root, a.KeyId, Buffer.from('secret'), { k: 'v' });
    assert.equal(keyArn, a.Arn);
    assert.equal((await kms.decrypt(root, blob, { k: 'v' })).plaintext.toString(), 'secret');
    await rejects(kms.decrypt(root, blob, { k: 'V' }), 'InvalidCiphertextException');
    await rejects(kms.decrypt(root, blob, undefined), 'InvalidCiphertextException');
    await rejects(kms.decrypt(root, blob, { k: 'v' }, b.KeyId), 'IncorrectKeyException');
    const t = Buffer.from(blob);
    t[t.length - 1]! ^= 1;
    await rejects(kms.decrypt(root, t, { k: 'v' }), 'InvalidCiphertextException');
    await rejects(kms.decrypt(root, Buffer.from('garbage'), undefined), 'InvalidCiphertextException');
    await rejects(kms.encrypt(root, a.KeyId, Buffer.alloc(4097), undefined), 'ValidationException');
  }));

test('states: disabled and pending deletion refuse use; cancel leaves Disabled; the window ends in deletion', () =>
  withKms(async (kms, clock, _p, store) => {
    const k = await kms.createKey(root, { description: 'd' });
    const { blob } = await kms.encrypt(root, k.KeyId, Buffer.from('x'), undefined);
    await kms.disableKey(root, k.KeyId);
    await rejects(kms.decrypt(root, blob, undefined), 'DisabledException', /is disabled/);
    await kms.enableKey(root, k.KeyId);
    await rejects(kms.scheduleKeyDeletion(root, k.KeyId, 6), 'ValidationException');
    const s = await kms.scheduleKeyDeletion(root, k.KeyId, 7);
    assert.equal(s.deletionDate, (clock.t + 7 * DAY) / 1000);
    await rejects(kms.encrypt(root, k.KeyId, Buffer.from('x'), undefined), 'KMSInvalidStateException', /pending deletion/);
    await rejects(kms.enableKey(root, k.KeyId), 'KMSInvalidStateException');
    await kms.cancelKeyDeletion(root, k.KeyId);
    assert.equal((await kms.describeKey(root, k.KeyId)).KeyState, 'Disabled');
    await rejects(kms.cancelKeyDeletion(root, k.KeyId), 'KMSInvalidStateException');
    await kms.scheduleKeyDeletion(root, k.KeyId, 7);
    clock.t += 7 * DAY - 1;
    assert.equal((await kms.describeKey(root, k.KeyId)).KeyState, 'PendingDeletion');
    clock.t += 1;
    await rejects(kms.describeKey(root, k.KeyId), 'NotFoundException');
    assert.deepEqual(await store.listKmsMaterials(k.KeyId), [], 'the material is destroyed');
    await rejects(kms.decrypt(root, blob, undefined), 'InvalidCiphertextException');
  }));

test('rotation: on demand and automatic; old ciphertexts still decrypt; ListKeyRotations', () =>
  withKms(async (kms, clock) => {
    const k = await kms.createKey(root, {});
    const old = (await kms.encrypt(root, k.KeyId, Buffer.from('v1'), undefined)).blob;
    await kms.rotateKeyOnDemand(root, k.KeyId);
    const newer = (await kms.encrypt(root, k.KeyId, Buffer.from('v2'), undefined)).blob;
    assert.equal(old.readUInt32BE(17), 1);
    assert.equal(newer.readUInt32BE(17), 2);
    assert.equal((await kms.decrypt(root, old, undefined)).plaintext.toString(), 'v1');
    await kms.enableKeyRotation(root, k.KeyId, 90);
    const st = await kms.getKeyRotationStatus(root, k.KeyId);
    assert.equal(st.enabled, true);
    assert.equal(st.periodInDays, 90);
    clock.t += 90 * DAY;
    const third = (await kms.encrypt(root, k.KeyId, Buffer.from('v3'), undefined)).blob;
    assert.equal(third.readUInt32BE(17), 3, 'rotated automatically when due');
    const rot = await kms.listKeyRotations(root, k.KeyId);
    assert.deepEqual(rot.items.map((r) => r.RotationType), ['ON_DEMAND', 'AUTOMATIC']);
    await rejects(kms.enableKeyRotation(root, k.KeyId, 89), 'ValidationException');
    for (let i = 0; i < 9; i++) await kms.rotateKeyOnDemand(root, k.KeyId);
    await rejects(kms.rotateKeyOnDemand(root, k.KeyId), 'LimitExceededException');
    for (const b of [old, newer, third]) assert.ok((await kms.decrypt(root, b, undefined)).plaintext.length);
  }));

test('aliases and alias/aws/s3; reserved prefix', () =>
  withKms(async (kms) => {
    const k = await kms.createKey(root, {});
    await kms.createAlias(root, 'alias/app', k.KeyId);
    await rejects(kms.createAlias(root, 'alias/app', k.KeyId), 'AlreadyExistsException');
    await rejects(kms.createAlias(root, 'alias/aws/mine', k.KeyId), 'NotAuthorizedException');
    await rejects(kms.createAlias(root, 'app', k.KeyId), 'ValidationException');
    assert.equal((await kms.describeKey(root, 'alias/app')).KeyId, k.KeyId);
    assert.equal((await kms.describeKey(root, `arn:aws:kms:us-east-1:${ACCOUNT}:alias/app`)).KeyId, k.KeyId);
    await rejects(kms.enableKey(root, 'alias/app'), 'NotFoundException');
    const managed = await kms.describeKey(root, 'alias/aws/s3');
    assert.equal(managed.KeyManager, 'AWS');
    assert.equal((await kms.describeKey(root, 'alias/aws/s3')).KeyId, managed.KeyId, 'created once');
    // The managed key's policy allows use only through S3.
    await rejects(kms.encrypt(root, 'alias/aws/s3', Buffer.from('x'), undefined), 'AccessDeniedException');
    const viaS3 = { ...root, viaService: 's3.us-east-1.amazonaws.com' };
    assert.ok((await kms.encrypt(viaS3, 'alias/aws/s3', Buffer.from('x'), undefined)).blob.length);
    await rejects(kms.describeKey(root, 'alias/nope'), 'NotFoundException');
    await rejects(kms.describeKey(root, 'arn:aws:kms:eu-west-1:123456789012:key/' + k.KeyId), 'NotFoundException');
  }));

test('authorization: key policy delegation to identity policies; AWS messages; lockout check', () =>
  withKms(async (kms, _clock, userPolicies) => {
    const k = await kms.createKey(root, {});
    const user: KmsCaller = { principal: alice };
    await rejects(
      kms.encrypt(user, k.KeyId, Buffer.from('x'), undefined),
      'AccessDeniedException',
      new RegExp(`^User: arn:aws:iam::${ACCOUNT}:user/alice is not authorized to perform: kms:Encrypt on resource: ${k.Arn.replace(/[.]/g, '\\.')} because no identity-based policy allows the kms:Encrypt action$`),
    );
    userPolicies.set('alice', [
      parsePolicy(
        JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Action: ['kms:Encrypt', 'kms:Decrypt'], Resource: '*' },
            { Effect: 'Deny', Action: 'kms:Decrypt', Resource: '*', Condition: { StringNotEquals: { 'kms:EncryptionContext:team': 'blue' } } },
          ],
        }),
        { kind: 'identity' },
      ),
    ]);
    const blob = (await kms.encrypt(user, k.KeyId, Buffer.from('x'), { team: 'blue' })).blob;
    assert.equal((await kms.decrypt(user, blob, { team: 'blue' })).plaintext.toString(), 'x');
    const red = (await kms.encrypt(user, k.KeyId, Buffer.from('x'), { team: 'red' })).blob;
    await rejects(kms.decrypt(user, red, { team: 'red' }), 'AccessDeniedException', /with an explicit deny in an identity-based policy/);
    // A key policy that names only root: alice's identity policy no longer counts.
    const onlyRoot = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*', Condition: { StringEquals: { 'aws:PrincipalType': 'Account' } } }],
    });
    await kms.putKeyPolicy(root, k.KeyId, 'default', onlyRoot);
    await rejects(kms.encrypt(user, k.KeyId, Buffer.from('x'), undefined), 'AccessDeniedException', /because no resource-based policy allows the kms:Encrypt action$/);
    await rejects(
      kms.putKeyPolicy(root, k.KeyId, 'default', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: alice.arn }, Action: 'kms:Encrypt', Resource: '*' }] })),
      'MalformedPolicyDocumentException',
      /will not allow you to update the key policy/,
    );
    await rejects(kms.putKeyPolicy(root, k.KeyId, 'default', '{"Statement": 3}'), 'MalformedPolicyDocumentException');
    await rejects(kms.createKey(user, {}), 'AccessDeniedException', /on resource: \* because no identity-based policy allows the kms:CreateKey action/);
  }));
