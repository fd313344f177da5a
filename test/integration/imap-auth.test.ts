/**
 * IMAP logins over real listeners (both shapes): LOGIN, AUTHENTICATE PLAIN with and without an
 * initial response (SASL-IR), cancel and malformed responses, authzid ≠ authcid, the same reply
 * for unknown accounts and wrong passwords, lockout per account and per client address (127.0.0.x
 * source addresses), users without a mailbox, the per-user session limit, and a lockout store
 * outage.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { systemScope } from '../../src/core/scope.js';
import { mailServicesFixture, TEST_PASSWORD, type MailServicesFixture, type TestAccount } from '../support/mail-services.js';
import { quote, saslPlain, startImapServer, type ImapTestServer } from '../support/imap.js';

const FAILED = 'NO [AUTHENTICATIONFAILED] Authentication failed';
const LOCKED = 'NO [UNAVAILABLE] Too many failed logins; try again later';

let fixture: MailServicesFixture;
let srv: ImapTestServer;
let alice: TestAccount;

before(async () => {
  // Three failures lock a key (SPEC §10 uses 5; fewer keeps the suite short).
  fixture = await mailServicesFixture({ lockout: { maxFailures: 3 } });
  srv = await startImapServer({ fixture });
  alice = await fixture.addAccount('alice@acme.test');
});

after(async () => {
  await srv.close();
  await fixture.close();
});

/** Logins of these tests come from their own loopback address so lockout keys do not mix. */
const from = (n: number) => ({ localAddress: `127.0.0.${n}` });

describe('LOGIN', () => {
  test('right password: OK with the capabilities; the session is authenticated', async () => {
    const w = await srv.connect(from(2));
    const r = await w.command(`a1 LOGIN ${quote(alice.email)} ${quote(alice.password)}`);
    assert.match(r.tagged, /^a1 OK \[CAPABILITY IMAP4rev1 IMAP4rev2 .* IDLE .*\] LOGIN completed$/);
    assert.equal((await w.command('a2 LIST "" "INBOX"')).tagged, 'a2 OK LIST completed');
    await w.command('a3 LOGOUT');
  });

  test('login names are case-insensitive; a literal password works', async () => {
    const w = await srv.connect(from(2));
    const r = await w.command(`a1 LOGIN ALICE@ACME.TEST {${alice.password.length}}\r\n${alice.password}`);
    assert.deepEqual(r.continuations, ['+ Ready for literal data']);
    assert.match(r.tagged, /^a1 OK \[CAPABILITY .*\] LOGIN completed$/);
    await w.command('a2 LOGOUT');
  });

  test('unknown account and wrong password get the same reply', async () => {
    const w = await srv.connect(from(3));
    const wrong = await w.command(`a1 LOGIN ${quote(alice.email)} "not the password"`);
    const unknown = await w.command(`a2 LOGIN nobody@acme.test ${quote(TEST_PASSWORD)}`);
    assert.equal(wrong.tagged, `a1 ${FAILED}`);
    assert.equal(unknown.tagged, `a2 ${FAILED}`);
    assert.equal((await w.command('a3 NAMESPACE')).tagged, 'a3 BAD Not logged in');
  });

  test('a user without an own mailbox cannot log in', async () => {
    await fixture.tenancy.users.add(systemScope, { tenantId: alice.user.tenantId, email: 'nomail@acme.test', password: TEST_PASSWORD });
    const w = await srv.connect(from(4));
    const r = await w.command(`a1 LOGIN nomail@acme.test ${quote(TEST_PASSWORD)}`);
    assert.equal(r.tagged, 'a1 NO [AUTHORIZATIONFAILED] This account has no mailbox');
  });

  test('more sessions of one user than allowed: NO [LIMIT]; a LOGOUT frees the slot', async () => {
    const limited = await startImapServer({ fixture, maxConnectionsPerUser: 2 });
    try {
      const bob = await fixture.addAccount('bob@acme.test');
      const one = await limited.login(bob, from(5));
      await limited.login(bob, from(5));
      const w = await limited.connect(from(5));
      const r = await w.command(`a1 LOGIN ${quote(bob.email)} ${quote(bob.password)}`);
      assert.equal(r.tagged, 'a1 NO [LIMIT] Too many sessions for this user');
      await one.command('z1 LOGOUT');
      const again = await w.command(`a2 LOGIN ${quote(bob.email)} ${quote(bob.password)}`);
      assert.match(again.tagged, /^a2 OK /);
    } finally {
      await limited.close();
    }
  });
});

