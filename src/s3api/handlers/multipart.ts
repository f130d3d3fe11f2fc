// Multipart upload handlers: CreateMultipartUpload, UploadPart, UploadPartCopy,
// CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.
import { S3Error } from '../../shared/errors.ts';
import { checkCopySize, checkUploadSize, MAX_PARTS, type ObjectService } from '../../service/objects.ts';
import type { MetadataStore } from '../../storage/ports.ts';
import { checkCopyConditions, parseCopyRange } from '../conditions.ts';
import {
  announcedLength,
  contentMd5,
  customerKey,
  encryptionHeaders,
  hasCustomerKeyHeaders,
  header,
  partCustomerKey,
  readSmallBody,
  send,
  sourceCustomerKey,
  validateKey,
  writeAttributes,
  writeEncryption,
  type Owner,
  type S3Context,
} from '../request.ts';
import { isoDate, parseXml, xmlDocument, type XmlNode } from '../xml.ts';
import { copySource, etagOf } from './objects.ts';
import { taggingHeader, withTags } from './tagging.ts';
import { encodeName, parseMaxKeys } from './listing.ts';

/** S3 orders keys by their UTF-8 bytes (JavaScript's `<` compares UTF-16 code units). */
function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function partNumber(ctx: S3Context): number {
  const v = ctx.query.get('partNumber') ?? '';
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > MAX_PARTS) {
    throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', {
      ArgumentName: 'partNumber',
      ArgumentValue: v,
    });
  }
  return n;
}

function uploadId(ctx: S3Context): string {
  return ctx.query.get('uploadId') ?? '';
}

export async function createMultipartUpload(ctx: S3Context, objects: ObjectService): Promise<void> {
  const { bucket, key } = ctx.op as { bucket: string; key: string };
  validateKey(key);
  const encryption = writeEncryption(ctx);
  const alg = header(ctx, 'x-amz-checksum-algorithm')?.toUpperCase();
  if (alg !== undefined && !['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'].includes(alg)) {
    throw new S3Error('InvalidRequest', 'Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]');
  }
  const requestedSse = header(ctx, 'x-amz-server-side-encryption');
  const requestedKmsKeyId = header(ctx, 'x-amz-server-side-encryption-aws-kms-key-id');
  const { upload: u, encryption: sse } = await objects.createUpload(bucket, key, withTags(writeAttributes(ctx), taggingHeader(ctx)), {
    ...(alg ? { checksumAlgorithm: alg } : {}),
    ...(requestedSse !== undefined ? { requestedSse } : {}),
    ...(requestedKmsKeyId !== undefined ? { requestedKmsKeyId } : {}),
    ...(encryption ? { encryption } : {}),
    requester: ctx.requester,
  });
  send(
    ctx,
    200,
    xmlDocument('InitiateMultipartUploadResult', [
      ['Bucket', bucket],
      ['Key', key],
      ['UploadId', u.uploadId],
    ]),
    { ...encryptionHeaders(sse, true), ...(alg ? { 'x-amz-checksum-algorithm': alg } : {}) },
  );
}

export async function uploadPart(ctx: S3Context, objects: ObjectService): Promise<void> {
  const { bucket, key } = ctx.op as { bucket: string; key: string };
  const n = partNumber(ctx);
  const upload = await objects.getUpload(bucket, key, uploadId(ctx));
  const customer = partCustomerKey(ctx, upload);
  const length = announcedLength(ctx);
  checkUploadSize(length);
  const md5 = contentMd5(ctx);
  const part = await objects.uploadPart(upload, n, ctx.body(), length, {
    ...(md5 ? { contentMd5: md5 } : {}),
    signal: ctx.signal,
    requester: ctx.requester,
    ...(customer ? { customerKey: customer.key } : {}),
  });
  const cs = ctx.checksum();
  send(ctx, 200, undefined, {
    etag: `"${part.md5}"`,
    ...encryptionHeaders(objects.describeEncryption(upload.sse, customer?.keyMd5)),
    ...(cs ? { [`x-amz-checksum-${cs.algorithm.toLowerCase()}`]: cs.value } : {}),
  });
}

