// `coffer server` as a user runs it: --help documents every flag and environment variable; a
// first start on an empty data directory (ports 0, no root credentials or root key in the
// environment) prints the endpoints, the CA path, the generated credentials and a loud warning
// about the generated root key file (mode 0600); a second start reuses certificate and
// credentials; --https-only serves no HTTP; the AWS CLI trusts the printed CA; an operator's own
// --tls-cert/--tls-key is what gets served.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { tempDir } from '../helpers/coffer.ts';

const run = promisify(execFile);
const dirs: string[] = [];
const children: ChildProcess[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function freshDir(prefix: string): string {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
}

/** The environment without any COFFER_* variable (no root key, no root credentials). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('COFFER_')) env[k] = v;
  return { ...env, ...extra };
}

interface Started {
  proc: ChildProcess;
  out: () => string;
  banner: string;
  http?: string;
  https?: string;
  caPath?: string;
  accessKey: string;
  secret?: string;
  stop(): Promise<void>;
}

/** Runs `coffer server ARGS` and waits for the whole start banner. */
async function server(args: string[], env: NodeJS.ProcessEnv = cleanEnv()): Promise<Started> {
  const proc = spawn(process.execPath, ['bin/coffer.js', 'server', '--log-level', 'warn', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const banner = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 30_000);
    const check = () => {
      const i = out.indexOf('Coffer is running.');
      // The banner is one write that ends with an empty line.
      if (i >= 0 && out.slice(i).includes('\n\n')) {
        clearTimeout(timer);
        resolve(out.slice(i));
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}):\n${out}`));
    });
  });
  const field = (re: RegExp) => re.exec(banner)?.[1];
  const http = field(/S3 endpoint \(HTTP\):\s+(\S+)/);
  const https = field(/S3 endpoint \(HTTPS\):\s+(\S+)/);
  const caPath = field(/CA certificate:\s+(\S+)/);
  const secret = field(/Secret access key:\s+([A-Za-z0-9+/=]{20,})\s*$/m);
  return {
    proc,
    out: () => out,
    banner,
    ...(http ? { http } : {}),
    ...(https ? { https } : {}),
    ...(caPath ? { caPath } : {}),
    accessKey: field(/Access key id:\s+(\S+)/)!,
    ...(secret ? { secret } : {}),
    async stop() {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

function s3(endpoint: string, accessKeyId: string, secretAccessKey: string, ca?: string | Buffer): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
    ...(ca ? { requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca }) }) } : {}),
  });
}

function findCli(): string | undefined {
  for (const p of ['/usr/bin/aws', `${process.env.HOME}/.pyenv/shims/aws`, '/usr/local/bin/aws']) if (existsSync(p)) return p;
  return undefined;
}

/** The certificate the server at `url` presents (whatever it is, trusted or not). */
function servedCertificate(url: string): Promise<X509Certificate> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false, servername: 'localhost' }, () => {
      const raw = sock.getPeerCertificate().raw;
      sock.end();
      resolve(new X509Certificate(raw));
    });
    sock.on('error', reject);
  });
}

describe('coffer server --help', () => {
  test('documents every flag and the environment variables', async () => {
    const { stdout } = await run(process.execPath, ['bin/coffer.js', 'server', '--help'], { env: cleanEnv() });
    for (const flag of [
      '--data-dir',
      '--root-key-file',
      '--http-address',
      '--https-address',
      '--https-only',
      '--tls-cert',
      '--tls-key',
      '--tls-name',
      '--domain',
      '--region',
      '--master-key-rotation-days',
      '--log-level',
    ]) {
      assert.match(stdout, new RegExp(`${flag}\\b`), `--help mentions ${flag}`);
    }
    for (const env of [
      'COFFER_DATA_DIR',
      'COFFER_ROOT_KEY_FILE',
      'COFFER_ROOT_KEY',
      'COFFER_ROOT_ACCESS_KEY',
      'COFFER_ROOT_SECRET_KEY',
      'COFFER_HTTP_ADDRESS',
      'COFFER_HTTPS_ADDRESS',
      'COFFER_HTTPS_ONLY',
      'COFFER_TLS_CERT',
      'COFFER_TLS_KEY',
      'COFFER_TLS_NAMES',
      'COFFER_DOMAIN',
      'COFFER_REGION',
      'COFFER_MASTER_KEY_ROTATION_DAYS',
      'COFFER_LOG_LEVEL',
    ]) {
      assert.match(stdout, new RegExp(`\\b${env}\\b`), `--help mentions ${env}`);
    }
  });

  test('a bad flag value is a one-line error and exit status 2', async () => {
    const r = await run(process.execPath, ['bin/coffer.js', 'server', '--data-dir', freshDir('coffer-cli-bad-'), '--http-address', 'nonsense'], { env: cleanEnv() }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal((r as { code: number }).code, 2);
    assert.match((r as { stderr: string }).stderr, /^coffer: --http-address: expected HOST:PORT/);
  });
});

describe('first and second start on a fresh data directory', () => {
  const dataDir = freshDir('coffer-cli-');
  let first: Started;

  test('first start prints endpoints, CA path, credentials and the root key warning', async () => {
    first = await server(['--data-dir', dataDir, '--http-address', '127.0.0.1:0', '--https-address', '127.0.0.1:0']);
    assert.match(first.http ?? '', /^http:\/\/127\.0\.0\.1:\d+$/, first.banner);
    assert.match(first.https ?? '', /^https:\/\/127\.0\.0\.1:\d+$/, first.banner);
    assert.equal(first.caPath, join(dataDir, 'tls', 'ca.crt'));
    assert.match(readFileSync(first.caPath!, 'utf8'), /^-----BEGIN CERTIFICATE-----/);
    assert.match(first.accessKey, /^[A-Z0-9]{16,}$/);
    assert.ok(first.secret, `the generated secret is printed:\n${first.banner}`);
    assert.match(first.banner, /WARNING: the root key is a file inside the data directory/);
    const keyFile = join(dataDir, 'root.key');
    assert.ok(first.banner.includes(keyFile), 'the warning names the root key file');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'root key file mode');
    assert.equal(statSync(join(dataDir, 'tls', 'ca.key')).mode & 0o777, 0o600, 'CA key file mode');

    // The printed credentials and CA work, over HTTPS and HTTP.
    const c = s3(first.https!, first.accessKey, first.secret!, readFileSync(first.caPath!));
    await c.send(new CreateBucketCommand({ Bucket: 'cli-bucket' }));
    c.destroy();
    const h = s3(first.http!, first.accessKey, first.secret!);
    assert.ok((await h.send(new ListBucketsCommand({}))).Buckets!.some((b) => b.Name === 'cli-bucket'));
    h.destroy();
  });

  test('the AWS CLI lists buckets over HTTPS with --ca-bundle and the printed credentials', { skip: findCli() === undefined && 'no AWS CLI' }, async () => {
    const home = freshDir('coffer-cli-home-');
    const { stdout } = await run(findCli()!, ['s3api', 'list-buckets', '--endpoint-url', first.https!, '--ca-bundle', first.caPath!], {
      env: {
        PATH: process.env.PATH,
        HOME: home,
        AWS_ACCESS_KEY_ID: first.accessKey,
        AWS_SECRET_ACCESS_KEY: first.secret!,
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_CONFIG_FILE: join(home, 'none'),
        AWS_SHARED_CREDENTIALS_FILE: join(home, 'none'),
        AWS_PAGER: '',
      },
    });
    assert.deepEqual(
      JSON.parse(stdout).Buckets.map((b: { Name: string }) => b.Name),
      ['cli-bucket'],
    );
  });

  test('a second start reuses the certificate and credentials and does not print the secret', async () => {
    const ca = readFileSync(join(dataDir, 'tls', 'ca.crt'), 'utf8');
    const cert = readFileSync(join(dataDir, 'tls', 'server.crt'), 'utf8');
    const rootKey = readFileSync(join(dataDir, 'root.key'), 'utf8');
    await first.stop();
    const second = await server(['--data-dir', dataDir, '--http-address', '127.0.0.1:0', '--https-address', '127.0.0.1:0']);
    try {
      assert.equal(second.accessKey, first.accessKey);
      assert.equal(second.secret, undefined, second.banner);
      assert.ok(!second.out().includes(first.secret!), 'the secret is not printed again');
      assert.match(second.banner, /WARNING: the root key is a file inside the data directory/);
      assert.equal(readFileSync(join(dataDir, 'tls', 'ca.crt'), 'utf8'), ca);
      assert.equal(readFileSync(join(dataDir, 'tls', 'server.crt'), 'utf8'), cert);
      assert.equal(readFileSync(join(dataDir, 'root.key'), 'utf8'), rootKey);
      const served = await servedCertificate(second.https!);
      assert.equal(served.fingerprint256, new X509Certificate(cert).fingerprint256);
      const c = s3(second.https!, second.accessKey, first.secret!, ca);
      assert.ok((await c.send(new ListBucketsCommand({}))).Buckets!.some((b) => b.Name === 'cli-bucket'));
      c.destroy();
    } finally {
      await second.stop();
    }
  });
});

describe('listener and certificate options', () => {
  test('--https-only serves no HTTP', async () => {
    const dataDir = freshDir('coffer-cli-https-only-');
    const srv = await server(['--data-dir', dataDir, '--https-only', '--http-address', '127.0.0.1:0', '--https-address', '127.0.0.1:0']);
    try {
      assert.equal(srv.http, undefined, srv.banner);
      assert.ok(srv.https);
      assert.ok(!/\(HTTP\)/.test(srv.banner));
      // Plain HTTP to the only port gets no S3 answer.
      const port = Number(new URL(srv.https!).port);
      const plain = await fetch(`http://127.0.0.1:${port}/`).then(
        (r) => r.status,
        () => 'refused',
      );
      assert.notEqual(plain, 403);
      const c = s3(srv.https!, srv.accessKey, srv.secret!, readFileSync(srv.caPath!));
      await c.send(new ListBucketsCommand({}));
      c.destroy();
    } finally {
      await srv.stop();
    }
    // The same through the environment.
    const viaEnv = await server(['--data-dir', dataDir, '--https-address', '127.0.0.1:0'], cleanEnv({ COFFER_HTTPS_ONLY: 'true', COFFER_HTTP_ADDRESS: '127.0.0.1:0' }));
    try {
      assert.equal(viaEnv.http, undefined, viaEnv.banner);
    } finally {
      await viaEnv.stop();
    }
  });

  test('TLS: 1.2 at least; AES-128-GCM chosen when offered (clients list AES-256-GCM first), any offered suite of the default list accepted', async () => {
    const srv = await server(['--data-dir', freshDir('coffer-cli-tls-'), '--http-address', 'off', '--https-address', '127.0.0.1:0']);
    const u = new URL(srv.https!);
    const handshake = (opts: tls.ConnectionOptions) =>
      new Promise<{ cipher: string; protocol: string | null }>((resolve, reject) => {
        const sock = tls.connect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false, servername: 'localhost', ...opts }, () => {
          const r = { cipher: sock.getCipher().name, protocol: sock.getProtocol() };
          sock.end();
          resolve(r);
        });
        sock.on('error', reject);
      });
    try {
      // node's own client order (as OpenSSL's): TLS_AES_256_GCM_SHA384 first.
      assert.equal(tls.DEFAULT_CIPHERS.split(':')[0], 'TLS_AES_256_GCM_SHA384');
      assert.deepEqual(await handshake({}), { cipher: 'TLS_AES_128_GCM_SHA256', protocol: 'TLSv1.3' });
      assert.deepEqual(await handshake({ ciphers: 'TLS_AES_256_GCM_SHA384' }), { cipher: 'TLS_AES_256_GCM_SHA384', protocol: 'TLSv1.3' });
      assert.deepEqual(await handshake({ maxVersion: 'TLSv1.2' }), { cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256', protocol: 'TLSv1.2' });
      await assert.rejects(handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }));
    } finally {
      await srv.stop();
    }
  });

  test('--tls-cert/--tls-key: the operator certificate is served', async () => {
    const dataDir = freshDir('coffer-cli-own-cert-');
    const certPath = join(dataDir, '..', `${dataDir.split('/').pop()}-own.crt`);
    const keyPath = join(dataDir, '..', `${dataDir.split('/').pop()}-own.key`);
    dirs.push(certPath, keyPath);
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=coffer operator test', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', keyPath, '-out', certPath,
    ]);
    const own = readFileSync(certPath);
    const srv = await server(['--data-dir', dataDir, '--http-address', 'off', '--https-address', '127.0.0.1:0', '--tls-cert', certPath, '--tls-key', keyPath]);
    try {
      assert.equal(srv.caPath, undefined, 'no generated CA to trust');
      assert.ok(!existsSync(join(dataDir, 'tls', 'ca.crt')), 'no CA generated');
      const served = await servedCertificate(srv.https!);
      assert.equal(served.fingerprint256, new X509Certificate(own).fingerprint256);
      assert.match(served.subject, /CN=coffer operator test/);
      const c = s3(srv.https!, srv.accessKey, srv.secret!, own);
      await c.send(new ListBucketsCommand({}));
      c.destroy();
      assert.equal(createHash('sha256').update(readFileSync(certPath)).digest('hex'), createHash('sha256').update(own).digest('hex'));
    } finally {
      await srv.stop();
    }
  });
});
