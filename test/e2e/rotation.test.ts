// SSE-S3 master key rotation: objects written before and after a rotation read back; after the
// re-wrap no object depends on the old version, which can then be retired; kill -9 of the
// re-wrap loses nothing and a second run finishes the job. Driven through `coffer admin`.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ROOT_KEY, startTestServer, tempDir } from '../helpers/coffer.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function admin(dataDir: string, ...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['bin/coffer.js', 'admin', ...args, '--data-dir', dataDir], {
    env: { ...process.env, COFFER_ROOT_KEY: ROOT_KEY },
    encoding: 'utf8',
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

function masterKeys(dataDir: string): { version: number; seals: number; newest: boolean; retiredAt?: number }[] {
  const r = admin(dataDir, 'master-keys', '--json');
  assert.equal(r.status, 0, r.out);
  return JSON.parse(r.out);
}

test('objects before and after a rotation read back; re-wrap empties the old version; retire', async () => {
  const dataDir = tempDir();
  dirs.push(dataDir);
  const srv = await startTestServer({ dataDir });
  try {
    const s3 = srv.s3;
    await s3.send(new CreateBucketCommand({ Bucket: 'rot' }));
    const before = new Map<string, Buffer>();
    for (let i = 0; i < 20; i++) {
      const b = randomBytes(1000 + i * 5000);
      before.set(`before/${i}`, b);
      await s3.send(new PutObjectCommand({ Bucket: 'rot', Key: `before/${i}`, Body: b }));
    }
    assert.deepEqual(
      masterKeys(dataDir).map((k) => [k.version, k.seals]),
      [[1, 20]],
    );
    const rot = admin(dataDir, 'rotate-master-key');
    assert.equal(rot.status, 0, rot.out);
    await srv.coffer.stores.masterKeys.reload(); // what the server's periodic reload does
    const afterRot = new Map<string, Buffer>();
    for (let i = 0; i < 5; i++) {
      const b = randomBytes(70_000);
      afterRot.set(`after/${i}`, b);
      await s3.send(new PutObjectCommand({ Bucket: 'rot', Key: `after/${i}`, Body: b }));
    }
    const obj = await srv.coffer.stores.meta.getObject('rot', 'after/0');
    assert.equal(obj!.sse.masterKeyVersion, 2);
    for (const [k, v] of [...before, ...afterRot]) {
      const r = await s3.send(new GetObjectCommand({ Bucket: 'rot', Key: k }));
      assert.ok(Buffer.from(await r.Body!.transformToByteArray()).equals(v), k);
    }
    // Retiring a version that still seals data is refused.
    const early = admin(dataDir, 'retire-master-key', '1', '--grace-seconds', '0');
    assert.notEqual(early.status, 0);
    assert.match(early.out, /still seals 20/);
    await srv.coffer.rewrapIdle();
    const ks = masterKeys(dataDir);
    assert.deepEqual(
      ks.map((k) => [k.version, k.seals]),
      [
        [1, 0],
        [2, 25],
      ],
    );
    const ret = admin(dataDir, 'retire-master-key', '1', '--grace-seconds', '0');
    assert.equal(ret.status, 0, ret.out);
    assert.ok(masterKeys(dataDir)[0]!.retiredAt);
    await srv.coffer.stores.masterKeys.reload();
    for (const [k, v] of [...before, ...afterRot]) {
      const r = await s3.send(new GetObjectCommand({ Bucket: 'rot', Key: k }));
      assert.ok(Buffer.from(await r.Body!.transformToByteArray()).equals(v), k);
    }
  } finally {
    await srv.stop();
  }
});

test('kill -9 during the re-wrap loses nothing; running it again finishes', async () => {
  const dataDir = tempDir();
  dirs.push(dataDir);
  const N = 3000;
  let srv = await startTestServer({ dataDir });
  const bodies: Buffer[] = [];
  try {
    await srv.s3.send(new CreateBucketCommand({ Bucket: 'rewrap' }));
    const { Readable } = await import('node:stream');
    for (let i = 0; i < N; i++) {
      const b = randomBytes(64);
      bodies.push(b);
      await srv.coffer.objects.putObject({
        bucket: 'rewrap',
        key: `k/${i}`,
        body: Readable.from([b]),
        length: b.length,
        contentType: 'binary/octet-stream',
        headers: {},
        userMetadata: {},
      });
    }
  } finally {
    await srv.stop();
  }
  assert.equal(admin(dataDir, 'rotate-master-key').status, 0);

  const child = spawn(process.execPath, ['bin/coffer.js', 'admin', 'rewrap', '--batch', '100', '--pause-ms', '200', '--data-dir', dataDir], {
    env: { ...process.env, COFFER_ROOT_KEY: ROOT_KEY },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((r) => child.once('exit', r));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (/re-wrapped \d+/.test(out)) resolve();
    });
    child.once('exit', () => reject(new Error('re-wrap finished before it could be killed: ' + out)));
  });
  child.kill('SIGKILL');
  await exited;
  const mid = masterKeys(dataDir);
  assert.ok(mid[0]!.seals > 0 && mid[0]!.seals < N, `partly re-wrapped: ${JSON.stringify(mid)}`);
  assert.equal(mid[0]!.seals + mid[1]!.seals, N);

  srv = await startTestServer({ dataDir, env: { COFFER_MASTER_KEY_ROTATION_DAYS: '0' } });
  try {
    await srv.coffer.rewrapIdle();
    for (let i = 0; i < N; i += 97) {
      const r = await srv.s3.send(new GetObjectCommand({ Bucket: 'rewrap', Key: `k/${i}` }));
      assert.ok(Buffer.from(await r.Body!.transformToByteArray()).equals(bodies[i]!), `k/${i}`);
    }
  } finally {
    await srv.stop();
  }
  const final = masterKeys(dataDir);
  assert.deepEqual(
    final.map((k) => [k.version, k.seals]),
    [
      [1, 0],
      [2, N],
    ],
  );
});
