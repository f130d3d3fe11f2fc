// `npm run bench`: starts each target in turn as a child process on 127.0.0.1, drives it from
// this process, stops it, and prints one table with Coffer's goals beside its figures.
//
//   BENCH_QUICK=1                 short smoke run (small counts, 256 MiB instead of 1 GiB)
//   BENCH_TARGETS=coffer-http,bare  only these targets (names or prefixes; default all; run in RUN_ORDER, lib/targets.ts)
//   BENCH_RGW=0                   skip Ceph RGW (it needs the ceph packages and ~20 s to start)
//   BENCH_JSON=path               also write the raw figures as JSON
//   BENCH_DIR=dir                 where data directories go (default: the OS temp dir)
//   BENCH_KEEP_DATA=1             leave the data directories (A/B series: no run pays for removing another's files)
//   BENCH_COFFER_REF=HEAD         run Coffer from an export of that commit (not the work tree)
//   BENCH_COFFER_DIR=dir          run Coffer from another checkout
//   BENCH_CLIENT=node             load generator on node's http/https Agent instead of the raw client
//   BENCH_IDLE_WAIT_S=30          before each phase wait up to this long for the machine to be idle (0 = don't)
//   BENCH_KMS=0                   skip the KMS API figures (GenerateDataKey, Decrypt; Coffer only)
//   BENCH_SSE_KMS=0               skip SSE-KMS 4 KiB PUT/GET with and without Bucket Keys
// Progress goes to stderr, the report to stdout.
import { writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';
import { CLIENT_KIND } from './lib/client.ts';
import { KMS_FIGURES, runKms, SSE_KMS_FIGURES, SSE_KMS_PHASES } from './lib/kms.ts';
import { MiB } from './lib/payload.ts';
import { reportOrder, selectTargets, type TargetDef } from './lib/targets.ts';
import { makePlan, progress, runHuge, runStandard, type PhaseResult, type TargetResult } from './lib/workloads.ts';
import { formatHostSpeed, hostSpeed, type HostSpeed } from './lib/host-speed.ts';

const quick = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';
const rgwOn = !['0', 'false', 'no'].includes((process.env.BENCH_RGW ?? '1').toLowerCase());
const plan = makePlan(quick);
const targets = selectTargets(process.env.BENCH_TARGETS, rgwOn);
const HUGE = plan.huge.size >= 1024 * MiB ? '1GiB' : `${plan.huge.size / MiB}MiB`;

function machine(): string[] {
  const c = cpus();
  let disk = '';
  try {
    const f = execFileSync('df', ['-T', process.env.BENCH_DIR ?? tmpdir()], { encoding: 'utf8' }).trim().split('\n')[1]?.split(/\s+/) ?? [];
    disk = f.length > 1 ? `${f[0]} (${f[1]})` : '';
  } catch {
    /* no df */
  }
  return [
    `Machine: ${c.length} x ${c[0]?.model ?? '?'}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, Linux ${release()}, Node ${process.version}` +
      (disk ? `, data on ${disk.replace(/\s+/g, ' ')}` : ''),
    `Load generator: this process, ${CLIENT_KIND === 'raw' ? 'raw HTTP/1.1 keep-alive client (net/tls, fixed read buffers)' : "node's http/https keep-alive Agent"}, hand-rolled SigV4, UNSIGNED-PAYLOAD; it and each server`,
    `share this machine; one target at a time, all on 127.0.0.1. MB/s = 10^6 bytes/s of object data; RSS in MiB (2^20).`,
  ];
}

/** The range of one core's AES-GCM and MD5 rates measured before each target (the host's phase). */
function hostSpeedLine(results: TargetResult[]): string {
  const s = results.map((r) => r.hostSpeed).filter((x): x is HostSpeed => x !== undefined);
  if (s.length === 0) return 'Host speed: not measured (no openssl).';
  const range = (xs: number[], unit: number, digits: number) => {
    const lo = Math.min(...xs) / unit;
    const hi = Math.max(...xs) / unit;
    return lo.toFixed(digits) === hi.toFixed(digits) ? lo.toFixed(digits) : `${lo.toFixed(digits)}-${hi.toFixed(digits)}`;
  };
  return (
    `Host speed (one core, openssl speed before each target): AES-128-GCM ${range(s.map((x) => x.aesGcm), 1e9, 2)} GB/s, ` +
    `MD5 ${range(s.map((x) => x.md5), 1e6, 0)} MB/s (per target under Details).`
  );
}

async function runTarget(def: TargetDef): Promise<TargetResult> {
  const result: TargetResult = { name: def.name, label: def.label, phases: {}, verified: [], problems: [] };
  result.hostSpeed = hostSpeed();
  progress(`\n== ${def.label} [${def.name}]: starting${result.hostSpeed ? ` (one core: ${formatHostSpeed(result.hostSpeed)})` : ''}`);
  let running: Awaited<ReturnType<TargetDef['start']>> | undefined;
  try {
    running = await def.start();
  } catch (e) {
    result.unavailable = (e as Error).message.split('\n')[0]!.slice(0, 200);
    progress(`   unavailable: ${result.unavailable}`);
    return result;
  }
  result.info = running.info;
  progress(`   ${running.info} at ${running.endpoint.url} (pids ${running.procs.map((p) => `${p.label}=${p.pid}`).join(', ')})`);
  // Ceph takes ~20 s to start: its huge check runs on the same cluster; the others restart.
  const restart = def.name !== 'rgw';
  try {
    await runStandard(running, plan, result);
    await runKms(running, plan, result);
    if (restart) {
      await running.stop();
      running = undefined;
      running = await def.start();
      progress(`   restarted for the ${HUGE} check (pids ${running.procs.map((p) => `${p.label}=${p.pid}`).join(', ')})`);
    }
    result.hugeFreshServer = restart;
    await runHuge(running, plan, result);
  } catch (e) {
    result.problems.push(`aborted: ${(e as Error).message.slice(0, 300)}`);
    progress(`   aborted: ${(e as Error).message}`);
  } finally {
    await running?.stop();
  }
  return result;
}

// ---- report ----

const COLS: { head: [string, string]; phase: string; kind: 'mbps' | 'rps' }[] = [
  { head: ['1MiB PUT', 'MB/s'], phase: 'PUT 1MiB', kind: 'mbps' },
  { head: ['1MiB GET', 'MB/s'], phase: 'GET 1MiB', kind: 'mbps' },
  { head: ['256MiB PUT', 'MB/s'], phase: 'PUT 256MiB', kind: 'mbps' },
  { head: ['256MiB GET', 'MB/s'], phase: 'GET 256MiB', kind: 'mbps' },
  { head: ['4KiB PUT', 'req/s'], phase: 'PUT 4KiB', kind: 'rps' },
  { head: ['4KiB GET', 'req/s'], phase: 'GET 4KiB', kind: 'rps' },
];
const STANDARD = ['PUT 1MiB', 'GET 1MiB', 'PUT 4KiB', 'GET 4KiB', 'PUT 256MiB', 'GET 256MiB'];
/** KMS API calls per second (targets with a KMS), after the memory columns. */
const KMS_COLS: typeof COLS = [
  { head: ['KMS GDK', 'req/s'], phase: 'KMS GenerateDataKey', kind: 'rps' },
  { head: ['KMS Decrypt', 'req/s'], phase: 'KMS Decrypt', kind: 'rps' },
];

function value(p: PhaseResult | undefined, kind: 'mbps' | 'rps'): number | undefined {
  if (!p || p.ops === 0) return undefined;
  return kind === 'mbps' ? p.mbps : p.rps;
}

function fmt(p: PhaseResult | undefined, kind: 'mbps' | 'rps'): string {
  const v = value(p, kind);
  if (v === undefined) return p ? 'FAILED' : '-';
  return (kind === 'mbps' ? v.toFixed(1) : v.toFixed(0)) + (p!.errors ? '!' : '');
}

/** Peak RSS over some phases, per process label, in MiB: "57" or "rgw 120 + osd 830". */
function peak(r: TargetResult, names: string[]): { main: number; text: string } {
  const per: Record<string, number> = {};
  for (const n of names) {
    for (const [k, v] of Object.entries(r.phases[n]?.peakRss ?? {})) {
      if (!r.tableProcs || r.tableProcs.includes(k)) per[k] = Math.max(per[k] ?? 0, v);
    }
  }
  const entries = Object.entries(per);
  if (!entries.length) return { main: NaN, text: '-' };
  const main = entries[0]![1] / MiB;
  if (entries.length === 1) return { main, text: main.toFixed(0) };
  return { main, text: entries.map(([k, v]) => `${k.replace('radosgw', 'rgw').replace('ceph-', '')} ${(v / MiB).toFixed(0)}`).join(' + ') };
}

/** The phase that spent the most of `cpu` (other processes' CPU, or the hypervisor's steal). */
function highest(phases: PhaseResult[], cpu: 'otherCpu' | 'stealCpu'): PhaseResult | undefined {
  return phases.reduce<PhaseResult | undefined>((m, p) => (!m || p[cpu] > m[cpu] ? p : m), undefined);
}

function report(results: TargetResult[]): string {
  const out: string[] = [];
  const W0 = 28;
  const w = [10, 10, 11, 11, 9, 9, 18, 10, 10, 16, 9, 12];
  const heads: [string, string][] = [
    ...COLS.map((c) => c.head),
    ['peak RSS', 'MiB'],
    [`${HUGE} PUT`, 'MB/s'],
    [`${HUGE} GET`, 'MB/s'],
    [`${HUGE} peak RSS`, 'MiB'],
    ...KMS_COLS.map((c) => c.head),
  ];
  const line = (first: string, cells: string[]) => first.padEnd(W0) + cells.map((c, i) => c.padStart(w[i]!)).join(' ');
  out.push(line('', heads.map((h) => h[0])));
  out.push(line('', heads.map((h) => h[1])));
  out.push('-'.repeat(W0 + w.reduce((a, b) => a + b + 1, 0)));
  const byName = new Map(results.map((r) => [r.name, r]));
  for (const r of results) {
    if (r.unavailable) {
      out.push(`${r.label.padEnd(W0)}unavailable (${r.unavailable})`);
      continue;
    }
    const cells = COLS.map((c) => fmt(r.phases[c.phase], c.kind));
    cells.push(peak(r, STANDARD).text, fmt(r.phases['PUT huge'], 'mbps'), fmt(r.phases['GET huge'], 'mbps'), peak(r, ['PUT huge', 'GET huge']).text);
    cells.push(...KMS_COLS.map((c) => fmt(r.phases[c.phase], c.kind)));
    out.push(line(r.label, cells));
    if (r.name === 'coffer-http' || r.name === 'coffer-https') {
      const s3r = byName.get('s3rver');
      out.push(
        line(
          r.name === 'coffer-http' ? '  goal (HTTP)' : '  goal vs s3rver',
          [
            r.name === 'coffer-http' ? ('>=400') : '',
            r.name === 'coffer-http' ? ('>=850') : '',
            '', '',
            r.name === 'coffer-http' ? ('>=2000') : '',
            r.name === 'coffer-http' ? ('>=3500') : '',
            '', '', '', '<200', '', '',
          ].map((c, i) => (c || (s3r && !s3r.unavailable && i < 6 ? '>s3rver' : ''))),
        ),
      );
    }
  }
  for (const r of results) {
    const sse = SSE_KMS_PHASES.filter((n) => r.phases[n]);
    if (sse.length) out.push(`${r.label} SSE-KMS 4 KiB (req/s): ${sse.map((n) => `${n.replace(' 4KiB', '')} ${fmt(r.phases[n], 'rps')}`).join(', ')}  (+BK = Bucket Key)`);
  }
  out.push('');
  out.push("'!' = some requests failed (see details); '-' = not measured. Peak RSS = highest VmHWM/VmRSS of the server process over");
  out.push(`the 1 MiB, 4 KiB and 256 MiB phases; ${HUGE} peak RSS = over the ${HUGE} PUT (streamed from a generator) and GET (into a SHA-256),`);
  out.push('on a freshly started server (Ceph RGW: the same cluster).');
  for (const r of results) {
    const phases = Object.values(r.phases);
    const other = highest(phases, 'otherCpu');
    if (other && other.otherCpu > 0.25) {
      out.push(`NOTE: other processes used ${other.otherCpu.toFixed(2)} cores during ${r.label} ${other.name}: its figures may be low.`);
    }
    const stolen = highest(phases, 'stealCpu');
    if (stolen && stolen.stealCpu > 0.25) {
      out.push(`NOTE: the hypervisor took ${stolen.stealCpu.toFixed(2)} cores (steal) during ${r.label} ${stolen.name}: a slow phase of the host, its figures may be low.`);
    }
  }
  return out.join('\n');
}

function goals(results: TargetResult[]): string {
  const out: string[] = ['Goals (Coffer over HTTP unless said):'];
  const c = results.find((r) => r.name === 'coffer-http' && !r.unavailable);
  const s = results.find((r) => r.name === 's3rver' && !r.unavailable);
  if (!c) return out.concat('  Coffer over HTTP was not measured in this run.').join('\n');
  const check = (ok: boolean | undefined, text: string) => {
    const tag = ok === undefined ? '[n/a]' : ok ? '[MET]' : '[NOT MET]';
    out.push(`  ${tag.padEnd(10)}${text}`);
  };
  const v = (r: TargetResult, ph: string, k: 'mbps' | 'rps') => value(r.phases[ph], k);
  const abs: [string, 'mbps' | 'rps', number, string][] = [
    ['PUT 1MiB', 'mbps', 400, '1 MiB PUT >= 400 MB/s'],
    ['GET 1MiB', 'mbps', 850, '1 MiB GET >= 850 MB/s'],
    ['PUT 4KiB', 'rps', 2000, '4 KiB PUT >= 2000/s'],
    ['GET 4KiB', 'rps', 3500, '4 KiB GET >= 3500/s'],
  ];
  for (const [ph, k, min, text] of abs) {
    const x = v(c, ph, k);
    check(x === undefined ? undefined : x >= min && !c.phases[ph]!.errors, `${text}: ${x === undefined ? '-' : k === 'mbps' ? x.toFixed(1) : x.toFixed(0)}`);
  }
  // The absolute goals move with the host's speed (docs/performance.md, "Goals"); the share of
  // the bare server's figure measured in the same run moves much less.
  const bare = results.find((r) => r.name === 'bare-http' && !r.unavailable);
  if (bare) {
    const shares = abs.map(([ph, k]) => {
      const x = v(c, ph, k);
      const y = v(bare, ph, k);
      return `${ph} ${x !== undefined && y ? ((100 * x) / y).toFixed(1) + '%' : '-'}`;
    });
    out.push(`  ${'[info]'.padEnd(10)}Coffer over HTTP as a share of the bare HTTP server in this run: ${shares.join(', ')}`);
  }
  const above = (who: TargetResult, peer: TargetResult, text: string) => {
    const lines = COLS.map((col) => {
      const a = v(who, col.phase, col.kind);
      const b = v(peer, col.phase, col.kind);
      return { name: col.head.join(' '), a, b, ok: a !== undefined && b !== undefined ? a > b : undefined };
    });
    const bad = lines.filter((l) => l.ok === false);
    check(
      lines.some((l) => l.ok === undefined) ? undefined : bad.length === 0,
      text + (bad.length ? `: below on ${bad.map((l) => `${l.name} (${l.a!.toFixed(1)} vs ${l.b!.toFixed(1)})`).join(', ')}` : ''),
    );
  };
  for (const who of results.filter((r) => r.name.startsWith('coffer') && !r.unavailable)) {
    if (!s) {
      check(undefined, `${who.label} above s3rver on every line: s3rver not measured`);
      break;
    }
    above(who, s, `${who.label} above s3rver on every line`);
  }
  // The goal compares Coffer over HTTPS with s3rver over HTTP; s3rver over HTTPS (when measured)
  // shows what TLS itself costs a Node server here. Information, not a goal of its own.
  const coh = results.find((r) => r.name === 'coffer-https' && !r.unavailable);
  const sh = results.find((r) => r.name === 's3rver-https' && !r.unavailable);
  if (coh && sh) above(coh, sh, `[like for like, not a goal] ${coh.label} above ${sh.label} on every line`);
  for (const who of results.filter((r) => r.name.startsWith('coffer') && !r.unavailable)) {
    const p = peak(who, ['PUT huge', 'GET huge']).main;
    check(Number.isNaN(p) ? undefined : p < 200, `${who.label} peak RSS < 200 MiB with ${HUGE} objects in and out: ${Number.isNaN(p) ? '-' : p.toFixed(0) + ' MiB'}${HUGE !== '1GiB' ? ' (quick run: not the 1 GiB check)' : ''}`);
  }
  return out.join('\n');
}

function details(results: TargetResult[]): string {
  const out: string[] = ['Details (per phase: ops, seconds, throughput, latency; CPU in cores: server all threads (its main thread), load generator, everything else):'];
  for (const r of results) {
    out.push(`${r.label} [${r.name}]${r.info ? ': ' + r.info : ''}`);
    if (r.hostSpeed) out.push(`  one core of the host just before: ${formatHostSpeed(r.hostSpeed)}`);
    if (r.unavailable) {
      out.push(`  unavailable: ${r.unavailable}`);
      continue;
    }
    const mib = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k} ${(v / MiB).toFixed(0)} MiB`).join(', ');
    if (r.idleRss) out.push(`  idle RSS after start: ${mib(r.idleRss)}`);
    if (r.hugeIdleRss) out.push(`  RSS before the ${HUGE} check (${r.hugeFreshServer ? 'freshly started server' : 'same server as above'}): ${mib(r.hugeIdleRss)}`);
    for (const p of Object.values(r.phases)) {
      const rss = Object.entries(p.peakRss).map(([k, v]) => `${k} ${(v / MiB).toFixed(0)}`).join('+');
      out.push(
        `  ${p.name.padEnd(11)}${String(p.ops).padStart(6)} ops ${p.seconds.toFixed(2).padStart(6)} s ${p.mbps.toFixed(1).padStart(8)} MB/s ${p.rps.toFixed(0).padStart(6)}/s` +
          `  p50 ${p.p50ms.toFixed(1).padStart(6)} ms  p99 ${p.p99ms.toFixed(1).padStart(7)} ms  cpu srv ${p.serverCpu.toFixed(2)} (${p.serverMainCpu.toFixed(2)}) gen ${p.genCpu.toFixed(2)} other ${p.otherCpu.toFixed(2)} steal ${p.stealCpu.toFixed(2)}` +
          `  rss ${rss} MiB${p.errors ? `  ERRORS ${p.errors}: ${p.firstError}` : ''}`,
      );
    }
    if (r.verified.length) out.push(`  verified: ${r.verified.join(', ')}; every GET's byte count checked`);
    for (const pr of r.problems) out.push(`  PROBLEM: ${pr}`);
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const started = Date.now();
  progress(`bench: ${quick ? 'QUICK smoke run' : 'full run'}; targets: ${targets.map((t) => t.name).join(', ')}${rgwOn ? '' : ' (RGW skipped: BENCH_RGW=0)'}`);
  const ran: TargetResult[] = [];
  for (const t of targets) ran.push(await runTarget(t));
  const results = reportOrder(ran);
  const text = [
    '',
    `Coffer benchmark (${quick ? 'BENCH_QUICK=1: smoke run, small counts, not comparable' : 'full run'}), ${new Date().toISOString()}, ${((Date.now() - started) / 1000).toFixed(0)} s`,
    ...machine(),
    hostSpeedLine(results),
    `1 MiB: concurrency ${plan.small.concurrency}, up to ${plan.small.maxOps} objects or ${plan.small.maxMs / 1000} s per direction; ` +
      `4 KiB: concurrency ${plan.tiny.concurrency}, up to ${plan.tiny.maxOps} requests or ${plan.tiny.maxMs / 1000} s; ` +
      `256 MiB: ${plan.large.count} sequential; ${HUGE}: one object, PUT then GET.` +
      (KMS_FIGURES
        ? ` KMS (Coffer): GenerateDataKey, then Decrypt, at concurrency ${plan.kms.concurrency}, up to ${plan.kms.maxOps} calls or ${plan.kms.maxMs / 1000} s each` +
          (SSE_KMS_FIGURES ? '; SSE-KMS 4 KiB PUT/GET as the 4 KiB figures.' : '.')
        : ' KMS figures skipped (BENCH_KMS=0).'),
    '',
    report(results),
    '',
    goals(results),
    '',
    details(results),
    '',
  ].join('\n');
  process.stdout.write(text);
  if (process.env.BENCH_JSON) {
    writeFileSync(process.env.BENCH_JSON, JSON.stringify({ quick, plan, date: new Date().toISOString(), machine: machine(), results }, null, 2));
  }
  const failed = results.some((r) => r.problems.length > 0);
  process.exitCode = failed ? 1 : 0;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 2;
});
