import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../src/core/tenancy/errors.js';
import { TenancyService } from '../../src/core/tenancy/service.js';
import { listAudit } from '../../src/security/audit.js';
import { auditRows, caught, insertSixFolders, plans, tenancyFixture, type TenancyFixture } from '../support/tenancy-fixtures.js';

describe('tenancy: tenants', () => {
  let f: TenancyFixture;
  before(async () => {
    f = await tenancyFixture();
  });
  after(async () => {
    await f.test.drop();
  });

  test('create uses the default plan, stores overrides and writes an audit row', async () => {
    const t = await f.tenancy.tenants.create(systemScope, { name: 'acme', limits: { max_users: 3 } }, { type: 'cli' });
    assert.equal(t.plan, 'default');
    assert.equal(t.status, 'active');
    assert.deepEqual(t.limits, { max_users: 3 });
    assert.deepEqual(await f.tenancy.tenants.get(systemScope, 'acme'), t);
    assert.deepEqual(await f.tenancy.tenants.get(systemScope, t.id), t);
    const rows = await auditRows(f.test.db.kysely, 'tenant.created');
    const row = rows.find((r) => JSON.parse(r.target_json).id === t.id)!;
    assert.ok(row, 'audit row written');
    assert.equal(row.tenant_id, t.id);
    assert.deepEqual(JSON.parse(row.actor_json), { type: 'cli' });
    assert.equal(JSON.parse(row.metadata_json).name, 'acme');
  });

  test('effectiveLimits = plan ⊕ overrides', async () => {
    const t = await f.tenancy.tenants.get(systemScope, 'acme');
    assert.deepEqual(f.tenancy.effectiveLimits(t), { ...plans.default, max_users: 3 });
  });

  test('names are unique, validated, and the plan must exist', async () => {
    assert.ok((await caught(() => f.tenancy.tenants.create(systemScope, { name: 'acme' }))) instanceof ConflictError);
    const bad = await caught(() => f.tenancy.tenants.create(systemScope, { name: 'x', plan: 'gold' }));
    assert.ok(bad instanceof ValidationError);
    assert.match(bad.message, /unknown plan "gold".*default, tiny/);
    assert.ok((await caught(() => f.tenancy.tenants.create(systemScope, { name: '' }))) instanceof ValidationError);
    assert.ok((await caught(() => f.tenancy.tenants.create(systemScope, { name: 'a\nb' }))) instanceof ValidationError);
    assert.ok((await caught(() => f.tenancy.tenants.create(systemScope, { name: '0b5c2f0e-1c1a-4d0e-9c1e-3a1b2c3d4e5f' }))) instanceof ValidationError);
    const unknownLimit = await caught(() => f.tenancy.tenants.create(systemScope, { name: 'y', limits: { max_cats: 1 } }));
    assert.match(unknownLimit.message, /unknown limit "max_cats"/);
  });

  test('update changes plan and limits (null removes an override)', async () => {
    const t = await f.tenancy.tenants.update(systemScope, 'acme', { plan: 'tiny', limits: { max_users: null, max_domains: 4 } });
    assert.equal(t.plan, 'tiny');
    assert.deepEqual(t.limits, { max_domains: 4 });
    assert.deepEqual(f.tenancy.effectiveLimits(t), { ...plans.tiny, max_domains: 4 });
    assert.equal((await auditRows(f.test.db.kysely, 'tenant.updated')).length, 1);
    await f.tenancy.tenants.update(systemScope, 'acme', { plan: 'default', limits: { max_domains: null } });
  });

  test('setStatus suspends, soft-deletes and restores', async () => {
    const t = await f.tenancy.tenants.create(systemScope, { name: 'gone' });
    assert.equal((await f.tenancy.tenants.setStatus(systemScope, t.id, 'suspended')).status, 'suspended');
    const deleted = await f.tenancy.tenants.setStatus(systemScope, t.id, 'deleted');
    assert.equal(deleted.status, 'deleted');
    assert.ok(deleted.deletedAt && deleted.deletedAt <= Date.now());
    assert.ok(!(await f.tenancy.tenants.list(systemScope)).some((x) => x.id === t.id), 'deleted tenants hidden by default');
    assert.ok((await f.tenancy.tenants.list(systemScope, { includeDeleted: true })).some((x) => x.id === t.id));
    // A deleted tenant accepts no new rows until restored.
    const refused = await caught(() => f.tenancy.domains.add(systemScope, { tenantId: t.id, name: 'gone.example' }));
    assert.ok(refused instanceof ConflictError);
    assert.match(refused.message, /deleted/);
    const restored = await f.tenancy.tenants.setStatus(systemScope, t.id, 'active');
    assert.equal(restored.deletedAt, null);
    const events = (await listAudit(f.test.db, tenantScope(t.id))).map((r) => r.eventType);
    assert.deepEqual(events, ['tenant.activated', 'tenant.deleted', 'tenant.suspended', 'tenant.created']);
  });

  test('a tenant scope sees only its own tenant and may not create, change or suspend tenants', async () => {
    const a = await f.tenancy.tenants.get(systemScope, 'acme');
    const b = await f.tenancy.tenants.create(systemScope, { name: 'bravo' });
    const scopeA = tenantScope(a.id);
    assert.deepEqual((await f.tenancy.tenants.list(scopeA)).map((t) => t.id), [a.id]);
    assert.ok((await caught(() => f.tenancy.tenants.get(scopeA, b.id))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.tenants.get(scopeA, 'bravo'))) instanceof NotFoundError);
    // Another tenant: not found (existence hidden); own tenant: forbidden.
    assert.ok((await caught(() => f.tenancy.tenants.update(scopeA, b.id, { plan: 'tiny' }))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.tenants.setStatus(scopeA, b.id, 'suspended'))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.tenants.update(scopeA, a.id, { limits: { max_users: 9999 } }))) instanceof ForbiddenError);
    assert.ok((await caught(() => f.tenancy.tenants.create(scopeA, { name: 'sneaky' }))) instanceof ForbiddenError);
    assert.equal((await f.tenancy.tenants.get(systemScope, 'bravo')).plan, 'default');
  });

  test('usage counts rows against the effective limits', async () => {
    const u = await f.tenancy.tenants.usage(systemScope, 'bravo');
    assert.deepEqual({ users: u.users, domains: u.domains, mailboxes: u.mailboxes, aliases: u.aliases }, { users: 0, domains: 0, mailboxes: 0, aliases: 0 });
    assert.equal(u.limits.max_domains, plans.default.max_domains);
  });

  test('setPlans reloads plans; an unknown default plan is refused', async () => {
    const svc = new TenancyService({ db: f.test.db, plans, defaultPlan: 'default', createDefaultFolders: insertSixFolders });
    assert.throws(() => svc.setPlans(plans, 'gold'), /default_plan "gold"/);
    svc.setPlans({ default: { ...plans.default, max_users: 77 } }, 'default');
    const t = await svc.tenants.get(systemScope, 'acme');
    assert.equal(svc.effectiveLimits(t).max_users, 77);
    assert.throws(() => new TenancyService({ db: f.test.db, plans, defaultPlan: 'nope', createDefaultFolders: insertSixFolders }), /default_plan/);
  });
});
