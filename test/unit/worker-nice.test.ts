// The worker threads (MD5, AES-GCM) run below the thread that serves requests: --worker-nice
// (env COFFER_WORKER_NICE, default 10) nice steps, on Linux, where a nice value is a thread's.
// Checked from outside the threads, as `top -H` would: /proc/self/task/<tid>/stat.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { after, describe, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { loadConfig } from '../../src/config/config.ts';
import { stopCryptoWorker } from '../../src/crypto/crypto-offload.ts';
import { stopMd5Worker } from '../../src/crypto/md5-offload.ts';
import { startTestServer, type TestServer } from '../helpers/coffer.ts';
import { eventually } from '../helpers/raw-s3.ts';

/** Each thread of this process and its nice value (field 19 of its stat line). */
function threadNices(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(fields[19 - 3]));
    } catch {
      /* the thread ended meanwhile */
    }
  }
  return out;
}

/** Threads whose nice value is `base + steps`. */
const at = (base: number, steps: number) => [...threadNices().values()].filter((n) => n === base + steps).length;

/** A 1 MiB object in and out: the upload's MD5 and sealing, and the read's decryption, go to the workers. */
async function roundTrip(srv: TestServer, bucket: string): Promise<void> {
  await srv.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const body = Buffer.alloc(1024 * 1024, 7);
  await srv.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: body, ContentLength: body.length }));
  const got = await srv.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }));
  assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body);
}

describe('worker threads run below the request thread (--worker-nice)', () => {
  let srv: TestServer | undefined;
  after(async () => {
    await srv?.stop();
    await stopMd5Worker();
    await stopCryptoWorker();
  });

  test('the setting: 10 by default, from the flag or COFFER_WORKER_NICE, 0 to 19', () => {
    assert.equal(loadConfig({}, {}).workerNice, 10);
    assert.equal(loadConfig({}, { COFFER_WORKER_NICE: '0' }).workerNice, 0);
    assert.equal(loadConfig({ workerNice: '19' }, { COFFER_WORKER_NICE: '3' }).workerNice, 19);
    for (const bad of ['-1', '20', 'low', '2.5', '']) {
      assert.throws(() => loadConfig({ workerNice: bad }, {}), /--worker-nice: a whole number of nice steps from 0 to 19/, bad);
    }
  });

  test('the MD5 and AES-GCM workers take it; the request thread keeps its own', { skip: process.platform !== 'linux' && 'nice values are per thread on Linux only' }, async () => {
    const base = getPriority(0);
    const steps = Math.min(7, 19 - base);
    assert.ok(steps > 0, 'this test runs below nice 19');
    await stopMd5Worker();
    await stopCryptoWorker();
    srv = await startTestServer({ config: { workerNice: String(steps) } });
    await roundTrip(srv, 'nice-seven');
    // Both workers lower themselves as they start (and the main thread did not move).
    await eventually(() => at(base, steps) === 2, 'two worker threads at the lowered priority');
    assert.equal(threadNices().get(process.pid), base);
    assert.equal(getPriority(0), base);
    await srv.stop();
    srv = undefined;

    // With 0 the workers keep the priority of the thread that started them.
    await stopMd5Worker();
    await stopCryptoWorker();
    srv = await startTestServer({ config: { workerNice: '0' } });
    await roundTrip(srv, 'nice-zero');
    assert.equal(at(base, steps), 0);
    assert.ok([...threadNices().values()].every((n) => n === base));
  });
});
