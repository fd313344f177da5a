/**
 * `/api/v1/domains` (SPEC §9, §11): every route and its error cases, tenant isolation and the
 * domain admin's view, the DNS records to publish, and the verify action against a real DNS
 * server on loopback (test/support/dns-server.ts) with zones that are correct, missing, wrong,
 * failing (SERVFAIL) and silent (timeout). The SPF/DKIM/DMARC/MX rules of dns-verify.ts are also
 * checked one by one through the same server. No response and no log line may carry a DKIM
 * private key (SPEC §10).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { listAudit } from '../../src/security/audit.js';
import { createResolver } from '../../src/dns/index.js';
import { expectedDnsRecords } from '../../src/core/domains/dns-records.js';
import { verifyDnsRecords, type DnsCheckStatus } from '../../src/core/domains/dns-verify.js';
import { DkimKeyService } from '../../src/emailauth/dkim-keys.js';
import { startDnsServer, type RecordSet, type TestDnsServer } from '../support/dns-server.js';
import { startApi, type ApiHarness, type ApiResponse, type CallOptions, type TestTenant, type TestUser } from '../support/api.js';

const HOST = 'mail.test';
const HOST_V4 = '192.0.2.25';
const HOST_V6 = '2001:db8::25';
const D = '/api/v1/domains';

describe('api: domains', () => {
  let dns: TestDnsServer;
  let api: ApiHarness;
  let acme: TestTenant;
  let beta: TestTenant;
  let root: TestUser;
  const bodies: string[] = [];

  async function call(method: string, path: string, opts: CallOptions = {}): Promise<ApiResponse> {
    const res = await api.call(method, path, opts);
    bodies.push(res.body);
    return res;
  }

  async function addDomain(t: TestTenant, name: string): Promise<{ id: string; name: string }> {
    const res = await call('POST', D, { token: t.admin.token, body: { name } });
    assert.equal(res.status, 201, res.body);
    return res.json.data;
  }

  before(async () => {
    dns = await startDnsServer({ [HOST]: { A: [HOST_V4], AAAA: [HOST_V6] } });
    api = await startApi({
      config: { server: { hostname: HOST }, dns: { servers: [dns.address], timeout_ms: 300, tries: 1, cache_ttl_seconds: 0, negative_cache_ttl_seconds: 0 } },
    });
    acme = await api.tenant('acme');
    beta = await api.tenant('beta');
    root = await api.superAdmin();
  });
  after(async () => {
    await api?.close();
    await dns?.close();
  });

  describe('create', () => {
    test('a tenant admin adds a domain: 201, normalised, audited, with a DKIM key', async () => {
      const res = await call('POST', D, { token: acme.admin.token, body: { name: 'Acme.Example.' } });
      assert.equal(res.status, 201, res.body);
      const d = res.json.data;
      assert.equal(d.name, 'acme.example');
      assert.equal(d.tenant_id, acme.id);
      assert.equal(d.status, 'active');
      assert.equal(d.catch_all_mailbox_id, null);
      assert.match(d.created_at, /^\d{4}-\d\d-\d\dT/);
      assert.deepEqual(Object.keys(d).sort(), ['catch_all_mailbox_id', 'created_at', 'id', 'name', 'status', 'tenant_id', 'updated_at']);
      const keys = await api.app.db.kysely.selectFrom('dkim_keys').selectAll().where('domain_id', '=', d.id).execute();
      assert.equal(keys.length, 1);
      assert.match(keys[0].selector, /^mr\d{6}$/);
      assert.equal(keys[0].algorithm, 'rsa-sha256');
      const audit = (await listAudit(api.app.db, systemScope, { eventType: 'domain.created', targetId: d.id }))[0];
      assert.equal(audit.tenantId, acme.id);
      assert.deepEqual(audit.actor, { type: 'user', id: acme.admin.user.id, email: acme.admin.user.email, ip: '127.0.0.1' });
    });

    test('body validation: unknown field, missing or malformed name', async () => {
      const unknown = await call('POST', D, { token: acme.admin.token, body: { name: 'x.example', owner: 'me' } });
      assert.equal(unknown.status, 422);
      assert.equal(unknown.json.error.code, 'VALIDATION_ERROR');
      const missing = await call('POST', D, { token: acme.admin.token, body: {} });
      assert.equal(missing.status, 422);
      assert.equal(missing.json.error.details.errors[0].path, '/name');
      const long = await call('POST', D, { token: acme.admin.token, body: { name: `${'a'.repeat(250)}.com` } });
      assert.equal(long.status, 422);
      const bad = await call('POST', D, { token: acme.admin.token, body: { name: 'not a domain' } });
      assert.equal(bad.status, 422);
      assert.equal(bad.json.error.code, 'VALIDATION_ERROR');
      assert.equal(bad.json.error.details.field, 'name');
      const badTenant = await call('POST', D, { token: acme.admin.token, body: { name: 'y.example', tenant_id: 'nope' } });
      assert.equal(badTenant.status, 422);
    });

    test('a hosted name is CONFLICT for its owner and for another tenant alike', async () => {
      await addDomain(acme, 'taken.example');
      const own = await call('POST', D, { token: acme.admin.token, body: { name: 'TAKEN.example' } });
      const other = await call('POST', D, { token: beta.admin.token, body: { name: 'taken.example' } });
      assert.equal(own.status, 409);
      assert.equal(other.status, 409);
      assert.equal(other.json.error.code, 'CONFLICT');
      assert.equal(other.json.error.message, own.json.error.message);
      assert.ok(!other.body.includes(acme.id) && !other.body.includes('acme'), 'the owner is not disclosed');
    });

    test('tenant_id: another tenant is 404 for a tenant admin; required for a super-admin', async () => {
      const cross = await call('POST', D, { token: acme.admin.token, body: { name: 'cross.example', tenant_id: beta.id } });
      assert.equal(cross.status, 404);
      assert.equal(cross.json.error.code, 'NOT_FOUND');
      const none = await call('POST', D, { token: root.token, body: { name: 'root.example' } });
      assert.equal(none.status, 422);
      assert.equal(none.json.error.details.field, 'tenant_id');
      const ok = await call('POST', D, { token: root.token, body: { name: 'root.example', tenant_id: beta.id } });
      assert.equal(ok.status, 201, ok.body);
      assert.equal(ok.json.data.tenant_id, beta.id);
      const own = await call('POST', D, { token: acme.admin.token, body: { name: 'own-tenant.example', tenant_id: acme.id } });
      assert.equal(own.status, 201);
    });

    test('the plan\'s max_domains is enforced with 409 and its numbers', async () => {
      const tiny = await api.app.tenancy.tenants.create(systemScope, { name: 'tiny', limits: { max_domains: 1 } });
      const admin = await api.user(tiny.id, { role: 'tenant_admin', email: 'admin@tiny.test' });
      assert.equal((await call('POST', D, { token: admin.token, body: { name: 'tiny1.example' } })).status, 201);
      const res = await call('POST', D, { token: admin.token, body: { name: 'tiny2.example' } });
      assert.equal(res.status, 409);
      assert.equal(res.json.error.code, 'CONFLICT');
      assert.deepEqual(res.json.error.details, { limit: 'max_domains', max: 1, current: 1 });
    });

    test('domain admins, users and anonymous callers cannot add domains', async () => {
      const d = await addDomain(acme, 'da-create.example');
      const da = await api.user(acme.id, { role: 'domain_admin', domainScope: [d.id] });
      const user = await api.user(acme.id);
      assert.equal((await call('POST', D, { token: da.token, body: { name: 'da.example' } })).status, 403);
      assert.equal((await call('POST', D, { token: user.token, body: { name: 'u.example' } })).status, 403);
      const anon = await call('POST', D, { body: { name: 'anon.example' } });
      assert.equal(anon.status, 401);
      assert.equal(anon.json.error.code, 'UNAUTHORIZED');
    });
  });

  describe('list and get', () => {
    let t: TestTenant;
    const names = ['c-list.example', 'a-list.example', 'b-list.example', 'd-list.example'];
    const ids: Record<string, string> = {};
    before(async () => {
      t = await api.tenant('lister');
      for (const n of names) ids[n] = (await addDomain(t, n)).id;
    });

    test('a tenant admin lists its own domains by name, paged with a cursor', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const q: string = cursor ? `?limit=3&cursor=${cursor}` : '?limit=3';
        const res = await call('GET', `${D}${q}`, { token: t.admin.token });
        assert.equal(res.status, 200, res.body);
        seen.push(...res.json.data.map((d: { name: string }) => d.name));
        cursor = res.json.pagination.cursor;
        assert.equal(res.json.pagination.has_more, cursor !== null);
        pages++;
      } while (cursor);
      assert.deepEqual(seen, [...names].sort());
      assert.equal(pages, 2);
      const all = await call('GET', D, { token: t.admin.token });
      assert.ok(all.json.data.every((d: { tenant_id: string }) => d.tenant_id === t.id));
      // Another tenant's filter yields nothing rather than its domains.
      const cross = await call('GET', `${D}?tenant_id=${acme.id}`, { token: t.admin.token });
      assert.equal(cross.status, 200);
      assert.deepEqual(cross.json.data, []);
    });

    test('query validation: limit 1..100, well-formed cursor, no unknown parameters', async () => {
      assert.equal((await call('GET', `${D}?limit=101`, { token: t.admin.token })).status, 400);
      assert.equal((await call('GET', `${D}?limit=0`, { token: t.admin.token })).status, 400);
      const cur = await call('GET', `${D}?cursor=%%%`, { token: t.admin.token });
      assert.equal(cur.status, 400);
      assert.equal(cur.json.error.code, 'INVALID_REQUEST');
      assert.equal((await call('GET', `${D}?cursor=${Buffer.from('{"x":1}').toString('base64url')}`, { token: t.admin.token })).status, 400);
      assert.equal((await call('GET', `${D}?sort=name`, { token: t.admin.token })).status, 400);
    });

    test('a super-admin sees every tenant\'s domains and can filter by tenant', async () => {
      const all = await call('GET', `${D}?limit=100`, { token: root.token });
      const tenants = new Set(all.json.data.map((d: { tenant_id: string }) => d.tenant_id));
      assert.ok(tenants.has(t.id) && tenants.has(acme.id) && tenants.has(beta.id));
      const one = await call('GET', `${D}?tenant_id=${t.id}`, { token: root.token });
      assert.deepEqual(one.json.data.map((d: { name: string }) => d.name), [...names].sort());
    });

    test('a domain admin sees only the domains in their scope', async () => {
      const da = await api.user(t.id, { role: 'domain_admin', domainScope: [ids['b-list.example'], ids['d-list.example']] });
      const page1 = await call('GET', `${D}?limit=1`, { token: da.token });
      assert.equal(page1.status, 200);
      assert.deepEqual(page1.json.data.map((d: { name: string }) => d.name), ['b-list.example']);
      assert.equal(page1.json.pagination.has_more, true);
      const page2 = await call('GET', `${D}?limit=1&cursor=${page1.json.pagination.cursor}`, { token: da.token });
      assert.deepEqual(page2.json.data.map((d: { name: string }) => d.name), ['d-list.example']);
      assert.equal((await call('GET', `${D}/${ids['b-list.example']}`, { token: da.token })).status, 200);
      const hidden = await call('GET', `${D}/${ids['a-list.example']}`, { token: da.token });
      assert.equal(hidden.status, 404);
      assert.equal(hidden.json.error.code, 'NOT_FOUND');
    });

    test('get: own 200; another tenant\'s id 404 like an unknown id; malformed id 400; users 403', async () => {
      const own = await call('GET', `${D}/${ids['a-list.example']}`, { token: t.admin.token });
      assert.equal(own.status, 200);
      assert.equal(own.json.data.name, 'a-list.example');
      const cross = await call('GET', `${D}/${ids['a-list.example']}`, { token: acme.admin.token });
      const unknown = await call('GET', `${D}/00000000-0000-4000-8000-000000000000`, { token: acme.admin.token });
      assert.equal(cross.status, 404);
      assert.equal(unknown.status, 404);
      assert.equal(cross.json.error.code, unknown.json.error.code);
      assert.ok(!cross.body.includes('a-list'), 'nothing about the row leaks');
      assert.equal((await call('GET', `${D}/not-a-uuid`, { token: t.admin.token })).status, 400);
      const user = await api.user(t.id);
      assert.equal((await call('GET', D, { token: user.token })).status, 403);
      assert.equal((await call('GET', `${D}/${ids['a-list.example']}`, { token: user.token })).status, 403);
    });
  });

  describe('update', () => {
    test('status: disable and enable, audited; invalid values and empty bodies refused', async () => {
      const d = await addDomain(acme, 'status.example');
      const off = await call('PATCH', `${D}/${d.id}`, { token: acme.admin.token, body: { status: 'disabled' } });
      assert.equal(off.status, 200, off.body);
      assert.equal(off.json.data.status, 'disabled');
      assert.equal((await listAudit(api.app.db, systemScope, { eventType: 'domain.disabled', targetId: d.id })).length, 1);
      const on = await call('PATCH', `${D}/${d.id}`, { token: acme.admin.token, body: { status: 'active' } });
      assert.equal(on.json.data.status, 'active');
      assert.equal((await call('PATCH', `${D}/${d.id}`, { token: acme.admin.token, body: { status: 'deleted' } })).status, 422);
      assert.equal((await call('PATCH', `${D}/${d.id}`, { token: acme.admin.token, body: {} })).status, 422);
      assert.equal((await call('PATCH', `${D}/${d.id}`, { token: acme.admin.token, body: { name: 'renamed.example' } })).status, 422);
      assert.equal((await call('PATCH', `${D}/${d.id}`, { token: beta.admin.token, body: { status: 'disabled' } })).status, 404);
      assert.equal((await api.app.tenancy.domains.get(systemScope, d.id)).status, 'active', 'the other tenant changed nothing');
    });

    test('catch-all: a mailbox of the tenant, null clears; others\' or unknown mailboxes are 422', async () => {
      const d = await addDomain(acme, 'catch.example');
      const mbox = await api.app.tenancy.mailboxes.add(tenantScope(acme.id), { address: 'all@catch.example' });
      const set = await call('PATCH', `${D}/${d.id}`, { token: acme.admin.token, body: { catch_all_mailbox_id: mbox.id } });
      assert.equal(set.status, 200, set.body);
      assert.equal(set.json.data.catch_all_mailbox_id, mbox.id);
      assert.equal((await listAudit(api.app.db, systemScope, { eventType: 'domain.catch_all_changed', targetId: d.id })).length, 1);

      const betaDomain = await addDomain(beta, 'beta-catch.example');
      const betaBox = await api.app.tenancy.mailboxes.add(tenantScope(beta.id), { address: 'x@beta-catch.example' });
      for (const id of [betaBox.id, '00000000-0000-4000-8000-000000000000']) {
        const res = await call('PATCH', `${D}/${d.id}`, { token: acme.admin.token, body: { catch_all_mailbox_id: id, status: 'disabled' } });
        assert.equal(res.status, 422, res.body);
        assert.equal(res.json.error.details.field, 'catch_all_mailbox_id');
        assert.equal(res.json.error.message, 'catch-all mailbox not found');
      }
      // A super-admin can see both, but the mailbox must belong to the domain's tenant.
      const rootCross = await call('PATCH', `${D}/${d.id}`, { token: root.token, body: { catch_all_mailbox_id: betaBox.id } });
      assert.equal(rootCross.status, 422);
      assert.equal(rootCross.json.error.details.field, 'catch_all_mailbox_id');
      const after = await api.app.tenancy.domains.get(systemScope, d.id);
      assert.equal(after.catchAllMailboxId, mbox.id);
      assert.equal(after.status, 'active', 'a rejected request changes nothing');
      assert.ok(betaDomain.id);

      const clear = await call('PATCH', `${D}/${d.id}`, { token: acme.admin.token, body: { catch_all_mailbox_id: null } });
      assert.equal(clear.status, 200);
      assert.equal(clear.json.data.catch_all_mailbox_id, null);
    });

    test('a domain admin changes their domains only, and only to mailboxes they manage', async () => {
      const mine = await addDomain(acme, 'da-mine.example');
      const other = await addDomain(acme, 'da-other.example');
      const da = await api.user(acme.id, { role: 'domain_admin', domainScope: [mine.id] });
      const ownBox = await api.app.tenancy.mailboxes.add(tenantScope(acme.id), { address: 'box@da-mine.example' });
      const otherBox = await api.app.tenancy.mailboxes.add(tenantScope(acme.id), { address: 'box@da-other.example' });
      assert.equal((await call('PATCH', `${D}/${mine.id}`, { token: da.token, body: { status: 'disabled' } })).status, 200);
      assert.equal((await call('PATCH', `${D}/${mine.id}`, { token: da.token, body: { catch_all_mailbox_id: ownBox.id } })).status, 200);
      const foreignBox = await call('PATCH', `${D}/${mine.id}`, { token: da.token, body: { catch_all_mailbox_id: otherBox.id } });
      assert.equal(foreignBox.status, 422);
      assert.equal(foreignBox.json.error.details.field, 'catch_all_mailbox_id');
      assert.equal((await call('PATCH', `${D}/${other.id}`, { token: da.token, body: { status: 'disabled' } })).status, 404);
      const user = await api.user(acme.id);
      assert.equal((await call('PATCH', `${D}/${mine.id}`, { token: user.token, body: { status: 'active' } })).status, 403);
    });
  });

  describe('delete', () => {
    test('removes the domain, its DKIM key rows and their sealed private keys', async () => {
      const d = await addDomain(acme, 'bye.example');
      const keyRow = await api.app.db.kysely.selectFrom('dkim_keys').selectAll().where('domain_id', '=', d.id).executeTakeFirstOrThrow();
      const res = await call('DELETE', `${D}/${d.id}`, { token: acme.admin.token });
      assert.equal(res.status, 204);
      assert.equal(res.body, '');
      assert.equal((await call('GET', `${D}/${d.id}`, { token: acme.admin.token })).status, 404);
      assert.equal((await api.app.db.kysely.selectFrom('dkim_keys').select('id').where('domain_id', '=', d.id).execute()).length, 0);
      assert.equal((await api.app.db.kysely.selectFrom('secrets').select('id').where('id', '=', keyRow.private_key_secret_id).execute()).length, 0);
      assert.equal((await listAudit(api.app.db, systemScope, { eventType: 'domain.removed', targetId: d.id })).length, 1);
      assert.equal((await call('DELETE', `${D}/${d.id}`, { token: acme.admin.token })).status, 404);
    });

    test('refused with 409 while mailboxes use it; other tenants 404; domain admins 403', async () => {
      const d = await addDomain(acme, 'busy.example');
      await api.app.tenancy.mailboxes.add(tenantScope(acme.id), { address: 'a@busy.example' });
      const busy = await call('DELETE', `${D}/${d.id}`, { token: acme.admin.token });
      assert.equal(busy.status, 409);
      assert.equal(busy.json.error.code, 'CONFLICT');
      assert.deepEqual(busy.json.error.details, { mailboxes: 1, aliases: 0 });
      assert.equal((await call('DELETE', `${D}/${d.id}`, { token: beta.admin.token })).status, 404);
      const da = await api.user(acme.id, { role: 'domain_admin', domainScope: [d.id] });
      assert.equal((await call('DELETE', `${D}/${d.id}`, { token: da.token })).status, 403);
      assert.equal((await api.app.tenancy.domains.get(systemScope, d.id)).name, 'busy.example');
      assert.equal((await api.app.db.kysely.selectFrom('dkim_keys').select('id').where('domain_id', '=', d.id).execute()).length, 1, 'keys kept');
    });
  });

  describe('dns-records', () => {
    test('MX, SPF, DKIM and DMARC for server.hostname, with the public key only', async () => {
      const d = await addDomain(acme, 'records.example');
      const res = await call('GET', `${D}/${d.id}/dns-records`, { token: acme.admin.token });
      assert.equal(res.status, 200, res.body);
      const data = res.json.data;
      assert.equal(data.domain_id, d.id);
      assert.equal(data.domain, 'records.example');
      assert.equal(data.hostname, HOST);
      assert.equal(data.dkim_keys.length, 1);
      const key = data.dkim_keys[0];
      assert.deepEqual(Object.keys(key).sort(), ['algorithm', 'created_at', 'id', 'public_key', 'selector', 'status']);
      assert.deepEqual(
        data.records.map((r: any) => [r.purpose, r.type, r.name, r.value, r.selector]),
        [
          ['mx', 'MX', 'records.example', `10 ${HOST}`, null],
          ['spf', 'TXT', 'records.example', `v=spf1 mx a:${HOST} -all`, null],
          ['dkim', 'TXT', `${key.selector}._domainkey.records.example`, `v=DKIM1; k=rsa; p=${key.public_key}`, key.selector],
          ['dmarc', 'TXT', '_dmarc.records.example', 'v=DMARC1; p=quarantine; rua=mailto:postmaster@records.example', null],
        ],
      );
      assert.ok(data.records.every((r: any) => typeof r.description === 'string' && r.description.length > 0));
    });

    test('a domain whose key is missing gets one on the next call', async () => {
      const d = await addDomain(acme, 'heal.example');
      await api.app.db.kysely.deleteFrom('dkim_keys').where('domain_id', '=', d.id).execute();
      const res = await call('GET', `${D}/${d.id}/dns-records`, { token: acme.admin.token });
      assert.equal(res.status, 200);
      assert.equal(res.json.data.dkim_keys.length, 1);
      assert.equal(res.json.data.records.filter((r: any) => r.purpose === 'dkim').length, 1);
      assert.equal((await api.app.db.kysely.selectFrom('dkim_keys').select('id').where('domain_id', '=', d.id).execute()).length, 1);
    });

    test('isolation: other tenant 404, a domain admin\'s other domain 404, users 403, read-only key allowed', async () => {
      const d = await addDomain(acme, 'iso-records.example');
      assert.equal((await call('GET', `${D}/${d.id}/dns-records`, { token: beta.admin.token })).status, 404);
      const elsewhere = await addDomain(acme, 'iso-other.example');
      const da = await api.user(acme.id, { role: 'domain_admin', domainScope: [elsewhere.id] });
      assert.equal((await call('GET', `${D}/${d.id}/dns-records`, { token: da.token })).status, 404);
      assert.equal((await call('GET', `${D}/${elsewhere.id}/dns-records`, { token: da.token })).status, 200);
      const user = await api.user(acme.id);
      assert.equal((await call('GET', `${D}/${d.id}/dns-records`, { token: user.token })).status, 403);
      const ro = await api.deps.apiKeys.create({ tenantId: acme.id, userId: acme.admin.user.id, name: 'read-only', scopes: ['read'] });
      assert.equal((await call('GET', `${D}/${d.id}/dns-records`, { token: ro.key })).status, 200);
      const verify = await call('POST', `${D}/${d.id}/verify`, { token: ro.key });
      assert.equal(verify.status, 403);
      assert.equal(verify.json.error.details.required_scope, 'admin');
    });
  });

  describe('verify', () => {
    /** Publishes (or, with a purpose → override map, publishes modified) records for the domain. */
    async function publish(domainId: string, overrides: Partial<Record<'mx' | 'spf' | 'dkim' | 'dmarc', RecordSet | null>> = {}) {
      const res = await call('GET', `${D}/${domainId}/dns-records`, { token: acme.admin.token });
      const records = res.json.data.records as { purpose: 'mx' | 'spf' | 'dkim' | 'dmarc'; name: string; value: string }[];
      const zones = new Map<string, RecordSet>();
      const add = (name: string, set: RecordSet) => zones.set(name, { ...(zones.get(name) ?? {}), ...set });
      for (const r of records) {
        const o = overrides[r.purpose];
        if (o === null) continue;
        if (o) add(r.name, o);
        else if (r.purpose === 'mx') add(r.name, { MX: [{ priority: 10, exchange: r.value.split(' ')[1] }] });
        else add(r.name, { TXT: [...((zones.get(r.name)?.TXT as string[]) ?? []), r.value] });
      }
      for (const [name, set] of zones) dns.set(name, set);
      return records;
    }

    function statuses(res: ApiResponse): Record<string, DnsCheckStatus> {
      return Object.fromEntries(res.json.data.records.map((r: any) => [r.purpose, r.status]));
    }

    test('a correct zone verifies; the outcome is audited', async () => {
      const d = await addDomain(acme, 'good.example');
      // Unrelated TXT records at the apex do not disturb SPF.
      await publish(d.id);
      dns.set('good.example', { ...dns.zones.get('good.example'), TXT: ['google-site-verification=abc', ...(dns.zones.get('good.example')!.TXT ?? [])] });
      const res = await call('POST', `${D}/${d.id}/verify`, { token: acme.admin.token });
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.data.verified, true);
      assert.equal(res.json.data.domain, 'good.example');
      assert.deepEqual(statuses(res), { mx: 'ok', spf: 'ok', dkim: 'ok', dmarc: 'ok' });
      const spf = res.json.data.records.find((r: any) => r.purpose === 'spf');
      assert.deepEqual(spf.found, [`v=spf1 mx a:${HOST} -all`]);
      assert.ok(res.json.data.records.every((r: any) => r.message.length > 0));
      const rows = await listAudit(api.app.db, systemScope, { eventType: 'domain.verified', targetId: d.id });
      assert.equal(rows.length, 1);
      assert.equal(rows[0].tenantId, acme.id);
      assert.equal(rows[0].metadata.verified, true);
      assert.deepEqual((rows[0].metadata.records as any[]).map((r) => r.status), ['ok', 'ok', 'ok', 'ok']);
      assert.equal(rows[0].actor.id, acme.admin.user.id);
    });

    test('nothing published: every record missing, not verified, audited as such', async () => {
      const d = await addDomain(acme, 'empty.example');
      const res = await call('POST', `${D}/${d.id}/verify`, { token: acme.admin.token });
      assert.equal(res.status, 200);
      assert.equal(res.json.data.verified, false);
      assert.deepEqual(statuses(res), { mx: 'missing', spf: 'missing', dkim: 'missing', dmarc: 'missing' });
      assert.ok(res.json.data.records.every((r: any) => r.found.length === 0));
      const rows = await listAudit(api.app.db, systemScope, { eventType: 'domain.verified', targetId: d.id });
      assert.equal(rows[0].metadata.verified, false);
    });

    test('a fix is seen at once: no cached answer hides it', async () => {
      const d = await addDomain(acme, 'fixed.example');
      const before = await call('POST', `${D}/${d.id}/verify`, { token: acme.admin.token });
      assert.equal(before.json.data.verified, false);
      await publish(d.id);
      const after = await call('POST', `${D}/${d.id}/verify`, { token: acme.admin.token });
      assert.equal(after.json.data.verified, true, after.body);
    });

    test('wrong records: each one a mismatch, with what was found', async () => {
      const d = await addDomain(acme, 'wrong.example');
      const other = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
      const records = await publish(d.id, {
        mx: { MX: [{ priority: 10, exchange: 'mx.elsewhere.test' }] },
        spf: { TXT: ['v=spf1 ip4:198.51.100.0/24 -all'] },
        dkim: { TXT: [`v=DKIM1; k=rsa; p=${other}`] },
        dmarc: { TXT: ['v=DMARC1; rua=mailto:x@wrong.example'] },
      });
      const res = await call('POST', `${D}/${d.id}/verify`, { token: acme.admin.token });
      assert.equal(res.json.data.verified, false);
      assert.deepEqual(statuses(res), { mx: 'mismatch', spf: 'mismatch', dkim: 'mismatch', dmarc: 'mismatch' });
      const byPurpose = Object.fromEntries(res.json.data.records.map((r: any) => [r.purpose, r]));
      assert.deepEqual(byPurpose.mx.found, ['10 mx.elsewhere.test']);
      assert.deepEqual(byPurpose.spf.found, ['v=spf1 ip4:198.51.100.0/24 -all']);
      assert.deepEqual(byPurpose.dkim.found, [`v=DKIM1; k=rsa; p=${other}`]);
      assert.equal(byPurpose.dkim.value, records.find((r) => r.purpose === 'dkim')!.value, 'the expected value is returned alongside');
      assert.match(byPurpose.dmarc.message, /policy/);
    });

    test('SERVFAIL and timeouts are errors, not missing records', async () => {
      const d = await addDomain(acme, 'broken.example');
      const records = await publish(d.id);
      dns.fail('broken.example', 'servfail');
      dns.fail('_dmarc.broken.example', 'servfail');
      dns.fail(records.find((r) => r.purpose === 'dkim')!.name, 'drop');
      try {
        const res = await call('POST', `${D}/${d.id}/verify`, { token: acme.admin.token });
        assert.equal(res.status, 200);
        assert.equal(res.json.data.verified, false);
        assert.deepEqual(statuses(res), { mx: 'error', spf: 'error', dkim: 'error', dmarc: 'error' });
        const mx = res.json.data.records.find((r: any) => r.purpose === 'mx');
        assert.match(mx.message, /ESERVFAIL/);
        const dkim = res.json.data.records.find((r: any) => r.purpose === 'dkim');
        assert.match(dkim.message, /ETIMEOUT/);
        assert.ok(!res.body.includes(dns.address), 'the resolver\'s address is not disclosed');
      } finally {
        dns.fail('broken.example', null);
        dns.fail('_dmarc.broken.example', null);
        dns.fail(records.find((r) => r.purpose === 'dkim')!.name, null);
      }
    });

    test('who may verify: the domain\'s admins; other tenants 404; users 403', async () => {
      const d = await addDomain(acme, 'who.example');
      const da = await api.user(acme.id, { role: 'domain_admin', domainScope: [d.id] });
      const res = await call('POST', `${D}/${d.id}/verify`, { token: da.token });
      assert.equal(res.status, 200);
      const rows = await listAudit(api.app.db, systemScope, { eventType: 'domain.verified', targetId: d.id });
      assert.equal(rows[0].actor.id, da.user.id);
      assert.equal((await call('POST', `${D}/${d.id}/verify`, { token: beta.admin.token })).status, 404);
      const otherDomain = await addDomain(acme, 'who-other.example');
      const other = await api.user(acme.id, { role: 'domain_admin', domainScope: [otherDomain.id] });
      assert.equal((await call('POST', `${D}/${d.id}/verify`, { token: other.token })).status, 404);
      assert.equal((await call('POST', `${D}/${d.id}/verify`, { token: (await api.user(acme.id)).token })).status, 403);
      assert.equal((await call('POST', `${D}/00000000-0000-4000-8000-000000000000/verify`, { token: acme.admin.token })).status, 404);
      assert.equal((await call('POST', `${D}/${d.id}/verify`, { token: root.token })).status, 200);
    });
  });

  describe('verification rules (dns-verify.ts) through the loopback DNS server', () => {
    const key = { selector: 'sel1', algorithm: 'rsa-sha256' as const, publicKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64') };
    let n = 0;

    /** Verifies a fresh domain whose zone `zone(domain)` returns; the statuses by purpose. */
    async function check(zone: (domain: string) => Record<string, RecordSet>): Promise<Record<string, { status: DnsCheckStatus; found: string[]; message: string }>> {
      const domain = `rule${++n}.example`;
      for (const [name, set] of Object.entries(zone(domain))) dns.set(name, set);
      const resolver = createResolver({ servers: [dns.address], timeout_ms: 300, tries: 1, cache_ttl_seconds: 0, negative_cache_ttl_seconds: 0, cache_max_entries: 100 });
      const records = expectedDnsRecords({ domain, hostname: HOST, dkimKeys: [key] });
      const result = await verifyDnsRecords(resolver, { domain, hostname: HOST, records });
      return Object.fromEntries(result.records.map((r) => [r.purpose, r]));
    }

    const spf = async (...txt: (string | string[])[]) => (await check((d) => ({ [d]: { TXT: txt } }))).spf;

    test('SPF: mx, a:<hostname>, ip4/ip6 ranges holding the server authorise it', async () => {
      for (const record of ['v=spf1 mx -all', 'v=spf1 +mx ~all', `v=spf1 a:${HOST} -all`, `v=spf1 a:${HOST.toUpperCase()}. -all`, 'v=spf1 ip4:192.0.2.0/24 -all', `v=spf1 ip4:${HOST_V4} -all`, 'v=spf1 ip6:2001:db8::/32 -all', 'V=SPF1 MX -ALL', 'v=spf1 mx:RULE-SELF -all']) {
        const value = record.replace('RULE-SELF', `rule${n + 1}.example`);
        const r = await spf(value);
        assert.equal(r.status, 'ok', `${value}: ${r.message}`);
        assert.deepEqual(r.found, [value]);
      }
    });

    test('SPF: records that do not authorise the server, or are broken, are mismatches', async () => {
      const cases: [string[], RegExp][] = [
        [['v=spf1 ip4:198.51.100.0/24 -all'], /does not authorise/],
        [['v=spf1 ip6:2001:db9::/32 ip4:192.0.2.0/30 -all'], /does not authorise/],
        [['v=spf1 include:_spf.other.test -all'], /not followed/],
        [['v=spf1 redirect=_spf.other.test'], /not followed/],
        [['v=spf1 a:other.test mx:other.test -all'], /does not authorise/],
        [['v=spf1 -mx -all'], /does not pass/],
        [['v=spf1 ~all mx'], /before "~all"/],
        [['v=spf1 +all'], /every host/],
        [['v=spf1 all'], /every host/],
        [['v=spf1 mx -all', 'v=spf1 a -all'], /§4\.5/],
      ];
      for (const [txt, message] of cases) {
        const r = await spf(...txt);
        assert.equal(r.status, 'mismatch', `${txt.join(' | ')}: ${r.message}`);
        assert.match(r.message, message);
        assert.deepEqual(r.found, txt);
      }
    });

    test('SPF: none among other TXT records is missing; a v=spf10 look-alike is not SPF', async () => {
      const r = await spf('google-site-verification=x', 'v=spf10 mx');
      assert.equal(r.status, 'missing');
      assert.deepEqual(r.found, []);
      assert.match(r.message, /2 TXT record/);
    });

    test('SPF: an ip4 term that cannot be checked because the server\'s address lookup fails is an error', async () => {
      dns.fail(HOST, 'servfail');
      try {
        const r = await spf('v=spf1 ip4:192.0.2.0/24 -all');
        assert.equal(r.status, 'error');
        // mx needs no address lookup: still ok while the hostname fails.
        assert.equal((await spf('v=spf1 mx -all')).status, 'ok');
      } finally {
        dns.fail(HOST, null);
      }
    });

    test('DKIM: split strings and whitespace in p= are joined; k= must match; v= must be DKIM1', async () => {
      const value = `v=DKIM1; k=rsa; p=${key.publicKey}`;
      const at = (d: string) => `sel1._domainkey.${d}`;
      assert.equal((await check((d) => ({ [at(d)]: { TXT: [[value.slice(0, 200), value.slice(200)]] } }))).dkim.status, 'ok');
      const spaced = `v=DKIM1; k=rsa; p=${key.publicKey.slice(0, 100)} ${key.publicKey.slice(100)}`;
      assert.equal((await check((d) => ({ [at(d)]: { TXT: [spaced] } }))).dkim.status, 'ok');
      assert.equal((await check((d) => ({ [at(d)]: { TXT: [`p=${key.publicKey}`] } }))).dkim.status, 'ok', 'v= and k= have defaults');
      assert.equal((await check((d) => ({ [at(d)]: { TXT: [`v=DKIM1; k=ed25519; p=${key.publicKey}`] } }))).dkim.status, 'mismatch');
      assert.equal((await check((d) => ({ [at(d)]: { TXT: [`v=DKIM2; p=${key.publicKey}`] } }))).dkim.status, 'mismatch');
      assert.equal((await check((d) => ({ [at(d)]: { TXT: ['v=DKIM1; k=rsa; p='] } }))).dkim.status, 'mismatch', 'a revoked key');
      // Through a CNAME (delegated key management) the record still counts.
      const viaCname = await check((d) => ({ [at(d)]: { CNAME: `keys.${d}` }, [`keys.${d}`]: { TXT: [value] } }));
      assert.equal(viaCname.dkim.status, 'ok');
    });

    test('DMARC: one v=DMARC1 record with a policy; p=none counts; two records or no p= do not', async () => {
      const dm = async (...txt: string[]) => (await check((d) => ({ [`_dmarc.${d}`]: { TXT: txt } }))).dmarc;
      assert.equal((await dm('v=DMARC1; p=none')).status, 'ok');
      assert.equal((await dm('v=DMARC1;p=REJECT;pct=50')).status, 'ok');
      assert.equal((await dm('v=DMARC1; p=quarantine', 'v=DMARC1; p=reject')).status, 'mismatch');
      assert.equal((await dm('v=DMARC1; rua=mailto:a@b.example')).status, 'mismatch');
      assert.equal((await dm('v=DMARC1; p=monitor')).status, 'mismatch');
      const notDmarc = await dm('p=reject; v=DMARC1');
      assert.equal(notDmarc.status, 'missing', 'v= must come first (RFC 7489 §6.4)');
      assert.deepEqual(notDmarc.found, ['p=reject; v=DMARC1']);
    });

    test('MX: any MX naming the host (case, trailing dot) is ok; a null MX or other hosts are not', async () => {
      const mx = async (...records: { priority: number; exchange: string }[]) => (await check((d) => ({ [d]: { MX: records } }))).mx;
      const ok = await mx({ priority: 5, exchange: 'backup.other.test' }, { priority: 20, exchange: 'MAIL.TEST.' });
      assert.equal(ok.status, 'ok');
      assert.deepEqual(ok.found, ['5 backup.other.test', `20 ${HOST}`]);
      const nullMx = await mx({ priority: 0, exchange: '' });
      assert.equal(nullMx.status, 'mismatch');
      assert.match(nullMx.message, /null MX/);
      assert.equal((await mx({ priority: 10, exchange: 'mx.other.test' })).status, 'mismatch');
      // A name that exists without MX records is missing, like one that does not exist.
      const noData = await check((d) => ({ [d]: { A: ['192.0.2.1'] } }));
      assert.equal(noData.mx.status, 'missing');
    });
  });

  test('no response and no log line carries a DKIM private key', async () => {
    const dkim = new DkimKeyService({ db: api.app.db, secrets: api.deps.secrets });
    const rows = await api.app.db.kysely.selectFrom('dkim_keys').select(['id', 'tenant_id']).execute();
    assert.ok(rows.length >= 10, 'the suite created keys');
    const log = api.logText();
    const all = bodies.join('\n');
    assert.ok(!all.includes('PRIVATE KEY') && !log.includes('PRIVATE KEY'));
    for (const row of rows) {
      const der = (await dkim.privateKey(tenantScope(row.tenant_id), row.id)).export({ type: 'pkcs8', format: 'der' });
      const fragment = der.toString('base64').slice(64, 128);
      assert.ok(!all.includes(fragment), `key ${row.id} in a response`);
      assert.ok(!log.includes(fragment), `key ${row.id} in the log`);
    }
  });
});
