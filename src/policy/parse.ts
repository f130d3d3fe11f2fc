// parsePolicy: turns a policy document (bucket, identity or key policy) into a frozen Policy,
// validating it as AWS does, or throws PolicyError (MalformedPolicy) saying what is wrong and
// where: the statement (0-based index and Sid) and the element. docs/policy.md lists the rules.
import { parseOperator, OPERATORS } from './conditions.ts';
import { PolicyError } from './errors.ts';
import { isObject, readJson, type JsonObject, type JsonValue } from './json.ts';
import { splitArnPieces, tokenize } from './pattern.ts';
import type { ConditionClause, Policy, PolicyKind, PolicyVersion, PrincipalSet, Statement } from './types.ts';

export interface ParseOptions {
  readonly kind: PolicyKind;
  /**
   * Size limit, measured as AWS does for the kind: UTF-8 bytes for bucket (20 KB) and key
   * (32 KB) policies, characters other than whitespace for identity policies (6144).
   */
  readonly maxBytes?: number;
  /**
   * For bucket policies: every Resource / NotResource must be this ARN or under it
   * ('arn:aws:s3:::bucket' accepts 'arn:aws:s3:::bucket' and 'arn:aws:s3:::bucket/...').
   */
  readonly resourceArnPrefix?: string;
}

export const DEFAULT_MAX_SIZE: Readonly<Record<PolicyKind, number>> = { bucket: 20 * 1024, identity: 6144, key: 32 * 1024 };

/** The size of a policy document as AWS counts it for `kind`. */
export function policySize(text: string, kind: PolicyKind): number {
  return kind === 'identity' ? text.replace(/\s/g, '').length : Buffer.byteLength(text, 'utf8');
}

const NOT_JSON = "Policies must be valid JSON and the first byte must be '{'";
const TOP_FIELDS = new Set(['Version', 'Id', 'Statement']);
const STATEMENT_FIELDS = new Set(['Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition']);
const VERSIONS: readonly string[] = ['2012-10-17', '2008-10-17'];
const ACTION = /^[A-Za-z0-9-]+:[A-Za-z0-9*?]+$/;
const ACCOUNT_ID = /^\d{12}$/;
const PRINCIPAL_ARN = /^arn:aws[a-z-]*:(?:iam|sts)::\d{12}:(?:root|(?:user|role|assumed-role|federated-user)\/[^\s*?]+)$/;
const SERVICE_PRINCIPAL = /^[a-z0-9][a-z0-9.-]*$/;
const CANONICAL_USER = /^[0-9a-fA-F]{64}$/;
const CONDITION_KEY = /^[A-Za-z0-9_.-]+:\S(?:[\s\S]*\S)?$/;

export function parsePolicy(text: string, opts: ParseOptions): Policy {
  if (typeof text !== 'string') throw new PolicyError(NOT_JSON);
  const limit = opts.maxBytes ?? DEFAULT_MAX_SIZE[opts.kind];
  const size = policySize(text, opts.kind);
  if (size > limit) {
    const unit = opts.kind === 'identity' ? 'non-whitespace characters' : 'bytes';
    throw new PolicyError(`Policy document exceeds the maximum allowed size: ${size} ${unit}, the limit is ${limit}`);
  }
  if (text.trim() === '') throw new PolicyError(`${NOT_JSON}: the document is empty`);
  const doc = readJson(text);
  if (!isObject(doc)) throw new PolicyError(`${NOT_JSON}: the document is not a JSON object`);
  return deepFreeze(new Parser(opts).policy(doc));
}

class Parser {
  private index = 0;
  private sid: string | undefined;

  constructor(private readonly opts: ParseOptions) {}

  private get variables(): boolean {
    return this.version === '2012-10-17';
  }
  private version: PolicyVersion | undefined;

  /** " in statement 2 (Sid DenyX)" */
  private where(): string {
    return ` in statement ${this.index}${this.sid ? ` (Sid ${this.sid})` : ''}`;
  }

