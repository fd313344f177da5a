/**
 * The hook manager (SPEC §6) against real plugins: HTTP plugins served by node:http on 127.0.0.1
 * (each request's signature verified with the SDK, as a plugin would), script plugins as real .mjs
 * files run by this Node binary. Breaker states live in the database of the current shape.
 *
 * The plugin directory here is a small Map-backed implementation of PluginDirectory (the real
 * registry is src/plugins/registry.ts); its plugins are real.
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { freshDatabase, tempDir, type TestDatabase } from '../support/shape.js';
import { verifyRequest } from '../../sdk/src/verify.js';
import { HookManager } from '../../src/hooks/manager.js';
import { createHookMetrics, type HookMetrics } from '../../src/hooks/metrics.js';
import { CircuitBreaker } from '../../src/hooks/circuit-breaker.js';
import { DatabaseBreakerStore } from '../../src/hooks/breaker-store.js';
import { validateHookConfig, orderHooks } from '../../src/hooks/config.js';
import { buildPayloadSource, filterSubjectOf } from '../../src/hooks/payload.js';
import { writeAudit } from '../../src/security/audit.js';
import { NO_PERMISSIONS, type Permissions } from '../../src/plugins/permissions.js';
import type { PluginManifest } from '../../src/plugins/manifest.js';
import type { PluginDirectory, PluginLogEntry, RunnablePlugin } from '../../src/plugins/types.js';
import type { ChainInput, HookSource, StoredHook } from '../../src/hooks/runtime-types.js';
import type { HookType } from '../../src/hooks/types.js';

// ── Real plugins ─────────────────────────────────────────────────────────────────────────────────

type Handler = (body: Record<string, unknown>, req: IncomingMessage, res: ServerResponse) => void;

interface Received {
  pluginId: string;
  body: Record<string, unknown>;
  headers: IncomingMessage['headers'];
}

const handlers = new Map<string, Handler>();
const received: Received[] = [];
const badSignatures: string[] = [];
const secrets = new Map<string, string>();
const sockets = new Set<Socket>();
let server: Server;
let endpoint: string;

function startServer(): Promise<void> {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const pluginId = String(req.headers['x-mairust-plugin-id'] ?? '');
      const secret = secrets.get(pluginId);
      const verified = secret ? verifyRequest({ secrets: [secret], pluginId, headers: req.headers, body: raw }) : { ok: false };
      if (!verified.ok) {
        badSignatures.push(pluginId);
        res.writeHead(401).end();
        return;
      }
      const body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      received.push({ pluginId, body, headers: req.headers });
      const handler = handlers.get(pluginId) ?? answer({ action: 'allow' });
      handler(body, req, res);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const addr = server.address() as { port: number };
    endpoint = `http://127.0.0.1:${addr.port}/hook`;
    resolve();
  }));
}

/** A handler answering `reply` (plugin_id filled in from the request). */
function answer(reply: Record<string, unknown>, delayMs = 0): Handler {
  return (_body, req, res) => {
    const send = () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ plugin_id: req.headers['x-mairust-plugin-id'], ...reply }));
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  };
}
/** Never answers (the socket is destroyed by the caller's timeout or at the end of the suite). */
const hang: Handler = () => undefined;

function manifest(id: string, entry: PluginManifest['entry'], permissions: Permissions): PluginManifest {
  return {
    id,
    name: id,
    version: '1.0.0',
    author: null,
    description: null,
    license: null,
    homepage: null,
    compat: { mairust_min: null, mairust_max: null },
    entry,
    hooks: { on: ['pre_receive', 'post_receive', 'pre_send', 'pre_delivery'], filter: {} },
    permissions,
    // Node.js reserves a lot of address space at start: the memory limit must be generous.
    limits: { cpu_ms: 10_000, memory_mb: 4096, wall_time_ms: 5_000, network: 'none' },
    logging: { level: 'info' },
  };
}

class MapDirectory implements PluginDirectory {
  readonly plugins = new Map<string, RunnablePlugin>();
  readonly tenantEnabled = new Set<string>();
  readonly tenantConfigs = new Map<string, Record<string, unknown>>();
  readonly logs: PluginLogEntry[] = [];

