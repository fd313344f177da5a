/**
 * `admin/settings` (SPEC §11, §12): listing the reloadable keys, changing them (validated against
 * the config schema, applied at once, audited), refusing non-reloadable keys and invalid values
 * with 422, super-admins only — and stored overrides applied by another application context on
 * the same database (a restart, or another node of a cluster polling for changes).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openApp, type AppContext } from '../../src/app/context.js';
import { isReloadable } from '../../src/config/reload.js';
import { systemScope } from '../../src/core/scope.js';
import { listAudit } from '../../src/security/audit.js';
import { applyStoredOverrides, MAX_KEYS_PER_UPDATE, reloadableKeys, settingsFor } from '../../src/settings/settings-service.js';
import { MAX_KEY_LENGTH } from '../../src/http/api/routes/settings.js';
import { startApi, type ApiHarness, type TestTenant, type TestUser } from '../support/api.js';

const SETTINGS = '/api/v1/admin/settings';

describe('api: settings', () => {
  let api: ApiHarness;
  let root: TestUser;
  let acme: TestTenant;
  const others: { app: AppContext; fd: number }[] = [];

  /** A second application context on the same configuration file and database. */
  async function secondApp(): Promise<AppContext> {
    const fd = openSync(join(api.dataDir, `second-${others.length}.log`), 'a');
    const app = await openApp({ configPath: join(api.dataDir, 'config.yaml'), env: {}, logDestination: fd });
    others.push({ app, fd });
    return app;
  }

  const patch = (body: unknown, token = root.token) => api.call('PATCH', SETTINGS, { token, body });
  const item = (res: { json: any }, key: string) => res.json.data.find((s: { key: string }) => s.key === key);

  before(async () => {
    api = await startApi();
    root = await api.superAdmin();
    acme = await api.tenant('acme');
  });
  after(async () => {
    for (const o of others) {
      await o.app.close();
      closeSync(o.fd);
    }
    await api.close();
  });

  test('GET lists every reloadable key — and only those — with value, default, description', async () => {
    const res = await api.call('GET', SETTINGS, { token: root.token });
    assert.equal(res.status, 200, res.body);
    const keys = res.json.data.map((s: { key: string }) => s.key);
    assert.deepEqual(keys, reloadableKeys().map((k) => k.key));
    assert.ok(keys.every((k: string) => isReloadable(k.split('.'))));
    for (const k of ['log.level', 'api.rate_limit.per_user_per_minute', 'audit.retention_days', 'audit.file', 'plans', 'default_plan']) assert.ok(keys.includes(k), k);
    for (const k of ['database.url', 'listeners.http.port', 'security.master_key', 'log.format']) assert.ok(!keys.includes(k), `${k} is not reloadable`);
    assert.deepEqual(res.json.pagination, { cursor: null, has_more: false });

    const level = item(res, 'log.level');
    assert.deepEqual(level, {
      key: 'log.level',
      value: 'debug', // the harness's config file
      default: 'info',
      description: 'Lowest level written to the log.',
      overridden: false,
      secret: false,
      updated_at: null,
      updated_by: null,
    });
    assert.deepEqual(item(res, 'plans').value, api.app.config.plans);
  });

  test('only super-admins may read or change settings', async () => {
    const tenantAdmin = await api.call('GET', SETTINGS, { token: acme.admin.token });
    assert.equal(tenantAdmin.status, 403);
    assert.equal(tenantAdmin.json.error.message, 'role tenant_admin may not do this');
    const change = await patch({ 'log.level': 'error' }, acme.admin.token);
    assert.equal(change.status, 403);
    assert.equal(api.app.config.log.level, 'debug');
    assert.equal((await api.call('GET', SETTINGS)).status, 401);
  });

  test('PATCH log.level applies at once (config and logger), is stored, listed as overridden and audited', async () => {
    const res = await patch({ 'log.level': 'warn' });
    assert.equal(res.status, 200, res.body);
    const level = item(res, 'log.level');
    assert.equal(level.value, 'warn');
    assert.equal(level.overridden, true);
    assert.equal(level.updated_by, root.user.id);
    assert.ok(Math.abs(Date.parse(level.updated_at) - Date.now()) < 60_000);
    assert.equal(api.app.config.log.level, 'warn');
    assert.equal(api.app.logger.level, 'warn');

    const row = await api.app.db.kysely.selectFrom('settings').selectAll().where('key', '=', 'log.level').executeTakeFirstOrThrow();
    assert.equal(row.value_json, '"warn"');
    assert.equal(row.updated_by, root.user.id);

    const [audit] = await listAudit(api.app.db, systemScope, { eventType: 'settings.updated', limit: 1 });
    assert.equal(audit.tenantId, null);
    assert.deepEqual(audit.target, { type: 'settings', id: 'config' });
    assert.equal(audit.actor.id, root.user.id);
    assert.deepEqual(audit.metadata.changes, [{ key: 'log.level', from: 'debug', to: 'warn', override_removed: false }]);

    // Rate limits are read per request: a changed limit applies to the next request.
    const rl = await patch({ 'api.rate_limit.admin_per_ip_per_minute': 77777 });
    assert.equal(rl.status, 200);
    assert.equal(api.app.config.api.rate_limit.admin_per_ip_per_minute, 77777);
    const next = await api.call('GET', SETTINGS, { token: root.token });
    assert.equal(next.headers['x-ratelimit-limit'], '77777', 'the admin-route limit now in force is the most constraining rule');
  });

  test('null removes an override: the configuration file applies again', async () => {
    await patch({ 'queue.poll_interval_ms': 250 });
    assert.equal(api.app.config.queue.poll_interval_ms, 250);
    assert.equal(api.app.queue.settings().pollIntervalMs, 250, 'the queue took the new timing');
    const res = await patch({ 'queue.poll_interval_ms': null });
    assert.equal(res.status, 200);
    assert.equal(item(res, 'queue.poll_interval_ms').overridden, false);
    assert.equal(item(res, 'queue.poll_interval_ms').value, 1000);
    assert.equal(api.app.config.queue.poll_interval_ms, 1000);
    assert.equal(await api.app.db.kysely.selectFrom('settings').select('key').where('key', '=', 'queue.poll_interval_ms').executeTakeFirst(), undefined);
  });

  test('keys that are not reloadable (or unknown) are refused with 422 and the key list; nothing changes', async () => {
    const before = JSON.stringify(api.app.config);
    const res = await patch({ 'database.url': 'sqlite:/tmp/elsewhere.db', 'log.level': 'error', 'listeners.http.port': 1, 'no.such.key': 1 });
    assert.equal(res.status, 422, res.body);
    assert.equal(res.json.error.code, 'VALIDATION_ERROR');
    assert.deepEqual(res.json.error.details.keys, ['database.url', 'listeners.http.port', 'no.such.key']);
    assert.match(res.json.error.message, /^not reloadable: database\.url, listeners\.http\.port, no\.such\.key/);
    // A subtree is set as a whole, not key by key.
    const sub = await patch({ 'plans.default.max_users': 5 });
    assert.equal(sub.status, 422);
    assert.deepEqual(sub.json.error.details.keys, ['plans.default.max_users']);
    assert.equal(JSON.stringify(api.app.config), before, 'the valid key of a refused request is not applied either');
  });

  test('invalid values are refused with 422 naming the key; nothing is stored', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ 'log.level': 'loud' }, 'log.level'],
      [{ 'api.rate_limit.per_user_per_minute': 0 }, 'api.rate_limit.per_user_per_minute'],
      [{ 'api.rate_limit.per_user_per_minute': '60' }, 'api.rate_limit.per_user_per_minute'],
      [{ 'audit.retention_days': 90 }, 'audit.retention_days'],
      [{ 'api.cors_origins': ['*'] }, 'api.cors_origins[0]'],
      [{ default_plan: 'platinum' }, 'default_plan'],
      [{ plans: { gold: { max_users: -1 } } }, 'plans.gold.max_users'],
    ];
    const stored = async () => (await api.app.db.kysely.selectFrom('settings').selectAll().orderBy('key').execute()).map((r) => `${r.key}=${r.value_json}`);
    const storedBefore = await stored();
    const before = JSON.stringify(api.app.config);
    for (const [body, path] of cases) {
      const res = await patch(body);
      assert.equal(res.status, 422, `${JSON.stringify(body)}: ${res.body}`);
      assert.equal(res.json.error.code, 'VALIDATION_ERROR');
      assert.equal(res.json.error.message, 'invalid setting value');
      assert.ok(res.json.error.details.errors.some((e: { path: string }) => e.path === path), `${JSON.stringify(body)} → ${res.body}`);
    }
    assert.deepEqual(await stored(), storedBefore);
    assert.equal(JSON.stringify(api.app.config), before);

    const empty = await patch({});
    assert.equal(empty.status, 422);
    const tooMany: Record<string, unknown> = {};
    for (let i = 0; i <= MAX_KEYS_PER_UPDATE; i++) tooMany[`k${i}`] = 1;
    const many = await patch(tooMany);
    assert.equal(many.status, 422);
    assert.equal(many.json.error.details.errors[0].path, '/');
    const longKey = await patch({ ['k'.repeat(MAX_KEY_LENGTH + 1)]: 1 });
    assert.equal(longKey.status, 422);
    assert.equal(longKey.json.error.code, 'VALIDATION_ERROR');
    assert.ok(!longKey.body.includes('k'.repeat(MAX_KEY_LENGTH + 1)), 'the oversized key is not echoed');

    // Cross-key rules hold: a new plan and a default naming it, in one request, are fine.
    const both = await patch({ plans: { default: {}, gold: { max_users: 5 } }, default_plan: 'gold' });
    assert.equal(both.status, 200, both.body);
    assert.equal(api.app.config.default_plan, 'gold');
    assert.equal(api.app.config.plans.gold.max_users, 5);
    assert.equal(api.app.config.plans.gold.max_domains, 100, 'schema defaults filled in');
    assert.equal((await patch({ plans: null, default_plan: null })).status, 200);
    assert.equal(api.app.config.default_plan, 'default');
  });

  test('stored overrides survive a restart: applyStoredOverrides on a new context over the same database', async () => {
    assert.equal((await patch({ 'log.level': 'error', 'api.rate_limit.per_user_per_minute': 4321 })).status, 200);
    const app2 = await secondApp();
    assert.equal(app2.config.log.level, 'debug', 'the file value before overrides are applied');
    await applyStoredOverrides(app2);
    assert.equal(app2.config.log.level, 'error');
    assert.equal(app2.logger.level, 'error');
    assert.equal(app2.config.api.rate_limit.per_user_per_minute, 4321);
    assert.equal(app2.config.api.rate_limit.admin_per_ip_per_minute, 77777);
    // Keys without an override keep the file's value.
    assert.equal(app2.config.queue.poll_interval_ms, 1000);
  });

  test('another node picks a change up within a few seconds (polling the settings table)', async () => {
    const app2 = await secondApp();
    const s2 = await applyStoredOverrides(app2);
    const stop = s2.startSync(200);
    try {
      assert.equal((await patch({ 'log.level': 'info', 'webhooks.max_attempts': 3 })).status, 200);
      const attempts = (): number => app2.config.webhooks.max_attempts;
      const t0 = Date.now();
      while (attempts() !== 3 && Date.now() - t0 < 5000) await sleep(50);
      assert.equal(app2.config.webhooks.max_attempts, 3);
      assert.equal(app2.config.log.level, 'info');
      assert.equal(app2.logger.level, 'info');
      // Removing an override propagates too.
      assert.equal((await patch({ 'webhooks.max_attempts': null })).status, 200);
      const t1 = Date.now();
      while (attempts() !== 8 && Date.now() - t1 < 5000) await sleep(50);
      assert.equal(attempts(), 8);
    } finally {
      stop();
    }
  });

  test('a stored value that no longer validates is ignored at start-up, the others still apply', async () => {
    await api.app.db.kysely
      .insertInto('settings')
      .values({ key: 'retention.purge_interval_minutes', value_json: '0', updated_at: Date.now(), updated_by: null })
      .execute();
    await api.app.db.kysely.insertInto('settings').values({ key: 'database.url', value_json: '"sqlite:/tmp/x.db"', updated_at: Date.now(), updated_by: null }).execute();
    const app3 = await secondApp();
    await applyStoredOverrides(app3);
    assert.equal(app3.config.retention.purge_interval_minutes, 60, 'invalid stored value ignored');
    assert.equal(app3.config.database.url, api.app.config.database.url, 'a non-reloadable stored key is never applied');
    assert.equal(app3.config.log.level, 'info', 'valid overrides still apply');
    const listed = await settingsFor(app3).list();
    assert.equal(listed.find((s) => s.key === 'retention.purge_interval_minutes')!.overridden, false);
  });
});
