// ListObjects (v1) and ListObjectsV2: prefix, delimiter with common prefixes, max-keys,
// marker / continuation-token / start-after, encoding-type=url, fetch-owner.
import { S3Error } from '../../shared/errors.ts';
import type { MetadataStore, ObjectRecord } from '../../storage/ports.ts';
import type { ObjectService } from '../../service/objects.ts';
import { send, type Owner, type S3Context } from '../request.ts';
import { isoDate, xmlDocument, type XmlNode } from '../xml.ts';

export function parseMaxKeys(v: string | null, name: string): number {
  if (v === null) return 1000;
  if (!/^-?\d+$/.test(v.trim())) {
    throw new S3Error('InvalidArgument', `Provided ${name} not an integer or within integer range`, { ArgumentName: name, ArgumentValue: v });
  }
  const n = Number(v);
  if (n < 0) throw new S3Error('InvalidArgument', `Argument ${name} must be an integer between 0 and 2147483647`, { ArgumentName: name, ArgumentValue: v });
  return Math.min(n, 1000);
}

/** encoding-type=url: S3 URL-encodes key names in the listing (spaces as '+'). */
export function encodeName(s: string, encodingType: string | null): string {
  if (encodingType !== 'url') return s;
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, '+')
    .replace(/%2F/g, '/');
}

/** UTF-8 byte order, as S3 sorts keys. */
function utf8Gt(a: string, b: string): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) > 0;
}

/** The highest code point: appended to a common prefix, it skips every key under it. */
const MAX_CHAR = '\u{10FFFF}';

interface Listing {
  contents: ObjectRecord[];
  prefixes: string[];
  truncated: boolean;
  /** The last key or common prefix returned (the resume point). */
  last?: string;
}

export async function list(meta: MetadataStore, bucket: string, prefix: string, delimiter: string, after: string, max: number): Promise<Listing> {
  const contents: ObjectRecord[] = [];
  const prefixes: string[] = [];
  let cursor = after;
  // A marker that is itself a common prefix resumes after everything under it.
  if (delimiter && after.startsWith(prefix) && after.endsWith(delimiter) && after.indexOf(delimiter, prefix.length) === after.length - delimiter.length) {
    cursor = after + MAX_CHAR;
  }
  let last: string | undefined;
  if (max === 0) return { contents, prefixes, truncated: false };
  for (;;) {
    const batch = await meta.listObjects({ bucket, prefix, after: cursor, limit: Math.min(1000, max + 1) });
    if (batch.length === 0) return { contents, prefixes, truncated: false, ...(last !== undefined ? { last } : {}) };
    for (const o of batch) {
      let entry: { kind: 'key'; obj: ObjectRecord } | { kind: 'prefix'; p: string } = { kind: 'key', obj: o };
      if (delimiter) {
        const i = o.key.indexOf(delimiter, prefix.length);
        if (i >= 0) entry = { kind: 'prefix', p: o.key.slice(0, i + delimiter.length) };
      }
      if (contents.length + prefixes.length >= max) return { contents, prefixes, truncated: true, ...(last !== undefined ? { last } : {}) };
      if (entry.kind === 'key') {
        contents.push(entry.obj);
        last = entry.obj.key;
        cursor = entry.obj.key;
      } else {
        prefixes.push(entry.p);
        last = entry.p;
        cursor = entry.p + MAX_CHAR;
        break; // re-query from past the common prefix
      }
    }
  }
}

function contentNode(o: ObjectRecord, enc: (s: string) => string, owner?: Owner): XmlNode {
  return [
    'Contents',
    [
      ['Key', enc(o.key)],
      ['LastModified', isoDate(o.lastModified)],
      ['ETag', `"${o.etag}"`],
      ...(o.checksum ? ([['ChecksumAlgorithm', o.checksum.algorithm]] as XmlNode[]) : []),
      ['Size', o.size],
      ...(owner
        ? ([
            [
              'Owner',
              [
                ['ID', owner.id],
                ['DisplayName', owner.displayName],
              ],
            ],
          ] as XmlNode[])
        : []),
      ['StorageClass', 'STANDARD'],
    ],
  ];
}

