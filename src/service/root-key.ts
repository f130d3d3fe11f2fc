// Where the root key comes from: COFFER_ROOT_KEY, --root-key-file, or (embedded default) a key
// file generated in the data directory, with a loud warning that it sits beside the data.
// A sealed check value in the metadata store catches a wrong root key at start.
import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { labelAad, seal, unseal } from '../crypto/envelope.ts';
import { encodeRootKey, parseRootKey } from '../crypto/hierarchy.ts';
import { SecretKey } from '../crypto/keys.ts';
import type { MetadataStore } from '../storage/ports.ts';

export interface RootKeySource {
  rootKey?: string;
  rootKeyFile?: string;
  dataDir: string;
}

export interface LoadedRootKey {
  key: SecretKey;
  /** Where it came from, for the start banner (never the key itself). */
  origin: 'env' | 'file' | 'generated-file' | 'data-dir-file';
  path?: string;
}

export const DEFAULT_ROOT_KEY_FILE = 'root.key';

export async function loadRootKey(src: RootKeySource): Promise<LoadedRootKey> {
  if (src.rootKey) return { key: parseRootKey(src.rootKey), origin: 'env' };
  if (src.rootKeyFile) {
    return { key: parseRootKey(await fsp.readFile(src.rootKeyFile, 'utf8')), origin: 'file', path: src.rootKeyFile };
  }
  const path = join(src.dataDir, DEFAULT_ROOT_KEY_FILE);
  if (existsSync(path)) return { key: parseRootKey(await fsp.readFile(path, 'utf8')), origin: 'data-dir-file', path };
  await fsp.mkdir(src.dataDir, { recursive: true, mode: 0o700 });
  const key = SecretKey.generate();
  await fsp.writeFile(path, encodeRootKey(key), { mode: 0o600, flag: 'wx' });
  return { key, origin: 'generated-file', path };
}

const CHECK_SETTING = 'root-key-check';
const CHECK_AAD = labelAad('coffer/root-key-check/v1');
const CHECK_TEXT = Buffer.from('coffer root key check');

/** Records a check value on first start; afterwards refuses a root key that does not open it. */
export async function verifyRootKey(meta: MetadataStore, root: SecretKey): Promise<void> {
  const stored = await meta.initSetting(CHECK_SETTING, seal(root, CHECK_TEXT, CHECK_AAD).toString('base64'));
  try {
    unseal(root, Buffer.from(stored, 'base64'), CHECK_AAD);
  } catch {
    throw new Error('the root key does not match this data directory (it cannot open the stored check value)');
  }
}
