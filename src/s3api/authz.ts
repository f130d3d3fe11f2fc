// Authorization of S3 requests: each operation's IAM action and resource ARN (one table), the
// request-context condition keys taken from the HTTP request, and the checks app.ts runs after
// authentication and before dispatch. Denials are logged with the statement that decided.
import type { TLSSocket } from 'node:tls';
import { signatureV4Context, type AuthResult } from '../auth/index.ts';
import { conditionKeys, tlsVersionOf, type AccessResult, type Authorizer, type RequestFacts } from '../service/authorization.ts';
import type { Principal } from '../service/identities.ts';
import { bucketArn, objectArn } from '../service/policies.ts';
import { S3Error } from '../shared/errors.ts';
import type { MetadataStore } from '../storage/ports.ts';
import { copySource } from './handlers/objects.ts';
import type { S3Context } from './request.ts';
import type { OperationName } from './router.ts';

export interface OperationAccess {
  /** The IAM action the operation needs. */
  action: string;
  /** What the resource ARN names: the account's buckets, the bucket, or the object. */
  resource: 'service' | 'bucket' | 'object';
  /** CopyObject, UploadPartCopy: also this action on the copy source object. */
  sourceAction?: string;
  /** DeleteObjects: the action is checked for each key, and refusals reported per key. */
  perKey?: boolean;
  /** Multipart steps after CreateMultipartUpload: SSE keys come from the upload's record. */
  recordedSse?: boolean;
  /** Listings: s3:prefix, s3:delimiter (and s3:max-keys for ListBucket) are set. */
  listing?: 'keys' | 'uploads';
  /** Writes that may carry x-amz-tagging: with it, s3:PutObjectTagging is needed too (as AWS). */
  tagged?: boolean;
}

/** Every S3 operation Coffer serves, with the IAM action AWS documents for it. */
export const OPERATION_ACCESS: Record<OperationName, OperationAccess> = {
  ListBuckets: { action: 's3:ListAllMyBuckets', resource: 'service' },
  CreateBucket: { action: 's3:CreateBucket', resource: 'bucket' },
  HeadBucket: { action: 's3:ListBucket', resource: 'bucket' },
  DeleteBucket: { action: 's3:DeleteBucket', resource: 'bucket' },
  GetBucketLocation: { action: 's3:GetBucketLocation', resource: 'bucket' },
  GetBucketEncryption: { action: 's3:GetEncryptionConfiguration', resource: 'bucket' },
  PutBucketEncryption: { action: 's3:PutEncryptionConfiguration', resource: 'bucket' },
  DeleteBucketEncryption: { action: 's3:PutEncryptionConfiguration', resource: 'bucket' },
  GetBucketVersioning: { action: 's3:GetBucketVersioning', resource: 'bucket' },
  GetBucketPolicy: { action: 's3:GetBucketPolicy', resource: 'bucket' },
  PutBucketPolicy: { action: 's3:PutBucketPolicy', resource: 'bucket' },
  DeleteBucketPolicy: { action: 's3:DeleteBucketPolicy', resource: 'bucket' },
  GetBucketPolicyStatus: { action: 's3:GetBucketPolicyStatus', resource: 'bucket' },
  ListObjects: { action: 's3:ListBucket', resource: 'bucket', listing: 'keys' },
  ListObjectsV2: { action: 's3:ListBucket', resource: 'bucket', listing: 'keys' },
  ListMultipartUploads: { action: 's3:ListBucketMultipartUploads', resource: 'bucket', listing: 'uploads' },
  DeleteObjects: { action: 's3:DeleteObject', resource: 'object', perKey: true },
  PutObject: { action: 's3:PutObject', resource: 'object', tagged: true },
  CopyObject: { action: 's3:PutObject', resource: 'object', sourceAction: 's3:GetObject', tagged: true },
  GetObject: { action: 's3:GetObject', resource: 'object' },
  HeadObject: { action: 's3:GetObject', resource: 'object' },
  DeleteObject: { action: 's3:DeleteObject', resource: 'object' },
  CreateMultipartUpload: { action: 's3:PutObject', resource: 'object', tagged: true },
  UploadPart: { action: 's3:PutObject', resource: 'object', recordedSse: true },
  UploadPartCopy: { action: 's3:PutObject', resource: 'object', sourceAction: 's3:GetObject', recordedSse: true },
  CompleteMultipartUpload: { action: 's3:PutObject', resource: 'object', recordedSse: true },
  AbortMultipartUpload: { action: 's3:AbortMultipartUpload', resource: 'object' },
  ListParts: { action: 's3:ListMultipartUploadParts', resource: 'object' },
  GetObjectTagging: { action: 's3:GetObjectTagging', resource: 'object' },
  PutObjectTagging: { action: 's3:PutObjectTagging', resource: 'object' },
  DeleteObjectTagging: { action: 's3:DeleteObjectTagging', resource: 'object' },
};

export function resourceArn(access: OperationAccess, bucket: string | undefined, key: string | undefined): string {
  if (access.resource === 'service' || bucket === undefined) return 'arn:aws:s3:::*';
  if (access.resource === 'bucket' || key === undefined) return bucketArn(bucket);
  return objectArn(bucket, key);
}

/** The principal a request acts as: the signer's (presigned URLs too), or anonymous. */
export function principalOf(auth: AuthResult, anonymous: Principal): Principal {
  return auth.kind === 'signed' ? (auth.credential.principal as Principal) : anonymous;
}

function flatHeaders(ctx: S3Context): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(ctx.req.headers)) out[k] = Array.isArray(v) ? v.join(',') : v;
  return out;
}

