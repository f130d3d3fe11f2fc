// The measurements: parallel async loops, each bounded by a count and a deadline, every GET's
// byte count checked, SHA-256 round trips where the server stores data, and per phase the
// server's peak RSS and CPU and the load generator's CPU.
import { performance } from 'node:perf_hooks';
import { HttpError, S3Client, type Result } from './client.ts';
import { GiB, KiB, MiB, patternChunks, patternSha256, randomPayload } from './payload.ts';
import { cpuSeconds, machineBusySeconds, machineSeconds, PeakRss, rssBytes } from './procs.ts';
import type { Running } from './targets.ts';
import type { HostSpeed } from './host-speed.ts';

export const BUCKET = 'bench-bucket';

export interface Plan {
  quick: boolean;
  small: { size: number; concurrency: number; maxOps: number; maxMs: number };
  tiny: { size: number; concurrency: number; maxOps: number; maxMs: number };
  large: { size: number; count: number; maxMs: number };
  huge: { size: number };
  /** KMS API calls (GenerateDataKey, Decrypt) on targets with a KMS (bench/lib/kms.ts). */
  kms: { concurrency: number; maxOps: number; maxMs: number };
  /**
   * Load before the first measured phase (1 MiB and 4 KiB PUTs and GETs, mixed), so that the
   * figures are those of a server that has been running: see warmUp.
   */
  warmupMs: number;
}

/** BENCH_WARMUP_S, or the plan's default. */
function warmupMs(fallbackS: number): number {
  const s = Number(process.env.BENCH_WARMUP_S ?? fallbackS);
  if (!Number.isFinite(s) || s < 0) throw new Error('BENCH_WARMUP_S must be a number of seconds >= 0');
  return s * 1000;
}

export function makePlan(quick: boolean): Plan {
  return quick
    ? {
        quick,
        small: { size: MiB, concurrency: 8, maxOps: 48, maxMs: 2_000 },
        tiny: { size: 4 * KiB, concurrency: 16, maxOps: 800, maxMs: 2_000 },
        large: { size: 256 * MiB, count: 1, maxMs: 30_000 },
        huge: { size: 256 * MiB },
        kms: { concurrency: 16, maxOps: 800, maxMs: 2_000 },
        warmupMs: warmupMs(2),
      }
    : {
        quick,
        small: { size: MiB, concurrency: 8, maxOps: 4000, maxMs: 10_000 },
        tiny: { size: 4 * KiB, concurrency: 16, maxOps: 40_000, maxMs: 8_000 },
        large: { size: 256 * MiB, count: 3, maxMs: 120_000 },
        huge: { size: GiB },
        kms: { concurrency: 16, maxOps: 40_000, maxMs: 5_000 },
        warmupMs: warmupMs(20),
      };
}

export interface PhaseResult {
  name: string;
  ops: number;
  bytes: number;
  seconds: number;
  errors: number;
  firstError?: string;
  mbps: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  /** Server CPU over the phase, in cores (1.0 = one core busy): all threads, and main threads. */
  serverCpu: number;
  serverMainCpu: number;
  /** Load generator (this process) CPU, in cores. */
  genCpu: number;
  /** CPU used by everything else on the machine (other processes, kernel threads), in cores. */
  otherCpu: number;
  /**
   * The hypervisor's steal, in cores: time this VM's CPUs were ready to run and did not (a shared
   * host's slow phases). Counted in the machine's busy time, so mostly also in otherCpu.
   */
  stealCpu: number;
  /** Peak RSS per server process label, bytes. */
  peakRss: Record<string, number>;
}


