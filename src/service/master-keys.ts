// SSE-S3 master keys: versioned, sealed under the root key, cached unsealed in memory. The
// newest version seals new data keys; rotation adds a version (on a period and on demand);
// the re-wrap job moves sealed data keys to the newest version without touching object data.
// Spec: docs/key-hierarchy.md.
import { generateDataKey, sealDataKey, sealMasterKey, unsealDataKey, unsealMasterKey } from '../crypto/hierarchy.ts';
import type { DataKeyBinding } from '../crypto/envelope.ts';
import { KeyCache } from '../crypto/key-cache.ts';
import { SecretKey } from '../crypto/keys.ts';
import type { MasterKeyRecord, MetadataStore, RewrapItem, SseRecord } from '../storage/ports.ts';

export interface MasterKeyInfo {
  version: number;
  createdAt: number;
  retiredAt?: number;
  /** Object versions and uploads whose data key this version seals. */
  seals: number;
  newest: boolean;
}

/**
 * Opened SSE-S3 data keys kept (MasterKeyService.opened, crypto/key-cache.ts): ~0.5 KB each
 * (its id in a Map, a slot of 128 bytes), ~16 MiB when full. Keeping 2,048 made 4 KiB GETs of
 * kept objects 12.7% faster (session 9; the unseal, an AES-GCM context and a base64 decode, cost
 * about a tenth of a small GET) and their stream keys 7.9% more (session 10); but the bench's
 * 4 KiB GET reads the ~20,000 objects its PUT wrote, in order, and an LRU of 2,048 held none of
 * them when read (and none was kept when written). 32,768 holds such a set: 4 KiB GETs of
 * 20,000 objects +32.4% (95% CI +25.4 .. +39.3; docs/performance.md, "Session 11"). Opened data
 * keys add little exposure: the master keys that open all of them are in the same memory.
 */
const OPENED_MAX = 32_768;

/** What an opened data key is kept under: everything it was opened from. */
function openedId(sse: SseRecord, binding: Omit<DataKeyBinding, 'masterKeyVersion' | 'mode'>): string {
  return `${sse.masterKeyVersion}\n${binding.bucket}\n${binding.key}\n${binding.versionId}\n${sse.sealedKey}`;
}

export class MasterKeyService {
  private keys = new Map<number, SecretKey>();
  private newest = 0;
  private newestCreatedAt = 0;

  constructor(
    private readonly meta: MetadataStore,
    private readonly root: SecretKey,
    private readonly now: () => number = Date.now,
  ) {}

  /** Loads every version; creates version 1 on first start. */
  async init(): Promise<void> {
    await this.reload();
    if (this.newest === 0) await this.rotate();
  }

  /** Re-reads the versions (another process or node may have rotated). */
  async reload(): Promise<void> {
    const records = await this.meta.listMasterKeys();
    for (const r of records) {
      if (r.retiredAt !== undefined) {
        if (this.keys.has(r.version)) this.forgetOpened(r.version);
        this.keys.get(r.version)?.zero();
        this.keys.delete(r.version);
        continue;
      }
      if (!this.keys.has(r.version)) this.keys.set(r.version, unsealMasterKey(this.root, Buffer.from(r.sealed, 'base64'), r.version));
    }
    const live = records.filter((r) => r.retiredAt === undefined);
    const top = live[live.length - 1];
    this.newest = top?.version ?? 0;
    this.newestCreatedAt = top?.createdAt ?? 0;
  }

  newestVersion(): number {
    return this.newest;
  }

  /** Adds a new newest version. Safe against a concurrent rotation elsewhere. */
  async rotate(): Promise<number> {
    for (;;) {
      await this.reload();
      const version = Math.max(this.newest, ...(await this.meta.listMasterKeys()).map((r) => r.version), 0) + 1;
      const key = SecretKey.generate();
      const rec: MasterKeyRecord = { version, sealed: sealMasterKey(this.root, key, version).toString('base64'), createdAt: this.now() };
      const added = await this.meta.addMasterKey(rec);
      key.zero();
      if (added) {
        await this.reload();
        return version;
      }
    }
  }

  /** Rotates if the newest version is older than `periodMs` (0 = never). Returns the new version or 0. */
  async rotateIfDue(periodMs: number): Promise<number> {
    if (periodMs <= 0) return 0;
    await this.reload();
    if (this.now() - this.newestCreatedAt < periodMs) return 0;
    return this.rotate();
  }

  private async keyFor(version: number): Promise<SecretKey> {
    let k = this.keys.get(version);
    if (!k) {
      await this.reload();
      k = this.keys.get(version);
    }
    if (!k) throw new Error(`SSE-S3 master key version ${version} is not available`);
    return k;
  }

  /**
   * A fresh data key for a new object version (or upload), sealed under the newest version. It
   * is kept opened (as openDataKey keeps what it opens) for the object's first read, with the
   * stream key the write derives: objects are often read soon after they are written.
   */
  newDataKey(binding: Omit<DataKeyBinding, 'masterKeyVersion' | 'mode'>): { dataKey: SecretKey; sse: SseRecord } {
    const version = this.newest;
    const mk = this.keys.get(version);
    if (!mk) throw new Error('no SSE-S3 master key loaded');
    const fresh = generateDataKey();
    try {
      const sealed = sealDataKey(mk, fresh, { ...binding, mode: 'SSE-S3', masterKeyVersion: version });
      const sse: SseRecord = { mode: 'SSE-S3', masterKeyVersion: version, sealedKey: sealed.toString('base64') };
      return { dataKey: this.opened.put(openedId(sse, binding), fresh), sse };
    } finally {
      fresh.zero();
    }
  }

