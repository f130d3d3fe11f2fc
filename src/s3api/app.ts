// The S3 request pipeline: request id, target resolution, SigV4 authentication, routing to one
// operation, authorization (s3api/authz.ts), dispatch, and the one error renderer. Nothing below this file knows about HTTP
// beyond the S3Context it is handed.
import { systemRng } from '../crypto/keys.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { createPayloadDecoder, verifySigV4, type AuthResult, type CredentialLookup, type PayloadDecoder } from '../auth/index.ts';
import { CryptoError, S3Error } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { MetadataStore } from '../storage/ports.ts';
import type { Authorizer } from '../service/authorization.ts';
import { IdentityService } from '../service/identities.ts';
import type { ObjectService } from '../service/objects.ts';
import type { PolicyService } from '../service/policies.ts';
import { authorizeRequest, principalOf } from './authz.ts';
import * as buckets from './handlers/buckets.ts';
import * as listing from './handlers/listing.ts';
import * as mp from './handlers/multipart.ts';
import * as objs from './handlers/objects.ts';
import * as policy from './handlers/policy.ts';
import * as tagging from './handlers/tagging.ts';
import { hasCustomerKeyHeaders, SSE_C_ERRORS, type Owner, type S3Context } from './request.ts';
import { resolveTarget, route, type Operation } from './router.ts';
import { xmlDocument, type XmlNode } from './xml.ts';

export interface S3AppDeps {
  meta: MetadataStore;
  objects: ObjectService;
  log: Logger;
  owner: Owner;
  credentials: CredentialLookup;
  authorizer: Authorizer;
  policies: PolicyService;
  region: string;
  domain?: string;
  now?: () => Date;
  /** New buckets accept SSE-C writes (default: blocked). */
  allowSseCInNewBuckets?: boolean;
  /** TLS-terminating proxies whose X-Forwarded-Proto: https is believed (--trust-proxy-tls). */
  trustProxyTls?: readonly string[];
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse, secure: boolean) => void;

const ANONYMOUS = IdentityService.anonymous();

/**
 * A request a trusted TLS-terminating proxy forwarded from an HTTPS client (--trust-proxy-tls):
 * from one of the listed addresses, with X-Forwarded-Proto: https. Anyone else's header is
 * ignored, so a client cannot claim TLS it did not use.
 */
export function viaTrustedTlsProxy(req: IncomingMessage, trusted: readonly string[] | undefined): boolean {
  if (!trusted?.length) return false;
  const from = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  if (!trusted.includes(from)) return false;
  // Exactly one value, and it must be https: a proxy that appends to a client's header (or a
  // client sending two) must not let the client claim TLS.
  const values = req.headersDistinct?.['x-forwarded-proto'] ?? (typeof req.headers['x-forwarded-proto'] === 'string' ? [req.headers['x-forwarded-proto']] : []);
  if (values.length !== 1) return false;
  const proto = values[0]!.trim().toLowerCase();
  return proto === 'https';
}

export function requestId(): string {
  return systemRng.randomBytes(8).toString('hex').toUpperCase();
}

/**
 * A request's abort signal, made when first asked for: most requests (every GET) never use it,
 * and an AbortController costs ~2.5% of a small GET's main-thread time.
 */
class RequestAbort {
  #controller: AbortController | undefined;
  #reason: Error | undefined;

  get aborted(): boolean {
    return this.#reason !== undefined;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#reason) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: Error): void {
    if (this.#reason) return;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

export function createS3Handler(deps: S3AppDeps): RequestHandler {
  const now = deps.now ?? (() => new Date());
  return (req, res, secure) => {
    const id = requestId();
    const started = process.hrtime.bigint();
    res.setHeader('x-amz-request-id', id);
    res.setHeader('x-amz-id-2', Buffer.from(id).toString('base64'));
    res.setHeader('server', 'Coffer');
    const log = deps.log.child({ reqId: id });
    const abort = new RequestAbort();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort(new Error('client disconnected'));
    });
    let op: Operation | undefined;
    let gone = false;
    handle(deps, req, res, secure || viaTrustedTlsProxy(req, deps.trustProxyTls), id, log, abort, now(), (o) => (op = o))
      .catch((err: unknown) => {
        if (abort.aborted && isDisconnect(err)) {
          // The client closed the connection before the answer: nobody to answer, no fault here.
          gone = true;
          res.destroy();
          return;
        }
        renderError(req, res, err, id, log, op);
      })
      .finally(() => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        // A request whose client went away before the answer has no status: it logs `disconnected`.
        log.info({ op: op?.name, method: req.method, ...(gone ? { disconnected: true } : { status: res.statusCode }), ms: Math.round(ms * 10) / 10, secure }, 'request');
      });
  };
}

