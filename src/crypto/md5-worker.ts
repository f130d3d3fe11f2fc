// The MD5 worker thread (see md5-offload.ts). Uploads' bytes arrive as batches in slots of a
// shared memory; this thread hashes them where they lie with md5-lanes.ts: up to LANES uploads
// advance together in one SIMD pass, a lone upload goes through the scalar function. Between
// passes it returns to its event loop, so uploads that send a batch meanwhile join the next
// one, and a pass with room for more waits for them until a digest is needed (shouldWait).
import { parentPort, workerData } from 'node:worker_threads';
import { LANES, Md5Lanes, newMd5State, type Md5State } from './md5-lanes.ts';

export type ToMd5Worker =
  /** A batch: `n` bytes of stream `id` at the start of `slot`. */
  | { t: 'u'; id: number; slot: number; n: number }
  /** The stream has ended: send its digest once every batch is hashed. */
  | { t: 'e'; id: number }
  /** The digest is needed now (the upload's blob is durable): hash this stream without waiting. */
  | { t: 'n'; id: number }
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
  /** Its digest is awaited: it waits for nobody. */
  needed: boolean;
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
 * How long a batch may wait for company at most: a safety net. Batches normally wait until
 * LANES uploads have blocks to hash, one upload's backlog could hold its writer up, or a digest
 * is needed (shouldWait); none of these may come for a stream whose writer has stopped sending.
 */
const GATHER_MS = 20;
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
  // Uploads whose digest is awaited go first, then ended ones, then those with the most bytes
  // waiting; the rest wait a pass.
  if (waiting.length > LANES) waiting.sort(byUrgency).length = LANES;
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

function byUrgency(a: Stream, b: Stream): number {
  return Number(b.needed) - Number(a.needed) || Number(b.ending) - Number(a.ending) || queued(b) - queued(a);
}

/**
 * Whether the waiting streams should wait for company: a pass costs about the same for one
 * stream as for LANES. An upload sends its body in about a millisecond and then spends most of
 * its life making its blob durable (~10 ms under load), so at any moment few uploads have bytes
 * arriving; but the digest is needed only once the blob is durable (the uploader says so: 'n').
 * So streams wait, ended or not, and the uploads in that phase hash together: measured at
 * concurrency 8 (docs/performance.md, "Session 11"), hashing as soon as ~2 ms had passed put
 * 40% of the bytes through the scalar function and cost as much as one stream at a time.
 * Nobody waits once LANES streams have blocks, once a digest is needed, when one stream's
 * backlog could hold its writer up, when only one upload is here (a lone upload would otherwise
 * wait for its own end at every batch), or once the oldest waiting batch has waited GATHER_MS.
 */
function shouldWait(waiting: Stream[]): boolean {
  if (waiting.length >= LANES) return false;
  if (streams.size < 2) return false;
  let oldest = Infinity;
  for (const s of waiting) {
    if (s.needed || queued(s) >= BACKLOG) return false;
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
    s = { id, state: newMd5State(), batches: [], carry: new Uint8Array(64), carried: 0, ending: false, needed: false };
    streams.set(id, s);
  }
  return s;
}

/** The main thread sends its messages in batches, one per turn of its event loop. */
port.on('message', (batch: ToMd5Worker[]) => {
  for (const m of batch) take(m);
  schedule();
});

function take(m: ToMd5Worker): void {
  if (m.t === 'u') {
    const pos = slotsAt + m.slot * slotBytes;
    streamOf(m.id).batches.push({ slot: m.slot, n: m.n, pos, end: pos + m.n, at: performance.now() });
  } else if (m.t === 'e') {
    streamOf(m.id).ending = true;
  } else if (m.t === 'n') {
    // Always after its 'e'; the digest may have gone already.
    const s = streams.get(m.id);
    if (s) s.needed = true;
  } else {
    const s = streams.get(m.id);
    streams.delete(m.id);
    for (const b of s?.batches ?? []) acks.push(m.id, b.slot, b.n);
    flush();
  }
}
