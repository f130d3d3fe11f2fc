// BlobStore conformance suite: the contract of the BlobStore port (storage/ports.ts) as
// node:test tests. Every blob store adapter runs it from its own test file:
//
//   blobStoreConformance('fs-blob', async () => { ...; return { store, cleanup } });
//
// `makeStore` is called once per test and must return an empty store; `cleanup` is called
// after the test, pass or fail. Behaviours the port leaves open are documented where tested.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { BlobRange, BlobStore } from '../ports.ts';

export interface BlobStoreHandle<S extends BlobStore = BlobStore> {
  store: S;
  cleanup: () => Promise<void>;
}

/** A blob id of the shape the services use (base64url of random bytes). */
export function newBlobId(): string {
  return randomBytes(24).toString('base64url');
}

/** A source that yields `data` in chunks of `chunk` bytes, asynchronously. */
export function chunkedSource(data: Buffer, chunk = 16 * 1024): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    for (let i = 0; i < data.length; i += chunk) {
      await new Promise((r) => setImmediate(r));
      yield data.subarray(i, Math.min(data.length, i + chunk));
    }
  }
  return Readable.from(gen(), { objectMode: false });
}

/** A source that yields `before` bytes and then fails with `error`. */
export function failingSource(before: number, error = new Error('source failed midway')): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= before) {
        setImmediate(() => this.destroy(error));
        return;
      }
      const n = Math.min(8 * 1024, before - sent);
      sent += n;
      setImmediate(() => this.push(randomBytes(n)));
    },
  });
}

/** A source that never ends on its own: it trickles bytes and calls `onBytes` as it goes. */
export function endlessSource(onBytes: (sent: number) => void = () => {}): Readable {
  let sent = 0;
  return new Readable({
    read() {
      setTimeout(() => {
        sent += 4096;
        this.push(randomBytes(4096));
        onBytes(sent);
      }, 1);
    },
  });
}

/** Reads a blob (or a range of it) completely; rejects when the blob is missing. */
export async function readAll(store: BlobStore, id: string, range?: BlobRange): Promise<Buffer> {
  if (range) return store.readBytes(id, range);
  const size = await store.size(id);
  if (size === undefined) throw new Error(`blob ${id} is missing`);
  return store.readBytes(id, { start: 0, end: size });
}

export async function listAll(store: BlobStore): Promise<string[]> {
  const out: string[] = [];
  for await (const id of store.list()) out.push(id);
  return out.sort();
}

/** Asserts that `id` is absent through every read path of the port. */
export async function assertAbsent(store: BlobStore, id: string): Promise<void> {
  assert.equal(await store.size(id), undefined, `size(${id}) should be undefined`);
  assert.ok(!(await listAll(store)).includes(id), `${id} should not be listed`);
  await assert.rejects(readAll(store, id), `reading ${id} should fail`);
}

