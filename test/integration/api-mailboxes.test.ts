/**
 * `/api/v1/mailboxes` through the whole HTTP pipeline in the current test shape: users see their
 * own mailboxes, admins those of their domains; everything else is 404 (other tenants, other
 * domains, other users' mailboxes); visible-but-not-administered is 403; quotas and owners;
 * deletion refused while messages remain unless forced; paging and filters; audit rows naming the
 * API caller.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApi, type ApiHarness, type TestTenant, type TestUser, auditRowsFor, actorOf, errorPaths } from '../support/api.js';
import { tenantScope } from '../../src/core/scope.js';
import type { Domain } from '../../src/core/tenancy/types.js';

let api: ApiHarness;
let acme: TestTenant;
let globex: TestTenant;
let acmeDomain: Domain;
let secondDomain: Domain;
let domainAdmin: TestUser;
let alice: TestUser;
let bob: TestUser;
let globexBox: { id: string };

const MISSING = '00000000-0000-4000-8000-000000000000';
const MAILBOX_FIELDS = ['address', 'created_at', 'domain_id', 'id', 'legal_hold', 'quota_bytes', 'status', 'tenant_id', 'updated_at', 'used_bytes', 'user_id'];

before(async () => {
  api = await startApi();
  acme = await api.tenant('acme');
  globex = await api.tenant('globex');
  const s = tenantScope(acme.id);
  acmeDomain = await api.app.tenancy.domains.add(s, { name: 'acme.example' });
  secondDomain = await api.app.tenancy.domains.add(s, { name: 'second.example' });
  await api.app.tenancy.domains.add(tenantScope(globex.id), { name: 'globex.example' });
  domainAdmin = await api.user(acme.id, { role: 'domain_admin', email: 'da@acme.example', domainScope: [acmeDomain.id] });
  alice = await api.user(acme.id, { email: 'alice@acme.example' });
  bob = await api.user(acme.id, { email: 'bob@second.example' });
  globexBox = await api.app.tenancy.mailboxes.add(tenantScope(globex.id), { address: 'gus@globex.example' });
});

after(async () => {
  await api?.close();
});

const auditRows = (eventType: string, targetId: string) => auditRowsFor(api, eventType, targetId);

const paths = errorPaths;

async function create(by: TestUser, body: Record<string, unknown>) {
  return api.call('POST', '/api/v1/mailboxes', { token: by.token, body });
}

async function created(by: TestUser, body: Record<string, unknown>) {
  const res = await create(by, body);
  assert.equal(res.status, 201, res.body);
  return res.json.data;
}

describe('mailboxes: create', () => {
  test('201 with public fields and its six special folders; the plan quota by default; audited', async () => {
    const m = await created(acme.admin, { address: 'Alice.Box@ACME.example', user_id: alice.user.id });
    assert.deepEqual(Object.keys(m).sort(), MAILBOX_FIELDS);
    assert.equal(m.address, 'alice.box@acme.example');
    assert.equal(m.user_id, alice.user.id);
    assert.equal(m.domain_id, acmeDomain.id);
    assert.equal(m.tenant_id, acme.id);
    assert.equal(m.used_bytes, 0);
    const tenant = await api.app.tenancy.tenants.get(tenantScope(acme.id), acme.id);
    assert.equal(m.quota_bytes, api.app.tenancy.effectiveLimits(tenant).mailbox_storage_bytes);
    const folders = await api.app.db.kysely.selectFrom('folders').select('name').where('mailbox_id', '=', m.id).execute();
    assert.deepEqual(folders.map((f) => f.name).sort(), ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
    const [audit] = await auditRows('mailbox.created', m.id);
    assert.deepEqual(audit.actor, actorOf(acme.admin));

    const shared = await created(acme.admin, { address: 'support@second.example', quota_bytes: 0 });
    assert.equal(shared.user_id, null);
    assert.equal(shared.domain_id, secondDomain.id);
    assert.equal(shared.quota_bytes, 0);
  });

  test('validation 422 with field paths, duplicates 409, unknown domains and other tenants\' users 404', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ address: 'no-at-sign' }, '/address'],
      [{ address: 'a..b@acme.example' }, '/address'],
      [{ address: 'x@acme.example', quota_bytes: -1 }, '/quota_bytes'],
      [{ address: 'x@acme.example', quota_bytes: '5' }, '/quota_bytes'],
      [{ address: 'x@acme.example', quota_bytes: 1.5 }, '/quota_bytes'],
      [{ address: 'x@acme.example', user_id: 'alice' }, '/user_id'],
      [{ address: `${'x'.repeat(250)}@acme.example` }, '/address'],
      [{}, '/address'],
    ];
    for (const [body, path] of cases) {
      const res = await create(acme.admin, body);
      assert.equal(res.status, 422, `${JSON.stringify(body).slice(0, 60)}: ${res.body}`);
      assert.equal(res.json.error.code, 'VALIDATION_ERROR');
      assert.deepEqual(paths(res), [path], JSON.stringify(body).slice(0, 60));
    }
    let res = await create(acme.admin, { address: 'x@acme.example', owner: 'alice' });
    assert.equal(res.status, 422, 'unknown field');

    await created(acme.admin, { address: 'dup@acme.example' });
    res = await create(acme.admin, { address: 'DUP@acme.example' });
    assert.equal(res.status, 409);
    assert.equal(res.json.error.code, 'CONFLICT');
    await api.app.tenancy.aliases.add(tenantScope(acme.id), { address: 'taken-by-alias@acme.example', targets: ['dup@acme.example'] });
    res = await create(acme.admin, { address: 'taken-by-alias@acme.example' });
    assert.equal(res.status, 409);

    res = await create(acme.admin, { address: 'x@unhosted.example' });
    assert.equal(res.status, 404);
    res = await create(acme.admin, { address: 'x@globex.example' });
    assert.equal(res.status, 404, 'another tenant\'s domain is not found');
    res = await create(acme.admin, { address: 'x@acme.example', user_id: globex.admin.user.id });
    assert.equal(res.status, 404, 'another tenant\'s user is not found');
    res = await create(acme.admin, { address: 'x@acme.example', user_id: MISSING });
    assert.equal(res.status, 404);
  });

  test('roles: users may not create; domain admins only in their domains, for users they manage', async () => {
    let res = await create(alice, { address: 'mine@acme.example' });
    assert.equal(res.status, 403);
    res = await create(domainAdmin, { address: 'nope@second.example' });
    assert.equal(res.status, 404);
    assert.equal(res.json.error.code, 'NOT_FOUND');
    res = await create(domainAdmin, { address: 'boss@acme.example', user_id: acme.admin.user.id });
    assert.equal(res.status, 404, 'a tenant admin is not the domain admin\'s to give mailboxes to');
    res = await create(domainAdmin, { address: 'for-bob@acme.example', user_id: bob.user.id });
    assert.equal(res.status, 404, 'bob\'s login is outside the domain admin\'s domains');
    const m = await created(domainAdmin, { address: 'alice2@acme.example', user_id: alice.user.id });
    assert.equal(m.user_id, alice.user.id);
    const own = await created(domainAdmin, { address: 'da-box@acme.example', user_id: domainAdmin.user.id });
    assert.equal(own.user_id, domainAdmin.user.id);
    const [audit] = await auditRows('mailbox.created', m.id);
    assert.deepEqual(audit.actor, actorOf(domainAdmin));
  });
});

describe('mailboxes: read and list', () => {
  test('visibility: owners, admins of the domain; everyone else 404', async () => {
    const alicesBox = await created(acme.admin, { address: 'visible@acme.example', user_id: alice.user.id });
    const bobsBox = await created(acme.admin, { address: 'bob@second.example', user_id: bob.user.id });
    const daElsewhere = await created(acme.admin, { address: 'da@second.example', user_id: domainAdmin.user.id });
    const ok: [TestUser, string][] = [
      [alice, alicesBox.id], [domainAdmin, alicesBox.id], [acme.admin, alicesBox.id], [bob, bobsBox.id], [domainAdmin, daElsewhere.id],
    ];
    for (const [who, id] of ok) {
      const res = await api.call('GET', `/api/v1/mailboxes/${id}`, { token: who.token });
      assert.equal(res.status, 200, `${who.user.email} ${id}`);
      assert.deepEqual(Object.keys(res.json.data).sort(), MAILBOX_FIELDS);
      assert.equal(typeof res.json.data.quota_bytes, 'number');
      assert.equal(typeof res.json.data.used_bytes, 'number');
    }
    const hidden: [TestUser, string, string][] = [
      [bob, alicesBox.id, 'another user\'s mailbox'],
      [alice, bobsBox.id, 'another user\'s mailbox'],
      [domainAdmin, bobsBox.id, 'outside the domain scope'],
      [acme.admin, globexBox.id, 'another tenant'],
      [globex.admin, alicesBox.id, 'another tenant'],
      [acme.admin, MISSING, 'unknown'],
    ];
    for (const [who, id, why] of hidden) {
      const res = await api.call('GET', `/api/v1/mailboxes/${id}`, { token: who.token });
      assert.equal(res.status, 404, why);
      assert.equal(res.json.error.code, 'NOT_FOUND');
    }
    assert.equal((await api.call('GET', '/api/v1/mailboxes/visible@acme.example', { token: acme.admin.token })).status, 400);
  });

  test('list: users their own, domain admins their domains (and their own), filters and cursor paging', async () => {
    const t = await api.tenant('paging');
    const s = tenantScope(t.id);
    const d1 = await api.app.tenancy.domains.add(s, { name: 'one.example' });
    const d2 = await api.app.tenancy.domains.add(s, { name: 'two.example' });
    const da = await api.user(t.id, { role: 'domain_admin', email: 'da@one.example', domainScope: [d1.id] });
    const u = await api.user(t.id, { email: 'u@one.example' });
    for (const n of ['a', 'c', 'e', 'g']) await api.app.tenancy.mailboxes.add(s, { address: `${n}@one.example` });
    for (const n of ['b', 'd', 'f']) await api.app.tenancy.mailboxes.add(s, { address: `${n}@two.example` });
    await api.app.tenancy.mailboxes.add(s, { address: 'u@one.example', user: u.user.id });
    await api.app.tenancy.mailboxes.add(s, { address: 'u@two.example', user: u.user.id });
    await api.app.tenancy.mailboxes.add(s, { address: 'da@two.example', user: da.user.id });

    async function all(who: TestUser, query: string, limit: number) {
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < 50; i++) {
        const res: any = await api.call('GET', `/api/v1/mailboxes?limit=${limit}${query}${cursor ? `&cursor=${cursor}` : ''}`, { token: who.token });
        assert.equal(res.status, 200, res.body);
        assert.ok(res.json.data.length <= limit);
        assert.equal(res.json.pagination.cursor === null, !res.json.pagination.has_more);
        seen.push(...res.json.data.map((m: { address: string }) => m.address));
        cursor = res.json.pagination.cursor;
        if (!cursor) break;
      }
      return seen;
    }

    const everything = ['a@one.example', 'b@two.example', 'c@one.example', 'd@two.example', 'da@two.example', 'e@one.example', 'f@two.example', 'g@one.example', 'u@one.example', 'u@two.example'];
    assert.deepEqual(await all(t.admin, '', 3), everything);
    assert.deepEqual(await all(t.admin, '', 100), everything);
    const daSees = ['a@one.example', 'c@one.example', 'da@two.example', 'e@one.example', 'g@one.example', 'u@one.example'];
    assert.deepEqual(await all(da, '', 2), daSees);
    assert.deepEqual(await all(da, '', 1), daSees);
    assert.deepEqual(await all(da, `&domain_id=${d1.id}`, 2), ['a@one.example', 'c@one.example', 'e@one.example', 'g@one.example', 'u@one.example']);
    assert.deepEqual(await all(da, `&domain_id=${d2.id}`, 2), ['da@two.example'], 'another domain: only its own mailbox there');
    assert.deepEqual(await all(u, '', 1), ['u@one.example', 'u@two.example']);
    assert.deepEqual(await all(u, `&domain_id=${d2.id}`, 5), ['u@two.example']);
    assert.deepEqual(await all(u, `&user_id=${da.user.id}`, 5), [], 'users cannot list others\' mailboxes');
    assert.deepEqual(await all(t.admin, `&user_id=${u.user.id}`, 5), ['u@one.example', 'u@two.example']);
    assert.deepEqual(await all(t.admin, `&domain_id=${d2.id}`, 2), ['b@two.example', 'd@two.example', 'da@two.example', 'f@two.example', 'u@two.example']);
    assert.deepEqual(await all(acme.admin, `&domain_id=${d1.id}`, 5), [], 'another tenant\'s domain id filters to nothing');

    let res = await api.call('GET', '/api/v1/mailboxes?limit=101', { token: t.admin.token });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 'INVALID_REQUEST');
    res = await api.call('GET', '/api/v1/mailboxes?domain_id=one.example', { token: t.admin.token });
    assert.equal(res.status, 400);
    res = await api.call('GET', '/api/v1/mailboxes?address=a', { token: t.admin.token });
    assert.equal(res.status, 400, 'unknown query parameter');
    res = await api.call('GET', `/api/v1/mailboxes?cursor=${Buffer.from('[1]').toString('base64url')}`, { token: t.admin.token });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.details.field, 'cursor');
  });
});

describe('mailboxes: change and delete', () => {
  test('PATCH sets quota and owner (null = shared), each audited with the API caller', async () => {
    const m = await created(acme.admin, { address: 'patch@acme.example' });
    let res = await api.call('PATCH', `/api/v1/mailboxes/${m.id}`, { token: domainAdmin.token, body: { quota_bytes: 5_000_000, user_id: alice.user.id } });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.data.quota_bytes, 5_000_000);
    assert.equal(res.json.data.user_id, alice.user.id);
    const [quota] = await auditRows('mailbox.quota_changed', m.id);
    assert.deepEqual(quota.actor, actorOf(domainAdmin));
    assert.equal(quota.metadata.to, 5_000_000);
    const [owner] = await auditRows('mailbox.owner_changed', m.id);
    assert.deepEqual(owner.actor, actorOf(domainAdmin));
    res = await api.call('PATCH', `/api/v1/mailboxes/${m.id}`, { token: acme.admin.token, body: { user_id: null } });
    assert.equal(res.status, 200);
    assert.equal(res.json.data.user_id, null);

    for (const [body, path] of [[{ quota_bytes: -5 }, '/quota_bytes'], [{ user_id: 'nobody' }, '/user_id'], [{ address: 'x@acme.example' }, '/'], [{}, '/']] as const) {
      const r = await api.call('PATCH', `/api/v1/mailboxes/${m.id}`, { token: acme.admin.token, body });
      assert.equal(r.status, 422, JSON.stringify(body));
      if (path !== '/') assert.deepEqual(paths(r), [path]);
    }
    res = await api.call('PATCH', `/api/v1/mailboxes/${m.id}`, { token: acme.admin.token, body: { user_id: globex.admin.user.id } });
    assert.equal(res.status, 404);
  });

  test('PATCH and DELETE: users 403, other tenants and other domains 404, own mailbox outside one\'s domains 403', async () => {
    const alicesBox = await created(acme.admin, { address: 'guarded@acme.example', user_id: alice.user.id });
    const daOutside = await created(acme.admin, { address: 'da-guarded@second.example', user_id: domainAdmin.user.id });
    const bobsBox = await created(acme.admin, { address: 'bob-guarded@second.example', user_id: bob.user.id });
    const cases: [TestUser, string, number][] = [
      [alice, alicesBox.id, 403],
      [globex.admin, alicesBox.id, 404],
      [acme.admin, globexBox.id, 404],
      [domainAdmin, bobsBox.id, 404],
      [domainAdmin, daOutside.id, 403],
    ];
    for (const [who, id, status] of cases) {
      const p = await api.call('PATCH', `/api/v1/mailboxes/${id}`, { token: who.token, body: { quota_bytes: 1 } });
      assert.equal(p.status, status, `PATCH ${who.user.email}`);
      const d = await api.call('DELETE', `/api/v1/mailboxes/${id}`, { token: who.token });
      assert.equal(d.status, status, `DELETE ${who.user.email}`);
    }
    assert.equal((await api.app.tenancy.mailboxes.get(tenantScope(acme.id), alicesBox.id)).quotaBytes, alicesBox.quota_bytes, 'unchanged');
  });

  test('DELETE: 204 when empty; 409 while it holds messages unless force=true; audited', async () => {
    const empty = await created(acme.admin, { address: 'empty@acme.example' });
    let res = await api.call('DELETE', `/api/v1/mailboxes/${empty.id}`, { token: acme.admin.token });
    assert.equal(res.status, 204);
    assert.equal(res.body, '');
    assert.equal((await api.call('GET', `/api/v1/mailboxes/${empty.id}`, { token: acme.admin.token })).status, 404);

    const full = await created(acme.admin, { address: 'full@acme.example' });
    const s = tenantScope(acme.id);
    const inbox = (await api.app.mailboxState.findFolder(s, full.id, 'INBOX'))!;
    await api.app.mailboxState.append(s, full.id, inbox.id, Buffer.from('From: a@b.example\r\nSubject: hi\r\n\r\nbody\r\n'));
    res = await api.call('DELETE', `/api/v1/mailboxes/${full.id}`, { token: domainAdmin.token });
    assert.equal(res.status, 409);
    assert.equal(res.json.error.code, 'CONFLICT');
    assert.equal(res.json.error.details.messages, 1);
    res = await api.call('DELETE', `/api/v1/mailboxes/${full.id}?force=maybe`, { token: domainAdmin.token });
    assert.equal(res.status, 400);
    res = await api.call('DELETE', `/api/v1/mailboxes/${full.id}?force=true`, { token: domainAdmin.token });
    assert.equal(res.status, 204);
    const [audit] = await auditRows('mailbox.removed', full.id);
    assert.deepEqual(audit.actor, actorOf(domainAdmin));
    assert.equal(audit.metadata.forced, true);
    res = await api.call('DELETE', `/api/v1/mailboxes/${full.id}`, { token: domainAdmin.token });
    assert.equal(res.status, 404);
  });
});
