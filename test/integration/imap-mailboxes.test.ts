/**
 * Mailbox commands over real listeners (both shapes): LIST (patterns, reference, LIST-EXTENDED
 * selection and return options, LIST-STATUS, SPECIAL-USE and CHILDREN attributes), LSUB,
 * CREATE/DELETE/RENAME with the "/" hierarchy, protected special folders, SUBSCRIBE, STATUS with
 * SIZE/HIGHESTMODSEQ/DELETED, NAMESPACE, ID, ENABLE and QUOTA.
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
  srv = await startImapServer({ fixture });
});

after(async () => {
  await srv.close();
  await fixture.close();
});

/** A fresh account (its own folders) and a logged-in session. */
async function session(opts: { quotaBytes?: number } = {}): Promise<{ account: TestAccount; w: ImapWire }> {
  // One tenant per account: tenants have a user limit, and the tests stay independent.
  const i = ++n;
  const account = await fixture.addAccount(`user@t${i}.test`, { ...opts, tenant: `t${i}` });
  return { account, w: await srv.login(account) };
}

async function ok(w: ImapWire, command: string): Promise<string[]> {
  const tag = command.split(' ')[0];
  const r = await w.command(command);
  assert.match(r.tagged, new RegExp(`^${tag} OK `), `${command} → ${r.tagged}`);
  return r.untagged;
}

const DEFAULT_LIST = [
  '* LIST (\\HasNoChildren) "/" "INBOX"',
  '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
  '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
  '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
  '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
  '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
];

