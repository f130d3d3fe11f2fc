// Types of the SigV4 verification module: what the HTTP layer hands in (plain request values,
// a credential lookup, options) and what it gets back (anonymous, or a verified signed identity
// with the payload mode the body decoder must enforce).
import type { HeaderMap } from './canonical.ts';

export interface Credential {
  accessKeyId: string;
  secretKey: string;
  /** Opaque to the auth module; passed through to the caller. */
  principal: unknown;
}

export type CredentialLookup = (
  accessKeyId: string,
) => Promise<Credential | undefined> | Credential | undefined;

export interface SigV4Request {
  method: string;
  /**
   * Path exactly as received, before the '?', still percent-encoded as the client sent it
   * (e.g. the part of Node's `req.url` before '?'). '' is treated as '/'.
   */
  rawPath: string;
  /** Query string as received, without the '?'; may be ''. */
  rawQuery: string;
  /**
   * Lower-case header names (Node's `req.headers`). Passing `req.headersDistinct` (string[]
   * values) is more exact: repeated headers are then joined with ',' as AWS does, whereas
   * Node's `req.headers` has already joined them with ', '.
   */
  headers: HeaderMap;
  /**
   * Service 'kms' only: lower-case hex SHA-256 of the request body. KMS clients do not send
   * x-amz-content-sha256, so the payload hash in the canonical request is the body's hash: the
   * caller buffers the (small, JSON) body, hashes it, and passes the hex here before verifying.
   */
  bodySha256?: string;
}

export interface VerifyOptions {
  now: Date;
  service: 's3' | 'kms';
  /** If set, the credential scope's region must equal it. */
  region?: string;
  /** Allowed clock skew for header auth / future-dated presigned URLs; default 15 minutes. */
  maxSkewMs?: number;
}

export type PayloadMode =
  /** UNSIGNED-PAYLOAD (and presigned URLs without X-Amz-Content-Sha256). */
  | { type: 'unsigned' }
  /** A hex SHA-256 the body must hash to; verified while streaming. */
  | { type: 'sha256'; hex: string }
  /** STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: aws-chunked with chained chunk signatures. */
  | { type: 'streaming-signed'; trailer: boolean }
  /** STREAMING-UNSIGNED-PAYLOAD-TRAILER: aws-chunked without signatures, checksum trailer. */
  | { type: 'streaming-unsigned-trailer' };

export interface SignedAuth {
  kind: 'signed';
  method: 'header' | 'presigned';
  credential: Credential;
  /** The request (seed) signature, lower-case hex, as verified. */
  signature: string;
  /** Request time in ISO 8601 basic format (yyyyMMddTHHmmssZ). */
  amzDate: string;
  scope: { date: string; region: string; service: string };
  /** Lower-case signed header names, sorted. */
  signedHeaders: string[];
  payload: PayloadMode;
  /** The payload-hash line of the canonical request (x-amz-content-sha256 value or equivalent). */
  contentSha256: string;
  /** kSigning for this scope; needed to verify aws-chunked chunk signatures. Never log it. */
  signingKey: Buffer;
  /** X-Amz-Security-Token / x-amz-security-token if the request carried one (not validated here). */
  securityToken?: string;
  /** Presigned only: X-Amz-Expires in seconds. */
  expiresSeconds?: number;
}

export type AuthResult = { kind: 'anonymous' } | SignedAuth;
