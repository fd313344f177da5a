/**
 * BlobStore.getRange: byte ranges of a blob (IMAP BODY[section]<partial> streams only the bytes it
 * sends). Runs against the fs adapter in the embedded shape and the S3 adapter in the cluster shape.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { freshBlobStore } from '../support/blobs.js';
import { shape } from '../support/shape.js';
import { BlobNotFoundError, newBlobKey, readAll, type BlobStore } from '../../src/store/blob/index.js';

describe(`BlobStore.getRange (${shape})`, () => {
  let blobs: BlobStore;
  let remove: () => Promise<void>;
  const small = Buffer.from('0123456789abcdefghij');
  const large = randomBytes(3 * 1024 * 1024 + 17);
  let smallKey: string;
  let largeKey: string;
  let emptyKey: string;

  before(async () => {
    ({ blobs, remove } = await freshBlobStore());
    smallKey = newBlobKey('test');
    largeKey = newBlobKey('test');
    emptyKey = newBlobKey('test');
    await blobs.put(smallKey, small);
    await blobs.put(largeKey, large);
    await blobs.put(emptyKey, Buffer.alloc(0));
  });
  after(async () => {
    await remove?.();
  });

  const range = async (key: string, start: number, end: number) => readAll(await blobs.getRange(key, start, end));

  test('[start, end) with end exclusive', async () => {
    assert.equal((await range(smallKey, 0, 20)).toString(), '0123456789abcdefghij');
    assert.equal((await range(smallKey, 5, 10)).toString(), '56789');
    assert.equal((await range(smallKey, 0, 1)).toString(), '0');
    assert.equal((await range(smallKey, 19, 20)).toString(), 'j');
  });

  test('an empty range is an empty stream', async () => {
    assert.equal((await range(smallKey, 0, 0)).length, 0);
    assert.equal((await range(smallKey, 7, 7)).length, 0);
    assert.equal((await range(smallKey, 20, 20)).length, 0);
    assert.equal((await range(emptyKey, 0, 0)).length, 0);
  });

  test('a range reaching past the end yields the bytes that exist', async () => {
    assert.equal((await range(smallKey, 17, 40)).toString(), 'hij');
    assert.equal((await range(smallKey, 20, 25)).length, 0);
    assert.equal((await range(smallKey, 30, 40)).length, 0);
    assert.equal((await range(emptyKey, 0, 10)).length, 0);
  });

  test('a range inside a large blob spans many chunks exactly', async () => {
    const start = 1024 * 1024 - 3;
    const end = 2 * 1024 * 1024 + 5;
    assert.deepEqual(await range(largeKey, start, end), large.subarray(start, end));
    assert.deepEqual(await range(largeKey, large.length - 10, large.length), large.subarray(large.length - 10));
  });

  test('a missing blob is BlobNotFoundError, also for an empty range', async () => {
    const missing = newBlobKey('test');
    await assert.rejects(() => blobs.getRange(missing, 0, 10), BlobNotFoundError);
    await assert.rejects(() => blobs.getRange(missing, 3, 3), BlobNotFoundError);
  });

  test('getRangeBuffer gives the same bytes as getRange, past-the-end and empty ranges included', async () => {
    const cases: [string, number, number][] = [
      [smallKey, 0, 20], [smallKey, 5, 10], [smallKey, 7, 7], [smallKey, 17, 40], [smallKey, 30, 40],
      [emptyKey, 0, 10], [largeKey, 1024 * 1024 - 3, 1024 * 1024 + 70_000],
    ];
    for (const [key, start, end] of cases) {
      assert.deepEqual(await blobs.getRangeBuffer(key, start, end), await range(key, start, end), `${start}..${end}`);
    }
    await assert.rejects(() => blobs.getRangeBuffer(newBlobKey('test'), 0, 10), BlobNotFoundError);
    await assert.rejects(() => blobs.getRangeBuffer(smallKey, 5, 2), RangeError);
  });

  test('bounds that are not 0 <= start <= end integers are a RangeError', async () => {
    await assert.rejects(() => blobs.getRange(smallKey, 5, 4), RangeError);
    await assert.rejects(() => blobs.getRange(smallKey, -1, 4), RangeError);
    await assert.rejects(() => blobs.getRange(smallKey, 0.5, 4), RangeError);
    await assert.rejects(() => blobs.getRange(smallKey, 0, Number.POSITIVE_INFINITY), RangeError);
  });

  test('a range stream destroyed early releases the blob (no hang, a later read works)', async () => {
    const stream = await blobs.getRange(largeKey, 0, large.length);
    for await (const _chunk of stream) break; // destroys the stream
    assert.equal((await range(largeKey, 0, 4)).length, 4);
  });
});
