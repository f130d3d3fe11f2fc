// The MD5 worker thread (see md5-offload.ts). Uploads' bytes arrive as batches in slots of a
// shared memory; this thread hashes them where they lie with md5-lanes.ts: up to LANES uploads
// advance together in one SIMD pass, a lone upload goes through the scalar function. Between
// passes it returns to its event loop, so uploads that send a batch meanwhile join the next
// one, and a pass with room for more waits a little for them (shouldWait).
import { parentPort, workerData } from 'node:worker_threads';
import { LANES, Md5Lanes, newMd5State, type Md5State } from './md5-lanes.ts';

export type ToMd5Worker =
  /** A batch: `n` bytes of stream `id` at the start of `slot`. */
  | { t: 'u'; id: number; slot: number; n: number }
  /** The stream has ended: send its digest once every batch is hashed. */
  | { t: 'e'; id: number }
  /** Drop the stream (its upload failed). */
  | { t: 'x'; id: number };

/**
 * What the worker sends back, once per pass: the batches it is done with (id, slot, n for each:
 * their slots are free again), then the digests of the uploads that ended. One message instead
 * of one per batch: every message is a wake-up of the main thread.
 */
export interface FromMd5Worker {
  acks: number[];
  digests: { id: number; d: Uint8Array }[];
}

export interface Md5WorkerData {
  memory: WebAssembly.Memory;
  /** Where the slots start, and their size. */
  slotsAt: number;
  slotBytes: number;
}

/** Blocks per lane in one pass (64 KiB): a pass takes ~0.1 ms, then messages get a turn. */
const MAX_BLOCKS = 1024;
/** A pass over one stream takes what its batch holds (~0.4 ms for 256 KiB). */
const MAX_BLOCKS_ALONE = 4096;

interface Batch {
  slot: number;
  n: number;
  /** Absolute offsets in the memory: the next byte to hash, and the batch's end. */
  pos: number;
  end: number;
  /** When it arrived (performance.now()). */
  at: number;
}

interface Stream {
  id: number;
  state: Md5State;
  batches: Batch[];
  /** Bytes short of a whole block, carried from one batch to the next (and to the padding). */
  carry: Uint8Array;
  carried: number;
  ending: boolean;
}

const { memory, slotsAt, slotBytes } = workerData as Md5WorkerData;
const bytes = new Uint8Array(memory.buffer as ArrayBufferLike);
const md5 = new Md5Lanes(memory, 0);
const streams = new Map<number, Stream>();
const port = parentPort!;

/** What the next message carries (sent by flush(), at the end of each pass). */
let acks: number[] = [];
let digests: { id: number; d: Uint8Array }[] = [];

function flush(): void {
  if (acks.length === 0 && digests.length === 0) return;
  const m: FromMd5Worker = { acks, digests };
  acks = [];
  digests = [];
  port.postMessage(m);
}

function done(s: Stream, b: Batch): void {
  s.batches.shift();
  acks.push(s.id, b.slot, b.n);
}

/**
 * Brings the stream's first batch to a whole block at its read position, moving what is short
 * of a block into the carry (and hashing the carry once it fills). False when there is none.
 */
function ready(s: Stream): boolean {
  while (s.batches.length > 0) {
    const b = s.batches[0]!;
    if (s.carried > 0) {
      const take = Math.min(64 - s.carried, b.end - b.pos);
      s.carry.set(bytes.subarray(b.pos, b.pos + take), s.carried);
      s.carried += take;
      b.pos += take;
      if (s.carried === 64) {
        md5.block(s.state, s.carry);
        s.carried = 0;
      }
    }
    const left = b.end - b.pos;
    if (left >= 64) return true;
    s.carry.set(bytes.subarray(b.pos, b.end), s.carried);
    s.carried += left;
    b.pos = b.end;
    done(s, b);
  }
  return false;
}

let scheduled = false;
/** The timer that ends a wait for company. */
let gatherTimer: NodeJS.Timeout | undefined;
/**
 * How long a batch may wait for company. At ~300 MB/s a 256 KiB batch arrives every ~0.9 ms.
 * Session 7 chose 16 ms (this thread's CPU per 1 MiB PUT 0.65-0.76 ms against 0.73-1.02 at 8),
 * when the main thread limited uploads and a digest was needed only after the blob's fsync.
 * Since uploads are sealed in the crypto worker (seal-offload.ts), the wait is on the upload's
 * path: in interleaved A/B (docs/performance.md, "Session 9") 6 ms moved 8.1% more than 16
 * (95% CI +4.2 .. +11.9%) with 5.4% less server CPU per upload, 2 ms 4.7% more than 6 (+1.3 ..
 * +8.2%), and no wait at all was not distinguishable from 2 (+2.7%, -1.9 .. +7.2%).
 */
