/**
 * `/api/v1/users` through the whole HTTP pipeline in the current test shape: who may create and
 * manage whom (tenant admins, domain admins in their domains, never super-admins from a tenant),
 * invisibility of users the caller cannot manage (404), validation with field paths, paging and
 * filters, the once-shown reset password that signs the user out, the `user.created` event, and
 * audit rows naming the API caller. No password or hash in any response or log line.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApi, TEST_PASSWORD, type ApiHarness, type TestTenant, type TestUser, auditRowsFor, actorOf, errorPaths } from '../support/api.js';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import type { Domain } from '../../src/core/tenancy/types.js';
import { WEBHOOK_QUEUE, type WebhookJobPayload } from '../../src/webhooks/publisher.js';

let api: ApiHarness;
let root: TestUser;
let acme: TestTenant;
let globex: TestTenant;
let acmeDomain: Domain;
let secondDomain: Domain;
let domainAdmin: TestUser;
let plain: TestUser;
let globexUser: TestUser;

const MISSING = '00000000-0000-4000-8000-000000000000';
const PW = 'a long enough passphrase 42';
const USER_FIELDS = ['created_at', 'display_name', 'domain_scope', 'email', 'id', 'last_login_at', 'locale', 'role', 'status', 'tenant_id', 'updated_at'];

before(async () => {
  api = await startApi({ config: { webhooks: { allow_private_addresses: true } } });
  root = await api.superAdmin();
  acme = await api.tenant('acme');
  globex = await api.tenant('globex');
  acmeDomain = await api.app.tenancy.domains.add(tenantScope(acme.id), { name: 'acme.example' });
  secondDomain = await api.app.tenancy.domains.add(tenantScope(acme.id), { name: 'second.example' });
  await api.app.tenancy.domains.add(tenantScope(globex.id), { name: 'globex.example' });
  domainAdmin = await api.user(acme.id, { role: 'domain_admin', email: 'da@acme.example', domainScope: [acmeDomain.id] });
  plain = await api.user(acme.id, { role: 'user', email: 'plain@acme.example' });
  globexUser = await api.user(globex.id, { role: 'user', email: 'gus@globex.example' });
});

after(async () => {
  await api?.close();
});

const auditRows = (eventType: string, targetId: string) => auditRowsFor(api, eventType, targetId);

const paths = errorPaths;

async function create(by: TestUser, body: Record<string, unknown>) {
  return api.call('POST', '/api/v1/users', { token: by.token, body: { password: PW, ...body } });
}

describe('users: create', () => {
  test('a tenant admin creates a user: 201, public fields only, audited, user.created queued', async () => {
    const hook = await api.call('POST', '/api/v1/webhooks', { token: acme.admin.token, body: { url: 'http://127.0.0.1:9/users', events: ['user.created'] } });
    assert.equal(hook.status, 201, hook.body);
    const res = await create(acme.admin, { email: 'New.Person@Acme.Example', display_name: 'New Person', locale: 'ja' });
    assert.equal(res.status, 201, res.body);
    const u = res.json.data;
    assert.deepEqual(Object.keys(u).sort(), USER_FIELDS);
    assert.equal(u.email, 'new.person@acme.example');
    assert.equal(u.role, 'user');
    assert.equal(u.tenant_id, acme.id);
    assert.equal(u.display_name, 'New Person');
    assert.equal(u.locale, 'ja');
    assert.deepEqual(u.domain_scope, []);
    assert.equal(u.last_login_at, null);
    assert.ok(!res.body.includes('argon2') && !res.body.includes(PW), 'no hash or password in the response');

    const [audit] = await auditRows('user.created', u.id);
    assert.deepEqual(audit.actor, actorOf(acme.admin));

    const jobs = (await api.app.queue.list({ queue: WEBHOOK_QUEUE, limit: 1000 })).jobs.filter((j) => (j.payload as WebhookJobPayload).webhook_id === hook.json.data.id);
    assert.equal(jobs.length, 1);
    const payload = jobs[0].payload as WebhookJobPayload;
    assert.equal(payload.event, 'user.created');
    assert.deepEqual(payload.data, { user_id: u.id, email: 'new.person@acme.example', role: 'user' });
  });

  test('validation: 422 with field paths for schema and service checks; duplicates 409', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ email: 'shorty@acme.example', password: 'short' }, '/password'],
      [{ email: 'not-an-address' }, '/email'],
      [{ email: 'x@acme.example', locale: 'English!' }, '/locale'],
      [{ email: 'x@acme.example', display_name: 'd'.repeat(257) }, '/display_name'],
      [{ email: 'x@acme.example', display_name: 'bell\u0007' }, '/display_name'],
      [{ email: 'x@acme.example', role: 'root' }, '/role'],
      [{ email: 'x@acme.example', domain_scope: [acmeDomain.id] }, '/domain_scope'],
      [{ email: 'x@acme.example', role: 'domain_admin' }, '/domain_scope'],
      [{ email: 'x@acme.example', domain_scope: ['acme.example'] }, '/domain_scope/0'],
      [{ email: 'x@acme.example', password: 'p'.repeat(1025) }, '/password'],
      [{ password: PW }, '/email'],
    ];
    for (const [body, path] of cases) {
      const res = await api.call('POST', '/api/v1/users', { token: acme.admin.token, body: { password: PW, ...body } });
      assert.equal(res.status, 422, `${JSON.stringify(body).slice(0, 80)}: ${res.body}`);
      assert.equal(res.json.error.code, 'VALIDATION_ERROR');
      assert.deepEqual(paths(res), [path], JSON.stringify(body).slice(0, 80));
    }
    const short = await create(acme.admin, { email: 'shorty@acme.example', password: 'short' });
    assert.equal(short.json.error.details.field, 'password');
    assert.match(short.json.error.message, /at least 12 characters/);

    let res = await create(acme.admin, { email: 'extra@acme.example', is_admin: true });
    assert.equal(res.status, 422, 'unknown field');
    res = await create(acme.admin, { email: 'PLAIN@acme.example' });
    assert.equal(res.status, 409);
    assert.equal(res.json.error.code, 'CONFLICT');
    assert.equal(res.json.error.details.field, 'email');
    // Another tenant's hosted domain cannot be squatted as a login name.
    res = await create(acme.admin, { email: 'ceo@globex.example' });
    assert.equal(res.status, 422);
    assert.deepEqual(paths(res), ['/email']);
  });

  test('roles: tenant admins cannot create super-admins; domain admins only plain users in their domains', async () => {
    let res = await create(acme.admin, { email: 'boss@acme.example', role: 'super_admin' });
    assert.equal(res.status, 403);
    assert.equal(res.json.error.code, 'FORBIDDEN');
    res = await create(acme.admin, { email: 'ta2@acme.example', role: 'tenant_admin' });
    assert.equal(res.status, 201);
    res = await create(acme.admin, { email: 'da2@acme.example', role: 'domain_admin', domain_scope: [secondDomain.id] });
    assert.equal(res.status, 201);
    assert.deepEqual(res.json.data.domain_scope, [secondDomain.id]);

    for (const [body, why] of [
      [{ email: 'ta3@acme.example', role: 'tenant_admin' }, 'role'],
      [{ email: 'da3@acme.example', role: 'domain_admin', domain_scope: [acmeDomain.id] }, 'role'],
      [{ email: 'someone@second.example' }, 'domain outside scope'],
      [{ email: 'someone@elsewhere.test' }, 'unhosted domain'],
    ] as const) {
      const r = await create(domainAdmin, body);
      assert.equal(r.status, 403, why);
      assert.equal(r.json.error.code, 'FORBIDDEN');
    }
    res = await create(domainAdmin, { email: 'mine@acme.example' });
    assert.equal(res.status, 201);
    assert.equal(res.json.data.role, 'user');
    const [audit] = await auditRows('user.created', res.json.data.id);
    assert.deepEqual(audit.actor, actorOf(domainAdmin));

    res = await create(plain, { email: 'nope@acme.example' });
    assert.equal(res.status, 403);
  });

  test('tenants: a super-admin names the tenant; a tenant admin naming another tenant gets 404', async () => {
    let res = await create(root, { email: 'orphan@globex.example' });
    assert.equal(res.status, 422);
    assert.deepEqual(paths(res), ['/tenant_id']);
    res = await create(root, { email: 'placed@globex.example', tenant_id: globex.id });
    assert.equal(res.status, 201);
    assert.equal(res.json.data.tenant_id, globex.id);
    res = await create(acme.admin, { email: 'sneak@acme.example', tenant_id: globex.id });
    assert.equal(res.status, 404);
    assert.equal(res.json.error.code, 'NOT_FOUND');
    res = await create(root, { email: 'ghost@globex.example', tenant_id: MISSING });
    assert.equal(res.status, 404);
  });
});

describe('users: read and list', () => {
  test('get: 404 for users the caller cannot manage, other tenants and unknown ids; 400 for malformed ids', async () => {
    let res = await api.call('GET', `/api/v1/users/${plain.user.id}`, { token: acme.admin.token });
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.json.data).sort(), USER_FIELDS);
    res = await api.call('GET', `/api/v1/users/${plain.user.id}`, { token: domainAdmin.token });
    assert.equal(res.status, 200);
    const second = await api.user(acme.id, { email: 'sam@second.example' });
    for (const [who, id, why] of [
      [acme.admin, globexUser.user.id, 'other tenant'],
      [acme.admin, root.user.id, 'super-admin'],
      [acme.admin, MISSING, 'unknown'],
      [domainAdmin, second.user.id, 'outside the domain scope'],
      [domainAdmin, acme.admin.user.id, 'not a plain user'],
      [globex.admin, plain.user.id, 'other tenant'],
    ] as const) {
      const r = await api.call('GET', `/api/v1/users/${id}`, { token: who.token });
      assert.equal(r.status, 404, why);
      assert.equal(r.json.error.code, 'NOT_FOUND');
    }
    res = await api.call('GET', `/api/v1/users/${plain.user.id}`, { token: plain.token });
    assert.equal(res.status, 403);
    res = await api.call('GET', '/api/v1/users/plain@acme.example', { token: acme.admin.token });
    assert.equal(res.status, 400);
    res = await api.call('GET', `/api/v1/users/${globexUser.user.id}`, { token: root.token });
    assert.equal(res.status, 200, 'a super-admin sees every tenant');
  });

  test('list: cursor paging, role and e-mail prefix filters, limits; each caller sees only whom it manages', async () => {
    const t = await api.tenant('paging');
    const d = await api.app.tenancy.domains.add(tenantScope(t.id), { name: 'paging.example' });
    await api.app.tenancy.domains.add(tenantScope(t.id), { name: 'other-paging.example' });
    const da = await api.user(t.id, { role: 'domain_admin', email: 'da@paging.example', domainScope: [d.id] });
    // Interleaved by e-mail: the domain admin's users and others it must never see.
    for (const name of ['a', 'c', 'e', 'g', 'i']) await api.user(t.id, { email: `${name}@paging.example` });
    for (const name of ['b', 'd', 'f', 'h']) await api.user(t.id, { email: `${name}@other-paging.example` });
    await api.user(t.id, { role: 'tenant_admin', email: 'b2@paging.example' });

    async function all(who: TestUser, query: string, limit: number) {
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < 50; i++) {
        const res: any = await api.call('GET', `/api/v1/users?limit=${limit}${query}${cursor ? `&cursor=${cursor}` : ''}`, { token: who.token });
        assert.equal(res.status, 200, res.body);
        assert.ok(res.json.data.length <= limit);
        if (res.json.pagination.has_more) assert.ok(res.json.pagination.cursor);
        else assert.equal(res.json.pagination.cursor, null);
        seen.push(...res.json.data.map((u: { email: string }) => u.email));
        cursor = res.json.pagination.cursor;
        if (!cursor) break;
      }
      return seen;
    }

    assert.deepEqual(await all(da, '', 2), ['a@paging.example', 'c@paging.example', 'e@paging.example', 'g@paging.example', 'i@paging.example']);
    assert.deepEqual(await all(da, '', 1), ['a@paging.example', 'c@paging.example', 'e@paging.example', 'g@paging.example', 'i@paging.example']);
    const everyone = await all(t.admin, '', 3);
    assert.deepEqual(everyone, [...everyone].sort());
    assert.equal(everyone.length, 12, 'tenant admin: every user of its tenant, itself included');
    assert.ok(!everyone.includes(plain.user.email), 'no other tenant');
    assert.deepEqual(await all(t.admin, '&q=B', 10), ['b2@paging.example', 'b@other-paging.example']);
    assert.deepEqual(await all(t.admin, '&role=tenant_admin', 10), ['admin@paging.test', 'b2@paging.example']);
    assert.deepEqual(await all(t.admin, '&role=domain_admin', 10), ['da@paging.example']);
    assert.deepEqual(await all(da, '&q=e', 10), ['e@paging.example']);
    assert.deepEqual(await all(root, `&tenant_id=${t.id}&role=domain_admin`, 10), ['da@paging.example']);
    assert.deepEqual(await all(t.admin, `&tenant_id=${acme.id}`, 10), [], 'another tenant\'s id filters to nothing');

    let res = await api.call('GET', '/api/v1/users?limit=101', { token: t.admin.token });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 'INVALID_REQUEST');
    res = await api.call('GET', '/api/v1/users?role=owner', { token: t.admin.token });
    assert.equal(res.status, 400);
    res = await api.call('GET', '/api/v1/users?cursor=bm90LWpzb24', { token: t.admin.token });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.details.field, 'cursor');
    res = await api.call('GET', '/api/v1/users?email=a', { token: t.admin.token });
    assert.equal(res.status, 400, 'unknown query parameter');
    res = await api.call('GET', '/api/v1/users', { token: plain.token });
    assert.equal(res.status, 403);
    const list = await api.call('GET', '/api/v1/users?limit=100', { token: t.admin.token });
    assert.ok(!list.body.includes('argon2'));
  });
});

describe('users: change, delete, reset password', () => {
  test('PATCH changes display name, locale, role, domain scope and status, audited', async () => {
    const u = (await create(acme.admin, { email: 'patchy@acme.example' })).json.data;
    let res = await api.call('PATCH', `/api/v1/users/${u.id}`, { token: acme.admin.token, body: { display_name: 'Patchy', locale: 'de' } });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.data.display_name, 'Patchy');
    assert.equal(res.json.data.locale, 'de');
    res = await api.call('PATCH', `/api/v1/users/${u.id}`, { token: acme.admin.token, body: { role: 'domain_admin', domain_scope: [acmeDomain.id, secondDomain.id] } });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.data.role, 'domain_admin');
    assert.deepEqual([...res.json.data.domain_scope].sort(), [acmeDomain.id, secondDomain.id].sort());
    const audits = await auditRows('user.updated', u.id);
    assert.equal(audits.length, 2);
    assert.ok(audits.every((a) => JSON.stringify(a.actor) === JSON.stringify(actorOf(acme.admin))));
    assert.deepEqual(audits[1].metadata.role, { from: 'user', to: 'domain_admin' });

    res = await api.call('PATCH', `/api/v1/users/${u.id}`, { token: acme.admin.token, body: { domain_scope: [MISSING] } });
    assert.equal(res.status, 404, 'unknown domain in the scope');
    res = await api.call('PATCH', `/api/v1/users/${u.id}`, { token: acme.admin.token, body: { role: 'user', domain_scope: [acmeDomain.id] } });
    assert.equal(res.status, 422);
    assert.deepEqual(paths(res), ['/domain_scope']);
    res = await api.call('PATCH', `/api/v1/users/${u.id}`, { token: acme.admin.token, body: { role: 'super_admin' } });
    assert.equal(res.status, 403);
    res = await api.call('PATCH', `/api/v1/users/${u.id}`, { token: acme.admin.token, body: {} });
    assert.equal(res.status, 422, 'empty PATCH');
    res = await api.call('PATCH', `/api/v1/users/${u.id}`, { token: acme.admin.token, body: { email: 'renamed@acme.example' } });
    assert.equal(res.status, 422, 'e-mail is not patchable');
    res = await api.call('PATCH', `/api/v1/users/${u.id}`, { token: acme.admin.token, body: { status: 'gone' } });
    assert.equal(res.status, 422);
    assert.deepEqual(paths(res), ['/status']);
  });

  test('PATCH rules: no self-demotion; domain admins keep users plain; others\' users are 404; disabling signs out', async () => {
    let res = await api.call('PATCH', `/api/v1/users/${acme.admin.user.id}`, { token: acme.admin.token, body: { role: 'user' } });
    assert.equal(res.status, 403);
    res = await api.call('PATCH', `/api/v1/users/${acme.admin.user.id}`, { token: acme.admin.token, body: { status: 'disabled' } });
    assert.equal(res.status, 403);
    res = await api.call('PATCH', `/api/v1/users/${acme.admin.user.id}`, { token: acme.admin.token, body: { display_name: 'Me' } });
    assert.equal(res.status, 200, 'own display name is fine');

    const victim = await api.user(acme.id, { email: 'victim@acme.example' });
    res = await api.call('PATCH', `/api/v1/users/${victim.user.id}`, { token: domainAdmin.token, body: { role: 'tenant_admin' } });
    assert.equal(res.status, 403);
    res = await api.call('PATCH', `/api/v1/users/${globexUser.user.id}`, { token: acme.admin.token, body: { display_name: 'x' } });
    assert.equal(res.status, 404);
    res = await api.call('PATCH', `/api/v1/users/${acme.admin.user.id}`, { token: domainAdmin.token, body: { display_name: 'x' } });
    assert.equal(res.status, 404, 'a domain admin cannot see a tenant admin');

    assert.equal((await api.call('GET', '/api/v1/mailboxes', { token: victim.token })).status, 200);
    res = await api.call('PATCH', `/api/v1/users/${victim.user.id}`, { token: domainAdmin.token, body: { status: 'disabled' } });
    assert.equal(res.status, 200);
    assert.equal(res.json.data.status, 'disabled');
    assert.equal((await api.call('GET', '/api/v1/mailboxes', { token: victim.token })).status, 401);
    res = await api.call('PATCH', `/api/v1/users/${victim.user.id}`, { token: domainAdmin.token, body: { status: 'active' } });
    assert.equal(res.status, 200);
    assert.equal((await api.call('GET', '/api/v1/mailboxes', { token: victim.token })).status, 401, 'the old token stays revoked after re-enabling');
  });

  test('DELETE: 204, gone afterwards, audited; never oneself; others\' users are 404', async () => {
    const u = (await create(acme.admin, { email: 'doomed@acme.example' })).json.data;
    let res = await api.call('DELETE', `/api/v1/users/${u.id}`, { token: globex.admin.token });
    assert.equal(res.status, 404);
    res = await api.call('DELETE', `/api/v1/users/${u.id}`, { token: plain.token });
    assert.equal(res.status, 403);
    res = await api.call('DELETE', `/api/v1/users/${u.id}`, { token: domainAdmin.token });
    assert.equal(res.status, 204);
    assert.equal(res.body, '');
    assert.equal((await api.call('GET', `/api/v1/users/${u.id}`, { token: acme.admin.token })).status, 404);
    const [audit] = await auditRows('user.removed', u.id);
    assert.deepEqual(audit.actor, actorOf(domainAdmin));
    res = await api.call('DELETE', `/api/v1/users/${u.id}`, { token: acme.admin.token });
    assert.equal(res.status, 404);
    res = await api.call('DELETE', `/api/v1/users/${acme.admin.user.id}`, { token: acme.admin.token });
    assert.equal(res.status, 403);
  });

  test('reset-password returns the new password once, signs the user out, audits, and never logs it', async () => {
    const u = await api.user(acme.id, { email: 'forgetful@acme.example' });
    const res = await api.call('POST', `/api/v1/users/${u.user.id}/reset-password`, { token: acme.admin.token });
    assert.equal(res.status, 200, res.body);
    const { user, password } = res.json.data;
    assert.equal(user.id, u.user.id);
    assert.deepEqual(Object.keys(user).sort(), USER_FIELDS);
    assert.equal(typeof password, 'string');
    assert.ok(password.length >= 12);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.ok(!res.body.includes('argon2'));

    assert.equal((await api.call('GET', '/api/v1/mailboxes', { token: u.token })).status, 401, 'old token revoked');
    assert.ok(await api.app.tenancy.authenticate(systemScope, u.user.email, password), 'the new password works');
    assert.equal(await api.app.tenancy.authenticate(systemScope, u.user.email, TEST_PASSWORD), null, 'the old one does not');
    const [audit] = await auditRows('admin.password_reset', u.user.id);
    assert.deepEqual(audit.actor, actorOf(acme.admin));
    assert.ok(!JSON.stringify(audit).includes(password));

    let r = await api.call('POST', `/api/v1/users/${globexUser.user.id}/reset-password`, { token: acme.admin.token });
    assert.equal(r.status, 404);
    r = await api.call('POST', `/api/v1/users/${acme.admin.user.id}/reset-password`, { token: domainAdmin.token });
    assert.equal(r.status, 404);
    r = await api.call('POST', `/api/v1/users/${root.user.id}/reset-password`, { token: acme.admin.token });
    assert.equal(r.status, 404);

    const log = api.logText();
    assert.ok(!log.includes(password), 'the generated password is not logged');
    assert.ok(!log.includes(PW), 'no submitted password is logged');
    assert.ok(!log.includes('$argon2'), 'no hash is logged');
  });
});