  private fail(what: string, field?: string, detail?: string): never {
    const loc = { statementIndex: this.index, ...(this.sid ? { sid: this.sid } : {}), ...(field ? { field } : {}) };
    throw new PolicyError(`${what}${this.where()}${detail ? `: ${detail}` : ''}`, loc);
  }

  policy(doc: JsonObject): Policy {
    for (const k of Object.keys(doc)) if (!TOP_FIELDS.has(k)) throw new PolicyError(`Unknown field ${k}`, { field: k });
    const v = doc['Version'];
    if (v !== undefined) {
      if (typeof v !== 'string' || !VERSIONS.includes(v)) {
        throw new PolicyError(`Policy has an invalid Version ${JSON.stringify(v)}: the supported versions are 2012-10-17 and 2008-10-17`, { field: 'Version' });
      }
      this.version = v as PolicyVersion;
    }
    const id = doc['Id'];
    if (id !== undefined && typeof id !== 'string') throw new PolicyError('Policy has an invalid Id: it must be a string', { field: 'Id' });
    const st = doc['Statement'];
    if (st === undefined) throw new PolicyError('Missing required field Statement', { field: 'Statement' });
    const list = Array.isArray(st) ? st : [st];
    if (list.length === 0) throw new PolicyError('Statement is empty: a policy needs at least one statement', { field: 'Statement' });
    const statements = list.map((s, i) => {
      this.index = i;
      this.sid = undefined;
      return this.statement(s);
    });
    const seen = new Map<string, number>();
    for (const s of statements) {
      if (s.sid === undefined || s.sid === '') continue;
      const first = seen.get(s.sid);
      if (first !== undefined) {
        throw new PolicyError(`Statement IDs (SID) in a single policy must be unique: '${s.sid}' is used by statements ${first} and ${s.index}`, {
          statementIndex: s.index,
          sid: s.sid,
          field: 'Sid',
        });
      }
      seen.set(s.sid, s.index);
    }
    return {
      kind: this.opts.kind,
      ...(this.version ? { version: this.version } : {}),
      ...(typeof id === 'string' ? { id } : {}),
      statements,
    };
  }

  private statement(s: JsonValue): Statement {
    if (!isObject(s)) this.fail('Invalid statement', undefined, 'a statement must be a JSON object');
    if (typeof s['Sid'] === 'string') this.sid = s['Sid'];
    const keys = Object.keys(s);
    if (keys.length === 0) this.fail('Statement is empty');
    for (const k of keys) if (!STATEMENT_FIELDS.has(k)) this.fail(`Unknown field ${k}`, k);

    const sid = s['Sid'];
    if (sid !== undefined) {
      if (typeof sid !== 'string') this.fail('Invalid Sid', 'Sid', 'Sid must be a string');
      if (this.opts.kind === 'identity' && !/^[A-Za-z0-9]*$/.test(sid)) {
        this.fail('Invalid Sid', 'Sid', `'${sid}': statement IDs in identity policies may contain only letters and digits`);
      }
    }
    const effect = s['Effect'];
    if (effect === undefined) this.fail('Missing required field Effect', 'Effect');
    if (effect !== 'Allow' && effect !== 'Deny') this.fail('Invalid effect', 'Effect', `${JSON.stringify(effect)}: it must be "Allow" or "Deny"`);

    const out: {
      -readonly [K in keyof Statement]: Statement[K];
    } = { index: this.index, effect, conditions: [] };
    if (typeof sid === 'string') out.sid = sid;

    this.principals(s, out);
    this.actions(s, out);
    this.resources(s, out);
    out.conditions = this.conditions(s['Condition']);
    return out;
  }

