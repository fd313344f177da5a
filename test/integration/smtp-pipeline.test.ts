/**
 * The inbound pipeline against a real database and blob store of the current shape, with the real
 * tenancy, mailbox-state and queue services (built as src/app/context.ts builds them): recipient
 * rules, delivery into folders with one blob per message, quotas, submission rules with the
 * outbound hand-off and the Sent copy, the stored bytes, and failures of the stores.
 */
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { Command } from 'commander';
import pino from 'pino';
import { freshDatabase, shape, tempDir, s3TestSettings, type TestDatabase } from '../support/shape.js';
import { freshBlobStore } from '../support/blobs.js';
import { cheapPasswords, plans } from '../support/tenancy-fixtures.js';
import { openDatabase, type Database } from '../../src/store/db/database.js';
import { createBlobStore, type BlobStore } from '../../src/store/blob/index.js';
import { MemoryChangeBus } from '../../src/store/events/memory-bus.js';
import { MailboxStateService } from '../../src/core/mailbox-state/service.js';
import { TenancyService } from '../../src/core/tenancy/service.js';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { DatabaseQueue } from '../../src/queue/db-queue.js';
import { register as registerQueueCli } from '../../src/cli/queue.js';
import type { CliContext } from '../../src/cli/cli-context.js';
import type { AppContext } from '../../src/app/context.js';
import { InboundPipelineImpl } from '../../src/pipeline/inbound/pipeline.js';
import { DEFAULT_INBOUND_CONFIG, type InboundConfig } from '../../src/config/sections/inbound.js';
import type { AcceptedRecipient, AuthenticatedUser, SmtpSessionInfo, Verdict } from '../../src/pipeline/inbound/contract.js';
import { formatReply } from '../../src/protocols/smtp/replies.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';

const HOST = 'mx.pipeline.test';

interface World {
  db: Database;
  blobs: BlobStore;
  tenancy: TenancyService;
  mailboxState: MailboxStateService;
  queue: DatabaseQueue;
  pipeline: InboundPipelineImpl;
  spoolDir: string;
  logs: Record<string, unknown>[];
  config: InboundConfig;
  metrics: Metrics;
}

function captureLogger(lines: Record<string, unknown>[]) {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return pino({ level: 'info' }, sink);
}

function buildWorld(db: Database, blobs: BlobStore, spoolDir: string, opts: { maxMessageBytes?: number } = {}): World {
  const bus = new MemoryChangeBus();
  const mailboxState = new MailboxStateService({ db, blobs, bus, nodeId: 'pipeline-test' });
  const tenancy = new TenancyService({
    db,
    plans,
    defaultPlan: 'default',
    createDefaultFolders: async (trx, scope, mailboxId) => void (await mailboxState.createDefaultFolders(scope, mailboxId, trx)),
    passwordOptions: cheapPasswords,
  });
  const queue = new DatabaseQueue(db, { nodeId: 'pipeline-test' });
  const logs: Record<string, unknown>[] = [];
  const config: InboundConfig = { ...DEFAULT_INBOUND_CONFIG };
  const metrics = createMetrics({ defaultMetrics: false });
  const pipeline = new InboundPipelineImpl({
    tenancy,
    mailboxState,
    queue,
    blobs,
    db,
    emailAuth: null,
    spam: null,
    config: () => config,
    maxMessageBytes: opts.maxMessageBytes ?? 2_000_000,
    hostname: HOST,
    spoolDir,
    logger: captureLogger(logs),
    metrics,
  });
  return { db, blobs, tenancy, mailboxState, queue, pipeline, spoolDir, logs, config, metrics };
}

let counter = 0;
function session(listener: 'mx' | 'submission', user?: AuthenticatedUser): SmtpSessionInfo {
  return { id: `s${++counter}`, listener, remoteAddress: '192.0.2.10', remotePort: 40000 + counter, helo: 'client.example.net', secure: listener === 'submission', user };
}

function message(opts: { from?: string; to?: string; subject?: string; extra?: string[]; body?: string } = {}): Buffer {
  return Buffer.from(
    [
      `From: ${opts.from ?? 'Sender <sender@remote.example>'}`,
      `To: ${opts.to ?? 'someone@example.org'}`,
      `Subject: ${opts.subject ?? 'pipeline test'}`,
      'Date: Sat, 29 Nov 2025 10:00:00 +0000',
      `Message-ID: <${Math.random().toString(16).slice(2)}@remote.example>`,
      ...(opts.extra ?? []),
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      opts.body ?? 'Hello from the pipeline test.',
      '',
    ].join('\r\n'),
  );
}

