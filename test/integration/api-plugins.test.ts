/**
 * `/api/v1/admin/plugins` and `/api/v1/admin/tenant-plugins` through the whole HTTP pipeline in
 * the current test shape: install from a directory and by package upload, install errors (422 with
 * paths), the lifecycle (enable before approval is 409, approval lists permissions and risk flags),
 * secrets and tokens shown exactly once and never logged, logs limited to the caller's tenant,
 * metrics, per-tenant enablement isolated between tenants, uninstall, and roles.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApi, auditRowsFor, actorOf, type ApiHarness, type TestTenant, type TestUser } from '../support/api.js';
import { shape, tempDir } from '../support/shape.js';
import { createPluginPackage } from '../../src/plugins/package.js';

const HTTP_ID = 'com.example.api-http';
const RISKY_ID = 'com.example.api-risky';
const PKG_ID = 'com.example.api-pkg';

let api: ApiHarness;
let root: TestUser;
let a: TestTenant;
let b: TestTenant;
let aUser: TestUser;
const dir = tempDir('mairust-api-plugins-');
/** Every secret and token the API handed out: each must appear in exactly one response and never in the log. */
const onceOnly: string[] = [];
const bodies: string[] = [];

function pluginDir(name: string, lines: string[]): string {
  const d = join(dir.path, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'plugin.toml'), lines.join('\n'));
  return d;
}

function httpManifest(id: string, extra: string[] = [], host = '127.0.0.1:9'): string[] {
  return [`id = "${id}"`, `name = "${id}"`, 'version = "1.0.0"', '[entry]', 'type = "hook"', 'protocol = "http"', `endpoint = "http://${host}/hook"`, '[hooks]', 'on = ["post_receive"]', ...extra];
}

async function call(method: string, path: string, token: string, body?: unknown) {
  const res = await api.call(method, path, { token, body });
  bodies.push(res.body);
  return res;
}

before(async () => {
  api = await startApi({ config: { storage: { backend: 'fs' }, plugins: { egress_allowlist: ['127.0.0.1'] } } });
  root = await api.superAdmin();
  a = await api.tenant('pluga');
  b = await api.tenant('plugb');
  aUser = await api.user(a.id, { role: 'user' });
});

after(async () => {
  // SPEC §10: a secret or token appears in the one response that created it, nowhere else.
  const log = api.logText();
  for (const s of onceOnly) {
    assert.equal(bodies.filter((body) => body.includes(s)).length, 1, `${s.slice(0, 9)}… appears in more than one response`);
    assert.ok(!log.includes(s), `${s.slice(0, 9)}… appears in the log`);
  }
  await api?.close();
  dir.remove();
});

