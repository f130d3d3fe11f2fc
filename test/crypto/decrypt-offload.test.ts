// GET windows decrypted in slots (src/crypto/crypto-offload.ts): in the crypto worker, or, once
// STEAL_AT windows wait for it, on the calling thread. Either way the plaintext is the same, a
// damaged window fails with a CryptoError, and the count of windows waiting for the worker comes
// back to zero.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { decryptInSlot, decryptStats, STEAL_AT, stopCryptoWorker } from '../../src/crypto/crypto-offload.ts';
import { cipherRangeFor, encryptBuffer, HEADER_SIZE, SEGMENT_SIZE } from '../../src/crypto/format.ts';
import { CryptoError } from '../../src/shared/errors.ts';
import { returnSlot, takeSlot, type Slot } from '../../src/shared/slots.ts';
import { keyFrom, pattern, seededRng } from './helpers.ts';

const WINDOW = 16 * SEGMENT_SIZE;
const WINDOWS = STEAL_AT + 3;
const plainSize = WINDOWS * WINDOW - 1000;
const dataKey = keyFrom('decrypt-offload');
const blob = encryptBuffer(dataKey, pattern(plainSize), { streamIndex: 0, rng: seededRng('decrypt-offload') });
const header = blob.subarray(0, HEADER_SIZE);
const plain = pattern(plainSize);

/** Window `w`'s blob bytes (from the blob's start for the first, header included) in a fresh slot. */
function load(w: number): { slot: Slot; length: number; withHeader: boolean; start: number; end: number } {
  const start = w * WINDOW;
  const end = Math.min(plainSize, start + WINDOW) - 1;
  const cr = cipherRangeFor(plainSize, start, end);
  const withHeader = w === 0;
  const bytes = blob.subarray(withHeader ? 0 : cr.cipherStart, cr.cipherEndExclusive);
  const slot = takeSlot();
  assert.ok(slot, 'a free slot');
  bytes.copy(slot.bytes);
  return { slot, length: bytes.length, withHeader, start, end };
}

function decrypt(x: ReturnType<typeof load>): Promise<number> {
  return decryptInSlot(dataKey, { streamIndex: 0, plainSize, header, start: x.start, endInclusive: x.end }, x.slot, x.length, x.withHeader);
}

describe('GET windows decrypted in the worker or, when it is behind, here', () => {
  after(() => stopCryptoWorker());

  test(`with ${STEAL_AT} windows waiting for the worker, the next ones are decrypted here, to the same bytes`, async () => {
    const before = decryptStats();
    const loaded = Array.from({ length: WINDOWS }, (_, w) => load(w));
    const pending = loaded.map((x) => decrypt(x));
    const during = decryptStats();
    assert.equal(during.waiting, STEAL_AT, 'the worker has as many as it takes before the calling thread helps');
    assert.equal(during.worker - before.worker, STEAL_AT);
    assert.equal(during.here - before.here, WINDOWS - STEAL_AT);
    const lengths = await Promise.all(pending);
    for (const [w, x] of loaded.entries()) {
      assert.equal(lengths[w], x.end - x.start + 1);
      assert.ok(x.slot.bytes.subarray(0, lengths[w]).equals(plain.subarray(x.start, x.end + 1)), `window ${w}`);
      returnSlot(x.slot);
    }
    assert.equal(decryptStats().waiting, 0);
    // Nothing waits now: the next window goes to the worker again.
    const one = load(2);
    const p = decrypt(one);
    assert.equal(decryptStats().worker - during.worker, 1);
    assert.equal(await p, WINDOW);
    assert.ok(one.slot.bytes.subarray(0, WINDOW).equals(plain.subarray(2 * WINDOW, 3 * WINDOW)));
    returnSlot(one.slot);
  });

  test('a damaged window fails with a CryptoError wherever it is decrypted; the others decrypt', async () => {
    const loaded = Array.from({ length: WINDOWS }, (_, w) => load(w));
    // One flipped byte in a window for the worker (the second) and in one decrypted here (the last).
    const damaged = [1, WINDOWS - 1];
    for (const w of damaged) loaded[w]!.slot.bytes[loaded[w]!.length - 40]! ^= 1;
    const results = await Promise.allSettled(loaded.map((x) => decrypt(x)));
    for (const [w, r] of results.entries()) {
      const x = loaded[w]!;
      if (damaged.includes(w)) {
        assert.equal(r.status, 'rejected', `window ${w} fails`);
        assert.ok((r as PromiseRejectedResult).reason instanceof CryptoError, `window ${w}: a CryptoError`);
      } else {
        assert.equal(r.status, 'fulfilled', `window ${w} decrypts`);
        assert.ok(x.slot.bytes.subarray(0, x.end - x.start + 1).equals(plain.subarray(x.start, x.end + 1)));
      }
      returnSlot(x.slot);
    }
    assert.equal(decryptStats().waiting, 0);
  });

  test('a worker that dies fails the windows it had; the count of waiting windows comes back to zero', async () => {
    const loaded = Array.from({ length: STEAL_AT }, (_, w) => load(w));
    const pending = loaded.map((x) => decrypt(x).then(
      () => 'done',
      (e: Error) => e.message,
    ));
    assert.equal(decryptStats().waiting, STEAL_AT);
    await stopCryptoWorker();
    const outcomes = await Promise.all(pending);
    for (const o of outcomes) assert.ok(o === 'done' || /exited|terminated/.test(o), o);
    assert.equal(decryptStats().waiting, 0);
    for (const x of loaded) returnSlot(x.slot);
    // A new worker serves the next window.
    const one = load(0);
    assert.equal(await decrypt(one), WINDOW);
    assert.ok(one.slot.bytes.subarray(0, WINDOW).equals(plain.subarray(0, WINDOW)));
    returnSlot(one.slot);
  });
});
