/**
 * The role × tenant matrix (issue 4, SPEC §9): for every API route, each role of tenant A gets
 * exactly what it should on A's own rows, and nothing of tenant B is readable, listable, changeable
 * or guessable — an id of B's answers exactly like an id that does not exist (404 where the role may
 * use the route at all), and B's rows are unchanged afterwards.
 *
 * The route list comes from the OpenAPI document, so a route added later without an entry here
 * fails the coverage test at the end instead of going unchecked.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApi, type ApiHarness, type TestUser } from '../support/api.js';
import { shape, tempDir } from '../support/shape.js';
import { tenantScope } from '../../src/core/scope.js';
import { cliActor } from '../../src/security/audit.js';
import { createOutboundRecord } from '../../src/outbound/records.js';

type Role = 'tenant_admin' | 'domain_admin' | 'user';
const ROLES: Role[] = ['tenant_admin', 'domain_admin', 'user'];

interface TenantWorld {
  id: string;
  name: string;
  principals: Record<Role, TestUser>;
  ids: {
    domain: string; // in the domain admin's scope
    otherDomain: string; // not in it
    user: string; // the `user` principal (login in `domain`)
    otherUser: string; // a user whose login is in `otherDomain`
    mailbox: string; // owned by the `user` principal
    otherMailbox: string; // owned by otherUser
    sharedMailbox: string; // no owner, in `domain`
    alias: string;
    folder: string; // INBOX of `mailbox`
    message: string; // entry in `mailbox`'s INBOX
    sharedMessage: string; // entry in `sharedMailbox`'s INBOX
    apiKey: string; // the `user` principal's key
    webhook: string;
    hook: string; // a hook of the tenant (SPEC §6), using PLUGIN
    storedMessage: string; // the `messages` id of `message` (the plugin API's ids)
    outbound: string; // an outbound queue entry of the tenant (SPEC §3.3)
    dkimKey: string; // the DKIM key of `domain`
  };
  subject: string;
}

/** One plugin for every tenant (plugins are system-wide rows; each tenant enables it for its own hooks). */
const PLUGIN = 'com.example.iso-matrix';
/** A token of PLUGIN (for the super-admin-only token routes). */
let pluginTokenId = '';

async function installPlugin(api: ApiHarness): Promise<void> {
  const dir = tempDir('mairust-iso-plugin-');
  writeFileSync(join(dir.path, 'hook.mjs'), "process.stdout.write(JSON.stringify({ plugin_id: 'com.example.iso-matrix', action: 'allow' }));\n");
  writeFileSync(
    join(dir.path, 'plugin.toml'),
    [`id = "${PLUGIN}"`, 'name = "matrix"', 'version = "1.0.0"', '[entry]', 'type = "hook"', 'protocol = "script"', `command = [${JSON.stringify(process.execPath)}, "hook.mjs"]`, '[hooks]', 'on = ["post_receive"]', '[permissions]', 'read_headers = true', 'write_tags = true'].join('\n'),
  );
  const plugins = api.deps.hookSystem!.plugins;
  await plugins.installFromDirectory(dir.path, cliActor);
  dir.remove();
  await plugins.approve(PLUGIN, cliActor);
  await plugins.enable(PLUGIN, cliActor);
  pluginTokenId = (await plugins.rotateToken(PLUGIN, ['callback', 'read'], cliActor)).info.id;
}

function sample(subject: string, to: string): Buffer {
  return Buffer.from(
    `From: Sender <sender@example.net>\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <${randomUUID()}@example.net>\r\n\r\nBody of ${subject}\r\n`,
  );
}

