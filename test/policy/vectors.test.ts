// Runs every policy evaluation vector of test/policy/vectors.json (policies, request context,
// expected effect and deciding statement, with where each case comes from), checks that the
// committed file is what test/policy/vectors/build.ts produces, and that the vectors cover
// every condition operator, its IfExists form and both set qualifiers.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { evaluate, explain, parsePolicy, type Policy } from '../../src/policy/index.ts';
import { OPERATORS } from '../../src/policy/conditions.ts';
import { buildVectors, formatVectors, VECTORS_FILE } from './vectors/build.ts';
import type { Vector } from './vectors/helpers.ts';

const text = readFileSync(VECTORS_FILE, 'utf8');
const vectors = JSON.parse(text) as Vector[];

function run(v: Vector) {
  const identity: Policy[] = (v.policies.identity ?? []).map((p) => parsePolicy(JSON.stringify(p), { kind: 'identity' }));
  const kind = v.policies.resourceKind ?? 'bucket';
  const resource = v.policies.resource ? parsePolicy(JSON.stringify(v.policies.resource), { kind }) : undefined;
  return evaluate({ identityPolicies: identity, ...(resource ? { resourcePolicy: resource } : {}), ...(v.policies.mode ? { mode: v.policies.mode } : {}) }, v.request);
}

describe('policy evaluation vectors', () => {
  test('the committed vectors.json is what vectors/build.ts produces', () => {
    assert.equal(text, formatVectors(buildVectors()), 'stale: run `node --import tsx test/policy/vectors/build.ts`');
  });

  test('at least 150 vectors, each named once and with a source', () => {
    assert.ok(vectors.length >= 150, `${vectors.length} vectors`);
    const names = new Set(vectors.map((v) => v.name));
    assert.equal(names.size, vectors.length, 'vector names are unique');
    for (const v of vectors) assert.ok(/^(https:\/\/|edge case: |shared\/reference\/)/.test(v.source), `${v.name}: source ${v.source}`);
  });

  test('every operator, its IfExists form and both set qualifiers are covered', () => {
    const used = new Set<string>();
    const walk = (x: unknown) => {
      if (Array.isArray(x)) x.forEach(walk);
      else if (x && typeof x === 'object') {
        for (const [k, val] of Object.entries(x)) {
          if (k === 'Condition' && val && typeof val === 'object') Object.keys(val).forEach((op) => used.add(op));
          walk(val);
        }
      }
    };
    vectors.forEach((v) => walk(v.policies));
    const missing: string[] = [];
    for (const base of Object.keys(OPERATORS)) {
      if (![...used].some((op) => op.replace(/^For(Any|All)Values?:/, '') === base)) missing.push(base);
      if (base !== 'Null' && ![...used].some((op) => op.replace(/^For(Any|All)Values?:/, '') === `${base}IfExists`)) missing.push(`${base}IfExists`);
    }
    for (const q of ['ForAnyValue:', 'ForAllValues:']) if (![...used].some((op) => op.startsWith(q))) missing.push(q);
    assert.deepEqual(missing, []);
  });

  test('the effects are all represented', () => {
    for (const e of ['Allow', 'Deny', 'ImplicitDeny']) assert.ok(vectors.filter((v) => v.expected.effect === e).length >= 20, e);
  });

  for (const v of vectors) {
    test(v.name, () => {
      const d = run(v);
      const ctx = `${v.name} [${v.source}]: ${d.reason}`;
      assert.equal(d.effect, v.expected.effect, ctx);
      const want = v.expected.decidingStatement;
      if (!want) {
        assert.equal(d.decidingStatement, undefined, ctx);
      } else {
        const got = d.decidingStatement;
        assert.ok(got, ctx);
        assert.equal(got.source, want.source, ctx);
        assert.equal(got.index, want.index, ctx);
        assert.equal(got.sid, want.sid, ctx);
        if (want.source === 'identity') assert.equal(got.policyIndex, want.policyIndex ?? 0, ctx);
        if (want.sid) assert.ok(explain(d).includes(want.sid), explain(d));
      }
      assert.ok(explain(d).length > 0);
    });
  }
});
