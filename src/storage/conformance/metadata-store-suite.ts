// MetadataStore conformance suite: the contract of the MetadataStore port (storage/ports.ts)
// as node:test tests. Every metadata adapter runs it from its own test file:
//
//   metadataStoreConformance('sqlite-meta', async () => { ...; return { store, cleanup } });
//
// `makeStore` is called once per test and must return an empty store; `cleanup` is called
// after the test, pass or fail (closing the store is the suite's job, not cleanup's).
//
// Orders the callers rely on: listObjects and listUploads sort keys in UTF-8 byte order (as S3
// lists them; this is NOT JavaScript's UTF-16 string order, which puts astral characters before
// U+E000..U+FFFF), listBuckets by name, listParts by part number, listMasterKeys by version.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { chainHash, GENESIS_HASH } from '../../shared/audit-chain.ts';
import {
  UploadGoneError,
  type AuditAppend,
  type AuditQuery,
  type AuditRecord,
  type BucketRecord,
  type KmsGrantRecord,
  type KmsKeyRecord,
  type KmsMaterialRecord,
  type MetadataStore,
  type ObjectRecord,
  type PartRecord,
  type RewrapItem,
  type SseMode,
  type SseRecord,
  type StreamRecord,
  type UploadRecord,
} from '../ports.ts';

export interface MetadataStoreHandle<S extends MetadataStore = MetadataStore> {
  store: S;
  cleanup: () => Promise<void>;
}

// ---- record builders ----

const T0 = 1_700_000_000_000;

export function blobId(): string {
  return randomBytes(24).toString('base64url');
}

export function sseRecord(masterKeyVersion = 1, mode: SseMode = 'SSE-S3'): SseRecord {
  return { mode, masterKeyVersion, sealedKey: randomBytes(76).toString('base64') };
}

export function streamRecord(streamIndex = 0, plainSize = 1234): StreamRecord {
  return {
    blobId: blobId(),
    streamIndex,
    plainSize,
    md5: randomBytes(16).toString('hex'),
    header: randomBytes(40).toString('base64'),
  };
}

export function objectRecord(bucket: string, key: string, over: Partial<ObjectRecord> = {}): ObjectRecord {
  const streams = over.streams ?? [streamRecord()];
  return {
    bucket,
    key,
    versionId: randomBytes(16).toString('base64url'),
    size: streams.reduce((n, s) => n + s.plainSize, 0),
    etag: randomBytes(16).toString('hex'),
    lastModified: T0,
    contentType: 'application/octet-stream',
    headers: {},
    userMetadata: {},
    sse: sseRecord(),
    partsCount: 0,
    ...over,
    streams,
  };
}

export function uploadRecord(bucket: string, key: string, over: Partial<UploadRecord> = {}): UploadRecord {
  return {
    uploadId: randomBytes(36).toString('base64url'),
    bucket,
    key,
    versionId: randomBytes(16).toString('base64url'),
    initiated: T0,
    contentType: 'binary/octet-stream',
    headers: {},
    userMetadata: {},
    sse: sseRecord(),
    ...over,
  };
}

export function partRecord(uploadId: string, partNumber: number, over: Partial<PartRecord> = {}): PartRecord {
  return {
    uploadId,
    partNumber,
    blobId: blobId(),
    plainSize: 5 * 1024 * 1024,
    md5: randomBytes(16).toString('hex'),
    header: randomBytes(40).toString('base64'),
    lastModified: T0 + partNumber,
    ...over,
  };
}

/** The object record a completed upload commits, built from the chosen parts. */
export function objectFromParts(u: UploadRecord, parts: PartRecord[]): ObjectRecord {
  const h = createHash('md5');
  for (const p of parts) h.update(Buffer.from(p.md5, 'hex'));
  return {
    bucket: u.bucket,
    key: u.key,
    versionId: u.versionId,
    size: parts.reduce((n, p) => n + p.plainSize, 0),
    etag: `${h.digest('hex')}-${parts.length}`,
    lastModified: T0 + 10_000,
    contentType: u.contentType,
    headers: u.headers,
    userMetadata: u.userMetadata,
    sse: u.sse,
    streams: parts.map((p) => ({ blobId: p.blobId, streamIndex: p.partNumber, plainSize: p.plainSize, md5: p.md5, header: p.header })),
    partsCount: parts.length,
  };
}

function bucketRecord(name: string, createdAt = T0): BucketRecord {
  return { name, createdAt, location: 'us-east-1' };
}

// ---- comparison helpers ----

/** UTF-8 byte order: the order S3 lists keys in. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Drops properties whose value is undefined (an optional field may be absent or undefined). */
function norm<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function sorted(ids: Iterable<string>): string[] {
  return [...ids].sort();
}

function blobsOf(o: ObjectRecord): string[] {
  return o.streams.map((s) => s.blobId);
}

function isUploadGone(e: unknown): boolean {
  return e instanceof UploadGoneError;
}

/** The model of listObjects over a set of keys. */
export function modelList(keys: Iterable<string>, prefix: string, after: string, limit: number): string[] {
  return [...keys]
    .filter((k) => k.startsWith(prefix) && compareUtf8(k, after) > 0)
    .sort(compareUtf8)
    .slice(0, limit);
}

/**
 * Characters for generated keys: ASCII, 2- and 3-byte UTF-8 around the boundaries, the BMP
 * private use area and specials above U+E000 (which sort after astral characters in UTF-16 but
 * before them in UTF-8), and 4-byte astral characters.
 */
const KEY_CHARS = [
  'a', 'b', 'z', 'A', '0', '/', '-', '.', ' ', '~', '\u007f',
  '\u0080', 'é', '\u00ff', '\u0100', '\u07ff',
  '\u0800', 'あ', '\ud7ff',
  '\ue000', '\uf8ff', '\ufb01', '\ufffd',
  '\u{10000}', '\u{1f600}', '\u{1f601}', '\u{10ffff}',
];

const keyArb = fc.array(fc.constantFrom(...KEY_CHARS), { minLength: 1, maxLength: 5 }).map((cs) => cs.join(''));

/** A prefix or cursor: empty, arbitrary, or derived from one of the keys (so it matches some). */
function derivedString(keys: string[], seed: { mode: number; index: number; len: number; extra: string }): string {
  const k = keys.length ? [...keys[seed.index % keys.length]!] : [];
  switch (seed.mode % 4) {
    case 0:
      return '';
    case 1:
      return seed.extra;
    case 2:
      return k.slice(0, seed.len).join('');
    default:
      return k.join('');
  }
}

const seedArb = fc.record({
  mode: fc.nat(),
  index: fc.nat(),
  len: fc.integer({ min: 1, max: 3 }),
  extra: fc.array(fc.constantFrom(...KEY_CHARS), { maxLength: 3 }).map((cs) => cs.join('')),
});

// ---- the suite ----

