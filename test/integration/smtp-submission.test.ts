/**
 * Submission (SPEC §3.2, §2 "SMTP AUTH", §10 lockout) with real clients: STARTTLS then AUTH PLAIN /
 * LOGIN through swaks, Python smtplib and nodemailer; AUTH hidden and refused before TLS; AUTH
 * required before MAIL; the same 535 for unknown accounts and wrong passwords; the lockout per account
 * and per client address (loopback source addresses 127.0.0.x stand for different clients); and the
 * real user store (TenancyService) behind the authenticate function.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { systemScope } from '../../src/core/scope.js';
import { TEST_HOSTNAME, TEST_LOGINS, python, startSmtpFixture, swaks, testCertificate, type SmtpFixture } from '../support/smtp-fixture.js';
import { SmtpWire, plainCredentials } from '../support/smtp-wire.js';
import { tenancyFixture, type TenancyFixture } from '../support/tenancy-fixtures.js';

const ALICE = 'alice@example.test';
const ALICE_PW = TEST_LOGINS[ALICE].password;
const BOB = 'bob@example.test';
const BOB_PW = TEST_LOGINS[BOB].password;

const AUTH_FAILED = '535 5.7.8 Authentication credentials invalid';
const AUTH_LOCKED = '454 4.7.0 Temporary authentication failure, try again later';

/** A session from `source` (any 127.0.0.0/8 address on Linux), through STARTTLS, ready for AUTH. */
async function tlsSession(port: number, source = '127.0.0.1'): Promise<SmtpWire> {
  const c = await SmtpWire.connect(port, { localAddress: source });
  await c.reply();
  await c.ehlo();
  await c.startTls();
  await c.ehlo();
  return c;
}

async function authPlain(port: number, source: string, user: string, password: string): Promise<string> {
  const c = await tlsSession(port, source);
  try {
    return (await c.command(`AUTH PLAIN ${plainCredentials(user, password)}`)).line;
  } finally {
    c.destroy();
  }
}

