// The KMS figures, on targets that speak the KMS JSON 1.1 API on their endpoint (Coffer):
// GenerateDataKey and Decrypt calls per second, driven like the S3 figures (the same load
// generator, `measure`, concurrency and deadlines), each request a hand-signed
// `POST /` with `X-Amz-Target: TrentService.<Op>` (SigV4 service `kms`, body hash signed).
// Set-up (CreateKey, the blobs to decrypt) and the round-trip check go through
// @aws-sdk/client-kms, so what is measured is also what a real client gets.
//
// Also the hook for the SSE-KMS S3 figures (see SSE_KMS_FIGURES below).
import { createHash } from 'node:crypto';
import { Agent as HttpsAgent } from 'node:https';
import { CreateKeyCommand, DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpError, S3Client, type Result } from './client.ts';
import type { Running } from './targets.ts';
import { measure, progress, recordPhase, runTinyPutGet, type Plan, type TargetResult } from './workloads.ts';

/**
 * SSE-KMS 4 KiB PUT/GET, without and with S3 Bucket Keys (phases `PUT/GET SSE-KMS 4KiB` and
 * `PUT/GET SSE-KMS+BK 4KiB`, in the KMS lines of the report); BENCH_SSE_KMS=0 leaves them out.
 */
export const SSE_KMS_FIGURES = !['0', 'false', 'no'].includes((process.env.BENCH_SSE_KMS ?? '1').toLowerCase());

/** BENCH_KMS=0 leaves the KMS figures (and the SSE-KMS ones) out. */
export const KMS_FIGURES = !['0', 'false', 'no'].includes((process.env.BENCH_KMS ?? '1').toLowerCase());

/** The phases this module records, in report order. */
export const KMS_PHASES = ['KMS GenerateDataKey', 'KMS Decrypt'] as const;
export const SSE_KMS_PHASES = ['PUT SSE-KMS 4KiB', 'GET SSE-KMS 4KiB', 'PUT SSE-KMS+BK 4KiB', 'GET SSE-KMS+BK 4KiB'] as const;

const CONTEXT = { bench: 'coffer-kms', purpose: 'data key' };
/** Distinct blobs Decrypt cycles through (made with the SDK before the phase). */
const BLOBS = 64;

function sdkClient(target: Running): KMSClient {
  const ep = target.endpoint;
  return new KMSClient({
    endpoint: ep.url,
    region: ep.creds.region,
    credentials: { accessKeyId: ep.creds.accessKeyId, secretAccessKey: ep.creds.secretAccessKey },
    requestHandler: new NodeHttpHandler(ep.ca ? { httpsAgent: new HttpsAgent({ ca: ep.ca, keepAlive: true }) } : {}),
  });
}

/** One KMS JSON request, prepared once (body and its SHA-256), signed afresh per call. */
class KmsCall {
  readonly body: Buffer;
  readonly hash: string;
  readonly headers: Record<string, string>;
  constructor(operation: string, input: unknown) {
    this.body = Buffer.from(JSON.stringify(input));
    this.hash = createHash('sha256').update(this.body).digest('hex');
    this.headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `TrentService.${operation}` };
  }
  async send(client: S3Client): Promise<Result> {
    const r = await client.request('POST', '/', { body: this.body, headers: this.headers, payloadHash: this.hash });
    if (r.status !== 200) throw new HttpError('POST', `/ ${this.headers['x-amz-target']}`, r);
    if (r.bytes === 0) throw new Error(`${this.headers['x-amz-target']}: empty 200 response`);
    return r;
  }
}

/**
 * GenerateDataKey (AES_256, with an encryption context) and Decrypt (of 64 blobs made by
 * GenerateDataKey, with the same context and the KeyId, as SSE-KMS and the Encryption SDK
 * call it) at the plan's KMS concurrency; then, when SSE_KMS_FIGURES is on, runSseKms.
 */
