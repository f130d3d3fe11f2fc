// MD5 over several independent streams at once, in WebAssembly SIMD ("multi-buffer" MD5, as
// Intel's ISA-L and MinIO's md5-simd do it in assembly for the same reason: the S3 ETag).
//
// MD5 is one long chain of dependent 32-bit operations: a core hashing one stream waits on
// every step, and OpenSSL's assembly reaches ~650 MB/s here. Nothing makes one stream faster,
// but concurrent uploads are independent streams: a 128-bit vector holds the same 32-bit word of
// four streams, so one chain of vector operations advances four hashes: ~2.2 GB/s per core here
// against OpenSSL's ~700 MB/s. (Two chains interleaved, eight lanes, measured no faster: GROUPS.)
// A scalar function (one stream, the same state layout) serves the rounds with one stream to
// hash and the final padded blocks.
//
// ONE STEP'S CHAIN. A step is a' = b + rotl(a + f(b, c, d) + K + M, s), and the next step's b
// is a': the operations after b is known are the step's latency, and 64 of them in a row are
// the block's. a + K + M, and whatever part of f does not involve b, are worked out meanwhile.
// So G = (b & d) | (c & ~d) is added as its two terms (disjoint bits: | is +), c & ~d ahead,
// and H as b ^ (c ^ d): one operation on b each instead of two (G as c ^ (d & (b ^ c)) had
// three). Measured: one stream +17%, four lanes +10%, against the forms of RFC 1321.
//
// The module is generated here (wasm-emit.ts) and works on a memory the caller gives it, where
// the message blocks already are: nothing is copied in.
import { FunctionBuilder, I32, V128, memarg, wasmModule } from './wasm-emit.ts';

// prettier-ignore
const K = [
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];
const S = [
  [7, 12, 17, 22],
  [5, 9, 14, 20],
  [4, 11, 16, 23],
  [6, 10, 15, 21],
];
/** Which message word step i adds. */
function word(i: number): number {
  const r = i >> 4;
  return r === 0 ? i : r === 1 ? (5 * i + 1) % 16 : r === 2 ? (3 * i + 5) % 16 : (7 * i) % 16;
}
export const MD5_INIT = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

// SIMD opcodes (after the 0xfd prefix)
const V_LOAD = 0x00;
const V_STORE = 0x0b;
const V_SHUFFLE = 0x0d;
const V_NOT = 0x4d;
const V_AND = 0x4e;
const V_ANDNOT = 0x4f;
const V_OR = 0x50;
const V_XOR = 0x51;
const I32X4_SHL = 0xab;
const I32X4_SHR_U = 0xad;
const I32X4_ADD = 0xae;

/** Groups of four lanes interleaved in one function (2 = eight streams per call: no faster here). */
export const GROUPS = 1;
export const LANES = 4 * GROUPS;

/** Layout of the engine's control area (at `base` in the memory; CONTROL_BYTES long). */
const K_TABLE = 0; // 64 vectors: K[i] in every lane
const M_SCRATCH = 1024; // GROUPS x 16 vectors: the current block's words, transposed
const LANE_STATE = M_SCRATCH + GROUPS * 256; // GROUPS x (A, B, C, D) vectors
const LANE_PTRS = LANE_STATE + GROUPS * 64; // LANES x i32: where each lane's next block is
const ONE_STATE = LANE_PTRS + LANES * 4; // 4 x i32
const PAD = ONE_STATE + 16; // 128 bytes: the final one or two blocks of a stream
export const CONTROL_BYTES = PAD + 128;

/** i32 lane indices -> the byte indices of i8x16.shuffle. */
function shuffleBytes(lanes: number[]): number[] {
  return lanes.flatMap((k) => [4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3]);
}

