// A fingerprint of the TypeScript sources: SHA-256 over every file's path and content under
// src/, in sorted order. Shared by scripts/build.mjs (which records it in dist/) and
// bin/coffer.js (which runs dist/ only while it matches).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export function sourceFingerprint(srcDir) {
  const files = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) files.push(p);
    }
  };
  walk(srcDir);
  files.sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(relative(srcDir, f).split('\\').join('/'));
    h.update('\0');
    h.update(readFileSync(f));
    h.update('\0');
  }
  return h.digest('hex');
}