  addHttp(id: string, permissions: Permissions = NO_PERMISSIONS): void {
    secrets.set(id, `psec_${id}_secret`);
    this.plugins.set(id, {
      id,
      manifest: manifest(id, { type: 'hook', protocol: 'http', endpoint, health_endpoint: null, callback_api: false }, permissions),
      permissions,
      allowPrivate: true,
      installDir: '/nonexistent',
      secrets: async () => [secrets.get(id)!],
    });
  }

  addScript(id: string, dir: string, file: string, permissions: Permissions = NO_PERMISSIONS): void {
    this.plugins.set(id, {
      id,
      manifest: manifest(id, { type: 'hook', protocol: 'script', command: [process.execPath, file], health_cmd: null, callback_api: false }, permissions),
      permissions,
      allowPrivate: false,
      installDir: dir,
      secrets: async () => [],
    });
  }

  async runnable(pluginId: string): Promise<RunnablePlugin | null> {
    return this.plugins.get(pluginId) ?? null;
  }
  async enabledForTenant(pluginId: string, tenantId: string): Promise<boolean> {
    return this.tenantEnabled.has(`${pluginId}|${tenantId}`);
  }
  async tenantConfig(pluginId: string, tenantId: string): Promise<Record<string, unknown>> {
    return this.tenantConfigs.get(`${pluginId}|${tenantId}`) ?? {};
  }
  async log(entry: PluginLogEntry): Promise<void> {
    this.logs.push(entry);
  }
}

class ListSource implements HookSource {
  hooks: StoredHook[] = [];
  set(defs: Array<Record<string, unknown>>): void {
    this.hooks = defs.map((d) => {
      const r = validateHookConfig(d);
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      return { ...r.config, source: 'api' as const, createdAt: 0, updatedAt: 0 };
    });
  }
  async active(type: HookType, tenantIds: readonly string[]): Promise<StoredHook[]> {
    return orderHooks(this.hooks.filter((h) => h.type === type && (h.tenant_id === null || tenantIds.includes(h.tenant_id))));
  }
  async get(id: string): Promise<StoredHook | null> {
    return this.hooks.find((h) => h.id === id) ?? null;
  }
}

// ── Fixture state ────────────────────────────────────────────────────────────────────────────────

const T0 = 1_800_000_000_000;
let tdb: TestDatabase;
let scripts: ReturnType<typeof tempDir>;
let dir: MapDirectory;
let source: ListSource;
let registry: Registry;
let metrics: HookMetrics;
let clock: number;
let manager: HookManager;
let hookSeq = 0;

const RAW = Buffer.from(
  `From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: Quarterly numbers\r\nX-Secret-Header: internal\r\n\r\n${'x'.repeat(6000)}\r\n`,
);

function chain(type: HookType, over: Partial<ChainInput> = {}): ChainInput {
  const envelope = { from: 'alice@example.org', to: ['bob@example.com'] };
  return {
    type,
    tenantIds: ['tenant-a'],
    subject: filterSubjectOf({ envelope, raw: RAW }),
    payload: async (tenantId) =>
      buildPayloadSource({ hookType: type, messageId: 'msg-1', tenantId, mailbox: null, envelope, raw: RAW, receivedAt: new Date(T0), clientIp: '192.0.2.1', callbackUrl: null }),
    messageId: 'msg-1',
    ...over,
  };
}

/** Unique ids per test: breaker rows of one test must not leak into the next. */
function hid(name: string): string {
  return `${name}-${++hookSeq}`;
}

before(async () => {
  tdb = await freshDatabase();
  scripts = tempDir('mairust-hook-scripts-');
  await startServer();
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  scripts.remove();
  await tdb?.drop();
});