export async function runKms(target: Running, plan: Plan, result: TargetResult): Promise<void> {
  if (!target.kms || !KMS_FIGURES) return;
  try {
    await kmsPhases(target, plan, result);
  } catch (e) {
    // Recorded (the run exits 1) without aborting the target: its memory check still runs.
    result.problems.push(`KMS figures aborted: ${(e as Error).message.slice(0, 300)}`);
    progress(`   KMS figures aborted: ${(e as Error).message}`);
  }
}

async function kmsPhases(target: Running, plan: Plan, result: TargetResult): Promise<void> {
  const sdk = sdkClient(target);
  const raw = new S3Client(target.endpoint, 64, undefined, 'kms');
  try {
    const key = (await sdk.send(new CreateKeyCommand({ Description: 'bench' }))).KeyMetadata!;
    const keyArn = key.Arn!;
    // The blobs Decrypt will cycle through, and the check that Decrypt gives the data key back.
    const made = await Promise.all(
      Array.from({ length: BLOBS }, () => sdk.send(new GenerateDataKeyCommand({ KeyId: keyArn, KeySpec: 'AES_256', EncryptionContext: CONTEXT }))),
    );
    const back = await sdk.send(new DecryptCommand({ CiphertextBlob: made[0]!.CiphertextBlob, KeyId: keyArn, EncryptionContext: CONTEXT }));
    if (!back.Plaintext || !Buffer.from(back.Plaintext).equals(Buffer.from(made[0]!.Plaintext!))) {
      result.problems.push('KMS: Decrypt did not return the data key GenerateDataKey made');
      throw new Error('KMS: data key round trip failed');
    }
    result.verified.push('KMS GenerateDataKey/Decrypt data key round trip ok');

    const generate = new KmsCall('GenerateDataKey', { KeyId: keyArn, KeySpec: 'AES_256', EncryptionContext: CONTEXT });
    const decrypts = made.map(
      (m) => new KmsCall('Decrypt', { CiphertextBlob: Buffer.from(m.CiphertextBlob!).toString('base64'), KeyId: keyArn, EncryptionContext: CONTEXT }),
    );
    await measure(target, 'warmup', { concurrency: plan.kms.concurrency, maxOps: 400, maxMs: 5_000 }, async (i) => {
      await generate.send(raw);
      return (await decrypts[i % BLOBS]!.send(raw)).bytes;
    });
    // (No object bytes move: MB/s is 0 for these phases; the figure is calls per second.)
    recordPhase(result, await measure(target, 'KMS GenerateDataKey', plan.kms, async () => (await generate.send(raw), 0)));
    recordPhase(result, await measure(target, 'KMS Decrypt', plan.kms, async (i) => (await decrypts[i % BLOBS]!.send(raw), 0)));

    if (SSE_KMS_FIGURES) await runSseKms(target, plan, result, keyArn);
  } finally {
    raw.close();
    sdk.destroy();
  }
}

/**
 * SSE-KMS 4 KiB PUT/GET under `keyArn`, without and with Bucket Keys: the standard 4 KiB loop
 * (runTinyPutGet) with the SSE-KMS request headers on every PUT; called when SSE_KMS_FIGURES is on.
 */
export async function runSseKms(target: Running, plan: Plan, result: TargetResult, keyArn: string): Promise<void> {
  const s3 = new S3Client(target.endpoint, 64);
  try {
    for (const bucketKey of [false, true]) {
      progress(`   SSE-KMS 4 KiB, Bucket Key ${bucketKey ? 'enabled' : 'disabled'}`);
      await runTinyPutGet(target, s3, plan, result, {
        label: bucketKey ? 'SSE-KMS+BK 4KiB' : 'SSE-KMS 4KiB',
        prefix: bucketKey ? 'kms4bk' : 'kms4',
        putHeaders: {
          'x-amz-server-side-encryption': 'aws:kms',
          'x-amz-server-side-encryption-aws-kms-key-id': keyArn,
          'x-amz-server-side-encryption-bucket-key-enabled': String(bucketKey),
        },
      });
    }
  } finally {
    s3.close();
  }
}
