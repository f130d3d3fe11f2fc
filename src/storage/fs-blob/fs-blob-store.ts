// FsBlobStore: encrypted blobs as files under <dataDir>/blobs, named by blob id (never by the
// user's key), fanned out over 256 directories named by the first byte of the id in hex
// (`blobs/9f/<id>`), all made when the store is first opened: making a directory costs a
// journal transaction and a directory fsync, which made every first write into one 20%
// slower. 256 keep directories small up to tens of millions of blobs.
//
// A write creates the file under its final name (O_EXCL; with O_DIRECT where the file system
// allows, see direct-io.ts) and makes the new directory entry durable while the data is being
// written; it resolves once the data and the file's size are durable too (fdatasync). Files are
// page-padded, the blob's length in a trailer at their end (docs/object-format.md, "Blob files";
// data directories of earlier versions keep exact-length files, see init()). Blob ids
// are fresh for every write, and the metadata refers to a blob only after its write resolved:
// a blob a crash interrupted is one nothing refers to, and the start-up sweep of unreferenced
// blobs removes it. (Writing to a temporary name and renaming it would put a rename and a
// directory fsync after the data, on every upload's critical path, for no extra safety.)
//
// Making a file is the costly part of that: allocating an inode (on ext4 without a journal
// the allocator skips every inode deleted in the last minute, one inode-table lookup each: a
// few hundred microseconds per file right after many deletions) and then a directory fsync.
// So the store makes files ahead, off the uploads' path: newId() hands out the id of a file
// made in a batch of POOL_BATCH in one fan-out directory, whose entries one directory fsync
// made durable. A write to such an id only writes and commits; in a store of page-padded files
// they are opened with O_DIRECT | O_DSYNC, so each write is durable when it returns and the
// commit has nothing left to do: no fdatasync, one trip through the thread pool fewer per blob
// (interleaved A/B, 1 MiB PUT: +6.7%, 95% CI +2.4 .. +10.9; docs/performance.md, "Session 14";
// a 256 MiB blob, each of whose stages is now a durable write, measured no slower). Prepared
// files nothing was written to are not blobs: list() leaves them out, close() removes them, and
// after a crash the start-up sweep of unreferenced blobs does.
//
// Data directories made before the single-level layout keep blobs at `blobs/Ab/cd/<id>`: they
// are still found (reads, size, delete and listing fall back to that path), and new blobs go to
// the new one. Those versions also wrote through `<id>.partial` files: sweepIncomplete removes
// any such leftover.
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, openSync, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { addAbortListener } from 'node:events';
import { dirname, join } from 'node:path';
import { finished, type Readable } from 'node:stream';
import { alignedMemory, isPageAligned, PAGE } from '../../shared/aligned-memory.ts';
import { endStage, fdatasyncFd, ftruncateFd, openDirectForRead, openNewBlob, paddedFileSize, readFd, readTrailer, StagedWriter, TRAILER_BYTES, writeAll } from './direct-io.ts';
import type { BlobRange, BlobStore, StageSource } from '../ports.ts';

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The fan-out directory of a blob id: the first byte its (base64url) id encodes, in hex. */
export function fanOut(id: string): string {
  const byte = (B64URL.indexOf(id[0]!) << 2) | (B64URL.indexOf(id[1]!) >> 4);
  return byte.toString(16).padStart(2, '0');
}

interface BlobFile {
  /** A bare descriptor (closed with closeSync: a quick call, not worth a thread-pool trip). */
  fd: number;
  /** Opened with O_DIRECT: writes are whole pages (in a store of exact-length files, commit cuts the padding). */
  direct: boolean;
  commit(size: number): Promise<void>;
  abort(): Promise<void>;
}

/** A file made ahead for a new blob (see the top of this file). */
interface Prepared {
  id: string;
  fd: number;
  direct: boolean;
  dsync: boolean;
}

/** Files made ahead per batch (all in one fan-out directory: one directory fsync). */
const POOL_BATCH = 16;
/** A batch is made when fewer than this many are ready. */
const POOL_LOW = 16;

const ID_RE = /^[A-Za-z0-9_-]{8,128}$/;

