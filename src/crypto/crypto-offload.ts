// Decryption off the main thread. A GET is bound by the one thread that runs JavaScript: it
// parses, authorizes, reads, decrypts and sends. AES-GCM is the largest single cost of a large
// GET there, so windows of several segments are decrypted in a worker thread
// (crypto-worker.ts) while the main thread sends what is already decrypted. When the worker
// falls behind (many GETs at once), the main thread decrypts some windows itself (STEAL_AT).
//
// The bytes never cross threads: they sit in slots of SharedArrayBuffers that both threads
// hold. A reader takes a slot, reads blob bytes into it, the worker decrypts them in place, the
// reader sends the plaintext from the slot and gives it back. Reusing the same memory matters
// as much as the thread: a fresh ArrayBuffer per window (or per transfer) makes V8 count a MiB
// of new external memory each time and run full garbage collections to match, which cost more
// than the decryption itself.
import type { Worker } from 'node:worker_threads';
import { Outbox, startModuleWorker } from '../shared/module-worker.ts';
import { shareSlabsWith, type Slot } from '../shared/slots.ts';
import { CryptoError } from '../shared/errors.ts';
import type { DecryptJob, DecryptReply, SealReply, ToWorker } from './crypto-worker.ts';
import type { SecretKey } from './keys.ts';
import { decryptBlobRangeInPlace } from './format.ts';

/** Segments per window: 1 MiB of plaintext (a window's blob bytes fill one slot). */
export const WINDOW_SEGMENTS = 16;

let worker: Worker | undefined;
let nextId = 1;
/** Who gets the worker's replies for a job (or an upload being sealed: seal-offload.ts). */
export interface Listener {
  onMessage(m: DecryptReply | SealReply): void;
  onFail(e: Error): void;
}

/** An id for a job or a sealed stream (unique per process). */
export function newJobId(): number {
  return nextId++;
}

/** Who gets each worker's reply for a job, per worker (one that dies fails only its own jobs). */
const listeners = new Map<Worker, Map<number, Listener>>();

/** Routes `w`'s replies for `id` to `l` (and keeps the worker referenced while any is listened for). */
export function listen(id: number, l: Listener, w: Worker): void {
  const mine = listeners.get(w) ?? new Map<number, Listener>();
  listeners.set(w, mine);
  mine.set(id, l);
  if (mine.size === 1) w.ref();
}

export function unlisten(id: number, w: Worker): void {
  const mine = listeners.get(w);
  if (mine?.delete(id) && mine.size === 0) w.unref();
}

/**
 * Each worker's outbox (shared/module-worker.ts): stages and openings of uploads go out once per
 * turn; a GET window's decryption goes at once (`now`: the windows are decrypted one after the
 * other as their reads complete, and holding each to the end of the turn measured -5% on a
 * single 256 MiB GET).
 */
const outboxes = new WeakMap<Worker, Outbox<ToWorker>>();

export function send(w: Worker, m: ToWorker, transfer?: ArrayBuffer, now = false): void {
  let box = outboxes.get(w);
  if (!box) outboxes.set(w, (box = new Outbox(w)));
  box.send(m, transfer, now);
}

function startWorker(): Worker {
  const w = startModuleWorker(import.meta.url, './crypto-worker');
  const unshare = shareSlabsWith((m) => send(w, m));
  w.on('message', (m: DecryptReply | SealReply) => listeners.get(w)?.get(m.id)?.onMessage(m));
  const fail = (err: Error) => {
    unshare();
    if (worker === w) worker = undefined;
    const all = [...(listeners.get(w)?.values() ?? [])];
    listeners.delete(w);
    for (const l of all) l.onFail(err);
  };
  w.on('error', fail);
  w.on('exit', () => fail(new Error('crypto worker exited')));
  w.unref();
  return w;
}

/** The crypto worker, started on first use (and again after one died). */
export function theWorker(): Worker {
  return (worker ??= startWorker());
}

/** GET windows sent to the worker and not answered yet. */
let decrypting = 0;
/** GET windows decrypted, by where (tests, diagnostics). */
const decrypted = { worker: 0, here: 0 };
/**
 * With this many windows waiting for the worker, the next one is decrypted on this thread. The
 * worker is a single thread: under many GETs it is the busiest one of the process (decrypting at
 * node's pace, well below AES's own) while the main thread still has time to spare. Taking a
 * window whenever the worker is four behind spreads the decryption over both threads
 * (interleaved A/B, 1 MiB GETs at concurrency 8: +7.5%, 95% CI +0.3 .. +14.7; fewer waiting
 * sooner took more than its share: docs/performance.md, "Session 15").
 */
export const STEAL_AT = 4;

/** How many GET windows were decrypted in the worker and here, and how many wait for the worker. */
export function decryptStats(): { worker: number; here: number; waiting: number } {
  return { ...decrypted, waiting: decrypting };
}

/**
 * decryptRange (format.ts) in the worker thread (or here, when STEAL_AT windows wait for it)
 * over the first `length` bytes of `slot` (blob bytes of the range; from offset 0 when
 * `withHeader`). Resolves with the plaintext's length: the plaintext is then at the start of
 * the slot. On a CryptoError nothing of the window may be used.
 */
export function decryptInSlot(
  dataKey: SecretKey,
  opts: { streamIndex: number; plainSize: number; start?: number; endInclusive?: number; header: Buffer },
  slot: Slot,
  length: number,
  withHeader: boolean,
): Promise<number> {
  if (decrypting >= STEAL_AT) {
    decrypted.here++;
    try {
      return Promise.resolve(decryptBlobRangeInPlace(dataKey, opts, slot.bytes.subarray(0, length), withHeader));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  const w = theWorker();
  const id = newJobId();
  const job: DecryptJob = {
    t: 'job',
    id,
    slot: slot.index,
    length,
    key: new Uint8Array(dataKey.expose()),
    header: new Uint8Array(opts.header),
    streamIndex: opts.streamIndex,
    plainSize: opts.plainSize,
    ...(opts.start !== undefined ? { start: opts.start, endInclusive: opts.endInclusive } : {}),
    withHeader,
  };
  // Counted once the job is made (making it throws when the GET was given up and its key wiped).
  decrypting++;
  decrypted.worker++;
  return new Promise<number>((resolve, reject) => {
    listen(
      id,
      {
        onMessage(m) {
          decrypting--;
          unlisten(id, w);
          if ('error' in m) reject(m.crypto ? new CryptoError() : new Error(m.error));
          else if ('length' in m) resolve(m.length);
        },
        onFail(e) {
          decrypting--;
          reject(e);
        },
      },
      w,
    );
    // The key's copy goes with the message (transferred): none is left here.
    send(w, job, job.key.buffer as ArrayBuffer, true);
  });
}

/** Stops the worker (tests, shutdown); the next call starts a new one. */
export async function stopCryptoWorker(): Promise<void> {
  const w = worker;
  worker = undefined;
  if (w) await w.terminate();
}
