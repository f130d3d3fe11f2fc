// A watch on the free space of the data directory's file system. A full disk fails every upload
// (500 InternalError with ENOSPC in the log, nothing partial kept), which is right for S3 but
// comes without notice: this logs a warning when free space falls under the configured floor,
// again every WARN_AGAIN_MS while it stays there, and a line when it is back above.
import { promises as fsp } from 'node:fs';
import type { Logger } from '../shared/logger.ts';

/** A floor: a number of bytes, or a share of the file system's size. */
export type SpaceFloor = { bytes: number } | { percent: number };

/** "5%", "10GiB", "500MB", "1073741824"; undefined for anything else. */
export function parseSpaceFloor(text: string): SpaceFloor | undefined {
  const t = text.trim();
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(t);
  if (pct) {
    const percent = Number(pct[1]);
    return percent <= 100 ? { percent } : undefined;
  }
  const m = /^(\d+(?:\.\d+)?)\s*(|B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i.exec(t);
  if (!m) return undefined;
  const units: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };
  return { bytes: Math.floor(Number(m[1]) * units[m[2]!.toLowerCase()]!) };
}

export function floorBytes(floor: SpaceFloor, total: number): number {
  return 'bytes' in floor ? floor.bytes : Math.ceil((total * floor.percent) / 100);
}

export interface SpaceReading {
  freeBytes: number;
  totalBytes: number;
  floorBytes: number;
  low: boolean;
}

/** Free space (for unprivileged writers) of the file system holding `dir`, against `floor`. */
export async function readSpace(dir: string, floor: SpaceFloor): Promise<SpaceReading> {
  const s = await fsp.statfs(dir);
  const freeBytes = s.bavail * s.bsize;
  const totalBytes = s.blocks * s.bsize;
  const f = floorBytes(floor, totalBytes);
  return { freeBytes, totalBytes, floorBytes: f, low: freeBytes < f };
}

const CHECK_MS = 60_000;
const WARN_AGAIN_MS = 10 * 60_000;

/** Checks now and every minute; `stop` ends it. */
export function watchFreeSpace(dir: string, floor: SpaceFloor, log: Logger, now: () => number = Date.now): { stop(): void; check(): Promise<void> } {
  let warnedAt: number | undefined;
  const check = async () => {
    let r: SpaceReading;
    try {
      r = await readSpace(dir, floor);
    } catch (err) {
      log.debug({ err, dataDir: dir }, 'could not read the free space of the data directory');
      return;
    }
    const fields = { dataDir: dir, freeBytes: r.freeBytes, totalBytes: r.totalBytes, minFreeBytes: r.floorBytes };
    if (r.low) {
      if (warnedAt === undefined || now() - warnedAt >= WARN_AGAIN_MS) {
        warnedAt = now();
        log.warn(fields, 'the data directory is running out of space: uploads fail (500 InternalError) once it is full');
      }
    } else if (warnedAt !== undefined) {
      warnedAt = undefined;
      log.info(fields, 'the data directory has enough free space again');
    }
  };
  void check();
  const timer = setInterval(() => void check(), CHECK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer), check };
}
