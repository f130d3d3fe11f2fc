// The free-space watch on the data directory: the floor's syntax, the warning when free space is
// under it (once, then every 10 minutes), the line when it is back, and a server that starts on a
// file system under its floor saying so.
import assert from 'node:assert/strict';
import { statfsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/config.ts';
import { floorBytes, parseSpaceFloor, readSpace, watchFreeSpace, type SpaceFloor } from '../../src/service/free-space.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/coffer.ts';
import { eventually } from '../helpers/raw-s3.ts';

function capture(): { lines: Record<string, unknown>[]; log: ReturnType<typeof createLogger> } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, log: createLogger('debug', sink) };
}

const warnings = (lines: Record<string, unknown>[]) => lines.filter((l) => /running out of space/.test(String(l.msg)));

describe('free space of the data directory', () => {
  test('floors: a share or a size', () => {
    assert.deepEqual(parseSpaceFloor('5%'), { percent: 5 });
    assert.deepEqual(parseSpaceFloor(' 12.5 % '), { percent: 12.5 });
    assert.deepEqual(parseSpaceFloor('10GiB'), { bytes: 10 * 2 ** 30 });
    assert.deepEqual(parseSpaceFloor('500MB'), { bytes: 500e6 });
    assert.deepEqual(parseSpaceFloor('4096'), { bytes: 4096 });
    assert.deepEqual(parseSpaceFloor('0'), { bytes: 0 });
    for (const bad of ['', '101%', '-1GB', 'lots', '5 parsecs', '%']) assert.equal(parseSpaceFloor(bad), undefined, bad);
    assert.equal(floorBytes({ percent: 10 }, 1000), 100);
    assert.equal(floorBytes({ bytes: 7 }, 1000), 7);
    assert.deepEqual(loadConfig({}, {}).minFreeSpace, { percent: 5 });
    assert.deepEqual(loadConfig({}, { COFFER_MIN_FREE_SPACE: '2GiB' }).minFreeSpace, { bytes: 2 * 2 ** 30 });
    assert.throws(() => loadConfig({ minFreeSpace: 'plenty' }, {}), /--min-free-space/);
  });

  test('readSpace reports what statfs does', async () => {
    const dir = tempDir('coffer-space-');
    const s = statfsSync(dir);
    const r = await readSpace(dir, { percent: 100 });
    assert.equal(r.totalBytes, s.blocks * s.bsize);
    assert.ok(Math.abs(r.freeBytes - s.bavail * s.bsize) < 64 * 2 ** 20);
    assert.equal(r.low, true); // nobody has 100% free
    assert.equal((await readSpace(dir, { bytes: 0 })).low, false);
  });

  test('a warning when under the floor, again after 10 minutes, and a line when back above', async () => {
    const { lines, log } = capture();
    let now = 1_000_000;
    const floor: SpaceFloor = { percent: 100 };
    const w = watchFreeSpace(tempDir('coffer-space-'), floor, log, () => now);
    try {
      await eventually(() => warnings(lines).length === 1, 'the first warning');
      const first = warnings(lines)[0]!;
      assert.equal(first.level, 40);
      assert.ok(typeof first.freeBytes === 'number' && typeof first.minFreeBytes === 'number' && (first.freeBytes as number) < (first.minFreeBytes as number));
      await w.check();
      now += 9 * 60_000;
      await w.check();
      assert.equal(warnings(lines).length, 1);
      now += 60_000;
      await w.check();
      assert.equal(warnings(lines).length, 2);
      Object.assign(floor, { percent: 0 });
      await w.check();
      assert.equal(lines.filter((l) => /enough free space again/.test(String(l.msg))).length, 1);
      await w.check();
      assert.equal(lines.filter((l) => /enough free space again/.test(String(l.msg))).length, 1);
    } finally {
      w.stop();
    }
  });

  let srv: TestServer | undefined;
  after(async () => {
    await srv?.stop();
  });
  test('a server started under its floor says so in its log', async () => {
    const { lines, log } = capture();
    srv = await startTestServer({ config: { minFreeSpace: '100%' }, log });
    await eventually(() => warnings(lines).length === 1, 'the warning at start');
    assert.equal(warnings(lines)[0]!.dataDir, srv.dataDir);
  });
});
