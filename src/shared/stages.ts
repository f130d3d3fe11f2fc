// Blobs handed over as stages: pieces of page-aligned memory a blob store writes where they lie
// (BlobStore.writeStages in storage/ports.ts; made by crypto/seal-offload.ts). Here, in shared,
// because both sides name them.

/** A blob as a sequence of stages (BlobStore.writeStages). */
export interface StageSource {
  /** Bytes per stage, a multiple of 4096: stage k holds blob bytes [k * stageBytes, ...). */
  readonly stageBytes: number;
  /** The next stage, in order; undefined after the last. Rejects when the source failed. */
  next(): Promise<Stage | undefined>;
  /** The store is done with `stage` (written, or never will be): its memory may be reused. */
  release(stage: Stage): void;
  /** Stops the source (the write failed); stages given out still come back through release(). */
  destroy(err: Error): void;
}

export interface Stage {
  /**
   * Page-aligned memory holding the stage's bytes from offset 0. The store may write beyond
   * `length` (zero padding, a trailer): `bytes` holds at least stageBytes + 4096 bytes.
   */
  readonly bytes: Buffer;
  /** Blob bytes in this stage: stageBytes for every stage but the last, which may hold up to a page more. */
  readonly length: number;
  /** Blob offset of the stage's first byte. */
  readonly position: number;
  readonly last: boolean;
}