export async function uploadPartCopy(ctx: S3Context, objects: ObjectService): Promise<void> {
  const { bucket, key } = ctx.op as { bucket: string; key: string };
  const n = partNumber(ctx);
  const upload = await objects.getUpload(bucket, key, uploadId(ctx));
  const customer = partCustomerKey(ctx, upload);
  const src = copySource(ctx);
  const source = await objects.getObject(src.bucket, src.key);
  const sourceKey = sourceCustomerKey(ctx, source, true);
  objects.checkCustomerKey(source, sourceKey?.key);
  checkCopyConditions(ctx, source);
  const range = parseCopyRange(header(ctx, 'x-amz-copy-source-range'), source.size);
  const length = range ? range.end - range.start + 1 : source.size;
  checkCopySize(length);
  const plain = await objects.openPlaintext(source, range, ctx.requester, sourceKey?.key);
  let part: Awaited<ReturnType<ObjectService['uploadPart']>>;
  try {
    part = await objects.uploadPart(upload, n, plain, length, { signal: ctx.signal, requester: ctx.requester, ...(customer ? { customerKey: customer.key } : {}) });
  } finally {
    // Refused before it was read (a blocked bucket, the wrong key ...): release its file and key.
    plain.destroy();
  }
  send(
    ctx,
    200,
    xmlDocument('CopyPartResult', [['LastModified', isoDate(part.lastModified)], ['ETag', `"${part.md5}"`]]),
    encryptionHeaders(objects.describeEncryption(upload.sse, customer?.keyMd5)),
  );
}

/** `bucketUrl`: the bucket's URL in the request's addressing style (path or virtual-hosted). */
export async function completeMultipartUpload(ctx: S3Context, objects: ObjectService, bucketUrl: string): Promise<void> {
  const { bucket, key } = ctx.op as { bucket: string; key: string };
  const upload = await objects.getUpload(bucket, key, uploadId(ctx));
  // The SSE-C trio is optional here (AWS wants it only with checksums); when given it is checked.
  if (upload.sse.mode === 'SSE-C') {
    const given = customerKey(ctx, { write: true });
    if (given) objects.checkCustomerKey({ sse: upload.sse }, given.key);
  } else if (hasCustomerKeyHeaders(ctx)) throw new S3Error('InvalidRequest', 'The encryption parameters are not applicable to this object.');
  const body = await readSmallBody(ctx, 4 * 1024 * 1024);
  const doc = parseXml(body).CompleteMultipartUpload as { Part?: { PartNumber?: string; ETag?: string }[] } | undefined;
  if (!doc || typeof doc !== 'object') throw new S3Error('MalformedXML');
  const parts = (doc.Part ?? []).map((p) => {
    if (!p || typeof p.PartNumber !== 'string' || typeof p.ETag !== 'string' || !/^\d+$/.test(p.PartNumber.trim())) {
      throw new S3Error('MalformedXML');
    }
    return { partNumber: Number(p.PartNumber.trim()), etag: p.ETag };
  });
  const obj = await objects.completeUpload(upload, parts);
  send(
    ctx,
    200,
    xmlDocument('CompleteMultipartUploadResult', [
      ['Location', `${bucketUrl}/${encodeURIComponent(key).replace(/%2F/g, '/')}`],
      ['Bucket', bucket],
      ['Key', key],
      ['ETag', etagOf(obj)],
    ]),
    encryptionHeaders(objects.describeEncryption(obj.sse)),
  );
}

export async function abortMultipartUpload(ctx: S3Context, objects: ObjectService): Promise<void> {
  const { bucket, key } = ctx.op as { bucket: string; key: string };
  await objects.abortUpload(bucket, key, uploadId(ctx));
  send(ctx, 204);
}

function ownerNodes(owner: Owner): XmlNode[] {
  return [
    ['ID', owner.id],
    ['DisplayName', owner.displayName],
  ];
}

