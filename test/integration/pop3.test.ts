/**
 * The POP3 server over real services of the current shape (SPEC §5.4, §9, §10), spoken to with a
 * raw wire client so every line is checked exactly: greeting and CAPA (RFC 2449) before and after
 * STLS (RFC 2595) and on the implicit-TLS port; logins only under TLS, USER/PASS and AUTH PLAIN
 * (RFC 5034), lockout, no mailbox, [IN-USE]; STAT/LIST/UIDL/RETR/TOP/DELE/RSET/NOOP/QUIT (RFC 1939)
 * with byte-stuffing and CRLF, deletions applied through the mailbox-state service and \Seen at QUIT;
 * blob store and database failures; every limit with its exact reply; STLS injection; shutdown and
 * certificate reload.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { systemScope } from '../../src/core/scope.js';
import { ConnectionLimiter } from '../../src/protocols/net/connection-limiter.js';
import { createSelfSignedCertificate } from '../../src/protocols/net/self-signed.js';
import type { ChangeEvent } from '../../src/store/events/change-bus.js';
import { sampleMessage, type TestAccount } from '../support/mail-services.js';
import { Pop3Wire, loggedIn, plainCredentials, startPop3Harness, tlsSession, type Pop3Harness } from '../support/pop3.js';

const GREETING = /^\+OK MaiRust POP3 server ready <\d+\.[0-9a-f]{12}\.\d+@mx\.example\.test>$/;
const CAPA_CLEAR = ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'STLS', 'IMPLEMENTATION MaiRust'];
const CAPA_TLS = ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'USER', 'SASL PLAIN', 'IMPLEMENTATION MaiRust'];
const TLS_REQUIRED = '-ERR [SYS/PERM] TLS required: use STLS first';
const AUTH_FAILED = '-ERR [AUTH] Authentication failed';
const AUTH_LOCKED = '-ERR [SYS/TEMP] Too many failed logins, try again later';
const NO_SUCH_MESSAGE = '-ERR No such message';

let h: Pop3Harness;
let accounts = 0;

/**
 * A fresh account (in its own tenant unless named: plans cap users per tenant) per test, so
 * maildrop locks and lockout counters never cross tests.
 */
async function account(o: { tenant?: string } = {}): Promise<TestAccount> {
  const n = ++accounts;
  return h.fx.addAccount(`user${n}@d${n}.test`, { tenant: o.tenant ?? `t${n}` });
}

