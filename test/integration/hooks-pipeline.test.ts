/**
 * Hooks in the REAL inbound pipeline (SPEC §3.1 steps 4, 5, 7; SPEC §6): InboundPipelineImpl with the
 * real HookStore and HookManager, the adapters of src/pipeline/inbound/hook-adapters.ts, and a real
 * HTTP plugin server on 127.0.0.1. post_receive jobs go through the real database queue and worker.
 *
 * The plugin directory is a small Map-backed PluginDirectory (the registry is tested on its own);
 * the plugins behind it are real HTTP endpoints.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import pino from 'pino';
import { freshDatabase, tempDir, type TestDatabase } from '../support/shape.js';
import { cheapPasswords, plans } from '../support/tenancy-fixtures.js';
import { createBlobStore, type BlobStore } from '../../src/store/blob/index.js';
import { MemoryChangeBus } from '../../src/store/events/memory-bus.js';
import { MailboxStateService } from '../../src/core/mailbox-state/service.js';
import { TenancyService } from '../../src/core/tenancy/service.js';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { DatabaseQueue } from '../../src/queue/db-queue.js';
import { InboundPipelineImpl } from '../../src/pipeline/inbound/pipeline.js';
import { DEFAULT_INBOUND_CONFIG } from '../../src/config/sections/inbound.js';
import type { AcceptedRecipient, SmtpSessionInfo, Verdict } from '../../src/pipeline/inbound/contract.js';
import { postReceiveEnqueuerFrom, preDeliveryHookFrom, preReceiveHookFrom } from '../../src/pipeline/inbound/hook-adapters.js';
import { formatReply } from '../../src/protocols/smtp/replies.js';
import { HookStore } from '../../src/hooks/store.js';
import { HookManager } from '../../src/hooks/manager.js';
import { CircuitBreaker } from '../../src/hooks/circuit-breaker.js';
import { DatabaseBreakerStore } from '../../src/hooks/breaker-store.js';
import { listHookJobs, startPostReceiveWorker } from '../../src/hooks/post-receive.js';
import { readPluginMetadata } from '../../src/hooks/metadata-store.js';
import { cliActor } from '../../src/security/audit.js';
import { NO_PERMISSIONS, type Permissions } from '../../src/plugins/permissions.js';
import type { PluginManifest } from '../../src/plugins/manifest.js';
import type { PluginDirectory, PluginLogEntry, RunnablePlugin } from '../../src/plugins/types.js';
import type { EventPublisher } from '../../src/webhooks/types.js';

// ── A real HTTP plugin server: one endpoint, answers chosen per plugin id ──────────────────────────

type Handler = (body: Record<string, any>, req: IncomingMessage, res: ServerResponse) => void;
const handlers = new Map<string, Handler>();
const received: { pluginId: string; at: number; body: Record<string, any> }[] = [];
const sockets = new Set<Socket>();
let server: Server;
let endpoint: string;

function reply(res: ServerResponse, req: IncomingMessage, body: Record<string, unknown>): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ plugin_id: req.headers['x-mairust-plugin-id'], ...body }));
}
const answer = (body: Record<string, unknown>): Handler => (_b, req, res) => reply(res, req, body);

async function startServer(): Promise<void> {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const pluginId = String(req.headers['x-mairust-plugin-id'] ?? '');
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, any>;
      received.push({ pluginId, at: Date.now(), body });
      (handlers.get(pluginId) ?? answer({ action: 'allow' }))(body, req, res);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
}

const WRITER: Permissions = { ...NO_PERMISSIONS, read_headers: true, read_body: 'preview', write_tags: true, write_flags: true, move_message: true, write_metadata: true };

class MapDirectory implements PluginDirectory {
  readonly plugins = new Map<string, RunnablePlugin>();
  readonly tenantEnabled = new Set<string>();
  readonly logs: PluginLogEntry[] = [];
  add(id: string, permissions: Permissions = WRITER): void {
    const manifest: PluginManifest = {
      id,
      name: id,
      version: '1.0.0',
      author: null,
      description: null,
      license: null,
      homepage: null,
      compat: { mairust_min: null, mairust_max: null },
      entry: { type: 'hook', protocol: 'http', endpoint, health_endpoint: null, callback_api: false },
      hooks: { on: ['pre_receive', 'post_receive', 'pre_send', 'pre_delivery'], filter: {} },
      permissions,
      limits: { cpu_ms: 1000, memory_mb: 256, wall_time_ms: 5000, network: 'none' },
      logging: { level: 'info' },
    };
    this.plugins.set(id, { id, manifest, permissions, allowPrivate: true, installDir: '/nonexistent', secrets: async () => [`psec_${id}`] });
  }
  async runnable(id: string) {
    return this.plugins.get(id) ?? null;
  }
  async enabledForTenant(id: string, tenantId: string) {
    return this.tenantEnabled.has(`${id}|${tenantId}`);
  }
  async tenantConfig() {
    return {};
  }
  async log(entry: PluginLogEntry) {
    this.logs.push(entry);
  }
}

// ── The world ──────────────────────────────────────────────────────────────────────────────────

let tdb: TestDatabase;
let tmp: { path: string; remove(): void };
let blobs: BlobStore;
let ms: MailboxStateService;
let tenancy: TenancyService;
let queue: DatabaseQueue;
let store: HookStore;
let manager: HookManager;
let dir: MapDirectory;
let pipeline: InboundPipelineImpl;
let t1: string;
let t2: string;
const published: { event: string; tenantId: string; data: Record<string, unknown> }[] = [];
const events: EventPublisher = {
  async publish(event, tenantId, data) {
    published.push({ event, tenantId, data });
  },
};
const logger = pino({ level: 'warn' }, new Writable({ write: (_c, _e, cb) => cb() }));

before(async () => {
  await startServer();
  tdb = await freshDatabase();
  tmp = tempDir('mairust-hooks-pipeline-');
  blobs = createBlobStore({ backend: 'fs', fs: { path: join(tmp.path, 'blobs') }, s3: {} as never });
  ms = new MailboxStateService({ db: tdb.db, blobs, bus: new MemoryChangeBus(), nodeId: 'hooks-pipeline' });
  tenancy = new TenancyService({
    db: tdb.db,
    plans,
    defaultPlan: 'default',
    createDefaultFolders: async (trx, scope, mailboxId) => void (await ms.createDefaultFolders(scope, mailboxId, trx)),
    passwordOptions: cheapPasswords,
  });
  queue = new DatabaseQueue(tdb.db, { nodeId: 'hooks-pipeline', pollIntervalMs: 100 });
  dir = new MapDirectory();
  store = new HookStore({ db: tdb.db, config: () => ({ hooks: { definitions: [] } }), pluginExists: async (id) => dir.plugins.has(id), logger });
  manager = new HookManager({
    hooks: store,
    plugins: dir,
    breaker: new CircuitBreaker(new DatabaseBreakerStore(tdb.db)),
    resolver: { resolve4: async () => [], resolve6: async () => [] },
    metrics: null,
    scoreMode: () => 'max',
    callbackUrl: () => null,
    logger,
  });
  const adapterOpts = { mailboxState: ms, quarantineFolder: () => 'Junk', logger };
  pipeline = new InboundPipelineImpl({
    tenancy,
    mailboxState: ms,
    queue,
    blobs,
    db: tdb.db,
    emailAuth: null,
    spam: null,
    config: () => ({ ...DEFAULT_INBOUND_CONFIG }),
    maxMessageBytes: 1_000_000,
    hostname: 'mx.hooks.test',
    spoolDir: join(tmp.path, 'spool'),
    logger,
    hooks: {
      preReceive: [preReceiveHookFrom(manager, store, adapterOpts)],
      preDelivery: [preDeliveryHookFrom(manager, store, adapterOpts)],
      postReceive: postReceiveEnqueuerFrom(queue, store, { logger }),
    },
  });

  t1 = (await tenancy.tenants.create(systemScope, { name: 'acme' })).id;
  t2 = (await tenancy.tenants.create(systemScope, { name: 'globex' })).id;
  await tenancy.domains.add(systemScope, { tenantId: t1, name: 'acme.test' });
  await tenancy.domains.add(systemScope, { tenantId: t2, name: 'globex.test' });
  for (const a of ['ann@acme.test', 'ben@acme.test', 'gus@globex.test']) await tenancy.mailboxes.add(systemScope, { address: a });
});

after(async () => {
  await queue?.stop(2000);
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await blobs?.close();
  await tdb?.drop();
  tmp?.remove();
});

let seq = 0;
/** A fresh hook (unique id) on a fresh plugin answering with `handler`; removed by the returned function. */
async function hook(type: string, handler: Handler, extra: Record<string, unknown> = {}, permissions: Permissions = WRITER): Promise<{ id: string; pluginId: string; remove(): Promise<void> }> {
  const n = ++seq;
  const pluginId = `com.example.p${n}`;
  dir.add(pluginId, permissions);
  handlers.set(pluginId, handler);
  const id = `h${n}-${type}`;
  await store.create({ id, type, plugin_id: pluginId, ...extra }, cliActor);
  return { id, pluginId, remove: async () => void (await store.delete(id, cliActor)) };
}

