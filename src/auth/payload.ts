// The request-body decoder: a Transform from the raw HTTP body to the object bytes that enforces
// what the signature promised. It checks x-amz-content-sha256 hashes, decodes aws-chunked bodies
// (verifying the chunk-signature chain and the signed trailer), and verifies x-amz-checksum-*
// values sent as headers or trailers. Bytes are passed through as they arrive (memory stays
// flat); every check that can only finish at the end fails in flush(), so a consumer never sees
// 'end' for a body that did not verify: it must treat data as tentative until 'end'.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { S3Error } from '../shared/errors.ts';
import { EMPTY_SHA256, headerValue, hmac, signaturesEqual, type HeaderMap } from './canonical.ts';
import {
  checksumAlgorithmOfHeader,
  checksumHeaderName,
  createChecksummer,
  isValidChecksumValue,
  type ChecksumAlgorithm,
  type Checksummer,
} from './checksums.ts';
import { payloadModeOf } from './sigv4.ts';
import type { AuthResult, PayloadMode } from './types.ts';

export interface VerifiedChecksum {
  algorithm: ChecksumAlgorithm;
  /** base64 of the big-endian digest, as S3 sends it. */
  value: string;
  /** 'header'/'trailer': sent by the client and verified; 'computed': from `defaultChecksum`. */
  source: 'header' | 'trailer' | 'computed';
}

export interface PayloadDecoderOptions {
  /** Compute this checksum when the client sent none (e.g. 'CRC64NVME', S3's default). */
  defaultChecksum?: ChecksumAlgorithm;
}

const MAX_LINE = 4096; // chunk-header and trailer lines
const MAX_TRAILER_BYTES = 16 * 1024;
const MULTIPLE_CHECKSUMS = 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.';

const malformed = () => new S3Error('InvalidRequest', 'The aws-chunked request body is malformed.');
const incomplete = () => new S3Error('IncompleteBody');

type State = 'header' | 'data' | 'data-crlf' | 'trailer' | 'done';

export class PayloadDecoder extends Transform {
  /** The verified (or computed) checksum; set once the stream has ended successfully. */
  checksum: VerifiedChecksum | undefined;

  readonly #mode: PayloadMode;
  readonly #chunked: boolean;
  readonly #signed: boolean;
  readonly #trailerMode: boolean;
  readonly #expectedLength: number | undefined;
  #decoded = 0;

  // whole-body hashes
  readonly #sha: Hash | undefined;
  readonly #ck: Checksummer | undefined;
  readonly #ckExpected: string | undefined; // header value
  readonly #ckSource: VerifiedChecksum['source'] | undefined;
  readonly #announcedTrailer: string | undefined; // e.g. 'x-amz-checksum-crc32'

  // aws-chunked state
  #state: State = 'header';
  readonly #line = Buffer.allocUnsafe(MAX_LINE);
  #lineLen = 0;
  #remaining = 0;
  #crlfSeen = 0;
  #chunkSig = '';
  #chunkHash: Hash | undefined;
  #prevSig = '';
  #trailerBytes = 0;
  readonly #trailers = new Map<string, string>();
  #trailerSig: string | undefined;
  readonly #signing: { key: Buffer; amzDate: string; scope: string } | undefined;

  constructor(auth: AuthResult, headers: HeaderMap, opts: PayloadDecoderOptions = {}) {
    super();
    const mode = auth.kind === 'signed' ? auth.payload : anonymousMode(headers);
    this.#mode = mode;
    this.#chunked = mode.type === 'streaming-signed' || mode.type === 'streaming-unsigned-trailer';
    this.#signed = mode.type === 'streaming-signed';
    this.#trailerMode = mode.type === 'streaming-unsigned-trailer' || (mode.type === 'streaming-signed' && mode.trailer);
    if (auth.kind === 'signed' && this.#signed) {
      const s = auth.scope;
      this.#signing = { key: auth.signingKey, amzDate: auth.amzDate, scope: `${s.date}/${s.region}/${s.service}/aws4_request` };
      this.#prevSig = auth.signature;
    }

    if (this.#chunked) {
      const dl = headerValue(headers, 'x-amz-decoded-content-length')?.trim();
      if (dl === undefined) throw new S3Error('MissingContentLength');
      if (!/^\d{1,15}$/.test(dl)) {
        throw new S3Error('InvalidArgument', undefined, { ArgumentName: 'x-amz-decoded-content-length', ArgumentValue: dl });
      }
      this.#expectedLength = Number(dl);
    }

    // Checksums: at most one, from a header or announced in x-amz-trailer.
    const fromHeaders: [ChecksumAlgorithm, string][] = [];
    for (const name of Object.keys(headers)) {
      const alg = checksumAlgorithmOfHeader(name);
      const value = headerValue(headers, name);
      if (alg && value !== undefined) fromHeaders.push([alg, value.trim()]);
    }
    let announced: ChecksumAlgorithm[] = [];
    const trailerHeader = headerValue(headers, 'x-amz-trailer');
    if (this.#trailerMode && trailerHeader !== undefined && trailerHeader.trim() !== '') {
      announced = trailerHeader.split(',').map((n) => {
        const alg = checksumAlgorithmOfHeader(n.trim());
        if (!alg) throw new S3Error('InvalidRequest', 'The value specified in the x-amz-trailer header is not supported');
        return alg;
      });
    }
    if (fromHeaders.length + announced.length > 1) throw new S3Error('InvalidRequest', MULTIPLE_CHECKSUMS);
    let alg: ChecksumAlgorithm | undefined;
    if (fromHeaders.length === 1) {
      const [a, value] = fromHeaders[0];
      if (!isValidChecksumValue(a, value)) {
        throw new S3Error('InvalidRequest', `Value for ${checksumHeaderName(a)} header is invalid.`);
      }
      alg = a;
      this.#ckExpected = value;
      this.#ckSource = 'header';
    } else if (announced.length === 1) {
      alg = announced[0];
      this.#announcedTrailer = checksumHeaderName(alg);
      this.#ckSource = 'trailer';
    } else if (opts.defaultChecksum) {
      alg = opts.defaultChecksum;
      this.#ckSource = 'computed';
    }
    this.#ck = alg ? createChecksummer(alg) : undefined;
    this.#sha = mode.type === 'sha256' ? createHash('sha256') : undefined;
  }