describe('LIST', () => {
  test('"*" lists every folder with child and special-use attributes', async () => {
    const { w } = await session();
    assert.deepEqual(await ok(w, 'a1 LIST "" "*"'), DEFAULT_LIST);
  });

  test('an empty pattern returns the delimiter and the root', async () => {
    const { w } = await session();
    assert.deepEqual(await ok(w, 'a1 LIST "" ""'), ['* LIST (\\Noselect) "/" ""']);
  });

  test('"%" stays on one level; reference and patterns combine; INBOX is case-insensitive', async () => {
    const { w } = await session();
    await ok(w, 'a1 CREATE Work/Projects/2026');
    assert.deepEqual(await ok(w, 'a2 LIST "" "W%"'), ['* LIST (\\HasChildren) "/" "Work"']);
    assert.deepEqual(await ok(w, 'a3 LIST "" "Work/%"'), ['* LIST (\\HasChildren) "/" "Work/Projects"']);
    assert.deepEqual(await ok(w, 'a4 LIST "Work/" "*"'), [
      '* LIST (\\HasChildren) "/" "Work/Projects"',
      '* LIST (\\HasNoChildren) "/" "Work/Projects/2026"',
    ]);
    assert.deepEqual(await ok(w, 'a5 LIST "" "inbox"'), ['* LIST (\\HasNoChildren) "/" "INBOX"']);
    assert.deepEqual(await ok(w, 'a6 LIST "" "*/2026"'), ['* LIST (\\HasNoChildren) "/" "Work/Projects/2026"']);
    assert.deepEqual(await ok(w, 'a7 LIST "" "Nothing*"'), []);
  });

  test('several patterns (LIST-EXTENDED)', async () => {
    const { w } = await session();
    assert.deepEqual(await ok(w, 'a1 LIST "" ("INBOX" "Sent" "Tr*")'), [DEFAULT_LIST[0], DEFAULT_LIST[4], DEFAULT_LIST[5]]);
  });

  test('selection SUBSCRIBED, RECURSIVEMATCH and return SUBSCRIBED', async () => {
    const { w } = await session();
    await ok(w, 'a1 CREATE Lists/Rust');
    await ok(w, 'a2 CREATE Lists/Go');
    await ok(w, 'a3 SUBSCRIBE Lists/Rust');
    assert.deepEqual(await ok(w, 'a4 LIST (SUBSCRIBED) "" "L*"'), ['* LIST (\\HasNoChildren \\Subscribed) "/" "Lists/Rust"']);
    assert.deepEqual(await ok(w, 'a5 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"').then((l) => l.filter((x) => x.includes('Lists'))), [
      '* LIST (\\HasChildren) "/" "Lists" ("CHILDINFO" ("SUBSCRIBED"))',
    ]);
    assert.deepEqual(await ok(w, 'a6 LIST "" "Lists/*" RETURN (SUBSCRIBED)'), [
      '* LIST (\\HasNoChildren) "/" "Lists/Go"',
      '* LIST (\\HasNoChildren \\Subscribed) "/" "Lists/Rust"',
    ]);
    // Default folders are subscribed from the start.
    assert.deepEqual(await ok(w, 'a7 LIST (SUBSCRIBED) "" "INBOX"'), ['* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"']);
  });

  test('selection SPECIAL-USE lists only special folders', async () => {
    const { w } = await session();
    await ok(w, 'a1 CREATE Plain');
    assert.deepEqual(await ok(w, 'a2 LIST (SPECIAL-USE) "" "*"'), DEFAULT_LIST.slice(1));
    assert.deepEqual(await ok(w, 'a3 LIST "" "Sent" RETURN (SPECIAL-USE CHILDREN)'), [DEFAULT_LIST[4]]);
  });

  test('RETURN (STATUS …) follows each LIST response with its STATUS (LIST-STATUS)', async () => {
    const { account, w } = await session();
    await account.deliver(sampleMessage());
    await account.deliver(sampleMessage(), { flags: ['\\Seen'] });
    assert.deepEqual(await ok(w, 'a1 LIST "" ("INBOX" "Junk") RETURN (STATUS (MESSAGES UNSEEN))'), [
      DEFAULT_LIST[0],
      '* STATUS "INBOX" (MESSAGES 2 UNSEEN 1)',
      DEFAULT_LIST[3],
      '* STATUS "Junk" (MESSAGES 0 UNSEEN 0)',
    ]);
  });

  test('bad options are BAD', async () => {
    const { w } = await session();
    assert.equal((await w.command('a1 LIST (FANCY) "" "*"')).tagged, 'a1 BAD Unknown LIST selection option FANCY');
    assert.equal((await w.command('a2 LIST (RECURSIVEMATCH) "" "*"')).tagged, 'a2 BAD RECURSIVEMATCH needs another selection option');
    assert.equal((await w.command('a3 LIST "" "*" RETURN (FANCY)')).tagged, 'a3 BAD Unknown LIST return option FANCY');
    assert.equal((await w.command('a4 LIST ""')).tagged, 'a4 BAD Missing arguments to LIST');
  });

  test('a pathological pattern answers promptly (no backtracking blow-up)', async () => {
    const { w } = await session();
    const r = await w.command(`a1 LIST "" "${'*a'.repeat(200)}b"`);
    assert.deepEqual(r.untagged, []);
    assert.equal(r.tagged, 'a1 OK LIST completed');
  });
});

describe('LSUB, SUBSCRIBE, UNSUBSCRIBE', () => {
  test('LSUB shows subscribed folders; UNSUBSCRIBE removes them', async () => {
    const { w } = await session();
    await ok(w, 'a1 CREATE News/Tech');
    await ok(w, 'a2 SUBSCRIBE News/Tech');
    assert.deepEqual(await ok(w, 'a3 LSUB "" "News*"'), ['* LSUB () "/" "News/Tech"']);
    // RFC 3501 §6.3.9: "%" reaching a parent of a subscribed folder shows it as \Noselect.
    assert.deepEqual((await ok(w, 'a4 LSUB "" "%"')).filter((l) => l.includes('News')), ['* LSUB (\\Noselect) "/" "News"']);
    await ok(w, 'a5 UNSUBSCRIBE News/Tech');
    assert.deepEqual(await ok(w, 'a6 LSUB "" "News*"'), []);
    assert.equal((await w.command('a7 SUBSCRIBE Nope')).tagged, 'a7 NO [NONEXISTENT] No such mailbox');
  });
});

