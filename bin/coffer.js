#!/usr/bin/env -S node --initial-old-space-size=128
// The flag on the line above (also in package.json's "start" and used by `npm run bench`; give
// it when running `node bin/coffer.js` yourself): V8 sizes a fresh process's old generation for
// a few MiB of objects, and an upload's stream of short-lived 64 KiB buffers (socket reads,
// cipher output) then makes it run full mark-compact collections ~30 times a second instead of
// cheap scavenges. A 64 MiB initial limit changes that (the heap itself stays ~10 MiB, RSS the
// same): 256 MiB PUTs 300-340 -> 470-520 MB/s here. 64 MiB was not enough once the heap had
// served mixed traffic (1 MiB and 4 KiB PUTs and GETs, as the bench's warm-up): V8 then shrank
// the limit to just above the live heap (~17 MiB) and 1 MiB PUTs ran 4 mark-compacts a second;
// 128 MiB keeps it at ~0.1/s (1 MiB PUT +9-13%, 1 GiB peak RSS the same). See
// docs/performance.md, "Session 4" and "Session 11".
// The `coffer` command. Runs the compiled JavaScript in dist/ when it was built from exactly
// the sources in src/ (`npm run build`, also run by `npm install`), otherwise the TypeScript
// sources through tsx's loader: a fresh checkout needs no build step, and a stale build is
// never run. COFFER_RUN_SOURCES=1 always runs the sources.
// libuv's thread pool (file writes and fsyncs) keeps node's default of 4 threads. This file
// used to set UV_THREADPOOL_SIZE=16 here, which never took effect: libuv reads it once, when
// the pool starts, and node had already started it to read this ES module. Made effective
// (session 5), 16 threads measured no faster on 1 MiB PUTs (347.5 against 342.8 MB/s, four
// alternating runs each) and made each file operation cost 1.5-2.5 times the CPU (more threads
// to wake on two cores). Set UV_THREADPOOL_SIZE in the environment to change it.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceFingerprint } from '../scripts/source-fingerprint.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', 'SOURCE-FINGERPRINT');
const built =
  process.env.COFFER_RUN_SOURCES !== '1' &&
  existsSync(stamp) &&
  readFileSync(stamp, 'utf8').trim() === sourceFingerprint(join(root, 'src'));
if (built) {
  await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
