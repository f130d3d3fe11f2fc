// Object handlers: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject.
import { S3Error } from '../../shared/errors.ts';
import type { ObjectRecord } from '../../storage/ports.ts';
import { checkCopySize, checkUploadSize, hasConfiguredEncryption, type ObjectService } from '../../service/objects.ts';
import type { PlainRange, PlainWindow, PlainWindows } from '../../service/streams.ts';
import { checkGetConditions, checkCopyConditions, parseRange } from '../conditions.ts';
import {
  announcedLength,
  contentMd5,
  encryptionHeaders,
  header,
  readEncryption,
  readCheckedBody,
  requireIntegrityHeader,
  sourceCustomerKey,
  send,
  validateKey,
  writeAttributes,
  writeEncryption,
  type S3Context,
} from '../request.ts';
import { httpDate, isoDate, parseXml, xmlDocument, type XmlNode } from '../xml.ts';
import { taggingCountHeader, taggingHeader, withTags } from './tagging.ts';

export function etagOf(o: { etag: string }): string {
  return `"${o.etag}"`;
}

export async function putObject(ctx: S3Context, objects: ObjectService): Promise<void> {
  const { bucket, key } = ctx.op as { bucket: string; key: string };
  validateKey(key);
  const encryption = writeEncryption(ctx);
  const length = announcedLength(ctx);
  checkUploadSize(length);
  const md5 = contentMd5(ctx);
  const attrs = withTags(writeAttributes(ctx), taggingHeader(ctx));
  const { object: obj, encryption: sse } = await objects.putObject({
    bucket,
    key,
    body: ctx.body(),
    length,
    ...(md5 ? { contentMd5: md5 } : {}),
    ...attrs,
    signal: ctx.signal,
    checksum: () => ctx.checksum(),
    ...(encryption ? { encryption } : {}),
    requester: ctx.requester,
  });
  send(ctx, 200, undefined, { etag: etagOf(obj), ...encryptionHeaders(sse, true), ...checksumHeaders(obj) });
}

function checksumHeaders(obj: ObjectRecord): Record<string, string> {
  return obj.checksum ? { [`x-amz-checksum-${obj.checksum.algorithm.toLowerCase()}`]: obj.checksum.value } : {};
}

/** Response headers describing a stored object (GET and HEAD). */
function objectHeaders(ctx: S3Context, obj: ObjectRecord, objects: ObjectService, customerKeyMd5?: string): Record<string, string | number> {
  const h: Record<string, string | number> = {
    'last-modified': httpDate(obj.lastModified),
    etag: etagOf(obj),
    'content-type': obj.contentType,
    'accept-ranges': 'bytes',
    ...encryptionHeaders(objects.describeEncryption(obj.sse, customerKeyMd5)),
    ...taggingCountHeader(obj),
  };
  for (const [k, v] of Object.entries(obj.headers)) h[k] = v;
  for (const [k, v] of Object.entries(obj.userMetadata)) h[`x-amz-meta-${k}`] = v;
  // response-* overrides (signed requests only; s3api/authz.ts refuses them on anonymous ones)
  const overrides: [string, string][] = [
    ['response-content-type', 'content-type'],
    ['response-content-language', 'content-language'],
    ['response-expires', 'expires'],
    ['response-cache-control', 'cache-control'],
    ['response-content-disposition', 'content-disposition'],
    ['response-content-encoding', 'content-encoding'],
  ];
  for (const [q, name] of overrides) {
    const v = ctx.query.get(q);
    if (v !== null) h[name] = v;
  }
  return h;
}

/** Resolves partNumber= to a plaintext range of that part. */
function partRange(ctx: S3Context, obj: ObjectRecord): { range?: PlainRange; partsCount?: number } {
  const pn = ctx.query.get('partNumber');
  if (pn === null) return {};
  const n = Number(pn);
  if (!/^\d+$/.test(pn) || n < 1 || n > 10000) {
    throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', { ArgumentName: 'partNumber', ArgumentValue: pn });
  }
  if (obj.partsCount === 0) {
    if (n !== 1) throw new S3Error('InvalidPartNumber');
    return {};
  }
  if (n > obj.streams.length) throw new S3Error('InvalidPartNumber', undefined, { PartNumberRequested: n, ActualPartCount: obj.streams.length });
  let start = 0;
  for (let i = 0; i < n - 1; i++) start += obj.streams[i]!.plainSize;
  const size = obj.streams[n - 1]!.plainSize;
  return { range: { start, end: start + size - 1 }, partsCount: obj.partsCount };
}

