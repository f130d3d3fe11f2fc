// The condition operators: their names (with the ...IfExists suffix and the ForAnyValue: /
// ForAllValues: set qualifiers), how each policy value is validated, and how one clause
// (operator, key, values) is evaluated against the request's values for that key, with the
// AWS rules for absent keys, negated operators, IfExists, Null and multi-valued keys.
import { matchArn, matchPieces, resolve, tokenize, type VariableLookup } from './pattern.ts';
import type { ConditionClause, ConditionOperatorName, SetQualifier } from './types.ts';
import { cidrContains, parseBase64, parseBool, parseCidr, parseDate, parseIp, parseNumber } from './values.ts';

/** What an operator needs while evaluating: whether variables apply, and their values. */
export interface ConditionEnv {
  readonly variables: boolean;
  readonly lookup: VariableLookup;
}

type Predicate = (requestValue: string) => boolean;

interface OperatorDef {
  readonly negated: boolean;
  /** Why `policyValue` is not acceptable for this operator, or undefined. */
  readonly validate: (policyValue: string) => string | undefined;
  /** The positive test "request value matches this policy value" (variables resolved here). */
  readonly prepare: (policyValue: string, env: ConditionEnv) => Predicate;
}

const anyString = () => undefined;
const needs = (parse: (s: string) => unknown, what: string) => (v: string) =>
  parse(v) === undefined ? `'${v}' is not ${what}` : undefined;

function stringOp(negated: boolean, wildcards: boolean, ignoreCase: boolean): OperatorDef {
  return {
    negated,
    validate: anyString,
    prepare: (pol, env) => {
      const pieces = resolve(tokenize(pol, { wildcards, variables: env.variables }), env.lookup);
      return (req) => matchPieces(pieces, req, ignoreCase);
    },
  };
}

function arnOp(negated: boolean): OperatorDef {
  // ArnEquals and ArnLike are the same test in AWS: component-wise, wildcards allowed in both.
  return {
    negated,
    validate: anyString,
    prepare: (pol, env) => {
      const pieces = resolve(tokenize(pol, { wildcards: true, variables: env.variables }), env.lookup);
      return (req) => matchArn(pieces, req);
    },
  };
}

function ordered(parse: (s: string) => number | undefined, what: string, negated: boolean, cmp: (a: number, b: number) => boolean): OperatorDef {
  return {
    negated,
    validate: needs(parse, what),
    prepare: (pol) => {
      const b = parse(pol);
      return (req) => {
        const a = parse(req);
        return a !== undefined && b !== undefined && cmp(a, b);
      };
    },
  };
}

const eq = (a: number, b: number) => a === b;
const lt = (a: number, b: number) => a < b;
const le = (a: number, b: number) => a <= b;
const gt = (a: number, b: number) => a > b;
const ge = (a: number, b: number) => a >= b;
const NUM = 'a decimal number';
const DATE = 'a date (ISO 8601 or epoch seconds)';

export const OPERATORS: Readonly<Record<ConditionOperatorName, OperatorDef>> = {
  StringEquals: stringOp(false, false, false),
  StringNotEquals: stringOp(true, false, false),
  StringEqualsIgnoreCase: stringOp(false, false, true),
  StringNotEqualsIgnoreCase: stringOp(true, false, true),
  StringLike: stringOp(false, true, false),
  StringNotLike: stringOp(true, true, false),
  NumericEquals: ordered(parseNumber, NUM, false, eq),
  NumericNotEquals: ordered(parseNumber, NUM, true, eq),
  NumericLessThan: ordered(parseNumber, NUM, false, lt),
  NumericLessThanEquals: ordered(parseNumber, NUM, false, le),
  NumericGreaterThan: ordered(parseNumber, NUM, false, gt),
  NumericGreaterThanEquals: ordered(parseNumber, NUM, false, ge),
  DateEquals: ordered(parseDate, DATE, false, eq),
  DateNotEquals: ordered(parseDate, DATE, true, eq),
  DateLessThan: ordered(parseDate, DATE, false, lt),
  DateLessThanEquals: ordered(parseDate, DATE, false, le),
  DateGreaterThan: ordered(parseDate, DATE, false, gt),
  DateGreaterThanEquals: ordered(parseDate, DATE, false, ge),
  Bool: {
    negated: false,
    validate: needs(parseBool, "'true' or 'false'"),
    prepare: (pol) => {
      const b = parseBool(pol);
      return (req) => b !== undefined && parseBool(req) === b;
    },
  },
  BinaryEquals: {
    negated: false,
    validate: needs(parseBase64, 'base64'),
    prepare: (pol) => {
      const b = parseBase64(pol);
      return (req) => {
        const a = parseBase64(req);
        return a !== undefined && b !== undefined && a.equals(b);
      };
    },
  },
  IpAddress: ipOp(false),
  NotIpAddress: ipOp(true),
  ArnEquals: arnOp(false),
  ArnNotEquals: arnOp(true),
  ArnLike: arnOp(false),
  ArnNotLike: arnOp(true),
  Null: {
    negated: false,
    validate: needs(parseBool, "'true' or 'false'"),
    prepare: () => () => false, // evaluated specially: see evaluateClause
  },
};

