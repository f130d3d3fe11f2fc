// Conditional requests and byte ranges, with S3's precedence rules (RFC 7232 as S3 applies it:
// If-Match beats If-Unmodified-Since; If-None-Match beats If-Modified-Since).
import { S3Error } from '../shared/errors.ts';
import type { ObjectRecord } from '../storage/ports.ts';
import type { PlainRange } from '../service/streams.ts';
import { normalizeEtag } from '../service/objects.ts';
import { header, type S3Context } from './request.ts';

function etagMatches(list: string, etag: string): boolean {
  return list.split(',').some((e) => {
    const t = e.trim();
    return t === '*' || normalizeEtag(t.replace(/^W\//, '')) === etag;
  });
}

function parseDate(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

/** Seconds resolution, as Last-Modified is sent. */
function lastModifiedSec(obj: ObjectRecord): number {
  return Math.floor(obj.lastModified / 1000) * 1000;
}

interface Conditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifUnmodifiedSince?: string;
}

function evaluate(c: Conditions, obj: ObjectRecord): 'ok' | 'not-modified' | 'failed' {
  const lm = lastModifiedSec(obj);
  if (c.ifMatch !== undefined) {
    if (!etagMatches(c.ifMatch, obj.etag)) return 'failed';
  } else {
    const ius = parseDate(c.ifUnmodifiedSince);
    if (ius !== undefined && lm > ius) return 'failed';
  }
  if (c.ifNoneMatch !== undefined) {
    if (etagMatches(c.ifNoneMatch, obj.etag)) return 'not-modified';
  } else {
    const ims = parseDate(c.ifModifiedSince);
    if (ims !== undefined && lm <= ims) return 'not-modified';
  }
  return 'ok';
}

export function checkGetConditions(ctx: S3Context, obj: ObjectRecord): 'ok' | 'not-modified' {
  const r = evaluate(
    {
      ifMatch: header(ctx, 'if-match'),
      ifNoneMatch: header(ctx, 'if-none-match'),
      ifModifiedSince: header(ctx, 'if-modified-since'),
      ifUnmodifiedSince: header(ctx, 'if-unmodified-since'),
    },
    obj,
  );
  if (r === 'failed') throw new S3Error('PreconditionFailed', undefined, { Condition: header(ctx, 'if-match') !== undefined ? 'If-Match' : 'If-Unmodified-Since' });
  return r;
}

/** x-amz-copy-source-if-*: any failure (including "not modified") is 412 for a copy. */
export function checkCopyConditions(ctx: S3Context, source: ObjectRecord): void {
  const r = evaluate(
    {
      ifMatch: header(ctx, 'x-amz-copy-source-if-match'),
      ifNoneMatch: header(ctx, 'x-amz-copy-source-if-none-match'),
      ifModifiedSince: header(ctx, 'x-amz-copy-source-if-modified-since'),
      ifUnmodifiedSince: header(ctx, 'x-amz-copy-source-if-unmodified-since'),
    },
    source,
  );
  if (r !== 'ok') throw new S3Error('PreconditionFailed', undefined, { Condition: 'x-amz-copy-source-If-Match' });
}

/**
 * Range: bytes=a-b | bytes=a- | bytes=-n. Syntactically invalid or multi-range headers are
 * ignored (the whole object is sent), as S3 does; a satisfiable-looking range that starts
 * past the end is 'unsatisfiable' (416).
 */
export function parseRange(value: string | undefined, size: number): PlainRange | undefined | 'unsatisfiable' {
  if (value === undefined) return undefined;
  const m = /^\s*bytes=(\d*)-(\d*)\s*$/.exec(value);
  if (!m) return undefined;
  const [, a, b] = m as unknown as [string, string, string];
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  let end = b === '' ? size - 1 : Number(b);
  if (b !== '' && end < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  if (end >= size) end = size - 1;
  return { start, end };
}

/** x-amz-copy-source-range: bytes=first-last, both required and within the source. */
export function parseCopyRange(value: string | undefined, size: number): PlainRange | undefined {
  if (value === undefined) return undefined;
  const m = /^bytes=(\d+)-(\d+)$/.exec(value.trim());
  if (!m || Number(m[2]) < Number(m[1])) {
    throw new S3Error(
      'InvalidArgument',
      'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy',
      { ArgumentName: 'x-amz-copy-source-range', ArgumentValue: value },
    );
  }
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end >= size) {
    throw new S3Error('InvalidArgument', `Range specified is not valid for source object of size: ${size}`, {
      ArgumentName: 'x-amz-copy-source-range',
      ArgumentValue: value,
    });
  }
  return { start, end };
}