export function metadataStoreConformance(name: string, makeStore: () => Promise<MetadataStoreHandle>): void {
  const withStore = (fn: (store: MetadataStore) => Promise<void>) => async () => {
    const { store, cleanup } = await makeStore();
    try {
      await fn(store);
    } finally {
      try {
        await store.close();
      } finally {
        await cleanup();
      }
    }
  };

  /** A store with bucket `b` (and `other`) created. */
  const withBuckets = (fn: (store: MetadataStore) => Promise<void>) =>
    withStore(async (store) => {
      assert.equal(await store.createBucket(bucketRecord('b')), true);
      assert.equal(await store.createBucket(bucketRecord('other')), true);
      await fn(store);
    });

  describe(`MetadataStore conformance: ${name}`, () => {
    // ---------------- settings ----------------
    describe('settings', () => {
      test('an unset setting is undefined', withStore(async (store) => {
        assert.equal(await store.getSetting('nope'), undefined);
      }));

      test('initSetting sets a value only once and returns the value now stored', withStore(async (store) => {
        assert.equal(await store.initSetting('account', 'first'), 'first');
        assert.equal(await store.initSetting('account', 'second'), 'first');
        assert.equal(await store.getSetting('account'), 'first');
        const results = await Promise.all(['x', 'y', 'z'].map((v) => store.initSetting('race', v)));
        assert.equal(new Set(results).size, 1, 'concurrent initSetting calls agree on one value');
        assert.equal(await store.getSetting('race'), results[0]);
      }));

      test('setSetting overwrites; initSetting then keeps it', withStore(async (store) => {
        await store.setSetting('s', 'one');
        assert.equal(await store.getSetting('s'), 'one');
        await store.setSetting('s', 'two');
        assert.equal(await store.getSetting('s'), 'two');
        assert.equal(await store.initSetting('s', 'three'), 'two');
        assert.equal(await store.getSetting('other'), undefined);
      }));

      test('values round-trip exactly (empty, unicode, large)', withStore(async (store) => {
        const values = { empty: '', uni: 'ü\u{1f600}\ue000\n"\'\\', big: randomBytes(48 * 1024).toString('base64') };
        for (const [k, v] of Object.entries(values)) await store.setSetting(k, v);
        for (const [k, v] of Object.entries(values)) assert.equal(await store.getSetting(k), v);
      }));
    });

    // ---------------- buckets ----------------
    describe('buckets', () => {
      test('create, get, list (by name); creating twice returns false and keeps the first', withStore(async (store) => {
        assert.equal(await store.getBucket('photos'), undefined);
        assert.deepEqual(await store.listBuckets(), []);
        assert.equal(await store.createBucket(bucketRecord('photos', T0)), true);
        assert.equal(await store.createBucket({ name: 'photos', createdAt: T0 + 5, location: 'eu-west-1' }), false);
        assert.deepEqual(await store.getBucket('photos'), bucketRecord('photos', T0));
        assert.equal(await store.createBucket(bucketRecord('archive', T0 + 1)), true);
        assert.equal(await store.createBucket(bucketRecord('zz-last', T0 + 2)), true);
        assert.deepEqual(
          (await store.listBuckets()).map((b) => b.name),
          ['archive', 'photos', 'zz-last'],
        );
        assert.deepEqual((await store.listBuckets())[0], bucketRecord('archive', T0 + 1));
      }));

      test('concurrent creates of one bucket: exactly one wins', withStore(async (store) => {
        const results = await Promise.all(Array.from({ length: 5 }, (_, i) => store.createBucket(bucketRecord('race', T0 + i))));
        assert.equal(results.filter(Boolean).length, 1);
      }));

      test('deleteBucket: missing, deleted, then missing again', withStore(async (store) => {
        assert.equal(await store.deleteBucket('nope'), 'missing');
        await store.createBucket(bucketRecord('b'));
        assert.equal(await store.deleteBucket('b'), 'deleted');
        assert.equal(await store.getBucket('b'), undefined);
        assert.deepEqual(await store.listBuckets(), []);
        assert.equal(await store.deleteBucket('b'), 'missing');
        assert.equal(await store.createBucket(bucketRecord('b')), true, 'the name can be reused');
      }));

      test('deleteBucket refuses a bucket with an object', withBuckets(async (store) => {
        await store.putObject(objectRecord('b', 'k'));
        assert.equal(await store.deleteBucket('b'), 'not-empty');
        assert.ok(await store.getBucket('b'));
        assert.ok(await store.getObject('b', 'k'));
        await store.deleteObject('b', 'k');
        assert.equal(await store.deleteBucket('b'), 'deleted');
      }));

      test('deleteBucket refuses a bucket whose only content is an upload', withBuckets(async (store) => {
        const u = uploadRecord('b', 'k');
        await store.createUpload(u);
        assert.equal(await store.deleteBucket('b'), 'not-empty');
        assert.ok(await store.getBucket('b'));
        assert.ok(await store.getUpload(u.uploadId));
        await store.abortUpload(u.uploadId);
        assert.equal(await store.deleteBucket('b'), 'deleted');
      }));

      test('another bucket\'s content does not keep a bucket from being deleted', withBuckets(async (store) => {
        await store.putObject(objectRecord('other', 'k'));
        await store.createUpload(uploadRecord('other', 'k'));
        assert.equal(await store.deleteBucket('b'), 'deleted');
        assert.equal(await store.deleteBucket('other'), 'not-empty');
      }));
    });

    // ---------------- objects ----------------
    describe('objects', () => {
      test('getObject of an absent key is undefined', withBuckets(async (store) => {
        assert.equal(await store.getObject('b', 'nope'), undefined);
        assert.equal(await store.getObject('no-bucket', 'nope'), undefined);
      }));

      test('putObject with expectedVersionId: replaces only that version, keeps the blobs the new record names', withBuckets(async (store) => {
        const v1 = objectRecord('b', 'k', { versionId: 'v1', streams: [streamRecord(0, 10)] });
        assert.deepEqual(await store.putObject(v1), { garbageBlobIds: [] });
        // A re-key in place: same blob, new version and sealed key.
        const rekeyed = { ...v1, versionId: 'v2', sse: sseRecord(9) };
        assert.deepEqual(await store.putObject(rekeyed, 'v1'), { garbageBlobIds: [] });
        assert.equal((await store.getObject('b', 'k'))!.versionId, 'v2');
        assert.equal(await store.isBlobReferenced(v1.streams[0]!.blobId), true);
        // The version moved on: nothing changes.
        const stale = { ...v1, versionId: 'v3' };
        assert.deepEqual(await store.putObject(stale, 'v1'), { garbageBlobIds: [], conflict: true });
        assert.equal((await store.getObject('b', 'k'))!.versionId, 'v2');
        assert.deepEqual(await store.putObject(objectRecord('b', 'absent'), 'v1'), { garbageBlobIds: [], conflict: true });
        assert.equal(await store.getObject('b', 'absent'), undefined);
      }));

      test('putObject then getObject round-trips every field', withBuckets(async (store) => {
        const full = objectRecord('b', 'dir/ünï\u{1f600}.txt', {
          size: 17 * 1024 * 1024,
          etag: 'd41d8cd98f00b204e9800998ecf8427e-3',
          lastModified: T0 + 123,
          contentType: 'text/plain; charset=utf-8',
          headers: { 'cache-control': 'no-cache', 'content-disposition': 'attachment; filename="a b.txt"', expires: 'Thu, 01 Dec 1994 16:00:00 GMT' },
          userMetadata: { owner: 'Zoë', empty: '', 'with-dash': '\u{1f600}"quoted"' },
          sse: sseRecord(7),
          streams: [streamRecord(1, 8 * 1024 * 1024), streamRecord(2, 8 * 1024 * 1024), streamRecord(3, 1024 * 1024)],
          partsCount: 3,
          checksum: { algorithm: 'CRC32C', value: 'yZRlqg==' },
          tags: [{ key: 'zeta', value: '' }, { key: 'alpha', value: 'Zoë 1' }],
        });
        const minimal = objectRecord('b', 'x', { streams: [streamRecord(0, 0)] });
        assert.deepEqual(await store.putObject(full), { garbageBlobIds: [] });
        assert.deepEqual(await store.putObject(minimal), { garbageBlobIds: [] });
        assert.deepEqual(norm(await store.getObject('b', full.key)), norm(full));
        const gotMin = await store.getObject('b', 'x');
        assert.deepEqual(norm(gotMin), norm(minimal));
        assert.equal(gotMin!.checksum, undefined);
        const longKey = 'k'.repeat(1000) + 'é'.repeat(12); // 1024 bytes of UTF-8
        await store.putObject(objectRecord('b', longKey));
        assert.equal((await store.getObject('b', longKey))!.key, longKey);
      }));

      test('setObjectTags replaces the current version\'s tags, only where expected', withBuckets(async (store) => {
        assert.equal(await store.setObjectTags('b', 'none', [{ key: 'k', value: 'v' }]), false);
        const obj = objectRecord('b', 't', { tags: [{ key: 'a', value: '1' }] });
        await store.putObject(obj);
        assert.equal(await store.setObjectTags('b', 't', [{ key: 'b', value: '2' }, { key: 'c', value: '3' }]), true);
        assert.deepEqual((await store.getObject('b', 't'))!.tags, [{ key: 'b', value: '2' }, { key: 'c', value: '3' }]);
        assert.equal(await store.setObjectTags('b', 't', [{ key: 'x', value: '' }], 'another-version'), false);
        assert.equal(await store.setObjectTags('b', 't', [{ key: 'x', value: '' }], obj.versionId), true);
        assert.deepEqual((await store.getObject('b', 't'))!.tags, [{ key: 'x', value: '' }]);
        assert.equal(await store.setObjectTags('b', 't', undefined), true);
        assert.equal((await store.getObject('b', 't'))!.tags, undefined);
        // Listings carry them too.
        await store.setObjectTags('b', 't', [{ key: 'l', value: 'v' }]);
        assert.deepEqual((await store.listObjects({ bucket: 'b', prefix: 't', after: '', limit: 10 }))[0]!.tags, [{ key: 'l', value: 'v' }]);
      }));

      test('the same key in two buckets is two objects', withBuckets(async (store) => {
        const a = objectRecord('b', 'k');
        const o = objectRecord('other', 'k');
        await store.putObject(a);
        assert.deepEqual(await store.putObject(o), { garbageBlobIds: [] });
        assert.equal((await store.getObject('b', 'k'))!.versionId, a.versionId);
        const del = await store.deleteObject('other', 'k');
        assert.deepEqual(del, { deleted: true, garbageBlobIds: blobsOf(o) });
        assert.equal((await store.getObject('b', 'k'))!.versionId, a.versionId);
        assert.ok(await store.isBlobReferenced(a.streams[0]!.blobId));
      }));

      test('replacing an object returns the old object\'s blobs as garbage', withBuckets(async (store) => {
        const v1 = objectRecord('b', 'k', { streams: [streamRecord(1), streamRecord(2), streamRecord(3)], partsCount: 3 });
        await store.putObject(v1);
        const v2 = objectRecord('b', 'k');
        const r = await store.putObject(v2);
        assert.deepEqual(sorted(r.garbageBlobIds), sorted(blobsOf(v1)));
        assert.deepEqual(norm(await store.getObject('b', 'k')), norm(v2));
        const v3 = objectRecord('b', 'k', { streams: [streamRecord(1), streamRecord(2)] });
        assert.deepEqual(sorted((await store.putObject(v3)).garbageBlobIds), sorted(blobsOf(v2)));
      }));

      test('replacing an object does not return blob ids the new object still uses', withBuckets(async (store) => {
        const shared = streamRecord(1);
        const dropped = streamRecord(2);
        const v1 = objectRecord('b', 'k', { streams: [shared, dropped] });
        await store.putObject(v1);
        const v2 = objectRecord('b', 'k', { streams: [shared, streamRecord(2)] });
        const r = await store.putObject(v2);
        assert.deepEqual(r.garbageBlobIds, [dropped.blobId]);
        assert.ok(await store.isBlobReferenced(shared.blobId));
        assert.equal(await store.isBlobReferenced(dropped.blobId), false);
        // Re-committing the very same record makes nothing garbage.
        assert.deepEqual(await store.putObject(v2), { garbageBlobIds: [] });
        assert.ok(await store.isBlobReferenced(shared.blobId));
      }));

      test('concurrent replacements: each blob becomes garbage exactly once, the winner\'s never', withBuckets(async (store) => {
        const versions = Array.from({ length: 8 }, () => objectRecord('b', 'k'));
        const results = await Promise.all(versions.map((v) => store.putObject(v)));
        const garbage = results.flatMap((r) => r.garbageBlobIds);
        const current = (await store.getObject('b', 'k'))!;
        assert.equal(new Set(garbage).size, garbage.length, 'no blob reported twice');
        assert.deepEqual(sorted(garbage), sorted(versions.filter((v) => v.versionId !== current.versionId).flatMap(blobsOf)));
      }));

      test('deleteObject returns the blobs as garbage; deleting again deletes nothing', withBuckets(async (store) => {
        const o = objectRecord('b', 'k', { streams: [streamRecord(1), streamRecord(2)] });
        await store.putObject(o);
        const r = await store.deleteObject('b', 'k');
        assert.equal(r.deleted, true);
        assert.deepEqual(sorted(r.garbageBlobIds), sorted(blobsOf(o)));
        assert.equal(await store.getObject('b', 'k'), undefined);
        assert.deepEqual(await store.deleteObject('b', 'k'), { deleted: false, garbageBlobIds: [] });
        assert.deepEqual(await store.deleteObject('no-bucket', 'k'), { deleted: false, garbageBlobIds: [] });
        assert.deepEqual(await store.listObjects({ bucket: 'b', prefix: '', after: '', limit: 10 }), []);
      }));

      test('isBlobReferenced follows object blobs through put, replace and delete', withBuckets(async (store) => {
        const v1 = objectRecord('b', 'k', { streams: [streamRecord(1), streamRecord(2)] });
        assert.equal(await store.isBlobReferenced(v1.streams[0]!.blobId), false);
        await store.putObject(v1);
        for (const id of blobsOf(v1)) assert.equal(await store.isBlobReferenced(id), true);
        const v2 = objectRecord('b', 'k');
        await store.putObject(v2);
        for (const id of blobsOf(v1)) assert.equal(await store.isBlobReferenced(id), false);
        assert.equal(await store.isBlobReferenced(v2.streams[0]!.blobId), true);
        await store.deleteObject('b', 'k');
        assert.equal(await store.isBlobReferenced(v2.streams[0]!.blobId), false);
        assert.equal(await store.isBlobReferenced(blobId()), false);
      }));
    });

    // ---------------- listing ----------------
    describe('listObjects', () => {
      const all = (store: MetadataStore, prefix = '', after = '', limit = 1000, bucket = 'b') =>
        store.listObjects({ bucket, prefix, after, limit }).then((os) => os.map((o) => o.key));

      test('lists full records of one bucket in key order, honouring limit', withBuckets(async (store) => {
        const recs = ['c', 'a', 'b/2', 'b/1', 'ab'].map((k) => objectRecord('b', k));
        for (const r of recs) await store.putObject(r);
        await store.putObject(objectRecord('other', 'aa'));
        assert.deepEqual(await all(store), ['a', 'ab', 'b/1', 'b/2', 'c']);
        assert.deepEqual(await all(store, '', '', 2), ['a', 'ab']);
        assert.deepEqual(await all(store, '', '', 1, 'other'), ['aa']);
        assert.deepEqual(await all(store, '', '', 10, 'no-bucket'), []);
        const listed = await store.listObjects({ bucket: 'b', prefix: 'c', after: '', limit: 10 });
        assert.deepEqual(norm(listed), [norm(recs[0]!)]);
      }));

      test('after is an exclusive cursor and need not be a key', withBuckets(async (store) => {
        for (const k of ['a', 'ab', 'b', 'ba', 'c']) await store.putObject(objectRecord('b', k));
        assert.deepEqual(await all(store, '', 'ab'), ['b', 'ba', 'c']);
        assert.deepEqual(await all(store, '', 'aa'), ['ab', 'b', 'ba', 'c']);
        assert.deepEqual(await all(store, '', 'b'), ['ba', 'c']);
        assert.deepEqual(await all(store, '', 'c'), []);
        assert.deepEqual(await all(store, '', 'zzz'), []);
        assert.deepEqual(await all(store, 'b', 'a'), ['b', 'ba']);
        assert.deepEqual(await all(store, 'b', 'b'), ['ba']);
        assert.deepEqual(await all(store, 'a', 'b'), []);
      }));

      test('prefix filters by leading characters (multibyte and astral included)', withBuckets(async (store) => {
        const keys = ['e', 'é', 'éa', 'éé', 'ê', 'e\u0301', '\u{1f600}', '\u{1f600}x', '\u{1f601}', '\ue000', '\ue000\u{1f600}', 'a/\u{1f600}/b', 'a/\u{1f600}', 'a/\u{1f601}'];
        for (const k of keys) await store.putObject(objectRecord('b', k));
        for (const prefix of ['é', 'e', '\u{1f600}', '\ue000', 'a/\u{1f600}', 'a/', 'ée', '\u{1f602}']) {
          assert.deepEqual(await all(store, prefix), modelList(keys, prefix, '', 1000), `prefix ${JSON.stringify(prefix)}`);
        }
      }));

      test('order is UTF-8 byte order, not UTF-16 order', withBuckets(async (store) => {
        // UTF-16 order would put the astral U+1F600 (a surrogate pair, 0xD83D...) before U+E000.
        const expected = ['A', 'Z', 'a', 'z', '\u007f', '\u0080', 'é', '\u07ff', '\u0800', 'あ', '\ud7ff', '\ue000', '\uf8ff', '\ufffd', '\u{10000}', '\u{1f600}', '\u{10ffff}'];
        const shuffled = [...expected].sort(() => Math.random() - 0.5);
        for (const k of shuffled) await store.putObject(objectRecord('b', k));
        assert.deepEqual(await all(store), expected);
        assert.deepEqual(await all(store, '', '\ufffd'), ['\u{10000}', '\u{1f600}', '\u{10ffff}']);
        assert.deepEqual(await all(store, '', '\u{1f600}'), ['\u{10ffff}']);
        assert.deepEqual(await all(store, '', 'z', 3), ['\u007f', '\u0080', 'é']);
      }));

      test('paging with after = last key visits every key once, in order', withBuckets(async (store) => {
        const keys = Array.from({ length: 37 }, (_, i) => `p/${KEY_CHARS[i % KEY_CHARS.length]}${i}`);
        for (const k of keys) await store.putObject(objectRecord('b', k));
        const seen: string[] = [];
        let after = '';
        for (;;) {
          const page = await all(store, 'p/', after, 5);
          if (page.length === 0) break;
          seen.push(...page);
          after = page[page.length - 1]!;
        }
        assert.deepEqual(seen, [...keys].sort(compareUtf8));
      }));

      test('property: prefix/after/limit queries over a fixed key set match the model', withBuckets(async (store) => {
        const keys = fc.sample(fc.uniqueArray(keyArb, { minLength: 150, maxLength: 150 }), { numRuns: 1, seed: 42 })[0]!;
        for (const k of keys) await store.putObject(objectRecord('b', k));
        await fc.assert(
          fc.asyncProperty(seedArb, seedArb, fc.integer({ min: 1, max: 200 }), async (ps, as, limit) => {
            const prefix = derivedString(keys, ps);
            const after = derivedString(keys, as);
            const got = await all(store, prefix, after, limit);
            assert.deepEqual(got, modelList(keys, prefix, after, limit));
          }),
          { numRuns: 300 },
        );
      }));

      test('property: random key sets list in UTF-8 order, filtered by prefix, paged by after', withStore(async (store) => {
        let n = 0;
        await fc.assert(
          fc.asyncProperty(fc.uniqueArray(keyArb, { maxLength: 25 }), seedArb, fc.integer({ min: 1, max: 6 }), async (keys, ps, limit) => {
            const bucket = `prop-${n++}`;
            await store.createBucket(bucketRecord(bucket));
            for (const k of keys) await store.putObject(objectRecord(bucket, k));
            const prefix = derivedString(keys, ps);
            assert.deepEqual(await all(store, prefix, '', 1000, bucket), modelList(keys, prefix, '', 1000));
            const paged: string[] = [];
            let after = '';
            for (;;) {
              const page = await all(store, prefix, after, limit, bucket);
              assert.ok(page.length <= limit);
              if (page.length === 0) break;
              paged.push(...page);
              after = page[page.length - 1]!;
            }
            assert.deepEqual(paged, modelList(keys, prefix, '', 1000));
          }),
          { numRuns: 60 },
        );
      }));
    });

    // ---------------- multipart ----------------
    describe('uploads and parts', () => {
      test('createUpload, getUpload round-trip; an absent upload is undefined', withBuckets(async (store) => {
        const u = uploadRecord('b', 'big/file\u{1f600}', {
          contentType: 'video/mp4',
          headers: { 'content-encoding': 'gzip' },
          userMetadata: { a: 'b' },
          sse: sseRecord(4),
          checksumAlgorithm: 'SHA256',
          requestedSse: 'AES256',
          requestedKmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b',
        });
        const plain = uploadRecord('b', 'plain');
        const oddSse = uploadRecord('b', 'odd', { requestedSse: '' });
        await store.createUpload(u);
        await store.createUpload(plain);
        await store.createUpload(oddSse);
        assert.deepEqual(norm(await store.getUpload(u.uploadId)), norm(u));
        const gotPlain = await store.getUpload(plain.uploadId);
        assert.deepEqual(norm(gotPlain), norm(plain));
        assert.equal(gotPlain!.checksumAlgorithm, undefined);
        assert.equal(gotPlain!.requestedSse, undefined, 'no header recorded stays absent');
        assert.equal((await store.getUpload(oddSse.uploadId))!.requestedSse, '', 'an empty header value is kept (present, empty)');
        assert.equal((await store.listUploads('b')).find((x) => x.uploadId === u.uploadId)!.requestedSse, 'AES256');
        assert.equal(await store.getUpload('nope'), undefined);
        assert.deepEqual(await store.listParts(u.uploadId), []);
      }));

      test('listUploads lists one bucket\'s uploads by key (UTF-8 order), then initiation time', withBuckets(async (store) => {
        const ups = [
          uploadRecord('b', '\u{1f600}', { initiated: T0 }),
          uploadRecord('b', '\ue000', { initiated: T0 }),
          uploadRecord('b', 'k', { initiated: T0 + 2 }),
          uploadRecord('b', 'k', { initiated: T0 + 1 }),
          uploadRecord('b', 'a', { initiated: T0 + 9 }),
        ];
        for (const u of ups) await store.createUpload(u);
        await store.createUpload(uploadRecord('other', 'a'));
        const listed = await store.listUploads('b');
        assert.deepEqual(
          listed.map((u) => u.uploadId),
          [ups[4]!, ups[3]!, ups[2]!, ups[1]!, ups[0]!].map((u) => u.uploadId),
        );
        assert.deepEqual(norm(listed[0]), norm(ups[4]));
        assert.equal((await store.listUploads('other')).length, 1);
        assert.deepEqual(await store.listUploads('no-bucket'), []);
      }));

      test('putPart records parts, listed by part number', withBuckets(async (store) => {
        const u = uploadRecord('b', 'k');
        await store.createUpload(u);
        const parts = [3, 1, 10000, 2].map((n) => partRecord(u.uploadId, n));
        for (const p of parts) assert.deepEqual(await store.putPart(p), { garbageBlobIds: [] });
        assert.deepEqual(
          norm(await store.listParts(u.uploadId)),
          norm([...parts].sort((a, b) => a.partNumber - b.partNumber)),
        );
        for (const p of parts) assert.equal(await store.isBlobReferenced(p.blobId), true);
        assert.deepEqual(await store.listParts('nope'), []);
      }));

      test('putPart replacing a part returns the old blob as garbage', withBuckets(async (store) => {
        const u = uploadRecord('b', 'k');
        await store.createUpload(u);
        const first = partRecord(u.uploadId, 1);
        const other = partRecord(u.uploadId, 2);
        await store.putPart(first);
        await store.putPart(other);
        const second = partRecord(u.uploadId, 1, { plainSize: 42 });
        assert.deepEqual(await store.putPart(second), { garbageBlobIds: [first.blobId] });
        assert.deepEqual(norm(await store.listParts(u.uploadId)), norm([second, other]));
        assert.equal(await store.isBlobReferenced(first.blobId), false);
        assert.equal(await store.isBlobReferenced(second.blobId), true);
        // Recording the same part again makes nothing garbage (its blob is still referenced).
        assert.deepEqual(await store.putPart(second), { garbageBlobIds: [] });
        assert.equal(await store.isBlobReferenced(second.blobId), true);
      }));

      test('concurrent uploads of one part number: each replaced blob is garbage exactly once', withBuckets(async (store) => {
        const u = uploadRecord('b', 'k');
        await store.createUpload(u);
        const tries = Array.from({ length: 6 }, () => partRecord(u.uploadId, 7));
        const results = await Promise.all(tries.map((p) => store.putPart(p)));
        const garbage = results.flatMap((r) => r.garbageBlobIds);
        const [current] = await store.listParts(u.uploadId);
        assert.deepEqual(sorted(garbage), sorted(tries.filter((p) => p.blobId !== current!.blobId).map((p) => p.blobId)));
      }));

      test('putPart for an absent, aborted or completed upload throws UploadGoneError', withBuckets(async (store) => {
        const p = partRecord('no-such-upload', 1);
        await assert.rejects(store.putPart(p), isUploadGone);
        assert.equal(await store.isBlobReferenced(p.blobId), false);
        const aborted = uploadRecord('b', 'k');
        await store.createUpload(aborted);
        await store.abortUpload(aborted.uploadId);
        await assert.rejects(store.putPart(partRecord(aborted.uploadId, 1)), isUploadGone);
        const done = uploadRecord('b', 'k2');
        await store.createUpload(done);
        const p1 = partRecord(done.uploadId, 1);
        await store.putPart(p1);
        await store.completeUpload(done.uploadId, objectFromParts(done, [p1]));
        const late = partRecord(done.uploadId, 2);
        await assert.rejects(store.putPart(late), isUploadGone);
        assert.equal(await store.isBlobReferenced(late.blobId), false);
        assert.deepEqual(await store.listParts(done.uploadId), []);
      }));

      test('completeUpload commits the object and returns unused parts and the replaced object as garbage', withBuckets(async (store) => {
        const old = objectRecord('b', 'k', { streams: [streamRecord(0)] });
        await store.putObject(old);
        const u = uploadRecord('b', 'k', { sse: sseRecord(2) });
        await store.createUpload(u);
        const p1 = partRecord(u.uploadId, 1);
        const p2a = partRecord(u.uploadId, 2);
        await store.putPart(p1);
        await store.putPart(p2a);
        const p2 = partRecord(u.uploadId, 2);
        assert.deepEqual((await store.putPart(p2)).garbageBlobIds, [p2a.blobId]);
        const p3 = partRecord(u.uploadId, 3);
        const p4 = partRecord(u.uploadId, 4, { plainSize: 10 });
        await store.putPart(p3);
        await store.putPart(p4);
        // The client completes with parts 1, 3 and 4; part 2 is left over.
        const obj = objectFromParts(u, [p1, p3, p4]);
        const r = await store.completeUpload(u.uploadId, obj);
        assert.deepEqual(sorted(r.garbageBlobIds), sorted([p2.blobId, ...blobsOf(old)]));
        assert.deepEqual(norm(await store.getObject('b', 'k')), norm(obj));
        assert.equal(await store.getUpload(u.uploadId), undefined);
        assert.deepEqual(await store.listParts(u.uploadId), []);
        assert.deepEqual(await store.listUploads('b'), []);
        for (const p of [p1, p3, p4]) assert.equal(await store.isBlobReferenced(p.blobId), true, 'used parts now belong to the object');
        for (const id of [p2.blobId, p2a.blobId, ...blobsOf(old)]) assert.equal(await store.isBlobReferenced(id), false);
        // The object's blobs are the object's: deleting it returns them.
        assert.deepEqual(sorted((await store.deleteObject('b', 'k')).garbageBlobIds), sorted([p1, p3, p4].map((p) => p.blobId)));
      }));

      test('completeUpload onto an empty key returns only the unused parts', withBuckets(async (store) => {
        const u = uploadRecord('b', 'fresh');
        await store.createUpload(u);
        const parts = [1, 2].map((n) => partRecord(u.uploadId, n));
        for (const p of parts) await store.putPart(p);
        assert.deepEqual(await store.completeUpload(u.uploadId, objectFromParts(u, parts)), { garbageBlobIds: [] });
        assert.equal((await store.getObject('b', 'fresh'))!.partsCount, 2);
      }));

      test('completeUpload of a gone upload throws UploadGoneError and commits nothing', withBuckets(async (store) => {
        const old = objectRecord('b', 'k');
        await store.putObject(old);
        const u = uploadRecord('b', 'k');
        await store.createUpload(u);
        const p1 = partRecord(u.uploadId, 1);
        await store.putPart(p1);
        const obj = objectFromParts(u, [p1]);
        await store.abortUpload(u.uploadId);
        await assert.rejects(store.completeUpload(u.uploadId, obj), isUploadGone);
        assert.deepEqual(norm(await store.getObject('b', 'k')), norm(old));
        assert.equal(await store.isBlobReferenced(p1.blobId), false);
        const never = uploadRecord('b', 'k');
        await assert.rejects(store.completeUpload(never.uploadId, objectFromParts(never, [partRecord(never.uploadId, 1)])), isUploadGone);
        assert.deepEqual(norm(await store.getObject('b', 'k')), norm(old));
      }));

      test('completing twice: the second throws UploadGoneError and changes nothing', withBuckets(async (store) => {
        const u = uploadRecord('b', 'k');
        await store.createUpload(u);
        const p1 = partRecord(u.uploadId, 1);
        await store.putPart(p1);
        const obj = objectFromParts(u, [p1]);
        const results = await Promise.allSettled([store.completeUpload(u.uploadId, obj), store.completeUpload(u.uploadId, obj)]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        assert.ok(isUploadGone(failed.reason));
        assert.deepEqual(norm(await store.getObject('b', 'k')), norm(obj));
        assert.equal(await store.isBlobReferenced(p1.blobId), true);
      }));

      test('completeUpload naming a blob that is not one of the upload\'s parts throws UploadGoneError and changes nothing', withBuckets(async (store) => {
        const old = objectRecord('b', 'k');
        await store.putObject(old);
        const u = uploadRecord('b', 'k');
        const otherUpload = uploadRecord('b', 'k');
        await store.createUpload(u);
        await store.createUpload(otherUpload);
        const p1 = partRecord(u.uploadId, 1);
        const p2old = partRecord(u.uploadId, 2);
        await store.putPart(p1);
        await store.putPart(p2old);
        const p2 = partRecord(u.uploadId, 2);
        await store.putPart(p2); // replaces p2old: its blob is no longer a part
        const foreign = partRecord(otherUpload.uploadId, 1);
        await store.putPart(foreign);
        const bad = [
          objectFromParts(u, [p1, p2old]), // a part that was replaced
          objectFromParts(u, [p1, foreign]), // another upload's part
          objectFromParts(u, [p1, partRecord(u.uploadId, 3)]), // never recorded
          objectFromParts(u, [{ ...p1, blobId: old.streams[0]!.blobId }]), // the current object's blob
        ];
        for (const obj of bad) await assert.rejects(store.completeUpload(u.uploadId, obj), isUploadGone);
        assert.deepEqual(norm(await store.getObject('b', 'k')), norm(old));
        assert.deepEqual(norm(await store.getUpload(u.uploadId)), norm(u));
        assert.deepEqual(norm(await store.listParts(u.uploadId)), norm([p1, p2]));
        assert.deepEqual(norm(await store.listParts(otherUpload.uploadId)), norm([foreign]));
        for (const id of [p1.blobId, p2.blobId, foreign.blobId, old.streams[0]!.blobId]) assert.equal(await store.isBlobReferenced(id), true);
        // The upload is still whole: completing it properly works.
        const good = objectFromParts(u, [p1, p2]);
        assert.deepEqual(sorted((await store.completeUpload(u.uploadId, good)).garbageBlobIds), sorted(blobsOf(old)));
      }));

      test('abortUpload returns every part as garbage; aborting again or an absent upload aborts nothing', withBuckets(async (store) => {
        const u = uploadRecord('b', 'k');
        await store.createUpload(u);
        const parts = [1, 2, 3].map((n) => partRecord(u.uploadId, n));
        for (const p of parts) await store.putPart(p);
        const keep = uploadRecord('b', 'k');
        await store.createUpload(keep);
        const kp = partRecord(keep.uploadId, 1);
        await store.putPart(kp);
        const r = await store.abortUpload(u.uploadId);
        assert.equal(r.aborted, true);
        assert.deepEqual(sorted(r.garbageBlobIds), sorted(parts.map((p) => p.blobId)));
        assert.equal(await store.getUpload(u.uploadId), undefined);
        assert.deepEqual(await store.listParts(u.uploadId), []);
        for (const p of parts) assert.equal(await store.isBlobReferenced(p.blobId), false);
        assert.deepEqual(await store.abortUpload(u.uploadId), { aborted: false, garbageBlobIds: [] });
        assert.deepEqual(await store.abortUpload('nope'), { aborted: false, garbageBlobIds: [] });
        assert.deepEqual((await store.listUploads('b')).map((x) => x.uploadId), [keep.uploadId]);
        assert.equal(await store.isBlobReferenced(kp.blobId), true);
      }));

      test('complete and abort racing: exactly one takes effect', withBuckets(async (store) => {
        const u = uploadRecord('b', 'k');
        await store.createUpload(u);
        const p1 = partRecord(u.uploadId, 1);
        await store.putPart(p1);
        const [c, a] = await Promise.allSettled([store.completeUpload(u.uploadId, objectFromParts(u, [p1])), store.abortUpload(u.uploadId)]);
        const completed = c.status === 'fulfilled';
        const aborted = a.status === 'fulfilled' && a.value.aborted;
        assert.ok(completed !== aborted, 'exactly one of complete and abort succeeded');
        if (completed) assert.deepEqual(a.status === 'fulfilled' && a.value, { aborted: false, garbageBlobIds: [] });
        else assert.ok(c.status === 'rejected' && isUploadGone(c.reason));
        assert.equal(!!(await store.getObject('b', 'k')), completed);
        assert.equal(await store.isBlobReferenced(p1.blobId), completed);
      }));
    });

    // ---------------- master keys ----------------
    describe('master keys', () => {
      test('add and list (by version); adding an existing version returns false and keeps the first', withStore(async (store) => {
        assert.deepEqual(await store.listMasterKeys(), []);
        const k2 = { version: 2, sealed: randomBytes(80).toString('base64'), createdAt: T0 + 2 };
        const k1 = { version: 1, sealed: randomBytes(80).toString('base64'), createdAt: T0 + 1 };
        assert.equal(await store.addMasterKey(k2), true);
        assert.equal(await store.addMasterKey(k1), true);
        assert.equal(await store.addMasterKey({ version: 2, sealed: 'other', createdAt: T0 + 9 }), false);
        const listed = await store.listMasterKeys();
        assert.deepEqual(norm(listed), norm([k1, k2]));
        for (const k of listed) assert.equal(k.retiredAt, undefined);
        const race = await Promise.all([3, 3, 3].map((v, i) => store.addMasterKey({ version: v, sealed: `s${i}`, createdAt: T0 })));
        assert.equal(race.filter(Boolean).length, 1, 'concurrent adds of one version: exactly one wins');
      }));

      test('retireMasterKey records the time and wipes the sealed material', withStore(async (store) => {
        const k1 = { version: 1, sealed: randomBytes(80).toString('base64'), createdAt: T0 };
        const k2 = { version: 2, sealed: randomBytes(80).toString('base64'), createdAt: T0 + 1 };
        await store.addMasterKey(k1);
        await store.addMasterKey(k2);
        await store.retireMasterKey(1, T0 + 100);
        const [r1, r2] = await store.listMasterKeys();
        assert.equal(r1!.version, 1);
        assert.equal(r1!.retiredAt, T0 + 100);
        assert.equal(r1!.sealed, '', 'the sealed key is wiped');
        assert.equal(r1!.createdAt, T0);
        assert.deepEqual(norm(r2), norm(k2));
      }));

      test('countByMasterKey counts SSE-S3 objects and uploads per version', withBuckets(async (store) => {
        const o1 = objectRecord('b', 'a', { sse: sseRecord(1) });
        await store.putObject(o1);
        await store.putObject(objectRecord('b', 'b', { sse: sseRecord(1) }));
        await store.putObject(objectRecord('other', 'a', { sse: sseRecord(2) }));
        const u1 = uploadRecord('b', 'u', { sse: sseRecord(1) });
        const u3 = uploadRecord('b', 'u', { sse: sseRecord(3) });
        await store.createUpload(u1);
        await store.createUpload(u3);
        // Data keys not sealed by a master key are not counted against one.
        await store.putObject(objectRecord('b', 'sse-c', { sse: sseRecord(1, 'SSE-C') }));
        await store.createUpload(uploadRecord('b', 'kms', { sse: sseRecord(2, 'SSE-KMS') }));
        const count = async () => {
          const m = await store.countByMasterKey();
          return [1, 2, 3, 4].map((v) => m.get(v) ?? 0);
        };
        assert.deepEqual(await count(), [3, 1, 1, 0]);
        // Replacing moves the count to the new version; deleting removes it.
        await store.putObject(objectRecord('b', 'a', { sse: sseRecord(4) }));
        assert.deepEqual(await count(), [2, 1, 1, 1]);
        await store.deleteObject('b', 'b');
        assert.deepEqual(await count(), [1, 1, 1, 1]);
        // Completing an upload turns it into an object (same data key); aborting removes it.
        const p = partRecord(u3.uploadId, 1);
        await store.putPart(p);
        await store.completeUpload(u3.uploadId, objectFromParts(u3, [p]));
        assert.deepEqual(await count(), [1, 1, 1, 1]);
        await store.abortUpload(u1.uploadId);
        assert.deepEqual(await count(), [0, 1, 1, 1]);
      }));

      test('findSealedBefore returns only SSE-S3 items sealed by older versions, up to limit', withBuckets(async (store) => {
        const o1 = objectRecord('b', 'o1', { sse: sseRecord(1) });
        const o2 = objectRecord('other', 'o2', { sse: sseRecord(2) });
        const o3 = objectRecord('b', 'o3', { sse: sseRecord(3) });
        const oc = objectRecord('b', 'sse-c', { sse: sseRecord(1, 'SSE-C') });
        const u1 = uploadRecord('b', 'u1', { sse: sseRecord(1) });
        const u3 = uploadRecord('b', 'u3', { sse: sseRecord(3) });
        const uk = uploadRecord('b', 'kms', { sse: sseRecord(1, 'SSE-KMS') });
        for (const o of [o1, o2, o3, oc]) await store.putObject(o);
        for (const u of [u1, u3, uk]) await store.createUpload(u);
        const expected: RewrapItem[] = [
          { kind: 'object', bucket: 'b', key: 'o1', versionId: o1.versionId, sse: o1.sse },
          { kind: 'object', bucket: 'other', key: 'o2', versionId: o2.versionId, sse: o2.sse },
          { kind: 'upload', bucket: 'b', key: 'u1', versionId: u1.versionId, uploadId: u1.uploadId, sse: u1.sse },
        ];
        const id = (i: RewrapItem) => `${i.kind}|${i.uploadId ?? ''}|${i.bucket}|${i.key}|${i.versionId}`;
        const bySortedId = (items: RewrapItem[]) => norm([...items].sort((a, b) => id(a).localeCompare(id(b))));
        assert.deepEqual(bySortedId(await store.findSealedBefore(3, 100)), bySortedId(expected));
        assert.deepEqual(bySortedId(await store.findSealedBefore(2, 100)), bySortedId([expected[0]!, expected[2]!]));
        assert.deepEqual(await store.findSealedBefore(1, 100), []);
        const two = await store.findSealedBefore(3, 2);
        assert.equal(two.length, 2);
        const ids = new Set(expected.map(id));
        for (const i of two) assert.ok(ids.has(id(i)), `unexpected item ${id(i)}`);
        assert.equal((await store.findSealedBefore(4, 1000)).length, 5);
      }));

      test('rewrap of an object is a compare-and-swap on its version and master key version', withBuckets(async (store) => {
        const o = objectRecord('b', 'k', { sse: sseRecord(1) });
        await store.putObject(o);
        const [item] = await store.findSealedBefore(2, 10);
        assert.ok(item && item.kind === 'object' && item.versionId === o.versionId);
        const to2 = sseRecord(2);
        assert.equal(await store.rewrap(item, to2), true);
        const after = (await store.getObject('b', 'k'))!;
        assert.deepEqual(after.sse, to2);
        assert.deepEqual(norm({ ...after, sse: o.sse }), norm(o), 'only the sse record changed');
        assert.deepEqual(await store.findSealedBefore(2, 10), []);
        const m = await store.countByMasterKey();
        assert.equal(m.get(1) ?? 0, 0);
        assert.equal(m.get(2), 1);
        // The same swap again finds version 2, not 1: it fails and changes nothing.
        assert.equal(await store.rewrap(item, sseRecord(2)), false);
        assert.deepEqual((await store.getObject('b', 'k'))!.sse, to2);
        // A stale item (it says version 1 but the object is at 2) also fails.
        assert.equal(await store.rewrap({ ...item, sse: { ...item.sse, masterKeyVersion: 1 } }, sseRecord(3)), false);
        assert.deepEqual((await store.getObject('b', 'k'))!.sse, to2);
      }));

      test('rewrap fails if the object was replaced or deleted since it was found', withBuckets(async (store) => {
        const o = objectRecord('b', 'k', { sse: sseRecord(1) });
        await store.putObject(o);
        const [item] = await store.findSealedBefore(2, 10);
        // Overwritten by a new version sealed by the same (old) master key version.
        const replacement = objectRecord('b', 'k', { sse: sseRecord(1) });
        await store.putObject(replacement);
        assert.equal(await store.rewrap(item!, sseRecord(2)), false);
        assert.deepEqual(norm(await store.getObject('b', 'k')), norm(replacement));
        const [fresh] = await store.findSealedBefore(2, 10);
        await store.deleteObject('b', 'k');
        assert.equal(await store.rewrap(fresh!, sseRecord(2)), false);
        assert.equal(await store.getObject('b', 'k'), undefined);
      }));

      test('rewrap of an upload: succeeds once, fails once it is gone', withBuckets(async (store) => {
        const u = uploadRecord('b', 'k', { sse: sseRecord(1) });
        await store.createUpload(u);
        const [item] = await store.findSealedBefore(2, 10);
        assert.ok(item && item.kind === 'upload' && item.uploadId === u.uploadId && item.versionId === u.versionId);
        const to2 = sseRecord(2);
        assert.equal(await store.rewrap(item, to2), true);
        assert.deepEqual((await store.getUpload(u.uploadId))!.sse, to2);
        assert.equal(await store.rewrap(item, sseRecord(2)), false);
        assert.deepEqual((await store.getUpload(u.uploadId))!.sse, to2);
        const u2 = uploadRecord('b', 'k', { sse: sseRecord(1) });
        await store.createUpload(u2);
        const [item2] = await store.findSealedBefore(2, 10);
        await store.abortUpload(u2.uploadId);
        assert.equal(await store.rewrap(item2!, sseRecord(2)), false);
      }));
    });

    // ---------------- identities and bucket policies ----------------
    describe('identities', () => {
      test('users: create once, get, list by name, delete cascades keys and policies', withStore(async (store) => {
        assert.equal(await store.createUser({ name: 'bob', userId: 'AIDABOB', createdAt: T0 }), true);
        assert.equal(await store.createUser({ name: 'alice', userId: 'AIDAALICE', createdAt: T0 + 1 }), true);
        assert.equal(await store.createUser({ name: 'bob', userId: 'AIDAOTHER', createdAt: T0 + 2 }), false);
        assert.deepEqual((await store.getUser('bob'))?.userId, 'AIDABOB');
        assert.equal(await store.getUser('carol'), undefined);
        assert.deepEqual((await store.listUsers()).map((u) => u.name), ['alice', 'bob']);
        await store.putAccessKey({ accessKeyId: 'AK1', userName: 'bob', sealedSecret: 'c2VhbGVk', status: 'Active', createdAt: T0 });
        await store.putUserPolicy('bob', { name: 'p', document: '{"Version":"2012-10-17"}' });
        assert.equal(await store.deleteUser('bob'), true);
        assert.equal(await store.deleteUser('bob'), false);
        assert.equal(await store.getAccessKey('AK1'), undefined);
        assert.deepEqual(await store.listUserPolicies('bob'), []);
      }));

      test('access keys: put, get, list per user, status, delete', withStore(async (store) => {
        await store.createUser({ name: 'u', userId: 'AIDAU', createdAt: T0 });
        const k = { accessKeyId: 'AKIAONE', userName: 'u', sealedSecret: 'c2VhbGVk', status: 'Active' as const, createdAt: T0 };
        await store.putAccessKey(k);
        await store.putAccessKey({ ...k, accessKeyId: 'AKIATWO', createdAt: T0 + 1 });
        assert.deepEqual(await store.getAccessKey('AKIAONE'), k);
        assert.deepEqual((await store.listAccessKeys('u')).map((x) => x.accessKeyId), ['AKIAONE', 'AKIATWO']);
        assert.equal(await store.setAccessKeyStatus('AKIAONE', 'Inactive'), true);
        assert.equal((await store.getAccessKey('AKIAONE'))?.status, 'Inactive');
        assert.equal(await store.setAccessKeyStatus('NOPE', 'Inactive'), false);
        assert.equal(await store.deleteAccessKey('AKIAONE'), true);
        assert.equal(await store.deleteAccessKey('AKIAONE'), false);
        assert.deepEqual((await store.listAccessKeys('u')).map((x) => x.accessKeyId), ['AKIATWO']);
      }));

      test('user policies: put replaces by name, list by name, delete', withStore(async (store) => {
        await store.putUserPolicy('u', { name: 'b', document: '1' });
        await store.putUserPolicy('u', { name: 'a', document: '2' });
        await store.putUserPolicy('u', { name: 'b', document: '3' });
        assert.deepEqual(await store.listUserPolicies('u'), [
          { name: 'a', document: '2' },
          { name: 'b', document: '3' },
        ]);
        assert.equal(await store.deleteUserPolicy('u', 'a'), true);
        assert.equal(await store.deleteUserPolicy('u', 'a'), false);
        assert.deepEqual((await store.listUserPolicies('u')).map((p) => p.name), ['b']);
      }));

      test('bucket policies: set, replace, delete; absent bucket; removed with the bucket', withBuckets(async (store) => {
        assert.equal(await store.getBucketPolicy('b'), undefined);
        assert.equal(await store.setBucketPolicy('b', '{"a":1}'), true);
        assert.equal(await store.setBucketPolicy('b', '{"a":2}'), true);
        assert.equal(await store.getBucketPolicy('b'), '{"a":2}');
        assert.equal(await store.setBucketPolicy('nope', '{}'), false);
        assert.equal(await store.setBucketPolicy('b', undefined), true);
        assert.equal(await store.getBucketPolicy('b'), undefined);
        await store.setBucketPolicy('other', '{"x":1}');
        assert.equal(await store.deleteBucket('other'), 'deleted');
        await store.createBucket(bucketRecord('other'));
        assert.equal(await store.getBucketPolicy('other'), undefined);
      }));

      test('bucket default encryption: set, replace, remove; absent bucket; listed; gone with the bucket', withBuckets(async (store) => {
        assert.equal((await store.getBucket('b'))!.encryption, undefined);
        const kms = { algorithm: 'aws:kms' as const, kmsMasterKeyId: 'alias/k', bucketKeyEnabled: true, blockedEncryptionTypes: ['SSE-C'] };
        assert.equal(await store.setBucketEncryption('b', kms), true);
        assert.deepEqual((await store.getBucket('b'))!.encryption, kms);
        assert.deepEqual((await store.listBuckets()).find((x) => x.name === 'b')!.encryption, kms);
        assert.equal(await store.setBucketEncryption('b', { algorithm: 'AES256', bucketKeyEnabled: false }), true);
        assert.deepEqual((await store.getBucket('b'))!.encryption, { algorithm: 'AES256', bucketKeyEnabled: false });
        assert.equal(await store.setBucketEncryption('b', undefined), true);
        assert.equal((await store.getBucket('b'))!.encryption, undefined);
        assert.equal(await store.setBucketEncryption('nope', kms), false);
        await store.setBucketEncryption('other', kms);
        assert.equal(await store.deleteBucket('other'), 'deleted');
        await store.createBucket(bucketRecord('other'));
        assert.equal((await store.getBucket('other'))!.encryption, undefined);
        // Created with one (a new bucket's SSE-C block).
        const blocked = { algorithm: 'AES256' as const, bucketKeyEnabled: false, blockedEncryptionTypes: ['SSE-C'], implicit: true };
        assert.equal(await store.createBucket({ ...bucketRecord('third'), encryption: blocked }), true);
        assert.deepEqual((await store.getBucket('third'))!.encryption, blocked);
      }));
    });

    // ---------------- KMS ----------------
    describe('kms', () => {
      const key = (keyId: string, over: Partial<KmsKeyRecord> = {}): KmsKeyRecord => ({
        keyId,
        createdAt: T0,
        description: 'd',
        keyManager: 'CUSTOMER',
        state: 'Enabled',
        currentMaterial: 1,
        rotationEnabled: false,
        ...over,
      });
      const material = (keyId: string, version: number): KmsMaterialRecord => ({
        keyId,
        version,
        sealed: randomBytes(61).toString('base64'),
        createdAt: T0 + version,
        origin: version === 1 ? 'CREATE' : 'ON_DEMAND',
      });

      test('keys: create with material, policy and tags; duplicate id refused; update; list by id', withStore(async (store) => {
        const k = key('k2', { description: 'second' });
        const m = material('k2', 1);
        assert.equal(await store.createKmsKey(k, m, '{"p":1}', [{ key: 'b', value: '2' }, { key: 'a', value: '1' }]), true);
        assert.equal(await store.createKmsKey(k, material('k2', 1), '{}', []), false);
        assert.equal(await store.createKmsKey(key('k1'), material('k1', 1), '{}', []), true);
        assert.deepEqual(await store.getKmsKey('k2'), k);
        assert.equal(await store.getKmsKey('nope'), undefined);
        assert.deepEqual((await store.listKmsKeys()).map((x) => x.keyId), ['k1', 'k2']);
        assert.deepEqual(await store.getKmsMaterial('k2', 1), m);
        assert.equal(await store.getKmsKeyPolicy('k2'), '{"p":1}');
        assert.deepEqual(await store.listKmsTags('k2'), [{ key: 'a', value: '1' }, { key: 'b', value: '2' }]);
        const upd = key('k2', { state: 'PendingDeletion', deletionDate: T0 + 5, pendingWindowInDays: 7 });
        assert.equal(await store.updateKmsKey(upd), true);
        assert.deepEqual(await store.getKmsKey('k2'), upd);
        assert.equal(await store.updateKmsKey(key('nope')), false);
      }));

      test('material versions: added only on top of the current one, which they become', withStore(async (store) => {
        await store.createKmsKey(key('k'), material('k', 1), '{}', []);
        const m2 = material('k', 2);
        assert.equal(await store.addKmsMaterial(m2, key('k', { rotationEnabled: true })), true);
        assert.equal(await store.addKmsMaterial(material('k', 2), key('k')), false, 'same version twice');
        assert.equal(await store.addKmsMaterial(material('k', 4), key('k')), false, 'a gap');
        assert.equal(await store.addKmsMaterial(material('nope', 2), key('nope')), false, 'absent key');
        const k = await store.getKmsKey('k');
        assert.equal(k!.currentMaterial, 2);
        assert.equal(k!.rotationEnabled, true);
        assert.deepEqual((await store.listKmsMaterials('k')).map((m) => m.version), [1, 2]);
        assert.deepEqual(await store.getKmsMaterial('k', 2), m2);
        assert.equal(await store.getKmsMaterial('k', 3), undefined);
        const racing = await Promise.all([3, 3, 3].map(() => store.addKmsMaterial(material('k', 3), key('k'))));
        assert.equal(racing.filter(Boolean).length, 1, 'one of concurrent rotations wins');
      }));

      test('aliases: create once, update, delete, list by name', withStore(async (store) => {
        assert.equal(await store.createKmsAlias({ name: 'alias/b', keyId: 'k1', createdAt: 1, updatedAt: 1 }), true);
        assert.equal(await store.createKmsAlias({ name: 'alias/b', keyId: 'k2', createdAt: 2, updatedAt: 2 }), false);
        assert.equal(await store.createKmsAlias({ name: 'alias/a', keyId: 'k2', createdAt: 3, updatedAt: 3 }), true);
        assert.deepEqual((await store.listKmsAliases()).map((a) => a.name), ['alias/a', 'alias/b']);
        assert.equal(await store.updateKmsAlias('alias/b', 'k3', 9), true);
        assert.deepEqual(await store.getKmsAlias('alias/b'), { name: 'alias/b', keyId: 'k3', createdAt: 1, updatedAt: 9 });
        assert.equal(await store.updateKmsAlias('alias/none', 'k3', 9), false);
        assert.equal(await store.deleteKmsAlias('alias/b'), true);
        assert.equal(await store.deleteKmsAlias('alias/b'), false);
        assert.equal(await store.getKmsAlias('alias/b'), undefined);
      }));

      test('key policies and tags: replace, add, delete', withStore(async (store) => {
        await store.createKmsKey(key('k'), material('k', 1), '{"v":1}', []);
        await store.putKmsKeyPolicy('k', '{"v":2}');
        assert.equal(await store.getKmsKeyPolicy('k'), '{"v":2}');
        assert.equal(await store.getKmsKeyPolicy('nope'), undefined);
        await store.putKmsTags('k', [{ key: 'x', value: '1' }, { key: 'y', value: '2' }]);
        await store.putKmsTags('k', [{ key: 'x', value: '3' }]);
        assert.deepEqual(await store.listKmsTags('k'), [{ key: 'x', value: '3' }, { key: 'y', value: '2' }]);
        await store.deleteKmsTags('k', ['y', 'absent']);
        assert.deepEqual(await store.listKmsTags('k'), [{ key: 'x', value: '3' }]);
      }));

      test('deleteKmsKey removes the key with its material, aliases, policy and tags; others stay', withStore(async (store) => {
        await store.createKmsKey(key('k'), material('k', 1), '{}', [{ key: 't', value: 'v' }]);
        await store.createKmsKey(key('j'), material('j', 1), '{}', []);
        await store.addKmsMaterial(material('k', 2), key('k'));
        await store.createKmsAlias({ name: 'alias/k', keyId: 'k', createdAt: 1, updatedAt: 1 });
        await store.createKmsAlias({ name: 'alias/j', keyId: 'j', createdAt: 1, updatedAt: 1 });
        assert.equal(await store.deleteKmsKey('k'), true);
        assert.equal(await store.deleteKmsKey('k'), false);
        assert.equal(await store.getKmsKey('k'), undefined);
        assert.deepEqual(await store.listKmsMaterials('k'), []);
        assert.equal(await store.getKmsKeyPolicy('k'), undefined);
        assert.deepEqual(await store.listKmsTags('k'), []);
        assert.deepEqual((await store.listKmsAliases()).map((a) => a.name), ['alias/j']);
        assert.ok(await store.getKmsKey('j'));
      }));

      const grant = (keyId: string, grantId: string, over: Partial<KmsGrantRecord> = {}): KmsGrantRecord => ({
        grantId,
        keyId,
        createdAt: T0,
        granteePrincipal: 'arn:aws:iam::111122223333:user/alice',
        issuingAccount: 'arn:aws:iam::111122223333:root',
        operations: ['Encrypt', 'Decrypt'],
        ...over,
      });

      test('grants: create (only on an existing key, id once), get, list by key and by retiring principal, delete', withStore(async (store) => {
        await store.createKmsKey(key('k'), material('k', 1), '{}', []);
        await store.createKmsKey(key('j'), material('j', 1), '{}', []);
        const g1 = grant('k', 'b'.repeat(64), { createdAt: T0 + 2, name: 'n', retiringPrincipal: 'arn:aws:iam::111122223333:user/bob', constraints: { encryptionContextSubset: { a: '1' } } });
        const g2 = grant('k', 'a'.repeat(64), { createdAt: T0 + 1 });
        const g3 = grant('j', 'c'.repeat(64), { createdAt: T0, retiringPrincipal: 'arn:aws:iam::111122223333:user/bob', constraints: { encryptionContextEquals: { x: 'y' } } });
        assert.equal(await store.createKmsGrant(g1), true);
        assert.equal(await store.createKmsGrant(g2), true);
        assert.equal(await store.createKmsGrant(g3), true);
        assert.equal(await store.createKmsGrant(grant('k', 'b'.repeat(64))), false, 'grant id taken');
        assert.equal(await store.createKmsGrant(grant('nope', 'd'.repeat(64))), false, 'no such key');
        assert.deepEqual(await store.getKmsGrant('k', g1.grantId), g1);
        assert.equal(await store.getKmsGrant('j', g1.grantId), undefined, 'a grant belongs to its key');
        assert.equal(await store.getKmsGrant('k', 'd'.repeat(64)), undefined);
        assert.deepEqual(await store.listKmsGrants('k'), [g2, g1], 'oldest first');
        assert.deepEqual(await store.listKmsGrants('nope'), []);
        assert.deepEqual(await store.listKmsGrantsByRetiringPrincipal('arn:aws:iam::111122223333:user/bob'), [g3, g1]);
        assert.deepEqual(await store.listKmsGrantsByRetiringPrincipal('arn:aws:iam::111122223333:user/alice'), []);
        assert.equal(await store.deleteKmsGrant('j', g1.grantId), false, 'wrong key');
        assert.equal(await store.deleteKmsGrant('k', g1.grantId), true);
        assert.equal(await store.deleteKmsGrant('k', g1.grantId), false);
        assert.deepEqual(await store.listKmsGrants('k'), [g2]);
      }));

      test('deleteKmsKey deletes the key\'s grants; other keys\' grants stay', withStore(async (store) => {
        await store.createKmsKey(key('k'), material('k', 1), '{}', []);
        await store.createKmsKey(key('j'), material('j', 1), '{}', []);
        await store.createKmsGrant(grant('k', 'a'.repeat(64), { retiringPrincipal: 'arn:aws:iam::111122223333:root' }));
        await store.createKmsGrant(grant('j', 'b'.repeat(64)));
        assert.equal(await store.deleteKmsKey('k'), true);
        assert.deepEqual(await store.listKmsGrants('k'), []);
        assert.equal(await store.getKmsGrant('k', 'a'.repeat(64)), undefined);
        assert.deepEqual(await store.listKmsGrantsByRetiringPrincipal('arn:aws:iam::111122223333:root'), []);
        assert.equal((await store.listKmsGrants('j')).length, 1);
      }));
    });

    // ---------------- KMS audit trail ----------------
    describe('kms audit trail', () => {
      const ev = (i: number, over: Partial<AuditAppend> = {}): AuditAppend => ({
        event: JSON.stringify({ eventName: over.eventName ?? 'Decrypt', n: i }),
        time: T0 + i * 1000,
        eventName: 'Decrypt',
        principalArn: 'arn:aws:iam::111122223333:root',
        keyIds: ['k1'],
        ...over,
      });
      /** Every record in order, checking the chain as it goes. */
      const chained = async (store: MetadataStore): Promise<AuditRecord[]> => {
        const all = await store.listAudit({ limit: 100_000 });
        let prev = GENESIS_HASH;
        all.forEach((r, i) => {
          assert.equal(r.seq, i + 1, 'sequence numbers are 1, 2, 3, ... without gaps');
          assert.equal(r.hash, chainHash(prev, r.event), `event ${r.seq} chains on the one before`);
          prev = r.hash;
        });
        return all;
      };

      test('an empty trail has no head and no events', withStore(async (store) => {
        assert.equal(await store.auditHead(), undefined);
        assert.deepEqual(await store.listAudit({}), []);
        assert.deepEqual(await store.appendAudit([]), []);
      }));

      test('append: sequence numbers from 1, each hash chained on the previous, as listed', withStore(async (store) => {
        const first = await store.appendAudit([ev(1)]);
        assert.equal(first[0]!.seq, 1);
        assert.equal(first[0]!.hash, chainHash(GENESIS_HASH, first[0]!.event));
        const more = await store.appendAudit([ev(2, { errorCode: 'AccessDeniedException' }), ev(3, { keyIds: ['k2', 'k1', 'k2'] })]);
        assert.deepEqual(more.map((r) => r.seq), [2, 3]);
        assert.deepEqual(more[1]!.keyIds, ['k2', 'k1'], 'key ids without duplicates, in order');
        const all = await chained(store);
        assert.deepEqual(all, [...first, ...more]);
        assert.equal(all[1]!.errorCode, 'AccessDeniedException');
        assert.equal(all[0]!.errorCode, undefined);
        assert.deepEqual(await store.auditHead(), { seq: 3, hash: more[1]!.hash });
      }));

      test('concurrent appenders never fork the chain: every event once, contiguous, chained', withStore(async (store) => {
        const singles = Array.from({ length: 60 }, (_, i) => store.appendAudit([ev(i)]));
        const batches = Array.from({ length: 5 }, (_, b) => store.appendAudit([ev(100 + b * 2), ev(101 + b * 2)]));
        const results = (await Promise.all([...singles, ...batches])).flat();
        assert.equal(results.length, 70);
        const all = await chained(store);
        assert.equal(all.length, 70);
        assert.equal(new Set(all.map((r) => r.event)).size, 70);
        for (const r of results) assert.deepEqual(all[r.seq - 1], r, 'what append returned is what is stored');
      }));

      test('list filters: key, principal, operation, error code, time range, after, limit', withStore(async (store) => {
        const alice = 'arn:aws:iam::111122223333:user/alice';
        await store.appendAudit([
          ev(1, { eventName: 'CreateKey', keyIds: ['k1'] }),
          ev(2, { eventName: 'GenerateDataKey', keyIds: ['k1'], principalArn: alice }),
          ev(3, { eventName: 'Decrypt', keyIds: ['k2'], principalArn: alice, errorCode: 'AccessDeniedException' }),
          ev(4, { eventName: 'ReEncrypt', keyIds: ['k1', 'k2'] }),
          ev(5, { eventName: 'GenerateRandom', keyIds: [] }),
        ]);
        const seqs = async (q: AuditQuery) => (await store.listAudit(q)).map((r) => r.seq);
        assert.deepEqual(await seqs({ keyId: 'k1' }), [1, 2, 4]);
        assert.deepEqual(await seqs({ keyId: 'k2' }), [3, 4]);
        assert.deepEqual(await seqs({ keyId: 'none' }), []);
        assert.deepEqual(await seqs({ principalArn: alice }), [2, 3]);
        assert.deepEqual(await seqs({ eventName: 'Decrypt' }), [3]);
        assert.deepEqual(await seqs({ errorCode: 'AccessDeniedException' }), [3]);
        assert.deepEqual(await seqs({ since: T0 + 2000, until: T0 + 4000 }), [2, 3], 'since inclusive, until exclusive');
        assert.deepEqual(await seqs({ afterSeq: 3 }), [4, 5]);
        assert.deepEqual(await seqs({ limit: 2 }), [1, 2]);
        assert.deepEqual(await seqs({ keyId: 'k1', principalArn: alice, eventName: 'GenerateDataKey', since: T0, afterSeq: 1, limit: 10 }), [2]);
        assert.deepEqual((await store.listAudit({ eventName: 'GenerateRandom' }))[0]!.keyIds, []);
      }));
    });
  });
}
