// Composition root: config → adapters → services → listeners. The only file that names
// concrete adapters. `startCoffer` is what `coffer server` runs and what tests start on port 0.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config/config.ts';
import { startListeners, type Listeners } from './http/server.ts';
import { loadOrCreateTls, type TlsMaterial } from './http/tls.ts';
import { createS3Handler } from './s3api/app.ts';
import { loadOwner, loadRootCredentials, type RootCredentials } from './service/credentials.ts';
import { MasterKeyService } from './service/master-keys.ts';
import { ObjectService } from './service/objects.ts';
import { loadRootKey, verifyRootKey, type LoadedRootKey } from './service/root-key.ts';
import { createLogger, type Logger } from './shared/logger.ts';
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

export interface RunningCoffer {
  config: Config;
  listeners: Listeners;
  tls?: TlsMaterial;
  credentials: RootCredentials;
  root: LoadedRootKey;
  stores: Stores;
  objects: ObjectService;
  log: Logger;
  /** Resolves when the background re-wrap job is idle. */
  rewrapIdle(): Promise<void>;
  close(): Promise<void>;
}

const RELOAD_MS = 15_000;

export async function startCoffer(config: Config, opts: { log?: Logger } = {}): Promise<RunningCoffer> {
  const log = opts.log ?? createLogger(config.logLevel);
  const stores = await openStores(config);
  const { meta, blobs, masterKeys } = stores;
  const objects = new ObjectService(meta, blobs, masterKeys, log);
  const swept = await objects.sweepOrphans();
  if (swept.incomplete || swept.orphans) log.info(swept, 'swept leftovers of interrupted writes');
  const credentials = await loadRootCredentials(meta, stores.root.key, { accessKeyId: config.rootAccessKey, secretKey: config.rootSecretKey });
  const owner = await loadOwner(meta);
  const tls = config.https ? await loadOrCreateTls(config.dataDir, config.tlsNames, config.tlsCert, config.tlsKey) : undefined;

  const handler = createS3Handler({
    meta,
    objects,
    log,
    owner,
    region: config.region,
    ...(config.domain ? { domain: config.domain } : {}),
    credentials: (id) =>
      id === credentials.accessKeyId ? { accessKeyId: id, secretKey: credentials.secretKey, principal: { type: 'root' } } : undefined,
  });
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
    void rewrap();
  };
  await tick();
  const timer = setInterval(() => void tick(), RELOAD_MS);
  timer.unref();

  return {
    config,
    listeners,
    ...(tls ? { tls } : {}),
    credentials,
    root: stores.root,
    stores,
    objects,
    log,
    rewrapIdle: () => rewrap(),
    async close() {
      stopped = true;
      clearInterval(timer);
      abort.abort();
      await listeners.close();
      await rewrapping;
      await meta.close();
    },
  };
}