function encodingType(ctx: S3Context): string | null {
  const e = ctx.query.get('encoding-type');
  if (e !== null && e !== 'url') throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', { ArgumentName: 'encoding-type', ArgumentValue: e });
  return e;
}

/** The parameters both listing versions share, validated, with the bucket checked. */
async function listingRequest(ctx: S3Context, objects: ObjectService) {
  const bucket = ctx.op.bucket!;
  await objects.requireBucket(bucket);
  const q = ctx.query;
  const et = encodingType(ctx);
  return {
    bucket,
    q,
    et,
    enc: (s: string) => encodeName(s, et),
    prefix: q.get('prefix') ?? '',
    delimiter: q.get('delimiter') ?? '',
    max: parseMaxKeys(q.get('max-keys'), 'max-keys'),
  };
}

export async function listObjectsV2(ctx: S3Context, objects: ObjectService, meta: MetadataStore, owner: Owner): Promise<void> {
  const { bucket, q, et, enc, prefix, delimiter, max } = await listingRequest(ctx, objects);
  const token = q.get('continuation-token');
  const startAfter = q.get('start-after') ?? '';
  let after = startAfter;
  if (token !== null) {
    const decoded = Buffer.from(token, 'base64url').toString('utf8');
    if (token === '' || !decoded.startsWith('1:')) {
      throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', { ArgumentName: 'continuation-token' });
    }
    after = decoded.slice(2);
  }
  if (utf8Gt(startAfter, after)) after = startAfter;
  const r = await list(meta, bucket, prefix, delimiter, after, max);
  const nodes: XmlNode[] = [
    ['Name', bucket],
    ['Prefix', enc(prefix)],
    ['Delimiter', delimiter ? enc(delimiter) : undefined],
    ['MaxKeys', max],
    ['EncodingType', et ?? undefined],
    ['KeyCount', r.contents.length + r.prefixes.length],
    ['IsTruncated', r.truncated],
    ['ContinuationToken', token ?? undefined],
    ['NextContinuationToken', r.truncated && r.last !== undefined ? Buffer.from('1:' + r.last).toString('base64url') : undefined],
    ['StartAfter', q.has('start-after') ? enc(startAfter) : undefined],
    ...r.contents.map((o) => contentNode(o, enc, q.get('fetch-owner') === 'true' ? owner : undefined)),
    ...r.prefixes.map((p): XmlNode => ['CommonPrefixes', [['Prefix', enc(p)]]]),
  ];
  send(ctx, 200, xmlDocument('ListBucketResult', nodes));
}

export async function listObjectsV1(ctx: S3Context, objects: ObjectService, meta: MetadataStore, owner: Owner): Promise<void> {
  const { bucket, q, et, enc, prefix, delimiter, max } = await listingRequest(ctx, objects);
  const marker = q.get('marker') ?? '';
  const r = await list(meta, bucket, prefix, delimiter, marker, max);
  const nodes: XmlNode[] = [
    ['Name', bucket],
    ['Prefix', enc(prefix)],
    ['Marker', enc(marker)],
    ['NextMarker', r.truncated && delimiter && r.last !== undefined ? enc(r.last) : undefined],
    ['MaxKeys', max],
    ['Delimiter', delimiter ? enc(delimiter) : undefined],
    ['IsTruncated', r.truncated],
    ['EncodingType', et ?? undefined],
    ...r.contents.map((o) => contentNode(o, enc, owner)),
    ...r.prefixes.map((p): XmlNode => ['CommonPrefixes', [['Prefix', enc(p)]]]),
  ];
  send(ctx, 200, xmlDocument('ListBucketResult', nodes));
}
