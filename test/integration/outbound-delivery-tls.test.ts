/**
 * Outbound delivery when the peer lacks something the message needs (SPEC §3.3, §5.2):
 *  - TLS required (`outbound.require_tls_domains`) but the peer offers no STARTTLS → nothing is
 *    sent in clear; the recipient is deferred (`require_tls_action: defer`, 451 4.7.10) or
 *    bounced with a DSN (`bounce`, 550 5.7.10) — RFC 3207 §4 / RFC 5248 X.7.10 "Encryption needed";
 *  - SMTPUTF8 needed (non-ASCII local part, RFC 6531) but not offered → bounced, no downgrade
 *    (RFC 6531 §3.2), and the DSN names the reason.
 * Peers: Postfix smtp-sink (no STARTTLS, no SMTPUTF8; runs as `nobody`) and MaiRust's own SMTP
 * listener (STARTTLS with a self-signed certificate, SMTPUTF8) as the contrast that proves the
 * refusals come from the missing extension and not from anything else. DNS is the loopback test
 * server; jobs run through the worker's handler as the queue would run them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { freshDatabase, tempDir, shape, type TestDatabase } from '../support/shape.js';
import { freePort } from '../support/server-process.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { SmtpTestPipeline } from '../support/smtp-test-pipeline.js';
import { testCertificate } from '../support/smtp-fixture.js';
import { cheapPasswords, plans } from '../support/tenancy-fixtures.js';
import type { Envelope, SmtpSessionInfo, Verdict, AcceptedRecipient } from '../../src/pipeline/inbound/contract.js';
import { createSmtpListener, type SmtpListener } from '../../src/protocols/smtp/listener.js';
import { DEFAULT_SMTP_LIMITS } from '../../src/protocols/smtp/limits.js';
import { Lockout } from '../../src/security/lockout.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createBlobStore } from '../../src/store/blob/index.js';
import { createChangeBus } from '../../src/store/events/index.js';
import type { ChangeBus } from '../../src/store/events/change-bus.js';
import { MailboxStateService } from '../../src/core/mailbox-state/index.js';
import { TenancyService } from '../../src/core/tenancy/service.js';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { DatabaseQueue } from '../../src/queue/db-queue.js';
import type { Job } from '../../src/queue/queue.js';
import { createResolver } from '../../src/dns/index.js';
import { createDestinationResolver } from '../../src/outbound/routing/resolve-destination.js';
import { createSmtpClientPool } from '../../src/protocols/smtp/client/index.js';
import { OutboundConfigSchema, type OutboundConfig } from '../../src/config/sections/outbound.js';
import { createOutboundRecord, OutboundRecords, type OutboundJobPayload } from '../../src/outbound/records.js';
import { createDsnSender } from '../../src/outbound/dsn.js';
import { startOutboundWorker, DeliveryDeferredError, type OutboundWorker } from '../../src/outbound/delivery/worker.js';
import type { SmtpClientPool } from '../../src/outbound/types.js';

/** The MaiRust peer accepts every recipient. */
class AcceptAll extends SmtpTestPipeline {
  override async checkRecipient(_s: SmtpSessionInfo, _e: Envelope, address: string): Promise<Verdict & { recipient?: AcceptedRecipient }> {
    return { ok: true, recipient: { address, tenantId: 'peer', mailboxIds: [`mb-${address}`] } };
  }
}