async function buildTenant(api: ApiHarness, label: string): Promise<TenantWorld> {
  const { tenancy, mailboxState } = api.app;
  const t = await api.tenant(`iso-${label}`);
  const scope = tenantScope(t.id);
  const dom = `${label}.iso.test`;
  const otherDom = `${label}-other.iso.test`;
  const domain = await tenancy.domains.add(scope, { name: dom });
  const otherDomain = await tenancy.domains.add(scope, { name: otherDom });
  const domainAdmin = await api.user(t.id, { role: 'domain_admin', email: `da@${dom}`, domainScope: [domain.id] });
  const user = await api.user(t.id, { role: 'user', email: `u@${dom}` });
  const otherUser = await api.user(t.id, { role: 'user', email: `o@${otherDom}` });
  const mailbox = await tenancy.mailboxes.add(scope, { address: `u@${dom}`, user: user.user.id });
  const otherMailbox = await tenancy.mailboxes.add(scope, { address: `o@${otherDom}`, user: otherUser.user.id });
  const shared = await tenancy.mailboxes.add(scope, { address: `shared@${dom}` });
  const alias = await tenancy.aliases.add(scope, { address: `team@${dom}`, targets: [`u@${dom}`] });
  const inbox = (await mailboxState.findFolder(scope, mailbox.id, 'INBOX'))!;
  const sharedInbox = (await mailboxState.findFolder(scope, shared.id, 'INBOX'))!;
  const subject = `secret-subject-${label}-${randomUUID().slice(0, 8)}`;
  const a = await mailboxState.append(scope, mailbox.id, inbox.id, sample(subject, `u@${dom}`));
  const b = await mailboxState.append(scope, shared.id, sharedInbox.id, sample(`${subject}-shared`, `shared@${dom}`));
  const entry = (await mailboxState.getEntry(scope, inbox.id, a.uid))!;
  const sharedEntry = (await mailboxState.getEntry(scope, sharedInbox.id, b.uid))!;
  const key = await api.deps.apiKeys.create({ tenantId: t.id, userId: user.user.id, name: 'k', scopes: ['read'] });
  const wh = await api.call('POST', '/api/v1/webhooks', {
    token: t.admin.token,
    body: { url: `https://hooks.${dom}/in`, events: ['message.received'] },
  });
  assert.equal(wh.status, 201, wh.body);
  const enable = await api.call('PUT', `/api/v1/admin/tenant-plugins/${PLUGIN}`, { token: t.admin.token, body: { enabled: true } });
  assert.equal(enable.status, 200, enable.body);
  const hook = await api.call('POST', '/api/v1/admin/hooks', { token: t.admin.token, body: { id: `iso-hook-${label}-${randomUUID().slice(0, 8)}`, type: 'post_receive', plugin_id: PLUGIN } });
  assert.equal(hook.status, 201, hook.body);
  const dkimKey = await api.deps.dkim.ensureKey(scope, domain);
  const outbound = randomUUID().replace(/-/g, '').slice(0, 16);
  await api.app.db.kysely.transaction().execute((trx) =>
    createOutboundRecord(api.app.queue, trx, { id: outbound, tenantId: t.id, messageId: entry.messageId, userId: user.user.id, mailFrom: `u@${dom}`, recipients: ['x@remote.iso.test'], size: 100, delayMs: 3600_000 }),
  );
  return {
    id: t.id,
    name: t.name,
    principals: { tenant_admin: t.admin, domain_admin: domainAdmin, user },
    ids: {
      domain: domain.id,
      otherDomain: otherDomain.id,
      user: user.user.id,
      otherUser: otherUser.user.id,
      mailbox: mailbox.id,
      otherMailbox: otherMailbox.id,
      sharedMailbox: shared.id,
      alias: alias.id,
      folder: inbox.id,
      message: entry.id,
      sharedMessage: sharedEntry.id,
      apiKey: key.id,
      webhook: wh.json.data.id,
      hook: hook.json.data.id,
      storedMessage: entry.messageId,
      outbound,
      dkimKey: dkimKey.id,
    },
    subject,
  };
}

/** Everything of a tenant that a request could change, for the before/after comparison. */
async function snapshot(api: ApiHarness, w: TenantWorld): Promise<string> {
  const k = api.app.db.kysely;
  const tid = w.id;
  const parts = await Promise.all([
    k.selectFrom('tenants').select(['name', 'status', 'plan', 'limits_json', 'legal_hold', 'retention_days']).where('id', '=', tid).execute(),
    k.selectFrom('domains').select(['id', 'name', 'status', 'catch_all_mailbox_id']).where('tenant_id', '=', tid).orderBy('id').execute(),
    k.selectFrom('users').select(['id', 'email', 'role', 'status', 'display_name', 'domain_scope_json', 'password_hash']).where('tenant_id', '=', tid).orderBy('id').execute(),
    k.selectFrom('mailboxes').select(['id', 'address', 'user_id', 'quota_bytes', 'status']).where('tenant_id', '=', tid).orderBy('id').execute(),
    k.selectFrom('aliases').select(['id', 'address']).where('tenant_id', '=', tid).orderBy('id').execute(),
    k.selectFrom('alias_targets').select(['alias_id', 'mailbox_id']).where('tenant_id', '=', tid).orderBy('alias_id').orderBy('mailbox_id').execute(),
    k.selectFrom('folders').select(['id', 'name', 'highest_modseq', 'deleted_at']).where('tenant_id', '=', tid).orderBy('id').execute(),
    k.selectFrom('folder_entries').select(['id', 'folder_id', 'uid', 'modseq', 'flags_json', 'keywords_json', 'deleted_at']).where('tenant_id', '=', tid).orderBy('id').execute(),
    k.selectFrom('api_keys').select(['id', 'revoked_at', 'scopes_json']).where('tenant_id', '=', tid).orderBy('id').execute(),
    k.selectFrom('webhooks').select(['id', 'url', 'events_json', 'enabled', 'secret_id']).where('tenant_id', '=', tid).orderBy('id').execute(),
    k.selectFrom('hooks').select(['id', 'config_json', 'updated_at']).where('tenant_id', '=', tid).orderBy('id').execute(),
    k.selectFrom('tenant_plugins').select(['plugin_id', 'enabled', 'config_json']).where('tenant_id', '=', tid).orderBy('plugin_id').execute(),
    k.selectFrom('message_plugin_metadata').select(['message_id', 'plugin_id', 'data_json']).where('tenant_id', '=', tid).orderBy('message_id').execute(),
    k.selectFrom('outbound_messages').select(['id', 'status', 'held', 'job_id', 'next_attempt_at']).where('tenant_id', '=', tid).orderBy('id').execute(),
  ]);
  return JSON.stringify(parts);
}

