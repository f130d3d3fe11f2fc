// MD5 (the SSE-S3 ETag) off the main thread. Per byte, MD5 costs about five times what
// AES-GCM does, and nothing makes one MD5 faster: it is one chain of dependent operations. So
// large uploads hash in a worker thread (md5-worker.ts) in parallel with encryption and I/O, and
// there concurrent uploads hash together, several streams per SIMD pass (md5-lanes.ts): about
// three times OpenSSL's rate for one stream once four uploads are in flight.
//
// An upload's bytes are copied once, into a slot of a memory shared with the worker (the
// WebAssembly memory the worker hashes in); the slot is sent by number when full and comes back
// when hashed. Bytes in flight per upload are bounded, so a slow worker applies backpressure,
// not memory growth; when every slot is taken, partly filled ones are sent as they are and the
// writer waits for one to come back.
//
// The copy serves twice: a large upload sealed in the crypto worker (seal-offload.ts) reads its
// plaintext from these slots rather than having the main thread copy it again into its stage
// (PlainTap.shareCopies). A slot is free again once the MD5 worker is done with it and every
// stage that reads from it is sealed (pins).
import type { Worker } from 'node:worker_threads';
import { Outbox, startModuleWorker } from '../shared/module-worker.ts';
import { shareRegion, unshareRegion } from '../shared/slots.ts';
import { CONTROL_BYTES } from './md5-lanes.ts';
import { copyIntoShared } from '../shared/aligned-memory.ts';
import type { CopyListener, SharedCopies } from './format.ts';
import type { FromMd5Worker, Md5WorkerData, ToMd5Worker } from './md5-worker.ts';

/** Bytes allowed in flight to the worker per upload before `update` makes the caller wait. */
const MAX_IN_FLIGHT = 2 * 1024 * 1024;
const SLOT_SHIFT = 18;
const SLOT_BYTES = 1 << SLOT_SHIFT; // 256 KiB
/** 32 MiB of address space; only slots in use are touched (free ones are reused last-in first). */
const SLOTS = 128;
/** The worker's control area (md5-lanes.ts) has the first 64 KiB page; slots follow. */
const SLOTS_AT = 65536;
if (CONTROL_BYTES > SLOTS_AT) throw new Error('md5 control area overlaps the slots');

class Md5Pool implements SharedCopies {
  private readonly worker: Worker;
  /** Messages go out once per turn of the event loop: the worker waits for company anyway. */
  private readonly outbox: Outbox<ToMd5Worker>;
  readonly bytes: Buffer;
  /** The memory as the crypto worker knows it (shared/slots.ts). */
  readonly region: number;
  private readonly free: number[] = [];
  /** Per slot: readers besides the MD5 worker (pins), and whether the MD5 side is done with it. */
  private readonly pins = new Uint32Array(SLOTS);
  private readonly hashed = new Uint8Array(SLOTS);
  private slotWaiters: (() => void)[] = [];
  private nextId = 1;
  private readonly hashes = new Map<number, OffloadedMd5>();
  /** Uploads holding a partly filled slot. */
  readonly filling = new Set<OffloadedMd5>();

