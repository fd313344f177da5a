/**
 * The second factor (SPEC §2, §10): TOTP per RFC 6238 with recovery codes, through the REST API.
 * Codes are computed in the test with the `otpauth` package from the secret the API hands out, at
 * the instant of an injected clock.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Secret, TOTP, URI } from 'otpauth';
import { systemScope } from '../../src/core/scope.js';
import { listAudit } from '../../src/security/audit.js';
import { checkTotp, timeStep, totpCode, totpUri } from '../../src/security/totp.js';
import { findRecoveryCode, generateRecoveryCodes, hashRecoveryCode, normalizeRecoveryCode, RECOVERY_CODE_COUNT } from '../../src/security/recovery-codes.js';
import { startApi, TEST_PASSWORD, type ApiHarness } from '../support/api.js';

const LOGIN = '/api/v1/auth/login';
const ME = '/api/v1/auth/me';
const VERIFY = '/api/v1/auth/mfa/verify';

/** What an authenticator app shows for `secret` at `atMs`. */
function appCode(secret: string, atMs: number): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: atMs });
}

describe('totp.ts and recovery-codes.ts', () => {
  test('RFC 6238 Appendix B vectors (SHA-1, low 6 digits)', () => {
    const secret = Secret.fromLatin1('12345678901234567890').base32;
    const vectors: [number, string][] = [
      [59, '287082'],
      [1111111109, '081804'],
      [1111111111, '050471'],
      [1234567890, '005924'],
      [2000000000, '279037'],
      [20000000000, '353130'],
    ];
    for (const [t, code] of vectors) {
      assert.equal(totpCode(secret, t * 1000), code, `T=${t}`);
      assert.deepEqual(checkTotp(secret, code, t * 1000, 0), { ok: true, step: timeStep(t * 1000) });
    }
  });

  test('±1 step window; a code at or before the last accepted step is a replay', () => {
    const secret = Secret.fromLatin1('12345678901234567890').base32;
    const t = 1_700_000_010_000;
    const s = timeStep(t);
    assert.deepEqual(checkTotp(secret, totpCode(secret, t - 30_000), t, 0), { ok: true, step: s - 1 });
    assert.deepEqual(checkTotp(secret, totpCode(secret, t + 30_000), t, 0), { ok: true, step: s + 1 });
    assert.deepEqual(checkTotp(secret, totpCode(secret, t - 60_000), t, 0), { ok: false, reason: 'invalid' });
    assert.deepEqual(checkTotp(secret, totpCode(secret, t + 60_000), t, 0), { ok: false, reason: 'invalid' });
    assert.deepEqual(checkTotp(secret, totpCode(secret, t), t, s), { ok: false, reason: 'replayed' });
    assert.deepEqual(checkTotp(secret, totpCode(secret, t - 30_000), t, s), { ok: false, reason: 'replayed' });
    assert.deepEqual(checkTotp(secret, '12345', t, 0), { ok: false, reason: 'invalid' });
    assert.deepEqual(checkTotp(secret, '１２３４５６', t, 0), { ok: false, reason: 'invalid' });
  });

  test('the otpauth:// URI names issuer MaiRust and the user, SHA1/6/30', () => {
    const secret = Secret.fromLatin1('12345678901234567890').base32;
    const parsed = URI.parse(totpUri(secret, 'kim@example.com')) as TOTP;
    assert.ok(parsed instanceof TOTP);
    assert.equal(parsed.issuer, 'MaiRust');
    assert.equal(parsed.label, 'kim@example.com');
    assert.equal(parsed.algorithm, 'SHA1');
    assert.equal(parsed.digits, 6);
    assert.equal(parsed.period, 30);
    assert.equal(parsed.secret.base32, secret);
  });

  test('recovery codes: 10 distinct, 60 bits each, forgiving input, salted hashes', () => {
    const codes = generateRecoveryCodes();
    assert.equal(codes.length, RECOVERY_CODE_COUNT);
    assert.equal(new Set(codes).size, RECOVERY_CODE_COUNT);
    for (const c of codes) assert.match(c, /^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/);
    const c = codes[3];
    assert.equal(normalizeRecoveryCode(` ${c.toUpperCase().replace(/-/g, ' ')} `), c.replace(/-/g, ''));
    assert.equal(normalizeRecoveryCode('abcd-efgh-jk'), null, 'too short');
    assert.equal(normalizeRecoveryCode('abcd-efgh-jkmu'), null, 'u is not in the alphabet');
    const hashes = codes.map((x) => hashRecoveryCode('user-1', x));
    assert.equal(findRecoveryCode(hashes, 'user-1', c.toUpperCase()), 3);
    assert.equal(findRecoveryCode(hashes, 'user-2', c), -1, 'hashes are per user');
    assert.notEqual(hashRecoveryCode('user-1', c), hashRecoveryCode('user-2', c));
    assert.ok(!hashes.some((h) => h.includes(c.replace(/-/g, ''))));
  });
});

