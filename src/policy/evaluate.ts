// Evaluation of parsed policies against one request, as AWS documents it for same-account
// access: an applicable explicit Deny anywhere wins; else an Allow decides (from an identity
// policy or from the resource policy in 'union' mode; through the key policy in 'key-policy'
// mode); else the request is implicitly denied. Pure: no clock, no I/O; the caller puts the
// time (aws:CurrentTime, aws:EpochTime) and everything else in the request context.
import { evaluateClause, type ConditionEnv } from './conditions.ts';
import { matchArn, matchPieces, resolve, tokenize, UnresolvedVariable } from './pattern.ts';
import type {
  Decision,
  EvaluationInput,
  EvaluationMode,
  Policy,
  PrincipalSet,
  RequestContext,
  RequestPrincipal,
  Statement,
  StatementRef,
} from './types.ts';

/** How a statement's Principal relates to the requester: 'account' means "names the account, which delegates to IAM". */
type PrincipalMatch = 'none' | 'direct' | 'account';

interface Applicable {
  readonly statement: Statement;
  readonly ref: StatementRef;
  readonly principal: PrincipalMatch;
}

export function isRootPrincipal(p: RequestPrincipal): boolean {
  return p.type === 'Root' || p.isRoot === true;
}

/** The request's condition keys, case-insensitive, with the principal keys defaulted. */
export function contextLookup(req: RequestContext): (key: string) => readonly string[] | undefined {
  const map = new Map<string, readonly string[]>();
  const p = req.principal;
  const put = (k: string, v: unknown) => {
    if (v === undefined || v === null) return;
    const list = Array.isArray(v) ? v.map(String) : [String(v)];
    map.set(k.toLowerCase(), list);
  };
  if (p.type !== 'Anonymous') {
    put('aws:PrincipalArn', p.arn);
    put('aws:PrincipalAccount', p.account || undefined);
    put('aws:PrincipalType', isRootPrincipal(p) ? 'Account' : p.type === 'IAMUser' ? 'User' : undefined);
    const userName = p.userName ?? (p.type === 'IAMUser' ? /:user\/(?:.*\/)?([^/]+)$/.exec(p.arn)?.[1] : undefined);
    put('aws:username', userName);
    put('aws:userid', p.userId ?? (isRootPrincipal(p) ? p.account : undefined));
  } else put('aws:PrincipalType', 'Anonymous');
  for (const [k, v] of Object.entries(req.conditionKeys)) put(k, v);
  return (key) => map.get(key.toLowerCase());
}

/** The account an AWS principal entry names as a whole (account id or root ARN), if it does. */
function accountOf(entry: string): string | undefined {
  return /^\d{12}$/.test(entry) ? entry : /^arn:[^:]+:iam::(\d{12}):root$/.exec(entry)?.[1];
}

function matchPrincipal(set: PrincipalSet, p: RequestPrincipal): PrincipalMatch {
  if (set.wildcard) return 'direct';
  let result: PrincipalMatch = 'none';
  if (p.type === 'Anonymous') return 'none';
  for (const entry of set.aws) {
    const account = accountOf(entry);
    if (account !== undefined) {
      if (account === p.account) {
        if (isRootPrincipal(p)) return 'direct';
        result = 'account';
      }
    } else if (entry === p.arn) return 'direct';
  }
  if (p.type === 'Service' && set.service.includes(p.arn)) return 'direct';
  if (p.canonicalUserId && set.canonicalUser.includes(p.canonicalUserId.toLowerCase())) return 'direct';
  return result;
}

/**
 * NotPrincipal (only with Deny): AWS judges each identity behind the request (the account,
 * then the user), and the statement applies if any of them is not listed. So a user is
 * exempt only when both the user and the account are listed; the root user when the account is.
 */
