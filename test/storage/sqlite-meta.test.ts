// SqliteMetadataStore: the shared MetadataStore conformance suite, plus durability across a
// reopen of the database file (the one thing an in-process suite cannot see otherwise).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  metadataStoreConformance,
  objectRecord,
  partRecord,
  uploadRecord,
} from '../../src/storage/conformance/metadata-store-suite.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite-meta/sqlite-metadata-store.ts';

/** Runs `fn` with a fresh temporary directory, removed afterwards, pass or fail. */
function inTempDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coffer-sqlite-meta-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

metadataStoreConformance('SqliteMetadataStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-sqlite-meta-'));
  const store = new SqliteMetadataStore(join(dir, 'metadata.db'));
  return { store, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
});

test('SqliteMetadataStore: committed state survives closing and reopening the database', inTempDir(async (dir) => {
  const path = join(dir, 'metadata.db');
  const a = new SqliteMetadataStore(path);
  await a.createBucket({ name: 'b', createdAt: 1, location: 'us-east-1' });
  const obj = objectRecord('b', 'k\u{1f600}');
  await a.putObject(obj);
  const u = uploadRecord('b', 'mp');
  await a.createUpload(u);
  const p = partRecord(u.uploadId, 1);
  await a.putPart(p);
  await a.initSetting('account', '123');
  await a.addMasterKey({ version: 1, sealed: 'c2VhbGVk', createdAt: 5 });
  await a.close();
  const b = new SqliteMetadataStore(path);
  try {
    assert.deepEqual(await b.getObject('b', obj.key), obj);
    assert.deepEqual(await b.getUpload(u.uploadId), u);
    assert.deepEqual(await b.listParts(u.uploadId), [p]);
    assert.equal(await b.getSetting('account'), '123');
    assert.equal((await b.listMasterKeys()).length, 1);
    assert.equal(await b.isBlobReferenced(obj.streams[0]!.blobId), true);
  } finally {
    await b.close();
  }
}));

test('SqliteMetadataStore: a database from before uploads.requested_sse gains the column and keeps its uploads', inTempDir(async (dir) => {
  const path = join(dir, 'metadata.db');
  const a = new SqliteMetadataStore(path);
  const u = uploadRecord('b', 'old');
  await a.createBucket({ name: 'b', createdAt: 1, location: 'us-east-1' });
  await a.createUpload(u);
  await a.close();
  const Database = (await import('better-sqlite3')).default;
  const raw = new Database(path);
  raw.exec('ALTER TABLE uploads DROP COLUMN requested_sse');
  raw.close();
  const b = new SqliteMetadataStore(path);
  try {
    assert.deepEqual(await b.getUpload(u.uploadId), u);
    const v = uploadRecord('b', 'new', { requestedSse: 'AES256' });
    await b.createUpload(v);
    assert.equal((await b.getUpload(v.uploadId))!.requestedSse, 'AES256');
  } finally {
    await b.close();
  }
}));

test('SqliteMetadataStore: a database whose objects table is WITHOUT ROWID is rebuilt as a rowid table, objects kept', inTempDir(async (dir) => {
  const path = join(dir, 'metadata.db');
  const a = new SqliteMetadataStore(path);
  await a.createBucket({ name: 'b', createdAt: 1, location: 'us-east-1' });
  const small = { ...objectRecord('b', 'small'), inlineData: Buffer.from('inline ciphertext') };
  const big = objectRecord('b', 'big', { size: 9, streams: [objectRecord('b', 'x').streams[0]!] });
  await a.putObject(small);
  await a.putObject(big);
  await a.close();
  // Turn the table back into the old WITHOUT ROWID shape, as databases of earlier versions have it.
  const { default: Database } = await import('better-sqlite3');
  const raw = new Database(path);
  raw.exec(`CREATE TABLE old_objects (
    bucket TEXT NOT NULL, key TEXT NOT NULL, version_id TEXT NOT NULL,
    size INTEGER NOT NULL, etag TEXT NOT NULL, last_modified INTEGER NOT NULL,
    content_type TEXT NOT NULL, headers TEXT NOT NULL, user_metadata TEXT NOT NULL,
    sse TEXT NOT NULL, master_key_version INTEGER NOT NULL, streams TEXT NOT NULL,
    parts_count INTEGER NOT NULL, checksum TEXT, inline_data BLOB,
    PRIMARY KEY (bucket, key)) WITHOUT ROWID;
    INSERT INTO old_objects SELECT bucket, key, version_id, size, etag, last_modified, content_type, headers, user_metadata, sse, master_key_version, streams, parts_count, checksum, inline_data FROM objects;
    DROP TABLE objects; ALTER TABLE old_objects RENAME TO objects;`);
  raw.close();
  const b = new SqliteMetadataStore(path);
  try {
    assert.deepEqual(await b.getObject('b', 'small'), small);
    assert.deepEqual(await b.getObject('b', 'big'), big);
    const check = new Database(path, { readonly: true });
    const sql = (check.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'objects'").get() as { sql: string }).sql;
    const indexes = check.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'objects'").all() as { name: string }[];
    check.close();
    assert.doesNotMatch(sql, /WITHOUT ROWID/i);
    assert.ok(indexes.some((i) => i.name === 'objects_mkv'));
  } finally {
    await b.close();
  }
}));
