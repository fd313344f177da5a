/**
 * STORE and UID STORE over the wire (RFC 9051 §6.4.6): +FLAGS, -FLAGS, FLAGS (replace) with system
 * flags and keywords, .SILENT, the FETCH response for every message of the set, UID for UID STORE,
 * \Recent ignored, `$` from SEARCH … RETURN (SAVE), and the errors: invalid flag, too many
 * keywords (the mailbox-state limit), syntax.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mailboxStateLimits } from '../../src/core/mailbox-state/index.js';
import { startImapServer, type ImapTestServer, type ImapWire } from '../support/imap.js';
import { sampleMessage, type TestAccount } from '../support/mail-services.js';
import { shape } from '../support/shape.js';

describe(`IMAP STORE (${shape})`, () => {
  let server: ImapTestServer;
  let alice: TestAccount;
  let wire: ImapWire;
  let n = 0;

  before(async () => {
    server = await startImapServer();
    alice = await server.fixture.addAccount('alice@store.test');
    for (let i = 0; i < 4; i++) await alice.deliver(sampleMessage({ subject: `m${i}` }));
    wire = await server.login(alice);
    await wire.command('a0 SELECT INBOX');
  });
  after(async () => {
    await server.close();
  });

  async function run(command: string) {
    const t = `t${++n}`;
    const r = await wire.command(`${t} ${command}`);
    return { untagged: r.untagged, tagged: r.tagged.slice(t.length + 1) };
  }

  async function flagsOf(uid: number): Promise<string[] | undefined> {
    const entry = await server.fixture.state.getEntry(alice.scope, (await alice.folder('INBOX')).id, uid);
    return entry?.flags;
  }

  test('+FLAGS, -FLAGS and FLAGS answer with the new flags of every message of the set', async () => {
    let r = await run('STORE 1:2 +FLAGS (\\Seen \\Flagged)');
    assert.deepEqual(r.untagged, ['* 1 FETCH (FLAGS (\\Seen \\Flagged))', '* 2 FETCH (FLAGS (\\Seen \\Flagged))']);
    assert.equal(r.tagged, 'OK STORE completed');
    // Already in the wanted state: still answered (RFC 9051 §6.4.6).
    r = await run('STORE 1 +FLAGS \\Seen');
    assert.deepEqual(r.untagged, ['* 1 FETCH (FLAGS (\\Seen \\Flagged))']);
    r = await run('STORE 2 -FLAGS (\\Flagged)');
    assert.deepEqual(r.untagged, ['* 2 FETCH (FLAGS (\\Seen))']);
    r = await run('STORE 3 FLAGS ($Work \\Answered work2)');
    // New keywords are announced in FLAGS and PERMANENTFLAGS before the FETCH that shows them (RFC 9051 §7.3.5).
    assert.deepEqual(r.untagged, [
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work work2)',
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work work2 \\*)] Flags permitted',
      '* 3 FETCH (FLAGS (\\Answered $Work work2))',
    ]);
    r = await run('STORE 1 +FLAGS.SILENT (work2 $Later)');
    assert.deepEqual(r.untagged, [
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Later $Work work2)',
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Later $Work work2 \\*)] Flags permitted',
    ], 'announced even with .SILENT; known ones are not repeated');
    await run('STORE 1 -FLAGS.SILENT (work2 $Later)');
    assert.deepEqual(await flagsOf(3), ['\\Answered', '$Work', 'work2']);
    r = await run('STORE 3 FLAGS ()');
    assert.deepEqual(r.untagged, ['* 3 FETCH (FLAGS ())']);
  });

  test('.SILENT answers nothing; UID STORE includes the UID', async () => {
    let r = await run('STORE 4 +FLAGS.SILENT (\\Draft)');
    assert.deepEqual(r.untagged, []);
    assert.deepEqual(await flagsOf(4), ['\\Draft']);
    r = await run('UID STORE 4 -FLAGS (\\Draft)');
    assert.deepEqual(r.untagged, ['* 4 FETCH (UID 4 FLAGS ())']);
    r = await run('UID STORE 90:99 +FLAGS (\\Seen)');
    assert.deepEqual(r.untagged, []);
    assert.equal(r.tagged, 'OK STORE completed');
    // The view noted its own changes: NOOP announces nothing.
    assert.deepEqual((await run('NOOP')).untagged, []);
  });

  test('\\Recent is never stored; $ is the saved search result', async () => {
    let r = await run('STORE 4 +FLAGS (\\Recent)');
    assert.deepEqual(r.untagged, ['* 4 FETCH (FLAGS ())']);
    await run('UID SEARCH RETURN (SAVE) UID 2,4');
    r = await run('STORE $ +FLAGS.SILENT (\\Answered)');
    assert.equal(r.tagged, 'OK STORE completed');
    assert.deepEqual(await flagsOf(2), ['\\Seen', '\\Answered']);
    assert.deepEqual(await flagsOf(4), ['\\Answered']);
  });

  test('errors: unknown system flag, too many keywords, bad syntax, bad sequence', async () => {
    assert.equal((await run('STORE 1 +FLAGS (\\Bogus)')).tagged, 'NO [CANNOT] Invalid flag');
    const many = Array.from({ length: mailboxStateLimits.MAX_KEYWORDS_PER_ENTRY + 1 }, (_, i) => `k${i}`).join(' ');
    assert.equal((await run(`STORE 1 FLAGS (${many})`)).tagged, 'NO [LIMIT] Limit exceeded: keywords per message');
    assert.equal((await run('STORE 1 FLAGZ (\\Seen)')).tagged, "BAD Unknown STORE data item 'FLAGZ'");
    assert.equal((await run('STORE 1 +FLAGS')).tagged, 'BAD Missing flags');
    assert.equal((await run('STORE 9 +FLAGS (\\Seen)')).tagged, 'BAD Sequence number out of range (the mailbox has 4 messages)');
  });
});
