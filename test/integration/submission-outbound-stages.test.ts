/**
 * The submission stages of the REAL inbound pipeline (SPEC §3.2 steps 2–3, §8, §6 pre_send):
 * InboundPipelineImpl with the real outbound policy engine (src/outbound/policy), the real hook
 * store and manager with pre_send hooks answered by a real HTTP plugin server on 127.0.0.1, and
 * the real DKIM signer whose signatures mailauth verifies against a real DNS server on loopback.
 *
 *  - a submitted message is stored (Sent copy, local copy) with a DKIM-Signature on top that
 *    verifies, and is queued for its remote recipient with the policy decision;
 *  - a suspended account gets exactly the SPEC §8 reply and nothing is stored;
 *  - a pre_send reject refuses the message with the plugin's reply;
 *  - `requires_before_policy` hooks run before the policy engine, the others after it;
 *  - MX mail is neither policed nor signed.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { text as streamText } from 'node:stream/consumers';
import pino from 'pino';
import { Value } from '@sinclair/typebox/value';
import { authenticate } from 'mailauth';
import { freshDatabase, tempDir, type TestDatabase } from '../support/shape.js';
import { cheapPasswords, plans } from '../support/tenancy-fixtures.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { dnsConfig } from '../fixtures/emailauth/world.js';
import { createBlobStore, type BlobStore } from '../../src/store/blob/index.js';
import { MemoryChangeBus } from '../../src/store/events/memory-bus.js';
import { MailboxStateService } from '../../src/core/mailbox-state/service.js';
import { TenancyService } from '../../src/core/tenancy/service.js';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { DatabaseQueue } from '../../src/queue/db-queue.js';
import { InboundPipelineImpl } from '../../src/pipeline/inbound/pipeline.js';
import { DEFAULT_INBOUND_CONFIG } from '../../src/config/sections/inbound.js';
import type { AcceptedRecipient, AuthenticatedUser, SmtpSessionInfo, Verdict } from '../../src/pipeline/inbound/contract.js';
import { preSendHookFrom } from '../../src/pipeline/inbound/pre-send.js';
import { formatReply } from '../../src/protocols/smtp/replies.js';
import { HookStore } from '../../src/hooks/store.js';
import { HookManager } from '../../src/hooks/manager.js';
import { CircuitBreaker } from '../../src/hooks/circuit-breaker.js';
import { DatabaseBreakerStore } from '../../src/hooks/breaker-store.js';
import { cliActor } from '../../src/security/audit.js';
import { NO_PERMISSIONS, type Permissions } from '../../src/plugins/permissions.js';
import type { PluginManifest } from '../../src/plugins/manifest.js';
import type { PluginDirectory, PluginLogEntry, RunnablePlugin } from '../../src/plugins/types.js';
import { createResolver } from '../../src/dns/index.js';
import { resolverWithDeadline } from '../../src/emailauth/deadline.js';
import { DkimKeyService, publicRecord } from '../../src/emailauth/dkim-keys.js';
import { masterKeyFromBytes } from '../../src/security/secrets/envelope.js';
import { DatabaseSecretStore } from '../../src/security/secrets/store.js';
import { createDkimSigner } from '../../src/outbound/dkim-sign.js';
import { createOutboundPolicy, type OutboundPolicyEngine } from '../../src/outbound/policy/engine.js';
import { OutboundConfigSchema, type OutboundConfig } from '../../src/config/sections/outbound.js';
import { DatabaseRateCounter } from '../../src/http/api/rate-limit/db-counter.js';
import type { OutboundPolicy } from '../../src/outbound/types.js';

const SUSPENDED = '550 5.7.1 Sending from this account is temporarily suspended. Please contact your administrator.';

// ── A real HTTP plugin server; every call is recorded in `order` ──────────────────────────────────

type Handler = (body: Record<string, any>, req: IncomingMessage, res: ServerResponse) => void;
const handlers = new Map<string, Handler>();
const order: string[] = [];
const calls: { pluginId: string; body: Record<string, any> }[] = [];
const sockets = new Set<Socket>();
let server: Server;
let endpoint: string;

const answer = (body: Record<string, unknown>): Handler => (_b, req, res) =>
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ plugin_id: req.headers['x-mairust-plugin-id'], ...body }));

async function startServer(): Promise<void> {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const pluginId = String(req.headers['x-mairust-plugin-id'] ?? '');
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, any>;
      order.push(`hook:${pluginId}`);
      calls.push({ pluginId, body });
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

const READER: Permissions = { ...NO_PERMISSIONS, read_headers: true, read_body: 'preview' };

class MapDirectory implements PluginDirectory {
  readonly plugins = new Map<string, RunnablePlugin>();
  add(id: string): void {
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
      hooks: { on: ['pre_send'], filter: {} },
      permissions: READER,
      limits: { cpu_ms: 1000, memory_mb: 256, wall_time_ms: 5000, network: 'none' },
      logging: { level: 'info' },
    };
    this.plugins.set(id, { id, manifest, permissions: READER, allowPrivate: true, installDir: '/nonexistent', secrets: async () => [`psec_${id}`] });
  }
  async runnable(id: string) {
    return this.plugins.get(id) ?? null;
  }
  async enabledForTenant() {
    return true;
  }
  async tenantConfig() {
    return {};
  }
  async log(_entry: PluginLogEntry) {}
}

// ── The world ──────────────────────────────────────────────────────────────────────────────────

let tdb: TestDatabase;
let tmp: { path: string; remove(): void };
let blobs: BlobStore;
let ms: MailboxStateService;
let tenancy: TenancyService;
let queue: DatabaseQueue;
let store: HookStore;
let dir: MapDirectory;
let dns: TestDnsServer;
let dkim: DkimKeyService;
let engine: OutboundPolicyEngine;
let pipeline: InboundPipelineImpl;
let ann: AuthenticatedUser;
let tenantId: string;
const logger = pino({ level: 'warn' }, new Writable({ write: (_c, _e, cb) => cb() }));

before(async () => {
  await startServer();
  dns = await startDnsServer();
  tdb = await freshDatabase();
  tmp = tempDir('mairust-submission-stages-');
  blobs = createBlobStore({ backend: 'fs', fs: { path: join(tmp.path, 'blobs') }, s3: {} as never });
  ms = new MailboxStateService({ db: tdb.db, blobs, bus: new MemoryChangeBus(), nodeId: 'submission-stages' });
  tenancy = new TenancyService({
    db: tdb.db,
    plans,
    defaultPlan: 'default',
    createDefaultFolders: async (trx, scope, mailboxId) => void (await ms.createDefaultFolders(scope, mailboxId, trx)),
    passwordOptions: cheapPasswords,
  });
  queue = new DatabaseQueue(tdb.db, { nodeId: 'submission-stages', pollIntervalMs: 100 });
  dir = new MapDirectory();
  store = new HookStore({ db: tdb.db, config: () => ({ hooks: { definitions: [] } }), pluginExists: async (id) => dir.plugins.has(id), logger });
  const manager = new HookManager({
    hooks: store,
    plugins: dir,
    breaker: new CircuitBreaker(new DatabaseBreakerStore(tdb.db)),
    resolver: { resolve4: async () => [], resolve6: async () => [] },
    metrics: null,
    scoreMode: () => 'max',
    callbackUrl: () => null,
    logger,
  });
  dkim = new DkimKeyService({ db: tdb.db, secrets: new DatabaseSecretStore(tdb.db, masterKeyFromBytes(randomBytes(32))) });
  const config = Value.Default(OutboundConfigSchema, {}) as OutboundConfig;
  engine = createOutboundPolicy({ db: tdb.db, counter: new DatabaseRateCounter(tdb.db), tenancy, config: () => config, logger });
  // The real engine; this wrapper only notes when it is asked, for the order test.
  const policy: OutboundPolicy = {
    evaluate: async (a) => {
      order.push('policy');
      return engine.evaluate(a);
    },
    accountBlocked: (t, u) => engine.accountBlocked(t, u),
  };
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
    hostname: 'mail.acme.test',
    spoolDir: join(tmp.path, 'spool'),
    logger,
    outbound: { policy, signer: createDkimSigner({ db: tdb.db, dkim, tenancy }), preSend: preSendHookFrom(manager, store, { logger }) },
  });

  tenantId = (await tenancy.tenants.create(systemScope, { name: 'acme' })).id;
  const scope = tenantScope(tenantId);
  const domain = await tenancy.domains.add(scope, { name: 'acme.test' });
  const user = await tenancy.users.add(scope, { email: 'ann@acme.test', password: 'a long enough password 1' });
  ann = { id: user.id, tenantId, email: user.email, role: user.role };
  await tenancy.mailboxes.add(scope, { address: 'ann@acme.test', user: user.id });
  await tenancy.mailboxes.add(scope, { address: 'cat@acme.test' });
  const key = await dkim.generate(scope, domain, 'rsa-sha256', cliActor);
  dns.set(`${key.selector}._domainkey.acme.test`, { TXT: [publicRecord(key)] });
});

after(async () => {
  await queue?.stop(2000);
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await dns?.close();
  await blobs?.close();
  await tdb?.drop();
  tmp?.remove();
});

let seq = 0;

async function hook(handler: Handler, extra: Record<string, unknown> = {}): Promise<{ pluginId: string; remove(): Promise<void> }> {
  const n = ++seq;
  const pluginId = `com.example.send${n}`;
  dir.add(pluginId);
  handlers.set(pluginId, handler);
  const id = `pre-send-${n}`;
  await store.create({ id, type: 'pre_send', plugin_id: pluginId, ...extra }, cliActor);
  return { pluginId, remove: async () => void (await store.delete(id, cliActor)) };
}

function session(listener: 'submission' | 'mx' = 'submission'): SmtpSessionInfo {
  return { id: `s${++seq}`, listener, remoteAddress: '198.51.100.7', remotePort: 40000 + seq, helo: 'laptop.example', secure: true, user: listener === 'submission' ? ann : undefined };
}

function message(subject: string, from = 'ann@acme.test'): Buffer {
  return Buffer.from(
    [`From: Ann <${from}>`, 'To: bob@remote.example, cat@acme.test', `Subject: ${subject}`, 'Date: Sun, 29 Nov 2026 10:00:00 +0000', `Message-ID: <${randomBytes(6).toString('hex')}@acme.test>`, 'MIME-Version: 1.0', 'Content-Type: text/plain', '', `Hello, ${subject}.`, ''].join('\r\n'),
  );
}

async function submit(subject: string, to = ['bob@remote.example', 'cat@acme.test'], s = session()): Promise<Verdict & { messageId?: string }> {
  const mailFrom = s.listener === 'submission' ? 'ann@acme.test' : 'someone@remote.example';
  const sender = await pipeline.checkSender(s, mailFrom);
  if (!sender.ok) return sender;
  const envelope = { mailFrom, recipients: [] as AcceptedRecipient[] };
  for (const address of to) {
    const v = await pipeline.checkRecipient(s, envelope, address);
    assert.ok(v.ok && v.recipient, `RCPT ${address}: ${v.reply ? formatReply(v.reply) : ''}`);
    envelope.recipients.push(v.recipient);
  }
  return pipeline.receive(s, envelope, Readable.from([message(subject, s.listener === 'submission' ? 'ann@acme.test' : 'someone@remote.example')]));
}

const line = (v: Verdict) => (v.reply ? formatReply(v.reply) : String(v.ok));

async function messages(): Promise<number> {
  const r = await tdb.db.kysely.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

async function dkimResults(raw: string) {
  const resolver = resolverWithDeadline(createResolver(dnsConfig(dns.address)), new AbortController().signal);
  const res = await authenticate(Buffer.from(raw), { ip: '203.0.113.9', helo: 'mail.acme.test', sender: 'ann@acme.test', mta: 'mx.remote.example', resolver, disableArc: true, disableBimi: true });
  return res.dkim.results.map((r: any) => r.status.result as string);
}

describe('submission: outbound policy, pre_send hooks, DKIM', () => {
  test('a submitted message is stored with a DKIM-Signature on top that verifies; Sent and local copies; queued with the decision', async () => {
    const r = await submit('signed and sent');
    assert.equal(line(r), '250 2.0.0 Message accepted for delivery');
    const scope = tenantScope(tenantId);
    const raw = await streamText(await ms.openMessage(scope, r.messageId!));
    assert.ok(raw.startsWith('DKIM-Signature: '), raw.slice(0, 80));
    // Below the signature: our Received field, then the message.
    const afterSig = raw.replace(/^DKIM-Signature:[^\r]*\r\n([ \t][^\r]*\r\n)*/, '');
    assert.ok(afterSig.startsWith('Received: '), afterSig.slice(0, 80));
    assert.deepEqual(await dkimResults(raw), ['pass']);

    const entries = await ms.entriesOfMessage(scope, r.messageId!);
    const folders = await Promise.all(entries.map(async (e) => (await ms.getFolder(scope, e.folderId)).name));
    assert.deepEqual(folders.sort(), ['INBOX', 'Sent'], 'cat\'s INBOX and ann\'s Sent copy');

    const rec = await tdb.db.kysely.selectFrom('outbound_messages').selectAll().where('message_id', '=', r.messageId!).executeTakeFirst();
    assert.ok(rec, 'an outbound record for bob@remote.example');
    if (rec.policy_json !== null) assert.equal(JSON.parse(rec.policy_json).action, 'allow');
  });

  test('MX mail is neither policed nor signed', async () => {
    const before = order.length;
    const r = await submit('inbound', ['cat@acme.test'], session('mx'));
    assert.equal(line(r), '250 2.0.0 Message accepted for delivery');
    const raw = await streamText(await ms.openMessage(tenantScope(tenantId), r.messageId!));
    assert.ok(!raw.includes('DKIM-Signature:'));
    assert.equal(order.length, before, 'no policy call, no pre_send call');
  });

  test('a suspended account gets exactly the SPEC §8 reply and nothing is stored', async () => {
    await engine.accounts.suspendUser({ id: ann.id, tenantId }, { reason: 'test', actor: cliActor });
    try {
      const before = await messages();
      const r = await submit('while suspended');
      assert.equal(line(r), SUSPENDED);
      assert.equal(await messages(), before);
    } finally {
      await engine.accounts.unsuspendUser({ id: ann.id, tenantId }, { actor: cliActor });
    }
    assert.equal(line(await submit('after unsuspend')), '250 2.0.0 Message accepted for delivery');
  });

  test('a pre_send reject refuses the message with the plugin\'s reply; the payload is the sender\'s view', async () => {
    const h = await hook(answer({ action: 'reject', smtp_code: 550, smtp_enhanced: '5.7.1', smtp_message: 'Outgoing content not allowed' }));
    try {
      const before = await messages();
      const r = await submit('forbidden');
      assert.equal(line(r), '550 5.7.1 Outgoing content not allowed');
      assert.equal(await messages(), before);
      const call = calls.find((c) => c.pluginId === h.pluginId);
      assert.ok(call);
      assert.equal(call.body.hook_type, 'pre_send');
      assert.equal(call.body.tenant_id, null, 'a global hook');
      assert.deepEqual(call.body.envelope, { from: 'ann@acme.test', to: ['bob@remote.example', 'cat@acme.test'] });
      assert.equal(call.body.callback_url, null);
    } finally {
      await h.remove();
    }
    const t = await hook(answer({ action: 'tempfail' }));
    try {
      assert.match(line(await submit('later')), /^451 4\.7\.1 /);
    } finally {
      await t.remove();
    }
  });

  test('requires_before_policy hooks run before the policy engine, the others after it', async () => {
    const late = await hook(answer({ action: 'allow' }), { priority: 1 });
    const early = await hook(answer({ action: 'allow' }), { priority: 500, requires_before_policy: true });
    try {
      order.length = 0;
      const r = await submit('ordered');
      assert.equal(line(r), '250 2.0.0 Message accepted for delivery');
      assert.deepEqual(order, [`hook:${early.pluginId}`, 'policy', `hook:${late.pluginId}`]);

      // A before-policy refusal: the policy engine is never asked (nothing counted).
      handlers.set(early.pluginId, answer({ action: 'reject' }));
      order.length = 0;
      const refused = await submit('refused early');
      assert.match(line(refused), /^550 5\.7\.1 /);
      assert.deepEqual(order, [`hook:${early.pluginId}`]);
    } finally {
      await late.remove();
      await early.remove();
    }
  });
});
