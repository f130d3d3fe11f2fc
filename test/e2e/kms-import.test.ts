// `coffer kms import`: a symmetric key with a chosen id and chosen material, created in a data
// directory's stores by the CLI (server stopped or running). The imported material is the one
// used: the SDK's ciphertexts open locally with it and local ones open through the KMS; two
// data directories (different root keys) given the same id and material decrypt each other's
// ciphertext blobs (the migration story). Refusals; the material is never printed or stored
// unsealed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DecryptCommand, DescribeKeyCommand, EncryptCommand, GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import { decryptBlob, encryptBlob } from '../../src/kms/blob.ts';
import { kmsClientFor, ROOT_KEY, startTestServer, tempDir } from '../helpers/coffer.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function fresh(prefix: string): string {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
}

/** Runs `coffer ARGS` with this root key (and stdin), resolving with exit code and output. */
function coffer(args: string[], opts: { rootKey?: string; input?: Buffer | string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('COFFER_')) env[k] = v;
    const proc = spawn(process.execPath, ['bin/coffer.js', ...args], { env: { ...env, COFFER_ROOT_KEY: opts.rootKey ?? ROOT_KEY }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    proc.once('error', reject);
    proc.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    proc.stdin.end(opts.input ?? '');
  });
}

/** Every way the material could show up in text or bytes. */
function leaks(haystack: Buffer | string, material: Buffer): boolean {
  const h = Buffer.isBuffer(haystack) ? haystack : Buffer.from(haystack);
  return [material, Buffer.from(material.toString('hex')), Buffer.from(material.toString('base64')), Buffer.from(material.toString('base64url'))].some((n) => h.includes(n));
}