/**
 * Every routed operation, with the id it takes from a tenant's world, a body that would be valid,
 * and what each role of the owning tenant gets on its own rows. `own` is null for operations whose
 * success would destroy fixtures other rows need; those are covered by the cross-tenant and role
 * checks, and by the resource suites (api-*.test.ts).
 */
interface Op {
  method: string;
  path: string;
  /** Path parameters from a tenant's ids; `part` is fixed. */
  params?: (w: TenantWorld) => Record<string, string>;
  query?: (w: TenantWorld) => string;
  body?: (w: TenantWorld) => unknown;
  /** Expected status per role of the same tenant; null = not exercised on own rows. */
  own: Record<Role, number> | null;
  /** Routes only a super-admin may use (role check comes first, whatever the id). */
  superOnly?: boolean;
  /**
   * A system-wide row, the same for every tenant (an installed plugin): there is no "tenant B's
   * row" to hide, so the cross-tenant comparison does not apply (what a tenant admin may see of it
   * — their own tenant's log lines — is checked in api-plugins.test.ts).
   */
  shared?: boolean;
  /** Authenticated by a plugin's `plt_` token, not a user credential: every user principal gets 401. */
  pluginToken?: boolean;
}

const ID_KEYS = {
  domain: (w: TenantWorld) => ({ id: w.ids.domain }),
  otherDomain: (w: TenantWorld) => ({ id: w.ids.otherDomain }),
  user: (w: TenantWorld) => ({ id: w.ids.user }),
  otherUser: (w: TenantWorld) => ({ id: w.ids.otherUser }),
  mailbox: (w: TenantWorld) => ({ id: w.ids.mailbox }),
  alias: (w: TenantWorld) => ({ id: w.ids.alias }),
  folder: (w: TenantWorld) => ({ id: w.ids.folder }),
  message: (w: TenantWorld) => ({ id: w.ids.message }),
  apiKey: (w: TenantWorld) => ({ id: w.ids.apiKey }),
  webhook: (w: TenantWorld) => ({ id: w.ids.webhook }),
  tenant: (w: TenantWorld) => ({ id: w.id }),
  hook: (w: TenantWorld) => ({ id: w.ids.hook }),
  plugin: () => ({ id: PLUGIN }),
};

