// readKnownLength: a small body of announced length read whole (the inline PUT path).
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { readKnownLength } from '../../src/service/streams.ts';

const chunks = (...sizes: number[]): Buffer[] => sizes.map((n, i) => Buffer.alloc(n, i + 1));

test('exactly the announced bytes, in any chunking, come back in order', async () => {
  for (const sizes of [[], [1], [4096], [100, 0, 3996], [1, 1, 4094]]) {
    const parts = chunks(...sizes);
    const total = parts.reduce((n, p) => n + p.length, 0);
    const body = await readKnownLength(Readable.from(parts), total);
    assert.deepEqual(body, Buffer.concat(parts));
  }
});

test('fewer bytes than announced, or more, fail with IncompleteBody', async () => {
  await assert.rejects(readKnownLength(Readable.from(chunks(100, 200)), 301), { code: 'IncompleteBody' });
  await assert.rejects(readKnownLength(Readable.from(chunks(100, 200)), 299), { code: 'IncompleteBody' });
  await assert.rejects(readKnownLength(Readable.from(chunks(1)), 0), { code: 'IncompleteBody' });
});

test('a source destroyed before its end fails with IncompleteBody; its own error is passed on', async () => {
  const cut = new PassThrough();
  const cutRead = readKnownLength(cut, 10);
  cut.write(Buffer.alloc(4));
  setImmediate(() => cut.destroy());
  await assert.rejects(cutRead, { code: 'IncompleteBody' });

  const failing = new PassThrough();
  const failed = readKnownLength(failing, 10);
  failing.write(Buffer.alloc(4));
  setImmediate(() => failing.destroy(new Error('chunk signature')));
  await assert.rejects(failed, /chunk signature/);
});

test('a source that fails after a body ran long does not throw for want of an error listener', async () => {
  const src = new PassThrough();
  const read = readKnownLength(src, 2);
  src.write(Buffer.alloc(3));
  await assert.rejects(read, { code: 'IncompleteBody' });
  src.destroy(new Error('client went away'));
  await new Promise((r) => setImmediate(r));
  assert.equal(src.destroyed, true);
});
