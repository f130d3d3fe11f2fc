// Property tests of the evaluator (fast-check), over random identity and bucket policies and
// random requests: an applicable unconditional Deny always wins; adding an unrelated Allow
// never turns a Deny into an Allow nor changes the deciding statement; evaluation is
// deterministic and its effect does not depend on the order of statements or policies.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { evaluate, parsePolicy, type Decision, type RequestContext, type RequestPrincipal } from '../../src/policy/index.ts';

const ACCT = '111122223333';
const user = (name: string): RequestPrincipal => ({ type: 'IAMUser', arn: `arn:aws:iam::${ACCT}:user/${name}`, account: ACCT, userName: name });
const PRINCIPALS: RequestPrincipal[] = [user('alice'), user('bob'), { type: 'Root', arn: `arn:aws:iam::${ACCT}:root`, account: ACCT }, { type: 'Anonymous', arn: '*', account: '' }];
const ACTIONS = ['s3:GetObject', 's3:PutObject', 's3:ListBucket', 's3:DeleteObject'];
const RESOURCES = ['arn:aws:s3:::b', 'arn:aws:s3:::b/a', 'arn:aws:s3:::b/x/y', 'arn:aws:s3:::c/a'];
const ACTION_PATTERNS = [...ACTIONS, 's3:*', 's3:Get*', '*', 's3:?utObject', 's3:*Object'];
const RESOURCE_PATTERNS = ['*', 'arn:aws:s3:::b', 'arn:aws:s3:::b/*', 'arn:aws:s3:::*', 'arn:aws:s3:::b/x/*', 'arn:aws:s3:::c/?'];

type Obj = Record<string, unknown>;
interface Input {
  identity: Obj[][]; // statements of each identity policy
  resource: Obj[] | undefined; // statements of the bucket policy
}

const list = <T>(a: fc.Arbitrary<T>) => fc.oneof(a, fc.array(a, { minLength: 1, maxLength: 3 }));
const condition: fc.Arbitrary<Obj> = fc.oneof(
  fc.record({ StringEquals: fc.record({ 's3:prefix': list(fc.constantFrom('a/', 'b/', '')) }) }),
  fc.record({ StringNotEquals: fc.record({ 's3:x-amz-server-side-encryption': list(fc.constantFrom('AES256', 'aws:kms')) }) }),
  fc.record({ StringLike: fc.record({ 's3:prefix': fc.constantFrom('a*', '?/', '*') }) }),
  fc.record({ Bool: fc.record({ 'aws:SecureTransport': fc.constantFrom('true', 'false') }) }),
  fc.record({ Null: fc.record({ 's3:x-amz-server-side-encryption': fc.constantFrom('true', 'false') }) }),
  fc.record({ IpAddress: fc.record({ 'aws:SourceIp': list(fc.constantFrom('10.0.0.0/8', '2001:db8::/32', '192.0.2.1')) }) }),
  fc.record({ NotIpAddressIfExists: fc.record({ 'aws:SourceIp': fc.constantFrom('10.0.0.0/8') }) }),
  fc.record({ NumericLessThan: fc.record({ 's3:max-keys': fc.constantFrom('10', '1000') }) }),
  fc.record({ 'ForAnyValue:StringEquals': fc.record({ 'aws:TagKeys': list(fc.constantFrom('env', 'team')) }) }),
  fc.record({ 'ForAllValues:StringLike': fc.record({ 'aws:TagKeys': fc.constantFrom('e*', 't*') }) }),
);

function statement(withPrincipal: boolean): fc.Arbitrary<Obj> {
  return fc
    .record({
      Effect: fc.constantFrom('Allow', 'Deny'),
      action: fc.tuple(fc.boolean(), list(fc.constantFrom(...ACTION_PATTERNS))),
      resource: fc.tuple(fc.nat(5), list(fc.constantFrom(...RESOURCE_PATTERNS))),
      principal: fc.tuple(fc.nat(4), list(fc.constantFrom('*', ACCT, `arn:aws:iam::${ACCT}:user/alice`, `arn:aws:iam::${ACCT}:user/bob`))),
      Condition: fc.option(condition, { nil: undefined }),
    })
    .map(({ Effect, action, resource, principal, Condition }) => {
      const s: Obj = { Effect, [action[0] ? 'Action' : 'NotAction']: action[1], [resource[0] === 0 ? 'NotResource' : 'Resource']: resource[1] };
      if (withPrincipal) {
        const aws = Array.isArray(principal[1]) ? principal[1] : [principal[1]];
        if (Effect === 'Deny' && principal[0] === 0) s['NotPrincipal'] = { AWS: aws.filter((a) => a !== '*').length ? aws.filter((a) => a !== '*') : ACCT };
        else s['Principal'] = aws.includes('*') && principal[0] === 1 ? '*' : { AWS: aws };
      }
      if (Condition) s['Condition'] = Condition;
      return s;
    });
}

/** Sids from the generated positions, so every Sid is unique and survives insertion and reordering. */
function withSids(statements: Obj[], prefix: string): Obj[] {
  return statements.map((s, i) => ('Sid' in s ? s : { Sid: `${prefix}${i}`, ...s }));
}

const inputArb: fc.Arbitrary<Input> = fc
  .record({
    identity: fc.array(fc.array(statement(false), { minLength: 1, maxLength: 4 }), { maxLength: 3 }),
    resource: fc.option(fc.array(statement(true), { minLength: 1, maxLength: 4 }), { nil: undefined }),
  })
  .map((i) => ({ identity: i.identity.map((p, n) => withSids(p, `I${n}S`)), resource: i.resource && withSids(i.resource, 'RS') }));

