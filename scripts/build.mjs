// `npm run build` (and `npm install`, through "prepare"): compiles src/ to dist/ with tsc and
// records a fingerprint of the sources it was built from. bin/coffer.js runs dist/ only while
// that fingerprint still matches src/ (otherwise the TypeScript sources through tsx), so a
// stale build is never run. Running compiled JavaScript saves the tsx loader's ~30 MiB and its
// start-up time. Without TypeScript (a production install without dev dependencies) it says so
// and leaves bin/coffer.js on tsx.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceFingerprint } from './source-fingerprint.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  console.warn('coffer build: TypeScript is not installed; bin/coffer.js will run the sources through tsx.');
  process.exit(0);
}
rmSync(dist, { recursive: true, force: true });
const fingerprint = sourceFingerprint(join(root, 'src'));
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
if (!existsSync(join(dist, 'cli', 'main.js'))) throw new Error('coffer build: dist/cli/main.js was not produced');
mkdirSync(dist, { recursive: true });
writeFileSync(join(dist, 'SOURCE-FINGERPRINT'), fingerprint + '\n');
console.log(`coffer build: dist/ from src/ (${fingerprint.slice(0, 12)})`);
