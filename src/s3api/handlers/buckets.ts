// Bucket handlers: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
// GetBucketEncryption (the SSE-S3 default), GetBucketVersioning (never enabled).
import { S3Error } from '../../shared/errors.ts';
import type { MetadataStore } from '../../storage/ports.ts';
import type { ObjectService } from '../../service/objects.ts';
import { readSmallBody, send, validBucketName, type Owner, type S3Context } from '../request.ts';
import { escapeXml, isoDate, parseXml, S3_NS, xmlDocument } from '../xml.ts';

export async function listBuckets(ctx: S3Context, meta: MetadataStore, owner: Owner, region: string): Promise<void> {
  const buckets = await meta.listBuckets();
  send(
    ctx,
    200,
    xmlDocument('ListAllMyBucketsResult', [
      [
        'Owner',
        [
          ['ID', owner.id],
          ['DisplayName', owner.displayName],
        ],
      ],
      [
        'Buckets',
        buckets.map((b) => [
          'Bucket',
          [
            ['Name', b.name],
            ['CreationDate', isoDate(b.createdAt)],
            ['BucketRegion', region],
          ],
        ]),
      ],
    ]),
  );
}

export async function createBucket(ctx: S3Context, meta: MetadataStore, region: string): Promise<void> {
  const bucket = ctx.op.bucket!;
  if (!validBucketName(bucket)) throw new S3Error('InvalidBucketName', undefined, { BucketName: bucket });
  const body = await readSmallBody(ctx, 64 * 1024);
  let location = '';
  if (body.length > 0) {
    const doc = parseXml(body).CreateBucketConfiguration as Record<string, unknown> | undefined | '';
    if (doc === undefined) throw new S3Error('MalformedXML');
    if (doc && typeof doc === 'object' && typeof doc.LocationConstraint === 'string') location = doc.LocationConstraint.trim();
  }
  if (location !== '' && location !== region) {
    if (region === 'us-east-1' && location === 'us-east-1') {
      throw new S3Error('InvalidLocationConstraint', undefined, { LocationConstraint: location });
    }
    throw new S3Error('IllegalLocationConstraintException', `The ${location} location constraint is incompatible for the region specific endpoint this request was sent to.`);
  }
  if (location === '' && region !== 'us-east-1') {
    throw new S3Error('IllegalLocationConstraintException');
  }
  const created = await meta.createBucket({ name: bucket, createdAt: Date.now(), location: region });
  if (!created) throw new S3Error('BucketAlreadyOwnedByYou', undefined, { BucketName: bucket });
  send(ctx, 200, undefined, { location: `/${bucket}` });
}

export async function headBucket(ctx: S3Context, objects: ObjectService, region: string): Promise<void> {
  await objects.requireBucket(ctx.op.bucket!);
  send(ctx, 200, undefined, { 'x-amz-bucket-region': region, 'x-amz-access-point-alias': 'false' });
}

export async function deleteBucket(ctx: S3Context, meta: MetadataStore): Promise<void> {
  const bucket = ctx.op.bucket!;
  const r = await meta.deleteBucket(bucket);
  if (r === 'missing') throw new S3Error('NoSuchBucket', undefined, { BucketName: bucket });
  if (r === 'not-empty') throw new S3Error('BucketNotEmpty', undefined, { BucketName: bucket });
  send(ctx, 204);
}

export async function getBucketLocation(ctx: S3Context, objects: ObjectService, region: string): Promise<void> {
  await objects.requireBucket(ctx.op.bucket!);
  const value = region === 'us-east-1' ? '' : escapeXml(region);
  send(ctx, 200, `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="${S3_NS}">${value}</LocationConstraint>`);
}

export async function getBucketEncryption(ctx: S3Context, objects: ObjectService): Promise<void> {
  await objects.requireBucket(ctx.op.bucket!);
  send(
    ctx,
    200,
    xmlDocument('ServerSideEncryptionConfiguration', [
      [
        'Rule',
        [
          ['ApplyServerSideEncryptionByDefault', [['SSEAlgorithm', 'AES256']]],
          ['BucketKeyEnabled', false],
        ],
      ],
    ]),
  );
}

export async function getBucketVersioning(ctx: S3Context, objects: ObjectService): Promise<void> {
  await objects.requireBucket(ctx.op.bucket!);
  send(ctx, 200, xmlDocument('VersioningConfiguration', []));
}
