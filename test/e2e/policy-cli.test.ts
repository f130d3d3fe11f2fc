// The identity and policy admin commands, run as an operator runs them (bin/coffer.js, a
// separate process) against the data directory of a running server: user create / list /
// delete, access-key create / list / disable / enable / delete, attach-policy (validated, the
// MalformedPolicy message printed) and detach-policy, policy simulate (allowed / denied, the
// deciding statement, the encryption-header warning); the server sees the changes (within the
// 5-second caches for changes made by another process). Also `coffer server --bootstrap`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutBucketPolicyCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ROOT_KEY, startChildServer, startTestServer, tempDir, type TestServer } from '../helpers/coffer.ts';
import { clientAs, rejectsWith } from '../helpers/identities.ts';
import { eventually } from '../helpers/raw-s3.ts';

const run = promisify(execFile);
const BUCKET = 'cli-policies';

let srv: TestServer;
let dataDir: string;
let work: string;

/** Runs `coffer admin ARGS --data-dir <dir>`; resolves with stdout, stderr and the exit code. */
async function admin(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, ['bin/coffer.js', 'admin', ...args, '--data-dir', dataDir], { env: { ...process.env, COFFER_ROOT_KEY: ROOT_KEY } });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : 1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

before(async () => {
  dataDir = tempDir('coffer-policy-cli-');
  work = tempDir('coffer-policy-cli-work-');
  srv = await startTestServer({ dataDir });
  await srv.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'reports/q1.txt', Body: 'q1' }));
  await srv.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'secret.txt', Body: 'secret' }));
});
after(async () => {
  await srv?.stop();
});

