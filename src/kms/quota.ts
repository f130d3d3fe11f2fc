// KMS request quotas: AWS's shared "cryptographic operations (symmetric)" request rate
// (Encrypt, Decrypt, ReEncrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext,
// GenerateRandom), per account, default 5,500 per second. A sliding one-second window per
// account: a request passes when fewer than `limit` requests passed in the 1,000 ms before it
// (a ring of the last `limit` pass times, so each check is O(1)). A steady rate up to the limit
// always passes, a burst passes up to the limit, and after a burst nothing more passes until a
// second after it. Per node: several nodes sharing a database each allow the full rate
// (docs/kms.md).
import { KmsError } from './errors.ts';

export const DEFAULT_KMS_QUOTA = 5500;
/** The highest quota (the window keeps one timestamp per request it allows: 8 MB per account at most). */
export const MAX_KMS_QUOTA = 1_000_000;

/** The operations the quota counts (AWS's shared symmetric cryptographic operations quota). */
export const QUOTA_OPERATIONS: ReadonlySet<string> = new Set([
  'Encrypt',
  'Decrypt',
  'ReEncrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateRandom',
]);

export const THROTTLING_MESSAGE = 'You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.';

export interface QuotaAccountStatus {
  accountId: string;
  /** Requests allowed in the last full second. */
  allowedLastSecond: number;
  /** Requests throttled in the last full second. */
  throttledLastSecond: number;
  /** Totals since the server started. */
  allowedTotal: number;
  throttledTotal: number;
  /** ms since epoch of the last throttled request, if any. */
  lastThrottledAt?: number;
}

export interface QuotaStatus {
  /** Requests per second per account; 0 when the quota is off. */
  limit: number;
  scope: 'node';
  accounts: QuotaAccountStatus[];
}

interface Bucket {
  /** Pass times (ms) of the last `limit` requests allowed; `next` is where the next goes (the oldest, once full). */
  passed: Float64Array;
  next: number;
  count: number;
  /** Start (ms) of the current one-second counting window, and its counts. */
  windowStart: number;
  allowed: number;
  throttled: number;
  prevAllowed: number;
  prevThrottled: number;
  allowedTotal: number;
  throttledTotal: number;
  lastThrottledAt?: number;
}

export class KmsQuota {
  readonly limit: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(opts: { limit: number; now?: () => number }) {
    if (!Number.isInteger(opts.limit) || opts.limit < 0 || opts.limit > MAX_KMS_QUOTA) {
      throw new RangeError(`the KMS quota is a whole number of requests per second, 0 (off) to ${MAX_KMS_QUOTA}`);
    }
    this.limit = opts.limit;
    // Monotonic (a wall clock stepping back would stall the window), in epoch ms.
    this.now = opts.now ?? (() => performance.timeOrigin + performance.now());
  }

  get enabled(): boolean {
    return this.limit > 0;
  }

  private bucket(accountId: string, t: number): Bucket {
    let b = this.buckets.get(accountId);
    if (!b) {
      b = { passed: new Float64Array(this.limit), next: 0, count: 0, windowStart: t, allowed: 0, throttled: 0, prevAllowed: 0, prevThrottled: 0, allowedTotal: 0, throttledTotal: 0 };
      this.buckets.set(accountId, b);
    }
    // Roll the counting window forward.
    if (t - b.windowStart >= 1000) {
      const adjacent = t - b.windowStart < 2000;
      b.prevAllowed = adjacent ? b.allowed : 0;
      b.prevThrottled = adjacent ? b.throttled : 0;
      b.allowed = 0;
      b.throttled = 0;
      b.windowStart += Math.floor((t - b.windowStart) / 1000) * 1000;
    }
    return b;
  }

  /** Counts one request of `accountId`; false when it is over the quota. */
  tryTake(accountId: string): boolean {
    if (!this.enabled) return true;
    const t = this.now();
    const b = this.bucket(accountId, t);
    // Full: the oldest of the last `limit` passes must be a second old.
    if (b.count < this.limit || b.passed[b.next]! <= t - 1000) {
      b.passed[b.next] = t;
      b.next = (b.next + 1) % this.limit;
      if (b.count < this.limit) b.count++;
      b.allowed++;
      b.allowedTotal++;
      return true;
    }
    b.throttled++;
    b.throttledTotal++;
    b.lastThrottledAt = t;
    return false;
  }

  /** Counts one request, or throws ThrottlingException. */
  take(accountId: string): void {
    if (!this.tryTake(accountId)) throw new KmsError('ThrottlingException', THROTTLING_MESSAGE);
  }

  status(): QuotaStatus {
    const t = this.now();
    return {
      limit: this.limit,
      scope: 'node',
      accounts: [...this.buckets.keys()].sort().map((accountId) => {
        const b = this.bucket(accountId, t);
        return {
          accountId,
          allowedLastSecond: b.prevAllowed,
          throttledLastSecond: b.prevThrottled,
          allowedTotal: b.allowedTotal,
          throttledTotal: b.throttledTotal,
          ...(b.lastThrottledAt !== undefined ? { lastThrottledAt: b.lastThrottledAt } : {}),
        };
      }),
    };
  }
}
