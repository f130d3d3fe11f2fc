// The chunked AEAD object format "CFR1": header, per-stream key derivation, segment nonces,
// exact size and range math, and the streaming encryptor/decryptor. Frozen once released.
// Spec: docs/object-format.md (section names are cited below as "spec §...").
import { createCipheriv, createDecipheriv, type CipherGCM } from 'node:crypto';
import { hkdfSha256 } from './hkdf.ts';
import { Transform, type TransformCallback } from 'node:stream';
import { CryptoError } from '../shared/errors.ts';
import { copyIntoShared } from '../shared/aligned-memory.ts';
import { ByteQueue } from './byte-queue.ts';
import { SecretKey, systemRng, type Rng } from './keys.ts';

/** DO NOT CHANGE: plaintext bytes per segment (2^16). Part of the frozen CFR1 format. */
export const SEGMENT_SIZE = 65536;
/** DO NOT CHANGE: log2(SEGMENT_SIZE), stored in header byte 4. */
export const SEGMENT_SIZE_LOG2 = 16;
export const TAG_SIZE = 16;
export const NONCE_SIZE = 12;
export const SALT_SIZE = 32;
export const HEADER_SIZE = 40;
/** Largest streamIndex (it is encoded as uint32be in the KDF info). */
export const MAX_STREAM_INDEX = 0xffffffff;

const CIPHER_SEGMENT_SIZE = SEGMENT_SIZE + TAG_SIZE;
const MAGIC = Buffer.from('CFR1', 'latin1');
const KDF_INFO_LABEL = Buffer.from('coffer/object/v1', 'utf8');

// ---- size math (spec §Sizes) ----

function checkSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative safe integer`);
}

/** Number of segments for `plainSize` bytes: max(1, ceil(n / 65536)). */
export function segmentCount(plainSize: number): number {
  checkSize(plainSize, 'plainSize');
  return plainSize === 0 ? 1 : Math.ceil(plainSize / SEGMENT_SIZE);
}

/** Size of the blob (header included) that encrypts `plainSize` bytes. */
export function encryptedSize(plainSize: number): number {
  return HEADER_SIZE + plainSize + segmentCount(plainSize) * TAG_SIZE;
}

/** Inverse of encryptedSize. Throws CryptoError for sizes no plaintext can produce. */
export function plainSizeFromEncrypted(encSize: number): number {
  checkSize(encSize, 'encSize');
  const body = encSize - HEADER_SIZE;
  if (body < TAG_SIZE) throw new CryptoError();
  const full = Math.floor(body / CIPHER_SEGMENT_SIZE);
  const rem = body - full * CIPHER_SEGMENT_SIZE;
  if (rem === 0) return full * SEGMENT_SIZE;
  // A partial last segment needs at least one plaintext byte, unless it is the only one.
  if (rem < TAG_SIZE || (rem === TAG_SIZE && full > 0)) throw new CryptoError();
  return full * SEGMENT_SIZE + rem - TAG_SIZE;
}

/** Plaintext bytes in segment `i` of a `plainSize`-byte stream. */
export function segmentPlainLength(plainSize: number, i: number): number {
  const count = segmentCount(plainSize);
  if (!Number.isSafeInteger(i) || i < 0 || i >= count) throw new RangeError('segment index out of range');
  return i < count - 1 ? SEGMENT_SIZE : plainSize - (count - 1) * SEGMENT_SIZE;
}

export interface CipherRange {
  firstSegment: number;
  lastSegment: number;
  /** Blob offset of the first byte of `firstSegment` (header included in blob offsets). */
  cipherStart: number;
  /** Blob offset just past the tag of `lastSegment`. */
  cipherEndExclusive: number;
  /** Plaintext bytes to drop from the start of the first decrypted segment. */
  skipBytes: number;
  /** Plaintext bytes the range yields (endInclusive - start + 1; 0 for an empty object). */
  plainLength: number;
}

/**
 * The segments a plaintext range touches and where they lie in the blob. With no range,
 * the whole object (also valid for an empty object). A given range must satisfy
 * 0 <= start <= endInclusive < plainSize; a missing bound defaults to the object's edge.
 */
export function cipherRangeFor(plainSize: number, start?: number, endInclusive?: number): CipherRange {
  const count = segmentCount(plainSize);
  let first = 0;
  let last = count - 1;
  let skip = 0;
  let plainLength = plainSize;
  if (start !== undefined || endInclusive !== undefined) {
    const s = start ?? 0;
    const e = endInclusive ?? plainSize - 1;
    if (!Number.isSafeInteger(s) || !Number.isSafeInteger(e) || s < 0 || e < s || e >= plainSize) {
      throw new RangeError('range is outside the object');
    }
    first = Math.floor(s / SEGMENT_SIZE);
    last = Math.floor(e / SEGMENT_SIZE);
    skip = s - first * SEGMENT_SIZE;
    plainLength = e - s + 1;
  }
  return {
    firstSegment: first,
    lastSegment: last,
    cipherStart: HEADER_SIZE + first * CIPHER_SEGMENT_SIZE,
    cipherEndExclusive: HEADER_SIZE + last * CIPHER_SEGMENT_SIZE + segmentPlainLength(plainSize, last) + TAG_SIZE,
    skipBytes: skip,
    plainLength,
  };
}

// ---- header, key derivation, nonces (spec §Header, §Stream key, §Segments) ----

/** The 40-byte stream header: "CFR1" | 0x10 | 00 00 00 | salt(32). */
export function buildHeader(salt: Buffer): Buffer {
  if (salt.length !== SALT_SIZE) throw new RangeError(`salt must be ${SALT_SIZE} bytes`);
  const h = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(h, 0);
  h[4] = SEGMENT_SIZE_LOG2;
  salt.copy(h, 8);
  return h;
}

/** Validates a header and returns its salt. CryptoError if it is not a CFR1 header. */
export function parseHeader(header: Buffer): Buffer {
  if (
    header.length !== HEADER_SIZE ||
    !header.subarray(0, 4).equals(MAGIC) ||
    header[4] !== SEGMENT_SIZE_LOG2 ||
    header[5] !== 0 ||
    header[6] !== 0 ||
    header[7] !== 0
  ) {
    throw new CryptoError();
  }
  return header.subarray(8, HEADER_SIZE);
}

function checkStreamIndex(i: number): void {
  if (!Number.isSafeInteger(i) || i < 0 || i > MAX_STREAM_INDEX) {
    throw new RangeError('streamIndex must be an integer in [0, 2^32-1]');
  }
}

/** Stream key = HKDF-SHA256(ikm = data key, salt, info = "coffer/object/v1" || u32be(streamIndex), 32). */
export function deriveStreamKey(dataKey: SecretKey, salt: Buffer, streamIndex: number): SecretKey {
  if (salt.length !== SALT_SIZE) throw new RangeError(`salt must be ${SALT_SIZE} bytes`);
  checkStreamIndex(streamIndex);
  // A data key kept opened in memory keeps its stream key too (key-cache.ts): the same
  // data key, salt and index always derive the same key, so the next read skips the HKDF.
  const kept = dataKey.derived;
  const hit = kept?.get(streamIndex, salt);
  if (hit) return SecretKey.from(hit);
  const info = Buffer.alloc(KDF_INFO_LABEL.length + 4);
  KDF_INFO_LABEL.copy(info, 0);
  info.writeUInt32BE(streamIndex, KDF_INFO_LABEL.length);
  const okm = hkdfSha256(dataKey.expose(), salt, info, 32);
  const key = SecretKey.from(okm);
  kept?.set(streamIndex, salt, okm);
  okm.fill(0);
  return key;
}

/** Nonce of segment `index`: u64be(index) | 00 00 00 | final (0x01 on the last segment). */
export function segmentNonce(index: number, final: boolean): Buffer {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError('segment index out of range');
  const n = Buffer.alloc(NONCE_SIZE);
  n.writeUInt32BE(Math.floor(index / 0x100000000), 0);
  n.writeUInt32BE(index >>> 0, 4);
  n[11] = final ? 1 : 0;
  return n;
}

/** The cipher that seals segment `index` (spec §Segments: its nonce, the header as AAD). */
export function segmentCipher(key: Buffer, header: Buffer, index: number, final: boolean): CipherGCM {
  const cipher = createCipheriv('aes-256-gcm', key, segmentNonce(index, final));
  cipher.setAAD(header);
  return cipher;
}

/** Ends a segment's cipher: what it still holds (nothing, for GCM), then the tag. */
function closeSegment(cipher: CipherGCM, out: (b: Buffer) => void): void {
  const rest = cipher.final();
  if (rest.length > 0) out(rest);
  out(cipher.getAuthTag());
}

function sealPieces(key: Buffer, header: Buffer, index: number, final: boolean, pieces: Buffer[]): Buffer[] {
  const cipher = segmentCipher(key, header, index, final);
  const out: Buffer[] = [];
  for (const p of pieces) out.push(cipher.update(p));
  closeSegment(cipher, (b) => out.push(b));
  return out;
}

/** Decrypts one segment; returns its plaintext only after the tag verified. */
function openPieces(key: Buffer, header: Buffer, index: number, final: boolean, ct: Buffer[], tag: Buffer): Buffer[] {
  const out: Buffer[] = [];
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, segmentNonce(index, final));
    decipher.setAAD(header);
    decipher.setAuthTag(tag);
    for (const p of ct) out.push(decipher.update(p));
    const rest = decipher.final();
    if (rest.length > 0) out.push(rest);
    return out;
  } catch {
    for (const p of out) p.fill(0);
    throw new CryptoError();
  }
}

/** One segment, synchronously: ciphertext || tag. For tests and vectors. */
export function encryptSegment(streamKey: SecretKey, header: Buffer, index: number, final: boolean, plaintext: Buffer): Buffer {
  if (plaintext.length > SEGMENT_SIZE) throw new RangeError('segment too large');
  return Buffer.concat(sealPieces(streamKey.expose(), header, index, final, [plaintext]));
}

/** Inverse of encryptSegment; CryptoError on any failure. */
export function decryptSegment(streamKey: SecretKey, header: Buffer, index: number, final: boolean, segment: Buffer): Buffer {
  if (segment.length < TAG_SIZE || segment.length > CIPHER_SEGMENT_SIZE) throw new CryptoError();
  const ct = segment.subarray(0, segment.length - TAG_SIZE);
  const tag = segment.subarray(segment.length - TAG_SIZE);
  return Buffer.concat(openPieces(streamKey.expose(), header, index, final, [ct], tag));
}

// ---- streams (spec §Streaming) ----

export interface EncryptOptions {
  /** 0 for a single PUT, the part number for a multipart part. */
  streamIndex: number;
  rng?: Rng;
  /**
   * The plaintext's length, when known before the first byte (a PUT's Content-Length): then each
   * segment's finality is known when it starts, and its bytes are sealed as they arrive, with no
   * gathering into whole segments (no copy). A byte more than announced, or fewer at the end,
   * fails the stream with a RangeError. Without it, segments are gathered and a full one is
   * sealed once a byte beyond it shows it is not the last.
   */
  plainSize?: number;
  /** Sees every plaintext chunk before it is sealed (a meter, a hash). */
  tap?: PlainTap;
}

/** What an encryptor shows each plaintext chunk to (see EncryptOptions.tap). */
export interface PlainTap {
  /** May throw (the stream fails) or return a promise: the next chunk waits until it settles. */
  update(chunk: Buffer): Promise<void> | undefined;
  /** The last chunk has been shown (called before the last segment is sealed). */
  end?(): void;
  /**
   * Offers the tap's own copies of the plaintext, in shared memory, to a reader that would
   * otherwise copy it again (seal-offload.ts): from now on `update` tells `l` where each piece
   * went. Undefined when the tap keeps no such copies.
   */
  shareCopies?(l: CopyListener): SharedCopies | undefined;
}

/** Told where a tap copied the plaintext (PlainTap.shareCopies). */
export interface CopyListener {
  /**
   * The plaintext's next `n` bytes are at `at` in the tap's memory, in one of its slots, pinned
   * once for the listener (SharedCopies.unpin when done with them).
   */
  copied(at: number, n: number): void;
  /** The tap is short of slots: bytes pinned for work that waits for more plaintext should be copied out and unpinned. */
  starved(): void;
}

/** A tap's memory of plaintext copies: slots not reused while pinned. */
export interface SharedCopies {
  /** The memory's region id, as the crypto worker knows it (shared/slots.ts). */
  readonly region: number;
  readonly bytes: Buffer;
  /** Keeps the slot holding byte `at` from reuse until as many unpin()s as pin()s. */
  pin(at: number): void;
  unpin(at: number): void;
}

/** Plaintext in, CFR1 blob out. `bytesIn`/`bytesOut` count plaintext read and blob bytes pushed. */
export class EncryptStream extends Transform {
  readonly header: Buffer;
  #key: SecretKey;
  #queue = new ByteQueue();
  #index = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  readonly #plainSize: number | undefined;
  readonly #tap: EncryptOptions['tap'];
  /** Known-length mode: the segment being sealed, and how many of its bytes are still to come. */
  #cipher: CipherGCM | undefined;
  #segmentLeft = 0;

  constructor(dataKey: SecretKey, opts: EncryptOptions) {
    super();
    checkStreamIndex(opts.streamIndex);
    if (opts.plainSize !== undefined && (!Number.isSafeInteger(opts.plainSize) || opts.plainSize < 0)) throw new RangeError('plainSize out of range');
    this.#plainSize = opts.plainSize;
    this.#tap = opts.tap;
    const salt = (opts.rng ?? systemRng).randomBytes(SALT_SIZE);
    this.header = buildHeader(salt);
    this.#key = deriveStreamKey(dataKey, salt, opts.streamIndex);
    this.#out(this.header);
  }

  get bytesIn(): number {
    return this.#bytesIn;
  }
  get bytesOut(): number {
    return this.#bytesOut;
  }

  #out(b: Buffer): void {
    this.#bytesOut += b.length;
    this.push(b);
  }

  /** Where a segment that arrived in several pieces is gathered (one cipher call, one output). */
  #scratch: Buffer | undefined;

  #segment(final: boolean, n: number): void {
    let input = this.#queue.take(n);
    if (input.length > 1) {
      // Small input chunks (TLS delivers 16 KiB at a time) would each cost a cipher call, an
      // output buffer and a trip down the pipeline; one copy into the scratch costs less.
      const scratch = (this.#scratch ??= Buffer.allocUnsafe(SEGMENT_SIZE));
      let at = 0;
      for (const p of input) at += p.copy(scratch, at);
      input = [scratch.subarray(0, at)];
    }
    const pieces = sealPieces(this.#key.expose(), this.header, this.#index++, final, input);
    for (const p of pieces) this.#out(p);
  }

  /** Known-length mode: starts the next segment (its finality follows from the length). */
  #begin(): CipherGCM {
    const start = this.#index * SEGMENT_SIZE;
    const length = Math.min(SEGMENT_SIZE, this.#plainSize! - start);
    const cipher = segmentCipher(this.#key.expose(), this.header, this.#index, start + length === this.#plainSize);
    this.#segmentLeft = length;
    this.#cipher = cipher;
    return cipher;
  }

  /** Known-length mode: seals the segment whose last byte has been fed. */
  #end(cipher: CipherGCM): void {
    closeSegment(cipher, (b) => this.#out(b));
    this.#cipher = undefined;
    this.#index++;
  }

  /** Known-length mode: feeds `chunk` to the segments it belongs to. */
  #feed(chunk: Buffer): void {
    if (this.#bytesIn > this.#plainSize!) throw new RangeError('more plaintext than announced');
    let at = 0;
    while (at < chunk.length) {
      const cipher = this.#cipher ?? this.#begin();
      const n = Math.min(chunk.length - at, this.#segmentLeft);
      this.#out(cipher.update(n === chunk.length ? chunk : chunk.subarray(at, at + n)));
      at += n;
      this.#segmentLeft -= n;
      if (this.#segmentLeft === 0) this.#end(cipher);
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let wait: Promise<void> | undefined;
    try {
      wait = this.#tap?.update(chunk);
      this.#bytesIn += chunk.length;
      if (this.#plainSize !== undefined) this.#feed(chunk);
      else {
        this.#queue.push(chunk);
        // A full segment is only known to be non-final once a byte beyond it has arrived.
        while (this.#queue.length > SEGMENT_SIZE) this.#segment(false, SEGMENT_SIZE);
      }
    } catch (e) {
      cb(e as Error);
      return;
    }
    if (wait) wait.then(() => cb(), cb);
    else cb();
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.#tap?.end?.();
      if (this.#plainSize === undefined) this.#segment(true, this.#queue.length);
      else if (this.#bytesIn !== this.#plainSize) throw new RangeError('less plaintext than announced');
      // An empty stream is one empty, final segment.
      else if (this.#plainSize === 0) this.#end(this.#begin());
      this.#key.zero();
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#key.zero();
    this.#queue.clear();
    this.#scratch?.fill(0);
    this.#cipher = undefined;
    cb(err);
  }
}

export function createEncryptStream(dataKey: SecretKey, opts: EncryptOptions): EncryptStream {
  return new EncryptStream(dataKey, opts);
}

export interface DecryptOptions {
  streamIndex: number;
  /** Plaintext size of the whole stream (from metadata). */
  plainSize: number;
  /** First plaintext byte to output (default 0). */
  start?: number;
  /** Last plaintext byte to output, inclusive (default plainSize - 1). */
  endInclusive?: number;
  /**
   * The header the stream must have (a copy kept elsewhere, e.g. in metadata): a different
   * header in the input is a CryptoError. Catches a blob rolled back to an older write of the
   * same stream, which authenticates under its own (old) salt.
   */
  expectedHeader?: Buffer;
}

/**
 * Input: the 40-byte header followed by blob bytes [cipherStart, cipherEndExclusive) of
 * cipherRangeFor(plainSize, start, endInclusive). Output: exactly plaintext[start..endInclusive].
 * Any failure is a CryptoError; no segment's plaintext is pushed before its tag verifies, and
 * the last segment's plaintext is held until the input has ended with no trailing bytes.
 */
export class DecryptStream extends Transform {
  readonly range: CipherRange;
  #dataKey: SecretKey;
  #streamIndex: number;
  #plainSize: number;
  #lastIndex: number;
  #key: SecretKey | undefined;
  #header: Buffer | undefined;
  #queue = new ByteQueue();
  #expectedIn: number;
  #bytesIn = 0;
  #segment: number;
  #held: Buffer[] = [];
  #expectedHeader: Buffer | undefined;

  constructor(dataKey: SecretKey, opts: DecryptOptions) {
    super({ readableHighWaterMark: 256 * 1024 });
    this.#expectedHeader = opts.expectedHeader;
    checkStreamIndex(opts.streamIndex);
    this.range = cipherRangeFor(opts.plainSize, opts.start, opts.endInclusive);
    this.#dataKey = dataKey;
    this.#streamIndex = opts.streamIndex;
    this.#plainSize = opts.plainSize;
    this.#lastIndex = segmentCount(opts.plainSize) - 1;
    this.#segment = this.range.firstSegment;
    this.#expectedIn = HEADER_SIZE + this.range.cipherEndExclusive - this.range.cipherStart;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.#bytesIn += chunk.length;
      if (this.#bytesIn > this.#expectedIn) throw new CryptoError(); // trailing bytes
      this.#queue.push(chunk);
      if (this.#header === undefined) {
        if (this.#queue.length < HEADER_SIZE) return cb();
        const header = Buffer.from(this.#queue.takeContiguous(HEADER_SIZE));
        if (this.#expectedHeader && !header.equals(this.#expectedHeader)) throw new CryptoError();
        const salt = parseHeader(header);
        this.#key = deriveStreamKey(this.#dataKey, salt, this.#streamIndex);
        this.#header = header;
      }
      while (this.#segment <= this.range.lastSegment) {
        const need = segmentPlainLength(this.#plainSize, this.#segment) + TAG_SIZE;
        if (this.#queue.length < need) break;
        this.#open(need);
      }
      cb();
    } catch (e) {
      this.#wipe();
      cb(e instanceof CryptoError ? e : new CryptoError());
    }
  }

  #open(need: number): void {
    const i = this.#segment++;
    const ct = this.#queue.take(need - TAG_SIZE);
    const tag = this.#queue.takeContiguous(TAG_SIZE);
    const plain = openPieces(this.#key!.expose(), this.#header!, i, i === this.#lastIndex, ct, tag);
    const from = i === this.range.firstSegment ? this.range.skipBytes : 0;
    let to = need - TAG_SIZE;
    if (i === this.range.lastSegment) {
      to = this.range.skipBytes + this.range.plainLength - (i - this.range.firstSegment) * SEGMENT_SIZE;
    }
    const out = slicePieces(plain, from, to);
    if (i === this.range.lastSegment) this.#held = out;
    else for (const p of out) this.push(p);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#bytesIn !== this.#expectedIn || this.#segment <= this.range.lastSegment) {
      this.#wipe();
      return cb(new CryptoError()); // truncated
    }
    for (const p of this.#held) this.push(p);
    this.#held = [];
    this.#wipe();
    cb();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#wipe();
    cb(err);
  }

  #wipe(): void {
    this.#key?.zero();
    this.#key = undefined;
    this.#queue.clear();
    this.#held = [];
  }
}

export function createDecryptStream(dataKey: SecretKey, opts: DecryptOptions): DecryptStream {
  return new DecryptStream(dataKey, opts);
}

function slicePieces(pieces: Buffer[], from: number, to: number): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (const p of pieces) {
    const s = Math.max(from - pos, 0);
    const e = Math.min(to - pos, p.length);
    if (e > s) out.push(s === 0 && e === p.length ? p : p.subarray(s, e));
    pos += p.length;
  }
  return out;
}

// ---- whole-buffer helpers (small data, tests, vectors) ----

/** Encrypts a whole buffer in memory; same output as the stream given the same rng bytes. */
export function encryptBuffer(dataKey: SecretKey, plaintext: Buffer, opts: EncryptOptions): Buffer {
  checkStreamIndex(opts.streamIndex);
  const salt = (opts.rng ?? systemRng).randomBytes(SALT_SIZE);
  const header = buildHeader(salt);
  const key = deriveStreamKey(dataKey, salt, opts.streamIndex);
  try {
    const out: Buffer[] = [header];
    const count = segmentCount(plaintext.length);
    for (let i = 0; i < count; i++) {
      const seg = plaintext.subarray(i * SEGMENT_SIZE, (i + 1) * SEGMENT_SIZE);
      out.push(...sealPieces(key.expose(), header, i, i === count - 1, [seg]));
    }
    return Buffer.concat(out);
  } finally {
    key.zero();
  }
}

/** Decrypts a whole blob in memory; CryptoError on any failure. */
export function decryptBuffer(dataKey: SecretKey, blob: Buffer, opts: { streamIndex: number }): Buffer {
  const plainSize = plainSizeFromEncrypted(blob.length);
  const key = deriveStreamKey(dataKey, parseHeader(blob.subarray(0, HEADER_SIZE)), opts.streamIndex);
  try {
    const header = blob.subarray(0, HEADER_SIZE);
    const out: Buffer[] = [];
    const count = segmentCount(plainSize);
    for (let i = 0; i < count; i++) {
      const off = HEADER_SIZE + i * CIPHER_SEGMENT_SIZE;
      const seg = blob.subarray(off, off + segmentPlainLength(plainSize, i) + TAG_SIZE);
      out.push(decryptSegment(key, header, i, i === count - 1, seg));
    }
    return Buffer.concat(out);
  } finally {
    key.zero();
  }
}

/**
 * Decrypts a plaintext range held in memory: `cipher` is blob bytes [cipherStart,
 * cipherEndExclusive) of cipherRangeFor(plainSize, start, endInclusive) and `header` the
 * stream's header. Returns the plaintext pieces (each verified before it is returned); any
 * missing, extra or altered byte is a CryptoError. The synchronous twin of DecryptStream for
 * small ranges, which one read and no stream machinery serve faster. With `sink`, each segment's
 * pieces go to it as soon as the segment has verified (and none are returned).
 */
export function decryptRange(
  dataKey: SecretKey,
  opts: { streamIndex: number; plainSize: number; start?: number; endInclusive?: number; header: Buffer },
  cipher: Buffer,
  sink?: (piece: Buffer) => void,
): Buffer[] {
  const range = cipherRangeFor(opts.plainSize, opts.start, opts.endInclusive);
  if (cipher.length !== range.cipherEndExclusive - range.cipherStart) throw new CryptoError();
  const key = deriveStreamKey(dataKey, parseHeader(opts.header), opts.streamIndex);
  const last = segmentCount(opts.plainSize) - 1;
  const out: Buffer[] = [];
  const emit = sink ?? ((p: Buffer) => void out.push(p));
  try {
    let off = 0;
    for (let i = range.firstSegment; i <= range.lastSegment; i++) {
      const len = segmentPlainLength(opts.plainSize, i);
      const ct = cipher.subarray(off, off + len);
      const tag = cipher.subarray(off + len, off + len + TAG_SIZE);
      off += len + TAG_SIZE;
      const plain = openPieces(key.expose(), opts.header, i, i === last, [ct], tag);
      const from = i === range.firstSegment ? range.skipBytes : 0;
      const to = i === range.lastSegment ? range.skipBytes + range.plainLength - (i - range.firstSegment) * SEGMENT_SIZE : len;
      for (const p of slicePieces(plain, from, to)) emit(p);
    }
    return out;
  } catch (e) {
    for (const p of out) p.fill(0);
    throw e instanceof CryptoError ? e : new CryptoError();
  } finally {
    key.zero();
  }
}

/**
 * decryptRange of blob bytes as read from storage: with `withHeader` they start at the blob's
 * beginning, whose stream header must equal `opts.header` (the copy kept in metadata; catches a
 * blob rolled back to an older write of the same stream).
 */
export function decryptBlobRange(
  dataKey: SecretKey,
  opts: { streamIndex: number; plainSize: number; start?: number; endInclusive?: number; header: Buffer },
  bytes: Buffer,
  withHeader: boolean,
  sink?: (piece: Buffer) => void,
): Buffer[] {
  if (!withHeader) return decryptRange(dataKey, opts, bytes, sink);
  if (bytes.length < HEADER_SIZE || !bytes.subarray(0, HEADER_SIZE).equals(opts.header)) throw new CryptoError();
  return decryptRange(dataKey, opts, bytes.subarray(HEADER_SIZE), sink);
}

/**
 * decryptBlobRange over `bytes` (a window's blob bytes in a slot), writing the plaintext over
 * them from offset 0; returns its length. Each segment's plaintext is copied in as soon as its
 * tag has verified, while it is still in the CPU's cache (interleaved A/B, 1 MiB GETs: server
 * CPU per request -5.5% and -6.5% against copying after the last segment; docs/performance.md,
 * "Session 16"). It only ever overwrites ciphertext already consumed: a segment's plaintext ends
 * before the next segment's ciphertext begins (16 bytes of tag shorter, per segment). On a
 * CryptoError the bytes hold the plaintext of the segments before the damaged one, which the
 * caller never sends (the window fails whole).
 */
export function decryptBlobRangeInPlace(
  dataKey: SecretKey,
  opts: { streamIndex: number; plainSize: number; start?: number; endInclusive?: number; header: Buffer },
  bytes: Buffer,
  withHeader: boolean,
): number {
  let n = 0;
  decryptBlobRange(dataKey, opts, bytes, withHeader, (p) => {
    copyIntoShared(bytes, n, p);
    n += p.length;
  });
  return n;
}