/** md5_lanes(base, nblocks): `nblocks` blocks of each of the LANES streams. */
function lanesFunction(): FunctionBuilder {
  const f = new FunctionBuilder([I32, I32]);
  const base = 0;
  const nblocks = 1;
  const ptr = Array.from({ length: LANES }, () => f.local(I32));
  const st = Array.from({ length: GROUPS }, () => Array.from({ length: 4 }, () => f.local(V128)));
  const saved = Array.from({ length: GROUPS }, () => Array.from({ length: 4 }, () => f.local(V128)));
  const x = Array.from({ length: GROUPS }, () => f.local(V128));
  const v = Array.from({ length: 4 }, () => f.local(V128));
  const t = Array.from({ length: 4 }, () => f.local(V128));
  const load = (offset: number) => f.simd(V_LOAD, ...memarg(4, offset));

  for (let l = 0; l < LANES; l++) f.get(base).op(0x28, ...memarg(2, LANE_PTRS + 4 * l)).set(ptr[l]!);
  for (let g = 0; g < GROUPS; g++) for (let r = 0; r < 4; r++) f.get(base), load(LANE_STATE + g * 64 + r * 16), f.set(st[g]![r]!);

  f.op(0x02, 0x40); // block
  f.get(nblocks).op(0x45).op(0x0d, 0); // if nblocks == 0: out
  f.op(0x03, 0x40); // loop
  // Transpose each group's four blocks into sixteen word vectors (word j of lanes 0..3).
  for (let g = 0; g < GROUPS; g++) {
    for (let q = 0; q < 4; q++) {
      for (let j = 0; j < 4; j++) f.get(ptr[4 * g + j]!), load(16 * q), f.set(v[j]!);
      const sh = (a: number, b: number, lanes: number[], into: number) =>
        f.get(a).get(b).simd(V_SHUFFLE, ...shuffleBytes(lanes)).set(into);
      sh(v[0]!, v[1]!, [0, 4, 1, 5], t[0]!);
      sh(v[0]!, v[1]!, [2, 6, 3, 7], t[1]!);
      sh(v[2]!, v[3]!, [0, 4, 1, 5], t[2]!);
      sh(v[2]!, v[3]!, [2, 6, 3, 7], t[3]!);
      const out = (a: number, b: number, lanes: number[], w: number) =>
        f.get(base).get(a).get(b).simd(V_SHUFFLE, ...shuffleBytes(lanes)).simd(V_STORE, ...memarg(4, M_SCRATCH + g * 256 + w * 16));
      out(t[0]!, t[2]!, [0, 1, 4, 5], 4 * q);
      out(t[0]!, t[2]!, [2, 3, 6, 7], 4 * q + 1);
      out(t[1]!, t[3]!, [0, 1, 4, 5], 4 * q + 2);
      out(t[1]!, t[3]!, [2, 3, 6, 7], 4 * q + 3);
    }
    for (let r = 0; r < 4; r++) f.get(st[g]![r]!).set(saved[g]![r]!);
  }
  // 64 steps, the groups interleaved step by step. Roles rotate by renaming locals instead of
  // moving values: the step's result goes into a's local, then (a, b, c, d) <- (d, new, b, c);
  // after 64 steps every local holds its original role again.
  const roles = st.map((s) => [...s]);
  for (let i = 0; i < 64; i++) {
    const round = i >> 4;
    const s = S[round]![i & 3]!;
    for (let g = 0; g < GROUPS; g++) {
      const [a, b, c, d] = roles[g]! as [number, number, number, number];
      f.get(b); // for the final add
      f.get(base), load(M_SCRATCH + g * 256 + word(i) * 16);
      f.get(base), load(K_TABLE + i * 16);
      f.simd(I32X4_ADD).get(a).simd(I32X4_ADD);
      // The functions are written so that as few operations as possible wait on b, the step
      // before's result (see ONE STEP'S CHAIN above).
      if (round === 0) f.get(b).get(c).simd(V_AND).get(d).get(b).simd(V_ANDNOT).simd(V_OR);
      else if (round === 1) f.get(c).get(d).simd(V_ANDNOT).simd(I32X4_ADD).get(b).get(d).simd(V_AND);
      else if (round === 2) f.get(c).get(d).simd(V_XOR).get(b).simd(V_XOR);
      else f.get(c).get(b).get(d).simd(V_NOT).simd(V_OR).simd(V_XOR);
      f.simd(I32X4_ADD);
      f.tee(x[g]!);
      f.i32(s).simd(I32X4_SHL).get(x[g]!).i32(32 - s).simd(I32X4_SHR_U).simd(V_OR);
      f.simd(I32X4_ADD).set(a);
      roles[g] = [d, a, b, c];
    }
  }
  for (let g = 0; g < GROUPS; g++) for (let r = 0; r < 4; r++) f.get(st[g]![r]!).get(saved[g]![r]!).simd(I32X4_ADD).set(st[g]![r]!);
  for (const p of ptr) f.get(p).i32(64).op(0x6a).set(p);
  f.get(nblocks).i32(1).op(0x6b).tee(nblocks).op(0x0d, 0); // br_if loop
  f.op(0x0b); // end loop
  f.op(0x0b); // end block
  for (let g = 0; g < GROUPS; g++) for (let r = 0; r < 4; r++) f.get(base).get(st[g]![r]!).simd(V_STORE, ...memarg(4, LANE_STATE + g * 64 + r * 16));
  for (let l = 0; l < LANES; l++) f.get(base).get(ptr[l]!).op(0x36, ...memarg(2, LANE_PTRS + 4 * l));
  return f;
}

