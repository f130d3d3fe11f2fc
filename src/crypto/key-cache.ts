// Opened data keys kept in memory for their object's next read (MasterKeyService), compactly.
//
// A small GET whose data key is not kept pays an unseal (an AES-GCM context, a base64 decode)
// and an HKDF for its stream key: about a sixth of its main-thread time. Kept as objects (a
// SecretKey with its Buffer, a Map of derived keys, per entry), a kept key cost ~0.9 KB of heap;
// here the key bytes of every entry share three slabs, and an entry is its id in a Map and a
// slot number: ~0.5 KB with its slot (measured), ~16 MiB for 32,768.
//
// Each slot keeps one data key and the last stream key derived from it (with the stream index
// and salt it was derived with). Copies handed out carry a handle to their slot and the slot's
// generation: once the slot is dropped or reused, a handle from before finds and keeps nothing.
import type { DerivedKeys } from './keys.ts';
import { KEY_BYTES, SecretKey } from './keys.ts';

const SALT_BYTES = 32;
/** Every slab holds 32 bytes per slot (a key or a salt). */
const WIDTH = KEY_BYTES;
if (SALT_BYTES !== WIDTH) throw new Error('key cache slabs hold keys and salts of one width');

/** Slot `slot` of a slab. */
function at(slab: Buffer, slot: number): Buffer {
  return slab.subarray(slot * WIDTH, (slot + 1) * WIDTH);
}

export class KeyCache {
  /** id → slot, least recently used first. */
  readonly #slots = new Map<string, number>();
  readonly #free: number[] = [];
  #next = 0;
  /** Per slot: the data key; the stream key kept, its salt and stream index (-1: none). */
  readonly #keys: Buffer;
  readonly #streamKeys: Buffer;
  readonly #salts: Buffer;
  readonly #indexes: Float64Array;
  /** Per slot: bumped whenever the slot is dropped. */
  readonly #gens: Uint32Array;

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError('a key cache holds at least one key');
    // Zero-filled and untouched until used: only the pages of slots in use count in the RSS.
    this.#keys = Buffer.alloc(max * WIDTH);
    this.#streamKeys = Buffer.alloc(max * WIDTH);
    this.#salts = Buffer.alloc(max * WIDTH);
    this.#indexes = new Float64Array(max).fill(-1);
    this.#gens = new Uint32Array(max);
  }

  get size(): number {
    return this.#slots.size;
  }

  /** A copy of the key kept under `id` (now the most recently used), or undefined. */
  get(id: string): SecretKey | undefined {
    const slot = this.#slots.get(id);
    if (slot === undefined) return undefined;
    this.#touch(id, slot);
    return this.#copy(slot);
  }

  /** Keeps a copy of `key` under `id` (dropping the least recently used past `max`); returns a copy. */
  put(id: string, key: SecretKey): SecretKey {
    let slot = this.#slots.get(id);
    if (slot === undefined) {
      if (this.#slots.size >= this.max) {
        const [oldest, s] = this.#slots.entries().next().value as [string, number];
        this.#drop(oldest, s);
      }
      slot = this.#free.pop() ?? this.#next++;
      this.#slots.set(id, slot);
    } else {
      // Kept again: the most recently used now, its old key and stream key wiped.
      this.#touch(id, slot);
      this.#wipe(slot);
    }
    at(this.#keys, slot).set(key.expose());
    return this.#copy(slot);
  }

  /** Drops every key whose id `drop` selects. */
  deleteWhere(drop: (id: string) => boolean): void {
    for (const [id, slot] of this.#slots) if (drop(id)) this.#drop(id, slot);
  }

  clear(): void {
    this.deleteWhere(() => true);
  }

  /** Makes `id` the most recently used (a Map iterates in insertion order). */
  #touch(id: string, slot: number): void {
    this.#slots.delete(id);
    this.#slots.set(id, slot);
  }

  #copy(slot: number): SecretKey {
    return SecretKey.from(at(this.#keys, slot), new SlotDerived(this, slot, this.#gens[slot]!));
  }

  #drop(id: string, slot: number): void {
    this.#slots.delete(id);
    this.#wipe(slot);
    this.#free.push(slot);
  }

  #wipe(slot: number): void {
    at(this.#keys, slot).fill(0);
    at(this.#streamKeys, slot).fill(0);
    this.#indexes[slot] = -1;
    this.#gens[slot] = (this.#gens[slot]! + 1) >>> 0;
  }

  /** @internal The stream key kept in `slot` for (index, salt), if the slot is still `gen`. */
  derived(slot: number, gen: number, index: number, salt: Uint8Array): Buffer | undefined {
    if (this.#gens[slot] !== gen || this.#indexes[slot] !== index) return undefined;
    return at(this.#salts, slot).equals(salt) ? at(this.#streamKeys, slot) : undefined;
  }

  /** @internal Keeps a stream key in `slot` (in place of the one kept), if the slot is still `gen`. */
  keepDerived(slot: number, gen: number, index: number, salt: Uint8Array, key: Uint8Array): void {
    if (this.#gens[slot] !== gen || salt.length !== WIDTH || key.length !== WIDTH) return;
    at(this.#salts, slot).set(salt);
    at(this.#streamKeys, slot).set(key);
    this.#indexes[slot] = index;
  }
}

/** The DerivedKeys of a key handed out by a KeyCache: its slot, as long as the slot is its key's. */
class SlotDerived implements DerivedKeys {
  constructor(
    private readonly cache: KeyCache,
    private readonly slot: number,
    private readonly gen: number,
  ) {}

  get(index: number, salt: Uint8Array): Buffer | undefined {
    return this.cache.derived(this.slot, this.gen, index, salt);
  }

  set(index: number, salt: Uint8Array, key: Uint8Array): void {
    this.cache.keepDerived(this.slot, this.gen, index, salt, key);
  }
}