/** A blob id: 24 random bytes in base64url, the first one `fanOutByte` when given. */
function randomId(fanOutByte?: number): string {
  const b = randomBytes(24);
  if (fanOutByte !== undefined) b[0] = fanOutByte;
  return b.toString('base64url');
}
/**
 * The layout marker beside the blob root (`<data dir>/blobs.format`, outside it so that every
 * file under the root is a blob), and the layout it names: page-padded files with a trailer.
 */
const FORMAT_SUFFIX = '.format';
const PADDED_FORMAT = 'coffer-blob-files 2: page-padded, trailer';

/** Suffix of the temporary files earlier versions wrote through (sweepIncomplete removes leftovers). */
const TMP_SUFFIX = '.partial';

export class FsBlobStore implements BlobStore {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = join(dataDir, 'blobs');
  }

  async init(): Promise<void> {
    const fresh = (await readdirSafe(this.root)).length === 0;
    await this.makeFanOut();
    const marker = this.root + FORMAT_SUFFIX;
    let format: string | undefined;
    try {
      format = (await fsp.readFile(marker, 'utf8')).trim();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (format === undefined && fresh) {
      // A new store: every blob file is page-padded. Stores made by earlier versions (no marker,
      // files of exact length) keep that layout for good: a file's layout is its store's.
      await fsp.writeFile(marker, PADDED_FORMAT + '\n', { mode: 0o600, flush: true });
      await fsyncDir(dirname(this.root));
      format = PADDED_FORMAT;
    }
    if (format !== undefined && format !== PADDED_FORMAT) throw new Error(`${marker}: unknown blob file layout "${format}"`);
    this.padded = format === PADDED_FORMAT;
  }

  /** Blob files are page-padded with a trailer (docs/object-format.md, "Blob files"); false in stores of earlier versions. */
  padded = false;

  /**
   * Makes the blob root and whichever of its 256 fan-out directories are missing, and makes
   * their entries durable. At the first start; again if one was removed under a running server.
   */
  private async makeFanOut(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true, mode: 0o700 });
    const existing = new Set(await fsp.readdir(this.root));
    const missing: string[] = [];
    for (let i = 0; i < 256; i++) {
      const name = i.toString(16).padStart(2, '0');
      if (!existing.has(name)) missing.push(join(this.root, name));
    }
    for (let i = 0; i < missing.length; i += 32) {
      await Promise.all(
        missing.slice(i, i + 32).map((d) =>
          fsp.mkdir(d, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== 'EEXIST') throw e;
          }),
        ),
      );
    }
    if (missing.length > 0) await fsyncDir(this.root);
  }

  /** Open handles of the fan-out directories, for their fsyncs: one call each instead of three. */
  private readonly dirHandles = new Map<string, Promise<FileHandle>>();

  private async syncDir(dir: string): Promise<void> {
    let h = this.dirHandles.get(dir);
    if (!h) {
      h = fsp.open(dir, 'r');
      this.dirHandles.set(dir, h);
      h.catch(() => this.dirHandles.delete(dir));
    }
    await (await h).sync();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.preparing;
    const unused = [...this.ready, ...this.handedOut.values()];
    this.ready.length = 0;
    this.handedOut.clear();
    await Promise.allSettled(unused.map((p) => this.dropPrepared(p)));
    const handles = [...this.dirHandles.values()];
    this.dirHandles.clear();
    await Promise.allSettled(handles.map(async (h) => (await h).close()));
  }

  /** Files made ahead, ready to be handed out by newId(). */
  private readonly ready: Prepared[] = [];
  /** Files newId() handed out that no write has taken yet. */
  private readonly handedOut = new Map<string, Prepared>();
  /** Ids of every file made ahead that no write has taken (being made, ready or handed out): not blobs yet. */
  private readonly unwritten = new Set<string>();
  /** The batch being made, if any. */
  private preparing: Promise<void> | undefined;
  private closed = false;

  newId(): string {
    const p = this.ready.pop();
    this.prepareMore();
    if (!p) return randomId();
    this.handedOut.set(p.id, p);
    return p.id;
  }

  /** Starts making a batch of files when few are ready (one batch at a time). */
  private prepareMore(): void {
    if (this.preparing || this.closed || this.ready.length >= POOL_LOW) return;
    this.preparing = this.prepareBatch()
      .catch(() => {}) // best effort: writes make their own file when none is ready
      .finally(() => {
        this.preparing = undefined;
      });
  }

  private async prepareBatch(): Promise<void> {
    const byte = randomInt(256);
    const dir = this.dirFor(randomId(byte));
    const made: Prepared[] = [];
    try {
      // One at a time: creates in one directory contend for its inode group's lock (parallel
      // ones spin on it), and this is background work.
      for (let i = 0; i < POOL_BATCH && !this.closed; i++) {
        const id = randomId(byte);
        this.unwritten.add(id);
        try {
          made.push({ id, ...(await openNewBlob(join(dir, id), this.direct, this.padded)) });
        } catch (e) {
          this.unwritten.delete(id);
          throw e;
        }
      }
      await this.syncDir(dir);
    } catch (e) {
      await Promise.allSettled(made.map((p) => this.dropPrepared(p)));
      throw e;
    }
    if (this.closed) await Promise.allSettled(made.map((p) => this.dropPrepared(p)));
    else this.ready.push(...made);
  }

  private async dropPrepared(p: Prepared): Promise<void> {
    closeQuietly(p.fd);
    await fsp.rm(this.pathFor(p.id), { force: true });
    this.unwritten.delete(p.id);
  }

  private dirFor(id: string): string {
    if (!ID_RE.test(id)) throw new Error('invalid blob id');
    return join(this.root, fanOut(id));
  }

  /** Where a blob lives. */
  pathFor(id: string): string {
    return join(this.dirFor(id), id);
  }

  /** Where a data directory of the earlier two-level layout kept it. */
  private legacyPathFor(id: string): string {
    return join(this.root, id.slice(0, 2), id.slice(2, 4), id);
  }

  /** False once the file system refused O_DIRECT (tmpfs): then writes go through the page cache. */
  private direct = true;

  /** A new blob's file, and how to commit it (durably, as `size` bytes) or drop it. */
  private async openFile(id: string): Promise<BlobFile> {
    const dir = this.dirFor(id);
    const path = join(dir, id);
    const prepared = this.handedOut.get(id);
    if (prepared) {
      this.handedOut.delete(id);
      this.unwritten.delete(id);
      // Made ahead: its directory entry is durable already.
      return blobFile(path, prepared.fd, prepared.direct, prepared.direct && !this.padded, undefined, prepared.dsync);
    }
    const { fd, direct } = await openNewBlob(path, this.direct).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
      await this.makeFanOut();
      void this.dirHandles.get(dir)?.then((h) => h.close(), () => {});
      this.dirHandles.delete(dir);
      return openNewBlob(path, this.direct);
    });
    this.direct = direct;
    // The directory entry becomes durable while the data is written, not after it.
    const entry = this.syncDir(dir);
    entry.catch(() => {}); // awaited by commit and abort
    return blobFile(path, fd, direct, direct && !this.padded, entry);
  }

  async write(id: string, source: Readable, signal?: AbortSignal): Promise<{ size: number }> {
    // The source may fail while we are still creating the file: without a listener its 'error'
    // would be uncaught. drain() below sees the errored stream and rejects.
    const ignore = () => {};
    source.on('error', ignore);
    let file: BlobFile | undefined;
    let writer: StagedWriter | undefined;
    const onAbort = () => source.destroy(abortError(signal));
    const unlisten = signal ? addAbortListener(signal, onAbort) : undefined;
    try {
      signal?.throwIfAborted();
      file = await this.openFile(id);
      writer = new StagedWriter(file.fd, file.direct, this.padded);
      await drain(source, writer);
      await writer.finish();
      await file.commit(writer.size);
      return { size: writer.size };
    } catch (err) {
      source.destroy();
      await writer?.release();
      await file?.abort();
      throw err;
    } finally {
      unlisten?.[Symbol.dispose]();
      await writer?.release();
      source.off('error', ignore);
    }
  }

  /**
   * write() for a blob given as stages of page-aligned memory (the sealed stages of an upload,
   * crypto/seal-offload.ts): each is written from where it lies, no copy, while the next one is
   * being made; the last gets its padding and trailer in place.
   */
  async writeStages(id: string, source: StageSource, signal?: AbortSignal): Promise<{ size: number }> {
    if (source.stageBytes % PAGE !== 0) throw new RangeError('stages must be whole pages');
    const onAbort = () => source.destroy(abortError(signal));
    const unlisten = signal ? addAbortListener(signal, onAbort) : undefined;
    let file: BlobFile | undefined;
    const writes: Promise<void>[] = [];
    try {
      signal?.throwIfAborted();
      file = await this.openFile(id);
      const { fd, direct } = file;
      let size = 0;
      for (let stage = await source.next(); stage; stage = await source.next()) {
        const st = stage;
        let len: number;
        try {
          if (st.position !== size || (!st.last && st.length !== source.stageBytes)) throw new Error('stages out of order');
          len = st.last ? endStage(st.bytes, st.length, st.position, size + st.length, direct, this.padded) : st.length;
        } catch (e) {
          source.release(st);
          throw e;
        }
        size += st.length;
        const w = writeAll(fd, st.bytes, len, st.position).finally(() => source.release(st));
        // A failed write stops the source at once (a next() waiting fails); the failure itself
        // is thrown where the write is awaited.
        w.catch((e: Error) => source.destroy(e));
        writes.push(w);
        if (writes.length > 2) await writes.shift();
        if (st.last) break;
      }
      await Promise.all(writes);
      await file.commit(size);
      return { size };
    } catch (err) {
      source.destroy(err as Error);
      await Promise.allSettled(writes);
      await file?.abort();
      throw err;
    } finally {
      unlisten?.[Symbol.dispose]();
    }
  }

  async readBytes(id: string, range: BlobRange): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(Math.max(0, range.end - range.start));
    const n = await this.readInto(id, range, buf);
    return n === buf.length ? buf : buf.subarray(0, n);
  }

  async readInto(id: string, range: BlobRange, target: Uint8Array): Promise<number> {
    const want = Math.max(0, range.end - range.start);
    if (target.byteLength < want) throw new RangeError('target too small for the range');
    // Page-aligned targets with room for the range widened to whole pages are read with
    // O_DIRECT: blobs are written past the page cache, and reading them through it would fill
    // the cache with memory that is used once (and, on a VM, faulted in from the host first).
    const from = Math.floor(range.start / PAGE) * PAGE;
    const to = Math.ceil(range.end / PAGE) * PAGE;
    const { fd, direct } = this.openForRead(id, this.directReads && want > 0 && to - from <= target.byteLength && isPageAligned(target));
    try {
      if (!this.padded) return await readPages(fd, direct, target, range.start, range.end);
      // A page-padded file: whole pages, the blob ending somewhere in its last page and a trailer
      // (or just before them), so a range ending before that is all blob bytes.
      const size = fileSize(id, fd, true);
      if (range.end <= size - PAGE - TRAILER_BYTES) return await readPages(fd, direct, target, range.start, range.end);
      // The range reaches the blob's end, which the trailer gives: read to the file's end at once
      // when the target has room, or read its last pages first.
      if (direct && from < size && size - from <= target.byteLength) {
        if ((await readAt(fd, target, size - from, from, true)) !== size - from) throw damaged(id, 'its file is shorter than it was');
        const length = checkEnd(id, target, from, size);
        const got = Math.max(0, Math.min(range.end, length) - range.start);
        if (range.start > from && got > 0) target.copyWithin(0, range.start - from, range.start - from + got);
        return got;
      }
      const end = Math.min(range.end, await blobEnd(id, fd, direct, size));
      return end <= range.start ? 0 : await readPages(fd, direct, target, range.start, end);
    } finally {
      closeSync(fd);
    }
  }

  /** False once the file system refused O_DIRECT for a read. */
  private directReads = true;

  /**
   * Opens a blob for reading (where the earlier layout kept it, if not here), with O_DIRECT when
   * asked and allowed: a bare descriptor, closed by the caller with closeSync. Synchronous, as
   * the close is (see openDirectForRead).
   */
  private openForRead(id: string, tryDirect: boolean): { fd: number; direct: boolean } {
    if (this.unwritten.has(id)) throw Object.assign(new Error(`no blob ${id}`), { code: 'ENOENT' });
    const open = (path: string) => {
      if (tryDirect) {
        const fd = openDirectForRead(path);
        if (fd !== undefined) return { fd, direct: true };
        this.directReads = false;
      }
      return { fd: openSync(path, fsConstants.O_RDONLY), direct: false };
    };
    try {
      return open(this.pathFor(id));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return open(this.legacyPathFor(id));
    }
  }

  async size(id: string): Promise<number | undefined> {
    if (this.unwritten.has(id)) return undefined;
    let opened: { fd: number; direct: boolean };
    try {
      opened = this.openForRead(id, this.directReads);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const { fd, direct } = opened;
    try {
      const size = fileSize(id, fd, this.padded);
      return this.padded ? await blobEnd(id, fd, direct, size) : size;
    } finally {
      closeSync(fd);
    }
  }

  async delete(id: string): Promise<void> {
    await fsp.rm(this.pathFor(id), { force: true });
    await fsp.rm(this.legacyPathFor(id), { force: true });
  }

  async *list(): AsyncIterable<string> {
    for (const { name } of await this.walk()) {
      if (name.endsWith(TMP_SUFFIX) || this.unwritten.has(name)) continue;
      yield name;
    }
  }

  async sweepIncomplete(): Promise<number> {
    let n = 0;
    for (const { name, path } of await this.walk()) {
      if (name.endsWith(TMP_SUFFIX)) {
        await fsp.rm(path, { force: true });
        n++;
      }
    }
    return n;
  }

  /** Every file under the fan-out directories (and, for older data directories, one level deeper). */
  private async walk(): Promise<{ name: string; path: string }[]> {
    const out: { name: string; path: string }[] = [];
    for (const a of await readdirSafe(this.root)) {
      if (!a.isDirectory()) continue;
      const dir = join(this.root, a.name);
      for (const e of await readdirSafe(dir)) {
        if (e.isDirectory()) {
          for (const f of await readdirSafe(join(dir, e.name))) if (f.isFile()) out.push({ name: f.name, path: join(dir, e.name, f.name) });
        } else if (e.isFile()) out.push({ name: e.name, path: join(dir, e.name) });
      }
    }
    return out;
  }
}