function session(): SmtpSessionInfo {
  return { id: `s${++seq}`, listener: 'mx', remoteAddress: '192.0.2.77', remotePort: 40000 + seq, helo: 'client.example.net', secure: false };
}

function message(subject = 'hooks test'): Buffer {
  return Buffer.from(
    [`From: Sender <sender@remote.example>`, `To: ann@acme.test`, `Subject: ${subject}`, `Message-ID: <${Math.random()}@remote.example>`, 'MIME-Version: 1.0', 'Content-Type: text/plain', '', 'Hello hooks.', ''].join('\r\n'),
  );
}

async function send(to: string[], raw = message()): Promise<Verdict & { messageId?: string }> {
  const s = session();
  const envelope = { mailFrom: 'sender@remote.example', recipients: [] as AcceptedRecipient[] };
  for (const address of to) {
    const v = await pipeline.checkRecipient(s, envelope, address);
    assert.ok(v.ok && v.recipient, `RCPT ${address}`);
    envelope.recipients.push(v.recipient);
  }
  return pipeline.receive(s, envelope, Readable.from([raw]));
}

const line = (v: Verdict) => (v.reply ? formatReply(v.reply) : String(v.ok));

/** Where the copy of a message sits in a mailbox: folder name and entry. */
async function copyIn(address: string, messageId: string) {
  const mb = await tenancy.mailboxes.get(systemScope, address);
  const entries = await ms.entriesOfMessage(tenantScope(mb.tenantId), messageId);
  const e = entries.find((x) => x.mailboxId === mb.id);
  assert.ok(e, `a copy in ${address}`);
  const folder = await ms.getFolder(tenantScope(mb.tenantId), e.folderId);
  const [entry] = await ms.listEntries(tenantScope(mb.tenantId), e.folderId, { uids: [e.uid] });
  return { folder, entry };
}

