// Interop with the AWS Encryption SDK for JavaScript (@aws-crypto/client-node 5.x): its KMS
// keyring, pointed at Coffer's KMS endpoint, wraps data keys with GenerateDataKey / Encrypt and
// unwraps them with Decrypt (KeyId = the key ARN, the encryption context, NumberOfBytes = 32).
// Round trips with an encryption context, a multi-key keyring (each key can decrypt alone), a
// disabled key refusing Decrypt until it is enabled again, and 5 MiB through the streaming API
// (signed and unsigned algorithm suites).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  getClient,
  KmsKeyringNode,
  type EncryptionContext,
  type MessageHeader,
} from '@aws-crypto/client-node';
import { CreateAliasCommand, CreateKeyCommand, DisableKeyCommand, EnableKeyCommand, KMS, KMSClient, type KeyMetadata } from '@aws-sdk/client-kms';
import { ACCESS_KEY, kmsClientFor, SECRET_KEY, startTestServer, type TestServer } from '../helpers/coffer.ts';

const { encrypt, decrypt, encryptStream, decryptStream, decryptUnsignedMessageStream } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

const CONTEXT: EncryptionContext = { purpose: 'interop test', tenant: 'acme', 'ünïcode': 'välue ✓' };

/** The user-supplied pairs of a decrypted message's context (the SDK may add aws-crypto-public-key). */
function userContext(ctx: EncryptionContext): EncryptionContext {
  return Object.fromEntries(Object.entries(ctx).filter(([k]) => !k.startsWith('aws-crypto-')));
}

