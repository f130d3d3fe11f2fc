// AWS Signature Version 4 request verification (Authorization header and presigned URL forms),
// with AWS S3's error codes and messages. Framework-free: the HTTP layer passes the raw
// method/path/query/headers and a credential lookup, and gets back who signed the request
// plus how the body must be checked (see payload.ts for the body decoder).
import { S3Error } from '../shared/errors.ts';
import {
  ALGORITHM,
  canonicalHeaders,
  canonicalQuery,
  canonicalRequest,
  canonicalUri,
  headerValue,
  hmac,
  parseQuery,
  signaturesEqual,
  signingKey,
  stringToSign,
  type QueryParam,
} from './canonical.ts';
import type { AuthResult, Credential, CredentialLookup, PayloadMode, SigV4Request, SignedAuth, VerifyOptions } from './types.ts';

export const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;
export const MAX_PRESIGNED_EXPIRES = 604800;

const UNSUPPORTED_MECHANISM = 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.';
const ONLY_ONE_MECHANISM =
  'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified';
const NEED_DATE = 'AWS authentication requires a valid Date or x-amz-date header';
const BAD_CONTENT_SHA256 =
  'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.';
const MALFORMED_CREDENTIAL = 'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".';

/**
 * Maps an x-amz-content-sha256 value to the payload mode; throws InvalidArgument (AWS's
 * message) for anything else. ECDSA (SigV4a) streaming modes are NotImplemented.
 */
export function payloadModeOf(value: string): PayloadMode {
  switch (value) {
    case 'UNSIGNED-PAYLOAD':
      return { type: 'unsigned' };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD':
      return { type: 'streaming-signed', trailer: false };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER':
      return { type: 'streaming-signed', trailer: true };
    case 'STREAMING-UNSIGNED-PAYLOAD-TRAILER':
      return { type: 'streaming-unsigned-trailer' };
    case 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD':
    case 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER':
      throw new S3Error('NotImplemented', undefined, { Header: 'x-amz-content-sha256' });
  }
  if (/^[0-9a-fA-F]{64}$/.test(value)) return { type: 'sha256', hex: value.toLowerCase() };
  throw new S3Error('InvalidArgument', BAD_CONTENT_SHA256, { ArgumentName: 'x-amz-content-sha256', ArgumentValue: value });
}

// The last date parsed: a request's date is parsed twice (signature, then policy conditions)
// and concurrent requests mostly carry the same second.
let lastAmzDate = '';
let lastAmzTime = NaN;

/** Parses yyyyMMdd'T'HHmmss'Z' to epoch ms; NaN if malformed or not a real date. */
export function parseAmzDate(s: string): number {
  if (s === lastAmzDate) return lastAmzTime;
  const t = parseAmzDateUncached(s);
  lastAmzDate = s;
  lastAmzTime = t;
  return t;
}

function parseAmzDateUncached(s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return NaN;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number);
  const t = Date.UTC(y, mo - 1, d, h, mi, se);
  const back = new Date(t);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h)
    return NaN;
  if (mi > 59 || se > 59) return NaN;
  return t;
}

export function formatAmzDate(t: number): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

function isoSeconds(t: number): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Verifies a SigV4-signed request. Resolves `{kind:'anonymous'}` when the request carries no
 * authentication at all (the caller decides whether to allow it); otherwise resolves a verified
 * identity or throws an S3Error exactly as AWS S3 would answer.
 */
export async function verifySigV4(req: SigV4Request, lookup: CredentialLookup, opts: VerifyOptions): Promise<AuthResult> {
  const authz = headerValue(req.headers, 'authorization');
  const params = parseQuery(req.rawQuery);
  const has = (n: string) => params.some((p) => p.name === n);
  const queryV4 = has('X-Amz-Algorithm') || has('X-Amz-Credential') || has('X-Amz-Signature');
  const queryV2 = has('Signature');
  if (authz !== undefined && authz.trim() !== '') {
    if (queryV4 || queryV2) {
      throw new S3Error('InvalidArgument', ONLY_ONE_MECHANISM, { ArgumentName: 'Authorization', ArgumentValue: authz });
    }
    return verifyHeaderAuth(req, authz.trim(), params, lookup, opts);
  }
  if (queryV4) return verifyPresigned(req, params, lookup, opts);
  if (queryV2) throw new S3Error('InvalidRequest', UNSUPPORTED_MECHANISM);
  return { kind: 'anonymous' };
}

// ---- shared pieces ----

interface Scope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

type Fail = (detail: string, details?: Record<string, string>) => S3Error;