const OPS: Op[] = [
  // domains
  { method: 'GET', path: '/api/v1/domains/{id}', params: ID_KEYS.domain, own: { tenant_admin: 200, domain_admin: 200, user: 403 } },
  { method: 'GET', path: '/api/v1/domains/{id}', params: ID_KEYS.otherDomain, own: { tenant_admin: 200, domain_admin: 404, user: 403 } },
  { method: 'PATCH', path: '/api/v1/domains/{id}', params: ID_KEYS.otherDomain, body: () => ({ status: 'disabled' }), own: null },
  { method: 'DELETE', path: '/api/v1/domains/{id}', params: ID_KEYS.otherDomain, own: null },
  { method: 'GET', path: '/api/v1/domains/{id}/dns-records', params: ID_KEYS.domain, own: { tenant_admin: 200, domain_admin: 200, user: 403 } },
  { method: 'POST', path: '/api/v1/domains/{id}/verify', params: ID_KEYS.otherDomain, own: null },
  // DKIM keys (SPEC §3.2 step 3): a domain admin manages the keys of their domains only
  { method: 'GET', path: '/api/v1/domains/{id}/dkim-keys', params: ID_KEYS.domain, own: { tenant_admin: 200, domain_admin: 200, user: 403 } },
  { method: 'GET', path: '/api/v1/domains/{id}/dkim-keys', params: ID_KEYS.otherDomain, own: { tenant_admin: 200, domain_admin: 404, user: 403 } },
  { method: 'POST', path: '/api/v1/domains/{id}/dkim-keys', params: ID_KEYS.otherDomain, body: () => ({ algorithm: 'ed25519-sha256' }), own: null },
  { method: 'POST', path: '/api/v1/domains/{id}/dkim-keys/rotate', params: ID_KEYS.otherDomain, body: () => ({}), own: null },
  { method: 'POST', path: '/api/v1/dkim-keys/{id}/retire', params: (w) => ({ id: w.ids.dkimKey }), own: null },
  // users
  { method: 'GET', path: '/api/v1/users/{id}', params: ID_KEYS.user, own: { tenant_admin: 200, domain_admin: 200, user: 403 } },
  { method: 'GET', path: '/api/v1/users/{id}', params: ID_KEYS.otherUser, own: { tenant_admin: 200, domain_admin: 404, user: 403 } },
  { method: 'PATCH', path: '/api/v1/users/{id}', params: ID_KEYS.otherUser, body: () => ({ display_name: 'changed' }), own: null },
  { method: 'DELETE', path: '/api/v1/users/{id}', params: ID_KEYS.otherUser, own: null },
  { method: 'POST', path: '/api/v1/users/{id}/reset-password', params: ID_KEYS.otherUser, own: null },
  { method: 'POST', path: '/api/v1/users/{id}/mfa/reset', params: ID_KEYS.otherUser, own: null },
  // mailboxes
  { method: 'GET', path: '/api/v1/mailboxes/{id}', params: ID_KEYS.mailbox, own: { tenant_admin: 200, domain_admin: 200, user: 200 } },
  { method: 'GET', path: '/api/v1/mailboxes/{id}', params: (w) => ({ id: w.ids.otherMailbox }), own: { tenant_admin: 200, domain_admin: 404, user: 404 } },
  { method: 'PATCH', path: '/api/v1/mailboxes/{id}', params: (w) => ({ id: w.ids.otherMailbox }), body: () => ({ quota_bytes: 12345 }), own: null },
  { method: 'DELETE', path: '/api/v1/mailboxes/{id}', params: (w) => ({ id: w.ids.otherMailbox }), query: () => '?force=true', own: null },
  // aliases
  { method: 'GET', path: '/api/v1/aliases/{id}', params: ID_KEYS.alias, own: { tenant_admin: 200, domain_admin: 200, user: 403 } },
  { method: 'PUT', path: '/api/v1/aliases/{id}/targets', params: ID_KEYS.alias, body: (w) => ({ targets: [w.ids.sharedMailbox] }), own: null },
  { method: 'DELETE', path: '/api/v1/aliases/{id}', params: ID_KEYS.alias, own: null },
  // folders and messages: a person's mail is theirs alone; admins open only owner-less mailboxes
  { method: 'PATCH', path: '/api/v1/folders/{id}', params: ID_KEYS.folder, body: () => ({ name: 'Renamed' }), own: null },
  { method: 'DELETE', path: '/api/v1/folders/{id}', params: ID_KEYS.folder, own: null },
  { method: 'GET', path: '/api/v1/messages/{id}', params: ID_KEYS.message, own: { tenant_admin: 404, domain_admin: 404, user: 200 } },
  { method: 'GET', path: '/api/v1/messages/{id}', params: (w) => ({ id: w.ids.sharedMessage }), own: { tenant_admin: 200, domain_admin: 200, user: 404 } },
  { method: 'GET', path: '/api/v1/messages/{id}/raw', params: ID_KEYS.message, own: { tenant_admin: 404, domain_admin: 404, user: 200 } },
  { method: 'GET', path: '/api/v1/messages/{id}/attachments/{part}', params: (w) => ({ id: w.ids.message, part: '1' }), own: null },
  { method: 'PATCH', path: '/api/v1/messages/{id}', params: ID_KEYS.message, body: () => ({ flags: { add: ['flagged'] } }), own: null },
  { method: 'POST', path: '/api/v1/messages/{id}/move', params: ID_KEYS.message, body: (w) => ({ folder_id: w.ids.folder }), own: null },
  { method: 'DELETE', path: '/api/v1/messages/{id}', params: ID_KEYS.message, own: null },
  // API keys and webhooks
  { method: 'DELETE', path: '/api/v1/api-keys/{id}', params: ID_KEYS.apiKey, own: null },
  { method: 'POST', path: '/api/v1/api-keys/{id}/rotate', params: ID_KEYS.apiKey, own: null },
  { method: 'GET', path: '/api/v1/webhooks/{id}', params: ID_KEYS.webhook, own: { tenant_admin: 200, domain_admin: 403, user: 403 } },
  { method: 'PATCH', path: '/api/v1/webhooks/{id}', params: ID_KEYS.webhook, body: () => ({ enabled: false }), own: null },
  { method: 'DELETE', path: '/api/v1/webhooks/{id}', params: ID_KEYS.webhook, own: null },
  { method: 'POST', path: '/api/v1/webhooks/{id}/rotate-secret', params: ID_KEYS.webhook, own: null },
  { method: 'POST', path: '/api/v1/webhooks/{id}/test', params: ID_KEYS.webhook, own: null },
  // hooks (SPEC §6): a tenant's hooks are its rows
  { method: 'GET', path: '/api/v1/admin/hooks/{id}', params: ID_KEYS.hook, own: { tenant_admin: 200, domain_admin: 403, user: 403 } },
  { method: 'PUT', path: '/api/v1/admin/hooks/{id}', params: ID_KEYS.hook, body: () => ({ type: 'post_receive', plugin_id: PLUGIN, enabled: false }), own: null },
  { method: 'DELETE', path: '/api/v1/admin/hooks/{id}', params: ID_KEYS.hook, own: null },
  { method: 'POST', path: '/api/v1/admin/hooks/{id}/test', params: ID_KEYS.hook, own: null },
  { method: 'POST', path: '/api/v1/admin/hooks/{id}/circuit-breaker/reset', params: ID_KEYS.hook, own: { tenant_admin: 200, domain_admin: 403, user: 403 } },
  { method: 'GET', path: '/api/v1/admin/hooks/{id}/jobs', params: ID_KEYS.hook, own: { tenant_admin: 200, domain_admin: 403, user: 403 } },
  // per-tenant plugin settings: naming tenant B is like naming a tenant that does not exist
  { method: 'PUT', path: '/api/v1/admin/tenant-plugins/{id}', params: ID_KEYS.plugin, body: (w) => ({ enabled: true, tenant_id: w.id }), own: { tenant_admin: 200, domain_admin: 403, user: 403 } },
  // installed plugins: system-wide
  { method: 'GET', path: '/api/v1/admin/plugins/{id}', params: ID_KEYS.plugin, own: { tenant_admin: 200, domain_admin: 403, user: 403 }, shared: true },
  { method: 'GET', path: '/api/v1/admin/plugins/{id}/logs', params: ID_KEYS.plugin, own: { tenant_admin: 200, domain_admin: 403, user: 403 }, shared: true },
  // the plugin API: plugin tokens only
  { method: 'POST', path: '/api/v1/internal/plugins/callback/{message_id}', params: (w) => ({ message_id: w.ids.storedMessage }), body: () => ({ tags: ['x'] }), own: null, pluginToken: true },
  { method: 'GET', path: '/api/v1/internal/plugins/messages/{id}', params: (w) => ({ id: w.ids.storedMessage }), own: null, pluginToken: true },
  // the outbound queue (SPEC §3.3): a tenant's entries are its rows
  { method: 'GET', path: '/api/v1/queue/{id}', params: (w) => ({ id: w.ids.outbound }), own: { tenant_admin: 200, domain_admin: 403, user: 403 } },
  { method: 'POST', path: '/api/v1/queue/{id}/retry', params: (w) => ({ id: w.ids.outbound }), own: null },
  { method: 'POST', path: '/api/v1/queue/{id}/hold', params: (w) => ({ id: w.ids.outbound }), own: null },
  { method: 'POST', path: '/api/v1/queue/{id}/release', params: (w) => ({ id: w.ids.outbound }), own: null },
  { method: 'DELETE', path: '/api/v1/queue/{id}', params: (w) => ({ id: w.ids.outbound }), own: null },
  // the outbound spam policy (SPEC §8): a tenant's accounts and whitelist entries; suspend runs before unsuspend
  { method: 'POST', path: '/api/v1/admin/outbound/accounts/{id}/suspend', params: ID_KEYS.user, own: { tenant_admin: 200, domain_admin: 403, user: 403 } },
  { method: 'POST', path: '/api/v1/admin/outbound/accounts/{id}/unsuspend', params: ID_KEYS.user, own: { tenant_admin: 200, domain_admin: 403, user: 403 } },
  { method: 'DELETE', path: '/api/v1/admin/outbound/whitelist/{id}', params: ID_KEYS.user, own: null },
  // super-admin only
  { method: 'DELETE', path: '/api/v1/admin/plugins/{id}', params: ID_KEYS.plugin, own: null, superOnly: true },
  { method: 'POST', path: '/api/v1/admin/plugins/{id}/approve', params: ID_KEYS.plugin, body: () => ({}), own: null, superOnly: true },
  { method: 'POST', path: '/api/v1/admin/plugins/{id}/enable', params: ID_KEYS.plugin, own: null, superOnly: true },
  { method: 'POST', path: '/api/v1/admin/plugins/{id}/disable', params: ID_KEYS.plugin, own: null, superOnly: true },
  { method: 'GET', path: '/api/v1/admin/plugins/{id}/metrics', params: ID_KEYS.plugin, own: { tenant_admin: 403, domain_admin: 403, user: 403 }, superOnly: true },
  { method: 'POST', path: '/api/v1/admin/plugins/{id}/secret/rotate', params: ID_KEYS.plugin, own: null, superOnly: true },
  { method: 'GET', path: '/api/v1/admin/plugins/{id}/tokens', params: ID_KEYS.plugin, own: { tenant_admin: 403, domain_admin: 403, user: 403 }, superOnly: true },
  { method: 'POST', path: '/api/v1/admin/plugins/{id}/tokens', params: ID_KEYS.plugin, body: () => ({ scopes: ['read'] }), own: null, superOnly: true },
  { method: 'DELETE', path: '/api/v1/admin/plugins/{id}/tokens/{tokenId}', params: () => ({ id: PLUGIN, tokenId: pluginTokenId }), own: null, superOnly: true },
  { method: 'GET', path: '/api/v1/admin/tenants/{id}', params: ID_KEYS.tenant, own: { tenant_admin: 403, domain_admin: 403, user: 403 }, superOnly: true },
  { method: 'PATCH', path: '/api/v1/admin/tenants/{id}', params: ID_KEYS.tenant, body: () => ({ plan: 'default' }), own: null, superOnly: true },
  { method: 'DELETE', path: '/api/v1/admin/tenants/{id}', params: ID_KEYS.tenant, own: null, superOnly: true },
  { method: 'POST', path: '/api/v1/admin/tenants/{id}/suspend', params: ID_KEYS.tenant, own: null, superOnly: true },
  { method: 'POST', path: '/api/v1/admin/tenants/{id}/activate', params: ID_KEYS.tenant, own: null, superOnly: true },
  { method: 'GET', path: '/api/v1/admin/tenants/{id}/usage', params: ID_KEYS.tenant, own: { tenant_admin: 403, domain_admin: 403, user: 403 }, superOnly: true },
];

