// The AWS CLI v2, unmodified, against Coffer's KMS API over HTTP and HTTPS: create-key,
// create-alias, encrypt / decrypt (with an encryption context, decrypt without --key-id),
// generate-data-key, enable/disable-key-rotation, get-key-policy, schedule/cancel-key-deletion,
// and AWS errors as the CLI prints them.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { awsCliOver } from '../helpers/aws-cli.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/coffer.ts';

const CLI = '/usr/bin/aws';
if (process.env.CI && !existsSync(CLI)) throw new Error('CI must provide the AWS CLI v2 (/usr/bin/aws)');

let srv: TestServer;
let work: string;
before(async () => {
  srv = await startTestServer();
  work = tempDir('coffer-kms-cli-');
});
after(async () => {
  await srv?.stop();
});

for (const transport of ['http', 'https'] as const) {
  describe(`aws kms (CLI v2) over ${transport}`, { skip: !existsSync(CLI) && 'no AWS CLI v2 at /usr/bin/aws' }, () => {
    const aws = awsCliOver(() => srv, transport, { cli: CLI, home: () => work });
    const json = async (...args: string[]) => JSON.parse(await aws(...args, '--output', 'json')) as Record<string, any>;

    test('create-key, create-alias, encrypt, decrypt, generate-data-key, rotation, key policy, schedule-key-deletion', async () => {
      const created = await json('kms', 'create-key', '--description', `cli ${transport}`, '--tags', 'TagKey=via,TagValue=cli');
      const meta = created['KeyMetadata'];
      assert.equal(meta.KeyState, 'Enabled');
      assert.equal(meta.Description, `cli ${transport}`);
      const alias = `alias/cli-${transport}`;
      await aws('kms', 'create-alias', '--alias-name', alias, '--target-key-id', meta.KeyId);
      const aliases = await json('kms', 'list-aliases', '--key-id', meta.KeyId);
      assert.deepEqual(aliases['Aliases'].map((a: { AliasName: string }) => a.AliasName), [alias]);

      const plainFile = join(work, `plain-${transport}.txt`);
      writeFileSync(plainFile, 'attack at dawn');
      const encrypted = await json('kms', 'encrypt', '--key-id', alias, '--plaintext', `fileb://${plainFile}`, '--encryption-context', 'purpose=cli,team=blue');
      assert.equal(encrypted['KeyId'], meta.Arn);
      const blobFile = join(work, `blob-${transport}.bin`);
      writeFileSync(blobFile, Buffer.from(encrypted['CiphertextBlob'], 'base64'));
      const decrypted = await json('kms', 'decrypt', '--ciphertext-blob', `fileb://${blobFile}`, '--encryption-context', 'team=blue,purpose=cli');
      assert.equal(Buffer.from(decrypted['Plaintext'], 'base64').toString(), 'attack at dawn');
      assert.equal(decrypted['KeyId'], meta.Arn);
      await assert.rejects(aws('kms', 'decrypt', '--ciphertext-blob', `fileb://${blobFile}`), /InvalidCiphertextException/);

      const dk = await json('kms', 'generate-data-key', '--key-id', meta.Arn, '--key-spec', 'AES_256');
      assert.equal(Buffer.from(dk['Plaintext'], 'base64').length, 32);

      // Debian's CLI (2.9) predates RotationPeriodInDays, rotate-key-on-demand and
      // list-key-rotations; the SDK test covers those.
      await aws('kms', 'enable-key-rotation', '--key-id', meta.KeyId);
      const st = await json('kms', 'get-key-rotation-status', '--key-id', meta.KeyId);
      assert.equal(st['KeyRotationEnabled'], true);
      await aws('kms', 'disable-key-rotation', '--key-id', meta.KeyId);
      assert.equal((await json('kms', 'get-key-rotation-status', '--key-id', meta.KeyId))['KeyRotationEnabled'], false);

      const policy = await json('kms', 'get-key-policy', '--key-id', meta.KeyId, '--policy-name', 'default');
      assert.match(policy['Policy'], /Enable IAM User Permissions/);

      const sched = await json('kms', 'schedule-key-deletion', '--key-id', meta.KeyId, '--pending-window-in-days', '7');
      assert.equal(sched['KeyState'], 'PendingDeletion');
      await assert.rejects(aws('kms', 'encrypt', '--key-id', meta.KeyId, '--plaintext', `fileb://${plainFile}`), /KMSInvalidStateException/);
      await aws('kms', 'cancel-key-deletion', '--key-id', meta.KeyId);
      assert.equal((await json('kms', 'describe-key', '--key-id', alias))['KeyMetadata'].KeyState, 'Disabled');
      await assert.rejects(aws('kms', 'describe-key', '--key-id', 'alias/none'), /NotFoundException/);
    });
  });
}
