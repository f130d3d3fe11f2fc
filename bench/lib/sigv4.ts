// A tiny AWS Signature Version 4 signer for the load generator: Authorization header form,
// path-style requests, payload UNSIGNED-PAYLOAD (or a given SHA-256), service s3 (or another,
// e.g. kms for the KMS JSON API). It signs `host` and every
// x-amz-* header. The signing key is derived once per day; a signature costs four small HMACs
// plus one SHA-256 of the canonical request (a few microseconds), so it never limits the run.
import { createHash, createHmac } from 'node:crypto';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

const UNSIGNED = 'UNSIGNED-PAYLOAD';

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** RFC 3986 encoding of one path segment, as S3 canonicalises it. */
export function encodeSegment(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** `/bucket/key/with/slashes` with every segment encoded. */
export function objectPath(bucket: string, key?: string): string {
  if (key === undefined) return '/' + encodeSegment(bucket);
  return '/' + encodeSegment(bucket) + '/' + key.split('/').map(encodeSegment).join('/');
}

export class SigV4Signer {
  #day = '';
  #key: Buffer = Buffer.alloc(0);

  constructor(
    readonly creds: Credentials,
    readonly service = 's3',
  ) {}

  #signingKey(day: string): Buffer {
    if (day !== this.#day) {
      const kDate = hmac('AWS4' + this.creds.secretAccessKey, day);
      const kRegion = hmac(kDate, this.creds.region);
      const kService = hmac(kRegion, this.service);
      this.#key = hmac(kService, 'aws4_request');
      this.#day = day;
    }
    return this.#key;
  }

  /**
   * Returns the headers to send: the given ones plus host, x-amz-date, x-amz-content-sha256
   * and Authorization. `path` is already encoded; `query` is the raw (already canonical) query.
   */
  sign(
    method: string,
    host: string,
    path: string,
    headers: Record<string, string> = {},
    payloadHash: string = UNSIGNED,
    query = '',
    now: Date = new Date(),
  ): Record<string, string> {
    const amzDate = now.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
    const day = amzDate.slice(0, 8);
    const all: Record<string, string> = { ...headers, host, 'x-amz-date': amzDate, 'x-amz-content-sha256': payloadHash };
    const names = Object.keys(all)
      .map((n) => n.toLowerCase())
      .filter((n) => n === 'host' || n.startsWith('x-amz-') || n === 'content-md5')
      .sort();
    const lower: Record<string, string> = {};
    for (const [k, v] of Object.entries(all)) lower[k.toLowerCase()] = String(v).trim().replace(/\s+/g, ' ');
    const canonicalHeaders = names.map((n) => `${n}:${lower[n]}\n`).join('');
    const signedHeaders = names.join(';');
    const canonicalRequest = [method, path, query, canonicalHeaders, signedHeaders, payloadHash].join('\n');
    const scope = `${day}/${this.creds.region}/${this.service}/aws4_request`;
    const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
    const signature = createHmac('sha256', this.#signingKey(day)).update(stringToSign).digest('hex');
    all.authorization = `AWS4-HMAC-SHA256 Credential=${this.creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return all;
  }
}
