// The KMS audit trail: every KMS call (from the KMS API, and from S3 on a user's behalf)
// becomes one event in CloudTrail's shape, stored append-only and hash-chained through the
// AuditStore port. Events carry the request's parameters that are not secret (key ids as the
// caller named them, key specs, the encryption context, which AWS too logs in the clear) and
// never plaintexts, data keys or ciphertext blobs. docs/kms.md, "Audit trail".
import { randomUUID } from 'node:crypto';
import { canonicalJson, chainHash, GENESIS_HASH } from '../shared/audit-chain.ts';
import type { Principal } from '../service/identities.ts';
import type { AuditAppend, AuditRecord, AuditStore } from '../storage/ports.ts';

export const EVENT_VERSION = '1.11';
export const KMS_EVENT_SOURCE = 'kms.amazonaws.com';

/** Who made a call, as the audit trail records it (a subset of KmsCaller). */
export interface AuditCaller {
  principal: Principal;
  viaService?: string;
  sourceIp?: string;
  userAgent?: string;
  requestId?: string;
  accessKeyId?: string;
}

export interface CloudTrailEvent {
  eventVersion: string;
  userIdentity: {
    type?: string;
    principalId?: string;
    arn?: string;
    accountId: string;
    accessKeyId?: string;
    userName?: string;
    invokedBy?: string;
  };
  eventTime: string;
  eventSource: string;
  eventName: string;
  awsRegion: string;
  sourceIPAddress: string;
  userAgent: string;
  requestParameters: Record<string, unknown> | null;
  responseElements: Record<string, unknown> | null;
  additionalEventData?: Record<string, unknown>;
  errorCode?: string;
  errorMessage?: string;
  requestID?: string;
  eventID: string;
  readOnly: boolean;
  resources: { ARN: string; accountId: string; type: 'AWS::KMS::Key' }[];
  eventType: 'AwsApiCall' | 'AwsServiceEvent';
  managementEvent: true;
  recipientAccountId: string;
  eventCategory: 'Management';
}

/** Operations that change nothing (CloudTrail's readOnly). */
const READ_ONLY = /^(Describe|List|Get|Encrypt$|Decrypt$|ReEncrypt$|GenerateDataKey|GenerateRandom$)/;

/** AWS's event time: ISO 8601 to the second, UTC. */
export function eventTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** "s3.us-east-1.amazonaws.com" (kms:ViaService) → "s3.amazonaws.com" (invokedBy). */
export function invokedBy(viaService: string): string {
  const m = /^([a-z0-9-]+)\.[a-z0-9-]+\.amazonaws\.com$/.exec(viaService);
  return m ? `${m[1]}.amazonaws.com` : viaService;
}

export function keyIdOfArn(arn: string): string {
  return arn.slice(arn.lastIndexOf('/') + 1);
}

export interface ApiEventInput {
  caller: AuditCaller;
  eventName: string;
  time: number;
  region: string;
  accountId: string;
  requestParameters: Record<string, unknown> | null;
  responseElements?: Record<string, unknown> | null;
  keyArns: string[];
  error?: { code: string; message: string };
}

/** A call's event (eventType AwsApiCall). */
export function apiEvent(i: ApiEventInput): CloudTrailEvent {
  const p = i.caller.principal;
  const via = i.caller.viaService ? invokedBy(i.caller.viaService) : undefined;
  const accessKeyId = i.caller.accessKeyId ?? p.accessKeyId;
  return {
    eventVersion: EVENT_VERSION,
    userIdentity: {
      type: p.type === 'Anonymous' ? 'AWSAccount' : p.type,
      principalId: p.userId,
      arn: p.arn,
      accountId: p.account,
      ...(accessKeyId ? { accessKeyId } : {}),
      ...(p.userName ? { userName: p.userName } : {}),
      ...(via ? { invokedBy: via } : {}),
    },
    eventTime: eventTime(i.time),
    eventSource: KMS_EVENT_SOURCE,
    eventName: i.eventName,
    awsRegion: i.region,
    sourceIPAddress: i.caller.sourceIp ?? via ?? 'AWS Internal',
    userAgent: i.caller.userAgent ?? via ?? 'AWS Internal',
    requestParameters: i.requestParameters,
    responseElements: i.error ? null : (i.responseElements ?? null),
    ...(i.error ? { errorCode: i.error.code, errorMessage: i.error.message } : {}),
    requestID: i.caller.requestId ?? randomUUID(),
    eventID: randomUUID(),
    readOnly: READ_ONLY.test(i.eventName),
    resources: i.keyArns.map((ARN) => ({ ARN, accountId: i.accountId, type: 'AWS::KMS::Key' as const })),
    eventType: 'AwsApiCall',
    managementEvent: true,
    recipientAccountId: i.accountId,
    eventCategory: 'Management',
  };
}