async function waitUntil(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

before(async () => {
  h = await startPop3Harness();
});
after(async () => {
  await h?.close();
});
beforeEach(async () => {
  h.faults.blobs = 'ok';
  h.faults.deleteFails = false;
  await h.fx.test.db.kysely.deleteFrom('auth_failures').execute();
});

describe('greeting, CAPA and STLS', () => {
  test('clear port: greeting, CAPA offers STLS and no login; after STLS USER and SASL PLAIN, no STLS', async () => {
    const c = await Pop3Wire.connect(h.port);
    try {
      assert.match(await c.line(), GREETING);
      assert.deepEqual(await c.multi('CAPA'), { status: '+OK Capability list follows', lines: CAPA_CLEAR });
      assert.equal(await c.stls(), '+OK Begin TLS negotiation');
      assert.ok(c.tlsSocket?.encrypted);
      assert.deepEqual(await c.multi('CAPA'), { status: '+OK Capability list follows', lines: CAPA_TLS });
      assert.equal(await c.command('STLS'), '-ERR TLS already active');
      assert.equal(await c.command('QUIT'), '+OK MaiRust POP3 server signing off');
      await c.closed();
    } finally {
      c.destroy();
    }
  });

  test('implicit-TLS port: greeting under TLS, CAPA with USER and SASL PLAIN, STLS refused', async () => {
    const c = await Pop3Wire.connect(h.tlsPort, { tls: {} });
    try {
      assert.match(await c.line(), GREETING);
      assert.deepEqual((await c.multi('CAPA')).lines, CAPA_TLS);
      assert.equal(await c.command('STLS'), '-ERR TLS already active');
    } finally {
      c.destroy();
    }
  });

  test('greeting timestamps differ between sessions', async () => {
    const a = await Pop3Wire.connect(h.port);
    const b = await Pop3Wire.connect(h.port);
    try {
      assert.notEqual(await a.line(), await b.line());
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  test('before TLS, USER, PASS and AUTH are refused without looking at the credentials', async () => {
    const alice = await account();
    const c = await Pop3Wire.connect(h.port);
    try {
      await c.line();
      assert.equal(await c.command(`USER ${alice.email}`), TLS_REQUIRED);
      assert.equal(await c.command(`PASS ${alice.password}`), TLS_REQUIRED);
      assert.equal(await c.command(`AUTH PLAIN ${plainCredentials(alice.email, alice.password)}`), TLS_REQUIRED);
      assert.equal(await c.command('AUTH'), TLS_REQUIRED);
      assert.equal(await c.command('STAT'), '-ERR Command not valid in this state');
    } finally {
      c.destroy();
    }
    const failures = await h.fx.test.db.kysely.selectFrom('auth_failures').selectAll().execute();
    assert.deepEqual(failures, [], 'nothing was counted as a login attempt');
  });

  test('commands pipelined behind STLS in clear are discarded, never run inside TLS (CVE-2011-0411 class)', async () => {
    const alice = await account();
    const c = await Pop3Wire.connect(h.port);
    try {
      await c.line();
      c.write(`STLS\r\nUSER ${alice.email}\r\nCAPA\r\n`);
      assert.equal(await c.line(), '+OK Begin TLS negotiation');
      await c.upgrade();
      // Had the injected USER survived, PASS would log in; had CAPA run, its listing would come first.
      assert.equal(await c.command(`PASS ${alice.password}`), '-ERR Send USER first');
      assert.equal(c.pending(), '');
    } finally {
      c.destroy();
    }
  });

  test('APOP is not supported; unknown commands and commands of the other state are refused', async () => {
    const c = await tlsSession(h.port);
    try {
      assert.equal(await c.command('APOP mrose c4c9334bac560ecc979e58001b3e22fb'), '-ERR APOP not supported, use USER/PASS or AUTH PLAIN');
      assert.equal(await c.command('XYZZY'), '-ERR Unknown command');
      assert.equal(await c.command('RETR 1'), '-ERR Command not valid in this state');
      assert.equal(await c.command('PASS whatever'), '-ERR Send USER first');
    } finally {
      c.destroy();
    }
  });
});

describe('logins', () => {
  test('USER/PASS opens the INBOX; a second session of the same mailbox gets [IN-USE] until the first ends', async () => {
    const bob = await account();
    await bob.deliver(sampleMessage({ body: 'one' }));
    const size = (await h.services.state.listEntries(bob.scope, (await bob.folder('INBOX')).id))[0].size;
    const { c, status } = await loggedIn(h.port, bob.email, bob.password);
    try {
      assert.equal(status, `+OK Mailbox open, 1 messages (${size} octets)`);
      // The same mailbox through the other port (same node, shared locks) and through STLS again.
      const second = await Pop3Wire.connect(h.tlsPort, { tls: {} });
      await second.line();
      await second.command(`USER ${bob.email}`);
      assert.equal(await second.command(`PASS ${bob.password}`), '-ERR [IN-USE] Mailbox already in use by another POP3 session');
      assert.equal(await second.command('STAT'), '-ERR Command not valid in this state', 'still in AUTHORIZATION');
      second.destroy();
      assert.equal(await c.command('QUIT'), '+OK MaiRust POP3 server signing off (1 messages left)');
      await c.closed();
      await waitUntil(() => h.listeners.every((l) => l.openSessions === 0), 'the sessions to close');
      const again = await loggedIn(h.port, bob.email, bob.password);
      again.c.destroy();
    } finally {
      c.destroy();
    }
    const failures = await h.fx.test.db.kysely.selectFrom('auth_failures').selectAll().execute();
    assert.deepEqual(failures, [], 'IN-USE is not a failed login');
  });

  test('AUTH PLAIN with an initial response, after an empty challenge, cancelled, malformed, unsupported', async () => {
    const carol = await account();
    const c = await tlsSession(h.port);
    try {
      assert.deepEqual(await c.multi('AUTH'), { status: '+OK SASL mechanisms follow', lines: ['PLAIN'] });
      assert.equal(await c.command('AUTH CRAM-MD5'), '-ERR Unsupported authentication mechanism');
      assert.equal(await c.command('AUTH PLAIN'), '+ ');
      assert.equal(await c.command('*'), '-ERR Authentication cancelled');
      assert.equal(await c.command('AUTH PLAIN'), '+ ');
      assert.equal(await c.command('not base64!'), '-ERR Cannot decode the authentication response');
      assert.equal(await c.command('AUTH PLAIN ='), '-ERR Cannot decode the authentication response');
      assert.equal(await c.command(`AUTH PLAIN ${plainCredentials(carol.email, carol.password, 'someone-else@acme.test')}`), AUTH_FAILED);
      assert.equal(await c.command('AUTH PLAIN'), '+ ');
      assert.equal(await c.command(plainCredentials(carol.email, carol.password)), '+OK Mailbox open, 0 messages (0 octets)');
      assert.equal(await c.command('AUTH PLAIN'), '-ERR Command not valid in this state');
    } finally {
      c.destroy();
    }
    const d = await Pop3Wire.connect(h.tlsPort, { tls: {} });
    try {
      await d.line();
      const dave = await account();
      assert.equal(await d.command(`AUTH PLAIN ${plainCredentials(dave.email, dave.password, dave.email)}`), '+OK Mailbox open, 0 messages (0 octets)');
    } finally {
      d.destroy();
    }
  });

  test('a wrong password and an unknown account get the same [AUTH] reply', async () => {
    const erin = await account();
    const c = await tlsSession(h.port);
    try {
      await c.command(`USER ${erin.email}`);
      assert.equal(await c.command('PASS wrong password here'), AUTH_FAILED);
      await c.command('USER nobody@acme.test');
      assert.equal(await c.command(`PASS ${erin.password}`), AUTH_FAILED);
      assert.equal(await c.command(`AUTH PLAIN ${plainCredentials('nobody@acme.test', 'x'.repeat(12))}`), AUTH_FAILED);
    } finally {
      c.destroy();
    }
  });

  test('lockout: 5 failures lock the account (right password refused unchecked) and the client address', async () => {
    const frank = await account();
    const c = await tlsSession(h.port, '127.0.0.2');
    try {
      for (let i = 0; i < 5; i++) {
        await c.command(`USER ${frank.email}`);
        assert.equal(await c.command(`PASS wrong password ${i}`), AUTH_FAILED);
      }
      await c.command(`USER ${frank.email}`);
      assert.equal(await c.command(`PASS ${frank.password}`), AUTH_LOCKED);
    } finally {
      c.destroy();
    }
    // The account is locked from any address…
    const d = await tlsSession(h.port, '127.0.0.3');
    try {
      assert.equal(await d.command(`AUTH PLAIN ${plainCredentials(frank.email, frank.password)}`), AUTH_LOCKED);
    } finally {
      d.destroy();
    }
    // …and the address for any account.
    const grace = await account();
    const e = await tlsSession(h.port, '127.0.0.2');
    try {
      await e.command(`USER ${grace.email}`);
      assert.equal(await e.command(`PASS ${grace.password}`), AUTH_LOCKED);
    } finally {
      e.destroy();
    }
  });

  test('a user without a mailbox cannot open a maildrop', async () => {
    const owner = await account();
    const nomail = `nomail@${owner.email.split('@')[1]}`;
    await h.fx.tenancy.users.add(systemScope, { tenantId: owner.user.tenantId, email: nomail, password: owner.password });
    const c = await tlsSession(h.port);
    try {
      await c.command(`USER ${nomail}`);
      assert.equal(await c.command(`PASS ${owner.password}`), '-ERR [SYS/PERM] This account has no mailbox');
    } finally {
      c.destroy();
    }
  });
});

describe('transaction', () => {
  test('STAT, LIST, UIDL, RETR (byte-stuffed, CRLF), TOP, DELE, RSET, NOOP', async () => {
    const a = await account();
    const first = 'From: a@example.net\r\nSubject: one\r\n\r\n.starts with a dot\r\n..two dots\r\nplain\r\n';
    const lfOnly = 'From: b@example.net\nSubject: two\n\nline 1\n.line 2\nline 3\nline 4';
    await a.deliver(first);
    await a.deliver(Buffer.from(lfOnly));
    const inbox = await a.folder('INBOX');
    const entries = await h.services.state.listEntries(a.scope, inbox.id);
    const [s1, s2] = entries.map((e) => e.size);
    const total = s1 + s2;
    const { c } = await loggedIn(h.port, a.email, a.password);
    try {
      assert.equal(await c.command('STAT'), `+OK 2 ${total}`);
      assert.deepEqual(await c.multi('LIST'), { status: `+OK 2 messages (${total} octets)`, lines: [`1 ${s1}`, `2 ${s2}`] });
      assert.equal(await c.command('LIST 2'), `+OK 2 ${s2}`);
      assert.equal(await c.command('LIST 3'), NO_SUCH_MESSAGE);
      assert.equal(await c.command('LIST 0'), NO_SUCH_MESSAGE);
      const uidl = [`1 ${inbox.uidValidity}.${entries[0].uid}`, `2 ${inbox.uidValidity}.${entries[1].uid}`];
      assert.deepEqual(await c.multi('UIDL'), { status: '+OK Unique-ID listing follows', lines: uidl });
      assert.equal(await c.command('UIDL 1'), `+OK ${uidl[0]}`);

      assert.equal(await c.command('RETR 1'), `+OK ${s1} octets`);
      assert.equal(await c.rawBody(), 'From: a@example.net\r\nSubject: one\r\n\r\n..starts with a dot\r\n...two dots\r\nplain\r\n');
      assert.equal(await c.command('RETR 2'), `+OK ${s2} octets`);
      assert.deepEqual(await c.lines(), ['From: b@example.net', 'Subject: two', '', 'line 1', '.line 2', 'line 3', 'line 4']);
      assert.deepEqual(await c.multi('TOP 2 2'), { status: '+OK Top of message follows', lines: ['From: b@example.net', 'Subject: two', '', 'line 1', '.line 2'] });
      assert.deepEqual((await c.multi('TOP 1 0')).lines, ['From: a@example.net', 'Subject: one', '']);
      assert.equal(await c.command('TOP 3 1'), NO_SUCH_MESSAGE);

      assert.equal(await c.command('DELE 1'), '+OK Message 1 deleted');
      assert.equal(await c.command('DELE 1'), NO_SUCH_MESSAGE);
      assert.equal(await c.command('RETR 1'), NO_SUCH_MESSAGE);
      assert.equal(await c.command('TOP 1 1'), NO_SUCH_MESSAGE);
      assert.equal(await c.command('LIST 1'), NO_SUCH_MESSAGE);
      assert.equal(await c.command('UIDL 1'), NO_SUCH_MESSAGE);
      assert.equal(await c.command('STAT'), `+OK 1 ${s2}`);
      assert.deepEqual((await c.multi('LIST')).lines, [`2 ${s2}`]);
      assert.deepEqual((await c.multi('UIDL')).lines, [uidl[1]]);
      assert.equal(await c.command('RSET'), `+OK Maildrop has 2 messages (${total} octets)`);
      assert.equal(await c.command('LIST 1'), `+OK 1 ${s1}`);
      assert.equal(await c.command('NOOP'), '+OK');
      assert.equal(await c.command('USER x@acme.test'), '-ERR Command not valid in this state');
      assert.equal(await c.command('STLS'), '-ERR Command not valid in this state');
      assert.equal(await c.command('RETR x'), '-ERR Invalid message number');
    } finally {
      c.destroy();
    }
  });

  test('QUIT applies DELE through the mailbox-state service (expunge event, quota) and sets \\Seen on retrieved messages', async () => {
    const a = await account();
    const m1 = await a.deliver(sampleMessage({ subject: 'keep, read' }));
    const m2 = await a.deliver(sampleMessage({ subject: 'delete' }));
    const m3 = await a.deliver(sampleMessage({ subject: 'keep, unread' }));
    const m4 = await a.deliver(sampleMessage({ subject: 'read and deleted' }));
    const inbox = await a.folder('INBOX');
    const quotaBefore = await h.services.state.getQuota(a.scope, a.mailbox.id);
    const events: ChangeEvent[] = [];
    const unsubscribe = h.fx.bus.subscribe((e) => events.push(e), { mailboxId: a.mailbox.id });
    const { c } = await loggedIn(h.port, a.email, a.password);
    try {
      await c.command('RETR 1');
      await c.rawBody();
      await c.command('RETR 4');
      await c.rawBody();
      await c.multi('TOP 3 1');
      assert.equal(await c.command('DELE 2'), '+OK Message 2 deleted');
      assert.equal(await c.command('DELE 4'), '+OK Message 4 deleted');
      assert.equal(await c.command('QUIT'), '+OK MaiRust POP3 server signing off (2 messages left)');
      await c.closed();
    } finally {
      c.destroy();
    }
    assert.deepEqual(await h.services.state.listUids(a.scope, inbox.id), [m1.uid, m3.uid]);
    const all = await h.services.state.listEntries(a.scope, inbox.id, { includeDeleted: true });
    const byUid = new Map(all.map((e) => [e.uid, e]));
    assert.ok(byUid.get(m2.uid)!.deletedAt !== null && byUid.get(m4.uid)!.deletedAt !== null);
    assert.deepEqual(byUid.get(m1.uid)!.flags, ['\\Seen'], 'RETR → \\Seen');
    assert.deepEqual(byUid.get(m3.uid)!.flags, [], 'TOP does not set \\Seen');
    const quotaAfter = await h.services.state.getQuota(a.scope, a.mailbox.id);
    assert.equal(quotaAfter.usedBytes, quotaBefore.usedBytes - byUid.get(m2.uid)!.size - byUid.get(m4.uid)!.size);
    await waitUntil(() => events.some((e) => e.kind === 'expunge' && e.folderId === inbox.id), 'the expunge event');
    unsubscribe();
  });

  test('a session that ends without QUIT changes nothing (RFC 1939 §3: no UPDATE)', async () => {
    const a = await account();
    const m = await a.deliver(sampleMessage());
    const inbox = await a.folder('INBOX');
    const { c } = await loggedIn(h.port, a.email, a.password);
    await c.command('RETR 1');
    await c.rawBody();
    assert.equal(await c.command('DELE 1'), '+OK Message 1 deleted');
    c.destroy();
    await waitUntil(() => h.listeners.every((l) => l.openSessions === 0), 'the session to close');
    const [entry] = await h.services.state.listEntries(a.scope, inbox.id);
    assert.equal(entry.uid, m.uid);
    assert.deepEqual(entry.flags, []);
  });

  test('UIDs are stable across sessions; mail arriving during a session is not in its maildrop', async () => {
    const a = await account();
    await a.deliver(sampleMessage());
    const s1 = await loggedIn(h.port, a.email, a.password);
    const first = (await s1.c.multi('UIDL')).lines;
    await a.deliver(sampleMessage());
    assert.equal(await s1.c.command('STAT').then((l) => l.split(' ')[1]), '1');
    assert.equal(await s1.c.command('QUIT'), '+OK MaiRust POP3 server signing off (1 messages left)');
    await s1.c.closed();
    await waitUntil(() => h.listeners.every((l) => l.openSessions === 0), 'the session to close');
    const s2 = await loggedIn(h.port, a.email, a.password);
    try {
      const second = (await s2.c.multi('UIDL')).lines;
      assert.equal(second.length, 2);
      assert.equal(second[0], first[0]);
      for (const line of second) assert.match(line, /^\d+ [\x21-\x7e]{1,70}$/);
    } finally {
      s2.c.destroy();
    }
  });

  test('a message removed by another session stays readable until purged; pipelined commands are answered in order', async () => {
    const a = await account();
    const m = await a.deliver(sampleMessage({ body: 'still here' }));
    const inbox = await a.folder('INBOX');
    const { c } = await loggedIn(h.port, a.email, a.password);
    try {
      // An IMAP client expunges it meanwhile.
      await h.services.state.deleteMessages(a.scope, inbox.id, [m.uid]);
      c.write('STAT\r\nLIST 1\r\nNOOP\r\nRETR 1\r\n');
      assert.match(await c.line(), /^\+OK 1 \d+$/);
      assert.match(await c.line(), /^\+OK 1 \d+$/);
      assert.equal(await c.line(), '+OK');
      assert.match(await c.line(), /^\+OK \d+ octets$/);
      assert.match(await c.rawBody(), /still here/);
      assert.equal(await c.command('DELE 1'), '+OK Message 1 deleted');
      assert.equal(await c.command('QUIT'), '+OK MaiRust POP3 server signing off (maildrop empty)', 'deleting an entry already gone is no error');
    } finally {
      c.destroy();
    }
  });

  test('a large message is streamed whole and exact', async () => {
    const a = await account();
    const line = `${'x'.repeat(70)}\r\n`;
    const body = line.repeat(Math.ceil((3 * 1024 * 1024) / line.length));
    const raw = `From: big@example.net\r\nSubject: big\r\n\r\n${body}`;
    await a.deliver(raw);
    const { c } = await loggedIn(h.port, a.email, a.password);
    try {
      assert.equal(await c.command('RETR 1'), `+OK ${raw.length} octets`);
      const got = await c.rawBody(30_000);
      assert.equal(got.length, raw.length);
      assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(raw).digest('hex'));
      assert.equal(await c.command('NOOP'), '+OK');
    } finally {
      c.destroy();
    }
  });

  test('tenancy: a session sees only its own INBOX, never another folder or another tenant', async () => {
    const mine = await account({ tenant: 'tenant-one' });
    const theirs = await account({ tenant: 'tenant-two' });
    await mine.deliver(sampleMessage({ subject: 'mine' }));
    await mine.deliver(sampleMessage({ subject: 'sent copy' }), { folder: 'Sent' });
    await theirs.deliver(sampleMessage({ subject: 'theirs' }));
    await theirs.deliver(sampleMessage({ subject: 'theirs 2' }));
    const { c } = await loggedIn(h.port, mine.email, mine.password);
    try {
      assert.match(await c.command('STAT'), /^\+OK 1 \d+$/);
      assert.equal(await c.command('RETR 2'), NO_SUCH_MESSAGE);
      assert.match(await c.command('RETR 1'), /^\+OK \d+ octets$/);
      assert.match(await c.rawBody(), /\r\nSubject: mine\r\n/);
    } finally {
      c.destroy();
    }
  });
});

describe('failures', () => {
  test('blob store down: RETR/TOP answer [SYS/TEMP], listings keep working, and RETR works again once it is back', async () => {
    const a = await account();
    await a.deliver(sampleMessage({ body: 'body text' }));
    const { c } = await loggedIn(h.port, a.email, a.password);
    try {
      h.faults.blobs = 'down';
      assert.equal(await c.command('RETR 1'), '-ERR [SYS/TEMP] Message content temporarily unavailable, try again later');
      assert.equal(await c.command('TOP 1 0'), '-ERR [SYS/TEMP] Message content temporarily unavailable, try again later');
      assert.match(await c.command('LIST 1'), /^\+OK 1 \d+$/);
      h.faults.blobs = 'ok';
      assert.match(await c.command('RETR 1'), /^\+OK \d+ octets$/);
      assert.match(await c.rawBody(), /body text/);
      assert.equal(await c.command('QUIT'), '+OK MaiRust POP3 server signing off (1 messages left)');
    } finally {
      c.destroy();
    }
    const [entry] = await h.services.state.listEntries(a.scope, (await a.folder('INBOX')).id);
    assert.deepEqual(entry.flags, ['\\Seen'], 'only the RETR that went through counts');
  });

  test('a blob read failing in the middle of RETR drops the connection: no terminating "."', async () => {
    const a = await account();
    await a.deliver(sampleMessage({ body: 'y'.repeat(2000) }));
    const { c } = await loggedIn(h.port, a.email, a.password);
    try {
      h.faults.blobs = 'mid-stream';
      assert.match(await c.command('RETR 1'), /^\+OK \d+ octets$/);
      await c.closed();
      assert.doesNotMatch(c.pending(), /\r\n\.\r\n$/);
    } finally {
      c.destroy();
    }
  });

  test('UPDATE failing answers [SYS/TEMP] and deletes nothing', async () => {
    const a = await account();
    await a.deliver(sampleMessage());
    await a.deliver(sampleMessage());
    const inbox = await a.folder('INBOX');
    const { c } = await loggedIn(h.port, a.email, a.password);
    try {
      await c.command('RETR 1');
      await c.rawBody();
      await c.command('DELE 1');
      await c.command('DELE 2');
      h.faults.deleteFails = true;
      assert.equal(await c.command('QUIT'), '-ERR [SYS/TEMP] Could not remove the deleted messages; nothing was deleted');
      await c.closed();
    } finally {
      c.destroy();
    }
    const entries = await h.services.state.listEntries(a.scope, inbox.id);
    assert.equal(entries.length, 2);
    assert.deepEqual(entries.map((e) => e.flags), [[], []]);
  });
});

describe('limits', () => {
  test('a line over pop3.max_line_bytes: -ERR Line too long, and the session goes on', async () => {
    const { port } = await h.listen({ limits: { maxLineBytes: 255 } });
    const c = await Pop3Wire.connect(port);
    try {
      await c.line();
      // 253 octets + CRLF = 255: the longest line allowed.
      assert.equal(await c.command(`USER ${'u'.repeat(248)}`), TLS_REQUIRED);
      assert.equal(await c.command(`USER ${'u'.repeat(249)}`), '-ERR Line too long');
      assert.equal(await c.command(`NOOP ${'n'.repeat(100_000)}`), '-ERR Line too long');
      assert.deepEqual((await c.multi('CAPA')).lines, CAPA_CLEAR);
    } finally {
      c.destroy();
    }
  });

  test('the AUTH PLAIN continuation line is bounded too', async () => {
    const { port } = await h.listen({ limits: { maxLineBytes: 255 } });
    const c = await tlsSession(port);
    try {
      assert.equal(await c.command('AUTH PLAIN'), '+ ');
      assert.equal(await c.command('A'.repeat(400)), '-ERR Line too long');
      assert.equal(await c.command('STAT'), '-ERR Command not valid in this state', 'back in AUTHORIZATION');
    } finally {
      c.destroy();
    }
  });

  test('bad commands: the one over pop3.max_bad_commands closes the session', async () => {
    const { port } = await h.listen({ limits: { maxBadCommands: 3 } });
    const c = await Pop3Wire.connect(port);
    try {
      await c.line();
      assert.equal(await c.command('FOO'), '-ERR Unknown command');
      assert.equal(await c.command('LIST 1 2 3'), '-ERR Syntax error');
      assert.equal(await c.command('STAT'), '-ERR Command not valid in this state');
      assert.equal(await c.command('BAR'), '-ERR Too many bad commands, closing connection');
      await c.closed();
    } finally {
      c.destroy();
    }
  });

  test('autologout: an idle session is told and closed, and its DELE marks are not applied', async () => {
    const a = await account();
    await a.deliver(sampleMessage());
    const { port } = await h.listen({ limits: { idleTimeoutMs: 500 } });
    const { c } = await loggedIn(port, a.email, a.password);
    try {
      assert.equal(await c.command('DELE 1'), '+OK Message 1 deleted');
      assert.equal(await c.line(), '-ERR Autologout: idle for too long');
      await c.closed();
    } finally {
      c.destroy();
    }
    assert.equal((await h.services.state.listUids(a.scope, (await a.folder('INBOX')).id)).length, 1);
  });

  test('garbage lines (seeded random bytes) get one -ERR each and leave the session working', async () => {
    const a = await account();
    await a.deliver(sampleMessage());
    const { port } = await h.listen({ limits: { maxBadCommands: 1000 } });
    const { c } = await loggedIn(port, a.email, a.password);
    try {
      let seed = 0x2545f491;
      const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
      const verbs = /^(STAT|LIST|UIDL|RETR|TOP|DELE|RSET|NOOP|QUIT|CAPA)(\s|$)/i;
      const lines: Buffer[] = [];
      while (lines.length < 300) {
        const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 80) }, () => Math.floor(random() * 256)).filter((b) => b !== 0x0a && b !== 0x0d));
        if (bytes.length > 0 && !verbs.test(bytes.toString('latin1'))) lines.push(bytes);
      }
      c.write(Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\r\n')])));
      for (let i = 0; i < lines.length; i++) assert.match(await c.line(), /^-ERR /, `line ${i}: ${lines[i].toString('hex')}`);
      assert.match(await c.command('STAT'), /^\+OK 1 \d+$/);
    } finally {
      c.destroy();
    }
  });

  test('connections per client address, shared by both POP3 ports; other addresses unaffected', async () => {
    const limiter = new ConnectionLimiter(2);
    const plain = await h.listen({ connectionLimiter: limiter });
    const secure = await h.listen({ implicitTls: true, connectionLimiter: limiter });
    const open: Pop3Wire[] = [];
    try {
      for (const c of [await Pop3Wire.connect(plain.port, { localAddress: '127.0.0.5' }), await Pop3Wire.connect(secure.port, { localAddress: '127.0.0.5', tls: {} })]) {
        assert.match(await c.line(), GREETING);
        open.push(c);
      }
      for (const c of [await Pop3Wire.connect(plain.port, { localAddress: '127.0.0.5' }), await Pop3Wire.connect(secure.port, { localAddress: '127.0.0.5', tls: {} })]) {
        open.push(c);
        assert.equal(await c.line(), '-ERR [SYS/TEMP] Too many connections from your address, try again later');
        await c.closed();
      }
      const other = await Pop3Wire.connect(plain.port, { localAddress: '127.0.0.6' });
      open.push(other);
      assert.match(await other.line(), GREETING);
    } finally {
      open.forEach((c) => c.destroy());
    }
  });
});

