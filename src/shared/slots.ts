// Slots: page-aligned pieces of shared memory (about a MiB each) that the main thread and the
// worker threads all hold, so object data moves between them by slot number, never by copy or
// transfer. A fresh ArrayBuffer per MiB (or per transfer, which makes a new one on the other
// side) makes V8 count a MiB of new external memory each time and run full garbage collections
// to match, which cost more than the cryptography itself. GET windows use them: blob bytes are
// read in (O_DIRECT: slots are page aligned) and decrypted in place by the crypto worker.
import { alignedSharedMemory, PAGE } from './aligned-memory.ts';

/** Bytes per slot: a window of 16 sealed segments and its header, a page either side, whole pages. */
export const SLOT_BYTES = Math.ceil((40 + 16 * (65536 + 16) + 2 * PAGE) / PAGE) * PAGE;
const SLAB_SLOTS = 8;
/** At most 64 slots (64 MiB, touched only as used); beyond that readers decrypt on their own. */
const MAX_SLABS = 8;

export interface Slot {
  readonly index: number;
  /** The whole slot (SLOT_BYTES), page aligned. */
  readonly bytes: Buffer;
}

export interface SlabMessage {
  t: 'slab';
  index: number;
  sab: SharedArrayBuffer;
  slotBytes: number;
  slots: number;
}

/**
 * Another shared memory the workers hold beside the slabs (the MD5 worker's slots, which a sealed
 * upload's plaintext is read from: seal-offload.ts); `sab` undefined forgets region `id`.
 */
export interface RegionMessage {
  t: 'region';
  id: number;
  sab: SharedArrayBuffer | undefined;
}

const slabs: SharedArrayBuffer[] = [];
const freeSlots: number[] = [];
const regions = new Map<number, SharedArrayBuffer>();
let nextRegion = 1;
const holders = new Set<(m: SlabMessage | RegionMessage) => void>();

function slabMessage(index: number): SlabMessage {
  return { t: 'slab', index, sab: slabs[index]!, slotBytes: SLOT_BYTES, slots: SLAB_SLOTS };
}

/**
 * Tells `post` (a worker's postMessage) of every slab, now and as they are made. Returns a
 * function that stops it (the worker is gone).
 */
export function shareSlabsWith(post: (m: SlabMessage | RegionMessage) => void): () => void {
  for (let i = 0; i < slabs.length; i++) post(slabMessage(i));
  for (const [id, sab] of regions) post({ t: 'region', id, sab });
  holders.add(post);
  return () => holders.delete(post);
}

/** Gives `sab` to every holder of the slabs, now and to come; returns its region id. */
export function shareRegion(sab: SharedArrayBuffer): number {
  const id = nextRegion++;
  regions.set(id, sab);
  for (const post of holders) post({ t: 'region', id, sab });
  return id;
}

/** Takes region `id` back from the holders (its owner is gone). */
export function unshareRegion(id: number): void {
  if (!regions.delete(id)) return;
  for (const post of holders) post({ t: 'region', id, sab: undefined });
}

/** A free slot, or undefined when all are in use. */
export function takeSlot(): Slot | undefined {
  if (freeSlots.length === 0) {
    if (slabs.length >= MAX_SLABS) return undefined;
    const sab = alignedSharedMemory(SLAB_SLOTS * SLOT_BYTES);
    const index = slabs.push(sab) - 1;
    for (let i = SLAB_SLOTS - 1; i >= 0; i--) freeSlots.push(index * SLAB_SLOTS + i);
    for (const post of holders) post(slabMessage(index));
  }
  const index = freeSlots.pop()!;
  return { index, bytes: Buffer.from(slabs[Math.floor(index / SLAB_SLOTS)]!, (index % SLAB_SLOTS) * SLOT_BYTES, SLOT_BYTES) };
}

export function returnSlot(slot: Slot): void {
  freeSlots.push(slot.index);
}

/** In a worker: the slabs it has been told of, and views of their slots. */
export class SlotViews {
  readonly #slabs: SlabMessage[] = [];
  readonly #regions = new Map<number, Buffer>();

  add(m: SlabMessage | RegionMessage): void {
    if (m.t === 'slab') this.#slabs[m.index] = m;
    else if (m.sab) this.#regions.set(m.id, Buffer.from(m.sab));
    else this.#regions.delete(m.id);
  }

  /** The whole of shared region `id`. */
  region(id: number): Buffer {
    const r = this.#regions.get(id);
    if (!r) throw new Error('unknown region');
    return r;
  }

  view(slot: number, length: number): Buffer {
    const s = this.#slabs[Math.floor(slot / SLAB_SLOTS)];
    if (!s) throw new Error('unknown slot');
    return Buffer.from(s.sab, (slot % s.slots) * s.slotBytes, length);
  }
}

/** Slots taken and not yet returned (for tests and diagnostics). */
export function slotsInUse(): number {
  return slabs.length * SLAB_SLOTS - freeSlots.length;
}