/** md5_one(base, ptr, nblocks): one stream, state at ONE_STATE. */
function oneFunction(): FunctionBuilder {
  const f = new FunctionBuilder([I32, I32, I32]);
  const base = 0;
  const p = 1;
  const nblocks = 2;
  const st = Array.from({ length: 4 }, () => f.local(I32));
  const saved = Array.from({ length: 4 }, () => f.local(I32));
  for (let r = 0; r < 4; r++) f.get(base).op(0x28, ...memarg(2, ONE_STATE + 4 * r)).set(st[r]!);
  f.op(0x02, 0x40);
  f.get(nblocks).op(0x45).op(0x0d, 0);
  f.op(0x03, 0x40);
  for (let r = 0; r < 4; r++) f.get(st[r]!).set(saved[r]!);
  let [a, b, c, d] = st as [number, number, number, number];
  for (let i = 0; i < 64; i++) {
    const round = i >> 4;
    f.get(b);
    f.get(p).op(0x28, ...memarg(0, 4 * word(i)));
    f.i32(K[i]! | 0).op(0x6a).get(a).op(0x6a);
    // F = d ^ (b & (c ^ d)); G = (b & d) | (c & ~d), the two terms added one at a time (they
    // share no bit); H = b ^ (c ^ d); I = c ^ (b | ~d): see ONE STEP'S CHAIN above.
    if (round === 0) f.get(d).get(b).get(c).get(d).op(0x73).op(0x71).op(0x73);
    else if (round === 1) f.get(d).i32(-1).op(0x73).get(c).op(0x71).op(0x6a).get(b).get(d).op(0x71);
    else if (round === 2) f.get(c).get(d).op(0x73).get(b).op(0x73);
    else f.get(c).get(b).get(d).i32(-1).op(0x73).op(0x72).op(0x73);
    f.op(0x6a).i32(S[round]![i & 3]!).op(0x77).op(0x6a).set(a);
    [a, b, c, d] = [d, a, b, c];
  }
  for (let r = 0; r < 4; r++) f.get(st[r]!).get(saved[r]!).op(0x6a).set(st[r]!);
  f.get(p).i32(64).op(0x6a).set(p);
  f.get(nblocks).i32(1).op(0x6b).tee(nblocks).op(0x0d, 0);
  f.op(0x0b);
  f.op(0x0b);
  for (let r = 0; r < 4; r++) f.get(base).get(st[r]!).op(0x36, ...memarg(2, ONE_STATE + 4 * r));
  return f;
}

const modules = new Map<number, WebAssembly.Module>();

/** One stream's running MD5: its state and how many bytes it has taken. */
export interface Md5State {
  /** A, B, C, D. */
  readonly h: Uint32Array;
  /** Bytes hashed so far (whole blocks). */
  length: number;
}

export function newMd5State(): Md5State {
  return { h: Uint32Array.from(MD5_INIT), length: 0 };
}

/**
 * The MD5 functions bound to a shared WebAssembly memory, with their control area at `base`
 * (CONTROL_BYTES, which the caller keeps for it). Blocks are hashed where they lie in that
 * memory.
 */
export class Md5Lanes {
  private readonly lanesFn: (base: number, nblocks: number) => void;
  private readonly oneFn: (base: number, ptr: number, nblocks: number) => void;
  private readonly u32: Uint32Array;
  private readonly u8: Uint8Array;