function ipOp(negated: boolean): OperatorDef {
  return {
    negated,
    validate: needs(parseCidr, 'an IPv4 or IPv6 address or CIDR block'),
    prepare: (pol) => {
      const block = parseCidr(pol);
      return (req) => {
        const addr = parseIp(req);
        return addr !== undefined && block !== undefined && cidrContains(block, addr);
      };
    },
  };
}

export type ParsedOperator =
  | { readonly ok: true; readonly base: ConditionOperatorName; readonly qualifier?: SetQualifier; readonly ifExists: boolean }
  | { readonly ok: false; readonly why: string };

/** Splits "ForAllValues:StringLikeIfExists" into its parts (names are case-sensitive). */
export function parseOperator(name: string): ParsedOperator {
  let rest = name;
  let qualifier: SetQualifier | undefined;
  for (const q of ['ForAnyValue', 'ForAllValues'] as const) {
    if (rest.startsWith(`${q}:`)) {
      qualifier = q;
      rest = rest.slice(q.length + 1);
    }
  }
  let ifExists = false;
  if (rest.endsWith('IfExists') && rest.length > 'IfExists'.length) {
    ifExists = true;
    rest = rest.slice(0, -'IfExists'.length);
  }
  if (!Object.prototype.hasOwnProperty.call(OPERATORS, rest)) return { ok: false, why: `Unknown condition operator '${name}'` };
  const base = rest as ConditionOperatorName;
  if (base === 'Null' && ifExists) return { ok: false, why: `Condition operator '${name}' is invalid: Null cannot be used with IfExists` };
  if (base === 'Null' && qualifier) return { ok: false, why: `Condition operator '${name}' is invalid: Null cannot be used with ${qualifier}` };
  return qualifier ? { ok: true, base, qualifier, ifExists } : { ok: true, base, ifExists };
}

/**
 * Evaluates one clause. `requestValues` are the request's values for the clause's key
 * (undefined or [] when the key is absent). Throws UnresolvedVariable when a policy value
 * names a variable the request cannot resolve (the statement then does not apply).
 */
export function evaluateClause(clause: ConditionClause, requestValues: readonly string[] | undefined, env: ConditionEnv): boolean {
  const present = requestValues !== undefined && requestValues.length > 0;
  // Null: "true" means the key is absent, "false" that it is present.
  if (clause.base === 'Null') return clause.values.some((v) => parseBool(v) === !present);
  const op = OPERATORS[clause.base];
  // Every variable is resolved first, whether or not the key is present: a value naming a
  // variable the request cannot resolve makes the whole statement not apply.
  const tests = clause.values.map((v) => op.prepare(v, env));
  if (!present) {
    if (clause.qualifier === 'ForAllValues') return true; // vacuously, for an empty set
    if (clause.qualifier === 'ForAnyValue') return clause.ifExists;
    return clause.ifExists || op.negated;
  }
  const matchesAny = (req: string) => tests.some((t) => t(req));
  const holds = (req: string) => (op.negated ? !matchesAny(req) : matchesAny(req));
  if (clause.qualifier === 'ForAllValues') return requestValues.every(holds);
  if (clause.qualifier === 'ForAnyValue') return requestValues.some(holds);
  // No qualifier: a multi-valued key matches if any of its values matches (negated: none).
  return op.negated ? !requestValues.some(matchesAny) : requestValues.some(matchesAny);
}

/** Whether a base operator is one of the negated ones (true on an absent key). */
export function isNegated(base: ConditionOperatorName): boolean {
  return OPERATORS[base].negated;
}
