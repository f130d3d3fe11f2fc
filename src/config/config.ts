// The one typed, validated, frozen configuration. Flags win over environment variables
// (COFFER_*), which win over defaults. Secrets (root key, root secret) are never logged.
import { isIP } from 'node:net';
import { parseSpaceFloor, type SpaceFloor } from '../service/free-space.ts';
import { DEFAULT_WORKER_NICE } from '../shared/module-worker.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface Config {
  readonly dataDir: string;
  readonly http: ListenAddress | null;
  readonly https: ListenAddress | null;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Extra DNS names / IPs for the generated server certificate. */
  readonly tlsNames: readonly string[];
  /** Base domain for virtual-hosted-style addressing (bucket.<domain>). */
  readonly domain?: string;
  readonly region: string;
  readonly rootAccessKey?: string;
  readonly rootSecretKey?: string;
  /** Root key text (hex or base64). Secret. */
  readonly rootKey?: string;
  readonly rootKeyFile?: string;
  readonly masterKeyRotationDays: number;
  readonly logLevel: string;
  /** The account's 12-digit id (default: generated at first start, then fixed). */
  readonly accountId?: string;
  /** Declarative identities and bucket policies applied at start: a file path, or inline JSON. */
  readonly bootstrap?: string;
  /** KMS cryptographic operations per second per account (this node); 0 = no quota. */
  readonly kmsQuota: number;
  /** New buckets accept SSE-C writes (default: they block SSE-C, as AWS since April 2026). */
  readonly allowSseCInNewBuckets: boolean;
  /**
   * Addresses of TLS-terminating proxies: a request from one of them with
   * `X-Forwarded-Proto: https` counts as having arrived over TLS (SSE-C, aws:SecureTransport).
   */
  readonly trustProxyTls: readonly string[];
  /** Warn when the data directory's file system has less free space than this. */
  readonly minFreeSpace: SpaceFloor;
  /**
   * Nice steps the worker threads (MD5, AES-GCM) run below the event loop's thread (Linux; 0 =
   * the same priority): on a busy machine the thread every request waits on gets a core first.
   */
  readonly workerNice: number;
}

export interface RawOptions {
  dataDir?: string;
  httpAddress?: string;
  httpsAddress?: string;
  httpsOnly?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsName?: string[];
  domain?: string;
  region?: string;
  rootKeyFile?: string;
  masterKeyRotationDays?: string | number;
  logLevel?: string;
  accountId?: string;
  bootstrap?: string;
  kmsQuota?: string | number;
  allowSseCInNewBuckets?: boolean;
  trustProxyTls?: string[] | string;
  minFreeSpace?: string;
  workerNice?: string | number;
}

export class ConfigError extends Error {}