  private principals(s: JsonObject, out: { principal?: PrincipalSet; notPrincipal?: PrincipalSet }): void {
    const p = s['Principal'];
    const np = s['NotPrincipal'];
    if (this.opts.kind === 'identity') {
      if (p !== undefined || np !== undefined) {
        this.fail('Policy document should not specify a principal', p !== undefined ? 'Principal' : 'NotPrincipal', 'identity policies apply to the identity they are attached to');
      }
      return;
    }
    if (p !== undefined && np !== undefined) this.fail('Invalid principal in policy', 'Principal', 'a statement cannot have both Principal and NotPrincipal');
    if (p === undefined && np === undefined) this.fail('Missing required field Principal', 'Principal', `${this.opts.kind} policies must name a Principal (or NotPrincipal)`);
    if (np !== undefined && s['Effect'] !== 'Deny') this.fail('Invalid principal in policy', 'NotPrincipal', 'NotPrincipal must be used with "Effect": "Deny"');
    if (p !== undefined) out.principal = this.principalSet(p, 'Principal');
    else out.notPrincipal = this.principalSet(np!, 'NotPrincipal');
  }

  private principalSet(v: JsonValue, field: string): PrincipalSet {
    const bad = (detail: string): never => this.fail('Invalid principal in policy', field, detail);
    const set = { wildcard: false, aws: [] as string[], service: [] as string[], canonicalUser: [] as string[], federated: [] as string[] };
    if (v === '*') return { ...set, wildcard: true };
    if (!isObject(v)) return bad(`${JSON.stringify(v)}: ${field} must be "*" or an object with AWS, Service, CanonicalUser or Federated`);
    const entries = Object.entries(v);
    if (entries.length === 0) bad(`${field} is empty`);
    for (const [type, value] of entries) {
      const list = this.strings(value, (d) => bad(`${type} ${d}`));
      for (const item of list) {
        if (type === 'AWS') {
          if (item === '*') set.wildcard = true;
          else if (ACCOUNT_ID.test(item) || PRINCIPAL_ARN.test(item)) set.aws.push(item);
          else bad(`AWS '${item}' is not "*", a 12-digit account id or an IAM principal ARN (no wildcards)`);
        } else if (type === 'Service') {
          if (!SERVICE_PRINCIPAL.test(item)) bad(`Service '${item}' is not a service principal name`);
          set.service.push(item);
        } else if (type === 'CanonicalUser') {
          if (!CANONICAL_USER.test(item)) bad(`CanonicalUser '${item}' is not a 64-hex-digit canonical user id`);
          set.canonicalUser.push(item.toLowerCase());
        } else if (type === 'Federated') {
          set.federated.push(item);
        } else bad(`unknown principal type '${type}' (expected AWS, Service, CanonicalUser or Federated)`);
      }
    }
    return set;
  }

  private actions(s: JsonObject, out: { action?: readonly string[]; notAction?: readonly string[] }): void {
    const a = s['Action'];
    const na = s['NotAction'];
    if (a !== undefined && na !== undefined) this.fail('Policy has invalid action', 'Action', 'a statement cannot have both Action and NotAction');
    if (a === undefined && na === undefined) this.fail('Missing required field Action', 'Action', 'a statement needs Action or NotAction');
    const field = a !== undefined ? 'Action' : 'NotAction';
    const list = this.strings(a ?? na!, (d) => this.fail('Policy has invalid action', field, `${field} ${d}`));
    for (const item of list) {
      if (item === '*') continue;
      if (!ACTION.test(item)) this.fail('Policy has invalid action', field, `'${item}' is not "*" or service:ActionName (wildcards * and ? allowed in the name)`);
      if (this.opts.kind === 'bucket' && item.slice(0, item.indexOf(':')).toLowerCase() !== 's3') {
        this.fail('Policy has invalid action', field, `'${item}' is not an s3: action`);
      }
    }
    if (a !== undefined) out.action = list;
    else out.notAction = list;
  }