describe('CREATE, DELETE, RENAME', () => {
  test('CREATE makes missing superiors, drops a trailing delimiter, refuses duplicates and INBOX', async () => {
    const { account, w } = await session();
    await ok(w, 'a1 CREATE a/b/');
    assert.deepEqual(await ok(w, 'a2 LIST "" "a*"'), ['* LIST (\\HasChildren) "/" "a"', '* LIST (\\HasNoChildren) "/" "a/b"']);
    assert.equal((await w.command('a3 CREATE a/b')).tagged, 'a3 NO [ALREADYEXISTS] Mailbox already exists');
    assert.equal((await w.command('a4 CREATE inbox')).tagged, 'a4 NO [ALREADYEXISTS] Mailbox already exists');
    assert.equal((await w.command('a5 CREATE "x//y"')).tagged, 'a5 NO [CANNOT] Invalid mailbox name');
    assert.ok(await account.folder('a/b'));
  });

  test('DELETE: leaf folders go; INBOX, special folders and parents with children stay', async () => {
    const { w } = await session();
    await ok(w, 'a1 CREATE p/q');
    assert.equal((await w.command('a2 DELETE INBOX')).tagged, 'a2 NO [CANNOT] This mailbox cannot be deleted or renamed');
    assert.equal((await w.command('a3 DELETE Trash')).tagged, 'a3 NO [CANNOT] This mailbox cannot be deleted or renamed');
    assert.equal((await w.command('a4 DELETE p')).tagged, 'a4 NO [HASCHILDREN] Mailbox has children; delete them first');
    assert.equal((await w.command('a5 DELETE nope')).tagged, 'a5 NO [NONEXISTENT] No such mailbox');
    await ok(w, 'a6 DELETE p/q');
    await ok(w, 'a7 DELETE p');
    assert.deepEqual(await ok(w, 'a8 LIST "" "p*"'), []);
  });

  test('RENAME moves subfolders along; INBOX, existing targets and unknown sources are refused', async () => {
    const { w } = await session();
    await ok(w, 'a1 CREATE Old/Child');
    await ok(w, 'a2 RENAME Old New/Place');
    assert.deepEqual(await ok(w, 'a3 LIST "" "New*"'), [
      '* LIST (\\HasChildren) "/" "New"',
      '* LIST (\\HasChildren) "/" "New/Place"',
      '* LIST (\\HasNoChildren) "/" "New/Place/Child"',
    ]);
    assert.deepEqual(await ok(w, 'a4 LIST "" "Old*"'), []);
    assert.equal((await w.command('a5 RENAME INBOX Elsewhere')).tagged, 'a5 NO [CANNOT] This mailbox cannot be deleted or renamed');
    assert.equal((await w.command('a6 RENAME New Sent')).tagged, 'a6 NO [ALREADYEXISTS] Mailbox already exists');
    assert.equal((await w.command('a7 RENAME Gone Other')).tagged, 'a7 NO [NONEXISTENT] No such mailbox');
  });
});

describe('STATUS', () => {
  test('MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ RECENT, in the order asked', async () => {
    const { account, w } = await session();
    const m1 = sampleMessage({ subject: 'one' });
    const m2 = sampleMessage({ subject: 'two', body: 'a longer body for a different size' });
    await account.deliver(m1, { flags: ['\\Deleted'] });
    await account.deliver(m2, { flags: ['\\Seen'] });
    const folder = await account.folder('INBOX');
    const size = Buffer.byteLength(m1) + Buffer.byteLength(m2);
    const lines = await ok(w, 'a1 STATUS INBOX (SIZE DELETED MESSAGES UNSEEN UIDNEXT UIDVALIDITY HIGHESTMODSEQ RECENT)');
    assert.deepEqual(lines, [
      `* STATUS "INBOX" (SIZE ${size} DELETED 1 MESSAGES 2 UNSEEN 1 UIDNEXT 3 UIDVALIDITY ${folder.uidValidity} HIGHESTMODSEQ ${folder.highestModseq} RECENT 0)`,
    ]);
    assert.deepEqual(await ok(w, 'a2 STATUS Sent (APPENDLIMIT)'), ['* STATUS "Sent" (APPENDLIMIT 1048576)']);
  });

  test('unknown folder, unknown item, empty list', async () => {
    const { w } = await session();
    assert.equal((await w.command('a1 STATUS Nope (MESSAGES)')).tagged, 'a1 NO [NONEXISTENT] No such mailbox');
    assert.equal((await w.command('a2 STATUS INBOX (COLOUR)')).tagged, 'a2 BAD Unknown status data item COLOUR');
    assert.equal((await w.command('a3 STATUS INBOX ()')).tagged, 'a3 BAD Empty status data item list');
  });
});