async function handle(
  deps: S3AppDeps,
  req: IncomingMessage,
  res: ServerResponse,
  secure: boolean,
  id: string,
  log: Logger,
  abort: RequestAbort,
  at: Date,
  setOp: (op: Operation) => void,
): Promise<void> {
  const url = req.url ?? '/';
  if (!url.startsWith('/')) throw new S3Error('InvalidURI');
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  const query = new URLSearchParams(rawQuery);
  const target = resolveTarget(rawPath, req.headers.host, deps.domain);
  // Routing is pure, so it runs first: a refused request is still logged with its operation.
  // Its error, though, comes after authentication, as on AWS.
  let op: Operation | undefined;
  let routeError: unknown;
  try {
    op = route(req.method ?? 'GET', target.bucket, target.key, query, req.headers);
    setOp(op);
  } catch (e) {
    routeError = e;
  }
  const auth: AuthResult = await verifySigV4(
    { method: req.method ?? 'GET', rawPath, rawQuery, headers: req.headersDistinct },
    deps.credentials,
    { now: at, service: 's3', region: deps.region },
  );
  // An anonymous caller learns nothing (not even NotImplemented or MethodNotAllowed) about a
  // request that names no operation; a routed one is authorized like any other, so it goes on
  // only where a bucket policy grants Principal "*".
  if (op === undefined) throw auth.kind === 'signed' ? routeError : new S3Error('AccessDenied');
  const principal = principalOf(auth, ANONYMOUS);

  let decoded: Readable | undefined;
  let decoder: PayloadDecoder | undefined;
  const ctx: S3Context = {
    id,
    req,
    res,
    secure,
    log,
    op,
    query,
    get signal() {
      return abort.signal;
    },
    principal,
    requester:
      principal.type === 'Anonymous'
        ? {}
        : {
            principalArn: principal.arn,
            kms: {
              principal,
              viaService: `s3.${deps.region}.amazonaws.com`,
              requestId: id,
              ...(req.socket.remoteAddress ? { sourceIp: req.socket.remoteAddress } : {}),
              ...(typeof req.headers['user-agent'] === 'string' ? { userAgent: req.headers['user-agent'] } : {}),
              conditionKeys: {
                'aws:SecureTransport': secure ? 'true' : 'false',
                ...(req.socket.remoteAddress ? { 'aws:SourceIp': req.socket.remoteAddress } : {}),
              },
            },
          },
    body() {
      if (!decoded) {
        // Expect: 100-continue: the client sends the body only once a handler asks for it, so
        // a request refused before that costs no upload.
        if (expectsContinue(req) && !res.headersSent) res.writeContinue();
        const d = createPayloadDecoder(auth, req.headers);
        if (d.passthrough) {
          // Nothing to check: the body itself, one stream stage fewer per chunk. A body cut off
          // by the client fails with node's 'aborted' error (IncompleteBody, see toS3Error); one
          // destroyed without an error (the body watchdog) fails the upload's write (writeStream).
          decoded = req;
        } else {
          req.on('error', (e) => d.destroy(e));
          req.on('aborted', () => d.destroy(new S3Error('IncompleteBody')));
          decoded = req.pipe(d as unknown as PassThrough);
        }
        decoder = d;
      }
      return decoded;
    },
    checksum() {
      return decoder?.checksum;
    },
  };
  const allowKey = await authorizeRequest(deps, ctx, auth, principal, at);
  // A customer key sent over plain HTTP is refused whatever the operation, before anything is
  // looked up, read or written (the key crossed the network in the clear: it is compromised).
  if (!secure && (hasCustomerKeyHeaders(ctx) || hasCustomerKeyHeaders(ctx, true))) throw new S3Error('InvalidRequest', SSE_C_ERRORS.insecure);
  const { meta, objects, owner, region, policies } = deps;
  // Where the bucket's objects live, in the addressing style of this request (for Location).
  const bucketUrl = `${secure ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}${target.virtualHosted ? '' : `/${target.bucket}`}`;
  switch (op.name) {
    case 'ListBuckets':
      return buckets.listBuckets(ctx, meta, owner, region);
    case 'CreateBucket':
      return buckets.createBucket(ctx, meta, region, deps.allowSseCInNewBuckets ?? false);
    case 'HeadBucket':
      return buckets.headBucket(ctx, objects, region);
    case 'DeleteBucket':
      await buckets.deleteBucket(ctx, meta);
      policies.forgetBucket(op.bucket!);
      return;
    case 'GetBucketLocation':
      return buckets.getBucketLocation(ctx, objects, region);
    case 'GetBucketEncryption':
      return buckets.getBucketEncryption(ctx, objects);
    case 'PutBucketEncryption':
      return buckets.putBucketEncryption(ctx, objects, meta);
    case 'DeleteBucketEncryption':
      return buckets.deleteBucketEncryption(ctx, objects, meta);
    case 'GetBucketVersioning':
      return buckets.getBucketVersioning(ctx, objects);
    case 'PutBucketPolicy':
      return policy.putBucketPolicy(ctx, objects, policies);
    case 'GetBucketPolicy':
      return policy.getBucketPolicy(ctx, objects, policies);
    case 'DeleteBucketPolicy':
      return policy.deleteBucketPolicy(ctx, policies);
    case 'GetBucketPolicyStatus':
      return policy.getBucketPolicyStatus(ctx, objects, policies);
    case 'ListObjects':
      return listing.listObjectsV1(ctx, objects, meta, owner);
    case 'ListObjectsV2':
      return listing.listObjectsV2(ctx, objects, meta, owner);
    case 'ListMultipartUploads':
      return mp.listMultipartUploads(ctx, objects, meta, owner);
    case 'DeleteObjects':
      return objs.deleteObjects(ctx, objects, allowKey);
    case 'PutObject':
      return objs.putObject(ctx, objects);
    case 'CopyObject':
      return objs.copyObject(ctx, objects);
    case 'GetObject':
      return objs.getObject(ctx, objects, false);
    case 'HeadObject':
      return objs.getObject(ctx, objects, true);
    case 'DeleteObject':
      return objs.deleteObject(ctx, objects);
    case 'CreateMultipartUpload':
      return mp.createMultipartUpload(ctx, objects);
    case 'UploadPart':
      return mp.uploadPart(ctx, objects);
    case 'UploadPartCopy':
      return mp.uploadPartCopy(ctx, objects);
    case 'CompleteMultipartUpload':
      return mp.completeMultipartUpload(ctx, objects, bucketUrl);
    case 'AbortMultipartUpload':
      return mp.abortMultipartUpload(ctx, objects);
    case 'ListParts':
      return mp.listParts(ctx, objects, meta, owner);
    case 'GetObjectTagging':
      return tagging.getObjectTagging(ctx, objects);
    case 'PutObjectTagging':
      return tagging.putObjectTagging(ctx, objects);
    case 'DeleteObjectTagging':
      return tagging.deleteObjectTagging(ctx, objects);
  }
}

