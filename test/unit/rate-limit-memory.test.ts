/** The in-process rate counter (embedded shape) and the backend choice of createRateCounter. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryRateCounter, DatabaseRateCounter, createRateCounter } from '../../src/http/api/rate-limit/index.js';
import type { Database } from '../../src/store/db/database.js';

test('counts hits per key in a fixed window, restarts in the next one, prunes ended windows', async () => {
  let now = 60_000 * 10 + 5_000;
  const c = new MemoryRateCounter({ now: () => now });
  assert.deepEqual(await c.hit('user:a', 60_000), { count: 1, resetAt: 60_000 * 11 });
  assert.deepEqual(await c.hit('user:a', 60_000), { count: 2, resetAt: 60_000 * 11 });
  assert.deepEqual(await c.hit('user:b', 60_000), { count: 1, resetAt: 60_000 * 11 });
  now += 60_000;
  assert.deepEqual(await c.hit('user:a', 60_000), { count: 1, resetAt: 60_000 * 12 }, 'a new window starts over');
  assert.equal(await c.prune(), 1, 'user:b ended with its window');
  await assert.rejects(c.hit('x', 0), RangeError);
});

test('50 concurrent hits are all counted', async () => {
  const c = new MemoryRateCounter();
  const hits = await Promise.all(Array.from({ length: 50 }, () => c.hit('k', 60_000)));
  assert.deepEqual(hits.map((h) => h.count).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1));
});

test('auto: memory with SQLite, the database with PostgreSQL; explicit choices are kept', () => {
  const sqlite = { dialect: 'sqlite' } as Database;
  const pg = { dialect: 'postgres' } as Database;
  assert.ok(createRateCounter({ backend: 'auto', redis_url: '' }, sqlite) instanceof MemoryRateCounter);
  assert.ok(createRateCounter({ backend: 'auto', redis_url: '' }, pg) instanceof DatabaseRateCounter);
  assert.ok(createRateCounter({ backend: 'database', redis_url: '' }, sqlite) instanceof DatabaseRateCounter);
  assert.ok(createRateCounter({ backend: 'memory', redis_url: '' }, pg) instanceof MemoryRateCounter);
});
