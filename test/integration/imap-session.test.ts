/**
 * The IMAP session over real listeners (both shapes): greeting and capabilities before/after TLS
 * and login, LOGINDISABLED, STARTTLS with a pipelined-injection attempt, unknown commands and
 * state errors, the bad-command limit, line/literal limits with their exact replies, autologout,
 * LOGOUT, the connection limit, graceful shutdown, and errors that must not leak.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mailServicesFixture, type MailServicesFixture, type TestAccount } from '../support/mail-services.js';
import { quote, startImapServer, type ImapTestServer } from '../support/imap.js';

const CAPS_CLEAR = 'IMAP4rev1 IMAP4rev2 STARTTLS LOGINDISABLED SASL-IR LITERAL+ ENABLE ID';
const CAPS_TLS = 'IMAP4rev1 IMAP4rev2 AUTH=PLAIN SASL-IR LITERAL+ ENABLE ID';
const CAPS_AUTH =
  'IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE ID IDLE NAMESPACE UNSELECT UIDPLUS MOVE CONDSTORE QRESYNC SPECIAL-USE ' +
  'LIST-EXTENDED LIST-STATUS CHILDREN ESEARCH SEARCHRES WITHIN BINARY APPENDLIMIT=1048576 QUOTA QUOTA=RES-STORAGE ' +
  'STATUS=SIZE UTF8=ACCEPT COMPRESS=DEFLATE';

let fixture: MailServicesFixture;
let srv: ImapTestServer;
let alice: TestAccount;

before(async () => {
  fixture = await mailServicesFixture();
  srv = await startImapServer({ fixture });
  alice = await fixture.addAccount('alice@acme.test');
});

after(async () => {
  await srv.close();
  await fixture.close();
});

describe('greeting and capabilities', () => {
  test('the STARTTLS port greets with STARTTLS and LOGINDISABLED and no AUTH=', async () => {
    const w = await srv.connect({ tls: false });
    assert.equal(w.greeting, `* OK [CAPABILITY ${CAPS_CLEAR}] MaiRust IMAP4rev2 server ready`);
    const r = await w.command('a1 CAPABILITY');
    assert.deepEqual(r.untagged, [`* CAPABILITY ${CAPS_CLEAR}`]);
    assert.equal(r.tagged, 'a1 OK CAPABILITY completed');
  });

  test('the implicit-TLS port offers AUTH=PLAIN and no STARTTLS', async () => {
    const w = await srv.connect();
    assert.equal(w.greeting, `* OK [CAPABILITY ${CAPS_TLS}] MaiRust IMAP4rev2 server ready`);
  });

  test('after STARTTLS the capabilities change; LOGIN carries the logged-in list', async () => {
    const w = await srv.connect({ tls: false });
    const s = await w.starttls();
    assert.equal(s.tagged, 's1 OK Begin TLS negotiation now');
    assert.ok(w.secure);
    assert.deepEqual((await w.command('a1 CAPABILITY')).untagged, [`* CAPABILITY ${CAPS_TLS}`]);
    const login = await w.command(`a2 LOGIN ${quote(alice.email)} ${quote(alice.password)}`);
    assert.equal(login.tagged, `a2 OK [CAPABILITY ${CAPS_AUTH}] LOGIN completed`);
    assert.deepEqual((await w.command('a3 CAPABILITY')).untagged, [`* CAPABILITY ${CAPS_AUTH}`]);
  });

  test('LOGIN and AUTHENTICATE are refused in clear (LOGINDISABLED)', async () => {
    const w = await srv.connect({ tls: false });
    const login = await w.command(`a1 LOGIN ${quote(alice.email)} ${quote(alice.password)}`);
    assert.equal(login.tagged, 'a1 NO [PRIVACYREQUIRED] Logins are disabled until TLS is active (use STARTTLS)');
    const auth = await w.command('a2 AUTHENTICATE PLAIN AGFsaWNlQGFjbWUudGVzdABjb3JyZWN0');
    assert.equal(auth.tagged, 'a2 NO [PRIVACYREQUIRED] Logins are disabled until TLS is active (use STARTTLS)');
    // Still not logged in.
    assert.equal((await w.command('a3 LIST "" "*"')).tagged, 'a3 BAD Not logged in');
  });

  test('STARTTLS under TLS is refused, and not valid after login', async () => {
    const w = await srv.connect();
    assert.equal((await w.command('s1 STARTTLS')).tagged, 's1 BAD TLS is already active');
    const logged = await srv.login(alice);
    assert.equal((await logged.command('s2 STARTTLS')).tagged, 's2 BAD Already logged in');
  });
});

describe('STARTTLS command injection (RFC 9051 §6.2.1)', () => {
  test('commands pipelined behind STARTTLS in clear are discarded, not run under TLS', async () => {
    const w = await srv.connect({ tls: false });
    w.send(`s1 STARTTLS\r\nx1 LOGIN ${quote(alice.email)} ${quote(alice.password)}\r\nx2 NOOP\r\n`);
    const r = await w.readUntilTagged('s1');
    assert.equal(r.tagged, 's1 OK Begin TLS negotiation now');
    await w.upgradeTls();
    const after = await w.command('a3 CAPABILITY');
    // Neither x1 nor x2 was answered; the session is not logged in.
    assert.deepEqual(after.untagged, [`* CAPABILITY ${CAPS_TLS}`]);
    assert.equal(after.tagged, 'a3 OK CAPABILITY completed');
    assert.equal((await w.command('a4 NAMESPACE')).tagged, 'a4 BAD Not logged in');
  });
});

describe('unknown commands and state errors', () => {
  test('unknown command', async () => {
    const w = await srv.connect();
    assert.equal((await w.command('a1 FROBNICATE')).tagged, 'a1 BAD Unknown command');
    assert.equal((await w.command('a2 NOOP')).tagged, 'a2 OK NOOP completed');
  });

  test('commands in the wrong state', async () => {
    const w = await srv.connect();
    assert.equal((await w.command('a1 SELECT INBOX')).tagged, 'a1 BAD Not logged in');
    assert.equal((await w.command('a2 CHECK')).tagged, 'a2 BAD Not logged in');
    const logged = await srv.login(alice);
    assert.equal((await logged.command('b1 FETCH 1 FLAGS')).tagged, 'b1 BAD No mailbox selected');
    assert.equal((await logged.command('b2 CHECK')).tagged, 'b2 BAD No mailbox selected');
    assert.equal((await logged.command(`b3 LOGIN ${quote(alice.email)} x`)).tagged, 'b3 BAD Already logged in');
    assert.equal((await logged.command('b4 AUTHENTICATE PLAIN')).tagged, 'b4 BAD Already logged in');
  });

  test('a syntax error names the problem; a missing tag is answered untagged', async () => {
    const w = await srv.connect();
    assert.equal((await w.command('a1 CAPABILITY extra')).tagged, 'a1 BAD Too many arguments to CAPABILITY');
    w.send('\r\n(\r\n');
    assert.equal(await w.response(), '* BAD Missing or invalid tag');
    assert.equal((await w.command('a2 NOOP')).tagged, 'a2 OK NOOP completed');
  });

  test('a handler failure is NO [SERVERBUG] without details; a storage outage is NO [UNAVAILABLE]', async () => {
    const w = await srv.login(alice);
    const original = fixture.state.listFolders;
    try {
      fixture.state.listFolders = async () => {
        throw new Error('secret internal detail at /srv/x.ts:1');
      };
      const bug = await w.command('a1 LIST "" "*"');
      assert.equal(bug.tagged, 'a1 NO [SERVERBUG] Internal error; the problem was logged');
      assert.deepEqual(bug.untagged, []);
      fixture.state.listFolders = async () => {
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      };
      const down = await w.command('a2 LIST "" "*"');
      assert.equal(down.tagged, 'a2 NO [UNAVAILABLE] Mail storage is temporarily unavailable; try again later');
    } finally {
      fixture.state.listFolders = original;
    }
    assert.equal((await w.command('a3 LIST "" "INBOX"')).tagged, 'a3 OK LIST completed');
  });
});

describe('limits', () => {
  test('the bad-command limit ends the session with BYE', async () => {
    const limited = await startImapServer({ fixture, limits: { maxBadCommands: 3 } });
    try {
      const w = await limited.connect();
      for (let i = 1; i <= 3; i++) assert.equal((await w.command(`a${i} BOGUS`)).tagged, `a${i} BAD Unknown command`);
      assert.equal((await w.command('a4 BOGUS')).tagged, 'a4 BAD Unknown command');
      assert.equal(await w.response(), '* BYE Too many invalid commands');
      await w.closed();
    } finally {
      await limited.close();
    }
  });

  test('an over-long line is BAD and the session goes on', async () => {
    const limited = await startImapServer({ fixture, limits: { maxLineBytes: 1024 } });
    try {
      const w = await limited.connect();
      const r = await w.command(`a1 ID ("x" "${'y'.repeat(3000)}")`);
      assert.equal(r.tagged, 'a1 BAD Command line too long');
      assert.equal((await w.command('a2 NOOP')).tagged, 'a2 OK NOOP completed');
    } finally {
      await limited.close();
    }
  });

  test('a synchronizing literal over the limit is NO [TOOBIG] before any of it is sent', async () => {
    const limited = await startImapServer({ fixture, limits: { maxLiteralBytes: 2048 } });
    try {
      const w = await limited.connect();
      // command() stops at the tagged answer instead of `+`: the literal is never sent.
      const r = await w.command(`a1 LOGIN {5000}\r\n${'x'.repeat(5000)} pw`);
      assert.deepEqual(r.continuations, []);
      assert.equal(r.tagged, 'a1 NO [TOOBIG] Literal too big (limit 2048 octets)');
      assert.equal((await w.command('a2 NOOP')).tagged, 'a2 OK NOOP completed');
    } finally {
      await limited.close();
    }
  });

  test('a non-synchronizing literal over the limit is BAD [TOOBIG]; its bytes are skipped', async () => {
    const limited = await startImapServer({ fixture, limits: { maxLiteralBytes: 2048 } });
    try {
      const w = await limited.connect();
      // The skipped literal contains what looks like a command: it must not run.
      const body = `x9 LOGOUT\r\n${'x'.repeat(4989)}`;
      const r = await w.command(`a1 LOGIN {${Buffer.byteLength(body)}+}\r\n${body} pw`);
      assert.equal(r.tagged, 'a1 BAD [TOOBIG] Literal too big (limit 2048 octets)');
      assert.equal((await w.command('a2 NOOP')).tagged, 'a2 OK NOOP completed');
    } finally {
      await limited.close();
    }
  });

  test('a command whose literals together exceed the command limit is NO [TOOBIG]', async () => {
    const limited = await startImapServer({ fixture, limits: { maxCommandBytes: 4096 } });
    try {
      const w = await limited.connect();
      const part = 'x'.repeat(3000);
      const r = await w.command(`a1 LOGIN {3000}\r\n${part} {3000}\r\n${part}`);
      assert.deepEqual(r.continuations, ['+ Ready for literal data']);
      assert.equal(r.tagged, 'a1 NO [TOOBIG] Command too big (limit 4096 octets)');
      assert.equal((await w.command('a2 NOOP')).tagged, 'a2 OK NOOP completed');
    } finally {
      await limited.close();
    }
  });

  test('binary garbage is answered BAD and the session stays usable', async () => {
    const w = await srv.connect();
    w.send(Buffer.from([0x00, 0xff, 0x20, 0x0d, 0x41, 0x0a]));
    w.send('a1 \x01\x02 (((\r\n');
    w.send('a2 LOGIN "unterminated\r\n');
    const first = await w.response();
    const second = await w.response();
    const third = await w.response();
    assert.match(first, /^\* BAD /);
    assert.match(second, /^a1 BAD /);
    assert.match(third, /^a2 BAD /);
    assert.equal((await w.command('a3 NOOP')).tagged, 'a3 OK NOOP completed');
  });

  test('the connection limit per client address greets the extra client with BYE', async () => {
    const limited = await startImapServer({ fixture, maxConnectionsPerIp: 2 });
    try {
      const a = await limited.connect({ localAddress: '127.0.0.21' });
      const b = await limited.connect({ localAddress: '127.0.0.21', tls: false });
      assert.match(a.greeting, /^\* OK /);
      assert.match(b.greeting, /^\* OK /);
      // The limit covers both listeners.
      const c = await limited.connect({ localAddress: '127.0.0.21', tls: false });
      assert.equal(c.greeting, '* BYE Too many connections from your address');
      await c.closed();
      const other = await limited.connect({ localAddress: '127.0.0.22' });
      assert.match(other.greeting, /^\* OK /);
    } finally {
      await limited.close();
    }
  });
});

describe('ending sessions', () => {
  test('LOGOUT answers BYE and OK, then the server closes', async () => {
    const w = await srv.login(alice);
    const r = await w.command('a1 LOGOUT');
    assert.deepEqual(r.untagged, ['* BYE MaiRust IMAP4rev2 server logging out']);
    assert.equal(r.tagged, 'a1 OK LOGOUT completed');
    await w.closed();
  });

  test('autologout before and after login', async () => {
    const quick = await startImapServer({ fixture, limits: { preAuthTimeoutMs: 200, idleTimeoutMs: 400 } });
    try {
      const anonymous = await quick.connect();
      assert.equal(await anonymous.response(), '* BYE Autologout; idle for too long');
      await anonymous.closed();
      const logged = await quick.login(alice);
      assert.equal((await logged.command('a1 NOOP')).tagged, 'a1 OK NOOP completed');
      assert.equal(await logged.response(), '* BYE Autologout; idle for too long');
      await logged.closed();
    } finally {
      await quick.close();
    }
  });

  test('a graceful close says BYE to idle sessions', async () => {
    const closing = await startImapServer({ fixture });
    try {
      const w = await closing.login(alice);
      const done = closing.listeners.imaps.close(5000);
      assert.equal(await w.response(), '* BYE Server shutting down');
      await w.closed();
      await done;
    } finally {
      await closing.close();
    }
  });
});