beforeEach(() => {
  handlers.clear();
  received.length = 0;
  badSignatures.length = 0;
  dir = new MapDirectory();
  source = new ListSource();
  registry = new Registry();
  metrics = createHookMetrics(registry);
  clock = T0 + hookSeq * 1_000_000;
  manager = new HookManager({
    hooks: source,
    plugins: dir,
    breaker: new CircuitBreaker(new DatabaseBreakerStore(tdb.db)),
    resolver: { resolve4: async () => [], resolve6: async () => [] },
    metrics,
    scoreMode: () => 'max',
    callbackUrl: (id) => `http://127.0.0.1/cb/${id}`,
    now: () => clock,
    logger: { warn: () => undefined },
    audit: (entry) => writeAudit(tdb.db, entry),
  });
});

// ── Tests ────────────────────────────────────────────────────────────────────────────────────────

test('hooks run by priority, then id; every request is signed', async () => {
  for (const id of ['com.example.a', 'com.example.b', 'com.example.c']) dir.addHttp(id);
  const [late, b, a] = [hid('late'), `b-${hookSeq}`, `a-${hookSeq}`];
  source.set([
    { id: late, type: 'pre_delivery', plugin_id: 'com.example.a', priority: 200 },
    { id: b, type: 'pre_delivery', plugin_id: 'com.example.b', priority: 50 },
    { id: a, type: 'pre_delivery', plugin_id: 'com.example.c', priority: 50 },
  ]);
  const out = await manager.runChain(chain('pre_delivery'));
  assert.deepEqual(out.calls.map((c) => c.hookId), [a, b, late]);
  assert.deepEqual(received.map((r) => r.pluginId), ['com.example.c', 'com.example.b', 'com.example.a']);
  assert.deepEqual(badSignatures, []);
  assert.equal(received[0].headers['x-mairust-hook-type'], 'pre_delivery');
  assert.equal(received[0].headers['x-mairust-hook-id'], a);
  assert.equal(out.decision.action, 'allow');
  assert.deepEqual(out.calls.map((c) => c.outcome), ['ok', 'ok', 'ok']);
});

test('a filter that does not match skips the hook without calling it', async () => {
  dir.addHttp('com.example.f');
  const skipped = hid('skip');
  const runs = hid('runs');
  source.set([
    { id: skipped, type: 'pre_delivery', plugin_id: 'com.example.f', filter: { subject_matches: '^urgent' } },
    { id: runs, type: 'pre_delivery', plugin_id: 'com.example.f', filter: { subject_matches: '^Quarterly', size_gt: 1000 } },
  ]);
  handlers.set('com.example.f', answer({ action: 'tag', tags: ['seen'] }));
  dir.plugins.get('com.example.f')!.permissions = { ...NO_PERMISSIONS, read_headers: true, write_tags: true };
  const out = await manager.runChain(chain('pre_delivery'));
  assert.deepEqual(out.calls.map((c) => [c.hookId, c.outcome]), [[runs, 'ok'], [skipped, 'filtered']].sort((x, y) => (x[0] < y[0] ? -1 : 1)));
  assert.equal(received.length, 1);
  assert.equal(received[0].headers['x-mairust-hook-id'], runs);
  assert.deepEqual(out.decision.tags, ['seen']);
});

test('aggregation: a reject stops the chain (the later plugin is not called)', async () => {
  const perms = { ...NO_PERMISSIONS, read_headers: true, write_tags: true, write_metadata: true };
  dir.addHttp('com.example.tagger', perms);
  dir.addHttp('com.example.rejecter', perms);
  dir.addHttp('com.example.never', perms);
  handlers.set('com.example.tagger', answer({ action: 'tag', tags: ['a', 'b'], score: 2, metadata: { k: 1 } }));
  handlers.set('com.example.rejecter', answer({ action: 'reject', tags: ['b', 'c'], score: 7, smtp_code: 554, smtp_enhanced: '5.7.0', smtp_message: 'Spam detected' }));
  handlers.set('com.example.never', answer({ action: 'allow' }));
  source.set([
    { id: hid('t'), type: 'pre_receive', plugin_id: 'com.example.tagger', priority: 1 },
    { id: hid('r'), type: 'pre_receive', plugin_id: 'com.example.rejecter', priority: 2 },
    { id: hid('n'), type: 'pre_receive', plugin_id: 'com.example.never', priority: 3 },
  ]);
  const out = await manager.runChain(chain('pre_receive'));
  assert.deepEqual(received.map((r) => r.pluginId), ['com.example.tagger', 'com.example.rejecter']);
  assert.equal(out.calls.length, 2);
  assert.equal(out.decision.action, 'reject');
  assert.equal(out.decision.decidedBy, 'com.example.rejecter');
  assert.deepEqual(out.decision.tags, ['a', 'b', 'c']);
  assert.equal(out.decision.score, 7);
  assert.deepEqual(out.decision.metadata, { 'com.example.tagger': { k: 1 } });
  assert.deepEqual(out.decision.smtp, { code: 554, enhanced: '5.7.0', text: 'Spam detected' });
  assert.equal(out.results.length, 2);
});

