// The shapes of the policy module: a parsed Policy (plain, frozen data, safe to cache and to
// share between requests), the RequestContext a caller builds for one request, and the
// Decision the evaluator answers. docs/policy.md describes the language and the semantics.

export type PolicyKind = 'bucket' | 'identity' | 'key';
export type PolicyVersion = '2012-10-17' | '2008-10-17';
export type Effect = 'Allow' | 'Deny';

/** The principals a Principal or NotPrincipal element names. */
export interface PrincipalSet {
  /** `"*"` or `{"AWS": "*"}`: everyone, anonymous included. */
  readonly wildcard: boolean;
  /** AWS principals as written: 12-digit account ids and IAM/STS ARNs. */
  readonly aws: readonly string[];
  readonly service: readonly string[];
  readonly canonicalUser: readonly string[];
  /** Accepted for compatibility; Coffer has no federated principals, so these never match. */
  readonly federated: readonly string[];
}

export type ConditionOperatorName =
  | 'StringEquals'
  | 'StringNotEquals'
  | 'StringEqualsIgnoreCase'
  | 'StringNotEqualsIgnoreCase'
  | 'StringLike'
  | 'StringNotLike'
  | 'NumericEquals'
  | 'NumericNotEquals'
  | 'NumericLessThan'
  | 'NumericLessThanEquals'
  | 'NumericGreaterThan'
  | 'NumericGreaterThanEquals'
  | 'DateEquals'
  | 'DateNotEquals'
  | 'DateLessThan'
  | 'DateLessThanEquals'
  | 'DateGreaterThan'
  | 'DateGreaterThanEquals'
  | 'Bool'
  | 'BinaryEquals'
  | 'IpAddress'
  | 'NotIpAddress'
  | 'ArnEquals'
  | 'ArnNotEquals'
  | 'ArnLike'
  | 'ArnNotLike'
  | 'Null';

export type SetQualifier = 'ForAnyValue' | 'ForAllValues';

/** One (operator, key, values) triple of a Condition block. All clauses of a statement are AND'ed. */
export interface ConditionClause {
  /** The operator as written, e.g. "ForAnyValue:StringLikeIfExists". */
  readonly operator: string;
  readonly base: ConditionOperatorName;
  readonly qualifier?: SetQualifier;
  readonly ifExists: boolean;
  /** The condition key as written (looked up case-insensitively). */
  readonly key: string;
  /** Policy values, as strings (JSON numbers and booleans are converted). OR'ed. */
  readonly values: readonly string[];
}

export interface Statement {
  /** 0-based position in the Statement array (0 when Statement is a single object). */
  readonly index: number;
  readonly sid?: string;
  readonly effect: Effect;
  readonly principal?: PrincipalSet;
  readonly notPrincipal?: PrincipalSet;
  readonly action?: readonly string[];
  readonly notAction?: readonly string[];
  readonly resource?: readonly string[];
  readonly notResource?: readonly string[];
  readonly conditions: readonly ConditionClause[];
}

export interface Policy {
  readonly kind: PolicyKind;
  /** Absent when the document has no Version: AWS then applies 2008-10-17 (no policy variables). */
  readonly version?: PolicyVersion;
  readonly id?: string;
  readonly statements: readonly Statement[];
}

export type PrincipalType = 'Root' | 'IAMUser' | 'Anonymous' | 'Service';

export interface RequestPrincipal {
  readonly type: PrincipalType;
  /**
   * `arn:aws:iam::<account>:root`, `arn:aws:iam::<account>:user/<name>`; for 'Service' the
   * service principal name (`s3.amazonaws.com`); ignored for 'Anonymous'.
   */
  readonly arn: string;
  /** 12-digit account id ('' for anonymous). */
  readonly account: string;
  /** Same as type 'Root'; either marks the account root user. */
  readonly isRoot?: boolean;
  /** aws:username (defaults to the last path segment of a user ARN). */
  readonly userName?: string;
  /** aws:userid (defaults to the account id for the root user). */
  readonly userId?: string;
  /** Matched by `{"CanonicalUser": ...}`. */
  readonly canonicalUserId?: string;
}

export type ContextValue = string | readonly string[] | undefined;

export interface RequestContext {
  readonly principal: RequestPrincipal;
  /** `service:Action`, e.g. 's3:PutObject' (matched case-insensitively). */
  readonly action: string;
  /** The resource ARN, e.g. 'arn:aws:s3:::bucket/key' (matched case-sensitively). */
  readonly resource: string;
  /**
   * Condition keys, looked up case-insensitively. Multi-valued keys as arrays; an empty array
   * is the same as an absent key. aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType,
   * aws:username and aws:userid default from `principal` when not given here.
   */
  readonly conditionKeys: Readonly<Record<string, ContextValue>>;
}

export interface StatementRef {
  readonly source: 'identity' | 'resource';
  readonly policyKind: PolicyKind;
  /** Position of the policy in EvaluationInput.identityPolicies (identity source only). */
  readonly policyIndex?: number;
  readonly policyId?: string;
  readonly sid?: string;
  readonly index: number;
}

export interface Decision {
  readonly effect: 'Allow' | 'Deny' | 'ImplicitDeny';
  /** The statement that decided: the first applicable Deny, else the Allow that allowed. */
  readonly decidingStatement?: StatementRef;
  /**
   * For a key policy that delegates to IAM: the key policy statement naming the account,
   * which let the identity policy in decidingStatement count.
   */
  readonly delegatedBy?: StatementRef;
  readonly reason: string;
}

/**
 * How the resource policy combines with identity policies (same account):
 * - 'union' (S3, the default unless the resource policy is a key policy): an Allow from an
 *   identity policy or from the resource policy allows; the account root user is allowed
 *   whatever no policy denies.
 * - 'key-policy' (KMS): the key policy must allow, either naming the principal or naming the
 *   account, which delegates to identity policies (then one of those must allow too).
 */
export type EvaluationMode = 'union' | 'key-policy';

export interface EvaluationInput {
  readonly identityPolicies: readonly Policy[];
  readonly resourcePolicy?: Policy;
  /** Defaults to 'key-policy' when resourcePolicy.kind is 'key', else 'union'. */
  readonly mode?: EvaluationMode;
}
