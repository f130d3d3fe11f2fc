// Uploads sealed off the main thread, straight into the memory their blob is written from.
//
// With EncryptStream (format.ts) the main thread runs every segment through node's cipher,
// whose output is a new, zero-filled buffer (the AES, an allocation, a memset and a copy per
// byte, and garbage to collect), and the blob store then copies that output into its direct-I/O
// stage. Under load the main thread is what limits a 1 MiB PUT, and that work was a quarter of
// it (docs/performance.md, "Session 9"). Here the main thread copies each plaintext byte once,
// to where its ciphertext goes in the blob: into a stage, a page-aligned slot of shared memory
// (shared/slots.ts) that holds blob bytes [k * STAGE, (k + 1) * STAGE), skipping the places of
// the segments' tags. When a stage's plaintext is all there, the crypto worker seals it in place
// (crypto-worker.ts: each segment's cipher, its output copied back over the plaintext, the tag
// after it) and the blob store writes the slot as it is (BlobStore.writeStages). The blob is
// byte for byte what EncryptStream makes from the same salt (test/crypto/seal-offload.test.ts).
//
// When the tap (the meter's MD5, md5-offload.ts) has already copied the plaintext into shared
// memory, the main thread copies nothing: a stage's message says where its plaintext lies in
// the MD5 worker's slots, the crypto worker reads it from there and writes the ciphertext into
// the stage, and those slots stay pinned until it has (PlainTap.shareCopies). A stage still being
// filled when the MD5 side runs short of slots has its pieces copied in after all (starved()).
//
// Only uploads whose length is announced (so each segment's finality is known when it starts)
// and large enough to be worth the trip take this path; an upload holds at most MAX_SLOTS slots
// (one filling, the others being sealed or written), and waits for one of its own when all are
// busy, pausing its source.
import type { Readable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { copyIntoShared, PAGE } from '../shared/aligned-memory.ts';
import { S3Error } from '../shared/errors.ts';
import { returnSlot, SLOT_BYTES, takeSlot, type Slot } from '../shared/slots.ts';
import type { Stage, StageSource } from '../shared/stages.ts';
import { listen, newJobId, send, theWorker, unlisten, type Listener } from './crypto-offload.ts';
import type { SealOpen, SealReply, SealStage } from './crypto-worker.ts';
import { buildHeader, deriveStreamKey, encryptedSize, HEADER_SIZE, SALT_SIZE, SEGMENT_SIZE, TAG_SIZE, type PlainTap, type SharedCopies } from './format.ts';
import { systemRng, type Rng, type SecretKey } from './keys.ts';

/** Blob bytes per stage: a slot less a page, where the last stage's padding and trailer go. */
export const SEAL_STAGE_BYTES = SLOT_BYTES - PAGE;
/** Slots an upload holds at most: one being filled, the others being sealed or written. */
const MAX_SLOTS = 3;

/** Blob offset of plaintext byte `p` of a stream (spec §Segments: header, then segment | tag ...). */
export function blobOffsetOf(p: number): number {
  const segment = Math.floor(p / SEGMENT_SIZE);
  return HEADER_SIZE + segment * (SEGMENT_SIZE + TAG_SIZE) + (p - segment * SEGMENT_SIZE);
}

export interface SealOptions {
  /** 0 for a single PUT, the part number for a multipart part. */
  streamIndex: number;
  /** The plaintext's length, announced: a byte more, or fewer at the end, fails the stream (RangeError). */
  plainSize: number;
  /** Sees every plaintext chunk before it is placed (the meter: count, limit, MD5). */
  tap?: PlainTap;
  rng?: Rng;
  /** Blob bytes per stage: whole pages, at most SEAL_STAGE_BYTES (the default; smaller in tests). */
  stageBytes?: number;
}

interface Filling {
  slot: Slot;
  stage: number;
  /** Pieces of its plaintext in the tap's memory (SealStage.from), each pinned: source -1 when copied in. */
  from: number[] | undefined;
}

interface InWorker extends Filling {
  to: number;
}

/**
 * The CFR1 blob of `source`'s bytes as sealed stages, for BlobStore.writeStages. Made with
 * open(): undefined when no slot is free (the caller encrypts with EncryptStream instead).
 */
export class SealedStages implements StageSource {
  readonly stageBytes: number;
  /** The stream header (its salt is fresh for every stream). */
  readonly header: Buffer;
  readonly #id = newJobId();
  readonly #worker: Worker;
  readonly #source: Readable;
  readonly #tap: PlainTap | undefined;
  readonly #plainSize: number;
  readonly #blobSize: number;
  /** Plaintext bytes the source gave, and how many of them are in place. */
  #bytesIn = 0;
  #placed = 0;
  /** The stage being filled and its slot. */
  #filling: Filling | undefined;
  /** The tap's copies of the plaintext, when it shares them: placed by reference, not copied. */
  readonly #copies: SharedCopies | undefined;
  /** Plaintext waiting to be placed (its first #queuedOff bytes are), in order; views of #copies' memory, when shared. */
  readonly #queue: Buffer[] = [];
  #queuedOff = 0;
  /** Slots taken from the pool (in whatever state), and those of them free for the next stage. */
  #held = 0;
  readonly #spare: Slot[] = [];
  /** Stages sent to the worker (it answers in order), sealed ones not yet asked for, and those given out. */
  readonly #inWorker: InWorker[] = [];
  readonly #ready: Stage[] = [];
  readonly #out = new Map<Stage, Slot>();
  /** Every stage has gone to the worker (the last goes as the last byte is placed). */
  get #complete(): boolean {
    return this.#placed === this.#plainSize;
  }
  #failed: Error | undefined;
  #pausedBy = 0;
  /** A next() waiting for a stage. */
  #waiter: { resolve(s: Stage | undefined): void; reject(e: Error): void } | undefined;
  /** Placement waits for a slot: it goes on when one of ours comes back. */
  #blocked = false;
  #listening = true;

  static open(dataKey: SecretKey, source: Readable, opts: SealOptions): SealedStages | undefined {
    const stageBytes = opts.stageBytes ?? SEAL_STAGE_BYTES;
    if (stageBytes % PAGE !== 0 || stageBytes < PAGE || stageBytes > SEAL_STAGE_BYTES) throw new RangeError('stageBytes out of range');
    if (!Number.isSafeInteger(opts.plainSize) || opts.plainSize <= 0) throw new RangeError('plainSize out of range');
    const first = takeSlot();
    return first ? new SealedStages(dataKey, source, opts, first) : undefined;
  }

  private constructor(dataKey: SecretKey, source: Readable, opts: SealOptions, first: Slot) {
    this.stageBytes = opts.stageBytes ?? SEAL_STAGE_BYTES;
    this.#held = 1;
    this.#spare.push(first);
    this.#source = source;
    this.#tap = opts.tap;
    this.#plainSize = opts.plainSize;
    this.#blobSize = encryptedSize(opts.plainSize);
    const salt = (opts.rng ?? systemRng).randomBytes(SALT_SIZE);
    this.header = buildHeader(salt);
    const streamKey = deriveStreamKey(dataKey, salt, opts.streamIndex);
    const open: SealOpen = { t: 'seal-open', id: this.#id, key: new Uint8Array(streamKey.expose()), header: new Uint8Array(this.header), plainSize: opts.plainSize };
    streamKey.zero();
    this.#worker = theWorker();
    const listener: Listener = { onMessage: (m) => this.#onReply(m as SealReply), onFail: (e) => this.#onWorkerGone(e) };
    listen(this.#id, listener, this.#worker);
    // The key's copy goes with the message (transferred): none is left here.
    send(this.#worker, open, open.key.buffer as ArrayBuffer);
    this.#copies = opts.tap?.shareCopies?.({ copied: this.#onCopied, starved: this.#onStarved });
    source.on('data', this.#onData);
    source.on('end', this.#onEnd);
    source.on('error', this.#onError);
    source.on('close', this.#onClose);
  }

  // ---- the source side ----

  readonly #onData = (chunk: Buffer): void => {
    if (this.#failed) return;
    let wait: Promise<void> | undefined;
    try {
      this.#bytesIn += chunk.length;
      if (this.#bytesIn > this.#plainSize) throw new RangeError('more plaintext than announced');
      wait = this.#tap?.update(chunk);
    } catch (e) {
      this.#fail(e as Error);
      return;
    }
    // With shared copies the tap's update has placed the chunk, or will as it copies (#onCopied).
    if (!wait) {
      if (!this.#copies) this.#enqueue(chunk);
      return;
    }
    this.#pause();
    wait.then(
      () => {
        if (!this.#copies) this.#enqueue(chunk);
        this.#resume();
      },
      (e: Error) => this.#fail(e),
    );
  };

  /** The tap copied the plaintext's next `n` bytes to `at` in its memory, pinned for us. */
  readonly #onCopied = (at: number, n: number): void => {
    if (this.#failed) this.#copies!.unpin(at);
    else this.#enqueue(this.#copies!.bytes.subarray(at, at + n));
  };

  /** The tap is short of slots: the stage being filled takes its bytes in (the others are in the worker). */
  readonly #onStarved = (): void => {
    const f = this.#filling;
    if (!f?.from || this.#failed) return;
    const bytes = this.#copies!.bytes;
    for (let i = 0; i < f.from.length; i += 3) {
      const source = f.from[i]!;
      if (source < 0) continue;
      copyIntoShared(f.slot.bytes, f.from[i + 1]!, bytes.subarray(source, source + f.from[i + 2]!));
      this.#copies!.unpin(source);
      f.from[i] = -1;
    }
  };

  readonly #onEnd = (): void => {
    if (this.#bytesIn !== this.#plainSize) this.#fail(new RangeError('less plaintext than announced'));
  };

  /** Once every byte is in, what happens to the source no longer matters. */
  readonly #onError = (e: Error): void => {
    if (this.#placed < this.#plainSize) this.#fail(e);
  };

  /** Destroyed without an error before its end (a request the body watchdog closed). */
  readonly #onClose = (): void => {
    if (!this.#source.readableEnded && this.#placed < this.#plainSize) this.#fail(new S3Error('IncompleteBody'));
  };

  #pause(): void {
    if (this.#pausedBy++ === 0) this.#source.pause();
  }

  #resume(): void {
    if (--this.#pausedBy === 0 && !this.#failed) this.#source.resume();
  }

  #enqueue(plain: Buffer): void {
    this.#queue.push(plain);
    if (!this.#blocked) this.#place();
  }

  /**
   * Places the queued plaintext in the blob's stages (copied in, or its place in the tap's memory
   * noted), sending each stage once it is full.
   */
  #place(): void {
    while (this.#queue.length > 0 && !this.#failed) {
      const chunk = this.#queue[0]!;
      const off = this.#queuedOff;
      const at = blobOffsetOf(this.#placed);
      const stage = Math.floor(at / this.stageBytes);
      const start = stage * this.stageBytes;
      if (!this.#filling) {
        const slot = this.#acquire();
        if (!slot) {
          // Every slot of ours is being sealed or written: go on when one comes back.
          this.#blocked = true;
          this.#pause();
          return;
        }
        this.#filling = { slot, stage, from: this.#copies ? [] : undefined };
        if (stage === 0) copyIntoShared(slot.bytes, 0, this.header);
      }
      // Up to the end of the chunk, of the segment's plaintext, or of the stage.
      const segmentEnd = Math.min((Math.floor(this.#placed / SEGMENT_SIZE) + 1) * SEGMENT_SIZE, this.#plainSize);
      const n = Math.min(chunk.length - off, segmentEnd - this.#placed, start + this.stageBytes - at);
      const { from } = this.#filling;
      if (from) {
        const source = this.#sourceOf(chunk) + off;
        this.#copies!.pin(source);
        from.push(source, at - start, n);
      } else copyIntoShared(this.#filling.slot.bytes, at - start, chunk.subarray(off, off + n));
      this.#placed += n;
      if (off + n < chunk.length) this.#queuedOff = off + n;
      else {
        this.#queue.shift();
        this.#queuedOff = 0;
        if (this.#copies) this.#copies.unpin(this.#sourceOf(chunk));
      }
      if (this.#placed === this.#plainSize) {
        this.#tap?.end?.();
        this.#seal(this.#blobSize);
      } else if (blobOffsetOf(this.#placed) >= start + this.stageBytes) this.#seal(start + this.stageBytes);
    }
  }

  /** Where a view of the tap's memory starts in it. */
  #sourceOf(view: Buffer): number {
    return view.byteOffset - this.#copies!.bytes.byteOffset;
  }

  /** Lets the tap reuse the memory of the pieces `from` notes (SealStage.from). */
  #unpin(from: number[] | undefined): void {
    if (!from) return;
    for (let i = 0; i < from.length; i += 3) if (from[i]! >= 0) this.#copies!.unpin(from[i]!);
  }

  #acquire(): Slot | undefined {
    const spare = this.#spare.pop();
    if (spare) return spare;
    if (this.#held >= MAX_SLOTS) return undefined;
    const slot = takeSlot();
    if (slot) this.#held++;
    return slot;
  }

  /** Sends the stage being filled to the worker: its bytes up to blob offset `to` are in place. */
  #seal(to: number): void {
    const { slot, stage, from } = this.#filling!;
    this.#filling = undefined;
    this.#inWorker.push({ slot, stage, from, to });
    const m: SealStage = { t: 'seal', id: this.#id, slot: slot.index, stageStart: stage * this.stageBytes, to, ...(from ? { from, region: this.#copies!.region } : {}) };
    send(this.#worker, m);
  }

  // ---- the worker side ----

  #onReply(m: SealReply): void {
    const w = this.#inWorker.shift();
    if (!w) return;
    this.#unpin(w.from);
    if ('error' in m) {
      this.#giveBack(w.slot);
      this.#fail(new Error(`sealing failed: ${m.error}`));
    } else if (this.#failed) this.#giveBack(w.slot);
    else {
      const start = w.stage * this.stageBytes;
      const stage: Stage = { bytes: w.slot.bytes, length: w.to - start, position: start, last: w.to === this.#blobSize };
      this.#out.set(stage, w.slot);
      if (this.#waiter) {
        const { resolve } = this.#waiter;
        this.#waiter = undefined;
        resolve(stage);
      } else this.#ready.push(stage);
    }
    this.#settle();
  }

  /** The worker died: the stages it held are nobody's now. */
  #onWorkerGone(e: Error): void {
    for (const w of this.#inWorker.splice(0)) {
      this.#unpin(w.from);
      this.#giveBack(w.slot);
    }
    this.#fail(e);
  }

  // ---- the store side (StageSource) ----

  next(): Promise<Stage | undefined> {
    if (this.#failed) return Promise.reject(this.#failed);
    const ready = this.#ready.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#complete && this.#inWorker.length === 0) return Promise.resolve(undefined);
    if (this.#waiter) return Promise.reject(new Error('next() while another next() is waiting'));
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  release(stage: Stage): void {
    const slot = this.#out.get(stage);
    if (!slot) return;
    this.#out.delete(stage);
    if (this.#failed || this.#complete) this.#giveBack(slot);
    else {
      this.#spare.push(slot);
      if (this.#blocked) {
        this.#blocked = false;
        this.#place();
        this.#resume();
      }
    }
    this.#settle();
  }

  destroy(err: Error): void {
    this.#fail(err);
  }

  // ---- ending ----

  #fail(e: Error): void {
    if (this.#failed) return;
    this.#failed = e;
    this.#blocked = false;
    this.#source.off('data', this.#onData);
    this.#source.pause();
    send(this.#worker, { t: 'seal-drop', id: this.#id });
    if (this.#copies) for (const q of this.#queue) this.#copies.unpin(this.#sourceOf(q));
    this.#queue.length = 0;
    if (this.#filling) {
      this.#unpin(this.#filling.from);
      this.#giveBack(this.#filling.slot);
    }
    this.#filling = undefined;
    // Sealed stages not given out go back now; those given out, when the store releases them.
    for (const s of this.#ready.splice(0)) {
      this.#giveBack(this.#out.get(s)!);
      this.#out.delete(s);
    }
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(e);
    this.#settle();
  }

  /**
   * Once nothing is left to go to the worker or come back from it: spare slots back to the pool,
   * and stop listening to it. (The source keeps its listeners: an 'error' with none would be
   * uncaught.)
   */
  #settle(): void {
    if (!(this.#failed || this.#complete) || this.#inWorker.length > 0) return;
    if (this.#listening) {
      this.#listening = false;
      unlisten(this.#id, this.#worker);
    }
    for (const s of this.#spare.splice(0)) this.#giveBack(s);
  }

  #giveBack(slot: Slot): void {
    this.#held--;
    returnSlot(slot);
  }
}
