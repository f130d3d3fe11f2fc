// Bucket policy handlers: PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy,
// GetBucketPolicyStatus. Documents are validated by the policy module (MalformedPolicy with
// what is wrong and where); a refused document leaves the previous policy in force.
import type { ObjectService } from '../../service/objects.ts';
import { encryptionHeaderRequirements, isPublicPolicy, type PolicyService } from '../../service/policies.ts';
import { S3Error } from '../../shared/errors.ts';
import { readCheckedBody, send, type S3Context } from '../request.ts';
import { xmlDocument } from '../xml.ts';

/** Bodies are read up to this size; the policy module then enforces the 20 KB policy limit. */
const BODY_LIMIT = 1024 * 1024;

export async function putBucketPolicy(ctx: S3Context, objects: ObjectService, policies: PolicyService): Promise<void> {
  const bucket = ctx.op.bucket!;
  await objects.requireBucket(bucket);
  const body = await readCheckedBody(ctx, BODY_LIMIT);
  if (body.length === 0) throw new S3Error('MalformedPolicy', 'Policies must be valid JSON and the first byte must be \'{\': the request body is empty');
  const policy = await policies.putBucketPolicy(bucket, body.toString('utf8'));
  const requiring = encryptionHeaderRequirements(policy);
  if (requiring.length) {
    ctx.log.warn(
      { bucket, statements: requiring.map((s) => s.sid ?? s.index) },
      'the bucket policy denies uploads without x-amz-server-side-encryption: clients relying on default encryption will be refused',
    );
  }
  send(ctx, 204);
}

export async function getBucketPolicy(ctx: S3Context, objects: ObjectService, policies: PolicyService): Promise<void> {
  const bucket = ctx.op.bucket!;
  await objects.requireBucket(bucket);
  const text = await policies.getBucketPolicyText(bucket);
  if (text === undefined) throw new S3Error('NoSuchBucketPolicy', undefined, { BucketName: bucket });
  send(ctx, 200, text, { 'content-type': 'application/json' });
}

export async function deleteBucketPolicy(ctx: S3Context, policies: PolicyService): Promise<void> {
  const bucket = ctx.op.bucket!;
  if (!(await policies.deleteBucketPolicy(bucket))) throw new S3Error('NoSuchBucket', undefined, { BucketName: bucket });
  send(ctx, 204);
}

export async function getBucketPolicyStatus(ctx: S3Context, objects: ObjectService, policies: PolicyService): Promise<void> {
  const bucket = ctx.op.bucket!;
  await objects.requireBucket(bucket);
  const policy = await policies.bucketPolicy(bucket);
  if (!policy) throw new S3Error('NoSuchBucketPolicy', undefined, { BucketName: bucket });
  send(ctx, 200, xmlDocument('PolicyStatus', [['IsPublic', isPublicPolicy(policy)]]));
}
