/**
 * COPY/UID COPY with COPYUID (RFC 4315 §3), MOVE/UID MOVE (RFC 6851: untagged COPYUID, then
 * EXPUNGE or, with QRESYNC, VANISHED), EXPUNGE/UID EXPUNGE (RFC 9051 §6.4.3, RFC 4315 §2.1: each
 * EXPUNGE renumbers the messages after it), CLOSE (silent expunge) and UNSELECT (none); TRYCREATE
 * and OVERQUOTA.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startImapServer, type ImapTestServer, type ImapWire } from '../support/imap.js';
import { sampleMessage, type TestAccount } from '../support/mail-services.js';
import { shape } from '../support/shape.js';

describe(`IMAP COPY / MOVE / EXPUNGE / CLOSE (${shape})`, () => {
  let server: ImapTestServer;
  let n = 0;
  let accounts = 0;

  before(async () => {
    server = await startImapServer();
  });
  after(async () => {
    await server.close();
  });

  /** A fresh account with `count` messages in INBOX and a session that selected it. */
  async function setup(count: number, opts: { quotaBytes?: number; enable?: string } = {}) {
    const account = await server.fixture.addAccount(`user${++accounts}@copy.test`, { quotaBytes: opts.quotaBytes });
    for (let i = 1; i <= count; i++) await account.deliver(sampleMessage({ subject: `m${i}` }));
    const wire = await server.login(account);
    if (opts.enable) await wire.command(`e0 ENABLE ${opts.enable}`);
    await wire.command('e1 SELECT INBOX');
    return { account, wire };
  }

  async function run(wire: ImapWire, command: string) {
    const t = `c${++n}`;
    const r = await wire.command(`${t} ${command}`);
    return { untagged: r.untagged, tagged: r.tagged.slice(t.length + 1) };
  }

  async function uidsIn(account: TestAccount, folder: string): Promise<number[]> {
    return server.fixture.state.listUids(account.scope, (await account.folder(folder)).id);
  }

  test('COPY answers COPYUID with source and destination UIDs in order', async () => {
    const { account, wire } = await setup(3);
    const archive = await account.folder('Archive');
    let r = await run(wire, 'COPY 1,3 Archive');
    assert.deepEqual(r.untagged, []);
    assert.equal(r.tagged, `OK [COPYUID ${archive.uidValidity} 1,3 1:2] COPY completed`);
    r = await run(wire, 'UID COPY 2:3 Archive');
    assert.equal(r.tagged, `OK [COPYUID ${archive.uidValidity} 2:3 3:4] COPY completed`);
    assert.deepEqual(await uidsIn(account, 'Archive'), [1, 2, 3, 4]);
    assert.deepEqual(await uidsIn(account, 'INBOX'), [1, 2, 3]);
    // Into the selected folder itself: the new messages are announced with EXISTS.
    r = await run(wire, 'COPY 1 INBOX');
    const inbox = await account.folder('INBOX');
    assert.deepEqual(r.untagged, ['* 4 EXISTS']);
    assert.equal(r.tagged, `OK [COPYUID ${inbox.uidValidity} 1 4] COPY completed`);
  });

  test('COPY/MOVE to a missing folder is NO [TRYCREATE]; nothing to copy is OK; quota is NO [OVERQUOTA]', async () => {
    const { wire } = await setup(2, { quotaBytes: 700 });
    assert.equal((await run(wire, 'COPY 1 Nowhere')).tagged, 'NO [TRYCREATE] No such mailbox');
    assert.equal((await run(wire, 'UID MOVE 1 Nowhere')).tagged, 'NO [TRYCREATE] No such mailbox');
    assert.equal((await run(wire, 'UID COPY 50:60 Archive')).tagged, 'OK COPY completed (no messages)');
    assert.equal((await run(wire, 'COPY 1:2 Archive')).tagged, 'NO [OVERQUOTA] Quota exceeded');
    assert.equal((await run(wire, 'COPY 1')).tagged, 'BAD Missing arguments');
  });

  test('MOVE: untagged COPYUID, then EXPUNGE responses that renumber, then the tagged OK', async () => {
    const { account, wire } = await setup(4);
    const trash = await account.folder('Trash');
    const r = await run(wire, 'MOVE 2,4 Trash');
    assert.deepEqual(r.untagged, [`* OK [COPYUID ${trash.uidValidity} 2,4 1:2] Moved`, '* 2 EXPUNGE', '* 3 EXPUNGE']);
    assert.equal(r.tagged, 'OK MOVE completed');
    assert.deepEqual(await uidsIn(account, 'INBOX'), [1, 3]);
    assert.deepEqual(await uidsIn(account, 'Trash'), [1, 2]);
    // The view followed: message 2 is UID 3 now.
    assert.deepEqual((await run(wire, 'FETCH 2 UID')).untagged, ['* 2 FETCH (UID 3)']);
  });

  test('UID MOVE with QRESYNC enabled announces VANISHED', async () => {
    const { account, wire } = await setup(3, { enable: 'QRESYNC' });
    const archive = await account.folder('Archive');
    const r = await run(wire, 'UID MOVE 1:2 Archive');
    assert.deepEqual(r.untagged, [`* OK [COPYUID ${archive.uidValidity} 1:2 1:2] Moved`, '* VANISHED 1:2']);
  });

  test('EXPUNGE removes \\Deleted messages, each EXPUNGE shifting the next; UID EXPUNGE only its set', async () => {
    const { account, wire } = await setup(6);
    await run(wire, 'STORE 2,4,5 +FLAGS.SILENT (\\Deleted)');
    let r = await run(wire, 'UID EXPUNGE 4:5');
    assert.deepEqual(r.untagged, ['* 4 EXPUNGE', '* 4 EXPUNGE']);
    assert.equal(r.tagged, 'OK EXPUNGE completed');
    await run(wire, 'STORE 3 +FLAGS.SILENT (\\Deleted)');
    r = await run(wire, 'EXPUNGE');
    assert.deepEqual(r.untagged, ['* 2 EXPUNGE', '* 2 EXPUNGE']);
    assert.deepEqual(await uidsIn(account, 'INBOX'), [1, 6]);
    assert.equal((await run(wire, 'EXPUNGE extra')).tagged, 'BAD EXPUNGE takes no arguments');
  });

  test('CLOSE expunges silently and leaves the selected state; UNSELECT and CLOSE after EXAMINE expunge nothing', async () => {
    const { account, wire } = await setup(3);
    await run(wire, 'STORE 1 +FLAGS.SILENT (\\Deleted)');
    let r = await run(wire, 'UNSELECT');
    assert.deepEqual(r.untagged, []);
    assert.equal(r.tagged, 'OK UNSELECT completed');
    assert.deepEqual(await uidsIn(account, 'INBOX'), [1, 2, 3]);
    await run(wire, 'EXAMINE INBOX');
    assert.equal((await run(wire, 'CLOSE')).tagged, 'OK CLOSE completed');
    assert.deepEqual(await uidsIn(account, 'INBOX'), [1, 2, 3]);
    await run(wire, 'SELECT INBOX');
    r = await run(wire, 'CLOSE');
    assert.deepEqual(r.untagged, []);
    assert.equal(r.tagged, 'OK CLOSE completed');
    assert.deepEqual(await uidsIn(account, 'INBOX'), [2, 3]);
    assert.equal((await run(wire, 'FETCH 1 FLAGS')).tagged, 'BAD No mailbox selected');
  });
});
