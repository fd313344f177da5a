/**
 * The hook store (SPEC §6 "Management"): API hooks in the `hooks` table merged with the read-only
 * hooks of the config file, validation with field paths, audit rows, breaker rows removed on delete.
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, type TestDatabase } from '../support/shape.js';
import { HookStore, HookNotFoundError } from '../../src/hooks/store.js';
import { HookConflictError, HookReadOnlyError, HookValidationError } from '../../src/hooks/runtime-types.js';
import { CircuitBreaker } from '../../src/hooks/circuit-breaker.js';
import { DatabaseBreakerStore } from '../../src/hooks/breaker-store.js';
import { cliActor } from '../../src/security/audit.js';

const PLUGIN = 'com.example.spam';
const OTHER = 'com.example.other';
let tdb: TestDatabase;
let definitions: unknown[] = [];
const warnings: Array<{ obj: object; msg: string }> = [];
let clock = 1_800_000_000_000;

function makeStore(): HookStore {
  return new HookStore({
    db: tdb.db,
    config: () => ({ hooks: { definitions } }),
    pluginExists: async (id) => id === PLUGIN || id === OTHER,
    logger: { warn: (obj, msg) => warnings.push({ obj, msg }) },
    now: () => clock,
  });
}

async function validationIssues(p: Promise<unknown>): Promise<Array<{ path: string; message: string }>> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof HookValidationError, `expected HookValidationError, got ${String(err)}`);
    return err.issues;
  }
  assert.fail('expected a validation error');
}

before(async () => {
  tdb = await freshDatabase();
});
after(async () => {
  await tdb?.drop();
});
beforeEach(async () => {
  await tdb.db.kysely.deleteFrom('hooks').execute();
  await tdb.db.kysely.deleteFrom('hook_breakers').execute();
  definitions = [];
  warnings.length = 0;
  clock += 10_000;
});

test('create, get, list, update, delete an API hook, each audited', async () => {
  const store = makeStore();
  const created = await store.create({ id: 'spam', type: 'pre_receive', plugin_id: PLUGIN, tenant_id: 'tenant-a' }, cliActor);
  assert.equal(created.source, 'api');
  assert.equal(created.timeout_ms, 2000, 'pre_receive default timeout');
  assert.equal(created.on_timeout, 'tempfail');
  assert.equal(created.on_error, 'allow');
  assert.equal(created.priority, 100);
  assert.deepEqual(created.circuit_breaker, { on_open: 'skip' });
  assert.equal(created.createdAt, clock);

  // A second store (another node, or after restart) reads the same from the table.
  const fresh = makeStore();
  const got = await fresh.get('spam');
  assert.ok(got);
  assert.equal(got.plugin_id, PLUGIN);
  assert.equal(got.tenant_id, 'tenant-a');
  assert.equal(got.requires_before_policy, false);
  assert.deepEqual((await fresh.list({ tenantId: 'tenant-a' })).map((h) => h.id), ['spam']);
  assert.deepEqual(await fresh.list({ tenantId: null }), []);
  assert.deepEqual((await fresh.list({ type: 'pre_receive', pluginId: PLUGIN })).map((h) => h.id), ['spam']);
  assert.deepEqual(await fresh.list({ type: 'post_receive' }), []);

  clock += 1000;
  const updated = await store.update('spam', { type: 'pre_receive', plugin_id: PLUGIN, tenant_id: 'tenant-a', priority: 5, timeout_ms: 2500 }, cliActor);
  assert.equal(updated.priority, 5);
  assert.equal(updated.timeout_ms, 2500);
  assert.equal((await store.get('spam'))?.priority, 5, 'the local cache is cleared by a change');
  assert.equal((await store.get('spam'))?.updatedAt, clock);

  await assert.rejects(store.update('nope', { type: 'pre_receive', plugin_id: PLUGIN }, cliActor), HookNotFoundError);
  const idIssues = await validationIssues(store.update('spam', { id: 'other', type: 'pre_receive', plugin_id: PLUGIN }, cliActor));
  assert.equal(idIssues[0].path, 'id');

  assert.equal(await store.delete('spam', cliActor), true);
  assert.equal(await store.get('spam'), null);
  assert.equal(await store.delete('spam', cliActor), false);

  // The audit log is append-only: only this test's hook is looked at.
  const audit = (await tdb.db.kysely.selectFrom('audit_log').selectAll().where('event_type', 'like', 'hook.%').orderBy('id').execute()).filter(
    (r) => JSON.parse(r.target_json).id === 'spam',
  );
  assert.deepEqual(audit.map((r) => r.event_type), ['hook.created', 'hook.updated', 'hook.deleted']);
  for (const r of audit) {
    assert.equal(r.tenant_id, 'tenant-a');
    assert.deepEqual(JSON.parse(r.target_json), { type: 'hook', id: 'spam' });
    assert.equal(JSON.parse(r.actor_json).type, 'cli');
  }
  const changed = JSON.parse(audit[1].metadata_json).changed as string[];
  assert.deepEqual(changed, ['priority', 'timeout_ms']);
});

test('validation errors carry field paths', async () => {
  const store = makeStore();
  const timeout = await validationIssues(store.create({ id: 'h1', type: 'pre_receive', plugin_id: PLUGIN, timeout_ms: 3001 }, cliActor));
  assert.equal(timeout[0].path, 'timeout_ms');
  assert.match(timeout[0].message, /hard maximum of 3000 ms/);

  const policy = await validationIssues(store.create({ id: 'h2', type: 'pre_receive', plugin_id: PLUGIN, requires_before_policy: true }, cliActor));
  assert.deepEqual(policy.map((i) => i.path), ['requires_before_policy']);

  const regex = await validationIssues(store.create({ id: 'h3', type: 'pre_delivery', plugin_id: PLUGIN, filter: { subject_matches: '(a+)+$' } }, cliActor));
  assert.deepEqual(regex.map((i) => i.path), ['filter.subject_matches']);

  const missing = await validationIssues(store.create({ id: 'h4', type: 'pre_send', plugin_id: 'com.example.absent' }, cliActor));
  assert.deepEqual(missing.map((i) => i.path), ['plugin_id']);
  assert.match(missing[0].message, /not installed/);

  const unknown = await validationIssues(store.create({ id: 'h5', type: 'pre_send', plugin_id: PLUGIN, bogus: 1 }, cliActor));
  assert.deepEqual(unknown.map((i) => i.path), ['bogus']);

  // requires_before_policy is fine on pre_send, and survives a round trip.
  const ok = await store.create({ id: 'h6', type: 'pre_send', plugin_id: PLUGIN, requires_before_policy: true }, cliActor);
  assert.equal(ok.requires_before_policy, true);
  assert.equal((await makeStore().get('h6'))?.requires_before_policy, true);
  assert.deepEqual((await makeStore().list()).map((h) => h.id), ['h6']);
});

test('config hooks are merged, read-only, and their ids are taken', async () => {
  definitions = [
    { id: 'cfg-global', type: 'pre_delivery', plugin_id: PLUGIN, priority: 50 },
    { id: 'cfg-bad', type: 'pre_delivery', plugin_id: PLUGIN, timeout_ms: 999_999 },
    { id: 'cfg-global', type: 'pre_delivery', plugin_id: OTHER },
  ];
  const store = makeStore();
  const all = await store.list();
  assert.deepEqual(all.map((h) => [h.id, h.source]), [['cfg-global', 'config']]);
  assert.equal(all[0].createdAt, null);
  assert.equal(all[0].plugin_id, PLUGIN, 'the first of two duplicate ids wins');
  assert.ok(warnings.some((w) => /invalid hook skipped/.test(w.msg)));
  assert.ok(warnings.some((w) => /duplicate hook id/.test(w.msg)));

  await assert.rejects(store.update('cfg-global', { type: 'pre_delivery', plugin_id: PLUGIN }, cliActor), HookReadOnlyError);
  await assert.rejects(store.delete('cfg-global', cliActor), HookReadOnlyError);
  await assert.rejects(store.create({ id: 'cfg-global', type: 'pre_delivery', plugin_id: PLUGIN }, cliActor), HookConflictError);

  await store.create({ id: 'api-1', type: 'pre_delivery', plugin_id: PLUGIN }, cliActor);
  await assert.rejects(store.create({ id: 'api-1', type: 'pre_receive', plugin_id: OTHER }, cliActor), HookConflictError);

  // A reload replaces the array: it is validated again.
  definitions = [{ id: 'cfg-2', type: 'post_receive', plugin_id: OTHER }];
  const after = await store.list();
  assert.deepEqual(after.map((h) => h.id).sort(), ['api-1', 'cfg-2']);
  assert.deepEqual(after.find((h) => h.id === 'cfg-2')?.retry, { max_attempts: 3, backoff_seconds: [30, 120, 600] });
});

test('active(): enabled hooks of the type, global and of the given tenants, by priority then id', async () => {
  definitions = [
    { id: 'c-glob', type: 'pre_receive', plugin_id: PLUGIN, priority: 10 },
    { id: 'c-off', type: 'pre_receive', plugin_id: PLUGIN, priority: 1, enabled: false },
  ];
  const store = makeStore();
  await store.create({ id: 'b-tenant-a', type: 'pre_receive', plugin_id: PLUGIN, tenant_id: 'tenant-a', priority: 10 }, cliActor);
  await store.create({ id: 'a-tenant-a', type: 'pre_receive', plugin_id: OTHER, tenant_id: 'tenant-a', priority: 10 }, cliActor);
  await store.create({ id: 'z-first', type: 'pre_receive', plugin_id: PLUGIN, priority: 0 }, cliActor);
  await store.create({ id: 'tenant-b', type: 'pre_receive', plugin_id: PLUGIN, tenant_id: 'tenant-b', priority: 5 }, cliActor);
  await store.create({ id: 'other-type', type: 'pre_delivery', plugin_id: PLUGIN }, cliActor);

  assert.deepEqual((await store.active('pre_receive', ['tenant-a'])).map((h) => h.id), ['z-first', 'a-tenant-a', 'b-tenant-a', 'c-glob']);
  assert.deepEqual((await store.active('pre_receive', ['tenant-a', 'tenant-b'])).map((h) => h.id), ['z-first', 'tenant-b', 'a-tenant-a', 'b-tenant-a', 'c-glob']);
  assert.deepEqual((await store.active('pre_receive', [])).map((h) => h.id), ['z-first', 'c-glob']);
  assert.deepEqual((await store.active('pre_delivery', ['tenant-a'])).map((h) => h.id), ['other-type']);
});

test('reads are cached at most 2 s; another node sees a change after that', async () => {
  const reader = makeStore();
  const writer = makeStore();
  assert.deepEqual(await reader.active('pre_send', []), []);
  await writer.create({ id: 'late', type: 'pre_send', plugin_id: PLUGIN }, cliActor);
  assert.deepEqual(await reader.active('pre_send', []), [], 'still cached');
  clock += 2_001;
  assert.deepEqual((await reader.active('pre_send', [])).map((h) => h.id), ['late']);
});

test('delete removes the hook breaker rows; changing the plugin drops the old pair', async () => {
  const store = makeStore();
  const breaker = new CircuitBreaker(new DatabaseBreakerStore(tdb.db));
  await store.create({ id: 'br', type: 'pre_receive', plugin_id: PLUGIN }, cliActor);
  await store.create({ id: 'keep', type: 'pre_receive', plugin_id: PLUGIN }, cliActor);
  for (const hookId of ['br', 'keep']) await breaker.record({ hookId, pluginId: PLUGIN, hookType: 'pre_receive' }, 'failure', clock);
  const rows = async () => (await tdb.db.kysely.selectFrom('hook_breakers').select(['hook_id', 'plugin_id']).orderBy('hook_id').execute()).map((r) => `${r.hook_id}/${r.plugin_id}`);
  assert.deepEqual(await rows(), [`br/${PLUGIN}`, `keep/${PLUGIN}`]);

  await store.update('keep', { type: 'pre_receive', plugin_id: OTHER }, cliActor);
  assert.deepEqual(await rows(), [`br/${PLUGIN}`]);
  await store.delete('br', cliActor);
  assert.deepEqual(await rows(), []);
});
