// The hand-written value parsers and pattern helpers under the condition operators: IP
// addresses and CIDR blocks, dates, numbers, policy-variable tokens and ARN splitting.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cidrContains, parseCidr, parseDate, parseIp, parseNumber } from '../../src/policy/values.ts';
import { matchArn, resolve, splitArn, tokenize, UnresolvedVariable } from '../../src/policy/pattern.ts';

describe('IP addresses', () => {
  test('accepts the usual IPv6 spellings and rejects malformed ones', () => {
    for (const ok of ['::', '::1', '2001:db8::', 'fe80::1:2', '2001:0db8:0000:0000:0000:ff00:0042:8329', '::ffff:192.0.2.1', '64:ff9b::192.0.2.33']) {
      assert.ok(parseIp(ok), ok);
    }
    for (const bad of ['', '1.2.3', '1.2.3.256', '01.2.3.4.5', '2001:db8:::1', '1::2::3', '2001:db8:0:0:0:0:0:0:1', 'g::1', '::1%eth0', '1.2.3.4/8', ' 1.2.3.4']) {
      assert.equal(parseIp(bad), undefined, bad);
    }
  });

  test('an IPv4-mapped IPv6 address is IPv4', () => {
    assert.deepEqual(parseIp('::ffff:10.1.2.3'), { v: 4, bytes: Uint8Array.from([10, 1, 2, 3]) });
  });

  test('CIDR containment ignores host bits and respects the prefix', () => {
    const block = parseCidr('10.1.2.3/16')!;
    assert.ok(cidrContains(block, parseIp('10.1.200.1')!));
    assert.ok(!cidrContains(block, parseIp('10.2.0.1')!));
    const v6 = parseCidr('2001:db8:abcd:12::/60')!;
    assert.ok(cidrContains(v6, parseIp('2001:db8:abcd:1f::1')!));
    assert.ok(!cidrContains(v6, parseIp('2001:db8:abcd:20::1')!));
    assert.equal(parseCidr('10.0.0.0/'), undefined);
    assert.equal(parseCidr('::/129'), undefined);
    assert.equal(parseCidr('10.0.0.0/-1'), undefined);
  });
});

describe('dates and numbers', () => {
  test('ISO 8601 forms and epoch seconds', () => {
    const t = Date.UTC(2024, 0, 31, 12, 30, 15);
    assert.equal(parseDate('2024-01-31T12:30:15Z'), t);
    assert.equal(parseDate('2024-01-31T12:30:15.250Z'), t + 250);
    assert.equal(parseDate('2024-01-31T14:30:15+02:00'), t);
    assert.equal(parseDate('2024-01-31T07:30:15-0500'), t);
    assert.equal(parseDate('2024-01-31T12:30:15'), t, 'no zone is UTC');
    assert.equal(parseDate('2024-01-31T12:30Z'), t - 15_000);
    assert.equal(parseDate('2024-01-31'), Date.UTC(2024, 0, 31));
    assert.equal(parseDate(String(t / 1000)), t);
    assert.equal(parseDate('1706704215.5'), t + 500);
    for (const bad of ['2024-13-01', '2024-02-30', '2024-01-31T25:00:00Z', '31/01/2024', 'now', '', '2024-01-31T12:30:15+25:00']) assert.equal(parseDate(bad), undefined, bad);
  });

  test('decimal numbers only', () => {
    assert.equal(parseNumber('010'), 10);
    assert.equal(parseNumber('-1.5'), -1.5);
    assert.equal(parseNumber('.5'), 0.5);
    assert.equal(parseNumber('+3'), 3);
    for (const bad of ['', '0x10', '1_000', 'Infinity', 'NaN', '1e400', ' 1', '1,5']) assert.equal(parseNumber(bad), undefined, bad);
  });
});

describe('patterns', () => {
  test('variables, escapes and defaults are tokenized only where variables apply', () => {
    const syntax = { wildcards: true, variables: true };
    assert.deepEqual(tokenize("a${aws:username}b${*}${x:y, 'dflt'}*", syntax), [
      { t: 'lit', s: 'a' },
      { t: 'var', key: 'aws:username' },
      { t: 'lit', s: 'b*' },
      { t: 'var', key: 'x:y', dflt: 'dflt' },
      { t: 'star' },
    ]);
    assert.deepEqual(tokenize('a${aws:username}', { wildcards: true, variables: false }), [{ t: 'lit', s: 'a${aws:username}' }]);
    assert.deepEqual(tokenize('${unterminated', syntax), [{ t: 'lit', s: '${unterminated' }]);
  });

  test('a multi-valued key cannot resolve a variable', () => {
    const pieces = tokenize('${aws:TagKeys}', { wildcards: false, variables: true });
    assert.throws(() => resolve(pieces, () => ['a', 'b']), UnresolvedVariable);
    assert.deepEqual(resolve(pieces, () => ['a']), [{ t: 'lit', s: 'a' }]);
  });

  test('ARN splitting keeps colons in the resource component', () => {
    assert.deepEqual(splitArn('arn:aws:s3:::b/k:1'), ['arn', 'aws', 's3', '', '', 'b/k:1']);
    assert.equal(splitArn('arn:aws:s3'), undefined);
    const p = (s: string) => tokenize(s, { wildcards: true, variables: false });
    assert.ok(matchArn(p('arn:aws:kms:*:*:key/*'), 'arn:aws:kms:eu-west-1:111122223333:key/abc'));
    assert.ok(!matchArn(p('arn:aws:kms:*:key/*'), 'arn:aws:kms:eu-west-1:111122223333:key/abc'), 'five components never match');
    assert.ok(!matchArn(p('arn:aws:kms:*:*:key/*'), 'arn:aws:kms:eu-west-1:111122223333'), 'a value with five components never matches');
  });
});