const requestArb: fc.Arbitrary<RequestContext> = fc.record({
  principal: fc.constantFrom(...PRINCIPALS),
  action: fc.constantFrom(...ACTIONS),
  resource: fc.constantFrom(...RESOURCES),
  conditionKeys: fc.record(
    {
      's3:prefix': fc.constantFrom('a/', 'b/x', ''),
      's3:x-amz-server-side-encryption': fc.constantFrom('AES256', 'aws:kms', 'bogus'),
      'aws:SecureTransport': fc.constantFrom('true', 'false'),
      'aws:SourceIp': fc.constantFrom('10.1.2.3', '192.0.2.1', '2001:db8::9', '203.0.113.4'),
      's3:max-keys': fc.constantFrom('5', '100', '5000'),
      'aws:TagKeys': fc.constantFrom<string[]>([], ['env'], ['env', 'team'], ['other']),
    },
    { requiredKeys: [] },
  ),
});

function run(input: Input, req: RequestContext): Decision {
  const identityPolicies = input.identity.map((st) => parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: st }), { kind: 'identity' }));
  const resourcePolicy = input.resource && parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: input.resource }), { kind: 'bucket' });
  return evaluate({ identityPolicies, ...(resourcePolicy ? { resourcePolicy } : {}) }, req);
}

/** Puts `s` at `at` (modulo length+1) in identity policy `which`, or in the resource policy when which < 0. */
function insert(input: Input, which: number, at: number, s: Obj): { input: Input; policy: number; pos: number } {
  const copy: Input = { identity: input.identity.map((p) => [...p]), resource: input.resource && [...input.resource] };
  let target: Obj[];
  if (which < 0) target = copy.resource ??= [];
  else if (copy.identity.length === 0) target = copy.identity[0] = [];
  else target = copy.identity[which % copy.identity.length]!;
  const pos = at % (target.length + 1);
  target.splice(pos, 0, s);
  return { input: copy, policy: which < 0 ? -1 : which % Math.max(1, input.identity.length), pos };
}

const shuffle = <T>(a: readonly T[], seed: number): T[] => {
  const out = [...a];
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
};

const RUNS = { numRuns: 400 };

describe('policy evaluation properties', () => {
  test('an applicable unconditional explicit Deny always wins', () => {
    fc.assert(
      fc.property(inputArb, requestArb, fc.integer({ min: -1, max: 3 }), fc.nat(), fc.boolean(), (input, req, which, at, broad) => {
        const deny: Obj = { Sid: 'InjectedDeny', Effect: 'Deny', Action: broad ? '*' : req.action, Resource: broad ? '*' : req.resource };
        if (which < 0) deny['Principal'] = '*';
        const injected = insert(input, which, at, deny).input;
        const d = run(injected, req);
        assert.equal(d.effect, 'Deny', d.reason);
        assert.ok(d.decidingStatement);
      }),
      RUNS,
    );
  });

  test('adding an unrelated Allow never turns a Deny into an Allow nor changes its deciding statement', () => {
    fc.assert(
      fc.property(inputArb, requestArb, fc.integer({ min: -1, max: 3 }), fc.nat(), fc.boolean(), (input, req, which, at, otherAction) => {
        const before = run(input, req);
        const allow: Obj = otherAction
          ? { Sid: 'Unrelated', Effect: 'Allow', Action: 's3:PutBucketTagging', Resource: '*' }
          : { Sid: 'Unrelated', Effect: 'Allow', Action: '*', Resource: 'arn:aws:s3:::unrelated-bucket/*' };
        if (which < 0) allow['Principal'] = '*';
        const { input: more, policy, pos } = insert(input, which, at, allow);
        const after = run(more, req);
        assert.equal(after.effect, before.effect, `${before.reason} / ${after.reason}`);
        if (before.effect === 'Deny') {
          const b = before.decidingStatement!;
          const samePolicy = b.source === 'resource' ? policy === -1 : policy === b.policyIndex && which >= 0 && input.identity.length > 0;
          const shifted = samePolicy && pos <= b.index ? 1 : 0;
          assert.deepEqual(after.decidingStatement, { ...b, index: b.index + shifted });
        }
      }),
      RUNS,
    );
  });

  test('evaluation is deterministic', () => {
    fc.assert(
      fc.property(inputArb, requestArb, (input, req) => {
        assert.deepEqual(run(input, req), run(input, req));
      }),
      RUNS,
    );
  });

  test('the effect does not depend on the order of statements or of identity policies', () => {
    fc.assert(
      fc.property(inputArb, requestArb, fc.nat(), (input, req, seed) => {
        const shuffled: Input = {
          identity: shuffle(input.identity.map((p, i) => shuffle(p, seed + i)), seed),
          resource: input.resource && shuffle(input.resource, seed + 99),
        };
        const a = run(input, req);
        const b = run(shuffled, req);
        assert.equal(b.effect, a.effect, `${a.reason} / ${b.reason}`);
      }),
      RUNS,
    );
  });

  test('without policies, only the root user is allowed', () => {
    fc.assert(
      fc.property(requestArb, (req) => {
        const d = run({ identity: [], resource: undefined }, req);
        assert.equal(d.effect, req.principal.type === 'Root' ? 'Allow' : 'ImplicitDeny');
      }),
    );
  });
});