describe('SMTP submission listener (587, STARTTLS)', () => {
  let sub: SmtpFixture;

  before(async () => {
    sub = await startSmtpFixture({ kind: 'submission' });
  });
  after(async () => {
    await sub.close();
  });
  beforeEach(async () => {
    sub.pipeline.received.length = 0;
    await sub.db.db.kysely.deleteFrom('auth_failures').execute();
  });

  test('before TLS: STARTTLS offered, AUTH neither advertised nor accepted, MAIL needs AUTH', async () => {
    const c = await SmtpWire.connect(sub.port);
    try {
      assert.equal((await c.reply()).line, `220 ${TEST_HOSTNAME} ESMTP MaiRust`);
      const { extensions } = await c.ehlo();
      assert.deepEqual(extensions, ['PIPELINING', 'SIZE 26214400', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'CHUNKING', 'STARTTLS']);
      // Not advertised and refused before TLS (RFC 4954 §4, SPEC §2), whatever the mechanism.
      assert.equal((await c.command(`AUTH PLAIN ${plainCredentials(ALICE, ALICE_PW)}`)).line, '538 5.7.11 Encryption required for requested authentication mechanism');
      assert.equal((await c.command('AUTH LOGIN')).line, '538 5.7.11 Encryption required for requested authentication mechanism');
      assert.equal((await c.command('MAIL FROM:<alice@example.test>')).line, '530 5.7.0 Authentication required');
    } finally {
      c.destroy();
    }
    assert.deepEqual(await sub.db.db.kysely.selectFrom('auth_failures').selectAll().execute(), [], 'no credentials were checked');
  });

  test('after STARTTLS: AUTH PLAIN LOGIN advertised; MAIL before AUTH is 530 5.7.0', async () => {
    const c = await SmtpWire.connect(sub.port);
    try {
      await c.reply();
      await c.ehlo();
      assert.equal((await c.startTls()).line, '220 2.0.0 Ready to start TLS');
      // RFC 3207 §4.2: the session starts over, EHLO is needed again.
      assert.equal((await c.command('AUTH PLAIN')).line, '503 5.5.1 Send EHLO or HELO first');
      const { extensions } = await c.ehlo();
      assert.deepEqual(extensions, ['PIPELINING', 'SIZE 26214400', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'CHUNKING', 'AUTH PLAIN LOGIN']);
      assert.equal((await c.command('MAIL FROM:<alice@example.test>')).line, '530 5.7.0 Authentication required');
      assert.equal((await c.command('AUTH CRAM-MD5')).line, '504 5.5.4 Unrecognized authentication type');
      // RFC 4954 §4: `*` cancels; a response that is not base64 is refused.
      assert.equal((await c.command('AUTH PLAIN')).line, '334 ');
      assert.equal((await c.command('*')).line, '501 5.0.0 Authentication cancelled');
      assert.equal((await c.command('AUTH LOGIN')).line, '334 VXNlcm5hbWU6');
      assert.equal((await c.command('not base64!')).line, '501 5.5.2 Cannot decode the authentication response');
      assert.equal((await c.command('AUTH PLAIN not-base64')).line, '501 5.5.2 Cannot decode the authentication response');
      // PLAIN after an empty challenge.
      assert.equal((await c.command('AUTH PLAIN')).line, '334 ');
      assert.equal((await c.command(plainCredentials(ALICE, ALICE_PW))).line, '235 2.7.0 Authentication successful');
      assert.equal((await c.command(`AUTH PLAIN ${plainCredentials(ALICE, ALICE_PW)}`)).line, '503 5.5.1 Already authenticated');
      assert.equal((await c.command('MAIL FROM:<alice@example.test>')).line, '250 2.1.0 Sender OK');
    } finally {
      c.destroy();
    }
  });

  test('swaks: STARTTLS + AUTH PLAIN, and STARTTLS + AUTH LOGIN with pipelining', async () => {
    for (const method of ['PLAIN', 'LOGIN']) {
      const r = await swaks(sub.port, [
        '--to', 'friend@remote.test', '--from', ALICE, '--tls', '--auth', method, '--auth-user', ALICE, '--auth-password', ALICE_PW, '--pipeline',
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /<~ {2}235 2\.7\.0 Authentication successful/);
      assert.match(r.stdout, /<~ {2}250 2\.0\.0 Message accepted for delivery/);
    }
    const messages = await sub.pipeline.waitForMessages(2);
    for (const m of messages) {
      assert.equal(m.session.listener, 'submission');
      assert.equal(m.session.secure, true);
      assert.equal(m.session.user?.id, 'user-alice');
      assert.equal(m.envelope.recipients[0].address, 'friend@remote.test');
    }
  });

  test('Python smtplib: starttls + login (PLAIN) and AUTH LOGIN', async () => {
    const script = `
import smtplib, ssl, sys
for mech in ['PLAIN', 'LOGIN']:
    s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='client.test')
    s.starttls(context=ssl._create_unverified_context())
    s.ehlo()
    s.user, s.password = ${JSON.stringify(BOB)}, ${JSON.stringify(BOB_PW)}
    code, text = s.auth(mech, getattr(s, 'auth_' + mech.lower()), initial_response_ok=(mech == 'PLAIN'))
    print(mech, code, text.decode())
    s.sendmail(${JSON.stringify(BOB)}, ['x@remote.test'], b'Subject: py\\r\\n\\r\\nhi\\r\\n')
    s.quit()
try:
    s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='client.test')
    s.starttls(context=ssl._create_unverified_context())
    s.login(${JSON.stringify(BOB)}, 'wrong password')
except smtplib.SMTPAuthenticationError as e:
    print('refused', e.smtp_code, e.smtp_error.decode())
`;
    const r = await python(script, sub.port);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /PLAIN 235 2\.7\.0 Authentication successful/);
    assert.match(r.stdout, /LOGIN 235 2\.7\.0 Authentication successful/);
    assert.match(r.stdout, /refused 535 5\.7\.8 Authentication credentials invalid/);
    const messages = await sub.pipeline.waitForMessages(2);
    assert.deepEqual(messages.map((m) => m.session.user?.id), ['user-bob', 'user-bob']);
  });

  test('nodemailer: STARTTLS (certificate pinned) with AUTH PLAIN and AUTH LOGIN', async () => {
    for (const authMethod of ['PLAIN', 'LOGIN']) {
      const transport = nodemailer.createTransport({
        host: '127.0.0.1',
        port: sub.port,
        secure: false,
        requireTLS: true,
        name: 'client.test',
        authMethod,
        auth: { user: ALICE, pass: ALICE_PW },
        tls: { ca: testCertificate().cert, servername: TEST_HOSTNAME },
      });
      const info = await transport.sendMail({ from: ALICE, to: 'someone@remote.test', subject: authMethod, text: 'hello' });
      assert.equal(info.response, '250 2.0.0 Message accepted for delivery');
    }
    assert.equal((await sub.pipeline.waitForMessages(2)).length, 2);
  });

  test('unknown account and wrong password get the same 535; PLAIN acting as another user is refused', async () => {
    const c = await tlsSession(sub.port);
    try {
      assert.equal((await c.command(`AUTH PLAIN ${plainCredentials('nobody@example.test', 'whatever pass')}`)).line, AUTH_FAILED);
      assert.equal((await c.command(`AUTH PLAIN ${plainCredentials(ALICE, 'wrong password')}`)).line, AUTH_FAILED);
      assert.equal((await c.command(`AUTH PLAIN ${plainCredentials(ALICE, ALICE_PW, BOB)}`)).line, AUTH_FAILED);
      // AUTH LOGIN: the same reply after the two challenges (RFC 4954 §4, draft-murchison-sasl-login).
      assert.equal((await c.command('AUTH LOGIN')).line, '334 VXNlcm5hbWU6');
      assert.equal((await c.command(Buffer.from(ALICE).toString('base64'))).line, '334 UGFzc3dvcmQ6');
      assert.equal((await c.command(Buffer.from('wrong').toString('base64'))).line, AUTH_FAILED);
    } finally {
      c.destroy();
    }
  });

  test('lockout per account: 5 failures from 5 addresses lock it, even for the right password', async () => {
    for (let i = 1; i <= 5; i++) assert.equal(await authPlain(sub.port, `127.0.0.${10 + i}`, ALICE, 'wrong password'), AUTH_FAILED);
    assert.equal(await authPlain(sub.port, '127.0.0.16', ALICE, ALICE_PW), AUTH_LOCKED, 'right password, fresh address, locked account');
    assert.equal(await authPlain(sub.port, '127.0.0.16', BOB, BOB_PW), '235 2.7.0 Authentication successful', 'other accounts still work');
    // A real client sees the same: swaks from yet another address fails with 454.
    const r = await swaks(sub.port, ['--to', 'x@remote.test', '--from', ALICE, '--tls', '--auth', 'PLAIN', '--auth-user', ALICE, '--auth-password', ALICE_PW]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /<~\* 454 4\.7\.0 Temporary authentication failure, try again later/);
  });

  test('lockout per address: 5 failures for any accounts lock the address, even for a right password', async () => {
    const source = '127.0.0.21';
    const accounts = ['nobody1@example.test', 'nobody2@example.test', ALICE, BOB, 'nobody3@example.test'];
    for (const account of accounts) assert.equal(await authPlain(sub.port, source, account, 'guess guess'), AUTH_FAILED);
    assert.equal(await authPlain(sub.port, source, BOB, BOB_PW), AUTH_LOCKED);
    assert.equal(await authPlain(sub.port, '127.0.0.22', BOB, BOB_PW), '235 2.7.0 Authentication successful', 'the account itself is not locked');
    const rows = await sub.db.db.kysely.selectFrom('auth_failures').select(['key', 'failures', 'locked_until']).where('key', '=', `ip:${source}`).execute();
    assert.equal(rows.length, 1);
    assert.equal(Number(rows[0].failures), 5);
    assert.ok(Number(rows[0].locked_until) > Date.now() + 14 * 60_000);
  });

  test('the failure that reaches the limit is still 535; only the next attempt is 454', async () => {
    const c = await tlsSession(sub.port, '127.0.0.31');
    try {
      for (let i = 0; i < 5; i++) assert.equal((await c.command(`AUTH PLAIN ${plainCredentials(ALICE, `wrong ${i}`)}`)).line, AUTH_FAILED);
      assert.equal((await c.command(`AUTH PLAIN ${plainCredentials(ALICE, ALICE_PW)}`)).line, AUTH_LOCKED);
    } finally {
      c.destroy();
    }
  });

  test('the lockout store failing answers 451 4.3.0, never a login', async () => {
    const original = sub.lockout.checkAny.bind(sub.lockout);
    sub.lockout.checkAny = async () => {
      throw new Error('database unreachable');
    };
    try {
      assert.equal(await authPlain(sub.port, '127.0.0.41', ALICE, ALICE_PW), '451 4.3.0 Temporary local problem, please try again later');
    } finally {
      sub.lockout.checkAny = original;
    }
  });
});