/** Errors that say the request's connection went away (its body cut off, its signal aborted). */
function isDisconnect(err: unknown): boolean {
  const e = err as (Error & { code?: string }) | undefined;
  return e?.name === 'AbortError' || (e?.code === 'ECONNRESET' && e.message === 'aborted') || (err instanceof S3Error && err.code === 'IncompleteBody');
}

/** The S3 XML error envelope for `err`, with details AWS includes. */
export function errorBody(err: S3Error, requestId: string): string {
  const nodes: XmlNode[] = [
    ['Code', err.code],
    ['Message', err.message],
  ];
  for (const [k, v] of Object.entries(err.details)) if (v !== undefined) nodes.push([k, String(v)]);
  nodes.push(['RequestId', requestId], ['HostId', Buffer.from(requestId).toString('base64')]);
  return xmlDocument('Error', nodes, null);
}

export function toS3Error(err: unknown, log: Logger): S3Error {
  if (err instanceof S3Error) return err;
  if (err instanceof CryptoError) {
    log.error('stored object data failed authentication (damaged, truncated or moved)');
    return new S3Error('InternalError');
  }
  const code = (err as NodeJS.ErrnoException)?.code;
  // node's error for a request body the client stopped sending (the connection closed).
  if (code === 'ECONNRESET' && (err as Error).message === 'aborted') return new S3Error('IncompleteBody');
  if (code === 'ENOENT') {
    log.error({ err }, 'object data is missing from the blob store');
    return new S3Error('InternalError');
  }
  log.error({ err }, 'internal error');
  return new S3Error('InternalError');
}

/**
 * Request bodies up to this size are drained after an early error, keeping the connection
 * (clients that do not use Expect: 100-continue read the answer only after sending the body).
 */
const DRAIN_LIMIT_BYTES = 16 * 1024 * 1024;

export function expectsContinue(req: IncomingMessage): boolean {
  return (req.headers.expect ?? '').toLowerCase() === '100-continue';
}

function renderError(req: IncomingMessage, res: ServerResponse, err: unknown, id: string, log: Logger, op?: Operation): void {
  const e = toS3Error(err, log);
  if (e.status >= 500) log.warn({ code: e.code }, 'request failed');
  else log.debug({ code: e.code, op: op?.name }, 'request refused');
  if (res.headersSent) {
    // Part of a body is out: the only honest signal left is to abort the connection.
    res.destroy(e);
    return;
  }
  for (const name of res.getHeaderNames()) {
    if (!['x-amz-request-id', 'x-amz-id-2', 'server'].includes(name)) res.removeHeader(name);
  }
  res.statusCode = e.status;
  for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
  if (!req.complete) {
    // The error came before the whole body. A small one is read and dropped, so the connection
    // serves the next request; for a large one (or one of unknown length), as AWS, answer and
    // close the connection rather than drain an upload of any size. Never leave the client
    // writing into a socket nobody reads.
    const length = Number(req.headers['content-length'] ?? NaN);
    if (expectsContinue(req) && !req.readableFlowing) {
      // No 100 Continue was sent: the client holds its body back. Answer and close.
      res.setHeader('connection', 'close');
    } else if (length <= DRAIN_LIMIT_BYTES) {
      req.unpipe();
      req.resume();
    } else {
      res.setHeader('connection', 'close');
    }
  }
  if (req.method === 'HEAD' || e.status === 304) {
    res.setHeader('content-length', 0);
    res.end();
    return;
  }
  const body = errorBody(e, id);
  res.setHeader('content-type', 'application/xml');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}
