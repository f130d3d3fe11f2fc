// Builders for the policy evaluation vectors (test/policy/vectors.json): the vector shape,
// fixed principals and ARNs, statement and policy shorthands, and the source citations. The
// expected outcome of every vector is written by hand in the case files, never computed.
import type { EvaluationMode, RequestPrincipal } from '../../../src/policy/index.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Obj = { [k: string]: Json };

export interface ExpectedRef {
  source: 'identity' | 'resource';
  index: number;
  sid?: string;
  policyIndex?: number;
}

export interface Vector {
  name: string;
  source: string;
  policies: { identity?: Obj[]; resource?: Obj; resourceKind?: 'bucket' | 'key'; mode?: EvaluationMode };
  request: { principal: RequestPrincipal; action: string; resource: string; conditionKeys: Record<string, string | string[]> };
  expected: { effect: 'Allow' | 'Deny' | 'ImplicitDeny'; decidingStatement?: ExpectedRef };
}

export const ACCT = '111122223333';
export const OTHER_ACCT = '444455556666';
export const BUCKET = 'amzn-s3-demo-bucket';
export const BUCKET_ARN = `arn:aws:s3:::${BUCKET}`;
export const obj = (key: string) => `${BUCKET_ARN}/${key}`;
export const KEY_ARN = `arn:aws:kms:us-east-1:${ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

export function user(name: string, account = ACCT): RequestPrincipal {
  return { type: 'IAMUser', arn: `arn:aws:iam::${account}:user/${name}`, account, userName: name, userId: `AIDA${name.toUpperCase()}EXAMPLE` };
}
export const alice = user('alice');
export const bob = user('bob');
export const root: RequestPrincipal = { type: 'Root', arn: `arn:aws:iam::${ACCT}:root`, account: ACCT, isRoot: true };
export const anonymous: RequestPrincipal = { type: 'Anonymous', arn: '*', account: '' };
export const ALICE_ARN = alice.arn;
export const ROOT_ARN = root.arn;

export function policy(...statements: Obj[]): Obj {
  return { Version: '2012-10-17', Statement: statements };
}
export function allow(fields: Obj): Obj {
  return { Effect: 'Allow', ...fields };
}
export function deny(fields: Obj): Obj {
  return { Effect: 'Deny', ...fields };
}

export function request(principal: RequestPrincipal, action: string, resource: string, conditionKeys: Record<string, string | string[]> = {}): Vector['request'] {
  return { principal, action, resource, conditionKeys };
}

export const ALLOW = 'Allow' as const;
export const DENY = 'Deny' as const;
export const IMPLICIT = 'ImplicitDeny' as const;

/** The deciding statement: identity policy #policyIndex or the resource policy. */
export const idRef = (index: number, sid?: string, policyIndex = 0): ExpectedRef => ({ source: 'identity', index, ...(sid ? { sid } : {}), policyIndex });
export const resRef = (index: number, sid?: string): ExpectedRef => ({ source: 'resource', index, ...(sid ? { sid } : {}) });

export function vector(
  name: string,
  source: string,
  policies: Vector['policies'],
  req: Vector['request'],
  effect: Vector['expected']['effect'],
  deciding?: ExpectedRef,
): Vector {
  return { name, source, policies, request: req, expected: deciding ? { effect, decidingStatement: deciding } : { effect } };
}

/**
 * An operator case: alice's identity policy allows s3:GetObject on everything under one
 * condition clause (Sid "Cond"); `matches` says whether the clause holds for `keys`.
 */
export function conditionCase(name: string, source: string, condition: Obj, keys: Record<string, string | string[]>, matches: boolean, version = '2012-10-17'): Vector {
  const doc = { Version: version, Statement: [{ Sid: 'Cond', Effect: 'Allow', Action: 's3:GetObject', Resource: '*', Condition: condition }] };
  return vector(name, source, { identity: [doc] }, request(alice, 's3:GetObject', obj('k'), keys), matches ? ALLOW : IMPLICIT, matches ? idRef(0, 'Cond') : undefined);
}

const IAM = 'https://docs.aws.amazon.com/IAM/latest/UserGuide';
export const SRC = {
  operators: `${IAM}/reference_policies_elements_condition_operators.html`,
  multiValued: `${IAM}/reference_policies_condition-single-vs-multi-valued-context-keys.html`,
  variables: `${IAM}/reference_policies_variables.html`,
  evaluation: `${IAM}/reference_policies_evaluation-logic.html`,
  evaluationBasics: `${IAM}/reference_policies_evaluation-logic_policy-eval-basics.html`,
  principal: `${IAM}/reference_policies_elements_principal.html`,
  notPrincipal: `${IAM}/reference_policies_elements_notprincipal.html`,
  action: `${IAM}/reference_policies_elements_action.html`,
  notAction: `${IAM}/reference_policies_elements_notaction.html`,
  resource: `${IAM}/reference_policies_elements_resource.html`,
  notResource: `${IAM}/reference_policies_elements_notresource.html`,
  condition: `${IAM}/reference_policies_elements_condition.html`,
  globalKeys: `${IAM}/reference_policies_condition-keys.html`,
  s3Examples: 'https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies.html',
  s3UserPolicies: 'https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-policies-s3.html',
  s3Sse: 'https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingServerSideEncryption.html',
  s3Kms: 'https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html',
  wireC6: 'shared/reference/aws-encryption-wire.md c.6 (AWS Organizations SCP example, RCP example S3-Deny-SSE-C)',
  kmsDefault: 'https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html',
  kmsConditions: 'https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html',
  kmsPolicies: 'https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html',
  edge: (what: string) => `edge case: ${what}`,
};
