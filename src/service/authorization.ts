// Authorization: judges one (principal, action, resource, context) with the policy module,
// against the user's inline identity policies and the bucket's policy, as AWS evaluates
// same-account S3 requests. Also builds the request-context condition keys from plain request
// facts (the S3 adapter and the policy simulator use the same function), and simulates a
// request for `coffer admin policy simulate` (and, later, the console's admin API).
import { describeStatement, evaluate, explain, type ContextValue, type Decision, type Policy, type RequestContext, type RequestPrincipal, type StatementRef } from '../policy/index.ts';
import type { Logger } from '../shared/logger.ts';
import { IdentityService, type Principal } from './identities.ts';
import { bucketArn, encryptionHeaderRequirements, objectArn, type NamedParsedPolicy, type PolicyService } from './policies.ts';

/** Actions the bucket owner (the account root user) may always perform: no lock-out. */
export const OWNER_ALWAYS = new Set(['s3:putbucketpolicy', 's3:getbucketpolicy', 's3:deletebucketpolicy']);

export interface AccessCheck {
  principal: Principal;
  /** e.g. 's3:PutObject' */
  action: string;
  /** The resource ARN. */
  resource: string;
  /** The bucket whose policy applies, if any. */
  bucket?: string;
  conditionKeys: Record<string, ContextValue>;
}

export interface AccessResult {
  allowed: boolean;
  decision: Decision;
  /** One line: "denied by statement DenyX (index 0) of the bucket policy" ... */
  explanation: string;
  /** The deciding statement (parsed), when there is one. */
  statement?: Statement;
  /** True when the owner exception (no lock-out) turned a Deny into an Allow. */
  ownerOverride?: boolean;
}

/** Plain facts about a request, from which the condition keys are filled. */
export interface RequestFacts {
  secure: boolean;
  sourceIp?: string;
  /** Lower-case header names. */
  headers: Record<string, string | undefined>;
  /** e.g. '1.3' (s3:TlsVersion); only for TLS requests. */
  tlsVersion?: string;
  /** From the SigV4 verification; absent for anonymous requests. */
  signature?: { signatureVersion: string; authType: string; contentSha256?: string; ageMs?: number };
  /** Listing parameters (s3:prefix, s3:delimiter, s3:max-keys), when the request has them. */
  listing?: { prefix?: string | null; delimiter?: string | null; maxKeys?: string | null };
  /**
   * Multipart steps after CreateMultipartUpload: the SSE header it recorded. When given, it
   * (not the request's header) fills s3:x-amz-server-side-encryption.
   */
  recordedSse?: { value?: string; kmsKeyId?: string };
  now: Date;
}

/** The S3 request condition keys AWS documents, from the facts of one request. */
export function conditionKeys(f: RequestFacts): Record<string, ContextValue> {
  const k: Record<string, ContextValue> = {
    'aws:SecureTransport': f.secure ? 'true' : 'false',
    'aws:CurrentTime': f.now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    'aws:EpochTime': String(Math.floor(f.now.getTime() / 1000)),
  };
  const set = (name: string, v: string | null | undefined) => {
    if (v !== undefined && v !== null) k[name] = v;
  };
  set('aws:SourceIp', f.sourceIp);
  set('aws:Referer', f.headers['referer']);
  set('aws:UserAgent', f.headers['user-agent']);
  if (f.recordedSse) set('s3:x-amz-server-side-encryption', f.recordedSse.value);
  else set('s3:x-amz-server-side-encryption', f.headers['x-amz-server-side-encryption']);
  if (f.recordedSse) set('s3:x-amz-server-side-encryption-aws-kms-key-id', f.recordedSse.kmsKeyId);
  else set('s3:x-amz-server-side-encryption-aws-kms-key-id', f.headers['x-amz-server-side-encryption-aws-kms-key-id']);
  set('s3:x-amz-server-side-encryption-customer-algorithm', f.headers['x-amz-server-side-encryption-customer-algorithm']);
  set('s3:x-amz-copy-source', f.headers['x-amz-copy-source']);
  set('s3:x-amz-metadata-directive', f.headers['x-amz-metadata-directive']);
  set('s3:x-amz-storage-class', f.headers['x-amz-storage-class']);
  set('s3:x-amz-acl', f.headers['x-amz-acl']);
  if (f.signature) {
    set('s3:signatureversion', f.signature.signatureVersion);
    set('s3:authType', f.signature.authType);
    set('s3:x-amz-content-sha256', f.signature.contentSha256 ?? f.headers['x-amz-content-sha256']);
    if (f.signature.ageMs !== undefined) set('s3:signatureAge', String(Math.max(0, Math.round(f.signature.ageMs))));
  }
  if (f.tlsVersion) set('s3:TlsVersion', f.tlsVersion);
  if (f.listing) {
    set('s3:prefix', f.listing.prefix);
    set('s3:delimiter', f.listing.delimiter);
    set('s3:max-keys', f.listing.maxKeys);
  }
  return k;
}

