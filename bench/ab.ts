// Interleaved A/B of two Coffer builds: is a change faster, on a machine whose own speed moves?
//
// On this VM the same build's figures move 25-30% between runs minutes apart (docs/performance.md,
// sessions 6-8), and the host's slow and fast phases last tens of seconds to minutes: two runs one
// after the other compare two moments of the host as much as two builds. Here both servers run
// side by side (the idle one uses no CPU) and are measured in short alternating slices, in the
// order A B B A A B B A ..., so drift lands on both alike. Each adjacent A/B pair gives one
// ratio B/A; the report is their mean with a 95% confidence interval, and the same for the
// server's CPU per request. A difference whose interval holds 0 is not shown by the run.
//
//   node --import tsx bench/ab.ts --a HEAD~1 --b HEAD --workload put1m
//   node --import tsx bench/ab.ts --a /tmp/base --b . --workload get4k --slices 16 --seconds 4
//
// --a / --b: a directory (a checkout; it runs dist/ when built from its src/, see bin/coffer.js)
// or a commit of this repository (exported with git archive and built, like BENCH_COFFER_REF).
// --workload put1m | get1m | put4k | get4k (1 MiB at concurrency 8, 4 KiB at 16, as `npm run
// bench`); --slices per build (default 12); --seconds per slice (default 5); --concurrency;
// --https; --objects: how many objects GET workloads read in turn (500; the bench's 4 KiB GET
// reads ~20,000, more than the opened data keys kept); --warmup: seconds of the workload on each server before the slices (default 20).
// PUT slices write new objects (as the bench does): 12 slices of 5 s of 1 MiB PUTs write ~20 GB
// per build. The data directories are removed when the run ends.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { S3Client } from './lib/client.ts';
import { KiB, MiB, randomPayload } from './lib/payload.ts';
import { runSync } from './lib/procs.ts';
import { COFFER_ACCESS_KEY, COFFER_SECRET_KEY, exportCommit, REPO, startCofferProcess, type Running } from './lib/targets.ts';
import { BUCKET, measure, progress, type PhaseResult } from './lib/workloads.ts';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    workload: { type: 'string', default: 'put1m' },
    slices: { type: 'string', default: '12' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '20' },
    concurrency: { type: 'string' },
    https: { type: 'boolean', default: false },
    objects: { type: 'string', default: '500' },
  },
});

const WORKLOADS: Record<string, { size: number; concurrency: number; put: boolean }> = {
  put1m: { size: MiB, concurrency: 8, put: true },
  get1m: { size: MiB, concurrency: 8, put: false },
  put4k: { size: 4 * KiB, concurrency: 16, put: true },
  get4k: { size: 4 * KiB, concurrency: 16, put: false },
};

interface Build {
  name: 'A' | 'B';
  label: string;
  dir: string;
}

/** A directory as given, or an export of a commit (either built as its Coffer starts: ensureBuilt). */
function buildOf(name: 'A' | 'B', spec: string): Build {
  const dir = resolve(spec);
  if (existsSync(dir)) {
    let label = dir;
    try {
      label = `${runSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD']).trim()}${runSync('git', ['-C', dir, 'status', '--porcelain', '--', 'src', 'bin']).trim() ? ' + uncommitted changes' : ''} in ${dir}`;
    } catch {
      // not a git checkout: the directory names it
    }
    return { name, label, dir };
  }
  const e = exportCommit(spec);
  return { name, label: `${e.label} (exported)`, dir: e.dir };
}

/** Student's t, two-sided 95%, for n-1 degrees of freedom (n >= 2). */
function t95(df: number): number {
  const table = [12.71, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086];
  return df <= table.length ? table[df - 1]! : df <= 30 ? 2.05 : 2.0;
}

/** Mean and 95% confidence half-width of `xs`. */
function meanCi(xs: number[]): { mean: number; half: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (xs.length < 2) return { mean, half: NaN };
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1));
  return { mean, half: (t95(xs.length - 1) * sd) / Math.sqrt(xs.length) };
}

function pct(r: { mean: number; half: number }): string {
  const sign = (x: number) => (x >= 0 ? '+' : '') + x.toFixed(1);
  return `${sign((r.mean - 1) * 100)}% (95% CI ${sign((r.mean - r.half - 1) * 100)}% .. ${sign((r.mean + r.half - 1) * 100)}%)`;
}

