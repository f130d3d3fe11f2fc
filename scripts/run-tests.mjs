#!/usr/bin/env node
// The test command: type-check, then run every test file under test/ with node's test runner
// (through tsx, so the TypeScript runs as written). Node 20's runner has no globbing, so the
// files are found here. `npm test -- PATTERN` runs only the files whose path contains PATTERN.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const filters = process.argv.slice(2);
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const files = walk('test').filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)));
if (filters.length === 0 && !process.env.COFFER_SKIP_TYPECHECK) {
  const tc = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  if (tc.status !== 0) process.exit(tc.status ?? 1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
