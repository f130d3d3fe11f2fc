// Automatic SSE-S3 master key rotation on a period, with an injected clock: no rotation before
// the period, one after it, none when the period is 0; new data keys use the newest version
// while older versions still open what they sealed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { deriveStreamKey } from '../../src/crypto/format.ts';
import { SecretKey } from '../../src/crypto/keys.ts';
import { MasterKeyService } from '../../src/service/master-keys.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite-meta/sqlite-metadata-store.ts';
import { tempDir } from '../helpers/coffer.ts';

const DAY = 86_400_000;

/** A key service on a fresh metadata store with a clock the test moves (and the init done); closed and removed after. */
async function withKeys(fn: (keys: MasterKeyService, clock: { now: number }) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const meta = new SqliteMetadataStore(join(dir, 'm.db'));
  const clock = { now: 1_700_000_000_000 };
  const keys = new MasterKeyService(meta, SecretKey.generate(), () => clock.now);
  try {
    await keys.init();
    await fn(keys, clock);
  } finally {
    await meta.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('rotateIfDue rotates once the period has elapsed, and only then', async () => {
  await withKeys(async (keys, clock) => {
    assert.equal(keys.newestVersion(), 1);
    const binding = { bucket: 'b', key: 'k', versionId: 'v1' };
    const first = keys.newDataKey(binding);
    clock.now += 89 * DAY;
    assert.equal(await keys.rotateIfDue(90 * DAY), 0);
    assert.equal(await keys.rotateIfDue(0), 0, 'a period of 0 never rotates');
    clock.now += 2 * DAY;
    assert.equal(await keys.rotateIfDue(90 * DAY), 2);
    assert.equal(await keys.rotateIfDue(90 * DAY), 0, 'the new version restarts the period');
    const second = keys.newDataKey({ ...binding, versionId: 'v2' });
    assert.equal(first.sse.masterKeyVersion, 1);
    assert.equal(second.sse.masterKeyVersion, 2);
    const opened = await keys.openDataKey(first.sse, binding);
    assert.ok(opened.expose().equals(first.dataKey.expose()));
  });
});

test('opened data keys are kept for the next read: the same key, the caller owning its copy; a changed sealed key or binding is opened anew', async () => {
  await withKeys(async (keys) => {
    const binding = { bucket: 'b', key: 'k', versionId: 'v1' };
    const { dataKey, sse } = keys.newDataKey(binding);
    const a = await keys.openDataKey(sse, binding);
    assert.ok(a.expose().equals(dataKey.expose()));
    a.zero(); // the caller's copy: the next read must not see it zeroed
    const b = await keys.openDataKey(sse, binding);
    assert.ok(b.expose().equals(dataKey.expose()), 'kept, and not the copy handed out before');
    // A sealed key with a flipped byte, or the right one under another binding, still fails:
    // nothing opened before stands in for the check.
    const sealed = Buffer.from(sse.sealedKey, 'base64');
    sealed[sealed.length - 1]! ^= 1;
    await assert.rejects(keys.openDataKey({ ...sse, sealedKey: sealed.toString('base64') }, binding));
    await assert.rejects(keys.openDataKey(sse, { ...binding, key: 'other' }));
    await assert.rejects(keys.openDataKey(sse, { ...binding, versionId: 'v2' }));
    // After a re-wrap to a new version the object's new sealed key opens the same data key.
    await keys.rotate();
    const resealed = keys.sealExisting(dataKey, binding);
    assert.equal(resealed.masterKeyVersion, 2);
    assert.ok((await keys.openDataKey(resealed, binding)).expose().equals(dataKey.expose()));
  });
});

test('a kept data key keeps its last stream key: the same key as derived afresh, per salt and index, wiped with the data key when its version is retired', async () => {
  await withKeys(async (keys, clock) => {
    const binding = { bucket: 'b', key: 'k', versionId: 'v1' };
    const { dataKey, sse } = keys.newDataKey(binding);
    const salts = [randomBytes(32), randomBytes(32)];
    const fresh = (salt: Buffer, index: number) => deriveStreamKey(SecretKey.from(dataKey.expose()), salt, index).expose();
    for (let round = 0; round < 3; round++) {
      const opened = await keys.openDataKey(sse, binding);
      for (const salt of salts) {
        for (const index of [0, 1, 7]) {
          const k = deriveStreamKey(opened, salt, index);
          assert.ok(k.expose().equals(fresh(salt, index)), `round ${round}, index ${index}`);
          k.zero(); // the caller's copy: what is kept must not be zeroed with it
          const kept = opened.derived?.get(index, salt);
          assert.ok(kept?.equals(fresh(salt, index)), 'the stream key just derived is kept');
          assert.equal(opened.derived?.get(index === 0 ? 1 : 0, salt), undefined, 'another index is another derivation');
          assert.equal(opened.derived?.get(index, randomBytes(32)), undefined, 'another salt is another derivation');
          // Derived again from what is kept: the same key.
          assert.ok(deriveStreamKey(opened, salt, index).expose().equals(fresh(salt, index)));
        }
      }
      opened.zero();
    }
    // Another object's data key, with the same salt and index, derives its own stream key.
    const other = keys.newDataKey({ ...binding, key: 'other' });
    const otherOpened = await keys.openDataKey(other.sse, { ...binding, key: 'other' });
    assert.ok(!deriveStreamKey(otherOpened, salts[0]!, 0).expose().equals(fresh(salts[0]!, 0)));

    // Retiring the version drops the kept data key and wipes its stream key.
    const kept = await keys.openDataKey(sse, binding);
    deriveStreamKey(kept, salts[1]!, 3);
    assert.ok(kept.derived?.get(3, salts[1]!));
    await keys.rotate();
    await keys.rewrapAll();
    clock.now += 120_000;
    await keys.retire(1);
    assert.equal(kept.derived?.get(3, salts[1]!), undefined);
    // A copy handed out before still derives correctly, but keeps nothing any more.
    assert.ok(deriveStreamKey(kept, salts[1]!, 3).expose().equals(fresh(salts[1]!, 3)));
    assert.equal(kept.derived?.get(3, salts[1]!), undefined);
  });
});

test('a new data key is kept from its making: the first open finds it, with the stream key its write derived', async () => {
  await withKeys(async (keys) => {
    const binding = { bucket: 'b', key: 'k', versionId: 'v1' };
    const { dataKey, sse } = keys.newDataKey(binding);
    const salt = randomBytes(32);
    const streamKey = deriveStreamKey(dataKey, salt, 0).expose();
    dataKey.zero(); // the writer's copy, zeroed after the write: the kept one stays
    const opened = await keys.openDataKey(sse, binding);
    assert.ok(opened.derived?.get(0, salt)?.equals(streamKey), 'the same slot: the write\'s stream key is there');
    assert.ok(deriveStreamKey(opened, salt, 0).expose().equals(streamKey));
    // The binding still decides: the same sealed key under another object's name is not found,
    // and fails to open.
    await assert.rejects(keys.openDataKey(sse, { ...binding, key: 'other' }));
  });
});
