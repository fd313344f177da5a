/**
 * The inbound pipeline's filtering stages with the real implementations behind them: email
 * authentication (src/emailauth over src/dns, pointed at a real DNS server on loopback serving
 * test zones) and the spam check (src/spam: built-in rules; rspamd too when MAIRUST_RSPAMD_URL is
 * set). Database and blob store of the current shape, real tenancy / mailbox-state / queue.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { Value } from '@sinclair/typebox/value';
import { freshDatabase, tempDir, type TestDatabase } from '../support/shape.js';
import { freshBlobStore } from '../support/blobs.js';
import { cheapPasswords, plans } from '../support/tenancy-fixtures.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { dnsConfig, emailAuthConfig } from '../fixtures/emailauth/world.js';
import type { BlobStore } from '../../src/store/blob/index.js';
import { MemoryChangeBus } from '../../src/store/events/memory-bus.js';
import { MailboxStateService } from '../../src/core/mailbox-state/service.js';
import { TenancyService } from '../../src/core/tenancy/service.js';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { DatabaseQueue } from '../../src/queue/db-queue.js';
import { createResolver } from '../../src/dns/index.js';
import { verifyMessage } from '../../src/emailauth/index.js';
import { createSpamChecker } from '../../src/spam/index.js';
import { SpamConfigSchema, type SpamConfig } from '../../src/config/sections/spam.js';
import { InboundPipelineImpl } from '../../src/pipeline/inbound/pipeline.js';
import { DEFAULT_INBOUND_CONFIG, type InboundConfig } from '../../src/config/sections/inbound.js';
import type { AcceptedRecipient, SmtpSessionInfo, Verdict } from '../../src/pipeline/inbound/contract.js';
import { formatReply } from '../../src/protocols/smtp/replies.js';

const HOST = 'mx.filters.test';
const CLIENT_IP = '192.0.2.10';
const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

let tdb: TestDatabase;
let blobs: BlobStore;
let removeBlobs: () => Promise<void>;
let dns: TestDnsServer;
let spool: { path: string; remove(): void };
let tenancy: TenancyService;
let mailboxState: MailboxStateService;
let tenantId: string;
const config: InboundConfig = { ...DEFAULT_INBOUND_CONFIG };

function pipelineWith(spam: SpamConfig | null, opts: { emailAuth?: boolean } = {}): InboundPipelineImpl {
  const logger = pino({ level: 'silent' });
  const resolver = createResolver(dnsConfig(dns.address));
  return new InboundPipelineImpl({
    tenancy,
    mailboxState,
    queue: new DatabaseQueue(tdb.db, { nodeId: 'filters-test' }),
    blobs,
    db: tdb.db,
    emailAuth: opts.emailAuth === false ? null : { verify: (input) => verifyMessage(input, { resolver, config: emailAuthConfig() }) },
    spam: spam ? createSpamChecker(spam, { logger }) : null,
    config: () => config,
    hostname: HOST,
    spoolDir: join(spool.path, 'spool'),
    logger,
  });
}

function builtinOnly(): SpamConfig {
  return Value.Default(SpamConfigSchema, {}) as SpamConfig;
}

let counter = 0;
function mx(): SmtpSessionInfo {
  return { id: `f${++counter}`, listener: 'mx', remoteAddress: CLIENT_IP, remotePort: 50000 + counter, helo: 'mail.sender.test', secure: false };
}

function message(opts: { from: string; subject?: string; body?: string; messageId?: boolean }): Buffer {
  return Buffer.from(
    [
      `From: ${opts.from}`,
      'To: user@filters.test',
      `Subject: ${opts.subject ?? 'hello'}`,
      `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
      ...(opts.messageId === false ? [] : [`Message-ID: <${Math.random().toString(16).slice(2)}@sender.test>`]),
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      opts.body ?? 'A perfectly ordinary message.',
      '',
    ].join('\r\n'),
  );
}

async function deliver(p: InboundPipelineImpl, mailFrom: string, raw: Buffer): Promise<Verdict & { messageId?: string }> {
  const s = mx();
  assert.equal((await p.checkSender(s, mailFrom)).ok, true);
  const envelope = { mailFrom, recipients: [] as AcceptedRecipient[] };
  const rcpt = await p.checkRecipient(s, envelope, 'user@filters.test');
  assert.ok(rcpt.ok && rcpt.recipient);
  envelope.recipients.push(rcpt.recipient);
  return p.receive(s, envelope, Readable.from([raw]));
}

/** The folder (INBOX or Junk) holding the message, and its stored text. */
async function whereIs(messageId: string): Promise<{ folder: string; text: string; spamScore: number | null }> {
  const entry = await tdb.db.kysely
    .selectFrom('folder_entries')
    .innerJoin('folders', 'folders.id', 'folder_entries.folder_id')
    .select('folders.name')
    .where('folder_entries.message_id', '=', messageId)
    .executeTakeFirstOrThrow();
  const parts: Buffer[] = [];
  for await (const c of await mailboxState.openMessage(tenantScope(tenantId), messageId)) parts.push(c as Buffer);
  const info = await mailboxState.getMessage(tenantScope(tenantId), messageId);
  return { folder: entry.name, text: Buffer.concat(parts).toString('utf8'), spamScore: info.spamScore };
}

