// parsePolicy: what it accepts, and for every malformed document the MalformedPolicy error
// with the message that says what is wrong and where (statement index, Sid, element).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isS3Error } from '../../src/shared/errors.ts';
import { parsePolicy, PolicyError, type ParseOptions, type Policy } from '../../src/policy/index.ts';

const bucket: ParseOptions = { kind: 'bucket' };
const B = 'arn:aws:s3:::amzn-s3-demo-bucket';

function doc(...statements: object[]): string {
  return JSON.stringify({ Version: '2012-10-17', Statement: statements });
}
const st = (extra: object = {}) => ({ Sid: 'S', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `${B}/*`, ...extra });
const idSt = (extra: object = {}) => ({ Effect: 'Allow', Action: 's3:GetObject', Resource: '*', ...extra });

/** Asserts parsePolicy throws a MalformedPolicy PolicyError whose message matches. */
function rejects(text: string, opts: ParseOptions, message: string | RegExp): PolicyError {
  let caught: unknown;
  try {
    parsePolicy(text, opts);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof PolicyError, `expected a PolicyError, got ${String(caught)}`);
  assert.ok(isS3Error(caught));
  assert.equal(caught.code, 'MalformedPolicy');
  assert.equal(caught.status, 400);
  if (typeof message === 'string') assert.equal(caught.message, message);
  else assert.match(caught.message, message);
  return caught;
}

