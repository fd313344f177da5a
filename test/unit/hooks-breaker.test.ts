/** The circuit breaker per (hook, plugin) of SPEC §6: profiles, half-open probe, on_open, reset. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BREAKER_PROFILES,
  BREAKER_STATE_VALUE,
  CircuitBreaker,
  decideStep,
  openAction,
  recordStep,
  snapshotOf,
  type BreakerKey,
} from '../../src/hooks/circuit-breaker.js';
import { MemoryBreakerStore } from '../../src/hooks/breaker-store.js';

const T0 = 1_800_000_000_000;
const strictKey: BreakerKey = { hookId: 'spam-check', pluginId: 'com.example.spam', hookType: 'pre_receive' };
const normalKey: BreakerKey = { hookId: 'tagger', pluginId: 'com.example.tag', hookType: 'post_receive' };

function fresh(): CircuitBreaker {
  return new CircuitBreaker(new MemoryBreakerStore());
}

test('strict profile: three failing calls are counted, the fourth is refused at once until 60 s, then one probe', async () => {
  const b = fresh();
  let now = T0;
  for (let i = 1; i <= 3; i++) {
    assert.deepEqual(await b.decide(strictKey, now), { allow: true, probe: false }, `call ${i} goes to the plugin`);
    now += 2_000; // the plugin hangs until the 2 s timeout
    await b.record(strictKey, 'timeout', now);
  }
  const openedAt = now;
  assert.deepEqual(await b.decide(strictKey, now), { allow: false, state: 'open' }, 'the fourth call is refused');
  assert.equal(openAction({}), 'skip', 'default on_open: the plugin is skipped and the message accepted');
  assert.deepEqual(await b.decide(strictKey, openedAt + 59_999), { allow: false, state: 'open' }, 'still open just before 60 s');
  const snap = await b.state(strictKey, openedAt + 1_000);
  assert.equal(snap.state, 'open');
  assert.equal(snap.consecutiveFailures, 3);
  assert.equal(snap.probeAt, openedAt + 60_000);

  assert.deepEqual(await b.decide(strictKey, openedAt + 60_000), { allow: true, probe: true }, 'after 60 s one probe goes through');
  assert.deepEqual(await b.decide(strictKey, openedAt + 60_001), { allow: false, state: 'open' }, 'other calls wait for the probe');
  assert.equal((await b.state(strictKey, openedAt + 60_001)).state, 'half_open');
  await b.record(strictKey, 'success', openedAt + 60_500);
  assert.deepEqual(await b.decide(strictKey, openedAt + 60_600), { allow: true, probe: false }, 'the probe succeeded: closed');
  const closed = await b.state(strictKey, openedAt + 60_600);
  assert.deepEqual([closed.state, closed.consecutiveFailures, closed.windowCalls], ['closed', 0, 0]);
});

test('a failed probe re-opens the breaker for another 60 s', async () => {
  const b = fresh();
  for (let i = 0; i < 3; i++) await b.record(strictKey, 'failure', T0 + i);
  assert.deepEqual(await b.decide(strictKey, T0 + 2 + 60_000), { allow: true, probe: true });
  await b.record(strictKey, 'timeout', T0 + 70_000);
  assert.deepEqual(await b.decide(strictKey, T0 + 70_001), { allow: false, state: 'open' });
  assert.deepEqual(await b.decide(strictKey, T0 + 129_999), { allow: false, state: 'open' });
  assert.deepEqual(await b.decide(strictKey, T0 + 130_000), { allow: true, probe: true });
});

test('a probe that never answers is given up after its lease and another call may probe', () => {
  const p = BREAKER_PROFILES.strict;
  let s = recordStep(null, p, 'failure', T0);
  s = recordStep(s, p, 'failure', T0);
  s = recordStep(s, p, 'failure', T0);
  const first = decideStep(s, p, T0 + 60_000);
  assert.deepEqual(first.decision, { allow: true, probe: true });
  s = first.next!;
  assert.deepEqual(decideStep(s, p, T0 + 60_000 + p.probeLeaseMs - 1).decision, { allow: false, state: 'open' });
  assert.deepEqual(decideStep(s, p, T0 + 60_000 + p.probeLeaseMs).decision, { allow: true, probe: true });
});

test('strict profile: a success between failures resets the consecutive count', async () => {
  const b = fresh();
  let t = T0;
  // Successes first so that the ratio (4 of 8 = 50 %) stays below 70 %.
  for (const o of ['success', 'success', 'success', 'failure', 'failure', 'success', 'failure', 'failure'] as const) {
    await b.record(strictKey, o, (t += 1));
  }
  assert.deepEqual(await b.decide(strictKey, t + 1), { allow: true, probe: false }, '2 consecutive after a success: closed');
  await b.record(strictKey, 'failure', t + 2);
  assert.deepEqual(await b.decide(strictKey, t + 3), { allow: false, state: 'open' }, 'the third in a row opens');
});

test('strict profile: > 70 % failures within 1 minute (minimum 5 calls) opens', async () => {
  // F F S F F: never 3 in a row, but 4 of 5 = 80 % > 70 % once the 5-call minimum is reached.
  const b = fresh();
  let t = T0;
  for (const o of ['failure', 'failure', 'success', 'failure'] as const) await b.record(strictKey, o, (t += 1_000));
  assert.deepEqual(await b.decide(strictKey, t + 1), { allow: true, probe: false }, '3 of 4 is below the 5-call minimum');
  await b.record(strictKey, 'failure', (t += 1_000));
  assert.deepEqual(await b.decide(strictKey, t + 1), { allow: false, state: 'open' });
  const snap = await b.state(strictKey, t + 1);
  assert.deepEqual([snap.windowCalls, snap.windowFailures, snap.consecutiveFailures], [5, 4, 2]);

  // Exactly 70 % does not open, 72.7 % does (the consecutive rule disabled to isolate the ratio).
  const c = new CircuitBreaker(new MemoryBreakerStore(), { profiles: { strict: { ...BREAKER_PROFILES.strict, consecutiveFailures: 100 } } });
  t = T0;
  for (let i = 0; i < 3; i++) await c.record(strictKey, 'success', (t += 1_000));
  for (let i = 0; i < 7; i++) await c.record(strictKey, 'failure', (t += 1_000));
  assert.deepEqual(await c.decide(strictKey, t + 1), { allow: true, probe: false }, '7 of 10 = 70 % is not > 70 %');
  await c.record(strictKey, 'failure', (t += 1_000));
  assert.deepEqual(await c.decide(strictKey, t + 1), { allow: false, state: 'open' }, '8 of 11 > 70 %');
});

test('the ratio window forgets calls older than the window', async () => {
  const b = fresh();
  let t = T0;
  // 3 failures of 4 calls: below the 5-call minimum, not 3 in a row.
  for (const o of ['failure', 'failure', 'success', 'failure'] as const) await b.record(strictKey, o, (t += 100));
  // Two minutes later those calls are outside the 1-minute window: 1 failure of 2 calls counts.
  t += 120_000;
  await b.record(strictKey, 'success', t);
  await b.record(strictKey, 'failure', t + 1);
  const snap = await b.state(strictKey, t + 1);
  assert.deepEqual([snap.state, snap.windowCalls, snap.windowFailures], ['closed', 2, 1]);
  // Two more calls: the window holds 2 failures of 4 calls, the forgotten ones do not count.
  await b.record(strictKey, 'failure', t + 2);
  await b.record(strictKey, 'success', t + 3);
  assert.equal((await b.state(strictKey, t + 3)).state, 'closed', '2 failures of 4 calls in the window');
});

test('normal profile: 10 consecutive failures open, 9 do not', async () => {
  const b = fresh();
  for (let i = 0; i < 9; i++) await b.record(normalKey, 'failure', T0 + i * 1_000);
  // 9 of 9 = 100 % but below the 10-call minimum: the ratio does not open it yet.
  assert.deepEqual(await b.decide(normalKey, T0 + 9_000), { allow: true, probe: false });
  await b.record(normalKey, 'failure', T0 + 9_500);
  assert.deepEqual(await b.decide(normalKey, T0 + 10_000), { allow: false, state: 'open' });
  assert.deepEqual(await b.decide(normalKey, T0 + 9_500 + 60_000), { allow: true, probe: true });
});

test('normal profile: > 80 % failures within 5 minutes opens without 10 in a row', async () => {
  const b = fresh();
  let t = T0;
  // A success then nine failures 12 s apart (within 5 minutes): 9 of 10 = 90 %, never 10 in a row.
  await b.record(normalKey, 'success', t);
  for (let i = 0; i < 9; i++) await b.record(normalKey, 'failure', (t += 12_000));
  const snap = await b.state(normalKey, t);
  assert.deepEqual([snap.state, snap.consecutiveFailures, snap.windowCalls, snap.windowFailures], ['open', 9, 10, 9]);

  const c = fresh();
  t = T0;
  // 8 of 10 = 80 %: not strictly greater.
  for (const o of ['failure', 'failure', 'failure', 'failure', 'success', 'failure', 'failure', 'failure', 'failure', 'success'] as const) {
    await c.record(normalKey, o, (t += 1_000));
  }
  assert.equal((await c.state(normalKey, t)).state, 'closed');
});

test('late answers while open are counted but do not close the breaker', async () => {
  const b = fresh();
  for (let i = 0; i < 3; i++) await b.record(strictKey, 'failure', T0 + i);
  await b.record(strictKey, 'success', T0 + 10);
  assert.deepEqual(await b.decide(strictKey, T0 + 11), { allow: false, state: 'open' });
});

test('while half-open, a late non-probe answer does not decide, the answer of the probe does', async () => {
  const b = fresh();
  for (let i = 0; i < 3; i++) await b.record(strictKey, 'failure', T0 + i);
  const probe = await b.decide(strictKey, T0 + 60_002);
  assert.deepEqual(probe, { allow: true, probe: true });
  await b.record(strictKey, 'success', T0 + 60_010, { probe: false });
  assert.equal((await b.state(strictKey, T0 + 60_011)).state, 'half_open', 'a late success does not close');
  await b.record(strictKey, 'failure', T0 + 60_020, { probe: false });
  assert.equal((await b.state(strictKey, T0 + 60_021)).state, 'half_open', 'a late failure does not re-open');
  await b.record(strictKey, 'success', T0 + 60_030, { probe: true });
  assert.equal((await b.state(strictKey, T0 + 60_031)).state, 'closed');
});

test('manual reset closes the breaker with empty counters', async () => {
  const b = fresh();
  for (let i = 0; i < 3; i++) await b.record(strictKey, 'failure', T0 + i);
  assert.equal((await b.state(strictKey, T0 + 3)).state, 'open');
  await b.reset(strictKey);
  assert.deepEqual(await b.decide(strictKey, T0 + 4), { allow: true, probe: false });
  const snap = await b.state(strictKey, T0 + 4);
  assert.deepEqual([snap.state, snap.consecutiveFailures, snap.windowCalls, snap.openedAt], ['closed', 0, 0, null]);
});

test('breakers are per (hook, plugin)', async () => {
  const b = fresh();
  for (let i = 0; i < 3; i++) await b.record(strictKey, 'failure', T0 + i);
  const otherPlugin = { ...strictKey, pluginId: 'com.example.other' };
  const otherHook = { ...strictKey, hookId: 'other-hook' };
  assert.deepEqual(await b.decide(strictKey, T0 + 5), { allow: false, state: 'open' });
  assert.deepEqual(await b.decide(otherPlugin, T0 + 5), { allow: true, probe: false });
  assert.deepEqual(await b.decide(otherHook, T0 + 5), { allow: true, probe: false });
});

test('on_open: skip by default, reject and tempfail as configured, required hooks tempfail instead of skipping', () => {
  assert.equal(openAction({}), 'skip');
  assert.equal(openAction({ onOpen: 'skip' }), 'skip');
  assert.equal(openAction({ onOpen: 'reject' }), 'reject');
  assert.equal(openAction({ onOpen: 'tempfail' }), 'tempfail');
  assert.equal(openAction({ required: true }), 'tempfail');
  assert.equal(openAction({ onOpen: 'skip', required: true }), 'tempfail');
  assert.equal(openAction({ onOpen: 'reject', required: true }), 'reject');
});

test('snapshot of an unknown breaker is closed; the metric values of the states', () => {
  assert.deepEqual(snapshotOf(null, BREAKER_PROFILES.normal, T0), {
    state: 'closed', consecutiveFailures: 0, windowCalls: 0, windowFailures: 0, openedAt: null, probeAt: null, updatedAt: null,
  });
  assert.deepEqual(BREAKER_STATE_VALUE, { closed: 0, open: 1, half_open: 2 });
});

test('the state value stays small: at most one bucket per 10 s of the window', () => {
  const p = BREAKER_PROFILES.normal;
  let s = null as ReturnType<typeof recordStep> | null;
  for (let i = 0; i < 2_000; i++) s = recordStep(s, p, i % 2 ? 'success' : 'failure', T0 + i * 1_000);
  assert.ok(s!.buckets.length <= p.windowMs / p.bucketMs + 1, `${s!.buckets.length} buckets`);
  assert.equal(s!.state, 'closed', '50 % failures never open');
});

test('the memory store lists breakers and returns copies', async () => {
  const store = new MemoryBreakerStore();
  const b = new CircuitBreaker(store);
  await b.record(strictKey, 'failure', T0);
  const listed = await store.list();
  assert.equal(listed.length, 1);
  assert.deepEqual(listed[0]!.id, { hookId: strictKey.hookId, pluginId: strictKey.pluginId });
  listed[0]!.state.consecutiveFailures = 99;
  assert.equal((await store.read(strictKey))!.consecutiveFailures, 1);
});
