/**
 * Two sessions on one folder (RFC 9051 §5.2, §7.4.1, §7.5.1): what one session changes reaches
 * the other only at a command that may announce it. An expunge is never announced during FETCH,
 * STORE or SEARCH — the expunged message keeps its sequence number and FETCH still answers it
 * from its kept entry — while EXISTS may be; NOOP announces EXPUNGE, EXISTS and flag changes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeKind } from '../../src/store/events/change-bus.js';
import { startImapServer, type ImapTestServer, type ImapWire } from '../support/imap.js';
import { sampleMessage, type TestAccount } from '../support/mail-services.js';
import { shape } from '../support/shape.js';

describe(`IMAP two sessions on one folder (${shape})`, () => {
  let server: ImapTestServer;
  let n = 0;
  let accounts = 0;

  before(async () => {
    server = await startImapServer();
  });
  after(async () => {
    await server.close();
  });

  async function run(wire: ImapWire, command: string) {
    const t = `w${++n}`;
    const r = await wire.command(`${t} ${command}`);
    return { untagged: r.untagged, tagged: r.tagged.slice(t.length + 1) };
  }

  /** Two sessions with INBOX selected over an account with `count` messages. */
  async function pair(count: number) {
    const account: TestAccount = await server.fixture.addAccount(`two${++accounts}@two.test`);
    for (let i = 1; i <= count; i++) await account.deliver(sampleMessage({ subject: `m${i}`, body: `body ${i}` }));
    const a = await server.login(account);
    const b = await server.login(account);
    await run(a, 'SELECT INBOX');
    await run(b, 'SELECT INBOX');
    return { account, a, b };
  }

  /**
   * Resolves once change events of these kinds for the account have reached this process's bus
   * subscribers (the sessions' views are among them), so the next command of a session sees them.
   */
  function events(account: TestAccount, kinds: ChangeKind[]): Promise<void> {
    const waiting = [...kinds];
    return new Promise((resolve) => {
      const off = server.fixture.bus.subscribe(
        (e) => {
          const i = waiting.indexOf(e.kind);
          if (i >= 0) waiting.splice(i, 1);
          if (waiting.length === 0) {
            off();
            resolve();
          }
        },
        { mailboxId: account.mailbox.id },
      );
    });
  }

  test('an expunge in one session reaches the other only at NOOP; FETCH meanwhile answers the expunged message', async () => {
    const { a, b } = await pair(3);
    await run(b, 'STORE 2 +FLAGS.SILENT (\\Deleted)');
    assert.deepEqual((await run(b, 'EXPUNGE')).untagged, ['* 2 EXPUNGE']);

    // A still numbers UID 2 as message 2: FETCH, STORE and SEARCH announce no EXPUNGE.
    let r = await run(a, 'FETCH 2 (UID BODY.PEEK[TEXT])');
    assert.deepEqual(r.untagged, ['* 2 FETCH (UID 2 BODY[TEXT] {8}\r\nbody 2\r\n)']);
    assert.equal(r.tagged, 'OK FETCH completed');
    r = await run(a, 'SEARCH ALL');
    assert.deepEqual(r.untagged, ['* SEARCH 1 3']);
    r = await run(a, 'STORE 3 +FLAGS (\\Flagged)');
    assert.deepEqual(r.untagged, ['* 3 FETCH (FLAGS (\\Flagged))']);

    r = await run(a, 'NOOP');
    assert.deepEqual(r.untagged, ['* 2 EXPUNGE']);
    assert.deepEqual((await run(a, 'FETCH 2 UID')).untagged, ['* 2 FETCH (UID 3)']);
    // B learns of A's flag change.
    assert.deepEqual((await run(b, 'NOOP')).untagged, ['* 2 FETCH (UID 3 FLAGS (\\Flagged))']);
  });

  test('during FETCH a new message is announced with EXISTS (counting the unannounced expunge), the EXPUNGE waits', async () => {
    const { account, a, b } = await pair(3);
    const arrived = events(account, ['expunge', 'append']);
    await run(b, 'STORE 1 +FLAGS.SILENT (\\Deleted)');
    await run(b, 'EXPUNGE');
    await account.deliver(sampleMessage({ subject: 'fresh' }));
    await arrived;
    const r = await run(a, 'FETCH 1:3 (UID)');
    assert.deepEqual(r.untagged, ['* 1 FETCH (UID 1)', '* 2 FETCH (UID 2)', '* 3 FETCH (UID 3)', '* 4 EXISTS']);
    // UID FETCH may announce expunges (RFC 9051 §7.5.1 names only FETCH, STORE and SEARCH).
    const u = await run(a, 'UID FETCH 4 (UID)');
    assert.deepEqual(u.untagged, ['* 4 FETCH (UID 4)', '* 1 EXPUNGE']);
    assert.deepEqual((await run(a, 'FETCH 3 UID')).untagged, ['* 3 FETCH (UID 4)']);
  });

  test('flag changes and new messages from the other session appear at NOOP', async () => {
    const { account, a, b } = await pair(2);
    await run(b, 'STORE 1 +FLAGS.SILENT (\\Seen $Done)');
    await account.deliver(sampleMessage({ subject: 'third' }));
    const r = await run(a, 'NOOP');
    // $Done is new to this session: FLAGS and PERMANENTFLAGS announce it before the FETCH that shows it.
    assert.deepEqual(r.untagged, [
      '* 3 EXISTS',
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Done)',
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Done \\*)] Flags permitted',
      '* 1 FETCH (UID 1 FLAGS (\\Seen $Done))',
    ]);
    assert.deepEqual((await run(a, 'NOOP')).untagged, []);
    // MOVE in one session is an expunge for the other.
    await run(b, 'MOVE 2 Archive');
    assert.deepEqual((await run(a, 'NOOP')).untagged, ['* 2 EXPUNGE']);
  });

  test('a selected folder deleted by another session ends this one with BYE after its response; also during IDLE', async () => {
    const account: TestAccount = await server.fixture.addAccount(`two${++accounts}@two.test`);
    await account.deliver(sampleMessage({ subject: 'doomed' }), { folder: 'Archive' });
    const projects = await server.fixture.state.createFolder(account.scope, account.mailbox.id, 'Projects');
    const a = await server.login(account);
    const b = await server.login(account);
    const idler = await server.login(account);
    await run(a, 'SELECT Projects');
    await run(idler, 'SELECT Projects');
    idler.send('i1 IDLE\r\n');
    assert.equal(await idler.response(), '+ idling');
    const deleted = events(account, ['folder_delete']);
    assert.match((await run(b, 'DELETE Projects')).tagged, /^OK/);
    await deleted;
    const r = await run(a, 'NOOP');
    assert.equal(r.tagged, 'OK NOOP completed');
    assert.equal(await a.response(), '* BYE Selected mailbox was deleted, have to disconnect');
    await a.closed();
    assert.equal(await idler.response(), '* BYE Selected mailbox was deleted, have to disconnect');
    await idler.closed();
    assert.equal(projects.name, 'Projects');
  });
});

