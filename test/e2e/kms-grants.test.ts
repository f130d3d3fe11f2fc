// KMS grants end to end: CreateGrant / ListGrants / ListRetirableGrants / RetireGrant /
// RevokeGrant through @aws-sdk/client-kms (a user the key policy does not admit gets in through
// a grant, within its encryption-context constraint only; retiring and revoking shut them out
// again; named grants are idempotent; an explicit Deny beats a grant; a grant with CreateGrant
// may only pass on less; AWS's validation errors; audited), SSE-KMS in S3 through a grant, and
// the AWS CLI v2 (create-grant, list-grants, retire-grant, revoke-grant).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
  ListGrantsCommand,
  ListRetirableGrantsCommand,
  PutKeyPolicyCommand,
  RetireGrantCommand,
  RevokeGrantCommand,
} from '@aws-sdk/client-kms';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { awsCli } from '../helpers/aws-cli.ts';
import { rejectsKms } from '../helpers/kms.ts';
import { kmsClientFor, startTestServer, tempDir, type TestServer } from '../helpers/coffer.ts';
import { allowAll, clientAs } from '../helpers/identities.ts';


const enc = (s: string) => Buffer.from(s);
const text = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('utf8');

let srv: TestServer;
let kms: KMSClient;
let account: string;
const clients: KMSClient[] = [];

interface User {
  name: string;
  arn: string;
  cred: { accessKeyId: string; secretAccessKey: string };
  kms: KMSClient;
}

let n = 0;
/** A user with an access key and no KMS permission of its own (identity policies as given). */
async function user(name: string, identityPolicy?: object): Promise<User> {
  const { identities, policies } = srv.coffer.access;
  await identities.createUser(name);
  const cred = { accessKeyId: `AKIAGRANTS${String(++n).padStart(10, '0')}`, secretAccessKey: `secret-of-${name}`.padEnd(40, 'x') };
  await identities.createAccessKey(name, { accessKeyId: cred.accessKeyId, secretKey: cred.secretAccessKey });
  if (identityPolicy) await policies.putUserPolicy(name, 'p', JSON.stringify(identityPolicy));
  const c = kmsClientFor(srv.httpUrl, { credentials: cred });
  clients.push(c);
  return { name, arn: `arn:aws:iam::${account}:user/${name}`, cred, kms: c };
}

before(async () => {
  srv = await startTestServer();
  kms = kmsClientFor(srv.httpUrl);
  account = srv.coffer.access.accountId;
});
after(async () => {
  kms?.destroy();
  for (const c of clients) c.destroy();
  await srv?.stop();
});

