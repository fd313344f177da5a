/**
 * TLS of the SMTP listeners (SPEC §2): implicit TLS on the 465-style listener with nodemailer, swaks
 * and Python; TLS 1.1 and weak suites refused by the server (OpenSSL's s_client and Node's client
 * offering them); a TLS 1.3 floor by config; the handshake bounded in time; and `reloadTls` swapping
 * the certificate for new connections on both implicit TLS and STARTTLS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import net from 'node:net';
import nodemailer from 'nodemailer';
import { createSelfSignedCertificate } from '../../src/protocols/net/self-signed.js';
import { TEST_HOSTNAME, TEST_LOGINS, python, run, startSmtpFixture, swaks, testCertificate, type SmtpFixture } from '../support/smtp-fixture.js';
import { SmtpWire, plainCredentials } from '../support/smtp-wire.js';
import { freshDatabase, type TestDatabase } from '../support/shape.js';

const ALICE = 'alice@example.test';
const ALICE_PW = TEST_LOGINS[ALICE].password;

function sClient(port: number, args: string[]) {
  return run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', TEST_HOSTNAME, ...args], { input: 'QUIT\r\n', timeoutMs: 15_000 });
}

/** The certificate subject a new TLS connection is shown. */
function peerSubject(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: TEST_HOSTNAME, rejectUnauthorized: false }, () => {
      resolve(String(s.getPeerCertificate().subject.CN));
      s.destroy();
    });
    s.on('error', reject);
  });
}

