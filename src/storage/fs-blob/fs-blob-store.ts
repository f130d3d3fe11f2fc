// FsBlobStore: encrypted blobs as files under <dataDir>/blobs, named by blob id (never by the
// user's key), fanned out over two directory levels. A write goes to a temporary file, is
// fsync'd, renamed into place and the directory fsync'd, so a blob id is either absent or whole.
import { createReadStream, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { addAbortListener } from 'node:events';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { openNewBlob, StagedWriter } from './direct-io.ts';
import type { BlobRange, BlobStore } from '../ports.ts';

const ID_RE = /^[A-Za-z0-9_-]{8,128}$/;
const TMP_SUFFIX = '.partial';
const READ_CHUNK = 512 * 1024;

export class FsBlobStore implements BlobStore {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = join(dataDir, 'blobs');
  }

  async init(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  private dirFor(id: string): string {
    if (!ID_RE.test(id)) throw new Error('invalid blob id');
    return join(this.root, id.slice(0, 2), id.slice(2, 4));
  }

  /** Fan-out directories known to exist (at most 65,536): saves a mkdir per write. */
  private readonly madeDirs = new Set<string>();

  private pathFor(id: string): string {
    return join(this.dirFor(id), id);
  }

  /** False once the file system refused O_DIRECT (tmpfs): then writes go through the page cache. */
  private direct = true;

  async write(id: string, source: Readable, signal?: AbortSignal): Promise<{ size: number }> {
    const dir = this.dirFor(id);
    // The source may fail while we are still creating the directory: without a listener its
    // 'error' would be uncaught. The loop below sees the errored stream and rejects.
    const ignore = () => {};
    source.on('error', ignore);
    const tmp = join(dir, id) + TMP_SUFFIX;
    let file: { fh: FileHandle; direct: boolean } | undefined;
    let writer: StagedWriter | undefined;
    const onAbort = () => source.destroy(Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR', cause: signal?.reason }));
    const unlisten = signal ? addAbortListener(signal, onAbort) : undefined;
    try {
      signal?.throwIfAborted();
      if (!this.madeDirs.has(dir)) {
        await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
        this.madeDirs.add(dir);
      }
      file = await openNewBlob(tmp, this.direct);
      this.direct = file.direct;
      writer = new StagedWriter(file.fh, file.direct);
      for await (const chunk of source) await writer.push(chunk as Buffer);
      await writer.finish();
      await file.fh.datasync();
      await file.fh.close();
      file = undefined;
      await fsp.rename(tmp, join(dir, id));
      await fsyncDir(dir);
      return { size: writer.size };
    } catch (err) {
      source.destroy();
      await file?.fh.close().catch(() => {});
      await fsp.rm(tmp, { force: true });
      throw err;
    } finally {
      unlisten?.[Symbol.dispose]();
      await writer?.release();
      source.off('error', ignore);
    }
  }

  read(id: string, range?: BlobRange): Readable {
    const path = this.pathFor(id);
    if (range && range.end <= range.start) throw new Error('empty blob range');
    // Large reads: a few big chunks per object instead of one per 64 KiB.
    const opts = { highWaterMark: READ_CHUNK };
    return range ? createReadStream(path, { ...opts, start: range.start, end: range.end - 1 }) : createReadStream(path, opts);
  }

  async readBytes(id: string, range: BlobRange): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(Math.max(0, range.end - range.start));
    const n = await this.readInto(id, range, buf);
    return n === buf.length ? buf : buf.subarray(0, n);
  }

  async readInto(id: string, range: BlobRange, target: Uint8Array): Promise<number> {
    const want = Math.max(0, range.end - range.start);
    if (target.byteLength < want) throw new RangeError('target too small for the range');
    const fh = await fsp.open(this.pathFor(id), 'r');
    try {
      let n = 0;
      while (n < want) {
        const { bytesRead } = await fh.read(target, n, want - n, range.start + n);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      return n;
    } finally {
      await fh.close();
    }
  }

  async size(id: string): Promise<number | undefined> {
    try {
      return (await fsp.stat(this.pathFor(id))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async delete(id: string): Promise<void> {
    await fsp.rm(this.pathFor(id), { force: true });
  }

  async *list(): AsyncIterable<string> {
    for (const name of await this.walk()) if (!name.endsWith(TMP_SUFFIX)) yield name;
  }

  async sweepIncomplete(): Promise<number> {
    let n = 0;
    for (const name of await this.walk()) {
      if (name.endsWith(TMP_SUFFIX)) {
        await fsp.rm(this.pathFor(name.slice(0, -TMP_SUFFIX.length)) + TMP_SUFFIX, { force: true });
        n++;
      }
    }
    return n;
  }

  private async walk(): Promise<string[]> {
    const out: string[] = [];
    const l1 = await readdirSafe(this.root);
    for (const a of l1) {
      for (const b of await readdirSafe(join(this.root, a))) {
        out.push(...(await readdirSafe(join(this.root, a, b))));
      }
    }
    return out;
  }
}

async function readdirSafe(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw e;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
