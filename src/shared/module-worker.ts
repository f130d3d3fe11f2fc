// Worker threads whose entry is a module next to the caller: compiled JavaScript in dist/, or
// the TypeScript sources (tests, a checkout without a build), where the worker registers the
// same loader (tsx) before it imports its entry.
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** Starts `entry` ('./name', without extension) relative to `callerUrl` (import.meta.url). */
export function startModuleWorker(callerUrl: string, entry: string, options: WorkerOptions = {}): Worker {
  if (callerUrl.endsWith('.ts')) {
    const url = new URL(`${entry}.ts`, callerUrl).href;
    const tsx = import.meta.resolve('tsx/esm/api');
    const src = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(url)}); })`;
    return new Worker(src, { ...options, eval: true });
  }
  return new Worker(new URL(`${entry}.js`, callerUrl), options);
}

/**
 * Messages to a worker, sent together once per turn of the event loop (setImmediate), in the
 * order given, each batch as one array: a message is a wake-up of the worker, and one turn of
 * the main thread often has several (chunks and stages of several uploads). Transferred buffers
 * go with their batch. `now` sends the batch at once, this message last (what must not wait).
 */
export class Outbox<M> {
  #msgs: M[] = [];
  #transfer: ArrayBuffer[] = [];
  #scheduled = false;

  constructor(private readonly worker: Worker) {}

  send(m: M, transfer?: ArrayBuffer, now = false): void {
    this.#msgs.push(m);
    if (transfer) this.#transfer.push(transfer);
    if (now) this.#flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#msgs.length === 0) return;
    const msgs = this.#msgs;
    const transfer = this.#transfer;
    this.#msgs = [];
    this.#transfer = [];
    this.worker.postMessage(msgs, transfer);
  };
}
