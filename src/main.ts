// Composition root: config → adapters → services → listeners. The only file that names
// concrete adapters. `startCoffer` is what `coffer server` runs and what tests start on port 0.
import { existsSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ConfigError, type Config } from './config/config.ts';
import { startListeners, type Listeners } from './http/server.ts';
import { loadOrCreateTls, type TlsMaterial } from './http/tls.ts';
import { createKmsHandler, isKmsRequest } from './kms/api/handler.ts';
import { KmsQuota } from './kms/quota.ts';
import { KmsService } from './kms/service.ts';
import { createS3Handler, type RequestHandler } from './s3api/app.ts';
import { Authorizer } from './service/authorization.ts';
import { loadOwner, loadRootCredentials, loadStoredRootCredentials, type RootCredentials } from './service/credentials.ts';
import { IdentityService, loadAccountId } from './service/identities.ts';
import { MasterKeyService } from './service/master-keys.ts';
import { EncryptionService } from './service/encryption.ts';
import { ObjectService } from './service/objects.ts';
import { PolicyService } from './service/policies.ts';
import { loadRootKey, verifyRootKey, type LoadedRootKey } from './service/root-key.ts';
import { watchFreeSpace } from './service/free-space.ts';
import { createLogger, type Logger } from './shared/logger.ts';
import { setWorkerNice } from './shared/module-worker.ts';
import { FsBlobStore } from './storage/fs-blob/fs-blob-store.ts';
import { SqliteMetadataStore } from './storage/sqlite-meta/sqlite-metadata-store.ts';
import type { MetadataStore } from './storage/ports.ts';

export interface Stores {
  meta: MetadataStore;
  blobs: FsBlobStore;
  root: LoadedRootKey;
  masterKeys: MasterKeyService;
}

/** Opens the data directory's stores and keys (used by the server and the admin commands). */
export async function openStores(config: Config): Promise<Stores> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const root = await loadRootKey(config);
  const meta = new SqliteMetadataStore(join(config.dataDir, 'metadata.db'));
  try {
    await verifyRootKey(meta, root.key);
    const blobs = new FsBlobStore(config.dataDir);
    await blobs.init();
    const masterKeys = new MasterKeyService(meta, root.key);
    await masterKeys.init();
    return { meta, blobs, root, masterKeys };
  } catch (e) {
    await meta.close();
    throw e;
  }
}

/**
 * The data directory's metadata store alone, without the root key: the audit commands read and
 * verify the KMS audit trail with it (the trail holds nothing secret).
 */
export function openMetadataStore(config: Config): MetadataStore {
  const path = join(config.dataDir, 'metadata.db');
  if (!existsSync(path)) throw new ConfigError(`no Coffer data directory at ${config.dataDir} (${path} does not exist)`);
  return new SqliteMetadataStore(path);
}

export interface AccessServices {
  accountId: string;
  identities: IdentityService;
  policies: PolicyService;
  authorizer: Authorizer;
}

/**
 * Identities, policies and the authorizer over opened stores. `rootCredential` defaults to the
 * stored one (admin commands); the server passes the one it loaded.
 */
export async function accessServices(
  stores: Stores,
  opts: { accountId?: string; rootCredential?: { accessKeyId: string; secretKey: string }; log?: Logger } = {},
): Promise<AccessServices> {
  const accountId = await loadAccountId(stores.meta, opts.accountId);
  const rootCredential = opts.rootCredential ?? (await loadStoredRootCredentials(stores.meta, stores.root.key));
  const identities = new IdentityService(stores.meta, stores.root.key, accountId, rootCredential);
  const policies = new PolicyService(stores.meta);
  const owner = await loadOwner(stores.meta);
  const authorizer = new Authorizer(policies, { ownerCanonicalId: owner.id, ...(opts.log ? { log: opts.log } : {}) });
  return { accountId, identities, policies, authorizer };
}

export interface RunningCoffer {
  config: Config;
  listeners: Listeners;
  tls?: TlsMaterial;
  credentials: RootCredentials;
  root: LoadedRootKey;
  stores: Stores;
  objects: ObjectService;
  encryption: EncryptionService;
  access: AccessServices;
  kms: KmsService;
  log: Logger;
  /** Resolves when the background re-wrap job is idle. */
  rewrapIdle(): Promise<void>;
  close(): Promise<void>;
}

const RELOAD_MS = 15_000;
/** How often a server publishes its KMS quota status (when it changed). */
const QUOTA_STATUS_MS = 2_000;
/** The setting `coffer kms quota` reads: the newest status a server published. */
export const QUOTA_STATUS_SETTING = 'kms-quota-status';

