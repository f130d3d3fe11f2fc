// The crypto worker thread (see crypto-offload.ts and seal-offload.ts): AES-GCM off the main
// thread, both ways. GETs: the blob bytes of a window of segments sit in a slot of shared memory
// both threads hold (shared/slots.ts); the worker verifies and decrypts them with
// decryptRange (format.ts) and writes the plaintext over the ciphertext in the same slot.
// Uploads: the main thread places an upload's plaintext in a slot where its ciphertext goes in
// the blob (a stage), or says where it lies in the MD5 worker's slots, and the worker seals it
// into the stage, segment by segment, tags included. Only
// small messages cross threads, and the cipher's allocations are this thread's garbage, not the
// main thread's.
import { parentPort } from 'node:worker_threads';
import type { CipherGCM } from 'node:crypto';
import { CryptoError } from '../shared/errors.ts';
import { copyIntoShared } from '../shared/aligned-memory.ts';
import { SlotViews, type RegionMessage, type SlabMessage } from '../shared/slots.ts';
import { decryptBlobRangeInPlace, HEADER_SIZE, SEGMENT_SIZE, segmentCipher, segmentCount, TAG_SIZE } from './format.ts';
import { SecretKey } from './keys.ts';

export type ToWorker = SlabMessage | RegionMessage | DecryptJob | SealOpen | SealStage | SealDrop;

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

/** An upload's stream to seal (seal-offload.ts): its stream key, header and plaintext size. */
export interface SealOpen {
  t: 'seal-open';
  id: number;
  /** The stream key (zeroed here when the stream ends or is dropped). */
  key: Uint8Array;
  header: Uint8Array;
  plainSize: number;
}

/**
 * Seal blob bytes up to `to` of stream `id`, in `slot`, which holds the blob's stage starting at
 * blob offset `stageStart`: the plaintext of every segment byte before `to` is in place there
 * (the header too, in the first stage), the tags' places are free. Stages come in order, each
 * once; `to` is the stage's end, or the blob's in the last one.
 */
export interface SealStage {
  t: 'seal';
  id: number;
  slot: number;
  stageStart: number;
  to: number;
  /**
   * Where the plaintext is, when not all in place: triples (source, target, n), in order, one
   * for every piece of the stage's plaintext: its `n` bytes for stage offset `target` are at
   * `source` in shared region `region` (the MD5 worker's slots), or in place when `source` is -1.
   */
  from?: number[];
  region?: number;
}

/** Forget stream `id` (its upload failed). */
export interface SealDrop {
  t: 'seal-drop';
  id: number;
}

/** A stage sealed (its slot is the main thread's again), or the seal failed. */
export type SealReply = { id: number; sealed: number } | { id: number; error: string; crypto: false };

interface Sealing {
  key: SecretKey;
  header: Buffer;
  plainSize: number;
  segments: number;
  /** The segment being sealed, its cipher, and how many of its plaintext bytes are sealed. */
  index: number;
  cipher: CipherGCM | undefined;
  done: number;
  /** Blob offset up to which every byte is final (past a stage's end while a tag's tail waits). */
  pos: number;
  /** A tag's bytes that fall in the next stage. */
  carry: Buffer | undefined;
}
const sealing = new Map<number, Sealing>();
const SEAL_PIECE = 16 * 1024;

/** Walks a stage's plaintext pieces (SealStage.from) in order. */
class Pieces {
  #i = 0;
  #used = 0;
  constructor(
    private readonly from: number[],
    private readonly region: Buffer | undefined,
    private readonly stage: Buffer,
  ) {}

