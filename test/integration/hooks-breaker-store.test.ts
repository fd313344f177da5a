/**
 * The database store of the hook circuit breakers (migration 0010). In the cluster shape two
 * stores over separate connection pools stand for two nodes sharing one PostgreSQL database; in the
 * embedded shape (one node, one SQLite connection) both share the connection.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { shape, freshDatabase, type TestDatabase } from '../support/shape.js';
import { openDatabase, type Database } from '../../src/store/db/database.js';
import { migrateUp } from '../../src/store/db/migrator.js';
import { DatabaseBreakerStore } from '../../src/hooks/breaker-store.js';
import { BREAKER_PROFILES, CircuitBreaker, type BreakerKey } from '../../src/hooks/circuit-breaker.js';

const T0 = 1_800_000_000_000;
let tdb: TestDatabase;
let second: Database;

before(async () => {
  tdb = await freshDatabase();
  second = shape === 'cluster' ? await openDatabase(tdb.url, { poolMax: 10 }) : tdb.db;
});

after(async () => {
  if (second && second !== tdb.db) await second.close();
  await tdb?.drop();
});

function key(n: string): BreakerKey {
  return { hookId: `hook-${n}`, pluginId: 'com.example.spam', hookType: 'pre_receive' };
}

test('two stores over one database see the same open state, probe and reset', async () => {
  const nodeA = new CircuitBreaker(new DatabaseBreakerStore(tdb.db));
  const nodeB = new CircuitBreaker(new DatabaseBreakerStore(second));
  const k = key('shared');
  // Failures on two nodes add up: 2 on A and 1 on B open the strict breaker for both.
  await nodeA.record(k, 'timeout', T0);
  await nodeB.record(k, 'timeout', T0 + 1);
  assert.deepEqual(await nodeA.decide(k, T0 + 2), { allow: true, probe: false });
  await nodeA.record(k, 'failure', T0 + 2);
  assert.deepEqual(await nodeB.decide(k, T0 + 3), { allow: false, state: 'open' });
  assert.deepEqual(await nodeA.decide(k, T0 + 3), { allow: false, state: 'open' });
  const snap = await nodeB.state(k, T0 + 3);
  assert.deepEqual([snap.state, snap.consecutiveFailures, snap.windowCalls, snap.windowFailures, snap.openedAt], ['open', 3, 3, 3, T0 + 2]);

  // Exactly one node gets the probe.
  const [a, b] = await Promise.all([nodeA.decide(k, T0 + 60_002), nodeB.decide(k, T0 + 60_002)]);
  assert.deepEqual([a, b].filter((d) => d.allow).length, 1, `one probe, got ${JSON.stringify([a, b])}`);
  await nodeB.record(k, 'success', T0 + 60_100);
  assert.deepEqual(await nodeA.decide(k, T0 + 60_200), { allow: true, probe: false });

  // A manual reset on one node closes the breaker for the other.
  for (let i = 0; i < 3; i++) await nodeA.record(k, 'failure', T0 + 70_000 + i);
  assert.deepEqual(await nodeB.decide(k, T0 + 70_010), { allow: false, state: 'open' });
  await nodeB.reset(k);
  assert.deepEqual(await nodeA.decide(k, T0 + 70_020), { allow: true, probe: false });
});

test('concurrent record() calls on two nodes lose no failure', async () => {
  // The consecutive and ratio rules are disabled so that every failure is counted while closed.
  const profiles = { strict: { ...BREAKER_PROFILES.strict, consecutiveFailures: 1_000, minCalls: 1_000 } };
  const nodeA = new CircuitBreaker(new DatabaseBreakerStore(tdb.db), { profiles });
  const nodeB = new CircuitBreaker(new DatabaseBreakerStore(second), { profiles });
  const k = key('concurrent');
  const n = 40;
  // The row does not exist yet: the first writers race to insert it, too.
  await Promise.all(Array.from({ length: n }, (_, i) => (i % 2 ? nodeA : nodeB).record(k, 'failure', T0 + i)));
  const snap = await nodeA.state(k, T0 + n);
  assert.deepEqual([snap.state, snap.consecutiveFailures, snap.windowCalls, snap.windowFailures], ['closed', n, n, n]);
});

test('list() returns every breaker with its state; a damaged window counts as empty', async () => {
  const store = new DatabaseBreakerStore(tdb.db);
  const b = new CircuitBreaker(store);
  const k = key('listed');
  await b.record(k, 'failure', T0);
  const listed = await store.list();
  const row = listed.find((e) => e.id.hookId === k.hookId);
  assert.ok(row);
  assert.equal(row.id.pluginId, k.pluginId);
  assert.equal(row.state.consecutiveFailures, 1);
  assert.deepEqual(row.state.buckets, [{ start: T0 - (T0 % 10_000), calls: 1, failures: 1 }]);

  await tdb.db.kysely.updateTable('hook_breakers').set({ buckets_json: '{not json' }).where('hook_id', '=', k.hookId).execute();
  const snap = await b.state(k, T0 + 1);
  assert.deepEqual([snap.windowCalls, snap.consecutiveFailures], [0, 1]);
  await b.record(k, 'success', T0 + 2);
  assert.deepEqual((await b.state(k, T0 + 3)).windowCalls, 1);
});
