// A few pieces of the WebAssembly binary format, enough to generate straight-line numeric code
// (md5-lanes.ts) at run time instead of shipping a prebuilt binary: the generator is the
// source, reviewable as TypeScript, and nothing needs a WebAssembly tool chain to build.
// https://webassembly.github.io/spec/core/binary/

export const I32 = 0x7f;
export const V128 = 0x7b;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (32-bit values). */
export function sleb(n: number): number[] {
  const out: number[] = [];
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function name(s: string): number[] {
  const b = [...Buffer.from(s, 'utf8')];
  return [...uleb(b.length), ...b];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** Builds one function's body: locals are declared as they are asked for. */
export class FunctionBuilder {
  readonly code: number[] = [];
  private readonly localTypes: number[] = [];

  constructor(readonly params: number[], readonly results: number[] = []) {}

  /** A new local of `type`; returns its index. */
  local(type: number): number {
    this.localTypes.push(type);
    return this.params.length + this.localTypes.length - 1;
  }

  op(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }

  get(i: number): this {
    return this.op(0x20, ...uleb(i));
  }
  set(i: number): this {
    return this.op(0x21, ...uleb(i));
  }
  tee(i: number): this {
    return this.op(0x22, ...uleb(i));
  }
  i32(n: number): this {
    return this.op(0x41, ...sleb(n));
  }
  /** A SIMD instruction (0xfd prefix) and its immediates. */
  simd(opcode: number, ...imm: number[]): this {
    return this.op(0xfd, ...uleb(opcode), ...imm);
  }

  body(): number[] {
    const groups: number[][] = [];
    for (const t of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]!++;
      else groups.push([1, t]);
    }
    const b = [...vec(groups.map(([n, t]) => [...uleb(n!), t!])), ...this.code, 0x0b];
    return [...uleb(b.length), ...b];
  }
}

/** Memory arguments of loads and stores: alignment hint (log2) and a constant offset. */
export function memarg(alignLog2: number, offset: number): number[] {
  return [...uleb(alignLog2), ...uleb(offset)];
}

/**
 * A module that imports one memory (`env.memory`, shared when `sharedPages` is given as its
 * fixed size) and exports `functions` by name.
 */
export function wasmModule(functions: Record<string, FunctionBuilder>, sharedPages: number): Uint8Array<ArrayBuffer> {
  const fns = Object.entries(functions);
  const types = vec(fns.map(([, f]) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]));
  // limits flag 3: shared, with a maximum
  const imports = vec([[...name('env'), ...name('memory'), 0x02, 0x03, ...uleb(sharedPages), ...uleb(sharedPages)]]);
  const funcs = vec(fns.map((_, i) => uleb(i)));
  const exports = vec(fns.map(([n], i) => [...name(n), 0x00, ...uleb(i)]));
  const code = vec(fns.map(([, f]) => f.body()));
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, types),
    ...section(2, imports),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, code),
  ]);
}