interface Sent {
  mail: Verdict;
  rcpts: (Verdict & { recipient?: AcceptedRecipient })[];
  data: (Verdict & { messageId?: string }) | null;
}

/** One SMTP transaction through the pipeline contract, as the SMTP layer drives it. */
async function send(w: World, s: SmtpSessionInfo, from: string | null, to: string[], raw: Buffer, declaredSize?: number): Promise<Sent> {
  const mail = await w.pipeline.checkSender(s, from, declaredSize);
  if (!mail.ok) return { mail, rcpts: [], data: null };
  const envelope = { mailFrom: from, declaredSize, recipients: [] as AcceptedRecipient[] };
  const rcpts = [];
  for (const address of to) {
    const v = await w.pipeline.checkRecipient(s, envelope, address);
    rcpts.push(v);
    if (v.ok && v.recipient) envelope.recipients.push(v.recipient);
  }
  if (envelope.recipients.length === 0) return { mail, rcpts, data: null };
  // Chunked like a socket would deliver it.
  const chunks: Buffer[] = [];
  for (let i = 0; i < raw.length; i += 16384) chunks.push(raw.subarray(i, i + 16384));
  const data = await w.pipeline.receive(s, envelope, Readable.from(chunks));
  return { mail, rcpts, data };
}

const line = (v: Verdict | null | undefined) => (v?.reply ? formatReply(v.reply) : String(v?.ok));

async function count(db: Database, table: 'messages' | 'folder_entries' | 'queue_jobs'): Promise<number> {
  const r = await db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

async function blobKeys(blobs: BlobStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const b of blobs.list()) keys.push(b.key);
  return keys;
}

/** Entries of a mailbox's folder with their message rows. */
async function folderContent(w: World, address: string, folder = 'INBOX') {
  const mb = await w.tenancy.mailboxes.get(systemScope, address);
  const f = await w.mailboxState.findFolder(tenantScope(mb.tenantId), mb.id, folder);
  assert.ok(f, `folder ${folder} of ${address}`);
  const entries = await w.mailboxState.listEntries(tenantScope(mb.tenantId), f.id);
  return { mailbox: mb, folder: f, entries };
}

