/**
 * RedisRateCounter (SPEC §11 rate limits, `api.rate_limit.backend: redis`) against the real Redis on
 * 127.0.0.1:6379: counting, window rollover, concurrent hits (none lost), two clients (two nodes)
 * sharing the counters, key expiry, and a Redis that cannot be reached (the hit fails, quickly).
 * Every run uses its own key prefix and deletes its keys afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisRateCounter } from '../../src/http/api/rate-limit/redis-counter.js';
import { storedRateKey } from '../../src/http/api/rate-limit/db-counter.js';

const REDIS_URL = process.env.MAIRUST_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function atWindowStart(windowMs: number): Promise<void> {
  await sleep(windowMs - (Date.now() % windowMs) + 5);
}

describe('RedisRateCounter', () => {
  const prefix = `mairust:test:rl:${randomBytes(6).toString('hex')}:`;
  let admin: Redis;
  let counter: RedisRateCounter;

  before(async () => {
    admin = new Redis(REDIS_URL);
    await admin.ping(); // a missing Redis fails the suite, never skips it
    counter = new RedisRateCounter({ url: REDIS_URL, keyPrefix: prefix });
  });
  after(async () => {
    await counter.close();
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length) await admin.del(...keys);
    await admin.quit();
  });

  test('counts hits per key within a window and reports the window end', async () => {
    const windowMs = 60_000;
    if (Date.now() % windowMs > windowMs - 2000) await atWindowStart(windowMs);
    const t0 = Date.now();
    const a1 = await counter.hit('user:a', windowMs);
    const a2 = await counter.hit('user:a', windowMs);
    const b1 = await counter.hit('user:b', windowMs);
    const a3 = await counter.hit('user:a', windowMs);
    assert.deepEqual([a1.count, a2.count, a3.count, b1.count], [1, 2, 3, 1]);
    assert.equal(a1.resetAt, Math.floor(t0 / windowMs) * windowMs + windowMs);
    // The key names the window start and lives until the window ends plus a short grace.
    const key = `${prefix}user:a:${a1.resetAt - windowMs}`;
    assert.equal(await admin.get(key), '3');
    const ttl = await admin.pttl(key);
    // Redis measures PTTL with its own cached clock, which may trail ours a little under load.
    assert.ok(ttl > 0 && ttl <= a1.resetAt - Date.now() + 5_000 + 1_000, `pttl ${ttl}`);
  });

  test('a new window starts again at 1', async () => {
    const windowMs = 300;
    await atWindowStart(windowMs);
    const first = await counter.hit('roll', windowMs);
    const second = await counter.hit('roll', windowMs);
    assert.equal(first.count, 1);
    assert.equal(second.count, 2);
    await sleep(first.resetAt - Date.now() + 20);
    const next = await counter.hit('roll', windowMs);
    assert.equal(next.count, 1);
    assert.equal(next.resetAt, first.resetAt + windowMs);
  });

  test('50 concurrent hits are all counted, each with its own count', async () => {
    const windowMs = 60_000;
    if (Date.now() % windowMs > windowMs - 2000) await atWindowStart(windowMs);
    const hits = await Promise.all(Array.from({ length: 50 }, () => counter.hit('burst', windowMs)));
    assert.deepEqual(
      hits.map((h) => h.count).sort((x, y) => x - y),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    assert.equal((await counter.hit('burst', windowMs)).count, 51);
  });

  test('two clients (two nodes) count together', async () => {
    const windowMs = 60_000;
    if (Date.now() % windowMs > windowMs - 2000) await atWindowStart(windowMs);
    const nodeB = new RedisRateCounter({ url: REDIS_URL, keyPrefix: prefix });
    try {
      const hits = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? counter : nodeB).hit('shared', windowMs)));
      assert.deepEqual(
        hits.map((h) => h.count).sort((x, y) => x - y),
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
      assert.equal((await nodeB.hit('shared', windowMs)).count, 41);
    } finally {
      await nodeB.close();
    }
  });

  test('long keys are hashed into a bounded Redis key', async () => {
    const long = `user:${'y'.repeat(5000)}`;
    const windowMs = 60_000;
    if (Date.now() % windowMs > windowMs - 2000) await atWindowStart(windowMs);
    const hit = await counter.hit(long, windowMs);
    assert.equal(hit.count, 1);
    const key = `${prefix}${storedRateKey(long)}:${hit.resetAt - windowMs}`;
    assert.ok(key.length < 200);
    assert.equal(await admin.get(key), '1');
  });

  test('prune is a no-op: Redis expires the keys', async () => {
    assert.equal(await counter.prune(), 0);
  });

  test('an unreachable Redis makes hit() fail within the command timeout', async () => {
    // Port 1 on loopback: nothing listens there, so every connection attempt is refused.
    const down = new RedisRateCounter({ url: 'redis://127.0.0.1:1', keyPrefix: prefix, commandTimeoutMs: 300 });
    try {
      const t = Date.now();
      await assert.rejects(down.hit('user:x', 60_000));
      assert.ok(Date.now() - t < 3000, `took ${Date.now() - t} ms`);
    } finally {
      await down.close();
    }
  });
});
