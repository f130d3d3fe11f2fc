// The declarative bootstrap: users, their access keys and inline policies, and buckets with
// their policies, from a JSON document applied at every start (tests, deployments). Applying it
// is idempotent and additive: what it names is created or brought to the stated content;
// nothing it does not name is removed. Every policy is validated before anything is changed.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { isPolicyError } from '../policy/index.ts';
import type { MetadataStore } from '../storage/ports.ts';
import type { IdentityService } from './identities.ts';
import { newBucketEncryption } from './objects.ts';
import { parseBucketPolicy, parseIdentityPolicy, type PolicyService } from './policies.ts';

/** A policy document: JSON text, or the JSON object itself. */
const PolicyDoc = z.union([z.string(), z.record(z.string(), z.unknown())]);

const BootstrapSchema = z
  .object({
    users: z
      .array(
        z
          .object({
            name: z.string(),
            accessKeys: z
              .array(
                z
                  .object({
                    accessKeyId: z.string(),
                    secretAccessKey: z.string(),
                    status: z.enum(['Active', 'Inactive']).optional(),
                  })
                  .strict(),
              )
              .optional(),
            policies: z.array(z.object({ name: z.string(), document: PolicyDoc }).strict()).optional(),
          })
          .strict(),
      )
      .optional(),
    buckets: z.array(z.object({ name: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'a bucket name (3 to 63 lower-case letters, digits, dots and dashes)'), policy: PolicyDoc.optional() }).strict()).optional(),
  })
  .strict();

export type BootstrapDocument = z.infer<typeof BootstrapSchema>;

export class BootstrapError extends Error {
  constructor(message: string) {
    super(`bootstrap: ${message}`);
    this.name = 'BootstrapError';
  }
}

const docText = (d: string | Record<string, unknown>) => (typeof d === 'string' ? d : JSON.stringify(d));

/** Reads the bootstrap from `source`: inline JSON (starting with '{') or a file path. */
export function readBootstrap(source: string): BootstrapDocument {
  let text: string;
  if (source.trimStart().startsWith('{')) text = source;
  else {
    try {
      text = readFileSync(source, 'utf8');
    } catch (e) {
      throw new BootstrapError(`cannot read ${source}: ${(e as Error).message}`);
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new BootstrapError(`not valid JSON: ${(e as Error).message}`);
  }
  const r = BootstrapSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new BootstrapError(`${issue.path.join('.') || 'document'}: ${issue.message}`);
  }
  return r.data;
}

export interface BootstrapDeps {
  meta: MetadataStore;
  identities: IdentityService;
  policies: PolicyService;
  region: string;
  now?: () => number;
  /** New buckets accept SSE-C (default: blocked). */
  allowSseCInNewBuckets?: boolean;
}

export interface BootstrapSummary {
  usersCreated: number;
  keys: number;
  policies: number;
  bucketsCreated: number;
  bucketPolicies: number;
}

export async function applyBootstrap(doc: BootstrapDocument, deps: BootstrapDeps): Promise<BootstrapSummary> {
  // Validate every policy first, so a bad document changes nothing.
  const check = (what: string, parse: () => unknown) => {
    try {
      parse();
    } catch (e) {
      if (isPolicyError(e)) throw new BootstrapError(`${what}: ${(e as Error).message}`);
      throw e;
    }
  };
  for (const u of doc.users ?? []) for (const p of u.policies ?? []) check(`policy ${p.name} of user ${u.name}`, () => parseIdentityPolicy(docText(p.document)));
  for (const b of doc.buckets ?? []) if (b.policy !== undefined) check(`policy of bucket ${b.name}`, () => parseBucketPolicy(b.name, docText(b.policy!)));

  const summary: BootstrapSummary = { usersCreated: 0, keys: 0, policies: 0, bucketsCreated: 0, bucketPolicies: 0 };
  const { identities, policies, meta } = deps;
  try {
    for (const u of doc.users ?? []) {
      if (!(await meta.getUser(u.name))) {
        await identities.createUser(u.name);
        summary.usersCreated++;
      }
      for (const k of u.accessKeys ?? []) {
        await identities.createAccessKey(u.name, { accessKeyId: k.accessKeyId, secretKey: k.secretAccessKey });
        if (k.status === 'Inactive') await identities.setAccessKeyStatus(u.name, k.accessKeyId, 'Inactive');
        summary.keys++;
      }
      for (const p of u.policies ?? []) {
        await policies.putUserPolicy(u.name, p.name, docText(p.document));
        summary.policies++;
      }
    }
    for (const b of doc.buckets ?? []) {
      const encryption = newBucketEncryption(deps.allowSseCInNewBuckets ?? false);
      if (await meta.createBucket({ name: b.name, createdAt: (deps.now ?? Date.now)(), location: deps.region, ...(encryption ? { encryption } : {}) })) summary.bucketsCreated++;
      if (b.policy !== undefined) {
        await policies.putBucketPolicy(b.name, docText(b.policy));
        summary.bucketPolicies++;
      }
    }
  } catch (e) {
    if (e instanceof Error && (e.name === 'IdentityError' || isPolicyError(e))) throw new BootstrapError(e.message);
    throw e;
  }
  return summary;
}