/** `now`: the clock of key lifecycles (KMS deletion windows and rotation, Bucket Key lifetimes); tests inject one. */
export async function startCoffer(config: Config, opts: { log?: Logger; now?: () => number } = {}): Promise<RunningCoffer> {
  const log = opts.log ?? createLogger(config.logLevel);
  setWorkerNice(config.workerNice);
  const stores = await openStores(config);
  const { meta, blobs, masterKeys } = stores;
  // The KMS is built once identities are loaded (below); S3 reaches it through this reference.
  const kmsRef: { kms?: KmsService } = {};
  const encryption = new EncryptionService({
    masterKeys,
    get kms() {
      return kmsRef.kms;
    },
    ...(opts.now ? { now: opts.now } : {}),
  });
  const objects = new ObjectService(meta, blobs, encryption, log);
  const swept = await objects.sweepOrphans();
  if (swept.incomplete || swept.orphans) log.info(swept, 'swept leftovers of interrupted writes');
  const credentials = await loadRootCredentials(meta, stores.root.key, { accessKeyId: config.rootAccessKey, secretKey: config.rootSecretKey });
  const owner = await loadOwner(meta);
  const access = await accessServices(stores, {
    ...(config.accountId ? { accountId: config.accountId } : {}),
    rootCredential: { accessKeyId: credentials.accessKeyId, secretKey: credentials.secretKey },
    log,
  });
  if (config.bootstrap) {
    // Loaded only when used (it brings zod, ~14 MiB of memory).
    const { applyBootstrap, readBootstrap } = await import('./service/bootstrap.ts');
    const summary = await applyBootstrap(readBootstrap(config.bootstrap), {
      meta,
      identities: access.identities,
      policies: access.policies,
      region: config.region,
      allowSseCInNewBuckets: config.allowSseCInNewBuckets,
    });
    log.info(summary, 'applied the bootstrap');
  }
  const tls = config.https ? await loadOrCreateTls(config.dataDir, config.tlsNames, config.tlsCert, config.tlsKey) : undefined;

  const kms = new KmsService({
    store: meta,
    root: stores.root.key,
    accountId: access.accountId,
    region: config.region,
    identityPolicies: async (p) => (p.type === 'IAMUser' && p.userName ? (await access.policies.userPolicies(p.userName)).map((x) => x.policy) : []),
    ...(config.kmsQuota > 0 ? { quota: new KmsQuota({ limit: config.kmsQuota }) } : {}),
    log,
    ...(opts.now ? { now: opts.now } : {}),
  });
  kmsRef.kms = kms;
  const kmsHandler = createKmsHandler({ kms, credentials: (id) => access.identities.lookup(id), region: config.region, log });
  const s3Handler = createS3Handler({
    meta,
    objects,
    log,
    owner,
    region: config.region,
    ...(config.domain ? { domain: config.domain } : {}),
    credentials: (id) => access.identities.lookup(id),
    authorizer: access.authorizer,
    allowSseCInNewBuckets: config.allowSseCInNewBuckets,
    trustProxyTls: config.trustProxyTls,
    policies: access.policies,
  });
  // One endpoint, two APIs: X-Amz-Target: TrentService.* is the KMS JSON API, everything else S3.
  const handler: RequestHandler = (req, res, secure) => (isKmsRequest(req) ? kmsHandler(req, res, secure) : s3Handler(req, res, secure));
  const listeners = await startListeners({ handler, http: config.http, https: config.https, ...(tls ? { tls } : {}), log });

  // Background: pick up rotations made elsewhere, rotate when due, re-wrap old data keys.
  const periodMs = config.masterKeyRotationDays * 86_400_000;
  let rewrapping: Promise<void> = Promise.resolve();
  let stopped = false;
  const abort = new AbortController();
  const rewrap = () => {
    rewrapping = rewrapping.then(async () => {
      if (stopped) return;
      try {
        const n = await masterKeys.rewrapAll({ signal: abort.signal });
        if (n) log.info({ rewrapped: n, version: masterKeys.newestVersion() }, 're-wrapped data keys to the newest master key');
      } catch (err) {
        log.error({ err }, 're-wrap failed; it resumes at the next tick');
      }
    });
    return rewrapping;
  };
  const tick = async () => {
    try {
      const v = await masterKeys.rotateIfDue(periodMs);
      if (v) log.info({ version: v }, 'rotated the SSE-S3 master key (period elapsed)');
      await masterKeys.reload();
    } catch (err) {
      log.error({ err }, 'master key maintenance failed');
    }
    try {
      const due = await kms.maintain();
      if (due.deleted || due.rotated) log.info(due, 'KMS keys: deletion windows ended (material destroyed) / automatic rotations');
    } catch (err) {
      log.error({ err }, 'KMS key maintenance failed');
    }
    void rewrap();
  };
  await tick();
  const timer = setInterval(() => void tick(), RELOAD_MS);
  timer.unref();
  // The KMS quota's current rate and throttle counts, for `coffer kms quota` (another process).
  let lastQuota = '';
  const publishQuota = async () => {
    const status = kms.quotaStatus();
    const text = JSON.stringify(status.accounts);
    if (text === lastQuota) return;
    lastQuota = text;
    try {
      await meta.setSetting(QUOTA_STATUS_SETTING, JSON.stringify({ at: Date.now(), node: `${hostname()}:${process.pid}`, ...status }));
    } catch (err) {
      log.warn({ err }, 'could not publish the KMS quota status');
    }
  };
  const quotaTimer = setInterval(() => void publishQuota(), QUOTA_STATUS_MS);
  quotaTimer.unref();
  const space = watchFreeSpace(config.dataDir, config.minFreeSpace, log);

  return {
    config,
    listeners,
    ...(tls ? { tls } : {}),
    credentials,
    root: stores.root,
    stores,
    objects,
    encryption,
    access,
    kms,
    log,
    rewrapIdle: () => rewrap(),
    async close() {
      stopped = true;
      clearInterval(timer);
      clearInterval(quotaTimer);
      space.stop();
      abort.abort();
      await listeners.close();
      await rewrapping;
      await blobs.close();
      await meta.close();
    },
  };
}
