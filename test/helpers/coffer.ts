// Test harness: a real Coffer on 127.0.0.1 port 0 (HTTP and HTTPS) in a fresh data directory,
// in-process or as a child process (for kill -9 tests), and real AWS SDK clients for it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { loadConfig, type RawOptions } from '../../src/config/config.ts';
import { startCoffer, type RunningCoffer } from '../../src/main.ts';
import { createLogger, type Logger } from '../../src/shared/logger.ts';

export const ACCESS_KEY = 'AKTESTCOFFER00000001';
export const SECRET_KEY = 'test-secret-key-for-coffer-0000000000000';
export const ROOT_KEY = '5f'.repeat(32);

/** Temporary directories made by this test file's process: removed when it exits. */
const temporary: string[] = [];
process.on('exit', () => {
  for (const d of temporary) rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the test file's process exits. */
export function tempDir(prefix = 'coffer-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temporary.push(d);
  return d;
}

export interface TestServer {
  coffer: RunningCoffer;
  dataDir: string;
  httpUrl: string;
  httpsUrl: string;
  caPath: string;
  s3: S3Client;
  s3s: S3Client;
  stop(): Promise<void>;
}

export function clientFor(endpoint: string, caPath?: string, extra: Record<string, unknown> = {}): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    ...(caPath
      ? { requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca: readFileSync(caPath), keepAlive: true }) }) }
      : {}),
    ...extra,
  });
}

/** A KMS client for Coffer's endpoint (the root credential unless `credentials` is given). */
export function kmsClientFor(
  endpoint: string,
  opts: { caPath?: string; credentials?: { accessKeyId: string; secretAccessKey: string }; region?: string } = {},
): KMSClient {
  return new KMSClient({
    endpoint,
    region: opts.region ?? 'us-east-1',
    credentials: opts.credentials ?? { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    ...(opts.caPath ? { requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca: readFileSync(opts.caPath), keepAlive: true }) }) } : {}),
  });
}

export interface TestServerOptions {
  dataDir?: string;
  env?: Record<string, string>;
  /** Extra configuration (e.g. `{ domain: 'coffer.test' }`); data dir and listeners are set here. */
  config?: RawOptions;
  /** The server's logger (default: silent, or COFFER_TEST_LOG's level on stdout). */
  log?: Logger;
  /** The clock of key lifecycles (KMS deletion windows, rotation, Bucket Keys). */
  now?: () => number;
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? tempDir();
  const config = loadConfig(
    { ...opts.config, dataDir, httpAddress: '127.0.0.1:0', httpsAddress: '127.0.0.1:0' },
    { COFFER_ROOT_ACCESS_KEY: ACCESS_KEY, COFFER_ROOT_SECRET_KEY: SECRET_KEY, COFFER_ROOT_KEY: ROOT_KEY, ...opts.env },
  );
  const coffer = await startCoffer(config, { log: opts.log ?? createLogger(process.env.COFFER_TEST_LOG ?? 'silent'), ...(opts.now ? { now: opts.now } : {}) });
  const httpUrl = `http://127.0.0.1:${coffer.listeners.http!.port}`;
  const httpsUrl = `https://localhost:${coffer.listeners.https!.port}`;
  const caPath = coffer.tls!.caPath!;
  const s3 = clientFor(httpUrl);
  const s3s = clientFor(httpsUrl, caPath);
  return {
    coffer,
    dataDir,
    httpUrl,
    httpsUrl,
    caPath,
    s3,
    s3s,
    async stop() {
      s3.destroy();
      s3s.destroy();
      await coffer.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ChildServer {
  proc: ChildProcess;
  httpUrl: string;
  httpsUrl: string;
  output: () => string;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs `coffer server` as a child process on port 0 and waits for its banner. */
export async function startChildServer(dataDir: string, env: Record<string, string> = {}): Promise<ChildServer> {
  const proc = spawn(process.execPath, ['bin/coffer.js', 'server', '--data-dir', dataDir, '--http-address', '127.0.0.1:0', '--https-address', '127.0.0.1:0', '--log-level', 'warn'], {
    env: { ...process.env, COFFER_ROOT_ACCESS_KEY: ACCESS_KEY, COFFER_ROOT_SECRET_KEY: SECRET_KEY, COFFER_ROOT_KEY: ROOT_KEY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const ready = await new Promise<{ http: string; https: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + out)), 30_000);
    const check = () => {
      const h = /S3 endpoint \(HTTP\):\s+(\S+)/.exec(out);
      const s = /S3 endpoint \(HTTPS\):\s+(\S+)/.exec(out);
      if (h && s) {
        clearTimeout(timer);
        resolve({ http: h[1]!, https: s[1]!.replace('127.0.0.1', 'localhost') });
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => reject(new Error(`server exited (${code}):\n${out}`)));
  });
  return {
    proc,
    httpUrl: ready.http,
    httpsUrl: ready.https,
    output: () => out,
    async kill9() {
      proc.kill('SIGKILL');
      await exited;
    },
    async stop() {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}