/** Node's TLS protocol name ('TLSv1.3') as s3:TlsVersion compares it ('1.3'). */
export function tlsVersionOf(protocol: string | null | undefined): string | undefined {
  const m = /^TLSv(\d(?:\.\d)?)$/.exec(protocol ?? '');
  if (!m) return undefined;
  return m[1]!.includes('.') ? m[1] : `${m[1]}.0`;
}

function toRequestPrincipal(p: Principal, ownerCanonicalId?: string): RequestPrincipal {
  return {
    type: p.type,
    arn: p.arn,
    account: p.account,
    ...(p.type === 'Root' ? { isRoot: true, ...(ownerCanonicalId ? { canonicalUserId: ownerCanonicalId } : {}) } : {}),
    ...(p.userName !== undefined ? { userName: p.userName } : {}),
    ...(p.type !== 'Anonymous' ? { userId: p.userId } : {}),
  };
}

export class Authorizer {
  constructor(
    private readonly policies: PolicyService,
    private readonly opts: { ownerCanonicalId?: string; log?: Logger } = {},
  ) {}

  /** Whether none of `buckets` (undefined: no bucket) has a bucket policy. */
  async noBucketPolicy(buckets: readonly (string | undefined)[]): Promise<boolean> {
    for (const b of buckets) if (b !== undefined && (await this.policies.bucketPolicy(b)) !== undefined) return false;
    return true;
  }

  async check(c: AccessCheck): Promise<AccessResult> {
    const identity: NamedParsedPolicy[] = c.principal.type === 'IAMUser' && c.principal.userName ? await this.policies.userPolicies(c.principal.userName) : [];
    const resourcePolicy = c.bucket !== undefined ? await this.policies.bucketPolicy(c.bucket) : undefined;
    return judge(identity, resourcePolicy, {
      principal: toRequestPrincipal(c.principal, this.opts.ownerCanonicalId),
      action: c.action,
      resource: c.resource,
      conditionKeys: c.conditionKeys,
    });
  }
}

/** Evaluates and words the result, naming identity policies by their names. */
export function judge(identity: NamedParsedPolicy[], resourcePolicy: Policy | undefined, req: RequestContext): AccessResult {
  let decision = evaluate({ identityPolicies: identity.map((p) => p.policy), ...(resourcePolicy ? { resourcePolicy } : {}) }, req);
  const ref = decision.decidingStatement;
  if (ref?.source === 'identity' && ref.policyIndex !== undefined && identity[ref.policyIndex]) {
    // Inline policies are known by their names: report that as the policy's id.
    decision = { ...decision, decidingStatement: { ...ref, policyId: identity[ref.policyIndex]!.name } };
  }
  const explanation = explain(decision);
  const statement = ref ? statementOf(ref, identity, resourcePolicy) : undefined;
  const base = { decision, explanation, ...(statement ? { statement } : {}) };
  if (decision.effect === 'Allow') return { allowed: true, ...base };
  const p = req.principal;
  if ((p.type === 'Root' || p.isRoot) && OWNER_ALWAYS.has(req.action.toLowerCase())) {
    return { allowed: true, ...base, ownerOverride: true, explanation: `${explanation}; allowed anyway: the bucket owner keeps access to the bucket policy API` };
  }
  return { allowed: false, ...base };
}

function statementOf(ref: StatementRef, identity: NamedParsedPolicy[], resourcePolicy: Policy | undefined): Statement | undefined {
  const policy = ref.source === 'identity' ? identity[ref.policyIndex ?? 0]?.policy : resourcePolicy;
  return policy?.statements.find((s) => s.index === ref.index);
}
type Statement = Policy['statements'][number];

// ---- simulation ----

