// Worker threads whose entry is a module next to the caller: compiled JavaScript in dist/, or
// the TypeScript sources (tests, a checkout without a build), where the worker registers the
// same loader (tsx) before it imports its entry.
import { getPriority, setPriority } from 'node:os';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** Config.workerNice's default (docs/performance.md, "Session 13"). */
export const DEFAULT_WORKER_NICE = 10;
let workerNice = DEFAULT_WORKER_NICE;

/**
 * Nice steps below the starting thread that workers started from now on take (Config.workerNice;
 * DEFAULT_WORKER_NICE unless set). The MD5 and AES-GCM workers are throughput work that the
 * thread serving every request hands bytes to: when they take its core, every request waits
 * (docs/performance.md, "Session 13").
 */
export function setWorkerNice(steps: number): void {
  workerNice = steps;
}

/**
 * Starts `entry` ('./name', without extension) relative to `callerUrl` (import.meta.url). The
 * worker lowers its own thread's priority (setWorkerNice) before it imports its entry.
 */
export function startModuleWorker(callerUrl: string, entry: string, options: WorkerOptions = {}): Worker {
  const ts = callerUrl.endsWith('.ts');
  const url = new URL(`${entry}.${ts ? 'ts' : 'js'}`, callerUrl).href;
  const register = ts ? `.then(() => import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})).then((m) => m.register())` : '';
  const src =
    `Promise.resolve()${register}` +
    `.then(() => import(${JSON.stringify(import.meta.url)})).then((m) => m.lowerThreadPriority(${workerNice}))` +
    `.then(() => import(${JSON.stringify(url)}))`;
  return new Worker(src, { ...options, eval: true });
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

/**
 * Lowers the calling thread's scheduling priority by `by` nice steps, capped at 19. On Linux a
 * nice value belongs to a thread (setpriority(PRIO_PROCESS, 0) is the calling thread's alone);
 * elsewhere it is the whole process's, so there this does nothing. Raising one's own nice value
 * needs no privilege; when refused anyway, the thread keeps its priority.
 */
export function lowerThreadPriority(by: number): void {
  if (process.platform !== 'linux' || !(by > 0)) return;
  try {
    setPriority(0, Math.min(19, getPriority(0) + Math.floor(by)));
  } catch {
    /* not permitted: the thread keeps its priority */
  }
}
