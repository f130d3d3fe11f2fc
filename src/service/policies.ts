// Bucket policies and users' inline identity policies: validated with the policy module when
// they are put, stored as the JSON text the user wrote, and served parsed from a short-lived
// cache, so authorization never parses JSON per request. A change made in this process is seen
// at once; one made by another process (an admin command, another node) within CACHE_MS.
import { parsePolicy, type Policy, type Statement } from '../policy/index.ts';
import { S3Error } from '../shared/errors.ts';
import type { MetadataStore } from '../storage/ports.ts';
import { IdentityError } from './identities.ts';

export const POLICY_CACHE_MS = 5_000;
const MAX_CACHED = 10_000;

export interface NamedParsedPolicy {
  name: string;
  policy: Policy;
}

/** The ARN of a bucket (arn:aws:s3:::bucket) and of an object in it. */
export function bucketArn(bucket: string): string {
  return `arn:aws:s3:::${bucket}`;
}
export function objectArn(bucket: string, key: string): string {
  return `arn:aws:s3:::${bucket}/${key}`;
}

export function parseBucketPolicy(bucket: string, text: string): Policy {
  return parsePolicy(text, { kind: 'bucket', resourceArnPrefix: bucketArn(bucket) });
}

export function parseIdentityPolicy(text: string): Policy {
  return parsePolicy(text, { kind: 'identity' });
}

const POLICY_NAME = /^[\w+=,.@-]{1,128}$/;

export class PolicyService {
  private buckets = new Map<string, { at: number; policy: Policy | undefined }>();
  private users = new Map<string, { at: number; policies: NamedParsedPolicy[] }>();

  constructor(
    private readonly meta: MetadataStore,
    private readonly now: () => number = Date.now,
  ) {}

  // ---- bucket policies ----

  /** The bucket's parsed policy, or undefined when it has none (or the bucket is absent). */
  async bucketPolicy(bucket: string): Promise<Policy | undefined> {
    const hit = this.buckets.get(bucket);
    if (hit && this.now() - hit.at < POLICY_CACHE_MS) return hit.policy;
    const text = await this.meta.getBucketPolicy(bucket);
    // Stored documents were validated when put; one that no longer parses fails closed.
    const policy = text === undefined ? undefined : parseBucketPolicy(bucket, text);
    if (this.buckets.size > MAX_CACHED) this.buckets.clear();
    this.buckets.set(bucket, { at: this.now(), policy });
    return policy;
  }

  /** The policy text as put, or undefined. */
  getBucketPolicyText(bucket: string): Promise<string | undefined> {
    return this.meta.getBucketPolicy(bucket);
  }

  /**
   * Validates and stores a bucket policy. A document that is not valid throws MalformedPolicy
   * (PolicyError) and the previous policy stays in force; an absent bucket NoSuchBucket.
   */
  async putBucketPolicy(bucket: string, text: string): Promise<Policy> {
    const policy = parseBucketPolicy(bucket, text);
    if (!(await this.meta.setBucketPolicy(bucket, text))) throw new S3Error('NoSuchBucket', undefined, { BucketName: bucket });
    this.buckets.delete(bucket);
    return policy;
  }

  /** Deletes a bucket's policy (deleting none is not an error); false if the bucket is absent. */
  async deleteBucketPolicy(bucket: string): Promise<boolean> {
    const ok = await this.meta.setBucketPolicy(bucket, undefined);
    this.buckets.delete(bucket);
    return ok;
  }

  /** Forget a bucket's cached policy (after the bucket was deleted in this process). */
  forgetBucket(bucket: string): void {
    this.buckets.delete(bucket);
  }

  // ---- users' inline policies ----

  async userPolicies(userName: string): Promise<NamedParsedPolicy[]> {
    const hit = this.users.get(userName);
    if (hit && this.now() - hit.at < POLICY_CACHE_MS) return hit.policies;
    const stored = await this.meta.listUserPolicies(userName);
    const policies = stored.map((p) => ({ name: p.name, policy: parseIdentityPolicy(p.document) }));
    if (this.users.size > MAX_CACHED) this.users.clear();
    this.users.set(userName, { at: this.now(), policies });
    return policies;
  }

