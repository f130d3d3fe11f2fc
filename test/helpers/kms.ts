// Assertions on KMS API errors as @aws-sdk/client-kms reports them.
import assert from 'node:assert/strict';
import type { KMSServiceException } from '@aws-sdk/client-kms';

/** Expects a KMS SDK call to fail with this exception name and HTTP status (and message). */
export async function rejectsKms(p: Promise<unknown>, name: string, status = 400, message?: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    const err = e as KMSServiceException;
    assert.equal(err.name, name, `expected ${name}, got ${err.name}: ${err.message}`);
    assert.equal(err.$metadata?.httpStatusCode, status);
    if (message) assert.match(err.message, message);
    return;
  }
  assert.fail(`expected ${name}, but the request succeeded`);
}