describe('parsePolicy accepts', () => {
  test('the require-encryption bucket policy, with its structure kept', () => {
    const p: Policy = parsePolicy(
      doc(
        { Sid: 'DenyNoSSE', Effect: 'Deny', Principal: '*', Action: 's3:PutObject', Resource: `${B}/*`, Condition: { Null: { 's3:x-amz-server-side-encryption': 'true' } } },
        { Sid: 'DenyBadSSE', Effect: 'Deny', Principal: { AWS: '*' }, Action: ['s3:PutObject'], Resource: [`${B}/*`], Condition: { StringNotEquals: { 's3:x-amz-server-side-encryption': ['AES256', 'aws:kms'] } } },
      ),
      { kind: 'bucket', resourceArnPrefix: B },
    );
    assert.equal(p.kind, 'bucket');
    assert.equal(p.version, '2012-10-17');
    assert.equal(p.statements.length, 2);
    assert.deepEqual(p.statements[1]!.conditions, [
      { operator: 'StringNotEquals', base: 'StringNotEquals', ifExists: false, key: 's3:x-amz-server-side-encryption', values: ['AES256', 'aws:kms'] },
    ]);
    assert.equal(p.statements[1]!.principal!.wildcard, true);
    assert.ok(Object.isFrozen(p) && Object.isFrozen(p.statements[0]) && Object.isFrozen(p.statements[0]!.conditions));
  });

  test('Statement as one object, no Version, Id, numbers and booleans as condition values', () => {
    const p = parsePolicy(JSON.stringify({ Id: 'P1', Statement: idSt({ Condition: { NumericLessThan: { 's3:max-keys': 10 }, Bool: { 'aws:SecureTransport': true } } }) }), { kind: 'identity' });
    assert.equal(p.version, undefined);
    assert.equal(p.id, 'P1');
    assert.equal(p.statements[0]!.index, 0);
    assert.deepEqual(p.statements[0]!.conditions.map((c) => c.values), [['10'], ['true']]);
  });

  test('qualifiers and IfExists are split out of the operator name', () => {
    const p = parsePolicy(doc(idSt({ Condition: { 'ForAllValues:StringLikeIfExists': { 'aws:TagKeys': 'a*' } } })), { kind: 'identity' });
    assert.deepEqual(p.statements[0]!.conditions[0], { operator: 'ForAllValues:StringLikeIfExists', base: 'StringLike', qualifier: 'ForAllValues', ifExists: true, key: 'aws:TagKeys', values: ['a*'] });
  });

  test('a key policy: Sid with spaces, account principal, no Resource', () => {
    const p = parsePolicy(doc({ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:root' }, Action: 'kms:*' }), { kind: 'key' });
    assert.equal(p.statements[0]!.resource, undefined);
    assert.deepEqual(p.statements[0]!.principal!.aws, ['arn:aws:iam::111122223333:root']);
  });

  test('every principal form', () => {
    const p = parsePolicy(
      doc(st({ Principal: { AWS: ['111122223333', 'arn:aws:iam::111122223333:user/path/alice', 'arn:aws:sts::111122223333:assumed-role/R/s'], Service: 's3.amazonaws.com', CanonicalUser: '79A59DF900B949E55D96A1E698FBACEDFD6E09D98EACF8F8D5218E7CD47EF2BE', Federated: 'cognito-identity.amazonaws.com' } })),
      bucket,
    );
    const set = p.statements[0]!.principal!;
    assert.equal(set.aws.length, 3);
    assert.deepEqual(set.canonicalUser, ['79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be']);
  });

  test('a byte order mark, whitespace around the document, and "__proto__" only as an unknown field', () => {
    assert.equal(parsePolicy(`\uFEFF  ${doc(st())}\n`, bucket).statements.length, 1);
    rejects('{"__proto__": {}, "Statement": []}', bucket, 'Unknown field __proto__');
  });

  test('the size limits as AWS counts them', () => {
    const pad = (n: number) => ({ Sid: 'S', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `${B}/${'x'.repeat(n)}` });
    assert.ok(parsePolicy(doc(pad(20_000)), bucket));
    rejects(doc(pad(20_480)), bucket, /^Policy document exceeds the maximum allowed size: 20\d{3} bytes, the limit is 20480$/);
    assert.ok(parsePolicy(doc(pad(30_000)), { kind: 'key' }), 'key policies may be 32 KB');
    rejects(doc(pad(33_000)), { kind: 'key' }, /exceeds the maximum allowed size: \d+ bytes, the limit is 32768/);
    const spaced = JSON.stringify({ Version: '2012-10-17', Statement: idSt({ Resource: `${B}/${'y'.repeat(5900)}` }) }, null, 4).replace(/\n/g, `\n${' '.repeat(100)}`);
    assert.ok(spaced.length > 6144 && parsePolicy(spaced, { kind: 'identity' }), 'identity policies: whitespace is not counted');
    rejects(JSON.stringify({ Statement: idSt({ Resource: `${B}/${'y'.repeat(6200)}` }) }), { kind: 'identity' }, /exceeds the maximum allowed size: \d+ non-whitespace characters, the limit is 6144/);
    rejects(doc(st()), { kind: 'bucket', maxBytes: 50 }, /the limit is 50$/);
  });
});

describe('parsePolicy rejects, saying what and where', () => {
  test('bad JSON, with its position', () => {
    const e = rejects('{"Version": "2012-10-17", "Statement": [}', bucket, "Invalid JSON at position 40 (line 1, column 41): unexpected '}'");
    assert.equal(e.location.position, 40);
    rejects('{"Statement": [\n  {"Effect": "Allow",}\n]}', bucket, "Invalid JSON at position 37 (line 2, column 22): expected a property name in double quotes, found '}'");
    rejects('{"Statement": "x"', bucket, /^Invalid JSON at position 17 .*expected ',' or '}', found end of input/);
    rejects('{"Statement": "x\u0001"}', bucket, /control character in string/);
    rejects('{"Statement": []} x', bucket, /unexpected 'x' after the end of the document/);
    rejects('{"Statement": [01]}', bucket, /^Invalid JSON at position 16/);
    rejects('['.repeat(100), bucket, /nesting too deep/);
  });

  test('duplicate keys, which JSON.parse would silently merge', () => {
    const text =
      '{"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}, "Bool": {"aws:MultiFactorAuthPresent": "false"}}}]}';
    const at = text.lastIndexOf('"Bool"');
    const e = rejects(text, bucket, `Invalid JSON at position ${at} (line 1, column ${at + 1}): duplicate key "Bool"`);
    assert.equal(e.location.position, at);
  });

  test('not a JSON object, or empty', () => {
    rejects('[]', bucket, "Policies must be valid JSON and the first byte must be '{': the document is not a JSON object");
    rejects('"text"', bucket, /the document is not a JSON object/);
    rejects('  ', bucket, "Policies must be valid JSON and the first byte must be '{': the document is empty");
  });

  test('unknown fields, at the top and in a statement', () => {
    rejects(JSON.stringify({ Version: '2012-10-17', Statement: [st()], Comment: 'x' }), bucket, 'Unknown field Comment');
    rejects(doc(st(), st({ Sid: 'T', Actions: 's3:*' })), bucket, 'Unknown field Actions in statement 1 (Sid T)');
  });

  test('Version', () => {
    rejects(JSON.stringify({ Version: '2010-01-01', Statement: [st()] }), bucket, 'Policy has an invalid Version "2010-01-01": the supported versions are 2012-10-17 and 2008-10-17');
    rejects(JSON.stringify({ Version: 2012, Statement: [st()] }), bucket, /invalid Version 2012/);
  });

  test('Statement missing, empty, or an empty statement', () => {
    rejects('{"Version": "2012-10-17"}', bucket, 'Missing required field Statement');
    rejects('{"Statement": []}', bucket, 'Statement is empty: a policy needs at least one statement');
    rejects(doc(st(), {}), bucket, 'Statement is empty in statement 1');
    rejects(doc('s3:*' as never), bucket, 'Invalid statement in statement 0: a statement must be a JSON object');
  });

  test('Effect missing or wrong', () => {
    const e = rejects(doc(st({ Effect: undefined })), bucket, 'Missing required field Effect in statement 0 (Sid S)');
    assert.deepEqual(e.location, { statementIndex: 0, sid: 'S', field: 'Effect' });
    rejects(doc(st({ Effect: 'allow' })), bucket, 'Invalid effect in statement 0 (Sid S): "allow": it must be "Allow" or "Deny"');
  });

  test('Principal in an identity policy', () => {
    rejects(doc(idSt({ Principal: '*' })), { kind: 'identity' }, 'Policy document should not specify a principal in statement 0: identity policies apply to the identity they are attached to');
    rejects(doc(idSt({ NotPrincipal: { AWS: '111122223333' } })), { kind: 'identity' }, /^Policy document should not specify a principal/);
  });

  test('Principal missing from a bucket or key policy', () => {
    rejects(doc(st({ Principal: undefined })), bucket, 'Missing required field Principal in statement 0 (Sid S): bucket policies must name a Principal (or NotPrincipal)');
    rejects(doc({ Effect: 'Allow', Action: 'kms:*', Resource: '*' }), { kind: 'key' }, 'Missing required field Principal in statement 0: key policies must name a Principal (or NotPrincipal)');
  });

  test('invalid principals', () => {
    const P = /^Invalid principal in policy in statement 0 \(Sid S\): /;
    rejects(doc(st({ Principal: 'bob' })), bucket, P);
    rejects(doc(st({ Principal: {} })), bucket, /Principal is empty/);
    rejects(doc(st({ Principal: { AWS: 'arn:aws:iam::111122223333:user/*' } })), bucket, /AWS 'arn:aws:iam::111122223333:user\/\*' is not "\*", a 12-digit account id or an IAM principal ARN \(no wildcards\)/);
    rejects(doc(st({ Principal: { AWS: '1234' } })), bucket, P);
    rejects(doc(st({ Principal: { User: 'alice' } })), bucket, /unknown principal type 'User'/);
    rejects(doc(st({ Principal: { AWS: [] } })), bucket, /AWS must not be an empty array/);
    rejects(doc(st({ Principal: { CanonicalUser: 'abc' } })), bucket, /not a 64-hex-digit canonical user id/);
    rejects(doc(st({ Principal: '*', NotPrincipal: '*' })), bucket, /cannot have both Principal and NotPrincipal/);
    rejects(doc(st({ Principal: undefined, NotPrincipal: { AWS: '111122223333' } })), bucket, /NotPrincipal must be used with "Effect": "Deny"/);
  });

  test('invalid actions', () => {
    rejects(doc(st({ Action: 's3GetObject' })), bucket, `Policy has invalid action in statement 0 (Sid S): 's3GetObject' is not "*" or service:ActionName (wildcards * and ? allowed in the name)`);
    rejects(doc(st({ Action: 'kms:Decrypt' })), bucket, "Policy has invalid action in statement 0 (Sid S): 'kms:Decrypt' is not an s3: action");
    rejects(doc(st({ Action: [] })), bucket, 'Policy has invalid action in statement 0 (Sid S): Action must not be an empty array');
    rejects(doc(st({ Action: ['s3:GetObject', 7] })), bucket, /Action has a non-string entry 7/);
    rejects(doc(st({ NotAction: 's3:PutObject' })), bucket, /cannot have both Action and NotAction/);
    rejects(doc(st({ Action: undefined })), bucket, 'Missing required field Action in statement 0 (Sid S): a statement needs Action or NotAction');
    rejects(doc(idSt({ Action: 's3:Get Object' })), { kind: 'identity' }, /invalid action/);
  });

  test('invalid resources and bad ARNs', () => {
    rejects(doc(st({ Resource: 'arn:aws:s3' })), bucket, `Policy has invalid resource in statement 0 (Sid S): 'arn:aws:s3' is not "*" or an ARN (arn:partition:service:region:account:resource)`);
    rejects(doc(st({ Resource: 'amzn-s3-demo-bucket/*' })), bucket, /invalid resource/);
    rejects(doc(st({ Resource: 'arn::s3:::b' })), bucket, /invalid resource/);
    rejects(doc(st({ Resource: 'arn:aws:s3:::other-bucket/*' })), { kind: 'bucket', resourceArnPrefix: B }, `Policy has invalid resource in statement 0 (Sid S): 'arn:aws:s3:::other-bucket/*' is not ${B} or under ${B}/`);
    rejects(doc(st({ Resource: `${B}-2/*` })), { kind: 'bucket', resourceArnPrefix: B }, /invalid resource/);
    rejects(doc(idSt({ Resource: undefined })), { kind: 'identity' }, 'Missing required field Resource in statement 0: a statement needs Resource or NotResource');
    rejects(doc(st({ NotResource: '*' })), bucket, /cannot have both Resource and NotResource/);
    assert.ok(parsePolicy(doc(st({ Resource: `${B}/home/\${aws:username}/*` })), { kind: 'bucket', resourceArnPrefix: B }));
  });

  test('unknown condition operators and bad qualifiers', () => {
    const e = rejects(doc(st(), st({ Sid: 'DenyX', Effect: 'Deny', Condition: { StringEqualz: { 's3:prefix': 'a' } } })), bucket, "Unknown condition operator 'StringEqualz' in statement 1 (Sid DenyX)");
    assert.deepEqual(e.location, { statementIndex: 1, sid: 'DenyX', field: 'Condition' });
    rejects(doc(st({ Condition: { stringequals: { 's3:prefix': 'a' } } })), bucket, /Unknown condition operator 'stringequals'/);
    rejects(doc(st({ Condition: { 'ForSomeValues:StringEquals': { 's3:prefix': 'a' } } })), bucket, /Unknown condition operator 'ForSomeValues:StringEquals'/);
    rejects(doc(st({ Condition: { NullIfExists: { 's3:prefix': 'true' } } })), bucket, /Null cannot be used with IfExists/);
    rejects(doc(st({ Condition: { 'ForAllValues:Null': { 's3:prefix': 'true' } } })), bucket, /Null cannot be used with ForAllValues/);
    rejects(doc(st({ Condition: { IfExists: { 's3:prefix': 'a' } } })), bucket, /Unknown condition operator 'IfExists'/);
  });

  test('bad condition blocks, keys and values', () => {
    const V = /^Invalid condition value in statement 0 \(Sid S\): /;
    rejects(doc(st({ Condition: 'x' })), bucket, /Invalid Condition block .*Condition must be an object/);
    rejects(doc(st({ Condition: { StringEquals: {} } })), bucket, /StringEquals must be a non-empty object/);
    rejects(doc(st({ Condition: { StringEquals: { prefix: 'a' } } })), bucket, "Policy has an invalid condition key 'prefix' in statement 0 (Sid S): a condition key is prefix:name, e.g. aws:SourceIp");
    rejects(doc(st({ Condition: { NumericLessThan: { 's3:max-keys': 'ten' } } })), bucket, "Invalid condition value in statement 0 (Sid S): NumericLessThan s3:max-keys: 'ten' is not a decimal number");
    rejects(doc(st({ Condition: { DateLessThan: { 'aws:CurrentTime': '2024-02-30T00:00:00Z' } } })), bucket, /'2024-02-30T00:00:00Z' is not a date/);
    rejects(doc(st({ Condition: { Bool: { 'aws:SecureTransport': 'yes' } } })), bucket, /'yes' is not 'true' or 'false'/);
    rejects(doc(st({ Condition: { Null: { 's3:prefix': 'maybe' } } })), bucket, V);
    rejects(doc(st({ Condition: { IpAddress: { 'aws:SourceIp': '300.1.1.1/8' } } })), bucket, /'300.1.1.1\/8' is not an IPv4 or IPv6 address or CIDR block/);
    rejects(doc(st({ Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/33' } } })), bucket, V);
    rejects(doc(st({ Condition: { NotIpAddress: { 'aws:SourceIp': '2001:db8:::1' } } })), bucket, V);
    rejects(doc(st({ Condition: { BinaryEquals: { 'x:b': 'not base64!' } } })), bucket, /is not base64/);
    rejects(doc(st({ Condition: { StringEquals: { 's3:prefix': { a: 1 } } } })), bucket, /\{"a":1\} is not a string, number or boolean/);
    rejects(doc(st({ Condition: { StringEquals: { 's3:prefix': [] } } })), bucket, /the value list is empty/);
    rejects(doc(st({ Condition: { StringEquals: { 's3:prefix': null } } })), bucket, /null is not a string/);
  });

  test('Sid: unique, a string, alphanumeric in identity policies', () => {
    rejects(doc(st({ Sid: 'Same' }), st({ Sid: 'Other' }), st({ Sid: 'Same' })), bucket, "Statement IDs (SID) in a single policy must be unique: 'Same' is used by statements 0 and 2");
    rejects(doc(st({ Sid: 5 })), bucket, 'Invalid Sid in statement 0: Sid must be a string');
    rejects(doc(idSt({ Sid: 'Allow read' })), { kind: 'identity' }, "Invalid Sid in statement 0 (Sid Allow read): 'Allow read': statement IDs in identity policies may contain only letters and digits");
    assert.ok(parsePolicy(doc(st({ Sid: 'Allow read' })), bucket), 'bucket policies accept spaces');
  });

  test('the first error is reported: statements are checked in order', () => {
    rejects(doc(st({ Sid: 'A', Action: 'bad' }), st({ Sid: 'B', Resource: 'bad' })), bucket, /invalid action in statement 0 \(Sid A\)/);
  });
});