function parseCredential(value: string, fail: Fail, opts: VerifyOptions): Scope {
  const parts = value.split('/');
  if (parts.length !== 5 || parts.some((p) => p === '')) throw fail(MALFORMED_CREDENTIAL);
  const [accessKeyId, date, region, service, terminal] = parts;
  if (opts.region !== undefined && region !== opts.region) {
    throw fail(`the region '${region}' is wrong; expecting '${opts.region}'`, { Region: opts.region });
  }
  if (service !== opts.service) throw fail(`incorrect service "${service}". This endpoint belongs to "${opts.service}".`);
  if (terminal !== 'aws4_request') throw fail(`incorrect terminal "${terminal}". This endpoint uses "aws4_request".`);
  return { accessKeyId, date, region, service };
}

function parseSignedHeaders(value: string, fail: Fail): string[] {
  const names = value.split(';');
  if (names.some((n) => n === '')) throw fail('the SignedHeaders component is malformed.');
  return names;
}

/** AWS rejects requests whose host or x-amz-* headers are not all signed. */
function checkHeadersSigned(req: SigV4Request, signed: readonly string[], exempt: ReadonlySet<string>): void {
  const set = new Set(signed.map((n) => n.toLowerCase()));
  const missing: string[] = [];
  if (!set.has('host')) missing.push('host');
  for (const name of Object.keys(req.headers)) {
    const lower = name.toLowerCase();
    if (lower.startsWith('x-amz-') && !set.has(lower) && !exempt.has(lower) && req.headers[name] !== undefined) {
      missing.push(lower);
    }
  }
  if (missing.length > 0) {
    throw new S3Error('AccessDenied', 'There were headers present in the request which were not signed', {
      HeadersNotSigned: missing.join(', '),
    });
  }
}

function payloadFor(req: SigV4Request, opts: VerifyOptions, contentSha256: string | undefined): { hash: string; mode: PayloadMode } {
  if (opts.service === 'kms') {
    const hash = contentSha256 ?? req.bodySha256;
    if (hash === undefined) throw new TypeError('verifySigV4: service kms needs req.bodySha256 (hex SHA-256 of the body)');
    if (!/^[0-9a-fA-F]{64}$/.test(hash)) {
      throw new S3Error('InvalidArgument', BAD_CONTENT_SHA256, { ArgumentName: 'x-amz-content-sha256', ArgumentValue: hash });
    }
    return { hash, mode: { type: 'sha256', hex: hash.toLowerCase() } };
  }
  if (contentSha256 === undefined) {
    throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  }
  return { hash: contentSha256, mode: payloadModeOf(contentSha256) };
}

interface Verified {
  scope: Scope;
  amzDate: string;
  signedHeaders: string[];
  signedHeadersLine: string;
  query: string;
  payloadHash: string;
  signature: string;
}

async function checkSignature(
  req: SigV4Request,
  v: Verified,
  lookup: CredentialLookup,
  opts: VerifyOptions,
): Promise<{ credential: Credential; key: Buffer }> {
  const credential = await lookup(v.scope.accessKeyId);
  if (!credential) throw new S3Error('InvalidAccessKeyId', undefined, { AWSAccessKeyId: v.scope.accessKeyId });
  const sorted = [...new Set(v.signedHeaders.map((n) => n.toLowerCase()))].sort();
  const creq = canonicalRequest({
    method: req.method,
    uri: canonicalUri(req.rawPath, opts.service),
    query: v.query,
    headers: canonicalHeaders(req.headers, sorted),
    signedHeaders: v.signedHeadersLine,
    payloadHash: v.payloadHash,
  });
  const scopeText = `${v.scope.date}/${v.scope.region}/${v.scope.service}/aws4_request`;
  const sts = stringToSign(v.amzDate, scopeText, creq);
  const key = signingKey(credential.secretKey, v.scope.date, v.scope.region, v.scope.service);
  const expected = hmac(key, sts).toString('hex');
  if (!signaturesEqual(expected, v.signature)) {
    // Only request-derived values: never the expected signature or anything keyed by the secret.
    throw new S3Error('SignatureDoesNotMatch', undefined, {
      AWSAccessKeyId: v.scope.accessKeyId,
      StringToSign: sts,
      SignatureProvided: v.signature,
      CanonicalRequest: creq,
    });
  }
  return { credential, key };
}

// ---- Authorization header ----