export interface SimulationInput {
  /** A user name; absent: the root user (unless anonymous). */
  user?: string;
  anonymous?: boolean;
  action: string;
  bucket?: string;
  key?: string;
  /** Request headers (names any case), e.g. { 'x-amz-server-side-encryption': 'AES256' }. */
  headers?: Record<string, string>;
  secure?: boolean;
  sourceIp?: string;
  /** Extra condition keys, set last. */
  conditionKeys?: Record<string, string>;
  now?: Date;
}

export interface SimulationResult extends AccessResult {
  /** The deciding statement as written in its policy. */
  writtenStatement?: unknown;
  principal: string;
  action: string;
  resource: string;
  context: Record<string, ContextValue>;
  warnings: string[];
}

/**
 * Would this request be allowed, and by which statement? Uses the same policies, cache and
 * context keys as the S3 endpoint (a signed header request, unless anonymous).
 */
export async function simulate(input: SimulationInput, deps: { identities: IdentityService; policies: PolicyService; authorizer: Authorizer }): Promise<SimulationResult> {
  const principal = input.anonymous
    ? IdentityService.anonymous()
    : input.user !== undefined
      ? deps.identities.userPrincipal(await deps.identities.requireUser(input.user))
      : deps.identities.rootPrincipal();
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers ?? {})) headers[k.toLowerCase()] = v;
  const resource = input.bucket === undefined ? 'arn:aws:s3:::*' : input.key !== undefined ? objectArn(input.bucket, input.key) : bucketArn(input.bucket);
  const secure = input.secure ?? true;
  const context = {
    ...conditionKeys({
      secure,
      sourceIp: input.sourceIp ?? '127.0.0.1',
      headers,
      ...(secure ? { tlsVersion: '1.3' } : {}),
      ...(input.anonymous ? {} : { signature: { signatureVersion: 'AWS4-HMAC-SHA256', authType: 'REST-HEADER' } }),
      now: input.now ?? new Date(),
    }),
    ...(input.conditionKeys ?? {}),
  };
  const check = { principal, action: input.action, resource, ...(input.bucket !== undefined ? { bucket: input.bucket } : {}), conditionKeys: context };
  const result = await deps.authorizer.check(check);
  const warnings: string[] = [];
  const policy = input.bucket !== undefined ? await deps.policies.bucketPolicy(input.bucket) : undefined;
  if (policy) {
    for (const s of encryptionHeaderRequirements(policy)) {
      warnings.push(
        `the bucket policy of ${input.bucket} requires the x-amz-server-side-encryption header on uploads (${describeStatement({ source: 'resource', policyKind: 'bucket', index: s.index, ...(s.sid ? { sid: s.sid } : {}) })}): ` +
          'clients that rely on the default encryption (every Coffer object is encrypted) and send no header are denied',
      );
    }
    // The outage in one line: would this very request succeed without the header?
    if (/^s3:putobject$/i.test(input.action) && result.allowed && headers['x-amz-server-side-encryption'] !== undefined) {
      const without = await deps.authorizer.check({ ...check, conditionKeys: { ...context, 's3:x-amz-server-side-encryption': undefined } });
      if (!without.allowed) warnings.push(`without the header this upload would be denied: ${without.explanation}`);
    }
  }
  const ref = result.decision.decidingStatement;
  const written = ref ? await writtenStatement(ref, deps.policies, input.bucket, principal.userName) : undefined;
  return {
    ...result,
    principal: principal.type === 'Anonymous' ? 'anonymous' : principal.arn,
    action: input.action,
    resource,
    context,
    warnings,
    ...(written !== undefined ? { writtenStatement: written } : {}),
  };
}

/** The deciding statement as its author wrote it (from the stored JSON text). */
async function writtenStatement(ref: StatementRef, policies: PolicyService, bucket?: string, userName?: string): Promise<unknown> {
  let text: string | undefined;
  if (ref.source === 'resource' && bucket !== undefined) text = await policies.getBucketPolicyText(bucket);
  else if (ref.source === 'identity' && userName !== undefined) {
    text = (await policies.listUserPolicies(userName)).find((p) => p.name === ref.policyId)?.document;
  }
  if (text === undefined) return undefined;
  try {
    const doc = JSON.parse(text.replace(/^\uFEFF/, '')) as { Statement?: unknown };
    return Array.isArray(doc.Statement) ? doc.Statement[ref.index] : doc.Statement;
  } catch {
    return undefined;
  }
}