/** What KMS does by itself (DeleteKey at the end of the window, RotateKey when due): eventType AwsServiceEvent. */
export function serviceEvent(i: { eventName: string; time: number; region: string; accountId: string; keyArn: string; additionalEventData?: Record<string, unknown> }): CloudTrailEvent {
  return {
    eventVersion: EVENT_VERSION,
    userIdentity: { accountId: i.accountId, invokedBy: KMS_EVENT_SOURCE },
    eventTime: eventTime(i.time),
    eventSource: KMS_EVENT_SOURCE,
    eventName: i.eventName,
    awsRegion: i.region,
    sourceIPAddress: KMS_EVENT_SOURCE,
    userAgent: KMS_EVENT_SOURCE,
    requestParameters: null,
    responseElements: null,
    additionalEventData: { keyId: i.keyArn, ...i.additionalEventData },
    eventID: randomUUID(),
    readOnly: false,
    resources: [{ ARN: i.keyArn, accountId: i.accountId, type: 'AWS::KMS::Key' }],
    eventType: 'AwsServiceEvent',
    managementEvent: true,
    recipientAccountId: i.accountId,
    eventCategory: 'Management',
  };
}

/** The principal an event is filed under: the caller's ARN, or the service for service events. */
function principalOf(e: CloudTrailEvent): string {
  return e.userIdentity.arn ?? e.userIdentity.invokedBy ?? '';
}

/** The row to append for an event (its canonical JSON and filter columns). */
export function toAppend(e: CloudTrailEvent, time: number): AuditAppend {
  return {
    event: canonicalJson(e),
    time,
    eventName: e.eventName,
    principalArn: principalOf(e),
    ...(e.errorCode ? { errorCode: e.errorCode } : {}),
    keyIds: e.resources.map((r) => keyIdOfArn(r.ARN)),
  };
}

// ---- verification ----

export interface AuditVerifyResult {
  ok: boolean;
  /** Events checked (all of them when ok). */
  count: number;
  head?: { seq: number; hash: string };
  /** The first event that fails, and why. */
  firstBad?: { seq: number; reason: string };
}

function checkRecord(r: AuditRecord, prevHash: string, expectedSeq: number): string | undefined {
  if (r.seq !== expectedSeq) return r.seq > expectedSeq ? `missing: the trail jumps from ${expectedSeq - 1} to ${r.seq}` : `out of order (after ${expectedSeq - 1})`;
  if (chainHash(prevHash, r.event) !== r.hash) return 'hash mismatch: the event (or its hash) was changed, or an event before it was removed';
  let e: CloudTrailEvent;
  try {
    e = JSON.parse(r.event) as CloudTrailEvent;
  } catch {
    return 'not JSON';
  }
  if (canonicalJson(e) !== r.event) return 'not in canonical form';
  // The filter columns must say what the (hashed) event says, or a filter could hide it.
  if (eventTime(r.time) !== e.eventTime) return `time column ${r.time} disagrees with eventTime ${e.eventTime}`;
  if (r.eventName !== e.eventName) return `eventName column ${r.eventName} disagrees with the event`;
  if (r.principalArn !== principalOf(e)) return `principal column ${r.principalArn} disagrees with the event`;
  if ((r.errorCode ?? undefined) !== (e.errorCode ?? undefined)) return 'errorCode column disagrees with the event';
  const keys = [...new Set((e.resources ?? []).map((x) => keyIdOfArn(x.ARN)))];
  if (JSON.stringify(keys) !== JSON.stringify(r.keyIds)) return 'key columns disagree with the event resources';
  return undefined;
}

/** Recomputes the whole chain from the first event; reports the first event that fails. */
export async function verifyAuditTrail(store: AuditStore, opts: { pageSize?: number; onProgress?: (n: number) => void } = {}): Promise<AuditVerifyResult> {
  let prev = GENESIS_HASH;
  let seq = 0;
  let count = 0;
  for (;;) {
    const page = await store.listAudit({ afterSeq: seq, limit: opts.pageSize ?? 1000 });
    if (page.length === 0) break;
    for (const r of page) {
      const bad = checkRecord(r, prev, seq + 1);
      if (bad) return { ok: false, count, firstBad: { seq: r.seq > seq + 1 ? seq + 1 : r.seq, reason: bad } };
      prev = r.hash;
      seq = r.seq;
      count++;
    }
    opts.onProgress?.(count);
  }
  const head = await store.auditHead();
  // Appends while verifying are fine; a head that is not what we reached is not.
  if (head && head.seq === seq && head.hash !== prev) return { ok: false, count, firstBad: { seq, reason: 'head hash mismatch' } };
  return { ok: true, count, ...(count ? { head: { seq, hash: prev } } : {}) };
}
