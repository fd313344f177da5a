/**
 * `/api/v1/aliases` through the whole HTTP pipeline in the current test shape: create, read,
 * replace targets, delete; admins see the aliases of their domains only (others 404); a domain
 * admin's targets must be mailboxes it administers; validation with field paths, the 100-target
 * limit, paging and filters, audit rows naming the API caller.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApi, type ApiHarness, type TestTenant, type TestUser, auditRowsFor, actorOf, errorPaths } from '../support/api.js';
import { tenantScope } from '../../src/core/scope.js';
import type { Domain, Mailbox } from '../../src/core/tenancy/types.js';

let api: ApiHarness;
let acme: TestTenant;
let globex: TestTenant;
let acmeDomain: Domain;
let secondDomain: Domain;
let domainAdmin: TestUser;
let plain: TestUser;
let box1: Mailbox;
let box2: Mailbox;
let otherBox: Mailbox;
let globexBox: Mailbox;

const MISSING = '00000000-0000-4000-8000-000000000000';
const ALIAS_FIELDS = ['address', 'created_at', 'domain_id', 'id', 'targets', 'tenant_id'];

before(async () => {
  api = await startApi();
  acme = await api.tenant('acme');
  globex = await api.tenant('globex');
  const s = tenantScope(acme.id);
  acmeDomain = await api.app.tenancy.domains.add(s, { name: 'acme.example' });
  secondDomain = await api.app.tenancy.domains.add(s, { name: 'second.example' });
  await api.app.tenancy.domains.add(tenantScope(globex.id), { name: 'globex.example' });
  domainAdmin = await api.user(acme.id, { role: 'domain_admin', email: 'da@acme.example', domainScope: [acmeDomain.id] });
  plain = await api.user(acme.id, { email: 'plain@acme.example' });
  box1 = await api.app.tenancy.mailboxes.add(s, { address: 'box1@acme.example' });
  box2 = await api.app.tenancy.mailboxes.add(s, { address: 'box2@acme.example' });
  otherBox = await api.app.tenancy.mailboxes.add(s, { address: 'other@second.example' });
  globexBox = await api.app.tenancy.mailboxes.add(tenantScope(globex.id), { address: 'gus@globex.example' });
});

after(async () => {
  await api?.close();
});

const auditRows = (eventType: string, targetId: string) => auditRowsFor(api, eventType, targetId);

const paths = errorPaths;

async function create(by: TestUser, body: Record<string, unknown>) {
  return api.call('POST', '/api/v1/aliases', { token: by.token, body });
}

async function created(by: TestUser, body: Record<string, unknown>) {
  const res = await create(by, body);
  assert.equal(res.status, 201, res.body);
  return res.json.data;
}

describe('aliases: create', () => {
  test('201 with targets by address or id, sorted and de-duplicated; audited', async () => {
    const a = await created(acme.admin, { address: 'Sales@ACME.example', targets: ['BOX2@acme.example', box1.id, 'box2@acme.example'] });
    assert.deepEqual(Object.keys(a).sort(), ALIAS_FIELDS);
    assert.equal(a.address, 'sales@acme.example');
    assert.equal(a.domain_id, acmeDomain.id);
    assert.equal(a.tenant_id, acme.id);
    assert.deepEqual(a.targets, [
      { mailbox_id: box1.id, address: 'box1@acme.example' },
      { mailbox_id: box2.id, address: 'box2@acme.example' },
    ]);
    assert.equal(new Date(a.created_at).toISOString(), a.created_at);
    const [audit] = await auditRows('alias.created', a.id);
    assert.deepEqual(audit.actor, actorOf(acme.admin));
    assert.deepEqual(audit.metadata.targets, ['box1@acme.example', 'box2@acme.example']);
    // A tenant admin may point an alias on one domain at a mailbox on another of its domains.
    const cross = await created(acme.admin, { address: 'cross@second.example', targets: ['box1@acme.example', 'other@second.example'] });
    assert.equal(cross.targets.length, 2);
    assert.equal(cross.domain_id, secondDomain.id);
  });

  test('validation: 422 with field paths (incl. the 100-target limit); 409 duplicates; 404 unknown domains', async () => {
    const many = Array.from({ length: 101 }, (_, i) => `t${i}@acme.example`);
    const cases: [Record<string, unknown>, string][] = [
      [{ address: 'x@acme.example', targets: [] }, '/targets'],
      [{ address: 'x@acme.example', targets: many }, '/targets'],
      [{ address: 'x@acme.example', targets: ['not-an-address'] }, '/targets'],
      [{ address: 'x@acme.example', targets: ['nobody@acme.example'] }, '/targets'],
      [{ address: 'x@acme.example', targets: [globexBox.id] }, '/targets'],
      [{ address: 'x@acme.example', targets: ['gus@globex.example'] }, '/targets'],
      [{ address: 'x@acme.example', targets: [''] }, '/targets/0'],
      [{ address: 'x@acme.example', targets: 'box1@acme.example' }, '/targets'],
      [{ address: 'bad address@acme.example', targets: ['box1@acme.example'] }, '/address'],
      [{ targets: ['box1@acme.example'] }, '/address'],
      [{ address: 'x@acme.example' }, '/targets'],
    ];
    for (const [body, path] of cases) {
      const res = await create(acme.admin, body);
      assert.equal(res.status, 422, `${JSON.stringify(body).slice(0, 80)}: ${res.body}`);
      assert.equal(res.json.error.code, 'VALIDATION_ERROR');
      assert.deepEqual(paths(res), [path], JSON.stringify(body).slice(0, 80));
    }
    const unknown = await create(acme.admin, { address: 'x@acme.example', targets: ['nobody@acme.example', 'box1@acme.example'] });
    assert.deepEqual(unknown.json.error.details.unknown, ['nobody@acme.example']);
    const foreign = await create(acme.admin, { address: 'x@acme.example', targets: [globexBox.id] });
    assert.ok(!foreign.body.includes('globex.example'), 'another tenant\'s mailbox is reported like a missing one');

    let res = await create(acme.admin, { address: 'x@acme.example', targets: ['box1@acme.example'], note: 'hi' });
    assert.equal(res.status, 422, 'unknown field');
    await created(acme.admin, { address: 'dup@acme.example', targets: ['box1@acme.example'] });
    res = await create(acme.admin, { address: 'dup@acme.example', targets: ['box2@acme.example'] });
    assert.equal(res.status, 409);
    assert.equal(res.json.error.code, 'CONFLICT');
    res = await create(acme.admin, { address: 'box1@acme.example', targets: ['box2@acme.example'] });
    assert.equal(res.status, 409, 'the address is a mailbox');
    res = await create(acme.admin, { address: 'x@unhosted.example', targets: ['box1@acme.example'] });
    assert.equal(res.status, 404);
    res = await create(acme.admin, { address: 'x@globex.example', targets: ['box1@acme.example'] });
    assert.equal(res.status, 404, 'another tenant\'s domain');
  });

  test('roles: users 403; domain admins only on their domains and into mailboxes they administer', async () => {
    let res = await create(plain, { address: 'u@acme.example', targets: ['box1@acme.example'] });
    assert.equal(res.status, 403);
    res = await create(domainAdmin, { address: 'x@second.example', targets: ['box1@acme.example'] });
    assert.equal(res.status, 404);
    res = await create(domainAdmin, { address: 'x@acme.example', targets: ['box1@acme.example', 'other@second.example'] });
    assert.equal(res.status, 422);
    assert.deepEqual(res.json.error.details.unknown, ['other@second.example']);
    assert.deepEqual(paths(res), ['/targets']);
    res = await create(domainAdmin, { address: 'x@acme.example', targets: [otherBox.id] });
    assert.equal(res.status, 422);
    const a = await created(domainAdmin, { address: 'da-alias@acme.example', targets: ['box1@acme.example'] });
    const [audit] = await auditRows('alias.created', a.id);
    assert.deepEqual(audit.actor, actorOf(domainAdmin));
  });
});

describe('aliases: read, list, change, delete', () => {
  test('get: 404 outside the caller\'s domains and tenant; 403 for plain users', async () => {
    const onAcme = await created(acme.admin, { address: 'get1@acme.example', targets: ['box1@acme.example'] });
    const onSecond = await created(acme.admin, { address: 'get2@second.example', targets: ['other@second.example'] });
    assert.equal((await api.call('GET', `/api/v1/aliases/${onAcme.id}`, { token: domainAdmin.token })).status, 200);
    const got = await api.call('GET', `/api/v1/aliases/${onSecond.id}`, { token: acme.admin.token });
    assert.equal(got.status, 200);
    assert.deepEqual(got.json.data, onSecond);
    for (const [who, id, status] of [
      [domainAdmin, onSecond.id, 404],
      [globex.admin, onAcme.id, 404],
      [acme.admin, MISSING, 404],
      [plain, onAcme.id, 403],
    ] as const) {
      const res = await api.call('GET', `/api/v1/aliases/${id}`, { token: who.token });
      assert.equal(res.status, status, `${who.user.email}`);
    }
    assert.equal((await api.call('GET', '/api/v1/aliases/get1@acme.example', { token: acme.admin.token })).status, 400);
  });

  test('list: cursor paging by address, domain filter, domain admin visibility, limits', async () => {
    const t = await api.tenant('paging');
    const s = tenantScope(t.id);
    const d1 = await api.app.tenancy.domains.add(s, { name: 'one.example' });
    const d2 = await api.app.tenancy.domains.add(s, { name: 'two.example' });
    const da = await api.user(t.id, { role: 'domain_admin', email: 'da@one.example', domainScope: [d1.id] });
    await api.app.tenancy.mailboxes.add(s, { address: 'box@one.example' });
    for (const n of ['a', 'c', 'e']) await api.app.tenancy.aliases.add(s, { address: `${n}@one.example`, targets: ['box@one.example'] });
    for (const n of ['b', 'd', 'f', 'h']) await api.app.tenancy.aliases.add(s, { address: `${n}@two.example`, targets: ['box@one.example'] });

    async function all(who: TestUser, query: string, limit: number) {
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < 50; i++) {
        const res: any = await api.call('GET', `/api/v1/aliases?limit=${limit}${query}${cursor ? `&cursor=${cursor}` : ''}`, { token: who.token });
        assert.equal(res.status, 200, res.body);
        assert.ok(res.json.data.length <= limit);
        assert.equal(res.json.pagination.cursor === null, !res.json.pagination.has_more);
        seen.push(...res.json.data.map((a: { address: string }) => a.address));
        cursor = res.json.pagination.cursor;
        if (!cursor) break;
      }
      return seen;
    }
    const everything = ['a@one.example', 'b@two.example', 'c@one.example', 'd@two.example', 'e@one.example', 'f@two.example', 'h@two.example'];
    assert.deepEqual(await all(t.admin, '', 2), everything);
    assert.deepEqual(await all(t.admin, '', 100), everything);
    assert.deepEqual(await all(t.admin, `&domain_id=${d2.id}`, 3), ['b@two.example', 'd@two.example', 'f@two.example', 'h@two.example']);
    assert.deepEqual(await all(da, '', 1), ['a@one.example', 'c@one.example', 'e@one.example']);
    assert.deepEqual(await all(da, `&domain_id=${d2.id}`, 10), []);
    assert.deepEqual(await all(acme.admin, `&domain_id=${d1.id}`, 10), [], 'another tenant\'s domain id filters to nothing');
    const first = await api.call('GET', '/api/v1/aliases?limit=1', { token: t.admin.token });
    assert.deepEqual(first.json.data[0].targets.map((x: { address: string }) => x.address), ['box@one.example']);

    let res = await api.call('GET', '/api/v1/aliases?limit=101', { token: t.admin.token });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 'INVALID_REQUEST');
    res = await api.call('GET', '/api/v1/aliases?target=box', { token: t.admin.token });
    assert.equal(res.status, 400, 'unknown query parameter');
    res = await api.call('GET', '/api/v1/aliases', { token: plain.token });
    assert.equal(res.status, 403);
  });

  test('PUT targets replaces the list (audited); same rules as create; 404 outside the caller\'s view', async () => {
    const a = await created(acme.admin, { address: 'put@acme.example', targets: ['box1@acme.example'] });
    let res = await api.call('PUT', `/api/v1/aliases/${a.id}/targets`, { token: domainAdmin.token, body: { targets: ['box2@acme.example'] } });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json.data.targets, [{ mailbox_id: box2.id, address: 'box2@acme.example' }]);
    const [audit] = await auditRows('alias.updated', a.id);
    assert.deepEqual(audit.actor, actorOf(domainAdmin));
    assert.deepEqual(audit.metadata.targets, ['box2@acme.example']);

    res = await api.call('PUT', `/api/v1/aliases/${a.id}/targets`, { token: domainAdmin.token, body: { targets: ['other@second.example'] } });
    assert.equal(res.status, 422, 'a domain admin cannot route into another domain');
    res = await api.call('PUT', `/api/v1/aliases/${a.id}/targets`, { token: acme.admin.token, body: { targets: [] } });
    assert.equal(res.status, 422);
    assert.deepEqual(paths(res), ['/targets']);
    res = await api.call('PUT', `/api/v1/aliases/${a.id}/targets`, { token: acme.admin.token, body: { targets: ['box1@acme.example'], address: 'x@acme.example' } });
    assert.equal(res.status, 422, 'unknown field');
    res = await api.call('PUT', `/api/v1/aliases/${a.id}/targets`, { token: acme.admin.token, body: { targets: ['nobody@acme.example'] } });
    assert.equal(res.status, 422);
    assert.deepEqual(res.json.error.details.unknown, ['nobody@acme.example']);
    res = await api.call('PUT', `/api/v1/aliases/${a.id}/targets`, { token: globex.admin.token, body: { targets: ['gus@globex.example'] } });
    assert.equal(res.status, 404);
    res = await api.call('PUT', `/api/v1/aliases/${a.id}/targets`, { token: plain.token, body: { targets: ['box1@acme.example'] } });
    assert.equal(res.status, 403);
    const onSecond = await created(acme.admin, { address: 'put2@second.example', targets: ['other@second.example'] });
    res = await api.call('PUT', `/api/v1/aliases/${onSecond.id}/targets`, { token: domainAdmin.token, body: { targets: ['box1@acme.example'] } });
    assert.equal(res.status, 404);
    const still = await api.app.tenancy.aliases.get(tenantScope(acme.id), a.id);
    assert.deepEqual(still.targets.map((x) => x.address), ['box2@acme.example'], 'failed changes changed nothing');
  });

  test('DELETE: 204, gone afterwards, audited; 404 outside the caller\'s view', async () => {
    const a = await created(acme.admin, { address: 'del@acme.example', targets: ['box1@acme.example'] });
    const onSecond = await created(acme.admin, { address: 'del2@second.example', targets: ['other@second.example'] });
    assert.equal((await api.call('DELETE', `/api/v1/aliases/${a.id}`, { token: globex.admin.token })).status, 404);
    assert.equal((await api.call('DELETE', `/api/v1/aliases/${onSecond.id}`, { token: domainAdmin.token })).status, 404);
    assert.equal((await api.call('DELETE', `/api/v1/aliases/${a.id}`, { token: plain.token })).status, 403);
    const res = await api.call('DELETE', `/api/v1/aliases/${a.id}`, { token: domainAdmin.token });
    assert.equal(res.status, 204);
    assert.equal(res.body, '');
    assert.equal((await api.call('GET', `/api/v1/aliases/${a.id}`, { token: acme.admin.token })).status, 404);
    assert.equal((await api.call('DELETE', `/api/v1/aliases/${a.id}`, { token: acme.admin.token })).status, 404);
    const [audit] = await auditRows('alias.removed', a.id);
    assert.deepEqual(audit.actor, actorOf(domainAdmin));
    assert.ok(await api.app.tenancy.aliases.get(tenantScope(acme.id), onSecond.id), 'the other alias is untouched');
  });
});