const line = (v: Verdict) => (v.reply ? formatReply(v.reply) : String(v.ok));

before(async () => {
  tdb = await freshDatabase();
  const b = await freshBlobStore();
  blobs = b.blobs;
  removeBlobs = b.remove;
  spool = tempDir('mairust-filters-');
  dns = await startDnsServer();
  // SPF lists another address than the client's: mail from these domains fails SPF, has no
  // DKIM signature, and so fails DMARC; only the policy differs.
  dns.set('quarantine.test', { TXT: ['v=spf1 ip4:203.0.113.1 -all'] });
  dns.set('_dmarc.quarantine.test', { TXT: ['v=DMARC1; p=quarantine'] });
  dns.set('reject.test', { TXT: ['v=spf1 ip4:203.0.113.1 -all'] });
  dns.set('_dmarc.reject.test', { TXT: ['v=DMARC1; p=reject'] });
  dns.set('good.test', { TXT: [`v=spf1 ip4:${CLIENT_IP} -all`] });
  dns.set('_dmarc.good.test', { TXT: ['v=DMARC1; p=reject'] });
  const bus = new MemoryChangeBus();
  mailboxState = new MailboxStateService({ db: tdb.db, blobs, bus });
  tenancy = new TenancyService({
    db: tdb.db,
    plans,
    defaultPlan: 'default',
    createDefaultFolders: async (trx, scope, mailboxId) => void (await mailboxState.createDefaultFolders(scope, mailboxId, trx)),
    passwordOptions: cheapPasswords,
  });
  tenantId = (await tenancy.tenants.create(systemScope, { name: 'filters' })).id;
  await tenancy.domains.add(systemScope, { tenantId, name: 'filters.test' });
  await tenancy.mailboxes.add(systemScope, { address: 'user@filters.test' });
});

after(async () => {
  const dir = join(spool.path, 'spool');
  if (existsSync(dir)) assert.deepEqual(readdirSync(dir), [], 'no spool file left behind');
  await dns?.close();
  await removeBlobs?.();
  await tdb?.drop();
  spool?.remove();
});

describe('email authentication (MX)', () => {
  test('DMARC pass → INBOX; Authentication-Results right after Received, then the original bytes', async () => {
    const raw = message({ from: 'Alice <alice@good.test>' });
    const r = await deliver(pipelineWith(null), 'alice@good.test', raw);
    assert.equal(line(r), '250 2.0.0 Message accepted for delivery');
    const { folder, text } = await whereIs(r.messageId!);
    assert.equal(folder, 'INBOX');
    assert.match(text, /^Return-Path: <[^>\r\n]*>\r\nReceived: from mail\.sender\.test \(\[192\.0\.2\.10\]\)\r\n\tby mx\.filters\.test with ESMTP id [0-9a-f]+\r\n\tfor <user@filters\.test>; [^\r]+\r\nAuthentication-Results: mx\.filters\.test;\r\n/);
    assert.match(text, /spf=pass/);
    assert.match(text, /dmarc=pass/);
    assert.ok(text.endsWith(raw.toString('utf8')), 'the original follows byte for byte');
    const row = await mailboxState.getMessage(tenantScope(tenantId), r.messageId!);
    assert.match(row.authResults ?? '', /^mx\.filters\.test; .*spf=pass/);
  });

  test('DMARC p=quarantine failure → filed into Junk', async () => {
    const r = await deliver(pipelineWith(null), 'bob@quarantine.test', message({ from: 'bob@quarantine.test' }));
    assert.equal(line(r), '250 2.0.0 Message accepted for delivery');
    const { folder, text } = await whereIs(r.messageId!);
    assert.equal(folder, 'Junk');
    assert.match(text, /dmarc=fail/);
  });

  test('DMARC p=reject failure → 550 5.7.1, nothing stored', async () => {
    const before = await tdb.db.kysely.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const r = await deliver(pipelineWith(null), 'eve@reject.test', message({ from: 'eve@reject.test' }));
    assert.equal(line(r), '550 5.7.1 Rejected by DMARC policy');
    const after = await tdb.db.kysely.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    assert.equal(Number(after.n), Number(before.n));
  });

  test('an unreachable DNS server never refuses mail (temperror, accepted)', async () => {
    dns.down = true;
    try {
      const r = await deliver(pipelineWith(null), 'eve@reject.test', message({ from: 'eve@reject.test' }));
      assert.equal(line(r), '250 2.0.0 Message accepted for delivery');
      assert.match((await whereIs(r.messageId!)).text, /temperror/);
    } finally {
      dns.down = false;
    }
  });
});

