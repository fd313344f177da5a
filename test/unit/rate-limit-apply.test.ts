/**
 * The API's rate-limit hook helper (SPEC §11): the rules a request hits, the X-RateLimit-* headers,
 * the exact 429 body with Retry-After, and fail-open when the counter store is down. A real Fastify
 * instance (inject) and a real DatabaseRateCounter on a temporary database.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { DatabaseRateCounter } from '../../src/http/api/rate-limit/db-counter.js';
import { applyRateLimits, rateRulesFor, secondsUntil, RATE_WINDOW_MS, type RateLimits } from '../../src/http/api/rate-limit/apply.js';
import type { RateCounter } from '../../src/http/api/rate-limit/types.js';
import { freshDatabase, type TestDatabase } from '../support/shape.js';

const LIMITS: RateLimits = {
  per_user_per_minute: 3,
  admin_per_ip_per_minute: 2,
  plugin_per_token_per_minute: 5,
  anonymous_per_ip_per_minute: 4,
};

describe('rateRulesFor', () => {
  test('signed-in user: one per-user rule', () => {
    assert.deepEqual(rateRulesFor({ principal: { userId: 'u1' }, ip: '192.0.2.7', admin: false }, LIMITS), [
      { key: 'user:u1', limit: 3, windowMs: 60_000 },
    ]);
  });

  test('admin route: the per-user rule plus the per-address admin rule', () => {
    assert.deepEqual(rateRulesFor({ principal: { userId: 'u1', apiKeyId: 'k1' }, ip: '192.0.2.7', admin: true }, LIMITS), [
      { key: 'user:u1', limit: 3, windowMs: 60_000 },
      { key: 'admin-ip:192.0.2.7', limit: 2, windowMs: 60_000 },
    ]);
  });

  test('plugin token: counted per token at the plugin limit, not per owner', () => {
    assert.deepEqual(rateRulesFor({ principal: { userId: 'u1', apiKeyId: 'k9', plugin: true }, ip: '192.0.2.7', admin: false }, LIMITS), [
      { key: 'plugin:k9', limit: 5, windowMs: 60_000 },
    ]);
    assert.deepEqual(rateRulesFor({ principal: { userId: 'u1', plugin: true }, ip: '192.0.2.7', admin: false }, LIMITS), [
      { key: 'plugin:user:u1', limit: 5, windowMs: 60_000 },
    ]);
  });

  test('no principal: per-address anonymous rule (and the admin rule on admin routes)', () => {
    assert.deepEqual(rateRulesFor({ principal: null, ip: '198.51.100.1', admin: false }, LIMITS), [
      { key: 'anon-ip:198.51.100.1', limit: 4, windowMs: 60_000 },
    ]);
    assert.deepEqual(rateRulesFor({ principal: null, ip: '198.51.100.1', admin: true }, LIMITS), [
      { key: 'anon-ip:198.51.100.1', limit: 4, windowMs: 60_000 },
      { key: 'admin-ip:198.51.100.1', limit: 2, windowMs: 60_000 },
    ]);
  });

  test('IPv6 clients are counted per /64; IPv4-mapped addresses as IPv4', () => {
    const key = (ip: string) => rateRulesFor({ principal: null, ip, admin: false }, LIMITS)[0].key;
    assert.equal(key('2001:db8:1:2:aaaa::1'), 'anon-ip:2001:db8:1:2::/64');
    assert.equal(key('2001:DB8:1:2:ffff:ffff:ffff:fffe'), 'anon-ip:2001:db8:1:2::/64');
    assert.notEqual(key('2001:db8:1:3::1'), key('2001:db8:1:2::1'));
    assert.equal(key('::ffff:192.0.2.9'), 'anon-ip:192.0.2.9');
  });

  test('every rule uses the one-minute window', () => {
    assert.equal(RATE_WINDOW_MS, 60_000);
  });
});

describe('secondsUntil', () => {
  test('rounds up to whole seconds and never says 0', () => {
    assert.equal(secondsUntil(10_000, 9_999), 1);
    assert.equal(secondsUntil(10_000, 10_000), 1);
    assert.equal(secondsUntil(70_000, 10_001), 60);
    assert.equal(secondsUntil(70_000, 10_000), 60);
    assert.equal(secondsUntil(70_000, 69_000), 1);
    assert.equal(secondsUntil(70_000, 68_999), 2);
  });
});

describe('applyRateLimits (Fastify)', () => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let counter: RateCounter;
  const logLines: string[] = [];
  // One clock for the counter and the helper, so Reset/Retry-After are exact. Starts 100 ms into a
  // one-minute window of a date far from the other tests' rows.
  const windowStart = Math.floor(2_000_000_000_000 / RATE_WINDOW_MS) * RATE_WINDOW_MS;
  let clock = windowStart + 100;

  function buildApp(c: RateCounter): FastifyInstance {
    const f = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => void logLines.push(line) } } });
    f.addHook('onRequest', async (request, reply) => {
      const user = request.headers['x-test-user'];
      const principal = typeof user === 'string' ? { userId: user } : null;
      const rules = rateRulesFor({ principal, ip: request.ip, admin: request.url.startsWith('/admin') }, LIMITS);
      if (!(await applyRateLimits(c, rules, reply, request.log, () => clock))) return reply;
    });
    f.get('/thing', async () => ({ data: { ok: true } }));
    f.get('/admin/thing', async () => ({ data: { ok: true } }));
    return f;
  }

  before(async () => {
    tdb = await freshDatabase();
    counter = new DatabaseRateCounter(tdb.db, { now: () => clock });
    app = buildApp(counter);
  });
  after(async () => {
    await app.close();
    await tdb.drop();
  });

  test('sets the headers on each allowed request, then answers 429 with the exact body and Retry-After', async () => {
    clock = windowStart + 100; // 59.9 s left in the window → 60 s, rounded up
    const req = () => app.inject({ method: 'GET', url: '/thing', headers: { 'x-test-user': 'alice' } });
    for (const remaining of [2, 1, 0]) {
      const res = await req();
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-ratelimit-limit'], '3');
      assert.equal(res.headers['x-ratelimit-remaining'], String(remaining));
      assert.equal(res.headers['x-ratelimit-reset'], '60');
      assert.equal(res.headers['retry-after'], undefined);
    }
    clock = windowStart + 45_500; // 14.5 s left → 15
    const res = await req();
    assert.equal(res.statusCode, 429);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(res.headers['retry-after'], '15');
    assert.equal(res.headers['x-ratelimit-limit'], '3');
    assert.equal(res.headers['x-ratelimit-remaining'], '0');
    assert.equal(res.headers['x-ratelimit-reset'], '15');
    assert.deepEqual(res.json(), {
      error: {
        code: 'RATE_LIMITED',
        message: 'rate limit of 3 requests per 60 s exceeded; retry after 15 s',
        details: { limit: 3, retry_after_seconds: 15 },
      },
    });
    // Another user of the same address is not affected.
    const bob = await app.inject({ method: 'GET', url: '/thing', headers: { 'x-test-user': 'bob' } });
    assert.equal(bob.statusCode, 200);
    assert.equal(bob.headers['x-ratelimit-remaining'], '2');
  });

  test('the next window lets the user in again', async () => {
    clock = windowStart + RATE_WINDOW_MS + 500; // 59.5 s left → 60
    const res = await app.inject({ method: 'GET', url: '/thing', headers: { 'x-test-user': 'alice' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-ratelimit-remaining'], '2');
    assert.equal(res.headers['x-ratelimit-reset'], '60');
  });

  test('admin routes: the headers describe the tighter per-address rule, which blocks first', async () => {
    clock = windowStart + 2 * RATE_WINDOW_MS + 30_000;
    const req = () => app.inject({ method: 'GET', url: '/admin/thing', headers: { 'x-test-user': 'carol' }, remoteAddress: '2001:db8:5:6::10' });
    const first = await req();
    assert.equal(first.statusCode, 200);
    assert.equal(first.headers['x-ratelimit-limit'], '2');
    assert.equal(first.headers['x-ratelimit-remaining'], '1');
    assert.equal(first.headers['x-ratelimit-reset'], '30');
    // Another address of the same /64 shares the admin budget.
    const second = await app.inject({ method: 'GET', url: '/admin/thing', headers: { 'x-test-user': 'dave' }, remoteAddress: '2001:db8:5:6::99' });
    assert.equal(second.statusCode, 200);
    assert.equal(second.headers['x-ratelimit-remaining'], '0');
    const third = await req();
    assert.equal(third.statusCode, 429);
    assert.deepEqual(third.json().error.details, { limit: 2, retry_after_seconds: 30 });
    // carol's own per-user budget (3) is not used up: a non-admin route still works.
    const plain = await app.inject({ method: 'GET', url: '/thing', headers: { 'x-test-user': 'carol' }, remoteAddress: '2001:db8:5:6::10' });
    assert.equal(plain.statusCode, 200);
    assert.equal(plain.headers['x-ratelimit-limit'], '3');
    assert.equal(plain.headers['x-ratelimit-remaining'], '0');
  });

  test('anonymous requests are limited per address', async () => {
    clock = windowStart + 3 * RATE_WINDOW_MS + 59_999; // 1 ms left → 1 s, never 0
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await app.inject({ method: 'GET', url: '/thing', remoteAddress: '203.0.113.5' })).statusCode);
    assert.deepEqual(codes, [200, 200, 200, 200, 429]);
    const res = await app.inject({ method: 'GET', url: '/thing', remoteAddress: '203.0.113.5' });
    assert.equal(res.headers['retry-after'], '1');
    assert.equal(res.json().error.details.retry_after_seconds, 1);
  });

  test('a counter whose database is down lets requests through without headers and logs a warning', async () => {
    const broken = await freshDatabase();
    const brokenCounter = new DatabaseRateCounter(broken.db, { now: () => clock });
    await broken.drop(); // closes the database: every hit now throws
    await assert.rejects(brokenCounter.hit('user:x', RATE_WINDOW_MS));
    const failOpen = buildApp(brokenCounter);
    try {
      logLines.length = 0;
      const res = await failOpen.inject({ method: 'GET', url: '/thing', headers: { 'x-test-user': 'erin' } });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), { data: { ok: true } });
      assert.equal(res.headers['x-ratelimit-limit'], undefined);
      assert.equal(res.headers['x-ratelimit-remaining'], undefined);
      assert.equal(res.headers['retry-after'], undefined);
      const warnings = logLines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'rate limit counter unavailable; request let through without limits');
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0].level, 40);
      // Only the driver's message is logged (no stack, no own properties of the driver's error).
      assert.equal(warnings[0].err.message, 'driver has already been destroyed');
      assert.equal(warnings[0].err.stack, '');
      assert.deepEqual(Object.keys(warnings[0].err).sort(), ['message', 'stack', 'type']);
    } finally {
      await failOpen.close();
    }
  });

  test('no rules: nothing counted, no headers', async () => {
    const f = Fastify();
    f.get('/x', async (_req, reply) => {
      const ok = await applyRateLimits(counter, [], reply, f.log);
      return { ok };
    });
    const res = await f.inject({ method: 'GET', url: '/x' });
    assert.deepEqual(res.json(), { ok: true });
    assert.equal(res.headers['x-ratelimit-limit'], undefined);
    await f.close();
  });
});