  /** Seals an existing data key (a re-key: its object's data stays as it is) under the newest version. */
  sealExisting(dataKey: SecretKey, binding: Omit<DataKeyBinding, 'masterKeyVersion' | 'mode'>): SseRecord {
    const version = this.newest;
    const mk = this.keys.get(version);
    if (!mk) throw new Error('no SSE-S3 master key loaded');
    const sealed = sealDataKey(mk, dataKey, { ...binding, mode: 'SSE-S3', masterKeyVersion: version });
    return { mode: 'SSE-S3', masterKeyVersion: version, sealedKey: sealed.toString('base64') };
  }

  /**
   * Data keys opened lately, by everything they were opened from (master key version, binding,
   * sealed key): a small object read again costs no unseal. In memory only, never stored; LRU,
   * zeroed when dropped. A sealed key that changes (a re-wrap, a re-key) is another entry.
   */
  private readonly opened = new KeyCache(OPENED_MAX);

  /** Opens an object's data key (the caller owns, and may zero, what it gets). Throws CryptoError if it was moved or tampered with. */
  async openDataKey(sse: SseRecord, binding: Omit<DataKeyBinding, 'masterKeyVersion' | 'mode'>): Promise<SecretKey> {
    const id = openedId(sse, binding);
    const hit = this.opened.get(id);
    if (hit) return hit;
    const mk = await this.keyFor(sse.masterKeyVersion);
    const dataKey = unsealDataKey(mk, Buffer.from(sse.sealedKey, 'base64'), { ...binding, mode: 'SSE-S3', masterKeyVersion: sse.masterKeyVersion });
    try {
      // The copy handed out also keeps the stream key derived from it in the cache's slot.
      return this.opened.put(id, dataKey);
    } finally {
      dataKey.zero();
    }
  }

  /** Drops the opened data keys of `version` (retired). */
  private forgetOpened(version: number): void {
    const prefix = `${version}\n`;
    this.opened.deleteWhere((id) => id.startsWith(prefix));
  }

  /** Re-seal one item's data key under the newest version (the object data is untouched). */
  private async rewrapOne(item: RewrapItem): Promise<boolean> {
    const binding = { bucket: item.bucket, key: item.key, versionId: item.versionId };
    const dataKey = await this.openDataKey(item.sse, binding);
    try {
      const version = this.newest;
      const mk = await this.keyFor(version);
      const sealed = sealDataKey(mk, dataKey, { ...binding, mode: 'SSE-S3', masterKeyVersion: version });
      return await this.meta.rewrap(item, { mode: 'SSE-S3', masterKeyVersion: version, sealedKey: sealed.toString('base64') });
    } finally {
      dataKey.zero();
    }
  }

  /**
   * Moves every sealed data key to the newest version, in batches. Each item is one atomic
   * compare-and-swap, so the job can be killed at any moment and resumed by running it again.
   * `onProgress` is called after each batch. Returns how many items were re-wrapped.
   */
  async rewrapAll(
    opts: { batch?: number; pauseMs?: number; onProgress?: (done: number) => void | Promise<void>; signal?: AbortSignal } = {},
  ): Promise<number> {
    await this.reload();
    const batch = opts.batch ?? 200;
    let done = 0;
    const skipped = new Set<string>();
    for (;;) {
      if (opts.signal?.aborted) break;
      const items = (await this.meta.findSealedBefore(this.newest, batch + skipped.size)).filter((i) => !skipped.has(itemId(i)));
      if (items.length === 0) break;
      for (const item of items.slice(0, batch)) {
        // A concurrent overwrite or delete makes the swap a no-op; it will not come back.
        if (await this.rewrapOne(item)) done++;
        else skipped.add(itemId(item));
      }
      await opts.onProgress?.(done);
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
    return done;
  }

  async describe(): Promise<MasterKeyInfo[]> {
    await this.reload();
    const counts = await this.meta.countByMasterKey();
    return (await this.meta.listMasterKeys()).map((r) => ({
      version: r.version,
      createdAt: r.createdAt,
      ...(r.retiredAt !== undefined ? { retiredAt: r.retiredAt } : {}),
      seals: counts.get(r.version) ?? 0,
      newest: r.version === this.newest,
    }));
  }

  /** Retires (destroys) a version that seals nothing and is not the newest. */
  async retire(version: number, opts: { graceMs?: number } = {}): Promise<void> {
    const all = await this.describe();
    const info = all.find((k) => k.version === version);
    if (!info) throw new Error(`no master key version ${version}`);
    if (info.retiredAt !== undefined) throw new Error(`master key version ${version} is already retired`);
    if (info.newest) throw new Error(`master key version ${version} is the newest; rotate first`);
    if (info.seals > 0) throw new Error(`master key version ${version} still seals ${info.seals} data keys; run the re-wrap first`);
    // A server that has not yet reloaded may still seal with this version: wait until the
    // next version has existed longer than the servers' reload interval.
    const successor = all.find((k) => k.version > version);
    const graceMs = opts.graceMs ?? 60_000;
    if (!successor || this.now() - successor.createdAt < graceMs) {
      throw new Error(`master key version ${version} was superseded less than ${Math.round(graceMs / 1000)} s ago; retry later`);
    }
    await this.meta.retireMasterKey(version, this.now());
    await this.reload();
  }
}

function itemId(i: RewrapItem): string {
  return `${i.kind}\u0000${i.uploadId ?? ''}\u0000${i.bucket}\u0000${i.key}\u0000${i.versionId}`;
}
