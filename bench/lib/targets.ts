// The servers under test, each started as its own child process (or, for Ceph, as daemons
// whose pids we know), on 127.0.0.1, in a fresh temporary directory, and stopped afterwards.
import { existsSync, mkdtempSync, readFileSync, rmSync, statfsSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { EndpointSpec } from './client.ts';
import { atExit, runSync, startChild } from './procs.ts';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The Coffer checkout to run: BENCH_COFFER_DIR, or with BENCH_COFFER_REF=<commit> an export of
 * that commit of this repository (git archive, sharing this node_modules) so a run measures a
 * committed state while the work tree changes; default this repository's work tree.
 */
let cofferDir: string | undefined;
let cofferCommit: string | undefined;
export function cofferDirectory(): string {
  if (cofferDir) return cofferDir;
  const ref = process.env.BENCH_COFFER_REF;
  if (ref) {
    const exported = exportCommit(ref);
    cofferDir = exported.dir;
    cofferCommit = exported.label;
  } else {
    cofferDir = resolve(process.env.BENCH_COFFER_DIR ?? REPO);
  }
  return cofferDir;
}

/**
 * An export of a commit of this repository (git archive, sharing this node_modules), removed at
 * exit; `label` is its short hash (and the ref given, when that was a name).
 */
export function exportCommit(ref: string): { dir: string; label: string; commit: string } {
  const commit = runSync('git', ['-C', REPO, 'rev-parse', '--verify', `${ref}^{commit}`]).trim();
  const dir = workDir('coffer-src-');
  atExit(() => rmSync(dir, { recursive: true, force: true }));
  runSync('sh', ['-c', `git -C "$0" archive "$1" | tar -x -C "$2"`, REPO, commit, dir]);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  // Built (compiled, as a checkout runs after `npm install`) when a Coffer starts from it:
  // startCofferProcess, ensureBuilt.
  return { dir, label: commit.slice(0, 7) + (ref !== commit ? ` = ${ref}` : ''), commit };
}

/**
 * Builds `dir`'s dist/ when it does not match its sources (or is missing); returns whether it
 * built. bin/coffer.js runs dist/ only while its fingerprint matches src/, and the TypeScript
 * sources through tsx otherwise: a source file edited while a run goes on (even a comment) made
 * the next Coffer target start under tsx, ~35 MiB more RSS and slower (docs/performance.md,
 * "Session 14"). So every Coffer start measures the compiled server of the sources as they are.
 */
export async function ensureBuilt(dir: string): Promise<boolean> {
  const build = join(dir, 'scripts', 'build.mjs');
  const fingerprintScript = join(dir, 'scripts', 'source-fingerprint.mjs');
  if (!existsSync(build) || !existsSync(fingerprintScript)) return false;
  const { sourceFingerprint } = (await import(pathToFileURL(fingerprintScript).href)) as { sourceFingerprint(src: string): string };
  const stamp = join(dir, 'dist', 'SOURCE-FINGERPRINT');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === sourceFingerprint(join(dir, 'src'))) return false;
  runSync(process.execPath, [build], { cwd: dir });
  return true;
}

export const COFFER_ACCESS_KEY = 'AKBENCHCOFFER0000001';
export const COFFER_SECRET_KEY = 'bench-secret-key-for-coffer-000000000000';
export const COFFER_ROOT_KEY = '6b'.repeat(32);

export interface Running {
  /** Process labels shown in the summary table's RSS cells (default: all). */
  tableProcs?: string[];
  endpoint: EndpointSpec;
  /** Processes whose memory and CPU count as the server's; the first is the main one. */
  procs: { label: string; pid: number }[];
  /** False when GET does not return what was PUT (the bare server): no SHA-256 check. */
  storesData: boolean;
  /** Version or mode, for the report. */
  info: string;
  /** The target speaks the KMS JSON API on its endpoint (Coffer): the KMS figures are measured. */
  kms?: boolean;
  stop(): Promise<void>;
}

export interface TargetDef {
  name: string;
  label: string;
  start(): Promise<Running>;
}

function workDir(prefix: string): string {
  return mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), prefix));
}

/**
 * Removes a target's data directory when the run ends, unless BENCH_KEEP_DATA=1: then it stays
 * for the caller to remove after a series of runs. Removing thousands of files makes the next
 * file creations slower for minutes (ext4 without a journal skips recently freed inodes, one
 * inode-table lookup each; docs/performance.md), so a target's clean-up must not land inside the
 * next target's measurements: directories are removed at exit, or at once when the file system
 * is short of space (under 16 GiB free).
 */