export function blobStoreConformance(name: string, makeStore: () => Promise<BlobStoreHandle>): void {
  /** Runs `fn` against a fresh store and always cleans up. */
  const withStore = (fn: (store: BlobStore) => Promise<void>) => async () => {
    const { store, cleanup } = await makeStore();
    try {
      await fn(store);
    } finally {
      await cleanup();
    }
  };

  describe(`BlobStore conformance: ${name}`, () => {
    test('a fresh store lists nothing and has nothing to sweep', withStore(async (store) => {
      assert.deepEqual(await listAll(store), []);
      assert.equal(await store.sweepIncomplete(), 0);
    }));

    test('write then read the whole blob back; write reports the size', withStore(async (store) => {
      const id = newBlobId();
      const data = randomBytes(300 * 1024 + 17);
      const r = await store.write(id, chunkedSource(data, 7 * 1024 + 3));
      assert.equal(r.size, data.length);
      // Visible as soon as write resolves.
      assert.equal(await store.size(id), data.length);
      assert.ok((await readAll(store, id)).equals(data));
      // Reads are repeatable and independent.
      const [a, b] = await Promise.all([readAll(store, id), readAll(store, id)]);
      assert.ok(a.equals(data) && b.equals(data));
    }));

    test('newId() gives distinct ids; blobs written under them read back; ids not written name no blob', withStore(async (store) => {
      const ids = Array.from({ length: 40 }, () => store.newId());
      assert.equal(new Set(ids).size, ids.length);
      for (const id of ids) assert.match(id, /^[A-Za-z0-9_-]{32}$/);
      const written = new Map(ids.filter((_, i) => i % 3 === 0).map((id, i) => [id, randomBytes(1000 + i * 4099)]));
      await Promise.all([...written].map(([id, data]) => store.write(id, chunkedSource(data))));
      for (const [id, data] of written) assert.ok((await readAll(store, id)).equals(data));
      assert.deepEqual((await listAll(store)).sort(), [...written.keys()].sort());
      for (const id of ids) if (!written.has(id)) await assertAbsent(store, id);
      // An id from newId() that a failed write was given is gone too.
      const failed = store.newId();
      await assert.rejects(store.write(failed, failingSource(5000)));
      await assertAbsent(store, failed);
      assert.deepEqual((await listAll(store)).sort(), [...written.keys()].sort());
    }));

    test('an empty blob is stored, sized 0 and reads back empty', withStore(async (store) => {
      const id = newBlobId();
      const r = await store.write(id, Readable.from([]));
      assert.equal(r.size, 0);
      assert.equal(await store.size(id), 0);
      assert.equal((await readAll(store, id)).length, 0);
      assert.deepEqual(await listAll(store), [id]);
    }));

    test('a source of a single large buffer is written whole', withStore(async (store) => {
      const id = newBlobId();
      const data = randomBytes(3 * 1024 * 1024 + 1);
      assert.equal((await store.write(id, Readable.from([data]))).size, data.length);
      assert.ok((await readAll(store, id)).equals(data));
    }));

    test('ranges read exactly bytes [start, end)', withStore(async (store) => {
      const id = newBlobId();
      const data = randomBytes(200_000);
      await store.write(id, chunkedSource(data, 65_536));
      const ranges: BlobRange[] = [
        { start: 0, end: 1 },
        { start: 0, end: data.length },
        { start: 1, end: data.length },
        { start: data.length - 1, end: data.length },
        { start: 40, end: 41 },
        { start: 65_535, end: 65_537 },
        { start: 12_345, end: 150_000 },
      ];
      for (const r of ranges) {
        const got = await readAll(store, id, r);
        assert.equal(got.length, r.end - r.start, `length of ${JSON.stringify(r)}`);
        assert.ok(got.equals(data.subarray(r.start, r.end)), `bytes of ${JSON.stringify(r)}`);
        const bytes = await store.readBytes(id, r);
        assert.ok(bytes.equals(data.subarray(r.start, r.end)), `readBytes of ${JSON.stringify(r)}`);
      }
      // readBytes: past the end yields what exists; a missing blob errors.
      assert.ok((await store.readBytes(id, { start: data.length - 10, end: data.length + 100 })).equals(data.subarray(data.length - 10)));
      await assert.rejects(store.readBytes(newBlobId(), { start: 0, end: 10 }));
      // readInto: the same bytes into the caller's buffer (at its start), the count returned.
      const target = Buffer.alloc(64, 0xee);
      assert.equal(await store.readInto(id, { start: 5, end: 37 }, target), 32);
      assert.ok(target.subarray(0, 32).equals(data.subarray(5, 37)));
      assert.ok(target.subarray(32).equals(Buffer.alloc(32, 0xee)), 'nothing written past the range');
      assert.equal(await store.readInto(id, { start: data.length - 10, end: data.length + 20 }, target), 10);
      assert.ok(target.subarray(0, 10).equals(data.subarray(data.length - 10)));
      await assert.rejects(store.readInto(newBlobId(), { start: 0, end: 10 }, target));
    }));

    test('property: any in-bounds range reads the same bytes as a slice', withStore(async (store) => {
      const id = newBlobId();
      const data = randomBytes(70_000);
      await store.write(id, chunkedSource(data, 9_999));
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: data.length - 1 }),
          fc.integer({ min: 1, max: data.length }),
          async (start, len) => {
            const end = Math.min(data.length, start + len);
            const got = await readAll(store, id, { start, end });
            assert.ok(got.equals(data.subarray(start, end)));
          },
        ),
        { numRuns: 40 },
      );
    }));

    // Documented behaviour (see BlobStore.readBytes): a range that runs past the end of the blob
    // yields only the bytes that exist; it never yields bytes that are not in the blob. Callers
    // detect the truncation themselves (the object decryptor authenticates every segment and its
    // length). A range that starts at or past the end yields no bytes, or errors (as an HTTP range
    // request to an S3-compatible store would with 416); both are allowed.
    test('a range past the end yields fewer bytes (only those that exist)', withStore(async (store) => {
      const id = newBlobId();
      const data = randomBytes(1000);
      await store.write(id, chunkedSource(data, 100));
      const got = await readAll(store, id, { start: 990, end: 2000 });
      assert.ok(got.equals(data.subarray(990)), 'the 10 bytes that exist');
      const whole = await readAll(store, id, { start: 0, end: 5000 });
      assert.ok(whole.equals(data));
      let beyond: Buffer | undefined;
      try {
        beyond = await readAll(store, id, { start: 1000, end: 1010 });
      } catch {
        beyond = undefined; // erroring is allowed
      }
      if (beyond) assert.equal(beyond.length, 0);
    }));

    test('size is undefined for an absent blob', withStore(async (store) => {
      assert.equal(await store.size(newBlobId()), undefined);
    }));

    test('reading a missing blob errors (whole and range)', withStore(async (store) => {
      const id = newBlobId();
      await assert.rejects(readAll(store, id));
      await assert.rejects(readAll(store, id, { start: 0, end: 10 }));
    }));

    test('delete removes a blob; deleting again or deleting an absent blob is not an error', withStore(async (store) => {
      const keep = newBlobId();
      const gone = newBlobId();
      await store.write(keep, chunkedSource(randomBytes(10)));
      await store.write(gone, chunkedSource(randomBytes(10)));
      await store.delete(gone);
      await assertAbsent(store, gone);
      await store.delete(gone);
      await store.delete(newBlobId());
      assert.deepEqual(await listAll(store), [keep]);
      assert.equal(await store.size(keep), 10);
    }));

    test('list returns exactly the stored blobs', withStore(async (store) => {
      const ids = Array.from({ length: 12 }, newBlobId);
      for (const id of ids) await store.write(id, chunkedSource(randomBytes(32)));
      assert.deepEqual(await listAll(store), [...ids].sort());
      for (const id of ids.slice(0, 5)) await store.delete(id);
      assert.deepEqual(await listAll(store), ids.slice(5).sort());
    }));

    test('sweepIncomplete leaves complete blobs alone', withStore(async (store) => {
      const id = newBlobId();
      const data = randomBytes(5000);
      await store.write(id, chunkedSource(data));
      assert.equal(await store.sweepIncomplete(), 0);
      assert.ok((await readAll(store, id)).equals(data));
    }));

    test('a write whose source errors midway rejects and leaves nothing', withStore(async (store) => {
      const id = newBlobId();
      const err = new Error('boom');
      await assert.rejects(store.write(id, failingSource(100 * 1024, err)), (e: unknown) => e === err || (e as Error).message === 'boom');
      await assertAbsent(store, id);
      // "Nothing remains" includes leftovers: the sweep finds nothing of the failed write.
      assert.equal(await store.sweepIncomplete(), 0, 'a failed write leaves nothing for the sweep');
      await assertAbsent(store, id);
    }));

    test('a write whose source errors before any byte rejects and leaves nothing', withStore(async (store) => {
      const id = newBlobId();
      await assert.rejects(store.write(id, failingSource(0)));
      await assertAbsent(store, id);
      assert.equal(await store.sweepIncomplete(), 0, 'a failed write leaves nothing for the sweep');
    }));

    test('a source that fails on its own before the store reads it makes write reject (no crash)', withStore(async (store) => {
      // Like a client connection that drops while the store is still preparing: the source
      // emits 'error' whether or not anyone is reading it yet.
      for (const when of ['nextTick', 'immediate', 'already'] as const) {
        const id = newBlobId();
        const source = new Readable({ read() {} });
        const err = new Error(`early failure (${when})`);
        if (when === 'nextTick') process.nextTick(() => source.destroy(err));
        else if (when === 'immediate') setImmediate(() => source.destroy(err));
        else {
          source.on('error', () => {});
          source.destroy(err);
        }
        await assert.rejects(store.write(id, source));
        await assertAbsent(store, id);
      }
      assert.equal(await store.sweepIncomplete(), 0, 'a failed write leaves nothing for the sweep');
    }));

    test('a write aborted midway through its signal rejects and leaves nothing', withStore(async (store) => {
      const id = newBlobId();
      const ac = new AbortController();
      const source = endlessSource((sent) => {
        if (sent >= 64 * 1024) ac.abort();
      });
      await assert.rejects(store.write(id, source, ac.signal));
      await assertAbsent(store, id);
      assert.equal(await store.sweepIncomplete(), 0, 'a failed write leaves nothing for the sweep');
      await assertAbsent(store, id);
    }));

    test('a write given an already aborted signal rejects and leaves nothing', withStore(async (store) => {
      const id = newBlobId();
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(store.write(id, chunkedSource(randomBytes(1000)), ac.signal));
      await assertAbsent(store, id);
      assert.equal(await store.sweepIncomplete(), 0, 'a failed write leaves nothing for the sweep');
    }));

    test('a failed write does not disturb other blobs', withStore(async (store) => {
      const other = newBlobId();
      const data = randomBytes(4096);
      await store.write(other, chunkedSource(data));
      await assert.rejects(store.write(newBlobId(), failingSource(10_000)));
      assert.deepEqual(await listAll(store), [other]);
      assert.ok((await readAll(store, other)).equals(data));
    }));

    test('concurrent writes of different ids all land intact', withStore(async (store) => {
      const blobs = Array.from({ length: 16 }, (_, i) => ({ id: newBlobId(), data: randomBytes(20_000 + i * 3_001) }));
      const results = await Promise.all(blobs.map((b, i) => store.write(b.id, chunkedSource(b.data, 1_000 + i * 97))));
      results.forEach((r, i) => assert.equal(r.size, blobs[i]!.data.length));
      assert.deepEqual(await listAll(store), blobs.map((b) => b.id).sort());
      for (const b of blobs) {
        assert.equal(await store.size(b.id), b.data.length);
        assert.ok((await readAll(store, b.id)).equals(b.data));
      }
    }));

    test('concurrent writes where some fail leave exactly the successful ones', withStore(async (store) => {
      const good = Array.from({ length: 6 }, () => ({ id: newBlobId(), data: randomBytes(30_000) }));
      const bad = Array.from({ length: 6 }, newBlobId);
      const ac = new AbortController();
      const outcomes = await Promise.allSettled([
        ...good.map((b) => store.write(b.id, chunkedSource(b.data, 2_000))),
        ...bad.map((id, i) =>
          i % 2 === 0
            ? store.write(id, failingSource(5_000 * (i + 1)))
            : store.write(id, endlessSource((sent) => sent >= 20_000 && ac.abort()), ac.signal),
        ),
      ]);
      outcomes.slice(0, good.length).forEach((o) => assert.equal(o.status, 'fulfilled'));
      outcomes.slice(good.length).forEach((o) => assert.equal(o.status, 'rejected'));
      assert.equal(await store.sweepIncomplete(), 0, 'failed writes leave nothing for the sweep');
      assert.deepEqual(await listAll(store), good.map((b) => b.id).sort());
      for (const id of bad) assert.equal(await store.size(id), undefined);
      for (const b of good) assert.ok((await readAll(store, b.id)).equals(b.data));
    }));
  });
}