describe('NAMESPACE, ID, ENABLE', () => {
  test('NAMESPACE: one personal namespace with "/"', async () => {
    const { w } = await session();
    assert.deepEqual(await ok(w, 'a1 NAMESPACE'), ['* NAMESPACE (("" "/")) NIL NIL']);
  });

  test('ID answers the server name in any state; bad arguments are BAD', async () => {
    const anonymous = await srv.connect();
    assert.deepEqual(await ok(anonymous, 'a1 ID ("name" "test-client" "version" "1.0")'), ['* ID ("name" "MaiRust" "vendor" "MaiRust")']);
    assert.deepEqual(await ok(anonymous, 'a2 ID NIL'), ['* ID ("name" "MaiRust" "vendor" "MaiRust")']);
    assert.equal((await anonymous.command('a3 ID ("odd")')).tagged, 'a3 BAD ID takes up to 30 field/value pairs');
    assert.equal((await anonymous.command('a4 ID yes')).tagged, 'a4 BAD ID takes NIL or a list');
  });

  test('ENABLE lists what it newly enabled; unknown names are ignored; not in the selected state', async () => {
    const { w } = await session();
    assert.deepEqual(await ok(w, 'a1 ENABLE CONDSTORE X-UNKNOWN'), ['* ENABLED CONDSTORE']);
    assert.deepEqual(await ok(w, 'a2 ENABLE CONDSTORE utf8=accept'), ['* ENABLED UTF8=ACCEPT']);
    assert.deepEqual(await ok(w, 'a3 ENABLE IMAP4rev2'), ['* ENABLED IMAP4rev2']);
    assert.equal((await w.command('a4 ENABLE')).tagged, 'a4 BAD Missing capability to ENABLE');
    await ok(w, 'a5 SELECT INBOX');
    assert.equal((await w.command('a6 ENABLE QRESYNC')).tagged, 'a6 BAD Command not valid in this state');
    const anonymous = await srv.connect();
    assert.equal((await anonymous.command('a1 ENABLE CONDSTORE')).tagged, 'a1 BAD Not logged in');
  });
});

describe('QUOTA', () => {
  test('GETQUOTAROOT and GETQUOTA report STORAGE in KiB; SETQUOTA is refused', async () => {
    const { account, w } = await session({ quotaBytes: 100 * 1024 });
    await account.deliver(sampleMessage({ body: 'x'.repeat(3000) }));
    const q = await fixture.state.getQuota(account.scope, account.mailbox.id);
    const expected = `* QUOTA "" (STORAGE ${Math.floor(q.usedBytes / 1024)} 100)`;
    assert.deepEqual(await ok(w, 'a1 GETQUOTAROOT INBOX'), ['* QUOTAROOT "INBOX" ""', expected]);
    assert.deepEqual(await ok(w, 'a2 GETQUOTA ""'), [expected]);
    assert.equal((await w.command('a3 GETQUOTA "other"')).tagged, 'a3 NO [NONEXISTENT] No such quota root');
    assert.equal((await w.command('a4 GETQUOTAROOT Nope')).tagged, 'a4 NO [NONEXISTENT] No such mailbox');
    assert.equal((await w.command('a5 SETQUOTA "" (STORAGE 1)')).tagged, 'a5 NO [NOPERM] Quotas are set by the administrator');
  });

  test('an unlimited mailbox has a root without resources', async () => {
    const { w } = await session();
    assert.deepEqual(await ok(w, 'a1 GETQUOTA ""'), ['* QUOTA "" ()']);
  });
});
