/**
 * Crash test of inbound SMTP (issue 3; SPEC §3.1 step 6, ARCHITECTURE §1.5): `250` after the end of
 * data means "in the mailbox", so `kill -9` of `mairust serve` in the middle of a stream of messages
 * must not lose or damage any message that got its `250`, and must not store one twice.
 *
 * The real server runs as a child process; a small raw client (test/support/smtp-load-client.ts)
 * streams unique messages over several concurrent MX connections, some reused for many messages and
 * some closed after each, and records a message as acknowledged only when its `250` has been read.
 * Once enough are acknowledged the server is killed with SIGKILL at a moment when other messages
 * are waiting for their final reply (so the kill lands in the middle of commits, not in a quiet
 * moment), restarted on the same data dir / database / bucket, and the store is checked:
 *  - every acknowledged message is in INBOX exactly once (by Message-ID);
 *  - its blob ends with exactly the bytes sent (after dot-unstuffing, RFC 5321 §4.5.2; the server
 *    prepends Received and Authentication-Results) and the sha256 of that suffix matches;
 *    the row's sha256 and size describe the whole blob;
 *  - a message that was sent but not acknowledged is there once or not at all.
 * Then the client re-sends the unacknowledged ones, as an MTA would (RFC 5321 §4.1.1.4: a lost reply
 * means "try again") to the restarted server: each becomes present once more, and no acknowledged
 * message gets a second copy. Finally `mairust db check` must find no message row whose blob is
 * missing (orphan blobs of unacknowledged messages are allowed).
 *
 * What SIGKILL proves: the process dies at an arbitrary instruction, so a `250` written before the
 * commit would show up. It does not cut power: fsync against power loss rests on the adapters.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase, type Database } from '../../src/store/db/database.js';
import { createBlobStore, type BlobStore } from '../../src/store/blob/index.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { runCli, shapeEnv, startServerProcess, waitForReady, type ServerProcess, type ShapeEnv } from '../support/server-process.js';
import { s3TestSettings, shape } from '../support/shape.js';
import { runSmtpLoad, waitForSmtpGreeting, type LoadMessage, type SmtpLoadReport } from '../support/smtp-load-client.js';

const MAILBOX = 'inbox@acme.test';
const SENDER = 'sender@crash.test';
const SESSIONS = 8;
/** Messages per connection, per session: one-shot connections and long reused ones in the same load. */
const PER_CONNECTION = [1, 4, 25];
/** Kill once at least this many are acknowledged (plus a random 0–19, so the point varies)... */
const MIN_ACKNOWLEDGED = 100;
/** ...and at least this many other messages are waiting for their final reply at that moment. */
const MIN_AWAITING_AT_KILL = 2;
/** If that never happens within this many more acknowledgements, kill anyway (and say so). */
const KILL_FALLBACK_AFTER = 300;
/** A load that cannot reach the kill point in this time is broken, not slow. */
const STREAM_TIMEOUT_MS = 45_000;

type State = 'unsent' | 'sent' | 'acknowledged' | 'refused';

interface LedgerEntry {
  msg: LoadMessage;
  /** sha256 of the message bytes as they must be stored (unstuffed, CRLF). */
  sha256: string;
  state: State;
  /** Copies found before the re-send, for entries the client re-sent. */
  copiesBeforeResend?: number;
}

