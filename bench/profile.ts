// Where does Coffer's time go? Starts Coffer (HTTP) as a child process, drives one workload for
// a fixed time from this process, and profiles the server while it runs:
//   --mode cpu-prof   V8's sampling profiler (node --cpu-prof) on the main thread: self time by
//                     JavaScript function and by category (MD5, AES-GCM, SHA-256, GC, ...)
//   --mode perf       Linux perf on every thread of the server (native code: OpenSSL's MD5/AES/
//                     SHA assembly, the kernel's copies, page faults and fsync), by thread and symbol
//   --mode gc         V8's garbage collections on the server's main thread (--trace-gc): how many
//                     scavenges and mark-compacts ran during the load, and their pauses
//   --mode none       just the workload (for experiments, e.g. with UV_THREADPOOL_SIZE=16)
//   --workload put1m | get1m | put4k | get4k | put256m | get256m   (default put1m: 1 MiB PUT at
//              concurrency 8; 256 MiB ones one at a time, bodies streamed)
//   --seconds 10
//   --https                        drive the HTTPS endpoint instead of HTTP
//   --concurrency N                requests in flight (default: the workload's)
//   --node-args="--flag ..."       extra node flags for the server (experiments)
//   --warmup 20                    seconds of the same workload before the measured one (V8
//                                  optimizes a request's functions only after 20-30 s of load)
//   --mixed-warmup                 warm up as `npm run bench` does (1 MiB and 4 KiB PUTs, each
//                                  read back) instead of with the workload itself
//   --objects N                    how many objects the GET workloads read, in turn (default 500;
//                                  the bench's 4 KiB GET reads all of the ~20,000 its PUT wrote)
//   --output FILE                  what the server printed during the load, into FILE (e.g.
//                                  with --node-args=--trace-opt)
//
//   node --import tsx bench/profile.ts --mode perf --workload put1m
// Honours BENCH_COFFER_REF / BENCH_COFFER_DIR like bench/run.ts.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { S3Client } from './lib/client.ts';
import { KiB, MiB, patternChunks, randomPayload } from './lib/payload.ts';
import { COFFER_ACCESS_KEY, COFFER_SECRET_KEY, cofferVersion, startCofferProcess, type Running } from './lib/targets.ts';
import { BUCKET, idleWaitMs, makePlan, measure, waitIdle, warmUp } from './lib/workloads.ts';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'cpu-prof' },
    workload: { type: 'string', default: 'put1m' },
    seconds: { type: 'string', default: '10' },
    top: { type: 'string', default: '30' },
    https: { type: 'boolean', default: false },
    'node-args': { type: 'string', default: '' },
    warmup: { type: 'string', default: '20' },
    output: { type: 'string' },
    concurrency: { type: 'string' },
    objects: { type: 'string' },
    'mixed-warmup': { type: 'boolean', default: false },
  },
});
const mode = values.mode!;
const workload = values.workload!;
const seconds = Number(values.seconds);
const TOP = Number(values.top);
const warmupS = Number(values.warmup);
if (!['cpu-prof', 'perf', 'gc', 'none'].includes(mode)) throw new Error('--mode cpu-prof | perf | gc | none');
const WORKLOADS: Record<string, { size: number; concurrency: number; put: boolean }> = {
  put1m: { size: MiB, concurrency: 8, put: true },
  get1m: { size: MiB, concurrency: 8, put: false },
  put4k: { size: 4 * KiB, concurrency: 16, put: true },
  get4k: { size: 4 * KiB, concurrency: 16, put: false },
  put256m: { size: 256 * MiB, concurrency: 1, put: true },
  get256m: { size: 256 * MiB, concurrency: 1, put: false },
};
const w = WORKLOADS[workload];
if (!w) throw new Error(`--workload ${Object.keys(WORKLOADS).join(' | ')}`);
if (values.concurrency !== undefined) w.concurrency = Number(values.concurrency);

let window = { from: 0, to: 0 };
let profDir = '';

// ---- reports ----

/** --trace-gc lines of the load window: counts and pauses by kind. */
function gcReport(out: string, seconds: number, ops: number): void {
  const kinds = new Map<string, { n: number; ms: number }>();
  for (const m of out.matchAll(/ ms: ([A-Za-z-]+(?: \(reduce\))?) .*?MB, ([\d.]+) \/ ([\d.]+) ms/g)) {
    const k = kinds.get(m[1]!) ?? { n: 0, ms: 0 };
    k.n++;
    k.ms += Number(m[2]);
    kinds.set(m[1]!, k);
  }
  console.log(`\nGarbage collections on the main thread during the load (${seconds.toFixed(1)} s, ${ops} requests):`);
  for (const [kind, k] of kinds) console.log(`  ${kind.padEnd(20)} ${String(k.n).padStart(6)}  (${(k.n / seconds).toFixed(1)}/s)  pauses ${k.ms.toFixed(0)} ms (${((k.ms / (seconds * 1000)) * 100).toFixed(1)}% of the time)`);
}

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

