// Page-aligned memory for direct I/O (O_DIRECT needs buffers aligned to the device's block
// size). JavaScript cannot ask for an aligned allocation, but WebAssembly memories are mapped
// at page boundaries: their buffers (shared ones included) start on a page.

export const PAGE = 4096;
const WASM_PAGE = 65536;
const aligned = new WeakSet<ArrayBufferLike>();

/** A SharedArrayBuffer of at least `bytes` bytes whose first byte is page aligned. */
export function alignedSharedMemory(bytes: number): SharedArrayBuffer {
  const pages = Math.ceil(bytes / WASM_PAGE);
  const sab = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as unknown as SharedArrayBuffer;
  aligned.add(sab);
  return sab;
}

/** An ArrayBuffer of at least `bytes` bytes whose first byte is page aligned. */
export function alignedMemory(bytes: number): ArrayBuffer {
  const pages = Math.ceil(bytes / WASM_PAGE);
  const ab = new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer;
  aligned.add(ab);
  return ab;
}

/** Whether `view` starts on a page of memory made here. */
export function isPageAligned(view: Uint8Array): boolean {
  return aligned.has(view.buffer) && view.byteOffset % PAGE === 0;
}

/**
 * Copies `source` into `target` (a Buffer over shared memory) at `at`. Buffer#copy and
 * TypedArray#set into a SharedArrayBuffer go through V8's atomic-safe copy, which moves one byte
 * at a time unless source and target are 8-byte aligned alike: request body chunks start
 * anywhere, and copying them into the MD5 worker's slots cost more main-thread time than
 * encrypting them (about 3 GB/s against 9 here). Buffer#fill with a buffer value of the range's
 * length is one plain memcpy.
 */
export function copyIntoShared(target: Buffer, at: number, source: Uint8Array): void {
  if (source.byteLength > 0) target.fill(source, at, at + source.byteLength);
}