async function verifyHeaderAuth(
  req: SigV4Request,
  authz: string,
  params: QueryParam[],
  lookup: CredentialLookup,
  opts: VerifyOptions,
): Promise<SignedAuth> {
  const fail: Fail = (detail, details) =>
    new S3Error('AuthorizationHeaderMalformed', `The authorization header is malformed; ${detail}`, details);
  if (/^AWS\s/.test(authz)) throw new S3Error('InvalidRequest', UNSUPPORTED_MECHANISM);
  const sp = authz.search(/\s/);
  const algorithm = sp < 0 ? authz : authz.slice(0, sp);
  if (algorithm === 'AWS4-ECDSA-P256-SHA256') throw new S3Error('InvalidRequest', UNSUPPORTED_MECHANISM);
  if (algorithm !== ALGORITHM) {
    // AWS echoes the whole header; only the scheme is echoed here (it may carry a bearer token).
    throw new S3Error('InvalidArgument', 'Unsupported Authorization Type', {
      ArgumentName: 'Authorization',
      ArgumentValue: algorithm.slice(0, 64),
    });
  }
  const fields = new Map<string, string>();
  for (const part of (sp < 0 ? '' : authz.slice(sp + 1)).split(',')) {
    const t = part.trim();
    if (t === '') continue;
    const eq = t.indexOf('=');
    if (eq < 0) throw fail(`the authorization component "${t}" is malformed.`);
    fields.set(t.slice(0, eq), t.slice(eq + 1));
  }
  const cred = fields.get('Credential');
  const sh = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (cred === undefined || sh === undefined || signature === undefined) {
    throw fail('the authorization header requires three components: Credential, SignedHeaders, and Signature.');
  }
  const scope = parseCredential(cred, fail, opts);
  const signedHeaders = parseSignedHeaders(sh, fail);

  // Request time: x-amz-date wins over Date.
  const xAmzDate = headerValue(req.headers, 'x-amz-date');
  let t: number;
  let amzDate: string;
  let requestTime: string;
  if (xAmzDate !== undefined) {
    requestTime = xAmzDate.trim();
    t = parseAmzDate(requestTime);
    amzDate = requestTime;
  } else {
    requestTime = (headerValue(req.headers, 'date') ?? '').trim();
    t = requestTime === '' ? NaN : Date.parse(requestTime);
    amzDate = Number.isNaN(t) ? '' : formatAmzDate(t);
  }
  if (Number.isNaN(t)) throw new S3Error('AccessDenied', NEED_DATE);
  if (scope.date !== amzDate.slice(0, 8)) throw fail('Invalid credential date. Date is not the same as X-Amz-Date.');
  const maxSkew = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  if (Math.abs(opts.now.getTime() - t) > maxSkew) {
    throw new S3Error('RequestTimeTooSkewed', undefined, {
      RequestTime: requestTime,
      ServerTime: isoSeconds(opts.now.getTime()),
      MaxAllowedSkewMilliseconds: maxSkew,
    });
  }

  const contentSha256 = headerValue(req.headers, 'x-amz-content-sha256')?.trim();
  const payload = payloadFor(req, opts, contentSha256);
  checkHeadersSigned(req, signedHeaders, new Set(['x-amz-content-sha256']));

  const { credential, key } = await checkSignature(
    req,
    { scope, amzDate, signedHeaders, signedHeadersLine: sh, query: canonicalQuery(params), payloadHash: payload.hash, signature },
    lookup,
    opts,
  );
  const token = headerValue(req.headers, 'x-amz-security-token');
  return {
    kind: 'signed',
    method: 'header',
    credential,
    signature,
    amzDate,
    scope: { date: scope.date, region: scope.region, service: scope.service },
    signedHeaders: [...new Set(signedHeaders.map((n) => n.toLowerCase()))].sort(),
    payload: payload.mode,
    contentSha256: payload.hash,
    signingKey: key,
    ...(token !== undefined ? { securityToken: token } : {}),
  };
}

// ---- presigned URL ----