const CATEGORIES: [string, (fn: string, url: string) => boolean][] = [
  ['MD5 / SHA (Hash.update, digest)', (f, u) => u.includes('internal/crypto/hash') || (f === 'update' && u === '') || f === 'digest'],
  ['AES-GCM (Cipheriv update/final/tag, createCipheriv)', (f, u) => u.includes('internal/crypto/cipher') || /Cipheriv|getAuthTag|setAAD/.test(f)],
  ['HKDF / HMAC / random', (f, u) => u.includes('internal/crypto/hkdf') || u.includes('internal/crypto/random') || /hkdf|Hmac|randomBytes/i.test(f)],
  ['SQLite (better-sqlite3)', (_f, u) => u.includes('better-sqlite3') || u.includes('sqlite-meta')],
  ['streams (node:internal/streams)', (_f, u) => u.includes('internal/streams')],
  ['http / net / tls', (_f, u) => /internal\/(http|net|tls|stream_base)|_http_|node:net|node:http/.test(u)],
  ['fs', (_f, u) => u.includes('internal/fs') || u === 'node:fs'],
  ['logging (pino)', (_f, u) => u.includes('pino')],
  ['SigV4 / auth', (_f, u) => u.includes('/src/auth/')],
  ['Coffer other (src/)', (_f, u) => u.includes('/src/')],
  ['garbage collector', (f) => f === '(garbage collector)'],
  ['program (native, not attributed)', (f) => f === '(program)'],
];

function cpuProfReport(): void {
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) {
    console.log('no .cpuprofile written');
    return;
  }
  const prof = JSON.parse(readFileSync(join(profDir, file), 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = 0;
  let total = 0;
  let idle = 0;
  // The profile's clock starts near process start; keep the samples of the load window only.
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    t += dt;
    if (t < window.from || t > window.to) continue;
    const id = prof.samples[i]!;
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  }
  const byFn = new Map<string, { us: number; fn: string; url: string }>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const key = `${f.functionName}|${f.url}|${f.lineNumber}`;
    const e = byFn.get(key) ?? { us: 0, fn: f.functionName || '(anonymous)', url: `${f.url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${f.lineNumber + 1}` };
    e.us += us;
    byFn.set(key, e);
  }
  const pct = (us: number) => ((100 * us) / total).toFixed(1).padStart(5) + '%';
  console.log(`\nV8 CPU profile of the server's main thread over the load window: ${(total / 1e6).toFixed(2)} s busy, ${(idle / 1e6).toFixed(2)} s idle`);
  console.log(`Top ${TOP} functions by self time (share of busy main-thread time):`);
  for (const e of [...byFn.values()].sort((a, b) => b.us - a.us).slice(0, TOP)) console.log(`  ${pct(e.us)}  ${e.fn}  ${e.url}`);
  const cats = new Map<string, number>();
  for (const e of byFn.values()) {
    const [, u] = [e.fn, e.url];
    const cat = CATEGORIES.find(([, m]) => m(e.fn, u))?.[0] ?? 'other (node internals, V8 builtins)';
    cats.set(cat, (cats.get(cat) ?? 0) + e.us);
  }
  console.log('By category (self time):');
  for (const [k, v] of [...cats].sort((a, b) => b[1] - a[1])) console.log(`  ${pct(v)}  ${k}`);
}

const NATIVE: [string, RegExp][] = [
  ['MD5 (OpenSSL md5_block)', /md5_block|MD5_/i],
  ['AES-GCM (OpenSSL aesni/ghash)', /aesni|gcm|ghash|aes_/i],
  ['SHA-256 (OpenSSL sha256_block)', /sha256|sha512_block|SHA256/i],
  ['kernel: copies user <-> kernel (file and socket data)', /copy_folio_from_iter|copy_user|copy_to_user|copy_from_user|_copy_to_iter|_copy_from_iter|rep_movs|copy_page_/],
  ['kernel: page faults / page zeroing', /clear_page|do_anonymous_page|handle_mm_fault|do_user_addr_fault|exc_page_fault|alloc_pages|get_page_from_freelist|rmqueue|lru_add|folio_add_lru|zap_pte|unmap_page_range|free_pages|free_unref/],
  ['kernel: ext4 / page cache / block I/O / fsync', /ext4|jbd2|blk_|bio_|filemap|iomap|__block|writeback|submit_bio|virtio|iowrite|find_get_block|recently_deleted|find_inode_bit|mpage_|xas_|__find_get_block|inode|dentry|d_alloc|lookup|namei|link_path/],
  ['kernel: TCP / loopback', /tcp_|__skb|skb_|ip_|__dev_queue|netif|net_rx|__netif|sock_|inet_|loopback|softirq/],
  ['kernel: syscalls / scheduling / wakeups', /entry_SYSCALL|syscall|schedule|__schedule|futex|epoll|ep_poll|finish_task_switch|__switch_to|pick_next|try_to_wake|spin_unlock|irqentry|_raw_spin/],
  ['memcpy / memmove / memset (libc)', /memcpy|memmove|memset/],
  ['malloc / free (libc)', /malloc|free|_int_|cfree|arena|unlink_chunk/],
  ['V8 GC', /Heap|Scavenge|MarkCompact|Sweep|Evacuat|Marking|Mark|Compactor|RememberedSet|SlotSet/],
  ['JavaScript (JIT code, perf map) and V8 builtins', /^(LazyCompile|Function|JS|Builtin|Stub|BytecodeHandler|InterpretedFunction):|^\*|^~|Builtins_/],
  ['V8 compiler', /compiler::|Turbofan|Maglev|baseline/i],
];