  constructor() {
    const pages = (SLOTS_AT + SLOTS * SLOT_BYTES) / 65536;
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.bytes = Buffer.from(memory.buffer as ArrayBuffer);
    this.region = shareRegion(memory.buffer as unknown as SharedArrayBuffer);
    for (let i = SLOTS - 1; i >= 0; i--) this.free.push(i);
    const data: Md5WorkerData = { memory, slotsAt: SLOTS_AT, slotBytes: SLOT_BYTES };
    this.worker = startModuleWorker(import.meta.url, './md5-worker', { workerData: data });
    this.outbox = new Outbox(this.worker);
    this.worker.on('message', (m: FromMd5Worker) => {
      const { acks } = m;
      for (let i = 0; i < acks.length; i += 3) {
        this.returnSlot(acks[i + 1]!);
        this.hashes.get(acks[i]!)?.acked(acks[i + 2]!);
      }
      for (const { id, d } of m.digests) {
        const h = this.hashes.get(id);
        this.drop(id);
        h?.done(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
      }
    });
    const fail = (err: Error) => {
      if (pool === this) pool = undefined;
      unshareRegion(this.region);
      for (const h of this.hashes.values()) h.fail(err);
      this.hashes.clear();
      for (const f of this.slotWaiters) f();
      this.slotWaiters = [];
    };
    this.worker.on('error', fail);
    this.worker.on('exit', () => fail(new Error('md5 worker exited')));
    // Unref last: attaching listeners refs the worker's port again.
    this.worker.unref();
  }

  register(h: OffloadedMd5): number {
    const id = this.nextId++;
    this.hashes.set(id, h);
    // Referenced while a hash is open (its digest is awaited), unreferenced when idle.
    if (this.hashes.size === 1) this.worker.ref();
    return id;
  }

  private drop(id: number): void {
    if (this.hashes.delete(id) && this.hashes.size === 0) this.worker.unref();
  }

  post(m: ToMd5Worker): void {
    this.outbox.send(m);
  }

  forget(id: number): void {
    this.drop(id);
    this.post({ t: 'x', id });
  }

  takeSlot(): number | undefined {
    return this.free.pop();
  }

  /** The MD5 side is done with `slot`: free once nothing else reads it. */
  returnSlot(slot: number): void {
    if (this.pins[slot]! > 0) this.hashed[slot] = 1;
    else this.freeSlot(slot);
  }

  private freeSlot(slot: number): void {
    this.free.push(slot);
    if (this.slotWaiters.length > 0) {
      const w = this.slotWaiters;
      this.slotWaiters = [];
      for (const f of w) f();
    }
  }

  pin(at: number): void {
    this.pins[(at - SLOTS_AT) >>> SLOT_SHIFT]!++;
  }

  unpin(at: number): void {
    const slot = (at - SLOTS_AT) >>> SLOT_SHIFT;
    if (--this.pins[slot]! === 0 && this.hashed[slot] === 1) {
      this.hashed[slot] = 0;
      this.freeSlot(slot);
    }
  }

  /**
   * Sends every partly filled slot, asks the readers of copies to give back what they can, and
   * resolves when a slot comes back.
   */
  slotReturned(): Promise<void> {
    const back = new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    for (const h of [...this.filling]) h.send();
    for (const h of this.hashes.values()) h.listener?.starved();
    return back;
  }

  slotsInUse(): number {
    return SLOTS - this.free.length;
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

let pool: Md5Pool | undefined;

/** An MD5 computed in the worker thread. */
export class OffloadedMd5 {
  private readonly pool: Md5Pool;
  private readonly id: number;
  private inFlight = 0;
  private waiters: (() => void)[] = [];
  private slot: number | undefined;
  private filled = 0;
  private result?: Promise<Buffer>;
  private needed = false;
  private resolveDigest?: (d: Buffer) => void;
  private rejectDigest?: (e: Error) => void;
  private failed?: Error;
  /** @internal Told where each piece is copied (shareCopies). */
  listener: CopyListener | undefined;

  constructor() {
    this.pool = pool ??= new Md5Pool();
    this.id = this.pool.register(this);
  }

  /** Copies `chunk` for the worker; resolves at once unless too much is already in flight. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.failed) throw this.failed;
    const off = this.copy(chunk, 0);
    if (off < chunk.byteLength) return this.copyLater(chunk, off);
    return this.inFlight > MAX_IN_FLIGHT ? this.drained() : undefined;
  }

  /** Copies from `off` into slots while there are free ones; returns where it stopped. */
  private copy(chunk: Uint8Array, off: number): number {
    while (off < chunk.byteLength) {
      if (this.slot === undefined) {
        this.slot = this.pool.takeSlot();
        if (this.slot === undefined) return off;
        this.filled = 0;
        this.pool.filling.add(this);
      }
      const n = Math.min(chunk.byteLength - off, SLOT_BYTES - this.filled);
      const at = SLOTS_AT + this.slot * SLOT_BYTES + this.filled;
      copyIntoShared(this.pool.bytes, at, chunk.subarray(off, off + n));
      this.filled += n;
      off += n;
      if (this.listener) this.pool.pin(at);
      if (this.filled === SLOT_BYTES) this.send();
      this.listener?.copied(at, n);
    }
    return off;
  }

  private async copyLater(chunk: Uint8Array, off: number): Promise<void> {
    while (off < chunk.byteLength) {
      await this.pool.slotReturned();
      if (this.failed) throw this.failed;
      off = this.copy(chunk, off);
    }
    if (this.inFlight > MAX_IN_FLIGHT) await this.drained();
  }

  /** From now on, tells `l` where each piece of plaintext is copied (PlainTap.shareCopies). */
  shareCopies(l: CopyListener): SharedCopies {
    this.listener = l;
    return this.pool;
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** @internal Sends the slot being filled, if it holds anything. */
  send(): void {
    if (this.slot === undefined || this.filled === 0) return;
    this.pool.post({ t: 'u', id: this.id, slot: this.slot, n: this.filled });
    this.inFlight += this.filled;
    this.pool.filling.delete(this);
    this.slot = undefined;
    this.filled = 0;
  }

  /** @internal */
  acked(n: number): void {
    this.inFlight -= n;
    if (this.inFlight <= MAX_IN_FLIGHT / 2 && this.waiters.length) this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * Says the last byte has been given: the worker finishes the digest when it suits it (with
   * other uploads' bytes, in the lanes of one pass), until `digest()` asks for it.
   */
  end(): void {
    if (this.result) return;
    this.result = new Promise<Buffer>((resolve, reject) => {
      this.resolveDigest = resolve;
      this.rejectDigest = reject;
    });
    this.result.catch(() => {}); // awaited through digest(); never unhandled
    if (this.failed) this.rejectDigest!(this.failed);
    else {
      this.send();
      this.pool.post({ t: 'e', id: this.id });
    }
  }

  /** The digest, needed now: the worker hashes what is left of this upload without waiting. */
  digest(): Promise<Buffer> {
    this.end();
    if (!this.needed && !this.failed) {
      this.needed = true;
      this.pool.post({ t: 'n', id: this.id });
    }
    return this.result!;
  }

  /** Drops the hash (e.g. the upload failed). */
  discard(): void {
    if (this.slot !== undefined) {
      this.pool.filling.delete(this);
      this.pool.returnSlot(this.slot);
      this.slot = undefined;
    }
    if (!this.needed) this.pool.forget(this.id);
  }

  /** @internal */
  done(d: Buffer): void {
    this.resolveDigest?.(d);
  }

  /** @internal */
  fail(e: Error): void {
    this.failed = e;
    this.rejectDigest?.(e);
    this.wake();
  }
}

/** The MD5 worker's slots taken and not yet free again (for tests and diagnostics). */
export function md5SlotsInUse(): number {
  return pool?.slotsInUse() ?? 0;
}

/** Stops the worker (tests, shutdown); the next hash starts a new one. */
export async function stopMd5Worker(): Promise<void> {
  const p = pool;
  pool = undefined;
  if (p) await p.terminate();
}
