/**
 * FETCH and UID FETCH over the wire, byte-exact (RFC 9051 §6.4.5, §7.5.2; RFC 3516 BINARY):
 * FLAGS/UID/INTERNALDATE/RFC822.SIZE, ENVELOPE, BODYSTRUCTURE and BODY, sections of a nested
 * multipart (part numbers, HEADER, TEXT, MIME, HEADER.FIELDS, message/rfc822 parts), partials
 * (`BODY[]<0>` naming), BINARY with literal8, BINARY.SIZE, UNKNOWN-CTE, the implicit \Seen of
 * BODY[…] without PEEK, RFC822.*, sequence errors and a FETCH over several batches.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FETCH_BATCH } from '../../src/protocols/imap/commands/fetch.js';
import { TEXT } from '../../src/protocols/imap/session/replies.js';
import { startImapServer, type ImapTestServer, type ImapWire } from '../support/imap.js';
import type { TestAccount } from '../support/mail-services.js';
import { shape } from '../support/shape.js';

const crlf = (lines: string[]) => lines.join('\r\n');

const SIMPLE = crlf([
  'From: Sender <sender@example.net>',
  'To: alice@fetch.test',
  'Subject: Hello',
  'Date: Mon, 2 Nov 2026 10:00:00 +0000',
  'Message-ID: <m1@example.net>',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Hello there.',
  '',
]);
const SIMPLE_HEADER = SIMPLE.slice(0, SIMPLE.indexOf('\r\n\r\n') + 4);

const MULTI = crlf([
  'From: a@example.net',
  'To: alice@fetch.test',
  'Subject: multi',
  'Message-ID: <m2@example.net>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="XX"',
  '',
  '--XX',
  'Content-Type: text/plain; charset=us-ascii',
  '',
  'part one',
  '--XX',
  'Content-Type: application/octet-stream',
  'Content-Transfer-Encoding: base64',
  '',
  'AAECAwQ=',
  '--XX',
  'Content-Type: message/rfc822',
  '',
  'Subject: inner',
  'From: b@example.net',
  '',
  'inner body',
  '--XX',
  'Content-Type: text/plain',
  'Content-Transfer-Encoding: x-unknown',
  '',
  'weird',
  '--XX--',
  '',
]);

const INTERNAL = Date.UTC(2026, 10, 2, 10, 0, 0);

/** A literal as the wire shows it: `{n}` CRLF and the n octets. */
const lit = (s: string) => `{${Buffer.byteLength(s)}}\r\n${s}`;

