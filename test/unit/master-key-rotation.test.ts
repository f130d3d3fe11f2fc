// Automatic SSE-S3 master key rotation on a period, with an injected clock: no rotation before
// the period, one after it, none when the period is 0; new data keys use the newest version
// while older versions still open what they sealed.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SecretKey } from '../../src/crypto/keys.ts';
import { MasterKeyService } from '../../src/service/master-keys.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite-meta/sqlite-metadata-store.ts';
import { tempDir } from '../helpers/coffer.ts';

const DAY = 86_400_000;

test('rotateIfDue rotates once the period has elapsed, and only then', async () => {
  const dir = tempDir();
  const meta = new SqliteMetadataStore(join(dir, 'm.db'));
  let now = 1_700_000_000_000;
  const keys = new MasterKeyService(meta, SecretKey.generate(), () => now);
  try {
    await keys.init();
    assert.equal(keys.newestVersion(), 1);
    const binding = { bucket: 'b', key: 'k', versionId: 'v1' };
    const first = keys.newDataKey(binding);
    now += 89 * DAY;
    assert.equal(await keys.rotateIfDue(90 * DAY), 0);
    assert.equal(await keys.rotateIfDue(0), 0, 'a period of 0 never rotates');
    now += 2 * DAY;
    assert.equal(await keys.rotateIfDue(90 * DAY), 2);
    assert.equal(await keys.rotateIfDue(90 * DAY), 0, 'the new version restarts the period');
    const second = keys.newDataKey({ ...binding, versionId: 'v2' });
    assert.equal(first.sse.masterKeyVersion, 1);
    assert.equal(second.sse.masterKeyVersion, 2);
    const opened = await keys.openDataKey(first.sse, binding);
    assert.ok(opened.expose().equals(first.dataKey.expose()));
  } finally {
    await meta.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