async function main(): Promise<void> {
  if (!values.a || !values.b) throw new Error('usage: bench/ab.ts --a <dir|commit> --b <dir|commit> [--workload put1m|get1m|put4k|get4k] [--slices 12] [--seconds 5]');
  const w = WORKLOADS[values.workload!];
  if (!w) throw new Error(`--workload ${Object.keys(WORKLOADS).join(' | ')}`);
  const concurrency = values.concurrency ? Number(values.concurrency) : w.concurrency;
  const slices = Number(values.slices);
  const seconds = Number(values.seconds);
  const warmupS = Number(values.warmup);
  if (!(warmupS >= 0)) throw new Error('--warmup >= 0 (seconds)');
  if (!(slices >= 2) || !(seconds > 0)) throw new Error('--slices >= 2 and --seconds > 0');
  const builds = [buildOf('A', values.a), buildOf('B', values.b)];
  const payload = randomPayload(w.size);
  const seed = Number(values.objects);
  const servers: { build: Build; target: Running; s3: S3Client; stop(): Promise<void>; next: number; results: PhaseResult[] }[] = [];
  try {
    for (const build of builds) {
      const c = await startCofferProcess([], build.dir);
      const target: Running = {
        endpoint: { url: values.https ? c.https : c.http, ...(values.https ? { ca: c.ca } : {}), creds: { accessKeyId: COFFER_ACCESS_KEY, secretAccessKey: COFFER_SECRET_KEY, region: 'us-east-1' } },
        procs: [{ label: 'coffer', pid: c.pid }],
        storesData: true,
        info: build.label,
        stop: () => c.stop(),
      };
      const s3 = new S3Client(target.endpoint);
      await s3.createBucket(BUCKET);
      // Objects for GET slices; then the workload for --warmup seconds, so that V8 has optimized the path measured (see bench/lib/workloads.ts, warmUp).
      const put = async (i: number) => {
        const r = await s3.put(BUCKET, `p/${i % seed}`, payload.data, w.size);
        if (r.status !== 200) throw new Error(`PUT ${r.status}`);
        return w.size;
      };
      await measure(target, 'warmup', { concurrency, maxOps: seed, maxMs: 600_000 }, put);
      if (warmupS > 0) {
        await measure(target, 'warmup', { concurrency, maxOps: Number.MAX_SAFE_INTEGER, maxMs: warmupS * 1000 }, async (i) => {
          if (w.put) {
            // New keys: deletions (overwrites' included) slow file creation on this VM's ext4.
            const r = await s3.put(BUCKET, `w/${i}`, payload.data, w.size);
            if (r.status !== 200) throw new Error(`PUT ${r.status}`);
            return w.size;
          }
          const r = await s3.get(BUCKET, `p/${i % seed}`);
          if (r.status !== 200 || r.bytes !== w.size) throw new Error(`GET ${r.status} ${r.bytes}`);
          return r.bytes;
        });
      }
      servers.push({ build, target, s3, stop: () => c.stop(), next: 0, results: [] });
    }
    const order: number[] = [];
    for (let i = 0; i < slices; i++) order.push(...(i % 2 === 0 ? [0, 1] : [1, 0]));
    for (const [k, which] of order.entries()) {
      const s = servers[which]!;
      const r = await measure(s.target, `${values.workload} ${s.build.name}`, { concurrency, maxOps: 10_000_000, maxMs: seconds * 1000 }, async () => {
        if (w.put) {
          const res = await s.s3.put(BUCKET, `m/${s.next++}`, payload.data, w.size);
          if (res.status !== 200) throw new Error(`PUT ${res.status}`);
          return w.size;
        }
        const res = await s.s3.get(BUCKET, `p/${s.next++ % seed}`);
        if (res.status !== 200 || res.bytes !== w.size) throw new Error(`GET ${res.status} ${res.bytes}`);
        return res.bytes;
      });
      if (r.errors > 0) throw new Error(`${s.build.name}: ${r.errors} errors (${r.firstError})`);
      s.results.push(r);
      progress(`  slice ${k + 1}/${order.length} ${s.build.name}: ${w.size >= MiB ? `${r.mbps.toFixed(1)} MB/s` : `${r.rps.toFixed(0)} req/s`}, server CPU ${((r.serverCpu / r.rps) * 1000).toFixed(2)} ms/request, other ${r.otherCpu.toFixed(2)} cores, steal ${r.stealCpu.toFixed(2)}`);
    }
  } finally {
    for (const s of servers) {
      s.s3.close();
      await s.stop();
    }
  }
  const [a, b] = servers as [(typeof servers)[0], (typeof servers)[0]];
  const fig = (r: PhaseResult) => (w.size >= MiB ? r.mbps : r.rps);
  const cpu = (r: PhaseResult) => (r.serverCpu / r.rps) * 1000;
  const speed = meanCi(a.results.map((r, i) => fig(b.results[i]!) / fig(r)));
  const cost = meanCi(a.results.map((r, i) => cpu(b.results[i]!) / cpu(r)));
  const unit = w.size >= MiB ? 'MB/s' : 'req/s';
  const avg = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  console.log(`Interleaved A/B, ${new Date().toISOString()}: ${values.workload} at concurrency ${concurrency}${values.https ? ' over HTTPS' : ''}, ${slices} slices of ${seconds} s per build (A B B A ...)`);
  console.log(`  A: ${a.build.label}`);
  console.log(`  B: ${b.build.label}`);
  for (const s of [a, b]) {
    const figs = s.results.map(fig);
    console.log(`  ${s.build.name}: ${avg(figs).toFixed(1)} ${unit} on average (${Math.min(...figs).toFixed(1)}-${Math.max(...figs).toFixed(1)}), server CPU ${avg(s.results.map(cpu)).toFixed(2)} ms/request`);
  }
  console.log(`  B against A, paired slices: ${unit} ${pct(speed)}; server CPU per request ${pct(cost)}`);
  console.log(`  (repo ${REPO})`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