describe('coffer admin user / access-key / attach-policy / policy simulate', () => {
  let key: { accessKeyId: string; secretAccessKey: string };

  test('user create, access-key create, attach-policy: the new user works on the running server', async () => {
    const created = await admin('user', 'create', 'dana');
    assert.equal(created.code, 0, created.err);
    assert.match(created.out, /Created user dana: arn:aws:iam::\d{12}:user\/dana/);
    const dup = await admin('user', 'create', 'dana');
    assert.equal(dup.code, 1);
    assert.match(dup.err, /user dana already exists/);

    const k = await admin('user', 'access-key', 'create', 'dana');
    assert.equal(k.code, 0, k.err);
    const id = /AWS_ACCESS_KEY_ID=(\S+)/.exec(k.out)![1]!;
    const secret = /AWS_SECRET_ACCESS_KEY=(\S+)/.exec(k.out)![1]!;
    key = { accessKeyId: id, secretAccessKey: secret };
    const listed = await admin('user', 'access-key', 'list', 'dana');
    assert.match(listed.out, new RegExp(`${id}\\s+Active`));

    const policyFile = join(work, 'reports-reader.json');
    writeFileSync(
      policyFile,
      JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'ReadReports', Effect: 'Allow', Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/reports/*` }] }),
    );
    const attached = await admin('user', 'attach-policy', 'dana', '--file', policyFile);
    assert.equal(attached.code, 0, attached.err);
    assert.match(attached.out, /Attached policy reports-reader to user dana/);

    const users = await admin('user', 'list', '--json');
    const dana = (JSON.parse(users.out) as { name: string; policies: string[]; accessKeys: number }[]).find((u) => u.name === 'dana')!;
    assert.deepEqual(dana.policies, ['reports-reader']);
    assert.equal(dana.accessKeys, 1);

    const c = clientAs(key, srv.httpUrl);
    try {
      assert.equal(await (await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'reports/q1.txt' }))).Body!.transformToString(), 'q1');
      await rejectsWith(c.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'secret.txt' })), 'AccessDenied', 403);
    } finally {
      c.destroy();
    }
  });

  test('attach-policy refuses a malformed policy with the MalformedPolicy message, keeping the old one', async () => {
    const bad = join(work, 'bad.json');
    writeFileSync(bad, JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*', Condition: { StringEqualz: { 's3:prefix': 'x' } } }] }));
    const r = await admin('user', 'attach-policy', 'dana', '--file', bad, '--name', 'reports-reader');
    assert.equal(r.code, 1);
    assert.match(r.err, /MalformedPolicy: Unknown condition operator 'StringEqualz' in statement 0/);
    const withPrincipal = join(work, 'principal.json');
    writeFileSync(withPrincipal, JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:*', Resource: '*' }] }));
    assert.match((await admin('user', 'attach-policy', 'dana', '--file', withPrincipal)).err, /should not specify a principal/);
    const kept = await admin('user', 'policies', 'dana');
    assert.match(kept.out, /# reports-reader\n.*ReadReports/);
  });

  test('policy simulate: allowed / denied with the deciding statement; exit code 3 when denied', async () => {
    const yes = await admin('policy', 'simulate', '--bucket', BUCKET, '--key', 'reports/q2.txt', '--action', 's3:GetObject', '--user', 'dana');
    assert.equal(yes.code, 0, yes.err);
    assert.match(yes.out, /^ALLOWED: s3:GetObject on arn:aws:s3:::cli-policies\/reports\/q2.txt by arn:aws:iam::\d{12}:user\/dana/);
    assert.match(yes.out, /allowed by statement ReadReports \(index 0\) of identity policy 'reports-reader'/);
    assert.match(yes.out, /deciding statement: \{"Sid":"ReadReports"/);
    const no = await admin('policy', 'simulate', '--bucket', BUCKET, '--key', 'secret.txt', '--action', 's3:GetObject', '--user', 'dana');
    assert.equal(no.code, 3);
    assert.match(no.out, /^DENIED: .*implicitly denied: no statement allows/s);
    const json = JSON.parse((await admin('policy', 'simulate', '--bucket', BUCKET, '--key', 'x', '--action', 's3:PutObject', '--json')).out);
    assert.equal(json.allowed, true);
    assert.equal(json.principal.endsWith(':root'), true);
    assert.equal(json.context['aws:SecureTransport'], 'true');
  });

  test('policy simulate warns when the bucket policy requires the encryption header', async () => {
    await srv.s3.send(
      new PutBucketPolicyCommand({
        Bucket: BUCKET,
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Sid: 'DenyUnEncryptedObjectUploads', Effect: 'Deny', Principal: '*', Action: 's3:PutObject', Resource: `arn:aws:s3:::${BUCKET}/*`, Condition: { Null: { 's3:x-amz-server-side-encryption': 'true' } } },
            { Sid: 'HttpsOnly', Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: `arn:aws:s3:::${BUCKET}/*`, Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
          ],
        }),
      }),
    );
    const without = await admin('policy', 'simulate', '--bucket', BUCKET, '--key', 'up.bin', '--action', 's3:PutObject');
    assert.equal(without.code, 3);
    assert.match(without.out, /DENIED: .*denied by statement DenyUnEncryptedObjectUploads \(index 0\) of the bucket policy/s);
    assert.match(without.out, /"Condition":\{"Null":\{"s3:x-amz-server-side-encryption":"true"\}\}/);
    assert.match(without.out, /warning: the bucket policy of cli-policies requires the x-amz-server-side-encryption header on uploads \(statement DenyUnEncryptedObjectUploads \(index 0\) of the bucket policy\): clients that rely on the default encryption/);
    const withHeader = await admin('policy', 'simulate', '--bucket', BUCKET, '--key', 'up.bin', '--action', 's3:PutObject', '--header', 'x-amz-server-side-encryption=AES256');
    assert.equal(withHeader.code, 0, withHeader.out);
    assert.match(withHeader.out, /ALLOWED/);
    assert.match(withHeader.out, /warning: without the header this upload would be denied: denied by statement DenyUnEncryptedObjectUploads/);
    const insecure = await admin('policy', 'simulate', '--bucket', BUCKET, '--key', 'up.bin', '--action', 's3:GetObject', '--insecure');
    assert.equal(insecure.code, 3);
    assert.match(insecure.out, /denied by statement HttpsOnly \(index 1\)/);
    const ip = await admin('policy', 'simulate', '--bucket', BUCKET, '--key', 'up.bin', '--action', 's3:GetObject', '--source-ip', '203.0.113.9', '--json');
    assert.equal(JSON.parse(ip.out).context['aws:SourceIp'], '203.0.113.9');
  });

  test('access-key disable / enable / delete and detach-policy reach the running server within its cache period', async () => {
    const c = clientAs(key, srv.httpUrl);
    const get = () => c.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'reports/q1.txt' }));
    const refusedWith = async (code: string) => {
      try {
        await get();
        return false;
      } catch (e) {
        return (e as Error).name === code;
      }
    };
    try {
      assert.equal((await admin('user', 'access-key', 'disable', 'dana', key.accessKeyId)).code, 0);
      assert.match((await admin('user', 'access-key', 'list', 'dana')).out, /Inactive/);
      await eventually(() => refusedWith('InvalidAccessKeyId'), 'the disabled key is refused', 8000);
      assert.equal((await admin('user', 'access-key', 'enable', 'dana', key.accessKeyId)).code, 0);
      await eventually(async () => !(await refusedWith('InvalidAccessKeyId')), 'the re-enabled key works', 8000);
      const detached = await admin('user', 'detach-policy', 'dana', '--name', 'reports-reader');
      assert.equal(detached.code, 0, detached.err);
      await eventually(() => refusedWith('AccessDenied'), 'access ends with the policy', 8000);
      assert.match((await admin('user', 'detach-policy', 'dana', '--name', 'reports-reader')).err, /has no policy named reports-reader/);
      assert.equal((await admin('user', 'access-key', 'delete', 'dana', key.accessKeyId)).code, 0);
      await eventually(() => refusedWith('InvalidAccessKeyId'), 'the deleted key is refused', 8000);
      assert.equal((await admin('user', 'delete', 'dana')).code, 0);
      assert.doesNotMatch((await admin('user', 'list')).out, /dana/);
      assert.match((await admin('user', 'delete', 'dana')).err, /no user named dana/);
    } finally {
      c.destroy();
    }
  });
});

describe('coffer server --bootstrap', () => {
  test('users, keys, policies and bucket policies from a file; a bad policy stops the start with its message', async () => {
    const dir = tempDir('coffer-bootstrap-');
    const file = join(work, 'bootstrap.json');
    const erin = { accessKeyId: 'AKIABOOTSTRAPERIN01', secretAccessKey: 'erin-secret-0123456789abcdef' };
    writeFileSync(
      file,
      JSON.stringify({
        users: [
          {
            name: 'erin',
            accessKeys: [erin],
            policies: [{ name: 'rw', document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:PutObject', 's3:GetObject'], Resource: 'arn:aws:s3:::boot/*' }] } }],
          },
        ],
        buckets: [{ name: 'boot', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::boot/public/*' }] } }],
      }),
    );
    const child = await startChildServer(dir, { COFFER_BOOTSTRAP: file, COFFER_ACCOUNT_ID: '444455556666' });
    try {
      const c = clientAs(erin, child.httpUrl);
      await c.send(new PutObjectCommand({ Bucket: 'boot', Key: 'public/hello.txt', Body: 'hello' }));
      c.destroy();
      const anon = await fetch(`${child.httpUrl}/boot/public/hello.txt`);
      assert.equal(await anon.text(), 'hello');
    } finally {
      await child.stop();
    }
    // Applied again at the next start: idempotent.
    const again = await startChildServer(dir, { COFFER_BOOTSTRAP: file, COFFER_ACCOUNT_ID: '444455556666' });
    await again.stop();
    // A different account id for the same data directory is refused.
    await assert.rejects(startChildServer(dir, { COFFER_ACCOUNT_ID: '999999999999' }), /belongs to account 444455556666/);
    writeFileSync(file, JSON.stringify({ buckets: [{ name: 'boot', policy: { Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::elsewhere/*' }] } }] }));
    await assert.rejects(startChildServer(dir, { COFFER_BOOTSTRAP: file }), /bootstrap: policy of bucket boot: .*resource/i);
  });
});