describe('KMS grants (e2e, @aws-sdk/client-kms)', () => {
  test('a grant lets a user the key policy does not admit Encrypt/Decrypt with a matching context only; ListGrants shows it; retire and revoke take it away', async () => {
    const alice = await user('grant-alice');
    const retirer = await user('grant-retirer');
    const stranger = await user('grant-stranger');
    const k = (await kms.send(new CreateKeyCommand({ Description: 'granted' }))).KeyMetadata!;
    const rootBlob = (await kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('for alice'), EncryptionContext: { project: 'alpha' } }))).CiphertextBlob!;

    await rejectsKms(alice.kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('x'), EncryptionContext: { project: 'alpha' } })), 'AccessDeniedException', 400, /kms:Encrypt/);
    await rejectsKms(alice.kms.send(new DecryptCommand({ CiphertextBlob: rootBlob, EncryptionContext: { project: 'alpha' } })), 'AccessDeniedException', 400, /kms:Decrypt/);

    const created = await kms.send(
      new CreateGrantCommand({
        KeyId: k.Arn,
        GranteePrincipal: alice.arn,
        RetiringPrincipal: retirer.arn,
        Operations: ['Encrypt', 'Decrypt'],
        Constraints: { EncryptionContextSubset: { project: 'alpha' } },
        Name: 'alice-alpha',
      }),
    );
    assert.match(created.GrantId!, /^[0-9a-f]{64}$/);
    assert.ok(created.GrantToken && created.GrantToken.length > 20);

    // Within the constraint: the context includes project=alpha (extra pairs are fine for a subset).
    const ctx = { project: 'alpha', stage: 'test' };
    const blob = (await alice.kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('by alice'), EncryptionContext: ctx, GrantTokens: [created.GrantToken!] }))).CiphertextBlob!;
    assert.equal(text((await alice.kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx }))).Plaintext), 'by alice');
    assert.equal(text((await alice.kms.send(new DecryptCommand({ CiphertextBlob: rootBlob, EncryptionContext: { project: 'alpha' } }))).Plaintext), 'for alice');
    // Outside it, or an operation the grant does not list.
    await rejectsKms(alice.kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('x'), EncryptionContext: { project: 'beta' } })), 'AccessDeniedException');
    await rejectsKms(alice.kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('x') })), 'AccessDeniedException');
    await rejectsKms(alice.kms.send(new GenerateDataKeyCommand({ KeyId: k.KeyId, KeySpec: 'AES_256', EncryptionContext: { project: 'alpha' } })), 'AccessDeniedException');
    await rejectsKms(alice.kms.send(new DescribeKeyCommand({ KeyId: k.KeyId })), 'AccessDeniedException');
    // The grant is alice's alone.
    await rejectsKms(stranger.kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('x'), EncryptionContext: { project: 'alpha' } })), 'AccessDeniedException');

    const listed = await kms.send(new ListGrantsCommand({ KeyId: k.KeyId }));
    assert.equal(listed.Truncated, false);
    assert.equal(listed.Grants!.length, 1);
    const g = listed.Grants![0]!;
    assert.equal(g.KeyId, k.Arn);
    assert.equal(g.GrantId, created.GrantId);
    assert.equal(g.Name, 'alice-alpha');
    assert.equal(g.GranteePrincipal, alice.arn);
    assert.equal(g.RetiringPrincipal, retirer.arn);
    assert.equal(g.IssuingAccount, `arn:aws:iam::${account}:root`);
    assert.deepEqual([...g.Operations!].sort(), ['Decrypt', 'Encrypt']);
    assert.deepEqual(g.Constraints, { EncryptionContextSubset: { project: 'alpha' } });
    assert.ok(g.CreationDate instanceof Date && Math.abs(g.CreationDate.getTime() - Date.now()) < 60_000);
    assert.equal((await kms.send(new ListGrantsCommand({ KeyId: k.KeyId, GranteePrincipal: stranger.arn }))).Grants!.length, 0);
    assert.equal((await kms.send(new ListGrantsCommand({ KeyId: k.KeyId, GrantId: created.GrantId }))).Grants!.length, 1);
    const retirable = await kms.send(new ListRetirableGrantsCommand({ RetiringPrincipal: retirer.arn }));
    assert.deepEqual(retirable.Grants!.map((x) => x.GrantId), [created.GrantId]);

    // Named and identical: the same grant again (a new token); other operations: a new grant.
    const again = await kms.send(
      new CreateGrantCommand({
        KeyId: k.KeyId,
        GranteePrincipal: alice.arn,
        RetiringPrincipal: retirer.arn,
        Operations: ['Decrypt', 'Encrypt'],
        Constraints: { EncryptionContextSubset: { project: 'alpha' } },
        Name: 'alice-alpha',
      }),
    );
    assert.equal(again.GrantId, created.GrantId);
    assert.notEqual(again.GrantToken, created.GrantToken);
    const other = await kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: alice.arn, Operations: ['Decrypt'], Name: 'alice-alpha' }));
    assert.notEqual(other.GrantId, created.GrantId);
    assert.equal((await kms.send(new ListGrantsCommand({ KeyId: k.KeyId }))).Grants!.length, 2);
    await kms.send(new RevokeGrantCommand({ KeyId: k.KeyId, GrantId: other.GrantId }));

    // Retiring: not by a stranger; by the retiring principal, with the token.
    await rejectsKms(stranger.kms.send(new RetireGrantCommand({ GrantToken: created.GrantToken })), 'AccessDeniedException', 400, /kms:RetireGrant/);
    await retirer.kms.send(new RetireGrantCommand({ GrantToken: created.GrantToken }));
    await rejectsKms(alice.kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('x'), EncryptionContext: ctx })), 'AccessDeniedException');
    assert.equal((await kms.send(new ListGrantsCommand({ KeyId: k.KeyId }))).Grants!.length, 0);
    await rejectsKms(retirer.kms.send(new RetireGrantCommand({ KeyId: k.KeyId, GrantId: created.GrantId })), 'NotFoundException');

    // Revoking, by the root user (kms:RevokeGrant in the key policy).
    const second = await kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: alice.arn, Operations: ['Decrypt'], Constraints: { EncryptionContextEquals: { project: 'alpha' } } }));
    assert.equal(text((await alice.kms.send(new DecryptCommand({ CiphertextBlob: rootBlob, EncryptionContext: { project: 'alpha' } }))).Plaintext), 'for alice');
    // EncryptionContextEquals: an exact match only.
    await rejectsKms(alice.kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx })), 'AccessDeniedException');
    await rejectsKms(alice.kms.send(new RevokeGrantCommand({ KeyId: k.KeyId, GrantId: second.GrantId })), 'AccessDeniedException', 400, /kms:RevokeGrant/);
    await kms.send(new RevokeGrantCommand({ KeyId: k.KeyId, GrantId: second.GrantId }));
    await rejectsKms(alice.kms.send(new DecryptCommand({ CiphertextBlob: rootBlob, EncryptionContext: { project: 'alpha' } })), 'AccessDeniedException');
    await rejectsKms(kms.send(new RevokeGrantCommand({ KeyId: k.KeyId, GrantId: second.GrantId })), 'NotFoundException');

    // The grantee may retire a grant that lists RetireGrant; the account root may retire any.
    const third = await kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: alice.arn, Operations: ['Decrypt', 'RetireGrant'] }));
    await alice.kms.send(new RetireGrantCommand({ KeyId: k.KeyId, GrantId: third.GrantId }));
    const fourth = await kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: alice.arn, Operations: ['Decrypt'] }));
    await rejectsKms(alice.kms.send(new RetireGrantCommand({ KeyId: k.KeyId, GrantId: fourth.GrantId })), 'AccessDeniedException');
    await kms.send(new RetireGrantCommand({ GrantToken: fourth.GrantToken }));

    // Audited like every call: the CreateGrant event names the grantee, operations, constraints and the new grant.
    const events = (await srv.coffer.stores.meta.listAudit({ eventName: 'CreateGrant', limit: 100 })).map((r) => JSON.parse(r.event));
    const first = events.find((e) => e.responseElements?.grantId === created.GrantId);
    assert.ok(first, 'CreateGrant is in the audit trail');
    assert.equal(first.requestParameters.granteePrincipal, alice.arn);
    assert.deepEqual(first.requestParameters.constraints, { encryptionContextSubset: { project: 'alpha' } });
    assert.deepEqual(first.resources.map((r: { ARN: string }) => r.ARN), [k.Arn]);
    assert.ok((await srv.coffer.stores.meta.listAudit({ eventName: 'RetireGrant', limit: 100 })).length >= 3);
    assert.ok((await srv.coffer.stores.meta.listAudit({ eventName: 'RevokeGrant', limit: 100 })).length >= 2);
  });

  test('an explicit Deny in the key policy beats a grant', async () => {
    const bob = await user('grant-bob');
    const k = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    await kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: bob.arn, Operations: ['Encrypt'] }));
    assert.ok((await bob.kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('ok') }))).CiphertextBlob);
    await kms.send(
      new PutKeyPolicyCommand({
        KeyId: k.KeyId,
        PolicyName: 'default',
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Sid: 'root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' },
            { Sid: 'no-bob', Effect: 'Deny', Principal: { AWS: bob.arn }, Action: 'kms:Encrypt', Resource: '*' },
          ],
        }),
      }),
    );
    await rejectsKms(bob.kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('no') })), 'AccessDeniedException', 400, /explicit deny/);
  });

  test('CreateGrant through a grant: only a subset of its operations, with at least its constraints; condition keys', async () => {
    const carol = await user('grant-carol');
    const dave = await user('grant-dave');
    const erin = await user('grant-erin', {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'kms:CreateGrant', Resource: '*', Condition: { StringEquals: { 'kms:GranteePrincipal': `arn:aws:iam::${account}:user/grant-dave` }, Bool: { 'kms:GrantIsForAWSResource': 'false' } } }],
    });
    const k = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    await rejectsKms(carol.kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: dave.arn, Operations: ['Decrypt'] })), 'AccessDeniedException', 400, /kms:CreateGrant/);
    await kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: carol.arn, Operations: ['CreateGrant', 'Decrypt', 'Encrypt'], Constraints: { EncryptionContextSubset: { team: 'red' } } }));
    // Stricter: fewer operations, a larger subset, or an exact context that includes it.
    await carol.kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: dave.arn, Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { team: 'red', app: 'x' } } }));
    await carol.kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: dave.arn, Operations: ['Encrypt'], Constraints: { EncryptionContextEquals: { team: 'red' } } }));
    // Looser: an operation the parent lacks, no constraint, or another context.
    await rejectsKms(carol.kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: dave.arn, Operations: ['GenerateDataKey'], Constraints: { EncryptionContextSubset: { team: 'red' } } })), 'AccessDeniedException');
    await rejectsKms(carol.kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: dave.arn, Operations: ['Decrypt'] })), 'AccessDeniedException');
    await rejectsKms(carol.kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: dave.arn, Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { team: 'blue' } } })), 'AccessDeniedException');
    // Dave's grants work within their constraints.
    assert.ok((await dave.kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('dave'), EncryptionContext: { team: 'red' } }))).CiphertextBlob);
    await rejectsKms(dave.kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('dave'), EncryptionContext: { team: 'red', more: '1' } })), 'AccessDeniedException');
    const ctx = { team: 'red', app: 'x', extra: 'y' };
    const blob = (await kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('for dave'), EncryptionContext: ctx }))).CiphertextBlob!;
    assert.equal(text((await dave.kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx }))).Plaintext), 'for dave');
    // kms:GranteePrincipal and kms:GrantIsForAWSResource in an identity policy (the default key policy delegates to IAM).
    await erin.kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: dave.arn, Operations: ['DescribeKey'] }));
    await rejectsKms(erin.kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: carol.arn, Operations: ['DescribeKey'] })), 'AccessDeniedException');
    assert.equal((await dave.kms.send(new DescribeKeyCommand({ KeyId: k.KeyId }))).KeyMetadata!.KeyId, k.KeyId);
  });

  test('AWS validation errors', async () => {
    const k = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const grantee = `arn:aws:iam::${account}:user/whoever`;
    await rejectsKms(kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: grantee, Operations: ['Frobnicate' as 'Encrypt'] })), 'ValidationException', 400, /enum value set/);
    await rejectsKms(kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: grantee, Operations: ['Sign'] })), 'ValidationException', 400, /SYMMETRIC_DEFAULT/);
    await rejectsKms(kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: grantee, Operations: [] })), 'ValidationException');
    await rejectsKms(kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: 'not a principal!', Operations: ['Encrypt'] })), 'ValidationException');
    await rejectsKms(kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: grantee, Operations: ['Encrypt'], Name: 'bad name' })), 'ValidationException');
    await rejectsKms(kms.send(new CreateGrantCommand({ KeyId: 'alias/aws/s3', GranteePrincipal: grantee, Operations: ['Encrypt'] })), 'NotFoundException');
    await rejectsKms(kms.send(new CreateGrantCommand({ KeyId: '00000000-0000-4000-8000-000000000000', GranteePrincipal: grantee, Operations: ['Encrypt'] })), 'NotFoundException');
    await rejectsKms(kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: grantee, Operations: ['Encrypt'], DryRun: true })), 'DryRunOperationException', 412);
    assert.equal((await kms.send(new ListGrantsCommand({ KeyId: k.KeyId }))).Grants!.length, 0, 'a dry run creates nothing');
    await rejectsKms(kms.send(new RevokeGrantCommand({ KeyId: k.KeyId, GrantId: 'nope' })), 'InvalidGrantIdException');
    await rejectsKms(kms.send(new RevokeGrantCommand({ KeyId: k.KeyId, GrantId: 'f'.repeat(64) })), 'NotFoundException');
    await rejectsKms(kms.send(new RetireGrantCommand({ GrantToken: 'not-a-token' })), 'InvalidGrantTokenException');
    await rejectsKms(kms.send(new RetireGrantCommand({ GrantId: 'f'.repeat(64) })), 'ValidationException');
    await rejectsKms(kms.send(new ListGrantsCommand({ KeyId: k.KeyId, Limit: 101 })), 'ValidationException');
    await rejectsKms(kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('x'), GrantTokens: Array.from({ length: 11 }, () => 't') })), 'ValidationException');
    await rejectsKms(kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: enc('x'), GrantTokens: [''] })), 'ValidationException');
    // ListGrants pages by Limit and Marker.
    for (let i = 0; i < 3; i++) await kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: grantee, Operations: ['Encrypt'] }));
    const p1 = await kms.send(new ListGrantsCommand({ KeyId: k.KeyId, Limit: 2 }));
    assert.equal(p1.Grants!.length, 2);
    assert.equal(p1.Truncated, true);
    const p2 = await kms.send(new ListGrantsCommand({ KeyId: k.KeyId, Limit: 2, Marker: p1.NextMarker }));
    assert.equal(p2.Grants!.length, 1);
    assert.equal(p2.Truncated, false);
    assert.equal(new Set([...p1.Grants!, ...p2.Grants!].map((g) => g.GrantId)).size, 3);
  });
});