function perfReport(file: string, pid: number): void {
  const run = (args: string[]) => execFileSync('perf', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] });
  console.log(`\nperf record -F 999 -g -p ${pid} over the load window (all threads of the server)`);
  const byThread = run(['report', '-i', file, '--no-children', '--sort', 'pid,sym', '--stdio', '--percent-limit', '0.1', '-g', 'none']);
  const totals = new Map<number, number>();
  for (const l of run(['report', '-i', file, '--no-children', '--sort', 'pid', '--stdio', '-g', 'none']).split('\n')) {
    const m = /^\s+([\d.]+)%\s+(\d+):/.exec(l);
    if (m) totals.set(Number(m[2]), Number(m[1]));
  }
  const threads = new Map<number, { pct: number; syms: string[] }>();
  for (const l of byThread.split('\n')) {
    const m = /^\s+([\d.]+)%\s+(\d+):\S+\s+\[(.)\]\s+(.*)$/.exec(l);
    if (!m) continue;
    const t = threads.get(Number(m[2])) ?? { pct: 0, syms: [] };
    t.pct = totals.get(Number(m[2])) ?? 0;
    if (t.syms.length < 3) t.syms.push(`${m[4]!.trim().slice(0, 45)} ${m[1]}%`);
    threads.set(Number(m[2]), t);
  }
  console.log('By thread (share of all samples, with each thread\'s top symbols; the main thread has tid = pid):');
  for (const [tid, t] of [...threads].sort((a, b) => b[1].pct - a[1].pct)) {
    if (t.pct < 1) continue;
    console.log(`  ${t.pct.toFixed(1).padStart(5)}%  tid ${tid}${tid === pid ? ' (main)' : ''}: ${t.syms.join(', ')}`);
  }
  const bySym = run(['report', '-i', file, '--no-children', '--sort', 'sym', '--stdio', '-g', 'none', '--percent-limit', '0.05']);
  const rows = bySym
    .split('\n')
    .filter((x) => /^\s+[\d.]+%/.test(x))
    .map((x) => {
      const m = /^\s+([\d.]+)%\s+\[(.)\]\s+(.*)$/.exec(x);
      return m ? { pct: Number(m[1]), space: m[2]!, sym: m[3]!.trim() } : undefined;
    })
    .filter((x): x is { pct: number; space: string; sym: string } => !!x);
  console.log(`Top ${TOP} symbols (self, all threads; [k] kernel, [.] user):`);
  for (const r of rows.slice(0, TOP)) console.log(`  ${r.pct.toFixed(2).padStart(6)}%  [${r.space}] ${r.sym.slice(0, 110)}`);
  const cats = new Map<string, number>();
  for (const r of rows) {
    const cat = NATIVE.find(([, re]) => re.test(r.sym))?.[0] ?? (r.space === 'k' ? 'kernel: other' : 'other user space (node, V8, libuv)');
    cats.set(cat, (cats.get(cat) ?? 0) + r.pct);
  }
  console.log('By category (self, all threads; symbols >= 0.05%):');
  for (const [k, v] of [...cats].sort((a, b) => b[1] - a[1])) console.log(`  ${v.toFixed(1).padStart(5)}%  ${k}`);
}

