// The AWS KMS JSON 1.1 API on the server's endpoint: POST with `X-Amz-Target:
// TrentService.<Operation>` and a small JSON body, SigV4 with service 'kms' over the body's
// SHA-256; answers JSON, errors as `{"__type": "<Name>Exception", "message": ...}` with AWS's
// statuses. Operations map onto KmsService, which authorizes every call. docs/kms.md.
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { verifySigV4, type CredentialLookup } from '../../auth/index.ts';
import { CryptoError, S3Error } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Principal } from '../../service/identities.ts';
import type { KmsTag } from '../../storage/ports.ts';
import { KmsError } from '../errors.ts';
import { validateGrantTokens } from '../grants.ts';
import type { KmsCaller, KmsService } from '../service.ts';

export const TARGET_PREFIX = 'TrentService.';
export const MAX_BODY_BYTES = 1024 * 1024;
const CONTENT_TYPE = 'application/x-amz-json-1.1';

export interface KmsApiDeps {
  kms: KmsService;
  credentials: CredentialLookup;
  region: string;
  log: Logger;
  now?: () => Date;
}

/** Does this request belong to the KMS API (X-Amz-Target: TrentService.*)? */
export function isKmsRequest(req: IncomingMessage): boolean {
  const t = req.headers['x-amz-target'];
  return typeof t === 'string' && t.startsWith(TARGET_PREFIX);
}

type Body = Record<string, unknown>;
type Op = (kms: KmsService, caller: KmsCaller, b: Body) => Promise<Body>;

function str(b: Body, name: string, required = false): string | undefined {
  const v = b[name];
  if (v === undefined || v === null) {
    if (required) throw new KmsError('ValidationException', `1 validation error detected: Value null at '${lowerFirst(name)}' failed to satisfy constraint: Member must not be null`);
    return undefined;
  }
  if (typeof v !== 'string') throw new KmsError('SerializationException', `${name} must be a string`);
  return v;
}

