// SqliteMetadataStore: buckets, objects, multipart uploads, master keys and settings in one
// SQLite database (WAL, synchronous=FULL) under the data directory. Every state change that
// must be atomic (replace an object, complete an upload) is one transaction.
import { promises as fsp } from 'node:fs';
import Database from 'better-sqlite3';
import type {
  AccessKeyRecord,
  BucketEncryption,
  BucketRecord,
  NamedPolicy,
  UserRecord,
  KmsAliasRecord,
  KmsGrantRecord,
  KmsKeyRecord,
  KmsMaterialRecord,
  KmsTag,
  ListObjectsQuery,
  MasterKeyRecord,
  MetadataStore,
  ObjectRecord,
  ObjectTag,
  PartRecord,
  Replaced,
  RewrapItem,
  SseRecord,
  UploadRecord,
} from '../ports.ts';
import { UploadGoneError } from '../ports.ts';
import type { AuditAppend, AuditQuery, AuditRecord } from '../ports.ts';
import { chainHash, GENESIS_HASH } from '../../shared/audit-chain.ts';

/** The objects table's columns (also used to rebuild older databases' table). */
const OBJECTS_COLUMNS = `
  bucket TEXT NOT NULL, key TEXT NOT NULL, version_id TEXT NOT NULL,
  size INTEGER NOT NULL, etag TEXT NOT NULL, last_modified INTEGER NOT NULL,
  content_type TEXT NOT NULL, headers TEXT NOT NULL, user_metadata TEXT NOT NULL,
  sse TEXT NOT NULL, master_key_version INTEGER NOT NULL, streams TEXT NOT NULL,
  parts_count INTEGER NOT NULL, checksum TEXT, inline_data BLOB, tags TEXT,
  PRIMARY KEY (bucket, key)`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS buckets (
  name TEXT PRIMARY KEY, created_at INTEGER NOT NULL, location TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (${OBJECTS_COLUMNS});
CREATE INDEX IF NOT EXISTS objects_mkv ON objects (master_key_version);
CREATE TABLE IF NOT EXISTS object_blobs (
  blob_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS object_blobs_key ON object_blobs (bucket, key);
CREATE TABLE IF NOT EXISTS uploads (
  upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, version_id TEXT NOT NULL,
  initiated INTEGER NOT NULL, content_type TEXT NOT NULL, headers TEXT NOT NULL,
  user_metadata TEXT NOT NULL, sse TEXT NOT NULL, master_key_version INTEGER NOT NULL,
  checksum_algorithm TEXT, requested_sse TEXT, requested_kms_key_id TEXT, tags TEXT);
CREATE INDEX IF NOT EXISTS uploads_bucket ON uploads (bucket, key, initiated);
CREATE TABLE IF NOT EXISTS parts (
  upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, blob_id TEXT NOT NULL UNIQUE,
  plain_size INTEGER NOT NULL, md5 TEXT NOT NULL, header TEXT NOT NULL, last_modified INTEGER NOT NULL,
  PRIMARY KEY (upload_id, part_number)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY, user_id TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS access_keys (
  access_key_id TEXT PRIMARY KEY, user_name TEXT NOT NULL, sealed_secret TEXT NOT NULL,
  status TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS access_keys_user ON access_keys (user_name);
CREATE TABLE IF NOT EXISTS user_policies (
  user_name TEXT NOT NULL, policy_name TEXT NOT NULL, document TEXT NOT NULL,
  PRIMARY KEY (user_name, policy_name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bucket_policies (bucket TEXT PRIMARY KEY, document TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS master_keys (
  version INTEGER PRIMARY KEY, sealed TEXT NOT NULL, created_at INTEGER NOT NULL, retired_at INTEGER);
`;

/** The KMS tables (src/kms): key metadata as JSON, sealed material versions, aliases, key policies, tags, grants (as JSON). */
const KMS_SCHEMA = `
CREATE TABLE IF NOT EXISTS kms_keys (key_id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kms_materials (
  key_id TEXT NOT NULL, version INTEGER NOT NULL, sealed TEXT NOT NULL, created_at INTEGER NOT NULL,
  origin TEXT NOT NULL, PRIMARY KEY (key_id, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kms_aliases (
  name TEXT PRIMARY KEY, key_id TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kms_key_policies (key_id TEXT PRIMARY KEY, document TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kms_tags (
  key_id TEXT NOT NULL, tag_key TEXT NOT NULL, tag_value TEXT NOT NULL, PRIMARY KEY (key_id, tag_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kms_grants (
  grant_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, created_at INTEGER NOT NULL, retiring_principal TEXT, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS kms_grants_key ON kms_grants (key_id, created_at, grant_id);
CREATE INDEX IF NOT EXISTS kms_grants_retiring ON kms_grants (retiring_principal, created_at, grant_id);
`;

/**
 * The KMS audit trail (append-only, hash-chained): one row per event, its canonical JSON as
 * hashed, and the columns it is filtered by; kms_audit_keys indexes events by the keys they name.
 */
const AUDIT_SCHEMA = `
CREATE TABLE IF NOT EXISTS kms_audit (
  seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, event_name TEXT NOT NULL, principal_arn TEXT NOT NULL,
  error_code TEXT, key_ids TEXT NOT NULL, event TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS kms_audit_time ON kms_audit (time);
CREATE INDEX IF NOT EXISTS kms_audit_principal ON kms_audit (principal_arn, seq);
CREATE TABLE IF NOT EXISTS kms_audit_keys (key_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (key_id, seq)) WITHOUT ROWID;
`;

interface AuditRow {
  seq: number;
  time: number;
  event_name: string;
  principal_arn: string;
  error_code: string | null;
  key_ids: string;
  event: string;
  hash: string;
}

function toAuditRecord(r: AuditRow): AuditRecord {
  return {
    seq: r.seq,
    time: r.time,
    eventName: r.event_name,
    principalArn: r.principal_arn,
    ...(r.error_code !== null ? { errorCode: r.error_code } : {}),
    keyIds: JSON.parse(r.key_ids) as string[],
    event: r.event,
    hash: r.hash,
  };
}

interface KmsMaterialRow {
  key_id: string;
  version: number;
  sealed: string;
  created_at: number;
  origin: KmsMaterialRecord['origin'];
}

function toKmsMaterial(r: KmsMaterialRow): KmsMaterialRecord {
  return { keyId: r.key_id, version: r.version, sealed: r.sealed, createdAt: r.created_at, origin: r.origin };
}

interface KmsAliasRow {
  name: string;
  key_id: string;
  created_at: number;
  updated_at: number;
}

function toKmsAlias(r: KmsAliasRow): KmsAliasRecord {
  return { name: r.name, keyId: r.key_id, createdAt: r.created_at, updatedAt: r.updated_at };
}

function kmsStatements(db: Database.Database) {
  return {
    insertKey: db.prepare('INSERT OR IGNORE INTO kms_keys (key_id, record) VALUES (?, ?)'),
    getKey: db.prepare<[string], { record: string }>('SELECT record FROM kms_keys WHERE key_id = ?'),
    listKeys: db.prepare<[], { record: string }>('SELECT record FROM kms_keys ORDER BY key_id'),
    updateKey: db.prepare('UPDATE kms_keys SET record = ? WHERE key_id = ?'),
    deleteKey: db.prepare('DELETE FROM kms_keys WHERE key_id = ?'),
    deleteKeyMaterials: db.prepare('DELETE FROM kms_materials WHERE key_id = ?'),
    deleteKeyAliases: db.prepare('DELETE FROM kms_aliases WHERE key_id = ?'),
    deleteKeyPolicy: db.prepare('DELETE FROM kms_key_policies WHERE key_id = ?'),
    deleteKeyTags: db.prepare('DELETE FROM kms_tags WHERE key_id = ?'),
    insertMaterial: db.prepare('INSERT OR IGNORE INTO kms_materials (key_id, version, sealed, created_at, origin) VALUES (?, ?, ?, ?, ?)'),
    getMaterial: db.prepare<[string, number], KmsMaterialRow>('SELECT * FROM kms_materials WHERE key_id = ? AND version = ?'),
    listMaterials: db.prepare<[string], KmsMaterialRow>('SELECT * FROM kms_materials WHERE key_id = ? ORDER BY version'),
    insertAlias: db.prepare('INSERT OR IGNORE INTO kms_aliases (name, key_id, created_at, updated_at) VALUES (?, ?, ?, ?)'),
    updateAlias: db.prepare('UPDATE kms_aliases SET key_id = ?, updated_at = ? WHERE name = ?'),
    deleteAlias: db.prepare('DELETE FROM kms_aliases WHERE name = ?'),
    getAlias: db.prepare<[string], KmsAliasRow>('SELECT * FROM kms_aliases WHERE name = ?'),
    listAliases: db.prepare<[], KmsAliasRow>('SELECT * FROM kms_aliases ORDER BY name'),
    getPolicy: db.prepare<[string], { document: string }>('SELECT document FROM kms_key_policies WHERE key_id = ?'),
    putPolicy: db.prepare('INSERT OR REPLACE INTO kms_key_policies (key_id, document) VALUES (?, ?)'),
    listTags: db.prepare<[string], { tag_key: string; tag_value: string }>('SELECT tag_key, tag_value FROM kms_tags WHERE key_id = ? ORDER BY tag_key'),
    putTag: db.prepare('INSERT OR REPLACE INTO kms_tags (key_id, tag_key, tag_value) VALUES (?, ?, ?)'),
    deleteTag: db.prepare('DELETE FROM kms_tags WHERE key_id = ? AND tag_key = ?'),
    deleteKeyGrants: db.prepare('DELETE FROM kms_grants WHERE key_id = ?'),
    insertGrant: db.prepare('INSERT OR IGNORE INTO kms_grants (grant_id, key_id, created_at, retiring_principal, record) VALUES (?, ?, ?, ?, ?)'),
    getGrant: db.prepare<[string, string], { record: string }>('SELECT record FROM kms_grants WHERE grant_id = ? AND key_id = ?'),
    listGrants: db.prepare<[string], { record: string }>('SELECT record FROM kms_grants WHERE key_id = ? ORDER BY created_at, grant_id'),
    listRetirableGrants: db.prepare<[string], { record: string }>('SELECT record FROM kms_grants WHERE retiring_principal = ? ORDER BY created_at, grant_id'),
    deleteGrant: db.prepare('DELETE FROM kms_grants WHERE grant_id = ? AND key_id = ?'),
  };
}

/** Every objects column but inline_data (listings never need object data). */
const LIST_COLUMNS =
  'bucket, key, version_id, size, etag, last_modified, content_type, headers, user_metadata, sse, master_key_version, streams, parts_count, checksum, tags';

interface BucketRow {
  name: string;
  created_at: number;
  location: string;
  encryption: string | null;
}

/** AuditQuery filters and their SQL conditions (each binds its field's value as @field). */
const AUDIT_FILTERS: readonly [keyof AuditQuery & ('keyId' | 'principalArn' | 'eventName' | 'errorCode' | 'since' | 'until'), string][] = [
  ['keyId', 'seq IN (SELECT seq FROM kms_audit_keys WHERE key_id = @keyId)'],
  ['principalArn', 'principal_arn = @principalArn'],
  ['eventName', 'event_name = @eventName'],
  ['errorCode', 'error_code = @errorCode'],
  ['since', 'time >= @since'],
  ['until', 'time < @until'],
];

function toBucket(r: BucketRow): BucketRecord {
  return { name: r.name, createdAt: r.created_at, location: r.location, ...(r.encryption ? { encryption: JSON.parse(r.encryption) as BucketEncryption } : {}) };
}

interface ObjectRow {
  bucket: string;
  key: string;
  version_id: string;
  size: number;
  etag: string;
  last_modified: number;
  content_type: string;
  headers: string;
  user_metadata: string;
  sse: string;
  streams: string;
  parts_count: number;
  checksum: string | null;
  inline_data?: Buffer | null;
  tags?: string | null;
}

interface AccessKeyRow {
  access_key_id: string;
  user_name: string;
  sealed_secret: string;
  status: 'Active' | 'Inactive';
  created_at: number;
}

function toAccessKey(r: AccessKeyRow): AccessKeyRecord {
  return { accessKeyId: r.access_key_id, userName: r.user_name, sealedSecret: r.sealed_secret, status: r.status, createdAt: r.created_at };
}

interface UploadRow {
  upload_id: string;
  bucket: string;
  key: string;
  version_id: string;
  initiated: number;
  content_type: string;
  headers: string;
  user_metadata: string;
  sse: string;
  checksum_algorithm: string | null;
  requested_sse: string | null;
  requested_kms_key_id?: string | null;
  tags?: string | null;
}

interface PartRow {
  upload_id: string;
  part_number: number;
  blob_id: string;
  plain_size: number;
  md5: string;
  header: string;
  last_modified: number;
}

/** getObjectRaw's columns, in ObjectRow's order (rowOf reads them by position). */
const RAW_OBJECT_COLUMNS = 'bucket, key, version_id, size, etag, last_modified, content_type, headers, user_metadata, sse, streams, parts_count, checksum, inline_data, tags';
type RawObjectRow = [string, string, string, number, string, number, string, string, string, string, string, number, string | null, Buffer | null, string | null];

function rowOf(r: RawObjectRow): ObjectRow {
  return {
    bucket: r[0],
    key: r[1],
    version_id: r[2],
    size: r[3],
    etag: r[4],
    last_modified: r[5],
    content_type: r[6],
    headers: r[7],
    user_metadata: r[8],
    sse: r[9],
    streams: r[10],
    parts_count: r[11],
    checksum: r[12],
    inline_data: r[13],
    tags: r[14],
  };
}

function toObject(r: ObjectRow): ObjectRecord {
  return {
    bucket: r.bucket,
    key: r.key,
    versionId: r.version_id,
    size: r.size,
    etag: r.etag,
    lastModified: r.last_modified,
    contentType: r.content_type,
    headers: JSON.parse(r.headers),
    userMetadata: JSON.parse(r.user_metadata),
    sse: JSON.parse(r.sse),
    streams: JSON.parse(r.streams),
    partsCount: r.parts_count,
    ...(r.checksum ? { checksum: JSON.parse(r.checksum) } : {}),
    ...(r.inline_data ? { inlineData: r.inline_data } : {}),
    ...(r.tags ? { tags: JSON.parse(r.tags) as ObjectTag[] } : {}),
  };
}

/** Tags as stored: JSON, or NULL for none. */
function tagsColumn(tags: ObjectTag[] | undefined): string | null {
  return tags && tags.length > 0 ? JSON.stringify(tags) : null;
}

function toUpload(r: UploadRow): UploadRecord {
  return {
    uploadId: r.upload_id,
    bucket: r.bucket,
    key: r.key,
    versionId: r.version_id,
    initiated: r.initiated,
    contentType: r.content_type,
    headers: JSON.parse(r.headers),
    userMetadata: JSON.parse(r.user_metadata),
    sse: JSON.parse(r.sse),
    ...(r.checksum_algorithm ? { checksumAlgorithm: r.checksum_algorithm } : {}),
    ...(r.requested_sse !== null && r.requested_sse !== undefined ? { requestedSse: r.requested_sse } : {}),
    ...(r.requested_kms_key_id !== null && r.requested_kms_key_id !== undefined ? { requestedKmsKeyId: r.requested_kms_key_id } : {}),
    ...(r.tags ? { tags: JSON.parse(r.tags) as ObjectTag[] } : {}),
  };
}

function toPart(r: PartRow): PartRecord {
  return {
    uploadId: r.upload_id,
    partNumber: r.part_number,
    blobId: r.blob_id,
    plainSize: r.plain_size,
    md5: r.md5,
    header: r.header,
    lastModified: r.last_modified,
  };
}

export class SqliteMetadataStore implements MetadataStore {
  private readonly db: Database.Database;
  private readonly stmts;
  private readonly kms;
  private readonly walPath: string;
  private walFd: Promise<number> | undefined;

  /** Schema upgrade of a database made by an earlier version: adds `column` unless it is there. */
  private addColumnIfMissing(table: string, column: string, type: string): void {
    if (this.db.prepare<[], { name: string }>(`PRAGMA table_info(${table})`).all().some((c) => c.name === column)) return;
    this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
  }

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // Commits append to the WAL without fsync on the main thread; flush() fsyncs the WAL
    // through the thread pool before any write is acknowledged (see the group commit below),
    // which is as durable as synchronous=FULL without blocking the event loop.
    this.db.pragma('synchronous = NORMAL');
    this.walPath = `${path}-wal`;
    this.db.pragma('busy_timeout = 5000');
    // A 32 MiB page cache (SQLite's default is 2 MiB): point lookups of small objects, whose
    // ciphertext is kept inline, stay in memory instead of costing a read() per page.
    this.db.pragma('cache_size = -32768');
    // Reads of the first 256 MiB of the database through a memory map instead of a read() per
    // page: a small GET's lookup (row and inline ciphertext, often on overflow pages) costs a
    // few page touches instead of as many system calls. Mapped pages show in the server's RSS
    // but are the OS's page cache of the file, shared and reclaimable. Writes still go through
    // the WAL.
    this.db.pragma('mmap_size = 268435456');
    this.db.exec(SCHEMA);
    this.db.exec(KMS_SCHEMA);
    this.db.exec(AUDIT_SCHEMA);
    // Databases created before uploads recorded the requested SSE header.
    this.addColumnIfMissing('uploads', 'requested_sse', 'TEXT');
    // Databases created before uploads recorded the requested SSE-KMS key id.
    this.addColumnIfMissing('uploads', 'requested_kms_key_id', 'TEXT');
    // Databases created before buckets had a default encryption configuration.
    this.addColumnIfMissing('buckets', 'encryption', 'TEXT');
    // Databases created before small objects were kept inline.
    this.addColumnIfMissing('objects', 'inline_data', 'BLOB');
    // Databases created before object tagging.
    this.addColumnIfMissing('objects', 'tags', 'TEXT');
    this.addColumnIfMissing('uploads', 'tags', 'TEXT');
    // Databases whose objects table was WITHOUT ROWID: rows that carry a small object's
    // ciphertext (up to 32 KiB) overflow a WITHOUT ROWID B-tree's leaves, and point lookups
    // cost 2 to 3 times more than in a rowid table. Rebuilt once, in one transaction.
    const objectsSql = this.db.prepare<[], { sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'objects'").get()?.sql ?? '';
    if (/WITHOUT\s+ROWID/i.test(objectsSql)) {
      this.db.transaction(() => {
        const names = 'bucket, key, version_id, size, etag, last_modified, content_type, headers, user_metadata, sse, master_key_version, streams, parts_count, checksum, inline_data';
        this.db.exec(`CREATE TABLE objects_rowid (${OBJECTS_COLUMNS});
        INSERT INTO objects_rowid (${names}) SELECT ${names} FROM objects;
        DROP TABLE objects;
        ALTER TABLE objects_rowid RENAME TO objects;
        CREATE INDEX IF NOT EXISTS objects_mkv ON objects (master_key_version);`);
      })();
    }
    const db = this.db;
    this.kms = kmsStatements(db);
    this.stmts = {
      getSetting: db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE name = ?'),
      initSetting: db.prepare('INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)'),
      setSetting: db.prepare('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value'),
      createBucket: db.prepare('INSERT OR IGNORE INTO buckets (name, created_at, location, encryption) VALUES (?, ?, ?, ?)'),
      getBucket: db.prepare<[string], BucketRow>('SELECT * FROM buckets WHERE name = ?'),
      listBuckets: db.prepare<[], BucketRow>('SELECT * FROM buckets ORDER BY name'),
      setBucketEncryption: db.prepare('UPDATE buckets SET encryption = ? WHERE name = ?'),
      bucketHasObjects: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM objects WHERE bucket = ? LIMIT 1'),
      bucketHasUploads: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM uploads WHERE bucket = ? LIMIT 1'),
      deleteBucket: db.prepare('DELETE FROM buckets WHERE name = ?'),
      getObject: db.prepare<[string, string], ObjectRow>('SELECT * FROM objects WHERE bucket = ? AND key = ?'),
      // The same row as an array: better-sqlite3 builds a row object property by property
      // through V8's generic path (~2% of a small GET); an array is one allocation.
      getObjectRaw: db.prepare<[string, string], RawObjectRow>(`SELECT ${RAW_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ?`).raw(true),
      objectBlobs: db.prepare<[string, string], { blob_id: string }>('SELECT blob_id FROM object_blobs WHERE bucket = ? AND key = ?'),
      deleteObjectBlobs: db.prepare('DELETE FROM object_blobs WHERE bucket = ? AND key = ?'),
      insertObjectBlob: db.prepare('INSERT OR REPLACE INTO object_blobs (blob_id, bucket, key) VALUES (?, ?, ?)'),
      upsertObject: db.prepare(`INSERT OR REPLACE INTO objects
        (bucket, key, version_id, size, etag, last_modified, content_type, headers, user_metadata, sse, master_key_version, streams, parts_count, checksum, inline_data, tags)
        VALUES (@bucket, @key, @version_id, @size, @etag, @last_modified, @content_type, @headers, @user_metadata, @sse, @master_key_version, @streams, @parts_count, @checksum, @inline_data, @tags)`),
      setObjectTags: db.prepare('UPDATE objects SET tags = @tags WHERE bucket = @bucket AND key = @key AND (@version IS NULL OR version_id = @version)'),
      deleteObject: db.prepare('DELETE FROM objects WHERE bucket = ? AND key = ?'),
      listObjects: db.prepare<[string, string, string, number, string, number], ObjectRow>(
        `SELECT ${LIST_COLUMNS} FROM objects WHERE bucket = ? AND key > ? AND key >= ? AND substr(key, 1, ?) = ? ORDER BY key LIMIT ?`,
      ),
      createUpload: db.prepare(`INSERT INTO uploads
        (upload_id, bucket, key, version_id, initiated, content_type, headers, user_metadata, sse, master_key_version, checksum_algorithm, requested_sse, requested_kms_key_id, tags)
        VALUES (@upload_id, @bucket, @key, @version_id, @initiated, @content_type, @headers, @user_metadata, @sse, @master_key_version, @checksum_algorithm, @requested_sse, @requested_kms_key_id, @tags)`),
      getUpload: db.prepare<[string], UploadRow>('SELECT * FROM uploads WHERE upload_id = ?'),
      listUploads: db.prepare<[string], UploadRow>('SELECT * FROM uploads WHERE bucket = ? ORDER BY key, initiated, upload_id'),
      deleteUpload: db.prepare('DELETE FROM uploads WHERE upload_id = ?'),
      getPart: db.prepare<[string, number], PartRow>('SELECT * FROM parts WHERE upload_id = ? AND part_number = ?'),
      upsertPart: db.prepare(`INSERT OR REPLACE INTO parts (upload_id, part_number, blob_id, plain_size, md5, header, last_modified)
        VALUES (?, ?, ?, ?, ?, ?, ?)`),
      listParts: db.prepare<[string], PartRow>('SELECT * FROM parts WHERE upload_id = ? ORDER BY part_number'),
      deleteParts: db.prepare('DELETE FROM parts WHERE upload_id = ?'),
      blobInObjects: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM object_blobs WHERE blob_id = ?'),
      blobInParts: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM parts WHERE blob_id = ?'),
      createUser: db.prepare('INSERT OR IGNORE INTO users (name, user_id, created_at) VALUES (?, ?, ?)'),
      getUser: db.prepare<[string], { name: string; user_id: string; created_at: number }>('SELECT * FROM users WHERE name = ?'),
      listUsers: db.prepare<[], { name: string; user_id: string; created_at: number }>('SELECT * FROM users ORDER BY name'),
      deleteUser: db.prepare('DELETE FROM users WHERE name = ?'),
      deleteUserKeys: db.prepare('DELETE FROM access_keys WHERE user_name = ?'),
      deleteUserPolicies: db.prepare('DELETE FROM user_policies WHERE user_name = ?'),
      putAccessKey: db.prepare(`INSERT OR REPLACE INTO access_keys (access_key_id, user_name, sealed_secret, status, created_at)
        VALUES (?, ?, ?, ?, ?)`),
      getAccessKey: db.prepare<[string], AccessKeyRow>('SELECT * FROM access_keys WHERE access_key_id = ?'),
      listAccessKeys: db.prepare<[string], AccessKeyRow>('SELECT * FROM access_keys WHERE user_name = ? ORDER BY created_at, access_key_id'),
      setAccessKeyStatus: db.prepare('UPDATE access_keys SET status = ? WHERE access_key_id = ?'),
      deleteAccessKey: db.prepare('DELETE FROM access_keys WHERE access_key_id = ?'),
      putUserPolicy: db.prepare('INSERT OR REPLACE INTO user_policies (user_name, policy_name, document) VALUES (?, ?, ?)'),
      listUserPolicies: db.prepare<[string], { policy_name: string; document: string }>(
        'SELECT policy_name, document FROM user_policies WHERE user_name = ? ORDER BY policy_name',
      ),
      deleteUserPolicy: db.prepare('DELETE FROM user_policies WHERE user_name = ? AND policy_name = ?'),
      getBucketPolicy: db.prepare<[string], { document: string }>('SELECT document FROM bucket_policies WHERE bucket = ?'),
      setBucketPolicy: db.prepare('INSERT OR REPLACE INTO bucket_policies (bucket, document) VALUES (?, ?)'),
      deleteBucketPolicy: db.prepare('DELETE FROM bucket_policies WHERE bucket = ?'),
      listMasterKeys: db.prepare<[], { version: number; sealed: string; created_at: number; retired_at: number | null }>(
        'SELECT * FROM master_keys ORDER BY version',
      ),
      addMasterKey: db.prepare('INSERT OR IGNORE INTO master_keys (version, sealed, created_at) VALUES (?, ?, ?)'),
      retireMasterKey: db.prepare("UPDATE master_keys SET retired_at = ?, sealed = '' WHERE version = ?"),
      countObjectsByMk: db.prepare<[], { v: number; n: number }>(
        "SELECT master_key_version AS v, count(*) AS n FROM objects WHERE json_extract(sse, '$.mode') = 'SSE-S3' GROUP BY master_key_version",
      ),
      countUploadsByMk: db.prepare<[], { v: number; n: number }>(
        "SELECT master_key_version AS v, count(*) AS n FROM uploads WHERE json_extract(sse, '$.mode') = 'SSE-S3' GROUP BY master_key_version",
      ),
      objectsBefore: db.prepare<[number, number], ObjectRow>(
        "SELECT * FROM objects WHERE master_key_version < ? AND json_extract(sse, '$.mode') = 'SSE-S3' LIMIT ?",
      ),
      uploadsBefore: db.prepare<[number, number], UploadRow>(
        "SELECT * FROM uploads WHERE master_key_version < ? AND json_extract(sse, '$.mode') = 'SSE-S3' LIMIT ?",
      ),
      rewrapObject: db.prepare(
        'UPDATE objects SET sse = ?, master_key_version = ? WHERE bucket = ? AND key = ? AND version_id = ? AND master_key_version = ?',
      ),
      rewrapUpload: db.prepare('UPDATE uploads SET sse = ?, master_key_version = ? WHERE upload_id = ? AND master_key_version = ?'),
    };
  }

  async close(): Promise<void> {
    if (this.queue.length || this.inFlight) await new Promise<void>((resolve) => this.onIdle.push(resolve));
    await this.walHandle?.close();
    this.db.close();
  }

  // ---- group commit ----
  // Writes that arrive in the same turn of the event loop commit in one transaction, so one
  // WAL fsync (synchronous=FULL) serves many requests. Each write runs in its own savepoint:
  // one that throws is rolled back alone and rejects alone.
  private queue: { fn: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  private onIdle: (() => void)[] = [];

  private commit<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      this.schedule();
    });
  }

  private scheduled = false;

  /**
   * One flush at a time: writes that arrive while the WAL is being fsync'd wait and then go
   * together in the next transaction, so batches grow with load.
   */
  private schedule(): void {
    if (this.scheduled || this.inFlight > 0 || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.db.transaction(() => {
        for (const op of batch) {
          try {
            outcomes.push({ ok: true, value: this.db.transaction(op.fn)() });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      }).immediate();
    } catch (error) {
      for (const op of batch) op.reject(error);
      this.idle();
      return;
    }
    this.inFlight++;
    this.syncWal().then(
      () => {
        batch.forEach((op, i) => {
          const o = outcomes[i]!;
          if (o.ok) op.resolve(o.value);
          else op.reject(o.error);
        });
      },
      (error: unknown) => {
        for (const op of batch) op.reject(error);
      },
    ).finally(() => {
      this.inFlight--;
      this.schedule();
      this.idle();
    });
  }

  private inFlight = 0;

  /** fsync the WAL (its committed frames) on the thread pool. */
  private async syncWal(): Promise<void> {
    this.walFd ??= fsp.open(this.walPath, 'r').then((h) => {
      this.walHandle = h;
      return h.fd;
    });
    await this.walFd;
    await this.walHandle!.datasync();
  }

  private walHandle: import('node:fs/promises').FileHandle | undefined;

  private idle(): void {
    if (this.queue.length === 0 && this.inFlight === 0 && this.onIdle.length) {
      const w = this.onIdle;
      this.onIdle = [];
      for (const f of w) f();
    }
  }

  // ---- identities ----

  async createUser(u: UserRecord): Promise<boolean> {
    return this.commit(() => this.stmts.createUser.run(u.name, u.userId, u.createdAt).changes === 1);
  }

  async getUser(name: string): Promise<UserRecord | undefined> {
    const r = this.stmts.getUser.get(name);
    return r && { name: r.name, userId: r.user_id, createdAt: r.created_at };
  }

  async listUsers(): Promise<UserRecord[]> {
    return this.stmts.listUsers.all().map((r) => ({ name: r.name, userId: r.user_id, createdAt: r.created_at }));
  }

  async deleteUser(name: string): Promise<boolean> {
    return this.commit(() => {
      this.stmts.deleteUserKeys.run(name);
      this.stmts.deleteUserPolicies.run(name);
      return this.stmts.deleteUser.run(name).changes === 1;
    });
  }

  async putAccessKey(k: AccessKeyRecord): Promise<void> {
    await this.commit(() => this.stmts.putAccessKey.run(k.accessKeyId, k.userName, k.sealedSecret, k.status, k.createdAt));
  }

  async getAccessKey(accessKeyId: string): Promise<AccessKeyRecord | undefined> {
    const r = this.stmts.getAccessKey.get(accessKeyId);
    return r && toAccessKey(r);
  }

  async listAccessKeys(userName: string): Promise<AccessKeyRecord[]> {
    return this.stmts.listAccessKeys.all(userName).map(toAccessKey);
  }

  async setAccessKeyStatus(accessKeyId: string, status: 'Active' | 'Inactive'): Promise<boolean> {
    return this.commit(() => this.stmts.setAccessKeyStatus.run(status, accessKeyId).changes === 1);
  }

  async deleteAccessKey(accessKeyId: string): Promise<boolean> {
    return this.commit(() => this.stmts.deleteAccessKey.run(accessKeyId).changes === 1);
  }

  async putUserPolicy(userName: string, policy: NamedPolicy): Promise<void> {
    await this.commit(() => this.stmts.putUserPolicy.run(userName, policy.name, policy.document));
  }

  async listUserPolicies(userName: string): Promise<NamedPolicy[]> {
    return this.stmts.listUserPolicies.all(userName).map((r) => ({ name: r.policy_name, document: r.document }));
  }

  async deleteUserPolicy(userName: string, policyName: string): Promise<boolean> {
    return this.commit(() => this.stmts.deleteUserPolicy.run(userName, policyName).changes === 1);
  }

  async getBucketPolicy(bucket: string): Promise<string | undefined> {
    return this.stmts.getBucketPolicy.get(bucket)?.document;
  }

  async setBucketPolicy(bucket: string, policy: string | undefined): Promise<boolean> {
    return this.commit(() => {
      if (!this.stmts.getBucket.get(bucket)) return false;
      if (policy === undefined) this.stmts.deleteBucketPolicy.run(bucket);
      else this.stmts.setBucketPolicy.run(bucket, policy);
      return true;
    });
  }

  async getSetting(name: string): Promise<string | undefined> {
    return this.stmts.getSetting.get(name)?.value;
  }

  async initSetting(name: string, value: string): Promise<string> {
    return this.commit(() => {
      this.stmts.initSetting.run(name, value);
      return this.stmts.getSetting.get(name)!.value;
    });
  }

  async setSetting(name: string, value: string): Promise<void> {
    await this.commit(() => this.stmts.setSetting.run(name, value));
  }

  async createBucket(b: BucketRecord): Promise<boolean> {
    return this.commit(() => this.stmts.createBucket.run(b.name, b.createdAt, b.location, b.encryption ? JSON.stringify(b.encryption) : null).changes === 1);
  }

  async getBucket(name: string): Promise<BucketRecord | undefined> {
    const r = this.stmts.getBucket.get(name);
    return r && toBucket(r);
  }

  async setBucketEncryption(name: string, encryption: BucketEncryption | undefined): Promise<boolean> {
    return this.commit(() => this.stmts.setBucketEncryption.run(encryption ? JSON.stringify(encryption) : null, name).changes === 1);
  }

  async listBuckets(): Promise<BucketRecord[]> {
    return this.stmts.listBuckets.all().map(toBucket);
  }

  async deleteBucket(name: string): Promise<'deleted' | 'not-empty' | 'missing'> {
    return this.commit(() => {
      if (!this.stmts.getBucket.get(name)) return 'missing' as const;
      if (this.stmts.bucketHasObjects.get(name) || this.stmts.bucketHasUploads.get(name)) return 'not-empty' as const;
      this.stmts.deleteBucket.run(name);
      this.stmts.deleteBucketPolicy.run(name);
      return 'deleted' as const;
    });
  }

  async getObject(bucket: string, key: string): Promise<ObjectRecord | undefined> {
    const r = this.stmts.getObjectRaw.get(bucket, key) as RawObjectRow | undefined;
    return r && toObject(rowOf(r));
  }

  /** In a transaction: drop the current object at (bucket, key) and return its blob ids. */
  private removeCurrent(bucket: string, key: string): string[] {
    const garbage = this.stmts.objectBlobs.all(bucket, key).map((r) => r.blob_id);
    this.stmts.deleteObjectBlobs.run(bucket, key);
    this.stmts.deleteObject.run(bucket, key);
    return garbage;
  }

  private insertObject(obj: ObjectRecord): void {
    this.stmts.upsertObject.run({
      bucket: obj.bucket,
      key: obj.key,
      version_id: obj.versionId,
      size: obj.size,
      etag: obj.etag,
      last_modified: obj.lastModified,
      content_type: obj.contentType,
      headers: JSON.stringify(obj.headers),
      user_metadata: JSON.stringify(obj.userMetadata),
      sse: JSON.stringify(obj.sse),
      master_key_version: obj.sse.masterKeyVersion,
      streams: JSON.stringify(obj.streams),
      parts_count: obj.partsCount,
      checksum: obj.checksum ? JSON.stringify(obj.checksum) : null,
      inline_data: obj.inlineData ?? null,
      tags: tagsColumn(obj.tags),
    });
    for (const s of obj.streams) if (s.blobId !== '') this.stmts.insertObjectBlob.run(s.blobId, obj.bucket, obj.key);
  }

  async putObject(obj: ObjectRecord, expectedVersionId?: string): Promise<Replaced & { conflict?: true }> {
    return this.commit(() => {
      if (expectedVersionId !== undefined && this.stmts.getObject.get(obj.bucket, obj.key)?.version_id !== expectedVersionId) {
        return { garbageBlobIds: [], conflict: true as const };
      }
      const garbage = this.removeCurrent(obj.bucket, obj.key);
      this.insertObject(obj);
      const keep = new Set(obj.streams.map((s) => s.blobId));
      return { garbageBlobIds: garbage.filter((id) => !keep.has(id)) };
    });
  }

  async deleteObject(bucket: string, key: string): Promise<Replaced & { deleted: boolean }> {
    return this.commit(() => {
      const existed = !!this.stmts.getObject.get(bucket, key);
      const garbage = this.removeCurrent(bucket, key);
      return { deleted: existed, garbageBlobIds: garbage };
    });
  }

  async setObjectTags(bucket: string, key: string, tags: ObjectTag[] | undefined, expectedVersionId?: string): Promise<boolean> {
    return this.commit(() => this.stmts.setObjectTags.run({ tags: tagsColumn(tags), bucket, key, version: expectedVersionId ?? null }).changes === 1);
  }

  async listObjects(q: ListObjectsQuery): Promise<ObjectRecord[]> {
    // key > after, key >= prefix (lets SQLite use the primary key range), key starts with prefix
    // (SQLite's substr counts code points; its BINARY order is UTF-8 byte order, as S3 lists.)
    const prefixChars = [...q.prefix].length;
    return this.stmts.listObjects.all(q.bucket, q.after, q.prefix, prefixChars, q.prefix, q.limit).map(toObject);
  }

  async createUpload(u: UploadRecord): Promise<void> {
    await this.commit(() => this.stmts.createUpload.run({
      upload_id: u.uploadId,
      bucket: u.bucket,
      key: u.key,
      version_id: u.versionId,
      initiated: u.initiated,
      content_type: u.contentType,
      headers: JSON.stringify(u.headers),
      user_metadata: JSON.stringify(u.userMetadata),
      sse: JSON.stringify(u.sse),
      master_key_version: u.sse.masterKeyVersion,
      checksum_algorithm: u.checksumAlgorithm ?? null,
      requested_sse: u.requestedSse ?? null,
      requested_kms_key_id: u.requestedKmsKeyId ?? null,
      tags: tagsColumn(u.tags),
    }));
  }

  async getUpload(uploadId: string): Promise<UploadRecord | undefined> {
    const r = this.stmts.getUpload.get(uploadId);
    return r && toUpload(r);
  }

  async listUploads(bucket: string): Promise<UploadRecord[]> {
    return this.stmts.listUploads.all(bucket).map(toUpload);
  }

  async putPart(p: PartRecord): Promise<Replaced> {
    return this.commit(() => {
      if (!this.stmts.getUpload.get(p.uploadId)) throw new UploadGoneError();
      const old = this.stmts.getPart.get(p.uploadId, p.partNumber);
      this.stmts.upsertPart.run(p.uploadId, p.partNumber, p.blobId, p.plainSize, p.md5, p.header, p.lastModified);
      // Re-recording the same blob (a retried commit) leaves it referenced: not garbage.
      return { garbageBlobIds: old && old.blob_id !== p.blobId ? [old.blob_id] : [] };
    });
  }

  async listParts(uploadId: string): Promise<PartRecord[]> {
    return this.stmts.listParts.all(uploadId).map(toPart);
  }

  async completeUpload(uploadId: string, obj: ObjectRecord): Promise<Replaced> {
    return this.commit(() => {
      if (!this.stmts.getUpload.get(uploadId)) throw new UploadGoneError();
      const used = new Set(obj.streams.map((s) => s.blobId));
      const parts = this.stmts.listParts.all(uploadId);
      for (const id of used) if (!parts.some((p) => p.blob_id === id)) throw new UploadGoneError();
      const garbage = parts.filter((p) => !used.has(p.blob_id)).map((p) => p.blob_id);
      this.stmts.deleteParts.run(uploadId);
      this.stmts.deleteUpload.run(uploadId);
      garbage.push(...this.removeCurrent(obj.bucket, obj.key));
      this.insertObject(obj);
      return { garbageBlobIds: garbage };
    });
  }

  async abortUpload(uploadId: string): Promise<Replaced & { aborted: boolean }> {
    return this.commit(() => {
      if (!this.stmts.getUpload.get(uploadId)) return { aborted: false, garbageBlobIds: [] };
      const garbage = this.stmts.listParts.all(uploadId).map((p) => p.blob_id);
      this.stmts.deleteParts.run(uploadId);
      this.stmts.deleteUpload.run(uploadId);
      return { aborted: true, garbageBlobIds: garbage };
    });
  }

  async isBlobReferenced(blobId: string): Promise<boolean> {
    return !!(this.stmts.blobInObjects.get(blobId) || this.stmts.blobInParts.get(blobId));
  }

  async listMasterKeys(): Promise<MasterKeyRecord[]> {
    return this.stmts.listMasterKeys.all().map((r) => ({
      version: r.version,
      sealed: r.sealed,
      createdAt: r.created_at,
      ...(r.retired_at != null ? { retiredAt: r.retired_at } : {}),
    }));
  }

  async addMasterKey(k: MasterKeyRecord): Promise<boolean> {
    return this.commit(() => this.stmts.addMasterKey.run(k.version, k.sealed, k.createdAt).changes === 1);
  }

  async retireMasterKey(version: number, at: number): Promise<void> {
    await this.commit(() => this.stmts.retireMasterKey.run(at, version));
  }

  async countByMasterKey(): Promise<Map<number, number>> {
    const m = new Map<number, number>();
    for (const r of [...this.stmts.countObjectsByMk.all(), ...this.stmts.countUploadsByMk.all()]) {
      m.set(r.v, (m.get(r.v) ?? 0) + r.n);
    }
    return m;
  }

  async findSealedBefore(newest: number, limit: number): Promise<RewrapItem[]> {
    const items: RewrapItem[] = this.stmts.objectsBefore.all(newest, limit).map((r) => ({
      kind: 'object' as const,
      bucket: r.bucket,
      key: r.key,
      versionId: r.version_id,
      sse: JSON.parse(r.sse) as SseRecord,
    }));
    if (items.length < limit) {
      for (const r of this.stmts.uploadsBefore.all(newest, limit - items.length)) {
        items.push({ kind: 'upload', bucket: r.bucket, key: r.key, versionId: r.version_id, uploadId: r.upload_id, sse: JSON.parse(r.sse) });
      }
    }
    return items;
  }

  async rewrap(item: RewrapItem, sse: SseRecord): Promise<boolean> {
    const from = item.sse.masterKeyVersion;
    const json = JSON.stringify(sse);
    return this.commit(() => {
      const r =
        item.kind === 'object'
          ? this.stmts.rewrapObject.run(json, sse.masterKeyVersion, item.bucket, item.key, item.versionId, from)
          : this.stmts.rewrapUpload.run(json, sse.masterKeyVersion, item.uploadId, from);
      return r.changes === 1;
    });
  }

  // ---- KMS ----

  async createKmsKey(k: KmsKeyRecord, material: KmsMaterialRecord, policy: string, tags: KmsTag[]): Promise<boolean> {
    return this.commit(() => {
      if (this.kms.insertKey.run(k.keyId, JSON.stringify(k)).changes !== 1) return false;
      this.kms.insertMaterial.run(material.keyId, material.version, material.sealed, material.createdAt, material.origin);
      this.kms.putPolicy.run(k.keyId, policy);
      for (const t of tags) this.kms.putTag.run(k.keyId, t.key, t.value);
      return true;
    });
  }

  async getKmsKey(keyId: string): Promise<KmsKeyRecord | undefined> {
    const r = this.kms.getKey.get(keyId);
    return r ? (JSON.parse(r.record) as KmsKeyRecord) : undefined;
  }

  async listKmsKeys(): Promise<KmsKeyRecord[]> {
    return this.kms.listKeys.all().map((r) => JSON.parse(r.record) as KmsKeyRecord);
  }

  async updateKmsKey(k: KmsKeyRecord): Promise<boolean> {
    return this.commit(() => this.kms.updateKey.run(JSON.stringify(k), k.keyId).changes === 1);
  }

  async deleteKmsKey(keyId: string): Promise<boolean> {
    return this.commit(() => {
      if (this.kms.deleteKey.run(keyId).changes !== 1) return false;
      this.kms.deleteKeyMaterials.run(keyId);
      this.kms.deleteKeyAliases.run(keyId);
      this.kms.deleteKeyPolicy.run(keyId);
      this.kms.deleteKeyTags.run(keyId);
      this.kms.deleteKeyGrants.run(keyId);
      return true;
    });
  }

  async addKmsMaterial(m: KmsMaterialRecord, keyUpdate: KmsKeyRecord): Promise<boolean> {
    return this.commit(() => {
      const cur = this.kms.getKey.get(m.keyId);
      if (!cur || (JSON.parse(cur.record) as KmsKeyRecord).currentMaterial !== m.version - 1) return false;
      if (this.kms.insertMaterial.run(m.keyId, m.version, m.sealed, m.createdAt, m.origin).changes !== 1) return false;
      this.kms.updateKey.run(JSON.stringify({ ...keyUpdate, currentMaterial: m.version }), m.keyId);
      return true;
    });
  }

  async getKmsMaterial(keyId: string, version: number): Promise<KmsMaterialRecord | undefined> {
    const r = this.kms.getMaterial.get(keyId, version);
    return r ? toKmsMaterial(r) : undefined;
  }

  async listKmsMaterials(keyId: string): Promise<KmsMaterialRecord[]> {
    return this.kms.listMaterials.all(keyId).map(toKmsMaterial);
  }

  async createKmsAlias(a: KmsAliasRecord): Promise<boolean> {
    return this.commit(() => this.kms.insertAlias.run(a.name, a.keyId, a.createdAt, a.updatedAt).changes === 1);
  }

  async updateKmsAlias(name: string, keyId: string, at: number): Promise<boolean> {
    return this.commit(() => this.kms.updateAlias.run(keyId, at, name).changes === 1);
  }

  async deleteKmsAlias(name: string): Promise<boolean> {
    return this.commit(() => this.kms.deleteAlias.run(name).changes === 1);
  }

  async getKmsAlias(name: string): Promise<KmsAliasRecord | undefined> {
    const r = this.kms.getAlias.get(name);
    return r ? toKmsAlias(r) : undefined;
  }

  async listKmsAliases(): Promise<KmsAliasRecord[]> {
    return this.kms.listAliases.all().map(toKmsAlias);
  }

  async getKmsKeyPolicy(keyId: string): Promise<string | undefined> {
    return this.kms.getPolicy.get(keyId)?.document;
  }

  async putKmsKeyPolicy(keyId: string, policy: string): Promise<void> {
    await this.commit(() => this.kms.putPolicy.run(keyId, policy));
  }

  async listKmsTags(keyId: string): Promise<KmsTag[]> {
    return this.kms.listTags.all(keyId).map((r) => ({ key: r.tag_key, value: r.tag_value }));
  }

  async putKmsTags(keyId: string, tags: KmsTag[]): Promise<void> {
    await this.commit(() => {
      for (const t of tags) this.kms.putTag.run(keyId, t.key, t.value);
    });
  }

  async deleteKmsTags(keyId: string, tagKeys: string[]): Promise<void> {
    await this.commit(() => {
      for (const k of tagKeys) this.kms.deleteTag.run(keyId, k);
    });
  }

  async createKmsGrant(g: KmsGrantRecord): Promise<boolean> {
    return this.commit(() => {
      if (!this.kms.getKey.get(g.keyId)) return false;
      return this.kms.insertGrant.run(g.grantId, g.keyId, g.createdAt, g.retiringPrincipal ?? null, JSON.stringify(g)).changes === 1;
    });
  }

  async getKmsGrant(keyId: string, grantId: string): Promise<KmsGrantRecord | undefined> {
    const r = this.kms.getGrant.get(grantId, keyId);
    return r ? (JSON.parse(r.record) as KmsGrantRecord) : undefined;
  }

  async listKmsGrants(keyId: string): Promise<KmsGrantRecord[]> {
    return this.kms.listGrants.all(keyId).map((r) => JSON.parse(r.record) as KmsGrantRecord);
  }

  async listKmsGrantsByRetiringPrincipal(principal: string): Promise<KmsGrantRecord[]> {
    return this.kms.listRetirableGrants.all(principal).map((r) => JSON.parse(r.record) as KmsGrantRecord);
  }

  async deleteKmsGrant(keyId: string, grantId: string): Promise<boolean> {
    return this.commit(() => this.kms.deleteGrant.run(grantId, keyId).changes === 1);
  }

  // ---- KMS audit trail ----

  private auditStmts:
    | {
        head: Database.Statement<[], { seq: number; hash: string }>;
        insert: Database.Statement;
        insertKey: Database.Statement;
        queries: Map<string, Database.Statement<Record<string, string | number>, AuditRow>>;
      }
    | undefined;

  private audit() {
    this.auditStmts ??= {
      head: this.db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM kms_audit ORDER BY seq DESC LIMIT 1'),
      insert: this.db.prepare(
        'INSERT INTO kms_audit (seq, time, event_name, principal_arn, error_code, key_ids, event, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      insertKey: this.db.prepare('INSERT OR IGNORE INTO kms_audit_keys (key_id, seq) VALUES (?, ?)'),
      queries: new Map(),
    };
    return this.auditStmts;
  }

  async appendAudit(events: AuditAppend[]): Promise<AuditRecord[]> {
    if (events.length === 0) return [];
    const a = this.audit();
    // The head is read inside the write transaction (BEGIN IMMEDIATE holds the database's
    // write lock), so appenders in this process and in others sharing the file chain in turn.
    return this.commit(() => {
      const head = a.head.get();
      let seq = head?.seq ?? 0;
      let prev = head?.hash ?? GENESIS_HASH;
      const out: AuditRecord[] = [];
      for (const e of events) {
        seq++;
        const hash = chainHash(prev, e.event);
        const keyIds = [...new Set(e.keyIds)];
        a.insert.run(seq, e.time, e.eventName, e.principalArn, e.errorCode ?? null, JSON.stringify(keyIds), e.event, hash);
        for (const k of keyIds) a.insertKey.run(k, seq);
        out.push({ ...e, keyIds, seq, hash });
        prev = hash;
      }
      return out;
    });
  }

  async listAudit(q: AuditQuery): Promise<AuditRecord[]> {
    const where: string[] = ['seq > @after'];
    const params: Record<string, string | number> = { after: q.afterSeq ?? 0, limit: q.limit ?? 1000 };
    for (const [field, condition] of AUDIT_FILTERS) {
      const v = q[field];
      if (v === undefined) continue;
      where.push(condition);
      params[field] = v;
    }
    const sql = `SELECT * FROM kms_audit WHERE ${where.join(' AND ')} ORDER BY seq LIMIT @limit`;
    const a = this.audit();
    let stmt = a.queries.get(sql);
    if (!stmt) {
      stmt = this.db.prepare<Record<string, string | number>, AuditRow>(sql);
      a.queries.set(sql, stmt);
    }
    return stmt.all(params).map(toAuditRecord);
  }

  async auditHead(): Promise<{ seq: number; hash: string } | undefined> {
    const h = this.audit().head.get();
    return h && { seq: h.seq, hash: h.hash };
  }
}