describe(`plugin routes (${shape})`, () => {
  test('install from a directory: 201, status installed, the secret once', async () => {
    const res = await call('POST', '/api/v1/admin/plugins', root.token, { path: pluginDir('http', httpManifest(HTTP_ID, ['[permissions]', 'read_headers = true', 'write_tags = true'])) });
    assert.equal(res.status, 201, res.body);
    const p = res.json.data;
    assert.equal(p.id, HTTP_ID);
    assert.equal(p.status, 'installed');
    assert.equal(p.runnable, false);
    assert.equal(p.upgraded, false);
    assert.equal(p.approved_permissions, null);
    assert.equal(p.entry.protocol, 'http');
    assert.match(p.secret, /^psec_[A-Za-z0-9_-]{20,}$/);
    onceOnly.push(p.secret);
    assert.deepEqual((await auditRowsFor(api, 'plugin.installed', HTTP_ID)).map((r) => r.actor), [actorOf(root)]);

    const got = await call('GET', `/api/v1/admin/plugins/${HTTP_ID}`, root.token);
    assert.equal(got.status, 200);
    assert.equal('secret' in got.json.data, false);
    const list = await call('GET', '/api/v1/admin/plugins', a.admin.token);
    assert.equal(list.status, 200, 'tenant admins see the installed plugins');
    assert.ok(list.json.data.some((x: { id: string }) => x.id === HTTP_ID));

    const again = await call('POST', '/api/v1/admin/plugins', root.token, { path: join(dir.path, 'http') });
    assert.equal(again.status, 201);
    assert.equal(again.json.data.upgraded, true);
    assert.equal(again.json.data.secret, undefined, 'a reinstall keeps the secret and does not show it');
  });

  test('install errors are 422 with details; a missing path too', async () => {
    const bad = await call('POST', '/api/v1/admin/plugins', root.token, { path: pluginDir('bad', ['id = "Not-Reverse-DNS"', 'version = "x"']) });
    assert.equal(bad.status, 422, bad.body);
    assert.equal(bad.json.error.code, 'VALIDATION_ERROR');
    const paths = (bad.json.error.details.errors ?? []).map((e: { path: string }) => e.path);
    assert.ok(paths.includes('/id'), JSON.stringify(bad.json.error.details));
    assert.ok(paths.every((p: string) => p.startsWith('/')));

    const egress = await call('POST', '/api/v1/admin/plugins', root.token, { path: pluginDir('egress', httpManifest('com.example.elsewhere', [], 'evil.example.com')) });
    assert.equal(egress.status, 422);
    assert.match(egress.json.error.message, /evil\.example\.com/);

    const missing = await call('POST', '/api/v1/admin/plugins', root.token, { path: join(dir.path, 'nothing-here.mairust-plugin') });
    assert.equal(missing.status, 422);
    const shape422 = await call('POST', '/api/v1/admin/plugins', root.token, { dir: '/tmp' });
    assert.equal(shape422.status, 422, 'unknown field');
  });

  test('install by uploading a package (application/gzip)', async () => {
    const src = pluginDir('pkg', httpManifest(PKG_ID));
    const file = join(dir.path, 'pkg.mairust-plugin');
    await createPluginPackage(src, file);
    const res = await api.call('POST', '/api/v1/admin/plugins', { token: root.token, payload: readFileSync(file), headers: { 'content-type': 'application/gzip' } });
    bodies.push(res.body);
    assert.equal(res.status, 201, res.body);
    assert.equal(res.json.data.id, PKG_ID);
    assert.equal(res.json.data.source, 'package');
    assert.equal(res.json.data.signature, 'unsigned');
    onceOnly.push(res.json.data.secret);
    const junk = await api.call('POST', '/api/v1/admin/plugins', { token: root.token, payload: Buffer.from('not a tarball'), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(junk.status, 422, junk.body);
  });

  test('lifecycle: enable before approval is 409; approval lists permissions and risk flags', async () => {
    const risky = await call('POST', '/api/v1/admin/plugins', root.token, {
      path: pluginDir('risky', httpManifest(RISKY_ID, ['[permissions]', 'read_headers = true', 'read_body = "full"', 'delete_message = true'])),
    });
    assert.equal(risky.status, 201, risky.body);
    onceOnly.push(risky.json.data.secret);
    assert.equal(risky.json.data.high_risk, true);

    const early = await call('POST', `/api/v1/admin/plugins/${RISKY_ID}/enable`, root.token);
    assert.equal(early.status, 409);
    const approved = await call('POST', `/api/v1/admin/plugins/${RISKY_ID}/approve`, root.token, {});
    assert.equal(approved.status, 200, approved.body);
    assert.equal(approved.json.data.approved_permissions.read_body, 'full');
    assert.equal(approved.json.data.approved_permissions.delete_message, true);
    assert.deepEqual(approved.json.data.pending_permissions, []);
    assert.ok(approved.json.data.high_risk_reasons.some((r: string) => /read_body/.test(r)));
    assert.ok(approved.json.data.high_risk_reasons.some((r: string) => /delete_message/.test(r)));
    assert.equal(approved.json.data.allow_private, false);

    const on = await call('POST', `/api/v1/admin/plugins/${RISKY_ID}/enable`, root.token);
    assert.equal(on.status, 200);
    assert.equal(on.json.data.status, 'enabled');
    assert.equal(on.json.data.runnable, true);
    const off = await call('POST', `/api/v1/admin/plugins/${RISKY_ID}/disable`, root.token);
    assert.equal(off.json.data.status, 'disabled');
    assert.equal(off.json.data.runnable, false);
    for (const ev of ['plugin.approved', 'plugin.enabled', 'plugin.disabled']) assert.equal((await auditRowsFor(api, ev, RISKY_ID)).length, 1, ev);
  });

  test('roles: only super-admins manage; tenant admins read; users nothing', async () => {
    for (const [method, path, body] of [
      ['POST', '/api/v1/admin/plugins', { path: '/tmp' }],
      ['POST', `/api/v1/admin/plugins/${HTTP_ID}/approve`, {}],
      ['POST', `/api/v1/admin/plugins/${HTTP_ID}/enable`],
      ['DELETE', `/api/v1/admin/plugins/${HTTP_ID}`],
      ['GET', `/api/v1/admin/plugins/${HTTP_ID}/metrics`],
      ['POST', `/api/v1/admin/plugins/${HTTP_ID}/secret/rotate`],
      ['GET', `/api/v1/admin/plugins/${HTTP_ID}/tokens`],
      ['POST', `/api/v1/admin/plugins/${HTTP_ID}/tokens`, { scopes: ['read'] }],
    ] as const) {
      assert.equal((await call(method, path, a.admin.token, body)).status, 403, `tenant admin ${method} ${path}`);
    }
    for (const path of ['/api/v1/admin/plugins', `/api/v1/admin/plugins/${HTTP_ID}`, '/api/v1/admin/tenant-plugins']) {
      assert.equal((await call('GET', path, aUser.token)).status, 403, `user GET ${path}`);
    }
    assert.equal((await call('GET', `/api/v1/admin/plugins/${HTTP_ID}`, a.admin.token)).status, 200);
    assert.equal((await call('GET', '/api/v1/admin/plugins/com.example.nothing', root.token)).status, 404);
    assert.equal((await call('POST', '/api/v1/admin/plugins/com.example.nothing/enable', root.token)).status, 404);
  });

  test('secret rotation shows the new secret once', async () => {
    const r1 = await call('POST', `/api/v1/admin/plugins/${HTTP_ID}/secret/rotate`, root.token);
    assert.equal(r1.status, 200, r1.body);
    assert.match(r1.json.data.secret, /^psec_/);
    onceOnly.push(r1.json.data.secret);
    const r2 = await call('POST', `/api/v1/admin/plugins/${HTTP_ID}/secret/rotate`, root.token);
    assert.notEqual(r2.json.data.secret, r1.json.data.secret);
    onceOnly.push(r2.json.data.secret);
    assert.equal((await auditRowsFor(api, 'plugin.secret_rotated', HTTP_ID)).length, 2);
  });

  test('tokens: issued once, listed without secret or hash, rotation revokes, revoke by id', async () => {
    const t1 = await call('POST', `/api/v1/admin/plugins/${HTTP_ID}/tokens`, root.token, { scopes: ['callback'] });
    assert.equal(t1.status, 201, t1.body);
    assert.match(t1.json.data.token, /^plt_/);
    assert.deepEqual(t1.json.data.scopes, ['callback']);
    onceOnly.push(t1.json.data.token);
    const t2 = await call('POST', `/api/v1/admin/plugins/${HTTP_ID}/tokens`, root.token, { scopes: ['callback', 'read'] });
    onceOnly.push(t2.json.data.token);
    const bad = await call('POST', `/api/v1/admin/plugins/${HTTP_ID}/tokens`, root.token, { scopes: ['admin'] });
    assert.equal(bad.status, 422);

    const list = await call('GET', `/api/v1/admin/plugins/${HTTP_ID}/tokens`, root.token);
    assert.equal(list.status, 200);
    const byId = new Map(list.json.data.map((t: { id: string }) => [t.id, t]));
    assert.ok((byId.get(t1.json.data.id) as { revoked_at: string | null }).revoked_at, 'the overlapping token was revoked');
    assert.equal((byId.get(t2.json.data.id) as { revoked_at: string | null }).revoked_at, null);
    assert.ok(!list.body.includes('plt_'), 'no token in the list');
    assert.ok(!/token_hash|"hash"/.test(list.body));
    const row = await api.app.db.kysely.selectFrom('plugin_tokens').select('token_hash').where('id', '=', t2.json.data.id).executeTakeFirstOrThrow();
    assert.ok(!list.body.includes(row.token_hash));
    assert.equal(await api.deps.hookSystem!.plugins.verifyToken(t1.json.data.token), null);
    assert.ok(await api.deps.hookSystem!.plugins.verifyToken(t2.json.data.token));

    const del = await call('DELETE', `/api/v1/admin/plugins/${HTTP_ID}/tokens/${t2.json.data.id}`, root.token);
    assert.equal(del.status, 204);
    assert.equal(await api.deps.hookSystem!.plugins.verifyToken(t2.json.data.token), null);
    assert.equal((await call('DELETE', `/api/v1/admin/plugins/${HTTP_ID}/tokens/no-such-token`, root.token)).status, 404);
  });

  test('per-tenant enablement: own tenant only for tenant admins; super-admins name the tenant', async () => {
    const put = await call('PUT', `/api/v1/admin/tenant-plugins/${HTTP_ID}`, a.admin.token, { enabled: true, config: { threshold: 5 } });
    assert.equal(put.status, 200, put.body);
    assert.deepEqual({ ...put.json.data, created_at: undefined, updated_at: undefined }, { tenant_id: a.id, plugin_id: HTTP_ID, enabled: true, config: { threshold: 5 }, created_at: undefined, updated_at: undefined });
    const sneaky = await call('PUT', `/api/v1/admin/tenant-plugins/${HTTP_ID}`, a.admin.token, { enabled: true, tenant_id: b.id });
    assert.equal(sneaky.status, 404, "another tenant's settings are not reachable");
    assert.equal((await call('GET', `/api/v1/admin/tenant-plugins?tenant_id=${b.id}`, a.admin.token)).status, 404);
    const bList = await call('GET', '/api/v1/admin/tenant-plugins', b.admin.token);
    assert.deepEqual(bList.json.data, [], "A's enablement is not B's");
    const aList = await call('GET', '/api/v1/admin/tenant-plugins', a.admin.token);
    assert.deepEqual(aList.json.data.map((r: { plugin_id: string }) => r.plugin_id), [HTTP_ID]);

    const bySuper = await call('PUT', `/api/v1/admin/tenant-plugins/${HTTP_ID}`, root.token, { enabled: false, tenant_id: b.id });
    assert.equal(bySuper.status, 200);
    assert.equal(bySuper.json.data.tenant_id, b.id);
    const superList = await call('GET', `/api/v1/admin/tenant-plugins?tenant_id=${b.id}`, root.token);
    assert.equal(superList.json.data.length, 1);
    assert.equal((await call('PUT', '/api/v1/admin/tenant-plugins/com.example.nothing', a.admin.token, { enabled: true })).status, 404);
    const big = await call('PUT', `/api/v1/admin/tenant-plugins/${HTTP_ID}`, a.admin.token, { config: { blob: 'x'.repeat(17 * 1024) } });
    assert.equal(big.status, 422);
    assert.equal((await call('PUT', `/api/v1/admin/tenant-plugins/${HTTP_ID}`, a.admin.token, {})).status, 422, 'an empty change');
    const audit = await auditRowsFor(api, 'plugin.tenant_changed', HTTP_ID);
    assert.deepEqual(audit.map((r) => r.tenantId), [a.id, b.id]);
  });

  test("logs: newest first, paged with before; a tenant admin sees only their tenant's lines", async () => {
    const reg = api.deps.hookSystem!.plugins;
    await reg.log({ pluginId: HTTP_ID, tenantId: a.id, level: 'warn', message: 'line-a-1' });
    await reg.log({ pluginId: HTTP_ID, tenantId: b.id, level: 'error', message: 'line-b-secret' });
    await new Promise((r) => setTimeout(r, 5));
    await reg.log({ pluginId: HTTP_ID, tenantId: a.id, level: 'info', message: 'line-a-2' });
    const own = await call('GET', `/api/v1/admin/plugins/${HTTP_ID}/logs`, a.admin.token);
    assert.equal(own.status, 200, own.body);
    assert.deepEqual(own.json.data.map((l: { message: string }) => l.message), ['line-a-2', 'line-a-1']);
    assert.ok(!own.body.includes('line-b-secret'));
    assert.equal((await call('GET', `/api/v1/admin/plugins/${HTTP_ID}/logs?tenant_id=${b.id}`, a.admin.token)).status, 404);

    const first = await call('GET', `/api/v1/admin/plugins/${HTTP_ID}/logs?limit=1`, root.token);
    assert.equal(first.json.data.length, 1);
    assert.equal(first.json.pagination.has_more, true);
    const next = await call('GET', `/api/v1/admin/plugins/${HTTP_ID}/logs?limit=100&before=${first.json.pagination.cursor}`, root.token);
    const messages = next.json.data.map((l: { message: string }) => l.message);
    assert.ok(messages.includes('line-b-secret') && messages.includes('line-a-1'));
    assert.ok(!messages.includes('line-a-2'), 'only older lines');
    assert.equal((await call('GET', '/api/v1/admin/plugins/com.example.nothing/logs', root.token)).status, 404);
  });

  test('metrics: stats, breakers of its hooks and health (super-admins)', async () => {
    const h = await call('POST', '/api/v1/admin/hooks', root.token, { id: 'metrics-hook', type: 'post_receive', plugin_id: HTTP_ID, tenant_id: a.id });
    assert.equal(h.status, 201, h.body);
    const m = await call('GET', `/api/v1/admin/plugins/${HTTP_ID}/metrics`, root.token);
    assert.equal(m.status, 200, m.body);
    assert.equal(m.json.data.plugin_id, HTTP_ID);
    assert.equal(m.json.data.stats.calls, 0);
    assert.deepEqual(m.json.data.breakers.map((x: { hook_id: string; state: { state: string } }) => [x.hook_id, x.state.state]), [['metrics-hook', 'closed']]);
    assert.equal(m.json.data.health.ok, null);
  });

  test('uninstall removes the plugin and its hooks', async () => {
    const del = await call('DELETE', `/api/v1/admin/plugins/${HTTP_ID}`, root.token);
    assert.equal(del.status, 204, del.body);
    assert.equal((await call('GET', `/api/v1/admin/plugins/${HTTP_ID}`, root.token)).status, 404);
    assert.equal((await call('GET', '/api/v1/admin/hooks/metrics-hook', root.token)).status, 404);
    assert.equal((await call('DELETE', `/api/v1/admin/plugins/${HTTP_ID}`, root.token)).status, 404);
    assert.equal((await auditRowsFor(api, 'plugin.uninstalled', HTTP_ID)).length, 1);
  });
});