describe('SSE-KMS through a grant (e2e, S3)', () => {
  test('a user with S3 permissions but no key access cannot PutObject under a customer key (403), and can after a grant for GenerateDataKey and Decrypt', async () => {
    const frank = await user('grant-frank', allowAll);
    const s3 = clientAs(frank.cred, srv.httpUrl);
    try {
      await srv.s3.send(new CreateBucketCommand({ Bucket: 'granted-bucket' }));
      const k = (await kms.send(new CreateKeyCommand({ Description: 'bucket key' }))).KeyMetadata!;
      const put = () => s3.send(new PutObjectCommand({ Bucket: 'granted-bucket', Key: 'doc.txt', Body: 'secret doc', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: k.Arn }));
      try {
        await put();
        assert.fail('PutObject succeeded without access to the key');
      } catch (e) {
        const err = e as { name: string; $metadata?: { httpStatusCode?: number } };
        assert.equal(err.$metadata?.httpStatusCode, 403, `expected 403, got ${err.name}`);
        assert.equal(err.name, 'AccessDenied');
      }
      await kms.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: frank.arn, Operations: ['GenerateDataKey', 'Decrypt'] }));
      const r = await put();
      assert.equal(r.ServerSideEncryption, 'aws:kms');
      assert.equal(r.SSEKMSKeyId, k.Arn);
      const got = await s3.send(new GetObjectCommand({ Bucket: 'granted-bucket', Key: 'doc.txt' }));
      assert.equal(await got.Body!.transformToString(), 'secret doc');
    } finally {
      s3.destroy();
    }
  });
});