/**
 * A new blob's file: commit makes it durable (with `cut`, as `size` bytes: the padding of direct
 * writes in a store of exact-length files is cut off), abort removes it. `entry` is the fsync of
 * its directory entry, when still under way. With `dsync` (opened O_DSYNC) every write was durable
 * when it returned: there is no fdatasync to make.
 */
function blobFile(path: string, fd: number, direct: boolean, cut: boolean, entry: Promise<void> | undefined, dsync = false): BlobFile {
  let open = true;
  const close = () => {
    if (open) {
      open = false;
      closeQuietly(fd);
    }
  };
  return {
    direct,
    fd,
    async commit(size: number): Promise<void> {
      if (cut) await ftruncateFd(fd, size);
      if (cut || !dsync) await fdatasyncFd(fd);
      await entry;
      // Durable now: a close error cannot undo that.
      close();
    },
    async abort(): Promise<void> {
      close();
      await entry?.catch(() => {});
      await fsp.rm(path, { force: true });
    },
  };
}

/** The error a write aborted by `signal` fails its source with. */
function abortError(signal: AbortSignal | undefined): Error {
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR', cause: signal?.reason });
}

/** closeSync, ignoring errors (a descriptor being dropped). */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // gone already
  }
}

/**
 * Feeds `source` into `writer` from 'data' events (an async iterator would concatenate what the
 * stream has buffered: a copy of every byte), pausing the source while a full stage waits.
 */
