// The object data path's pieces: a meter that counts and MD5s plaintext and enforces a byte
// limit (the encryptor's tap on the way in), and a reader that decrypts an object (or a range of
// it) across its streams on the way out.
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { decryptInSlot, WINDOW_SEGMENTS } from '../crypto/crypto-offload.ts';
import { OffloadedMd5 } from '../crypto/md5-offload.ts';
import { returnSlot, takeSlot } from '../shared/slots.ts';
import { cipherRangeFor, decryptBlobRange, decryptRange, encryptedSize, HEADER_SIZE, SEGMENT_SIZE, type CopyListener, type SharedCopies } from '../crypto/format.ts';
import type { SecretKey } from '../crypto/keys.ts';
import { CryptoError, S3Error } from '../shared/errors.ts';
import type { BlobStore, StreamRecord } from '../storage/ports.ts';

/** Streams at least this long hash MD5 in the worker thread; shorter ones inline (latency). */
export const OFFLOAD_MIN_BYTES = 1024 * 1024;

/**
 * Counts bytes and computes the MD5 of the plaintext it is shown (the encryptor's tap); fails
 * past `limit` bytes. For streams expected to be large the MD5 runs in a worker thread
 * (md5-offload.ts) in parallel with the cipher.
 */
export class Meter {
  bytes = 0;
  private readonly hash?: Hash;
  private readonly offloaded?: OffloadedMd5;
  private digest?: Promise<Buffer>;

  constructor(
    private readonly limit: number = Number.MAX_SAFE_INTEGER,
    expectedLength = 0,
  ) {
    if (expectedLength >= OFFLOAD_MIN_BYTES) this.offloaded = new OffloadedMd5();
    else this.hash = createHash('md5');
  }

  /** Counts and hashes `chunk`; a promise when the caller must wait before the next one. */
  update(chunk: Buffer): Promise<void> | undefined {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) throw new S3Error('EntityTooLarge', undefined, { ProposedSize: this.bytes, MaxSizeAllowed: this.limit });
    if (this.hash) {
      this.hash.update(chunk);
      return undefined;
    }
    return this.offloaded!.update(chunk);
  }

  /** An offloaded hash's copies of the plaintext, for a reader that would copy it again (PlainTap.shareCopies). */
  shareCopies(l: CopyListener): SharedCopies | undefined {
    return this.offloaded?.shareCopies(l);
  }

  /**
   * Tells an offloaded hash that the last byte has passed: the worker may finish it with other
   * uploads' bytes while the blob is being made durable, until md5() asks for it.
   */
  end(): void {
    this.offloaded?.end();
  }

  /** Drops an offloaded hash that will never be finished (the write failed). */
  discard(): void {
    if (!this.digest) this.offloaded?.discard();
  }

  /** The MD5 of everything that passed (call after the stream ended). */
  md5(): Promise<Buffer> {
    this.digest ??= this.hash ? Promise.resolve(this.hash.digest()) : this.offloaded!.digest();
    return this.digest;
  }
}

/**
 * Reads a small body of announced length whole, with plain listeners (no stream pipeline or
 * async iterator: for a 4 KiB PUT those cost more than the AES and the MD5). A body that ends
 * short, runs long or is cut off fails with IncompleteBody; a source's own error is passed on.
 */
export function readKnownLength(source: Readable, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const body = Buffer.allocUnsafe(length);
    let at = 0;
    let settled = false;
    const settle = (err: unknown): void => {
      if (settled) return;
      settled = true;
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('close', onClose);
      // The 'error' listener stays: a source that fails later (a client cutting off a body that
      // ran long) must not throw for want of one.
      if (err === undefined) resolve(body);
      else {
        body.fill(0);
        reject(err);
      }
    };
    const onData = (chunk: Buffer): void => {
      if (at + chunk.length > length) {
        settle(new S3Error('IncompleteBody'));
        return;
      }
      at += chunk.copy(body, at);
    };
    const onEnd = (): void => settle(at === length ? undefined : new S3Error('IncompleteBody'));
    // Destroyed without an error before its end (a request the body watchdog closed).
    const onClose = (): void => settle(new S3Error('IncompleteBody'));
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', settle);
    source.on('close', onClose);
  });
}

