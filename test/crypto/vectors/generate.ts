// Writes the committed test vectors. Run once after an intentional, versioned format change:
//   node --import tsx test/crypto/vectors/generate.ts
// then copy the small vectors into docs/object-format.md and docs/key-hierarchy.md.
import { writeFileSync } from 'node:fs';
import { computeKeyHierarchyVectors, computeObjectVectors } from './compute.ts';

const dir = new URL('.', import.meta.url);
writeFileSync(new URL('object-format.json', dir), JSON.stringify(computeObjectVectors(), null, 2) + '\n');
writeFileSync(new URL('key-hierarchy.json', dir), JSON.stringify(computeKeyHierarchyVectors(), null, 2) + '\n');
console.log('wrote object-format.json and key-hierarchy.json');
