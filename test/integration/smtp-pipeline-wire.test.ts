/**
 * The real SMTP listeners (src/protocols/smtp) in front of the real inbound pipeline, against a
 * database and blob store of the current shape: what a client sees on the wire is what the
 * pipeline decided, and a `250` means the message is in the mailbox.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { freshDatabase, tempDir, type TestDatabase } from '../support/shape.js';
import { freshBlobStore } from '../support/blobs.js';
import { cheapPasswords, plans } from '../support/tenancy-fixtures.js';
import { testCertificate, TEST_HOSTNAME } from '../support/smtp-fixture.js';
import { createLogger } from '../../src/observability/logger.js';
import { MemoryChangeBus } from '../../src/store/events/memory-bus.js';
import { MailboxStateService } from '../../src/core/mailbox-state/service.js';
import { TenancyService } from '../../src/core/tenancy/service.js';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { DatabaseQueue } from '../../src/queue/db-queue.js';
import { Lockout } from '../../src/security/lockout.js';
import { DEFAULT_SMTP_LIMITS } from '../../src/protocols/smtp/limits.js';
import { createSmtpListener, type SmtpListener } from '../../src/protocols/smtp/listener.js';
import { InboundPipelineImpl } from '../../src/pipeline/inbound/pipeline.js';
import { DEFAULT_INBOUND_CONFIG } from '../../src/config/sections/inbound.js';
import type { BlobStore } from '../../src/store/blob/index.js';

const PASSWORD = 'correct horse battery';
const MAX = 200_000;

let tdb: TestDatabase;
let blobs: BlobStore;
let removeBlobs: () => Promise<void>;
let spool: { path: string; remove(): void };
let tenancy: TenancyService;
let mailboxState: MailboxStateService;
let queue: DatabaseQueue;
let mx: SmtpListener;
let submission: SmtpListener;
let mxPort: number;
let submissionPort: number;
let tenantId: string;

before(async () => {
  tdb = await freshDatabase();
  const b = await freshBlobStore();
  blobs = b.blobs;
  removeBlobs = b.remove;
  spool = tempDir('mairust-wire-');
  const logger = createLogger({ level: process.env.MAIRUST_TEST_LOG_LEVEL ?? 'silent', format: 'json', destination: 2 });
  mailboxState = new MailboxStateService({ db: tdb.db, blobs, bus: new MemoryChangeBus() });
  tenancy = new TenancyService({
    db: tdb.db,
    plans,
    defaultPlan: 'default',
    createDefaultFolders: async (trx, scope, mailboxId) => void (await mailboxState.createDefaultFolders(scope, mailboxId, trx)),
    passwordOptions: cheapPasswords,
  });
  queue = new DatabaseQueue(tdb.db, { nodeId: 'wire-test' });
  tenantId = (await tenancy.tenants.create(systemScope, { name: 'wire' })).id;
  await tenancy.domains.add(systemScope, { tenantId, name: 'wire.test' });
  const user = await tenancy.users.add(systemScope, { tenantId, email: 'alice@wire.test', password: PASSWORD });
  await tenancy.mailboxes.add(systemScope, { address: 'alice@wire.test', user: user.id });
  await tenancy.mailboxes.add(systemScope, { address: 'bob@wire.test' });

  const pipeline = new InboundPipelineImpl({
    tenancy,
    mailboxState,
    queue,
    blobs,
    db: tdb.db,
    emailAuth: null,
    spam: null,
    config: DEFAULT_INBOUND_CONFIG,
    maxMessageBytes: MAX,
    hostname: TEST_HOSTNAME,
    spoolDir: join(spool.path, 'spool'),
    logger,
  });
  const cert = testCertificate();
  const common = {
    host: '127.0.0.1',
    port: 0,
    hostname: TEST_HOSTNAME,
    pipeline,
    authenticate: async (username: string, password: string) => {
      const u = await tenancy.authenticate(systemScope, username, password);
      return u ? { id: u.id, tenantId: u.tenantId, email: u.email, role: u.role } : null;
    },
    lockout: new Lockout(tdb.db),
    tls: { key: cert.key, cert: cert.cert, minVersion: 'TLSv1.2' as const },
    // The listener allows more than the pipeline, so the pipeline's own limit is what answers.
    limits: { ...DEFAULT_SMTP_LIMITS, maxMessageBytes: MAX * 2 },
    logger,
  };
  mx = createSmtpListener({ ...common, kind: 'mx', implicitTls: false });
  submission = createSmtpListener({ ...common, kind: 'submission', implicitTls: false });
  mxPort = (await mx.listen()).port;
  submissionPort = (await submission.listen()).port;
});

after(async () => {
  await mx?.close(0);
  await submission?.close(0);
  const dir = join(spool.path, 'spool');
  if (existsSync(dir)) assert.deepEqual(readdirSync(dir), [], 'no spool file left behind');
  await removeBlobs?.();
  await tdb?.drop();
  spool?.remove();
});

async function inbox(address: string, folder = 'INBOX') {
  const mb = await tenancy.mailboxes.get(systemScope, address);
  const f = await mailboxState.findFolder(tenantScope(tenantId), mb.id, folder);
  return mailboxState.listEntries(tenantScope(tenantId), f!.id);
}

test('MX: nodemailer → 250 means the message is in the mailbox, Received on top', async () => {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: mxPort, secure: false, ignoreTLS: true, name: 'client.test' });
  const info = await t.sendMail({ from: 'sender@remote.test', to: 'bob@wire.test', subject: 'over the wire', text: 'Hello over SMTP.' });
  assert.match(info.response, /^250 2\.0\.0 Message accepted for delivery$/);
  const entries = await inbox('bob@wire.test');
  assert.equal(entries.length, 1);
  const parts: Buffer[] = [];
  for await (const c of await mailboxState.openMessage(tenantScope(tenantId), entries[0].messageId)) parts.push(c as Buffer);
  const text = Buffer.concat(parts).toString('utf8');
  assert.match(text, /^Return-Path: <[^>\r\n]*>\r\nReceived: from client\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.test with ESMTP id [0-9a-f]+\r\n\tfor <bob@wire\.test>;/);
  assert.match(text, /Subject: over the wire/);
});

test('MX: unknown user and relaying refused on the wire with the exact replies', async () => {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: mxPort, secure: false, ignoreTLS: true, name: 'client.test' });
  await assert.rejects(t.sendMail({ from: 'a@remote.test', to: 'nobody@wire.test', text: 'x' }), (err: Error & { response?: string }) => {
    assert.equal(err.response, '550 5.1.1 No such user here');
    return true;
  });
  await assert.rejects(t.sendMail({ from: 'a@remote.test', to: 'victim@elsewhere.test', text: 'x' }), (err: Error & { response?: string }) => {
    assert.equal(err.response, '554 5.7.1 Relay access denied');
    return true;
  });
});

test('MX: a message over the pipeline limit → 552 5.3.4 on the wire, nothing stored', async () => {
  const before = (await inbox('bob@wire.test')).length;
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: mxPort, secure: false, ignoreTLS: true, name: 'client.test' });
  await assert.rejects(t.sendMail({ from: 'a@remote.test', to: 'bob@wire.test', text: 'x'.repeat(MAX + 10) }), (err: Error & { response?: string }) => {
    assert.equal(err.response, '552 5.3.4 Message size exceeds fixed maximum message size');
    return true;
  });
  assert.equal((await inbox('bob@wire.test')).length, before);
});

test('submission: STARTTLS + AUTH, local delivery, Sent copy, remote recipient queued; foreign From: refused', async () => {
  const t = nodemailer.createTransport({
    host: '127.0.0.1',
    port: submissionPort,
    secure: false,
    requireTLS: true,
    name: 'laptop.test',
    auth: { user: 'alice@wire.test', pass: PASSWORD },
    tls: { ca: testCertificate().cert, servername: TEST_HOSTNAME },
  });
  const info = await t.sendMail({ from: 'Alice <alice@wire.test>', to: ['bob@wire.test', 'friend@remote.test'], subject: 'submitted', text: 'Hi Bob.' });
  assert.match(info.response, /^250 2\.0\.0 Message accepted for delivery$/);
  const bobs = await inbox('bob@wire.test');
  const sent = await inbox('alice@wire.test', 'Sent');
  assert.equal(sent.length, 1);
  assert.ok(bobs.some((e) => e.messageId === sent[0].messageId));
  // The remote recipient is in an outbound record (src/outbound/records.ts) whose job is queued.
  const record = await tdb.db.kysely.selectFrom('outbound_messages').selectAll().where('message_id', '=', sent[0].messageId).executeTakeFirstOrThrow();
  const rcpts = await tdb.db.kysely.selectFrom('outbound_recipients').select('address').where('outbound_id', '=', record.id).execute();
  assert.deepEqual(rcpts.map((r) => r.address), ['friend@remote.test']);
  const { jobs } = await queue.list({ queue: 'outbound' });
  assert.ok(jobs.some((j) => j.id === record.job_id));

  await assert.rejects(t.sendMail({ from: 'bob@wire.test', to: 'bob@wire.test', text: 'spoof' }), (err: Error & { response?: string }) => {
    assert.equal(err.response, '553 5.7.1 Sender address not owned by the authenticated user');
    return true;
  });
  await assert.rejects(
    t.sendMail({ envelope: { from: 'alice@wire.test', to: ['bob@wire.test'] }, from: 'Bob <bob@wire.test>', to: 'bob@wire.test', text: 'spoofed From:' }),
    (err: Error & { response?: string }) => {
      assert.equal(err.response, '553 5.7.1 Sender address not owned by the authenticated user');
      return true;
    },
  );
});
