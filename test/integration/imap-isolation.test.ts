/**
 * Tenant and user isolation of the mail-access protocols (SPEC §9: a mail session opens only the
 * user's own mailbox). Users A1 and A2 share tenant A, B1 is in tenant B. A1's IMAP session tries
 * every command that names a mailbox (SELECT, EXAMINE, STATUS, APPEND, COPY, MOVE, RENAME, DELETE,
 * SUBSCRIBE, LIST/LSUB patterns and references) with A2's and B1's folder names and with names
 * that look like paths into other users' mailboxes (`..`, `/`, `~user`, `#shared`, addresses as
 * prefixes, wildcards, folder ids). The only answers allowed are "does not exist" and empty
 * listings; afterwards A2's and B1's folders and messages are checked through the mailbox-state
 * service to be exactly as before. POP3 shows A1 only A1's INBOX. A user whose own mailbox is
 * disabled, or who has none, cannot log in over IMAP or POP3.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { systemScope } from '../../src/core/scope.js';
import { createPop3Listener, type Pop3Listener } from '../../src/protocols/pop3/listener.js';
import { quote, startImapServer, type ImapTestServer, type ImapWire } from '../support/imap.js';
import { sampleMessage, type MailServicesFixture, type TestAccount } from '../support/mail-services.js';
import { DEFAULT_TEST_LIMITS, loggedIn, Pop3Wire, tlsSession } from '../support/pop3.js';
import { TEST_HOSTNAME, testCertificate } from '../support/smtp-fixture.js';
import { shape } from '../support/shape.js';

const A = { tenant: 'tenant-a' };
const B = { tenant: 'tenant-b' };

/** What a user's mailbox looks like through the mailbox-state service (for before/after comparison). */
async function snapshot(fixture: MailServicesFixture, account: TestAccount) {
  const folders = await fixture.state.listFolders(account.scope, account.mailbox.id);
  const out = [];
  for (const f of folders.sort((x, y) => x.name.localeCompare(y.name))) {
    const entries = await fixture.state.listEntries(account.scope, f.id, { includeDeleted: true });
    out.push({
      id: f.id,
      name: f.name,
      subscribed: f.subscribed,
      uidValidity: f.uidValidity,
      uidNext: f.uidNext,
      highestModseq: f.highestModseq,
      entries: entries.map((e) => ({ uid: e.uid, modseq: e.modseq, flags: [...e.flags].sort(), deletedAt: e.deletedAt, messageId: e.messageId })),
    });
  }
  return out;
}