function notPrincipalApplies(set: PrincipalSet, p: RequestPrincipal): boolean {
  if (set.wildcard) return false;
  if (p.type === 'Anonymous') return true;
  const accountListed = set.aws.some((e) => accountOf(e) === p.account);
  if (isRootPrincipal(p)) return !accountListed;
  if (p.type === 'Service') return !set.service.includes(p.arn);
  const userListed = set.aws.includes(p.arn) || (p.canonicalUserId !== undefined && set.canonicalUser.includes(p.canonicalUserId.toLowerCase()));
  return !(accountListed && userListed);
}

function matchesAction(patterns: readonly string[], action: string): boolean {
  return patterns.some((a) => matchPieces(tokenize(a, { wildcards: true, variables: false }), action, true));
}

function matchesResource(patterns: readonly string[], resource: string, env: ConditionEnv): boolean {
  // Every entry is resolved first, so an unresolvable variable makes the statement not apply
  // whatever the order of the entries.
  const resolved = patterns.map((r) => resolve(tokenize(r, { wildcards: true, variables: env.variables }), env.lookup));
  return resolved.some((pieces) => (resource.startsWith('arn:') ? matchArn(pieces, resource) : matchPieces(pieces, resource)));
}

/**
 * Whether `s` applies to the request, apart from its Principal. A statement whose Resource or
 * condition values name a variable the request cannot resolve does not apply.
 */
function appliesToRequest(policy: Policy, s: Statement, req: RequestContext, lookup: (k: string) => readonly string[] | undefined): boolean {
  if (s.action && !matchesAction(s.action, req.action)) return false;
  if (s.notAction && matchesAction(s.notAction, req.action)) return false;
  const env: ConditionEnv = { variables: policy.version === '2012-10-17', lookup };
  try {
    if (s.resource && !matchesResource(s.resource, req.resource, env)) return false;
    if (s.notResource && matchesResource(s.notResource, req.resource, env)) return false;
    return s.conditions.every((c) => evaluateClause(c, lookup(c.key), env));
  } catch (e) {
    if (e instanceof UnresolvedVariable) return false;
    throw e;
  }
}

function refOf(policy: Policy, s: Statement, source: 'identity' | 'resource', policyIndex?: number): StatementRef {
  return {
    source,
    policyKind: policy.kind,
    ...(policyIndex !== undefined ? { policyIndex } : {}),
    ...(policy.id !== undefined ? { policyId: policy.id } : {}),
    ...(s.sid !== undefined && s.sid !== '' ? { sid: s.sid } : {}),
    index: s.index,
  };
}

function collect(input: EvaluationInput, req: RequestContext): Applicable[] {
  const lookup = contextLookup(req);
  const out: Applicable[] = [];
  input.identityPolicies.forEach((policy, pi) => {
    for (const s of policy.statements) {
      if (appliesToRequest(policy, s, req, lookup)) out.push({ statement: s, ref: refOf(policy, s, 'identity', pi), principal: 'direct' });
    }
  });
  const rp = input.resourcePolicy;
  if (rp) {
    for (const s of rp.statements) {
      let principal: PrincipalMatch = 'direct';
      if (s.principal) principal = matchPrincipal(s.principal, req.principal);
      else if (s.notPrincipal) principal = notPrincipalApplies(s.notPrincipal, req.principal) ? 'direct' : 'none';
      if (principal !== 'none' && appliesToRequest(rp, s, req, lookup)) out.push({ statement: s, ref: refOf(rp, s, 'resource'), principal });
    }
  }
  return out;
}

/** "statement DenyX (index 0) of the bucket policy" */
export function describeStatement(ref: StatementRef): string {
  const which = ref.sid !== undefined ? `statement ${ref.sid} (index ${ref.index})` : `statement at index ${ref.index}`;
  let policy: string;
  if (ref.source === 'resource') policy = ref.policyKind === 'key' ? 'the key policy' : ref.policyKind === 'bucket' ? 'the bucket policy' : 'the resource policy';
  else policy = `identity policy ${ref.policyId !== undefined ? `'${ref.policyId}'` : `#${ref.policyIndex ?? 0}`}`;
  return `${which} of ${policy}`;
}

