/**
 * Outbound delivery over real SMTP on loopback (SPEC §3.3, §5.2): a loopback DNS serves the zones
 * (MX → 127.0.0.1, a null MX), the peer is MaiRust's own SMTP listener with a pipeline that answers
 * chosen replies per recipient, the client is the real pool and the routing the real resolver.
 * Jobs are run through the worker's handler (as the queue would), which lets a test run a job twice
 * like a worker that crashed after the remote 250.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { freshDatabase, tempDir, shape, type TestDatabase } from '../support/shape.js';
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
import { createDsnSender, statusOf } from '../../src/outbound/dsn.js';
import { startOutboundWorker, DeliveryDeferredError, type OutboundWorker } from '../../src/outbound/delivery/worker.js';
import { createOutboundMetrics } from '../../src/outbound/delivery/metrics.js';
import { cliActor } from '../../src/security/audit.js';
import type { SmtpClientPool } from '../../src/outbound/types.js';

/** Peer pipeline: every recipient at remote.test exists unless a verdict is set for it. */
class PeerPipeline extends SmtpTestPipeline {
  readonly verdicts = new Map<string, Verdict>();
  override async checkRecipient(session: SmtpSessionInfo, envelope: Envelope, address: string): Promise<Verdict & { recipient?: AcceptedRecipient }> {
    const v = this.verdicts.get(address.toLowerCase());
    if (v) return v;
    return { ok: true, recipient: { address, tenantId: 'peer', mailboxIds: [`mb-${address}`] } };
  }
}

const reply = (code: number, enhanced: string, message: string): Verdict => ({ ok: false, reply: { code, enhanced, message } });