function drain(source: Readable, writer: StagedWriter): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let last: Promise<void> | undefined;
    let failed = false;
    const fail = (e: unknown) => {
      if (failed) return;
      failed = true;
      source.off('data', onData);
      reject(e);
    };
    const onData = (chunk: Buffer) => {
      let wait: Promise<void> | undefined;
      try {
        wait = writer.push(chunk);
      } catch (e) {
        fail(e);
        return;
      }
      if (wait) {
        source.pause();
        last = wait.then(() => {
          if (!failed) source.resume();
        });
        last.catch(fail);
      }
    };
    source.on('data', onData);
    finished(source, (err) => {
      if (err) fail(err);
      // The last chunk may still be waiting for its stage.
      else Promise.resolve(last).then(() => !failed && resolve(), fail);
    });
  });
}

async function readdirSafe(dir: string) {
  try {
    return await fsp.readdir(dir, { withFileTypes: true });
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

/** Bytes [start, end) of a blob file into `target` (O_DIRECT: whole pages, then moved into place). */
async function readPages(fd: number, direct: boolean, target: Uint8Array, start: number, end: number): Promise<number> {
  const want = Math.max(0, end - start);
  if (!direct) return readAt(fd, target, want, start, false);
  const from = Math.floor(start / PAGE) * PAGE;
  const to = Math.ceil(end / PAGE) * PAGE;
  const skip = start - from;
  const got = Math.max(0, Math.min((await readAt(fd, target, to - from, from, true)) - skip, want));
  if (skip > 0 && got > 0) target.copyWithin(0, skip, skip + got);
  return got;
}

/** The size of a blob's file (fstat: no I/O); a page-padded one must be whole pages. */
function fileSize(id: string, fd: number, padded: boolean): number {
  const size = fstatSync(fd).size;
  if (padded && (size % PAGE !== 0 || size < PAGE)) throw damaged(id, 'its file is not whole pages');
  return size;
}

/** A blob file that is not what was written: its reads fail, as a blob whose bytes were changed does. */
function damaged(id: string, what: string): Error {
  return Object.assign(new Error(`blob ${id} is damaged: ${what}`), { code: 'EBADMSG' });
}

/**
 * The length of a page-padded blob from its file's end, held in `buf` from file offset `at` to
 * `size` (the file's size): the trailer must be whole and agree with the size, and every byte
 * between the blob's end and the trailer must be zero.
 */
function checkEnd(id: string, buf: Uint8Array, at: number, size: number): number {
  const length = readTrailer(buf, size - TRAILER_BYTES - at);
  if (length === undefined || paddedFileSize(length) !== size) throw damaged(id, 'its trailer is not what was written');
  // Less than a page of padding (the size agrees with the length): one native compare.
  const from = Math.max(length, at) - at;
  const to = size - TRAILER_BYTES - at;
  if (!PAGE_OF_ZEROS.subarray(0, to - from).equals(buf.subarray(from, to))) throw damaged(id, 'its padding is not zeros');
  return length;
}

const PAGE_OF_ZEROS = Buffer.alloc(PAGE);

/** Page-aligned scratch for the last two pages of a file (blobEnd), reused. */
const scratch: Buffer[] = [];

/** The length of a page-padded blob, read from its file's last two pages. */
async function blobEnd(id: string, fd: number, direct: boolean, size: number): Promise<number> {
  const buf = scratch.pop() ?? Buffer.from(alignedMemory(2 * PAGE));
  try {
    const span = Math.min(size, 2 * PAGE);
    if ((await readAt(fd, buf, span, size - span, direct)) !== span) throw damaged(id, 'its file is shorter than it was');
    return checkEnd(id, buf, size - span, size);
  } finally {
    if (scratch.length < 8) scratch.push(buf);
  }
}

/** Reads up to `length` bytes at `position` into `target`; fewer at the end of the file. */
async function readAt(fd: number, target: Uint8Array, length: number, position: number, direct: boolean): Promise<number> {
  let n = 0;
  while (n < length) {
    const bytesRead = await readFd(fd, target, n, length - n, position + n);
    n += bytesRead;
    // A short direct read is the end of the file too (the next offset would be unaligned).
    if (bytesRead === 0 || (direct && n % PAGE !== 0)) break;
  }
  return n;
}
