// Assembles the policy evaluation vectors from the case files and writes them, one vector per
// block, to test/policy/vectors.json: `node --import tsx test/policy/vectors/build.ts`.
// vectors.test.ts checks that the committed file is what this produces.
import { writeFileSync } from 'node:fs';
import { arnSetCases } from './cases-arn-sets.ts';
import { elementCases } from './cases-elements.ts';
import { ifExistsCases } from './cases-ifexists.ts';
import { s3Cases } from './cases-s3.ts';
import { stringCases } from './cases-strings.ts';
import { typedCases } from './cases-typed.ts';
import type { Vector } from './helpers.ts';

export function buildVectors(): Vector[] {
  return [...s3Cases, ...stringCases, ...typedCases, ...ifExistsCases, ...arnSetCases, ...elementCases];
}

/** The committed text: a JSON array, one vector per block, each part on one line. */
export function formatVectors(vectors: readonly Vector[]): string {
  const j = (v: unknown) => JSON.stringify(v);
  const blocks = vectors.map(
    (v) =>
      `  {\n    "name": ${j(v.name)},\n    "source": ${j(v.source)},\n    "policies": ${j(v.policies)},\n    "request": ${j(v.request)},\n    "expected": ${j(v.expected)}\n  }`,
  );
  return `[\n${blocks.join(',\n')}\n]\n`;
}

export const VECTORS_FILE = new URL('../vectors.json', import.meta.url);

if (process.argv[1]?.endsWith('build.ts')) {
  const vectors = buildVectors();
  writeFileSync(VECTORS_FILE, formatVectors(vectors));
  console.log(`wrote ${vectors.length} vectors`);
}