export interface TargetResult {
  name: string;
  label: string;
  info?: string;
  unavailable?: string;
  phases: Record<string, PhaseResult>;
  /** SHA-256 round trips done: "1 MiB ok", ... */
  verified: string[];
  /** Problems noticed (failed verifications, errors). */
  problems: string[];
  idleRss?: Record<string, number>;
  /** RSS right before the huge check (a fresh server, unless the target cannot restart cheaply). */
  hugeIdleRss?: Record<string, number>;
  hugeFreshServer?: boolean;
  tableProcs?: string[];
  /** One core's AES-GCM and MD5 rates just before the target started (bench/lib/host-speed.ts). */
  hostSpeed?: HostSpeed;
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Waits (up to `maxMs`) for the machine to be quiet: less than `cores` busy over a 1 s window,
 * so other work on a shared machine does not land inside a measurement. Returns the last load.
 */
export async function waitIdle(maxMs: number, cores = 0.25, ownPids: number[] = []): Promise<{ load: number; waitedMs: number }> {
  const t0 = performance.now();
  let load = 0;
  const own = () => ownPids.reduce((n, p) => n + cpuSeconds(p).total, 0);
  for (;;) {
    const b0 = machineBusySeconds() - own();
    const s0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    load = (machineBusySeconds() - own() - b0) / ((performance.now() - s0) / 1000);
    if (load < cores || performance.now() - t0 >= maxMs) return { load, waitedMs: performance.now() - t0 };
  }
}

export const idleWaitMs = Number(process.env.BENCH_IDLE_WAIT_S ?? 30) * 1000;

/** Runs `op(i)` from `concurrency` async loops until `maxOps` ops or `maxMs`; op returns payload bytes moved. */
export async function measure(
  target: Running,
  name: string,
  opts: { concurrency: number; maxOps: number; maxMs: number; maxErrors?: number },
  op: (i: number) => Promise<number>,
): Promise<PhaseResult> {
  if (name !== 'warmup' && idleWaitMs > 0) {
    // The target's own processes (e.g. Ceph's monitor) do not count as foreign load.
    const w = await waitIdle(idleWaitMs, 0.25, target.procs.map((p) => p.pid));
    if (w.load >= 0.25) progress(`  (machine still busy before ${name}: ${w.load.toFixed(2)} cores after ${(w.waitedMs / 1000).toFixed(0)} s)`);
  }
  const pids = target.procs.map((p) => p.pid);
  const rss = new PeakRss(pids);
  const cpu0 = pids.map((p) => cpuSeconds(p));
  const gen0 = process.cpuUsage();
  const machine0 = machineSeconds();
  const lat: number[] = [];
  let next = 0;
  let ops = 0;
  let bytes = 0;
  let errors = 0;
  let firstError: string | undefined;
  const maxErrors = opts.maxErrors ?? 5;
  const t0 = performance.now();
  const deadline = t0 + opts.maxMs;
  const worker = async () => {
    for (;;) {
      if (performance.now() >= deadline || errors >= maxErrors) return;
      const i = next++;
      if (i >= opts.maxOps) return;
      const s = performance.now();
      try {
        const n = await op(i);
        bytes += n;
        lat.push(performance.now() - s);
        ops++;
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message.slice(0, 400);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const gen = process.cpuUsage(gen0);
  const machine1 = machineSeconds();
  const busy = machine1.busy - machine0.busy;
  const cpu1 = pids.map((p) => cpuSeconds(p));
  const peaks = rss.stop();
  lat.sort((a, b) => a - b);
  const serverCpu = cpu1.reduce((n, c, k) => n + c.total - cpu0[k]!.total, 0) / seconds;
  const genCpu = (gen.user + gen.system) / 1e6 / seconds;
  const peakRss: Record<string, number> = {};
  target.procs.forEach((p) => (peakRss[p.label] = peaks.get(p.pid) ?? 0));
  return {
    name,
    ops,
    bytes,
    seconds,
    errors,
    ...(firstError ? { firstError } : {}),
    mbps: bytes / 1e6 / seconds,
    rps: ops / seconds,
    p50ms: percentile(lat, 50),
    p99ms: percentile(lat, 99),
    serverCpu,
    serverMainCpu: cpu1.reduce((n, c, k) => n + c.main - cpu0[k]!.main, 0) / seconds,
    genCpu,
    otherCpu: Math.max(0, busy / seconds - serverCpu - genCpu),
    stealCpu: (machine1.steal - machine0.steal) / seconds,
    peakRss,
  };
}

function ok(method: string, path: string, r: Result): Result {
  if (r.status < 200 || r.status >= 300) throw new HttpError(method, path, r);
  return r;
}

function expectBytes(r: Result, want: number, what: string): void {
  if (r.bytes !== want) throw new Error(`${what}: GET returned ${r.bytes} bytes, expected ${want}`);
}

/** Writes one line of progress to stderr (stdout carries the report). */
export function progress(s: string): void {
  process.stderr.write(s + '\n');
}

function describe(p: PhaseResult): string {
  const rss = Object.entries(p.peakRss)
    .map(([k, v]) => `${k} ${(v / MiB).toFixed(0)} MiB`)
    .join(', ');
  return (
    `  ${p.name.padEnd(10)} ${String(p.ops).padStart(6)} ops ${p.seconds.toFixed(2).padStart(6)} s ` +
    `${p.mbps.toFixed(1).padStart(8)} MB/s ${p.rps.toFixed(0).padStart(6)} req/s  p50 ${p.p50ms.toFixed(1)} ms p99 ${p.p99ms.toFixed(1)} ms  ` +
    `srv cpu ${p.serverCpu.toFixed(2)} (main ${p.serverMainCpu.toFixed(2)}) gen cpu ${p.genCpu.toFixed(2)} other ${p.otherCpu.toFixed(2)} steal ${p.stealCpu.toFixed(2)}  peak ${rss}` +
    (p.errors ? `  ERRORS ${p.errors}: ${p.firstError}` : '')
  );
}

/** Stores a phase's figures in the result (and any failed requests as a problem) and prints them. */
export function recordPhase(result: TargetResult, p: PhaseResult): void {
  result.phases[p.name] = p;
  progress(describe(p));
  if (p.errors) result.problems.push(`${p.name}: ${p.errors} failed requests, first: ${p.firstError}`);
}

/** Reads `key` back into a SHA-256 and compares it with what was PUT (targets that store data). */
async function verifyRoundTrip(target: Running, s3: S3Client, result: TargetResult, key: string, size: number, sha: string, label: string): Promise<void> {
  if (!target.storesData) return;
  const r = ok('GET', key, await s3.get(BUCKET, key, true));
  expectBytes(r, size, key);
  if (r.sha256 !== sha) {
    result.problems.push(`${label}: SHA-256 of GET ${key} differs from what was PUT`);
    throw new Error(`${label}: SHA-256 mismatch for ${key}`);
  }
  result.verified.push(`${label} SHA-256 ok`);
}

/**
 * 4 KiB PUT then GET at the plan's tiny concurrency, as phases `PUT <label>` and `GET <label>`
 * (label "4KiB" for the standard figures), with a warm-up and a SHA-256 round trip. `putHeaders`
 * go on every PUT (e.g. SSE-KMS: x-amz-server-side-encryption: aws:kms, ...-aws-kms-key-id,
 * ...-bucket-key-enabled); objects go under `prefix/`.
 */
export async function runTinyPutGet(
  target: Running,
  s3: S3Client,
  plan: Plan,
  result: TargetResult,
  opts: { label: string; prefix: string; putHeaders?: Record<string, string> },
): Promise<void> {
  const { label, prefix, putHeaders } = opts;
  const tiny = randomPayload(plan.tiny.size);
  await measure(target, 'warmup', { concurrency: plan.tiny.concurrency, maxOps: 400, maxMs: 5_000 }, async (i) => {
    ok('PUT', `${prefix}w`, await s3.put(BUCKET, `${prefix}w/${i}`, tiny.data, undefined, putHeaders));
    expectBytes(ok('GET', `${prefix}w`, await s3.get(BUCKET, `${prefix}w/${i}`)), tiny.data.length, 'warmup');
    return tiny.data.length;
  });
  const putTiny = await measure(target, `PUT ${label}`, plan.tiny, async (i) => {
    ok('PUT', `${prefix}/${i}`, await s3.put(BUCKET, `${prefix}/${i}`, tiny.data, undefined, putHeaders));
    return tiny.data.length;
  });
  recordPhase(result, putTiny);
  const writtenTiny = Math.max(1, putTiny.ops);
  recordPhase(
    result,
    await measure(target, `GET ${label}`, plan.tiny, async (i) => {
      const key = `${prefix}/${i % writtenTiny}`;
      const r = ok('GET', key, await s3.get(BUCKET, key));
      expectBytes(r, tiny.data.length, key);
      return r.bytes;
    }),
  );
  await verifyRoundTrip(target, s3, result, `${prefix}/0`, tiny.data.length, tiny.sha256, label === '4KiB' ? '4 KiB' : label);
}

/**
 * Load before the first measured phase, for `plan.warmupMs`: 1 MiB and 4 KiB PUTs, each read
 * back (about 1.5 GB written in 20 s). A server on a JIT
 * runtime (V8 here: Coffer, s3rver and the bare servers) runs its request path unoptimized at
 * first: V8 optimizes a function only after hundreds of calls with stable types, and a request
 * runs a few hundred functions. At ~300 1 MiB PUTs a second that took 20-30 s, and a phase
 * measured right after a short warm-up measured mostly the compiler (Coffer, 10 s of 1 MiB PUTs
 * after 64: 327 functions optimized, 220-233 MB/s; after 30 s of load: 27, 325-329 MB/s; see
 * docs/performance.md, "Session 9"). The figures are meant to be a running server's.
 */
export async function warmUp(target: Running, s3: S3Client, plan: Plan, small: Buffer): Promise<void> {
  const tiny = randomPayload(plan.tiny.size).data;
  await measure(target, 'warmup', { concurrency: plan.small.concurrency, maxOps: Number.MAX_SAFE_INTEGER, maxMs: Math.max(plan.warmupMs, 1) }, async (i) => {
    // Three small round trips for every large one: both paths get their calls. New keys: on
    // this VM's ext4 (no journal) deletions, overwrites' included, slow file creation for minutes.
    const body = i % 4 === 0 ? small : tiny;
    const key = `warm/${i}`;
    ok('PUT', key, await s3.put(BUCKET, key, body));
    expectBytes(ok('GET', key, await s3.get(BUCKET, key)), body.length, 'warmup');
    return 2 * body.length;
  });
}

/** The 1 MiB, 4 KiB and 256 MiB phases against one started target. */
export async function runStandard(target: Running, plan: Plan, result: TargetResult): Promise<void> {
  const s3 = new S3Client(target.endpoint, 64);
  const record = (p: PhaseResult) => recordPhase(result, p);
  const verify = (key: string, size: number, sha: string, label: string) => verifyRoundTrip(target, s3, result, key, size, sha, label);
  try {
    await s3.createBucket(BUCKET);
    const idle: Record<string, number> = {};
    for (const p of target.procs) idle[p.label] = rssBytes(p.pid) ?? 0;
    result.idleRss = idle;
    if (target.tableProcs) result.tableProcs = target.tableProcs;

    // ---- 1 MiB at concurrency 8 ----
    const small = randomPayload(plan.small.size);
    await warmUp(target, s3, plan, small.data);
    const putSmall = await measure(target, 'PUT 1MiB', plan.small, async (i) => {
      ok('PUT', `m1/${i}`, await s3.put(BUCKET, `m1/${i}`, small.data));
      return small.data.length;
    });
    record(putSmall);
    const written = Math.max(1, putSmall.ops);
    record(
      await measure(target, 'GET 1MiB', plan.small, async (i) => {
        const key = `m1/${i % written}`;
        const r = ok('GET', key, await s3.get(BUCKET, key));
        expectBytes(r, small.data.length, key);
        return r.bytes;
      }),
    );
    await verify('m1/0', small.data.length, small.sha256, '1 MiB');

    // ---- 4 KiB at concurrency 16 ----
    await runTinyPutGet(target, s3, plan, result, { label: '4KiB', prefix: 'k4' });

    // ---- 256 MiB, sequential ----
    const L = plan.large.size;
    const lsha = patternSha256(L);
    const putLarge = await measure(target, 'PUT 256MiB', { concurrency: 1, maxOps: plan.large.count, maxMs: plan.large.maxMs, maxErrors: 1 }, async (i) => {
      ok('PUT', `l/${i}`, await s3.put(BUCKET, `l/${i}`, patternChunks(L), L));
      return L;
    });
    record(putLarge);
    const writtenLarge = Math.max(1, putLarge.ops);
    record(
      await measure(target, 'GET 256MiB', { concurrency: 1, maxOps: plan.large.count, maxMs: plan.large.maxMs, maxErrors: 1 }, async (i) => {
        const key = `l/${i % writtenLarge}`;
        const r = ok('GET', key, await s3.get(BUCKET, key));
        expectBytes(r, L, key);
        return r.bytes;
      }),
    );
    await verify('l/0', L, lsha, '256 MiB');
  } finally {
    s3.close();
  }
}

/**
 * The separate memory check: one huge object (1 GiB) PUT from a generator and GET into a
 * SHA-256, on a freshly started server, so the peak is that of the big transfer and not what
 * earlier phases left in the heap.
 */
export async function runHuge(target: Running, plan: Plan, result: TargetResult): Promise<void> {
  const s3 = new S3Client(target.endpoint, 64);
  const record = (p: PhaseResult) => recordPhase(result, p);
  try {
    await s3.createBucket(BUCKET);
    const idle: Record<string, number> = {};
    for (const p of target.procs) idle[p.label] = rssBytes(p.pid) ?? 0;
    result.hugeIdleRss = idle;
    // ---- 1 GiB in and out: peak RSS (PUT from a generator, GET into a hash) ----
    const H = plan.huge.size;
    const hsha = patternSha256(H);
    const name = H >= GiB ? '1 GiB' : `${H / MiB} MiB`;
    const once = { concurrency: 1, maxOps: 1, maxMs: 600_000, maxErrors: 1 };
    record(
      await measure(target, 'PUT huge', once, async () => {
        ok('PUT', 'huge', await s3.put(BUCKET, 'huge', patternChunks(H), H));
        return H;
      }),
    );
    record(
      await measure(target, 'GET huge', once, async () => {
        const r = ok('GET', 'huge', await s3.get(BUCKET, 'huge', target.storesData));
        expectBytes(r, H, 'huge');
        if (target.storesData) {
          if (r.sha256 !== hsha) {
            result.problems.push(`${name}: SHA-256 of GET differs from what was PUT`);
            throw new Error(`${name}: SHA-256 mismatch`);
          }
          result.verified.push(`${name} (huge) SHA-256 ok`);
        }
        return r.bytes;
      }),
    );
  } finally {
    s3.close();
  }
}