export function parseAddress(text: string, what: string): ListenAddress | null {
  if (text === 'off' || text === '') return null;
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  if (!m) throw new ConfigError(`${what}: expected HOST:PORT or "off", got "${text}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`${what}: port out of range`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export function loadConfig(opts: RawOptions, env: NodeJS.ProcessEnv = process.env): Config {
  const pick = (flag: string | undefined, name: string, def?: string) => flag ?? env[name] ?? def;
  const httpsOnly = opts.httpsOnly ?? env.COFFER_HTTPS_ONLY === 'true';
  const http = httpsOnly ? null : parseAddress(pick(opts.httpAddress, 'COFFER_HTTP_ADDRESS', '127.0.0.1:9000')!, '--http-address');
  const https = parseAddress(pick(opts.httpsAddress, 'COFFER_HTTPS_ADDRESS', '127.0.0.1:9443')!, '--https-address');
  if (!http && !https) throw new ConfigError('both listeners are off: enable --http-address or --https-address');
  if (httpsOnly && !https) throw new ConfigError('--https-only needs an HTTPS listener');
  const tlsCert = pick(opts.tlsCert, 'COFFER_TLS_CERT');
  const tlsKey = pick(opts.tlsKey, 'COFFER_TLS_KEY');
  if (!!tlsCert !== !!tlsKey) throw new ConfigError('--tls-cert and --tls-key go together');
  const rootAccessKey = env.COFFER_ROOT_ACCESS_KEY || undefined;
  const rootSecretKey = env.COFFER_ROOT_SECRET_KEY || undefined;
  if (!!rootAccessKey !== !!rootSecretKey) {
    throw new ConfigError('COFFER_ROOT_ACCESS_KEY and COFFER_ROOT_SECRET_KEY go together');
  }
  if (rootAccessKey && !/^[A-Za-z0-9]{16,128}$/.test(rootAccessKey)) {
    throw new ConfigError('COFFER_ROOT_ACCESS_KEY: 16 to 128 letters and digits');
  }
  if (rootSecretKey && rootSecretKey.length < 8) throw new ConfigError('COFFER_ROOT_SECRET_KEY: at least 8 characters');
  const days = Number(pick(opts.masterKeyRotationDays?.toString(), 'COFFER_MASTER_KEY_ROTATION_DAYS', '90'));
  if (!Number.isFinite(days) || days < 0) throw new ConfigError('--master-key-rotation-days: a number of days (0 = never)');
  const domain = pick(opts.domain, 'COFFER_DOMAIN')?.trim().toLowerCase().replace(/\.$/, '') || undefined;
  if (domain !== undefined && !/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(domain)) {
    throw new ConfigError(`--domain: a DNS name such as s3.example.com, got "${domain}"`);
  }
  // The generated certificate must serve virtual-hosted-style requests too: <domain>, *.<domain>.
  const names = [
    ...(opts.tlsName ?? []),
    ...(env.COFFER_TLS_NAMES ? env.COFFER_TLS_NAMES.split(',') : []),
    ...(domain ? [domain, `*.${domain}`] : []),
  ]
    .map((s) => s.trim())
    .filter(Boolean);
  const accountId = pick(opts.accountId, 'COFFER_ACCOUNT_ID')?.trim() || undefined;
  if (accountId !== undefined && !/^\d{12}$/.test(accountId)) throw new ConfigError(`--account-id: 12 digits, got "${accountId}"`);
  const bootstrap = pick(opts.bootstrap, 'COFFER_BOOTSTRAP')?.trim() || undefined;
  const region = pick(opts.region, 'COFFER_REGION', 'us-east-1')!;
  if (!/^[a-z0-9-]{1,32}$/.test(region)) throw new ConfigError('--region: lower-case letters, digits and dashes');
  const kmsQuotaText = pick(opts.kmsQuota?.toString(), 'COFFER_KMS_QUOTA', '5500')!.trim();
  const kmsQuota = Number(kmsQuotaText);
  if (!/^\d+$/.test(kmsQuotaText) || kmsQuota > 1_000_000) throw new ConfigError(`--kms-quota: requests per second, a whole number from 0 (no quota) to 1000000, got "${kmsQuotaText}"`);
  const allowSseCInNewBuckets = opts.allowSseCInNewBuckets ?? env.COFFER_ALLOW_SSE_C_IN_NEW_BUCKETS === 'true';
  const proxies = opts.trustProxyTls ?? env.COFFER_TRUST_PROXY_TLS ?? [];
  const trustProxyTls = (Array.isArray(proxies) ? proxies : proxies.split(','))
    .flatMap((p) => p.split(','))
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of trustProxyTls) {
    if (isIP(p) === 0) throw new ConfigError(`--trust-proxy-tls: an IP address of a TLS-terminating proxy, got "${p}"`);
  }
  const floorText = pick(opts.minFreeSpace, 'COFFER_MIN_FREE_SPACE', '5%')!;
  const minFreeSpace = parseSpaceFloor(floorText);
  if (!minFreeSpace) throw new ConfigError(`--min-free-space: a share ("5%") or a size ("10GiB", "500MB"), got "${floorText}"`);
  const niceText = pick(opts.workerNice?.toString(), 'COFFER_WORKER_NICE', String(DEFAULT_WORKER_NICE))!.trim();
  const workerNice = Number(niceText);
  if (!/^\d+$/.test(niceText) || workerNice > 19) throw new ConfigError(`--worker-nice: a whole number of nice steps from 0 to 19, got "${niceText}"`);
  return Object.freeze({
    dataDir: pick(opts.dataDir, 'COFFER_DATA_DIR', './data')!,
    http,
    https,
    tlsCert,
    tlsKey,
    tlsNames: Object.freeze(names),
    domain,
    region,
    rootAccessKey,
    rootSecretKey,
    rootKey: env.COFFER_ROOT_KEY || undefined,
    rootKeyFile: pick(opts.rootKeyFile, 'COFFER_ROOT_KEY_FILE'),
    masterKeyRotationDays: days,
    logLevel: pick(opts.logLevel, 'COFFER_LOG_LEVEL', 'info')!,
    accountId,
    bootstrap,
    kmsQuota,
    allowSseCInNewBuckets,
    trustProxyTls: Object.freeze(trustProxyTls),
    minFreeSpace,
    workerNice,
  });
}