test('a timeout yields on_timeout; an error or invalid reply yields on_error', async () => {
  for (const id of ['com.example.slow', 'com.example.garbage', 'com.example.liar', 'com.example.broken']) dir.addHttp(id);
  handlers.set('com.example.slow', answer({ action: 'allow' }, 3_000));
  handlers.set('com.example.garbage', (_b, _req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{not json'));
  handlers.set('com.example.liar', (_b, _req, res) => res.writeHead(200).end(JSON.stringify({ plugin_id: 'com.example.someone-else', action: 'allow' })));
  handlers.set('com.example.broken', (_b, _req, res) => res.writeHead(500).end());

  source.set([{ id: hid('slow'), type: 'pre_delivery', plugin_id: 'com.example.slow', timeout_ms: 300, on_timeout: 'reject' }]);
  const started = performance.now();
  const slow = await manager.runChain(chain('pre_delivery'));
  assert.ok(performance.now() - started < 1_500, 'the timeout bounds the call');
  assert.equal(slow.calls[0].outcome, 'timeout');
  assert.equal(slow.calls[0].action, 'reject');
  assert.equal(slow.decision.action, 'reject');
  assert.deepEqual(slow.decision.smtp, { code: 550, enhanced: '5.7.1', text: 'Message rejected by content policy' });

  source.set([{ id: hid('garbage'), type: 'pre_delivery', plugin_id: 'com.example.garbage', on_error: 'tempfail' }]);
  const garbage = await manager.runChain(chain('pre_delivery'));
  assert.equal(garbage.calls[0].outcome, 'error');
  assert.match(garbage.calls[0].error!, /not one JSON value/);
  assert.equal(garbage.decision.action, 'tempfail');
  assert.equal(garbage.decision.smtp?.code, 451);

  source.set([{ id: hid('liar'), type: 'pre_delivery', plugin_id: 'com.example.liar' }]);
  const liar = await manager.runChain(chain('pre_delivery'));
  assert.equal(liar.calls[0].outcome, 'error');
  assert.match(liar.calls[0].error!, /plugin_id/);
  assert.equal(liar.calls[0].action, 'allow', 'on_error defaults to allow');
  assert.equal(liar.decision.action, 'allow');

  source.set([{ id: hid('broken'), type: 'pre_delivery', plugin_id: 'com.example.broken', on_error: 'reject' }]);
  const broken = await manager.runChain(chain('pre_delivery'));
  assert.equal(broken.calls[0].outcome, 'error');
  assert.equal(broken.decision.action, 'reject');

  // Each failure left a warn line in its plugin's log, naming the hook and the message.
  for (const id of ['com.example.slow', 'com.example.garbage', 'com.example.liar', 'com.example.broken']) {
    const line = dir.logs.find((l) => l.pluginId === id);
    assert.ok(line, `log line for ${id}`);
    assert.equal(line.level, 'warn');
    assert.equal(line.messageId, 'msg-1');
    assert.match(line.message, /msg-1/);
  }
});

test('unavailable plugins: skipped, unless the hook is required (tempfail); tenant hooks need tenant enablement', async () => {
  dir.addHttp('com.example.here');
  const optional = hid('optional');
  source.set([{ id: optional, type: 'pre_send', plugin_id: 'com.example.gone' }]);
  const skip = await manager.runChain(chain('pre_send'));
  assert.deepEqual(skip.calls.map((c) => [c.outcome, c.action]), [['unavailable', undefined]]);
  assert.equal(skip.decision.action, 'allow');

  source.set([{ id: hid('required'), type: 'pre_send', plugin_id: 'com.example.gone', required: true }]);
  const req = await manager.runChain(chain('pre_send'));
  assert.equal(req.calls[0].outcome, 'unavailable');
  assert.equal(req.decision.action, 'tempfail');
  assert.deepEqual(req.decision.smtp, { code: 451, enhanced: '4.7.1', text: 'Message temporarily deferred by content policy, try again later' });

  const tenantHook = hid('tenant');
  source.set([{ id: tenantHook, type: 'pre_send', plugin_id: 'com.example.here', tenant_id: 'tenant-a' }]);
  const notEnabled = await manager.runChain(chain('pre_send'));
  assert.equal(notEnabled.calls[0].outcome, 'unavailable');
  assert.equal(received.length, 0);
  dir.tenantEnabled.add('com.example.here|tenant-a');
  dir.tenantConfigs.set('com.example.here|tenant-a', { threshold: 5 });
  const enabled = await manager.runChain(chain('pre_send'));
  assert.equal(enabled.calls[0].outcome, 'ok');
  assert.deepEqual((received[0].body.metadata as Record<string, unknown>).config, { threshold: 5 });
  assert.equal(received[0].body.tenant_id, 'tenant-a');
});

test('ungranted writes are stripped, logged and audited', async () => {
  dir.addHttp('com.example.greedy', { ...NO_PERMISSIONS, read_headers: true, read_body: 'preview', write_tags: true });
  handlers.set('com.example.greedy', answer({ action: 'quarantine', tags: ['spam'], flags: ['\\Seen'], folder: 'Elsewhere', metadata: { x: 1 } }));
  const hookId = hid('greedy');
  source.set([{ id: hookId, type: 'pre_delivery', plugin_id: 'com.example.greedy' }]);
  const out = await manager.runChain(chain('pre_delivery'));
  assert.deepEqual(out.calls[0].refusedWrites, ['flags', 'move', 'metadata']);
  const response = out.results[0].response;
  assert.equal(response.action, 'quarantine', 'quarantine itself needs no grant');
  assert.deepEqual(response.tags, ['spam'], 'granted writes stay');
  assert.equal(response.flags, undefined);
  assert.equal(response.folder, undefined);
  assert.deepEqual(response.metadata, {});
  assert.equal(out.decision.action, 'quarantine');
  assert.equal(out.decision.folder, undefined);
  assert.ok(dir.logs.some((l) => l.pluginId === 'com.example.greedy' && /ungranted writes ignored: flags, move, metadata/.test(l.message)));
  const audit = await tdb.db.kysely.selectFrom('audit_log').selectAll().where('event_type', '=', 'plugin.write_refused').execute();
  const row = audit.find((r) => JSON.parse(r.metadata_json).hook_id === hookId);
  assert.ok(row, 'audit row');
  assert.deepEqual(JSON.parse(row.actor_json), { type: 'plugin', id: 'com.example.greedy' });
  assert.deepEqual(JSON.parse(row.metadata_json).refused, ['flags', 'move', 'metadata']);
});

test('the payload holds only what the plugin was granted', async () => {
  dir.addHttp('com.example.blind');
  dir.addHttp('com.example.reader', { ...NO_PERMISSIONS, read_headers: true, read_body: 'preview' });
  source.set([
    { id: hid('blind'), type: 'pre_delivery', plugin_id: 'com.example.blind', priority: 1 },
    { id: hid('reader'), type: 'pre_delivery', plugin_id: 'com.example.reader', priority: 2 },
  ]);
  await manager.runChain(chain('pre_delivery'));
  const [blind, reader] = received.map((r) => r.body);
  assert.equal(blind.headers, undefined);
  const blindBody = blind.body as Record<string, unknown>;
  assert.equal(blindBody.preview, undefined);
  assert.equal(blindBody.full, undefined);
  assert.equal(blindBody.size, RAW.length);
  assert.deepEqual(blind.envelope, { from: 'alice@example.org', to: ['bob@example.com'] });
  assert.equal(blind.tenant_id, null, 'a global hook');
  assert.deepEqual(blind.metadata, { received_at: new Date(T0).toISOString(), client_ip: '192.0.2.1' });

  assert.deepEqual((reader.headers as Record<string, string[]>).subject, ['Quarterly numbers']);
  const preview = (reader.body as Record<string, unknown>).preview as string;
  assert.ok(Buffer.byteLength(preview) <= 4096 && preview.length > 1000, `preview of ${Buffer.byteLength(preview)} bytes`);
  assert.equal((reader.body as Record<string, unknown>).full, undefined);
});

test('metrics: calls, errors, timeouts, bytes and the per-plugin summary move', async () => {
  dir.addHttp('com.example.m');
  handlers.set('com.example.m', answer({ action: 'allow' }));
  const good = hid('good');
  source.set([{ id: good, type: 'pre_delivery', plugin_id: 'com.example.m' }]);
  await manager.runChain(chain('pre_delivery'));
  handlers.set('com.example.m', (_b, _req, res) => res.writeHead(500).end());
  await manager.runChain(chain('pre_delivery'));
  handlers.set('com.example.m', hang);
  source.set([{ id: good, type: 'pre_delivery', plugin_id: 'com.example.m', timeout_ms: 200 }]);
  await manager.runChain(chain('pre_delivery'));

  const value = async (name: string, labels: Record<string, string>) => {
    const m = await registry.getSingleMetric(name)!.get();
    return m.values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((s, v) => s + v.value, 0);
  };
  const l = { hook_type: 'pre_delivery', plugin_id: 'com.example.m' };
  assert.equal(await value('mairust_hook_calls_total', { ...l, action: 'allow' }), 2, 'ok call + error→allow');
  assert.equal(await value('mairust_hook_calls_total', { ...l, action: 'tempfail' }), 1, 'timeout→tempfail');
  assert.equal(await value('mairust_hook_errors_total', l), 1);
  assert.equal(await value('mairust_hook_timeouts_total', l), 1);
  assert.equal(await value('mairust_hook_duration_seconds', { ...l, le: '+Inf' }), 3);
  assert.ok((await value('mairust_plugin_bytes_sent_total', { plugin_id: 'com.example.m' })) > 300);
  assert.ok((await value('mairust_plugin_bytes_received_total', { plugin_id: 'com.example.m' })) > 20);
  assert.equal(await value('mairust_circuit_breaker_state', { ...l, hook_id: good }), 0);
  const stats = metrics.pluginStats('com.example.m');
  assert.equal(stats.calls, 3);
  assert.equal(stats.errors, 1);
  assert.equal(stats.timeouts, 1);
  assert.match(stats.last_error ?? '', /no answer within 200 ms/);
  assert.ok(stats.last_call_at !== null && stats.bytes_sent > 300);
});

test('THE HANGING PLUGIN: three timeouts open the strict breaker; then skipped at once; a probe after 61 s closes it', async () => {
  dir.addHttp('com.example.hang');
  handlers.set('com.example.hang', hang);
  const hookId = hid('hang');
  source.set([{ id: hookId, type: 'pre_receive', plugin_id: 'com.example.hang', timeout_ms: 300 }]);

  for (let i = 1; i <= 3; i++) {
    const started = performance.now();
    const out = await manager.runChain(chain('pre_receive'));
    const took = performance.now() - started;
    assert.ok(took >= 250 && took < 1_500, `call ${i} took ${Math.round(took)} ms`);
    assert.equal(out.calls[0].outcome, 'timeout');
    assert.equal(out.decision.action, 'tempfail', 'on_timeout default');
  }
  assert.equal(received.length, 3);
  assert.equal((await manager.breakerState({ id: hookId, plugin_id: 'com.example.hang', type: 'pre_receive' })).state, 'open');

  const started = performance.now();
  const fourth = await manager.runChain(chain('pre_receive'));
  const took = performance.now() - started;
  assert.ok(took < 250, `call 4 returned in ${Math.round(took)} ms, well under the 300 ms timeout`);
  assert.equal(fourth.calls[0].outcome, 'open');
  assert.equal(fourth.decision.action, 'allow', 'on_open skip');
  assert.equal(received.length, 3, 'the plugin was not called');
  const gauge = await registry.getSingleMetric('mairust_circuit_breaker_state')!.get();
  assert.equal(gauge.values.find((v) => v.labels.hook_id === hookId)?.value, 1);

  clock += 61_000;
  handlers.set('com.example.hang', answer({ action: 'allow' }));
  const probe = await manager.runChain(chain('pre_receive'));
  assert.equal(probe.calls[0].outcome, 'ok');
  assert.equal(received.length, 4);
  assert.equal((await manager.breakerState({ id: hookId, plugin_id: 'com.example.hang', type: 'pre_receive' })).state, 'closed');
  const after = await registry.getSingleMetric('mairust_circuit_breaker_state')!.get();
  assert.equal(after.values.find((v) => v.labels.hook_id === hookId)?.value, 0);
});

test('on_open reject/tempfail contribute that action; reset closes the breaker', async () => {
  dir.addHttp('com.example.down');
  handlers.set('com.example.down', (_b, _req, res) => res.writeHead(503).end());
  const hookId = hid('down');
  source.set([{ id: hookId, type: 'pre_receive', plugin_id: 'com.example.down', circuit_breaker: { on_open: 'reject' } }]);
  for (let i = 0; i < 3; i++) await manager.runChain(chain('pre_receive'));
  const open = await manager.runChain(chain('pre_receive'));
  assert.deepEqual([open.calls[0].outcome, open.decision.action, open.decision.smtp?.code], ['open', 'reject', 550]);
  await manager.resetBreaker({ id: hookId, plugin_id: 'com.example.down' });
  handlers.set('com.example.down', answer({ action: 'allow' }));
  const again = await manager.runChain(chain('pre_receive'));
  assert.equal(again.calls[0].outcome, 'ok');
});

test('script plugins: a reply over stdout; a hanging script is killed at the timeout', async () => {
  writeFileSync(
    join(scripts.path, 'tagger.mjs'),
    `let d='';process.stdin.on('data',c=>d+=c);process.stdin.on('end',()=>{const p=JSON.parse(d);` +
      `process.stdout.write(JSON.stringify({plugin_id:'com.example.script',action:'tag',tags:['subj:'+p.headers.subject[0]]}));});\n`,
  );
  writeFileSync(
    join(scripts.path, 'sleeper.mjs'),
    `import { writeFileSync } from 'node:fs';writeFileSync('sleeper.pid', String(process.pid));setInterval(()=>{},1000);\n`,
  );
  dir.addScript('com.example.script', scripts.path, 'tagger.mjs', { ...NO_PERMISSIONS, read_headers: true, write_tags: true });
  dir.addScript('com.example.sleeper', scripts.path, 'sleeper.mjs');
  source.set([{ id: hid('script'), type: 'pre_delivery', plugin_id: 'com.example.script' }]);
  const ok = await manager.runChain(chain('pre_delivery'));
  assert.equal(ok.calls[0].outcome, 'ok', ok.calls[0].error);
  assert.deepEqual(ok.decision.tags, ['subj:Quarterly numbers']);

  source.set([{ id: hid('sleeper'), type: 'pre_delivery', plugin_id: 'com.example.sleeper', timeout_ms: 1_000, on_timeout: 'reject' }]);
  const started = performance.now();
  const slow = await manager.runChain(chain('pre_delivery'));
  assert.ok(performance.now() - started < 4_000, 'bounded by the wall time');
  assert.equal(slow.calls[0].outcome, 'timeout');
  assert.equal(slow.decision.action, 'reject');
  const pidFile = join(scripts.path, 'sleeper.pid');
  assert.ok(existsSync(pidFile), 'the script started');
  const pid = Number(readFileSync(pidFile, 'utf8'));
  assert.throws(() => process.kill(pid, 0), (err: NodeJS.ErrnoException) => err.code === 'ESRCH', 'the script process is gone');
});

test('an aborted chain stops calling and tempfails a sync hook type', async () => {
  dir.addHttp('com.example.x');
  source.set([{ id: hid('x'), type: 'pre_receive', plugin_id: 'com.example.x' }]);
  const ac = new AbortController();
  ac.abort();
  const out = await manager.runChain(chain('pre_receive', { signal: ac.signal }));
  assert.equal(received.length, 0);
  assert.equal(out.decision.action, 'tempfail');
});

test('runOne with bypassBreaker returns the raw exchange (the test endpoint)', async () => {
  dir.addHttp('com.example.one', { ...NO_PERMISSIONS, read_headers: true, write_tags: true });
  handlers.set('com.example.one', answer({ action: 'tag', tags: ['t'] }));
  source.set([{ id: hid('one'), type: 'post_receive', plugin_id: 'com.example.one' }]);
  const hook = source.hooks[0];
  const { record, result, exchange } = await manager.runOne(hook, null, chain('post_receive').payload.bind(null, null), { bypassBreaker: true, messageId: 'msg-1' });
  assert.equal(record.outcome, 'ok');
  assert.deepEqual(result?.response.tags, ['t']);
  assert.ok(exchange);
  assert.equal(exchange.outcome, 'ok');
  assert.ok(exchange.request.bytes > 100);
  assert.equal((exchange.request.payload as Record<string, unknown>).hook_type, 'post_receive');
  assert.deepEqual(exchange.validationErrors, []);
  assert.equal(exchange.result.ok, true);
  // Bypassing the breaker leaves no breaker row behind.
  const rows = await tdb.db.kysely.selectFrom('hook_breakers').selectAll().where('hook_id', '=', hook.id).execute();
  assert.equal(rows.length, 0);
});

test('an endpoint whose host left plugins.egress_allowlist is not called any more', async () => {
  dir.addHttp('com.example.gone');
  handlers.set('com.example.gone', answer({ action: 'allow' }));
  source.set([{ id: hid('egress'), type: 'pre_delivery', plugin_id: 'com.example.gone', on_error: 'tempfail' }]);
  let allowlist: string[] = ['127.0.0.1'];
  const guarded = new HookManager({
    hooks: source,
    plugins: dir,
    breaker: new CircuitBreaker(new DatabaseBreakerStore(tdb.db)),
    resolver: { resolve4: async () => [], resolve6: async () => [] },
    metrics: null,
    scoreMode: () => 'max',
    callbackUrl: () => null,
    now: () => clock,
    logger: { warn: () => undefined },
    egressAllowlist: () => allowlist,
  });
  assert.equal((await guarded.runChain(chain('pre_delivery'))).calls[0].outcome, 'ok');
  assert.equal(received.length, 1);

  allowlist = ['hooks.example.com'];
  const out = await guarded.runChain(chain('pre_delivery'));
  assert.equal(out.calls[0].outcome, 'error');
  assert.match(out.calls[0].error ?? '', /no longer in plugins\.egress_allowlist/);
  assert.equal(out.decision.action, 'tempfail', 'on_error applies');
  assert.equal(received.length, 1, 'the plugin got no second request');
});

test('pre_send: requires_before_policy hooks run in the "before" phase, the others in the "after" phase', async () => {
  dir.addHttp('com.example.early');
  dir.addHttp('com.example.late');
  const early = hid('early');
  const late = hid('late');
  source.set([
    { id: early, type: 'pre_send', plugin_id: 'com.example.early', requires_before_policy: true },
    { id: late, type: 'pre_send', plugin_id: 'com.example.late' },
  ]);
  const before = await manager.runChain(chain('pre_send', { policyPhase: 'before' }));
  assert.deepEqual(before.calls.map((c) => c.hookId), [early]);
  const afterPolicy = await manager.runChain(chain('pre_send', { policyPhase: 'after' }));
  assert.deepEqual(afterPolicy.calls.map((c) => c.hookId), [late]);
  const all = await manager.runChain(chain('pre_send'));
  assert.deepEqual(all.calls.map((c) => c.hookId).sort(), [early, late].sort());
  assert.deepEqual(received.map((r) => r.pluginId), ['com.example.early', 'com.example.late', ...all.calls.map((c) => c.pluginId)]);
});