describe('AUTHENTICATE PLAIN', () => {
  test('with an initial response (SASL-IR)', async () => {
    const w = await srv.connect(from(6));
    const r = await w.command(`a1 AUTHENTICATE PLAIN ${saslPlain(alice.email, alice.password)}`);
    assert.deepEqual(r.continuations, []);
    assert.match(r.tagged, /^a1 OK \[CAPABILITY IMAP4rev1 .*\] AUTHENTICATE completed$/);
  });

  test('without an initial response: an empty challenge, then the response line', async () => {
    const w = await srv.connect(from(6));
    w.send('a1 AUTHENTICATE plain\r\n');
    assert.equal(await w.response(), '+ ');
    w.send(`${saslPlain(alice.email, alice.password)}\r\n`);
    assert.match((await w.readUntilTagged('a1')).tagged, /^a1 OK \[CAPABILITY .*\] AUTHENTICATE completed$/);
  });

  test('an authorization identity equal to the login is accepted, another one refused', async () => {
    const same = await srv.connect(from(7));
    const ok = await same.command(`a1 AUTHENTICATE PLAIN ${saslPlain(alice.email, alice.password, alice.email)}`);
    assert.match(ok.tagged, /^a1 OK /);
    const other = await srv.connect(from(7));
    const r = await other.command(`a1 AUTHENTICATE PLAIN ${saslPlain(alice.email, alice.password, 'bob@acme.test')}`);
    assert.equal(r.tagged, `a1 ${FAILED}`);
  });

  test('cancel, bad base64, a malformed message and an unknown mechanism', async () => {
    const w = await srv.connect(from(8));
    w.send('a1 AUTHENTICATE PLAIN\r\n');
    assert.equal(await w.response(), '+ ');
    w.send('*\r\n');
    assert.equal((await w.readUntilTagged('a1')).tagged, 'a1 BAD Authentication cancelled');
    assert.equal((await w.command('a2 AUTHENTICATE PLAIN %%%')).tagged, 'a2 BAD Invalid base64 in the authentication response');
    assert.equal((await w.command('a3 AUTHENTICATE PLAIN =')).tagged, 'a3 BAD Invalid PLAIN authentication message');
    const noNul = Buffer.from('just-a-string').toString('base64');
    assert.equal((await w.command(`a4 AUTHENTICATE PLAIN ${noNul}`)).tagged, 'a4 BAD Invalid PLAIN authentication message');
    assert.equal((await w.command('a5 AUTHENTICATE LOGIN')).tagged, 'a5 NO [CANNOT] Unsupported authentication mechanism');
    assert.equal((await w.command('a6 AUTHENTICATE')).tagged, 'a6 BAD Missing arguments to AUTHENTICATE');
  });

  test('a wrong password fails like LOGIN', async () => {
    const w = await srv.connect(from(9));
    const r = await w.command(`a1 AUTHENTICATE PLAIN ${saslPlain(alice.email, 'wrong password here')}`);
    assert.equal(r.tagged, `a1 ${FAILED}`);
  });
});

describe('lockout (SPEC §10)', () => {
  test('per account: failures from one address lock the account for every address', async () => {
    const carol = await fixture.addAccount('carol@acme.test');
    const attacker = await srv.connect(from(10));
    for (let i = 1; i <= 3; i++) {
      assert.equal((await attacker.command(`a${i} LOGIN ${quote(carol.email)} "guess number ${i}"`)).tagged, `a${i} ${FAILED}`);
    }
    // The right password, from another address, via both mechanisms: refused without a check.
    const owner = await srv.connect(from(11));
    assert.equal((await owner.command(`b1 LOGIN ${quote(carol.email)} ${quote(carol.password)}`)).tagged, `b1 ${LOCKED}`);
    assert.equal((await owner.command(`b2 AUTHENTICATE PLAIN ${saslPlain(carol.email, carol.password)}`)).tagged, `b2 ${LOCKED}`);
    // Another account from that second address is not affected.
    assert.match((await owner.command(`b3 LOGIN ${quote(alice.email)} ${quote(alice.password)}`)).tagged, /^b3 OK /);
  });

  test('per address: failures against several accounts lock the address', async () => {
    const dave = await fixture.addAccount('dave@acme.test');
    const w = await srv.connect(from(12));
    const names = ['x1@acme.test', 'x2@acme.test', 'x3@acme.test'];
    for (const [i, n] of names.entries()) assert.equal((await w.command(`a${i} LOGIN ${n} "wrong password"`)).tagged, `a${i} ${FAILED}`);
    assert.equal((await w.command(`a9 LOGIN ${quote(dave.email)} ${quote(dave.password)}`)).tagged, `a9 ${LOCKED}`);
    const elsewhere = await srv.connect(from(13));
    assert.match((await elsewhere.command(`b1 LOGIN ${quote(dave.email)} ${quote(dave.password)}`)).tagged, /^b1 OK /);
  });

  test('a lockout store that cannot be reached refuses logins with UNAVAILABLE', async () => {
    const original = fixture.lockout.checkAny;
    fixture.lockout.checkAny = async () => {
      throw new Error('database is down');
    };
    try {
      const w = await srv.connect(from(14));
      const r = await w.command(`a1 LOGIN ${quote(alice.email)} ${quote(alice.password)}`);
      assert.equal(r.tagged, 'a1 NO [UNAVAILABLE] Authentication is temporarily unavailable; try again later');
    } finally {
      fixture.lockout.checkAny = original;
    }
  });
});
