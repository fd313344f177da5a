/** The DATA spool: memory below the threshold, a temp file above it, the size limit, cleanup. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { tempDir } from '../support/shape.js';
import { MessageTooLargeError, removeStaleSpoolFiles, spoolStream } from '../../src/pipeline/inbound/spool.js';

async function readStream(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function chunked(buf: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('a small message stays in memory and reads back identically, any number of times', async () => {
  const dir = tempDir();
  try {
    const body = Buffer.from('Subject: hi\r\n\r\nbody\r\n');
    const m = await spoolStream(chunked(body, 3), { dir: dir.path, memoryThreshold: 1024, maxBytes: 4096 });
    assert.equal(m.onDisk, false);
    assert.equal(m.size, body.length);
    assert.equal(m.sha256, sha(body));
    assert.deepEqual(await readStream(m.open()), body);
    assert.deepEqual(await readStream(m.open()), body);
    assert.deepEqual(await m.head(7), body.subarray(0, 7));
    assert.deepEqual(await m.readAll(), body);
    assert.deepEqual(readdirSync(dir.path), []);
    await m.dispose();
  } finally {
    dir.remove();
  }
});

test('a message above the threshold goes to a temp file, which dispose() removes', async () => {
  const dir = tempDir();
  try {
    const body = Buffer.alloc(300_000, 'a');
    body.write('Subject: big\r\n\r\n');
    const m = await spoolStream(chunked(body, 65536), { dir: dir.path, memoryThreshold: 256 * 1024, maxBytes: 1_000_000 });
    assert.equal(m.onDisk, true);
    assert.equal(readdirSync(dir.path).length, 1);
    assert.equal(m.size, body.length);
    assert.equal(m.sha256, sha(body));
    assert.deepEqual(await readStream(m.open()), body);
    assert.deepEqual(await m.head(100_000), body.subarray(0, 100_000));
    assert.deepEqual(await m.head(10_000_000), body);
    assert.deepEqual(await m.readAll(), body);
    await m.dispose();
    await m.dispose();
    assert.deepEqual(readdirSync(dir.path), []);
    assert.throws(() => m.open(), /disposed/);
  } finally {
    dir.remove();
  }
});

test('one byte over the limit: MessageTooLargeError, the stream is drained, no temp file is left', async () => {
  const dir = tempDir();
  try {
    const limit = 100_000;
    const stream = chunked(Buffer.alloc(limit + 1, 'x'), 10_000);
    let ended = false;
    stream.on('end', () => (ended = true));
    await assert.rejects(spoolStream(stream, { dir: dir.path, memoryThreshold: 1000, maxBytes: limit }), (err: unknown) => {
      assert.ok(err instanceof MessageTooLargeError);
      assert.equal(err.limit, limit);
      return true;
    });
    // Drained, not destroyed: the producer reaches its end.
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 50 && !ended; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(ended, true);
    assert.equal(stream.destroyed && !ended, false);
    assert.deepEqual(readdirSync(dir.path), []);
  } finally {
    dir.remove();
  }
});

test('exactly at the limit is accepted', async () => {
  const dir = tempDir();
  try {
    const m = await spoolStream(chunked(Buffer.alloc(5000, 'y'), 999), { dir: dir.path, memoryThreshold: 100, maxBytes: 5000 });
    assert.equal(m.size, 5000);
    await m.dispose();
    assert.deepEqual(readdirSync(dir.path), []);
  } finally {
    dir.remove();
  }
});

test('a stream that errors or closes early rejects and leaves no temp file', async () => {
  const dir = tempDir();
  try {
    const failing = new PassThrough();
    const p = spoolStream(failing, { dir: dir.path, memoryThreshold: 10, maxBytes: 1_000_000 });
    failing.write(Buffer.alloc(5000, 'z'));
    await new Promise((r) => setTimeout(r, 20));
    failing.destroy(new Error('client went away'));
    await assert.rejects(p, /client went away/);
    assert.deepEqual(readdirSync(dir.path), []);

    const closing = new PassThrough();
    const q = spoolStream(closing, { dir: dir.path, memoryThreshold: 10, maxBytes: 1_000_000 });
    closing.write(Buffer.alloc(100, 'z'));
    await new Promise((r) => setTimeout(r, 20));
    closing.destroy();
    await assert.rejects(q, /closed before its end/);
    assert.deepEqual(readdirSync(dir.path), []);
  } finally {
    dir.remove();
  }
});

test('removeStaleSpoolFiles removes only spool files left by a crash', async () => {
  const dir = tempDir();
  try {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${dir.path}/spool-0b7c5f7e-8f3e-4d7a-9c1e-2a4b6c8d0e1f.eml`, 'x');
    writeFileSync(`${dir.path}/keep-me.txt`, 'y');
    assert.equal(await removeStaleSpoolFiles(dir.path), 1);
    assert.deepEqual(readdirSync(dir.path), ['keep-me.txt']);
    assert.equal(await removeStaleSpoolFiles(`${dir.path}/missing`), 0);
  } finally {
    dir.remove();
  }
});
