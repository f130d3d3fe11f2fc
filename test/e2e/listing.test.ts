// Listing through the SDK: ListObjectsV2 and ListObjects with prefix, delimiter, max-keys,
// continuation tokens, markers, start-after and encoding-type=url, checked against a model.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CreateBucketCommand, ListObjectsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { startTestServer, type TestServer } from '../helpers/coffer.ts';

let srv: TestServer;
const B = 'listing';
const KEYS = [
  'a',
  'a/b',
  'a/b/c',
  'a/b/d',
  'a/c',
  'a/e/f',
  'b',
  'b/a',
  'c+plus',
  'c space',
  'd/ü/x',
  'd/z',
  'e~tilde',
  'photos/2024/jan/1.jpg',
  'photos/2024/jan/2.jpg',
  'photos/2024/feb/1.jpg',
  'photos/2025/mar/1.jpg',
  'z',
];

before(async () => {
  srv = await startTestServer();
  await srv.s3.send(new CreateBucketCommand({ Bucket: B }));
  for (const k of KEYS) await srv.s3.send(new PutObjectCommand({ Bucket: B, Key: k, Body: k }));
});
after(async () => {
  await srv?.stop();
});

function sorted(keys: string[]): string[] {
  return [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
}

/** The model: what S3 returns for a full (unpaginated) listing. */
function model(prefix: string, delimiter: string): { keys: string[]; prefixes: string[] } {
  const keys: string[] = [];
  const prefixes = new Set<string>();
  for (const k of sorted(KEYS)) {
    if (!k.startsWith(prefix)) continue;
    const i = delimiter ? k.indexOf(delimiter, prefix.length) : -1;
    if (i >= 0) prefixes.add(k.slice(0, i + delimiter.length));
    else keys.push(k);
  }
  return { keys, prefixes: [...prefixes] };
}

async function listAllV2(prefix: string, delimiter: string, maxKeys: number) {
  const keys: string[] = [];
  const prefixes: string[] = [];
  let token: string | undefined;
  let pages = 0;
  for (;;) {
    const r = await srv.s3.send(
      new ListObjectsV2Command({ Bucket: B, Prefix: prefix || undefined, Delimiter: delimiter || undefined, MaxKeys: maxKeys, ContinuationToken: token }),
    );
    pages++;
    assert.ok((r.KeyCount ?? 0) <= maxKeys);
    keys.push(...(r.Contents ?? []).map((c) => c.Key!));
    prefixes.push(...(r.CommonPrefixes ?? []).map((c) => c.Prefix!));
    if (!r.IsTruncated) break;
    token = r.NextContinuationToken;
    assert.ok(token);
    assert.ok(pages < 100);
  }
  return { keys, prefixes };
}

async function listAllV1(prefix: string, delimiter: string, maxKeys: number) {
  const keys: string[] = [];
  const prefixes: string[] = [];
  let marker: string | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const r = await srv.s3.send(new ListObjectsCommand({ Bucket: B, Prefix: prefix || undefined, Delimiter: delimiter || undefined, MaxKeys: maxKeys, Marker: marker }));
    const ks = (r.Contents ?? []).map((c) => c.Key!);
    const ps = (r.CommonPrefixes ?? []).map((c) => c.Prefix!);
    keys.push(...ks);
    prefixes.push(...ps);
    if (!r.IsTruncated) break;
    marker = r.NextMarker ?? ks[ks.length - 1];
  }
  return { keys, prefixes };
}

for (const [prefix, delimiter] of [
  ['', ''],
  ['', '/'],
  ['a/', '/'],
  ['a', '/'],
  ['photos/', '/'],
  ['photos/2024/', '/'],
  ['photos/', 'jan'],
  ['d/', '/'],
  ['nothing', '/'],
] as const) {
  for (const max of [1, 2, 3, 1000]) {
    test(`prefix=${JSON.stringify(prefix)} delimiter=${JSON.stringify(delimiter)} max-keys=${max}`, async () => {
      const want = model(prefix, delimiter);
      const v2 = await listAllV2(prefix, delimiter, max);
      assert.deepEqual(v2.keys, want.keys);
      assert.deepEqual(sorted(v2.prefixes), sorted(want.prefixes));
      const v1 = await listAllV1(prefix, delimiter, max);
      assert.deepEqual(v1.keys, want.keys);
      assert.deepEqual(sorted(v1.prefixes), sorted(want.prefixes));
    });
  }
}

test('start-after, max-keys=0, encoding-type=url', async () => {
  const r = await srv.s3.send(new ListObjectsV2Command({ Bucket: B, StartAfter: 'photos/' }));
  assert.deepEqual(
    r.Contents!.map((c) => c.Key),
    sorted(KEYS).filter((k) => Buffer.compare(Buffer.from(k), Buffer.from('photos/')) > 0),
  );
  assert.equal(r.StartAfter, 'photos/');
  const zero = await srv.s3.send(new ListObjectsV2Command({ Bucket: B, MaxKeys: 0 }));
  assert.equal(zero.KeyCount, 0);
  assert.equal(zero.IsTruncated, false);
  // The JS SDK leaves url-encoded names as sent (botocore decodes them with unquote_plus).
  const enc = await srv.s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'c', EncodingType: 'url' }));
  assert.deepEqual(enc.Contents!.map((c) => c.Key).sort(), ['c%2Bplus', 'c+space']);
  assert.deepEqual(enc.Contents!.map((c) => decodeURIComponent(c.Key!.replace(/\+/g, ' '))).sort(), ['c space', 'c+plus']);
  const withOwner = await srv.s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'z', FetchOwner: true }));
  assert.ok(withOwner.Contents![0]!.Owner?.ID);
  assert.equal(withOwner.Contents![0]!.Size, 1);
  assert.equal(withOwner.Contents![0]!.StorageClass, 'STANDARD');
});
