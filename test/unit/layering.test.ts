// The import rules of DESIGN.md ("Who imports whom"), checked on every import under src/
// (static, type-only, re-exports and dynamic import(), read by the TypeScript compiler's own
// pre-processor): shared imports nothing else in src; crypto and policy only shared; auth only
// shared and crypto; each storage adapter only shared, storage/ports and itself; service, kms
// and s3api never name an adapter (only src/main.ts does) and never reach up into the layers
// that use them; client imports only crypto and shared.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';

const SRC = resolve('src');

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every module specifier a file imports (import, import type, export from, import()). */
export function importsOf(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

/**
 * The layer of a file under src/: its top folder ('shared', 'crypto', 'service', ...), 'main'
 * for src/main.ts, and inside storage: 'storage/ports', 'storage/conformance' or
 * 'storage/adapter:<name>'.
 */
export function layerOf(srcRelative: string): string {
  const parts = srcRelative.split('/');
  if (parts.length === 1) return parts[0]!.replace(/\.[cm]?[jt]s$/, '');
  if (parts[0] === 'storage') {
    if (parts.length === 2) return `storage/${parts[1]!.replace(/\.[cm]?[jt]s$/, '')}`;
    if (parts[1] === 'conformance') return 'storage/conformance';
    return `storage/adapter:${parts[1]}`;
  }
  return parts[0]!;
}

const isAdapter = (l: string) => l.startsWith('storage/adapter:');
const UPPER = ['s3api', 'http', 'cli', 'main', 'console', 'config'];

/** Why `from` may not import `to`, or undefined if allowed. */
export function violation(from: string, to: string): string | undefined {
  if (from === to) return undefined;
  const only = (allowed: string[], rule: string) => (allowed.includes(to) ? undefined : rule);
  if (from === 'shared') return 'shared imports nothing else in src';
  if (from === 'crypto') return only(['shared'], 'crypto imports only shared');
  if (from === 'policy') return only(['shared'], 'policy imports only shared');
  if (from === 'auth') return only(['shared', 'crypto'], 'auth imports only shared (and crypto)');
  if (from === 'client') return only(['shared', 'crypto'], 'client imports only crypto and shared, never server code');
  if (isAdapter(from)) return only(['shared', 'storage/ports'], 'a storage adapter imports only shared and storage/ports');
  if (from === 'storage/ports') return only(['shared'], 'storage/ports imports only shared');
  if (from === 'storage/conformance') return only(['shared', 'storage/ports'], 'the conformance suite uses ports, never a named adapter');
  if (isAdapter(to) && from !== 'main') return 'only src/main.ts names storage adapters';
  if ((from === 'service' || from === 'kms') && UPPER.includes(to)) return `${from} never imports the layers that use it`;
  if (from === 's3api' && ['cli', 'main', 'console', 'http'].includes(to)) return 's3api never imports the layers that use it';
  return undefined;
}

interface Edge {
  file: string;
  spec: string;
  from: string;
  to: string;
}

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const file of walk(SRC)) {
    const rel = relative(SRC, file).split('\\').join('/');
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue; // node: builtins and packages
      const target = relative(SRC, resolve(dirname(file), spec)).split('\\').join('/');
      assert.ok(!target.startsWith('..'), `${rel} imports ${spec}, outside src/`);
      out.push({ file: rel, spec, from: layerOf(rel), to: layerOf(target) });
    }
  }
  return out;
}

describe('the import scanner', () => {
  test('sees every kind of import, and no commented-out one', () => {
    const text = [
      "import a from './a.ts';",
      "import type {\n  B,\n  C,\n} from '../b.ts';",
      "export * from './c.ts';",
      "export { d } from './d.ts';",
      "import './side-effect.ts';",
      "const e = await import('../e.ts');",
      "// import nope from './commented.ts';",
      "/* import nope2 from './block.ts'; */",
      "const s = \"import x from './in-a-string.ts'\";",
      "import { pino } from 'pino';",
    ].join('\n');
    assert.deepEqual(importsOf(text), ['./a.ts', '../b.ts', './c.ts', './d.ts', './side-effect.ts', '../e.ts', 'pino']);
  });

  test('names layers and judges edges', () => {
    assert.equal(layerOf('main.ts'), 'main');
    assert.equal(layerOf('storage/ports.ts'), 'storage/ports');
    assert.equal(layerOf('storage/fs-blob/fs-blob-store.ts'), 'storage/adapter:fs-blob');
    assert.equal(layerOf('s3api/handlers/objects.ts'), 's3api');
    assert.ok(violation('service', 'storage/adapter:sqlite-meta'));
    assert.ok(violation('s3api', 'storage/adapter:fs-blob'));
    assert.ok(violation('storage/adapter:fs-blob', 'storage/adapter:sqlite-meta'));
    assert.ok(violation('shared', 'crypto'));
    assert.ok(violation('crypto', 'service'));
    assert.ok(violation('auth', 's3api'));
    assert.equal(violation('auth', 'crypto'), undefined);
    assert.equal(violation('main', 'storage/adapter:fs-blob'), undefined);
    assert.equal(violation('service', 'storage/ports'), undefined);
    assert.equal(violation('s3api', 'service'), undefined);
  });
});

describe('src/ follows DESIGN.md "Who imports whom"', () => {
  const all = edges();

  test('the scan sees the whole tree', () => {
    const layers = new Set(all.map((e) => e.from));
    for (const l of ['shared', 'crypto', 'auth', 'service', 's3api', 'main', 'storage/adapter:fs-blob', 'storage/adapter:sqlite-meta']) {
      assert.ok(layers.has(l) || all.some((e) => e.to === l), `layer ${l} found`);
    }
    assert.ok(all.length > 30, `${all.length} imports`);
  });

  const rules: [string, (e: Edge) => boolean][] = [
    ['shared imports nothing else in src', (e) => e.from === 'shared'],
    ['crypto imports only shared', (e) => e.from === 'crypto'],
    ['policy imports only shared', (e) => e.from === 'policy'],
    ['auth imports only shared (and crypto)', (e) => e.from === 'auth'],
    ['storage adapters import only shared and storage/ports', (e) => isAdapter(e.from) || e.from.startsWith('storage/')],
    ['service and kms never import storage adapters or upper layers', (e) => e.from === 'service' || e.from === 'kms'],
    ['s3api never imports storage adapters', (e) => e.from === 's3api'],
    ['only src/main.ts names storage adapters', (e) => isAdapter(e.to) && !isAdapter(e.from)],
    ['client imports only crypto and shared', (e) => e.from === 'client'],
  ];
  for (const [name, applies] of rules) {
    test(name, () => {
      const bad = all
        .filter(applies)
        .map((e) => ({ e, why: violation(e.from, e.to) }))
        .filter((x) => x.why !== undefined)
        .map((x) => `src/${x.e.file} imports '${x.e.spec}' (${x.e.to}): ${x.why}`);
      assert.deepEqual(bad, []);
    });
  }
});
