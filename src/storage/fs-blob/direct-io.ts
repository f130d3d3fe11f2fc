// Direct I/O for blob files (O_DIRECT): writes go from our buffers to the device without passing
// through the page cache. A blob is written once and read later, if ever, so caching it on the
// way in costs a copy per byte (and, on VMs whose guest memory is faulted in from the host on
// first touch, a page fault per 4 KiB of every new cache page) and buys nothing. Ceph's
// BlueStore does the same. O_DIRECT needs memory, offsets and lengths aligned to the device's
// block size: blob data is staged in page-aligned buffers, and the last write pads the file to a
// whole page with zeros and a trailer that says where the blob ends (page-padded files; in stores
// made by earlier versions the padding is cut off with ftruncate instead). See
// docs/object-format.md ("Blob files") and docs/performance.md.
import { constants as fsConstants, fdatasync, ftruncate, open, openSync, read, write } from 'node:fs';
import { promisify } from 'node:util';
import { alignedMemory, PAGE } from '../../shared/aligned-memory.ts';

/**
 * Staging buffer size: one write per stage, and a 1 MiB object's blob (1 MiB of ciphertext, a
 * 40-byte header and 16 bytes of tag per 64 KiB segment) is one stage, so one write. Stages are
 * written only when full (or at the end): until session 8 a blob's first MiBs went out in 256 KiB
 * writes started whenever the device was idle, to have less left to write at the end. Each write
 * is a trip through the thread pool, and that cost more than the overlap saved: interleaved A/B
 * (bench/ab.ts, 1 MiB PUTs at concurrency 8, 30 pairs) +6.8% MB/s (95% CI +2.7 .. +10.8%),
 * server CPU per request -6.4% (-9.9 .. -3.0%). docs/performance.md, "Session 8".
 */
const STAGE_BYTES = 1024 * 1024 + 64 * 1024;
/** Buffers carved from one page-aligned slab. */
const SLAB_BUFFERS = 4;
/** Free buffers kept for reuse; more are dropped (their slab is freed once all its buffers are). */
const MAX_FREE = 32;

/** O_DIRECT on this platform (Linux), or undefined. */
const O_DIRECT: number | undefined = (fsConstants as Record<string, number>).O_DIRECT;

const free: Buffer[] = [];

/** A stage's capacity: STAGE_BYTES, and a page more for the last write's padding and trailer. */
const STAGE_CAPACITY = STAGE_BYTES + PAGE;

/** A STAGE_CAPACITY buffer whose address is page aligned. */
function takeStage(): Buffer {
  const b = free.pop();
  if (b) return b;
  const slab = Buffer.from(alignedMemory(SLAB_BUFFERS * STAGE_CAPACITY));
  for (let i = 1; i < SLAB_BUFFERS; i++) free.push(slab.subarray(i * STAGE_CAPACITY, (i + 1) * STAGE_CAPACITY));
  return slab.subarray(0, STAGE_CAPACITY);
}

/**
 * Page-padded blob files (docs/object-format.md, "Blob files"): the blob's bytes, zeros, and a
 * TRAILER_BYTES trailer ending on a page boundary: "CFRPAD01", the blob's length as a u64
 * (little-endian), and its complement. Direct I/O writes whole pages, and cutting the padding off
 * afterwards (ftruncate) made the kernel read the last block back from the device to zero its
 * tail, on every upload's path; the trailer says where the blob ends instead.
 */
export const TRAILER_BYTES = 24;
const TRAILER_MAGIC = Buffer.from('CFRPAD01', 'latin1');
const U64_MAX = (1n << 64n) - 1n;

/** The size of the file of a page-padded blob of `length` bytes. */
export function paddedFileSize(length: number): number {
  return Math.ceil((length + TRAILER_BYTES) / PAGE) * PAGE;
}

function writeTrailer(target: Buffer, at: number, length: number): void {
  TRAILER_MAGIC.copy(target, at);
  target.writeBigUInt64LE(BigInt(length), at + 8);
  target.writeBigUInt64LE(U64_MAX ^ BigInt(length), at + 16);
}