  /**
   * Nothing to decode or verify (a plain body, UNSIGNED-PAYLOAD, no checksum): the raw body is the
   * object's bytes, and the caller may read it directly instead of through this stage.
   */
  get passthrough(): boolean {
    return !this.#chunked && !this.#sha && !this.#ck;
  }

  /** Number of decoded (object) bytes emitted so far. */
  get decodedLength(): number {
    return this.#decoded;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.#chunked) {
      this.#decoded += chunk.length;
      this.#sha?.update(chunk);
      this.#ck?.update(chunk);
      cb(null, chunk);
      return;
    }
    try {
      this.#decodeChunked(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.#finish();
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  // ---- aws-chunked ----

  #decodeChunked(buf: Buffer): void {
    let pos = 0;
    const n = buf.length;
    while (pos < n) {
      switch (this.#state) {
        case 'header':
        case 'trailer': {
          const nl = buf.indexOf(0x0a, pos);
          const end = nl < 0 ? n : nl + 1;
          if (this.#state === 'trailer') {
            this.#trailerBytes += end - pos;
            if (this.#trailerBytes > MAX_TRAILER_BYTES) throw malformed();
          }
          if (this.#lineLen + (end - pos) > MAX_LINE) throw malformed();
          buf.copy(this.#line, this.#lineLen, pos, end);
          this.#lineLen += end - pos;
          pos = end;
          if (nl < 0) break;
          const len = this.#lineLen;
          this.#lineLen = 0;
          if (len < 2 || this.#line[len - 2] !== 0x0d) throw malformed();
          const line = this.#line.toString('latin1', 0, len - 2);
          if (this.#state === 'header') this.#onChunkHeader(line);
          else this.#onTrailerLine(line);
          break;
        }
        case 'data': {
          const take = Math.min(this.#remaining, n - pos);
          const piece = buf.subarray(pos, pos + take);
          pos += take;
          this.#remaining -= take;
          this.#decoded += take;
          this.#chunkHash?.update(piece);
          this.#sha?.update(piece);
          this.#ck?.update(piece);
          this.push(piece);
          if (this.#remaining === 0) this.#state = 'data-crlf';
          break;
        }
        case 'data-crlf': {
          const want = this.#crlfSeen === 0 ? 0x0d : 0x0a;
          if (buf[pos] !== want) throw malformed();
          pos++;
          if (++this.#crlfSeen === 2) {
            this.#crlfSeen = 0;
            this.#verifyChunk(this.#chunkHash ? this.#chunkHash.digest('hex') : undefined);
            this.#state = 'header';
          }
          break;
        }
        case 'done':
          throw malformed();
      }
    }
  }

  #onChunkHeader(line: string): void {
    let sizeHex: string;
    if (this.#signed) {
      const m = /^([0-9a-fA-F]{1,13});chunk-signature=([0-9a-f]{64})$/.exec(line);
      if (!m) throw malformed();
      sizeHex = m[1];
      this.#chunkSig = m[2];
    } else {
      const m = /^([0-9a-fA-F]{1,13})(;.*)?$/.exec(line);
      if (!m) throw malformed();
      sizeHex = m[1];
    }
    const size = parseInt(sizeHex, 16);
    if (this.#decoded + size > (this.#expectedLength ?? Infinity)) throw incomplete();
    if (size === 0) {
      if (this.#signed) this.#verifyChunk(EMPTY_SHA256);
      this.#state = 'trailer';
      return;
    }
    this.#remaining = size;
    this.#chunkHash = this.#signed ? createHash('sha256') : undefined;
    this.#state = 'data';
  }

  /** Checks the current chunk's signature against the chain (signed mode only). */
  #verifyChunk(dataHashHex: string | undefined): void {
    if (!this.#signed || !this.#signing || dataHashHex === undefined) return;
    const s = this.#signing;
    const sts = `AWS4-HMAC-SHA256-PAYLOAD\n${s.amzDate}\n${s.scope}\n${this.#prevSig}\n${EMPTY_SHA256}\n${dataHashHex}`;
    if (!signaturesEqual(hmac(s.key, sts).toString('hex'), this.#chunkSig)) throw new S3Error('SignatureDoesNotMatch');
    this.#prevSig = this.#chunkSig;
    this.#chunkHash = undefined;
  }

  #onTrailerLine(line: string): void {
    if (line === '') {
      this.#state = 'done';
      return;
    }
    if (!this.#trailerMode) throw malformed();
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed();
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'x-amz-trailer-signature') {
      if (!this.#signed || this.#trailerSig !== undefined) throw malformed();
      this.#trailerSig = value;
      return;
    }
    if (this.#trailerSig !== undefined || this.#trailers.has(name)) throw malformed();
    this.#trailers.set(name, value);
  }

  #finish(): void {
    if (this.#chunked) {
      // A missing final empty line is tolerated once everything that matters has arrived.
      const trailersComplete =
        this.#signed && this.#trailerMode
          ? this.#trailerSig !== undefined
          : this.#announcedTrailer === undefined || this.#trailers.has(this.#announcedTrailer);
      if (!(this.#state === 'done' || (this.#state === 'trailer' && this.#lineLen === 0 && trailersComplete))) throw incomplete();
      if (this.#decoded !== this.#expectedLength) throw incomplete();
      if (this.#signed && this.#trailerMode) this.#verifyTrailerSignature();
      for (const name of this.#trailers.keys()) {
        if (name !== this.#announcedTrailer) {
          throw new S3Error('InvalidRequest', `The trailer ${name} was not declared in x-amz-trailer.`);
        }
      }
    }
    if (this.#sha) {
      const computed = this.#sha.digest('hex');
      const expected = (this.#mode as { hex: string }).hex;
      if (computed !== expected) {
        throw new S3Error('XAmzContentSHA256Mismatch', undefined, {
          ClientComputedContentSHA256: expected,
          S3ComputedContentSHA256: computed,
        });
      }
    }
    if (this.#ck) {
      const value = this.#ck.digest().toString('base64');
      let expected = this.#ckExpected;
      if (this.#ckSource === 'trailer') {
        expected = this.#trailers.get(this.#announcedTrailer!);
        if (expected === undefined) {
          throw new S3Error('InvalidRequest', `The ${this.#announcedTrailer} trailer was declared but not sent.`);
        }
        if (!isValidChecksumValue(this.#ck.algorithm, expected)) {
          throw new S3Error('InvalidRequest', `Value for ${this.#announcedTrailer} trailing header is invalid.`);
        }
      }
      if (expected !== undefined && expected !== value) {
        throw new S3Error('BadDigest', `The ${this.#ck.algorithm} you specified did not match the calculated checksum.`);
      }
      this.checksum = { algorithm: this.#ck.algorithm, value, source: this.#ckSource! };
    }
  }

  #verifyTrailerSignature(): void {
    if (this.#trailerSig === undefined || !this.#signing) throw new S3Error('SignatureDoesNotMatch');
    let canonical = '';
    for (const name of [...this.#trailers.keys()].sort()) canonical += `${name}:${this.#trailers.get(name)}\n`;
    const s = this.#signing;
    const hash = createHash('sha256').update(canonical).digest('hex');
    const sts = `AWS4-HMAC-SHA256-TRAILER\n${s.amzDate}\n${s.scope}\n${this.#prevSig}\n${hash}`;
    if (!signaturesEqual(hmac(s.key, sts).toString('hex'), this.#trailerSig)) throw new S3Error('SignatureDoesNotMatch');
  }
}

/** Payload mode for an unauthenticated request, from its x-amz-content-sha256 header. */
function anonymousMode(headers: HeaderMap): PayloadMode {
  const v = headerValue(headers, 'x-amz-content-sha256')?.trim();
  if (v === undefined) return { type: 'unsigned' };
  const mode = payloadModeOf(v);
  if (mode.type === 'streaming-signed') {
    throw new S3Error('InvalidRequest', `x-amz-content-sha256 ${v} requires a signed request.`);
  }
  return mode;
}

/**
 * Creates the body decoder for a request verified by `verifySigV4` (or an anonymous one).
 * Throws S3Error synchronously for bad body-related headers (checksum values, missing
 * x-amz-decoded-content-length, ...). Pipe the raw request into it and read object bytes out;
 * after 'end', `decoder.checksum` holds the verified checksum (if any).
 */
export function createPayloadDecoder(auth: AuthResult, headers: HeaderMap, opts?: PayloadDecoderOptions): PayloadDecoder {
  return new PayloadDecoder(auth, headers, opts);
}
