// `coffer kms ...`: KMS administration on a data directory's stores (the server may be running
// or stopped). `coffer kms import` creates a symmetric key with a chosen id and, optionally,
// chosen 32-byte material, for tests and migrations (docs/kms.md, "Importing keys").
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError, loadConfig, type RawOptions } from '../config/config.ts';
import { isKmsError } from '../kms/errors.ts';
import { KmsService } from '../kms/service.ts';
import { openMetadataStore, openStores, QUOTA_STATUS_SETTING } from '../main.ts';
import type { QuotaStatus } from '../kms/quota.ts';
import { loadAccountId } from '../service/identities.ts';

export type MaterialEncoding = 'auto' | 'base64' | 'hex' | 'raw';

/**
 * 32 bytes of key material from what a file or stdin held: raw bytes, base64 or hex ('auto':
 * exactly 32 bytes are raw, else hex or base64 text, surrounding whitespace ignored). Errors
 * never quote the input. The input buffer is wiped.
 */
export function parseMaterial(input: Buffer, encoding: MaterialEncoding): Buffer {
  try {
    if (encoding === 'raw' || (encoding === 'auto' && input.length === 32)) {
      if (input.length !== 32) throw new ConfigError(`key material: raw material must be exactly 32 bytes, got ${input.length}`);
      return Buffer.from(input);
    }
    const text = input.toString('latin1').trim();
    let out: Buffer | undefined;
    if ((encoding === 'hex' || encoding === 'auto') && /^[0-9a-fA-F]{64}$/.test(text)) out = Buffer.from(text, 'hex');
    else if ((encoding === 'base64' || encoding === 'auto') && /^[A-Za-z0-9+/_-]{43}=?$/.test(text)) out = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (!out || out.length !== 32) {
      throw new ConfigError(
        encoding === 'auto'
          ? `key material: expected 32 raw bytes, 64 hex characters or base64 of 32 bytes (got ${input.length} bytes of something else)`
          : `key material: not ${encoding} of 32 bytes`,
      );
    }
    return out;
  } finally {
    input.fill(0);
  }
}

function readAll(fd: 0 | string): Buffer {
  return readFileSync(fd);
}

export function registerKmsCommands(program: Command, dataDirOptions: (cmd: Command) => Command): void {
  const kms = program.command('kms').description('The built-in KMS: administration on the data directory (the server may be running or stopped)');

  dataDirOptions(
    kms
      .command('import')
      .description('Create a symmetric KMS key with a chosen key id and, optionally, chosen 32-byte key material (tests, migrations); the material is sealed under the root key and never printed')
      .requiredOption('--key-id <uuid>', 'the key id (a UUID); refused if a key with it exists')
      .option('--material-file <file>', 'the key material: a file holding 32 raw bytes, 64 hex characters or base64 of 32 bytes; "-" reads stdin (default: random material)')
      .option('--material-encoding <enc>', 'auto, raw, hex or base64', 'auto')
      .option('--alias <alias/name>', 'also create this alias for the key')
      .option('--description <text>', 'the key description')
      .option('--region <region>', 'region of the key ARN printed (env COFFER_REGION; default us-east-1): use the server\'s')
      .option('--json', 'print the key metadata as JSON'),
  ).action(async (opts: RawOptions & { keyId: string; materialFile?: string; materialEncoding: string; alias?: string; description?: string; json?: boolean }) => {
    const enc = opts.materialEncoding as MaterialEncoding;
    if (!['auto', 'base64', 'hex', 'raw'].includes(enc)) throw new ConfigError(`--material-encoding: auto, raw, hex or base64, got "${opts.materialEncoding}"`);
    let material: Buffer | undefined;
    if (opts.materialFile !== undefined) {
      let raw: Buffer;
      try {
        raw = readAll(opts.materialFile === '-' ? 0 : opts.materialFile);
      } catch (e) {
        throw new ConfigError(`--material-file: cannot read ${opts.materialFile === '-' ? 'stdin' : opts.materialFile} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      material = parseMaterial(raw, enc);
    }
    const config = loadConfig({ ...opts, httpsAddress: 'off', httpAddress: '127.0.0.1:0' });
    const stores = await openStores(config);
    try {
      const service = new KmsService({ store: stores.meta, root: stores.root.key, accountId: await loadAccountId(stores.meta), region: config.region, identityPolicies: async () => [] });
      const m = await service.importKey({
        keyId: opts.keyId,
        ...(material ? { material } : {}),
        ...(opts.alias !== undefined ? { alias: opts.alias } : {}),
        ...(opts.description !== undefined ? { description: opts.description } : {}),
      });
      if (opts.json) {
        console.log(JSON.stringify({ KeyMetadata: m, ...(opts.alias !== undefined ? { AliasName: opts.alias } : {}) }, null, 2));
      } else {
        console.log(`Imported KMS key ${m.KeyId}`);
        console.log(`  ARN:      ${m.Arn}`);
        if (opts.alias !== undefined) console.log(`  alias:    ${opts.alias}`);
        console.log(`  material: ${material ? 'supplied (32 bytes), sealed under the root key' : 'generated (32 random bytes), sealed under the root key'}`);
      }
    } catch (e) {
      if (isKmsError(e)) {
        console.error(`coffer: ${e.type}: ${e.message}`);
        process.exitCode = 1;
        return;
      }
      throw e;
    } finally {
      material?.fill(0);
      await stores.meta.close();
    }
  });

  dataDirOptions(
    kms
      .command('quota')
      .description("The KMS request quota as the running server last published it (every 2 s while it changes): the limit, and per account the requests allowed and throttled in the last second and in all")
      .option('--json', 'print JSON'),
  ).action(async (opts: RawOptions & { json?: boolean }) => {
    const store = openMetadataStore(loadConfig({ dataDir: opts.dataDir, httpsAddress: 'off', httpAddress: '127.0.0.1:0' }));
    try {
      const text = await store.getSetting(QUOTA_STATUS_SETTING);
      if (text === undefined) {
        console.log('No KMS quota status yet: no server has served a KMS call on this data directory since it started.');
        return;
      }
      const st = JSON.parse(text) as QuotaStatus & { at: number; node: string };
      if (opts.json) {
        console.log(JSON.stringify(st, null, 2));
        return;
      }
      console.log(`KMS quota: ${st.limit === 0 ? 'off' : `${st.limit} cryptographic operations per second per account`} (per node; as of ${new Date(st.at).toISOString()}, node ${st.node})`);
      console.log('ACCOUNT        ALLOWED/S  THROTTLED/S  ALLOWED    THROTTLED  LAST THROTTLED');
      for (const a of st.accounts) {
        console.log(
          `${a.accountId.padEnd(14)} ${String(a.allowedLastSecond).padStart(9)}  ${String(a.throttledLastSecond).padStart(11)}  ${String(a.allowedTotal).padEnd(10)} ${String(a.throttledTotal).padEnd(10)} ${a.lastThrottledAt !== undefined ? new Date(a.lastThrottledAt).toISOString() : '-'}`,
        );
      }
    } finally {
      await store.close();
    }
  });
}
