// Users with known keys for policy tests: a bootstrap document and SDK clients acting as them.
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import assert from 'node:assert/strict';

export interface TestUser {
  name: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export function testUser(name: string, n: number): TestUser {
  return { name, accessKeyId: `AKIATEST${String(n).padStart(12, '0')}`, secretAccessKey: `secret-of-${name}-`.padEnd(40, 'x') };
}

export function clientAs(user: { accessKeyId: string; secretAccessKey: string }, endpoint: string, caPath?: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey },
    ...(caPath ? { requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca: readFileSync(caPath) }) }) } : {}),
  });
}

/** Asserts the promise fails with this S3 error code (and HTTP status). */
export async function rejectsWith(p: Promise<unknown>, code: string, status?: number): Promise<void> {
  try {
    await p;
  } catch (e) {
    const err = e as S3ServiceException;
    assert.equal(err.name, code, `expected ${code}, got ${err.name}: ${err.message}`);
    if (status !== undefined) assert.equal(err.$metadata?.httpStatusCode, status);
    return;
  }
  assert.fail(`expected ${code}, but the request succeeded`);
}

export const allowAll = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] };