async function count(table: 'messages' | 'queue_jobs'): Promise<number> {
  const r = await tdb.db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('pre_receive', () => {
  test('reject → the plugin\'s 550 reply, nothing stored', async () => {
    const h = await hook('pre_receive', answer({ action: 'reject', smtp_code: 550, smtp_enhanced: '5.7.1', smtp_message: 'No thanks from the filter' }));
    try {
      const before = await count('messages');
      const r = await send(['ann@acme.test']);
      assert.equal(line(r), '550 5.7.1 No thanks from the filter');
      assert.equal(await count('messages'), before);
      const call = received.find((x) => x.pluginId === h.pluginId);
      assert.ok(call);
      assert.equal(call.body.hook_type, 'pre_receive');
      assert.equal(call.body.callback_url, null);
      assert.equal(call.body.metadata.client_ip, '192.0.2.77');
      assert.deepEqual(call.body.envelope, { from: 'sender@remote.example', to: ['ann@acme.test'] });
    } finally {
      await h.remove();
    }
  });

  test('tempfail → 451 4.7.1', async () => {
    const h = await hook('pre_receive', answer({ action: 'tempfail' }));
    try {
      const r = await send(['ann@acme.test']);
      assert.equal(r.ok, false);
      assert.match(line(r), /^451 4\.7\.1 /);
    } finally {
      await h.remove();
    }
  });

  test('quarantine → the copy is filed in Junk', async () => {
    const h = await hook('pre_receive', answer({ action: 'quarantine' }));
    try {
      const r = await send(['ann@acme.test']);
      assert.equal(line(r), '250 2.0.0 Message accepted for delivery');
      const { folder } = await copyIn('ann@acme.test', r.messageId!);
      assert.equal(folder.name, 'Junk');
    } finally {
      await h.remove();
    }
  });

  test('tags → keywords on the stored entry; metadata stored with the message', async () => {
    const h = await hook('pre_receive', answer({ action: 'tag', tags: ['scanned', 'bad tag with spaces'], metadata: { verdict: 'clean' } }));
    try {
      const r = await send(['ann@acme.test', 'ben@acme.test']);
      assert.equal(r.ok, true);
      for (const a of ['ann@acme.test', 'ben@acme.test']) {
        const { folder, entry } = await copyIn(a, r.messageId!);
        assert.equal(folder.name, 'INBOX');
        assert.deepEqual(entry.keywords, ['scanned'], 'the invalid keyword is left out, the message still accepted');
      }
      assert.deepEqual(await readPluginMetadata(tdb.db, t1, r.messageId!), { [h.pluginId]: { verdict: 'clean' } });
    } finally {
      await h.remove();
    }
  });

  test("a tenant's hook sees only its tenant's recipients and tags only its tenant's copy", async () => {
    const global = await hook('pre_receive', answer({ action: 'allow' }));
    const own = await hook('pre_receive', answer({ action: 'tag', tags: ['globex-only'] }), { tenant_id: t2 });
    dir.tenantEnabled.add(`${own.pluginId}|${t2}`);
    try {
      const r = await send(['ann@acme.test', 'gus@globex.test']);
      assert.equal(r.ok, true);
      const seenByOwn = received.filter((x) => x.pluginId === own.pluginId);
      const seenByGlobal = received.filter((x) => x.pluginId === global.pluginId);
      assert.equal(seenByOwn.length, 1);
      assert.deepEqual(seenByOwn[0].body.envelope.to, ['gus@globex.test']);
      assert.equal(seenByOwn[0].body.tenant_id, t2);
      assert.deepEqual(seenByGlobal[0].body.envelope.to, ['ann@acme.test', 'gus@globex.test']);
      // One stored message per tenant, both with the transaction's receive time (gus only gets mail here).
      const gusMsg = await tdb.db.kysely.selectFrom('messages').select(['id', 'received_at']).where('tenant_id', '=', t2).executeTakeFirstOrThrow();
      const annMsg = await tdb.db.kysely.selectFrom('messages').select('id').where('tenant_id', '=', t1).where('received_at', '=', Number(gusMsg.received_at)).executeTakeFirstOrThrow();
      assert.deepEqual((await copyIn('gus@globex.test', gusMsg.id)).entry.keywords, ['globex-only']);
      assert.deepEqual((await copyIn('ann@acme.test', annMsg.id)).entry.keywords, []);
    } finally {
      await global.remove();
      await own.remove();
    }
  });
});

describe('pre_delivery', () => {
  test('a folder chosen per mailbox', async () => {
    const h = await hook('pre_delivery', (body, req, res) => reply(res, req, body.mailbox === 'ann@acme.test' ? { action: 'allow', folder: 'Archive', flags: ['\\Flagged'] } : { action: 'allow' }));
    try {
      const r = await send(['ann@acme.test', 'ben@acme.test']);
      assert.equal(r.ok, true);
      const calls = received.filter((x) => x.pluginId === h.pluginId);
      assert.deepEqual(calls.map((c) => c.body.mailbox).sort(), ['ann@acme.test', 'ben@acme.test']);
      const ann = await copyIn('ann@acme.test', r.messageId!);
      assert.equal(ann.folder.name, 'Archive');
      assert.ok(ann.entry.flags.includes('\\Flagged'));
      assert.equal((await copyIn('ben@acme.test', r.messageId!)).folder.name, 'INBOX');
    } finally {
      await h.remove();
    }
  });

  test('reject drops that copy only; tempfail defers the whole message', async () => {
    const h = await hook('pre_delivery', (body, req, res) => reply(res, req, { action: body.mailbox === 'ben@acme.test' ? 'reject' : 'allow' }));
    try {
      const r = await send(['ann@acme.test', 'ben@acme.test']);
      assert.equal(r.ok, true);
      const entries = await ms.entriesOfMessage(tenantScope(t1), r.messageId!);
      const ann = await tenancy.mailboxes.get(systemScope, 'ann@acme.test');
      assert.deepEqual(entries.map((e) => e.mailboxId), [ann.id]);
    } finally {
      await h.remove();
    }
    const t = await hook('pre_delivery', (body, req, res) => reply(res, req, { action: body.mailbox === 'ben@acme.test' ? 'tempfail' : 'allow' }));
    try {
      const before = await count('messages');
      const r = await send(['ann@acme.test', 'ben@acme.test']);
      assert.match(line(r), /^451 4\.7\.1 /);
      assert.equal(await count('messages'), before);
    } finally {
      await t.remove();
    }
  });
});

describe('post_receive', () => {
  let stop: (() => void) | undefined;
  before(() => {
    stop = startPostReceiveWorker({ queue, runner: manager, hooks: store, mailboxState: ms, db: tdb.db, events, plugins: dir, quarantineFolder: () => 'Junk', logger, concurrency: 2 });
  });
  after(() => stop?.());

  test('a job is enqueued with the commit and its tags are applied by the worker', async () => {
    const h = await hook('post_receive', answer({ action: 'tag', tags: ['post-tagged'] }));
    try {
      const r = await send(['ann@acme.test']);
      assert.equal(r.ok, true);
      // The job exists as soon as the 250 is given (it was written in the commit transaction).
      const [job] = await listHookJobs(queue, { hookId: h.id, limit: 10 });
      assert.ok(job);
      assert.equal(job.message_id, r.messageId);
      assert.equal(job.tenant_id, t1);
      const done = await until('job succeeded', async () => (await listHookJobs(queue, { hookId: h.id, limit: 10 })).find((j) => j.status === 'succeeded'));
      assert.equal(done.attempts, 1);
      const { entry } = await copyIn('ann@acme.test', r.messageId!);
      assert.deepEqual(entry.keywords, ['post-tagged']);
      const call = received.find((x) => x.pluginId === h.pluginId)!;
      assert.equal(call.body.hook_type, 'post_receive');
      assert.equal(call.body.message_id, r.messageId);
      assert.deepEqual(call.body.envelope.to, ['ann@acme.test']);
    } finally {
      await h.remove();
    }
  });

  test('no post_receive hook → no job', async () => {
    const before = await count('queue_jobs');
    const r = await send(['ben@acme.test']);
    assert.equal(r.ok, true);
    assert.equal(await count('queue_jobs'), before);
  });

  test('a failing plugin is retried per backoff, then permanent-failed with plugin.error', async () => {
    const h = await hook('post_receive', (_b, _req, res) => void res.writeHead(500).end('boom'), { retry: { max_attempts: 2, backoff_seconds: [1] } });
    try {
      const r = await send(['ann@acme.test']);
      assert.equal(r.ok, true, 'the message is delivered whatever post_receive does');
      const dead = await until('permanent-failed', async () => (await listHookJobs(queue, { hookId: h.id, limit: 10 })).find((j) => j.status === 'permanent-failed'), 15_000);
      assert.equal(dead.attempts, 2);
      assert.equal(dead.max_attempts, 2);
      assert.match(dead.last_error ?? '', new RegExp(h.id));
      const calls = received.filter((x) => x.pluginId === h.pluginId);
      assert.equal(calls.length, 2);
      assert.ok(calls[1].at - calls[0].at >= 900, `second attempt after the 1 s backoff (${calls[1].at - calls[0].at} ms)`);
      const ev = published.find((p) => p.event === 'plugin.error' && p.data.hook_id === h.id);
      assert.ok(ev, 'plugin.error published on the last attempt');
      assert.equal(ev.tenantId, t1);
      assert.equal(ev.data.plugin_id, h.pluginId);
      assert.equal(ev.data.message_id, r.messageId);
      assert.equal(published.filter((p) => p.data.hook_id === h.id).length, 1, 'only once, not per attempt');
      assert.ok(dir.logs.some((l) => l.pluginId === h.pluginId && l.level === 'error' && /permanently failed/.test(l.message)));
    } finally {
      await h.remove();
    }
  });
});
