// FsBlobStore: the shared BlobStore conformance suite, plus what only the file system adapter
// can show: the files on disk (no temporary file survives a failed write) and the sweep of
// `.partial` files that a crash mid-write leaves behind.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, existsSync, mkdtempSync, promises as fsp, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  assertAbsent,
  blobStoreConformance,
  chunkedSource,
  endlessSource,
  failingSource,
  listAll,
  newBlobId,
  readAll,
} from '../../src/storage/conformance/blob-store-suite.ts';
import { fanOut, FsBlobStore } from '../../src/storage/fs-blob/fs-blob-store.ts';
import { paddedFileSize } from '../../src/storage/fs-blob/direct-io.ts';
import { alignedMemory, alignedSharedMemory } from '../../src/shared/aligned-memory.ts';
import type { Stage, StageSource } from '../../src/storage/ports.ts';
import { filesUnder } from '../helpers/raw-s3.ts';

/**
 * A store in a fresh directory under `parent` (the OS temp dir by default; /dev/shm refuses
 * O_DIRECT), after `prepare` ran on the directory (e.g. to make it look like an older version's).
 */
async function makeFsStore(parent = tmpdir(), prepare?: (dir: string) => Promise<void>): Promise<{ store: FsBlobStore; dir: string; cleanup: () => Promise<void> }> {
  const dir = mkdtempSync(join(parent, 'coffer-fs-blob-'));
  await prepare?.(dir);
  const store = new FsBlobStore(dir);
  await store.init();
  const cleanup = async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { store, dir, cleanup };
}

blobStoreConformance('FsBlobStore', () => makeFsStore());


/** Where FsBlobStore keeps the temporary file of an in-progress write of `id`. */
function partialPath(root: string, id: string): string {
  return join(root, fanOut(id), `${id}.partial`);
}

async function createPartial(root: string, id: string, bytes = 1234): Promise<string> {
  const p = partialPath(root, id);
  await fsp.mkdir(join(p, '..'), { recursive: true });
  await fsp.writeFile(p, randomBytes(bytes));
  return p;
}

/**
 * `data` as stages of `stageBytes` in page-aligned memory (each with a page to spare), the way
 * the sealed upload path hands blobs over; counts what was given out and released. With
 * `failAt`, next() rejects when asked for that stage.
 */
function bufferStages(data: Buffer, stageBytes: number, failAt?: number): StageSource & { given: number; released: number; destroyed: Error | undefined } {
  let k = 0;
  const src = {
    stageBytes,
    given: 0,
    released: 0,
    destroyed: undefined as Error | undefined,
    async next(): Promise<Stage | undefined> {
      await new Promise((r) => setImmediate(r));
      if (src.destroyed) throw src.destroyed;
      if (k === failAt) throw new Error('source failed');
      const position = k * stageBytes;
      if (position >= data.length && !(data.length === 0 && k === 0)) return undefined;
      const length = Math.min(stageBytes, data.length - position);
      const bytes = Buffer.from(alignedMemory(stageBytes + 4096));
      bytes.fill(0xa5); // stale bytes past the end: the store must not write them
      data.copy(bytes, 0, position, position + length);
      k++;
      src.given++;
      return { bytes, length, position, last: position + length >= data.length };
    },
    release() {
      src.released++;
    },
    destroy(e: Error) {
      src.destroyed ??= e;
    },
  };
  return src;
}