function removeDataDir(dir: string): void {
  if (process.env.BENCH_KEEP_DATA === '1') {
    process.stderr.write(`   kept ${dir} (BENCH_KEEP_DATA=1)\n`);
    return;
  }
  const remove = () => rmSync(dir, { recursive: true, force: true });
  let free = 0;
  try {
    const fs = statfsSync(dir);
    free = fs.bavail * fs.bsize;
  } catch {
    // gone already, or no statfs here: remove now
  }
  if (free < 16 * 1024 ** 3) remove();
  else atExit(remove);
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolvePort(p));
    });
  });
}

/** The node flags `coffer` runs with: those of bin/coffer.js's `#!/usr/bin/env -S node ...` line. */
export function cofferNodeFlags(dir = cofferDirectory()): string[] {
  const first = readFileSync(join(dir, 'bin', 'coffer.js'), 'utf8').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env -S node (.*)$/.exec(first);
  return m ? m[1]!.trim().split(/\s+/) : [];
}

/**
 * `coffer server` as a child process, with the node flags its command runs with; `nodeArgs`
 * go before the script too (e.g. --cpu-prof).
 */
export async function startCofferProcess(
  nodeArgs: string[] = [],
  dir = cofferDirectory(),
): Promise<{ http: string; https: string; ca: Buffer; pid: number; stop(): Promise<void>; dataDir: string; output(): string }> {
  await ensureBuilt(dir);
  const dataDir = workDir('coffer-bench-');
  const child = startChild(
    process.execPath,
    [...cofferNodeFlags(dir), ...nodeArgs, 'bin/coffer.js', 'server', '--data-dir', dataDir, '--http-address', '127.0.0.1:0', '--https-address', '127.0.0.1:0', '--log-level', 'warn'],
    {
      cwd: dir,
      env: { ...process.env, COFFER_ROOT_ACCESS_KEY: COFFER_ACCESS_KEY, COFFER_ROOT_SECRET_KEY: COFFER_SECRET_KEY, COFFER_ROOT_KEY: COFFER_ROOT_KEY },
    },
  );
  const remove = atExit(() => removeDataDir(dataDir));
  try {
    await child.waitFor(/S3 endpoint \(HTTPS\):\s+(\S+)/, 60_000);
  } catch (e) {
    await child.stop();
    removeDataDir(dataDir);
    remove();
    throw e;
  }
  const out = child.output();
  const http = /S3 endpoint \(HTTP\):\s+(\S+)/.exec(out)![1]!;
  const https = /S3 endpoint \(HTTPS\):\s+(\S+)/.exec(out)![1]!;
  const ca = readFileSync(join(dataDir, 'tls', 'ca.crt'));
  return {
    http,
    https,
    ca,
    pid: child.pid,
    dataDir,
    output: () => child.output(),
    async stop() {
      await child.stop();
      const tail = child.output().trim();
      if (/error|fatal/i.test(tail)) process.stderr.write(`coffer output (warn level and above):\n${tail.slice(-3000)}\n`);
      removeDataDir(dataDir);
      remove();
    },
  };
}

/** package version, plus the git commit (and "+changes" for a dirty tree) of the checkout run. */
export function cofferVersion(): string {
  const dir = cofferDirectory();
  const v = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version as string;
  let git = cofferCommit ?? '';
  if (!git) {
    try {
      git = runSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD']).trim();
      const dirty = runSync('git', ['-C', dir, 'status', '--porcelain', '--', 'src', 'bin']).trim();
      if (dirty) git += ' + uncommitted changes in src/';
    } catch {
      git = 'not a git checkout';
    }
  }
  return `${v} (${git})${cofferCommit ? ', exported' : ` from ${dir}`}`;
}

function cofferTarget(secure: boolean): TargetDef {
  return {
    name: secure ? 'coffer-https' : 'coffer-http',
    label: secure ? 'Coffer HTTPS (SSE-S3)' : 'Coffer HTTP (SSE-S3)',
    async start() {
      const c = await startCofferProcess();
      return {
        endpoint: {
          url: secure ? c.https : c.http,
          ...(secure ? { ca: c.ca } : {}),
          creds: { accessKeyId: COFFER_ACCESS_KEY, secretAccessKey: COFFER_SECRET_KEY, region: 'us-east-1' },
        },
        procs: [{ label: 'coffer', pid: c.pid }],
        storesData: true,
        kms: true,
        info: `coffer ${cofferVersion()}, ${secure ? 'HTTPS (TLS, generated CA)' : 'HTTP'}`,
        stop: () => c.stop(),
      };
    },
  };
}