/**
 * The blob length the trailer at `at` states, or undefined when it is not a trailer (magic or
 * complement wrong).
 */
export function readTrailer(source: Uint8Array, at: number): number | undefined {
  const b = Buffer.from(source.buffer, source.byteOffset + at, TRAILER_BYTES);
  if (!b.subarray(0, 8).equals(TRAILER_MAGIC)) return undefined;
  const length = b.readBigUInt64LE(8);
  if ((length ^ b.readBigUInt64LE(16)) !== U64_MAX || length > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return Number(length);
}

/**
 * Makes the last write of a blob of `size` bytes out of `buf`, which holds its last `fill` bytes
 * from file offset `position`: page-padded files get zeros up to the trailer and the trailer,
 * whole pages whatever the mode (the file's layout is the same); direct writes of exact-length
 * files are zero-padded to a page (commit cuts the padding). Returns the bytes to write.
 */
export function endStage(buf: Buffer, fill: number, position: number, size: number, direct: boolean, padded: boolean): number {
  const len = padded ? paddedFileSize(size) - position : direct ? Math.ceil(fill / PAGE) * PAGE : fill;
  const zeros = padded ? len - TRAILER_BYTES : len;
  if (zeros > buf.length || len > buf.length) throw new RangeError('no room for the padding of the last write');
  buf.fill(0, fill, zeros);
  if (padded) writeTrailer(buf, zeros, size);
  return len;
}

function returnStage(b: Buffer): void {
  if (free.length < MAX_FREE) free.push(b);
}

/**
 * fs.open through its callback (files for new blobs, whose creation can wait on the file
 * system): a bare descriptor, which its owner closes with closeSync. A read of a blob is open,
 * read, close, the open and the close made at once on this thread (openDirectForRead): quick
 * system calls, cheaper than a trip through the thread pool (which is all a FileHandle offers).
 */
export const openFd: (path: string, flags: number, mode?: number) => Promise<number> = promisify(open);

/** fs.read through its callback: the bytes read at `position` into `target[offset..]`. */
export function readFd(fd: number, target: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, target, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/** fs.write through its callback: the bytes written from `source[offset..]` at `position`. */
export function writeFd(fd: number, source: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => write(fd, source, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

export const ftruncateFd: (fd: number, size: number) => Promise<void> = promisify(ftruncate);
export const fdatasyncFd: (fd: number) => Promise<void> = promisify(fdatasync);

/**
 * Opens a blob for reading with O_DIRECT (a bare descriptor); undefined when the file system
 * refuses it. Synchronously, on the calling thread: an open of a file whose directory entry is
 * cached is a few microseconds, less than its trip through the thread pool costs this thread
 * (interleaved A/B, 1 MiB GETs: +7.4%; docs/performance.md, "Session 15").
 */
export function openDirectForRead(path: string): number | undefined {
  if (O_DIRECT === undefined) return undefined;
  try {
    return openSync(path, fsConstants.O_RDONLY | O_DIRECT);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
    throw e;
  }
}

/**
 * Opens `path` for a new blob (a bare descriptor): with O_DIRECT when the file system supports
 * it, and then also with O_DSYNC when `dsync` (each write returns once its data, and what reads
 * it back needs, is durable: no fdatasync after the last one).
 */
export async function openNewBlob(path: string, tryDirect: boolean, dsync = false): Promise<{ fd: number; direct: boolean; dsync: boolean }> {
  const base = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL;
  if (tryDirect && O_DIRECT !== undefined) {
    try {
      if (dsync) return { fd: await openFd(path, base | O_DIRECT | fsConstants.O_DSYNC, 0o600), direct: true, dsync: true };
      return { fd: await openFd(path, base | O_DIRECT, 0o600), direct: true, dsync: false };
    } catch (e) {
      // tmpfs and some others refuse O_DIRECT: write through the page cache there.
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    }
  }
  return { fd: await openFd(path, base, 0o600), direct: false, dsync: false };
}

/**
 * Writes a stream of chunks to `fh` through two staging buffers: one fills while the other (a
 * full stage) is being written, so there is at most one write in flight and memory stays at two
 * stages per blob whatever its size. With `direct`, every write is whole pages (offsets and
 * lengths aligned, as the device's block size requires): the last one is zero-padded, ending in
 * the trailer when `padded`, or cut back by the blob file's commit otherwise.
 */
export class StagedWriter {
  private stage: Buffer = takeStage();
  private spare: Buffer | undefined = takeStage();
  private fill = 0;
  private position = 0;
  /** The write in flight, until it succeeds (a failed one stays here and fails what follows). */
  private writing: Promise<void> | undefined;
  private released = false;
  size = 0;

  constructor(
    private readonly fd: number,
    private readonly direct: boolean,
    /** Page-padded file: the last write carries zeros and the trailer (no cut afterwards). */
    private readonly padded = false,
  ) {}

  /**
   * Copies `chunk` in. Returns undefined when the caller may send more at once, or a promise
   * when a full stage has to wait for the write in flight (the caller must wait for it too).
   */
  push(chunk: Buffer): Promise<void> | undefined {
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, STAGE_BYTES - this.fill);
      chunk.copy(this.stage, this.fill, off, off + n);
      this.fill += n;
      this.size += n;
      off += n;
      if (this.fill === STAGE_BYTES) {
        if (this.writing) return this.afterWrite(chunk.subarray(off));
        this.startWrite();
      }
    }
    return undefined;
  }

  private async afterWrite(rest: Buffer): Promise<void> {
    await this.writing;
    this.startWrite();
    if (rest.length > 0) await this.push(rest);
  }

  /**
   * Writes what is staged and waits for every write. The last write starts at once, beside the
   * one still in flight (they cover different bytes, and nothing is staged after it): the
   * upload's end waits for one write, not two in a row.
   */
  async finish(): Promise<void> {
    if (this.fill > 0 || this.padded) {
      const len = endStage(this.stage, this.fill, this.position, this.size, this.direct, this.padded);
      const at = this.position;
      this.position += len;
      this.fill = 0;
      const last = writeAll(this.fd, this.stage, len, at);
      // release() waits for both before the buffers are reused; the first failure is reported.
      const both = Promise.allSettled([this.writing, last]).then(([a, b]) => {
        if (a.status === 'rejected') throw a.reason;
        if (b.status === 'rejected') throw b.reason;
      });
      both.catch(() => {}); // awaited below and by release()
      this.writing = both;
    }
    await this.writing;
  }

  /** Starts writing the current (full) stage and switches to the spare one. */
  private startWrite(): void {
    const buf = this.stage;
    const at = this.position;
    this.position += STAGE_BYTES;
    this.fill = 0;
    const p: Promise<void> = writeAll(this.fd, buf, STAGE_BYTES, at).then(() => {
      if (this.writing === p) this.writing = undefined;
      if (this.released) returnStage(buf);
      else this.spare = buf;
    });
    p.catch(() => {}); // observed by push/finish; never unhandled
    this.writing = p;
    this.stage = this.spare!;
    this.spare = undefined;
  }

  /** Returns the staging buffers to the pool (after finish() or on failure). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await this.writing;
    } catch {
      // the write failed; the caller already knows
    }
    returnStage(this.stage);
    if (this.spare) returnStage(this.spare);
    this.spare = undefined;
  }
}

/** Writes `buf[0..len)` at `position`, however many calls it takes. */
export async function writeAll(fd: number, buf: Buffer, len: number, position: number): Promise<void> {
  let done = 0;
  while (done < len) {
    const bytesWritten = await writeFd(fd, buf, done, len - done, position + done);
    if (bytesWritten === 0) throw new Error('short write');
    done += bytesWritten;
  }
}
