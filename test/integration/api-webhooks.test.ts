/**
 * `/api/v1/webhooks` through the whole HTTP pipeline (authentication, policy, validation,
 * serialization) in the current test shape: the secret only in the create and rotate responses,
 * roles, tenant isolation, paging, the 20-per-tenant limit and a synchronous test delivery to a
 * real receiver on 127.0.0.1.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startApi, type ApiHarness, type TestTenant, type TestUser } from '../support/api.js';
import { verifyWebhookSignature } from '../../src/webhooks/signature.js';

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let api: ApiHarness;
let a: TestTenant;
let b: TestTenant;
let plainUser: TestUser;
let receiver: http.Server;
let port = 0;
const received: Received[] = [];
/** Status the receiver answers per path (default 200). */
const statusFor = new Map<string, number>();
/** Every secret the API handed out, to prove none of them leaks elsewhere. */
const secretsSeen: string[] = [];

const url = (path: string) => `http://127.0.0.1:${port}${path}`;

before(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(statusFor.get(req.url ?? '/') ?? 200);
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  port = (receiver.address() as { port: number }).port;
  api = await startApi({ config: { webhooks: { allow_private_addresses: true, timeout_ms: 2000 } } });
  a = await api.tenant('acme');
  b = await api.tenant('globex');
  plainUser = await api.user(a.id, { role: 'user' });
});