async function main(): Promise<void> {
  profDir = mkdtempSync(join(tmpdir(), 'coffer-prof-'));
  const nodeArgs =
    ({
      'cpu-prof': ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '250'],
      perf: ['--perf-basic-prof-only-functions'],
      gc: ['--trace-gc'],
    })[mode] ?? [];
  const spawnedAt = performance.now();
  const extra = values['node-args']!.split(/\s+/).filter(Boolean);
  const c = await startCofferProcess([...nodeArgs, ...extra]);
  const target: Running = {
    endpoint: { url: values.https ? c.https : c.http, ...(values.https ? { ca: c.ca } : {}), creds: { accessKeyId: COFFER_ACCESS_KEY, secretAccessKey: COFFER_SECRET_KEY, region: 'us-east-1' } },
    procs: [{ label: 'coffer', pid: c.pid }],
    storesData: true,
    info: cofferVersion(),
    stop: () => c.stop(),
  };
  const s3 = new S3Client(target.endpoint);
  // Bodies of 256 MiB are streamed from a pattern (patternChunks), never held whole.
  const large = w.size > 16 * MiB;
  const payload = randomPayload(large ? 1 : w.size);
  const body = () => (large ? patternChunks(w.size) : payload.data);
  try {
    await s3.createBucket(BUCKET);
    // Objects to read, and a warm-up of the measured path.
    const seed = values.objects !== undefined ? Number(values.objects) : large ? 2 : w.put ? 64 : 500;
    const put = async (i: number) => {
      const r = await s3.put(BUCKET, `p/${i % seed}`, body(), w.size);
      if (r.status !== 200) throw new Error(`PUT ${r.status}`);
      return w.size;
    };
    await measure(target, 'warmup', { concurrency: w.concurrency, maxOps: seed, maxMs: 600_000 }, put);
    const get = async (i: number) => {
      const res = await s3.get(BUCKET, `p/${i % seed}`);
      if (res.status !== 200 || res.bytes !== w.size) throw new Error(`GET ${res.status} ${res.bytes}`);
      return res.bytes;
    };
    // Then the workload itself, for the rest of the warm-up.
    const putNew = async (i: number) => {
      // New keys: deletions (overwrites' included) slow file creation on this VM's ext4.
      const r = await s3.put(BUCKET, `w/${i}`, body(), w.size);
      if (r.status !== 200) throw new Error(`PUT ${r.status}`);
      return w.size;
    };
    if (values['mixed-warmup']) await warmUp(target, s3, { ...makePlan(false), warmupMs: warmupS * 1000 }, randomPayload(MiB).data);
    else if (warmupS > 0) await measure(target, 'warmup', { concurrency: w.concurrency, maxOps: Number.MAX_SAFE_INTEGER, maxMs: warmupS * 1000 }, w.put ? putNew : get);
    const idle = await waitIdle(idleWaitMs, 0.25, [c.pid]);
    if (idle.load >= 0.25) console.log(`(machine busy before the load: ${idle.load.toFixed(2)} cores of other work)`);
    let perf: ReturnType<typeof spawn> | undefined;
    const perfData = join(profDir, 'perf.data');
    if (mode === 'perf') {
      // Own process group (detached), stopped with SIGINT when the load ends.
      perf = spawn('perf', ['record', '-F', '999', '-g', '-p', String(c.pid), '-o', perfData], { stdio: 'ignore', detached: true });
      await new Promise((r) => setTimeout(r, 500));
    }
    const gcBefore = c.output().length;
    const start = performance.now();
    const r = await measure(target, workload, { concurrency: w.concurrency, maxOps: 10_000_000, maxMs: seconds * 1000 }, async (i) => {
      if (!w.put) return get(i);
      const res = await s3.put(BUCKET, `m/${i}`, body(), w.size);
      if (res.status !== 200) throw new Error(`PUT ${res.status}`);
      return w.size;
    });
    window = { from: (start - spawnedAt) * 1000, to: (performance.now() - spawnedAt) * 1000 };
    console.log(`Coffer ${target.info}${values.https ? ' over HTTPS' : ''}${extra.length ? ` (${extra.join(' ')})` : ''}, workload ${workload} for ${r.seconds.toFixed(1)} s: ${r.ops} ops, ${r.mbps.toFixed(1)} MB/s, ${r.rps.toFixed(0)} req/s, server CPU ${r.serverCpu.toFixed(2)} cores (main thread ${r.serverMainCpu.toFixed(2)}), load generator ${r.genCpu.toFixed(2)}, other ${r.otherCpu.toFixed(2)}, hypervisor's steal ${r.stealCpu.toFixed(2)}, errors ${r.errors}${r.firstError ? ' ' + r.firstError : ''}`);
    if (mode === 'gc') gcReport(c.output().slice(gcBefore), r.seconds, r.ops);
    if (values.output) writeFileSync(values.output, c.output().slice(gcBefore));
    if (perf) {
      const exited = new Promise((resolve) => perf!.once('exit', resolve));
      perf.kill('SIGINT');
      await exited;
      perfReport(perfData, c.pid);
    }
  } finally {
    s3.close();
    await c.stop();
  }
  if (mode === 'cpu-prof') cpuProfReport();
  if (!process.env.PROFILE_KEEP) rmSync(profDir, { recursive: true, force: true });
  else console.log(`kept ${profDir}`);
}

await main();