export async function getObject(ctx: S3Context, objects: ObjectService, head: boolean): Promise<void> {
  const { bucket, key } = ctx.op as { bucket: string; key: string };
  const obj = await objects.getObject(bucket, key);
  const customer = readEncryption(ctx, obj);
  // An SSE-C object's key is checked first, for HEAD too (403 when it is not the object's).
  objects.checkCustomerKey(obj, customer?.key);
  const cond = checkGetConditions(ctx, obj);
  if (cond === 'not-modified') {
    send(ctx, 304, undefined, { etag: etagOf(obj), 'last-modified': httpDate(obj.lastModified) });
    return;
  }
  const headers = objectHeaders(ctx, obj, objects, customer?.keyMd5);
  const part = partRange(ctx, obj);
  let range: PlainRange | undefined = part.range;
  if (part.partsCount !== undefined) headers['x-amz-mp-parts-count'] = part.partsCount;
  if (!range) {
    const r = parseRange(header(ctx, 'range'), obj.size);
    if (r === 'unsatisfiable') {
      throw new S3Error('InvalidRange', undefined, { RangeRequested: header(ctx, 'range'), ActualObjectSize: obj.size }, { 'content-range': `bytes */${obj.size}` });
    }
    range = r;
  }
  // A full-object checksum describes the whole object only, so ranged reads do not carry it.
  if (!range && header(ctx, 'x-amz-checksum-mode')?.toUpperCase() === 'ENABLED' && obj.checksum) {
    // An SSE-KMS object's checksum needs kms:Decrypt, as AWS (a GET decrypts anyway, below).
    if (head) await objects.checkDecryptable(obj, ctx.requester);
    Object.assign(headers, checksumHeaders(obj));
  }
  let status = 200;
  let length = obj.size;
  if (range) {
    status = 206;
    length = range.end - range.start + 1;
    headers['content-range'] = `bytes ${range.start}-${range.end}/${obj.size}`;
  }
  headers['content-length'] = length;
  if (head) {
    send(ctx, status, undefined, headers);
    return;
  }
  // A small object kept inline: headers and body in one write.
  const small = await objects.readInlinePlaintext(obj, range, ctx.requester, customer?.key);
  if (small) {
    send(ctx, status, small, headers);
    return;
  }
  const windows = await objects.openPlaintextWindows(obj, range, ctx.requester, customer?.key);
  await streamOut(ctx, status, headers, windows);
}

/** Windows this large, or larger, are not joined with the response header over TLS. */
const SEPARATE_HEADER_MIN = 64 * 1024;

/**
 * Sends plaintext windows straight from the memory they were decrypted into, releasing each once
 * the socket has taken it. The first window (verified segments) is awaited before the status
 * line goes out, so damage found there is a clean 500; later damage aborts the connection, so
 * a client sees an error, never wrong bytes.
 */
async function streamOut(ctx: S3Context, status: number, headers: Record<string, string | number>, windows: PlainWindows): Promise<void> {
  const res = ctx.res;
  // Windows handed to the socket and not yet released: a closed connection may never call
  // their write callbacks, so 'close' (when the socket no longer touches them) releases the rest.
  const unsent = new Set<PlainWindow>();
  const releaseAll = () => {
    for (const w of unsent) w.release();
    unsent.clear();
  };
  res.once('close', releaseAll);
  let waitDrain: (() => void) | undefined;
  const wake = () => waitDrain?.();
  res.on('drain', wake);
  res.once('close', wake);
  try {
    let r = await windows.next();
    res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    // Over TLS, a write of the header and a window together is copied whole into one buffer
    // before encryption (node's TLSWrap joins the pieces of a writev); the header alone first
    // spares a large window that copy.
    if (!r.done && r.value.data.length >= SEPARATE_HEADER_MIN && (ctx.req.socket as { encrypted?: boolean }).encrypted) res.flushHeaders();
    while (!r.done) {
      const w = r.value;
      if (res.destroyed) {
        w.release();
        break;
      }
      unsent.add(w);
      const more = res.write(w.data, () => {
        unsent.delete(w);
        w.release();
      });
      if (!more && !res.destroyed) await new Promise<void>((resolve) => (waitDrain = resolve));
      waitDrain = undefined;
      if (res.destroyed) break;
      r = await windows.next();
    }
    if (!res.destroyed) res.end();
  } finally {
    res.off('drain', wake);
    // Stops reading ahead and wipes the key (no-op when the windows ran out).
    await windows.return(undefined);
  }
}

export async function deleteObject(ctx: S3Context, objects: ObjectService): Promise<void> {
  const { bucket, key } = ctx.op as { bucket: string; key: string };
  await objects.deleteObject(bucket, key);
  send(ctx, 204);
}