export async function listParts(ctx: S3Context, objects: ObjectService, meta: MetadataStore, owner: Owner): Promise<void> {
  const { bucket, key } = ctx.op as { bucket: string; key: string };
  const upload = await objects.getUpload(bucket, key, uploadId(ctx));
  const max = parseMaxKeys(ctx.query.get('max-parts'), 'max-parts');
  const markerText = ctx.query.get('part-number-marker') ?? '0';
  const marker = /^\d+$/.test(markerText) ? Number(markerText) : 0;
  const all = (await meta.listParts(upload.uploadId)).filter((p) => p.partNumber > marker);
  const page = all.slice(0, max);
  const truncated = all.length > page.length;
  const nodes: XmlNode[] = [
    ['Bucket', bucket],
    ['Key', key],
    ['UploadId', upload.uploadId],
    ['Initiator', ownerNodes(owner)],
    ['Owner', ownerNodes(owner)],
    ['StorageClass', 'STANDARD'],
    ['PartNumberMarker', marker],
    ['NextPartNumberMarker', page.length ? page[page.length - 1]!.partNumber : marker],
    ['MaxParts', max],
    ['IsTruncated', truncated],
    ...(upload.checksumAlgorithm ? ([['ChecksumAlgorithm', upload.checksumAlgorithm]] as XmlNode[]) : []),
  ];
  for (const p of page) {
    nodes.push(['Part', [['PartNumber', p.partNumber], ['LastModified', isoDate(p.lastModified)], ['ETag', `"${p.md5}"`], ['Size', p.plainSize]]]);
  }
  send(ctx, 200, xmlDocument('ListPartsResult', nodes));
}

export async function listMultipartUploads(ctx: S3Context, objects: ObjectService, meta: MetadataStore, owner: Owner): Promise<void> {
  const bucket = ctx.op.bucket!;
  await objects.requireBucket(bucket);
  const q = ctx.query;
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const keyMarker = q.get('key-marker') ?? '';
  const uploadIdMarker = q.get('upload-id-marker') ?? '';
  const max = parseMaxKeys(q.get('max-uploads'), 'max-uploads');
  const encodingType = q.get('encoding-type');
  const enc = (s: string) => encodeName(s, encodingType);
  const all = (await meta.listUploads(bucket)).filter(
    (u) =>
      u.key.startsWith(prefix) &&
      (keyMarker === '' || utf8Compare(u.key, keyMarker) > 0 || (u.key === keyMarker && uploadIdMarker !== '' && u.uploadId > uploadIdMarker)),
  );
  const entries: XmlNode[] = [];
  const prefixes = new Set<string>();
  let count = 0;
  let truncated = false;
  let nextKey = '';
  let nextUpload = '';
  for (const u of all) {
    if (delimiter) {
      const i = u.key.indexOf(delimiter, prefix.length);
      if (i >= 0) {
        const cp = u.key.slice(0, i + delimiter.length);
        if (prefixes.has(cp)) continue;
        if (count >= max) {
          truncated = true;
          break;
        }
        prefixes.add(cp);
        count++;
        nextKey = cp;
        continue;
      }
    }
    if (count >= max) {
      truncated = true;
      break;
    }
    count++;
    nextKey = u.key;
    nextUpload = u.uploadId;
    entries.push([
      'Upload',
      [
        ['Key', enc(u.key)],
        ['UploadId', u.uploadId],
        ['Initiator', ownerNodes(owner)],
        ['Owner', ownerNodes(owner)],
        ['StorageClass', 'STANDARD'],
        ['Initiated', isoDate(u.initiated)],
        ...(u.checksumAlgorithm ? ([['ChecksumAlgorithm', u.checksumAlgorithm]] as XmlNode[]) : []),
      ],
    ]);
  }
  const nodes: XmlNode[] = [
    ['Bucket', bucket],
    ['KeyMarker', enc(keyMarker)],
    ['UploadIdMarker', uploadIdMarker],
    ['NextKeyMarker', truncated ? enc(nextKey) : undefined],
    ['NextUploadIdMarker', truncated ? nextUpload : undefined],
    ['Prefix', enc(prefix)],
    ['Delimiter', delimiter ? enc(delimiter) : undefined],
    ['MaxUploads', max],
    ['IsTruncated', truncated],
    ...entries,
    ...[...prefixes].map((p): XmlNode => ['CommonPrefixes', [['Prefix', enc(p)]]]),
    ['EncodingType', encodingType ?? undefined],
  ];
  send(ctx, 200, xmlDocument('ListMultipartUploadsResult', nodes));
}