after(async () => {
  await api?.close();
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

async function createHook(t: TestUser, body: Record<string, unknown>) {
  const res = await api.call('POST', '/api/v1/webhooks', { token: t.token, body });
  if (res.status === 201) secretsSeen.push(res.json.data.secret);
  return res;
}

describe('webhook routes', () => {
  test('create answers 201 with the secret once; get and list never carry it', async () => {
    const res = await createHook(a.admin, { url: url('/crm'), events: ['user.created', 'message.received'], description: 'CRM sync' });
    assert.equal(res.status, 201);
    const w = res.json.data;
    assert.match(w.secret, /^whsec_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(
      { ...w, id: undefined, secret: undefined, created_at: undefined, updated_at: undefined },
      { id: undefined, secret: undefined, created_at: undefined, updated_at: undefined, tenant_id: a.id, url: url('/crm'), description: 'CRM sync', events: ['message.received', 'user.created'], enabled: true },
    );
    assert.equal(new Date(w.created_at).toISOString(), w.created_at);

    const got = await api.call('GET', `/api/v1/webhooks/${w.id}`, { token: a.admin.token });
    assert.equal(got.status, 200);
    assert.equal(got.json.data.id, w.id);
    assert.equal('secret' in got.json.data, false);
    assert.ok(!got.body.includes(w.secret));

    const list = await api.call('GET', '/api/v1/webhooks', { token: a.admin.token });
    assert.equal(list.status, 200);
    assert.ok(list.json.data.some((x: { id: string }) => x.id === w.id));
    assert.ok(list.json.data.every((x: object) => !('secret' in x)));
    assert.ok(!list.body.includes('whsec_'));
    assert.deepEqual(list.json.pagination, { cursor: null, has_more: false });
  });

  test('validation: unknown fields, unknown events, non-https URLs and missing fields are refused', async () => {
    let res = await api.call('POST', '/api/v1/webhooks', { token: a.admin.token, body: { url: url('/x'), events: ['user.created'], secret: 'mine' } });
    assert.equal(res.status, 422);
    assert.equal(res.json.error.code, 'VALIDATION_ERROR');
    res = await api.call('POST', '/api/v1/webhooks', { token: a.admin.token, body: { url: url('/x'), events: ['user.exploded'] } });
    assert.equal(res.status, 422);
    res = await api.call('POST', '/api/v1/webhooks', { token: a.admin.token, body: { url: url('/x'), events: [] } });
    assert.equal(res.status, 422);
    res = await api.call('POST', '/api/v1/webhooks', { token: a.admin.token, body: { events: ['user.created'] } });
    assert.equal(res.status, 422);
    res = await api.call('POST', '/api/v1/webhooks', { token: a.admin.token, body: { url: 'http://hooks.example.com/x', events: ['user.created'] } });
    assert.equal(res.status, 422);
    assert.equal(res.json.error.code, 'VALIDATION_ERROR');
    assert.equal(res.json.error.details.field, 'url');
    assert.match(res.json.error.message, /url must use https/);
    res = await api.call('POST', '/api/v1/webhooks', { token: a.admin.token, body: { url: `https://hooks.example.com/${'a'.repeat(2048)}`, events: ['user.created'] } });
    assert.equal(res.status, 422);
    res = await api.call('PATCH', '/api/v1/webhooks/00000000-0000-4000-8000-000000000000', { token: a.admin.token, body: {} });
    assert.equal(res.status, 422, 'an empty PATCH is refused');
    res = await api.call('GET', '/api/v1/webhooks/not-a-uuid', { token: a.admin.token });
    assert.equal(res.status, 400);
  });

  test('a plain user may neither list nor create webhooks; no credentials is 401', async () => {
    let res = await api.call('GET', '/api/v1/webhooks', { token: plainUser.token });
    assert.equal(res.status, 403);
    assert.equal(res.json.error.code, 'FORBIDDEN');
    res = await api.call('POST', '/api/v1/webhooks', { token: plainUser.token, body: { url: url('/u'), events: ['user.created'] } });
    assert.equal(res.status, 403);
    res = await api.call('GET', '/api/v1/webhooks');
    assert.equal(res.status, 401);
  });

  test('tenant isolation: another tenant\'s webhook is 404 for every route and absent from lists', async () => {
    const own = (await createHook(a.admin, { url: url('/iso'), events: ['user.created'] })).json.data;
    const t = { token: b.admin.token };
    for (const [method, path, body] of [
      ['GET', `/api/v1/webhooks/${own.id}`, undefined],
      ['PATCH', `/api/v1/webhooks/${own.id}`, { enabled: false }],
      ['DELETE', `/api/v1/webhooks/${own.id}`, undefined],
      ['POST', `/api/v1/webhooks/${own.id}/rotate-secret`, undefined],
      ['POST', `/api/v1/webhooks/${own.id}/test`, undefined],
    ] as const) {
      const res = await api.call(method, path, { ...t, body });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.json.error.code, 'NOT_FOUND');
    }
    const list = await api.call('GET', '/api/v1/webhooks', t);
    assert.ok(!list.json.data.some((x: { id: string }) => x.id === own.id));
    // Creating one for another tenant is "not found" too, never "forbidden".
    const res = await api.call('POST', '/api/v1/webhooks', { ...t, body: { url: url('/x'), events: ['user.created'], tenant_id: a.id } });
    assert.equal(res.status, 404);
    // Nothing was changed or sent.
    const still = await api.call('GET', `/api/v1/webhooks/${own.id}`, { token: a.admin.token });
    assert.equal(still.json.data.enabled, true);
    assert.equal(received.filter((r) => r.path === '/iso').length, 0);
  });

  test('PATCH changes what is given; rotate-secret returns a new secret that signs the test delivery', async () => {
    const w = (await createHook(a.admin, { url: url('/rot'), events: ['user.created'] })).json.data;
    const patched = await api.call('PATCH', `/api/v1/webhooks/${w.id}`, { token: a.admin.token, body: { enabled: false, events: ['message.sent'] } });
    assert.equal(patched.status, 200);
    assert.equal(patched.json.data.enabled, false);
    assert.deepEqual(patched.json.data.events, ['message.sent']);
    assert.equal(patched.json.data.url, url('/rot'));
    assert.equal('secret' in patched.json.data, false);

    const rotated = await api.call('POST', `/api/v1/webhooks/${w.id}/rotate-secret`, { token: a.admin.token });
    assert.equal(rotated.status, 200);
    const secret = rotated.json.data.secret as string;
    secretsSeen.push(secret);
    assert.match(secret, /^whsec_/);
    assert.notEqual(secret, w.secret);

    // A test delivery goes out even though the webhook is disabled.
    const t = await api.call('POST', `/api/v1/webhooks/${w.id}/test`, { token: a.admin.token });
    assert.equal(t.status, 200);
    assert.equal(t.json.data.delivered, true);
    assert.equal(t.json.data.status, 200);
    assert.equal(t.json.data.error, null);
    const [req] = received.filter((r) => r.path === '/rot');
    assert.ok(req);
    const body = JSON.parse(req.body);
    assert.equal(body.event, 'webhook.test');
    assert.equal(body.id, t.json.data.event_id);
    assert.equal(body.tenant_id, a.id);
    const check = (s: string) =>
      verifyWebhookSignature({ secrets: [s], id: req.headers['x-mairust-webhook-id'] as string, timestamp: req.headers['x-mairust-timestamp'] as string, signature: req.headers['x-mairust-signature'] as string, body: req.body }).ok;
    assert.equal(check(secret), true);
    assert.equal(check(w.secret), false, 'the old secret no longer verifies');
  });

  test('a failing test delivery reports the status and changes nothing, even for 410', async () => {
    const w = (await createHook(a.admin, { url: url('/gone'), events: ['user.created'] })).json.data;
    statusFor.set('/gone', 410);
    const t = await api.call('POST', `/api/v1/webhooks/${w.id}/test`, { token: a.admin.token });
    assert.equal(t.status, 200);
    assert.equal(t.json.data.delivered, false);
    assert.equal(t.json.data.status, 410);
    assert.match(t.json.data.error, /answered HTTP 410 Gone$/);
    assert.equal((await api.call('GET', `/api/v1/webhooks/${w.id}`, { token: a.admin.token })).json.data.enabled, true);

    // Nobody listening: no status, an error that says why.
    const closed = (await createHook(a.admin, { url: 'http://127.0.0.1:1/none', events: ['user.created'] })).json.data;
    const r = await api.call('POST', `/api/v1/webhooks/${closed.id}/test`, { token: a.admin.token });
    assert.equal(r.json.data.delivered, false);
    assert.equal(r.json.data.status, null);
    assert.match(r.json.data.error, /^connection to 127\.0\.0\.1:1 failed: ECONNREFUSED$/);
  });

  test('DELETE answers 204, then the webhook is gone', async () => {
    const w = (await createHook(a.admin, { url: url('/del'), events: ['user.created'] })).json.data;
    const del = await api.call('DELETE', `/api/v1/webhooks/${w.id}`, { token: a.admin.token });
    assert.equal(del.status, 204);
    assert.equal(del.body, '');
    assert.equal((await api.call('GET', `/api/v1/webhooks/${w.id}`, { token: a.admin.token })).status, 404);
    assert.equal((await api.call('DELETE', `/api/v1/webhooks/${w.id}`, { token: a.admin.token })).status, 404);
  });

  test('paging with limit and cursor; 20 per tenant, the 21st is 409', async () => {
    const c = await api.tenant('initech');
    for (let i = 0; i < 20; i++) assert.equal((await createHook(c.admin, { url: url(`/p${i}`), events: ['user.created'] })).status, 201);
    const over = await createHook(c.admin, { url: url('/p20'), events: ['user.created'] });
    assert.equal(over.status, 409);
    assert.equal(over.json.error.code, 'CONFLICT');
    assert.equal(over.json.error.message, 'tenant limit reached: webhooks is 20 and 20 already exist');

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `?limit=7&cursor=${encodeURIComponent(cursor)}` : '?limit=7';
      const res = await api.call('GET', `/api/v1/webhooks${q}`, { token: c.admin.token });
      assert.equal(res.status, 200);
      assert.ok(res.json.data.length <= 7);
      seen.push(...res.json.data.map((x: { id: string }) => x.id));
      cursor = res.json.pagination.cursor;
      assert.equal(res.json.pagination.has_more, cursor !== null);
      pages++;
    } while (cursor);
    assert.equal(pages, 3);
    assert.equal(seen.length, 20);
    assert.equal(new Set(seen).size, 20);
    assert.equal((await api.call('GET', '/api/v1/webhooks?limit=101', { token: c.admin.token })).status, 400);
    assert.equal((await api.call('GET', '/api/v1/webhooks?cursor=%%%', { token: c.admin.token })).status, 400);
  });

  test('a super-admin sees every tenant\'s webhooks and creates one for a named tenant', async () => {
    const root = await api.superAdmin();
    const res = await createHook(root, { url: url('/root'), events: ['plugin.error'], tenant_id: b.id });
    assert.equal(res.status, 201);
    assert.equal(res.json.data.tenant_id, b.id);
    const onlyB = await api.call('GET', `/api/v1/webhooks?tenant_id=${b.id}&limit=100`, { token: root.token });
    assert.ok(onlyB.json.data.length >= 1);
    assert.ok(onlyB.json.data.every((x: { tenant_id: string }) => x.tenant_id === b.id));
    const all = await api.call('GET', '/api/v1/webhooks?limit=100', { token: root.token });
    assert.ok(new Set(all.json.data.map((x: { tenant_id: string }) => x.tenant_id)).size >= 2);
    // Tenant B's admin sees it as their own.
    assert.equal((await api.call('GET', `/api/v1/webhooks/${res.json.data.id}`, { token: b.admin.token })).status, 200);
  });

  test('the OpenAPI document describes every webhook route', async () => {
    const doc = (await api.call('GET', '/api/v1/openapi.json')).json;
    for (const path of ['/api/v1/webhooks', '/api/v1/webhooks/{id}', '/api/v1/webhooks/{id}/rotate-secret', '/api/v1/webhooks/{id}/test']) {
      assert.ok(doc.paths[path], path);
    }
    assert.match(doc.paths['/api/v1/webhooks'].post.description, /X-MaiRust-Signature: sha256=<hex>/);
  });

  test('no secret handed out appears in the log', () => {
    const log = api.logText();
    assert.ok(secretsSeen.length >= 5);
    for (const s of secretsSeen) assert.ok(!log.includes(s));
    assert.ok(!/whsec_[A-Za-z0-9_-]{10}/.test(log));
  });
});
