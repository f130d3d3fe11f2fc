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