function num(b: Body, name: string): number | undefined {
  const v = b[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw new KmsError('SerializationException', `${name} must be a number`);
  return v;
}

function bool(b: Body, name: string): boolean | undefined {
  const v = b[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new KmsError('SerializationException', `${name} must be a boolean`);
  return v;
}

function blob(b: Body, name: string): Buffer {
  const v = str(b, name, true)!;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 === 1) throw new KmsError('SerializationException', `${name} is not valid base64`);
  return Buffer.from(v, 'base64');
}

function tags(b: Body): KmsTag[] | undefined {
  const v = b['Tags'];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new KmsError('SerializationException', 'Tags must be a list');
  return v.map((t: unknown) => {
    const o = (t ?? {}) as Body;
    return { key: str(o, 'TagKey', true)!, value: str(o, 'TagValue', true)! };
  });
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

function page<T>(p: { items: T[]; nextMarker?: string }, field: string): Body {
  return { [field]: p.items, Truncated: p.nextMarker !== undefined, ...(p.nextMarker !== undefined ? { NextMarker: p.nextMarker } : {}) };
}

const b64 = (b: Buffer) => b.toString('base64');

/** Operations whose DryRun Coffer does not implement (the grant operations do). */
const NO_DRY_RUN = new Set(['Encrypt', 'Decrypt', 'ReEncrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'GenerateRandom']);

/**
 * Parameters that change what a call returns and that Coffer does not implement are refused,
 * never ignored: a DryRun must not return real plaintext, and a Recipient (attested Nitro
 * enclave) expects the plaintext encrypted to it, never in the clear.
 */
function refuseUnsupportedParameters(opName: string, b: Body): void {
  if (NO_DRY_RUN.has(opName) && b['DryRun'] === true) {
    throw new KmsError('UnsupportedOperationException', `DryRun is not supported for ${opName} by this KMS.`);
  }
  if (b['Recipient'] !== undefined && b['Recipient'] !== null) {
    throw new KmsError('UnsupportedOperationException', 'Recipient (attested enclave) requests are not supported by this KMS.');
  }
}

export const OPERATIONS: Record<string, Op> = {
  CreateKey: async (kms, c, b) => ({
    KeyMetadata: await kms.createKey(c, {
      ...(str(b, 'Description') !== undefined ? { description: str(b, 'Description')! } : {}),
      ...(str(b, 'Policy') !== undefined ? { policy: str(b, 'Policy')! } : {}),
      ...(tags(b) ? { tags: tags(b)! } : {}),
      ...(bool(b, 'BypassPolicyLockoutSafetyCheck') ? { bypassPolicyLockoutSafetyCheck: true } : {}),
      ...(str(b, 'KeyUsage') !== undefined ? { keyUsage: str(b, 'KeyUsage')! } : {}),
      ...((str(b, 'KeySpec') ?? str(b, 'CustomerMasterKeySpec')) !== undefined ? { keySpec: (str(b, 'KeySpec') ?? str(b, 'CustomerMasterKeySpec'))! } : {}),
      ...(str(b, 'Origin') !== undefined ? { origin: str(b, 'Origin')! } : {}),
      ...(bool(b, 'MultiRegion') ? { multiRegion: true } : {}),
    }),
  }),
  DescribeKey: async (kms, c, b) => {
    validateGrantTokens(b['GrantTokens']);
    return { KeyMetadata: await kms.describeKey(c, str(b, 'KeyId', true)) };
  },
  ListKeys: async (kms, c, b) => page(await kms.listKeys(c, num(b, 'Limit'), str(b, 'Marker')), 'Keys'),
  CreateAlias: async (kms, c, b) => {
    await kms.createAlias(c, str(b, 'AliasName', true), str(b, 'TargetKeyId', true));
    return {};
  },
  UpdateAlias: async (kms, c, b) => {
    await kms.updateAlias(c, str(b, 'AliasName', true), str(b, 'TargetKeyId', true));
    return {};
  },
  DeleteAlias: async (kms, c, b) => {
    await kms.deleteAlias(c, str(b, 'AliasName', true));
    return {};
  },
  ListAliases: async (kms, c, b) => {
    const p = await kms.listAliases(c, str(b, 'KeyId'), num(b, 'Limit'), str(b, 'Marker'));
    return page(
      {
        ...p,
        items: p.items.map((a) => ({ AliasName: a.name, AliasArn: a.arn, TargetKeyId: a.keyId, CreationDate: a.createdAt / 1000, LastUpdatedDate: a.updatedAt / 1000 })),
      },
      'Aliases',
    );
  },
  EnableKey: async (kms, c, b) => {
    await kms.enableKey(c, str(b, 'KeyId', true));
    return {};
  },
  DisableKey: async (kms, c, b) => {
    await kms.disableKey(c, str(b, 'KeyId', true));
    return {};
  },
  ScheduleKeyDeletion: async (kms, c, b) => {
    const r = await kms.scheduleKeyDeletion(c, str(b, 'KeyId', true), num(b, 'PendingWindowInDays'));
    return { KeyId: r.keyArn, DeletionDate: r.deletionDate, KeyState: r.state, PendingWindowInDays: r.days };
  },
  CancelKeyDeletion: async (kms, c, b) => ({ KeyId: await kms.cancelKeyDeletion(c, str(b, 'KeyId', true)) }),
  Encrypt: async (kms, c, b) => {
    algorithm(b, 'EncryptionAlgorithm');
    validateGrantTokens(b['GrantTokens']);
    const r = await kms.encrypt(c, str(b, 'KeyId', true), blob(b, 'Plaintext'), b['EncryptionContext']);
    return { CiphertextBlob: b64(r.blob), KeyId: r.keyArn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
  },
  Decrypt: async (kms, c, b) => {
    algorithm(b, 'EncryptionAlgorithm');
    validateGrantTokens(b['GrantTokens']);
    const r = await kms.decrypt(c, blob(b, 'CiphertextBlob'), b['EncryptionContext'], str(b, 'KeyId'));
    return { KeyId: r.keyArn, Plaintext: b64(r.plaintext), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
  },
  ReEncrypt: async (kms, c, b) => {
    algorithm(b, 'SourceEncryptionAlgorithm');
    algorithm(b, 'DestinationEncryptionAlgorithm');
    validateGrantTokens(b['GrantTokens']);
    const r = await kms.reEncrypt(c, {
      blob: blob(b, 'CiphertextBlob'),
      sourceContext: b['SourceEncryptionContext'],
      sourceKeyId: str(b, 'SourceKeyId'),
      destinationKeyId: str(b, 'DestinationKeyId', true),
      destinationContext: b['DestinationEncryptionContext'],
    });
    return {
      CiphertextBlob: b64(r.blob),
      SourceKeyId: r.sourceKeyArn,
      KeyId: r.keyArn,
      SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    };
  },
  GenerateDataKey: async (kms, c, b) => {
    validateGrantTokens(b['GrantTokens']);
    const r = await kms.generateDataKey(c, { keyId: str(b, 'KeyId', true), keySpec: str(b, 'KeySpec'), numberOfBytes: num(b, 'NumberOfBytes'), context: b['EncryptionContext'], withPlaintext: true });
    return { CiphertextBlob: b64(r.blob), Plaintext: b64(r.plaintext!), KeyId: r.keyArn };
  },
  GenerateDataKeyWithoutPlaintext: async (kms, c, b) => {
    validateGrantTokens(b['GrantTokens']);
    const r = await kms.generateDataKey(c, { keyId: str(b, 'KeyId', true), keySpec: str(b, 'KeySpec'), numberOfBytes: num(b, 'NumberOfBytes'), context: b['EncryptionContext'], withPlaintext: false });
    return { CiphertextBlob: b64(r.blob), KeyId: r.keyArn };
  },
  GenerateRandom: async (kms, c, b) => ({ Plaintext: b64(await kms.generateRandom(c, num(b, 'NumberOfBytes'))) }),
  EnableKeyRotation: async (kms, c, b) => {
    await kms.enableKeyRotation(c, str(b, 'KeyId', true), num(b, 'RotationPeriodInDays'));
    return {};
  },
  DisableKeyRotation: async (kms, c, b) => {
    await kms.disableKeyRotation(c, str(b, 'KeyId', true));
    return {};
  },
  GetKeyRotationStatus: async (kms, c, b) => {
    const r = await kms.getKeyRotationStatus(c, str(b, 'KeyId', true));
    return {
      KeyRotationEnabled: r.enabled,
      KeyId: r.keyArn,
      ...(r.periodInDays !== undefined ? { RotationPeriodInDays: r.periodInDays } : {}),
      ...(r.nextRotation !== undefined ? { NextRotationDate: r.nextRotation } : {}),
    };
  },
  RotateKeyOnDemand: async (kms, c, b) => ({ KeyId: await kms.rotateKeyOnDemand(c, str(b, 'KeyId', true)) }),
  ListKeyRotations: async (kms, c, b) => page(await kms.listKeyRotations(c, str(b, 'KeyId', true), num(b, 'Limit'), str(b, 'Marker')), 'Rotations'),
  PutKeyPolicy: async (kms, c, b) => {
    await kms.putKeyPolicy(c, str(b, 'KeyId', true), str(b, 'PolicyName'), str(b, 'Policy', true), bool(b, 'BypassPolicyLockoutSafetyCheck'));
    return {};
  },
  GetKeyPolicy: async (kms, c, b) => {
    const name = str(b, 'PolicyName') ?? 'default';
    return { Policy: await kms.getKeyPolicy(c, str(b, 'KeyId', true), name), PolicyName: name };
  },
  ListKeyPolicies: async (kms, c, b) => ({ PolicyNames: await kms.listKeyPolicies(c, str(b, 'KeyId', true)), Truncated: false }),
  TagResource: async (kms, c, b) => {
    await kms.tagResource(c, str(b, 'KeyId', true), tags(b) ?? []);
    return {};
  },
  UntagResource: async (kms, c, b) => {
    const keys = b['TagKeys'];
    if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) throw new KmsError('SerializationException', 'TagKeys must be a list of strings');
    await kms.untagResource(c, str(b, 'KeyId', true), keys as string[]);
    return {};
  },
  ListResourceTags: async (kms, c, b) => {
    const p = await kms.listResourceTags(c, str(b, 'KeyId', true), num(b, 'Limit'), str(b, 'Marker'));
    return page({ ...p, items: p.items.map((t) => ({ TagKey: t.key, TagValue: t.value })) }, 'Tags');
  },
  // ---- grants ----
  CreateGrant: async (kms, c, b) => {
    validateGrantTokens(b['GrantTokens']);
    const r = await kms.createGrant(c, {
      keyId: str(b, 'KeyId', true),
      granteePrincipal: str(b, 'GranteePrincipal', true),
      retiringPrincipal: str(b, 'RetiringPrincipal'),
      operations: b['Operations'] ?? null,
      constraints: b['Constraints'],
      name: str(b, 'Name'),
      ...(bool(b, 'DryRun') ? { dryRun: true } : {}),
    });
    return { GrantToken: r.grantToken, GrantId: r.grantId };
  },
  ListGrants: async (kms, c, b) =>
    page(
      await kms.listGrants(c, { keyId: str(b, 'KeyId', true), grantId: str(b, 'GrantId'), granteePrincipal: str(b, 'GranteePrincipal'), limit: num(b, 'Limit'), marker: str(b, 'Marker') }),
      'Grants',
    ),
  ListRetirableGrants: async (kms, c, b) => page(await kms.listRetirableGrants(c, str(b, 'RetiringPrincipal', true), num(b, 'Limit'), str(b, 'Marker')), 'Grants'),
  RetireGrant: async (kms, c, b) => {
    await kms.retireGrant(c, { grantToken: str(b, 'GrantToken'), keyId: str(b, 'KeyId'), grantId: str(b, 'GrantId'), ...(bool(b, 'DryRun') ? { dryRun: true } : {}) });
    return {};
  },
  RevokeGrant: async (kms, c, b) => {
    await kms.revokeGrant(c, str(b, 'KeyId', true), str(b, 'GrantId', true), bool(b, 'DryRun'));
    return {};
  },
};

function algorithm(b: Body, name: string): void {
  const v = str(b, name);
  if (v !== undefined && v !== 'SYMMETRIC_DEFAULT') {
    throw new KmsError('InvalidKeyUsageException', `${v} is not a supported encryption algorithm for this key: Coffer keys are SYMMETRIC_DEFAULT`);
  }
}

/** Auth failures in the words KMS uses. */
function authError(e: S3Error): KmsError {
  switch (e.code) {
    case 'InvalidAccessKeyId':
      return new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    case 'SignatureDoesNotMatch':
      return new KmsError(
        'InvalidSignatureException',
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
      );
    case 'RequestTimeTooSkewed':
      return new KmsError('InvalidSignatureException', 'Signature expired: the request time is too far from the server time.');
    default:
      return new KmsError('InvalidSignatureException', e.message);
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        req.pause();
        reject(new KmsError('ValidationException', `The request body exceeds ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function createKmsHandler(deps: KmsApiDeps): (req: IncomingMessage, res: ServerResponse, secure: boolean) => void {
  const now = deps.now ?? (() => new Date());
  return (req, res, secure) => {
    const id = randomUUID();
    const started = process.hrtime.bigint();
    const log = deps.log.child({ reqId: id });
    const target = String(req.headers['x-amz-target'] ?? '');
    const opName = target.slice(TARGET_PREFIX.length);
    res.setHeader('x-amzn-requestid', id);
    res.setHeader('server', 'Coffer');
    handle(deps, req, secure, opName, now(), id)
      .then((out) => send(res, 200, out))
      .catch((err: unknown) => {
        const e = toKmsError(err, log);
        if (e.status >= 500) log.warn({ type: e.type }, 'kms request failed');
        else log.debug({ type: e.type, op: opName }, 'kms request refused');
        if (!req.complete) res.setHeader('connection', 'close');
        send(res, e.status, { __type: e.type, message: e.message });
      })
      .finally(() => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        log.info({ api: 'kms', op: opName, status: res.statusCode, ms: Math.round(ms * 10) / 10, secure }, 'request');
      });
  };
}

function send(res: ServerResponse, status: number, body: Body): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', CONTENT_TYPE);
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}

export function toKmsError(err: unknown, log: Logger): KmsError {
  if (err instanceof KmsError) return err;
  if (err instanceof CryptoError) {
    log.error('KMS key material failed authentication (damaged, or sealed under another root key)');
    return new KmsError('KMSInternalException', 'The request was rejected because an internal exception occurred.');
  }
  log.error({ err }, 'internal error');
  return new KmsError('KMSInternalException', 'The request was rejected because an internal exception occurred.');
}

async function handle(deps: KmsApiDeps, req: IncomingMessage, secure: boolean, opName: string, at: Date, requestId: string): Promise<Body> {
  if (req.method !== 'POST') throw new KmsError('UnknownOperationException', `KMS operations are POST requests, not ${req.method}`);
  const body = await readBody(req);
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const bodySha256 = createHash('sha256').update(body).digest('hex');
  let auth;
  try {
    auth = await verifySigV4(
      { method: 'POST', rawPath: q < 0 ? url : url.slice(0, q), rawQuery: q < 0 ? '' : url.slice(q + 1), headers: req.headersDistinct, bodySha256 },
      deps.credentials,
      { now: at, service: 'kms', region: deps.region },
    );
  } catch (e) {
    if (e instanceof S3Error) throw authError(e);
    throw e;
  }
  if (auth.kind !== 'signed') throw new KmsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
  if (auth.payload.type === 'sha256' && auth.payload.hex !== bodySha256) {
    throw new KmsError('InvalidSignatureException', 'The x-amz-content-sha256 header does not match the request body.');
  }
  const principal = auth.credential.principal as Principal;
  const sourceIp = req.socket.remoteAddress?.replace(/^::ffff:/, '');
  const userAgent = typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : undefined;
  const caller: KmsCaller = {
    principal,
    conditionKeys: {
      'aws:SecureTransport': secure ? 'true' : 'false',
      'aws:CurrentTime': at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      'aws:EpochTime': String(Math.floor(at.getTime() / 1000)),
      ...(sourceIp ? { 'aws:SourceIp': sourceIp } : {}),
      ...(userAgent !== undefined ? { 'aws:UserAgent': userAgent } : {}),
    },
    ...(sourceIp ? { sourceIp } : {}),
    ...(userAgent !== undefined ? { userAgent } : {}),
    requestId,
    accessKeyId: auth.credential.accessKeyId,
  };
  try {
    const op = Object.hasOwn(OPERATIONS, opName) ? OPERATIONS[opName] : undefined;
    if (!op) throw new KmsError('UnknownOperationException', `Unknown operation ${opName}`);
    let parsed: unknown = {};
    if (body.length) {
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        throw new KmsError('SerializationException', 'The request body is not valid JSON');
      }
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new KmsError('SerializationException', 'The request body must be a JSON object');
    refuseUnsupportedParameters(opName, parsed as Body);
    return await op(deps.kms, caller, parsed as Body);
  } catch (err) {
    // An authenticated call refused before it reached an operation (malformed parameters,
    // unknown operation) is audited too; the operations record their own outcomes.
    await deps.kms.recordFailure(caller, opName, err);
    throw err;
  }
}