async function storedBytes(w: World, tenantId: string, messageId: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of await w.mailboxState.openMessage(tenantScope(tenantId), messageId)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

// ── One shared world for the delivery rules ───────────────────────────────────────────────────

let tdb: TestDatabase;
let removeBlobs: () => Promise<void>;
let spool: { path: string; remove(): void };
let w: World;
let t1: string;
let t2: string;
let alice: AuthenticatedUser;
let admin: AuthenticatedUser;

function authUser(u: { id: string; tenantId: string; email: string; role: string }): AuthenticatedUser {
  return { id: u.id, tenantId: u.tenantId, email: u.email, role: u.role };
}

before(async () => {
  tdb = await freshDatabase();
  const b = await freshBlobStore();
  removeBlobs = b.remove;
  spool = tempDir('mairust-spool-');
  w = buildWorld(tdb.db, b.blobs, join(spool.path, 'spool'));
  const { tenancy } = w;
  t1 = (await tenancy.tenants.create(systemScope, { name: 'acme' })).id;
  t2 = (await tenancy.tenants.create(systemScope, { name: 'globex' })).id;
  await tenancy.domains.add(systemScope, { tenantId: t1, name: 'acme.test' });
  await tenancy.domains.add(systemScope, { tenantId: t1, name: 'catch.test' });
  await tenancy.domains.add(systemScope, { tenantId: t2, name: 'globex.test' });
  const aliceUser = await tenancy.users.add(systemScope, { tenantId: t1, email: 'alice@acme.test', password: 'correct horse battery', role: 'user' });
  const adminUser = await tenancy.users.add(systemScope, { tenantId: t1, email: 'boss@acme.test', password: 'correct horse battery', role: 'tenant_admin' });
  alice = authUser(aliceUser);
  admin = authUser(adminUser);
  for (const a of ['alice', 'bob', 'carol', 'dave']) {
    await tenancy.mailboxes.add(systemScope, { address: `${a}@acme.test`, user: a === 'alice' ? aliceUser.id : undefined });
  }
  await tenancy.mailboxes.add(systemScope, { address: 'boss@acme.test', user: adminUser.id });
  await tenancy.mailboxes.add(systemScope, { address: 'tiny@acme.test', quotaBytes: 600 });
  await tenancy.mailboxes.add(systemScope, { address: 'small@acme.test', quotaBytes: 3000 });
  await tenancy.mailboxes.add(systemScope, { address: 'any@catch.test' });
  await tenancy.domains.setCatchAll(systemScope, 'catch.test', 'any@catch.test');
  await tenancy.mailboxes.add(systemScope, { address: 'gina@globex.test' });
  await tenancy.aliases.add(systemScope, { address: 'team@acme.test', targets: ['bob@acme.test', 'carol@acme.test', 'dave@acme.test'] });
  await tenancy.aliases.add(systemScope, { address: 'al@acme.test', targets: ['alice@acme.test'] });
});

after(async () => {
  await removeBlobs?.();
  await tdb?.drop();
  spool?.remove();
});

/** Files left in a spool directory (none, if it was never needed). */
function spoolFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

afterEach(() => {
  // The spool never leaves a file behind, whatever the outcome.
  if (w) assert.deepEqual(spoolFiles(w.spoolDir), []);
});

describe('MX: recipients', () => {
  test('unknown user in a hosted domain → 550 5.1.1', async () => {
    const r = await send(w, session('mx'), 'x@remote.example', ['nobody@acme.test'], message());
    assert.equal(line(r.rcpts[0]), '550 5.1.1 No such user here');
  });

  test('a domain we do not host, from MX → 554 5.7.1 (never an open relay)', async () => {
    const r = await send(w, session('mx'), 'x@remote.example', ['someone@elsewhere.example'], message());
    assert.equal(line(r.rcpts[0]), '554 5.7.1 Relay access denied');
  });

  test('addresses valid on the wire that can never be ours: relay denied, or unknown user in a hosted domain', async () => {
    // A single-label domain (RFC 5321 allows it; no hosted domain has one) is somebody else's.
    const single = await send(w, session('mx'), 'x@remote.example', ['postmaster@localhost'], message());
    assert.equal(line(single.rcpts[0]), '554 5.7.1 Relay access denied');
    // A quoted local part in a hosted domain is an unknown user there, not a syntax error.
    const quoted = await send(w, session('mx'), 'x@remote.example', ['"john doe"@acme.test'], message());
    assert.equal(line(quoted.rcpts[0]), '550 5.1.1 No such user here');
  });

  test('a malformed address from an authenticated submission client → 553 5.1.3', async () => {
    const r = await send(w, session('submission', alice), 'alice@acme.test', ['no-at-sign'], message());
    assert.equal(line(r.rcpts[0]), '553 5.1.3 Bad destination mailbox address syntax');
  });

  test('alias with three targets → one blob, one message row, three folder entries', async () => {
    const blobsBefore = (await blobKeys(w.blobs)).length;
    const rowsBefore = await count(w.db, 'messages');
    const entriesBefore = await count(w.db, 'folder_entries');
    const r = await send(w, session('mx'), 'x@remote.example', ['team@acme.test'], message({ subject: 'to the team' }));
    assert.equal(line(r.rcpts[0]), '250 2.1.5 Recipient OK');
    assert.deepEqual(r.rcpts[0].recipient?.mailboxIds?.length, 3);
    assert.equal(line(r.data), '250 2.0.0 Message accepted for delivery');
    assert.ok(r.data?.messageId);
    assert.equal((await blobKeys(w.blobs)).length, blobsBefore + 1);
    assert.equal(await count(w.db, 'messages'), rowsBefore + 1);
    assert.equal(await count(w.db, 'folder_entries'), entriesBefore + 3);
    for (const who of ['bob', 'carol', 'dave']) {
      const { entries } = await folderContent(w, `${who}@acme.test`);
      assert.ok(entries.some((e) => e.messageId === r.data!.messageId), who);
    }
  });

  test('an alias and its target in one message give the mailbox one copy', async () => {
    const before = (await folderContent(w, 'alice@acme.test')).entries.length;
    const r = await send(w, session('mx'), 'x@remote.example', ['al@acme.test', 'alice@acme.test'], message());
    assert.equal(line(r.data), '250 2.0.0 Message accepted for delivery');
    assert.equal((await folderContent(w, 'alice@acme.test')).entries.length, before + 1);
  });

  test('recipients of two tenants → one blob, two message rows sharing it', async () => {
    const blobsBefore = (await blobKeys(w.blobs)).length;
    const r = await send(w, session('mx'), 'x@remote.example', ['bob@acme.test', 'gina@globex.test'], message({ subject: 'two tenants' }));
    assert.equal(line(r.data), '250 2.0.0 Message accepted for delivery');
    assert.equal((await blobKeys(w.blobs)).length, blobsBefore + 1);
    const rows = await w.db.kysely.selectFrom('messages').select(['tenant_id', 'blob_key']).where('subject', '=', 'two tenants').execute();
    assert.equal(rows.length, 2);
    assert.deepEqual(rows.map((r) => r.tenant_id).sort(), [t1, t2].sort());
    assert.equal(rows[0].blob_key, rows[1].blob_key);
    const gina = await folderContent(w, 'gina@globex.test');
    assert.equal(gina.entries.length, 1);
  });

  test('plus-addressing delivers to the base mailbox', async () => {
    const r = await send(w, session('mx'), 'x@remote.example', ['carol+news@acme.test'], message({ subject: 'plus' }));
    assert.equal(r.rcpts[0].recipient?.subaddress, 'news');
    assert.equal(line(r.data), '250 2.0.0 Message accepted for delivery');
    const { entries } = await folderContent(w, 'carol@acme.test');
    assert.ok(entries.some((e) => e.messageId === r.data!.messageId));
  });

  test('catch-all takes unknown addresses of its domain', async () => {
    const r = await send(w, session('mx'), 'x@remote.example', ['whoever@catch.test'], message({ subject: 'catch-all' }));
    assert.equal(line(r.data), '250 2.0.0 Message accepted for delivery');
    const { entries } = await folderContent(w, 'any@catch.test');
    assert.ok(entries.some((e) => e.messageId === r.data!.messageId));
  });

  test('the stored blob is Received + the original bytes, byte for byte; forged Authentication-Results removed', async () => {
    const raw = message({ subject: 'bytes', body: 'Grüße, 8bit body\r\nsecond line' });
    const r = await send(w, session('mx'), 'x@remote.example', ['bob@acme.test'], raw);
    const stored = await storedBytes(w, t1, r.data!.messageId!);
    const text = stored.toString('utf8');
    assert.match(text, /^Return-Path: <[^>\r\n]*>\r\nReceived: from client\.example\.net \(\[192\.0\.2\.10\]\)\r\n\tby mx\.pipeline\.test with ESMTP id [0-9a-f]{16}\r\n\tfor <bob@acme\.test>; [A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000\r\n/);
    const receivedLength = text.indexOf('From: ');
    assert.deepEqual(stored.subarray(receivedLength), raw);

    const forged = message({ subject: 'forged', extra: [`Authentication-Results: ${HOST};\r\n dkim=pass header.d=bank.example`, 'Authentication-Results: other.example; spf=pass'] });
    const f = await send(w, session('mx'), 'x@remote.example', ['bob@acme.test'], forged);
    const kept = (await storedBytes(w, t1, f.data!.messageId!)).toString('utf8');
    assert.ok(!kept.includes('bank.example'), 'our authserv-id is removed (RFC 8601 §5)');
    assert.ok(kept.includes('Authentication-Results: other.example; spf=pass\r\n'), 'others are kept');
    const row = await w.db.kysely.selectFrom('messages').select(['structure_json', 'size', 'subject']).where('id', '=', f.data!.messageId!).executeTakeFirstOrThrow();
    assert.equal(row.subject, 'forged');
    assert.equal(Number(row.size), Buffer.byteLength(kept));
    const structure = JSON.parse(row.structure_json!);
    assert.equal(structure.size, Buffer.byteLength(kept), 'the MIME structure indexes the stored bytes');
  });

  test('one log line per message with the pipeline fields', async () => {
    w.logs.length = 0;
    const r = await send(w, session('mx'), 'x@remote.example', ['bob@acme.test'], message());
    const lines = w.logs.filter((l) => l.component === 'pipeline');
    assert.equal(lines.length, 1);
    const l = lines[0];
    assert.equal(l.result, 'accepted');
    assert.deepEqual(l.message_ids, [r.data!.messageId]);
    assert.equal(l.tenant_id, t1);
    assert.equal(l.recipients, 1);
    assert.equal(typeof l.size, 'number');
    assert.equal(typeof l.ms, 'number');
    assert.equal(typeof l.session_id, 'string');
    const exposition = (await w.metrics.render()).body;
    assert.match(exposition, /mairust_inbound_messages_total\{listener="mx",result="accepted",stage="commit"\} [1-9]/);
    assert.match(exposition, /mairust_inbound_duration_seconds_count\{listener="mx"\} [1-9]/);
  });
});

describe('limits', () => {
  test('declared SIZE over the limit at MAIL FROM → 552 5.3.4', async () => {
    const r = await send(w, session('mx'), 'x@remote.example', ['bob@acme.test'], message(), 2_000_001);
    assert.equal(line(r.mail), '552 5.3.4 Message size exceeds fixed maximum message size');
  });

  test('a message over the limit while streaming → 552 5.3.4, nothing stored, spool empty', async () => {
    const rows = await count(w.db, 'messages');
    const r = await send(w, session('mx'), 'x@remote.example', ['bob@acme.test'], message({ body: 'x'.repeat(2_000_001) }));
    assert.equal(line(r.data), '552 5.3.4 Message size exceeds fixed maximum message size');
    assert.equal(await count(w.db, 'messages'), rows);
  });

  test('a large message (spooled to disk) is accepted and its spool file removed', async () => {
    const raw = message({ subject: 'large', body: 'y'.repeat(400_000) });
    const r = await send(w, session('mx'), 'x@remote.example', ['bob@acme.test'], raw);
    assert.equal(line(r.data), '250 2.0.0 Message accepted for delivery');
    const stored = await storedBytes(w, t1, r.data!.messageId!);
    assert.deepEqual(stored.subarray(stored.length - raw.length), raw);
  });

  test('a header section over inbound.max_header_bytes → 552 5.3.4', async () => {
    w.config.max_header_bytes = 8192;
    try {
      const r = await send(w, session('mx'), 'x@remote.example', ['bob@acme.test'], message({ extra: Array.from({ length: 200 }, (_, i) => `X-Filler-${i}: ${'f'.repeat(60)}`) }));
      assert.equal(line(r.data), '552 5.3.4 Message header section exceeds the maximum size');
    } finally {
      w.config.max_header_bytes = DEFAULT_INBOUND_CONFIG.max_header_bytes;
    }
  });
});

describe('quota', () => {
  test('at RCPT with the declared SIZE → 452 4.2.2', async () => {
    const r = await send(w, session('mx'), 'x@remote.example', ['tiny@acme.test'], message(), 5000);
    assert.equal(line(r.rcpts[0]), '452 4.2.2 Mailbox full, try again later');
  });

  test('at commit, when the only recipient is over quota → 452 4.2.2, no rows, no blob', async () => {
    const blobs = (await blobKeys(w.blobs)).length;
    const rows = await count(w.db, 'messages');
    const r = await send(w, session('mx'), 'x@remote.example', ['tiny@acme.test'], message({ body: 'z'.repeat(2000) }));
    assert.equal(line(r.rcpts[0]), '250 2.1.5 Recipient OK', 'no SIZE declared: the early check passes');
    assert.equal(line(r.data), '452 4.2.2 Mailbox full, try again later');
    assert.equal(await count(w.db, 'messages'), rows);
    assert.equal((await blobKeys(w.blobs)).length, blobs);
  });

  test('at commit, with another recipient that has room → delivered to that one only', async () => {
    const before = (await folderContent(w, 'small@acme.test')).entries.length;
    const bob = (await folderContent(w, 'bob@acme.test')).entries.length;
    const r = await send(w, session('mx'), 'x@remote.example', ['small@acme.test', 'bob@acme.test'], message({ body: 'q'.repeat(3500) }));
    assert.equal(line(r.data), '250 2.0.0 Message accepted for delivery');
    assert.equal((await folderContent(w, 'small@acme.test')).entries.length, before);
    assert.equal((await folderContent(w, 'bob@acme.test')).entries.length, bob + 1);
  });
});

describe('submission', () => {
  test('envelope sender not owned → 553 5.7.1; null sender refused; own address and alias accepted', async () => {
    assert.equal(line((await send(w, session('submission', alice), 'bob@acme.test', [], message())).mail), '553 5.7.1 Sender address not owned by the authenticated user');
    assert.equal(line((await send(w, session('submission', alice), 'x@remote.example', [], message())).mail), '553 5.7.1 Sender address not owned by the authenticated user');
    assert.equal(line((await send(w, session('submission', alice), 'someone@catch.test', [], message())).mail), '553 5.7.1 Sender address not owned by the authenticated user');
    assert.equal(line((await send(w, session('submission', alice), null, [], message())).mail), '553 5.7.1 Sender address not owned by the authenticated user');
    assert.equal(line((await send(w, session('submission'), 'alice@acme.test', [], message())).mail), '530 5.7.0 Authentication required');
    assert.equal(line((await send(w, session('submission', alice), 'alice@acme.test', [], message())).mail), '250 2.1.0 Sender OK');
    assert.equal(line((await send(w, session('submission', alice), 'Alice+lists@ACME.test', [], message())).mail), '250 2.1.0 Sender OK');
    assert.equal(line((await send(w, session('submission', alice), 'al@acme.test', [], message())).mail), '250 2.1.0 Sender OK');
    // A tenant admin may use any address of its tenant's domains, not another tenant's.
    assert.equal(line((await send(w, session('submission', admin), 'noreply@acme.test', [], message())).mail), '250 2.1.0 Sender OK');
    assert.equal(line((await send(w, session('submission', admin), 'gina@globex.test', [], message())).mail), '553 5.7.1 Sender address not owned by the authenticated user');
  });

  test('From: header not owned → 553 5.7.1 at the end of DATA, nothing stored', async () => {
    const rows = await count(w.db, 'messages');
    const r = await send(w, session('submission', alice), 'alice@acme.test', ['bob@acme.test'], message({ from: 'Bob <bob@acme.test>' }));
    assert.equal(line(r.data), '553 5.7.1 Sender address not owned by the authenticated user');
    const two = await send(w, session('submission', alice), 'alice@acme.test', ['bob@acme.test'], message({ from: 'alice@acme.test, bob@acme.test' }));
    assert.equal(line(two.data), '553 5.7.1 Sender address not owned by the authenticated user');
    assert.equal(await count(w.db, 'messages'), rows);
  });

  test('remote recipients are queued in `outbound` (visible in `mairust queue list`), local ones delivered, a Sent copy kept', async () => {
    const sentBefore = (await folderContent(w, 'alice@acme.test', 'Sent')).entries.length;
    const blobsBefore = (await blobKeys(w.blobs)).length;
    const raw = message({ from: 'Alice <alice@acme.test>', to: 'friend@remote.example, bob@acme.test', subject: 'outbound' });
    const r = await send(w, session('submission', alice), 'alice@acme.test', ['friend@remote.example', 'other@remote.example', 'bob@acme.test'], raw);
    assert.deepEqual(r.rcpts.map(line), ['250 2.1.5 Recipient OK', '250 2.1.5 Recipient OK', '250 2.1.5 Recipient OK']);
    assert.equal(r.rcpts[0].recipient?.tenantId, undefined);
    assert.equal(line(r.data), '250 2.0.0 Message accepted for delivery');
    assert.equal((await blobKeys(w.blobs)).length, blobsBefore + 1, 'one blob for Sent, the local recipient and the outbound job');

    const sent = await folderContent(w, 'alice@acme.test', 'Sent');
    assert.equal(sent.entries.length, sentBefore + 1);
    const copy = sent.entries.find((e) => e.messageId === r.data!.messageId)!;
    assert.ok(copy.flags.includes('\\Seen'));
    assert.ok((await folderContent(w, 'bob@acme.test')).entries.some((e) => e.messageId === r.data!.messageId));

    const stored = (await storedBytes(w, t1, r.data!.messageId!)).toString('utf8');
    assert.match(stored, /^Received: from client\.example\.net \(\[192\.0\.2\.10\]\)\r\n\tby mx\.pipeline\.test with ESMTPSA id /);
    const ar = stored.indexOf('Authentication-Results: mx.pipeline.test;');
    assert.ok(ar > 0 && ar < stored.indexOf('From: Alice'), 'Authentication-Results between Received and the original header');
    assert.match(stored, /auth=pass smtp\.auth=alice@acme\.test/);
    assert.ok(stored.endsWith(raw.toString('utf8')));

    // The job, as the queue CLI lists it.
    const printed: unknown[] = [];
    const program = new Command('mairust').exitOverride();
    const cli: CliContext = {
      globals: () => ({ json: true }),
      open: async () => ({ queue: w.queue, db: w.db, close: async () => {} }) as unknown as AppContext,
      print: (v) => void printed.push(v),
      fail: (message) => assert.fail(message),
    };
    registerQueueCli(program, cli);
    await program.parseAsync(['queue', 'list', '--queue', 'outbound'], { from: 'user' });
    // The queue record (src/outbound/records.ts) names the stored message, the sender and each
    // remote recipient; the `outbound` job points at it.
    const record = await w.db.kysely.selectFrom('outbound_messages').selectAll().where('message_id', '=', r.data!.messageId!).executeTakeFirstOrThrow();
    assert.equal(record.tenant_id, t1);
    assert.equal(record.mail_from, 'alice@acme.test');
    assert.equal(record.user_id, alice.id);
    assert.equal(record.status, 'queued');
    const rcpts = await w.db.kysely.selectFrom('outbound_recipients').select(['address', 'domain', 'status']).where('outbound_id', '=', record.id).orderBy('address').execute();
    assert.deepEqual(rcpts, [
      { address: 'friend@remote.example', domain: 'remote.example', status: 'pending' },
      { address: 'other@remote.example', domain: 'remote.example', status: 'pending' },
    ]);
    const listed = JSON.stringify(printed);
    assert.ok(listed.includes(record.job_id!), listed);
    const job = (await w.queue.get(record.job_id!))!;
    assert.equal(job.status, 'ready');
    assert.deepEqual(job.payload, { outboundId: record.id, tenantId: t1 });
  });

  test('a suspended tenant cannot send → 550 5.7.1', async () => {
    await w.tenancy.tenants.setStatus(systemScope, t1, 'suspended');
    try {
      const r = await send(w, session('submission', alice), 'alice@acme.test', ['x@remote.example'], message());
      assert.equal(line(r.mail), '550 5.7.1 Sending from this account is temporarily suspended. Please contact your administrator.');
    } finally {
      await w.tenancy.tenants.setStatus(systemScope, t1, 'active');
    }
  });
});

// ── Failures of the stores: each with its own world ───────────────────────────────────────────

describe('store failures', () => {
  test('blob store failing → 451 4.3.0, no messages or folder_entries rows; recovers', async () => {
    const own = await freshDatabase();
    const dir = tempDir('mairust-failing-');
    try {
      let failing: BlobStore;
      let restore: () => Promise<BlobStore>;
      if (shape === 'embedded') {
        const root = join(dir.path, 'blobs');
        failing = createBlobStore({ backend: 'fs', fs: { path: root } });
        // The fs root turned into a file: every put fails with ENOTDIR.
        rmSync(root, { recursive: true, force: true });
        writeFileSync(root, 'not a directory');
        restore = async () => {
          rmSync(root, { force: true });
          return createBlobStore({ backend: 'fs', fs: { path: root } });
        };
      } else {
        // An S3 endpoint at a port where nothing listens.
        const s3 = s3TestSettings();
        failing = createBlobStore({
          backend: 's3',
          s3: { ...s3, endpoint: 'http://127.0.0.1:9', bucket: 'mairust-down', forcePathStyle: true, multipartThresholdBytes: 8388608, partSizeBytes: 8388608, checksumMode: 'WHEN_REQUIRED', createBucket: false },
        });
        restore = async () => (await freshBlobStore()).blobs;
      }
      const fw = buildWorld(own.db, failing, join(dir.path, 'spool'));
      const t = await fw.tenancy.tenants.create(systemScope, { name: 'failing' });
      await fw.tenancy.domains.add(systemScope, { tenantId: t.id, name: 'down.test' });
      await fw.tenancy.mailboxes.add(systemScope, { address: 'u@down.test' });
      const r = await send(fw, session('mx'), 'x@remote.example', ['u@down.test'], message());
      assert.equal(line(r.data), '451 4.3.0 Temporary local problem, please try again later');
      assert.equal(await count(own.db, 'messages'), 0);
      assert.equal(await count(own.db, 'folder_entries'), 0);
      assert.deepEqual(spoolFiles(join(dir.path, 'spool')), []);
      await failing.close();

      const healthy = await restore();
      const ok = await send(buildWorld(own.db, healthy, join(dir.path, 'spool')), session('mx'), 'x@remote.example', ['u@down.test'], message());
      assert.equal(line(ok.data), '250 2.0.0 Message accepted for delivery');
      await healthy.close();
    } finally {
      await own.drop();
      dir.remove();
    }
  });

  test('database closed → 451 4.3.0 at RCPT and at DATA', async () => {
    const own = await freshDatabase();
    const b = await freshBlobStore();
    const dir = tempDir('mairust-dbdown-');
    // A second handle on the same database, closed below (the suite's own handle stays for cleanup).
    const handle = await openDatabase(own.url, { dataDir: dir.path });
    try {
      const fw = buildWorld(handle, b.blobs, join(dir.path, 'spool'));
      const t = await fw.tenancy.tenants.create(systemScope, { name: 'dbdown' });
      await fw.tenancy.domains.add(systemScope, { tenantId: t.id, name: 'dbdown.test' });
      await fw.tenancy.mailboxes.add(systemScope, { address: 'u@dbdown.test' });
      const s = session('mx');
      const envelope = { mailFrom: 'x@remote.example', recipients: [] as AcceptedRecipient[] };
      const accepted = await fw.pipeline.checkRecipient(s, envelope, 'u@dbdown.test');
      assert.equal(line(accepted), '250 2.1.5 Recipient OK');
      envelope.recipients.push(accepted.recipient!);
      await handle.close();
      assert.equal(line(await fw.pipeline.checkRecipient(s, envelope, 'u@dbdown.test')), '451 4.3.0 Temporary local problem, please try again later');
      const data = await fw.pipeline.receive(s, envelope, Readable.from([message()]));
      assert.equal(line(data), '451 4.3.0 Temporary local problem, please try again later');
      assert.equal(await count(own.db, 'messages'), 0);
      assert.deepEqual(await blobKeys(b.blobs), [], 'the database failed before the blob was written');
      assert.deepEqual(spoolFiles(join(dir.path, 'spool')), []);
    } finally {
      await b.remove();
      await own.drop();
      dir.remove();
    }
  });

  test('database failing after the blob is stored → 451 4.3.0, the blob removed, no rows; recovers', async () => {
    const own = await freshDatabase();
    const b = await freshBlobStore();
    const dir = tempDir('mairust-dbfail-');
    try {
      const fw = buildWorld(own.db, b.blobs, join(dir.path, 'spool'));
      const t = await fw.tenancy.tenants.create(systemScope, { name: 'dbfail' });
      await fw.tenancy.domains.add(systemScope, { tenantId: t.id, name: 'dbfail.test' });
      await fw.tenancy.mailboxes.add(systemScope, { address: 'u@dbfail.test' });
      // The messages table vanishes between the quota check and the commit transaction.
      const hide = () => own.db.kysely.schema.alterTable('messages').renameTo('messages_hidden').execute();
      const unhide = () => own.db.kysely.schema.alterTable('messages_hidden').renameTo('messages').execute();
      const s = session('mx');
      const envelope = { mailFrom: 'x@remote.example', recipients: [] as AcceptedRecipient[] };
      envelope.recipients.push((await fw.pipeline.checkRecipient(s, envelope, 'u@dbfail.test')).recipient!);
      await hide();
      let data;
      try {
        data = await fw.pipeline.receive(s, envelope, Readable.from([message()]));
      } finally {
        await unhide();
      }
      assert.equal(line(data), '451 4.3.0 Temporary local problem, please try again later');
      assert.equal(await count(own.db, 'messages'), 0);
      assert.equal(await count(own.db, 'folder_entries'), 0);
      assert.deepEqual(await blobKeys(b.blobs), [], 'the blob of the failed commit is deleted');
      const again = await fw.pipeline.receive(s, envelope, Readable.from([message()]));
      assert.equal(line(again), '250 2.0.0 Message accepted for delivery');
      assert.equal(await count(own.db, 'folder_entries'), 1);
    } finally {
      await b.remove();
      await own.drop();
      dir.remove();
    }
  });
});
