// The crypto worker thread (see crypto-offload.ts): decryption for GETs off the main thread.
// The blob bytes of a window of segments sit in a slot of shared memory both threads hold
// (shared/slots.ts); the worker verifies and decrypts them with decryptRange (format.ts) and
// writes the plaintext over the ciphertext in the same slot. Only small messages cross
// threads, and the cipher's allocations are this thread's garbage, not the main thread's.
import { parentPort } from 'node:worker_threads';
import { CryptoError } from '../shared/errors.ts';
import { copyIntoShared } from '../shared/aligned-memory.ts';
import { SlotViews, type SlabMessage } from '../shared/slots.ts';
import { decryptBlobRange } from './format.ts';
import { SecretKey } from './keys.ts';

export type ToWorker = SlabMessage | DecryptJob;

export interface DecryptJob {
  t: 'job';
  id: number;
  slot: number;
  /** Bytes of ciphertext in the slot: blob bytes [cipherStart, cipherEnd), or from 0 when `withHeader`. */
  length: number;
  /** The data key (zeroed here after use). */
  key: Uint8Array;
  header: Uint8Array;
  streamIndex: number;
  plainSize: number;
  start?: number;
  endInclusive?: number;
  /** The slot's bytes start with the stream header, which must equal `header`. */
  withHeader: boolean;
}

export type DecryptReply = { id: number; length: number } | { id: number; error: string; crypto: boolean };
const slots = new SlotViews();

function decrypt(j: DecryptJob): number {
  const key = SecretKey.from(j.key);
  j.key.fill(0);
  try {
    const all = slots.view(j.slot, j.length);
    const header = Buffer.from(j.header.buffer, j.header.byteOffset, j.header.byteLength);
    const range = j.start === undefined ? {} : { start: j.start, endInclusive: j.endInclusive };
    const pieces = decryptBlobRange(key, { streamIndex: j.streamIndex, plainSize: j.plainSize, header, ...range }, all, j.withHeader);
    // Every segment is verified and decrypted (into pieces of its own) before any byte of the
    // slot is overwritten.
    let n = 0;
    for (const p of pieces) {
      copyIntoShared(all, n, p);
      n += p.length;
    }
    return n;
  } finally {
    key.zero();
  }
}

parentPort!.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'slab':
      slots.add(m);
      return;
    case 'job':
      try {
        parentPort!.postMessage({ id: m.id, length: decrypt(m) } satisfies DecryptReply);
      } catch (e) {
        parentPort!.postMessage({ id: m.id, error: (e as Error).message, crypto: e instanceof CryptoError } satisfies DecryptReply);
      }
      return;
  }
});
