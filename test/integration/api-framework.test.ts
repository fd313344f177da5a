/**
 * Cross-cutting behaviour of the REST API (SPEC §10, §11) — what plugin.ts, auth-hook.ts,
 * validation.ts, rate-limit/ and http/server.ts give every route, checked through real routes:
 *
 *  - error envelopes: unknown route 404, no credential 401 (with `WWW-Authenticate`, RFC 9110
 *    §15.5.2 / RFC 6750 §3), malformed or unknown credentials 401;
 *  - strict input: unknown JSON fields 422 with the field's JSON Pointer (RFC 6901), broken JSON 400,
 *    bodies over `api.body_limit_bytes` 413 with the exact message (and one byte under is accepted),
 *    no type coercion in JSON bodies but coercion of query strings;
 *  - security headers (CSP frame-ancestors 'none', nosniff, no-referrer; HSTS only over TLS, i.e.
 *    `X-Forwarded-Proto: https` believed only from a trusted proxy);
 *  - CORS from the allowlist with credentials, never `*`, and preflights;
 *  - rate limits: headers, 429 + Retry-After per user, per address on admin routes, the SPEC
 *    defaults 60 / 30 when the config says nothing;
 *  - a disabled user's or a suspended tenant's token stops working at once.
 *
 * Where a check needs other server options (a trusted-proxy list, a config without the harness's
 * generous rate limits), a second server is built the way the harness builds its own
 * (createHttpServer + mountApi) over the harness's dependencies and database — cheaper than a
 * second harness with its own database.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { mountApi } from '../../src/app/api.js';
import type { AppContext } from '../../src/app/context.js';
import { validateConfigObject } from '../../src/config/validate.js';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { createHttpServer } from '../../src/http/server.js';
import { createHealth } from '../../src/observability/health.js';
import { startApi, type ApiHarness, type ApiResponse, type TestTenant } from '../support/api.js';

const ME = '/api/v1/auth/me';
const DOMAINS = '/api/v1/domains';
const TENANT = '/api/v1/tenant';
const BODY_LIMIT = 2048;
const ORIGIN = 'https://app.example.test';

function assertEnvelope(res: ApiResponse, status: number, code: string, message?: string | RegExp): void {
  assert.equal(res.status, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.deepEqual(Object.keys(res.json), ['error']);
  assert.deepEqual(Object.keys(res.json.error).sort(), ['code', 'details', 'message']);
  assert.equal(res.json.error.code, code);
  assert.equal(typeof res.json.error.details, 'object');
  if (typeof message === 'string') assert.equal(res.json.error.message, message);
  else if (message) assert.match(res.json.error.message, message);
}

/** A second API server over the harness's dependencies, with its own server options. */
async function secondServer(api: ApiHarness, opts: { trustProxy?: boolean | string[]; app?: AppContext } = {}): Promise<FastifyInstance> {
  const app = opts.app ?? api.app;
  const server = createHttpServer({
    logger: app.logger,
    metrics: app.metrics,
    health: createHealth({}),
    bodyLimitBytes: app.config.api.body_limit_bytes,
    trustProxy: opts.trustProxy,
  });
  await mountApi(server, { ...api.deps, app });
  await server.ready();
  return server;
}

/**
 * Rate windows are fixed minutes (rate-limit/apply.ts). A burst that straddled a boundary would
 * start counting again halfway, so wait for the next window when fewer than 8 s are left.
 */
async function awaitRoomInWindow(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 8000) await new Promise((r) => setTimeout(r, left + 50));
}