/** A self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost in `dir`: key.pem, cert.pem. */
function selfSignedCert(dir: string): { key: string; cert: string; ca: Buffer } {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  runSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', key, '-out', cert,
  ]);
  return { key, cert, ca: readFileSync(cert) };
}

/** s3rver over HTTP, or over HTTPS (its --key/--cert) to compare Coffer's HTTPS like for like. */
function s3rverTarget(secure: boolean): TargetDef {
  return {
    name: secure ? 's3rver-https' : 's3rver',
    label: secure ? 's3rver HTTPS (no encryption)' : 's3rver (no encryption)',
    async start() {
      const dir = workDir('s3rver-bench-');
      const tlsDir = secure ? workDir('s3rver-tls-') : undefined;
      const tls = tlsDir ? selfSignedCert(tlsDir) : undefined;
      const bin = join(REPO, 'node_modules', 's3rver', 'bin', 's3rver.js');
      const args = [bin, '-d', dir, '-a', '127.0.0.1', '-p', '0', '--silent', ...(tls ? ['--key', tls.key, '--cert', tls.cert] : [])];
      const child = startChild(process.execPath, args, { cwd: REPO });
      const remove = atExit(() => removeDataDir(dir));
      const stop = async () => {
        await child.stop();
        removeDataDir(dir);
        if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
        remove();
      };
      let port: string;
      try {
        port = (await child.waitFor(/S3rver listening on [\d.]+:(\d+)/))[1]!;
      } catch (e) {
        await stop();
        throw e;
      }
      const version = JSON.parse(readFileSync(join(REPO, 'node_modules', 's3rver', 'package.json'), 'utf8')).version;
      return {
        endpoint: {
          url: `${secure ? 'https' : 'http'}://127.0.0.1:${port}`,
          ...(tls ? { ca: tls.ca } : {}),
          creds: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', region: 'us-east-1' },
        },
        procs: [{ label: 's3rver', pid: child.pid }],
        storesData: true,
        info: `s3rver ${version}, ${secure ? 'HTTPS (ECDSA P-256 cert)' : 'HTTP'}, files on disk, MD5 ETag`,
        stop,
      };
    },
  };
}

