// Stream stages for the object data path: a meter that counts and MD5s plaintext and enforces
// a byte limit, and a reader that decrypts an object (or a range of it) across its streams.
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { cipherRangeFor, createDecryptStream, HEADER_SIZE } from '../crypto/format.ts';
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
 * The plaintext of an object (or `range` of it): for each stream it touches, read the header
 * and the ciphertext segments that cover the range, decrypt, and concatenate.
 */
export function readPlaintext(blobs: BlobStore, dataKey: SecretKey, streams: StreamRecord[], range?: PlainRange): Readable {
  const total = streams.reduce((n, s) => n + s.plainSize, 0);
  const start = range?.start ?? 0;
  const end = range?.end ?? total - 1;
  const out = new PassThrough({ highWaterMark: 256 * 1024 });
  if (end < start) {
    // Empty object: still verify its (single, empty, final) segment so damage is reported.
    (async () => {
      for (const s of streams) await drain(decryptStream(blobs, dataKey, s, 0, -1));
    })().then(
      () => out.end(),
      (e) => out.destroy(e as Error),
    );
    return out;
  }
  (async () => {
    let offset = 0;
    for (const s of streams) {
      const sStart = offset;
      const sEnd = offset + s.plainSize - 1;
      offset += s.plainSize;
      if (sEnd < start || sStart > end || s.plainSize === 0) continue;
      const from = Math.max(start, sStart) - sStart;
      const to = Math.min(end, sEnd) - sStart;
      const dec = decryptStream(blobs, dataKey, s, from, to);
      for await (const chunk of dec) {
        if (!out.write(chunk)) await waitDrain(out);
        if (out.destroyed) {
          dec.destroy();
          return;
        }
      }
    }
  })().then(
    () => out.end(),
    (e) => out.destroy(e as Error),
  );
  return out;
}

function decryptStream(blobs: BlobStore, dataKey: SecretKey, s: StreamRecord, from: number, to: number): Readable {
  const cr = s.plainSize === 0 ? cipherRangeFor(0) : cipherRangeFor(s.plainSize, from, to);
  const dec = createDecryptStream(dataKey, {
    streamIndex: s.streamIndex,
    plainSize: s.plainSize,
    ...(s.plainSize === 0 ? {} : { start: from, endInclusive: to }),
  });
  const src = Readable.from(concatReads(blobs, s, cr.cipherStart, cr.cipherEndExclusive));
  src.on('error', (e) => dec.destroy(e));
  return src.pipe(dec);
}

/**
 * The decryptor's input: the header recorded in metadata, then the blob's segment range. When
 * the range starts at the first segment the blob's own header copy is read too and must match.
 */
async function* concatReads(blobs: BlobStore, s: StreamRecord, start: number, end: number): AsyncGenerator<Buffer> {
  const header = Buffer.from(s.header, 'base64');
  if (header.length !== HEADER_SIZE) throw new CryptoError();
  yield header;
  if (start !== HEADER_SIZE) {
    yield* blobs.read(s.blobId, { start, end }) as AsyncIterable<Buffer>;
    return;
  }
  let seen = Buffer.alloc(0);
  for await (const chunk of blobs.read(s.blobId, { start: 0, end }) as AsyncIterable<Buffer>) {
    if (seen.length < HEADER_SIZE) {
      seen = Buffer.concat([seen, chunk]);
      if (seen.length < HEADER_SIZE) continue;
      if (!seen.subarray(0, HEADER_SIZE).equals(header)) throw new CryptoError();
      if (seen.length > HEADER_SIZE) yield seen.subarray(HEADER_SIZE);
      continue;
    }
    yield chunk;
  }
  if (seen.length < HEADER_SIZE) throw new CryptoError();
}

async function drain(r: Readable): Promise<void> {
  for await (const _ of r) void _;
}

function waitDrain(w: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
  });
}
