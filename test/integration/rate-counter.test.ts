/**
 * DatabaseRateCounter (SPEC §11 rate limits) on the real database of the current shape: counting,
 * window rollover, concurrent hits (none lost), two Database objects sharing the counters (two
 * nodes), long keys, and pruning.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, type Database } from '../../src/store/db/database.js';
import { DatabaseRateCounter, MAX_STORED_KEY_LENGTH, storedRateKey } from '../../src/http/api/rate-limit/db-counter.js';
import { freshDatabase, shape, type TestDatabase } from '../support/shape.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until a fresh window of `windowMs` has just begun, so a test's hits all fall in one window. */
async function atWindowStart(windowMs: number): Promise<void> {
  const into = Date.now() % windowMs;
  await sleep(windowMs - into + 5);
}

describe(`DatabaseRateCounter (${shape})`, () => {
  let tdb: TestDatabase;
  let counter: DatabaseRateCounter;

  before(async () => {
    tdb = await freshDatabase();
    counter = new DatabaseRateCounter(tdb.db);
  });
  after(async () => {
    await counter.close();
    await tdb.drop();
  });

  test('counts hits per key within a window and reports the window end', async () => {
    const windowMs = 60_000;
    // Not across a minute boundary: then the later hits would belong to the next window.
    if (Date.now() % windowMs > windowMs - 2000) await atWindowStart(windowMs);
    const t0 = Date.now();
    const a1 = await counter.hit('user:a', windowMs);
    const a2 = await counter.hit('user:a', windowMs);
    const b1 = await counter.hit('user:b', windowMs);
    const a3 = await counter.hit('user:a', windowMs);
    assert.deepEqual([a1.count, a2.count, a3.count, b1.count], [1, 2, 3, 1]);
    assert.equal(a1.resetAt, Math.floor(t0 / windowMs) * windowMs + windowMs);
    assert.equal(a3.resetAt, a1.resetAt);
    assert.equal(b1.resetAt, a1.resetAt);
  });

  test('a new window starts again at 1', async () => {
    const windowMs = 300;
    await atWindowStart(windowMs);
    const first = await counter.hit('roll', windowMs);
    const second = await counter.hit('roll', windowMs);
    assert.equal(first.count, 1);
    assert.equal(second.count, 2);
    assert.equal(second.resetAt, first.resetAt);
    await sleep(first.resetAt - Date.now() + 20);
    const next = await counter.hit('roll', windowMs);
    assert.equal(next.count, 1);
    assert.equal(next.resetAt, first.resetAt + windowMs);
  });

  test('a stored window newer than the caller\'s (clock skew between nodes) is counted into, not reset', async () => {
    const windowMs = 60_000;
    const base = 1_800_000_000_000;
    const ahead = new DatabaseRateCounter(tdb.db, { now: () => base + windowMs + 10 });
    const behind = new DatabaseRateCounter(tdb.db, { now: () => base + 10 });
    assert.equal((await ahead.hit('skew', windowMs)).count, 1);
    const lagging = await behind.hit('skew', windowMs);
    assert.equal(lagging.count, 2);
    assert.equal(lagging.resetAt, base + 2 * windowMs);
    assert.equal((await ahead.hit('skew', windowMs)).count, 3);
  });

  test('50 concurrent hits are all counted, each with its own count', async () => {
    const windowMs = 60_000;
    if (Date.now() % windowMs > windowMs - 2000) await atWindowStart(windowMs);
    const hits = await Promise.all(Array.from({ length: 50 }, () => counter.hit('burst', windowMs)));
    const counts = hits.map((h) => h.count).sort((x, y) => x - y);
    assert.deepEqual(counts, Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal((await counter.hit('burst', windowMs)).count, 51);
  });

  test('two Database objects on the same database (two nodes) count together', async () => {
    const windowMs = 60_000;
    if (Date.now() % windowMs > windowMs - 3000) await atWindowStart(windowMs);
    const other: Database = await openDatabase(tdb.url);
    try {
      const nodeB = new DatabaseRateCounter(other);
      const hits = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? counter : nodeB).hit('shared', windowMs)),
      );
      assert.deepEqual(
        hits.map((h) => h.count).sort((x, y) => x - y),
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
      assert.equal((await nodeB.hit('shared', windowMs)).count, 41);
      assert.equal((await counter.hit('shared', windowMs)).count, 42);
    } finally {
      await other.close();
    }
  });

  test('long keys are stored hashed, bounded, and still distinct', async () => {
    const long1 = `user:${'x'.repeat(5000)}1`;
    const long2 = `user:${'x'.repeat(5000)}2`;
    assert.equal(storedRateKey('user:short'), 'user:short');
    assert.equal(storedRateKey('k'.repeat(MAX_STORED_KEY_LENGTH)), 'k'.repeat(MAX_STORED_KEY_LENGTH));
    assert.match(storedRateKey(long1), /^sha256:[0-9a-f]{64}$/);
    assert.notEqual(storedRateKey(long1), storedRateKey(long2));
    assert.equal((await counter.hit(long1, 60_000)).count, 1);
    assert.equal((await counter.hit(long1, 60_000)).count, 2);
    assert.equal((await counter.hit(long2, 60_000)).count, 1);
    const stored = await tdb.db.kysely.selectFrom('rate_counters').select('key').where('key', 'like', 'sha256:%').execute();
    assert.equal(stored.length, 2);
    for (const row of stored) assert.ok(row.key.length <= MAX_STORED_KEY_LENGTH);
  });

  test('rejects a window that is not a positive integer', async () => {
    await assert.rejects(counter.hit('bad', 0), RangeError);
    await assert.rejects(counter.hit('bad', 1.5), RangeError);
  });

  test('prune deletes the counters whose window has ended, and only those', async () => {
    const base = 1_900_000_000_000;
    let t = base;
    const clocked = new DatabaseRateCounter(tdb.db, { now: () => t });
    await clocked.hit('prune:short', 1000);
    await clocked.hit('prune:long', 3_600_000);
    await tdb.db.kysely.deleteFrom('rate_counters').where('key', 'not like', 'prune:%').execute();
    t = base + 999; // the short window [base, base+1000) has not ended yet
    assert.equal(await clocked.prune(), 0);
    t = base + 1000;
    assert.equal(await clocked.prune(), 1);
    const left = await tdb.db.kysely.selectFrom('rate_counters').select('key').execute();
    assert.deepEqual(left.map((r) => r.key), ['prune:long']);
    // A pruned key simply starts again.
    assert.equal((await clocked.hit('prune:short', 1000)).count, 1);
  });
});
