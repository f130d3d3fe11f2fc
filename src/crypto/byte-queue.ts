// A FIFO of byte chunks that hands out exact byte counts without copying (subarrays of the
// chunks it was given). Used by the object-format streams to cut input into segments.

export class ByteQueue {
  #chunks: Buffer[] = [];
  #first = 0; // index of the first live chunk in #chunks
  #offset = 0; // bytes already consumed from #chunks[#first]
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** Removes and returns the next `n` bytes as views into the queued chunks (no copy). */
  take(n: number): Buffer[] {
    if (n > this.#length) throw new RangeError('not enough bytes queued');
    const out: Buffer[] = [];
    while (n > 0) {
      const chunk = this.#chunks[this.#first];
      const avail = chunk.length - this.#offset;
      if (avail <= n) {
        out.push(this.#offset === 0 ? chunk : chunk.subarray(this.#offset));
        this.#chunks[this.#first] = EMPTY;
        this.#first++;
        this.#offset = 0;
        this.#length -= avail;
        n -= avail;
      } else {
        out.push(chunk.subarray(this.#offset, this.#offset + n));
        this.#offset += n;
        this.#length -= n;
        n = 0;
      }
    }
    if (this.#first > 64 && this.#first * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#first);
      this.#first = 0;
    }
    return out;
  }

  /** Removes the next `n` bytes as one contiguous buffer (copies only if they span chunks). */
  takeContiguous(n: number): Buffer {
    const parts = this.take(n);
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
  }

  clear(): void {
    this.#chunks = [];
    this.#first = 0;
    this.#offset = 0;
    this.#length = 0;
  }
}

const EMPTY = Buffer.alloc(0);
