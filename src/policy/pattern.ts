// Patterns as the policy language writes them: literal text, the wildcards `*` (any sequence)
// and `?` (one character), policy variables `${key}` / `${key, 'default'}` and the escapes
// `${*}`, `${?}`, `${$}`. Also ARN splitting and component-wise ARN matching. A pattern is
// tokenized once (cached), its variables resolved per request, then matched as a RegExp
// (cached). Text a variable resolves to is always literal, never a wildcard.

export type Piece =
  | { readonly t: 'lit'; readonly s: string }
  | { readonly t: 'star' }
  | { readonly t: 'q' }
  | { readonly t: 'var'; readonly key: string; readonly dflt?: string };

export interface PatternSyntax {
  /** `*` and `?` are wildcards (Action, Resource, StringLike, ArnLike). */
  readonly wildcards: boolean;
  /** `${...}` are variables (policy Version 2012-10-17, in Resource and string/ARN conditions). */
  readonly variables: boolean;
}

/** Thrown while resolving when a variable has no single value in the request context. */
export class UnresolvedVariable extends Error {
  constructor(readonly key: string) {
    super(`policy variable \${${key}} has no value in the request context`);
  }
}

export type VariableLookup = (key: string) => readonly string[] | undefined;

const TOKEN_CACHE = new Map<string, readonly Piece[]>();
const REGEX_CACHE = new Map<string, RegExp>();
const CACHE_LIMIT = 4096;

function remember<V>(cache: Map<string, V>, key: string, value: V): V {
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, value);
  return value;
}

const VAR_BODY = /^\s*([^\s,'{}]+)\s*(?:,\s*'([^']*)'\s*)?$/;

/** Splits `text` into pieces according to `syntax`. */
export function tokenize(text: string, syntax: PatternSyntax): readonly Piece[] {
  const cacheKey = `${syntax.wildcards ? 'w' : '-'}${syntax.variables ? 'v' : '-'}${text}`;
  const hit = TOKEN_CACHE.get(cacheKey);
  if (hit) return hit;
  const out: Piece[] = [];
  let lit = '';
  const flush = () => {
    if (lit) out.push({ t: 'lit', s: lit });
    lit = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (syntax.variables && c === '$' && text[i + 1] === '{') {
      const end = text.indexOf('}', i + 2);
      if (end > 0) {
        const body = text.slice(i + 2, end);
        if (body === '*' || body === '?' || body === '$') {
          lit += body;
          i = end;
          continue;
        }
        const m = VAR_BODY.exec(body);
        if (m) {
          flush();
          out.push(m[2] === undefined ? { t: 'var', key: m[1]! } : { t: 'var', key: m[1]!, dflt: m[2] });
          i = end;
          continue;
        }
      }
    }
    if (syntax.wildcards && (c === '*' || c === '?')) {
      flush();
      out.push(c === '*' ? { t: 'star' } : { t: 'q' });
    } else lit += c;
  }
  flush();
  return remember(TOKEN_CACHE, cacheKey, Object.freeze(out));
}

export function hasVariables(pieces: readonly Piece[]): boolean {
  return pieces.some((p) => p.t === 'var');
}

/** Replaces every variable by its (literal) value; throws UnresolvedVariable. */
export function resolve(pieces: readonly Piece[], lookup: VariableLookup): readonly Piece[] {
  if (!hasVariables(pieces)) return pieces;
  return pieces.map((p) => {
    if (p.t !== 'var') return p;
    const v = lookup(p.key);
    if (v !== undefined && v.length === 1) return { t: 'lit', s: v[0]! } as const;
    if (p.dflt !== undefined) return { t: 'lit', s: p.dflt } as const;
    throw new UnresolvedVariable(p.key);
  });
}

/** The text of resolved pieces (wildcards rendered as `*` / `?`). */
export function piecesText(pieces: readonly Piece[]): string {
  return pieces.map((p) => (p.t === 'lit' ? p.s : p.t === 'star' ? '*' : p.t === 'q' ? '?' : `\${${p.key}}`)).join('');
}

function toRegex(pieces: readonly Piece[], ignoreCase: boolean): RegExp {
  let src = '^';
  for (const p of pieces) {
    if (p.t === 'lit') src += p.s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    else if (p.t === 'star') src += '[\\s\\S]*';
    else if (p.t === 'q') src += '[\\s\\S]';
    else throw new UnresolvedVariable(p.key);
  }
  src += '$';
  const key = (ignoreCase ? 'i' : '-') + src;
  return REGEX_CACHE.get(key) ?? remember(REGEX_CACHE, key, new RegExp(src, ignoreCase ? 'iu' : 'u'));
}

/** Whether resolved `pieces` match the whole of `value`. */
export function matchPieces(pieces: readonly Piece[], value: string, ignoreCase = false): boolean {
  if (pieces.every((p) => p.t === 'lit')) {
    const s = pieces.map((p) => (p as { s: string }).s).join('');
    return ignoreCase ? s.toLowerCase() === value.toLowerCase() : s === value;
  }
  if (pieces.length === 1 && pieces[0]!.t === 'star') return true;
  return toRegex(pieces, ignoreCase).test(value);
}

/** Splits an ARN string into its six components (the last keeps any further colons). */
export function splitArn(arn: string): string[] | undefined {
  const parts: string[] = [];
  let from = 0;
  for (let i = 0; i < 5; i++) {
    const at = arn.indexOf(':', from);
    if (at < 0) return undefined;
    parts.push(arn.slice(from, at));
    from = at + 1;
  }
  parts.push(arn.slice(from));
  return parts;
}

/** Splits resolved pattern pieces at the first five literal colons; undefined if fewer. */
export function splitArnPieces(pieces: readonly Piece[]): Piece[][] | undefined {
  const segs: Piece[][] = [[]];
  for (const p of pieces) {
    if (p.t !== 'lit' || segs.length === 6) {
      segs[segs.length - 1]!.push(p);
      continue;
    }
    let rest = p.s;
    for (;;) {
      const at = segs.length < 6 ? rest.indexOf(':') : -1;
      if (at < 0) break;
      if (at > 0) segs[segs.length - 1]!.push({ t: 'lit', s: rest.slice(0, at) });
      segs.push([]);
      rest = rest.slice(at + 1);
    }
    if (rest) segs[segs.length - 1]!.push({ t: 'lit', s: rest });
  }
  return segs.length === 6 ? segs : undefined;
}

/**
 * ARN matching as ArnLike and Resource do it: each of the six components is matched on its
 * own (a wildcard never crosses the colons between the first five), case-sensitively.
 */
export function matchArn(pattern: readonly Piece[], arn: string): boolean {
  if (pattern.length === 1 && pattern[0]!.t === 'star') return true;
  const want = splitArnPieces(pattern);
  const have = splitArn(arn);
  if (!want || !have) return false;
  for (let i = 0; i < 6; i++) {
    const w = want[i]!;
    if (w.length === 0 ? have[i] !== '' : !matchPieces(w, have[i]!)) return false;
  }
  return true;
}