describe(`IMAP FETCH (${shape})`, () => {
  let server: ImapTestServer;
  let alice: TestAccount;
  let wire: ImapWire;
  let n = 0;

  before(async () => {
    server = await startImapServer();
    alice = await server.fixture.addAccount('alice@fetch.test');
    await alice.deliver(SIMPLE, { internalDate: INTERNAL }); // uid 1
    await alice.deliver(MULTI, { internalDate: INTERNAL }); // uid 2
    await alice.deliver(SIMPLE, { internalDate: INTERNAL, flags: ['\\Flagged'] }); // uid 3
    wire = await server.login(alice);
    await wire.command('a0 SELECT INBOX');
  });
  after(async () => {
    await server.close();
  });

  async function run(command: string) {
    const t = `f${++n}`;
    const r = await wire.command(`${t} ${command}`);
    return { untagged: r.untagged, tagged: r.tagged.slice(t.length + 1) };
  }

  test('FLAGS, UID, INTERNALDATE, RFC822.SIZE and the FAST macro', async () => {
    const r = await run('FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE)');
    assert.deepEqual(r.untagged, [`* 1 FETCH (UID 1 FLAGS () INTERNALDATE "02-Nov-2026 10:00:00 +0000" RFC822.SIZE ${SIMPLE.length})`]);
    assert.equal(r.tagged, 'OK FETCH completed');
    const fast = await run('FETCH 3 FAST');
    assert.deepEqual(fast.untagged, [`* 3 FETCH (FLAGS (\\Flagged) INTERNALDATE "02-Nov-2026 10:00:00 +0000" RFC822.SIZE ${SIMPLE.length})`]);
  });

  test('ENVELOPE, BODYSTRUCTURE and BODY', async () => {
    const r = await run('FETCH 1 (ENVELOPE BODYSTRUCTURE BODY)');
    assert.deepEqual(r.untagged, [
      '* 1 FETCH (ENVELOPE ("Mon, 2 Nov 2026 10:00:00 +0000" "Hello" (("Sender" NIL "sender" "example.net")) (("Sender" NIL "sender" "example.net")) ' +
        '(("Sender" NIL "sender" "example.net")) ((NIL NIL "alice" "fetch.test")) NIL NIL NIL "<m1@example.net>") ' +
        'BODYSTRUCTURE ("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 14 1 NIL NIL NIL NIL) ' +
        'BODY ("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 14 1))',
    ]);
  });

  test('BODY.PEEK sections of a single-part message, exact bytes, no \\Seen', async () => {
    const r = await run('FETCH 1 (BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1])');
    assert.deepEqual(r.untagged, [
      `* 1 FETCH (BODY[] {${SIMPLE.length}}\r\n${SIMPLE} BODY[HEADER] {${SIMPLE_HEADER.length}}\r\n${SIMPLE_HEADER} ` +
        'BODY[TEXT] {14}\r\nHello there.\r\n BODY[1] {14}\r\nHello there.\r\n)',
    ]);
    const fields = await run('FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject date)]');
    assert.deepEqual(fields.untagged, [
      `* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT DATE)] ${lit('Subject: Hello\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\n')})`,
    ]);
    const not = await run('FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (From To Message-ID MIME-Version Content-Type)]');
    assert.deepEqual(not.untagged, [
      `* 1 FETCH (BODY[HEADER.FIELDS.NOT (FROM TO MESSAGE-ID MIME-VERSION CONTENT-TYPE)] ${lit('Subject: Hello\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\n')})`,
    ]);
    assert.deepEqual((await run('FETCH 1 FLAGS')).untagged, ['* 1 FETCH (FLAGS ())']);
  });

  test('partials: the response names the origin only; past the end is empty', async () => {
    assert.deepEqual((await run('FETCH 1 BODY.PEEK[]<0.10>')).untagged, ['* 1 FETCH (BODY[]<0> {10}\r\nFrom: Send)']);
    assert.deepEqual((await run('FETCH 1 BODY.PEEK[TEXT]<6.100>')).untagged, ['* 1 FETCH (BODY[TEXT]<6> {8}\r\nthere.\r\n)']);
    assert.deepEqual((await run('FETCH 1 BODY.PEEK[]<5000.10>')).untagged, ['* 1 FETCH (BODY[]<5000> {0}\r\n)']);
  });

  test('sections of a nested multipart: parts, MIME, message/rfc822 HEADER/TEXT, a missing part is NIL', async () => {
    const r = await run('FETCH 2 (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2] BODY.PEEK[3.HEADER] BODY.PEEK[3.TEXT] BODY.PEEK[3.1] BODY.PEEK[3.MIME] BODY.PEEK[9])');
    assert.deepEqual(r.untagged, [
      `* 2 FETCH (BODY[1] ${lit('part one')} BODY[1.MIME] ${lit('Content-Type: text/plain; charset=us-ascii\r\n\r\n')} ` +
        `BODY[2] ${lit('AAECAwQ=')} BODY[3.HEADER] ${lit('Subject: inner\r\nFrom: b@example.net\r\n\r\n')} ` +
        `BODY[3.TEXT] ${lit('inner body')} BODY[3.1] ${lit('inner body')} BODY[3.MIME] ${lit('Content-Type: message/rfc822\r\n\r\n')} BODY[9] NIL)`,
    ]);
  });

  test('BINARY decodes base64 and uses literal8 for NUL; BINARY.SIZE; an unknown encoding is NO [UNKNOWN-CTE]', async () => {
    const r = await run('FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1] BINARY.PEEK[2]<1.2>)');
    assert.deepEqual(r.untagged, ['* 2 FETCH (BINARY[2] ~{5}\r\n\u0000\u0001\u0002\u0003\u0004 BINARY.SIZE[2] 5 BINARY[1] {8}\r\npart one BINARY[2]<1> {2}\r\n\u0001\u0002)']);
    const bad = await run('FETCH 2 BINARY.PEEK[4]');
    assert.equal(bad.tagged, 'NO [UNKNOWN-CTE] Cannot decode this part: unknown Content-Transfer-Encoding');
    assert.deepEqual(bad.untagged, []);
  });

  test('BODY[…] without PEEK sets \\Seen and reports the new FLAGS once', async () => {
    const r = await run('FETCH 3 BODY[TEXT]');
    assert.deepEqual(r.untagged, ['* 3 FETCH (BODY[TEXT] {14}\r\nHello there.\r\n FLAGS (\\Seen \\Flagged))']);
    const again = await run('FETCH 3 BODY[TEXT]');
    assert.deepEqual(again.untagged, ['* 3 FETCH (BODY[TEXT] {14}\r\nHello there.\r\n)']);
    const state = await server.fixture.state.getEntry(alice.scope, (await alice.folder('INBOX')).id, 3);
    assert.deepEqual(state?.flags, ['\\Seen', '\\Flagged']);
    // Noted by the view: the NOOP that follows announces nothing.
    assert.deepEqual((await run('NOOP')).untagged, []);
  });

  test('RFC822.HEADER and RFC822.TEXT (the latter sets \\Seen); RFC822.SIZE', async () => {
    await server.fixture.state.setFlags(alice.scope, (await alice.folder('INBOX')).id, [1], 'remove', ['\\Seen']);
    await run('NOOP');
    const r = await run('UID FETCH 1 (RFC822.HEADER RFC822.TEXT)');
    assert.deepEqual(r.untagged, [`* 1 FETCH (UID 1 RFC822.HEADER {${SIMPLE_HEADER.length}}\r\n${SIMPLE_HEADER} RFC822.TEXT {14}\r\nHello there.\r\n FLAGS (\\Seen))`]);
  });

  test('sequence numbers past the end are BAD; UIDs past the end match nothing', async () => {
    assert.equal((await run('FETCH 4 FLAGS')).tagged, 'BAD Sequence number out of range (the mailbox has 3 messages)');
    assert.equal((await run('FETCH 0 FLAGS')).tagged, "BAD 0 is not a valid message number in '0'");
    const uid = await run('UID FETCH 4:10 FLAGS');
    assert.deepEqual(uid.untagged, []);
    assert.equal(uid.tagged, 'OK FETCH completed');
    assert.equal((await run('FETCH 1 (FLAGS BOGUS)')).tagged, "BAD Unknown FETCH data item 'BOGUS'");
    const star = await run('UID FETCH 99:* UID');
    assert.deepEqual(star.untagged, ['* 3 FETCH (UID 3)']);
  });

  test('a message whose blob is gone: the FETCH fails before any literal and the session goes on', async () => {
    const fx = server.fixture;
    const lost = await fx.state.createFolder(alice.scope, alice.mailbox.id, 'Lost');
    const raw = `Subject: lost\r\n\r\nunique ${Date.now()}\r\n`;
    const { messageId } = await fx.state.append(alice.scope, alice.mailbox.id, lost.id, Buffer.from(raw));
    const info = (await fx.state.getMessageContents(alice.scope, [messageId])).get(messageId)!;
    await fx.blobs.delete(info.blobKey);
    const w = await server.login(alice);
    await w.command('l1 SELECT Lost');
    const r = await w.command('l2 FETCH 1 (UID BODY.PEEK[])');
    assert.deepEqual(r.untagged, []);
    // A missing blob is damage (`mairust db check` reports it), not an outage: SERVERBUG, logged.
    assert.equal(r.tagged, `l2 NO [SERVERBUG] ${TEXT.SERVERBUG}`);
    // Metadata still answers, and the connection is in sync.
    const m = await w.command('l3 FETCH 1 (UID RFC822.SIZE)');
    assert.deepEqual(m.untagged, [`* 1 FETCH (UID 1 RFC822.SIZE ${raw.length})`]);
    assert.equal(m.tagged, 'l3 OK FETCH completed');
  });

  test(`UID FETCH 1:* over more than one batch (${FETCH_BATCH}) answers every message in order`, async () => {
    const fx = server.fixture;
    const bulk = await fx.state.createFolder(alice.scope, alice.mailbox.id, 'Bulk');
    const count = FETCH_BATCH + 37;
    for (let i = 0; i < count; i++) {
      await fx.state.append(alice.scope, alice.mailbox.id, bulk.id, Buffer.from(`Subject: ${i}\r\n\r\nx\r\n`));
    }
    const w = await server.login(alice);
    await w.command('b1 SELECT Bulk');
    const r = await w.command('b2 UID FETCH 1:* (RFC822.SIZE)');
    assert.equal(r.untagged.length, count);
    r.untagged.forEach((line, i) => {
      const size = `Subject: ${i}\r\n\r\nx\r\n`.length;
      assert.equal(line, `* ${i + 1} FETCH (UID ${i + 1} RFC822.SIZE ${size})`);
    });
    assert.equal(r.tagged, 'b2 OK FETCH completed');
  });
});