const CLI = '/usr/bin/aws';
describe('aws kms grants (CLI v2)', { skip: !existsSync(CLI) && 'no AWS CLI v2 at /usr/bin/aws' }, () => {
  test('create-grant, list-grants, retire-grant, revoke-grant', async () => {
    const home = tempDir('coffer-kms-grants-cli-');
    const aws = awsCli({ cli: CLI, endpoint: srv.httpUrl, home });
    const json = async (...args: string[]) => JSON.parse(await aws(...args, '--output', 'json')) as Record<string, any>;
    const grantee = `arn:aws:iam::${account}:user/cli-grantee`;
    const k = (await json('kms', 'create-key', '--description', 'cli grants'))['KeyMetadata'];
    const g = await json(
      'kms', 'create-grant', '--key-id', k.KeyId, '--grantee-principal', grantee,
      '--operations', 'Encrypt', 'Decrypt', '--constraints', 'EncryptionContextSubset={app=cli}', '--name', 'cli-grant',
    );
    assert.match(g['GrantId'], /^[0-9a-f]{64}$/);
    const listed = await json('kms', 'list-grants', '--key-id', k.Arn);
    assert.equal(listed['Grants'].length, 1);
    assert.equal(listed['Grants'][0].GranteePrincipal, grantee);
    assert.equal(listed['Grants'][0].Name, 'cli-grant');
    assert.deepEqual(listed['Grants'][0].Constraints, { EncryptionContextSubset: { app: 'cli' } });
    await aws('kms', 'revoke-grant', '--key-id', k.KeyId, '--grant-id', g['GrantId']);
    assert.equal((await json('kms', 'list-grants', '--key-id', k.KeyId))['Grants'].length, 0);
    const g2 = await json('kms', 'create-grant', '--key-id', k.KeyId, '--grantee-principal', grantee, '--operations', 'Decrypt');
    await aws('kms', 'retire-grant', '--grant-token', g2['GrantToken']);
    assert.equal((await json('kms', 'list-grants', '--key-id', k.KeyId))['Grants'].length, 0);
    await assert.rejects(aws('kms', 'create-grant', '--key-id', k.KeyId, '--grantee-principal', grantee, '--operations', 'Sign'), /ValidationException/);
    await assert.rejects(aws('kms', 'revoke-grant', '--key-id', k.KeyId, '--grant-id', g['GrantId']), /NotFoundException/);
  });
});