export interface PlainRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/** A piece of plaintext; `release` (idempotent) gives its memory back once it has been sent. */
export interface PlainWindow {
  data: Buffer;
  release(): void;
}

export type PlainWindows = AsyncGenerator<PlainWindow, void, undefined>;

/**
 * The plaintext of an object (or `range` of it), in windows of up to WINDOW_SEGMENTS segments:
 * for each stream the range touches, the blob bytes of each window's segments are read with one
 * call, checked (the blob's header against the copy in metadata when the window starts at the
 * stream's beginning) and decrypted, large windows in the crypto worker, while the windows
 * before them are being sent. Memory per reader stays at READ_AHEAD + 1 windows whatever the
 * object's size.
 * Every window must be released; the GET path sends each straight from its slot.
 */
export function plaintextWindows(blobs: BlobStore, dataKey: SecretKey, streams: StreamRecord[], range?: PlainRange, inlineData?: Buffer): PlainWindows {
  const total = streams.reduce((n, s) => n + s.plainSize, 0);
  const start = range?.start ?? 0;
  const end = range?.end ?? total - 1;
  const pieces: Piece[] = [];
  if (end < start) {
    // Empty object: still verify its (single, empty, final) segments so damage is reported.
    for (const s of streams) pieces.push({ s });
  } else {
    let offset = 0;
    for (const s of streams) {
      const sStart = offset;
      const sEnd = offset + s.plainSize - 1;
      offset += s.plainSize;
      if (sEnd < start || sStart > end || s.plainSize === 0) continue;
      pieces.push({ s, from: Math.max(start, sStart) - sStart, to: Math.min(end, sEnd) - sStart });
    }
  }
  return windowsOf(blobs, dataKey, pieces, inlineData);
}

/** Windows as a byte stream, for consumers that keep chunks (each window is copied, then released). */
export function readPlaintext(windows: PlainWindows): Readable {
  async function* copies(): AsyncGenerator<Buffer> {
    for await (const w of windows) {
      const copy = Buffer.from(w.data);
      w.release();
      yield copy;
    }
  }
  // One window buffered in the stream, the next ones being read and decrypted.
  return Readable.from(copies(), { objectMode: true, highWaterMark: 1 });
}

interface Piece {
  s: StreamRecord;
  /** Plaintext range within the stream (inclusive); absent: the whole stream. */
  from?: number;
  to?: number;
}

/** Cipher ranges at least this long are decrypted in the worker; shorter ones here (latency). */
const OFFLOAD_DECRYPT_BYTES = 4 * SEGMENT_SIZE;
const NOTHING = (): void => {};
/**
 * Windows read and decrypted ahead of the one being sent. Large GETs wait on the device (direct
 * reads): six in flight instead of three took 256 MiB GETs from 774-873 to 924-1042 MB/s here.
 */
const READ_AHEAD = 6;

