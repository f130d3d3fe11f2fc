// What is on disk: only ciphertext (no plaintext, no data key, no master key, no secret), and
// damage at rest (a flipped byte, a truncated blob, two objects' blobs swapped, a blob rolled
// back to an older write) makes GET fail with an error, never wrong bytes, whole or ranged.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import { ACCESS_KEY, SECRET_KEY, startTestServer, type TestServer } from '../helpers/coffer.ts';
import { fanOut } from '../../src/storage/fs-blob/fs-blob-store.ts';

let srv: TestServer;
const B = 'atrest';
before(async () => {
  srv = await startTestServer();
  await srv.s3.send(new CreateBucketCommand({ Bucket: B }));
});
after(async () => {
  await srv?.stop();
});

function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...allFiles(p));
    else out.push(p);
  }
  return out;
}

function blobPath(id: string): string {
  return join(srv.dataDir, 'blobs', fanOut(id), id);
}

async function fetch(key: string, range?: string): Promise<Buffer> {
  const r = await srv.s3.send(new GetObjectCommand({ Bucket: B, Key: key, ...(range ? { Range: range } : {}) }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

/** GET must fail: an S3 error, or a transfer the client sees break. Never bytes. */
async function mustFail(key: string, range?: string): Promise<void> {
  let got: Buffer | undefined;
  try {
    got = await fetch(key, range);
  } catch (e) {
    if (e instanceof S3ServiceException) assert.equal(e.$metadata.httpStatusCode, 500, `${e.name}`);
    return;
  }
  assert.fail(`GET ${key} ${range ?? ''} returned ${got.length} bytes from damaged data`);
}

test('the data directory holds no plaintext, data key, master key or secret', async () => {
  const marker = Buffer.from('COFFER-KNOWN-PLAINTEXT-MARKER-0123456789abcdefghijklmnopqrstuvwxyz!');
  const plaintext = Buffer.concat([marker, randomBytes(300_000), marker, Buffer.alloc(200_000, 0x41), marker]);
  await srv.s3.send(new PutObjectCommand({ Bucket: B, Key: 'known', Body: plaintext }));
  await srv.s3.send(new PutObjectCommand({ Bucket: B, Key: 'small', Body: marker }));
  const obj = await srv.coffer.stores.meta.getObject(B, 'known');
  assert.ok(obj);
  const dataKey = await srv.coffer.stores.masterKeys.openDataKey(obj.sse, { bucket: B, key: 'known', versionId: obj.versionId });
  const dk = Buffer.from(dataKey.expose());
  const needles: [string, Buffer][] = [
    ['plaintext marker', marker],
    ['plaintext chunk', plaintext.subarray(1000, 1064)],
    ['zeros-free run of A', Buffer.alloc(64, 0x41)],
    ['data key', dk],
    ['data key (hex)', Buffer.from(dk.toString('hex'))],
    ['data key (base64)', Buffer.from(dk.toString('base64'))],
    ['root secret', Buffer.from(SECRET_KEY)],
  ];
  const files = allFiles(srv.dataDir);
  assert.ok(files.some((f) => f.includes('blobs')), 'blobs are on disk');
  for (const f of files) {
    const content = readFileSync(f);
    for (const [what, needle] of needles) assert.equal(content.indexOf(needle), -1, `${what} found in ${f}`);
  }
  // The access key id is not a secret and is stored; the secret is sealed.
  assert.ok(files.some((f) => readFileSync(f).includes(Buffer.from(ACCESS_KEY))));
});

test('a flipped byte anywhere in a blob fails whole and range reads', async () => {
  const data = randomBytes(3 * 65536 + 500);
  await srv.s3.send(new PutObjectCommand({ Bucket: B, Key: 'flip', Body: data }));
  const obj = (await srv.coffer.stores.meta.getObject(B, 'flip'))!;
  const path = blobPath(obj.streams[0]!.blobId);
  const original = readFileSync(path);
  for (const pos of [0, 39, 40, 41, 100, 65536 + 40 + 5, 65536 + 40 + 16 + 3, original.length - 1, original.length - 17]) {
    const bad = Buffer.from(original);
    bad[pos]! ^= 0x01;
    writeFileSync(path, bad);
    await mustFail('flip');
    // a range in the damaged segment
    const seg = Math.max(0, Math.floor((pos - 40) / (65536 + 16)));
    const start = Math.min(seg * 65536, data.length - 1);
    await mustFail('flip', `bytes=${start}-${Math.min(start + 10, data.length - 1)}`);
  }
  writeFileSync(path, original);
  assert.ok((await fetch('flip')).equals(data));
});

test('a truncated blob fails, also exactly at a segment boundary', async () => {
  const data = randomBytes(4 * 65536);
  await srv.s3.send(new PutObjectCommand({ Bucket: B, Key: 'trunc', Body: data }));
  const obj = (await srv.coffer.stores.meta.getObject(B, 'trunc'))!;
  const path = blobPath(obj.streams[0]!.blobId);
  const original = readFileSync(path);
  for (const len of [original.length - 1, 40 + 3 * (65536 + 16), 40 + 65536, 40, 0]) {
    writeFileSync(path, original);
    truncateSync(path, len);
    await mustFail('trunc');
    await mustFail('trunc', `bytes=${3 * 65536}-${3 * 65536 + 9}`);
  }
  writeFileSync(path, original);
  assert.ok((await fetch('trunc')).equals(data));
});

test("two objects' blobs swapped, and a missing blob, fail", async () => {
  const a = randomBytes(100_000);
  const b = randomBytes(100_000);
  await srv.s3.send(new PutObjectCommand({ Bucket: B, Key: 'swap-a', Body: a }));
  await srv.s3.send(new PutObjectCommand({ Bucket: B, Key: 'swap-b', Body: b }));
  const pa = blobPath((await srv.coffer.stores.meta.getObject(B, 'swap-a'))!.streams[0]!.blobId);
  const pb = blobPath((await srv.coffer.stores.meta.getObject(B, 'swap-b'))!.streams[0]!.blobId);
  renameSync(pa, pa + '.tmp');
  renameSync(pb, pa);
  renameSync(pa + '.tmp', pb);
  await mustFail('swap-a');
  await mustFail('swap-b');
  await mustFail('swap-a', 'bytes=70000-70010');
  renameSync(pa, pa + '.tmp');
  renameSync(pb, pa);
  renameSync(pa + '.tmp', pb);
  assert.ok((await fetch('swap-a')).equals(a));
  renameSync(pb, pb + '.gone');
  await mustFail('swap-b');
  renameSync(pb + '.gone', pb);
});

test('a blob rolled back to an older write of the same key fails', async () => {
  await srv.s3.send(new PutObjectCommand({ Bucket: B, Key: 'roll', Body: randomBytes(100_000) }));
  const old = (await srv.coffer.stores.meta.getObject(B, 'roll'))!;
  const saved = readFileSync(blobPath(old.streams[0]!.blobId));
  await srv.s3.send(new PutObjectCommand({ Bucket: B, Key: 'roll', Body: randomBytes(100_000) }));
  const cur = (await srv.coffer.stores.meta.getObject(B, 'roll'))!;
  writeFileSync(blobPath(cur.streams[0]!.blobId), saved);
  await mustFail('roll');
});

test('small objects kept inline in the metadata: a flipped, truncated or trailing byte fails too', async () => {
  const data = randomBytes(3000);
  await srv.s3.send(new PutObjectCommand({ Bucket: B, Key: 'inline', Body: data }));
  const obj = (await srv.coffer.stores.meta.getObject(B, 'inline'))!;
  assert.ok(obj.inlineData, 'a 3000-byte object is stored inline');
  assert.equal(obj.streams[0]!.blobId, '');
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(srv.dataDir, 'metadata.db'));
  const set = db.prepare('UPDATE objects SET inline_data = ? WHERE bucket = ? AND key = ?');
  try {
    for (const pos of [0, 40, 500, obj.inlineData.length - 1]) {
      const bad = Buffer.from(obj.inlineData);
      bad[pos]! ^= 0x80;
      set.run(bad, B, 'inline');
      await mustFail('inline');
      await mustFail('inline', 'bytes=10-20');
    }
    set.run(obj.inlineData.subarray(0, obj.inlineData.length - 1), B, 'inline');
    await mustFail('inline');
    await mustFail('inline', 'bytes=10-20');
    // A trailing byte fails too, even for a range that does not reach the end.
    set.run(Buffer.concat([obj.inlineData, Buffer.from([0])]), B, 'inline');
    await mustFail('inline');
    await mustFail('inline', 'bytes=10-20');
    set.run(obj.inlineData, B, 'inline');
    assert.ok((await fetch('inline')).equals(data));
  } finally {
    db.close();
  }
});
