// The benchmark's target list (bench/lib/targets.ts): which BENCH_TARGETS select what, the
// s3rver-over-HTTPS target (s3rver's own --key/--cert) really serving S3 over TLS, so the
// bench's like-for-like HTTPS comparison measures what it says, and Coffer started from a dist/
// that matches its sources.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { S3Client } from '../../bench/lib/client.ts';
import { parseProcStat } from '../../bench/lib/procs.ts';
import { ALL_TARGETS, ensureBuilt, reportOrder, REPO, RUN_ORDER, selectTargets } from '../../bench/lib/targets.ts';

const names = (spec: string | undefined, rgw = false) => selectTargets(spec, rgw).map((t) => t.name);

describe('bench targets', () => {
  test('a target name selects it alone; any other token selects its prefix', () => {
    assert.deepEqual(names('s3rver'), ['s3rver']);
    assert.deepEqual(names('s3rver-https'), ['s3rver-https']);
    assert.deepEqual(names('bare'), ['bare-http', 'bare-https']);
    assert.deepEqual(names('coffer,s3rver'), ['coffer-http', 's3rver', 'coffer-https']);
    assert.deepEqual(names('rgw', true), ['rgw']);
    assert.deepEqual(names('rgw', false), []);
    assert.throws(() => names('nope'), /unknown BENCH_TARGETS entries: nope/);
  });

  test('by default every target but Ceph when it is off, s3rver over HTTPS among them', () => {
    assert.deepEqual(names(undefined), ['coffer-http', 's3rver', 'coffer-https', 's3rver-https', 'bare-http', 'bare-https']);
    assert.equal(names(undefined, true).length, ALL_TARGETS.length);
  });

  test('targets run in RUN_ORDER (each compared pair adjacent) and are reported in ALL_TARGETS order', () => {
    assert.deepEqual([...RUN_ORDER].sort(), ALL_TARGETS.map((d) => d.name).sort(), 'every target has its place in the run');
    const ran = selectTargets(undefined, true);
    assert.equal(ran[0]!.name, 'coffer-http');
    assert.deepEqual(reportOrder(ran).map((d) => d.name), ALL_TARGETS.map((d) => d.name));
  });

  test('s3rver-https serves PUT and GET over TLS, trusting only its own certificate', async () => {
    const def = ALL_TARGETS.find((t) => t.name === 's3rver-https')!;
    const running = await def.start();
    try {
      assert.match(running.endpoint.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(running.endpoint.ca, 'a CA to trust');
      const client = new S3Client(running.endpoint, 4);
      try {
        await client.createBucket('bench-targets');
        const data = randomBytes(70_000);
        assert.equal((await client.put('bench-targets', 'k', data)).status, 200);
        const got = await client.get('bench-targets', 'k', true);
        assert.equal(got.status, 200);
        assert.equal(got.bytes, data.length);
        assert.equal(got.sha256, createHash('sha256').update(data).digest('hex'));
      } finally {
        client.close();
      }
      // Without the certificate the connection is refused (it is TLS, and not trusted by default).
      const untrusting = new S3Client({ ...running.endpoint, ca: undefined }, 1);
      try {
        await assert.rejects(untrusting.get('bench-targets', 'k'), /certificate/i);
      } finally {
        untrusting.close();
      }
    } finally {
      await running.stop();
    }
  });
});

// The bench starts Coffer from dist/ only if it matches the sources (bin/coffer.js falls back to
// tsx otherwise): ensureBuilt rebuilds a stale or missing dist/ before each start.
test('ensureBuilt builds a checkout whose dist/ is missing or stale, and only then', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-ensure-built-'));
  try {
    mkdirSync(join(dir, 'scripts'));
    mkdirSync(join(dir, 'src'));
    copyFileSync(join(REPO, 'scripts', 'source-fingerprint.mjs'), join(dir, 'scripts', 'source-fingerprint.mjs'));
    // A build that records the fingerprint, as scripts/build.mjs does, and counts its runs.
    writeFileSync(
      join(dir, 'scripts', 'build.mjs'),
      `import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { sourceFingerprint } from './source-fingerprint.mjs';
mkdirSync('dist', { recursive: true });
writeFileSync('dist/SOURCE-FINGERPRINT', sourceFingerprint('src') + '\\n');
appendFileSync('builds', 'x');
`,
    );
    writeFileSync(join(dir, 'src', 'a.ts'), 'export const a = 1;\n');
    const builds = () => readFileSync(join(dir, 'builds'), 'utf8').length;
    assert.equal(await ensureBuilt(dir), true, 'no dist/: built');
    assert.equal(await ensureBuilt(dir), false, 'up to date: not built again');
    writeFileSync(join(dir, 'src', 'a.ts'), 'export const a = 1; // a comment\n');
    assert.equal(await ensureBuilt(dir), true, 'a source edited: built');
    assert.equal(builds(), 2);
    rmSync(join(dir, 'scripts', 'build.mjs'));
    assert.equal(await ensureBuilt(dir), false, 'not a checkout with a build: left alone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the machine's CPU: busy includes the hypervisor's steal, which is reported on its own", () => {
  // user nice system idle iowait irq softirq steal guest guest_nice, in ticks of 1/100 s
  const stat = 'cpu  1000 20 300 9000 50 7 8 400 0 0\ncpu0 500 10 150 4500 25 3 4 200 0 0\nintr 1\n';
  assert.deepEqual(parseProcStat(stat), { busy: (1000 + 20 + 300 + 7 + 8 + 400) / 100, steal: 4 });
  // Older kernels' lines end before steal.
  assert.deepEqual(parseProcStat('cpu  100 0 50 900 1 2 3\n'), { busy: 1.55, steal: 0 });
  assert.throws(() => parseProcStat('intr 1\n'), /no cpu line/);
});