describe('SMTP submission with the real user store', () => {
  let tenancy: TenancyFixture;
  let sub: SmtpFixture;
  const PASSWORD = 'a quite long password 1';

  before(async () => {
    tenancy = await tenancyFixture();
    const t = await tenancy.tenancy.tenants.create(systemScope, { name: 'acme' });
    const scope = { kind: 'tenant' as const, tenantId: t.id };
    await tenancy.tenancy.domains.add(scope, { name: 'acme.test' });
    await tenancy.tenancy.users.add(scope, { email: 'erin@acme.test', password: PASSWORD, displayName: 'Erin' });
    sub = await startSmtpFixture({
      kind: 'submission',
      db: tenancy.test,
      authenticate: async (username, password) => {
        const user = await tenancy.tenancy.authenticate(systemScope, username, password);
        return user && { id: user.id, tenantId: user.tenantId, email: user.email, role: user.role };
      },
    });
  });
  after(async () => {
    await sub.close();
    await tenancy.test.drop();
  });

  test('logs in with the Argon2id password; wrong and unknown logins get 535', async () => {
    assert.equal(await authPlain(sub.port, '127.0.0.51', 'Erin@Acme.test', PASSWORD), '235 2.7.0 Authentication successful');
    assert.equal(await authPlain(sub.port, '127.0.0.51', 'erin@acme.test', 'not the password'), AUTH_FAILED);
    assert.equal(await authPlain(sub.port, '127.0.0.51', 'ghost@acme.test', PASSWORD), AUTH_FAILED);
  });
});