  /** Up to `max` plaintext bytes for stage offset `at` (the next ones): a view of where they are. */
  take(at: number, max: number): Buffer {
    const source = this.from[this.#i]!;
    const n = this.from[this.#i + 2];
    if (n === undefined || this.from[this.#i + 1]! + this.#used !== at) throw new Error('plaintext pieces out of order');
    const k = Math.min(max, n - this.#used);
    const src = source < 0 ? this.stage.subarray(at, at + k) : this.region!.subarray(source + this.#used, source + this.#used + k);
    this.#used += k;
    if (this.#used === n) {
      this.#i += 3;
      this.#used = 0;
    }
    return src;
  }

  get done(): boolean {
    return this.#i === this.from.length;
  }
}

function seal(m: SealStage): void {
  const s = sealing.get(m.id);
  if (!s) throw new Error('unknown stream');
  const view = slots.view(m.slot, m.to - m.stageStart);
  const from = m.from && new Pieces(m.from, m.region === undefined ? undefined : slots.region(m.region), view);
  if (s.carry) {
    view.set(s.carry, 0);
    s.carry = undefined;
  }
  const key = s.key.expose();
  while (s.pos < m.to) {
    const length = s.index < s.segments - 1 ? SEGMENT_SIZE : s.plainSize - s.index * SEGMENT_SIZE;
    const cipher = (s.cipher ??= segmentCipher(key, s.header, s.index, s.index === s.segments - 1));
    const n = Math.min(length - s.done, m.to - s.pos);
    if (n > 0) {
      const at = s.pos - m.stageStart;
      // In pieces of 16 KiB: each update returns a fresh zero-filled buffer, which is then
      // copied into the stage; small ones, freed at once, are recycled while still in the
      // CPU's cache (interleaved A/B, 1 MiB PUT: +3.0%, 95% CI +0.7 .. +5.3, against whole
      // segments of 64 KiB; docs/performance.md, "Session 11").
      for (let i = 0; i < n; ) {
        const k = Math.min(SEAL_PIECE, n - i);
        const plain = from ? from.take(at + i, k) : view.subarray(at + i, at + i + k);
        copyIntoShared(view, at + i, cipher.update(plain));
        i += plain.length;
      }
      s.done += n;
      s.pos += n;
    }
    if (s.done < length) break;
    cipher.final();
    const tag = cipher.getAuthTag();
    const fits = Math.min(TAG_SIZE, m.to - s.pos);
    view.set(tag.subarray(0, fits), s.pos - m.stageStart);
    if (fits < TAG_SIZE) s.carry = tag.subarray(fits);
    s.pos += TAG_SIZE;
    s.index++;
    s.done = 0;
    s.cipher = undefined;
  }
  if (from && !from.done) throw new Error('plaintext pieces beyond the stage');
  if (s.index === s.segments) {
    s.key.zero();
    sealing.delete(m.id);
  }
}
const slots = new SlotViews();

function decrypt(j: DecryptJob): number {
  const key = SecretKey.from(j.key);
  j.key.fill(0);
  try {
    const header = Buffer.from(j.header.buffer, j.header.byteOffset, j.header.byteLength);
    const range = j.start === undefined ? {} : { start: j.start, endInclusive: j.endInclusive };
    return decryptBlobRangeInPlace(key, { streamIndex: j.streamIndex, plainSize: j.plainSize, header, ...range }, slots.view(j.slot, j.length), j.withHeader);
  } finally {
    key.zero();
  }
}

/** The main thread sends its messages in batches, one per turn of its event loop (crypto-offload.ts). */
parentPort!.on('message', (batch: ToWorker[]) => {
  for (const m of batch) take(m);
});

function take(m: ToWorker): void {
  switch (m.t) {
    case 'slab':
    case 'region':
      slots.add(m);
      return;
    case 'seal-open': {
      const key = SecretKey.from(m.key);
      m.key.fill(0);
      const header = Buffer.from(m.header.buffer, m.header.byteOffset, m.header.byteLength);
      sealing.set(m.id, { key, header, plainSize: m.plainSize, segments: segmentCount(m.plainSize), index: 0, cipher: undefined, done: 0, pos: HEADER_SIZE, carry: undefined });
      return;
    }
    case 'seal':
      try {
        seal(m);
        parentPort!.postMessage({ id: m.id, sealed: m.slot } satisfies SealReply);
      } catch (e) {
        sealing.get(m.id)?.key.zero();
        sealing.delete(m.id);
        parentPort!.postMessage({ id: m.id, error: (e as Error).message, crypto: false } satisfies SealReply);
      }
      return;
    case 'seal-drop':
      sealing.get(m.id)?.key.zero();
      sealing.delete(m.id);
      return;
    case 'job':
      try {
        parentPort!.postMessage({ id: m.id, length: decrypt(m) } satisfies DecryptReply);
      } catch (e) {
        parentPort!.postMessage({ id: m.id, error: (e as Error).message, crypto: e instanceof CryptoError } satisfies DecryptReply);
      }
      return;
  }
}
