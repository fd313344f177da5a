/**
 * REST API sign-in (SPEC §2, §10, §11 `auth`): login for API clients and browsers, uniform failures
 * (no user enumeration), lockout per account and per client address with its exact reply, suspended
 * tenants, refresh-token rotation with reuse detection, logout, `me`, and password changes.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { listAudit } from '../../src/security/audit.js';
import { startApi, TEST_PASSWORD, type ApiHarness, type TestTenant } from '../support/api.js';

const LOGIN = '/api/v1/auth/login';
const ME = '/api/v1/auth/me';

describe('api: auth', () => {
  let api: ApiHarness;
  let clock = Date.now();
  let acme: TestTenant;

  before(async () => {
    api = await startApi({ now: () => clock });
    acme = await api.tenant('acme');
  });
  after(async () => {
    await api.close();
  });

  const login = (email: string, password: string, extra: Record<string, unknown> = {}, remoteAddress = '127.0.0.1') =>
    api.call('POST', LOGIN, { body: { email, password, ...extra }, remoteAddress });

  async function auditOf(eventType: string) {
    return listAudit(api.app.db, systemScope, { eventType, limit: 1000 });
  }

  test('API client login returns a bearer pair that works, stamps last_login_at and is audited', async () => {
    const u = await api.user(acme.id, { email: 'alice@acme.test' });
    const res = await login('Alice@Acme.Test', TEST_PASSWORD, {}, '192.0.2.10');
    assert.equal(res.status, 200, res.body);
    const d = res.json.data;
    assert.equal(d.token_type, 'Bearer');
    assert.match(d.access_token, /^mra_/);
    assert.match(d.refresh_token, /^mrr_/);
    assert.equal(d.expires_in, 3600);
    assert.equal(d.mfa_required, false);
    assert.equal(d.mfa_enrollment_required, false);
    assert.equal(d.csrf_token, undefined);
    assert.equal(d.user.email, 'alice@acme.test');
    assert.deepEqual(res.cookies, {}, 'no cookies for API clients');

    const me = await api.call('GET', ME, { token: d.access_token });
    assert.equal(me.status, 200);
    assert.equal(me.json.data.id, u.user.id);
    assert.equal(me.json.data.auth.via, 'bearer');
    assert.ok(me.json.data.last_login_at, 'last_login_at is set');

    const rows = (await auditOf('auth.login_succeeded')).filter((r) => r.target.id === u.user.id);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].tenantId, acme.id);
    assert.deepEqual(rows[0].actor, { type: 'user', id: u.user.id, email: 'alice@acme.test', ip: '192.0.2.10' });
    assert.equal(rows[0].metadata.client, 'api');
  });

  test('browser login sets a session (cookies) and returns the CSRF token, no bearer token', async () => {
    await api.user(acme.id, { email: 'bob@acme.test' });
    const res = await login('bob@acme.test', TEST_PASSWORD, { client: 'browser' });
    assert.equal(res.status, 200, res.body);
    const d = res.json.data;
    assert.equal(d.access_token, undefined);
    assert.equal(d.refresh_token, undefined);
    assert.ok(res.cookies.mairust_session, 'session cookie');
    assert.equal(d.csrf_token, res.cookies.mairust_csrf, 'CSRF token in body = CSRF cookie');
    assert.ok(Date.parse(d.session_expires_at) - clock > 23 * 3_600_000, 'about 24 h');
    const me = await api.call('GET', ME, { cookies: { mairust_session: res.cookies.mairust_session } });
    assert.equal(me.status, 200);
    assert.equal(me.json.data.auth.via, 'session');
  });

  test('wrong password and unknown user get the same 401 body; failures are audited without the password', async () => {
    await api.user(acme.id, { email: 'carol@acme.test' });
    const wrong = await login('carol@acme.test', 'not the password at all', {}, '198.51.100.1');
    const unknown = await login('nobody@acme.test', 'not the password at all', {}, '198.51.100.2');
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    assert.deepEqual(wrong.json, { error: { code: 'UNAUTHORIZED', message: 'invalid e-mail or password', details: {} } });
    assert.deepEqual(unknown.json, wrong.json);

    const failed = await auditOf('auth.login_failed');
    const forCarol = failed.find((r) => r.actor.email === 'carol@acme.test');
    const forNobody = failed.find((r) => r.actor.email === 'nobody@acme.test');
    assert.equal(forCarol?.metadata.reason, 'invalid_credentials');
    assert.equal(forCarol?.actor.ip, '198.51.100.1');
    assert.equal(forNobody?.metadata.reason, 'invalid_credentials');
    assert.equal(forNobody?.tenantId, null);
    for (const r of failed) assert.ok(!JSON.stringify(r).includes('not the password'), 'no password in audit rows');
  });

  test('request validation: unknown fields and both second factors are refused', async () => {
    const extra = await login('admin@acme.test', TEST_PASSWORD, { remember: true });
    assert.equal(extra.status, 422);
    assert.equal(extra.json.error.code, 'VALIDATION_ERROR');
    const both = await login('admin@acme.test', TEST_PASSWORD, { totp_code: '123456', recovery_code: 'aaaa-bbbb-cccc' });
    assert.equal(both.status, 422);
    assert.equal(both.json.error.message, 'give either totp_code or recovery_code, not both');
  });

  test('lockout per account: 5 failures from 5 addresses lock it for 15 min (429 + Retry-After), password not checked', async () => {
    const victim = await api.user(acme.id, { email: 'dave@acme.test' });
    await api.user(acme.id, { email: 'dora@acme.test' });
    for (let i = 1; i <= 5; i++) {
      const r = await login('dave@acme.test', `wrong password ${i}!`, {}, `203.0.113.${i}`);
      assert.equal(r.status, 401, `attempt ${i}`);
    }
    const locked = await login('dave@acme.test', TEST_PASSWORD, {}, '203.0.113.99');
    assert.equal(locked.status, 429);
    assert.deepEqual(locked.json, {
      error: { code: 'RATE_LIMITED', message: 'too many failed sign-in attempts; try again in 900 seconds', details: { retry_after_seconds: 900 } },
    });
    assert.equal(locked.headers['retry-after'], '900');
    // Other accounts are not affected from these addresses.
    const other = await login('dora@acme.test', TEST_PASSWORD, {}, '203.0.113.1');
    assert.equal(other.status, 200);
    const rows = (await auditOf('auth.login_failed')).filter((r) => r.actor.email === 'dave@acme.test' && r.metadata.reason === 'locked');
    assert.equal(rows.length, 1);

    // 14 min 59 s later still locked (Retry-After counts down); after 15 min the correct password works.
    clock += 14 * 60_000 + 59_000;
    const still = await login('dave@acme.test', TEST_PASSWORD, {}, '203.0.113.99');
    assert.equal(still.status, 429);
    assert.equal(still.headers['retry-after'], '1');
    clock += 1_000;
    const ok = await login('dave@acme.test', TEST_PASSWORD, {}, '203.0.113.99');
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.json.data.user.id, victim.user.id);
  });

  test('lockout per address: 5 failures on different accounts lock the address, not the accounts', async () => {
    await api.user(acme.id, { email: 'erin@acme.test' });
    const ip = '192.0.2.200';
    for (let i = 1; i <= 5; i++) {
      const r = await login(`ghost${i}@acme.test`, 'wrong password here', {}, ip);
      assert.equal(r.status, 401, `attempt ${i}`);
    }
    const locked = await login('erin@acme.test', TEST_PASSWORD, {}, ip);
    assert.equal(locked.status, 429);
    assert.equal(locked.json.error.code, 'RATE_LIMITED');
    assert.equal(locked.headers['retry-after'], '900');
    // IPv6: the lock covers the client's whole /64.
    for (let i = 1; i <= 5; i++) await login(`v6ghost${i}@acme.test`, 'wrong password here', {}, `2001:db8:1:2::${i}`);
    const v6 = await login('erin@acme.test', TEST_PASSWORD, {}, '2001:db8:1:2:ffff::1');
    assert.equal(v6.status, 429);
    const elsewhere = await login('erin@acme.test', TEST_PASSWORD, {}, '192.0.2.201');
    assert.equal(elsewhere.status, 200);
  });

  test('a suspended tenant cannot sign in: 403 with the right password, the ordinary 401 without', async () => {
    const t = await api.tenant('sleepy');
    const u = await api.user(t.id, { email: 'frank@sleepy.test' });
    await api.app.tenancy.tenants.setStatus(systemScope, t.id, 'suspended');
    const right = await login('frank@sleepy.test', TEST_PASSWORD, {}, '192.0.2.50');
    assert.equal(right.status, 403);
    assert.equal(right.json.error.code, 'FORBIDDEN');
    assert.equal(right.json.error.message, 'the tenant is suspended; sign-in is not possible');
    const wrong = await login('frank@sleepy.test', 'not the password at all', {}, '192.0.2.51');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error.message, 'invalid e-mail or password');
    // Tokens issued before the suspension stop working too (auth hook).
    const before = await api.call('GET', ME, { token: u.token });
    assert.equal(before.status, 401);
  });

  test('refresh rotates the pair; a reused refresh token revokes the whole family', async () => {
    await api.user(acme.id, { email: 'gina@acme.test' });
    const first = (await login('gina@acme.test', TEST_PASSWORD)).json.data;
    const r1 = await api.call('POST', '/api/v1/auth/refresh', { body: { refresh_token: first.refresh_token } });
    assert.equal(r1.status, 200, r1.body);
    const second = r1.json.data;
    assert.equal(second.token_type, 'Bearer');
    assert.notEqual(second.access_token, first.access_token);
    assert.notEqual(second.refresh_token, first.refresh_token);
    assert.equal((await api.call('GET', ME, { token: first.access_token })).status, 401, 'old access token ended');
    assert.equal((await api.call('GET', ME, { token: second.access_token })).status, 200);

    const reuse = await api.call('POST', '/api/v1/auth/refresh', { body: { refresh_token: first.refresh_token } });
    assert.equal(reuse.status, 401);
    assert.equal(reuse.json.error.code, 'UNAUTHORIZED');
    assert.match(reuse.json.error.message, /already used/);
    assert.equal((await api.call('GET', ME, { token: second.access_token })).status, 401, 'family revoked');
    const after = await api.call('POST', '/api/v1/auth/refresh', { body: { refresh_token: second.refresh_token } });
    assert.equal(after.status, 401);

    const garbage = await api.call('POST', '/api/v1/auth/refresh', { body: { refresh_token: 'mrr_nonsense' } });
    assert.equal(garbage.status, 401);
    assert.equal(garbage.json.error.message, 'invalid, expired or revoked refresh token');
  });

  test('logout revokes the token family, and a named refresh token of your own', async () => {
    await api.user(acme.id, { email: 'hank@acme.test' });
    await api.user(acme.id, { email: 'hanna@acme.test' });
    const a = (await login('hank@acme.test', TEST_PASSWORD)).json.data;
    const b = (await login('hank@acme.test', TEST_PASSWORD)).json.data;
    const other = (await login('hanna@acme.test', TEST_PASSWORD)).json.data;
    const out = await api.call('POST', '/api/v1/auth/logout', { token: a.access_token, body: { refresh_token: b.refresh_token } });
    assert.equal(out.status, 200, out.body);
    assert.deepEqual(out.json, { data: { logged_out: true } });
    assert.equal((await api.call('GET', ME, { token: a.access_token })).status, 401);
    assert.equal((await api.call('POST', '/api/v1/auth/refresh', { body: { refresh_token: a.refresh_token } })).status, 401);
    assert.equal((await api.call('GET', ME, { token: b.access_token })).status, 401, 'named sign-in ended too');

    // Someone else's refresh token is ignored.
    const c = (await login('hank@acme.test', TEST_PASSWORD)).json.data;
    const out2 = await api.call('POST', '/api/v1/auth/logout', { token: c.access_token, body: { refresh_token: other.refresh_token } });
    assert.equal(out2.status, 200);
    assert.equal((await api.call('GET', ME, { token: other.access_token })).status, 200, "another user's sign-in untouched");

    const noBody = await api.call('POST', '/api/v1/auth/logout', { token: other.access_token });
    assert.equal(noBody.status, 200, noBody.body);
    assert.equal((await api.call('GET', ME, { token: other.access_token })).status, 401);
    const rows = (await auditOf('auth.logout')).filter((r) => r.actor.email === 'hank@acme.test');
    assert.equal(rows.length, 2);
  });

  test('me describes the caller, with its tenant and role, and holds no secret', async () => {
    const t = await api.tenant('widgets');
    const d = await api.app.tenancy.domains.add(tenantScope(t.id), { name: 'widgets.example' });
    const da = await api.user(t.id, { email: 'ivy@widgets.example', role: 'domain_admin', domainScope: [d.id] });
    const res = await api.call('GET', ME, { token: da.token });
    assert.equal(res.status, 200);
    const m = res.json.data;
    assert.deepEqual(
      { ...m, last_login_at: undefined },
      {
        id: da.user.id,
        email: 'ivy@widgets.example',
        display_name: '',
        role: 'domain_admin',
        tenant: { id: t.id, name: 'widgets', mfa_required: false },
        domain_scope: [d.id],
        locale: 'en',
        last_login_at: undefined,
        mfa: { enabled: false, recovery_codes_remaining: 0 },
        auth: { via: 'bearer', mfa_pending: false, scopes: ['admin', 'plugin', 'read', 'send', 'write'] },
      },
    );
    assert.ok(!/argon2|password|hash|mra_|mrr_/i.test(res.body), 'no secret in me');
    const anon = await api.call('GET', ME);
    assert.equal(anon.status, 401);
    assert.equal(anon.json.error.code, 'UNAUTHORIZED');
  });

  test('an API key reads me but cannot change the password or the second factor, nor "log out"', async () => {
    const u = await api.user(acme.id, { email: 'kate@acme.test' });
    const key = await api.deps.apiKeys.create({ tenantId: acme.id, userId: u.user.id, name: 'ci', scopes: ['read', 'write', 'admin'] });
    const me = await api.call('GET', ME, { token: key.key });
    assert.equal(me.status, 200);
    assert.deepEqual(me.json.data.auth, { via: 'api_key', mfa_pending: false, scopes: ['admin', 'read', 'write'] });
    const message = 'this needs a sign-in (session or bearer token from /auth/login), not an API key';
    const pw = await api.call('POST', '/api/v1/auth/password', { token: key.key, body: { current_password: TEST_PASSWORD, new_password: 'an API key chose this' } });
    assert.equal(pw.status, 403);
    assert.equal(pw.json.error.message, message);
    const enrol = await api.call('POST', '/api/v1/auth/totp/enrol', { token: key.key });
    assert.equal(enrol.status, 403);
    assert.equal(enrol.json.error.message, message);
    const out = await api.call('POST', '/api/v1/auth/logout', { token: key.key });
    assert.equal(out.status, 400);
    assert.equal(out.json.error.code, 'INVALID_REQUEST');
    assert.equal((await login('kate@acme.test', TEST_PASSWORD)).status, 200, 'password unchanged');
  });

  test('GET /api/v1/me is a deprecated alias of /auth/me: Deprecation, Sunset and successor Link headers', async () => {
    const res = await api.call('GET', '/api/v1/me', { token: acme.admin.token });
    assert.equal(res.status, 200);
    assert.equal(res.json.data.id, acme.admin.user.id);
    assert.equal(res.headers.deprecation, `@${Date.parse('2026-11-01') / 1000}`);
    assert.equal(res.headers.sunset, 'Wed, 30 Jun 2027 00:00:00 GMT');
    assert.equal(res.headers.link, '</api/v1/auth/me>; rel="successor-version"');
    const current = await api.call('GET', ME, { token: acme.admin.token });
    assert.equal(current.headers.deprecation, undefined, 'the successor is not deprecated');
    assert.deepEqual(current.json, res.json);
    const doc = (await api.call('GET', '/api/v1/openapi.json')).json;
    assert.equal(doc.paths['/api/v1/me'].get.deprecated, true);
    assert.notEqual(doc.paths['/api/v1/auth/me'].get.deprecated, true);
  });

  test('password change: policy, current password, last 5 not reused, other sessions and tokens revoked', async () => {
    const u = await api.user(acme.id, { email: 'jack@acme.test' });
    const mine = (await login('jack@acme.test', TEST_PASSWORD, {}, '192.0.2.77')).json.data.access_token as string;
    const otherToken = (await login('jack@acme.test', TEST_PASSWORD, {}, '192.0.2.77')).json.data;
    const browser = await login('jack@acme.test', TEST_PASSWORD, { client: 'browser' }, '192.0.2.77');
    const change = (current: string, next: string) =>
      api.call('POST', '/api/v1/auth/password', { token: mine, body: { current_password: current, new_password: next }, remoteAddress: '192.0.2.77' });

    const short = await change(TEST_PASSWORD, 'short pw');
    assert.equal(short.status, 422);
    assert.equal(short.json.error.code, 'VALIDATION_ERROR');
    assert.equal(short.json.error.message, 'password must be at least 12 characters long (it has 8)');
    assert.equal(short.json.error.details.field, 'new_password');

    const wrongCurrent = await change('not the current one', 'a brand new password 1');
    assert.equal(wrongCurrent.status, 403);
    assert.deepEqual(wrongCurrent.json.error, { code: 'FORBIDDEN', message: 'the password is not correct', details: { field: 'current_password' } });

    const same = await change(TEST_PASSWORD, TEST_PASSWORD);
    assert.equal(same.status, 422);
    assert.equal(same.json.error.message, 'this password was used recently; choose one that is not among the last 5');

    const pw = (i: number) => `rotation password number ${i}`;
    let current = TEST_PASSWORD;
    for (let i = 1; i <= 4; i++) {
      const r = await change(current, pw(i));
      assert.equal(r.status, 200, `change ${i}: ${r.body}`);
      assert.deepEqual(r.json, { data: { changed: true } });
      current = pw(i);
    }
    // History: pw4 (current), pw3, pw2, pw1, original — all five refused.
    const reused = await change(current, TEST_PASSWORD);
    assert.equal(reused.status, 422);
    assert.match(reused.json.error.message, /not among the last 5/);
    assert.equal((await change(current, pw(5))).status, 200);
    current = pw(5);
    // The original is now the 6th back: allowed again.
    assert.equal((await change(current, TEST_PASSWORD)).status, 200);

    // The token making the changes still works; every other credential was revoked at the first change.
    assert.equal((await api.call('GET', ME, { token: mine })).status, 200);
    assert.equal((await api.call('GET', ME, { token: otherToken.access_token })).status, 401);
    assert.equal((await api.call('POST', '/api/v1/auth/refresh', { body: { refresh_token: otherToken.refresh_token } })).status, 401);
    assert.equal((await api.call('GET', ME, { cookies: { mairust_session: browser.cookies.mairust_session } })).status, 401);
    assert.equal((await login('jack@acme.test', pw(5), {}, '192.0.2.78')).status, 401, 'old password no longer works');
    assert.equal((await login('jack@acme.test', TEST_PASSWORD, {}, '192.0.2.78')).status, 200);

    const rows = (await auditOf('user.password_changed')).filter((r) => r.target.id === u.user.id);
    assert.equal(rows.length, 6);
    assert.equal(rows[0].actor.id, u.user.id);
  });

  test('no password, token or hash reaches the log', async () => {
    const text = api.logText();
    assert.ok(text.length > 0);
    assert.ok(!text.includes(TEST_PASSWORD), 'no password in the log');
    assert.ok(!/mra_|mrr_|mairust_session=|argon2/.test(text), 'no token or hash in the log');
  });
});