describe('SMTP TLS', () => {
  let db: TestDatabase;
  let smtps: SmtpFixture;
  let submission: SmtpFixture;

  before(async () => {
    db = await freshDatabase();
    smtps = await startSmtpFixture({ kind: 'submission', implicitTls: true, db, limits: { commandTimeoutMs: 1500 } });
    submission = await startSmtpFixture({ kind: 'submission', db });
  });
  after(async () => {
    await smtps.close();
    await submission.close();
    await db.drop();
  });

  test('implicit TLS: greeting over TLS, AUTH offered at once, no STARTTLS', async () => {
    const c = await SmtpWire.connect(smtps.port, { tls: { ca: testCertificate().cert, servername: TEST_HOSTNAME, rejectUnauthorized: true } });
    try {
      assert.equal((await c.reply()).line, `220 ${TEST_HOSTNAME} ESMTP MaiRust`);
      const { extensions } = await c.ehlo();
      assert.deepEqual(extensions, ['PIPELINING', 'SIZE 26214400', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'CHUNKING', 'AUTH PLAIN LOGIN']);
      assert.equal((await c.command('STARTTLS')).line, '503 5.5.1 TLS already active');
      assert.equal((await c.command(`AUTH PLAIN ${plainCredentials(ALICE, ALICE_PW)}`)).line, '235 2.7.0 Authentication successful');
    } finally {
      c.destroy();
    }
  });

  test('nodemailer (secure: true), swaks (--tls-on-connect) and Python SMTP_SSL submit over implicit TLS', async () => {
    smtps.pipeline.received.length = 0;
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: smtps.port,
      secure: true,
      name: 'client.test',
      auth: { user: ALICE, pass: ALICE_PW },
      tls: { ca: testCertificate().cert, servername: TEST_HOSTNAME },
    });
    await transport.sendMail({ from: ALICE, to: 'x@remote.test', subject: 'nodemailer', text: 'hi' });
    const r = await swaks(smtps.port, ['--to', 'x@remote.test', '--from', ALICE, '--tls-on-connect', '--auth', 'LOGIN', '--auth-user', ALICE, '--auth-password', ALICE_PW]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const py = await python(
      `
import smtplib, ssl, sys
s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), local_hostname='client.test', context=ssl._create_unverified_context())
s.login(${JSON.stringify(ALICE)}, ${JSON.stringify(ALICE_PW)})
s.sendmail(${JSON.stringify(ALICE)}, ['x@remote.test'], b'Subject: py\\r\\n\\r\\nhi\\r\\n')
print(s.sock.version())
s.quit()
`,
      smtps.port,
    );
    assert.equal(py.code, 0, py.stdout + py.stderr);
    assert.equal(py.stdout.trim(), 'TLSv1.3');
    const messages = await smtps.pipeline.waitForMessages(3);
    for (const m of messages) {
      assert.equal(m.session.secure, true);
      assert.equal(m.session.user?.id, 'user-alice');
    }
  });

  test('TLS 1.1 is refused by the server on implicit TLS and on STARTTLS; TLS 1.2 and 1.3 work', async () => {
    const old = await sClient(smtps.port, ['-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0']);
    assert.notEqual(old.code, 0);
    assert.match(old.stderr, /alert protocol version/, 'the server answered with a protocol_version alert');
    const oldStartTls = await run('openssl', ['s_client', '-starttls', 'smtp', '-connect', `127.0.0.1:${submission.port}`, '-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0'], {
      input: 'QUIT\r\n',
      timeoutMs: 15_000,
    });
    assert.notEqual(oldStartTls.code, 0);
    assert.match(oldStartTls.stderr, /alert protocol version/);
    // Node's own client offering at most TLS 1.1 fails the handshake as well.
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = tls.connect({ port: smtps.port, host: '127.0.0.1', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0', rejectUnauthorized: false }, () => resolve(s));
        s.on('error', reject);
      }),
    );
    const v12 = await sClient(smtps.port, ['-tls1_2']);
    assert.equal(v12.code, 0, v12.stderr);
    assert.match(v12.stdout, /Cipher is ECDHE-ECDSA-AES128-GCM-SHA256/);
    const v13 = await sClient(smtps.port, ['-tls1_3']);
    assert.equal(v13.code, 0, v13.stderr);
    assert.match(v13.stdout, /TLSv1\.3/);
  });

  test('weak TLS 1.2 suites (CBC with SHA-1, no forward secrecy) are refused', async () => {
    for (const cipher of ['ECDHE-ECDSA-AES128-SHA', 'AES128-SHA', 'AES128-GCM-SHA256']) {
      const r = await sClient(smtps.port, ['-tls1_2', '-cipher', cipher]);
      assert.notEqual(r.code, 0, cipher);
      assert.match(r.stderr, /handshake failure|no cipher/i, cipher);
    }
  });

  test('a TLS 1.3 floor (tls.min_version) refuses TLS 1.2', async () => {
    const strict = await startSmtpFixture({ kind: 'submission', implicitTls: true, db, minVersion: 'TLSv1.3' });
    try {
      const v12 = await sClient(strict.port, ['-tls1_2']);
      assert.notEqual(v12.code, 0);
      assert.match(v12.stderr, /alert protocol version/);
      assert.equal((await sClient(strict.port, ['-tls1_3'])).code, 0);
    } finally {
      await strict.close();
    }
  });

  test('STARTTLS command injection: plaintext sent after STARTTLS is discarded, not run under TLS (RFC 3207 §4.2)', async () => {
    const plain = net.connect(submission.port, '127.0.0.1');
    await new Promise((r) => plain.once('connect', r));
    let clear = '';
    const onClear = (d: Buffer) => (clear += d.toString());
    plain.on('data', onClear);
    const until = async (re: RegExp) => {
      for (let i = 0; i < 200 && !re.test(clear); i++) await new Promise((r) => setTimeout(r, 10));
      assert.match(clear, re);
    };
    plain.write('EHLO client.test\r\n');
    await until(/250 STARTTLS\r\n$/);
    // One packet: STARTTLS plus commands a man in the middle appended in clear.
    plain.write('STARTTLS\r\nRSET\r\nMAIL FROM:<mallory@remote.test>\r\n');
    await until(/220 2\.0\.0 Ready to start TLS\r\n$/);
    await new Promise((r) => setTimeout(r, 100));
    assert.match(clear, /220 2\.0\.0 Ready to start TLS\r\n$/, 'nothing answered in clear after the 220');
    plain.off('data', onClear);
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false });
    await new Promise((r) => secure.once('secureConnect', r));
    let text = '';
    secure.on('data', (d: Buffer) => (text += d.toString()));
    secure.write('NOOP\r\nMAIL FROM:<alice@example.test>\r\n');
    for (let i = 0; i < 200 && text.split('\r\n').length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    // Had RSET or MAIL been kept, their replies would come first; the first reply is NOOP's, and the
    // session starts over (EHLO needed again).
    assert.equal(text, '250 2.0.0 OK\r\n503 5.5.1 Send EHLO or HELO first\r\n');
    secure.destroy();
  });

  test('a client that stalls in the STARTTLS handshake is dropped after the command timeout', async () => {
    const quick = await startSmtpFixture({ kind: 'mx', db, limits: { commandTimeoutMs: 1000 } });
    const socket = net.connect(quick.port, '127.0.0.1');
    let received = '';
    socket.on('data', (d) => (received += d));
    await new Promise((r) => socket.once('connect', r));
    socket.write('EHLO client.test\r\nSTARTTLS\r\n');
    const started = Date.now();
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const elapsed = Date.now() - started;
    assert.match(received, /220 2\.0\.0 Ready to start TLS\r\n$/);
    assert.ok(elapsed >= 800 && elapsed < 10_000, `closed after ${elapsed} ms`);
    await quick.close();
  });

  test('a client that never completes the handshake is dropped after the command timeout', async () => {
    const started = Date.now();
    const socket = net.connect(smtps.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1000 && elapsed < 10_000, `closed after ${elapsed} ms`);
    assert.equal(smtps.listener.openSessions, 0);
  });

  test('reloadTls: new connections get the new certificate, on implicit TLS and on STARTTLS', async () => {
    assert.equal(await peerSubject(smtps.port), TEST_HOSTNAME);
    const open = await SmtpWire.connect(smtps.port, { tls: {} });
    await open.reply();
    const next = createSelfSignedCertificate('mx-next.example.test');
    for (const f of [smtps, submission]) f.listener.reloadTls({ key: next.key, cert: next.cert, minVersion: 'TLSv1.2' });
    assert.equal(await peerSubject(smtps.port), 'mx-next.example.test');

    const c = await SmtpWire.connect(submission.port);
    try {
      await c.reply();
      await c.ehlo();
      await c.startTls({ servername: 'mx-next.example.test', ca: next.cert, rejectUnauthorized: true });
      assert.equal((await c.ehlo()).reply.code, 250);
    } finally {
      c.destroy();
    }
    // The session opened before the reload goes on with its certificate.
    assert.equal((await open.command('NOOP')).code, 250);
    open.destroy();
    const original = testCertificate();
    for (const f of [smtps, submission]) f.listener.reloadTls({ key: original.key, cert: original.cert, minVersion: 'TLSv1.2' });
  });

  test('reloadTls with a broken certificate throws and keeps the old one', async () => {
    assert.throws(() => smtps.listener.reloadTls({ key: 'nope', cert: 'nope', minVersion: 'TLSv1.2' }), /cannot use the TLS certificate/);
    assert.equal(await peerSubject(smtps.port), TEST_HOSTNAME);
  });
});