function describeRequest(req: RequestContext): string {
  const who = req.principal.type === 'Anonymous' ? 'an anonymous requester' : req.principal.arn;
  return `${req.action} on ${req.resource} by ${who}`;
}

export function evaluate(input: EvaluationInput, req: RequestContext): Decision {
  const mode: EvaluationMode = input.mode ?? (input.resourcePolicy?.kind === 'key' ? 'key-policy' : 'union');
  const applicable = collect(input, req);
  const what = describeRequest(req);

  const deny = applicable.find((a) => a.statement.effect === 'Deny');
  if (deny) return { effect: 'Deny', decidingStatement: deny.ref, reason: `${describeStatement(deny.ref)} explicitly denies ${what}` };

  const allows = applicable.filter((a) => a.statement.effect === 'Allow');
  const identityAllow = allows.find((a) => a.ref.source === 'identity');
  const resourceDirect = allows.find((a) => a.ref.source === 'resource' && a.principal === 'direct');
  const resourceAccount = allows.find((a) => a.ref.source === 'resource' && a.principal === 'account');

  if (mode === 'union') {
    const allow = identityAllow ?? resourceDirect;
    if (allow) return { effect: 'Allow', decidingStatement: allow.ref, reason: `${describeStatement(allow.ref)} allows ${what}` };
    if (isRootPrincipal(req.principal) && req.principal.account !== '') {
      return { effect: 'Allow', reason: `the account root user may do whatever no policy denies: ${what} allowed` };
    }
    const note = resourceAccount
      ? `; ${describeStatement(resourceAccount.ref)} names the account, which only delegates to identity policies, and none allows`
      : '';
    return { effect: 'ImplicitDeny', reason: `no statement allows ${what}${note}` };
  }

  // key-policy mode: the key policy is the gate.
  if (resourceDirect) return { effect: 'Allow', decidingStatement: resourceDirect.ref, reason: `${describeStatement(resourceDirect.ref)} allows ${what}` };
  if (resourceAccount && identityAllow) {
    return {
      effect: 'Allow',
      decidingStatement: identityAllow.ref,
      delegatedBy: resourceAccount.ref,
      reason: `${describeStatement(identityAllow.ref)} allows ${what}, and counts because ${describeStatement(resourceAccount.ref)} delegates to the account's identity policies`,
    };
  }
  if (identityAllow) {
    return {
      effect: 'ImplicitDeny',
      reason: `no statement of the key policy allows ${what}: ${describeStatement(identityAllow.ref)} allows it, but the key policy does not delegate to the account's identity policies`,
    };
  }
  const note = resourceAccount ? `; ${describeStatement(resourceAccount.ref)} delegates to identity policies, and none allows` : '';
  return { effect: 'ImplicitDeny', reason: `no statement allows ${what}${note}` };
}

/** Evaluates one policy alone: an identity policy as the only identity policy, any other kind as the resource policy. */
export function evaluatePolicy(policy: Policy, req: RequestContext): Decision {
  return policy.kind === 'identity' ? evaluate({ identityPolicies: [policy] }, req) : evaluate({ identityPolicies: [], resourcePolicy: policy }, req);
}

/** A one-line human account of a decision: "denied by statement DenyX (index 0) of the bucket policy". */
export function explain(decision: Decision): string {
  const ref = decision.decidingStatement;
  if (decision.effect === 'Deny' && ref) return `denied by ${describeStatement(ref)}`;
  if (decision.effect === 'Allow' && ref) {
    return `allowed by ${describeStatement(ref)}${decision.delegatedBy ? `, delegated by ${describeStatement(decision.delegatedBy)}` : ''}`;
  }
  if (decision.effect === 'Allow') return 'allowed: the account root user may do whatever no policy denies';
  return `implicitly denied: ${decision.reason}`;
}
