import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { systemScope, tenantScope, type Scope } from '../../src/core/scope.js';
import { ConflictError, ForbiddenError, LimitExceededError, NotFoundError, ValidationError } from '../../src/core/tenancy/errors.js';
import type { Tenant } from '../../src/core/tenancy/types.js';
import { canManageDomain } from '../../src/core/tenancy/roles.js';
import { auditRows, caught, tenancyFixture, type TenancyFixture } from '../support/tenancy-fixtures.js';

const PW = 'correct horse battery';

describe('tenancy: users', () => {
  let f: TenancyFixture;
  let a: Tenant;
  let b: Tenant;
  let scopeA: Scope;
  let scopeB: Scope;
  before(async () => {
    f = await tenancyFixture();
    a = await f.tenancy.tenants.create(systemScope, { name: 'alpha' });
    b = await f.tenancy.tenants.create(systemScope, { name: 'beta', plan: 'tiny' });
    scopeA = tenantScope(a.id);
    scopeB = tenantScope(b.id);
    await f.tenancy.domains.add(scopeA, { name: 'alpha.example' });
    await f.tenancy.domains.add(scopeB, { name: 'beta.example' });
  });
  after(async () => {
    await f.test.drop();
  });

  test('add normalises the e-mail, hashes the password and never returns the hash', async () => {
    const u = await f.tenancy.users.add(scopeA, { email: 'Alice@Alpha.Example', password: PW, displayName: ' Alice ' });
    assert.equal(u.email, 'alice@alpha.example');
    assert.equal(u.role, 'user');
    assert.equal(u.displayName, 'Alice');
    assert.ok(!JSON.stringify(u).includes('argon2'), 'no hash in the view');
    assert.ok(!('passwordHash' in u) && !('password_hash' in u));
    const row = await f.test.db.kysely.selectFrom('users').selectAll().where('id', '=', u.id).executeTakeFirstOrThrow();
    assert.match(row.password_hash, /^\$argon2id\$/);
    const audit = (await auditRows(f.test.db.kysely, 'user.created')).find((r) => JSON.parse(r.target_json).id === u.id)!;
    assert.ok(!audit.metadata_json.includes('argon2') && !audit.metadata_json.includes(PW), 'no secret in the audit row');
  });

  test('password policy, duplicate e-mail and foreign domains are refused clearly', async () => {
    const short = await caught(() => f.tenancy.users.add(scopeA, { email: 'bob@alpha.example', password: 'short' }));
    assert.ok(short instanceof ValidationError);
    assert.match(short.message, /at least 12 characters/);
    const dup = await caught(() => f.tenancy.users.add(scopeA, { email: 'ALICE@alpha.example', password: PW }));
    assert.ok(dup instanceof ConflictError);
    // Tenant B cannot take a login name on tenant A's hosted domain.
    const squat = await caught(() => f.tenancy.users.add(scopeB, { email: 'ceo@alpha.example', password: PW }));
    assert.ok(squat instanceof ValidationError);
    assert.match(squat.message, /hosted by another tenant/);
    assert.ok(!squat.message.includes(a.id), 'owner not disclosed');
    // A login e-mail need not be hosted, and may use a single-label domain.
    const ext = await f.tenancy.users.add(scopeB, { email: 'ops@localhost', password: PW });
    assert.equal(ext.email, 'ops@localhost');
    const role = await caught(() => f.tenancy.users.add(scopeA, { email: 'x@alpha.example', password: PW, role: 'root' as never }));
    assert.match(role.message, /unknown role "root"/);
  });

  test('max_users is enforced with LimitExceededError', async () => {
    await f.tenancy.users.add(scopeB, { email: 'b1@beta.example', password: PW });
    const err = await caught(() => f.tenancy.users.add(scopeB, { email: 'b2@beta.example', password: PW }));
    assert.ok(err instanceof LimitExceededError);
    assert.deepEqual(err.details, { limit: 'max_users', max: 2, current: 2 });
  });

  test("a tenant_admin's scope cannot create, promote to or touch a super_admin", async () => {
    const err = await caught(() => f.tenancy.users.add(scopeA, { email: 'root@alpha.example', password: PW, role: 'super_admin' }));
    assert.ok(err instanceof ForbiddenError);
    assert.equal(err.code, 'FORBIDDEN');
    const sa = await f.tenancy.users.add(systemScope, { tenantId: a.id, email: 'root@alpha.example', password: PW, role: 'super_admin' });
    const alice = await f.tenancy.users.get(scopeA, 'alice@alpha.example');
    assert.ok((await caught(() => f.tenancy.users.update(scopeA, alice.id, { role: 'super_admin' }))) instanceof ForbiddenError);
    assert.ok((await caught(() => f.tenancy.users.update(scopeA, sa.id, { displayName: 'x' }))) instanceof ForbiddenError);
    assert.ok((await caught(() => f.tenancy.users.setPassword(scopeA, sa.id, 'another good password'))) instanceof ForbiddenError);
    assert.ok((await caught(() => f.tenancy.users.resetPassword(scopeA, sa.id))) instanceof ForbiddenError);
    assert.ok((await caught(() => f.tenancy.users.remove(scopeA, sa.id))) instanceof ForbiddenError);
    // …and the last active super-admin cannot be removed, demoted or disabled at all.
    assert.match((await caught(() => f.tenancy.users.remove(systemScope, sa.id))).message, /last active super-admin/);
    assert.match((await caught(() => f.tenancy.users.update(systemScope, sa.id, { role: 'user' }))).message, /last active super-admin/);
    assert.match((await caught(() => f.tenancy.users.update(systemScope, sa.id, { status: 'disabled' }))).message, /last active super-admin/);
  });

  test('domain_admin has a domain scope of its own tenant only', async () => {
    const d = await f.tenancy.domains.get(scopeA, 'alpha.example');
    const da = await f.tenancy.users.add(scopeA, { email: 'dadmin@alpha.example', password: PW, role: 'domain_admin', domainScope: ['alpha.example'] });
    assert.deepEqual(da.domainScope, [d.id]);
    assert.equal(canManageDomain(da, d.id), true);
    assert.equal(canManageDomain(da, 'other'), false);
    assert.ok((await caught(() => f.tenancy.users.add(scopeA, { email: 'd2@alpha.example', password: PW, role: 'domain_admin' }))) instanceof ValidationError);
    assert.ok((await caught(() => f.tenancy.users.add(scopeA, { email: 'd3@alpha.example', password: PW, role: 'domain_admin', domainScope: ['beta.example'] }))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.users.add(scopeA, { email: 'd4@alpha.example', password: PW, role: 'user', domainScope: ['alpha.example'] }))) instanceof ValidationError);
    const demoted = await f.tenancy.users.update(scopeA, da.id, { role: 'user' });
    assert.deepEqual(demoted.domainScope, []);
  });

  test('setPassword enforces the policy and refuses the last 5 passwords', async () => {
    const u = await f.tenancy.users.add(scopeA, { email: 'rotate@alpha.example', password: 'password-number-0' });
    for (let i = 1; i <= 5; i++) await f.tenancy.users.setPassword(scopeA, u.id, `password-number-${i}`);
    // Current is #5; #1..#5 are the last five.
    for (const i of [5, 4, 1]) {
      const err = await caught(() => f.tenancy.users.setPassword(scopeA, u.id, `password-number-${i}`));
      assert.ok(err instanceof ValidationError, `#${i} refused`);
      assert.match(err.message, /last 5/);
    }
    await f.tenancy.users.setPassword(scopeA, u.id, 'password-number-0'); // #0 is six changes old
    assert.ok(await f.tenancy.authenticate(systemScope, 'rotate@alpha.example', 'password-number-0'));
    const row = await f.test.db.kysely.selectFrom('users').select('password_history_json').where('id', '=', u.id).executeTakeFirstOrThrow();
    assert.equal(JSON.parse(row.password_history_json).length, 4);
    assert.equal((await auditRows(f.test.db.kysely, 'user.password_changed')).filter((r) => JSON.parse(r.target_json).id === u.id).length, 6);
    assert.ok((await caught(() => f.tenancy.users.setPassword(scopeA, u.id, 'short'))) instanceof ValidationError);
  });

  test('authenticate: right password, wrong password, unknown user, disabled user, suspended tenant', async () => {
    const ok = await f.tenancy.authenticate(systemScope, 'ALICE@alpha.example', PW);
    assert.equal(ok?.email, 'alice@alpha.example');
    assert.ok(!JSON.stringify(ok).includes('argon2'));
    assert.equal(await f.tenancy.authenticate(systemScope, 'alice@alpha.example', 'wrong password!!'), null);
    assert.equal(await f.tenancy.authenticate(systemScope, 'nobody@alpha.example', PW), null);
    assert.equal(await f.tenancy.authenticate(systemScope, 'not an address', PW), null);
    // A tenant scope cannot log in another tenant's user.
    assert.equal(await f.tenancy.authenticate(scopeB, 'alice@alpha.example', PW), null);
    await f.tenancy.users.update(scopeA, 'alice@alpha.example', { status: 'disabled' });
    assert.equal(await f.tenancy.authenticate(systemScope, 'alice@alpha.example', PW), null);
    await f.tenancy.users.update(scopeA, 'alice@alpha.example', { status: 'active' });
    await f.tenancy.tenants.setStatus(systemScope, a.id, 'suspended');
    assert.equal(await f.tenancy.authenticate(systemScope, 'alice@alpha.example', PW), null);
    await f.tenancy.tenants.setStatus(systemScope, a.id, 'active');
    assert.ok(await f.tenancy.authenticate(systemScope, 'alice@alpha.example', PW));
  });

  test('resetPassword returns a generated password once and audits admin.password_reset', async () => {
    const { user, password } = await f.tenancy.users.resetPassword(systemScope, 'alice@alpha.example', { type: 'cli' });
    assert.ok(password.length >= 20);
    assert.equal(await f.tenancy.authenticate(systemScope, user.email, PW), null);
    assert.ok(await f.tenancy.authenticate(systemScope, user.email, password));
    const rows = await auditRows(f.test.db.kysely, 'admin.password_reset');
    assert.equal(rows.length, 1);
    assert.deepEqual(JSON.parse(rows[0].actor_json), { type: 'cli' });
    assert.ok(!rows[0].metadata_json.includes(password));
  });

  test('another tenant cannot get, list, update or remove the user: NOT_FOUND', async () => {
    const alice = await f.tenancy.users.get(scopeA, 'alice@alpha.example');
    assert.ok((await caught(() => f.tenancy.users.get(scopeB, alice.id))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.users.get(scopeB, 'alice@alpha.example'))) instanceof NotFoundError);
    assert.ok(!(await f.tenancy.users.list(scopeB)).some((u) => u.id === alice.id));
    assert.ok((await caught(() => f.tenancy.users.update(scopeB, alice.id, { displayName: 'pwned' }))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.users.setPassword(scopeB, alice.id, 'pwned password 1'))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.users.resetPassword(scopeB, alice.id))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.users.remove(scopeB, alice.id))) instanceof NotFoundError);
    assert.equal((await f.tenancy.users.get(scopeA, alice.id)).displayName, 'Alice');
  });

  test('remove detaches owned mailboxes and audits', async () => {
    const u = await f.tenancy.users.add(scopeA, { email: 'leaver@alpha.example', password: PW });
    const m = await f.tenancy.mailboxes.add(scopeA, { address: 'leaver@alpha.example', user: u.email });
    assert.equal(m.userId, u.id);
    await f.tenancy.users.remove(scopeA, u.email);
    assert.ok((await caught(() => f.tenancy.users.get(scopeA, u.id))) instanceof NotFoundError);
    assert.equal((await f.tenancy.mailboxes.get(scopeA, m.id)).userId, null);
    const row = (await auditRows(f.test.db.kysely, 'user.removed')).find((r) => JSON.parse(r.target_json).id === u.id)!;
    assert.equal(JSON.parse(row.metadata_json).detached_mailboxes, 1);
  });
});
