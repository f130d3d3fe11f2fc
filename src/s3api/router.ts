// The S3 router: an HTTP request (method, bucket, key, query) becomes one operation named as
// AWS names it. Sub-resources Coffer does not implement become NotImplemented, never a wrong
// operation. Path-style and virtual-hosted-style addressing both resolve here.
import { S3Error } from '../shared/errors.ts';

export type OperationName =
  | 'ListBuckets'
  | 'CreateBucket'
  | 'HeadBucket'
  | 'DeleteBucket'
  | 'GetBucketLocation'
  | 'GetBucketEncryption'
  | 'PutBucketEncryption'
  | 'DeleteBucketEncryption'
  | 'GetBucketVersioning'
  | 'GetBucketPolicy'
  | 'PutBucketPolicy'
  | 'DeleteBucketPolicy'
  | 'GetBucketPolicyStatus'
  | 'ListObjects'
  | 'ListObjectsV2'
  | 'ListMultipartUploads'
  | 'DeleteObjects'
  | 'PutObject'
  | 'CopyObject'
  | 'GetObject'
  | 'HeadObject'
  | 'DeleteObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListParts'
  | 'GetObjectTagging'
  | 'PutObjectTagging'
  | 'DeleteObjectTagging';

export interface Operation {
  name: OperationName;
  bucket?: string;
  key?: string;
}

/** Query parameters that name sub-resources; any not routed below answers NotImplemented. */
const BUCKET_SUBRESOURCES = new Set([
  'accelerate', 'acl', 'analytics', 'cors', 'delete', 'encryption', 'intelligent-tiering', 'inventory',
  'lifecycle', 'location', 'logging', 'metrics', 'notification', 'object-lock', 'ownershipControls',
  'policy', 'policyStatus', 'publicAccessBlock', 'replication', 'requestPayment', 'tagging', 'uploads',
  'versioning', 'versions', 'website', 'metadataTable', 'session',
]);
const OBJECT_SUBRESOURCES = new Set([
  'acl', 'attributes', 'legal-hold', 'retention', 'restore', 'select', 'tagging', 'torrent', 'uploadId',
  'uploads', 'renameObject',
]);

function notImplemented(): never {
  throw new S3Error('NotImplemented');
}

export function route(method: string, bucket: string | undefined, key: string | undefined, q: URLSearchParams, headers: Record<string, string | string[] | undefined>): Operation {
  if (!bucket) {
    if (method === 'GET') return { name: 'ListBuckets' };
    throw new S3Error('MethodNotAllowed', undefined, { Method: method, ResourceType: 'SERVICE' });
  }
  if (key === undefined || key === '') {
    const sub = [...q.keys()].find((k) => BUCKET_SUBRESOURCES.has(k));
    const op = (name: OperationName): Operation => ({ name, bucket });
    switch (method) {
      case 'GET':
        if (sub === undefined) return op(q.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects');
        if (sub === 'location') return op('GetBucketLocation');
        if (sub === 'uploads') return op('ListMultipartUploads');
        if (sub === 'encryption') return op('GetBucketEncryption');
        if (sub === 'versioning') return op('GetBucketVersioning');
        if (sub === 'policy') return op('GetBucketPolicy');
        if (sub === 'policyStatus') return op('GetBucketPolicyStatus');
        return notImplemented();
      case 'HEAD':
        return op('HeadBucket');
      case 'PUT':
        if (sub === undefined) return op('CreateBucket');
        if (sub === 'policy') return op('PutBucketPolicy');
        if (sub === 'encryption') return op('PutBucketEncryption');
        return notImplemented();
      case 'DELETE':
        if (sub === undefined) return op('DeleteBucket');
        if (sub === 'policy') return op('DeleteBucketPolicy');
        if (sub === 'encryption') return op('DeleteBucketEncryption');
        return notImplemented();
      case 'POST':
        if (sub === 'delete') return op('DeleteObjects');
        return notImplemented();
      default:
        throw new S3Error('MethodNotAllowed', undefined, { Method: method, ResourceType: 'BUCKET' });
    }
  }
  const op = (name: OperationName): Operation => ({ name, bucket, key });
  const has = (k: string) => q.has(k);
  if (has('tagging') && !has('uploadId')) {
    if (method === 'GET') return op('GetObjectTagging');
    if (method === 'PUT') return op('PutObjectTagging');
    if (method === 'DELETE') return op('DeleteObjectTagging');
  }
  const unknownSub = [...q.keys()].find((k) => OBJECT_SUBRESOURCES.has(k) && k !== 'uploadId' && k !== 'uploads');
  if (unknownSub) return notImplemented();
  switch (method) {
    case 'GET':
      return op(has('uploadId') ? 'ListParts' : 'GetObject');
    case 'HEAD':
      return op('HeadObject');
    case 'PUT':
      if (has('partNumber') || has('uploadId')) return op(headers['x-amz-copy-source'] !== undefined ? 'UploadPartCopy' : 'UploadPart');
      return op(headers['x-amz-copy-source'] !== undefined ? 'CopyObject' : 'PutObject');
    case 'DELETE':
      return op(has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject');
    case 'POST':
      if (has('uploads')) return op('CreateMultipartUpload');
      if (has('uploadId')) return op('CompleteMultipartUpload');
      return notImplemented();
    default:
      throw new S3Error('MethodNotAllowed', undefined, { Method: method, ResourceType: 'OBJECT' });
  }
}

/**
 * Splits the request target into bucket and key. With a configured domain, a Host of
 * `<bucket>.<domain>` selects virtual-hosted style and the whole path is the key.
 * The key is percent-decoded exactly once; '+' stays '+' (S3 paths are not form-encoded).
 */
export function resolveTarget(
  rawPath: string,
  host: string | undefined,
  domain: string | undefined,
): { bucket?: string; key?: string; virtualHosted?: boolean } {
  const hostname = (host ?? '').replace(/:\d+$/, '').toLowerCase();
  let vhostBucket: string | undefined;
  if (domain) {
    const d = domain.toLowerCase();
    if (hostname.endsWith('.' + d)) vhostBucket = hostname.slice(0, -(d.length + 1));
  }
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw new S3Error('InvalidURI');
  }
  if (vhostBucket !== undefined) {
    const key = path.startsWith('/') ? path.slice(1) : path;
    return { bucket: vhostBucket, ...(key !== '' ? { key } : {}), virtualHosted: true };
  }
  const rest = path.startsWith('/') ? path.slice(1) : path;
  if (rest === '') return {};
  const slash = rest.indexOf('/');
  if (slash < 0) return { bucket: rest };
  const key = rest.slice(slash + 1);
  return { bucket: rest.slice(0, slash), ...(key !== '' ? { key } : {}) };
}
