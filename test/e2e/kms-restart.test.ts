// KMS state is durable: keys, aliases, rotated material versions, policies and tags survive a
// restart of the server on the same data directory, and old ciphertexts still decrypt.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  ListResourceTagsCommand,
  RotateKeyOnDemandCommand,
} from '@aws-sdk/client-kms';
import { kmsClientFor, startTestServer, tempDir } from '../helpers/coffer.ts';

test('keys, aliases, material versions and states survive a restart', async () => {
  const dataDir = tempDir('coffer-kms-restart-');
  try {
    let srv = await startTestServer({ dataDir });
    let kms = kmsClientFor(srv.httpUrl);
    const k = (await kms.send(new CreateKeyCommand({ Description: 'durable', Tags: [{ TagKey: 't', TagValue: 'v' }] }))).KeyMetadata!;
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/durable', TargetKeyId: k.KeyId }));
    const v1 = (await kms.send(new EncryptCommand({ KeyId: 'alias/durable', Plaintext: Buffer.from('one'), EncryptionContext: { n: '1' } }))).CiphertextBlob!;
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: k.KeyId }));
    const v2 = (await kms.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: Buffer.from('two') }))).CiphertextBlob!;
    const other = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    await kms.send(new DisableKeyCommand({ KeyId: other.KeyId }));
    const managed = (await kms.send(new DescribeKeyCommand({ KeyId: 'alias/aws/s3' }))).KeyMetadata!.KeyId;
    kms.destroy();
    await srv.stop();

    srv = await startTestServer({ dataDir });
    kms = kmsClientFor(srv.httpUrl);
    try {
      assert.equal(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: v1, EncryptionContext: { n: '1' } }))).Plaintext!).toString(), 'one');
      assert.equal(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: v2 }))).Plaintext!).toString(), 'two');
      const d = (await kms.send(new DescribeKeyCommand({ KeyId: 'alias/durable' }))).KeyMetadata!;
      assert.equal(d.KeyId, k.KeyId);
      assert.equal(d.Description, 'durable');
      assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: other.KeyId }))).KeyMetadata!.KeyState, 'Disabled');
      assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: 'alias/aws/s3' }))).KeyMetadata!.KeyId, managed, 'alias/aws/s3 is created once');
      assert.deepEqual((await kms.send(new ListResourceTagsCommand({ KeyId: k.KeyId }))).Tags, [{ TagKey: 't', TagValue: 'v' }]);
    } finally {
      kms.destroy();
      await srv.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
