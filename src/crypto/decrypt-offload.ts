// Decryption off the main thread. A GET is bound by the one thread that runs JavaScript: it
// parses, authorizes, reads, decrypts and sends. AES-GCM is the largest single cost of a large
// GET there, so windows of several segments are decrypted in a worker thread
// (decrypt-worker.ts) while the main thread sends what is already decrypted.
//
// The bytes never cross threads: they sit in slots of SharedArrayBuffers that both threads
// hold. A reader takes a slot, reads blob bytes into it, the worker decrypts them in place, the
// reader sends the plaintext from the slot and gives it back. Reusing the same memory matters
// as much as the thread: a fresh ArrayBuffer per window (or per transfer) makes V8 count a MiB
// of new external memory each time and run full garbage collections to match, which cost more
// than the decryption itself.
import { Worker } from 'node:worker_threads';
import { alignedSharedMemory, PAGE } from '../shared/aligned-memory.ts';
import { CryptoError } from '../shared/errors.ts';
import type { DecryptJob, DecryptReply, ToWorker } from './decrypt-worker.ts';
import { HEADER_SIZE, SEGMENT_SIZE, TAG_SIZE } from './format.ts';
import type { SecretKey } from './keys.ts';

/** Segments per window: 1 MiB of plaintext. */
export const WINDOW_SEGMENTS = 16;
/**
 * A slot holds one window's blob bytes, header included, plus a page at each end (the blob
 * store may read whole pages into it), rounded up to a page. Slots start on a page.
 */
const SLOT_BYTES = Math.ceil((HEADER_SIZE + WINDOW_SEGMENTS * (SEGMENT_SIZE + TAG_SIZE) + 2 * PAGE) / PAGE) * PAGE;
const SLAB_SLOTS = 8;
/** At most 64 slots (64 MiB, touched only as used); beyond that readers decrypt on their own. */
const MAX_SLABS = 8;

export interface Slot {
  readonly index: number;
  /** The whole slot (SLOT_BYTES). */
  readonly bytes: Buffer;
}

const slabs: SharedArrayBuffer[] = [];
const freeSlots: number[] = [];

/** A free slot, or undefined when all are in use (the caller falls back to the main thread). */
export function takeSlot(): Slot | undefined {
  if (freeSlots.length === 0) {
    if (slabs.length >= MAX_SLABS) return undefined;
    const sab = alignedSharedMemory(SLAB_SLOTS * SLOT_BYTES);
    const index = slabs.push(sab) - 1;
    for (let i = SLAB_SLOTS - 1; i >= 0; i--) freeSlots.push(index * SLAB_SLOTS + i);
    worker?.postMessage(slabMessage(index));
  }
  const index = freeSlots.pop()!;
  return { index, bytes: Buffer.from(slabs[Math.floor(index / SLAB_SLOTS)]!, (index % SLAB_SLOTS) * SLOT_BYTES, SLOT_BYTES) };
}

export function returnSlot(slot: Slot): void {
  freeSlots.push(slot.index);
}

function slabMessage(index: number): ToWorker {
  return { t: 'slab', index, sab: slabs[index]!, slotBytes: SLOT_BYTES, slots: SLAB_SLOTS };
}

interface Pending {
  resolve(n: number): void;
  reject(e: Error): void;
}

let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, Pending>();

function startWorker(): Worker {
  const here = import.meta.url;
  let w: Worker;
  if (here.endsWith('.ts')) {
    // Running the TypeScript sources (tests, a checkout without a build): the worker registers
    // the same loader before it imports its entry.
    const entry = new URL('./decrypt-worker.ts', here).href;
    const tsx = import.meta.resolve('tsx/esm/api');
    const src = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
    w = new Worker(src, { eval: true });
  } else {
    w = new Worker(new URL('./decrypt-worker.js', here));
  }
  for (let i = 0; i < slabs.length; i++) w.postMessage(slabMessage(i));
  w.on('message', (m: DecryptReply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) w.unref();
    if ('error' in m) p.reject(m.crypto ? new CryptoError() : new Error(m.error));
    else p.resolve(m.length);
  });
  const fail = (err: Error) => {
    if (worker === w) worker = undefined;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  w.on('error', fail);
  w.on('exit', () => fail(new Error('decrypt worker exited')));
  w.unref();
  return w;
}

/**
 * decryptRange (format.ts) in the worker thread over the first `length` bytes of `slot` (blob
 * bytes of the range; from offset 0 when `withHeader`). Resolves with the plaintext's length:
 * the plaintext is then at the start of the slot.
 */
export function decryptInSlot(
  dataKey: SecretKey,
  opts: { streamIndex: number; plainSize: number; start?: number; endInclusive?: number; header: Buffer },
  slot: Slot,
  length: number,
  withHeader: boolean,
): Promise<number> {
  const w = (worker ??= startWorker());
  const id = nextId++;
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
  return new Promise<number>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    if (pending.size === 1) w.ref();
    w.postMessage(job, [job.key.buffer as ArrayBuffer]);
    // Our copy went with the message (transferred); nothing to wipe here.
  });
}

/** Stops the worker (tests, shutdown); the next call starts a new one. */
export async function stopDecryptWorker(): Promise<void> {
  const w = worker;
  worker = undefined;
  if (w) await w.terminate();
}