describe('api: TOTP second factor', () => {
  let api: ApiHarness;
  // Two seconds into a 30-second step, so "the next step" is exactly +30 s.
  let clock = Math.floor(Date.now() / 30_000) * 30_000 + 2_000;
  let tenantId: string;
  let ipCounter = 0;
  /** A fresh client address per request, so per-address lockout never interferes unless meant to. */
  const ip = () => `10.1.${Math.floor(++ipCounter / 250)}.${ipCounter % 250}`;

  before(async () => {
    api = await startApi({ now: () => clock });
    tenantId = (await api.tenant('secure')).id;
  });
  after(async () => {
    await api.close();
  });

  const call = (method: string, path: string, opts: Parameters<ApiHarness['call']>[2] = {}) => api.call(method, path, { remoteAddress: ip(), ...opts });
  const login = (email: string, extra: Record<string, unknown> = {}) => call('POST', LOGIN, { body: { email, password: TEST_PASSWORD, ...extra } });

  /** Enrols and confirms TOTP for a user with a bearer token; returns the secret and recovery codes. */
  async function enrol(token: string): Promise<{ secret: string; codes: string[] }> {
    const e = await call('POST', '/api/v1/auth/totp/enrol', { token });
    assert.equal(e.status, 200, e.body);
    const secret = e.json.data.secret as string;
    const c = await call('POST', '/api/v1/auth/totp/confirm', { token, body: { code: appCode(secret, clock) } });
    assert.equal(c.status, 200, c.body);
    // The code just used is spent: move on to the next step for the test's next code.
    clock += 30_000;
    return { secret, codes: c.json.data.recovery_codes };
  }

  test('enrolment: secret shown once as base32 + otpauth URI; confirm with a code turns TOTP on and returns 10 recovery codes', async () => {
    const u = await api.user(tenantId, { email: 'kim@secure.test' });
    const e = await call('POST', '/api/v1/auth/totp/enrol', { token: u.token });
    assert.equal(e.status, 200, e.body);
    const { secret, otpauth_url } = e.json.data;
    assert.match(secret, /^[A-Z2-7]{32}$/, '160-bit base32 secret');
    const parsed = URI.parse(otpauth_url) as TOTP;
    assert.equal(parsed.issuer, 'MaiRust');
    assert.equal(parsed.label, 'kim@secure.test');
    assert.equal(parsed.secret.base32, secret);
    assert.equal((await call('GET', ME, { token: u.token })).json.data.mfa.enabled, false, 'not on before confirmation');

    const wrong = await call('POST', '/api/v1/auth/totp/confirm', { token: u.token, body: { code: appCode(secret, clock + 120_000) } });
    assert.equal(wrong.status, 422);
    assert.equal(wrong.json.error.code, 'VALIDATION_ERROR');
    assert.equal(wrong.json.error.details.field, 'code');
    const bad = await call('POST', '/api/v1/auth/totp/confirm', { token: u.token, body: { code: '12ab56' } });
    assert.equal(bad.status, 422, 'not 6 digits');

    const ok = await call('POST', '/api/v1/auth/totp/confirm', { token: u.token, body: { code: appCode(secret, clock) } });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.json.data.enabled, true);
    assert.equal(ok.json.data.recovery_codes.length, 10);
    assert.equal(ok.json.data.sign_in, undefined, 'a full sign-in needs no new credential');
    const me = (await call('GET', ME, { token: u.token })).json.data;
    assert.deepEqual(me.mfa, { enabled: true, recovery_codes_remaining: 10 });

    // At rest: only a sealed secret and hashes.
    const row = await api.app.db.kysely.selectFrom('user_mfa').selectAll().where('user_id', '=', u.user.id).executeTakeFirstOrThrow();
    const sealed = await api.app.db.kysely.selectFrom('secrets').selectAll().where('id', '=', row.totp_secret_id!).executeTakeFirstOrThrow();
    assert.equal(sealed.kind, 'totp');
    assert.ok(!JSON.stringify(sealed).includes(secret), 'secret sealed');
    for (const code of ok.json.data.recovery_codes) assert.ok(!row.recovery_codes_json.includes(code.replace(/-/g, '')), 'codes hashed');

    const again = await call('POST', '/api/v1/auth/totp/enrol', { token: u.token });
    assert.equal(again.status, 409);
    assert.equal(again.json.error.code, 'CONFLICT');

    const audit = (await listAudit(api.app.db, systemScope, { eventType: 'user.mfa_enabled' })).filter((r) => r.target.id === u.user.id);
    assert.equal(audit.length, 1);
    assert.ok(!JSON.stringify(audit).includes(secret));
  });

  test('login needs the code: password alone gives an mfa-pending credential that only reaches the second-factor routes', async () => {
    const u = await api.user(tenantId, { email: 'lee@secure.test' });
    const { secret } = await enrol(u.token);

    const first = await login('lee@secure.test');
    assert.equal(first.status, 200, first.body);
    const pending = first.json.data;
    assert.equal(pending.mfa_required, true);
    assert.equal(pending.mfa_enrollment_required, false);
    assert.match(pending.access_token, /^mra_/);
    assert.equal(pending.refresh_token, undefined, 'no refresh token while pending');
    assert.equal(pending.expires_in, 600);

    const me = await call('GET', ME, { token: pending.access_token });
    assert.equal(me.status, 200);
    assert.equal(me.json.data.auth.mfa_pending, true);
    const codes = await call('POST', '/api/v1/auth/recovery-codes', { token: pending.access_token, body: { password: TEST_PASSWORD } });
    assert.equal(codes.status, 403, 'the password alone cannot mint recovery codes');
    assert.deepEqual(codes.json.error.details, { mfa_required: true });
    const pw = await call('POST', '/api/v1/auth/password', { token: pending.access_token, body: { current_password: TEST_PASSWORD, new_password: 'another good password' } });
    assert.equal(pw.status, 403);

    const wrong = await call('POST', VERIFY, { token: pending.access_token, body: { code: appCode(secret, clock + 300_000) } });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.json.error, { code: 'UNAUTHORIZED', message: 'invalid authentication code', details: { field: 'code' } });

    const ok = await call('POST', VERIFY, { token: pending.access_token, body: { code: appCode(secret, clock) } });
    assert.equal(ok.status, 200, ok.body);
    const full = ok.json.data;
    assert.equal(full.mfa_required, false);
    assert.match(full.refresh_token, /^mrr_/);
    assert.notEqual(full.access_token, pending.access_token, 'a new credential after the second factor');
    assert.equal((await call('GET', ME, { token: pending.access_token })).status, 401, 'pending credential revoked');
    const fullMe = await call('GET', ME, { token: full.access_token });
    assert.equal(fullMe.json.data.auth.mfa_pending, false);
    assert.equal((await call('POST', VERIFY, { token: full.access_token, body: { code: '000000' } })).status, 409, 'nothing left to verify');

    clock += 30_000;
    const direct = await login('lee@secure.test', { totp_code: appCode(secret, clock) });
    assert.equal(direct.status, 200);
    assert.equal(direct.json.data.mfa_required, false);
    assert.match(direct.json.data.refresh_token, /^mrr_/);
    const rows = (await listAudit(api.app.db, systemScope, { eventType: 'auth.login_succeeded' })).filter((r) => r.target.id === u.user.id);
    assert.deepEqual(rows.map((r) => r.metadata.second_factor), ['totp', 'totp']);
  });

  test('a code is accepted once (RFC 6238 §5.2): replayed, older and concurrently reused codes are refused', async () => {
    const u = await api.user(tenantId, { email: 'max@secure.test' });
    const { secret } = await enrol(u.token);
    const code = appCode(secret, clock);
    assert.equal((await login('max@secure.test', { totp_code: code })).status, 200);
    const replay = await login('max@secure.test', { totp_code: code });
    assert.equal(replay.status, 401);
    assert.equal(replay.json.error.message, 'invalid authentication code');

    clock += 30_000;
    const next = appCode(secret, clock);
    assert.equal((await login('max@secure.test', { totp_code: next })).status, 200);
    const older = appCode(secret, clock - 30_000);
    assert.notEqual(older, next);
    assert.equal((await login('max@secure.test', { totp_code: older })).status, 401, 'the previous step is inside the window but before the last accepted one');

    clock += 30_000;
    const racing = appCode(secret, clock);
    const results = await Promise.all([login('max@secure.test', { totp_code: racing }), login('max@secure.test', { totp_code: racing })]);
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 401], 'exactly one of two concurrent uses wins');
    clock += 30_000;
  });

  test('a recovery code signs in once, in any case and spacing, and its use is audited', async () => {
    const u = await api.user(tenantId, { email: 'ned@secure.test' });
    const { codes } = await enrol(u.token);
    const r1 = await login('ned@secure.test', { recovery_code: codes[0].toUpperCase().replace(/-/g, ' ') });
    assert.equal(r1.status, 200, r1.body);
    assert.equal(r1.json.data.mfa_required, false);
    assert.equal(r1.json.data.user.mfa.recovery_codes_remaining, 9);
    const again = await login('ned@secure.test', { recovery_code: codes[0] });
    assert.equal(again.status, 401);
    assert.deepEqual(again.json.error.details, { field: 'recovery_code' });

    // Through mfa/verify as well.
    const pending = (await login('ned@secure.test')).json.data.access_token as string;
    const v = await call('POST', VERIFY, { token: pending, body: { recovery_code: codes[1] } });
    assert.equal(v.status, 200, v.body);
    assert.equal((await call('POST', VERIFY, { token: v.json.data.access_token, body: { recovery_code: codes[2] } })).status, 409);

    const used = (await listAudit(api.app.db, systemScope, { eventType: 'user.recovery_code_used' })).filter((r) => r.target.id === u.user.id);
    assert.deepEqual(used.map((r) => r.metadata.remaining), [8, 9]);
    for (const r of used) assert.ok(!JSON.stringify(r).includes(codes[0]) && !JSON.stringify(r).includes(codes[1]));
  });

  test('wrong codes count as failed logins: 5 lock the account (429), even for the right code', async () => {
    const u = await api.user(tenantId, { email: 'oli@secure.test' });
    const { secret } = await enrol(u.token);
    const pending = (await login('oli@secure.test')).json.data.access_token as string;
    for (let i = 0; i < 5; i++) {
      const r = await call('POST', VERIFY, { token: pending, body: { code: appCode(secret, clock + 600_000 + i * 30_000) } });
      assert.equal(r.status, 401, `attempt ${i + 1}`);
    }
    const locked = await call('POST', VERIFY, { token: pending, body: { code: appCode(secret, clock) } });
    assert.equal(locked.status, 429);
    assert.equal(locked.json.error.code, 'RATE_LIMITED');
    assert.equal(locked.headers['retry-after'], '900');
    assert.equal((await login('oli@secure.test', { totp_code: appCode(secret, clock) })).status, 429, 'login locked too');
    clock += 15 * 60_000;
  });

  test('tenant policy forces enrolment; enrolling completes the sign-in; TOTP cannot then be turned off', async () => {
    const t = await api.tenant('strict');
    await api.app.tenancy.tenants.setMfaRequired(systemScope, t.id, true);
    await api.user(t.id, { email: 'pat@strict.test' });

    const res = await login('pat@strict.test');
    assert.equal(res.status, 200, res.body);
    const pending = res.json.data;
    assert.equal(pending.mfa_required, true);
    assert.equal(pending.mfa_enrollment_required, true);
    assert.equal(pending.user.tenant.mfa_required, true);
    const verify = await call('POST', VERIFY, { token: pending.access_token, body: { code: '123456' } });
    assert.equal(verify.status, 409);
    assert.deepEqual(verify.json.error.details, { mfa_enrollment_required: true });

    const e = await call('POST', '/api/v1/auth/totp/enrol', { token: pending.access_token });
    assert.equal(e.status, 200, e.body);
    const c = await call('POST', '/api/v1/auth/totp/confirm', { token: pending.access_token, body: { code: appCode(e.json.data.secret, clock) } });
    assert.equal(c.status, 200, c.body);
    assert.equal(c.json.data.recovery_codes.length, 10);
    const signIn = c.json.data.sign_in;
    assert.equal(signIn.mfa_required, false);
    assert.match(signIn.refresh_token, /^mrr_/);
    assert.equal((await call('GET', ME, { token: pending.access_token })).status, 401, 'pending credential replaced');
    const me = await call('GET', ME, { token: signIn.access_token });
    assert.equal(me.json.data.auth.mfa_pending, false);
    assert.equal(me.json.data.mfa.enabled, true);

    clock += 30_000;
    const off = await call('POST', '/api/v1/auth/totp/disable', { token: signIn.access_token, body: { password: TEST_PASSWORD, code: appCode(e.json.data.secret, clock) } });
    assert.equal(off.status, 403);
    assert.equal(off.json.error.message, 'your tenant requires a second factor; TOTP cannot be turned off');
  });

  test('browser sign-in with TOTP: the pending session is replaced by a new one after the code', async () => {
    const u = await api.user(tenantId, { email: 'quin@secure.test' });
    const { secret } = await enrol(u.token);
    const res = await login('quin@secure.test', { client: 'browser' });
    assert.equal(res.json.data.mfa_required, true);
    const pendingCookie = res.cookies.mairust_session;
    const csrf = res.cookies.mairust_csrf;
    assert.equal(res.json.data.csrf_token, csrf);
    const v = await call('POST', VERIFY, { cookies: { mairust_session: pendingCookie, mairust_csrf: csrf }, headers: { 'x-csrf-token': csrf }, body: { code: appCode(secret, clock) } });
    assert.equal(v.status, 200, v.body);
    assert.ok(v.cookies.mairust_session && v.cookies.mairust_session !== pendingCookie, 'new session id');
    assert.equal(v.json.data.csrf_token, v.cookies.mairust_csrf);
    assert.equal((await call('GET', ME, { cookies: { mairust_session: pendingCookie } })).status, 401);
    const me = await call('GET', ME, { cookies: { mairust_session: v.cookies.mairust_session } });
    assert.equal(me.json.data.auth.mfa_pending, false);
    clock += 30_000;
  });

  test('an mfa-pending credential lasts 10 minutes', async () => {
    const u = await api.user(tenantId, { email: 'rae@secure.test' });
    await enrol(u.token);
    const pending = (await login('rae@secure.test')).json.data.access_token as string;
    clock += 10 * 60_000 - 1_000;
    assert.equal((await call('GET', ME, { token: pending })).status, 200);
    clock += 1_000;
    assert.equal((await call('GET', ME, { token: pending })).status, 401);
  });

  test('an admin removes a lost second factor: the user is signed out, then signs in with the password; audited; bounded by role and domain', async () => {
    const admin = (await api.user(tenantId, { role: 'tenant_admin', email: 'boss@secure.test' }));
    const u = await api.user(tenantId, { email: 'lost@secure.test' });
    await enrol(u.token);
    const plain = await api.user(tenantId, { email: 'peer@secure.test' });
    const other = await api.tenant('elsewhere');

    const byUser = await call('POST', `/api/v1/users/${u.user.id}/mfa/reset`, { token: plain.token });
    assert.equal(byUser.status, 403, 'a user may not reset another user');
    const byOtherTenant = await call('POST', `/api/v1/users/${u.user.id}/mfa/reset`, { token: other.admin.token });
    assert.equal(byOtherTenant.status, 404, "another tenant's admin sees no such user");
    const self = await call('POST', `/api/v1/users/${admin.user.id}/mfa/reset`, { token: admin.token });
    assert.equal(self.status, 403, 'your own factor is turned off through /auth/totp/disable');

    const reset = await call('POST', `/api/v1/users/${u.user.id}/mfa/reset`, { token: admin.token });
    assert.equal(reset.status, 200, reset.body);
    assert.deepEqual(reset.json.data, { removed: true });
    assert.equal((await call('GET', ME, { token: u.token })).status, 401, 'the user was signed out everywhere');
    const again = await login('lost@secure.test');
    assert.equal(again.status, 200, again.body);
    assert.equal(again.json.data.mfa_required ?? false, false, 'the password alone signs in now');
    assert.match(again.json.data.access_token, /^mra_/);
    const rows = await api.app.db.kysely.selectFrom('audit_log').select(['actor_json']).where('event_type', '=', 'user.mfa_reset').execute();
    assert.equal(rows.length, 1);
    assert.equal(JSON.parse(rows[0].actor_json).id, admin.user.id);
    const none = await call('POST', `/api/v1/users/${u.user.id}/mfa/reset`, { token: admin.token });
    assert.deepEqual(none.json.data, { removed: false }, 'nothing left to remove');
  });

  test('disable needs the password and a code; recovery codes can be regenerated with the password', async () => {
    const u = await api.user(tenantId, { email: 'sam@secure.test' });
    const { secret, codes } = await enrol(u.token);

    const regen = await call('POST', '/api/v1/auth/recovery-codes', { token: u.token, body: { password: TEST_PASSWORD } });
    assert.equal(regen.status, 200, regen.body);
    const fresh = regen.json.data.recovery_codes as string[];
    assert.equal(fresh.length, 10);
    assert.ok(!fresh.some((c) => codes.includes(c)));
    assert.equal((await login('sam@secure.test', { recovery_code: codes[0] })).status, 401, 'old codes revoked');
    assert.equal((await login('sam@secure.test', { recovery_code: fresh[0] })).status, 200);
    const badPw = await call('POST', '/api/v1/auth/recovery-codes', { token: u.token, body: { password: 'wrong password!!' } });
    assert.equal(badPw.status, 403);
    assert.deepEqual(badPw.json.error.details, { field: 'password' });

    const noPw = await call('POST', '/api/v1/auth/totp/disable', { token: u.token, body: { password: 'wrong password!!', code: appCode(secret, clock) } });
    assert.equal(noPw.status, 403);
    assert.equal(noPw.json.error.message, 'the password is not correct');
    const noCode = await call('POST', '/api/v1/auth/totp/disable', { token: u.token, body: { password: TEST_PASSWORD, code: appCode(secret, clock + 300_000) } });
    assert.equal(noCode.status, 403);
    assert.equal(noCode.json.error.message, 'invalid authentication code');
    const missing = await call('POST', '/api/v1/auth/totp/disable', { token: u.token, body: { password: TEST_PASSWORD } });
    assert.equal(missing.status, 422);

    const row = await api.app.db.kysely.selectFrom('user_mfa').select('totp_secret_id').where('user_id', '=', u.user.id).executeTakeFirstOrThrow();
    const off = await call('POST', '/api/v1/auth/totp/disable', { token: u.token, body: { password: TEST_PASSWORD, code: appCode(secret, clock) } });
    assert.equal(off.status, 200, off.body);
    assert.deepEqual(off.json, { data: { enabled: false } });
    assert.equal((await call('GET', ME, { token: u.token })).json.data.mfa.enabled, false);
    const gone = await api.app.db.kysely.selectFrom('secrets').select('id').where('id', '=', row.totp_secret_id!).executeTakeFirst();
    assert.equal(gone, undefined, 'sealed secret deleted');
    const plain = await login('sam@secure.test');
    assert.equal(plain.json.data.mfa_required, false, 'password alone signs in again');
    assert.equal((await call('POST', '/api/v1/auth/recovery-codes', { token: u.token, body: { password: TEST_PASSWORD } })).status, 409, 'no MFA, no codes');

    const events = (await listAudit(api.app.db, systemScope, { limit: 1000 })).filter((r) => r.target.id === u.user.id).map((r) => r.eventType);
    assert.ok(events.includes('user.mfa_disabled'));
    assert.ok(events.includes('user.recovery_codes_regenerated'));
    clock += 30_000;
  });
});
