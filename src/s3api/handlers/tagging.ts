// Object tagging: GetObjectTagging, PutObjectTagging, DeleteObjectTagging, and the x-amz-tagging
// header of PutObject, CopyObject (with x-amz-tagging-directive) and CreateMultipartUpload.
// AWS's rules: at most 10 tags per object, keys unique, 1-128 characters, values 0-256; letters,
// digits, spaces and + - = . _ : / @; no key starting with "aws:". The AWS CLI's `s3 cp` between
// buckets reads a large source's tags and sets them on the copy, so it needs all three calls.
import type { ObjectService } from '../../service/objects.ts';
import { S3Error } from '../../shared/errors.ts';
import type { ObjectRecord, ObjectTag } from '../../storage/ports.ts';
import { header, readCheckedBody, requireIntegrityHeader, send, type S3Context } from '../request.ts';
import { parseXml, xmlDocument } from '../xml.ts';

export const MAX_OBJECT_TAGS = 10;
const MAX_KEY_CHARS = 128;
const MAX_VALUE_CHARS = 256;
/** Unicode letters, digits and spaces, and + - = . _ : / @ (as AWS documents for tags). */
const TAG_CHARS = /^[\p{L}\p{N}\p{Z}+\-=._:/@]*$/u;

function invalidTag(message: string): S3Error {
  return new S3Error('InvalidTag', message);
}

/** Checks one tag set as AWS does: each tag in turn, then their number. */
export function checkTags(tags: ObjectTag[]): ObjectTag[] {
  const seen = new Set<string>();
  for (const { key, value } of tags) {
    const keyChars = [...key].length;
    if (keyChars > MAX_KEY_CHARS) throw invalidTag(`The TagKey you have provided is too long, max ${MAX_KEY_CHARS}`);
    if (keyChars === 0 || !TAG_CHARS.test(key)) throw invalidTag('The TagKey you have provided is invalid');
    if (key.toLowerCase().startsWith('aws:')) throw invalidTag('Your TagKey cannot be prefixed with aws:');
    if ([...value].length > MAX_VALUE_CHARS) throw invalidTag(`The TagValue you have provided is too long, max ${MAX_VALUE_CHARS}`);
    if (!TAG_CHARS.test(value)) throw invalidTag('The TagValue you have provided is invalid');
    if (seen.has(key)) throw invalidTag('Cannot provide multiple Tags with the same key');
    seen.add(key);
  }
  if (tags.length > MAX_OBJECT_TAGS) throw new S3Error('BadRequest', `Object tags cannot be greater than ${MAX_OBJECT_TAGS}`);
  return tags;
}

/**
 * The x-amz-tagging header (URL-encoded query parameters: `k1=v1&k2=v2`), checked; undefined
 * when the request has none.
 */
export function taggingHeader(ctx: S3Context): ObjectTag[] | undefined {
  const raw = header(ctx, 'x-amz-tagging');
  if (raw === undefined) return undefined;
  const tags: ObjectTag[] = [];
  const bad = () =>
    new S3Error('InvalidArgument', "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.", {
      ArgumentName: 'x-amz-tagging',
      ArgumentValue: raw,
    });
  for (const pair of raw.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    let key: string;
    let value: string;
    try {
      const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
      key = decode(eq < 0 ? pair : pair.slice(0, eq));
      value = eq < 0 ? '' : decode(pair.slice(eq + 1));
    } catch {
      throw bad();
    }
    if (tags.some((t) => t.key === key)) throw bad();
    tags.push({ key, value });
  }
  return checkTags(tags);
}

/** Write attributes with the request's tags (when it has any). */
export function withTags<T extends object>(attrs: T, tags: ObjectTag[] | undefined): T & { tags?: ObjectTag[] } {
  return tags?.length ? { ...attrs, tags } : attrs;
}

/** GET and HEAD answer how many tags an object has (when it has any). */
export function taggingCountHeader(obj: ObjectRecord): Record<string, number> {
  return obj.tags?.length ? { 'x-amz-tagging-count': obj.tags.length } : {};
}

function tagSetDocument(tags: ObjectTag[]): string {
  return xmlDocument('Tagging', [['TagSet', tags.map((t): [string, [string, string][]] => ['Tag', [['Key', t.key], ['Value', t.value]]])]]);
}

/** A Tagging document's tags: MalformedXML unless every Tag has a Key and a Value. */
export function parseTagging(body: Buffer): ObjectTag[] {
  const doc = parseXml(body).Tagging as { TagSet?: { Tag?: unknown[] } | '' } | undefined;
  if (doc === undefined || typeof doc !== 'object' || doc.TagSet === undefined) throw new S3Error('MalformedXML');
  const list = doc.TagSet === '' ? [] : (doc.TagSet.Tag ?? []);
  const tags: ObjectTag[] = [];
  for (const t of list) {
    const { Key: key, Value: value } = (t ?? {}) as { Key?: unknown; Value?: unknown };
    if (typeof key !== 'string' || typeof value !== 'string') throw new S3Error('MalformedXML');
    tags.push({ key, value });
  }
  return checkTags(tags);
}

export async function getObjectTagging(ctx: S3Context, objects: ObjectService): Promise<void> {
  const { bucket, key } = ctx.op as { bucket: string; key: string };
  const obj = await objects.getObject(bucket, key);
  send(ctx, 200, tagSetDocument(obj.tags ?? []));
}

export async function putObjectTagging(ctx: S3Context, objects: ObjectService): Promise<void> {
  const { bucket, key } = ctx.op as { bucket: string; key: string };
  requireIntegrityHeader(ctx);
  const body = await readCheckedBody(ctx, 64 * 1024);
  await objects.setTags(bucket, key, parseTagging(body));
  send(ctx, 200);
}

export async function deleteObjectTagging(ctx: S3Context, objects: ObjectService): Promise<void> {
  const { bucket, key } = ctx.op as { bucket: string; key: string };
  await objects.setTags(bucket, key, undefined);
  send(ctx, 204);
}