describe(`outbound delivery over SMTP (${shape})`, () => {
  let test_: TestDatabase;
  let dns: TestDnsServer;
  let peer: PeerPipeline;
  let listener: SmtpListener;
  let bus: ChangeBus;
  let state: MailboxStateService;
  let tenancy: TenancyService;
  let queue: DatabaseQueue;
  let pool: SmtpClientPool;
  let worker: OutboundWorker;
  let records: OutboundRecords;
  let cfg: OutboundConfig;
  let clock = Date.now();
  let tenantId = '';
  let aliceMailbox = '';
  const blobDir = tempDir('mairust-outbound-blobs-');
  const logger = createLogger({ level: process.env.MAIRUST_TEST_LOG_LEVEL ?? 'silent', format: 'json', destination: 2 });
  const metrics = createMetrics({ defaultMetrics: false });

  before(async () => {
    test_ = await freshDatabase();
    const db = test_.db;
    const blobs = createBlobStore({ backend: 'fs', fs: { path: blobDir.path }, s3: {} as never });
    bus = await createChangeBus('auto', db, { nodeId: 'n1', logger });
    state = new MailboxStateService({ db, blobs, bus, nodeId: 'n1', logger });
    tenancy = new TenancyService({ db, plans, defaultPlan: 'default', createDefaultFolders: async (trx, scope, id) => void (await state.createDefaultFolders(scope, id, trx)), passwordOptions: cheapPasswords });
    tenantId = (await tenancy.tenants.create(systemScope, { name: 'acme' })).id;
    await tenancy.domains.add(systemScope, { tenantId, name: 'local.test' });
    const alice = await tenancy.users.add(systemScope, { tenantId, email: 'alice@local.test', password: 'correct horse battery staple' });
    aliceMailbox = (await tenancy.mailboxes.add(systemScope, { address: 'alice@local.test', user: alice.id })).id;

    peer = new PeerPipeline({ domain: 'remote.test' });
    const cert = testCertificate();
    listener = createSmtpListener({
      kind: 'mx', implicitTls: false, host: '127.0.0.1', port: 0, hostname: 'mx.remote.test', pipeline: peer,
      authenticate: async () => null, lockout: new Lockout(db), tls: { key: cert.key, cert: cert.cert, minVersion: 'TLSv1.2' },
      limits: { ...DEFAULT_SMTP_LIMITS }, logger, metrics,
    });
    const { port } = await listener.listen();
    dns = await startDnsServer({
      'remote.test': { MX: [{ priority: 10, exchange: 'mx.remote.test' }] },
      'other.test': { MX: [{ priority: 10, exchange: 'mx.remote.test' }] },
      'mx.remote.test': { A: ['127.0.0.1'] },
      'nullmx.test': { MX: [{ priority: 0, exchange: '.' }] },
    });
    cfg = Value.Default(OutboundConfigSchema, {}) as OutboundConfig;
    cfg = { ...cfg, port, retry_schedule_seconds: [300, 900], max_queue_hours: 120, connect_timeout_ms: 3000, command_timeout_ms: 10_000, connection_idle_seconds: 0 };
    const resolver = createDestinationResolver({ resolver: createResolver({ servers: [dns.address], timeout_ms: 500, tries: 2, cache_ttl_seconds: 0, negative_cache_ttl_seconds: 0, cache_max_entries: 100 }), config: () => cfg, mtaSts: null });
    queue = new DatabaseQueue(db, { nodeId: 'n1', pollIntervalMs: 50 });
    pool = createSmtpClientPool({ idleMs: () => 0, maxPerDestination: () => 4, logger });
    const dsn = createDsnSender({ db, mailboxState: state, tenancy, queue, hostname: 'mail.local.test', retry: () => cfg, logger });
    records = new OutboundRecords({
      db, queue, config: () => cfg,
      bounce: async (rec, rcpts) => void (await dsn.send({ tenantId: rec.tenantId, outboundId: rec.id, messageId: rec.messageId, mailFrom: rec.mailFrom, arrivedAt: rec.createdAt, recipients: rcpts.map((r) => ({ address: r.address, action: 'failed', status: statusOf(r.lastReply, '5.0.0'), diagnostic: r.lastReply })) })),
    });
    const om = createOutboundMetrics(metrics.registry, () => records.stats(systemScope));
    worker = startOutboundWorker({ queue, db, mailboxState: state, resolver, pool, config: () => cfg, hostname: 'mail.local.test', dsn, logger, metrics: om, now: () => clock }, { consume: false });
  });

  after(async () => {
    await queue?.stop(1000);
    await pool?.close();
    await listener?.close(0);
    await dns?.close();
    await bus?.close().catch(() => {});
    await test_?.drop();
    blobDir.remove();
  });

  async function submit(o: { from?: string; to: string[]; subject?: string }): Promise<{ id: string; job: Job<OutboundJobPayload> }> {
    const subject = o.subject ?? `Report ${randomBytes(4).toString('hex')}`;
    const raw = Buffer.from(`From: alice@local.test\r\nTo: ${o.to.join(', ')}\r\nSubject: ${subject}\r\nMessage-ID: <${randomBytes(6).toString('hex')}@local.test>\r\n\r\nHello there.\r\n`);
    const stored = await state.storeMessage(tenantScope(tenantId), { raw });
    const id = randomBytes(8).toString('hex');
    const jobId = await test_.db.kysely.transaction().execute((trx) =>
      createOutboundRecord(queue, trx, { id, tenantId, messageId: stored.id, userId: null, mailFrom: o.from ?? 'alice@local.test', recipients: o.to, size: raw.length, retry: cfg }),
    );
    const job = (await queue.get(jobId)) as Job<OutboundJobPayload>;
    return { id, job: { ...job, attempts: 1 } };
  }

  async function inboxSubjects(): Promise<string[]> {
    const scope = tenantScope(tenantId);
    const inbox = (await state.findFolder(scope, aliceMailbox, 'INBOX'))!;
    const entries = await state.listEntries(scope, inbox.id);
    const out: string[] = [];
    for (const e of entries) {
      const chunks: Buffer[] = [];
      for await (const c of await state.openMessage(scope, e.messageId)) chunks.push(c as Buffer);
      out.push(Buffer.concat(chunks).toString('utf8'));
    }
    return out;
  }

  const received = (addr: string) => peer.received.filter((m) => m.envelope.recipients.some((r) => r.address === addr)).length;

  test('delivered: the peer gets the message, the record says delivered, the transcript is stored', async () => {
    const { id, job } = await submit({ to: ['bob@remote.test'] });
    await worker.handle(job);
    assert.equal(received('bob@remote.test'), 1);
    const d = await records.show(systemScope, id);
    assert.equal(d.record.status, 'delivered');
    assert.equal(d.recipients[0].status, 'delivered');
    assert.equal(d.recipients[0].lastCode, 250);
    assert.equal(d.attempts.length, 1);
    assert.equal(d.attempts[0].result, 'delivered');
    assert.equal(d.attempts[0].mxHost, 'mx.remote.test');
    assert.ok(d.attempts[0].transcript.some((l) => /^C: MAIL FROM:<alice@local\.test>/.test(l)), d.attempts[0].transcript.join('\n'));
    assert.match(d.attempts[0].tls ?? '', /TLS/, 'opportunistic STARTTLS was used');
  });

  test('5xx for one recipient: bounced with a DSN in the sender INBOX carrying the original headers; a second run sends nothing twice', async () => {
    peer.verdicts.set('nobody@remote.test', reply(550, '5.1.1', 'No such user here'));
    const subject = `Partial ${randomBytes(3).toString('hex')}`;
    const { id, job } = await submit({ to: ['carol@remote.test', 'nobody@remote.test'], subject });
    await worker.handle(job);
    const d = await records.show(systemScope, id);
    assert.equal(d.record.status, 'partial');
    const byAddr = Object.fromEntries(d.recipients.map((r) => [r.address, r]));
    assert.equal(byAddr['carol@remote.test'].status, 'delivered');
    assert.equal(byAddr['nobody@remote.test'].status, 'bounced');
    assert.match(byAddr['nobody@remote.test'].lastReply ?? '', /^550 5\.1\.1/);
    const dsn = (await inboxSubjects()).find((m) => m.includes(`Subject: ${subject}`) && m.includes('multipart/report'));
    assert.ok(dsn, 'a DSN with the original Subject in its text/rfc822-headers part');
    assert.match(dsn, /^Final-Recipient: rfc822; nobody@remote\.test$/m);
    assert.match(dsn, /^Status: 5\.1\.1$/m);
    assert.match(dsn, /^Remote-MTA: dns; mx\.remote\.test$/m);
    assert.match(dsn, /^Content-Type: text\/rfc822-headers$/m);
    // A worker that died after the 250 runs the job again: the record is the truth.
    const before = peer.received.length;
    await worker.handle(job);
    assert.equal(peer.received.length, before, 'nothing is sent again');
    assert.equal(received('carol@remote.test'), 1);
    peer.verdicts.clear();
  });

  test('4xx then success: deferred with the next attempt on the schedule, delivered on the retry', async () => {
    peer.verdicts.set('dave@remote.test', reply(450, '4.2.1', 'Mailbox busy, try later'));
    const { id, job } = await submit({ to: ['dave@remote.test'] });
    clock = Date.now();
    await assert.rejects(worker.handle(job), DeliveryDeferredError);
    let rec = await records.get(systemScope, id);
    assert.equal(rec.status, 'queued');
    assert.equal(rec.nextAttemptAt, clock + 300_000, 'retry 1 after retry_schedule_seconds[0]');
    assert.equal((await records.show(systemScope, id)).recipients[0].status, 'deferred');
    peer.verdicts.clear();
    await worker.handle({ ...job, attempts: 2 });
    rec = await records.get(systemScope, id);
    assert.equal(rec.status, 'delivered');
    assert.equal(received('dave@remote.test'), 1);
  });

  test('the queue retries a deferred job on the retry schedule (the job backoff)', async () => {
    peer.verdicts.set('erin@remote.test', reply(451, '4.3.0', 'Local problem'));
    const { id, job } = await submit({ to: ['erin@remote.test'] });
    const live = startOutboundWorker({ queue, db: test_.db, mailboxState: state, resolver: createDestinationResolver({ resolver: createResolver({ servers: [dns.address], timeout_ms: 500, tries: 2, cache_ttl_seconds: 0, negative_cache_ttl_seconds: 0, cache_max_entries: 100 }), config: () => cfg, mtaSts: null }), pool, config: () => ({ ...cfg, workers: 1 }), hostname: 'mail.local.test', dsn: createDsnSender({ db: test_.db, mailboxState: state, tenancy, queue, hostname: 'mail.local.test', logger }), logger });
    assert.ok(live);
    const deadline = Date.now() + 15_000;
    let row;
    for (;;) {
      row = await test_.db.kysely.selectFrom('queue_jobs').selectAll().where('id', '=', job.id).executeTakeFirstOrThrow();
      if (Number(row.attempts) >= 1 && row.status === 'ready') break;
      assert.ok(Date.now() < deadline, `job not retried in time: ${row.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const gap = Number(row.run_at) - Number(row.updated_at);
    assert.equal(gap, 300_000, 'run_at = failure + retry_schedule_seconds[0]');
    assert.match(row.last_error ?? '', /deferred: 451 4\.3\.0/);
    await queue.stop(2000);
    queue = new DatabaseQueue(test_.db, { nodeId: 'n1', pollIntervalMs: 50 });
    peer.verdicts.clear();
    assert.equal((await records.get(systemScope, id)).status, 'queued');
  });

  test('a null sender is never bounced (no bounce of a bounce)', async () => {
    peer.verdicts.set('gone@remote.test', reply(550, '5.1.1', 'Gone'));
    const before = (await inboxSubjects()).length;
    const { id, job } = await submit({ from: '', to: ['gone@remote.test'] });
    await worker.handle(job);
    assert.equal((await records.get(systemScope, id)).status, 'bounced');
    assert.equal((await inboxSubjects()).length, before, 'no DSN delivered');
    const dsnRecords = await test_.db.kysely.selectFrom('outbound_messages').select('id').where('mail_from', '=', '').where('id', '<>', id).execute();
    assert.equal(dsnRecords.length, 0, 'no DSN queued');
    peer.verdicts.clear();
  });

  test('null MX: bounced at once, without a connection', async () => {
    const before = peer.received.length;
    const { id, job } = await submit({ to: ['x@nullmx.test'] });
    await worker.handle(job);
    const d = await records.show(systemScope, id);
    assert.equal(d.record.status, 'bounced');
    assert.match(d.recipients[0].lastReply ?? '', /^556 5\.1\.10/);
    assert.equal(peer.received.length, before);
    assert.ok((await inboxSubjects()).some((m) => /^Final-Recipient: rfc822; x@nullmx\.test$/m.test(m) && /^Status: 5\.1\.10$/m.test(m)));
  });

  test('hold, release and delete with bounce', async () => {
    const { id, job } = await submit({ to: ['frank@remote.test'] });
    await records.hold(systemScope, id, cliActor);
    await worker.handle(job);
    assert.equal(received('frank@remote.test'), 0, 'a held entry is not delivered');
    assert.equal((await records.get(systemScope, id)).held, true);
    const released = await records.release(systemScope, id, cliActor);
    assert.equal(released.held, false);
    const newJob = (await queue.get(released.jobId!))!;
    assert.equal(newJob.status, 'ready', 'release queued a new due job');
    await worker.handle({ ...(newJob as Job<OutboundJobPayload>), attempts: 1 });
    assert.equal(received('frank@remote.test'), 1);

    const del = await submit({ to: ['gina@remote.test'], subject: 'To be deleted' });
    const deleted = await records.delete(systemScope, del.id, { bounce: true }, cliActor);
    assert.equal(deleted.status, 'deleted');
    assert.equal(await queue.get(del.job.id), null, 'its job is gone');
    await worker.handle(del.job);
    assert.equal(received('gina@remote.test'), 0);
    assert.ok((await inboxSubjects()).some((m) => m.includes('Subject: To be deleted') && /^Final-Recipient: rfc822; gina@remote\.test$/m.test(m)));
  });

  test('past max_queue_hours what is left bounces with "delivery time expired"', async () => {
    peer.verdicts.set('slow@remote.test', reply(451, '4.4.1', 'Try later'));
    const { id, job } = await submit({ to: ['slow@remote.test'] });
    clock = Date.now();
    await assert.rejects(worker.handle(job), DeliveryDeferredError);
    clock = Date.now() + 121 * 3600_000;
    await worker.handle({ ...job, attempts: 2 });
    const d = await records.show(systemScope, id);
    assert.equal(d.record.status, 'bounced');
    assert.ok((await inboxSubjects()).some((m) => /^Final-Recipient: rfc822; slow@remote\.test$/m.test(m) && /^Status: 5\.4\.7$/m.test(m)));
    clock = Date.now();
    peer.verdicts.clear();
  });

  test('delay warning: once after delay_warning_hours, an RFC 3464 "delayed" report; not again on later attempts', async () => {
    const saved = cfg;
    cfg = { ...cfg, delay_warning_hours: 4 };
    try {
      peer.verdicts.set('late@remote.test', reply(451, '4.4.1', 'Try later'));
      const { id, job } = await submit({ to: ['late@remote.test'] });
      const delayed = async () => (await inboxSubjects()).filter((m) => /^Final-Recipient: rfc822; late@remote\.test$/m.test(m) && /^Action: delayed$/m.test(m)).length;
      clock = Date.now();
      await assert.rejects(worker.handle(job), DeliveryDeferredError);
      assert.equal(await delayed(), 0, 'no warning before 4 h');
      clock = Date.now() + 5 * 3600_000;
      await assert.rejects(worker.handle({ ...job, attempts: 2 }), DeliveryDeferredError);
      assert.equal(await delayed(), 1, 'one warning after 4 h');
      clock = Date.now() + 6 * 3600_000;
      await assert.rejects(worker.handle({ ...job, attempts: 3 }), DeliveryDeferredError);
      assert.equal(await delayed(), 1, 'never a second warning');
      assert.equal((await records.get(systemScope, id)).status, 'queued', 'still being retried');
    } finally {
      cfg = saved;
      clock = Date.now();
      peer.verdicts.clear();
    }
  });

  test('metrics: deliveries by result and queue records by status', async () => {
    const text = await metrics.registry.metrics();
    assert.match(text, /mairust_outbound_deliveries_total\{result="delivered"\} [1-9]/);
    assert.match(text, /mairust_outbound_deliveries_total\{result="bounced"\} [1-9]/);
    assert.match(text, /mairust_outbound_queue_messages\{status="delivered"\} [1-9]/);
  });
});
