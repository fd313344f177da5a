/**
 * SELECT and EXAMINE over the wire (RFC 9051 §6.3.2–6.3.3, RFC 3501 §6.3.1 for IMAP4rev1 clients,
 * RFC 7162 §3.1.8 CONDSTORE parameter): the exact untagged responses for rev1 and rev2 clients,
 * READ-WRITE / READ-ONLY, `[CLOSED]` when a folder was selected, a failed SELECT leaving no folder
 * selected, parameter errors, and folder names in modified UTF-7 and UTF-8.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeMailboxName } from '../../src/protocols/imap/parser/mailbox-name.js';
import { quote, startImapServer, type ImapTestServer, type ImapWire } from '../support/imap.js';
import { sampleMessage, type TestAccount } from '../support/mail-services.js';
import { shape } from '../support/shape.js';

describe(`IMAP SELECT / EXAMINE (${shape})`, () => {
  let server: ImapTestServer;
  let alice: TestAccount;
  let uidValidity: number;
  let highest: number;
  let n = 0;
  const tag = () => `s${++n}`;

  before(async () => {
    server = await startImapServer();
    alice = await server.fixture.addAccount('alice@select.test');
    await alice.deliver(sampleMessage({ subject: 'one' }), { flags: ['\\Seen'] });
    await alice.deliver(sampleMessage({ subject: 'two' }));
    await alice.deliver(sampleMessage({ subject: 'three' }));
    await server.fixture.state.createFolder(alice.scope, alice.mailbox.id, '日本語フォルダ');
    const inbox = await alice.folder('INBOX');
    uidValidity = inbox.uidValidity;
    highest = inbox.highestModseq;
  });
  after(async () => {
    await server.close();
  });

  async function run(wire: ImapWire, command: string) {
    const t = tag();
    const r = await wire.command(`${t} ${command}`);
    return { untagged: r.untagged, tagged: r.tagged.slice(t.length + 1) };
  }

  test('keywords in use in the folder are listed in FLAGS and PERMANENTFLAGS (EXAMINE: FLAGS only)', async () => {
    const bob = await server.fixture.addAccount('bob@select.test');
    await bob.deliver(sampleMessage({ subject: 'k1' }), { flags: ['$Work', '\\Seen'] });
    await bob.deliver(sampleMessage({ subject: 'k2' }), { flags: ['todo', '$Work'] });
    const gone = await bob.deliver(sampleMessage({ subject: 'k3' }), { flags: ['expunged-only'] });
    const inbox = await bob.folder('INBOX');
    await server.fixture.state.deleteMessages(bob.scope, inbox.id, [gone.uid]);
    const wire = await server.login(bob);
    const r = await run(wire, 'SELECT INBOX');
    assert.equal(r.untagged[0], '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work todo)');
    assert.equal(r.untagged[1], '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work todo \\*)] Flags permitted');
    const e = await run(wire, 'EXAMINE INBOX');
    assert.ok(e.untagged.includes('* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work todo)'));
    assert.ok(e.untagged.includes('* OK [PERMANENTFLAGS ()] No permanent flags permitted'));
  });

  test('IMAP4rev1 SELECT: FLAGS, PERMANENTFLAGS, EXISTS, RECENT, UNSEEN, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ', async () => {
    const wire = await server.login(alice);
    const r = await run(wire, 'SELECT INBOX');
    assert.deepEqual(r.untagged, [
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)',
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted',
      '* 3 EXISTS',
      '* 0 RECENT',
      '* OK [UNSEEN 2] Message 2 is the first unseen',
      `* OK [UIDVALIDITY ${uidValidity}] UIDs valid`,
      '* OK [UIDNEXT 4] Predicted next UID',
      `* OK [HIGHESTMODSEQ ${highest}] Highest`,
    ]);
    assert.equal(r.tagged, 'OK [READ-WRITE] SELECT completed');
  });

  test('EXAMINE is read-only: PERMANENTFLAGS () and STORE/EXPUNGE/MOVE refused', async () => {
    const wire = await server.login(alice);
    const r = await run(wire, 'EXAMINE inbox');
    assert.equal(r.untagged[1], '* OK [PERMANENTFLAGS ()] No permanent flags permitted');
    assert.equal(r.tagged, 'OK [READ-ONLY] EXAMINE completed');
    assert.equal((await run(wire, 'STORE 1 +FLAGS (\\Deleted)')).tagged, 'NO [READ-ONLY] The mailbox is read-only');
    assert.equal((await run(wire, 'EXPUNGE')).tagged, 'NO [READ-ONLY] The mailbox is read-only');
    assert.equal((await run(wire, 'MOVE 1 Trash')).tagged, 'NO [READ-ONLY] The mailbox is read-only');
    // FETCH BODY[] of an EXAMINEd folder does not set \Seen.
    await run(wire, 'FETCH 2 BODY[]');
    const f = await run(wire, 'FETCH 2 FLAGS');
    assert.deepEqual(f.untagged, ['* 2 FETCH (FLAGS ())']);
  });

  test('IMAP4rev2: no RECENT or UNSEEN, a LIST response with the special-use attribute', async () => {
    const wire = await server.login(alice);
    await run(wire, 'ENABLE IMAP4rev2');
    const r = await run(wire, 'SELECT Sent');
    const sent = await alice.folder('Sent');
    assert.deepEqual(r.untagged, [
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)',
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted',
      '* 0 EXISTS',
      `* OK [UIDVALIDITY ${sent.uidValidity}] UIDs valid`,
      '* OK [UIDNEXT 1] Predicted next UID',
      `* OK [HIGHESTMODSEQ ${sent.highestModseq}] Highest`,
      '* LIST (\\Sent) "/" "Sent"',
    ]);
  });

  test('selecting another folder sends [CLOSED] first; a failed SELECT leaves nothing selected', async () => {
    const wire = await server.login(alice);
    await run(wire, 'SELECT INBOX');
    const second = await run(wire, 'EXAMINE Trash');
    assert.equal(second.untagged[0], '* OK [CLOSED] Previous mailbox closed');
    assert.equal(second.tagged, 'OK [READ-ONLY] EXAMINE completed');
    const failed = await run(wire, 'SELECT Nowhere');
    assert.deepEqual(failed.untagged, ['* OK [CLOSED] Previous mailbox closed']);
    assert.equal(failed.tagged, 'NO [NONEXISTENT] No such mailbox');
    assert.equal((await run(wire, 'FETCH 1 FLAGS')).tagged, 'BAD No mailbox selected');
    // Not selected: no [CLOSED] before the next SELECT.
    const again = await run(wire, 'SELECT INBOX');
    assert.equal(again.untagged[0], '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)');
  });

  test('SELECT (CONDSTORE) turns MODSEQ on in FETCH responses', async () => {
    const wire = await server.login(alice);
    const r = await run(wire, 'SELECT INBOX (CONDSTORE)');
    assert.equal(r.tagged, 'OK [READ-WRITE] SELECT completed');
    const f = await run(wire, 'FETCH 1 (FLAGS)');
    assert.match(f.untagged[0], /^\* 1 FETCH \(UID 1 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)$/);
  });

  test('parameter errors: unknown parameter, QRESYNC without ENABLE, missing name', async () => {
    const wire = await server.login(alice);
    assert.equal((await run(wire, 'SELECT INBOX (FOO)')).tagged, 'BAD Unknown SELECT parameter FOO');
    assert.equal((await run(wire, `SELECT INBOX (QRESYNC (${uidValidity} 1))`)).tagged, 'BAD QRESYNC parameter without ENABLE QRESYNC');
    assert.equal((await run(wire, 'SELECT')).tagged, 'BAD Missing mailbox name');
  });

  test('folder names in modified UTF-7 and, after ENABLE UTF8=ACCEPT, in UTF-8', async () => {
    const wire = await server.login(alice);
    const name = encodeMailboxName('日本語フォルダ', false);
    assert.match(name, /^&[A-Za-z0-9+,]+-$/);
    const mutf7 = await run(wire, `EXAMINE ${name}`);
    assert.equal(mutf7.tagged, 'OK [READ-ONLY] EXAMINE completed');
    const utf8 = await server.login(alice);
    await run(utf8, 'ENABLE UTF8=ACCEPT');
    const r = await run(utf8, `SELECT ${quote('日本語フォルダ')}`);
    assert.equal(r.tagged, 'OK [READ-WRITE] SELECT completed');
  });
});
