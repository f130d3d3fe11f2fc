// Child processes of the benchmark (every one is tracked and killed at exit, even on error or a
// signal) and per-process figures from /proc: peak RSS (VmHWM, reset between phases through
// /proc/<pid>/clear_refs) with a VmRSS poller as a fallback, and CPU time (whole process and
// main thread) to show which side of the run was busy.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const children = new Set<ChildProcess>();
const cleanups: (() => void)[] = [];
let hooksInstalled = false;

function killAllSync(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  children.clear();
  for (const f of cleanups.splice(0)) {
    try {
      f();
    } catch {
      /* best effort */
    }
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping child processes\n`);
      killAllSync();
      process.exit(130);
    });
  }
}

/** A synchronous cleanup to run at exit (e.g. stop-rgw.sh); returns a function that removes it. */
export function atExit(f: () => void): () => void {
  installHooks();
  cleanups.push(f);
  return () => {
    const i = cleanups.indexOf(f);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

export interface Child {
  proc: ChildProcess;
  pid: number;
  output(): string;
  /** Resolves when `re` matches the output so far (or rejects when the process exits first). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export function startChild(cmd: string, args: string[], opts: SpawnOptions = {}): Child {
  installHooks();
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  children.add(proc);
  let out = '';
  const append = (d: Buffer) => {
    out += d.toString('utf8');
    if (out.length > 256 * 1024) out = out.slice(-128 * 1024);
  };
  proc.stdout?.on('data', append);
  proc.stderr?.on('data', append);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  void exited.then(() => children.delete(proc));
  if (proc.pid === undefined) throw new Error(`could not start ${cmd}`);
  return {
    proc,
    pid: proc.pid,
    output: () => out,
    waitFor(re, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) {
            cleanup();
            resolve(m);
          }
        };
        const onExit = (code: number | null, sig: string | null) => {
          cleanup();
          reject(new Error(`${cmd} exited (${code ?? sig}) before it was ready:\n${out.slice(-4000)}`));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${cmd} not ready after ${timeoutMs} ms:\n${out.slice(-4000)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          proc.stdout?.off('data', check);
          proc.stderr?.off('data', check);
          proc.off('exit', onExit);
        };
        proc.stdout?.on('data', check);
        proc.stderr?.on('data', check);
        proc.once('exit', onExit);
        check();
      });
    },
    async stop(graceMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs a command to completion (for scripts such as start-rgw.sh); throws with its output on failure. */
export function runSync(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): string {
  try {
    return execFileSync(cmd, args, { env: opts.env ?? process.env, ...(opts.cwd ? { cwd: opts.cwd } : {}), timeout: opts.timeoutMs ?? 180_000, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${(err.stdout ?? '') + (err.stderr ?? '')}`.slice(0, 6000));
  }
}

// ---- /proc ----

function statusField(pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export const rssBytes = (pid: number) => statusField(pid, 'VmRSS');
export const hwmBytes = (pid: number) => statusField(pid, 'VmHWM');

/** Resets VmHWM to the current RSS (Linux: "5" to clear_refs). False if not permitted. */
export function resetHwm(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86-64

function ticksOf(statPath: string): number {
  try {
    const s = readFileSync(statPath, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime
  } catch {
    return 0;
  }
}

/**
 * CPU seconds of the whole machine (all cores) since boot, from /proc/stat: busy (all but idle,
 * iowait and guests; steal included) and steal (time this VM's CPUs were ready to run but the
 * hypervisor ran something else: on a shared host, the phases in which every figure is low).
 */
export function machineSeconds(): { busy: number; steal: number } {
  try {
    return parseProcStat(readFileSync('/proc/stat', 'utf8'));
  } catch {
    return { busy: 0, steal: 0 };
  }
}

/** The aggregate "cpu" line of /proc/stat, in seconds (see machineSeconds). */
export function parseProcStat(text: string): { busy: number; steal: number } {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('/proc/stat: no cpu line');
  // user nice system idle iowait irq softirq steal guest guest_nice
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const steal = f[7] ?? 0;
  return { busy: (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + steal) / CLK_TCK, steal: steal / CLK_TCK };
}

/** Busy CPU seconds of the whole machine (all cores) since boot (see machineSeconds). */
export function machineBusySeconds(): number {
  return machineSeconds().busy;
}

/** CPU seconds used so far: whole process (all threads) and its main thread. */
export function cpuSeconds(pid: number): { total: number; main: number } {
  return { total: ticksOf(`/proc/${pid}/stat`) / CLK_TCK, main: ticksOf(`/proc/${pid}/task/${pid}/stat`) / CLK_TCK };
}

/**
 * Peak RSS of some processes over a phase: VmHWM after a reset when the kernel allows it, and
 * the highest VmRSS seen by a 50 ms poller in any case; the larger of the two is reported.
 */
export class PeakRss {
  #timer: NodeJS.Timeout;
  #polled = new Map<number, number>();
  #hwmOk: boolean;

  constructor(readonly pids: number[]) {
    this.#hwmOk = pids.every((p) => resetHwm(p));
    this.#poll();
    this.#timer = setInterval(() => this.#poll(), 50);
    this.#timer.unref();
  }

  #poll(): void {
    for (const p of this.pids) {
      const r = rssBytes(p);
      if (r !== undefined) this.#polled.set(p, Math.max(this.#polled.get(p) ?? 0, r));
    }
  }

  /** Stops polling; peak bytes per pid. */
  stop(): Map<number, number> {
    clearInterval(this.#timer);
    this.#poll();
    const out = new Map<number, number>();
    for (const p of this.pids) {
      const hwm = this.#hwmOk ? (hwmBytes(p) ?? 0) : 0;
      out.set(p, Math.max(hwm, this.#polled.get(p) ?? 0));
    }
    return out;
  }
}