function bareTarget(secure: boolean): TargetDef {
  return {
    name: secure ? 'bare-https' : 'bare-http',
    label: secure ? 'bare Node HTTPS (ceiling)' : 'bare Node HTTP (ceiling)',
    async start() {
      const args = ['--import', 'tsx', join(REPO, 'bench', 'servers', 'bare.ts')];
      let dir: string | undefined;
      let ca: Buffer | undefined;
      if (secure) {
        dir = workDir('bare-tls-');
        const tls = selfSignedCert(dir);
        ca = tls.ca;
        args.push('--tls', tls.cert, tls.key);
      }
      const child = startChild(process.execPath, args, { cwd: REPO });
      const url = (await child.waitFor(/bare listening on (\S+)/))[1]!;
      return {
        endpoint: { url, ...(ca ? { ca } : {}), creds: { accessKeyId: 'BARE', secretAccessKey: 'BARE', region: 'us-east-1' } },
        procs: [{ label: 'bare', pid: child.pid }],
        storesData: false,
        info: `node ${process.version} http${secure ? 's (ECDSA P-256 cert)' : ''}, no storage`,
        async stop() {
          await child.stop();
          if (dir) rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

export function rgwScriptsDir(): string {
  return resolve(process.env.BENCH_PEERS_DIR ?? join(REPO, '..', 'shared', 'peers'));
}

const rgwTarget: TargetDef = {
  name: 'rgw',
  label: 'Ceph RGW (SSE-KMS)',
  async start() {
    const scripts = rgwScriptsDir();
    const start = join(scripts, 'start-rgw.sh');
    const stopScript = join(scripts, 'stop-rgw.sh');
    if (!existsSync(start)) throw new Error(`no ${start}`);
    for (const b of ['radosgw', 'ceph-mon', 'ceph-osd', 'ceph-mgr', 'ceph']) {
      try {
        runSync('sh', ['-c', `command -v ${b}`]);
      } catch {
        throw new Error(`${b} not installed (apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd ceph-mgr ceph-common)`);
      }
    }
    const dir = workDir('rgw-bench-');
    const port = await freePort();
    const stopSync = () => {
      try {
        runSync('bash', [stopScript, dir], { timeoutMs: 60_000 });
      } catch {
        /* best effort */
      }
      rmSync(dir, { recursive: true, force: true });
    };
    const remove = atExit(stopSync);
    try {
      // The manager only serves status and modules (no I/O); by default it is left out, as its
      // start-up work (about a core for a minute or two) would land inside the measurements.
      const env = { ...process.env, RGW_PORT: String(port), NO_MGR: process.env.BENCH_RGW_MGR === '1' ? '0' : '1' };
      runSync('bash', [start, dir], { env, timeoutMs: 240_000 });
    } catch (e) {
      stopSync();
      remove();
      throw new Error(`start-rgw.sh failed: ${(e as Error).message.split('\n').slice(-6).join(' | ')}`);
    }
    const env = readFileSync(join(dir, 'env'), 'utf8');
    const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(env)?.[1];
    const pidOf = (f: string) => Number(readFileSync(join(dir, 'run', f), 'utf8').trim());
    const procs = [{ label: 'radosgw', pid: Number(get('RGW_PID')) }];
    for (const [label, f] of [['ceph-osd', 'osd.0.pid'], ['ceph-mon', 'mon.a.pid'], ['ceph-mgr', 'mgr.x.pid']] as const) {
      if (existsSync(join(dir, 'run', f))) procs.push({ label, pid: pidOf(f) });
    }
    let version = 'ceph';
    try {
      version = runSync('radosgw', ['--version']).trim().split(' (')[0]!;
    } catch {
      /* keep */
    }
    return {
      endpoint: {
        url: get('RGW_ENDPOINT')!,
        creds: { accessKeyId: get('RGW_ACCESS_KEY')!, secretAccessKey: get('RGW_SECRET_KEY')!, region: 'us-east-1' },
        putHeaders: { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'testkey-1' },
      },
      procs,
      tableProcs: ['radosgw', 'ceph-osd'],
      storesData: true,
      info: `${version}, beast, bluestore on a sparse file, SSE-KMS testkey-1 (AES-256-CBC), ${procs.map((p) => p.label.replace('ceph-', '')).join('+')}; CPU and RSS count all of them`,
      async stop() {
        stopSync();
        remove();
      },
    };
  },
};

/** Every target, in the report's order. */
export const ALL_TARGETS: TargetDef[] = [bareTarget(false), bareTarget(true), cofferTarget(false), cofferTarget(true), s3rverTarget(false), s3rverTarget(true), rgwTarget];

/**
 * The order targets run in. This host's speed drifts by minutes (see docs/performance.md,
 * sessions 15-17): Coffer over HTTP runs first, nearest the moment the run was started (a
 * probe found the host fast, say), and each figure a goal or a like-for-like line compares is
 * measured next to its partner: Coffer over HTTP then s3rver, Coffer over HTTPS then s3rver over
 * HTTPS. The bare ceiling and Ceph after them.
 */
export const RUN_ORDER = ['coffer-http', 's3rver', 'coffer-https', 's3rver-https', 'bare-http', 'bare-https', 'rgw'];

/** ALL_TARGETS in RUN_ORDER (test/unit/bench-targets.test.ts checks that each target has its place). */
const IN_RUN_ORDER: TargetDef[] = RUN_ORDER.map((name) => ALL_TARGETS.find((d) => d.name === name)!);

/**
 * BENCH_TARGETS=coffer-http,bare selects by name or name prefix ("bare" = bare-http, bare-https;
 * "s3rver" = s3rver alone). The selection comes back in RUN_ORDER.
 */
export function selectTargets(spec: string | undefined, rgw: boolean): TargetDef[] {
  let list = IN_RUN_ORDER;
  if (spec && spec.trim()) {
    const toks = spec.split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = toks.filter((t) => !ALL_TARGETS.some((d) => d.name === t || d.name.startsWith(t + '-')));
    if (unknown.length) throw new Error(`unknown BENCH_TARGETS entries: ${unknown.join(', ')} (known: ${ALL_TARGETS.map((d) => d.name).join(', ')})`);
    // A target's own name selects it alone ("s3rver"), any other token its prefix ("bare").
    const names = new Set(ALL_TARGETS.map((d) => d.name));
    list = IN_RUN_ORDER.filter((d) => toks.some((t) => d.name === t || (!names.has(t) && d.name.startsWith(t + '-'))));
  }
  return rgw ? list : list.filter((d) => d.name !== 'rgw');
}

/** Results (or anything named by target) in the report's order, ALL_TARGETS'. */
export function reportOrder<T extends { name: string }>(xs: T[]): T[] {
  const rank = (x: T) => ALL_TARGETS.findIndex((d) => d.name === x.name);
  return xs.slice().sort((a, b) => rank(a) - rank(b));
}