/** `allowed`: the per-key authorization (s3:DeleteObject); a refused key is reported as AccessDenied. */
export async function deleteObjects(ctx: S3Context, objects: ObjectService, allowed: (key: string) => Promise<boolean> = async () => true): Promise<void> {
  const bucket = ctx.op.bucket!;
  await objects.requireBucket(bucket);
  requireIntegrityHeader(ctx);
  const body = await readCheckedBody(ctx, 2 * 1024 * 1024);
  const doc = parseXml(body).Delete as { Quiet?: string; Object?: { Key?: string; VersionId?: string }[] } | undefined;
  if (!doc || typeof doc !== 'object') throw new S3Error('MalformedXML');
  const list = doc.Object ?? [];
  if (list.length === 0 || list.length > 1000) throw new S3Error('MalformedXML');
  const quiet = String(doc.Quiet ?? 'false').trim().toLowerCase() === 'true';
  const out: XmlNode[] = [];
  for (const o of list) {
    const key = typeof o?.Key === 'string' ? o.Key : undefined;
    if (key === undefined) throw new S3Error('MalformedXML');
    try {
      validateKey(key);
      if (o.VersionId !== undefined && o.VersionId !== 'null') throw new S3Error('NoSuchVersion');
      if (!(await allowed(key))) throw new S3Error('AccessDenied');
      await objects.deleteObject(bucket, key);
      if (!quiet) out.push(['Deleted', [['Key', key]]]);
    } catch (e) {
      const err = e instanceof S3Error ? e : new S3Error('InternalError');
      if (!(e instanceof S3Error)) ctx.log.error({ err: e }, 'delete failed');
      out.push(['Error', [['Key', key], ['Code', err.code], ['Message', err.message]]]);
    }
  }
  send(ctx, 200, xmlDocument('DeleteResult', out));
}

/** Parses x-amz-copy-source: "[/]bucket/key[?versionId=...]", URL-encoded. */
export function copySource(ctx: S3Context): { bucket: string; key: string } {
  const raw = header(ctx, 'x-amz-copy-source') ?? '';
  const [pathPart, queryPart] = raw.split('?', 2) as [string, string | undefined];
  let path: string;
  try {
    path = decodeURIComponent(pathPart);
  } catch {
    throw new S3Error('InvalidArgument', 'Invalid copy source encoding', { ArgumentName: 'x-amz-copy-source' });
  }
  if (path.startsWith('/')) path = path.slice(1);
  const slash = path.indexOf('/');
  if (slash <= 0 || slash === path.length - 1) {
    throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey', { ArgumentName: 'x-amz-copy-source', ArgumentValue: raw });
  }
  if (queryPart) {
    const v = new URLSearchParams(queryPart).get('versionId');
    if (v !== null && v !== 'null') throw new S3Error('NoSuchVersion', undefined, { VersionId: v });
  }
  return { bucket: path.slice(0, slash), key: path.slice(slash + 1) };
}

export async function copyObject(ctx: S3Context, objects: ObjectService): Promise<void> {
  const { bucket, key } = ctx.op as { bucket: string; key: string };
  validateKey(key);
  const src = copySource(ctx);
  const encryption = writeEncryption(ctx);
  const source = await objects.getObject(src.bucket, src.key);
  const sourceKey = sourceCustomerKey(ctx, source, true);
  objects.checkCustomerKey(source, sourceKey?.key);
  checkCopyConditions(ctx, source);
  const directive = (header(ctx, 'x-amz-metadata-directive') ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') {
    throw new S3Error('InvalidArgument', 'Unknown metadata directive.', { ArgumentName: 'x-amz-metadata-directive', ArgumentValue: directive });
  }
  const tagDirective = (header(ctx, 'x-amz-tagging-directive') ?? 'COPY').toUpperCase();
  if (tagDirective !== 'COPY' && tagDirective !== 'REPLACE') {
    throw new S3Error('InvalidArgument', 'Unknown tagging directive.', { ArgumentName: 'x-amz-tagging-directive', ArgumentValue: tagDirective });
  }
  // COPY keeps the source's tags (x-amz-tagging is ignored, as on AWS); REPLACE takes the header's.
  const tags = tagDirective === 'REPLACE' ? (taggingHeader(ctx) ?? []) : (source.tags ?? []);
  if (
    src.bucket === bucket &&
    src.key === key &&
    directive === 'COPY' &&
    encryption === undefined &&
    sourceKey === undefined &&
    header(ctx, 'x-amz-storage-class') === undefined &&
    header(ctx, 'x-amz-website-redirect-location') === undefined &&
    // An explicitly configured bucket default makes a copy in place legal (it may re-encrypt).
    !hasConfiguredEncryption(await objects.requireBucket(bucket))
  ) {
    throw new S3Error(
      'InvalidRequest',
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  checkCopySize(source.size);
  const attrs =
    directive === 'REPLACE'
      ? writeAttributes(ctx)
      : { contentType: source.contentType, headers: source.headers, userMetadata: source.userMetadata };
  const { object: obj, encryption: sse } = await objects.copyObject({
    source,
    bucket,
    key,
    ...attrs,
    tags,
    signal: ctx.signal,
    ...(encryption ? { encryption } : {}),
    requester: ctx.requester,
    ...(sourceKey ? { sourceCustomerKey: sourceKey.key } : {}),
  });
  send(ctx, 200, xmlDocument('CopyObjectResult', [['LastModified', isoDate(obj.lastModified)], ['ETag', etagOf(obj)]]), encryptionHeaders(sse, true));
}
