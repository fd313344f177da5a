/**
 * `/api/v1/admin/hooks` through the whole HTTP pipeline in the current test shape, with a REAL
 * HTTP plugin on 127.0.0.1 (installed, approved with allow_private and enabled through the API):
 * roles, tenant isolation (another tenant's hook is 404, a global one is read-only for tenant
 * admins), validation errors with JSON Pointer paths, config-file hooks read-only, the test
 * endpoint's raw exchange (signed request verified by the plugin), breaker state and its audited
 * reset, and the post_receive job listing.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApi, auditRowsFor, actorOf, errorPaths, type ApiHarness, type TestTenant, type TestUser } from '../support/api.js';
import { shape, tempDir } from '../support/shape.js';
import { verifyRequest } from '../../sdk/src/verify.js';
import { enqueuePostReceive } from '../../src/hooks/post-receive.js';
import { buildPayloadSource } from '../../src/hooks/payload.js';
import { tenantScope } from '../../src/core/scope.js';

const PLUGIN_ID = 'com.example.api-hooks';

let api: ApiHarness;
let root: TestUser;
let a: TestTenant;
let b: TestTenant;
let aUser: TestUser;
let server: http.Server;
let port = 0;
let secret = '';
/** What the plugin answers: 'tag' (valid), 'bad' (invalid response), 'fail' (500). */
let mode: 'tag' | 'bad' | 'fail' = 'tag';
const received: { headers: http.IncomingHttpHeaders; body: string; verified: boolean }[] = [];
const dir = tempDir('mairust-api-hooks-');

function writePlugin(): string {
  const d = join(dir.path, 'plugin');
  mkdirSync(d, { recursive: true });
  writeFileSync(
    join(d, 'plugin.toml'),
    [
      `id = "${PLUGIN_ID}"`,
      'name = "API hooks test"',
      'version = "1.0.0"',
      '[entry]',
      'type = "hook"',
      'protocol = "http"',
      `endpoint = "http://127.0.0.1:${port}/hook"`,
      '[hooks]',
      'on = ["pre_receive", "post_receive"]',
      '[permissions]',
      'read_headers = true',
      'read_body = "preview"',
      'write_tags = true',
    ].join('\n'),
  );
  return d;
}

