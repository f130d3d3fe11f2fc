// The KMS audit trail end to end: calls through @aws-sdk/client-kms become CloudTrail-shaped
// events with the caller's principal, access key, IP, User-Agent and request id, the operation,
// the key and the encryption context; a denied call records its error; nothing secret (data
// key, plaintext, ciphertext blob) is anywhere in the database files; `coffer audit` lists and
// filters, exports JSON lines, and `verify` passes, then names the event a test edits in the
// SQLite file behind its back.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { CreateAliasCommand, CreateKeyCommand, DecryptCommand, EncryptCommand, GenerateDataKeyCommand, KMSClient, type KMSServiceException } from '@aws-sdk/client-kms';
import Database from 'better-sqlite3';
import type { CloudTrailEvent } from '../../src/kms/audit.ts';
import { kmsClientFor, startTestServer, type TestServer } from '../helpers/coffer.ts';

const run = promisify(execFile);

/** `coffer audit ARGS` against the server's data directory: exit code and output. */
async function coffer(dataDir: string, ...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(process.execPath, ['bin/coffer.js', 'audit', ...args, '--data-dir', dataDir], { maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

const lines = (out: string) => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number; hash: string; event: CloudTrailEvent });

describe('KMS audit trail (e2e)', () => {
  let srv: TestServer;
  let kms: KMSClient;
  let aliceKms: KMSClient;
  let account: string;
  let aliceArn: string;
  let aliceKeyId: string;
  let keyId: string;
  let keyArn: string;
  const secrets: Buffer[] = [];
  let deniedRequestId: string | undefined;
  let gdkRequestId: string | undefined;

  before(async () => {
    srv = await startTestServer();
    account = srv.coffer.access.accountId;
    kms = kmsClientFor(srv.httpUrl);
    await srv.coffer.access.identities.createUser('alice');
    const ak = await srv.coffer.access.identities.createAccessKey('alice');
    aliceKeyId = ak.accessKeyId;
    aliceArn = `arn:aws:iam::${account}:user/alice`;
    aliceKms = kmsClientFor(srv.httpsUrl, { caPath: srv.caPath, credentials: { accessKeyId: ak.accessKeyId, secretAccessKey: ak.secretKey } });

    const { KeyMetadata: m } = await kms.send(new CreateKeyCommand({ Description: 'audited' }));
    keyId = m!.KeyId!;
    keyArn = m!.Arn!;
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/audited', TargetKeyId: keyId }));
    const plaintext = Buffer.from('the launch codes are 0000');
    const ctx = { purpose: 'audit-test', 'aws:s3:arn': 'arn:aws:s3:::bucket/key' };
    const enc = await kms.send(new EncryptCommand({ KeyId: 'alias/audited', Plaintext: plaintext, EncryptionContext: ctx }));
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx }));
    const gdk = await kms.send(new GenerateDataKeyCommand({ KeyId: keyArn, KeySpec: 'AES_256', EncryptionContext: { team: 'blue' } }));
    gdkRequestId = gdk.$metadata.requestId;
    secrets.push(plaintext, Buffer.from(enc.CiphertextBlob!), Buffer.from(dec.Plaintext!), Buffer.from(gdk.Plaintext!), Buffer.from(gdk.CiphertextBlob!));
    try {
      await aliceKms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('alice was here'), EncryptionContext: { who: 'alice' } }));
      assert.fail('alice has no permission');
    } catch (e) {
      assert.equal((e as KMSServiceException).name, 'AccessDeniedException');
      deniedRequestId = (e as KMSServiceException).$metadata.requestId;
    }
  });

  after(async () => {
    kms?.destroy();
    aliceKms?.destroy();
    await srv?.stop();
  });

  const events = async () => (await srv.coffer.stores.meta.listAudit({ limit: 10_000 })).map((r) => JSON.parse(r.event) as CloudTrailEvent);

  test('each call is an event: principal, operation, key, context, client IP, User-Agent and request id', async () => {
    const all = await events();
    assert.deepEqual(
      all.map((e) => e.eventName),
      ['CreateKey', 'CreateAlias', 'Encrypt', 'Decrypt', 'GenerateDataKey', 'Encrypt'],
    );
    const gdk = all[4]!;
    assert.equal(gdk.userIdentity.type, 'Root');
    assert.equal(gdk.userIdentity.arn, `arn:aws:iam::${account}:root`);
    assert.equal(gdk.userIdentity.accountId, account);
    assert.equal(gdk.sourceIPAddress, '127.0.0.1');
    assert.match(gdk.userAgent, /aws-sdk-js/);
    assert.equal(gdk.requestID, gdkRequestId);
    assert.deepEqual(gdk.requestParameters, { keyId: keyArn, keySpec: 'AES_256', encryptionContext: { team: 'blue' } });
    assert.deepEqual(gdk.resources, [{ ARN: keyArn, accountId: account, type: 'AWS::KMS::Key' }]);
    assert.equal(gdk.responseElements, null);
    const encrypt = all[2]!;
    assert.equal((encrypt.requestParameters as { keyId: string }).keyId, 'alias/audited', 'the key as the caller named it');
    assert.deepEqual((encrypt.requestParameters as { encryptionContext: unknown }).encryptionContext, { purpose: 'audit-test', 'aws:s3:arn': 'arn:aws:s3:::bucket/key' });
    assert.deepEqual(encrypt.resources.map((r) => r.ARN), [keyArn]);
    assert.deepEqual(all[3]!.resources.map((r) => r.ARN), [keyArn], 'Decrypt without KeyId names the key of the blob');
  });

  test('a denied call records AccessDeniedException with the user, the access key and the key', async () => {
    const denied = (await events()).at(-1)!;
    assert.equal(denied.eventName, 'Encrypt');
    assert.equal(denied.errorCode, 'AccessDeniedException');
    assert.match(denied.errorMessage!, /^User: arn:aws:iam::\d{12}:user\/alice is not authorized to perform: kms:Encrypt/);
    assert.deepEqual(
      { type: denied.userIdentity.type, arn: denied.userIdentity.arn, userName: denied.userIdentity.userName, accessKeyId: denied.userIdentity.accessKeyId },
      { type: 'IAMUser', arn: aliceArn, userName: 'alice', accessKeyId: aliceKeyId },
    );
    assert.equal(denied.requestID, deniedRequestId);
    assert.deepEqual(denied.resources.map((r) => r.ARN), [keyArn]);
  });

  test('no plaintext, data key or ciphertext blob anywhere in the database files', async () => {
    const files = ['metadata.db', 'metadata.db-wal'].map((f) => join(srv.dataDir, f)).filter(existsSync);
    const raw = Buffer.concat(files.map((f) => readFileSync(f)));
    for (const s of secrets) {
      assert.equal(raw.indexOf(s), -1, 'raw bytes');
      for (const enc of ['base64', 'hex', 'base64url'] as const) assert.equal(raw.indexOf(Buffer.from(s.toString(enc))), -1, enc);
    }
  });

  test('coffer audit list filters by key (alias or id), principal, operation, error and time', async () => {
    const seqs = async (...args: string[]) => {
      const r = await coffer(srv.dataDir, 'list', '--json', ...args);
      assert.equal(r.code, 0, r.out);
      return lines(r.out).map((l) => l.event.eventName);
    };
    assert.deepEqual(await seqs('--key', 'alias/audited'), ['CreateKey', 'CreateAlias', 'Encrypt', 'Decrypt', 'GenerateDataKey', 'Encrypt']);
    assert.deepEqual(await seqs('--key', keyArn, '--operation', 'Decrypt'), ['Decrypt']);
    assert.deepEqual(await seqs('--principal', aliceArn), ['Encrypt']);
    assert.deepEqual(await seqs('--error', 'AccessDeniedException'), ['Encrypt']);
    assert.deepEqual(await seqs('--since', '2999-01-01T00:00:00Z'), []);
    assert.deepEqual(await seqs('--until', '2999-01-01T00:00:00Z', '--limit', '2'), ['CreateKey', 'CreateAlias']);
    const text = await coffer(srv.dataDir, 'list', '--operation', 'Encrypt');
    assert.match(text.out, /Encrypt\s+AccessDeniedException\s+arn:aws:iam::\d{12}:user\/alice/);
    const bad = await coffer(srv.dataDir, 'list', '--since', 'yesterday-ish');
    assert.equal(bad.code, 2);
    assert.match(bad.out, /--since: an ISO 8601 time/);
  });

  test('coffer audit tail and export (JSON lines, each event exactly as hashed)', async () => {
    const tail = await coffer(srv.dataDir, 'tail', '-n', '2', '--json');
    assert.deepEqual(lines(tail.out).map((l) => l.seq), [5, 6]);
    const exp = await coffer(srv.dataDir, 'export');
    const all = lines(exp.out);
    assert.equal(all.length, 6);
    const stored = await srv.coffer.stores.meta.listAudit({});
    const rawLines = exp.out.split('\n').filter(Boolean);
    rawLines.forEach((l, i) => assert.equal(l, `{"seq":${stored[i]!.seq},"hash":"${stored[i]!.hash}","event":${stored[i]!.event}}`));
  });

  test('coffer audit verify: intact, then names the event edited in the SQLite file', async () => {
    const ok = await coffer(srv.dataDir, 'verify');
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /^audit trail intact: 6 events \(head: event 6, sha256 [0-9a-f]{64}\)/);
    const db = new Database(join(srv.dataDir, 'metadata.db'));
    try {
      const row = db.prepare<[], { event: string }>('SELECT event FROM kms_audit WHERE seq = 4').get()!;
      // Someone rewrites history: the Decrypt was "by alice".
      db.prepare('UPDATE kms_audit SET event = ? WHERE seq = 4').run(row.event.replace(`"arn":"arn:aws:iam::${account}:root"`, `"arn":"${aliceArn}"`));
      const broken = await coffer(srv.dataDir, 'verify');
      assert.equal(broken.code, 1, broken.out);
      assert.match(broken.out, /audit trail BROKEN at event 4: hash mismatch/);
      const json = await coffer(srv.dataDir, 'verify', '--json');
      assert.equal((JSON.parse(json.out) as { firstBad: { seq: number } }).firstBad.seq, 4);
      db.prepare('UPDATE kms_audit SET event = ? WHERE seq = 4').run(row.event);
    } finally {
      db.close();
    }
    assert.equal((await coffer(srv.dataDir, 'verify')).code, 0);
  });
});