/** Postfix smtp-sink on a free loopback port, one dump file per message in `dir`. */
async function startSink(dir: string): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  // smtp-sink refuses to run as root without -u (it drops privileges after binding).
  const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), '-d', `${dir}/%M.`, `127.0.0.1:${port}`, '10'];
  const child: ChildProcess = spawn('/usr/sbin/smtp-sink', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`smtp-sink did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

describe(`outbound delivery: required TLS and SMTPUTF8 (${shape})`, () => {
  let t: TestDatabase;
  let dns: TestDnsServer;
  let mairustPeer: AcceptAll;
  let listener: SmtpListener;
  let listenerPort = 0;
  let sink: Awaited<ReturnType<typeof startSink>>;
  let bus: ChangeBus;
  let state: MailboxStateService;
  let queue: DatabaseQueue;
  let pool: SmtpClientPool;
  let worker: OutboundWorker;
  let records: OutboundRecords;
  let cfg: OutboundConfig;
  let tenantId = '';
  let aliceMailbox = '';
  const blobDir = tempDir('mairust-outbound-tls-blobs-');
  const dump = tempDir('mairust-outbound-tls-sink-');
  const logger = createLogger({ level: process.env.MAIRUST_TEST_LOG_LEVEL ?? 'silent', format: 'json', destination: 2 });
  const metrics = createMetrics({ defaultMetrics: false });

  before(async () => {
    t = await freshDatabase();
    const db = t.db;
    const blobs = createBlobStore({ backend: 'fs', fs: { path: blobDir.path }, s3: {} as never });
    bus = await createChangeBus('auto', db, { nodeId: 'n1', logger });
    state = new MailboxStateService({ db, blobs, bus, nodeId: 'n1', logger });
    const tenancy = new TenancyService({ db, plans, defaultPlan: 'default', createDefaultFolders: async (trx, scope, id) => void (await state.createDefaultFolders(scope, id, trx)), passwordOptions: cheapPasswords });
    tenantId = (await tenancy.tenants.create(systemScope, { name: 'acme' })).id;
    await tenancy.domains.add(systemScope, { tenantId, name: 'local.test' });
    const alice = await tenancy.users.add(systemScope, { tenantId, email: 'alice@local.test', password: 'correct horse battery staple' });
    aliceMailbox = (await tenancy.mailboxes.add(systemScope, { address: 'alice@local.test', user: alice.id })).id;

    chmodSync(dump.path, 0o777); // smtp-sink writes its dumps as `nobody`
    sink = await startSink(dump.path);
    mairustPeer = new AcceptAll({ domain: 'secure.test' });
    const cert = testCertificate();
    listener = createSmtpListener({
      kind: 'mx', implicitTls: false, host: '127.0.0.1', port: 0, hostname: 'mx.secure.test', pipeline: mairustPeer,
      authenticate: async () => null, lockout: new Lockout(db), tls: { key: cert.key, cert: cert.cert, minVersion: 'TLSv1.2' },
      limits: { ...DEFAULT_SMTP_LIMITS }, logger, metrics,
    });
    listenerPort = (await listener.listen()).port;
    dns = await startDnsServer({
      'plain.test': { MX: [{ priority: 10, exchange: 'mx.plain.test' }] },
      'mx.plain.test': { A: ['127.0.0.1'] },
      'secure.test': { MX: [{ priority: 10, exchange: 'mx.secure.test' }] },
      'mx.secure.test': { A: ['127.0.0.1'] },
    });
    const defaults = Value.Default(OutboundConfigSchema, {}) as OutboundConfig;
    cfg = { ...defaults, port: sink.port, retry_schedule_seconds: [300, 900], connect_timeout_ms: 3000, command_timeout_ms: 10_000, connection_idle_seconds: 0 };
    const resolver = createDestinationResolver({
      resolver: createResolver({ servers: [dns.address], timeout_ms: 500, tries: 2, cache_ttl_seconds: 0, negative_cache_ttl_seconds: 0, cache_max_entries: 100 }),
      config: () => cfg,
      mtaSts: null,
    });
    queue = new DatabaseQueue(db, { nodeId: 'n1', pollIntervalMs: 50 });
    pool = createSmtpClientPool({ idleMs: () => 0, maxPerDestination: () => 4, logger });
    const dsn = createDsnSender({ db, mailboxState: state, tenancy, queue, hostname: 'mail.local.test', retry: () => cfg, logger });
    records = new OutboundRecords({ db, queue, config: () => cfg });
    worker = startOutboundWorker({ queue, db, mailboxState: state, resolver, pool, config: () => cfg, hostname: 'mail.local.test', dsn, logger }, { consume: false });
  });

  after(async () => {
    await queue?.stop(1000);
    await pool?.close();
    await listener?.close(0);
    await sink?.stop();
    await dns?.close();
    await bus?.close().catch(() => {});
    await t?.drop();
    blobDir.remove();
    dump.remove();
  });

  /** Stores a message from alice and queues it for `to` (as the submission commit does). */
  async function submit(to: string[], subject = `Report ${randomBytes(4).toString('hex')}`): Promise<{ id: string; job: Job<OutboundJobPayload>; subject: string }> {
    const raw = Buffer.from(`From: alice@local.test\r\nTo: ${to.join(', ')}\r\nSubject: ${subject}\r\nMessage-ID: <${randomBytes(6).toString('hex')}@local.test>\r\n\r\nHello there.\r\n`, 'utf8');
    const stored = await state.storeMessage(tenantScope(tenantId), { raw });
    const id = randomBytes(8).toString('hex');
    const jobId = await t.db.kysely.transaction().execute((trx) =>
      createOutboundRecord(queue, trx, { id, tenantId, messageId: stored.id, userId: null, mailFrom: 'alice@local.test', recipients: to, size: raw.length, retry: cfg }),
    );
    const job = (await queue.get(jobId)) as Job<OutboundJobPayload>;
    return { id, job: { ...job, attempts: 1 }, subject };
  }

  /** The raw messages in alice's INBOX (DSNs land there). */
  async function inbox(): Promise<string[]> {
    const scope = tenantScope(tenantId);
    const folder = (await state.findFolder(scope, aliceMailbox, 'INBOX'))!;
    const out: string[] = [];
    for (const e of await state.listEntries(scope, folder.id)) {
      const chunks: Buffer[] = [];
      for await (const c of await state.openMessage(scope, e.messageId)) chunks.push(c as Buffer);
      out.push(Buffer.concat(chunks).toString('utf8'));
    }
    return out;
  }

  const sinkCount = () => readdirSync(dump.path).length;
  const sinkText = () => readdirSync(dump.path).map((f) => readFileSync(`${dump.path}/${f}`, 'utf8')).join('\n');

  test('control: without a TLS requirement smtp-sink gets the message in plain text (opportunistic TLS, RFC 7435)', async () => {
    cfg = { ...cfg, port: sink.port, require_tls_domains: [] };
    const before = sinkCount();
    const { id, job, subject } = await submit(['carol@plain.test']);
    await worker.handle(job);
    const d = await records.show(systemScope, id);
    assert.equal(d.record.status, 'delivered', JSON.stringify(d.recipients));
    assert.equal(d.attempts[0].tls ?? 'none', 'none', 'smtp-sink offers no STARTTLS');
    assert.equal(sinkCount(), before + 1);
    assert.ok(sinkText().includes(`Subject: ${subject}`));
  });

  test('TLS required but not offered, require_tls_action defer: deferred with 451 4.7.10, nothing sent in clear', async () => {
    cfg = { ...cfg, port: sink.port, require_tls_domains: ['plain.test'], require_tls_action: 'defer' };
    const before = sinkCount();
    const { id, job } = await submit(['dave@plain.test']);
    await assert.rejects(worker.handle(job), DeliveryDeferredError);
    const d = await records.show(systemScope, id);
    assert.equal(d.record.status, 'queued', 'still queued for a retry');
    assert.ok(d.record.nextAttemptAt !== null && d.record.nextAttemptAt > Date.now(), 'next attempt on the retry schedule');
    assert.equal(d.recipients[0].status, 'deferred');
    assert.match(d.recipients[0].lastReply ?? '', /^451 4\.7\.10 TLS is required for plain\.test/);
    assert.equal(sinkCount(), before, 'no message reached the peer without TLS');
    assert.ok(d.attempts.length >= 1);
    assert.ok(!d.attempts.some((a) => a.transcript.some((l) => /^C: (MAIL|RCPT|DATA)/.test(l))), 'no envelope was sent in clear');
  });

  test('TLS required but not offered, require_tls_action bounce: bounced with 550 5.7.10 and a DSN to the sender', async () => {
    cfg = { ...cfg, port: sink.port, require_tls_domains: ['plain.test'], require_tls_action: 'bounce' };
    const before = sinkCount();
    const { id, job, subject } = await submit(['erin@plain.test'], `Needs TLS ${randomBytes(3).toString('hex')}`);
    await worker.handle(job);
    const d = await records.show(systemScope, id);
    assert.equal(d.record.status, 'bounced');
    assert.equal(d.recipients[0].status, 'bounced');
    assert.match(d.recipients[0].lastReply ?? '', /^550 5\.7\.10 TLS is required for plain\.test/);
    assert.equal(sinkCount(), before, 'no message reached the peer without TLS');
    const dsn = (await inbox()).find((m) => m.includes(`Subject: ${subject}`) && m.includes('multipart/report'));
    assert.ok(dsn, 'a DSN in the sender INBOX carrying the original headers');
    assert.match(dsn, /^Final-Recipient: rfc822; erin@plain\.test$/m);
    assert.match(dsn, /^Status: 5\.7\.10$/m);
    assert.match(dsn, /^Action: failed$/m);
    assert.match(dsn, /TLS is required/);
  });

  test('control: TLS required and offered (MaiRust listener with STARTTLS) → delivered over TLS', async () => {
    cfg = { ...cfg, port: listenerPort, require_tls_domains: ['secure.test'], require_tls_action: 'bounce' };
    const before = mairustPeer.received.length;
    const { id, job } = await submit(['frank@secure.test']);
    await worker.handle(job);
    const d = await records.show(systemScope, id);
    assert.equal(d.record.status, 'delivered', JSON.stringify(d.recipients));
    assert.match(d.attempts[0].tls ?? '', /TLS/);
    assert.equal(mairustPeer.received.length, before + 1);
  });

  test('SMTPUTF8 needed (non-ASCII local part) to smtp-sink, which lacks it: bounced 553 5.6.7, the DSN says why', async () => {
    cfg = { ...cfg, port: sink.port, require_tls_domains: [] };
    const before = sinkCount();
    const rcpt = 'j\u00f6rg@plain.test';
    const { id, job, subject } = await submit([rcpt], `Umlaut ${randomBytes(3).toString('hex')}`);
    await worker.handle(job);
    const d = await records.show(systemScope, id);
    assert.equal(d.record.status, 'bounced');
    assert.match(d.recipients[0].lastReply ?? '', /^553 5\.6\.7 mx\.plain\.test does not support SMTPUTF8/);
    assert.equal(sinkCount(), before, 'no downgraded copy was sent (RFC 6531 §3.2)');
    assert.ok(!d.attempts.some((a) => a.transcript.some((l) => /^C: (MAIL|RCPT)/.test(l))), 'no transaction started');
    const dsn = (await inbox()).find((m) => m.includes(`Subject: ${subject}`) && m.includes('multipart/report'));
    assert.ok(dsn, 'a DSN in the sender INBOX');
    assert.match(dsn, /^Status: 5\.6\.7$/m);
    assert.match(dsn, /does not support SMTPUTF8/);
    assert.ok(dsn.includes(rcpt) || dsn.includes('j=C3=B6rg') || /utf-8;\s*j\\x\{F6\}rg/i.test(dsn), 'the DSN names the recipient');
  });

  test('control: the same non-ASCII recipient to the MaiRust listener (SMTPUTF8 offered) is delivered with the SMTPUTF8 parameter', async () => {
    cfg = { ...cfg, port: listenerPort, require_tls_domains: [] };
    const rcpt = 'j\u00f6rg@secure.test';
    const { id, job } = await submit([rcpt]);
    await worker.handle(job);
    const d = await records.show(systemScope, id);
    assert.equal(d.record.status, 'delivered', JSON.stringify(d.recipients));
    assert.ok(d.attempts[0].transcript.some((l) => l.startsWith('C: MAIL FROM:<alice@local.test>') && / SMTPUTF8\b/.test(l)), d.attempts[0].transcript.join('\n'));
    assert.ok(mairustPeer.received.some((m) => m.envelope.recipients.some((r) => r.address === rcpt)));
  });
});