describe('listener lifecycle', () => {
  test('close(drainMs): sessions not logged in end at once; logged-in ones may finish, the rest end after the drain without UPDATE', async () => {
    const finisher = await account();
    const lingerer = await account();
    await finisher.deliver(sampleMessage());
    await lingerer.deliver(sampleMessage());
    const { port, listener } = await h.listen();
    const waiting = await Pop3Wire.connect(port);
    await waiting.line();
    const f = (await loggedIn(port, finisher.email, finisher.password)).c;
    const l = (await loggedIn(port, lingerer.email, lingerer.password)).c;
    assert.equal(await l.command('DELE 1'), '+OK Message 1 deleted');
    const closing = listener.close(1000);
    try {
      assert.equal(await waiting.line(), '-ERR [SYS/TEMP] Server shutting down, try again later');
      await waiting.closed();
      // A logged-in client goes on during the drain and its QUIT is applied…
      assert.match(await f.command('STAT'), /^\+OK 1 \d+$/);
      assert.equal(await f.command('DELE 1'), '+OK Message 1 deleted');
      assert.equal(await f.command('QUIT'), '+OK MaiRust POP3 server signing off (maildrop empty)');
      // …one that stays is ended after it, and its DELE is not.
      assert.equal(await l.line(), '-ERR [SYS/TEMP] Server shutting down, try again later');
      await l.closed();
      await closing;
      await assert.rejects(Pop3Wire.connect(port), /ECONNREFUSED/);
    } finally {
      waiting.destroy();
      f.destroy();
      l.destroy();
    }
    assert.equal((await h.services.state.listUids(finisher.scope, (await finisher.folder('INBOX')).id)).length, 0);
    assert.equal((await h.services.state.listUids(lingerer.scope, (await lingerer.folder('INBOX')).id)).length, 1);
  });

  test('reloadTls: new connections get the new certificate (STLS and implicit TLS)', async () => {
    const plain = await h.listen();
    const secure = await h.listen({ implicitTls: true });
    const next = createSelfSignedCertificate('pop.reloaded.test');
    for (const l of [plain.listener, secure.listener]) l.reloadTls({ key: next.key, cert: next.cert, minVersion: 'TLSv1.2' });
    const c = await tlsSession(plain.port);
    const d = await Pop3Wire.connect(secure.port, { tls: {} });
    try {
      assert.equal(c.tlsSocket!.getPeerCertificate().subject.CN, 'pop.reloaded.test');
      assert.equal(d.tlsSocket!.getPeerCertificate().subject.CN, 'pop.reloaded.test');
    } finally {
      c.destroy();
      d.destroy();
    }
  });
});
