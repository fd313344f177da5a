/**
 * CONDSTORE and QRESYNC over the wire (RFC 7162): FETCH … (CHANGEDSINCE m), STORE …
 * (UNCHANGEDSINCE m) with `[MODIFIED set]` (UIDs for UID STORE, sequence numbers for STORE),
 * .SILENT still reporting MODSEQ, SELECT (QRESYNC (uidvalidity modseq [known-uids])) with
 * VANISHED (EARLIER) and FETCH of changed messages, UID FETCH … (CHANGEDSINCE m VANISHED), and
 * VANISHED in place of EXPUNGE once QRESYNC is enabled.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startImapServer, type ImapTestServer, type ImapWire } from '../support/imap.js';
import { sampleMessage, type TestAccount } from '../support/mail-services.js';
import { shape } from '../support/shape.js';

describe(`IMAP CONDSTORE / QRESYNC (${shape})`, () => {
  let server: ImapTestServer;
  let n = 0;
  let accounts = 0;

  before(async () => {
    server = await startImapServer();
  });
  after(async () => {
    await server.close();
  });

  async function account(count: number): Promise<TestAccount> {
    const a = await server.fixture.addAccount(`cs${++accounts}@condstore.test`);
    for (let i = 1; i <= count; i++) await a.deliver(sampleMessage({ subject: `m${i}` }));
    return a;
  }

  async function run(wire: ImapWire, command: string) {
    const t = `k${++n}`;
    const r = await wire.command(`${t} ${command}`);
    return { untagged: r.untagged, tagged: r.tagged.slice(t.length + 1) };
  }

  async function modseqs(a: TestAccount): Promise<Map<number, number>> {
    const entries = await server.fixture.state.listEntries(a.scope, (await a.folder('INBOX')).id);
    return new Map(entries.map((e) => [e.uid, e.modseq]));
  }

  test('FETCH (CHANGEDSINCE m) answers only messages changed since, with MODSEQ', async () => {
    const a = await account(3);
    const wire = await server.login(a);
    await run(wire, 'SELECT INBOX');
    const before = (await a.folder('INBOX')).highestModseq;
    await server.fixture.state.setFlags(a.scope, (await a.folder('INBOX')).id, [2], 'add', ['\\Answered']);
    await run(wire, 'NOOP');
    const ms = await modseqs(a);
    const r = await run(wire, `FETCH 1:* (FLAGS) (CHANGEDSINCE ${before})`);
    assert.deepEqual(r.untagged, [`* 2 FETCH (UID 2 FLAGS (\\Answered) MODSEQ (${ms.get(2)}))`]);
    const m = await run(wire, 'UID FETCH 3 (MODSEQ)');
    assert.deepEqual(m.untagged, [`* 3 FETCH (UID 3 MODSEQ (${ms.get(3)}))`]);
  });

  test('STORE (UNCHANGEDSINCE m): MODIFIED lists the messages that changed since; .SILENT still reports MODSEQ', async () => {
    const a = await account(3);
    const wire = await server.login(a);
    await run(wire, 'ENABLE CONDSTORE');
    await run(wire, 'SELECT INBOX');
    const ms = await modseqs(a);
    // Message 2 changes after the client read its MODSEQ.
    await server.fixture.state.setFlags(a.scope, (await a.folder('INBOX')).id, [2], 'add', ['$Other']);
    let r = await run(wire, `UID STORE 1:3 (UNCHANGEDSINCE ${ms.get(3)}) +FLAGS (\\Seen)`);
    const after = await modseqs(a);
    assert.deepEqual(r.untagged.filter((l) => !l.includes('$Other')), [
      `* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (${after.get(1)}))`,
      `* 3 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (${after.get(3)}))`,
    ]);
    assert.equal(r.tagged, 'OK [MODIFIED 2] Conditional STORE failed for some messages');
    await run(wire, 'NOOP');
    // Both changed after the first delivery's MODSEQ.
    r = await run(wire, `STORE 2:3 (UNCHANGEDSINCE ${ms.get(1)}) +FLAGS.SILENT (\\Flagged)`);
    assert.deepEqual(r.untagged, []);
    assert.equal(r.tagged, 'OK [MODIFIED 2:3] Conditional STORE failed for some messages');
    r = await run(wire, `STORE 1 (UNCHANGEDSINCE ${after.get(1)}) +FLAGS.SILENT (\\Flagged)`);
    const last = await modseqs(a);
    assert.deepEqual(r.untagged, [`* 1 FETCH (UID 1 MODSEQ (${last.get(1)}))`]);
    assert.equal(r.tagged, 'OK STORE completed');
  });

  test('SELECT (QRESYNC …): VANISHED (EARLIER) for expunged UIDs and FETCH for changed ones', async () => {
    const a = await account(4);
    const inbox = await a.folder('INBOX');
    const known = inbox.highestModseq;
    const state = server.fixture.state;
    await state.setFlags(a.scope, inbox.id, [2], 'add', ['\\Deleted']);
    await state.expunge(a.scope, inbox.id);
    await state.setFlags(a.scope, inbox.id, [3], 'add', ['\\Seen']);
    await a.deliver(sampleMessage({ subject: 'new' })); // uid 5
    const ms = await modseqs(a);
    const now = await a.folder('INBOX');

    const wire = await server.login(a);
    await run(wire, 'ENABLE QRESYNC');
    let r = await run(wire, `SELECT INBOX (QRESYNC (${inbox.uidValidity} ${known}))`);
    assert.deepEqual(r.untagged.slice(-3), [
      '* VANISHED (EARLIER) 2',
      `* 2 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (${ms.get(3)}))`,
      `* 4 FETCH (UID 5 FLAGS () MODSEQ (${ms.get(5)}))`,
    ]);
    assert.ok(r.untagged.includes(`* OK [HIGHESTMODSEQ ${now.highestModseq}] Highest`));
    assert.equal(r.tagged, 'OK [READ-WRITE] SELECT completed');

    // With known UIDs the answer is the known UIDs that are gone, whatever the MODSEQ.
    r = await run(wire, `EXAMINE INBOX (QRESYNC (${inbox.uidValidity} ${now.highestModseq} 1:4,7))`);
    assert.equal(r.untagged[0], '* OK [CLOSED] Previous mailbox closed');
    assert.deepEqual(r.untagged.slice(-1), ['* VANISHED (EARLIER) 2']);

    // Another UIDVALIDITY: the client must resynchronise fully, nothing incremental is sent.
    r = await run(wire, `EXAMINE INBOX (QRESYNC (${inbox.uidValidity + 1} ${known}))`);
    assert.equal(r.untagged.some((l) => l.startsWith('* VANISHED') || l.includes('FETCH')), false);
    assert.equal((await run(wire, `SELECT INBOX (QRESYNC (${inbox.uidValidity} ${known} 1:*))`)).tagged, 'BAD "*" and "$" are not allowed in QRESYNC UID sets');
  });

  test('UID FETCH … (CHANGEDSINCE m VANISHED); VANISHED needs QRESYNC and UID FETCH', async () => {
    const a = await account(3);
    const inbox = await a.folder('INBOX');
    const known = inbox.highestModseq;
    const wire = await server.login(a);
    assert.equal((await run(wire, 'SELECT INBOX')).tagged, 'OK [READ-WRITE] SELECT completed');
    assert.equal((await run(wire, `UID FETCH 1:* FLAGS (CHANGEDSINCE ${known} VANISHED)`)).tagged, 'BAD VANISHED needs ENABLE QRESYNC');

    const q = await server.login(a);
    await run(q, 'ENABLE QRESYNC');
    await run(q, 'SELECT INBOX');
    const state = server.fixture.state;
    // Expunged by another client before this session ever saw the change announced:
    await state.setFlags(a.scope, inbox.id, [1], 'add', ['\\Deleted']);
    await state.expunge(a.scope, inbox.id);
    await run(q, 'NOOP'); // * VANISHED 1 announced here
    await state.setFlags(a.scope, inbox.id, [3], 'add', ['\\Flagged']);
    await run(q, 'NOOP');
    const ms = await modseqs(a);
    const r = await run(q, `UID FETCH 1:* FLAGS (CHANGEDSINCE ${known} VANISHED)`);
    assert.deepEqual(r.untagged, ['* VANISHED (EARLIER) 1', `* 2 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (${ms.get(3)}))`]);
    assert.equal((await run(q, `FETCH 1:* FLAGS (CHANGEDSINCE ${known} VANISHED)`)).tagged, 'BAD VANISHED is only allowed with UID FETCH');
  });

  test('with QRESYNC, expunges by others arrive as VANISHED, flag changes with MODSEQ', async () => {
    const a = await account(3);
    const inbox = await a.folder('INBOX');
    const wire = await server.login(a);
    await run(wire, 'ENABLE QRESYNC');
    await run(wire, 'SELECT INBOX');
    const state = server.fixture.state;
    await state.setFlags(a.scope, inbox.id, [1, 3], 'add', ['\\Deleted']);
    await state.expunge(a.scope, inbox.id);
    await state.setFlags(a.scope, inbox.id, [2], 'add', ['\\Seen']);
    const ms = await modseqs(a);
    const r = await run(wire, 'NOOP');
    assert.deepEqual(r.untagged, ['* VANISHED 1,3', `* 1 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (${ms.get(2)}))`]);
  });
});
