/**
 * The plugin API (`/api/v1/internal/plugins/*`, SPEC §7 "Plugin tokens") in the current test shape,
 * on messages really stored through mailbox-state: `plt_` token authentication and scopes (401),
 * tenant reach (a message of a tenant where the plugin is not enabled answers 404 like an unknown
 * id; a global hook gives reach to every tenant), reads limited to the granted permissions,
 * callbacks applied through mailbox-state, ungranted writes refused as a whole with 403 and an
 * audit row, token rotation (the old token stops at once), and the per-token rate limit.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApi, auditRowsFor, type ApiHarness, type TestTenant } from '../support/api.js';
import { shape, tempDir } from '../support/shape.js';
import { tenantScope } from '../../src/core/scope.js';
import { cliActor } from '../../src/security/audit.js';
import type { HookSystem } from '../../src/app/hooks.js';

const P = 'com.example.internal-p'; // enabled for tenant A only
const G = 'com.example.internal-g'; // serves a global hook
const D = 'com.example.internal-d'; // enabled for A, then disabled

let api: ApiHarness;
let sys: HookSystem;
let a: TestTenant;
let b: TestTenant;
const dir = tempDir('mairust-api-internal-');
const tokens: Record<string, string> = {};

interface Stored {
  messageId: string;
  folderId: string;
  mailboxId: string;
  uid: number;
  address: string;
}
let msgA: Stored;
let msgB: Stored;

async function storeMessage(t: TestTenant, label: string): Promise<Stored> {
  const scope = tenantScope(t.id);
  const dom = `${label}.internal.test`;
  await api.app.tenancy.domains.add(scope, { name: dom });
  const address = `box@${dom}`;
  const mb = await api.app.tenancy.mailboxes.add(scope, { address });
  const inbox = (await api.app.mailboxState.findFolder(scope, mb.id, 'INBOX'))!;
  const raw = Buffer.from(
    `From: Alice <alice@example.org>\r\nTo: ${address}\r\nSubject: Invoice ${label}\r\nMessage-ID: <${randomUUID()}@example.org>\r\nDate: Sun, 01 Nov 2026 10:00:00 +0000\r\n\r\n${'Body text of the message. '.repeat(400)}\r\n`,
  );
  const r = await api.app.mailboxState.append(scope, mb.id, inbox.id, raw);
  return { messageId: r.messageId, folderId: inbox.id, mailboxId: mb.id, uid: r.uid, address };
}

async function installPlugin(id: string, permissions: string[]): Promise<void> {
  const d = join(dir.path, id);
  mkdirSync(d, { recursive: true });
  writeFileSync(
    join(d, 'plugin.toml'),
    [`id = "${id}"`, `name = "${id}"`, 'version = "1.0.0"', '[entry]', 'type = "hook"', 'protocol = "http"', 'endpoint = "http://127.0.0.1:9/hook"', 'callback_api = true', '[hooks]', 'on = ["post_receive"]', '[permissions]', ...permissions].join('\n'),
  );
  await sys.plugins.installFromDirectory(d, cliActor);
  await sys.plugins.approve(id, cliActor, { allowPrivate: true });
  await sys.plugins.enable(id, cliActor);
  tokens[id] = (await sys.plugins.rotateToken(id, ['callback', 'read'], cliActor)).token;
}

function bearer(token: string) {
  return { authorization: `Bearer ${token}` };
}

const cb = (id: string) => `/api/v1/internal/plugins/callback/${id}`;
const read = (id: string) => `/api/v1/internal/plugins/messages/${id}`;

before(async () => {
  api = await startApi({ config: { storage: { backend: 'fs' }, plugins: { egress_allowlist: ['127.0.0.1'] } } });
  sys = api.deps.hookSystem!;
  a = await api.tenant('inta');
  b = await api.tenant('intb');
  msgA = await storeMessage(a, 'a');
  msgB = await storeMessage(b, 'b');
  await installPlugin(P, ['read_headers = true', 'read_body = "preview"', 'write_tags = true', 'write_metadata = true']);
  await installPlugin(G, ['read_headers = true']);
  await installPlugin(D, ['read_headers = true']);
  await sys.plugins.setTenantPlugin(a.id, P, { enabled: true }, cliActor);
  await sys.plugins.setTenantPlugin(a.id, D, { enabled: true }, cliActor);
  await sys.hooks.create({ id: 'global-g', type: 'post_receive', plugin_id: G, tenant_id: null }, cliActor);
});

after(async () => {
  const log = api.logText();
  for (const t of Object.values(tokens)) assert.ok(!log.includes(t), 'a plugin token appears in the log');
  await api?.close();
  dir.remove();
});

describe(`plugin API (${shape})`, () => {
  test('401 without a plugin token, with a user token, an unknown token, or the wrong scope', async () => {
    assert.equal((await api.call('GET', read(msgA.messageId))).status, 401);
    assert.equal((await api.call('GET', read(msgA.messageId), { token: a.admin.token })).status, 401, 'a user credential is not a plugin token');
    assert.equal((await api.call('GET', read(msgA.messageId), { headers: bearer('plt_bogusbogusbogusbogusbogus') })).status, 401);
    const readOnly = (await sys.plugins.rotateToken(G, ['read'], cliActor)).token;
    tokens.gRead = readOnly;
    const res = await api.call('POST', cb(msgB.messageId), { headers: bearer(readOnly), body: { tags: ['x'] } });
    assert.equal(res.status, 401, 'a read token cannot call back');
    assert.equal(res.json.error.details.required_scope, 'callback');
    // An unauthenticated caller learns nothing about the body rules.
    assert.equal((await api.call('POST', cb(msgA.messageId), { body: { nonsense: true } })).status, 401);
  });

  test('reads return exactly the granted parts', async () => {
    const res = await api.call('GET', read(msgA.messageId), { headers: bearer(tokens[P]) });
    assert.equal(res.status, 200, res.body);
    const m = res.json.data;
    assert.equal(m.message_id, msgA.messageId);
    assert.equal(m.tenant_id, a.id);
    assert.deepEqual(m.envelope.to, [msgA.address]);
    assert.deepEqual(m.headers.subject, ['Invoice a']);
    assert.equal(typeof m.body.preview, 'string');
    assert.ok(Buffer.byteLength(m.body.preview) <= 4096, 'preview is at most 4 KiB');
    assert.equal(m.body.full, undefined);
    assert.equal(m.body.attachments, undefined, 'read_attachments = none');
    assert.match(m.callback_url, new RegExp(`/api/v1/internal/plugins/callback/${msgA.messageId}$`));

    // G (global hook, read_headers only): reaches tenant B's message, sees no body.
    const g = await api.call('GET', read(msgB.messageId), { headers: bearer(tokens.gRead) });
    assert.equal(g.status, 200, g.body);
    assert.ok(g.json.data.headers);
    assert.equal(g.json.data.body.preview, undefined);
    assert.equal(g.json.data.body.full, undefined);
  });

  test("a message of a tenant where the plugin is not enabled answers 404, like an unknown id", async () => {
    for (const [method, path, body] of [
      ['GET', read(msgB.messageId)],
      ['POST', cb(msgB.messageId), { tags: ['x'] }],
    ] as const) {
      const real = await api.call(method, path, { headers: bearer(tokens[P]), body });
      const ghost = await api.call(method, path.replace(msgB.messageId, randomUUID()), { headers: bearer(tokens[P]), body });
      assert.equal(real.status, 404, real.body);
      assert.equal(ghost.status, 404);
      assert.equal(real.json.error.message, ghost.json.error.message);
    }
    // Disabled plugin: its tenant enablement no longer gives reach.
    assert.equal((await api.call('GET', read(msgA.messageId), { headers: bearer(tokens[D]) })).status, 200);
    await sys.plugins.disable(D, cliActor);
    assert.equal((await api.call('GET', read(msgA.messageId), { headers: bearer(tokens[D]) })).status, 404);
    const entry = await api.app.mailboxState.getEntry(tenantScope(b.id), msgB.folderId, msgB.uid);
    assert.deepEqual(entry!.keywords, [], "nothing was written to B's message");
  });

  test('a granted callback is applied through mailbox-state', async () => {
    const res = await api.call('POST', cb(msgA.messageId), { headers: bearer(tokens[P]), body: { plugin_id: P, action: 'tag', tags: ['invoice'], metadata: { score: 3 }, score: 4 } });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json.data.tags, ['invoice']);
    assert.deepEqual(res.json.data.metadata, { score: 3 });
    assert.deepEqual(res.json.data.ignored, ['score']);
    const entry = await api.app.mailboxState.getEntry(tenantScope(a.id), msgA.folderId, msgA.uid);
    assert.ok(entry!.keywords.includes('invoice'), JSON.stringify(entry));
  });

  test('ANY ungranted write refuses the whole callback with 403, audited, nothing applied', async () => {
    const res = await api.call('POST', cb(msgA.messageId), { headers: bearer(tokens[P]), body: { tags: ['should-not-appear'], folder: 'Archive', flags: ['\\Seen'] } });
    assert.equal(res.status, 403, res.body);
    assert.equal(res.json.error.code, 'FORBIDDEN');
    assert.deepEqual(res.json.error.details.permissions.sort(), ['move_message', 'write_flags']);
    assert.match(res.json.error.message, /move_message/);
    const entry = await api.app.mailboxState.getEntry(tenantScope(a.id), msgA.folderId, msgA.uid);
    assert.ok(!entry!.keywords.includes('should-not-appear'));
    assert.ok(!entry!.flags.includes('\\Seen'));
    const rows = await auditRowsFor(api, 'plugin.write_refused', msgA.messageId);
    assert.equal(rows.length, 1);
    assert.deepEqual(rows[0].actor, { type: 'plugin', id: P });
    assert.equal(rows[0].tenantId, a.id);
    assert.deepEqual(rows[0].metadata.permissions.sort(), ['move_message', 'write_flags']);

    const other = await api.call('POST', cb(msgA.messageId), { headers: bearer(tokens[P]), body: { plugin_id: G, tags: ['x'] } });
    assert.equal(other.status, 403, 'a token speaks for its own plugin only');
    const invalid = await api.call('POST', cb(msgA.messageId), { headers: bearer(tokens[P]), body: { tags: ['ok'], bogus: 1 } });
    assert.equal(invalid.status, 422);
  });

  test('token rotation: the old token is refused at once, the new one works', async () => {
    const old = tokens[P];
    tokens[P] = (await sys.plugins.rotateToken(P, ['callback', 'read'], cliActor)).token;
    assert.equal((await api.call('GET', read(msgA.messageId), { headers: bearer(old) })).status, 401);
    assert.equal((await api.call('GET', read(msgA.messageId), { headers: bearer(tokens[P]) })).status, 200);
  });

  test('per-token rate limit: 429 with Retry-After', async () => {
    const cfg = api.app.config;
    api.app.updateConfig({ ...cfg, api: { ...cfg.api, rate_limit: { ...cfg.api.rate_limit, plugin_per_token_per_minute: 3 } } });
    try {
      const t = (await sys.plugins.rotateToken(G, ['read'], cliActor)).token;
      tokens.gRate = t;
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await api.call('GET', read(msgB.messageId), { headers: bearer(t) })).status);
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      const last = await api.call('GET', read(msgB.messageId), { headers: bearer(t) });
      assert.equal(last.json.error.code, 'RATE_LIMITED');
      assert.ok(Number(last.headers['retry-after']) >= 1);
      // Another plugin's token has its own budget.
      assert.equal((await api.call('GET', read(msgA.messageId), { headers: bearer(tokens[P]) })).status, 200);
    } finally {
      api.app.updateConfig(cfg);
    }
  });
});
