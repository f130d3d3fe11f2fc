#!/usr/bin/env node
// The `coffer` command. Runs the TypeScript sources through tsx's loader, so a fresh
// checkout needs no build step (`npm install && npm start`).
// File writes, fsyncs and renames of concurrent uploads all run on libuv's thread pool; its
// default of 4 threads makes slow fsyncs queue behind each other. Set before first use.
process.env.UV_THREADPOOL_SIZE ??= '16';
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
