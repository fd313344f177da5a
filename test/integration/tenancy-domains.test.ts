import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { systemScope, tenantScope, type Scope } from '../../src/core/scope.js';
import { ConflictError, LimitExceededError, NotFoundError, ValidationError } from '../../src/core/tenancy/errors.js';
import type { Tenant } from '../../src/core/tenancy/types.js';
import { auditRows, caught, tenancyFixture, type TenancyFixture } from '../support/tenancy-fixtures.js';

describe('tenancy: domains', () => {
  let f: TenancyFixture;
  let a: Tenant;
  let b: Tenant;
  let scopeA: Scope;
  let scopeB: Scope;
  before(async () => {
    f = await tenancyFixture();
    a = await f.tenancy.tenants.create(systemScope, { name: 'alpha-corp' });
    b = await f.tenancy.tenants.create(systemScope, { name: 'beta-corp', plan: 'tiny' });
    scopeA = tenantScope(a.id);
    scopeB = tenantScope(b.id);
  });
  after(async () => {
    await f.test.drop();
  });

  test('add normalises the name (case, IDN) and audits', async () => {
    const d = await f.tenancy.domains.add(scopeA, { name: 'Alpha.Example' }, { type: 'user', id: 'u1', email: 'admin@alpha.example', ip: '192.0.2.1' });
    assert.equal(d.name, 'alpha.example');
    assert.equal(d.tenantId, a.id);
    const idn = await f.tenancy.domains.add(systemScope, { tenantId: a.id, name: 'bücher.example' });
    assert.equal(idn.name, 'xn--bcher-kva.example');
    assert.equal((await f.tenancy.domains.get(scopeA, 'BÜCHER.example')).id, idn.id);
    const row = (await auditRows(f.test.db.kysely, 'domain.created')).find((r) => JSON.parse(r.target_json).id === d.id)!;
    assert.deepEqual(JSON.parse(row.actor_json), { type: 'user', id: 'u1', email: 'admin@alpha.example', ip: '192.0.2.1' });
    assert.equal(row.tenant_id, a.id);
  });

  test('the system scope must name a tenant; invalid names are validation errors', async () => {
    assert.ok((await caught(() => f.tenancy.domains.add(systemScope, { name: 'x.example' }))) instanceof ValidationError);
    assert.ok((await caught(() => f.tenancy.domains.add(scopeA, { name: 'not a domain' }))) instanceof ValidationError);
    // A tenant scope naming another tenant: not found.
    assert.ok((await caught(() => f.tenancy.domains.add(scopeA, { tenantId: b.id, name: 'x.example' }))) instanceof NotFoundError);
  });

  test('a second tenant adding the same domain gets CONFLICT without learning the owner', async () => {
    const err = await caught(() => f.tenancy.domains.add(scopeB, { name: 'ALPHA.example.' }));
    assert.ok(err instanceof ConflictError);
    assert.equal(err.code, 'CONFLICT');
    assert.ok(!err.message.includes(a.id) && !err.message.includes(a.name), 'owner not disclosed');
    assert.ok(!JSON.stringify(err.details).includes(a.id));
    // Identical wording to the owner's own duplicate, so the answer carries no extra information.
    const own = await caught(() => f.tenancy.domains.add(scopeA, { name: 'alpha.example' }));
    assert.equal(own.message, err.message);
  });

  test('max_domains is enforced with LimitExceededError (409 CONFLICT)', async () => {
    await f.tenancy.domains.add(scopeB, { name: 'beta.example' });
    const err = await caught(() => f.tenancy.domains.add(scopeB, { name: 'beta2.example' }));
    assert.ok(err instanceof LimitExceededError);
    assert.equal(err.code, 'CONFLICT');
    assert.deepEqual(err.details, { limit: 'max_domains', max: 1, current: 1 });
    // An override lifts it.
    await f.tenancy.tenants.update(systemScope, b.id, { limits: { max_domains: 2 } });
    await f.tenancy.domains.add(scopeB, { name: 'beta2.example' });
  });

  test('another tenant cannot get, list, change or remove the domain: NOT_FOUND', async () => {
    const d = await f.tenancy.domains.get(scopeA, 'alpha.example');
    assert.ok((await caught(() => f.tenancy.domains.get(scopeB, d.id))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.domains.get(scopeB, 'alpha.example'))) instanceof NotFoundError);
    assert.ok(!(await f.tenancy.domains.list(scopeB)).some((x) => x.id === d.id));
    assert.deepEqual((await f.tenancy.domains.list(scopeB, { tenantId: a.id })), []);
    assert.ok((await caught(() => f.tenancy.domains.remove(scopeB, d.id))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.domains.setStatus(scopeB, d.id, 'disabled'))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.domains.setCatchAll(scopeB, d.id, null))) instanceof NotFoundError);
    assert.equal((await f.tenancy.domains.get(systemScope, d.id)).status, 'active');
  });

  test('list is sorted, scoped and pages with after/limit', async () => {
    const all = await f.tenancy.domains.list(systemScope);
    assert.deepEqual(all.map((d) => d.name), ['alpha.example', 'beta.example', 'beta2.example', 'xn--bcher-kva.example']);
    assert.deepEqual((await f.tenancy.domains.list(scopeA)).map((d) => d.name), ['alpha.example', 'xn--bcher-kva.example']);
    const page = await f.tenancy.domains.list(systemScope, { limit: 2, after: 'alpha.example' });
    assert.deepEqual(page.map((d) => d.name), ['beta.example', 'beta2.example']);
    assert.ok((await caught(() => f.tenancy.domains.list(systemScope, { limit: 5000 }))) instanceof ValidationError);
  });

  test('concurrent adds cannot overshoot max_domains, and a raced name has exactly one owner', async () => {
    const t = await f.tenancy.tenants.create(systemScope, { name: 'racer', limits: { max_domains: 1 } });
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => f.tenancy.domains.add(tenantScope(t.id), { name: `race${i}.example` })),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    assert.ok(results.every((r) => r.status === 'fulfilled' || r.reason instanceof LimitExceededError));
    const u = await f.tenancy.tenants.create(systemScope, { name: 'racer2' });
    const v = await f.tenancy.tenants.create(systemScope, { name: 'racer3' });
    const same = await Promise.allSettled([u, v, u, v].map((x) => f.tenancy.domains.add(tenantScope(x.id), { name: 'contested.example' })));
    assert.equal(same.filter((r) => r.status === 'fulfilled').length, 1);
    assert.ok(same.every((r) => r.status === 'fulfilled' || r.reason instanceof ConflictError));
    assert.equal((await f.tenancy.domains.list(systemScope)).filter((d) => d.name === 'contested.example').length, 1);
  });

  test('remove is refused while mailboxes or aliases exist, then succeeds', async () => {
    const m = await f.tenancy.mailboxes.add(scopeA, { address: 'info@alpha.example' });
    await f.tenancy.aliases.add(scopeA, { address: 'hello@alpha.example', targets: ['info@alpha.example'] });
    const err = await caught(() => f.tenancy.domains.remove(scopeA, 'alpha.example'));
    assert.ok(err instanceof ConflictError);
    assert.match(err.message, /1 mailbox\(es\) and 1 alias\(es\)/);
    assert.deepEqual(err.details, { mailboxes: 1, aliases: 1 });
    await f.tenancy.aliases.remove(scopeA, 'hello@alpha.example');
    await f.tenancy.mailboxes.remove(scopeA, m.id);
    await f.tenancy.domains.remove(scopeA, 'alpha.example');
    assert.ok((await caught(() => f.tenancy.domains.get(scopeA, 'alpha.example'))) instanceof NotFoundError);
    assert.equal((await auditRows(f.test.db.kysely, 'domain.removed')).length, 1);
    // The name is free again — for any tenant.
    await f.tenancy.tenants.update(systemScope, b.id, { limits: { max_domains: 3 } });
    assert.equal((await f.tenancy.domains.add(scopeB, { name: 'alpha.example' })).tenantId, b.id);
  });
});