describe('spam check (built-in rules)', () => {
  test('GTUBE → 550 5.7.1', async () => {
    const r = await deliver(pipelineWith(builtinOnly(), { emailAuth: false }), 'alice@good.test', message({ from: 'alice@good.test', body: GTUBE }));
    assert.equal(line(r), '550 5.7.1 Message rejected as spam');
  });

  test('score over the add-header threshold → Junk, with the X-Spam fields and the score stored', async () => {
    const spammy = message({ from: 'alice@good.test', subject: 'FREE MONEY FOR YOU NOW!!!', body: 'Act now!!! Do not wait!!! Click!!!', messageId: false });
    const r = await deliver(pipelineWith(builtinOnly(), { emailAuth: false }), 'alice@good.test', spammy);
    assert.equal(line(r), '250 2.0.0 Message accepted for delivery');
    const { folder, text, spamScore } = await whereIs(r.messageId!);
    assert.equal(folder, 'Junk');
    assert.match(text, /^Return-Path: <[^>\r\n]*>\r\nReceived: [\s\S]*?\r\nX-Spam-/);
    assert.ok(spamScore !== null && spamScore >= 5, `score ${spamScore}`);
  });

  test('the same with inbound.spam_to_junk off → INBOX', async () => {
    config.spam_to_junk = false;
    try {
      const spammy = message({ from: 'alice@good.test', subject: 'FREE MONEY FOR YOU NOW!!!', body: 'Act now!!! Do not wait!!! Click!!!', messageId: false });
      const r = await deliver(pipelineWith(builtinOnly(), { emailAuth: false }), 'alice@good.test', spammy);
      assert.equal((await whereIs(r.messageId!)).folder, 'INBOX');
    } finally {
      config.spam_to_junk = true;
    }
  });

  test('a clean message → INBOX with its score', async () => {
    const r = await deliver(pipelineWith(builtinOnly(), { emailAuth: false }), 'alice@good.test', message({ from: 'alice@good.test' }));
    const { folder, spamScore } = await whereIs(r.messageId!);
    assert.equal(folder, 'INBOX');
    assert.equal(typeof spamScore, 'number');
  });
});

describe('spam check (rspamd)', { skip: process.env.MAIRUST_RSPAMD_URL ? false : 'MAIRUST_RSPAMD_URL is not set' }, () => {
  test('GTUBE through rspamd → 550 5.7.1', async () => {
    const cfg = builtinOnly();
    cfg.rspamd.url = process.env.MAIRUST_RSPAMD_URL!;
    const r = await deliver(pipelineWith(cfg, { emailAuth: false }), 'alice@good.test', message({ from: 'alice@good.test', body: GTUBE }));
    assert.equal(line(r), '550 5.7.1 Message rejected as spam');
  });

  test('an ordinary message through rspamd → accepted, filed by rspamd\'s action, score stored', async () => {
    const cfg = builtinOnly();
    cfg.rspamd.url = process.env.MAIRUST_RSPAMD_URL!;
    const r = await deliver(pipelineWith(cfg), 'alice@good.test', message({ from: 'Alice <alice@good.test>' }));
    assert.equal(line(r), '250 2.0.0 Message accepted for delivery');
    const where = await whereIs(r.messageId!);
    // Offline, rspamd's host-name rules (HFILTER_*) can push an ordinary message over its
    // add-header threshold; whatever it decides, the filing follows its action.
    assert.match(where.text, /source=rspamd/);
    const flagged = /action="(add header|rewrite subject)"/.test(where.text);
    assert.equal(where.folder, flagged ? 'Junk' : 'INBOX', where.text);
    assert.equal(typeof where.spamScore, 'number');
  });
});
