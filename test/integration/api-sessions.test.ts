/**
 * Web sessions of the REST API (SPEC §2 "Admin UI auth", §10): cookie attributes, the CSRF
 * double-submit check bound to the session, session fixation, server-side logout and expiry.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { hashToken } from '../../src/security/credentials/token.js';
import { startApi, TEST_PASSWORD, type ApiHarness, type ApiResponse } from '../support/api.js';

const LOGIN = '/api/v1/auth/login';
const ME = '/api/v1/auth/me';
const ENROL = '/api/v1/auth/totp/enrol';

interface Browser {
  session: string;
  csrf: string;
  res: ApiResponse;
}

function setCookies(res: ApiResponse): string[] {
  const h = res.headers['set-cookie'];
  return h === undefined ? [] : Array.isArray(h) ? h : [h];
}

function cookieLine(res: ApiResponse, name: string): string {
  const line = setCookies(res).find((c) => c.startsWith(`${name}=`));
  assert.ok(line, `Set-Cookie for ${name}`);
  return line;
}

function attrs(line: string): string[] {
  return line.split(';').slice(1).map((a) => a.trim().toLowerCase());
}

describe('api: sessions', () => {
  let api: ApiHarness;
  let clock = Date.now();
  let tenantId: string;

  before(async () => {
    api = await startApi({ now: () => clock });
    tenantId = (await api.tenant('cookies')).id;
    await api.user(tenantId, { email: 'amy@cookies.test' });
    await api.user(tenantId, { email: 'ben@cookies.test' });
  });
  after(async () => {
    await api.close();
  });

  async function browserLogin(email: string, opts: { headers?: Record<string, string>; cookies?: Record<string, string> } = {}): Promise<Browser> {
    const res = await api.call('POST', LOGIN, { body: { email, password: TEST_PASSWORD, client: 'browser' }, headers: opts.headers, cookies: opts.cookies });
    assert.equal(res.status, 200, res.body);
    return { session: res.cookies.mairust_session, csrf: res.cookies.mairust_csrf, res };
  }

  test('cookies are HttpOnly (session), Secure and SameSite=Lax; Secure is left out only for http://localhost', async () => {
    const remote = await browserLogin('amy@cookies.test', { headers: { host: 'mail.example.com' } });
    const session = attrs(cookieLine(remote.res, 'mairust_session'));
    const csrf = attrs(cookieLine(remote.res, 'mairust_csrf'));
    for (const a of ['httponly', 'secure', 'samesite=lax', 'path=/']) assert.ok(session.includes(a), `session cookie has ${a}: ${session}`);
    for (const a of ['secure', 'samesite=lax', 'path=/']) assert.ok(csrf.includes(a), `CSRF cookie has ${a}: ${csrf}`);
    assert.ok(!csrf.includes('httponly'), 'the CSRF cookie is readable by the web UI script');
    const expires = session.find((a) => a.startsWith('expires='));
    assert.ok(expires, 'session cookie expires');
    const lifetime = Date.parse(expires.slice('expires='.length)) - clock;
    assert.ok(lifetime > 24 * 3_600_000 - 5_000 && lifetime <= 24 * 3_600_000, `24 h lifetime (${lifetime} ms)`);

    for (const host of ['localhost', 'localhost:8080', '127.0.0.1:8080']) {
      const local = await browserLogin('amy@cookies.test', { headers: { host } });
      assert.ok(!attrs(cookieLine(local.res, 'mairust_session')).includes('secure'), `no Secure for http://${host}`);
      assert.ok(attrs(cookieLine(local.res, 'mairust_session')).includes('httponly'));
    }
  });

  test('CSRF: state-changing requests need the header = cookie = token of this session; GET needs none', async () => {
    const a = await browserLogin('amy@cookies.test');
    const b = await browserLogin('ben@cookies.test');
    const post = (cookies: Record<string, string>, headers: Record<string, string> = {}) => api.call('POST', ENROL, { cookies, headers });

    const none = await post({ mairust_session: a.session, mairust_csrf: a.csrf });
    assert.equal(none.status, 403);
    assert.equal(none.json.error.code, 'FORBIDDEN');
    assert.deepEqual(none.json.error.details, { csrf: true });

    const wrong = await post({ mairust_session: a.session, mairust_csrf: a.csrf }, { 'x-csrf-token': 'x'.repeat(43) });
    assert.equal(wrong.status, 403);
    assert.deepEqual(wrong.json.error.details, { csrf: true });

    const noCookie = await post({ mairust_session: a.session }, { 'x-csrf-token': a.csrf });
    assert.equal(noCookie.status, 403, 'double submit: the cookie must be there too');

    const foreign = await post({ mairust_session: a.session, mairust_csrf: b.csrf }, { 'x-csrf-token': b.csrf });
    assert.equal(foreign.status, 403, "another session's CSRF token is not this session's");
    assert.deepEqual(foreign.json.error.details, { csrf: true });

    const ok = await post({ mairust_session: a.session, mairust_csrf: a.csrf }, { 'x-csrf-token': a.csrf });
    assert.equal(ok.status, 200, ok.body);
    assert.ok(ok.json.data.secret);

    const get = await api.call('GET', ME, { cookies: { mairust_session: a.session } });
    assert.equal(get.status, 200);
    assert.equal(get.json.data.email, 'amy@cookies.test');
  });

  test('bearer requests need no CSRF token, even with a session cookie beside them', async () => {
    const token = (await api.call('POST', LOGIN, { body: { email: 'ben@cookies.test', password: TEST_PASSWORD } })).json.data.access_token as string;
    const plain = await api.call('POST', ENROL, { token });
    assert.equal(plain.status, 200, plain.body);
    const a = await browserLogin('amy@cookies.test');
    const mixed = await api.call('POST', ENROL, { token, cookies: { mairust_session: a.session } });
    assert.equal(mixed.status, 200, mixed.body);
    const me = await api.call('GET', ME, { token, cookies: { mairust_session: a.session } });
    assert.equal(me.json.data.email, 'ben@cookies.test', 'the bearer credential wins');
  });

  test('session fixation: a session cookie presented at login is not the one returned, and it is revoked', async () => {
    const first = await browserLogin('amy@cookies.test');
    const second = await browserLogin('amy@cookies.test', { cookies: { mairust_session: first.session, mairust_csrf: first.csrf } });
    assert.notEqual(second.session, first.session);
    assert.notEqual(second.csrf, first.csrf);
    assert.equal((await api.call('GET', ME, { cookies: { mairust_session: first.session } })).status, 401, 'the presented session is revoked');
    assert.equal((await api.call('GET', ME, { cookies: { mairust_session: second.session } })).status, 200);

    // A value planted by an attacker (never issued) does not become the session either.
    const planted = 'A'.repeat(43);
    const third = await browserLogin('ben@cookies.test', { cookies: { mairust_session: planted } });
    assert.notEqual(third.session, planted);
    const row = await api.app.db.kysely.selectFrom('sessions').select('id').where('id', '=', hashToken(planted)).executeTakeFirst();
    assert.equal(row, undefined, 'no session row for the planted value');
  });

  test('logout invalidates the session server-side and clears the cookies', async () => {
    const a = await browserLogin('amy@cookies.test');
    const noCsrf = await api.call('POST', '/api/v1/auth/logout', { cookies: { mairust_session: a.session, mairust_csrf: a.csrf } });
    assert.equal(noCsrf.status, 403, 'logout is state-changing: CSRF applies');
    assert.equal((await api.call('GET', ME, { cookies: { mairust_session: a.session } })).status, 200, 'still signed in');

    const out = await api.call('POST', '/api/v1/auth/logout', { cookies: { mairust_session: a.session, mairust_csrf: a.csrf }, headers: { 'x-csrf-token': a.csrf } });
    assert.equal(out.status, 200, out.body);
    for (const name of ['mairust_session', 'mairust_csrf']) {
      const line = cookieLine(out, name);
      assert.ok(line.startsWith(`${name}=;`), `${name} emptied: ${line}`);
      const exp = attrs(line).find((x) => x.startsWith('expires='));
      assert.ok(exp && Date.parse(exp.slice(8)) < Date.now(), `${name} expired: ${line}`);
    }
    // Replaying the old cookie (as a copy of it would) no longer works: the row is revoked.
    const replay = await api.call('GET', ME, { cookies: { mairust_session: a.session } });
    assert.equal(replay.status, 401);
    assert.equal(replay.json.error.message, 'session expired; sign in again');
    const row = await api.app.db.kysely.selectFrom('sessions').select('revoked_at').where('id', '=', hashToken(a.session)).executeTakeFirstOrThrow();
    assert.notEqual(row.revoked_at, null);
  });

  test('a session ends after 24 h and an access token after 1 h (injected clock)', async () => {
    const a = await browserLogin('amy@cookies.test');
    const token = (await api.call('POST', LOGIN, { body: { email: 'amy@cookies.test', password: TEST_PASSWORD } })).json.data.access_token as string;
    clock += 3_600_000 - 1_000;
    assert.equal((await api.call('GET', ME, { token })).status, 200, '59:59 later');
    clock += 1_000;
    const expiredToken = await api.call('GET', ME, { token });
    assert.equal(expiredToken.status, 401);
    assert.equal(expiredToken.json.error.message, 'invalid or expired access token');

    clock += 23 * 3_600_000 - 1_000;
    assert.equal((await api.call('GET', ME, { cookies: { mairust_session: a.session } })).status, 200, '23:59:59 later');
    clock += 1_000;
    const expired = await api.call('GET', ME, { cookies: { mairust_session: a.session } });
    assert.equal(expired.status, 401);
    assert.equal(expired.json.error.code, 'UNAUTHORIZED');
  });
});