describe('FsBlobStore specifics', () => {
  for (const where of ['os temp dir', '/dev/shm']) {
    test(`writeStages: blobs from stages of page-aligned memory, padded and trailed like write()'s (${where})`, async (t) => {
      if (where === '/dev/shm' && !existsSync('/dev/shm')) return t.skip('no /dev/shm');
      const { store, cleanup } = await makeFsStore(where === '/dev/shm' ? '/dev/shm' : tmpdir());
      try {
        const stageBytes = 3 * 4096;
        for (const size of [1, 4095, 4096, 4096 * 3 - 24, 4096 * 3 - 1, 4096 * 3, 4096 * 3 + 1, 5 * 4096 * 3 + 777]) {
          const id = newBlobId();
          const data = randomBytes(size);
          const src = bufferStages(data, stageBytes);
          assert.deepEqual(await store.writeStages(id, src), { size });
          assert.equal(src.released, src.given, 'every stage handed back');
          assert.equal(await store.size(id), size);
          assert.equal(statSync(store.pathFor(id)).size, paddedFileSize(size), `file size of ${size}`);
          assert.ok((await readAll(store, id)).equals(data), `bytes of ${size}`);
        }
      } finally {
        await cleanup();
      }
    });
  }

  test('writeStages: a source that fails, or an abort, leaves no file; every stage is handed back', async () => {
    const { store, cleanup } = await makeFsStore();
    try {
      const data = randomBytes(10 * 4096);
      for (const failAt of [0, 1, 3]) {
        const src = bufferStages(data, 4096, failAt);
        await assert.rejects(store.writeStages(newBlobId(), src), /source failed/);
        assert.equal(src.released, src.given);
        assert.ok(src.destroyed, 'the source is told');
        assert.deepEqual(filesUnder(store.root), []);
      }
      const ac = new AbortController();
      const src = bufferStages(data, 4096);
      const next = src.next.bind(src);
      src.next = async () => {
        if (src.given === 2) ac.abort();
        return next();
      };
      await assert.rejects(store.writeStages(newBlobId(), src, ac.signal), { name: 'AbortError' });
      assert.equal(src.released, src.given);
      assert.deepEqual(filesUnder(store.root), []);
      // Stages that are not whole pages are refused.
      await assert.rejects(store.writeStages(newBlobId(), bufferStages(data, 1000)), RangeError);
    } finally {
      await cleanup();
    }
  });

  test('writeStages into a data directory of exact-length files (an earlier version\'s)', async () => {
    const { store, cleanup } = await makeFsStore(tmpdir(), async (dir) => {
      await fsp.mkdir(join(dir, 'blobs'), { recursive: true });
      await fsp.writeFile(join(dir, 'blobs', 'placeholder-file'), 'x');
    });
    try {
      assert.equal(store.padded, false);
      for (const size of [1, 4096, 3 * 4096 + 5]) {
        const id = newBlobId();
        const data = randomBytes(size);
        await store.writeStages(id, bufferStages(data, 2 * 4096));
        assert.equal(statSync(store.pathFor(id)).size, size, 'cut to its length');
        assert.ok((await readAll(store, id)).equals(data));
      }
    } finally {
      await cleanup();
    }
  });

  test('a failed or aborted write leaves no file on disk, even before any sweep', async () => {
    const { store, cleanup } = await makeFsStore();
    try {
      const keep = newBlobId();
      await store.write(keep, chunkedSource(randomBytes(100)));
      // The temporary file is opened asynchronously, so a source that fails at once races the
      // open: the write must not settle until the file it may have created is gone again.
      for (let i = 0; i < 40; i++) {
        await assert.rejects(store.write(newBlobId(), failingSource((i % 4) * 1000)));
        assert.deepEqual(filesUnder(store.root), [keep], `after failing source #${i}`);
        const ac = new AbortController();
        if (i % 2) ac.abort();
        await assert.rejects(store.write(newBlobId(), endlessSource((n) => n >= (i % 4) * 4096 && ac.abort()), ac.signal));
        assert.deepEqual(filesUnder(store.root), [keep], `after aborted write #${i}`);
      }
    } finally {
      await cleanup();
    }
  });

  test('a .partial file (earlier builds wrote through them) left by an interrupted write is invisible and removed by sweepIncomplete', async () => {
    const { store, cleanup } = await makeFsStore();
    try {
      const complete = newBlobId();
      const data = randomBytes(4096);
      await store.write(complete, chunkedSource(data));
      const interrupted = [newBlobId(), newBlobId(), newBlobId()];
      const paths = [];
      for (const id of interrupted) paths.push(await createPartial(store.root, id));
      // A leftover next to a complete blob's own directory entry (same fan-out directory).
      const sibling = complete.slice(0, 4) + newBlobId().slice(4);
      paths.push(await createPartial(store.root, sibling));

      for (const id of [...interrupted, sibling]) await assertAbsent(store, id);
      assert.deepEqual(await listAll(store), [complete]);

      assert.equal(await store.sweepIncomplete(), 4);
      for (const p of paths) await assert.rejects(fsp.stat(p), { code: 'ENOENT' });
      assert.deepEqual(filesUnder(store.root), [complete]);
      assert.equal(await store.sweepIncomplete(), 0);
      assert.ok((await readAll(store, complete)).equals(data));
    } finally {
      await cleanup();
    }
  });

  test('after sweeping a leftover, the same id can be written', async () => {
    const { store, cleanup } = await makeFsStore();
    try {
      const id = newBlobId();
      await createPartial(store.root, id);
      assert.equal(await store.sweepIncomplete(), 1);
      const data = randomBytes(999);
      await store.write(id, chunkedSource(data));
      assert.ok((await readAll(store, id)).equals(data));
    } finally {
      await cleanup();
    }
  });

  test('blobs live under the data directory, named by blob id, never by anything else', async () => {
    const { store, dir, cleanup } = await makeFsStore();
    try {
      const id = newBlobId();
      await store.write(id, chunkedSource(randomBytes(10)));
      assert.equal(store.root, join(dir, 'blobs'));
      const st = await fsp.stat(join(store.root, fanOut(id), id));
      // A new store's files are page-padded: the blob, zeros, and a trailer giving its length.
      assert.equal(store.padded, true);
      assert.equal(readFileSync(store.root + '.format', 'utf8').trim(), 'coffer-blob-files 2: page-padded, trailer');
      assert.equal(store.pathFor(id), join(store.root, fanOut(id), id));
      // 256 fan-out directories, 00 to ff, all there from the start.
      const dirs = (await fsp.readdir(store.root)).sort();
      assert.equal(dirs.length, 256);
      assert.equal(dirs[0], '00');
      assert.equal(dirs[255], 'ff');
      assert.equal(fanOut(id), Buffer.from(id, 'base64url').subarray(0, 1).toString('hex'));
      assert.equal(st.size, 4096);
      assert.equal(await store.size(id), 10);
      assert.equal(st.mode & 0o077, 0, 'blob files are private to the owner');
    } finally {
      await cleanup();
    }
  });

  test('newId() hands out files made ahead, in batches of one fan-out directory; close() removes those never written', async () => {
    const { store, cleanup } = await makeFsStore();
    try {
      // None are made before the first newId(): the start-up sweep must not meet them.
      assert.deepEqual(filesUnder(store.root), []);
      const first = store.newId();
      await store.write(first, chunkedSource(randomBytes(5000)));
      // The first batch is made in the background: ask until an id names a file made ahead (an
      // id that does not is just a fresh random id, never written, leaving nothing).
      const deadline = Date.now() + 10_000;
      let id = store.newId();
      while (!existsSync(store.pathFor(id)) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
        id = store.newId();
      }
      const ids = [id, ...Array.from({ length: 4 }, () => store.newId())];
      for (const id of ids) assert.ok(existsSync(store.pathFor(id)), 'made ahead');
      assert.equal(new Set(ids.map(fanOut)).size, 1, 'one batch, one directory');
      const data = randomBytes(2 * 1024 * 1024 + 3);
      await store.write(ids[0]!, chunkedSource(data, 65_536));
      assert.ok((await readAll(store, ids[0]!)).equals(data));
      assert.equal(await store.size(ids[0]!), data.length);
      assert.deepEqual((await listAll(store)).sort(), [first, ids[0]!].sort());
      await store.close();
      assert.deepEqual(filesUnder(store.root).sort(), [first, ids[0]!].sort());
      // What was written is durable and readable by the next store on the directory.
      const again = new FsBlobStore(join(store.root, '..'));
      await again.init();
      assert.ok((await readAll(again, ids[0]!)).equals(data));
      await again.close();
    } finally {
      await cleanup();
    }
  });

  test('files made ahead are open with O_DIRECT and O_DSYNC: each write is durable when it returns, no fdatasync after it', async (t) => {
    const { store, cleanup } = await makeFsStore();
    try {
      store.newId();
      const deadline = Date.now() + 10_000;
      let id = store.newId();
      while (!existsSync(store.pathFor(id)) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
        id = store.newId();
      }
      assert.ok(existsSync(store.pathFor(id)), 'made ahead');
      // The descriptor this process holds on the file, and its open flags (octal).
      const fd = readdirSync('/proc/self/fd').find((n) => {
        try {
          return readlinkSync(`/proc/self/fd/${n}`) === store.pathFor(id);
        } catch {
          return false;
        }
      });
      assert.ok(fd, 'the file made ahead is held open');
      const flags = parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
      if (!(flags & fsConstants.O_DIRECT)) {
        t.skip('this file system refuses O_DIRECT (written through the page cache, then fdatasync)');
        return;
      }
      assert.ok(flags & fsConstants.O_DSYNC, 'O_DSYNC');
      const data = randomBytes(1024 * 1024 + 5);
      await store.write(id, chunkedSource(data, 65_536));
      assert.ok((await readAll(store, id)).equals(data));
    } finally {
      await cleanup();
    }
  });

  test('ids that could escape the blob directory are refused', async () => {
    const { store, cleanup } = await makeFsStore();
    try {
      for (const bad of ['../../../etc/passwd', 'short', 'a/b/c/d/e/f/g', 'abcdefgh.partial', '']) {
        await assert.rejects(store.write(bad, chunkedSource(Buffer.from('x'))));
        await assert.rejects(store.readBytes(bad, { start: 0, end: 1 }));
        await assert.rejects(store.size(bad));
      }
      assert.deepEqual(filesUnder(store.root), []);
    } finally {
      await cleanup();
    }
  });

  test('blobs of an older data directory (blobs/Ab/cd/<id>) are still read, sized, listed and deleted', async () => {
    // The data directory exists before the store opens it: files of exact length, no layout marker.
    const id = newBlobId();
    const data = randomBytes(5000);
    const { store, cleanup } = await makeFsStore(tmpdir(), async (dir) => {
      const legacy = join(dir, 'blobs', id.slice(0, 2), id.slice(2, 4));
      await fsp.mkdir(legacy, { recursive: true });
      await fsp.writeFile(join(legacy, id), data);
      await fsp.writeFile(join(legacy, `${newBlobId()}.partial`), 'leftover');
    });
    try {
      assert.equal(store.padded, false, 'a store made by an earlier version keeps exact-length files');
      assert.ok(!existsSync(store.root + '.format'));
      assert.equal(await store.size(id), 5000);
      assert.ok((await store.readBytes(id, { start: 10, end: 4000 })).equals(data.subarray(10, 4000)));
      assert.ok((await readAll(store, id)).equals(data));
      // A new blob whose fan-out directory is also a directory of the old layout (a two-hex-
      // digit name is a valid first two characters of an id) sits beside its subdirectories.
      const id2 = newBlobId();
      await fsp.mkdir(join(store.root, fanOut(id2), 'zz'), { recursive: true });
      await fsp.writeFile(join(store.root, fanOut(id2), 'zz', `${newBlobId()}.partial`), 'old leftover');
      await store.write(id2, chunkedSource(randomBytes(100)));
      assert.deepEqual(await listAll(store), [id, id2].sort());
      assert.equal(await store.sweepIncomplete(), 2);
      await store.delete(id);
      await assertAbsent(store, id);
      assert.equal(await store.size(id2), 100);
      assert.equal(statSync(store.pathFor(id2)).size, 100, 'written at its exact length');
    } finally {
      await cleanup();
    }
  });

  test('a page-padded file: damage to its padding or trailer, or a changed length, fails reads that reach the blob end', async () => {
    const { store, cleanup } = await makeFsStore();
    try {
      const size = 3 * 4096 + 1000;
      const data = randomBytes(size);
      const id = newBlobId();
      await store.write(id, chunkedSource(data));
      const path = store.pathFor(id);
      const original = readFileSync(path);
      assert.equal(original.length, 4 * 4096);
      // Layout: the blob, zeros, then "CFRPAD01", the length and its complement (u64, little-endian).
      assert.ok(original.subarray(0, size).equals(data));
      assert.ok(original.subarray(size, original.length - 24).equals(Buffer.alloc(original.length - 24 - size)));
      assert.equal(original.subarray(original.length - 24, original.length - 16).toString('latin1'), 'CFRPAD01');
      assert.equal(original.readBigUInt64LE(original.length - 16), BigInt(size));
      assert.equal(original.readBigUInt64LE(original.length - 8), ~BigInt(size) & ((1n << 64n) - 1n));
      const aligned = Buffer.from(alignedSharedMemory(8 * 4096));
      const damagedReads = async (what: string) => {
        await assert.rejects(readAll(store, id), { code: 'EBADMSG' }, `whole read, ${what}`);
        await assert.rejects(store.readInto(id, { start: size - 10, end: size }, aligned), { code: 'EBADMSG' }, `aligned read of the end, ${what}`);
        await assert.rejects(store.readBytes(id, { start: size - 10, end: size + 50 }), { code: 'EBADMSG' }, `read past the end, ${what}`);
        await assert.rejects(store.size(id), { code: 'EBADMSG' }, `size, ${what}`);
      };
      for (const pos of [size, size + 1, original.length - 25, original.length - 24, original.length - 17, original.length - 9, original.length - 1]) {
        const bad = Buffer.from(original);
        bad[pos]! ^= 0x01;
        writeFileSync(path, bad);
        await damagedReads(`byte ${pos} flipped`);
        // Reads that stop well before the end do not look at it (the decryptor checks their segments).
        assert.ok((await store.readBytes(id, { start: 0, end: 4096 })).equals(data.subarray(0, 4096)));
      }
      for (const length of [original.length - 1, original.length - 4096, original.length + 1, original.length + 4096]) {
        const bad = Buffer.alloc(length);
        original.copy(bad, 0, 0, Math.min(length, original.length));
        writeFileSync(path, bad);
        if (length !== original.length + 4096) await damagedReads(`file of ${length} bytes`);
        else {
          // A page appended: the trailer is no longer at the end. A read that stops at the blob's
          // end does not reach the file's (the blob's own bytes are whole, as before the change);
          // the length and reads of the file's end see it.
          await assert.rejects(store.size(id), { code: 'EBADMSG' });
          await assert.rejects(store.readBytes(id, { start: size - 10, end: length }), { code: 'EBADMSG' });
        }
      }
      writeFileSync(path, original);
      assert.ok((await readAll(store, id)).equals(data));
      assert.equal(await store.size(id), size);
    } finally {
      await cleanup();
    }
  });

  // Direct I/O stages 1 MiB + 64 KiB at a time and pads the last block; sizes around those edges must
  // come back exact, with O_DIRECT (the temp dir's file system) and without (tmpfs refuses it).
  for (const where of ['os temp dir', '/dev/shm']) {
    test(`blob sizes around the staging and block edges come back exact (${where})`, async (t) => {
      if (where === '/dev/shm' && !existsSync('/dev/shm')) return t.skip('no /dev/shm');
      const { store, cleanup } = await makeFsStore(where === '/dev/shm' ? '/dev/shm' : tmpdir());
      try {
        const MiB = 1024 * 1024;
        const STAGE = MiB + 64 * 1024;
        // ... and around where the trailer (24 bytes) still fits in the blob's last page or not.
        const T = 4096 - 24;
        for (const size of [0, 1, 511, T - 1, T, T + 1, 4095, 4096, 4097, 4096 + T, MiB - 1, MiB, MiB + 1, STAGE - 4096 - 24, STAGE - 25, STAGE - 24, STAGE - 23, STAGE - 1, STAGE, STAGE + 1, 2 * STAGE, 2 * STAGE + 4097, 3 * MiB]) {
          const id = newBlobId();
          const data = randomBytes(size);
          // Chunks that straddle stage boundaries, and one chunk bigger than two stages.
          const chunk = size > 2 * MiB ? size : 65_536 + 17;
          const { size: written } = await store.write(id, chunkedSource(data, chunk));
          assert.equal(written, size);
          assert.equal(await store.size(id), size, `size of ${size}`);
          assert.equal(statSync(store.pathFor(id)).size, paddedFileSize(size), `file size of ${size}`);
          assert.ok((await readAll(store, id)).equals(data), `bytes of ${size}`);
          assert.deepEqual(filesUnder(store.root).filter((f) => f.endsWith('.partial')), []);
          // Reads into page-aligned memory (O_DIRECT where allowed: whole pages, then moved into
          // place) give the same bytes as any other read, at unaligned edges and past the end.
          const target = Buffer.from(alignedSharedMemory(size + 3 * 4096));
          for (const [start, end] of [[0, size], [1, size], [size - 1, size], [4095, Math.min(size, 8193)], [0, size + 5000], [Math.floor(size / 2), size + 1], [size, size + 10], [size + 100, size + 200]]) {
            if (start! < 0 || start! > size || end! <= start!) continue;
            target.fill(0xee);
            const n = await store.readInto(id, { start: start!, end: end! }, target);
            assert.equal(n, Math.min(end!, size) - start!, `count of [${start}, ${end}) of ${size}`);
            assert.ok(target.subarray(0, n).equals(data.subarray(start!, start! + n)), `bytes of [${start}, ${end}) of ${size}`);
          }
        }
      } finally {
        await cleanup();
      }
    });
  }
});
