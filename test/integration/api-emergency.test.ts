/**
 * Emergency access (SPEC §10): `MAIRUST_EMERGENCY_TOKEN` exchanged once — even under concurrent
 * use — for a 15-minute access token of the oldest active super-admin, audited with the client
 * address; refused when no token is configured.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { systemScope } from '../../src/core/scope.js';
import { listAudit } from '../../src/security/audit.js';
import { hashToken } from '../../src/security/credentials/token.js';
import { startApi, TEST_PASSWORD, type ApiHarness } from '../support/api.js';

const EMERGENCY = '/api/v1/auth/emergency';
const ME = '/api/v1/auth/me';

describe('api: emergency access', () => {
  let api: ApiHarness;
  let clock = Date.now();
  const token = randomBytes(24).toString('base64url');

  before(async () => {
    api = await startApi({ now: () => clock, emergencyToken: token });
  });
  after(async () => {
    await api.close();
  });

  test('the token works once (also when two requests race) for the oldest active super-admin, audited', async () => {
    const root = await api.superAdmin();
    const sys = root.user.tenantId;
    // A newer super-admin does not change who is chosen: the oldest active one (root).
    await api.app.tenancy.users.add(systemScope, { tenantId: sys, email: 'second@mail.test', password: TEST_PASSWORD, role: 'super_admin' });

    const wrong = await api.call('POST', EMERGENCY, { body: { token: `${token}x` } });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.json.error, { code: 'UNAUTHORIZED', message: 'invalid emergency token', details: {} });

    const [a, b] = await Promise.all([
      api.call('POST', EMERGENCY, { body: { token }, remoteAddress: '192.0.2.66' }),
      api.call('POST', EMERGENCY, { body: { token }, remoteAddress: '192.0.2.66' }),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [200, 401], 'exactly one use succeeds');
    const win = a.status === 200 ? a : b;
    const lose = a.status === 200 ? b : a;
    assert.equal(lose.json.error.message, 'this emergency token was already used; set a new MAIRUST_EMERGENCY_TOKEN');
    const d = win.json.data;
    assert.equal(d.token_type, 'Bearer');
    assert.match(d.access_token, /^mra_/);
    assert.equal(d.expires_in, 900);
    assert.equal(d.refresh_token, undefined);
    assert.deepEqual(d.user, { id: root.user.id, email: 'root@mail.test' });

    const me = await api.call('GET', ME, { token: d.access_token });
    assert.equal(me.status, 200);
    assert.equal(me.json.data.role, 'super_admin');
    assert.equal(me.json.data.auth.mfa_pending, false);

    const third = await api.call('POST', EMERGENCY, { body: { token } });
    assert.equal(third.status, 401);

    const rows = await listAudit(api.app.db, systemScope, { eventType: 'auth.emergency_access' });
    assert.equal(rows.length, 1);
    assert.equal(rows[0].tenantId, sys);
    assert.deepEqual(rows[0].actor, { type: 'system', id: 'emergency_token', ip: '192.0.2.66' });
    assert.deepEqual(rows[0].target, { type: 'user', id: root.user.id });
    assert.ok(!JSON.stringify(rows).includes(token), 'the token is not in the audit log');

    const uses = await api.app.db.kysely.selectFrom('emergency_token_uses').selectAll().execute();
    assert.equal(uses.length, 1);
    assert.equal(uses[0].token_hash, hashToken(token), 'only the hash is stored');
    assert.equal(uses[0].ip, '192.0.2.66');

    // 15 minutes, then the access token is dead.
    clock += 15 * 60_000 - 1_000;
    assert.equal((await api.call('GET', ME, { token: d.access_token })).status, 200);
    clock += 1_000;
    assert.equal((await api.call('GET', ME, { token: d.access_token })).status, 401);

    const log = api.logText();
    assert.ok(!log.includes(token), 'the emergency token is not logged');
    assert.ok(!log.includes(d.access_token), 'the issued token is not logged');
    assert.match(log, /emergency access granted/);
  });
});

describe('api: emergency access without MAIRUST_EMERGENCY_TOKEN', () => {
  let api: ApiHarness;
  before(async () => {
    api = await startApi();
    await api.superAdmin();
  });
  after(async () => {
    await api.close();
  });

  test('every token is refused with 401 and nothing is recorded', async () => {
    for (const token of ['', 'x'.repeat(32), 'undefined']) {
      const res = await api.call('POST', EMERGENCY, { body: { token } });
      if (token === '') {
        assert.equal(res.status, 422, 'empty token fails validation');
        continue;
      }
      assert.equal(res.status, 401);
      assert.equal(res.json.error.message, 'invalid emergency token');
    }
    assert.equal((await api.app.db.kysely.selectFrom('emergency_token_uses').selectAll().execute()).length, 0);
    assert.equal((await listAudit(api.app.db, systemScope, { eventType: 'auth.emergency_access' })).length, 0);
  });
});
