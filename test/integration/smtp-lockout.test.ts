/**
 * The login lockout of SPEC §10 against the real `auth_failures` table in both shapes: 5 failures
 * lock a key for 15 minutes, a lock ends on time, the window forgets old failures, success clears the
 * account but not the address, concurrent failures from two "nodes" are all counted, prune removes
 * only finished counters.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lockout, LOCKOUT_DEFAULTS, accountLockKey, addressLockKey } from '../../src/security/lockout.js';
import { freshDatabase, type TestDatabase } from '../support/shape.js';

const MIN = 60_000;

describe('Lockout (auth_failures table)', () => {
  let t: TestDatabase;
  let clock = 1_800_000_000_000;
  const now = () => clock;
  let lockout: Lockout;

  before(async () => {
    t = await freshDatabase();
  });
  after(async () => {
    await t.drop();
  });
  beforeEach(async () => {
    await t.db.kysely.deleteFrom('auth_failures').execute();
    clock = 1_800_000_000_000;
    lockout = new Lockout(t.db, { now });
  });

  test('defaults are the SPEC §10 values: 5 failures, 15 minutes', () => {
    assert.deepEqual({ ...LOCKOUT_DEFAULTS }, { maxFailures: 5, windowMs: 15 * MIN, lockMs: 15 * MIN });
  });

  test('keys: logins are case-insensitive and long ones are hashed', () => {
    assert.equal(accountLockKey(' Alice@Example.TEST '), 'account:alice@example.test');
    assert.match(accountLockKey(`${'a'.repeat(400)}@example.test`), /^account:sha256:[0-9a-f]{64}$/);
    assert.equal(addressLockKey('192.0.2.1'), 'ip:192.0.2.1');
  });

  test('four failures do not lock; the fifth locks for 15 minutes', async () => {
    const key = accountLockKey('alice@example.test');
    for (let i = 0; i < 4; i++) await lockout.recordFailure([key]);
    assert.deepEqual(await lockout.check(key), { locked: false, retryAfterMs: 0 });
    await lockout.recordFailure([key]);
    assert.deepEqual(await lockout.check(key), { locked: true, retryAfterMs: 15 * MIN });
    clock += 15 * MIN - 1;
    assert.deepEqual(await lockout.check(key), { locked: true, retryAfterMs: 1 });
    clock += 1;
    assert.deepEqual(await lockout.check(key), { locked: false, retryAfterMs: 0 });
  });

  test('after a lock ends the count starts again from zero', async () => {
    const key = 'ip:192.0.2.7';
    for (let i = 0; i < 5; i++) await lockout.recordFailure([key]);
    clock += 15 * MIN;
    await lockout.recordFailure([key]);
    assert.equal((await lockout.check(key)).locked, false);
    const row = await t.db.kysely.selectFrom('auth_failures').selectAll().where('key', '=', key).executeTakeFirstOrThrow();
    assert.equal(Number(row.failures), 1);
    assert.equal(row.locked_until, null);
  });

  test('failures older than the window are forgotten', async () => {
    const key = accountLockKey('bob@example.test');
    for (let i = 0; i < 4; i++) await lockout.recordFailure([key]);
    clock += 15 * MIN; // window over
    await lockout.recordFailure([key]);
    assert.equal((await lockout.check(key)).locked, false);
  });

  test('one failure counts against the account and the address; checkAny sees either lock', async () => {
    const account = accountLockKey('alice@example.test');
    const address = addressLockKey('198.51.100.9');
    for (let i = 0; i < 5; i++) await lockout.recordFailure([account, address]);
    assert.equal((await lockout.check(account)).locked, true);
    assert.equal((await lockout.check(address)).locked, true);
    // Another account from the locked address, and the locked account from another address.
    assert.equal((await lockout.checkAny([accountLockKey('carol@example.test'), address])).locked, true);
    assert.equal((await lockout.checkAny([account, addressLockKey('203.0.113.1')])).locked, true);
    assert.equal((await lockout.checkAny([accountLockKey('carol@example.test'), addressLockKey('203.0.113.1')])).locked, false);
    assert.deepEqual(await lockout.checkAny([]), { locked: false, retryAfterMs: 0 });
  });

  test('success clears the account count but keeps the address count', async () => {
    const account = accountLockKey('alice@example.test');
    const address = addressLockKey('198.51.100.10');
    for (let i = 0; i < 4; i++) await lockout.recordFailure([account, address]);
    await lockout.recordSuccess(account);
    await lockout.recordFailure([account, address]);
    assert.equal((await lockout.check(account)).locked, false, 'account count restarted at 1');
    assert.equal((await lockout.check(address)).locked, true, 'the address reached 5');
  });

  test('failures recorded concurrently by two nodes are all counted (atomic upsert)', async () => {
    const second = new Lockout(t.db, { now });
    const key = accountLockKey('dave@example.test');
    await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? lockout : second).recordFailure([key])));
    const row = await t.db.kysely.selectFrom('auth_failures').selectAll().where('key', '=', key).executeTakeFirstOrThrow();
    assert.equal(Number(row.failures), 10);
    assert.equal(Number(row.locked_until), clock + 15 * MIN);
  });

  test('failures during a lock do not extend it', async () => {
    const key = 'ip:192.0.2.8';
    for (let i = 0; i < 5; i++) await lockout.recordFailure([key]);
    clock += 10 * MIN;
    await lockout.recordFailure([key]);
    assert.deepEqual(await lockout.check(key), { locked: true, retryAfterMs: 5 * MIN });
  });

  test('maxFailures 1 locks on the first failure', async () => {
    const strict = new Lockout(t.db, { now, maxFailures: 1, lockMs: MIN });
    await strict.recordFailure(['ip:192.0.2.9']);
    assert.deepEqual(await strict.check('ip:192.0.2.9'), { locked: true, retryAfterMs: MIN });
  });

  test('prune deletes finished counters and keeps recent ones and locks', async () => {
    await lockout.recordFailure(['ip:old']);
    for (let i = 0; i < 5; i++) await lockout.recordFailure(['ip:locked']);
    clock += 16 * MIN;
    await lockout.recordFailure(['ip:recent']);
    for (let i = 0; i < 5; i++) await lockout.recordFailure(['ip:locked-now']);
    assert.equal(await lockout.prune(), 2); // ip:old, and ip:locked whose lock has ended
    const keys = (await t.db.kysely.selectFrom('auth_failures').select('key').orderBy('key').execute()).map((r) => r.key);
    assert.deepEqual(keys, ['ip:locked-now', 'ip:recent']);
  });

  test('bad options are refused', () => {
    assert.throws(() => new Lockout(t.db, { maxFailures: 0 }), RangeError);
    assert.throws(() => new Lockout(t.db, { lockMs: 0 }), RangeError);
  });
});