/** Id-less routes: what each role gets, and the rows of B they must never list. */
interface ListOp {
  path: (w: TenantWorld) => string;
  own: Record<Role, number>;
  /** Ids of B that must not appear in A's answer. */
  forbidden: (b: TenantWorld) => string[];
}

const LISTS: ListOp[] = [
  { path: () => '/api/v1/domains', own: { tenant_admin: 200, domain_admin: 200, user: 403 }, forbidden: (b) => [b.ids.domain, b.ids.otherDomain] },
  { path: (b) => `/api/v1/domains?tenant_id=${b.id}`, own: { tenant_admin: 200, domain_admin: 200, user: 403 }, forbidden: (b) => [b.ids.domain, b.ids.otherDomain] },
  { path: () => '/api/v1/users', own: { tenant_admin: 200, domain_admin: 200, user: 403 }, forbidden: (b) => [b.ids.user, b.ids.otherUser] },
  { path: (b) => `/api/v1/users?tenant_id=${b.id}`, own: { tenant_admin: 200, domain_admin: 200, user: 403 }, forbidden: (b) => [b.ids.user, b.ids.otherUser] },
  { path: () => '/api/v1/mailboxes', own: { tenant_admin: 200, domain_admin: 200, user: 200 }, forbidden: (b) => [b.ids.mailbox, b.ids.otherMailbox, b.ids.sharedMailbox] },
  { path: () => '/api/v1/aliases', own: { tenant_admin: 200, domain_admin: 200, user: 403 }, forbidden: (b) => [b.ids.alias] },
  { path: () => '/api/v1/api-keys?all=true', own: { tenant_admin: 200, domain_admin: 403, user: 403 }, forbidden: (b) => [b.ids.apiKey] },
  { path: () => '/api/v1/webhooks', own: { tenant_admin: 200, domain_admin: 403, user: 403 }, forbidden: (b) => [b.ids.webhook] },
  { path: () => '/api/v1/admin/hooks', own: { tenant_admin: 200, domain_admin: 403, user: 403 }, forbidden: (b) => [b.ids.hook, b.id] },
  { path: (b) => `/api/v1/admin/hooks?tenant_id=${b.id}`, own: { tenant_admin: 200, domain_admin: 403, user: 403 }, forbidden: (b) => [b.ids.hook] },
  { path: () => '/api/v1/admin/tenant-plugins', own: { tenant_admin: 200, domain_admin: 403, user: 403 }, forbidden: (b) => [b.id] },
  { path: () => `/api/v1/admin/plugins/${PLUGIN}/logs`, own: { tenant_admin: 200, domain_admin: 403, user: 403 }, forbidden: (b) => [b.id] },
  { path: () => '/api/v1/admin/audit-logs?limit=100', own: { tenant_admin: 200, domain_admin: 403, user: 403 }, forbidden: (b) => [b.id] },
  { path: () => '/api/v1/tenant', own: { tenant_admin: 200, domain_admin: 403, user: 403 }, forbidden: (b) => [b.id] },
  { path: () => '/api/v1/tenant/usage', own: { tenant_admin: 200, domain_admin: 403, user: 403 }, forbidden: (b) => [b.id] },
  { path: () => '/api/v1/admin/tenants', own: { tenant_admin: 403, domain_admin: 403, user: 403 }, forbidden: (b) => [b.id] },
  { path: () => '/api/v1/queue', own: { tenant_admin: 200, domain_admin: 403, user: 403 }, forbidden: (b) => [b.ids.outbound, b.id] },
  { path: (b) => `/api/v1/queue?tenant_id=${b.id}`, own: { tenant_admin: 200, domain_admin: 403, user: 403 }, forbidden: (b) => [b.ids.outbound] },
  { path: () => '/api/v1/queue/stats', own: { tenant_admin: 200, domain_admin: 403, user: 403 }, forbidden: (b) => [b.id] },
  { path: () => '/api/v1/admin/settings', own: { tenant_admin: 403, domain_admin: 403, user: 403 }, forbidden: () => [] },
];