describe('api: framework', () => {
  let api: ApiHarness;
  let acme: TestTenant;

  before(async () => {
    api = await startApi({ config: { api: { body_limit_bytes: BODY_LIMIT, cors_origins: [ORIGIN] } } });
    acme = await api.tenant('acme');
  });
  after(async () => {
    await api?.close();
  });

  describe('errors and authentication', () => {
    test('an unknown route is 404 NOT_FOUND in the envelope, also for a known path with another method', async () => {
      assertEnvelope(await api.call('GET', '/api/v1/no-such-thing'), 404, 'NOT_FOUND', 'no route for GET /api/v1/no-such-thing');
      assertEnvelope(await api.call('PUT', TENANT, { token: acme.admin.token, body: {} }), 404, 'NOT_FOUND', 'no route for PUT /api/v1/tenant');
      // The query string is not echoed (it may carry a token).
      const res = await api.call('GET', '/api/v1/nope?access_token=secret-value');
      assertEnvelope(res, 404, 'NOT_FOUND', 'no route for GET /api/v1/nope');
    });

    test('no credential is 401 UNAUTHORIZED with a WWW-Authenticate challenge', async () => {
      for (const [method, path] of [['GET', ME], ['GET', DOMAINS], ['PATCH', TENANT]] as const) {
        const res = await api.call(method, path, method === 'PATCH' ? { body: { mfa_required: true } } : {});
        assertEnvelope(res, 401, 'UNAUTHORIZED', 'authentication required');
        // RFC 9110 §15.5.2: a 401 MUST carry WWW-Authenticate; RFC 6750 §3 names the Bearer scheme.
        assert.match(String(res.headers['www-authenticate']), /^Bearer\b/, `${method} ${path}`);
      }
    });

    test('a malformed Authorization header is 401, whatever the route', async () => {
      const malformed = ['Basic Zm9vOmJhcg==', 'Bearer', 'Bearer ', 'Bearer two words', `Bearer ${'x'.repeat(513)}`, 'Token abc'];
      for (const authorization of malformed) {
        const res = await api.call('GET', ME, { headers: { authorization } });
        assertEnvelope(res, 401, 'UNAUTHORIZED', 'malformed Authorization header; use "Bearer <token>"');
      }
      // On a public route a bad credential counts as none: signing in works despite a stale header.
      const login = await api.call('POST', '/api/v1/auth/login', {
        headers: { authorization: 'Basic Zm9vOmJhcg==' },
        body: { email: acme.admin.user.email, password: acme.admin.password },
      });
      assert.equal(login.status, 200, login.body);
    });

    test('an unknown token or API key is 401 with its own message', async () => {
      assertEnvelope(await api.call('GET', ME, { token: `mra_${'A'.repeat(43)}` }), 401, 'UNAUTHORIZED', 'invalid or expired access token');
      assertEnvelope(await api.call('GET', ME, { token: `mk_live_${'B'.repeat(40)}` }), 401, 'UNAUTHORIZED', 'invalid, expired or revoked API key');
      assertEnvelope(await api.call('GET', ME, { headers: { 'x-api-key': `mk_live_${'C'.repeat(40)}` } }), 401, 'UNAUTHORIZED', 'invalid, expired or revoked API key');
    });

    test('a disabled user\'s token is refused at once (401), and works again when re-enabled', async () => {
      const u = await api.user(acme.id);
      assert.equal((await api.call('GET', ME, { token: u.token })).status, 200);
      await api.app.tenancy.users.update(tenantScope(acme.id), u.user.id, { status: 'disabled' });
      assertEnvelope(await api.call('GET', ME, { token: u.token }), 401, 'UNAUTHORIZED', 'the account is disabled');
      await api.app.tenancy.users.update(tenantScope(acme.id), u.user.id, { status: 'active' });
      assert.equal((await api.call('GET', ME, { token: u.token })).status, 200);
    });

    test('a suspended tenant\'s tokens are refused at once (401), and work again when it is activated', async () => {
      const t = await api.tenant();
      const u = await api.user(t.id);
      assert.equal((await api.call('GET', ME, { token: u.token })).status, 200);
      await api.app.tenancy.tenants.setStatus(systemScope, t.id, 'suspended');
      assertEnvelope(await api.call('GET', ME, { token: u.token }), 401, 'UNAUTHORIZED', 'the tenant is suspended');
      assertEnvelope(await api.call('GET', TENANT, { token: t.admin.token }), 401, 'UNAUTHORIZED', 'the tenant is suspended');
      await api.app.tenancy.tenants.setStatus(systemScope, t.id, 'active');
      assert.equal((await api.call('GET', ME, { token: u.token })).status, 200);
    });
  });

  describe('request validation', () => {
    test('an unknown JSON field is 422 VALIDATION_ERROR naming the field (JSON Pointer)', async () => {
      const res = await api.call('PATCH', TENANT, { token: acme.admin.token, body: { mfa_required: false, bogus: 1 } });
      assertEnvelope(res, 422, 'VALIDATION_ERROR');
      assert.ok(
        res.json.error.details.errors.some((e: { path: string }) => e.path === '/bogus'),
        `details name /bogus: ${JSON.stringify(res.json.error.details)}`,
      );
      // Nested objects too (RFC 6901 pointer through the parent), and the change did not happen.
      const root = await api.superAdmin();
      const nested = await api.call('PATCH', `/api/v1/admin/tenants/${acme.id}`, { token: root.token, body: { limits: { max_users: 5, surprise: 1 } } });
      assertEnvelope(nested, 422, 'VALIDATION_ERROR');
      assert.ok(nested.json.error.details.errors.some((e: { path: string }) => e.path === '/limits/surprise'), JSON.stringify(nested.json.error.details));
      const after = await api.call('GET', `/api/v1/admin/tenants/${acme.id}`, { token: root.token });
      assert.equal(after.json.data.limits.max_users, undefined);
    });

    test('broken JSON is 400 INVALID_REQUEST', async () => {
      const res = await api.call('PATCH', TENANT, { token: acme.admin.token, payload: '{"mfa_required": tr', headers: { 'content-type': 'application/json' } });
      assertEnvelope(res, 400, 'INVALID_REQUEST');
    });

    test(`a body over api.body_limit_bytes (${BODY_LIMIT}) is 413 with the exact message; exactly the limit is accepted`, async () => {
      const json = JSON.stringify({ mfa_required: false });
      const exact = json + ' '.repeat(BODY_LIMIT - Buffer.byteLength(json)); // trailing whitespace is valid JSON
      assert.equal(Buffer.byteLength(exact), BODY_LIMIT);
      const ok = await api.call('PATCH', TENANT, { token: acme.admin.token, payload: exact, headers: { 'content-type': 'application/json' } });
      assert.equal(ok.status, 200, ok.body);

      const res = await api.call('PATCH', TENANT, { token: acme.admin.token, payload: exact + ' ', headers: { 'content-type': 'application/json' } });
      assertEnvelope(res, 413, 'INVALID_REQUEST', `request body exceeds the limit of ${BODY_LIMIT} bytes`);
      assert.deepEqual(res.json.error.details, { limit_bytes: BODY_LIMIT });
    });

    test('JSON bodies are not type-coerced ("5" is not an integer, "true" not a boolean)', async () => {
      const s = await api.call('PATCH', TENANT, { token: acme.admin.token, body: { mfa_required: 'true' } });
      assertEnvelope(s, 422, 'VALIDATION_ERROR');
      assert.ok(s.json.error.details.errors.some((e: { path: string }) => e.path === '/mfa_required'), JSON.stringify(s.json.error.details));

      const root = await api.superAdmin();
      const n = await api.call('PATCH', `/api/v1/admin/tenants/${acme.id}`, { token: root.token, body: { retention_days: '5' } });
      assertEnvelope(n, 422, 'VALIDATION_ERROR');
      assert.ok(n.json.error.details.errors.some((e: { path: string }) => e.path.startsWith('/retention_days')), JSON.stringify(n.json.error.details));
      const ok = await api.call('PATCH', `/api/v1/admin/tenants/${acme.id}`, { token: root.token, body: { retention_days: 5 } });
      assert.equal(ok.status, 200, ok.body);
      assert.equal(ok.json.data.retention_days, 5);
    });

    test('query strings are coerced to the declared types, and a bad value is 400 naming the parameter', async () => {
      const ok = await api.call('GET', `${DOMAINS}?limit=5`, { token: acme.admin.token });
      assert.equal(ok.status, 200, ok.body);
      assert.ok(Array.isArray(ok.json.data));
      for (const bad of ['abc', '0', '101', '1.5']) {
        const res = await api.call('GET', `${DOMAINS}?limit=${bad}`, { token: acme.admin.token });
        assertEnvelope(res, 400, 'INVALID_REQUEST', 'invalid querystring');
        assert.deepEqual(res.json.error.details.errors.map((e: { path: string }) => e.path), ['/limit'], bad);
      }
      const unknown = await api.call('GET', `${DOMAINS}?colour=red`, { token: acme.admin.token });
      assertEnvelope(unknown, 400, 'INVALID_REQUEST');
    });
  });

  describe('security headers', () => {
    function assertBaseline(res: ApiResponse, what: string): void {
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, /(^|;)\s*frame-ancestors 'none'/, `${what}: ${csp}`);
      assert.match(csp, /(^|;)\s*default-src 'self'/, what);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', what);
      assert.equal(res.headers['referrer-policy'], 'no-referrer', what);
      assert.equal(res.headers['x-frame-options'], 'DENY', what);
    }

    test('every API response carries CSP (frame-ancestors \'none\'), nosniff and no-referrer; no HSTS over plain HTTP', async () => {
      const responses: [string, ApiResponse][] = [
        ['200', await api.call('GET', ME, { token: acme.admin.token })],
        ['401', await api.call('GET', ME)],
        ['404', await api.call('GET', '/api/v1/nope')],
        ['422', await api.call('PATCH', TENANT, { token: acme.admin.token, body: { x: 1 } })],
        ['openapi', await api.call('GET', '/api/v1/openapi.json')],
      ];
      for (const [what, res] of responses) {
        assertBaseline(res, what);
        assert.equal(res.headers['strict-transport-security'], undefined, `${what}: HSTS over plain HTTP`);
      }
      // Without trustProxy, a client cannot claim TLS with X-Forwarded-Proto.
      const spoofed = await api.call('GET', ME, { token: acme.admin.token, headers: { 'x-forwarded-proto': 'https' } });
      assert.equal(spoofed.headers['strict-transport-security'], undefined);
    });

    test('behind a trusted proxy, HSTS is sent when the proxy says the request came over TLS (RFC 6797 §7.2), never on another peer\'s word', async () => {
      // The list form, as `mairust serve` passes api.trusted_proxies.
      const proxied = await secondServer(api, { trustProxy: ['127.0.0.1'] });
      try {
        const headers = { authorization: `Bearer ${acme.admin.token}` };
        const tls = await proxied.inject({ method: 'GET', url: ME, headers: { ...headers, 'x-forwarded-proto': 'https' }, remoteAddress: '127.0.0.1' });
        assert.equal(tls.statusCode, 200, tls.body);
        assert.match(String(tls.headers['strict-transport-security']), /^max-age=\d{7,}/);
        const plain = await proxied.inject({ method: 'GET', url: ME, headers: { ...headers, 'x-forwarded-proto': 'http' }, remoteAddress: '127.0.0.1' });
        assert.equal(plain.statusCode, 200);
        assert.equal(plain.headers['strict-transport-security'], undefined);
        // A client that is not the proxy cannot claim TLS.
        const spoofed = await proxied.inject({ method: 'GET', url: ME, headers: { ...headers, 'x-forwarded-proto': 'https' }, remoteAddress: '198.51.100.1' });
        assert.equal(spoofed.statusCode, 200);
        assert.equal(spoofed.headers['strict-transport-security'], undefined);
      } finally {
        await proxied.close();
      }
    });
  });

  describe('CORS (allowlist, credentials, never *)', () => {
    test('an allowed origin gets itself back with Allow-Credentials; a foreign or absent origin gets nothing', async () => {
      const allowed = await api.call('GET', ME, { token: acme.admin.token, headers: { origin: ORIGIN } });
      assert.equal(allowed.status, 200);
      assert.equal(allowed.headers['access-control-allow-origin'], ORIGIN);
      assert.equal(allowed.headers['access-control-allow-credentials'], 'true');
      assert.match(String(allowed.headers['vary']), /\bOrigin\b/i);
      assert.match(String(allowed.headers['access-control-expose-headers']), /X-RateLimit-Remaining/);

      for (const origin of ['https://evil.example', 'https://app.example.test.evil.example', 'http://app.example.test', 'null']) {
        const res = await api.call('GET', ME, { token: acme.admin.token, headers: { origin } });
        assert.equal(res.headers['access-control-allow-origin'], undefined, origin);
        assert.equal(res.headers['access-control-allow-credentials'], undefined, origin);
      }
      const none = await api.call('GET', ME, { token: acme.admin.token });
      assert.equal(none.headers['access-control-allow-origin'], undefined);
      // Errors from an allowed origin are readable by its script too.
      const err = await api.call('GET', ME, { headers: { origin: ORIGIN } });
      assert.equal(err.status, 401);
      assert.equal(err.headers['access-control-allow-origin'], ORIGIN);
    });

    test('a preflight from an allowed origin succeeds without credentials; a foreign one gets no CORS headers', async () => {
      const pre = await api.call('OPTIONS', DOMAINS, {
        headers: { origin: ORIGIN, 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'authorization,content-type,x-csrf-token' },
      });
      assert.equal(pre.status, 204, pre.body);
      assert.equal(pre.headers['access-control-allow-origin'], ORIGIN);
      assert.equal(pre.headers['access-control-allow-credentials'], 'true');
      const methods = String(pre.headers['access-control-allow-methods']).split(/,\s*/);
      for (const m of ['GET', 'POST', 'PATCH', 'DELETE']) assert.ok(methods.includes(m), `allows ${m}`);
      const allowHeaders = String(pre.headers['access-control-allow-headers']).toLowerCase();
      for (const h of ['authorization', 'content-type', 'x-csrf-token']) assert.ok(allowHeaders.includes(h), `allows header ${h}`);
      assert.equal(pre.headers['access-control-max-age'], '600');

      const foreign = await api.call('OPTIONS', DOMAINS, { headers: { origin: 'https://evil.example', 'access-control-request-method': 'DELETE' } });
      assert.equal(foreign.headers['access-control-allow-origin'], undefined);
      assert.equal(foreign.headers['access-control-allow-credentials'], undefined);
      assert.equal(foreign.headers['access-control-allow-methods'], undefined);
    });

    test('no response ever says Access-Control-Allow-Origin: *', async () => {
      const samples = [
        await api.call('GET', '/api/v1/openapi.json', { headers: { origin: 'https://evil.example' } }),
        await api.call('GET', '/api/v1/openapi.json', { headers: { origin: ORIGIN } }),
        await api.call('POST', '/api/v1/auth/login', { headers: { origin: 'https://evil.example' }, body: { email: 'x@acme.test', password: 'not the password' } }),
        await api.call('OPTIONS', ME, { headers: { origin: '*', 'access-control-request-method': 'GET' } }),
      ];
      for (const res of samples) assert.notEqual(res.headers['access-control-allow-origin'], '*');
    });
  });

  describe('rate limits: SPEC defaults', () => {
    test('with no rate_limit config the limits are 60 per user and 30 per address on admin routes', async () => {
      const cfg = validateConfigObject({ server: { data_dir: api.dataDir } });
      assert.deepEqual(cfg.issues, []);
      const limits = cfg.config!.api.rate_limit;
      assert.equal(limits.per_user_per_minute, 60);
      assert.equal(limits.admin_per_ip_per_minute, 30);

      // The API reads its limits from the config in force (api.app.config): serve with these defaults.
      const config = { ...api.app.config, api: { ...api.app.config.api, rate_limit: { ...api.app.config.api.rate_limit, ...limits, backend: api.app.config.api.rate_limit.backend } } };
      const app = new Proxy(api.app, { get: (target, key) => (key === 'config' ? config : Reflect.get(target, key)) }) as AppContext;
      const server = await secondServer(api, { app });
      try {
        await awaitRoomInWindow();
        const u = await api.user(acme.id);
        const headers = { authorization: `Bearer ${u.token}` };
        const me = await server.inject({ method: 'GET', url: ME, headers, remoteAddress: '198.51.100.60' });
        assert.equal(me.statusCode, 200, me.body);
        assert.equal(me.headers['x-ratelimit-limit'], '60');
        assert.equal(me.headers['x-ratelimit-remaining'], '59');
        const admin = await api.user(acme.id, { role: 'tenant_admin' });
        const list = await server.inject({ method: 'GET', url: DOMAINS, headers: { authorization: `Bearer ${admin.token}` }, remoteAddress: '198.51.100.30' });
        assert.equal(list.statusCode, 200, list.body);
        assert.equal(list.headers['x-ratelimit-limit'], '30', 'the per-address admin limit is the tighter one');
        assert.equal(list.headers['x-ratelimit-remaining'], '29');
      } finally {
        await server.close();
      }
    });
  });
});