const GATHER_MS = 2;
/** Half the bytes an upload may have in flight (md5-offload.ts) before its writer waits. */
const BACKLOG = 1024 * 1024;

function schedule(): void {
  if (!scheduled) {
    scheduled = true;
    setImmediate(pass);
  }
}

/** One pass: a SIMD step over the uploads with whole blocks waiting, digests of ended ones. */
function pass(): void {
  try {
    step();
  } finally {
    flush();
  }
}

function step(): void {
  scheduled = false;
  const waiting: Stream[] = [];
  for (const s of streams.values()) {
    if (ready(s)) waiting.push(s);
    else if (s.ending) {
      const d = md5.finish(s.state, s.carry.subarray(0, s.carried));
      streams.delete(s.id);
      digests.push({ id: s.id, d });
    }
  }
  if (waiting.length === 0) return;
  if (shouldWait(waiting)) return;
  // The uploads with the most bytes waiting go first; the rest wait a pass.
  if (waiting.length > LANES) waiting.sort((a, b) => queued(b) - queued(a)).length = LANES;
  let blocks = waiting.length === 1 ? MAX_BLOCKS_ALONE : MAX_BLOCKS;
  for (const s of waiting) blocks = Math.min(blocks, Math.floor((s.batches[0]!.end - s.batches[0]!.pos) / 64));
  if (waiting.length === 1) md5.one(waiting[0]!.state, waiting[0]!.batches[0]!.pos, blocks);
  else
    md5.lanes(
      waiting.map((s) => s.state),
      waiting.map((s) => s.batches[0]!.pos),
      blocks,
    );
  for (const s of waiting) s.batches[0]!.pos += blocks * 64;
  schedule();
}

/**
 * Whether the waiting streams should wait for company: a pass costs about the same for one
 * stream as for LANES. An upload sends bytes for only part of its life (the rest is making its
 * blob durable and committing), so at any moment few of the uploads in flight have bytes here;
 * waiting a few milliseconds lets more of them join. The wait costs nothing as long as the
 * digests are ready when their blobs are durable: a digest is asked for as soon as its upload's
 * body has arrived, and needed only after the blob's fsync. Nobody waits once LANES streams have
 * blocks, when one stream's backlog could hold its writer up, when only one upload is here (a
 * lone large upload would otherwise wait at every batch), or once the oldest waiting batch has
 * waited GATHER_MS. The wait is counted per batch, not from the last idle moment: under steady
 * load this thread is never idle, and a wait counted from then would expire for good, leaving
 * every later pass to whatever happened to be ready (mostly one stream, at a quarter of the
 * speed: slower passes, so never idle again).
 */
function shouldWait(waiting: Stream[]): boolean {
  if (waiting.length >= LANES) return false;
  if (streams.size < 2) return false;
  let oldest = Infinity;
  for (const s of waiting) {
    if (queued(s) >= BACKLOG) return false;
    oldest = Math.min(oldest, s.batches[0]!.at);
  }
  const left = oldest + GATHER_MS - performance.now();
  if (left <= 0) return false;
  gatherTimer ??= setTimeout(() => {
    gatherTimer = undefined;
    schedule();
  }, Math.ceil(left));
  return true;
}

function queued(s: Stream): number {
  let n = 0;
  for (const b of s.batches) n += b.end - b.pos;
  return n;
}

function streamOf(id: number): Stream {
  let s = streams.get(id);
  if (!s) {
    s = { id, state: newMd5State(), batches: [], carry: new Uint8Array(64), carried: 0, ending: false };
    streams.set(id, s);
  }
  return s;
}

port.on('message', (m: ToMd5Worker) => {
  if (m.t === 'u') {
    const pos = slotsAt + m.slot * slotBytes;
    streamOf(m.id).batches.push({ slot: m.slot, n: m.n, pos, end: pos + m.n, at: performance.now() });
  } else if (m.t === 'e') {
    streamOf(m.id).ending = true;
  } else {
    const s = streams.get(m.id);
    streams.delete(m.id);
    for (const b of s?.batches ?? []) acks.push(m.id, b.slot, b.n);
    flush();
    return;
  }
  schedule();
});