  private resources(s: JsonObject, out: { resource?: readonly string[]; notResource?: readonly string[] }): void {
    const r = s['Resource'];
    const nr = s['NotResource'];
    if (r !== undefined && nr !== undefined) this.fail('Policy has invalid resource', 'Resource', 'a statement cannot have both Resource and NotResource');
    if (r === undefined && nr === undefined) {
      if (this.opts.kind === 'key') return; // a key policy statement applies to its key
      this.fail('Missing required field Resource', 'Resource', 'a statement needs Resource or NotResource');
    }
    const field = r !== undefined ? 'Resource' : 'NotResource';
    const list = this.strings(r ?? nr!, (d) => this.fail('Policy has invalid resource', field, `${field} ${d}`));
    const prefix = this.opts.resourceArnPrefix;
    for (const item of list) {
      if (item === '*') continue;
      const segs = splitArnPieces(tokenize(item, { wildcards: true, variables: this.variables }));
      const lit = (i: number) => {
        const seg = segs?.[i];
        return seg && seg.length === 1 && seg[0]!.t === 'lit' ? seg[0]!.s : undefined;
      };
      if (!segs || lit(0) !== 'arn' || segs[1]!.length === 0 || segs[2]!.length === 0) {
        this.fail('Policy has invalid resource', field, `'${item}' is not "*" or an ARN (arn:partition:service:region:account:resource)`);
      }
      if (prefix !== undefined && item !== prefix && !item.startsWith(`${prefix}/`)) {
        this.fail('Policy has invalid resource', field, `'${item}' is not ${prefix} or under ${prefix}/`);
      }
    }
    if (r !== undefined) out.resource = list;
    else out.notResource = list;
  }

  private conditions(c: JsonValue | undefined): ConditionClause[] {
    if (c === undefined) return [];
    if (!isObject(c)) this.fail('Invalid Condition block', 'Condition', 'Condition must be an object of operators');
    const out: ConditionClause[] = [];
    for (const [operator, block] of Object.entries(c)) {
      const op = parseOperator(operator);
      if (!op.ok) this.fail(op.why, 'Condition');
      if (!isObject(block) || Object.keys(block).length === 0) {
        this.fail('Invalid Condition block', 'Condition', `${operator} must be a non-empty object of condition keys and values`);
      }
      for (const [key, raw] of Object.entries(block)) {
        if (!CONDITION_KEY.test(key)) this.fail(`Policy has an invalid condition key '${key}'`, 'Condition', 'a condition key is prefix:name, e.g. aws:SourceIp');
        const values = this.conditionValues(raw, (d) => this.fail('Invalid condition value', 'Condition', `${operator} ${key}: ${d}`));
        for (const v of values) {
          const why = OPERATORS[op.base].validate(v);
          if (why) this.fail('Invalid condition value', 'Condition', `${operator} ${key}: ${why}`);
        }
        out.push({
          operator,
          base: op.base,
          ...(op.qualifier ? { qualifier: op.qualifier } : {}),
          ifExists: op.ifExists,
          key,
          values,
        });
      }
    }
    return out;
  }

  /** A string or a non-empty array of strings. */
  private strings(v: JsonValue, bad: (detail: string) => never): string[] {
    if (typeof v === 'string') return [v];
    if (!Array.isArray(v)) return bad('must be a string or an array of strings');
    if (v.length === 0) return bad('must not be an empty array');
    return v.map((x) => (typeof x === 'string' ? x : bad(`has a non-string entry ${JSON.stringify(x)}`)));
  }

  /** Condition values: a string, number or boolean, or a non-empty array of them; as strings. */
  private conditionValues(v: JsonValue, bad: (detail: string) => never): string[] {
    const one = (x: JsonValue): string => {
      if (typeof x === 'string') return x;
      if (typeof x === 'number' || typeof x === 'boolean') return String(x);
      return bad(`${JSON.stringify(x)} is not a string, number or boolean`);
    };
    if (!Array.isArray(v)) return [one(v)];
    if (v.length === 0) return bad('the value list is empty');
    return v.map(one);
  }
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}