before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const verified = secret !== '' && verifyRequest({ secrets: [secret], pluginId: PLUGIN_ID, headers: req.headers as Record<string, string>, body }).ok;
      received.push({ headers: req.headers, body, verified });
      if (mode === 'fail') {
        res.writeHead(500).end('boom');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(mode === 'tag' ? { plugin_id: PLUGIN_ID, action: 'tag', tags: ['checked'] } : { plugin_id: PLUGIN_ID, action: 'explode' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  api = await startApi({
    config: {
      // Blobs matter little here: the fs store in both shapes (the database is the shape's).
      storage: { backend: 'fs' },
      plugins: { egress_allowlist: ['127.0.0.1'] },
      hooks: { definitions: [{ id: 'from-config', type: 'post_receive', plugin_id: PLUGIN_ID }] },
    },
  });
  root = await api.superAdmin();
  a = await api.tenant('hooka');
  b = await api.tenant('hookb');
  aUser = await api.user(a.id, { role: 'user' });

  const installed = await api.call('POST', '/api/v1/admin/plugins', { token: root.token, body: { path: writePlugin() } });
  assert.equal(installed.status, 201, installed.body);
  secret = installed.json.data.secret;
  assert.equal((await api.call('POST', `/api/v1/admin/plugins/${PLUGIN_ID}/approve`, { token: root.token, body: { allow_private: true } })).status, 200);
  assert.equal((await api.call('POST', `/api/v1/admin/plugins/${PLUGIN_ID}/enable`, { token: root.token })).status, 200);
  const en = await api.call('PUT', `/api/v1/admin/tenant-plugins/${PLUGIN_ID}`, { token: a.admin.token, body: { enabled: true } });
  assert.equal(en.status, 200, en.body);
});

after(async () => {
  await api?.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  dir.remove();
});

const hook = (id: string, extra: Record<string, unknown> = {}) => ({ id, type: 'pre_receive', plugin_id: PLUGIN_ID, ...extra });

describe(`hook routes (${shape})`, () => {
  test('roles: users and domain admins are refused; a tenant admin creates a hook of their own tenant with the defaults', async () => {
    const domain = await api.app.tenancy.domains.add(tenantScope(a.id), { name: 'hooka.test' });
    const domainAdmin = await api.user(a.id, { role: 'domain_admin', email: 'da@hooka.test', domainScope: [domain.id] });
    for (const t of [aUser, domainAdmin]) {
      assert.equal((await api.call('GET', '/api/v1/admin/hooks', { token: t.token })).status, 403);
      assert.equal((await api.call('POST', '/api/v1/admin/hooks', { token: t.token, body: hook('nope') })).status, 403);
    }
    // tenant_id null from a tenant admin is pinned to their tenant, never global.
    const res = await api.call('POST', '/api/v1/admin/hooks', { token: a.admin.token, body: hook('a-pre', { tenant_id: null }) });
    assert.equal(res.status, 201, res.body);
    const h = res.json.data;
    assert.equal(h.tenant_id, a.id);
    assert.equal(h.timeout_ms, 2000, 'pre_receive default timeout (SPEC §6)');
    assert.equal(h.priority, 100);
    assert.equal(h.on_timeout, 'tempfail');
    assert.equal(h.on_error, 'allow');
    assert.equal(h.source, 'api');
    assert.equal(h.circuit_breaker_state.state, 'closed');
    const rows = await auditRowsFor(api, 'hook.created', 'a-pre');
    assert.deepEqual(rows.map((r) => [r.tenantId, r.actor]), [[a.id, actorOf(a.admin)]]);

    const other = await api.call('POST', '/api/v1/admin/hooks', { token: a.admin.token, body: hook('a-sneaky', { tenant_id: b.id }) });
    assert.equal(other.status, 404, 'naming another tenant is like naming one that does not exist');
  });

  test('a tenant admin may only use a plugin enabled for the tenant', async () => {
    const res = await api.call('POST', '/api/v1/admin/hooks', { token: b.admin.token, body: hook('b-pre') });
    assert.equal(res.status, 422, res.body);
    assert.deepEqual(errorPaths(res), ['/plugin_id']);
  });

  test('validation errors are 422 with JSON Pointer paths', async () => {
    const tooLong = await api.call('POST', '/api/v1/admin/hooks', { token: a.admin.token, body: hook('a-slow', { timeout_ms: 4000 }) });
    assert.equal(tooLong.status, 422);
    assert.deepEqual(errorPaths(tooLong), ['/timeout_ms'], 'pre_receive may not wait more than 3 s');
    const unknown = await api.call('POST', '/api/v1/admin/hooks', { token: a.admin.token, body: hook('a-x', { bogus: 1 }) });
    assert.equal(unknown.status, 422);
    assert.deepEqual(errorPaths(unknown), ['/bogus']);
    const badRegex = await api.call('POST', '/api/v1/admin/hooks', { token: a.admin.token, body: hook('a-re', { filter: { subject_matches: '(a+)+$' } }) });
    assert.equal(badRegex.status, 422, badRegex.body);
    assert.deepEqual(errorPaths(badRegex), ['/filter/subject_matches']);
    const noPlugin = await api.call('POST', '/api/v1/admin/hooks', { token: root.token, body: hook('a-np', { plugin_id: 'com.example.missing', tenant_id: a.id }) });
    assert.equal(noPlugin.status, 422);
    assert.deepEqual(errorPaths(noPlugin), ['/plugin_id']);
    const dup = await api.call('POST', '/api/v1/admin/hooks', { token: a.admin.token, body: hook('a-pre') });
    assert.equal(dup.status, 409);
  });

  test("another tenant's hook answers 404 for every operation; lists never show it", async () => {
    for (const [method, path, body] of [
      ['GET', '/api/v1/admin/hooks/a-pre'],
      ['PUT', '/api/v1/admin/hooks/a-pre', { type: 'pre_receive', plugin_id: PLUGIN_ID }],
      ['DELETE', '/api/v1/admin/hooks/a-pre'],
      ['POST', '/api/v1/admin/hooks/a-pre/test'],
      ['POST', '/api/v1/admin/hooks/a-pre/circuit-breaker/reset'],
      ['GET', '/api/v1/admin/hooks/a-pre/jobs'],
    ] as const) {
      const res = await api.call(method, path, { token: b.admin.token, body });
      assert.equal(res.status, 404, `${method} ${path}: ${res.body}`);
      const ghost = await api.call(method, path.replace('a-pre', 'no-such-hook'), { token: b.admin.token, body });
      assert.equal(ghost.status, 404);
    }
    const list = await api.call('GET', '/api/v1/admin/hooks', { token: b.admin.token });
    assert.equal(list.status, 200);
    assert.ok(!list.body.includes('a-pre'));
    assert.ok(!list.body.includes(a.id));
    const filtered = await api.call('GET', `/api/v1/admin/hooks?tenant_id=${a.id}`, { token: b.admin.token });
    assert.deepEqual(filtered.json.data, []);
    const own = await api.call('GET', '/api/v1/admin/hooks', { token: a.admin.token });
    assert.ok(own.json.data.some((h: { id: string }) => h.id === 'a-pre'));
    const all = await api.call('GET', '/api/v1/admin/hooks', { token: root.token });
    assert.ok(all.json.data.some((h: { id: string }) => h.id === 'a-pre'));
  });

  test('global hooks: super-admins only change them; tenant admins read them (403 on change)', async () => {
    const g = await api.call('POST', '/api/v1/admin/hooks', { token: root.token, body: hook('global-pre', { tenant_id: null, priority: 5 }) });
    assert.equal(g.status, 201, g.body);
    assert.equal(g.json.data.tenant_id, null);
    const read = await api.call('GET', '/api/v1/admin/hooks/global-pre', { token: b.admin.token });
    assert.equal(read.status, 200);
    assert.equal((await api.call('PUT', '/api/v1/admin/hooks/global-pre', { token: b.admin.token, body: { type: 'pre_receive', plugin_id: PLUGIN_ID } })).status, 403);
    assert.equal((await api.call('DELETE', '/api/v1/admin/hooks/global-pre', { token: b.admin.token })).status, 403);
    const onlyGlobal = await api.call('GET', '/api/v1/admin/hooks?global=true', { token: a.admin.token });
    assert.deepEqual(onlyGlobal.json.data.map((h: { id: string }) => h.id).filter((id: string) => id !== 'from-config'), ['global-pre']);
    const put = await api.call('PUT', '/api/v1/admin/hooks/global-pre', { token: root.token, body: { type: 'pre_receive', plugin_id: PLUGIN_ID, priority: 7 } });
    assert.equal(put.status, 200, put.body);
    assert.equal(put.json.data.priority, 7);
    assert.equal(put.json.data.tenant_id, null, 'tenant_id left out keeps the hook global');
  });

  test('config-file hooks are listed with source "config" and are read-only', async () => {
    const got = await api.call('GET', '/api/v1/admin/hooks/from-config', { token: root.token });
    assert.equal(got.status, 200, got.body);
    assert.equal(got.json.data.source, 'config');
    assert.equal(got.json.data.timeout_ms, 30000);
    const put = await api.call('PUT', '/api/v1/admin/hooks/from-config', { token: root.token, body: { type: 'post_receive', plugin_id: PLUGIN_ID } });
    assert.equal(put.status, 409);
    assert.equal((await api.call('DELETE', '/api/v1/admin/hooks/from-config', { token: root.token })).status, 409);
  });

  test('PUT replaces the config of an own hook; a tenant admin cannot move it to another tenant', async () => {
    const put = await api.call('PUT', '/api/v1/admin/hooks/a-pre', { token: a.admin.token, body: { type: 'pre_receive', plugin_id: PLUGIN_ID, enabled: false, timeout_ms: 1500 } });
    assert.equal(put.status, 200, put.body);
    assert.equal(put.json.data.enabled, false);
    assert.equal(put.json.data.timeout_ms, 1500);
    assert.equal(put.json.data.tenant_id, a.id);
    const move = await api.call('PUT', '/api/v1/admin/hooks/a-pre', { token: a.admin.token, body: { type: 'pre_receive', plugin_id: PLUGIN_ID, tenant_id: b.id } });
    assert.equal(move.status, 404);
    const idChange = await api.call('PUT', '/api/v1/admin/hooks/a-pre', { token: a.admin.token, body: { id: 'other', type: 'pre_receive', plugin_id: PLUGIN_ID } });
    assert.equal(idChange.status, 422);
  });

  test('POST …/test calls the real plugin on the sample message and shows the raw exchange', async () => {
    mode = 'tag';
    const before = received.length;
    const res = await api.call('POST', '/api/v1/admin/hooks/a-pre/test', { token: a.admin.token });
    assert.equal(res.status, 200, res.body);
    const r = res.json.data;
    assert.equal(r.outcome, 'ok');
    assert.equal(r.action, 'tag');
    assert.deepEqual(r.response.tags, ['checked']);
    assert.deepEqual(r.validation_errors, []);
    assert.equal(r.request.payload.hook_type, 'pre_receive');
    assert.deepEqual(r.request.payload.envelope, { from: 'sender@example.com', to: ['recipient@example.net'] });
    assert.ok(r.request.payload.headers, 'read_headers granted → headers sent');
    assert.equal(typeof r.request.payload.body.preview, 'string');
    assert.equal(r.request.payload.body.full, undefined, 'read_body = preview: no full body');
    assert.equal(r.transport.ok, true);
    assert.ok(r.transport.bytes_out > 0 && r.transport.bytes_in > 0);
    assert.equal(received.length, before + 1, 'exactly one call');
    assert.equal(received.at(-1)!.verified, true, 'the call was signed with the plugin secret (SPEC §6)');
    assert.equal(JSON.parse(received.at(-1)!.body).message_id, r.request.payload.message_id);

    mode = 'bad';
    const bad = await api.call('POST', '/api/v1/admin/hooks/a-pre/test', { token: a.admin.token });
    assert.equal(bad.status, 200);
    assert.equal(bad.json.data.outcome, 'error');
    assert.equal(bad.json.data.response, null);
    assert.deepEqual(bad.json.data.raw_response, { plugin_id: PLUGIN_ID, action: 'explode' });
    assert.ok(bad.json.data.validation_errors.length > 0);
    assert.equal(bad.json.data.action, 'allow', 'on_error allow');
    mode = 'tag';
  });

  test('the breaker state is shown; reset closes it and is audited', async () => {
    const sys = api.deps.hookSystem!;
    const h = (await sys.hooks.get('a-pre'))!;
    mode = 'fail';
    const full = buildPayloadSource({
      hookType: 'pre_receive',
      messageId: 'breaker-test',
      tenantId: a.id,
      mailbox: null,
      envelope: { from: 's@example.com', to: ['r@hooka.test'] },
      raw: Buffer.from('Subject: breaker\r\n\r\nbody\r\n'),
      receivedAt: new Date(),
      clientIp: null,
      callbackUrl: null,
    });
    for (let i = 0; i < 3; i++) await sys.runner.runOne({ ...h, enabled: true }, a.id, async () => full, { messageId: null });
    mode = 'tag';
    const open = await api.call('GET', '/api/v1/admin/hooks/a-pre', { token: a.admin.token });
    assert.equal(open.json.data.circuit_breaker_state.state, 'open', 'strict profile: 3 failures open it');
    assert.ok(open.json.data.circuit_breaker_state.opened_at);

    const reset = await api.call('POST', '/api/v1/admin/hooks/a-pre/circuit-breaker/reset', { token: a.admin.token });
    assert.equal(reset.status, 200, reset.body);
    assert.equal(reset.json.data.circuit_breaker_state.state, 'closed');
    assert.equal(reset.json.data.circuit_breaker_state.consecutive_failures, 0);
    const rows = await auditRowsFor(api, 'hook.breaker_reset', 'a-pre');
    assert.equal(rows.length, 1);
    assert.equal(rows[0].tenantId, a.id);
    assert.equal(rows[0].metadata.previous_state, 'open');
  });

  test('GET …/jobs lists the post_receive jobs of the hook', async () => {
    const created = await api.call('POST', '/api/v1/admin/hooks', { token: a.admin.token, body: { id: 'a-post', type: 'post_receive', plugin_id: PLUGIN_ID } });
    assert.equal(created.status, 201, created.body);
    assert.deepEqual(created.json.data.retry, { max_attempts: 3, backoff_seconds: [30, 120, 600] });
    const stored = (await api.deps.hookSystem!.hooks.get('a-post'))!;
    const messageId = '11111111-2222-4333-8444-555555555555';
    await api.app.db.kysely.transaction().execute((trx) =>
      enqueuePostReceive(api.app.queue, trx, [stored], {
        tenant_id: a.id,
        message_id: messageId,
        mailbox_ids: [],
        queue_id: null,
        envelope: { from: 's@example.com', to: ['r@hooka.test'] },
        received_at: Date.now(),
        client_ip: null,
      }),
    );
    const jobs = await api.call('GET', '/api/v1/admin/hooks/a-post/jobs', { token: a.admin.token });
    assert.equal(jobs.status, 200, jobs.body);
    assert.equal(jobs.json.data.length, 1);
    assert.equal(jobs.json.data[0].message_id, messageId);
    assert.equal(jobs.json.data[0].status, 'pending');
    assert.equal(jobs.json.data[0].max_attempts, 3);
    const none = await api.call('GET', '/api/v1/admin/hooks/a-pre/jobs', { token: a.admin.token });
    assert.deepEqual(none.json.data, []);
  });

  test('DELETE removes the hook (audited); paging walks the list', async () => {
    for (const id of ['a-p1', 'a-p2', 'a-p3']) assert.equal((await api.call('POST', '/api/v1/admin/hooks', { token: a.admin.token, body: hook(id) })).status, 201);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await api.call('GET', `/api/v1/admin/hooks?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: a.admin.token });
      assert.equal(page.status, 200);
      assert.ok(page.json.data.length <= 2);
      seen.push(...page.json.data.map((h: { id: string }) => h.id));
      cursor = page.json.pagination.cursor;
    } while (cursor);
    assert.deepEqual(seen, [...seen].sort());
    for (const id of ['a-p1', 'a-p2', 'a-p3', 'a-pre', 'global-pre', 'from-config']) assert.ok(seen.includes(id), id);

    const del = await api.call('DELETE', '/api/v1/admin/hooks/a-p1', { token: a.admin.token });
    assert.equal(del.status, 204);
    assert.equal((await api.call('GET', '/api/v1/admin/hooks/a-p1', { token: a.admin.token })).status, 404);
    assert.equal((await auditRowsFor(api, 'hook.deleted', 'a-p1')).length, 1);
  });
});