async function* windowsOf(blobs: BlobStore, dataKey: SecretKey, pieces: Piece[], inlineData?: Buffer): PlainWindows {
  for (const p of pieces) {
    const s = p.s;
    const header = Buffer.from(s.header, 'base64');
    if (header.length !== HEADER_SIZE) throw new CryptoError();
    const ranged = p.from !== undefined && p.to !== undefined && s.plainSize > 0;
    if (s.blobId === '') {
      // Inline (small object): the ciphertext came with the metadata.
      if (!inlineData) throw new CryptoError();
      const plain = decryptInline(dataKey, s, inlineData, ranged ? { start: p.from!, end: p.to! } : undefined);
      if (plain.length > 0) yield { data: plain, release: NOTHING };
      continue;
    }
    const windows: ({ start: number; endInclusive: number } | undefined)[] = [];
    if (!ranged && s.plainSize === 0) windows.push(undefined);
    else {
      const last = ranged ? p.to! : s.plainSize - 1;
      for (let a = ranged ? p.from! : 0; a <= last; ) {
        const b = Math.min(last, (Math.floor(a / SEGMENT_SIZE) + WINDOW_SEGMENTS) * SEGMENT_SIZE - 1);
        windows.push({ start: a, endInclusive: b });
        a = b + 1;
      }
    }
    // Windows being read and decrypted ahead of the one being sent (a large object's reads,
    // decryption and sends overlap; a 1 MiB object is one window).
    const ahead: Promise<PlainWindow>[] = [];
    let queued = 0;
    const fill = () => {
      while (ahead.length < READ_AHEAD && queued < windows.length) {
        const w = readWindow(blobs, dataKey, s, header, windows[queued++]);
        w.catch(NOTHING); // awaited in turn; until then a failure is not unhandled
        ahead.push(w);
      }
    };
    try {
      for (let i = 0; i < windows.length; i++) {
        fill();
        const w = await ahead.shift()!;
        fill();
        if (w.data.length > 0) yield w;
        else w.release();
      }
    } finally {
      // Stopped early (the reader went away, or a window failed): the windows read ahead go
      // back once their reads are done.
      for (const w of ahead) w.then((x) => x.release(), NOTHING);
    }
  }
}

/** One window of a blob-backed stream: one read, verified and decrypted. */
async function readWindow(
  blobs: BlobStore,
  dataKey: SecretKey,
  s: StreamRecord,
  header: Buffer,
  w: { start: number; endInclusive: number } | undefined,
): Promise<PlainWindow> {
  const cr = w ? cipherRangeFor(s.plainSize, w.start, w.endInclusive) : cipherRangeFor(s.plainSize);
  // From the first segment: the blob's own header comes first and must match the copy.
  const withHeader = cr.cipherStart === HEADER_SIZE;
  const range = { start: withHeader ? 0 : cr.cipherStart, end: cr.cipherEndExclusive };
  const opts = { streamIndex: s.streamIndex, plainSize: s.plainSize, header, ...(w ?? {}) };
  const slot = range.end - range.start >= OFFLOAD_DECRYPT_BYTES ? takeSlot() : undefined;
  if (slot) {
    let released = false;
    const release = () => {
      if (!released) returnSlot(slot);
      released = true;
    };
    try {
      const n = await blobs.readInto(s.blobId, range, slot.bytes);
      const length = await decryptInSlot(dataKey, opts, slot, n, withHeader);
      return { data: slot.bytes.subarray(0, length), release };
    } catch (e) {
      release();
      throw e;
    }
  }
  // No slot free (or a short range): read and decrypt here.
  const bytes = await blobs.readBytes(s.blobId, range);
  return { data: joined(decryptBlobRange(dataKey, opts, bytes, withHeader)), release: NOTHING };
}

/**
 * A small object's whole stream kept inline (its ciphertext came with the metadata): the
 * plaintext (or a range of it), verified and decrypted synchronously into one buffer, so a small
 * GET answers with a single write. Any damage is a CryptoError.
 */
export function decryptInline(dataKey: SecretKey, s: StreamRecord, inlineData: Buffer, range?: PlainRange): Buffer {
  const header = Buffer.from(s.header, 'base64');
  // The whole stream must be there, no byte more or less, even when a range needs only part of it.
  if (header.length !== HEADER_SIZE || inlineData.length !== encryptedSize(s.plainSize) || !inlineData.subarray(0, HEADER_SIZE).equals(header)) throw new CryptoError();
  const ranged = range !== undefined && s.plainSize > 0;
  const cr = ranged ? cipherRangeFor(s.plainSize, range.start, range.end) : cipherRangeFor(s.plainSize);
  const pieces = decryptRange(
    dataKey,
    { streamIndex: s.streamIndex, plainSize: s.plainSize, header, ...(ranged ? { start: range.start, endInclusive: range.end } : {}) },
    inlineData.subarray(cr.cipherStart, cr.cipherEndExclusive),
  );
  return joined(pieces);
}

function joined(pieces: Buffer[]): Buffer {
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
}