describe('api: rate limits (per_user_per_minute 5, admin_per_ip_per_minute 3)', () => {
  let api: ApiHarness;
  let acme: TestTenant;

  before(async () => {
    api = await startApi({ config: { api: { rate_limit: { per_user_per_minute: 5, admin_per_ip_per_minute: 3 } } } });
    acme = await api.tenant('acme');
  });
  after(async () => {
    await api?.close();
  });

  function rateHeaders(res: ApiResponse) {
    return {
      limit: Number(res.headers['x-ratelimit-limit']),
      remaining: Number(res.headers['x-ratelimit-remaining']),
      reset: Number(res.headers['x-ratelimit-reset']),
    };
  }

  test('authenticated responses carry X-RateLimit-Limit/Remaining/Reset; the 6th request in a minute is 429 with Retry-After', async () => {
    await awaitRoomInWindow();
    const u = await api.user(acme.id);
    const other = await api.user(acme.id);
    for (let i = 1; i <= 5; i++) {
      const res = await api.call('GET', ME, { token: u.token, remoteAddress: '192.0.2.1' });
      assert.equal(res.status, 200, res.body);
      const h = rateHeaders(res);
      assert.equal(h.limit, 5);
      assert.equal(h.remaining, 5 - i);
      // Delta-seconds until the window resets (rate-limit/apply.ts), within one minute.
      assert.ok(Number.isInteger(h.reset) && h.reset >= 1 && h.reset <= 60, `reset ${h.reset}`);
      assert.equal(res.headers['retry-after'], undefined);
    }
    const limited = await api.call('GET', ME, { token: u.token, remoteAddress: '192.0.2.1' });
    const h = rateHeaders(limited);
    assertEnvelope(limited, 429, 'RATE_LIMITED', `rate limit of 5 requests per 60 s exceeded; retry after ${h.reset} s`);
    assert.equal(limited.headers['retry-after'], String(h.reset));
    assert.equal(h.limit, 5);
    assert.equal(h.remaining, 0);
    assert.deepEqual(limited.json.error.details, { limit: 5, retry_after_seconds: h.reset });

    // Per user: another user from the same address is unaffected; another address does not help this one.
    assert.equal((await api.call('GET', ME, { token: other.token, remoteAddress: '192.0.2.1' })).status, 200);
    assert.equal((await api.call('GET', ME, { token: u.token, remoteAddress: '192.0.2.99' })).status, 429);
  });

  test('admin routes are also limited per client address, across users', async () => {
    await awaitRoomInWindow();
    const a = await api.user(acme.id, { role: 'tenant_admin' });
    const b = await api.user(acme.id, { role: 'tenant_admin' });
    const ip = '192.0.2.50';
    const r1 = await api.call('GET', DOMAINS, { token: a.token, remoteAddress: ip });
    assert.equal(r1.status, 200, r1.body);
    // The address's 3 is tighter than the user's 5: the headers describe the most constraining rule.
    assert.deepEqual(rateHeaders(r1).limit, 3);
    assert.equal(rateHeaders(r1).remaining, 2);
    assert.equal((await api.call('GET', DOMAINS, { token: a.token, remoteAddress: ip })).status, 200);
    assert.equal((await api.call('GET', TENANT, { token: b.token, remoteAddress: ip })).status, 200);
    // b has made one request, but the address has made three admin requests.
    const limited = await api.call('GET', DOMAINS, { token: b.token, remoteAddress: ip });
    assertEnvelope(limited, 429, 'RATE_LIMITED', /^rate limit of 3 requests per 60 s exceeded; retry after \d+ s$/);
    assert.ok(Number(limited.headers['retry-after']) >= 1);

    // Non-admin routes from that address still work (only the per-user limit applies to them) …
    assert.equal((await api.call('GET', ME, { token: b.token, remoteAddress: ip })).status, 200);
    // … and the same users from another address still reach admin routes.
    assert.equal((await api.call('GET', DOMAINS, { token: b.token, remoteAddress: '192.0.2.51' })).status, 200);
  });
});