  /** Validates (kind identity) and attaches or replaces an inline policy of an existing user. */
  async putUserPolicy(userName: string, policyName: string, text: string): Promise<Policy> {
    if (!POLICY_NAME.test(policyName)) {
      throw new IdentityError(`policy name "${policyName}" must be 1 to 128 characters of letters, digits and +=,.@_-`, 'ValidationError');
    }
    const policy = parseIdentityPolicy(text);
    if (!(await this.meta.getUser(userName))) throw new IdentityError(`no user named ${userName}`, 'NoSuchEntity');
    await this.meta.putUserPolicy(userName, { name: policyName, document: text });
    this.users.delete(userName);
    return policy;
  }

  async listUserPolicies(userName: string): Promise<{ name: string; document: string }[]> {
    if (!(await this.meta.getUser(userName))) throw new IdentityError(`no user named ${userName}`, 'NoSuchEntity');
    return this.meta.listUserPolicies(userName);
  }

  async deleteUserPolicy(userName: string, policyName: string): Promise<void> {
    if (!(await this.meta.deleteUserPolicy(userName, policyName))) {
      throw new IdentityError(`user ${userName} has no policy named ${policyName}`, 'NoSuchEntity');
    }
    this.users.delete(userName);
  }

  /** Forget every cached policy (after a change made elsewhere, or a user deleted here). */
  invalidate(): void {
    this.buckets.clear();
    this.users.clear();
  }
}

// ---- what a policy says, for status and warnings ----

/**
 * Condition keys that, compared with fixed values, keep an Allow to everyone from being public
 * (AWS "The meaning of public": a principal or source that is not a wildcard).
 */
const RESTRICTING_KEYS = new Set(
  [
    'aws:SourceIp',
    'aws:SourceArn',
    'aws:SourceVpc',
    'aws:SourceVpce',
    'aws:SourceOwner',
    'aws:SourceAccount',
    'aws:PrincipalOrgID',
    'aws:PrincipalAccount',
    'aws:PrincipalArn',
    'aws:userid',
    'aws:username',
    's3:DataAccessPointArn',
    's3:DataAccessPointAccount',
  ].map((k) => k.toLowerCase()),
);
const FIXED_VALUE_OPERATORS = new Set(['StringEquals', 'StringEqualsIgnoreCase', 'StringLike', 'ArnEquals', 'ArnLike', 'IpAddress']);

function restricts(s: Statement): boolean {
  return s.conditions.some((c) => {
    if (!RESTRICTING_KEYS.has(c.key.toLowerCase()) || !FIXED_VALUE_OPERATORS.has(c.base) || c.ifExists || c.qualifier === 'ForAllValues') return false;
    if (c.base === 'IpAddress') return c.values.every((v) => !/\/0$/.test(v));
    return c.values.every((v) => v !== '*' && !/^\*+$/.test(v));
  });
}

/**
 * GetBucketPolicyStatus: public when a statement allows everyone (Principal "*" or
 * {"AWS":"*"}) without a condition that pins the requester or its source to fixed values.
 */
export function isPublicPolicy(policy: Policy): boolean {
  return policy.statements.some((s) => s.effect === 'Allow' && s.principal?.wildcard === true && !restricts(s));
}

const SSE_KEY = 's3:x-amz-server-side-encryption';
const NEGATED_STRING = new Set(['StringNotEquals', 'StringNotEqualsIgnoreCase', 'StringNotLike']);

function coversPutObject(s: Statement): boolean {
  const match = (list: readonly string[]) =>
    list.some((a) => {
      const re = new RegExp('^' + a.toLowerCase().replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
      return re.test('s3:putobject');
    });
  if (s.action) return match(s.action);
  if (s.notAction) return !match(s.notAction);
  return false;
}

/**
 * Deny statements that refuse uploads without x-amz-server-side-encryption (Null "true", or a
 * negated string operator on the key): with such a policy, clients that rely on the bucket's
 * default encryption and send no header are denied, a common outage.
 */
export function encryptionHeaderRequirements(policy: Policy): Statement[] {
  return policy.statements.filter(
    (s) =>
      s.effect === 'Deny' &&
      coversPutObject(s) &&
      s.conditions.some(
        (c) =>
          c.key.toLowerCase() === SSE_KEY &&
          ((c.base === 'Null' && c.values.some((v) => v.toLowerCase() === 'true')) || (NEGATED_STRING.has(c.base) && c.qualifier !== 'ForAnyValue')),
      ),
  );
}
