// The KMS JSON 1.1 API on Coffer's endpoint, driven by @aws-sdk/client-kms over HTTP and HTTPS:
// every operation, AWS's error names and statuses through the SDK, Decrypt without KeyId after
// rotation, disabled and pending-deletion keys refused, a user the key policy does not admit,
// raw protocol errors, and S3 on the same endpoint unaffected.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  KMSClient,
  ListAliasesCommand,
  ListKeyPoliciesCommand,
  ListKeyRotationsCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  PutKeyPolicyCommand,
  ReEncryptCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import { rejectsKms } from '../helpers/kms.ts';
import { kmsClientFor, startTestServer, type TestServer } from '../helpers/coffer.ts';


const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('utf8');

describe('KMS JSON API (e2e, @aws-sdk/client-kms)', () => {
  let srv: TestServer;
  let kms: KMSClient;
  let kmss: KMSClient;
  let account: string;

  before(async () => {
    srv = await startTestServer();
    kms = kmsClientFor(srv.httpUrl);
    kmss = kmsClientFor(srv.httpsUrl, { caPath: srv.caPath });
    account = srv.coffer.access.accountId;
  });
  after(async () => {
    kms.destroy();
    kmss.destroy();
    await srv.stop();
  });

  test('CreateKey / DescribeKey / ListKeys: metadata as AWS shapes it', async () => {
    const { KeyMetadata: m } = await kms.send(new CreateKeyCommand({ Description: 'first', Tags: [{ TagKey: 'team', TagValue: 'blue' }] }));
    assert.ok(m);
    assert.match(m.KeyId!, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(m.Arn, `arn:aws:kms:us-east-1:${account}:key/${m.KeyId}`);
    assert.equal(m.AWSAccountId, account);
    assert.equal(m.KeyState, 'Enabled');
    assert.equal(m.Enabled, true);
    assert.equal(m.KeySpec, 'SYMMETRIC_DEFAULT');
    assert.equal(m.KeyUsage, 'ENCRYPT_DECRYPT');
    assert.equal(m.KeyManager, 'CUSTOMER');
    assert.equal(m.Origin, 'AWS_KMS');
    assert.deepEqual(m.EncryptionAlgorithms, ['SYMMETRIC_DEFAULT']);
    assert.ok(m.CreationDate instanceof Date && Math.abs(m.CreationDate.getTime() - Date.now()) < 60_000);
    for (const id of [m.KeyId, m.Arn]) {
      const d = await kmss.send(new DescribeKeyCommand({ KeyId: id }));
      assert.equal(d.KeyMetadata!.Description, 'first');
    }
    const more = await Promise.all([1, 2, 3].map(() => kms.send(new CreateKeyCommand({}))));
    const all = await kms.send(new ListKeysCommand({}));
    for (const k of [m, ...more.map((x) => x.KeyMetadata!)]) assert.ok(all.Keys!.some((x) => x.KeyId === k.KeyId && x.KeyArn === k.Arn));
    assert.equal(all.Truncated, false);
    // Paging with Limit and Marker visits every key once.
    const seen: string[] = [];
    let marker: string | undefined;
    do {
      const p = await kms.send(new ListKeysCommand({ Limit: 2, ...(marker ? { Marker: marker } : {}) }));
      seen.push(...p.Keys!.map((k) => k.KeyId!));
      marker = p.Truncated ? p.NextMarker : undefined;
    } while (marker);
    assert.deepEqual(seen, all.Keys!.map((k) => k.KeyId));
    await rejectsKms(kms.send(new ListKeysCommand({ Marker: 'not a marker!' })), 'InvalidMarkerException');
    await rejectsKms(kms.send(new DescribeKeyCommand({ KeyId: '00000000-0000-4000-8000-000000000000' })), 'NotFoundException', 400, /does not exist/);
    await rejectsKms(kms.send(new CreateKeyCommand({ KeySpec: 'RSA_2048' })), 'UnsupportedOperationException');
  });

  test('Encrypt / Decrypt / ReEncrypt with the encryption context; Decrypt needs no KeyId', async () => {
    const a = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const b = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const ctx = { Department: 'Engineering', Project: 'Alpha' };
    const e = await kms.send(new EncryptCommand({ KeyId: a.KeyId, Plaintext: enc('hello kms'), EncryptionContext: ctx }));
    assert.equal(e.KeyId, a.Arn);
    assert.equal(e.EncryptionAlgorithm, 'SYMMETRIC_DEFAULT');
    const d = await kmss.send(new DecryptCommand({ CiphertextBlob: e.CiphertextBlob, EncryptionContext: { Project: 'Alpha', Department: 'Engineering' } }));
    assert.equal(dec(d.Plaintext), 'hello kms');
    assert.equal(d.KeyId, a.Arn);
    await rejectsKms(kms.send(new DecryptCommand({ CiphertextBlob: e.CiphertextBlob })), 'InvalidCiphertextException');
    await rejectsKms(kms.send(new DecryptCommand({ CiphertextBlob: e.CiphertextBlob, EncryptionContext: { ...ctx, Project: 'alpha' } })), 'InvalidCiphertextException');
    await rejectsKms(kms.send(new DecryptCommand({ CiphertextBlob: e.CiphertextBlob, EncryptionContext: ctx, KeyId: b.KeyId })), 'IncorrectKeyException');
    const tampered = Buffer.from(e.CiphertextBlob!);
    tampered[30]! ^= 1;
    await rejectsKms(kms.send(new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: ctx })), 'InvalidCiphertextException');
    await rejectsKms(kms.send(new DecryptCommand({ CiphertextBlob: enc('not a ciphertext') })), 'InvalidCiphertextException');
    assert.equal(dec((await kms.send(new DecryptCommand({ CiphertextBlob: e.CiphertextBlob, EncryptionContext: ctx, KeyId: a.Arn }))).Plaintext), 'hello kms');

    const r = await kms.send(new ReEncryptCommand({ CiphertextBlob: e.CiphertextBlob, SourceEncryptionContext: ctx, DestinationKeyId: b.KeyId, DestinationEncryptionContext: { to: 'b' } }));
    assert.equal(r.SourceKeyId, a.Arn);
    assert.equal(r.KeyId, b.Arn);
    assert.equal(dec((await kms.send(new DecryptCommand({ CiphertextBlob: r.CiphertextBlob, EncryptionContext: { to: 'b' } }))).Plaintext), 'hello kms');
    await rejectsKms(kms.send(new EncryptCommand({ KeyId: a.KeyId, Plaintext: new Uint8Array(4097) })), 'ValidationException');
    await rejectsKms(kms.send(new EncryptCommand({ KeyId: a.KeyId, Plaintext: enc('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })), 'InvalidKeyUsageException');
  });

  test('GenerateDataKey / GenerateDataKeyWithoutPlaintext / GenerateRandom', async () => {
    const k = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/datakeys', TargetKeyId: k.KeyId }));
    const g = await kms.send(new GenerateDataKeyCommand({ KeyId: 'alias/datakeys', KeySpec: 'AES_256', EncryptionContext: { obj: '1' } }));
    assert.equal(g.Plaintext!.length, 32);
    assert.equal(g.KeyId, k.Arn);
    const back = await kms.send(new DecryptCommand({ CiphertextBlob: g.CiphertextBlob, EncryptionContext: { obj: '1' } }));
    assert.deepEqual(Buffer.from(back.Plaintext!), Buffer.from(g.Plaintext!));
    const g16 = await kms.send(new GenerateDataKeyCommand({ KeyId: k.Arn, KeySpec: 'AES_128' }));
    assert.equal(g16.Plaintext!.length, 16);
    const n = await kms.send(new GenerateDataKeyCommand({ KeyId: k.KeyId, NumberOfBytes: 64 }));
    assert.equal(n.Plaintext!.length, 64);
    const w = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: k.KeyId, KeySpec: 'AES_256' }));
    assert.equal((w as { Plaintext?: unknown }).Plaintext, undefined);
    assert.equal((await kms.send(new DecryptCommand({ CiphertextBlob: w.CiphertextBlob }))).Plaintext!.length, 32);
    await rejectsKms(kms.send(new GenerateDataKeyCommand({ KeyId: k.KeyId })), 'ValidationException');
    await rejectsKms(kms.send(new GenerateDataKeyCommand({ KeyId: k.KeyId, KeySpec: 'AES_256', NumberOfBytes: 32 })), 'ValidationException');
    await rejectsKms(kms.send(new GenerateDataKeyCommand({ KeyId: k.KeyId, NumberOfBytes: 1025 })), 'ValidationException');
    const r = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 48 }));
    assert.equal(r.Plaintext!.length, 48);
    await rejectsKms(kms.send(new GenerateRandomCommand({ NumberOfBytes: 0 })), 'ValidationException');
  });

  test('DryRun on cryptographic operations and Recipient are refused (never answered with real plaintext)', async () => {
    const { KeyMetadata: m } = await kms.send(new CreateKeyCommand({}));
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: m!.KeyId, Plaintext: enc('dry') }));
    await rejectsKms(kms.send(new DecryptCommand({ CiphertextBlob, DryRun: true })), 'UnsupportedOperationException', 400, /DryRun/);
    await rejectsKms(kms.send(new GenerateDataKeyCommand({ KeyId: m!.KeyId, KeySpec: 'AES_256', DryRun: true })), 'UnsupportedOperationException', 400, /DryRun/);
    await rejectsKms(
      kms.send(new DecryptCommand({ CiphertextBlob, Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: enc('not an attestation') } })),
      'UnsupportedOperationException',
      400,
      /Recipient/,
    );
    // DryRun: false is an ordinary call.
    assert.equal(dec((await kms.send(new DecryptCommand({ CiphertextBlob, DryRun: false }))).Plaintext), 'dry');
  });

  test('aliases: create, update, list (by key), delete; reserved prefix; alias/aws/s3 created on first use', async () => {
    const a = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const b = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/app', TargetKeyId: a.Arn }));
    await rejectsKms(kms.send(new CreateAliasCommand({ AliasName: 'alias/app', TargetKeyId: b.KeyId })), 'AlreadyExistsException');
    await rejectsKms(kms.send(new CreateAliasCommand({ AliasName: 'alias/aws/app', TargetKeyId: b.KeyId })), 'NotAuthorizedException');
    await rejectsKms(kms.send(new CreateAliasCommand({ AliasName: 'app', TargetKeyId: b.KeyId })), 'ValidationException');
    const e = await kms.send(new EncryptCommand({ KeyId: `arn:aws:kms:us-east-1:${account}:alias/app`, Plaintext: enc('x') }));
    assert.equal(e.KeyId, a.Arn);
    await kms.send(new UpdateAliasCommand({ AliasName: 'alias/app', TargetKeyId: b.KeyId }));
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: 'alias/app' }))).KeyMetadata!.KeyId, b.KeyId);
    const listed = await kms.send(new ListAliasesCommand({ KeyId: b.KeyId }));
    assert.deepEqual(listed.Aliases!.map((x) => [x.AliasName, x.AliasArn, x.TargetKeyId]), [['alias/app', `arn:aws:kms:us-east-1:${account}:alias/app`, b.KeyId]]);
    assert.ok(listed.Aliases![0]!.CreationDate instanceof Date);
    // Operations that take only key ids refuse aliases.
    await rejectsKms(kms.send(new DisableKeyCommand({ KeyId: 'alias/app' })), 'NotFoundException');
    await kms.send(new DeleteAliasCommand({ AliasName: 'alias/app' }));
    await rejectsKms(kms.send(new DescribeKeyCommand({ KeyId: 'alias/app' })), 'NotFoundException', 400, /is not found/);
    await rejectsKms(kms.send(new DeleteAliasCommand({ AliasName: 'alias/app' })), 'NotFoundException');

    const m = (await kms.send(new DescribeKeyCommand({ KeyId: 'alias/aws/s3' }))).KeyMetadata!;
    assert.equal(m.KeyManager, 'AWS');
    assert.ok((await kms.send(new ListAliasesCommand({}))).Aliases!.some((x) => x.AliasName === 'alias/aws/s3' && x.TargetKeyId === m.KeyId));
    // Its policy allows use only through S3 (kms:ViaService), as AWS's.
    await rejectsKms(kms.send(new EncryptCommand({ KeyId: 'alias/aws/s3', Plaintext: enc('x') })), 'AccessDeniedException');
  });

  test('key states: Disabled and PendingDeletion refused with AWS errors; CancelKeyDeletion leaves Disabled', async () => {
    const k = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const blob = (await kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('x') }))).CiphertextBlob;
    await kms.send(new DisableKeyCommand({ KeyId: k.KeyId }));
    const dis = (await kms.send(new DescribeKeyCommand({ KeyId: k.KeyId }))).KeyMetadata!;
    assert.equal(dis.KeyState, 'Disabled');
    assert.equal(dis.Enabled, false);
    await rejectsKms(kms.send(new DecryptCommand({ CiphertextBlob: blob })), 'DisabledException', 400, /is disabled/);
    await rejectsKms(kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('x') })), 'DisabledException');
    await kms.send(new EnableKeyCommand({ KeyId: k.Arn }));
    assert.equal(dec((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext), 'x');

    await rejectsKms(kms.send(new ScheduleKeyDeletionCommand({ KeyId: k.KeyId, PendingWindowInDays: 31 })), 'ValidationException');
    const s = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: k.KeyId, PendingWindowInDays: 7 }));
    assert.equal(s.KeyId, k.Arn);
    assert.equal(s.KeyState, 'PendingDeletion');
    assert.equal(s.PendingWindowInDays, 7);
    assert.ok(Math.abs(s.DeletionDate!.getTime() - (Date.now() + 7 * 86_400_000)) < 60_000);
    const pd = (await kms.send(new DescribeKeyCommand({ KeyId: k.KeyId }))).KeyMetadata!;
    assert.equal(pd.KeyState, 'PendingDeletion');
    assert.equal(pd.PendingDeletionWindowInDays, 7);
    await rejectsKms(kms.send(new DecryptCommand({ CiphertextBlob: blob })), 'KMSInvalidStateException', 400, /pending deletion/);
    await rejectsKms(kms.send(new EnableKeyCommand({ KeyId: k.KeyId })), 'KMSInvalidStateException');
    await rejectsKms(kms.send(new ScheduleKeyDeletionCommand({ KeyId: k.KeyId })), 'KMSInvalidStateException');
    const c = await kms.send(new CancelKeyDeletionCommand({ KeyId: k.KeyId }));
    assert.equal(c.KeyId, k.Arn);
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: k.KeyId }))).KeyMetadata!.KeyState, 'Disabled');
    await rejectsKms(kms.send(new CancelKeyDeletionCommand({ KeyId: k.KeyId })), 'KMSInvalidStateException');
  });

  test('rotation: Enable/Disable/GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations; Decrypt without KeyId after rotation', async () => {
    const k = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const before = (await kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('old'), EncryptionContext: { v: '1' } }))).CiphertextBlob;
    assert.equal((await kms.send(new GetKeyRotationStatusCommand({ KeyId: k.KeyId }))).KeyRotationEnabled, false);
    await kms.send(new EnableKeyRotationCommand({ KeyId: k.KeyId, RotationPeriodInDays: 180 }));
    const st = await kms.send(new GetKeyRotationStatusCommand({ KeyId: k.Arn }));
    assert.equal(st.KeyRotationEnabled, true);
    assert.equal(st.RotationPeriodInDays, 180);
    assert.equal(st.KeyId, k.Arn);
    assert.ok(Math.abs(st.NextRotationDate!.getTime() - (Date.now() + 180 * 86_400_000)) < 60_000);
    await rejectsKms(kms.send(new EnableKeyRotationCommand({ KeyId: k.KeyId, RotationPeriodInDays: 30 })), 'ValidationException');
    const r = await kms.send(new RotateKeyOnDemandCommand({ KeyId: k.KeyId }));
    assert.equal(r.KeyId, k.Arn);
    const afterBlob = (await kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('new') }))).CiphertextBlob!;
    assert.equal(Buffer.from(afterBlob).readUInt32BE(17), 2, 'new encryptions use the new material version');
    assert.equal(dec((await kms.send(new DecryptCommand({ CiphertextBlob: before, EncryptionContext: { v: '1' } }))).Plaintext), 'old');
    assert.equal(dec((await kms.send(new DecryptCommand({ CiphertextBlob: afterBlob }))).Plaintext), 'new');
    const rot = await kms.send(new ListKeyRotationsCommand({ KeyId: k.KeyId }));
    assert.equal(rot.Rotations!.length, 1);
    assert.equal(rot.Rotations![0]!.RotationType, 'ON_DEMAND');
    assert.ok(rot.Rotations![0]!.RotationDate instanceof Date);
    await kms.send(new DisableKeyRotationCommand({ KeyId: k.KeyId }));
    assert.equal((await kms.send(new GetKeyRotationStatusCommand({ KeyId: k.KeyId }))).KeyRotationEnabled, false);
  });

  test('key policies: the default as AWS, Put validated, Get, List', async () => {
    const k = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const got = await kms.send(new GetKeyPolicyCommand({ KeyId: k.KeyId, PolicyName: 'default' }));
    const doc = JSON.parse(got.Policy!);
    assert.deepEqual(doc.Statement, [
      { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' },
    ]);
    assert.deepEqual((await kms.send(new ListKeyPoliciesCommand({ KeyId: k.KeyId }))).PolicyNames, ['default']);
    const next = { ...doc, Statement: [...doc.Statement, { Sid: 'Extra', Effect: 'Deny', Principal: '*', Action: 'kms:Encrypt', Resource: '*', Condition: { StringEquals: { 'kms:EncryptionContext:blocked': 'yes' } } }] };
    await kms.send(new PutKeyPolicyCommand({ KeyId: k.KeyId, PolicyName: 'default', Policy: JSON.stringify(next) }));
    assert.deepEqual(JSON.parse((await kms.send(new GetKeyPolicyCommand({ KeyId: k.KeyId }))).Policy!), next);
    await rejectsKms(kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('x'), EncryptionContext: { blocked: 'yes' } })), 'AccessDeniedException', 400, /explicit deny in a resource-based policy/);
    await kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('x'), EncryptionContext: { blocked: 'no' } }));
    await rejectsKms(kms.send(new PutKeyPolicyCommand({ KeyId: k.KeyId, PolicyName: 'default', Policy: '{"Statement": "nope"}' })), 'MalformedPolicyDocumentException');
    await rejectsKms(
      kms.send(new PutKeyPolicyCommand({ KeyId: k.KeyId, PolicyName: 'default', Policy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:user/nobody` }, Action: 'kms:*', Resource: '*' }] }) })),
      'MalformedPolicyDocumentException',
      400,
      /will not allow you to update the key policy/,
    );
    await rejectsKms(kms.send(new GetKeyPolicyCommand({ KeyId: k.KeyId, PolicyName: 'other' })), 'NotFoundException');
  });

  test('tags: TagResource, ListResourceTags, UntagResource', async () => {
    const k = (await kms.send(new CreateKeyCommand({ Tags: [{ TagKey: 'a', TagValue: '1' }] }))).KeyMetadata!;
    await kms.send(new TagResourceCommand({ KeyId: k.KeyId, Tags: [{ TagKey: 'b', TagValue: '2' }, { TagKey: 'a', TagValue: '3' }] }));
    assert.deepEqual((await kms.send(new ListResourceTagsCommand({ KeyId: k.Arn }))).Tags, [{ TagKey: 'a', TagValue: '3' }, { TagKey: 'b', TagValue: '2' }]);
    await kms.send(new UntagResourceCommand({ KeyId: k.KeyId, TagKeys: ['a'] }));
    assert.deepEqual((await kms.send(new ListResourceTagsCommand({ KeyId: k.KeyId }))).Tags, [{ TagKey: 'b', TagValue: '2' }]);
    await rejectsKms(kms.send(new TagResourceCommand({ KeyId: k.KeyId, Tags: [{ TagKey: 'aws:x', TagValue: '1' }] })), 'TagException');
  });

  test('a user is denied by the key policy (AWS message), allowed once an identity policy grants it, then shut out by a key policy naming only root', async () => {
    const { identities, policies } = srv.coffer.access;
    await identities.createUser('kmsuser');
    const cred = { accessKeyId: 'AKIAKMSUSER000000001', secretAccessKey: 'secret-of-kmsuser'.padEnd(40, 'x') };
    await identities.createAccessKey('kmsuser', { accessKeyId: cred.accessKeyId, secretKey: cred.secretAccessKey });
    const user = kmsClientFor(srv.httpUrl, { credentials: cred });
    try {
      const k = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
      const blob = (await kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('for users') }))).CiphertextBlob;
      await rejectsKms(
        user.send(new DecryptCommand({ CiphertextBlob: blob })),
        'AccessDeniedException',
        400,
        new RegExp(`^User: arn:aws:iam::${account}:user/kmsuser is not authorized to perform: kms:Decrypt on resource: ${k.Arn} because no identity-based policy allows the kms:Decrypt action$`),
      );
      await rejectsKms(user.send(new CreateKeyCommand({})), 'AccessDeniedException');
      await policies.putUserPolicy('kmsuser', 'use-keys', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kms:Decrypt', 'kms:Encrypt'], Resource: k.Arn }] }));
      assert.equal(dec((await user.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext), 'for users');
      await kms.send(
        new PutKeyPolicyCommand({
          KeyId: k.KeyId,
          PolicyName: 'default',
          Policy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*', Condition: { StringEquals: { 'aws:PrincipalType': 'Account' } } }] }),
        }),
      );
      await rejectsKms(user.send(new DecryptCommand({ CiphertextBlob: blob })), 'AccessDeniedException', 400, /because no resource-based policy allows the kms:Decrypt action$/);
    } finally {
      user.destroy();
    }
  });

  test('authentication: unknown access key, wrong secret, wrong region', async () => {
    const bad = kmsClientFor(srv.httpUrl, { credentials: { accessKeyId: 'AKIANOSUCHKEY0000000', secretAccessKey: 'x'.repeat(40) } });
    const wrong = kmsClientFor(srv.httpUrl, { credentials: { accessKeyId: (await srv.s3.config.credentials()).accessKeyId, secretAccessKey: 'y'.repeat(40) } });
    const elsewhere = kmsClientFor(srv.httpUrl, { region: 'eu-west-1' });
    try {
      await rejectsKms(elsewhere.send(new ListKeysCommand({})), 'InvalidSignatureException');
      await rejectsKms(bad.send(new ListKeysCommand({})), 'UnrecognizedClientException');
      await rejectsKms(wrong.send(new ListKeysCommand({})), 'InvalidSignatureException');
    } finally {
      bad.destroy();
      wrong.destroy();
      elsewhere.destroy();
    }
  });

  test('raw protocol: unknown operation, unsigned request, bad JSON, S3 on the same endpoint unchanged', async () => {
    const unsigned = await fetch(srv.httpUrl, { method: 'POST', headers: { 'x-amz-target': 'TrentService.ListKeys', 'content-type': 'application/x-amz-json-1.1' }, body: '{}' });
    assert.equal(unsigned.status, 400);
    assert.equal(unsigned.headers.get('content-type'), 'application/x-amz-json-1.1');
    assert.equal(((await unsigned.json()) as { __type: string }).__type, 'MissingAuthenticationTokenException');
    // Signed requests with a made-up operation and a broken body, through the SDK's signer.
    const { SignatureV4 } = await import('@smithy/signature-v4');
    const { NodeSha256 } = await import('../auth/helpers.ts');
    const signer = new SignatureV4({ service: 'kms', region: 'us-east-1', credentials: await srv.s3.config.credentials(), sha256: NodeSha256 });
    const url = new URL(srv.httpUrl);
    const signed = async (target: string, body: string) => {
      const req = await signer.sign({
        method: 'POST',
        protocol: 'http:',
        hostname: url.hostname,
        port: Number(url.port),
        path: '/',
        headers: { host: url.host, 'x-amz-target': target, 'content-type': 'application/x-amz-json-1.1' },
        body,
      });
      const res = await fetch(srv.httpUrl, { method: 'POST', headers: req.headers as Record<string, string>, body });
      return { status: res.status, body: (await res.json()) as { __type: string; message: string } };
    };
    assert.deepEqual((await signed('TrentService.NoSuchThing', '{}')).body.__type, 'UnknownOperationException');
    assert.deepEqual((await signed('TrentService.ListKeys', '{not json')).body.__type, 'SerializationException');
    const ok = await signed('TrentService.ListKeys', '{}');
    assert.equal(ok.status, 200);
    assert.ok(Array.isArray((ok.body as unknown as { Keys: unknown[] }).Keys));
    assert.equal(createHash('sha256').update('').digest('hex').length, 64);
    // A body over 1 MiB is refused without reading it all, and the connection closed.
    const big = await new Promise<{ status: number; body: string; connection?: string }>((resolve, reject) => {
      const r = httpRequest(srv.httpUrl, { method: 'POST', headers: { 'x-amz-target': 'TrentService.Encrypt', 'content-length': String(4 * 1024 * 1024) } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: text, ...(res.headers.connection ? { connection: res.headers.connection } : {}) }));
      });
      r.on('error', reject);
      r.write(Buffer.alloc(2 * 1024 * 1024, 0x20));
    });
    assert.equal(big.status, 400);
    assert.equal((JSON.parse(big.body) as { __type: string }).__type, 'ValidationException');
    assert.equal(big.connection, 'close');
    const buckets = await srv.s3.send(new ListBucketsCommand({}));
    assert.ok(Array.isArray(buckets.Buckets ?? []));
  });
});
