/**
 * `/api/v1/admin/tenants` and `/api/v1/tenant` through the whole HTTP pipeline (authentication,
 * policy, validation, serialization) in the current test shape: super-admin only administration,
 * soft deletion with its 30-day grace period, suspension (sign-in refused, `account.suspended`
 * queued for the tenant's webhooks), usage, the tenant admin's own tenant and MFA policy, paging,
 * and audit rows naming the API caller.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApi, type ApiHarness, type TestTenant, type TestUser, auditRowsFor } from '../support/api.js';
import { tenantScope } from '../../src/core/scope.js';
import { WEBHOOK_QUEUE, type WebhookJobPayload } from '../../src/webhooks/publisher.js';

let api: ApiHarness;
let root: TestUser;
let acme: TestTenant;
let acmeUser: TestUser;

const MISSING = '00000000-0000-4000-8000-000000000000';

before(async () => {
  api = await startApi({ config: { webhooks: { allow_private_addresses: true } } });
  root = await api.superAdmin();
  acme = await api.tenant('acme');
  acmeUser = await api.user(acme.id, { role: 'user' });
});

after(async () => {
  await api?.close();
});

const auditRows = (eventType: string, targetId: string) => auditRowsFor(api, eventType, targetId);

function asUser(u: TestUser) {
  return { type: 'user', id: u.user.id, email: u.user.email, ip: '127.0.0.1' };
}

async function createTenant(name: string, body: Record<string, unknown> = {}) {
  const res = await api.call('POST', '/api/v1/admin/tenants', { token: root.token, body: { name, ...body } });
  assert.equal(res.status, 201, res.body);
  return res.json.data;
}

describe('admin/tenants: create, read, change', () => {
  test('create answers 201 with the public fields; the audit row names the API caller', async () => {
    const res = await api.call('POST', '/api/v1/admin/tenants', { token: root.token, body: { name: 'initech', limits: { max_users: 7 } } });
    assert.equal(res.status, 201);
    const t = res.json.data;
    assert.match(t.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(Object.keys(t).sort(), [
      'created_at', 'deleted_at', 'effective_limits', 'id', 'legal_hold', 'limits', 'mfa_required', 'name', 'plan', 'purge_after', 'retention_days', 'status', 'updated_at', 'used_bytes',
    ]);
    assert.equal(t.name, 'initech');
    assert.equal(t.status, 'active');
    assert.equal(t.plan, 'default');
    assert.deepEqual(t.limits, { max_users: 7 });
    assert.equal(t.effective_limits.max_users, 7);
    assert.equal(typeof t.effective_limits.max_domains, 'number');
    assert.equal(t.mfa_required, false);
    assert.equal(t.legal_hold, false);
    assert.equal(t.deleted_at, null);
    assert.equal(t.purge_after, null);
    assert.equal(new Date(t.created_at).toISOString(), t.created_at);

    const [audit] = await auditRows('tenant.created', t.id);
    assert.deepEqual(audit.actor, asUser(root));
    assert.equal(audit.tenantId, t.id);

    const got = await api.call('GET', `/api/v1/admin/tenants/${t.id}`, { token: root.token });
    assert.equal(got.status, 200);
    assert.deepEqual(got.json.data, t);
  });

  test('validation: bad names, unknown plans and fields are 422 with field paths; duplicates 409', async () => {
    let res = await api.call('POST', '/api/v1/admin/tenants', { token: root.token, body: { name: 'bad/name' } });
    assert.equal(res.status, 422);
    assert.equal(res.json.error.code, 'VALIDATION_ERROR');
    assert.equal(res.json.error.details.field, 'name');
    assert.deepEqual(res.json.error.details.errors.map((e: { path: string }) => e.path), ['/name']);

    res = await api.call('POST', '/api/v1/admin/tenants', { token: root.token, body: { name: 'planless', plan: 'platinum' } });
    assert.equal(res.status, 422);
    assert.equal(res.json.error.details.field, 'plan');
    assert.match(res.json.error.message, /unknown plan "platinum"/);

    res = await api.call('POST', '/api/v1/admin/tenants', { token: root.token, body: { name: 'extra', owner: 'me' } });
    assert.equal(res.status, 422);
    assert.equal(res.json.error.code, 'VALIDATION_ERROR');
    assert.deepEqual(res.json.error.details.errors.map((e: { path: string }) => e.path), ['/owner'], 'the unknown field is named');

    res = await api.call('POST', '/api/v1/admin/tenants', { token: root.token, body: { name: 'lim', limits: { max_mailboxes: 3 } } });
    assert.equal(res.status, 422, 'unknown limit key');
    assert.deepEqual(res.json.error.details.errors.map((e: { path: string }) => e.path), ['/limits/max_mailboxes']);

    res = await api.call('POST', '/api/v1/admin/tenants', { token: root.token, body: { name: 'neg', limits: { max_users: -1 } } });
    assert.equal(res.status, 422);
    assert.deepEqual(res.json.error.details.errors.map((e: { path: string }) => e.path), ['/limits/max_users']);

    res = await api.call('POST', '/api/v1/admin/tenants', { token: root.token, body: { name: 'x'.repeat(65) } });
    assert.equal(res.status, 422);
    assert.deepEqual(res.json.error.details.errors.map((e: { path: string }) => e.path), ['/name']);

    res = await api.call('POST', '/api/v1/admin/tenants', { token: root.token, body: {} });
    assert.equal(res.status, 422);
    assert.deepEqual(res.json.error.details.errors.map((e: { path: string }) => e.path), ['/name']);

    res = await api.call('POST', '/api/v1/admin/tenants', { token: root.token, body: { name: 'acme' } });
    assert.equal(res.status, 409);
    assert.equal(res.json.error.code, 'CONFLICT');
    assert.equal(res.json.error.details.field, 'name');
  });

  test('PATCH changes name, plan, limits (null removes), retention, legal hold and the MFA policy, audited', async () => {
    const t = await createTenant('patchme', { limits: { max_users: 3, max_domains: 2 } });
    const res = await api.call('PATCH', `/api/v1/admin/tenants/${t.id}`, {
      token: root.token,
      body: { name: 'patched', limits: { max_users: null, daily_outbound: 5 }, retention_days: 90, legal_hold: true, mfa_required: true },
    });
    assert.equal(res.status, 200, res.body);
    const p = res.json.data;
    assert.equal(p.name, 'patched');
    assert.deepEqual(p.limits, { max_domains: 2, daily_outbound: 5 });
    assert.equal(p.effective_limits.daily_outbound, 5);
    assert.equal(p.retention_days, 90);
    assert.equal(p.legal_hold, true);
    assert.equal(p.mfa_required, true);
    const [updated] = await auditRows('tenant.updated', t.id);
    assert.deepEqual(updated.actor, asUser(root));
    assert.equal(updated.metadata.name, 'patched');
    const [mfa] = await auditRows('tenant.mfa_policy_changed', t.id);
    assert.deepEqual(mfa.actor, asUser(root));

    let r = await api.call('PATCH', `/api/v1/admin/tenants/${t.id}`, { token: root.token, body: { retention_days: null } });
    assert.equal(r.status, 200);
    assert.equal(r.json.data.retention_days, null);
    r = await api.call('PATCH', `/api/v1/admin/tenants/${t.id}`, { token: root.token, body: { retention_days: 3651 } });
    assert.equal(r.status, 422);
    // A nullable field reports each branch of its union; all of them point at the field.
    assert.deepEqual([...new Set(r.json.error.details.errors.map((e: { path: string }) => e.path))], ['/retention_days']);
    r = await api.call('PATCH', `/api/v1/admin/tenants/${t.id}`, { token: root.token, body: {} });
    assert.equal(r.status, 422, 'empty PATCH');
    r = await api.call('PATCH', `/api/v1/admin/tenants/${t.id}`, { token: root.token, body: { status: 'suspended' } });
    assert.equal(r.status, 422, 'status is not patchable (suspend/activate/delete are)');
    r = await api.call('PATCH', `/api/v1/admin/tenants/${t.id}`, { token: root.token, body: { plan: 'nope' } });
    assert.equal(r.status, 422);
    assert.equal(r.json.error.details.field, 'plan');
    r = await api.call('PATCH', `/api/v1/admin/tenants/${t.id}`, { token: root.token, body: { name: 'acme' } });
    assert.equal(r.status, 409);
    r = await api.call('PATCH', `/api/v1/admin/tenants/${MISSING}`, { token: root.token, body: { legal_hold: false } });
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'NOT_FOUND');
  });

  test('unknown and malformed ids: 404 and 400', async () => {
    let res = await api.call('GET', `/api/v1/admin/tenants/${MISSING}`, { token: root.token });
    assert.equal(res.status, 404);
    assert.equal(res.json.error.code, 'NOT_FOUND');
    res = await api.call('GET', '/api/v1/admin/tenants/acme', { token: root.token });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 'INVALID_REQUEST');
    for (const path of [`/api/v1/admin/tenants/${MISSING}/suspend`, `/api/v1/admin/tenants/${MISSING}/activate`]) {
      res = await api.call('POST', path, { token: root.token });
      assert.equal(res.status, 404, path);
    }
    res = await api.call('DELETE', `/api/v1/admin/tenants/${MISSING}`, { token: root.token });
    assert.equal(res.status, 404);
    res = await api.call('GET', `/api/v1/admin/tenants/${MISSING}/usage`, { token: root.token });
    assert.equal(res.status, 404);
  });
});

describe('admin/tenants: roles', () => {
  test('only a super-admin: tenant admins and users are 403, no credentials 401', async () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/api/v1/admin/tenants'],
      ['POST', '/api/v1/admin/tenants', { name: 'sneaky' }],
      ['GET', `/api/v1/admin/tenants/${acme.id}`],
      ['PATCH', `/api/v1/admin/tenants/${acme.id}`, { plan: 'default' }],
      ['DELETE', `/api/v1/admin/tenants/${acme.id}`],
      ['POST', `/api/v1/admin/tenants/${acme.id}/suspend`],
      ['POST', `/api/v1/admin/tenants/${acme.id}/activate`],
      ['GET', `/api/v1/admin/tenants/${acme.id}/usage`],
    ];
    for (const [method, path, body] of routes) {
      for (const who of [acme.admin, acmeUser]) {
        const res = await api.call(method, path, { token: who.token, body });
        assert.equal(res.status, 403, `${who.user.role} ${method} ${path}`);
        assert.equal(res.json.error.code, 'FORBIDDEN');
      }
      const anon = await api.call(method, path, { body });
      assert.equal(anon.status, 401, `anonymous ${method} ${path}`);
    }
    const still = await api.app.tenancy.tenants.get(tenantScope(acme.id), acme.id);
    assert.equal(still.status, 'active', 'nothing changed');
  });

  test('an API key needs the admin scope; with it the audit actor is the key', async () => {
    const readOnly = await api.deps.apiKeys.create({ tenantId: root.user.tenantId, userId: root.user.id, name: 'ro', scopes: ['read'] });
    let res = await api.call('GET', '/api/v1/admin/tenants', { token: readOnly.key });
    assert.equal(res.status, 403);
    assert.equal(res.json.error.details.required_scope, 'admin');
    const admin = await api.deps.apiKeys.create({ tenantId: root.user.tenantId, userId: root.user.id, name: 'ops', scopes: ['admin'] });
    res = await api.call('POST', '/api/v1/admin/tenants', { token: admin.key, body: { name: 'keyed' } });
    assert.equal(res.status, 201);
    const [audit] = await auditRows('tenant.created', res.json.data.id);
    assert.deepEqual(audit.actor, { type: 'api_key', id: admin.id, email: root.user.email, ip: '127.0.0.1' });
  });
});

describe('admin/tenants: list', () => {
  test('cursor paging by name: limit, cursor, has_more; limit > 100 and bad cursors are 400', async () => {
    for (const n of ['page-a', 'page-b', 'page-c', 'page-d', 'page-e']) await createTenant(n);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const res = await api.call('GET', `/api/v1/admin/tenants?limit=2${q}`, { token: root.token });
      assert.equal(res.status, 200);
      assert.ok(res.json.data.length <= 2);
      if (res.json.pagination.has_more) assert.equal(res.json.data.length, 2);
      seen.push(...res.json.data.map((t: { name: string }) => t.name));
      cursor = res.json.pagination.cursor;
      assert.equal(cursor === null, !res.json.pagination.has_more);
      pages++;
    } while (cursor && pages < 50);
    const all = await api.call('GET', '/api/v1/admin/tenants?limit=100', { token: root.token });
    assert.deepEqual(seen, all.json.data.map((t: { name: string }) => t.name));
    assert.deepEqual(seen, [...seen].sort(), 'ordered by name');
    assert.ok(['page-a', 'page-b', 'page-c', 'page-d', 'page-e', 'acme', 'system'].every((n) => seen.includes(n)));
    assert.equal(new Set(seen).size, seen.length, 'no tenant twice');

    let res = await api.call('GET', '/api/v1/admin/tenants?limit=101', { token: root.token });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 'INVALID_REQUEST');
    res = await api.call('GET', '/api/v1/admin/tenants?limit=0', { token: root.token });
    assert.equal(res.status, 400);
    res = await api.call('GET', '/api/v1/admin/tenants?cursor=%%%', { token: root.token });
    assert.equal(res.status, 400);
    res = await api.call('GET', `/api/v1/admin/tenants?cursor=${Buffer.from('{"x":1}').toString('base64url')}`, { token: root.token });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.details.field, 'cursor');
    res = await api.call('GET', '/api/v1/admin/tenants?status=gone', { token: root.token });
    assert.equal(res.status, 400);
    res = await api.call('GET', '/api/v1/admin/tenants?sort=name', { token: root.token });
    assert.equal(res.status, 400, 'unknown query parameter');
  });
});

describe('admin/tenants: suspend, activate, delete', () => {
  test('suspend: users are refused, account.suspended is queued once for the tenant\'s webhooks; activate lifts it', async () => {
    const t = await api.tenant('suspendme');
    const hook = await api.call('POST', '/api/v1/webhooks', { token: t.admin.token, body: { url: 'http://127.0.0.1:9/hook', events: ['account.suspended'] } });
    assert.equal(hook.status, 201, hook.body);
    const webhookId = hook.json.data.id as string;
    const jobs = async () => (await api.app.queue.list({ queue: WEBHOOK_QUEUE, limit: 1000 })).jobs.filter((j) => (j.payload as WebhookJobPayload).webhook_id === webhookId);

    const res = await api.call('POST', `/api/v1/admin/tenants/${t.id}/suspend`, { token: root.token });
    assert.equal(res.status, 200);
    assert.equal(res.json.data.status, 'suspended');
    const denied = await api.call('GET', '/api/v1/tenant', { token: t.admin.token });
    assert.equal(denied.status, 401);
    assert.match(denied.json.error.message, /suspended/);

    const queued = await jobs();
    assert.equal(queued.length, 1);
    const payload = queued[0].payload as WebhookJobPayload;
    assert.equal(payload.event, 'account.suspended');
    assert.equal(payload.tenant_id, t.id);
    assert.equal(payload.data.tenant_id, t.id);
    assert.equal(payload.data.tenant_name, 'suspendme');

    const again = await api.call('POST', `/api/v1/admin/tenants/${t.id}/suspend`, { token: root.token });
    assert.equal(again.status, 200);
    assert.equal((await jobs()).length, 1, 'suspending a suspended tenant publishes nothing');
    const [audit] = await auditRows('tenant.suspended', t.id);
    assert.deepEqual(audit.actor, asUser(root));

    const act = await api.call('POST', `/api/v1/admin/tenants/${t.id}/activate`, { token: root.token });
    assert.equal(act.status, 200);
    assert.equal(act.json.data.status, 'active');
    assert.equal((await api.call('GET', '/api/v1/tenant', { token: t.admin.token })).status, 200);
    const [activated] = await auditRows('tenant.activated', t.id);
    assert.deepEqual(activated.actor, asUser(root));
  });

  test('delete is soft with a 30-day grace period; activate restores; a deleted tenant cannot be suspended', async () => {
    const t = await createTenant('deleteme');
    const res = await api.call('DELETE', `/api/v1/admin/tenants/${t.id}`, { token: root.token });
    assert.equal(res.status, 200);
    const d = res.json.data;
    assert.equal(d.status, 'deleted');
    assert.ok(d.deleted_at);
    assert.equal(Date.parse(d.purge_after) - Date.parse(d.deleted_at), 30 * 86_400_000);
    const [audit] = await auditRows('tenant.deleted', t.id);
    assert.deepEqual(audit.actor, asUser(root));

    const listed = await api.call('GET', '/api/v1/admin/tenants?limit=100', { token: root.token });
    assert.ok(!listed.json.data.some((x: { id: string }) => x.id === t.id), 'deleted tenants are not listed by default');
    const deleted = await api.call('GET', '/api/v1/admin/tenants?status=deleted', { token: root.token });
    assert.deepEqual(deleted.json.data.map((x: { id: string }) => x.id), [t.id]);
    const active = await api.call('GET', '/api/v1/admin/tenants?status=active&limit=100', { token: root.token });
    assert.ok(active.json.data.every((x: { status: string }) => x.status === 'active'));

    const sus = await api.call('POST', `/api/v1/admin/tenants/${t.id}/suspend`, { token: root.token });
    assert.equal(sus.status, 409);
    assert.equal(sus.json.error.code, 'CONFLICT');

    const restored = await api.call('POST', `/api/v1/admin/tenants/${t.id}/activate`, { token: root.token });
    assert.equal(restored.status, 200);
    assert.equal(restored.json.data.status, 'active');
    assert.equal(restored.json.data.deleted_at, null);
    assert.equal(restored.json.data.purge_after, null);
  });

  test('a super-admin cannot suspend or delete their own tenant', async () => {
    for (const [method, path] of [['POST', `/api/v1/admin/tenants/${root.user.tenantId}/suspend`], ['DELETE', `/api/v1/admin/tenants/${root.user.tenantId}`]] as const) {
      const res = await api.call(method, path, { token: root.token });
      assert.equal(res.status, 409, `${method} ${path}`);
      assert.equal(res.json.error.code, 'CONFLICT');
    }
    assert.equal((await api.call('GET', '/api/v1/admin/tenants?limit=1', { token: root.token })).status, 200, 'still signed in');
  });
});

describe('usage', () => {
  test('admin/tenants/:id/usage and /tenant/usage count rows against the effective limits', async () => {
    const t = await api.tenant('usage');
    await api.app.tenancy.domains.add(tenantScope(t.id), { name: 'usage.example' });
    await api.app.tenancy.mailboxes.add(tenantScope(t.id), { address: 'box@usage.example' });
    await api.app.tenancy.aliases.add(tenantScope(t.id), { address: 'al@usage.example', targets: ['box@usage.example'] });
    await api.call('PATCH', `/api/v1/admin/tenants/${t.id}`, { token: root.token, body: { limits: { max_users: 9 } } });
    const res = await api.call('GET', `/api/v1/admin/tenants/${t.id}/usage`, { token: root.token });
    assert.equal(res.status, 200);
    assert.deepEqual({ ...res.json.data, limits: undefined }, { users: 1, domains: 1, mailboxes: 1, aliases: 1, used_bytes: 0, limits: undefined });
    assert.equal(res.json.data.limits.max_users, 9);
    const own = await api.call('GET', '/api/v1/tenant/usage', { token: t.admin.token });
    assert.equal(own.status, 200);
    assert.deepEqual(own.json.data, res.json.data);
  });
});

describe('/tenant', () => {
  test('a tenant admin reads its own tenant and sets the MFA policy (audited); nothing else is patchable', async () => {
    const res = await api.call('GET', '/api/v1/tenant', { token: acme.admin.token });
    assert.equal(res.status, 200);
    assert.equal(res.json.data.id, acme.id);
    assert.equal(res.json.data.name, 'acme');

    const on = await api.call('PATCH', '/api/v1/tenant', { token: acme.admin.token, body: { mfa_required: true } });
    assert.equal(on.status, 200);
    assert.equal(on.json.data.mfa_required, true);
    const [audit] = await auditRows('tenant.mfa_policy_changed', acme.id);
    assert.deepEqual(audit.actor, asUser(acme.admin));
    assert.deepEqual(audit.metadata, { mfa_required: true });
    const off = await api.call('PATCH', '/api/v1/tenant', { token: acme.admin.token, body: { mfa_required: false } });
    assert.equal(off.json.data.mfa_required, false);

    for (const body of [{ plan: 'default' }, { mfa_required: true, limits: { max_users: 1000 } }, {}, { mfa_required: 'yes' }]) {
      const r = await api.call('PATCH', '/api/v1/tenant', { token: acme.admin.token, body });
      assert.equal(r.status, 422, JSON.stringify(body));
      assert.equal(r.json.error.code, 'VALIDATION_ERROR');
    }
    assert.equal((await api.app.tenancy.tenants.get(tenantScope(acme.id), acme.id)).mfaRequired, false);
  });

  test('plain users and domain admins may not use it; each admin sees only its own tenant', async () => {
    const other = await api.tenant('other');
    const d = await api.app.tenancy.domains.add(tenantScope(other.id), { name: 'other.example' });
    const domainAdmin = await api.user(other.id, { role: 'domain_admin', domainScope: [d.id] });
    for (const who of [acmeUser, domainAdmin]) {
      for (const [method, path, body] of [['GET', '/api/v1/tenant'], ['GET', '/api/v1/tenant/usage'], ['PATCH', '/api/v1/tenant', { mfa_required: true }]] as const) {
        const r = await api.call(method, path, { token: who.token, body });
        assert.equal(r.status, 403, `${who.user.role} ${method} ${path}`);
      }
    }
    const mine = await api.call('GET', '/api/v1/tenant', { token: other.admin.token });
    assert.equal(mine.json.data.id, other.id);
    assert.ok(!mine.body.includes(acme.id));
  });
});