describe(`IMAP tenant and user isolation (${shape})`, () => {
  let server: ImapTestServer;
  let pop3: Pop3Listener;
  let pop3Port: number;
  let a1: TestAccount;
  let a2: TestAccount;
  let b1: TestAccount;
  let names: string[];
  let before2: Awaited<ReturnType<typeof snapshot>>;
  let beforeB: Awaited<ReturnType<typeof snapshot>>;
  let tagNo = 0;
  const tag = () => `i${++tagNo}`;

  before(async () => {
    server = await startImapServer();
    const fx = server.fixture;
    // POP3 over the same services, so both protocols see the same users and mail.
    const cert = testCertificate();
    pop3 = createPop3Listener({
      implicitTls: false,
      host: '127.0.0.1',
      port: 0,
      hostname: TEST_HOSTNAME,
      services: fx.services,
      tls: { key: cert.key, cert: cert.cert, minVersion: 'TLSv1.2' },
      limits: DEFAULT_TEST_LIMITS,
      logger: fx.logger,
    });
    pop3Port = (await pop3.listen()).port;
    a1 = await fx.addAccount('a1@a.test', A);
    a2 = await fx.addAccount('a2@a.test', A);
    b1 = await fx.addAccount('b1@b.test', B);
    for (const [acct, extra] of [
      [a2, ['Secret', 'Secret/Deep', 'Shared']],
      [b1, ['Secret', 'Bfolder']],
    ] as const) {
      for (const name of extra) await fx.state.createFolder(acct.scope, acct.mailbox.id, name);
      await acct.deliver(sampleMessage({ subject: `inbox of ${acct.email}`, to: acct.email }));
      await acct.deliver(sampleMessage({ subject: `secret of ${acct.email}`, to: acct.email }), { folder: 'Secret' });
    }
    await fx.state.createFolder(a1.scope, a1.mailbox.id, 'Mine');
    await a1.deliver(sampleMessage({ subject: 'a1 inbox', to: a1.email }));
    await a1.deliver(sampleMessage({ subject: 'a1 mine', to: a1.email }), { folder: 'Mine' });

    const folderIds = [
      ...(await fx.state.listFolders(a2.scope, a2.mailbox.id)).map((f) => f.id),
      ...(await fx.state.listFolders(b1.scope, b1.mailbox.id)).map((f) => f.id),
    ];
    names = [
      // Other users' own folder names (A1 has none of these).
      'Secret', 'Secret/Deep', 'Shared', 'Bfolder',
      // Addresses and mailbox ids as prefixes.
      'a2@a.test', 'a2@a.test/INBOX', 'a2@a.test/Secret', 'b1@b.test/INBOX', 'b1@b.test/Secret',
      `${a2.mailbox.id}/INBOX`, `${b1.mailbox.id}/Secret`, 'a2/Secret', 'user/a2/Secret', 'user.a2.Secret',
      'Other Users/a2@a.test/INBOX', '#shared/a2@a.test/INBOX', '#users/a2@a.test/Secret', '~a2/Secret', '~a2@a.test/INBOX', '~b1@b.test/Secret',
      // Relative and absolute-looking paths.
      '../a2@a.test/Secret', '../../b1@b.test/INBOX', 'INBOX/../Secret', 'Mine/../Secret', './Secret', '/Secret', '//a2@a.test/INBOX', '/../a2@a.test/INBOX',
      // Wildcards as names.
      '%', '*', 'Sec%', 'Sec*', '*/Deep', '%/%', 'a2@a.test/*',
      // Other users' folder ids.
      ...folderIds,
    ];
    before2 = await snapshot(fx, a2);
    beforeB = await snapshot(fx, b1);
  });

  after(async () => {
    await pop3?.close(0);
    await server?.close();
  });

  /** Runs `command` and records a mismatch unless the tagged reply matches `expected`. */
  async function expectReply(wire: ImapWire, command: string, expected: RegExp, problems: string[]): Promise<void> {
    const t = tag();
    const r = await wire.command(`${t} ${command}`);
    const reply = r.tagged.slice(t.length + 1);
    if (!expected.test(reply)) problems.push(`${command} → ${reply}`);
    const leaked = r.untagged.filter((l) => /secret of|inbox of|Bfolder|Shared|Deep/.test(l));
    if (leaked.length) problems.push(`${command} leaked: ${leaked.join(' | ')}`);
  }

  test('SELECT, EXAMINE, STATUS, DELETE, RENAME, SUBSCRIBE of foreign names: NO [NONEXISTENT]', async () => {
    const wire = await server.login(a1);
    const problems: string[] = [];
    for (const name of names) {
      const q = quote(name);
      await expectReply(wire, `SELECT ${q}`, /^NO \[NONEXISTENT\]/, problems);
      await expectReply(wire, `EXAMINE ${q}`, /^NO \[NONEXISTENT\]/, problems);
      await expectReply(wire, `STATUS ${q} (MESSAGES UIDNEXT UIDVALIDITY)`, /^NO \[NONEXISTENT\]/, problems);
      await expectReply(wire, `DELETE ${q}`, /^NO \[NONEXISTENT\]/, problems);
      await expectReply(wire, `RENAME ${q} "Stolen"`, /^NO \[NONEXISTENT\]/, problems);
      await expectReply(wire, `SUBSCRIBE ${q}`, /^NO \[NONEXISTENT\]/, problems);
    }
    assert.deepEqual(problems, []);
    // Still usable and still A1's: a failed SELECT leaves nothing selected, INBOX opens.
    const t = tag();
    const sel = await wire.command(`${t} SELECT INBOX`);
    assert.match(sel.tagged, new RegExp(`^${t} OK \\[READ-WRITE\\]`));
    assert.ok(sel.untagged.includes('* 1 EXISTS'), sel.untagged.join('\n'));
  });

  test('APPEND, COPY and MOVE into foreign names: NO [TRYCREATE], and nothing leaves A1', async () => {
    const wire = await server.login(a1);
    const problems: string[] = [];
    const t0 = tag();
    assert.match((await wire.command(`${t0} SELECT INBOX`)).tagged, /OK/);
    const msg = 'From: a1@a.test\r\nSubject: planted\r\n\r\nplanted\r\n';
    for (const name of names) {
      const q = quote(name);
      await expectReply(wire, `APPEND ${q} {${Buffer.byteLength(msg)}}\r\n${msg}`, /^NO \[TRYCREATE\]/, problems);
      await expectReply(wire, `UID COPY 1:* ${q}`, /^NO \[TRYCREATE\]/, problems);
      await expectReply(wire, `COPY 1 ${q}`, /^NO \[TRYCREATE\]/, problems);
      await expectReply(wire, `UID MOVE 1:* ${q}`, /^NO \[TRYCREATE\]/, problems);
    }
    assert.deepEqual(problems, []);
    assert.equal((await server.fixture.state.listUids(a1.scope, (await a1.folder('INBOX')).id)).length, 1, 'A1 keeps its message');
  });

  test('LIST and LSUB with foreign names, references and patterns: only A1 own folders, never another user', async () => {
    const wire = await server.login(a1);
    const problems: string[] = [];
    const own = ['Archive', 'Drafts', 'INBOX', 'Junk', 'Mine', 'Sent', 'Trash'];

    const listed = async (command: string) => {
      const t = tag();
      const r = await wire.command(`${t} ${command}`);
      if (!r.tagged.startsWith(`${t} OK`)) problems.push(`${command} → ${r.tagged}`);
      return r.untagged
        .filter((l) => /^\* (LIST|LSUB) /.test(l))
        .map((l) => l.replace(/^\* (LIST|LSUB) \(.*?\) (?:"\/"|NIL) /, '').replace(/ \(.*$/, '').replace(/^"(.*)"$/, '$1'));
    };

    assert.deepEqual((await listed('LIST "" "*"')).sort(), own);
    assert.deepEqual((await listed('LIST "" "%"')).sort(), own);
    assert.deepEqual((await listed('LSUB "" "*"')).sort(), own);
    assert.deepEqual((await listed('LIST (SUBSCRIBED) "" "*"')).sort(), own);
    assert.deepEqual((await listed('LIST "" "*" RETURN (STATUS (MESSAGES))')).sort(), own);

    const empty: [string, string][] = [
      ['', 'Secret*'], ['', '*Secret*'], ['', '*Deep'], ['', 'Shared'], ['', 'Bfolder'], ['', '%/%'],
      ['a2@a.test/', '*'], ['a2@a.test', '*'], ['b1@b.test/', '%'], ['../', '*'], ['..', '*'], ['/', '*'], ['/', '%'],
      ['~a2', '*'], ['~a2@a.test/', '*'], ['#shared', '*'], ['#shared/', '*'], ['#users', '*'], ['Other Users/', '*'],
      ['', '~a2/*'], ['', 'a2@a.test/*'], ['', '../*'], ['', '/*'], ['', '//*'], ['', 'Other Users/*'], ['', '#shared/*'],
      ['Secret', '*'], ['Secret/', '%'], ['INBOX/../', '*'], ['', `${a2.mailbox.id}*`], ['', `*${b1.mailbox.id}*`],
    ];
    for (const [ref, pattern] of empty) {
      for (const verb of ['LIST', 'LSUB']) {
        const got = await listed(`${verb} ${quote(ref)} ${quote(pattern)}`);
        if (got.length) problems.push(`${verb} ${quote(ref)} ${quote(pattern)} listed ${got.join(', ')}`);
      }
    }
    assert.deepEqual(problems, []);

    // RFC 2342: only the personal namespace exists; no "other users" or "shared" namespace.
    const t = tag();
    const ns = await wire.command(`${t} NAMESPACE`);
    assert.match(ns.tagged, new RegExp(`^${t} OK`));
    assert.deepEqual(ns.untagged, ['* NAMESPACE (("" "/")) NIL NIL']);
  });

  test("CREATE and RENAME with foreign-looking names only ever touch A1's own mailbox", async (t0) => {
    // Such names are legal folder names of A1's own (RFC 9051 §5.1): the server may create them or
    // refuse them, but never in another user's mailbox. The snapshot test below checks A2 and B1.
    const targets = [
      'a2@a.test/Secret/X', 'b1@b.test/INBOX/X', '../a2@a.test/X', '../../b1@b.test/X', '/X', '//a2@a.test/X',
      '~a2/X', '#shared/a2@a.test/X', 'Other Users/a2@a.test/X', `${a2.mailbox.id}/X`, 'INBOX/../Secret/X',
    ];
    let wire = await server.login(a1);
    const created: string[] = [];
    for (const [i, name] of targets.entries()) {
      if (i % 5 === 0) {
        wire.destroy();
        wire = await server.login(a1);
      }
      const c = tag();
      const r = await wire.command(`${c} CREATE ${quote(name)}`);
      assert.match(r.tagged, new RegExp(`^${c} (OK|NO|BAD)`));
      if (r.tagged.startsWith(`${c} OK`)) created.push(name);
      const s = tag();
      assert.match((await wire.command(`${s} CREATE "Scratch"`)).tagged, new RegExp(`^${s} OK`));
      const m = tag();
      const renamed = await wire.command(`${m} RENAME "Scratch" ${quote(`${name}-renamed`)}`);
      if (renamed.tagged.startsWith(`${m} OK`)) created.push(`${name}-renamed`);
      else {
        const d = tag();
        assert.match((await wire.command(`${d} DELETE "Scratch"`)).tagged, new RegExp(`^${d} OK`));
      }
    }
    t0.diagnostic(`created as A1's own: ${created.join(', ') || 'none'}`);
    // Whatever was created is A1's: LIST shows it under the name given, and A1 can delete it again.
    const t = tag();
    const listed = (await wire.command(`${t} LIST "" "*"`)).untagged.join('\n');
    for (const name of created) {
      assert.ok(listed.includes(`"${name}"`) || listed.endsWith(` ${name}`) || listed.includes(` ${name}\n`), `${name} is listed as A1's own: ${listed}`);
    }
    // Deepest first, so parents created on the way can go too.
    const mine = (await server.fixture.state.listFolders(a1.scope, a1.mailbox.id)).map((f) => f.name);
    const own = new Set(['Archive', 'Drafts', 'INBOX', 'Junk', 'Mine', 'Sent', 'Trash']);
    for (const name of mine.filter((n) => !own.has(n)).sort((x, y) => y.split('/').length - x.split('/').length)) {
      const d = tag();
      assert.match((await wire.command(`${d} DELETE ${quote(name)}`)).tagged, new RegExp(`^${d} OK`), `DELETE ${name}`);
    }
    wire.destroy();
  });

  test("POP3: A1 sees only A1's INBOX (STAT, LIST, UIDL, RETR, TOP); other numbers do not exist", async () => {
    const inbox = await a1.folder('INBOX');
    const [entry] = await server.fixture.state.listEntries(a1.scope, inbox.id);
    const { c, status } = await loggedIn(pop3Port, a1.email, a1.password);
    try {
      assert.equal(status, `+OK Mailbox open, 1 messages (${entry.size} octets)`);
      assert.equal(await c.command('STAT'), `+OK 1 ${entry.size}`);
      assert.deepEqual((await c.multi('LIST')).lines, [`1 ${entry.size}`]);
      const uidl = await c.multi('UIDL');
      assert.equal(uidl.lines.length, 1);
      const retr = await c.command('RETR 1');
      assert.equal(retr, `+OK ${entry.size} octets`);
      assert.match((await c.lines()).join('\r\n'), /^From: .*\r\nTo: a1@a\.test\r\nSubject: a1 inbox\r\n/);
      for (const cmd of ['RETR 2', 'LIST 2', 'TOP 2 0', 'DELE 2', 'UIDL 2', 'RETR 0', 'RETR 3']) {
        assert.equal(await c.command(cmd), '-ERR No such message', cmd);
      }
      // Marking and un-marking changes nothing anywhere (RSET before QUIT).
      assert.match(await c.command('DELE 1'), /^\+OK/);
      assert.match(await c.command('RSET'), /^\+OK/);
      assert.match(await c.command('QUIT'), /^\+OK/);
    } finally {
      c.destroy();
    }
    assert.equal((await server.fixture.state.listUids(a1.scope, inbox.id)).length, 1);
  });

  test("A2's and B1's folders and messages are exactly as before; A1 got no new folder", async () => {
    assert.deepEqual(await snapshot(server.fixture, a2), before2);
    assert.deepEqual(await snapshot(server.fixture, b1), beforeB);
    const mine = (await server.fixture.state.listFolders(a1.scope, a1.mailbox.id)).map((f) => f.name).sort();
    assert.deepEqual(mine, ['Archive', 'Drafts', 'INBOX', 'Junk', 'Mine', 'Sent', 'Trash']);
  });

  test('a user whose own mailbox is disabled, or who has none, cannot log in: NO [AUTHORIZATIONFAILED]', async () => {
    const fx = server.fixture;
    const disabled = await fx.addAccount('disabled@a.test', A);
    await fx.test.db.kysely.updateTable('mailboxes').set({ status: 'disabled' }).where('id', '=', disabled.mailbox.id).execute();
    await fx.tenancy.users.add(systemScope, { tenantId: a1.user.tenantId, email: 'nobox@a.test', password: a1.password });
    for (const email of ['disabled@a.test', 'nobox@a.test']) {
      const wire = await server.connect();
      const r = await wire.command(`n1 LOGIN ${quote(email)} ${quote(a1.password)}`);
      assert.match(r.tagged, /^n1 NO \[AUTHORIZATIONFAILED\]/, `${email}: ${r.tagged}`);
      const sel = await wire.command('n2 SELECT INBOX');
      assert.match(sel.tagged, /^n2 (BAD|NO)/, 'still not authenticated');
      wire.destroy();

      const c: Pop3Wire = await tlsSession(pop3Port);
      try {
        assert.equal(await c.command(`USER ${email}`), '+OK Send your password');
        assert.match(await c.command(`PASS ${a1.password}`), /^-ERR \[SYS\/PERM\] /, `${email} over POP3`);
        assert.match(await c.command('STAT'), /^-ERR /, 'still in the AUTHORIZATION state');
      } finally {
        c.destroy();
      }
    }
  });
});
