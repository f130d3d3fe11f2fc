// Docs that must stay true: the error catalog in docs/errors.md matches src/shared/errors.ts,
// and every operation the router knows appears in the S3 compatibility table.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { withTable } from '../scripts/gen-error-doc.ts';

test('docs/errors.md lists exactly the error catalog', () => {
  const doc = readFileSync('docs/errors.md', 'utf8');
  assert.equal(doc, withTable(doc), 'docs/errors.md is stale: run `node --import tsx scripts/gen-error-doc.ts`');
});

test('every routed operation appears in docs/s3-compatibility.md', () => {
  const router = readFileSync('src/s3api/router.ts', 'utf8');
  const union = router.slice(router.indexOf('export type OperationName'), router.indexOf('export interface Operation'));
  const ops = [...union.matchAll(/'(\w+)'/g)].map((m) => m[1]!);
  assert.ok(ops.length > 15);
  const doc = readFileSync('docs/s3-compatibility.md', 'utf8');
  for (const op of ops) assert.match(doc, new RegExp(`\\| ${op} \\|`), `${op} missing from docs/s3-compatibility.md`);
});
