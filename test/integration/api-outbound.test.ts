/**
 * `/api/v1/admin/outbound/…` through the whole HTTP pipeline: roles, tenant isolation (another
 * tenant's account or whitelist entry is 404), suspension and unsuspension with their audit rows
 * and the `account.suspended` event, the whitelist and the statistics.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApi, auditRowsFor, actorOf, type ApiHarness, type TestTenant, type TestUser } from '../support/api.js';

let api: ApiHarness;
let a: TestTenant;
let b: TestTenant;
let plain: TestUser;
let sender: TestUser;
let other: TestUser;
let superAdmin: TestUser;

before(async () => {
  api = await startApi();
  a = await api.tenant('acme');
  b = await api.tenant('globex');
  plain = await api.user(a.id, { role: 'user' });
  sender = await api.user(a.id, { role: 'user' });
  other = await api.user(b.id, { role: 'user' });
  superAdmin = await api.superAdmin();
});

after(async () => {
  await api?.close();
});

const suspend = (t: TestUser, userId: string, body?: unknown) => api.call('POST', `/api/v1/admin/outbound/accounts/${userId}/suspend`, { token: t.token, body });
const unsuspend = (t: TestUser, userId: string) => api.call('POST', `/api/v1/admin/outbound/accounts/${userId}/unsuspend`, { token: t.token });

describe('outbound admin routes', () => {
  test('plain users are refused; tenant admins see their tenant only', async () => {
    for (const [m, path] of [
      ['GET', '/api/v1/admin/outbound/stats'],
      ['GET', '/api/v1/admin/outbound/accounts'],
      ['GET', '/api/v1/admin/outbound/whitelist'],
    ] as const) {
      assert.equal((await api.call(m, path, { token: plain.token })).status, 403, `${m} ${path}`);
    }
    assert.equal((await suspend(plain, sender.user.id)).status, 403);
    // Another tenant's user is not found, for reading and for changing.
    assert.equal((await suspend(a.admin, other.user.id)).status, 404);
    assert.equal((await unsuspend(a.admin, other.user.id)).status, 404);
    const wl = await api.call('POST', '/api/v1/admin/outbound/whitelist', { token: a.admin.token, body: { user: other.user.email, profile: 'newsletter' } });
    assert.equal(wl.status, 404);
  });

  test('suspend and unsuspend: listed, audited, the event published, 409 when repeated', async () => {
    const res = await suspend(a.admin, sender.user.id, { reason: 'phishing reported by recipients' });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.data.suspended, true);
    assert.equal(res.json.data.level, 'hard');
    assert.equal(res.json.data.suspended_reason, 'phishing reported by recipients');
    assert.equal((await suspend(a.admin, sender.user.id)).status, 409);

    const listA = await api.call('GET', '/api/v1/admin/outbound/accounts?status=suspended', { token: a.admin.token });
    assert.equal(listA.status, 200);
    assert.deepEqual(listA.json.data.map((r: any) => r.user_id), [sender.user.id]);
    const listB = await api.call('GET', '/api/v1/admin/outbound/accounts?status=suspended', { token: b.admin.token });
    assert.deepEqual(listB.json.data, [], 'globex does not see acme accounts');
    const listSuper = await api.call('GET', '/api/v1/admin/outbound/accounts?status=suspended', { token: superAdmin.token });
    assert.ok(listSuper.json.data.some((r: any) => r.user_id === sender.user.id));

    const stats = await api.call('GET', '/api/v1/admin/outbound/stats', { token: a.admin.token });
    assert.equal(stats.status, 200);
    assert.equal(stats.json.data.accounts.suspended, 1);
    assert.equal(stats.json.data.events_last_24h.suspended, 1);
    const statsB = await api.call('GET', '/api/v1/admin/outbound/stats', { token: b.admin.token });
    assert.equal(statsB.json.data.accounts.suspended, 0);

    const audit = await auditRowsFor(api, 'outbound.account_suspended', sender.user.id);
    assert.equal(audit.length, 1);
    assert.deepEqual(audit[0].actor, actorOf(a.admin));
    assert.equal(audit[0].tenantId, a.id);

    assert.equal((await unsuspend(b.admin, sender.user.id)).status, 404, 'globex cannot lift it');
    const un = await unsuspend(a.admin, sender.user.id);
    assert.equal(un.status, 200);
    assert.equal(un.json.data.suspended, false);
    assert.equal(un.json.data.level, 'normal');
    assert.equal((await unsuspend(a.admin, sender.user.id)).status, 409);
    const unAudit = await auditRowsFor(api, 'outbound.account_unsuspended', sender.user.id);
    assert.equal(unAudit.length, 1);
    assert.deepEqual(unAudit[0].actor, actorOf(a.admin));
  });

  test('whitelist: add with a profile, list per tenant, delete; unknown profiles are 422', async () => {
    const bad = await api.call('POST', '/api/v1/admin/outbound/whitelist', { token: a.admin.token, body: { user: sender.user.email, profile: 'nope' } });
    assert.equal(bad.status, 422);
    const add = await api.call('POST', '/api/v1/admin/outbound/whitelist', { token: a.admin.token, body: { user: sender.user.email, profile: 'newsletter', note: 'monthly' } });
    assert.equal(add.status, 201, add.body);
    const entry = add.json.data;
    assert.equal(entry.hourly_limit, 5000);
    assert.equal(entry.daily_limit, 50000);
    assert.equal(entry.user_id, sender.user.id);
    const dup = await api.call('POST', '/api/v1/admin/outbound/whitelist', { token: a.admin.token, body: { user: sender.user.id, profile: 'newsletter' } });
    assert.equal(dup.status, 409);

    const listA = await api.call('GET', '/api/v1/admin/outbound/whitelist', { token: a.admin.token });
    assert.deepEqual(listA.json.data.map((w: any) => w.id), [entry.id]);
    const listB = await api.call('GET', '/api/v1/admin/outbound/whitelist', { token: b.admin.token });
    assert.deepEqual(listB.json.data, []);

    assert.equal((await api.call('DELETE', `/api/v1/admin/outbound/whitelist/${entry.id}`, { token: b.admin.token })).status, 404);
    assert.equal((await api.call('DELETE', `/api/v1/admin/outbound/whitelist/${entry.id}`, { token: plain.token })).status, 403);
    assert.equal((await api.call('DELETE', `/api/v1/admin/outbound/whitelist/${entry.id}`, { token: a.admin.token })).status, 204);
    assert.equal((await api.call('DELETE', `/api/v1/admin/outbound/whitelist/${entry.id}`, { token: a.admin.token })).status, 404);
    assert.equal((await auditRowsFor(api, 'outbound.whitelist_added', sender.user.id)).length, 1);
    assert.equal((await auditRowsFor(api, 'outbound.whitelist_removed', sender.user.id)).length, 1);
  });

  test('a bad suspension body is 422', async () => {
    const res = await suspend(a.admin, plain.user.id, { reason: 42 });
    assert.equal(res.status, 422);
  });
});
