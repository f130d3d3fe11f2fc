// Docs that must stay true for the KMS: every operation the JSON API dispatches appears in the
// KMS table of docs/s3-compatibility.md and in docs/kms.md's error table every error name the
// catalog has.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { OPERATIONS } from '../../src/kms/api/handler.ts';
import { KMS_ERRORS } from '../../src/kms/errors.ts';

test('every KMS operation appears in the KMS section of docs/s3-compatibility.md', () => {
  const doc = readFileSync('docs/s3-compatibility.md', 'utf8');
  const section = doc.slice(doc.indexOf('## KMS'));
  assert.ok(section.length > 100);
  for (const op of Object.keys(OPERATIONS)) assert.match(section, new RegExp(`[|,] ${op}[ ,]`), `${op} missing from the KMS table`);
});

test('every KMS error name is in the error table of docs/kms.md', () => {
  const doc = readFileSync('docs/kms.md', 'utf8');
  for (const name of Object.keys(KMS_ERRORS)) {
    assert.match(doc, new RegExp(`\\| ${name} \\| ${KMS_ERRORS[name as keyof typeof KMS_ERRORS]} \\|`), `${name} missing from docs/kms.md`);
  }
});