async function verifyPresigned(
  req: SigV4Request,
  params: QueryParam[],
  lookup: CredentialLookup,
  opts: VerifyOptions,
): Promise<SignedAuth> {
  const qerr = (message?: string, details?: Record<string, string>) =>
    new S3Error('AuthorizationQueryParametersError', message, details);
  const fail: Fail = (detail, details) => qerr(`Error parsing the X-Amz-Credential parameter; ${detail}`, details);
  const get = (n: string) => params.find((p) => p.name === n)?.value;
  const algorithm = get('X-Amz-Algorithm');
  const cred = get('X-Amz-Credential');
  const date = get('X-Amz-Date');
  const expires = get('X-Amz-Expires');
  const sh = get('X-Amz-SignedHeaders');
  const signature = get('X-Amz-Signature');
  if (algorithm === undefined || cred === undefined || date === undefined || expires === undefined || sh === undefined || signature === undefined) {
    throw qerr();
  }
  if (algorithm !== ALGORITHM) throw qerr('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  const t = parseAmzDate(date);
  if (Number.isNaN(t)) throw qerr(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`);
  if (!/^\d+$/.test(expires)) {
    throw qerr(/^-\d+$/.test(expires) ? 'X-Amz-Expires must be non-negative' : 'X-Amz-Expires should be a number');
  }
  const expiresSeconds = Number(expires);
  if (expiresSeconds > MAX_PRESIGNED_EXPIRES) {
    throw qerr(
      'X-Amz-Expires must be less than a week (in seconds) that is, the given X-Amz-Expires must be less than 604800 seconds',
    );
  }
  const scope = parseCredential(cred, fail, opts);
  if (scope.date !== date.slice(0, 8)) throw fail('Invalid credential date. Date is not the same as X-Amz-Date.');
  const signedHeaders = parseSignedHeaders(sh, (d) => qerr(`Error parsing the X-Amz-SignedHeaders parameter; ${d}`));

  const now = opts.now.getTime();
  if (t - now > (opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS)) throw new S3Error('AccessDenied', 'Request is not valid yet');
  if (now > t + expiresSeconds * 1000) {
    throw new S3Error('AccessDenied', 'Request has expired', {
      'X-Amz-Expires': expires,
      Expires: isoSeconds(t + expiresSeconds * 1000),
      ServerTime: isoSeconds(now),
    });
  }

  // Payload: UNSIGNED-PAYLOAD unless the URL itself carries X-Amz-Content-Sha256.
  const querySha = params.find((p) => p.name.toLowerCase() === 'x-amz-content-sha256')?.value;
  let payload: { hash: string; mode: PayloadMode };
  if (opts.service === 'kms') payload = payloadFor(req, opts, querySha);
  else if (querySha === undefined) payload = { hash: 'UNSIGNED-PAYLOAD', mode: { type: 'unsigned' } };
  else {
    const mode = payloadModeOf(querySha);
    if (mode.type !== 'unsigned' && mode.type !== 'sha256') {
      throw new S3Error('InvalidArgument', BAD_CONTENT_SHA256, { ArgumentName: 'x-amz-content-sha256', ArgumentValue: querySha });
    }
    payload = { hash: querySha, mode };
  }
  checkHeadersSigned(req, signedHeaders, new Set());

  const { credential, key } = await checkSignature(
    req,
    {
      scope,
      amzDate: date,
      signedHeaders,
      signedHeadersLine: sh,
      query: canonicalQuery(params, 'X-Amz-Signature'),
      payloadHash: payload.hash,
      signature,
    },
    lookup,
    opts,
  );
  const token = get('X-Amz-Security-Token');
  return {
    kind: 'signed',
    method: 'presigned',
    credential,
    signature,
    amzDate: date,
    scope: { date: scope.date, region: scope.region, service: scope.service },
    signedHeaders: [...new Set(signedHeaders.map((n) => n.toLowerCase()))].sort(),
    payload: payload.mode,
    contentSha256: payload.hash,
    signingKey: key,
    expiresSeconds,
    ...(token !== undefined ? { securityToken: token } : {}),
  };
}

// ---- policy context ----

export interface SignatureV4Context {
  /** s3:signatureversion */
  signatureVersion: 'AWS4-HMAC-SHA256';
  /** s3:authType */
  authType: 'REST-HEADER' | 'REST-QUERY-STRING';
  /** s3:x-amz-content-sha256 (for presigned URLs: UNSIGNED-PAYLOAD unless the URL says otherwise) */
  contentSha256: string;
  /** s3:signatureAge in milliseconds, when `now` is given. */
  signatureAgeMs?: number;
  accessKeyId: string;
}

/** The values bucket-policy conditions need about how a request was authenticated. */
export function signatureV4Context(auth: AuthResult, now?: Date): SignatureV4Context | undefined {
  if (auth.kind !== 'signed') return undefined;
  return {
    signatureVersion: ALGORITHM,
    authType: auth.method === 'header' ? 'REST-HEADER' : 'REST-QUERY-STRING',
    contentSha256: auth.contentSha256,
    accessKeyId: auth.credential.accessKeyId,
    ...(now ? { signatureAgeMs: now.getTime() - parseAmzDate(auth.amzDate) } : {}),
  };
}
