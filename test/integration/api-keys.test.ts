/**
 * API keys over the REST API (SPEC §10, §11): creation (the key shown once), use as a credential,
 * scope enforcement (read/write/admin and the role bound), expiry and revocation (401), rotation,
 * `last_used_at`, listing (own keys, `all=true` for managers, tenant isolation), limits, audit rows
 * — and that the key is never stored in clear nor shown again in any response or log line.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { listAudit } from '../../src/security/audit.js';
import { MAX_ACTIVE_KEYS_PER_USER } from '../../src/http/api/routes/api-keys.js';
import { startApi, type ApiHarness, type ApiResponse, type TestTenant, type TestUser } from '../support/api.js';

const KEYS = '/api/v1/api-keys';
const ME = '/api/v1/auth/me';
const AUDIT = '/api/v1/admin/audit-logs';
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

describe('api: api keys', () => {
  let api: ApiHarness;
  let acme: TestTenant;
  let globex: TestTenant;
  let alice: TestUser; // role user in acme
  let dora: TestUser; // domain_admin in acme
  /** Every response body seen after keys were created, scanned at the end for leaked keys. */
  const seen: string[] = [];
  /** Every full key handed out. */
  const handedOut: string[] = [];

  const call = async (method: string, path: string, opts: Parameters<ApiHarness['call']>[2] = {}): Promise<ApiResponse> => {
    const res = await api.call(method, path, opts);
    seen.push(res.body);
    return res;
  };
  /** The bearer header for an API key (the harness's `token` option sends `Bearer <token>`). */
  const withKey = (key: string) => ({ token: key });

  async function createKey(token: string, body: Record<string, unknown>): Promise<{ id: string; key: string; prefix: string; scopes: string[] }> {
    const res = await call('POST', KEYS, { token, body });
    assert.equal(res.status, 201, res.body);
    handedOut.push(res.json.data.key);
    return res.json.data;
  }

  before(async () => {
    api = await startApi();
    acme = await api.tenant('acme');
    globex = await api.tenant('globex');
    alice = await api.user(acme.id, { email: 'alice@acme.test' });
    const domain = await api.app.tenancy.domains.add(tenantScope(acme.id), { name: 'acme.example' });
    dora = await api.user(acme.id, { email: 'dora@acme.test', role: 'domain_admin', domainScope: [domain.id] });
  });
  after(async () => {
    // No key handed out appears in a later response (other than the one that created it), in the
    // logs, or in the database.
    const logs = api.logText();
    const rows = JSON.stringify(await api.app.db.kysely.selectFrom('api_keys').selectAll().execute());
    const audit = JSON.stringify(await api.app.db.kysely.selectFrom('audit_log').selectAll().execute());
    try {
      for (const key of handedOut) {
        // mk_live_<12-character prefix>_<secret>; the secret itself may contain "_" (base64url).
        const secret = key.slice('mk_live_'.length + 13);
        assert.equal(seen.filter((b) => b.includes(key)).length, 1, 'the key appears in exactly one response: its creation');
        assert.ok(!logs.includes(secret), 'no key in the logs');
        assert.ok(!rows.includes(secret), 'no key in clear in api_keys');
        assert.ok(!audit.includes(secret), 'no key in the audit log');
      }
    } finally {
      await api.close();
    }
  });

  test('create returns the key once; it authenticates as its owner; the database holds only a hash', async () => {
    const res = await call('POST', KEYS, { token: alice.token, body: { name: 'mail script', scopes: ['read', 'write'] } });
    assert.equal(res.status, 201, res.body);
    const d = res.json.data;
    handedOut.push(d.key);
    assert.match(d.key, /^mk_live_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{20,}$/);
    assert.equal(d.prefix, d.key.slice(0, 'mk_live_'.length + 12));
    assert.deepEqual(d.scopes, ['read', 'write']);
    assert.equal(d.user_id, alice.user.id);
    assert.equal(d.tenant_id, acme.id);
    assert.equal(d.expires_at, null);
    assert.equal(d.last_used_at, null);
    assert.equal(d.revoked_at, null);
    assert.equal(d.secret_hash, undefined);

    const me = await call('GET', ME, withKey(d.key));
    assert.equal(me.status, 200, me.body);
    assert.equal(me.json.data.id, alice.user.id);
    assert.equal(me.json.data.auth.via, 'api_key');
    // The X-API-Key header works as well.
    const viaHeader = await call('GET', ME, { headers: { 'x-api-key': d.key } });
    assert.equal(viaHeader.status, 200);

    const row = await api.app.db.kysely.selectFrom('api_keys').selectAll().where('id', '=', d.id).executeTakeFirstOrThrow();
    const secret = d.key.slice('mk_live_'.length + 13); // after the 12-character prefix and its "_"
    assert.notEqual(row.secret_hash, secret);
    assert.match(row.secret_hash, /^[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify(row).includes(secret));
    assert.ok(row.last_used_at !== null, 'last_used_at recorded on use');

    const audit = (await listAudit(api.app.db, systemScope, { eventType: 'api_key.created', limit: 100 })).filter((r) => r.target.id === d.id);
    assert.equal(audit.length, 1);
    assert.equal(audit[0].tenantId, acme.id);
    assert.deepEqual(audit[0].actor, { type: 'user', id: alice.user.id, email: 'alice@acme.test', ip: '127.0.0.1' });
    assert.equal(audit[0].metadata.prefix, d.prefix);
    assert.deepEqual(audit[0].metadata.scopes, ['read', 'write']);
  });

  test('scopes are enforced: a read key cannot PATCH, a write key cannot administer, an admin key can', async () => {
    const read = await createKey(acme.admin.token, { name: 'ro', scopes: ['read'] });
    const write = await createKey(acme.admin.token, { name: 'rw', scopes: ['read', 'write'] });
    const admin = await createKey(acme.admin.token, { name: 'adm', scopes: ['admin'] });

    const patchRead = await call('PATCH', `/api/v1/messages/${UNKNOWN_ID}`, { ...withKey(read.key), body: { flags: { add: ['\\Seen'] } } });
    assert.equal(patchRead.status, 403, patchRead.body);
    assert.equal(patchRead.json.error.code, 'FORBIDDEN');
    assert.equal(patchRead.json.error.details.required_scope, 'write');
    // The write key gets past authorization (the message simply does not exist / the body is judged).
    const patchWrite = await call('PATCH', `/api/v1/messages/${UNKNOWN_ID}`, { ...withKey(write.key), body: { flags: { add: ['\\Seen'] } } });
    assert.notEqual(patchWrite.status, 403, patchWrite.body);
    assert.notEqual(patchWrite.status, 401, patchWrite.body);

    const auditWrite = await call('GET', AUDIT, withKey(write.key));
    assert.equal(auditWrite.status, 403);
    assert.equal(auditWrite.json.error.details.required_scope, 'admin');
    const keysWrite = await call('GET', KEYS, withKey(write.key));
    assert.equal(keysWrite.status, 403, 'managing keys needs the admin scope');
    assert.equal(keysWrite.json.error.details.required_scope, 'admin');

    const auditAdmin = await call('GET', AUDIT, withKey(admin.key));
    assert.equal(auditAdmin.status, 200, auditAdmin.body);
    // An admin-scoped key still cannot exceed its owner's role: settings are super-admin only.
    const settings = await call('GET', '/api/v1/admin/settings', withKey(admin.key));
    assert.equal(settings.status, 403);
    assert.equal(settings.json.error.message, 'role tenant_admin may not do this');
  });

  test('a key cannot carry more than its creator: admin only for admins, plugin only for tenant/super admins, no escalation from a key', async () => {
    const userAdmin = await call('POST', KEYS, { token: alice.token, body: { name: 'x', scopes: ['read', 'admin'] } });
    assert.equal(userAdmin.status, 403);
    assert.equal(userAdmin.json.error.code, 'FORBIDDEN');
    assert.equal(userAdmin.json.error.message, 'role user may not create keys with scope admin');
    assert.deepEqual(userAdmin.json.error.details.scopes, ['admin']);

    const userPlugin = await call('POST', KEYS, { token: alice.token, body: { name: 'x', scopes: ['plugin'] } });
    assert.equal(userPlugin.status, 403);
    assert.deepEqual(userPlugin.json.error.details.scopes, ['plugin']);

    const doraAdmin = await createKey(dora.token, { name: 'dom', scopes: ['admin', 'read'] });
    assert.deepEqual(doraAdmin.scopes, ['admin', 'read']);
    const doraPlugin = await call('POST', KEYS, { token: dora.token, body: { name: 'x', scopes: ['plugin'] } });
    assert.equal(doraPlugin.status, 403);
    assert.equal(doraPlugin.json.error.message, 'role domain_admin may not create keys with scope plugin');

    const plugin = await createKey(acme.admin.token, { name: 'plug', scopes: ['plugin', 'read'] });
    assert.deepEqual(plugin.scopes, ['plugin', 'read']);

    // A key (admin scope, needed to manage keys) may create keys only within its own scopes.
    const narrow = await createKey(acme.admin.token, { name: 'narrow', scopes: ['admin', 'read'] });
    const escalate = await call('POST', KEYS, { ...withKey(narrow.key), body: { name: 'wider', scopes: ['read', 'send'] } });
    assert.equal(escalate.status, 403);
    assert.equal(escalate.json.error.message, 'an API key cannot create a key with scopes it lacks: send');
    const within = await call('POST', KEYS, { ...withKey(narrow.key), body: { name: 'within', scopes: ['read'] } });
    assert.equal(within.status, 201, within.body);
    handedOut.push(within.json.data.key);
    const auditRow = (await listAudit(api.app.db, systemScope, { eventType: 'api_key.created', targetId: within.json.data.id }))[0];
    assert.deepEqual(auditRow.actor, { type: 'api_key', id: narrow.id, email: acme.admin.user.email, ip: '127.0.0.1' });
  });

  test('request validation: unknown fields, names, scopes, expiry bounds', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ name: 'x', scopes: ['read'], role: 'admin' }, '/role'],
      [{ name: '', scopes: ['read'] }, '/name'],
      [{ name: 'n'.repeat(101), scopes: ['read'] }, '/name'],
      [{ name: 'bad\nname', scopes: ['read'] }, '/name'],
      [{ name: 'x', scopes: [] }, '/scopes'],
      [{ name: 'x', scopes: ['root'] }, '/scopes/0'],
      [{ name: 'x', scopes: ['read', 'read'] }, '/scopes'],
      [{ name: 'x', scopes: ['read'], expires_at: 'tomorrow' }, '/expires_at'],
    ];
    for (const [body, path] of cases) {
      const res = await call('POST', KEYS, { token: alice.token, body });
      assert.equal(res.status, 422, `${JSON.stringify(body)}: ${res.body}`);
      assert.equal(res.json.error.code, 'VALIDATION_ERROR');
      assert.ok(res.json.error.details.errors.some((e: { path: string }) => e.path === path), `${JSON.stringify(body)} → ${res.body}`);
    }
    const past = await call('POST', KEYS, { token: alice.token, body: { name: 'x', scopes: ['read'], expires_at: new Date(Date.now() - 60_000).toISOString() } });
    assert.equal(past.status, 422);
    assert.equal(past.json.error.message, 'expires_at must be in the future');
    assert.equal(past.json.error.details.field, 'expires_at');
    const far = await call('POST', KEYS, { token: alice.token, body: { name: 'x', scopes: ['read'], expires_at: new Date(Date.now() + 3651 * 86_400_000).toISOString() } });
    assert.equal(far.status, 422);
    assert.equal(far.json.error.message, 'expires_at must be at most 10 years ahead');
    const ok = await createKey(alice.token, { name: 'expiring', scopes: ['read'], expires_at: new Date(Date.now() + 3600_000).toISOString() });
    assert.ok(ok.id);
  });

  test('an expired key and a revoked key are refused with 401', async () => {
    const expired = await api.deps.apiKeys.create({ tenantId: acme.id, userId: alice.user.id, name: 'old', scopes: ['read'], expiresAt: Date.now() - 1000 });
    const res = await call('GET', ME, withKey(expired.key));
    assert.equal(res.status, 401);
    assert.equal(res.json.error.code, 'UNAUTHORIZED');
    assert.equal(res.json.error.message, 'invalid, expired or revoked API key');

    const k = await createKey(alice.token, { name: 'to revoke', scopes: ['read'] });
    assert.equal((await call('GET', ME, withKey(k.key))).status, 200);
    const del = await call('DELETE', `${KEYS}/${k.id}`, { token: alice.token });
    assert.equal(del.status, 204, del.body);
    const after = await call('GET', ME, withKey(k.key));
    assert.equal(after.status, 401);
    assert.equal(after.json.error.message, 'invalid, expired or revoked API key');
    // Revoking again changes nothing and writes no second audit row.
    assert.equal((await call('DELETE', `${KEYS}/${k.id}`, { token: alice.token })).status, 204);
    const audit = await listAudit(api.app.db, systemScope, { eventType: 'api_key.revoked', targetId: k.id });
    assert.equal(audit.length, 1);
    assert.equal(audit[0].actor.id, alice.user.id);
    // A wrong secret with a real prefix is refused the same way.
    const forged = `${k.prefix}_${'A'.repeat(43)}`;
    assert.equal((await call('GET', ME, withKey(forged))).status, 401);
  });

  test('rotate: a new key once, the old one revoked, audited; revoked or expired keys cannot be rotated', async () => {
    const k = await createKey(alice.token, { name: 'rotating', scopes: ['read', 'write'] });
    const res = await call('POST', `${KEYS}/${k.id}/rotate`, { token: alice.token });
    assert.equal(res.status, 200, res.body);
    const n = res.json.data;
    handedOut.push(n.key);
    assert.notEqual(n.id, k.id);
    assert.notEqual(n.key, k.key);
    assert.equal(n.name, 'rotating');
    assert.deepEqual(n.scopes, ['read', 'write']);
    assert.equal((await call('GET', ME, withKey(k.key))).status, 401, 'old key revoked');
    assert.equal((await call('GET', ME, withKey(n.key))).status, 200, 'new key works');
    const audit = await listAudit(api.app.db, systemScope, { eventType: 'api_key.rotated', targetId: k.id });
    assert.equal(audit.length, 1);
    assert.equal(audit[0].metadata.new_key_id, n.id);

    const again = await call('POST', `${KEYS}/${k.id}/rotate`, { token: alice.token });
    assert.equal(again.status, 409);
    assert.equal(again.json.error.message, 'the key is revoked; create a new one');

    const expired = await api.deps.apiKeys.create({ tenantId: acme.id, userId: alice.user.id, name: 'gone', scopes: ['read'], expiresAt: Date.now() - 1000 });
    const rotExpired = await call('POST', `${KEYS}/${expired.id}/rotate`, { token: alice.token });
    assert.equal(rotExpired.status, 409);
    assert.equal(rotExpired.json.error.message, 'the key has expired; create a new one');
  });

  test('keys of others: invisible (404) to users and other tenants; tenant admins list and revoke but do not rotate them', async () => {
    const k = await createKey(alice.token, { name: 'alice key', scopes: ['read'] });

    // Another user of the same tenant (a domain admin is no key manager) and another tenant's admin.
    for (const token of [dora.token, globex.admin.token]) {
      assert.equal((await call('DELETE', `${KEYS}/${k.id}`, { token })).status, 404);
      const rot = await call('POST', `${KEYS}/${k.id}/rotate`, { token });
      assert.equal(rot.status, 404);
      assert.equal(rot.json.error.code, 'NOT_FOUND');
    }
    assert.equal((await call('DELETE', `${KEYS}/${UNKNOWN_ID}`, { token: alice.token })).status, 404);

    const own = await call('GET', KEYS, { token: alice.token });
    assert.ok(own.json.data.every((x: { user_id: string }) => x.user_id === alice.user.id));
    assert.ok(own.json.data.some((x: { id: string }) => x.id === k.id));
    const adminOwn = await call('GET', KEYS, { token: acme.admin.token });
    assert.ok(adminOwn.json.data.every((x: { user_id: string }) => x.user_id === acme.admin.user.id), 'without all=true only own keys');

    const userAll = await call('GET', `${KEYS}?all=true`, { token: alice.token });
    assert.equal(userAll.status, 403);
    const doraAll = await call('GET', `${KEYS}?all=true`, { token: dora.token });
    assert.equal(doraAll.status, 403);
    assert.equal(doraAll.json.error.message, 'role domain_admin may not do this');

    const adminAll = await call('GET', `${KEYS}?all=true&limit=100`, { token: acme.admin.token });
    assert.equal(adminAll.status, 200);
    assert.ok(adminAll.json.data.some((x: { id: string }) => x.id === k.id));
    assert.ok(adminAll.json.data.every((x: { tenant_id: string }) => x.tenant_id === acme.id), 'never another tenant');

    const globexKey = await createKey(globex.admin.token, { name: 'globex', scopes: ['read'] });
    const globexAll = await call('GET', `${KEYS}?all=true&limit=100`, { token: globex.admin.token });
    assert.deepEqual(globexAll.json.data.map((x: { id: string }) => x.id), [globexKey.id]);

    const root = await api.superAdmin();
    const rootAll = await call('GET', `${KEYS}?all=true&limit=100`, { token: root.token });
    const ids = rootAll.json.data.map((x: { id: string }) => x.id);
    assert.ok(ids.includes(k.id) && ids.includes(globexKey.id), 'a super-admin sees every tenant');

    // The tenant admin may revoke Alice's key but not rotate it (that would hand them her credential).
    const rot = await call('POST', `${KEYS}/${k.id}/rotate`, { token: acme.admin.token });
    assert.equal(rot.status, 403);
    assert.equal(rot.json.error.message, 'only the owner of a key may rotate it; revoke it instead');
    assert.equal((await call('DELETE', `${KEYS}/${k.id}`, { token: acme.admin.token })).status, 204);
    assert.equal((await call('GET', ME, withKey(k.key))).status, 401);
    const audit = await listAudit(api.app.db, systemScope, { eventType: 'api_key.revoked', targetId: k.id });
    assert.equal(audit[0].actor.id, acme.admin.user.id);
    assert.equal(audit[0].metadata.owner_id, alice.user.id);

    // Revoked keys are hidden unless asked for.
    const listed = await call('GET', `${KEYS}?limit=100`, { token: alice.token });
    assert.ok(!listed.json.data.some((x: { id: string }) => x.id === k.id));
    const withRevoked = await call('GET', `${KEYS}?limit=100&include_revoked=true`, { token: alice.token });
    const row = withRevoked.json.data.find((x: { id: string }) => x.id === k.id);
    assert.ok(row && row.revoked_at !== null);
  });

  test('last_used_at is set by use and the list pages with a cursor', async () => {
    const bob = await api.user(acme.id, { email: 'bob@acme.test', role: 'tenant_admin' });
    // Distinct creation times, so the newest-first order is fixed.
    const a = await createKey(bob.token, { name: 'a', scopes: ['admin', 'read'] });
    await sleep(5);
    await createKey(bob.token, { name: 'b', scopes: ['read'] });
    await sleep(5);
    await createKey(bob.token, { name: 'c', scopes: ['read'] });
    const used = await call('GET', KEYS, withKey(a.key));
    assert.equal(used.status, 200);
    const self = used.json.data.find((x: { id: string }) => x.id === a.id);
    assert.ok(self.last_used_at !== null, 'the request that used the key already shows it');
    assert.ok(Math.abs(Date.parse(self.last_used_at) - Date.now()) < 60_000);

    const p1 = await call('GET', `${KEYS}?limit=2`, { token: bob.token });
    assert.equal(p1.json.data.length, 2);
    assert.equal(p1.json.pagination.has_more, true);
    assert.deepEqual(p1.json.data.map((x: { name: string }) => x.name), ['c', 'b']);
    const p2 = await call('GET', `${KEYS}?limit=2&cursor=${p1.json.pagination.cursor}`, { token: bob.token });
    assert.deepEqual(p2.json.data.map((x: { name: string }) => x.name), ['a']);
    assert.equal(p2.json.pagination.has_more, false);
    assert.equal(p2.json.pagination.cursor, null);
    const bad = await call('GET', `${KEYS}?cursor=notacursor`, { token: bob.token });
    assert.equal(bad.status, 400);
    const big = await call('GET', `${KEYS}?limit=101`, { token: bob.token });
    assert.equal(big.status, 400);
  });

  test(`at most ${MAX_ACTIVE_KEYS_PER_USER} live keys per user (409); revoked and expired keys do not count`, async () => {
    const carol = await api.user(acme.id, { email: 'carol@acme.test' });
    await api.deps.apiKeys.create({ tenantId: acme.id, userId: carol.user.id, name: 'expired', scopes: ['read'], expiresAt: Date.now() - 1000 });
    for (let i = 0; i < MAX_ACTIVE_KEYS_PER_USER; i++) {
      await api.deps.apiKeys.create({ tenantId: acme.id, userId: carol.user.id, name: `k${i}`, scopes: ['read'] });
    }
    const res = await call('POST', KEYS, { token: carol.token, body: { name: 'one too many', scopes: ['read'] } });
    assert.equal(res.status, 409);
    assert.equal(res.json.error.code, 'CONFLICT');
    assert.equal(res.json.error.message, `at most ${MAX_ACTIVE_KEYS_PER_USER} live API keys per user; revoke one first`);
    assert.deepEqual(res.json.error.details, { limit: 'api_keys_per_user', max: MAX_ACTIVE_KEYS_PER_USER, current: MAX_ACTIVE_KEYS_PER_USER });

    const [first] = await api.deps.apiKeys.list(systemScope, { userId: carol.user.id, limit: 1 });
    assert.equal((await call('DELETE', `${KEYS}/${first.id}`, { token: carol.token })).status, 204);
    await createKey(carol.token, { name: 'fits again', scopes: ['read'] });
  });

  test('the OpenAPI document describes the routes under the api-keys tag', async () => {
    const doc = (await call('GET', '/api/v1/openapi.json')).json;
    for (const [path, method] of [['/api/v1/api-keys', 'get'], ['/api/v1/api-keys', 'post'], ['/api/v1/api-keys/{id}', 'delete'], ['/api/v1/api-keys/{id}/rotate', 'post']] as const) {
      const op = doc.paths[path]?.[method];
      assert.ok(op, `${method} ${path} documented`);
      assert.deepEqual(op.tags, ['api-keys']);
      assert.ok(op.summary);
    }
  });
});
