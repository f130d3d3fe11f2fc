// Bucket handlers: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
// Get/Put/DeleteBucketEncryption (default encryption), GetBucketVersioning (never enabled).
import { S3Error } from '../../shared/errors.ts';
import type { MetadataStore } from '../../storage/ports.ts';
import { newBucketEncryption, type ObjectService } from '../../service/objects.ts';
import type { BucketEncryption } from '../../storage/ports.ts';
import { readCheckedBody, readSmallBody, requireIntegrityHeader, send, validBucketName, type Owner, type S3Context } from '../request.ts';
import { escapeXml, isoDate, parseXml, S3_NS, xmlDocument, type XmlNode } from '../xml.ts';

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

export async function createBucket(ctx: S3Context, meta: MetadataStore, region: string, allowSseC: boolean): Promise<void> {
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
  const encryption = newBucketEncryption(allowSseC);
  const created = await meta.createBucket({ name: bucket, createdAt: Date.now(), location: region, ...(encryption ? { encryption } : {}) });
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
  const b = await objects.requireBucket(ctx.op.bucket!);
  // A bucket never configured answers the SSE-S3 default: every object is encrypted at rest.
  const enc: BucketEncryption = b.encryption ?? { algorithm: 'AES256', bucketKeyEnabled: false };
  const rule: XmlNode[] = [
    ['ApplyServerSideEncryptionByDefault', [['SSEAlgorithm', enc.algorithm], ['KMSMasterKeyID', enc.kmsMasterKeyId]]],
    ['BucketKeyEnabled', enc.bucketKeyEnabled],
  ];
  if (enc.blockedEncryptionTypes) rule.push(['BlockedEncryptionTypes', enc.blockedEncryptionTypes.map((t): XmlNode => ['EncryptionType', t])]);
  send(ctx, 200, xmlDocument('ServerSideEncryptionConfiguration', [['Rule', rule]]));
}

const ENCRYPTION_TYPES = ['NONE', 'SSE-C'];

/** Parses a ServerSideEncryptionConfiguration document (one rule) as AWS validates it. */
export function parseEncryptionConfiguration(body: Buffer): BucketEncryption {
  const doc = parseXml(body).ServerSideEncryptionConfiguration as { Rule?: unknown[] } | undefined;
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.Rule) || doc.Rule.length !== 1) throw new S3Error('MalformedXML');
  const rule = doc.Rule[0] as {
    ApplyServerSideEncryptionByDefault?: { SSEAlgorithm?: unknown; KMSMasterKeyID?: unknown } | string;
    BucketKeyEnabled?: unknown;
    BlockedEncryptionTypes?: { EncryptionType?: unknown[] } | string;
  };
  if (!rule || typeof rule !== 'object') throw new S3Error('MalformedXML');
  const def = rule.ApplyServerSideEncryptionByDefault;
  if (def !== undefined && (typeof def !== 'object' || def === null)) throw new S3Error('MalformedXML');
  const algorithm = def === undefined ? 'AES256' : typeof def.SSEAlgorithm === 'string' ? def.SSEAlgorithm.trim() : undefined;
  if (algorithm === 'aws:kms:dsse') throw new S3Error('NotImplemented', 'Dual-layer server-side encryption with AWS KMS keys (DSSE-KMS) is not implemented.');
  if (algorithm !== 'AES256' && algorithm !== 'aws:kms') throw new S3Error('MalformedXML');
  let kmsMasterKeyId: string | undefined;
  if (typeof def === 'object' && def.KMSMasterKeyID !== undefined) {
    if (typeof def.KMSMasterKeyID !== 'string') throw new S3Error('MalformedXML');
    kmsMasterKeyId = def.KMSMasterKeyID.trim();
    if (algorithm !== 'aws:kms') {
      throw new S3Error('InvalidArgument', 'a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse', {
        ArgumentName: 'ApplyServerSideEncryptionByDefault',
      });
    }
    if (kmsMasterKeyId === '') kmsMasterKeyId = undefined;
  }
  let bucketKeyEnabled = false;
  if (rule.BucketKeyEnabled !== undefined) {
    const v = String(rule.BucketKeyEnabled).trim().toLowerCase();
    if (v !== 'true' && v !== 'false') throw new S3Error('MalformedXML');
    bucketKeyEnabled = v === 'true';
  }
  let blocked: string[] | undefined;
  if (rule.BlockedEncryptionTypes !== undefined) {
    const b = rule.BlockedEncryptionTypes;
    const types = typeof b === 'object' && b !== null ? (b.EncryptionType ?? []) : [];
    if (typeof b !== 'object' && String(b).trim() !== '') throw new S3Error('MalformedXML');
    blocked = types.map((t) => {
      const v = typeof t === 'string' ? t.trim() : '';
      if (!ENCRYPTION_TYPES.includes(v)) throw new S3Error('MalformedXML');
      return v;
    });
  }
  return { algorithm, ...(kmsMasterKeyId !== undefined ? { kmsMasterKeyId } : {}), bucketKeyEnabled, ...(blocked ? { blockedEncryptionTypes: blocked } : {}) };
}

export async function putBucketEncryption(ctx: S3Context, objects: ObjectService, meta: MetadataStore): Promise<void> {
  const bucket = ctx.op.bucket!;
  const current = await objects.requireBucket(bucket);
  requireIntegrityHeader(ctx);
  const body = await readCheckedBody(ctx, 64 * 1024);
  const enc = parseEncryptionConfiguration(body);
  // A configuration without BlockedEncryptionTypes keeps the bucket's block (it is never lifted by omission).
  if (enc.blockedEncryptionTypes === undefined && current.encryption?.blockedEncryptionTypes) enc.blockedEncryptionTypes = current.encryption.blockedEncryptionTypes;
  // As on AWS, the KMS key is not checked here: a bad key surfaces at the first upload.
  if (!(await meta.setBucketEncryption(bucket, enc))) throw new S3Error('NoSuchBucket', undefined, { BucketName: bucket });
  ctx.log.info({ bucket, algorithm: enc.algorithm, kmsKey: enc.kmsMasterKeyId, bucketKey: enc.bucketKeyEnabled }, 'bucket default encryption set');
  send(ctx, 200);
}

export async function deleteBucketEncryption(ctx: S3Context, objects: ObjectService, meta: MetadataStore): Promise<void> {
  const bucket = ctx.op.bucket!;
  const current = await objects.requireBucket(bucket);
  // Back to the SSE-S3 default (objects are never stored unencrypted); an SSE-C block stays.
  const blocked = current.encryption?.blockedEncryptionTypes?.filter((t) => t !== 'NONE');
  const rest: BucketEncryption | undefined = blocked?.length ? { algorithm: 'AES256', bucketKeyEnabled: false, blockedEncryptionTypes: blocked, implicit: true } : undefined;
  if (!(await meta.setBucketEncryption(bucket, rest))) throw new S3Error('NoSuchBucket', undefined, { BucketName: bucket });
  send(ctx, 204);
}

export async function getBucketVersioning(ctx: S3Context, objects: ObjectService): Promise<void> {
  await objects.requireBucket(ctx.op.bucket!);
  send(ctx, 200, xmlDocument('VersioningConfiguration', []));
}