describe('coffer kms import', () => {
  test('a chosen id and material: the KMS encrypts and decrypts with exactly that material; refusals; nothing leaks', async () => {
    const dataDir = fresh('coffer-kms-import-');
    const keyId = randomUUID();
    const material = randomBytes(32);
    const file = join(dataDir, '..', `${keyId}.b64`);
    dirs.push(file);
    writeFileSync(file, material.toString('base64') + '\n', { mode: 0o600 });

    const r = await coffer(['kms', 'import', '--data-dir', dataDir, '--key-id', keyId.toUpperCase(), '--material-file', file, '--alias', 'alias/imported', '--description', 'migrated']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Imported KMS key ${keyId}`));
    assert.match(r.stdout, /material: supplied/);
    assert.ok(!leaks(r.stdout + r.stderr, material), 'the material is never printed');

    const srv = await startTestServer({ dataDir });
    const kms = kmsClientFor(srv.httpUrl);
    try {
      const m = (await kms.send(new DescribeKeyCommand({ KeyId: 'alias/imported' }))).KeyMetadata!;
      assert.equal(m.KeyId, keyId, 'the id as chosen (lower-cased)');
      assert.equal(m.Description, 'migrated');
      assert.equal(m.KeyState, 'Enabled');
      assert.equal(m.Arn, `arn:aws:kms:us-east-1:${srv.coffer.access.accountId}:key/${keyId}`);

      // The SDK's ciphertext opens with the imported material itself...
      const ctx = { app: 'billing' };
      const blob = Buffer.from((await kms.send(new EncryptCommand({ KeyId: 'alias/imported', Plaintext: Buffer.from('imported secret'), EncryptionContext: ctx }))).CiphertextBlob!);
      assert.equal(decryptBlob(material, blob, ctx)?.toString(), 'imported secret');
      assert.equal(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx }))).Plaintext!).toString(), 'imported secret');
      // ...and a blob made with it elsewhere opens through the KMS.
      const local = encryptBlob(material, { keyId, materialVersion: 1 }, Buffer.from('made offline'), { x: 'y' });
      assert.equal(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: local, EncryptionContext: { x: 'y' } }))).Plaintext!).toString(), 'made offline');
      const dk = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
      assert.deepEqual(decryptBlob(material, Buffer.from(dk.CiphertextBlob!), undefined), Buffer.from(dk.Plaintext!));

      // Beside the running server: an existing id, an existing alias, bad ids and material are refused.
      const again = await coffer(['kms', 'import', '--data-dir', dataDir, '--key-id', keyId], { input: material });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /AlreadyExistsException: A key with the id/);
      const aliasTaken = await coffer(['kms', 'import', '--data-dir', dataDir, '--key-id', randomUUID(), '--alias', 'alias/imported']);
      assert.equal(aliasTaken.code, 1);
      assert.match(aliasTaken.stderr, /AlreadyExistsException: An alias/);
      const badId = await coffer(['kms', 'import', '--data-dir', dataDir, '--key-id', 'not-a-uuid']);
      assert.equal(badId.code, 1);
      assert.match(badId.stderr, /must be a UUID/);
      const short = randomBytes(16);
      const badMaterial = await coffer(['kms', 'import', '--data-dir', dataDir, '--key-id', randomUUID(), '--material-file', '-'], { input: short.toString('base64') });
      assert.equal(badMaterial.code, 2);
      assert.match(badMaterial.stderr, /32 raw bytes, 64 hex characters or base64 of 32 bytes/);
      assert.ok(!leaks(badMaterial.stderr, short));

      // Raw bytes on stdin, and no material at all (random), work too.
      const rawId = randomUUID();
      const rawMaterial = randomBytes(32);
      assert.equal((await coffer(['kms', 'import', '--data-dir', dataDir, '--key-id', rawId, '--material-file', '-', '--material-encoding', 'raw'], { input: rawMaterial })).code, 0);
      const rawBlob = Buffer.from((await kms.send(new EncryptCommand({ KeyId: rawId, Plaintext: Buffer.from('raw') }))).CiphertextBlob!);
      assert.equal(decryptBlob(rawMaterial, rawBlob, undefined)?.toString(), 'raw');
      const genId = randomUUID();
      const gen = await coffer(['kms', 'import', '--data-dir', dataDir, '--key-id', genId, '--json']);
      assert.equal(gen.code, 0, gen.stderr);
      assert.equal(JSON.parse(gen.stdout).KeyMetadata.KeyId, genId);
      const genBlob = (await kms.send(new EncryptCommand({ KeyId: genId, Plaintext: Buffer.from('gen') }))).CiphertextBlob!;
      assert.equal(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: genBlob }))).Plaintext!).toString(), 'gen');

      // Audited, and stored only sealed.
      const events = await srv.coffer.stores.meta.listAudit({ eventName: 'ImportKey', limit: 10 });
      assert.equal(events.length, 3);
      assert.equal(JSON.parse(events[0]!.event).requestParameters.materialSupplied, true);
      const files = readdirSync(dataDir, { recursive: true }).map((f) => join(dataDir, String(f))).filter((f) => statSync(f).isFile());
      assert.ok(files.some((f) => f.endsWith('metadata.db')));
      for (const f of files) assert.ok(!leaks(readFileSync(f), material) && !leaks(readFileSync(f), rawMaterial), `${f} holds the material unsealed`);
    } finally {
      kms.destroy();
      await srv.stop();
    }
  });

  test('migration: two data directories (different root keys) given the same id and material decrypt each other\'s blobs', async () => {
    const keyId = randomUUID();
    const material = randomBytes(32);
    const hex = material.toString('hex');
    const a = fresh('coffer-kms-import-a-');
    const b = fresh('coffer-kms-import-b-');
    const rootB = 'a7'.repeat(32);
    assert.equal((await coffer(['kms', 'import', '--data-dir', a, '--key-id', keyId, '--material-file', '-'], { input: hex })).code, 0);
    const rb = await coffer(['kms', 'import', '--data-dir', b, '--key-id', keyId, '--material-file', '-', '--material-encoding', 'hex', '--alias', 'alias/moved'], { input: hex, rootKey: rootB });
    assert.equal(rb.code, 0, rb.stderr);

    const srvA = await startTestServer({ dataDir: a });
    const srvB = await startTestServer({ dataDir: b, env: { COFFER_ROOT_KEY: rootB } });
    const kmsA = kmsClientFor(srvA.httpUrl);
    const kmsB = kmsClientFor(srvB.httpUrl);
    try {
      assert.notEqual(srvA.coffer.access.accountId, srvB.coffer.access.accountId);
      const ctx = { tenant: 't1' };
      const fromA = (await kmsA.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('written at A'), EncryptionContext: ctx }))).CiphertextBlob!;
      const fromB = (await kmsB.send(new EncryptCommand({ KeyId: 'alias/moved', Plaintext: Buffer.from('written at B'), EncryptionContext: ctx }))).CiphertextBlob!;
      const atB = await kmsB.send(new DecryptCommand({ CiphertextBlob: fromA, EncryptionContext: ctx }));
      assert.equal(Buffer.from(atB.Plaintext!).toString(), 'written at A');
      assert.equal(atB.KeyId, `arn:aws:kms:us-east-1:${srvB.coffer.access.accountId}:key/${keyId}`);
      assert.equal(Buffer.from((await kmsA.send(new DecryptCommand({ CiphertextBlob: fromB, EncryptionContext: ctx }))).Plaintext!).toString(), 'written at B');
      // The same id with other material is another key: its blobs do not open.
      const c = fresh('coffer-kms-import-c-');
      assert.equal((await coffer(['kms', 'import', '--data-dir', c, '--key-id', keyId])).code, 0);
      const srvC = await startTestServer({ dataDir: c });
      const kmsC = kmsClientFor(srvC.httpUrl);
      try {
        await assert.rejects(kmsC.send(new DecryptCommand({ CiphertextBlob: fromA, EncryptionContext: ctx })), { name: 'InvalidCiphertextException' });
      } finally {
        kmsC.destroy();
        await srvC.stop();
      }
    } finally {
      kmsA.destroy();
      kmsB.destroy();
      await srvA.stop();
      await srvB.stop();
    }
  });
});