const ledger = new Map<string, LedgerEntry>();

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * A unique message: unique Message-ID and random body, UTF-8 text (8BITMIME), lines that start with
 * `.` (and a line that is only `.`) so dot-stuffing is exercised, and sizes from 600 bytes to 300 KiB
 * (over the pipeline's 256 KiB in-memory spool, so the spool-file path is killed too).
 */
function makeMessage(seq: number): LoadMessage {
  const id = `${seq}.${randomBytes(8).toString('hex')}@crash.test`;
  const size = seq % 32 === 31 ? 300 * 1024 : [600, 2000, 6000, 20_000][seq % 4];
  const lines = [
    `From: Sender <${SENDER}>`,
    `To: <${MAILBOX}>`,
    `Subject: crash test message ${seq}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${id}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    `Body of ${id}`,
    '日本語の本文、メッセージ ' + seq,
    '.a line that starts with a dot',
    '.',
    '..',
  ];
  let length = lines.reduce((n, l) => n + Buffer.byteLength(l) + 2, 0);
  for (let i = 0; length < size; i++) {
    const line = (i % 9 === 0 ? '.' : '') + randomBytes(57).toString('base64');
    lines.push(line);
    length += line.length + 2;
  }
  return { id, mailFrom: SENDER, recipients: [MAILBOX], data: Buffer.from(`${lines.join('\r\n')}\r\n`) };
}

interface StreamResult {
  report: SmtpLoadReport;
  awaitingAtKill: number;
  fallbackKill: boolean;
}

/**
 * Streams new messages; once MIN_ACKNOWLEDGED (+ a random 0–19) are acknowledged, SIGKILLs the
 * server at a random moment (timers 0–25 ms apart, not inside a reply handler, so the kill is not
 * tied to a reply) at which at least MIN_AWAITING_AT_KILL messages wait for their final reply.
 */
async function streamAndKill(server: ServerProcess, port: number): Promise<StreamResult> {
  let seq = 0;
  let acknowledged = 0;
  let killed = false;
  let awaitingAtKill = 0;
  let fallbackKill = false;
  let gaveUp = false;
  const killAt = MIN_ACKNOWLEDGED + Math.floor(Math.random() * 20);
  const kill = () => {
    killed = true;
    load.stop();
    server.child.kill('SIGKILL');
  };
  const tryKill = () => {
    if (killed || gaveUp) return;
    const awaiting = load.awaitingFinalReply();
    fallbackKill = acknowledged >= killAt + KILL_FALLBACK_AFTER;
    if (awaiting < MIN_AWAITING_AT_KILL && !fallbackKill) {
      setTimeout(tryKill, Math.random() * 25);
      return;
    }
    awaitingAtKill = awaiting;
    kill();
  };
  const load = runSmtpLoad({
    port,
    sessions: SESSIONS,
    messagesPerConnection: PER_CONNECTION,
    next: () => {
      const msg = makeMessage(seq++);
      ledger.set(msg.id, { msg, sha256: sha256(msg.data), state: 'unsent' });
      return msg;
    },
    events: {
      sent: (msg) => {
        ledger.get(msg.id)!.state = 'sent';
      },
      acknowledged: (msg) => {
        ledger.get(msg.id)!.state = 'acknowledged';
        if (++acknowledged === killAt) setTimeout(tryKill, Math.random() * 25);
      },
      refused: (msg) => {
        ledger.get(msg.id)!.state = 'refused';
      },
    },
  });
  // A load that never reaches the kill point: end it (the assertion below reports it).
  const timer = setTimeout(() => {
    gaveUp = true;
    load.stop();
    server.child.kill('SIGKILL');
  }, STREAM_TIMEOUT_MS);
  try {
    const report = await load.done;
    if (!killed) {
      // Every session ended (errors?) before the kill point: stop the server and report.
      gaveUp = true;
      server.child.kill('SIGKILL');
    }
    await server.exited;
    assert.ok(killed, `the load ended before the kill point (${acknowledged} acknowledged): ${JSON.stringify(report.errors)}\n${server.output().slice(-4000)}`);
    return { report, awaitingAtKill, fallbackKill };
  } finally {
    clearTimeout(timer);
  }
}

interface StoredCopy {
  blobKey: string;
  sha256: string;
  size: number;
}

function normaliseMessageId(value: string | null): string {
  return (value ?? '').trim().replace(/^<|>$/g, '');
}

describe(`SMTP crash: kill -9 of mairust serve during a stream of messages (${shape})`, { timeout: 180_000 }, () => {
  let s: ShapeEnv;
  let dns: TestDnsServer;
  let server: ServerProcess;
  let db: Database;
  let blobs: BlobStore;

  async function startServer(): Promise<void> {
    server = startServerProcess(s.env);
    await waitForReady(s.httpPort);
    // /health/ready can answer before the SMTP listeners are bound: wait for the greeting too.
    await waitForSmtpGreeting(s.smtpPorts.smtp);
  }

  /** Every live INBOX copy, by Message-ID, read from the database. */
  async function storedCopies(): Promise<Map<string, StoredCopy[]>> {
    const rows = await db.kysely
      .selectFrom('folder_entries as e')
      .innerJoin('folders as f', 'f.id', 'e.folder_id')
      .innerJoin('mailboxes as m', 'm.id', 'e.mailbox_id')
      .innerJoin('messages as msg', 'msg.id', 'e.message_id')
      .select(['msg.message_id_header', 'msg.blob_key', 'msg.sha256', 'msg.size'])
      .where('m.address', '=', MAILBOX)
      .where('f.name', '=', 'INBOX')
      .where('e.deleted_at', 'is', null)
      .execute();
    const byId = new Map<string, StoredCopy[]>();
    for (const r of rows) {
      const id = normaliseMessageId(r.message_id_header);
      const list = byId.get(id) ?? [];
      list.push({ blobKey: r.blob_key, sha256: r.sha256, size: Number(r.size) });
      byId.set(id, list);
    }
    return byId;
  }

  /** The blob of `copy` holds the row's bytes and ends with exactly what was sent. */
  async function assertIntact(entry: LedgerEntry, copy: StoredCopy): Promise<void> {
    const blob = await blobs.getBuffer(copy.blobKey);
    const sent = entry.msg.data;
    assert.equal(sha256(blob), copy.sha256, `${entry.msg.id}: the row's sha256 describes its blob`);
    assert.equal(blob.length, copy.size, `${entry.msg.id}: the row's size is the blob's size`);
    assert.ok(blob.length > sent.length, `${entry.msg.id}: blob of ${blob.length} bytes is shorter than the ${sent.length} sent`);
    const suffix = blob.subarray(blob.length - sent.length);
    assert.equal(sha256(suffix), entry.sha256, `${entry.msg.id}: the stored message differs from the one sent`);
    assert.ok(suffix.equals(sent));
    const prepended = blob.subarray(0, blob.length - sent.length).toString('latin1');
    assert.match(prepended, /^(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)+$/, `${entry.msg.id}: only header fields are prepended`);
  }

  /**
   * The store against the ledger; returns counts for the diagnostics. A re-sent message may have a
   * copy from before the kill (its reply was lost) and one from the re-send, never more.
   */
  async function verifyStore(label: string): Promise<{ acknowledged: number; unacknowledgedPresent: number; unacknowledgedAbsent: number }> {
    const copies = await storedCopies();
    for (const id of copies.keys()) assert.ok(ledger.has(id), `${label}: INBOX holds a message nobody sent: ${id}`);
    let acknowledged = 0;
    let unacknowledgedPresent = 0;
    let unacknowledgedAbsent = 0;
    const toCheck: [LedgerEntry, StoredCopy][] = [];
    for (const entry of ledger.values()) {
      const found = copies.get(entry.msg.id) ?? [];
      if (entry.copiesBeforeResend !== undefined) {
        // Re-sent and acknowledged this time: the re-send added exactly one copy.
        assert.equal(entry.state, 'acknowledged', `${label}: re-send of ${entry.msg.id} was not acknowledged`);
        assert.equal(found.length, entry.copiesBeforeResend + 1, `${label}: ${entry.msg.id} was stored ${found.length} times after re-sending it (before: ${entry.copiesBeforeResend})`);
      } else if (entry.state === 'acknowledged') {
        acknowledged++;
        assert.equal(found.length, 1, `${label}: acknowledged message ${entry.msg.id} is stored ${found.length} times`);
      } else if (entry.state === 'sent') {
        assert.ok(found.length <= 1, `${label}: unacknowledged message ${entry.msg.id} is stored ${found.length} times`);
        if (found.length) unacknowledgedPresent++;
        else unacknowledgedAbsent++;
      } else {
        assert.equal(found.length, 0, `${label}: ${entry.state} message ${entry.msg.id} is stored`);
      }
      for (const copy of found) toCheck.push([entry, copy]);
    }
    // 16 blob reads at a time (S3 in the cluster shape).
    for (let i = 0; i < toCheck.length; i += 16) await Promise.all(toCheck.slice(i, i + 16).map(([e, c]) => assertIntact(e, c)));
    return { acknowledged, unacknowledgedPresent, unacknowledgedAbsent };
  }

  function assertCleanLoad(label: string, r: StreamResult): void {
    const early = r.report.errors.filter((e) => !e.afterStop);
    assert.deepEqual(early, [], `${label}: connections failed before the kill`);
    assert.deepEqual(r.report.refused, [], `${label}: the server refused messages before the kill`);
    assert.ok(!r.fallbackKill, `${label}: never saw ${MIN_AWAITING_AT_KILL} messages waiting for their final reply at once`);
    assert.ok(r.awaitingAtKill >= MIN_AWAITING_AT_KILL);
  }

  before(async () => {
    s = await shapeEnv();
    // SPF and DMARC lookups go to a DNS server on loopback (there is no public DNS here).
    dns = await startDnsServer({ 'crash.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] } });
    writeFileSync(s.env.MAIRUST_CONFIG, `dns:\n  servers: ["${dns.address}"]\n`);
    const cli = async (...args: string[]) => {
      const r = await runCli(args, s.env);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    };
    // The first command migrates the database; then the server starts while the mailbox is created
    // (recipients are looked up at RCPT time, and the load starts only when both are done).
    await cli('tenant', 'add', 'acme');
    const mailbox = (async () => {
      await cli('domain', 'add', 'acme.test', '--tenant', 'acme');
      await cli('mailbox', 'add', MAILBOX);
    })();
    db = await openDatabase(s.env.MAIRUST_DATABASE_URL ?? `sqlite:${join(s.dataDir, 'mairust.db')}`);
    blobs =
      shape === 'embedded'
        ? createBlobStore({ backend: 'fs', fs: { path: join(s.dataDir, 'blobs') } })
        : createBlobStore({
            backend: 's3',
            s3: { ...s3TestSettings(), bucket: s.env.MAIRUST_S3_BUCKET, forcePathStyle: true, checksumMode: 'WHEN_REQUIRED' },
          });
    await Promise.all([mailbox, startServer()]);
  });

  after(async () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) await server.stop();
    await db?.close();
    await blobs?.close();
    await dns?.close();
    await s?.cleanup();
  });

  test('every acknowledged message survives kill -9 exactly once and byte for byte', async (t) => {
    const started = Date.now();
    const r = await streamAndKill(server, s.smtpPorts.smtp);
    const killed = Date.now();
    assertCleanLoad('after the kill', r);
    await startServer();
    const restarted = Date.now();
    const v = await verifyStore('after the kill');
    t.diagnostic(`stream ${killed - started} ms, restart ${restarted - killed} ms, verify ${Date.now() - restarted} ms`);
    assert.ok(v.acknowledged >= MIN_ACKNOWLEDGED);
    t.diagnostic(`${v.acknowledged} acknowledged, ${r.awaitingAtKill} awaiting their final reply at the kill; unacknowledged present ${v.unacknowledgedPresent}, absent ${v.unacknowledgedAbsent}`);
  });

  test('the client re-sends the unacknowledged messages: each is stored once more, no acknowledged one twice', async (t) => {
    const copies = await storedCopies();
    const pending = [...ledger.values()].filter((e) => e.state === 'sent');
    assert.ok(pending.length > 0, 'the kill left messages without a final reply');
    for (const e of pending) e.copiesBeforeResend = copies.get(e.msg.id)?.length ?? 0;
    const queue = pending.map((e) => e.msg);
    const load = runSmtpLoad({
      port: s.smtpPorts.smtp,
      sessions: Math.min(SESSIONS, queue.length),
      messagesPerConnection: [5],
      next: () => queue.shift() ?? null,
      events: {
        acknowledged: (msg) => {
          ledger.get(msg.id)!.state = 'acknowledged';
        },
      },
    });
    const report = await load.done;
    assert.deepEqual(report.errors, []);
    assert.deepEqual(report.refused, []);
    assert.equal(report.acknowledged, pending.length);
    await verifyStore('after the re-send');
    t.diagnostic(`re-sent ${pending.length}: ${pending.filter((e) => e.copiesBeforeResend).length} had been stored before the kill, so they now have two copies (RFC 5321 §6.1 prefers that to a loss)`);
  });

  test('mairust db check: no message row whose blob is missing', async (t) => {
    const r = await runCli(['--json', 'db', 'check'], s.env);
    const report = JSON.parse(r.stdout) as { missingBlobCount: number; orphanBlobCount: number; recentUnreferencedBlobs: number };
    assert.equal(report.missingBlobCount, 0, r.stdout);
    // Orphan blobs (written, never committed: unacknowledged messages) are allowed, nothing else.
    assert.ok(r.code === 0 || (r.code === 1 && report.orphanBlobCount > 0), `exit ${r.code}: ${r.stdout}${r.stderr}`);
    t.diagnostic(`db check: ${report.orphanBlobCount} orphan blobs, ${report.recentUnreferencedBlobs} recent unreferenced blobs, exit ${r.code}`);
  });
});
