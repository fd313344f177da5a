/**
 * APPEND over real listeners (both shapes): flags and internal date, synchronizing literal and
 * LITERAL+, APPENDUID, TRYCREATE, APPENDLIMIT (TOOBIG, sync and non-sync), OVERQUOTA, literal8 and
 * the UTF8 form, argument errors, EXISTS for the selected folder, and a Japanese folder name with
 * and without UTF8=ACCEPT (modified UTF-7).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mailServicesFixture, sampleMessage, type MailServicesFixture, type TestAccount } from '../support/mail-services.js';
import { startImapServer, type ImapTestServer, type ImapWire } from '../support/imap.js';

let fixture: MailServicesFixture;
let srv: ImapTestServer;
let n = 0;

before(async () => {
  fixture = await mailServicesFixture();
  srv = await startImapServer({ fixture, limits: { maxAppendBytes: 4096 } });
});

after(async () => {
  await srv.close();
  await fixture.close();
});

async function session(opts: { quotaBytes?: number } = {}): Promise<{ account: TestAccount; w: ImapWire }> {
  const i = ++n;
  const account = await fixture.addAccount(`user@a${i}.test`, { ...opts, tenant: `a${i}` });
  return { account, w: await srv.login(account) };
}

const MESSAGE = sampleMessage({ subject: 'appended', messageId: '<append-1@example.net>' });
const SIZE = Buffer.byteLength(MESSAGE);

describe('APPEND', () => {
  test('with flags and a date: APPENDUID, and the entry has both', async () => {
    const { account, w } = await session();
    const r = await w.command(`a1 APPEND INBOX (\\Seen $Work) " 7-Feb-2026 13:45:10 +0900" {${SIZE}}\r\n${MESSAGE}`);
    assert.deepEqual(r.continuations, ['+ Ready for literal data']);
    const inbox = await account.folder('INBOX');
    assert.equal(r.tagged, `a1 OK [APPENDUID ${inbox.uidValidity} 1] APPEND completed`);
    const [entry] = await fixture.state.listEntries(account.scope, inbox.id);
    assert.deepEqual(entry.flags, ['\\Seen', '$Work']);
    assert.equal(entry.internalDate, Date.UTC(2026, 1, 7, 4, 45, 10));
    assert.equal(entry.size, SIZE);
    const stored = await fixture.state.openMessage(account.scope, entry.messageId);
    const chunks: Buffer[] = [];
    for await (const c of stored) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString('utf8'), MESSAGE);
  });

  test('LITERAL+ sends the message without waiting; UIDs go up', async () => {
    const { account, w } = await session();
    const r1 = await w.command(`a1 APPEND Sent {${SIZE}+}\r\n${MESSAGE}`);
    const r2 = await w.command(`a2 APPEND Sent () {${SIZE}+}\r\n${MESSAGE}`);
    const sent = await account.folder('Sent');
    assert.deepEqual(r1.continuations, []);
    assert.equal(r1.tagged, `a1 OK [APPENDUID ${sent.uidValidity} 1] APPEND completed`);
    assert.equal(r2.tagged, `a2 OK [APPENDUID ${sent.uidValidity} 2] APPEND completed`);
  });

  test('literal8 and the UTF8 (…) form (RFC 3516, RFC 6855)', async () => {
    const { account, w } = await session();
    const body = sampleMessage({ subject: '会議のお知らせ', body: '請求書を添付します。' });
    const size = Buffer.byteLength(body);
    const inbox = await account.folder('INBOX');
    assert.equal((await w.command(`a1 APPEND INBOX ~{${size}+}\r\n${body}`)).tagged, `a1 OK [APPENDUID ${inbox.uidValidity} 1] APPEND completed`);
    await w.command('a2 ENABLE UTF8=ACCEPT');
    assert.equal((await w.command(`a3 APPEND INBOX UTF8 (~{${size}+}\r\n${body})`)).tagged, `a3 OK [APPENDUID ${inbox.uidValidity} 2] APPEND completed`);
    const entries = await fixture.state.listEntries(account.scope, inbox.id);
    assert.deepEqual(entries.map((e) => e.size), [size, size]);
  });

  test('a missing folder is NO [TRYCREATE]', async () => {
    const { w } = await session();
    const r = await w.command(`a1 APPEND Nowhere {${SIZE}+}\r\n${MESSAGE}`);
    assert.equal(r.tagged, 'a1 NO [TRYCREATE] No such mailbox');
  });

  test('over APPENDLIMIT: NO [TOOBIG] before the literal (sync), BAD [TOOBIG] and skipped (LITERAL+)', async () => {
    const { account, w } = await session();
    const big = 'x'.repeat(5000);
    const sync = await w.command(`a1 APPEND INBOX {5000}\r\n${big}`);
    assert.deepEqual(sync.continuations, []);
    assert.equal(sync.tagged, 'a1 NO [TOOBIG] Message too big (APPENDLIMIT is 4096 octets)');
    const nonSync = await w.command(`a2 APPEND INBOX {5000+}\r\n${big}`);
    assert.equal(nonSync.tagged, 'a2 BAD [TOOBIG] Message too big (APPENDLIMIT is 4096 octets)');
    assert.equal((await w.command('a3 NOOP')).tagged, 'a3 OK NOOP completed');
    assert.equal((await fixture.state.folderStatus(account.scope, (await account.folder('INBOX')).id)).messages, 0);
  });

  test('over quota: NO [OVERQUOTA]', async () => {
    const { w } = await session({ quotaBytes: 100 });
    const r = await w.command(`a1 APPEND INBOX {${SIZE}+}\r\n${MESSAGE}`);
    assert.equal(r.tagged, 'a1 NO [OVERQUOTA] Quota exceeded');
  });

  test('argument errors', async () => {
    const { w } = await session();
    assert.equal((await w.command(`a1 APPEND INBOX (\\Recent) {${SIZE}+}\r\n${MESSAGE}`)).tagged, 'a1 BAD \\Recent cannot be set');
    assert.match((await w.command(`a2 APPEND INBOX "31-Foo-2026 00:00:00 +0000" {${SIZE}+}\r\n${MESSAGE}`)).tagged, /^a2 BAD /);
    assert.equal((await w.command('a3 APPEND INBOX () "17-Jul-1996 02:44:25 -0700" "a quoted message"')).tagged, 'a3 BAD Expected the message as a literal');
    assert.equal((await w.command('a4 APPEND INBOX')).tagged, 'a4 BAD Missing arguments to APPEND');
    assert.equal((await w.command(`a5 APPEND INBOX {${SIZE}+}\r\n${MESSAGE} extra`)).tagged, 'a5 BAD Too many arguments to APPEND');
    assert.equal((await w.command('a6 APPEND INBOX {0+}\r\n')).tagged, 'a6 NO [CANNOT] Empty message');
    assert.equal((await w.command(`a7 APPEND INBOX (\\Bogus) {${SIZE}+}\r\n${MESSAGE}`)).tagged, 'a7 NO [CANNOT] Invalid flag');
  });

  test('appending to the selected folder announces EXISTS before the tagged OK', async () => {
    const { account, w } = await session();
    await account.deliver(sampleMessage());
    assert.match((await w.command('a1 SELECT INBOX')).tagged, /^a1 OK /);
    const r = await w.command(`a2 APPEND INBOX {${SIZE}+}\r\n${MESSAGE}`);
    assert.ok(r.untagged.includes('* 2 EXISTS'), JSON.stringify(r.untagged));
    assert.match(r.tagged, /^a2 OK \[APPENDUID \d+ 2\] APPEND completed$/);
  });
});

describe('a Japanese folder name', () => {
  // 日本語 in modified UTF-7 (RFC 3501 §5.1.3).
  const MUTF7 = '&ZeVnLIqe-';
  const NAME = '日本語';

  test('created in modified UTF-7, listed as UTF-8 after ENABLE UTF8=ACCEPT', async () => {
    const { account, w } = await session();
    // 日本語/メモ
    assert.match((await w.command(`a1 CREATE ${MUTF7}/&MOEw4g-`)).tagged, /^a1 OK /);
    // The stored name is Unicode.
    assert.equal((await account.folder(`${NAME}/メモ`)).name, `${NAME}/メモ`);
    const rev1 = await w.command(`a2 LIST "" "${MUTF7}*"`);
    assert.deepEqual(rev1.untagged, [`* LIST (\\HasChildren) "/" "${MUTF7}"`, `* LIST (\\HasNoChildren) "/" "${MUTF7}/&MOEw4g-"`]);
    assert.match((await w.command(`a3 APPEND ${MUTF7} {${SIZE}+}\r\n${MESSAGE}`)).tagged, /^a3 OK \[APPENDUID /);
    assert.deepEqual((await w.command(`a4 STATUS ${MUTF7} (MESSAGES)`)).untagged, [`* STATUS "${MUTF7}" (MESSAGES 1)`]);

    const utf8 = await srv.login(account);
    assert.deepEqual((await utf8.command('b1 ENABLE UTF8=ACCEPT')).untagged, ['* ENABLED UTF8=ACCEPT']);
    const listed = await utf8.command(`b2 LIST "" "${NAME}"`);
    assert.deepEqual(listed.untagged, [`* LIST (\\HasChildren) "/" "${NAME}"`]);
    assert.match((await utf8.command(`b3 APPEND "${NAME}" {${SIZE}+}\r\n${MESSAGE}`)).tagged, /^b3 OK \[APPENDUID \d+ 2\]/);
    assert.match((await utf8.command('b4 CREATE "議事録"')).tagged, /^b4 OK /);
    assert.equal((await account.folder('議事録')).name, '議事録');
    // The rev1 session sees the new folder in modified UTF-7.
    assert.deepEqual((await w.command('a5 LIST "" "&i3BOi5My-"')).untagged, ['* LIST (\\HasNoChildren) "/" "&i3BOi5My-"']);
  });

  test('invalid modified UTF-7 is BAD', async () => {
    const { w } = await session();
    assert.match((await w.command('a1 CREATE "&Jjo"')).tagged, /^a1 BAD Invalid mailbox name/);
    assert.match((await w.command('a2 CREATE "日本語"')).tagged, /^a2 BAD Invalid mailbox name/);
  });
});