/** Feeds `data` in 64 KiB pieces through `transform` and returns everything it produced. */
async function through(data: Buffer, transform: NodeJS.ReadWriteStream, onHeader?: (h: MessageHeader) => void): Promise<Buffer> {
  if (onHeader) transform.on('MessageHeader', onHeader);
  const parts: Buffer[] = [];
  const chunks = function* () {
    for (let o = 0; o < data.length; o += 64 * 1024) yield data.subarray(o, o + 64 * 1024);
  };
  await pipeline(
    Readable.from(chunks()),
    transform,
    new Writable({
      write(c: Buffer, _e, cb) {
        parts.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(parts);
}

describe('AWS Encryption SDK (@aws-crypto/client-node) with Coffer as its KMS', () => {
  let srv: TestServer;
  let admin: KMSClient;
  let keyA: KeyMetadata;
  let keyB: KeyMetadata;
  /** Every KMS client the keyrings asked for, so they are all destroyed at the end. */
  const made: KMS[] = [];
  /** Operations the keyrings sent to Coffer, by name. */
  const calls: Record<string, number> = {};

  // The SDK asks its client provider for a client per region (taken from the key ARN); its own
  // getClient(KMS, defaults) builds an aggregated KMS client (the keyring calls
  // client.generateDataKey / encrypt / decrypt) with the given defaults and that region.
  let clientProvider: (region: string) => KMS;

  before(async () => {
    srv = await startTestServer();
    admin = kmsClientFor(srv.httpUrl);
    keyA = (await admin.send(new CreateKeyCommand({ Description: 'esdk generator' }))).KeyMetadata!;
    keyB = (await admin.send(new CreateKeyCommand({ Description: 'esdk child' }))).KeyMetadata!;
    const base = getClient(KMS, { endpoint: srv.httpUrl, credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY } });
    clientProvider = (region: string) => {
      assert.equal(region, 'us-east-1', 'the SDK takes the region from the key ARN');
      const c = base(region) as KMS;
      c.middlewareStack.add(
        (next, context) => async (args) => {
          calls[context.commandName!] = (calls[context.commandName!] ?? 0) + 1;
          return next(args);
        },
        { step: 'initialize', name: 'countCalls' },
      );
      made.push(c);
      return c;
    };
  });
  after(async () => {
    for (const c of made) c.destroy();
    admin.destroy();
    await srv.stop();
  });

  const keyring = (generatorKeyId: string, keyIds: string[] = []) => new KmsKeyringNode({ clientProvider, generatorKeyId, keyIds });

  test('encrypt / decrypt round trip with an encryption context (signed default suite)', async () => {
    const before = { ...calls };
    const ring = keyring(keyA.Arn!);
    const plaintext = Buffer.from('Coffer speaks KMS to the AWS Encryption SDK');
    const { result, messageHeader } = await encrypt(ring, plaintext, { encryptionContext: CONTEXT });
    assert.equal(messageHeader.suiteId, AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384);
    assert.equal(messageHeader.encryptedDataKeys.length, 1);
    const edk = messageHeader.encryptedDataKeys[0]!;
    assert.equal(edk.providerId, 'aws-kms');
    assert.equal(edk.providerInfo, keyA.Arn, 'the data key is wrapped under the generator key, named by ARN');
    assert.equal(Buffer.from(edk.encryptedDataKey)[0], 0x01, "Coffer's ciphertext blob format");
    assert.ok(!result.includes(plaintext));

    const out = await decrypt(ring, result);
    assert.deepEqual(out.plaintext, plaintext);
    assert.deepEqual(userContext(out.messageHeader.encryptionContext), CONTEXT);
    assert.ok(out.messageHeader.encryptionContext['aws-crypto-public-key'], 'the signed suite adds its public key to the context');
    assert.equal((calls.GenerateDataKeyCommand ?? 0) - (before.GenerateDataKeyCommand ?? 0), 1);
    assert.equal((calls.DecryptCommand ?? 0) - (before.DecryptCommand ?? 0), 1);

    // The context is bound to the wrapped data key: a message whose header is changed does not decrypt.
    const tampered = Buffer.from(result);
    const at = tampered.indexOf(Buffer.from('acme'));
    assert.ok(at > 0);
    tampered.write('acmf', at);
    await assert.rejects(decrypt(ring, tampered));
  });

  test('multi-key keyring: generator plus a child key; each key alone can decrypt', async () => {
    const before = { ...calls };
    const plaintext = randomBytes(10_000);
    const { result, messageHeader } = await encrypt(keyring(keyA.Arn!, [keyB.Arn!]), plaintext, {
      encryptionContext: CONTEXT,
      suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
    });
    assert.deepEqual(messageHeader.encryptedDataKeys.map((k) => k.providerInfo), [keyA.Arn, keyB.Arn]);
    assert.equal((calls.GenerateDataKeyCommand ?? 0) - (before.GenerateDataKeyCommand ?? 0), 1);
    assert.equal((calls.EncryptCommand ?? 0) - (before.EncryptCommand ?? 0), 1, 'the child key wraps the same data key with Encrypt');
    for (const only of [keyA, keyB]) {
      const out = await decrypt(keyring(only.Arn!), result);
      assert.deepEqual(out.plaintext, plaintext, `decrypts with ${only.Description} alone`);
      assert.deepEqual(userContext(out.messageHeader.encryptionContext), CONTEXT);
    }
    // The keys in the other order (the child key as the generator): still decrypts.
    const out = await decrypt(keyring(keyB.Arn!, [keyA.Arn!]), result);
    assert.deepEqual(out.plaintext, plaintext);
  });

  test('an alias ARN as the generator; a discovery keyring (filtered to the account) decrypts', async () => {
    const account = srv.coffer.access.accountId;
    await admin.send(new CreateAliasCommand({ AliasName: 'alias/esdk', TargetKeyId: keyB.KeyId }));
    const plaintext = Buffer.from('wrapped through an alias');
    const { result, messageHeader } = await encrypt(keyring(`arn:aws:kms:us-east-1:${account}:alias/esdk`), plaintext, { encryptionContext: CONTEXT });
    assert.equal(messageHeader.encryptedDataKeys[0]!.providerInfo, keyB.Arn, 'GenerateDataKey answers with the key ARN behind the alias');
    const discovery = new KmsKeyringNode({ clientProvider, discovery: true, discoveryFilter: { accountIDs: [account], partition: 'aws' } });
    assert.deepEqual((await decrypt(discovery, result)).plaintext, plaintext);
    const elsewhere = new KmsKeyringNode({ clientProvider, discovery: true, discoveryFilter: { accountIDs: ['111122223333'], partition: 'aws' } });
    const decrypts = calls.DecryptCommand ?? 0;
    await assert.rejects(decrypt(elsewhere, result), /unencryptedDataKey has not been set/);
    assert.equal(calls.DecryptCommand ?? 0, decrypts, 'a key of another account is not even asked');
  });

  test('a disabled key refuses to unwrap the data key (DisabledException); EnableKey brings it back', async () => {
    const ring = keyring(keyA.Arn!);
    const plaintext = Buffer.from('only while the key is enabled');
    const { result } = await encrypt(ring, plaintext, { encryptionContext: CONTEXT });
    await admin.send(new DisableKeyCommand({ KeyId: keyA.KeyId }));
    try {
      await assert.rejects(decrypt(ring, result), (e: Error) => {
        assert.match(e.message, /Unable to decrypt data key/);
        assert.match(e.message, /DisabledException|is disabled/);
        return true;
      });
      await assert.rejects(encrypt(ring, plaintext, { encryptionContext: CONTEXT }), /is disabled/);
    } finally {
      await admin.send(new EnableKeyCommand({ KeyId: keyA.KeyId }));
    }
    assert.deepEqual((await decrypt(ring, result)).plaintext, plaintext);
  });

  test('5 MiB through the streaming API: encryptStream + decryptStream (signed), decryptUnsignedMessageStream (unsigned)', async () => {
    const data = randomBytes(5 * 1024 * 1024);
    const ring = keyring(keyA.Arn!, [keyB.Arn!]);

    // Signed (default) suite, 64 KiB frames.
    const signed = await through(data, encryptStream(ring, { encryptionContext: CONTEXT, frameLength: 64 * 1024 }));
    assert.ok(signed.length > data.length);
    let header: MessageHeader | undefined;
    const back = await through(signed, decryptStream(keyring(keyB.Arn!)), (h) => (header = h));
    assert.equal(back.length, data.length);
    assert.ok(back.equals(data), 'streamed plaintext round-trips');
    assert.deepEqual(userContext(header!.encryptionContext), CONTEXT);

    // Unsigned suite: the only one decryptUnsignedMessageStream accepts.
    const unsigned = await through(
      data,
      encryptStream(ring, { encryptionContext: CONTEXT, suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY }),
    );
    let uheader: MessageHeader | undefined;
    const uback = await through(unsigned, decryptUnsignedMessageStream(keyring(keyA.Arn!)), (h) => (uheader = h));
    assert.ok(uback.equals(data));
    assert.deepEqual({ ...uheader!.encryptionContext }, CONTEXT, 'no public key in an unsigned message context');
    // A signed message is refused by the unsigned-only stream.
    await assert.rejects(through(signed, decryptUnsignedMessageStream(keyring(keyA.Arn!))));
    // And the whole-buffer API reads what the streaming API wrote.
    assert.ok((await decrypt(keyring(keyA.Arn!), unsigned)).plaintext.equals(data));
  });
});
