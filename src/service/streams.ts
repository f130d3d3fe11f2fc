// Stream stages for the object data path: a meter that counts and MD5s plaintext and enforces
// a byte limit, and a reader that decrypts an object (or a range of it) across its streams.
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { cipherRangeFor, createDecryptStream, decryptRange, encryptedSize, HEADER_SIZE } from '../crypto/format.ts';
import type { SecretKey } from '../crypto/keys.ts';
import { CryptoError, S3Error } from '../shared/errors.ts';
import type { BlobStore, StreamRecord } from '../storage/ports.ts';
import { OffloadedHash } from './hash-offload.ts';

/** Streams at least this long hash MD5 in the worker thread; shorter ones inline (latency). */
export const OFFLOAD_MIN_BYTES = 1024 * 1024;

/**
 * Counts bytes and computes the MD5 of what passes; fails past `limit` bytes. For streams
 * expected to be large the MD5 runs in a worker thread (hash-offload.ts) in parallel with the
 * cipher downstream.
 */
export class Meter extends Transform {
  bytes = 0;
  private readonly hash?: Hash;
  private readonly offloaded?: OffloadedHash;
  private digest?: Promise<Buffer>;

  constructor(
    private readonly limit: number = Number.MAX_SAFE_INTEGER,
    expectedLength = 0,
  ) {
    super();
    if (expectedLength >= OFFLOAD_MIN_BYTES) this.offloaded = new OffloadedHash('md5');
    else this.hash = createHash('md5');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      cb(new S3Error('EntityTooLarge', undefined, { ProposedSize: this.bytes, MaxSizeAllowed: this.limit }));
      return;
    }
    if (this.hash) {
      this.hash.update(chunk);
      cb(null, chunk);
      return;
    }
    const wait = this.offloaded!.update(chunk);
    if (wait) wait.then(() => cb(null, chunk), cb);
    else cb(null, chunk);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    // Auto-destroy after a clean end must keep the hash for md5(); only failures drop it.
    if (err && !this.digest) this.offloaded?.discard();
    cb(err);
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

export interface PlainRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/**
 * The plaintext of an object (or `range` of it): for each stream it touches, the blob bytes of
 * the segments that cover the range go through a decryptor that checks the stream header
 * against the copy in metadata. One stream (the common case) is returned as its decryptor
 * itself; several are concatenated in order.
 */
export function readPlaintext(
  blobs: BlobStore,
  dataKey: SecretKey,
  streams: StreamRecord[],
  range?: PlainRange,
  inlineData?: Buffer,
): Readable {
  const total = streams.reduce((n, s) => n + s.plainSize, 0);
  const start = range?.start ?? 0;
  const end = range?.end ?? total - 1;
  const pieces: { s: StreamRecord; from?: number; to?: number }[] = [];
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
  if (pieces.length === 1) return decryptStream(blobs, dataKey, pieces[0]!.s, pieces[0]!.from, pieces[0]!.to, inlineData);
  const out = new PassThrough({ highWaterMark: 256 * 1024 });
  let i = 0;
  const next = (): void => {
    if (out.destroyed) return;
    const p = pieces[i++];
    if (!p) {
      out.end();
      return;
    }
    const dec = decryptStream(blobs, dataKey, p.s, p.from, p.to);
    dec.once('error', (e) => out.destroy(e));
    out.once('close', () => dec.destroy());
    dec.once('end', next);
    dec.pipe(out, { end: false });
  };
  next();
  return out;
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
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
}

/** Cipher ranges up to this size are read with one call and decrypted synchronously. */
const FAST_READ_MAX_BYTES = encryptedSize(1024 * 1024);

/** Small ranges: one read into memory, verify, decrypt, push the pieces. */
function fastRead(
  blobs: BlobStore,
  dataKey: SecretKey,
  s: StreamRecord,
  header: Buffer,
  cipherStart: number,
  cipherEnd: number,
  range: { start?: number; endInclusive?: number },
): Readable {
  const out = new Readable({ read() {} });
  const fromHeader = cipherStart === HEADER_SIZE;
  blobs.readBytes(s.blobId, { start: fromHeader ? 0 : cipherStart, end: cipherEnd }).then(
    (bytes) => {
      if (out.destroyed) return;
      try {
        let cipher = bytes;
        if (fromHeader) {
          // The blob's own header copy must match the one in metadata.
          if (bytes.length < HEADER_SIZE || !bytes.subarray(0, HEADER_SIZE).equals(header)) throw new CryptoError();
          cipher = bytes.subarray(HEADER_SIZE);
        }
        const pieces = decryptRange(dataKey, { streamIndex: s.streamIndex, plainSize: s.plainSize, header, ...range }, cipher);
        for (const p of pieces) out.push(p);
        out.push(null);
      } catch (e) {
        out.destroy(e as Error);
      }
    },
    (e: Error) => out.destroy(e),
  );
  return out;
}

/** One stream's decryptor, fed from the blob store (one read; the stored header if needed). */
function decryptStream(blobs: BlobStore, dataKey: SecretKey, s: StreamRecord, from?: number, to?: number, inlineData?: Buffer): Readable {
  const ranged = from !== undefined && to !== undefined && s.plainSize > 0;
  const cr = ranged ? cipherRangeFor(s.plainSize, from, to) : cipherRangeFor(s.plainSize);
  const header = Buffer.from(s.header, 'base64');
  const dec = createDecryptStream(dataKey, {
    streamIndex: s.streamIndex,
    plainSize: s.plainSize,
    ...(ranged ? { start: from, endInclusive: to } : {}),
    expectedHeader: header,
  });
  let src: Readable;
  try {
    if (header.length !== HEADER_SIZE) throw new CryptoError();
    if (s.blobId === '') {
      // Inline (small object): the ciphertext came with the metadata.
      if (!inlineData) throw new CryptoError();
      if (cr.cipherStart !== HEADER_SIZE) dec.write(header);
      dec.end(inlineData.subarray(cr.cipherStart === HEADER_SIZE ? 0 : cr.cipherStart, cr.cipherEndExclusive));
      return dec;
    }
    if (cr.cipherEndExclusive - cr.cipherStart <= FAST_READ_MAX_BYTES) {
      return fastRead(blobs, dataKey, s, header, cr.cipherStart, cr.cipherEndExclusive, ranged ? { start: from, endInclusive: to } : {});
    }
    if (cr.cipherStart === HEADER_SIZE) {
      // From the first segment: the blob's own header comes first and must match the copy.
      src = blobs.read(s.blobId, { start: 0, end: cr.cipherEndExclusive });
    } else {
      dec.write(header);
      src = blobs.read(s.blobId, { start: cr.cipherStart, end: cr.cipherEndExclusive });
    }
  } catch (e) {
    process.nextTick(() => dec.destroy(e as Error));
    return dec;
  }
  src.once('error', (e) => dec.destroy(e));
  dec.once('close', () => src.destroy());
  src.pipe(dec);
  return dec;
}
