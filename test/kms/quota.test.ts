// KmsQuota with an injected clock: a full second's worth passes at once, the excess is
// throttled until a second after the burst (a sliding window: never more than the limit in any
// 1,000 ms), a steady rate at the limit passes, accounts are counted apart, 0 is off, and the
// status reports the last full second and the totals.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KmsError } from '../../src/kms/errors.ts';
import { DEFAULT_KMS_QUOTA, KmsQuota, QUOTA_OPERATIONS, THROTTLING_MESSAGE } from '../../src/kms/quota.ts';

function clocked(limit: number) {
  const clock = { t: 1_000_000 };
  return { clock, q: new KmsQuota({ limit, now: () => clock.t }) };
}

test('a burst passes up to one second of the limit; the rest is throttled', () => {
  const { q } = clocked(50);
  let ok = 0;
  for (let i = 0; i < 200; i++) if (q.tryTake('111111111111')) ok++;
  assert.equal(ok, 50);
  const s = q.status().accounts[0]!;
  assert.equal(s.allowedTotal, 50);
  assert.equal(s.throttledTotal, 150);
});

test('sliding window: after a burst nothing passes until a second after it; never more than the limit in any second', () => {
  const { q, clock } = clocked(10);
  for (let i = 0; i < 10; i++) assert.ok(q.tryTake('a'));
  assert.equal(q.tryTake('a'), false);
  clock.t += 999;
  assert.equal(q.tryTake('a'), false, 'still within the second of the burst');
  clock.t += 1;
  let ok = 0;
  for (let i = 0; i < 30; i++) if (q.tryTake('a')) ok++;
  assert.equal(ok, 10, 'a second later: another 10');
  clock.t += 60_000; // a long pause still allows only 10 at once
  ok = 0;
  for (let i = 0; i < 30; i++) if (q.tryTake('a')) ok++;
  assert.equal(ok, 10);
  // Random arrivals: any 1,000 ms holds at most `limit` passes.
  const passes: number[] = [];
  for (let i = 0; i < 5000; i++) {
    clock.t += Math.floor(Math.random() * 40);
    if (q.tryTake('b')) passes.push(clock.t);
  }
  for (let i = 10; i < passes.length; i++) assert.ok(passes[i]! - passes[i - 10]! >= 1000, `11 passes within a second at ${i}`);
});

test('a steady rate at the limit always passes', () => {
  const { q, clock } = clocked(100);
  let throttled = 0;
  for (let i = 0; i < 1000; i++) {
    clock.t += 10; // 100 per second
    if (!q.tryTake('a')) throttled++;
  }
  assert.equal(throttled, 0);
});

test('accounts are counted apart', () => {
  const { q } = clocked(3);
  for (let i = 0; i < 3; i++) assert.ok(q.tryTake('a'));
  assert.equal(q.tryTake('a'), false);
  assert.equal(q.tryTake('b'), true);
  assert.deepEqual(q.status().accounts.map((x) => x.accountId), ['a', 'b']);
});

test('take throws ThrottlingException in AWS words', () => {
  const { q } = clocked(1);
  q.take('a');
  assert.throws(() => q.take('a'), (e: unknown) => e instanceof KmsError && e.type === 'ThrottlingException' && e.status === 400 && e.message === THROTTLING_MESSAGE);
  assert.equal(THROTTLING_MESSAGE, 'You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.');
});

test('0 is off', () => {
  const { q } = clocked(0);
  for (let i = 0; i < 10_000; i++) assert.ok(q.tryTake('a'));
  assert.equal(q.enabled, false);
  assert.throws(() => new KmsQuota({ limit: -1 }), RangeError);
  assert.throws(() => new KmsQuota({ limit: 1.5 }), RangeError);
  assert.throws(() => new KmsQuota({ limit: 2_000_000 }), RangeError);
});

test('status: the last full second and totals', () => {
  const { q, clock } = clocked(5);
  for (let i = 0; i < 8; i++) q.tryTake('a'); // 5 allowed, 3 throttled in the first second
  clock.t += 1000;
  let s = q.status();
  assert.equal(s.limit, 5);
  assert.equal(s.scope, 'node');
  assert.equal(s.accounts[0]!.allowedLastSecond, 5);
  assert.equal(s.accounts[0]!.throttledLastSecond, 3);
  assert.equal(s.accounts[0]!.lastThrottledAt, 1_000_000);
  clock.t += 5000; // quiet since
  s = q.status();
  assert.equal(s.accounts[0]!.allowedLastSecond, 0);
  assert.equal(s.accounts[0]!.throttledLastSecond, 0);
  assert.equal(s.accounts[0]!.allowedTotal, 5);
});

test("the counted operations are AWS's symmetric cryptographic operations; the default is 5,500/s", () => {
  assert.deepEqual([...QUOTA_OPERATIONS].sort(), ['Decrypt', 'Encrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'GenerateRandom', 'ReEncrypt']);
  assert.equal(DEFAULT_KMS_QUOTA, 5500);
});
