// The policy module's public surface: the IAM policy language as bucket, identity and key
// policies use it. parsePolicy validates a document (PolicyError / MalformedPolicy when it is
// not valid); evaluate judges a request against identity policies and a resource policy;
// explain words a decision in one line. Pure: imports only src/shared. See docs/policy.md.
export { parsePolicy, policySize, DEFAULT_MAX_SIZE, type ParseOptions } from './parse.ts';
export { evaluate, evaluatePolicy, explain, describeStatement, contextLookup } from './evaluate.ts';
export { PolicyError, isPolicyError, type PolicyErrorLocation } from './errors.ts';
export type {
  ConditionClause,
  ConditionOperatorName,
  ContextValue,
  Decision,
  Effect,
  EvaluationInput,
  EvaluationMode,
  Policy,
  PolicyKind,
  PolicyVersion,
  PrincipalSet,
  PrincipalType,
  RequestContext,
  RequestPrincipal,
  SetQualifier,
  Statement,
  StatementRef,
} from './types.ts';
