import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { systemScope, tenantScope, type Scope } from '../../src/core/scope.js';
import { ConflictError, NotFoundError, ValidationError } from '../../src/core/tenancy/errors.js';
import type { Mailbox, Tenant } from '../../src/core/tenancy/types.js';
import { auditRows, caught, tenancyFixture, type TenancyFixture } from '../support/tenancy-fixtures.js';

describe('tenancy: aliases and recipient resolution', () => {
  let f: TenancyFixture;
  let a: Tenant;
  let b: Tenant;
  let scopeA: Scope;
  let scopeB: Scope;
  let alice: Mailbox;
  let carol: Mailbox;
  let bob: Mailbox;
  before(async () => {
    f = await tenancyFixture();
    a = await f.tenancy.tenants.create(systemScope, { name: 'alpha' });
    b = await f.tenancy.tenants.create(systemScope, { name: 'beta' });
    scopeA = tenantScope(a.id);
    scopeB = tenantScope(b.id);
    await f.tenancy.domains.add(scopeA, { name: 'alpha.example' });
    await f.tenancy.domains.add(scopeA, { name: 'alpha2.example' });
    await f.tenancy.domains.add(scopeB, { name: 'beta.example' });
    alice = await f.tenancy.mailboxes.add(scopeA, { address: 'alice@alpha.example' });
    carol = await f.tenancy.mailboxes.add(scopeA, { address: 'carol@alpha.example' });
    bob = await f.tenancy.mailboxes.add(scopeB, { address: 'bob@beta.example' });
  });
  after(async () => {
    await f.test.drop();
  });

  test('add expands to several mailboxes (deduplicated, sorted) and audits', async () => {
    const al = await f.tenancy.aliases.add(scopeA, { address: 'Team@alpha.example', targets: ['carol@alpha.example', 'ALICE@alpha.example', alice.id] }, { type: 'cli' });
    assert.equal(al.address, 'team@alpha.example');
    assert.deepEqual(al.targets, [{ mailboxId: alice.id, address: alice.address }, { mailboxId: carol.id, address: carol.address }]);
    assert.deepEqual(await f.tenancy.aliases.get(scopeA, 'team@alpha.example'), al);
    assert.deepEqual((await f.tenancy.aliases.list(scopeA)).map((x) => x.address), ['team@alpha.example']);
    const meta = JSON.parse((await auditRows(f.test.db.kysely, 'alias.created'))[0].metadata_json);
    assert.deepEqual(meta.targets, ['alice@alpha.example', 'carol@alpha.example']);
    // Cross-domain within a tenant is fine.
    await f.tenancy.aliases.add(scopeA, { address: 'alice@alpha2.example', targets: ['alice@alpha.example'] });
  });

  test('target bounds: at least 1, at most 100, all mailboxes of the same tenant', async () => {
    assert.match((await caught(() => f.tenancy.aliases.add(scopeA, { address: 'none@alpha.example', targets: [] }))).message, /at least one target/);
    const many = Array.from({ length: 101 }, (_, i) => `m${i}@alpha.example`);
    const tooMany = await caught(() => f.tenancy.aliases.add(scopeA, { address: 'many@alpha.example', targets: many }));
    assert.ok(tooMany instanceof ValidationError);
    assert.match(tooMany.message, /at most 100 targets \(got 101\)/);
    const unknown = await caught(() => f.tenancy.aliases.add(scopeA, { address: 'x@alpha.example', targets: ['alice@alpha.example', 'ghost@alpha.example'] }));
    assert.ok(unknown instanceof ValidationError);
    assert.deepEqual(unknown.details?.unknown, ['ghost@alpha.example']);
    // Another tenant's mailbox is reported exactly like a missing one.
    const foreign = await caught(() => f.tenancy.aliases.add(scopeA, { address: 'x@alpha.example', targets: ['bob@beta.example'] }));
    assert.ok(foreign instanceof ValidationError);
    assert.deepEqual(foreign.details?.unknown, ['bob@beta.example']);
    const foreignId = await caught(() => f.tenancy.aliases.add(systemScope, { address: 'x@alpha.example', targets: [bob.id] }));
    assert.deepEqual(foreignId.details?.unknown, [bob.id]);
  });

  test('address must be on a tenant domain and must not collide', async () => {
    assert.ok((await caught(() => f.tenancy.aliases.add(scopeA, { address: 'x@beta.example', targets: ['alice@alpha.example'] }))) instanceof NotFoundError);
    const clash = await caught(() => f.tenancy.aliases.add(scopeA, { address: 'carol@alpha.example', targets: ['alice@alpha.example'] }));
    assert.ok(clash instanceof ConflictError);
    assert.match(clash.message, /already a mailbox/);
    assert.ok((await caught(() => f.tenancy.aliases.add(scopeA, { address: 'team@alpha.example', targets: ['alice@alpha.example'] }))) instanceof ConflictError);
  });

  test('setTargets replaces the list', async () => {
    const al = await f.tenancy.aliases.setTargets(scopeA, 'team@alpha.example', ['carol@alpha.example']);
    assert.deepEqual(al.targets.map((t) => t.address), ['carol@alpha.example']);
    await f.tenancy.aliases.setTargets(scopeA, 'team@alpha.example', ['alice@alpha.example', 'carol@alpha.example']);
  });

  test('another tenant cannot get, list, change or remove the alias: NOT_FOUND', async () => {
    const al = await f.tenancy.aliases.get(scopeA, 'team@alpha.example');
    assert.ok((await caught(() => f.tenancy.aliases.get(scopeB, al.id))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.aliases.get(scopeB, al.address))) instanceof NotFoundError);
    assert.deepEqual(await f.tenancy.aliases.list(scopeB), []);
    assert.ok((await caught(() => f.tenancy.aliases.setTargets(scopeB, al.id, ['bob@beta.example']))) instanceof NotFoundError);
    assert.ok((await caught(() => f.tenancy.aliases.remove(scopeB, al.id))) instanceof NotFoundError);
    assert.equal((await f.tenancy.aliases.get(scopeA, al.id)).targets.length, 2);
  });

  test('resolveRecipient: exact mailbox (case-insensitive, angle brackets)', async () => {
    assert.deepEqual(await f.tenancy.resolveRecipient(systemScope, '<Alice@ALPHA.example>'), {
      tenantId: a.id, mailboxIds: [alice.id], via: 'mailbox', matched: 'alice@alpha.example', subaddress: null,
    });
  });

  test('resolveRecipient: alias expands to several mailboxes', async () => {
    const r = await f.tenancy.resolveRecipient(systemScope, 'team@alpha.example');
    assert.equal(r?.via, 'alias');
    assert.deepEqual(r?.mailboxIds, [alice.id, carol.id]);
    assert.equal(r?.tenantId, a.id);
  });

  test('resolveRecipient: plus-addressing strips the tag for lookup and keeps it', async () => {
    assert.deepEqual(await f.tenancy.resolveRecipient(systemScope, 'alice+newsletters@alpha.example'), {
      tenantId: a.id, mailboxIds: [alice.id], via: 'mailbox', matched: 'alice@alpha.example', subaddress: 'newsletters',
    });
    const viaAlias = await f.tenancy.resolveRecipient(systemScope, 'team+ops@alpha.example');
    assert.equal(viaAlias?.via, 'alias');
    assert.equal(viaAlias?.subaddress, 'ops');
    assert.equal(await f.tenancy.resolveRecipient(systemScope, 'ghost+x@alpha.example'), null);
  });

  test('resolveRecipient: an exact "+" mailbox wins over plus-addressing', async () => {
    const plus = await f.tenancy.mailboxes.add(scopeA, { address: 'alice+vip@alpha.example' });
    const r = await f.tenancy.resolveRecipient(systemScope, 'alice+vip@alpha.example');
    assert.deepEqual(r?.mailboxIds, [plus.id]);
    assert.equal(r?.subaddress, null);
    await f.tenancy.mailboxes.remove(scopeA, plus.id);
  });

  test('resolveRecipient: catch-all takes unknown addresses of its domain only', async () => {
    assert.equal(await f.tenancy.resolveRecipient(systemScope, 'random@alpha.example'), null);
    await f.tenancy.domains.setCatchAll(scopeA, 'alpha.example', 'carol@alpha.example');
    assert.deepEqual(await f.tenancy.resolveRecipient(systemScope, 'random@alpha.example'), {
      tenantId: a.id, mailboxIds: [carol.id], via: 'catch_all', matched: 'alpha.example', subaddress: null,
    });
    assert.deepEqual((await f.tenancy.resolveRecipient(systemScope, 'alice@alpha.example'))?.via, 'mailbox', 'real mailboxes first');
    assert.equal(await f.tenancy.resolveRecipient(systemScope, 'random@alpha2.example'), null, 'other domain unaffected');
    const row = (await auditRows(f.test.db.kysely, 'domain.catch_all_changed'))[0];
    assert.equal(JSON.parse(row.metadata_json).mailbox, 'carol@alpha.example');
    await f.tenancy.domains.setCatchAll(scopeA, 'alpha.example', null);
    assert.equal(await f.tenancy.resolveRecipient(systemScope, 'random@alpha.example'), null);
  });

  test('resolveRecipient: unknown domains, invalid input, disabled domains, deleted tenants → null', async () => {
    assert.equal(await f.tenancy.resolveRecipient(systemScope, 'alice@unhosted.example'), null);
    assert.equal(await f.tenancy.resolveRecipient(systemScope, 'not an address'), null);
    await f.tenancy.domains.setStatus(scopeA, 'alpha.example', 'disabled');
    assert.equal(await f.tenancy.resolveRecipient(systemScope, 'alice@alpha.example'), null);
    await f.tenancy.domains.setStatus(scopeA, 'alpha.example', 'active');
    await f.tenancy.tenants.setStatus(systemScope, b.id, 'suspended');
    assert.deepEqual((await f.tenancy.resolveRecipient(systemScope, 'bob@beta.example'))?.mailboxIds, [bob.id], 'suspended tenants still receive');
    await f.tenancy.tenants.setStatus(systemScope, b.id, 'deleted');
    assert.equal(await f.tenancy.resolveRecipient(systemScope, 'bob@beta.example'), null);
    await f.tenancy.tenants.setStatus(systemScope, b.id, 'active');
  });

  test("resolveRecipient in a tenant scope never resolves another tenant's address", async () => {
    assert.equal(await f.tenancy.resolveRecipient(scopeB, 'alice@alpha.example'), null);
    assert.equal(await f.tenancy.resolveRecipient(scopeB, 'team@alpha.example'), null);
    assert.deepEqual((await f.tenancy.resolveRecipient(scopeB, 'bob@beta.example'))?.mailboxIds, [bob.id]);
  });

  test('remove deletes the alias and its targets', async () => {
    const al = await f.tenancy.aliases.get(scopeA, 'team@alpha.example');
    await f.tenancy.aliases.remove(scopeA, al.address);
    assert.ok((await caught(() => f.tenancy.aliases.get(scopeA, al.id))) instanceof NotFoundError);
    const left = await f.test.db.kysely.selectFrom('alias_targets').select('mailbox_id').where('alias_id', '=', al.id).execute();
    assert.equal(left.length, 0);
    assert.equal(await f.tenancy.resolveRecipient(systemScope, 'team@alpha.example'), null);
    assert.equal((await auditRows(f.test.db.kysely, 'alias.removed')).length, 1);
  });
});
