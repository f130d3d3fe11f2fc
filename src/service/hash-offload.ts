// MD5 (the SSE-S3 ETag) off the main thread. Per byte, MD5 costs about five times what
// AES-GCM does, so on the upload path it would bound throughput if it ran beside the cipher:
// large uploads hash in a worker thread instead, in parallel with encryption and I/O. Bytes in
// flight to the worker are bounded, so a slow worker applies backpressure, not memory growth.
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.t === 'u') {
    let h = hashes.get(m.id);
    if (!h) { h = createHash(m.alg); hashes.set(m.id, h); }
    h.update(m.n === m.b.byteLength ? m.b : m.b.subarray(0, m.n));
    // The batch goes back to be refilled: no allocation per batch on either side.
    parentPort.postMessage({ t: 'a', id: m.id, n: m.n, b: m.b }, [m.b.buffer]);
  } else if (m.t === 'e') {
    const h = hashes.get(m.id) || createHash(m.alg);
    hashes.delete(m.id);
    parentPort.postMessage({ t: 'd', id: m.id, d: h.digest() });
  } else if (m.t === 'x') {
    hashes.delete(m.id);
  }
});
`;

type Msg = { t: 'a'; id: number; n: number; b: Uint8Array } | { t: 'd'; id: number; d: Uint8Array };

/** Bytes allowed in flight to the worker per hash before `update` makes the caller wait. */
const MAX_IN_FLIGHT = 2 * 1024 * 1024;
/** Bytes copied into one message to the worker. */
const BATCH_BYTES = 512 * 1024;
/** Batches the worker has handed back, ready to be refilled (at most 8 MiB kept). */
const freeBatches: Uint8Array[] = [];
const MAX_FREE_BATCHES = 16;

class HashWorker {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, OffloadedHash>();

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.on('message', (m: Msg) => {
      if (m.t === 'a' && freeBatches.length < MAX_FREE_BATCHES) freeBatches.push(m.b);
      const h = this.pending.get(m.id);
      if (!h) return;
      if (m.t === 'a') h.acked(m.n);
      else {
        this.pending.delete(m.id);
        h.done(Buffer.from(m.d));
      }
    });
    this.worker.on('error', (err) => {
      for (const h of this.pending.values()) h.fail(err);
      this.pending.clear();
    });
    // Unref last: attaching listeners refs the worker's port again.
    this.worker.unref();
  }

  register(h: OffloadedHash): number {
    const id = this.nextId++;
    this.pending.set(id, h);
    return id;
  }

  post(msg: object, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(msg, transfer);
  }

  forget(id: number): void {
    this.pending.delete(id);
    this.worker.postMessage({ t: 'x', id });
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

let shared: HashWorker | undefined;

/** An incremental hash computed in the shared worker thread. */
export class OffloadedHash {
  private readonly id: number;
  private inFlight = 0;
  private waiters: (() => void)[] = [];
  private result?: Promise<Buffer>;
  private resolveDigest!: (d: Buffer) => void;
  private rejectDigest!: (e: Error) => void;
  private failed?: Error;

  constructor(private readonly alg: 'md5' | 'sha256') {
    shared ??= new HashWorker();
    this.id = shared.register(this);
  }

  /**
   * Queues `chunk` (copied into a batch that is sent once it holds BATCH_BYTES, so messages
   * stay few); resolves at once unless too much is already in flight.
   */
  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.failed) throw this.failed;
    let off = 0;
    while (off < chunk.byteLength) {
      this.batch ??= freeBatches.pop() ?? new Uint8Array(BATCH_BYTES);
      const n = Math.min(chunk.byteLength - off, BATCH_BYTES - this.batchLength);
      this.batch.set(chunk.subarray(off, off + n), this.batchLength);
      this.batchLength += n;
      off += n;
      if (this.batchLength === BATCH_BYTES) this.send();
    }
    if (this.inFlight <= MAX_IN_FLIGHT) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private batch?: Uint8Array;
  private batchLength = 0;

  private send(): void {
    if (!this.batch || this.batchLength === 0) return;
    const b = this.batch;
    const n = this.batchLength;
    this.batch = undefined;
    this.batchLength = 0;
    this.inFlight += n;
    shared!.post({ t: 'u', id: this.id, alg: this.alg, b, n }, [b.buffer as ArrayBuffer]);
  }

  /** @internal */
  acked(n: number): void {
    this.inFlight -= n;
    if (this.inFlight <= MAX_IN_FLIGHT / 2 && this.waiters.length) {
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    }
  }

  digest(): Promise<Buffer> {
    if (!this.result) {
      this.result = new Promise<Buffer>((resolve, reject) => {
        this.resolveDigest = resolve;
        this.rejectDigest = reject;
      });
      if (this.failed) this.rejectDigest(this.failed);
      else {
        this.send();
        shared!.post({ t: 'e', id: this.id, alg: this.alg });
      }
    }
    return this.result;
  }

  /** Drops the hash (e.g. the upload failed). */
  discard(): void {
    if (this.batch && freeBatches.length < MAX_FREE_BATCHES) freeBatches.push(this.batch);
    this.batch = undefined;
    this.batchLength = 0;
    if (!this.result) shared?.forget(this.id);
  }

  /** @internal */
  done(d: Buffer): void {
    this.resolveDigest?.(d);
  }

  /** @internal */
  fail(e: Error): void {
    this.failed = e;
    this.rejectDigest?.(e);
    for (const f of this.waiters) f();
    this.waiters = [];
  }
}

/** Stops the shared worker (tests, shutdown). */
export async function stopHashWorker(): Promise<void> {
  const w = shared;
  shared = undefined;
  if (w) await w.terminate();
}