  constructor(
    memory: WebAssembly.Memory,
    private readonly base: number,
  ) {
    const buf = memory.buffer as ArrayBufferLike;
    const pages = buf.byteLength / 65536;
    let mod = modules.get(pages);
    if (!mod) {
      mod = new WebAssembly.Module(wasmModule({ md5_lanes: lanesFunction(), md5_one: oneFunction() }, pages));
      modules.set(pages, mod);
    }
    const inst = new WebAssembly.Instance(mod, { env: { memory } });
    this.lanesFn = inst.exports.md5_lanes as typeof this.lanesFn;
    this.oneFn = inst.exports.md5_one as typeof this.oneFn;
    if (base % 16 !== 0) throw new RangeError('control area must be 16-byte aligned');
    this.u32 = new Uint32Array(buf, base, CONTROL_BYTES / 4);
    this.u8 = new Uint8Array(buf, base, CONTROL_BYTES);
    for (let i = 0; i < 64; i++) this.u32.fill(K[i]!, (K_TABLE + i * 16) / 4, (K_TABLE + i * 16 + 16) / 4);
  }

  /**
   * Hashes `nblocks` 64-byte blocks for each stream, stream i's starting at `ptrs[i]` (offsets
   * in the memory); at most LANES streams, at least one.
   */
  lanes(states: Md5State[], ptrs: number[], nblocks: number): void {
    const n = states.length;
    if (n === 0 || n > LANES) throw new RangeError('1 to LANES streams');
    const u = this.u32;
    for (let l = 0; l < LANES; l++) {
      // Unused lanes hash the first stream's blocks again; their results are dropped.
      const i = l < n ? l : 0;
      const g = l >> 2;
      const j = l & 3;
      const h = states[i]!.h;
      for (let r = 0; r < 4; r++) u[(LANE_STATE + g * 64 + r * 16) / 4 + j] = h[r]!;
      u[LANE_PTRS / 4 + l] = ptrs[i]!;
    }
    this.lanesFn(this.base, nblocks);
    for (let l = 0; l < n; l++) {
      const g = l >> 2;
      const j = l & 3;
      const s = states[l]!;
      for (let r = 0; r < 4; r++) s.h[r] = u[(LANE_STATE + g * 64 + r * 16) / 4 + j]!;
      s.length += nblocks * 64;
    }
  }

  /** Hashes `nblocks` blocks of one stream starting at `ptr`. */
  one(state: Md5State, ptr: number, nblocks: number): void {
    const u = this.u32;
    for (let r = 0; r < 4; r++) u[ONE_STATE / 4 + r] = state.h[r]!;
    this.oneFn(this.base, ptr, nblocks);
    for (let r = 0; r < 4; r++) state.h[r] = u[ONE_STATE / 4 + r]!;
    state.length += nblocks * 64;
  }

  /** Hashes one block held outside the memory. */
  block(state: Md5State, block: Uint8Array): void {
    if (block.length !== 64) throw new RangeError('a block is 64 bytes');
    this.u8.set(block, PAD);
    this.one(state, this.base + PAD, 1);
  }

  /** The digest of a stream whose last `tail` bytes (fewer than 64) follow its whole blocks. */
  finish(state: Md5State, tail: Uint8Array): Buffer {
    if (tail.length >= 64) throw new RangeError('tail must be shorter than a block');
    const total = state.length + tail.length;
    const blocks = tail.length < 56 ? 1 : 2;
    const pad = this.u8.subarray(PAD, PAD + 64 * blocks);
    pad.fill(0);
    pad.set(tail);
    pad[tail.length] = 0x80;
    const bits = total * 8;
    const dv = new DataView(pad.buffer, pad.byteOffset, pad.byteLength);
    dv.setUint32(pad.length - 8, bits >>> 0, true);
    dv.setUint32(pad.length - 4, Math.floor(bits / 2 ** 32), true);
    this.one(state, this.base + PAD, blocks);
    const out = Buffer.alloc(16);
    for (let r = 0; r < 4; r++) out.writeUInt32LE(state.h[r]!, 4 * r);
    return out;
  }
}