function fill(path: string, params: Record<string, string>): string {
  return path.replace(/\{(\w+)\}/g, (_, k: string) => {
    if (!(k in params)) throw new Error(`no value for {${k}} in ${path}`);
    return params[k];
  });
}

/** The same path with every id replaced by a fresh UUID (an id that exists nowhere). */
function withUnknownIds(params: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  // A plugin id (reverse-DNS) is replaced by another well-formed one, so the answer is about the
  // id being unknown, not about its syntax.
  for (const [k, v] of Object.entries(params)) out[k] = k === 'part' ? v : /^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(v) ? `com.example.unknown-${randomUUID().slice(0, 8)}` : randomUUID();
  return out;
}

describe(`API role × tenant matrix (${shape})`, () => {
  let api: ApiHarness;
  let A: TenantWorld;
  let B: TenantWorld;
  let superAdmin: TestUser;

  before(async () => {
    api = await startApi();
    superAdmin = await api.superAdmin();
    await installPlugin(api);
    A = await buildTenant(api, 'a');
    B = await buildTenant(api, 'b');
  });
  after(async () => {
    await api?.close();
  });

  test('each role of a tenant gets exactly its due on its own rows', async () => {
    const failures: string[] = [];
    for (const op of OPS.filter((o) => o.own)) {
      for (const role of ROLES) {
        const url = fill(op.path, op.params!(A)) + (op.query?.(A) ?? '');
        const res = await api.call(op.method, url, { token: A.principals[role].token, body: op.body?.(A) });
        if (res.status !== op.own![role]) failures.push(`${role} ${op.method} ${op.path}: ${res.status} (expected ${op.own![role]}) ${res.body.slice(0, 160)}`);
      }
    }
    for (const l of LISTS) {
      for (const role of ROLES) {
        const res = await api.call('GET', l.path(B), { token: A.principals[role].token });
        if (res.status !== l.own[role]) failures.push(`${role} GET ${l.path(B)}: ${res.status} (expected ${l.own[role]}) ${res.body.slice(0, 160)}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test('an id of tenant B answers exactly like an id that does not exist, for every role of A, and changes nothing', async () => {
    const before = await snapshot(api, B);
    const failures: string[] = [];
    for (const op of OPS.filter((o) => !o.shared)) {
      for (const role of ROLES) {
        const token = A.principals[role].token;
        const params = op.params!(B);
        const body = op.body?.(B);
        const real = await api.call(op.method, fill(op.path, params) + (op.query?.(B) ?? ''), { token, body });
        const ghost = await api.call(op.method, fill(op.path, withUnknownIds(params)) + (op.query?.(B) ?? ''), { token, body: op.body?.(B) });
        const label = `${role} ${op.method} ${op.path}`;
        if (real.status >= 200 && real.status < 300) failures.push(`${label}: ${real.status} on tenant B's row`);
        if (real.status !== ghost.status || real.json?.error?.code !== ghost.json?.error?.code) {
          failures.push(`${label}: B's id → ${real.status} ${real.json?.error?.code}, unknown id → ${ghost.status} ${ghost.json?.error?.code}`);
        }
        // Where the role may use the route at all, the answer is "not found", never "forbidden".
        const mayUse = op.superOnly || op.pluginToken ? false : !(op.own && op.own[role] === 403);
        if (op.pluginToken && real.status !== 401) failures.push(`${label}: ${real.status} (expected 401: user credentials are not plugin tokens)`);
        if (mayUse && real.status !== 404 && real.status !== 403) failures.push(`${label}: ${real.status} (expected 404)`);
        if (real.status === 403 && mayUse && op.own) failures.push(`${label}: 403 reveals the row exists`);
      }
    }
    assert.deepEqual(failures, []);
    assert.equal(await snapshot(api, B), before, "tenant B's rows are unchanged");
  });

  test('no list or search of A shows anything of B', async () => {
    const failures: string[] = [];
    for (const l of LISTS) {
      for (const role of ROLES) {
        const res = await api.call('GET', l.path(B), { token: A.principals[role].token });
        for (const id of l.forbidden(B)) if (res.body.includes(id)) failures.push(`${role} GET ${l.path(B)} lists ${id}`);
        if (res.body.includes(B.name)) failures.push(`${role} GET ${l.path(B)} shows B's name`);
      }
    }
    // Mail of B cannot be listed or searched by any principal of A, even naming B's mailbox.
    for (const role of ROLES) {
      const token = A.principals[role].token;
      for (const mb of [B.ids.mailbox, B.ids.sharedMailbox]) {
        const res = await api.call('GET', `/api/v1/messages?mailbox_id=${mb}`, { token });
        if (res.status !== 404) failures.push(`${role} lists messages of B's mailbox: ${res.status}`);
        const f = await api.call('GET', `/api/v1/folders?mailbox_id=${mb}`, { token });
        if (f.status !== 404) failures.push(`${role} lists folders of B's mailbox: ${f.status}`);
      }
      const q = await api.call('GET', `/api/v1/messages?q=${encodeURIComponent(B.subject)}`, { token });
      if (q.body.includes(B.subject)) failures.push(`${role} finds B's message by search`);
      const mine = await api.call('GET', `/api/v1/messages?q=${encodeURIComponent(A.subject)}`, { token: A.principals.user.token });
      assert.equal(mine.status, 200, mine.body);
      assert.equal(mine.json.data.length, 1, 'the search itself works: A finds its own message');
    }
    assert.deepEqual(failures, []);
  });

  test('creating rows in tenant B is impossible for A', async () => {
    const before = await snapshot(api, B);
    const token = A.principals.tenant_admin.token;
    const attempts = [
      await api.call('POST', '/api/v1/domains', { token, body: { name: 'sneaky.iso.test', tenant_id: B.id } }),
      await api.call('POST', '/api/v1/users', { token, body: { email: 'sneaky@b.iso.test', password: 'a long enough password', tenant_id: B.id } }),
      await api.call('POST', '/api/v1/mailboxes', { token, body: { address: 'sneaky@b.iso.test' } }),
      await api.call('POST', '/api/v1/aliases', { token, body: { address: 'sneaky2@a.iso.test', targets: [B.ids.mailbox] } }),
      await api.call('POST', '/api/v1/folders', { token: A.principals.user.token, body: { mailbox_id: B.ids.mailbox, name: 'Sneaky' } }),
      await api.call('POST', '/api/v1/webhooks', { token, body: { url: 'https://x.example/h', events: ['user.created'], tenant_id: B.id } }),
      await api.call('POST', '/api/v1/admin/hooks', { token, body: { id: 'sneaky-hook', type: 'post_receive', plugin_id: PLUGIN, tenant_id: B.id } }),
      await api.call('PUT', `/api/v1/admin/tenant-plugins/${PLUGIN}`, { token, body: { enabled: false, config: { sneaky: true }, tenant_id: B.id } }),
    ];
    for (const r of attempts) assert.ok(r.status >= 400 && r.status < 500, `${r.status} ${r.body}`);
    assert.equal(await snapshot(api, B), before);
  });

  test("a super-admin reaches every tenant's administration, but not a person's mail", async () => {
    const token = superAdmin.token;
    for (const path of [`/api/v1/admin/tenants/${B.id}`, `/api/v1/domains/${B.ids.domain}`, `/api/v1/users/${B.ids.user}`, `/api/v1/mailboxes/${B.ids.mailbox}`, `/api/v1/aliases/${B.ids.alias}`, `/api/v1/webhooks/${B.ids.webhook}`, `/api/v1/admin/hooks/${B.ids.hook}`]) {
      const r = await api.call('GET', path, { token });
      assert.equal(r.status, 200, `${path}: ${r.body}`);
    }
    const mail = await api.call('GET', `/api/v1/messages/${B.ids.message}`, { token });
    assert.equal(mail.status, 404);
  });

  test('an API key is bounded by its owner and its scopes across tenants', async () => {
    const key = await api.deps.apiKeys.create({ tenantId: A.id, userId: A.principals.tenant_admin.user.id, name: 'matrix', scopes: ['read', 'admin'] });
    for (const path of [`/api/v1/domains/${B.ids.domain}`, `/api/v1/users/${B.ids.user}`, `/api/v1/webhooks/${B.ids.webhook}`, `/api/v1/aliases/${B.ids.alias}`]) {
      const r = await api.call('GET', path, { token: key.key });
      assert.equal(r.status, 404, `${path}: ${r.body}`);
    }
    const own = await api.call('GET', `/api/v1/domains/${A.ids.domain}`, { token: key.key });
    assert.equal(own.status, 200);
  });

  test('every id-taking route of the OpenAPI document is in the matrix', async () => {
    const doc = await api.call('GET', '/api/v1/openapi.json');
    const covered = new Set(OPS.map((o) => `${o.method} ${o.path}`));
    const missing: string[] = [];
    for (const [path, ops] of Object.entries<Record<string, unknown>>(doc.json.paths)) {
      if (!path.includes('{')) continue;
      for (const method of Object.keys(ops)) {
        const k = `${method.toUpperCase()} ${path}`;
        if (!covered.has(k)) missing.push(k);
      }
    }
    assert.deepEqual(missing, []);
  });
});