/** The request facts the condition keys are filled from. */
export function requestFacts(ctx: S3Context, auth: AuthResult, at: Date, access: OperationAccess): RequestFacts {
  const sig = signatureV4Context(auth, at);
  const q = ctx.query;
  const socket = ctx.req.socket as Partial<TLSSocket>;
  const tlsVersion = ctx.secure && typeof socket.getProtocol === 'function' ? tlsVersionOf(socket.getProtocol()) : undefined;
  return {
    secure: ctx.secure,
    ...(ctx.req.socket.remoteAddress ? { sourceIp: ctx.req.socket.remoteAddress } : {}),
    headers: flatHeaders(ctx),
    ...(tlsVersion ? { tlsVersion } : {}),
    ...(sig
      ? { signature: { signatureVersion: sig.signatureVersion, authType: sig.authType, contentSha256: sig.contentSha256, ...(sig.signatureAgeMs !== undefined ? { ageMs: sig.signatureAgeMs } : {}) } }
      : {}),
    ...(access.listing
      ? { listing: { prefix: q.get('prefix'), delimiter: q.get('delimiter'), ...(access.listing === 'keys' ? { maxKeys: q.get('max-keys') } : {}) } }
      : {}),
    now: at,
  };
}

export interface AuthorizeDeps {
  authorizer: Authorizer;
  meta: MetadataStore;
}

/** Checks one action on one resource; logs and throws AccessDenied when refused. */
async function require(
  deps: AuthorizeDeps,
  ctx: S3Context,
  principal: Principal,
  action: string,
  resource: string,
  bucket: string | undefined,
  keys: ReturnType<typeof conditionKeys>,
): Promise<AccessResult> {
  const r = await deps.authorizer.check({ principal, action, resource, ...(bucket !== undefined ? { bucket } : {}), conditionKeys: keys });
  if (!r.allowed) {
    logDenial(ctx, principal, action, resource, r);
    throw new S3Error('AccessDenied');
  }
  if (r.ownerOverride) ctx.log.warn({ op: ctx.op.name, bucket, reason: r.explanation }, 'bucket policy denies its owner the policy API; allowed');
  return r;
}

function logDenial(ctx: S3Context, principal: Principal, action: string, resource: string, r: AccessResult): void {
  const fields = { op: ctx.op.name, principal: principal.type === 'Anonymous' ? 'anonymous' : principal.arn, action, resource, reason: r.explanation };
  if (principal.type === 'Anonymous') ctx.log.debug(fields, 'access denied');
  else ctx.log.info(fields, 'access denied');
}

/**
 * Authorizes the request in `ctx` (after authentication, before dispatch). Returns, for
 * DeleteObjects, the per-key check the handler applies to each key.
 */
export async function authorizeRequest(
  deps: AuthorizeDeps,
  ctx: S3Context,
  auth: AuthResult,
  principal: Principal,
  at: Date,
): Promise<((key: string) => Promise<boolean>) | undefined> {
  const op = ctx.op;
  const access = OPERATION_ACCESS[op.name];
  // The account root user may do whatever no policy denies, and it has no identity policies:
  // where no bucket policy applies either, the answer is Allow without the request's facts,
  // condition keys or an evaluation (about a tenth of a small GET's CPU).
  if (!access.perKey && principal.type === 'Root' && principal.account !== '') {
    const buckets = [op.bucket, access.sourceAction ? copySource(ctx).bucket : undefined];
    if (await deps.authorizer.noBucketPolicy(buckets)) return undefined;
  }
  const facts = requestFacts(ctx, auth, at, access);
  if (access.recordedSse) {
    // UploadPart, UploadPartCopy, CompleteMultipartUpload: the encryption keys are what
    // CreateMultipartUpload asked for (docs/policy.md, "Multipart uploads").
    const id = ctx.query.get('uploadId') ?? '';
    const upload = id ? await deps.meta.getUpload(id) : undefined;
    const mine = upload && upload.bucket === op.bucket && upload.key === op.key ? upload : undefined;
    facts.recordedSse = {
      ...(mine?.requestedSse !== undefined ? { value: mine.requestedSse } : {}),
      ...(mine?.requestedKmsKeyId !== undefined ? { kmsKeyId: mine.requestedKmsKeyId } : {}),
    };
  }
  const keys = conditionKeys(facts);
  if (access.perKey) {
    const bucket = op.bucket!;
    return async (key: string) => {
      const resource = objectArn(bucket, key);
      const r = await deps.authorizer.check({ principal, action: access.action, resource, bucket, conditionKeys: keys });
      if (!r.allowed) logDenial(ctx, principal, access.action, resource, r);
      return r.allowed;
    };
  }
  await require(deps, ctx, principal, access.action, resourceArn(access, op.bucket, op.key), op.bucket, keys);
  if (access.tagged && ctx.req.headers['x-amz-tagging'] !== undefined) {
    await require(deps, ctx, principal, 's3:PutObjectTagging', resourceArn(access, op.bucket, op.key), op.bucket, keys);
  }
  if (access.sourceAction) {
    const src = copySource(ctx);
    await require(deps, ctx, principal, access.sourceAction, objectArn(src.bucket, src.key), src.bucket, keys);
  }
  if (principal.type === 'Anonymous' && (op.name === 'GetObject' || op.name === 'HeadObject')) {
    if ([...ctx.query.keys()].some((k) => k.startsWith('response-'))) {
      throw new S3Error('InvalidRequest', 'Request specific response headers cannot be used for anonymous GET requests.');
    }
  }
  return undefined;
}
