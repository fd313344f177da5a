/**
 * The inbound MX listener (SPEC §3.1, §5.1) with real clients: swaks (pipelining, STARTTLS), Python
 * smtplib (8BITMIME, SMTPUTF8) and nodemailer; no AUTH offered at all; pipeline verdicts answered with
 * the exact reply-table lines.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { REPLIES } from '../../src/protocols/smtp/replies.js';
import { TEST_HOSTNAME, python, run, startSmtpFixture, swaks, testCertificate, type SmtpFixture } from '../support/smtp-fixture.js';
import { SmtpWire } from '../support/smtp-wire.js';

describe('SMTP MX listener', () => {
  let mx: SmtpFixture;

  before(async () => {
    mx = await startSmtpFixture({ kind: 'mx', users: ['bob', 'carol', 'ユーザー'] });
  });
  after(async () => {
    await mx.close();
  });
  beforeEach(() => {
    mx.pipeline.received.length = 0;
    Object.assign(mx.pipeline.force, { sender: undefined, recipient: undefined, receive: undefined });
  });

  test('swaks with PIPELINING delivers; EHLO offers the extensions and SIZE but no AUTH', async () => {
    const r = await swaks(mx.port, ['--to', 'bob@example.test,carol+news@example.test', '--from', 'sender@remote.test', '--pipeline', '--body', 'Hello Bob\n.leading dot\n']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /<- {2}250-mx\.example\.test\n<- {2}250-PIPELINING\n<- {2}250-SIZE 26214400\n<- {2}250-8BITMIME\n<- {2}250-SMTPUTF8\n<- {2}250-ENHANCEDSTATUSCODES\n<- {2}250-CHUNKING\n<- {2}250 STARTTLS\n/,
    );
    assert.doesNotMatch(r.stdout, /AUTH/);
    // Pipelined: MAIL, RCPT, RCPT, DATA went out before the first reply came back (RFC 2920).
    assert.match(r.stdout, / -> MAIL FROM:<sender@remote\.test>\n -> RCPT TO:<bob@example\.test>\n -> RCPT TO:<carol\+news@example\.test>\n -> DATA\n/);
    // The pipelined group is answered in order, every reply with its enhanced status code (RFC 2034).
    assert.match(r.stdout, /<- {2}250 2\.1\.0 Sender OK\n<- {2}250 2\.1\.5 Recipient OK\n<- {2}250 2\.1\.5 Recipient OK\n<- {2}354 End data with <CR><LF>\.<CR><LF>\n/);
    assert.match(r.stdout, /<- {2}250 2\.0\.0 Message accepted for delivery/);
    assert.match(r.stdout, /<- {2}221 2\.0\.0 Bye/);
    const [m] = await mx.pipeline.waitForMessages(1);
    assert.equal(m.envelope.mailFrom, 'sender@remote.test');
    assert.deepEqual(
      m.envelope.recipients.map((x) => [x.address, x.subaddress]),
      [
        ['bob@example.test', undefined],
        ['carol+news@example.test', 'news'],
      ],
    );
    assert.equal(m.session.listener, 'mx');
    assert.equal(m.session.secure, false);
    assert.equal(m.session.helo, 'client.test');
    assert.equal(m.session.user, undefined);
    assert.match(m.data.toString(), /\r\n\r\nHello Bob\r\n\.leading dot\r\n/, 'dot-stuffing removed (RFC 5321 §4.5.2)');
  });

  test('swaks with STARTTLS: TLS session, still no AUTH offered after TLS', async () => {
    const r = await swaks(mx.port, ['--to', 'bob@example.test', '--from', 'sender@remote.test', '--tls']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /TLS started with cipher TLSv1\.3/);
    assert.doesNotMatch(r.stdout, /AUTH/);
    const [m] = await mx.pipeline.waitForMessages(1);
    assert.equal(m.session.secure, true);
  });

  test('Python smtplib: an 8BITMIME body and an SMTPUTF8 address arrive byte for byte', async () => {
    const script = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='client.test')
s.ehlo()
print('features', sorted(s.esmtp_features))
body = 'Subject: 8bit\\r\\nContent-Type: text/plain; charset=utf-8\\r\\nContent-Transfer-Encoding: 8bit\\r\\n\\r\\n日本語のメール本文\\r\\n'.encode('utf-8')
print('8bit', s.sendmail('sender@remote.test', ['bob@example.test'], body, mail_options=['BODY=8BITMIME']))
utf8 = 'Subject: utf8\\r\\n\\r\\nこんにちは\\r\\n'.encode('utf-8')
print('utf8', s.sendmail('送信者@remote.test', ['ユーザー@example.test'], utf8, mail_options=['SMTPUTF8', 'BODY=8BITMIME']))
s.quit()
`;
    const r = await python(script, mx.port);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /features \[.*'8bitmime'.*'smtputf8'.*\]/);
    const [eight, utf8] = await mx.pipeline.waitForMessages(2);
    assert.ok(eight.data.includes(Buffer.from('日本語のメール本文\r\n', 'utf8')));
    assert.equal(utf8.envelope.mailFrom, '送信者@remote.test');
    assert.equal(utf8.envelope.recipients[0].address, 'ユーザー@example.test');
    assert.ok(utf8.data.includes(Buffer.from('こんにちは', 'utf8')));
  });

  test('nodemailer delivers in clear and with STARTTLS against the pinned certificate', async () => {
    const clear = nodemailer.createTransport({ host: '127.0.0.1', port: mx.port, secure: false, ignoreTLS: true, name: 'client.test' });
    const info = await clear.sendMail({ from: 'sender@remote.test', to: 'bob@example.test', subject: 'clear', text: 'plain' });
    assert.match(info.response, /^250 2\.0\.0 Message accepted for delivery$/);
    const secure = nodemailer.createTransport({
      host: '127.0.0.1',
      port: mx.port,
      secure: false,
      requireTLS: true,
      name: 'client.test',
      tls: { ca: testCertificate().cert, servername: TEST_HOSTNAME },
    });
    await secure.sendMail({ from: 'sender@remote.test', to: 'carol@example.test', subject: 'tls', text: 'secret' });
    const [first, second] = await mx.pipeline.waitForMessages(2);
    assert.equal(first.session.secure, false);
    assert.equal(second.session.secure, true);
  });

  test('unknown recipient, relaying and AUTH are refused with the exact replies', async () => {
    const c = await SmtpWire.connect(mx.port);
    try {
      assert.equal((await c.reply()).line, `220 ${TEST_HOSTNAME} ESMTP MaiRust`);
      await c.ehlo();
      // No AUTH on the MX port at all (SPEC §3.1), before or after TLS.
      assert.equal((await c.command('AUTH PLAIN')).line, '503 5.5.1 Authentication not enabled');
      assert.equal((await c.command('DATA')).line, '503 5.5.1 Need MAIL command first');
      assert.equal((await c.command('MAIL FROM:<sender@remote.test>')).code, 250);
      assert.equal((await c.command('RCPT TO:<nobody@example.test>')).line, '550 5.1.1 No such user here');
      assert.equal((await c.command('RCPT TO:<victim@elsewhere.test>')).line, '554 5.7.1 Relay access denied');
      assert.equal((await c.command('DATA')).line, '554 5.5.1 No valid recipients');
      assert.equal((await c.command('VRFY bob')).line, '252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery');
      assert.equal((await c.command('QUIT')).line, '221 2.0.0 Bye');
      await c.closed();
    } finally {
      c.destroy();
    }
    assert.deepEqual(mx.pipeline.received, []);
  });

  test('pipeline verdicts are answered with their reply; a failing pipeline gets 451 4.3.0', async () => {
    const c = await SmtpWire.connect(mx.port);
    try {
      await c.reply();
      await c.ehlo();
      mx.pipeline.force.sender = { ok: false, reply: REPLIES.DMARC_REJECT };
      assert.equal((await c.command('MAIL FROM:<spoof@remote.test>')).line, '550 5.7.1 Rejected by DMARC policy');
      mx.pipeline.force.sender = undefined;
      assert.equal((await c.command('MAIL FROM:<sender@remote.test> SIZE=100')).code, 250);
      mx.pipeline.force.recipient = { ok: false, reply: REPLIES.MAILBOX_FULL };
      assert.equal((await c.command('RCPT TO:<bob@example.test>')).line, '452 4.2.2 Mailbox full, try again later');
      mx.pipeline.force.recipient = undefined;
      assert.equal((await c.command('RCPT TO:<bob@example.test>')).code, 250);
      mx.pipeline.force.receive = { ok: false, reply: REPLIES.SPAM_REJECT };
      assert.equal((await c.command('DATA')).code, 354);
      assert.equal((await c.command('Subject: spam\r\n\r\nbuy\r\n.')).line, '550 5.7.1 Message rejected as spam');
      mx.pipeline.force.receive = undefined;

      // The pipeline throws (its database is down): temporary failure, nothing accepted.
      const original = mx.pipeline.checkRecipient.bind(mx.pipeline);
      mx.pipeline.checkRecipient = async () => {
        throw new Error('database unreachable');
      };
      try {
        assert.equal((await c.command('MAIL FROM:<sender@remote.test>')).code, 250);
        assert.equal((await c.command('RCPT TO:<bob@example.test>')).line, '451 4.3.0 Temporary local problem, please try again later');
      } finally {
        mx.pipeline.checkRecipient = original;
      }
      assert.equal((await c.command('RCPT TO:<bob@example.test>')).code, 250);
      const receive = mx.pipeline.receive.bind(mx.pipeline);
      mx.pipeline.receive = async (_s, _e, data) => {
        data.resume();
        throw new Error('blob store unreachable');
      };
      try {
        assert.equal((await c.command('DATA')).code, 354);
        assert.equal((await c.command('Subject: x\r\n\r\nbody\r\n.')).line, '451 4.3.0 Temporary local problem, please try again later');
      } finally {
        mx.pipeline.receive = receive;
      }
      // The session goes on normally afterwards.
      assert.equal((await c.command('MAIL FROM:<sender@remote.test>')).code, 250);
      assert.equal((await c.command('RCPT TO:<bob@example.test>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      assert.equal((await c.command('Subject: ok\r\n\r\nbody\r\n.')).line, '250 2.0.0 Message accepted for delivery');
    } finally {
      c.destroy();
    }
    assert.equal(mx.pipeline.received.length, 1);
  });

  test('BDAT (RFC 3030): binary chunks of exact size, LAST completes, pipelined; no mixing with DATA', async () => {
    const c = await SmtpWire.connect(mx.port);
    try {
      await c.reply();
      assert.ok((await c.ehlo()).extensions.includes('CHUNKING'));
      // A chunk holds any octets: a line with a lone dot and a bare LF are content, not an end.
      const part1 = Buffer.from('Subject: chunked\r\n\r\nfirst part\r\n.\r\n');
      const part2 = Buffer.from('binary \x00\xff\n.\nend\r\n', 'latin1');
      c.write(Buffer.concat([
        Buffer.from('MAIL FROM:<sender@remote.test>\r\nRCPT TO:<bob@example.test>\r\n'),
        Buffer.from(`BDAT ${part1.length}\r\n`), part1,
        Buffer.from(`BDAT ${part2.length} LAST\r\n`), part2,
      ]));
      assert.equal((await c.reply()).line, '250 2.1.0 Sender OK');
      assert.equal((await c.reply()).line, '250 2.1.5 Recipient OK');
      assert.equal((await c.reply()).line, '250 2.0.0 Chunk received');
      assert.equal((await c.reply()).line, '250 2.0.0 Message accepted for delivery');
      const [m] = await mx.pipeline.waitForMessages(1);
      assert.deepEqual(m.data, Buffer.concat([part1, part2]));
      assert.equal(m.envelope.recipients[0].address, 'bob@example.test');

      // BDAT 0 LAST ends a message whose last chunk was sent without LAST.
      await c.command('MAIL FROM:<sender@remote.test>');
      await c.command('RCPT TO:<carol@example.test>');
      c.write('BDAT 10\r\nSubject: z');
      assert.equal((await c.reply()).line, '250 2.0.0 Chunk received');
      assert.equal((await c.command('DATA')).line, '503 5.5.1 DATA cannot follow BDAT in one transaction');
      assert.equal((await c.command('BDAT 0 LAST')).line, '250 2.0.0 Message accepted for delivery');
      assert.equal((await mx.pipeline.waitForMessages(2))[1].data.toString(), 'Subject: z');

      // Refused BDATs still consume their octets (RFC 3030 §2), so the session stays in step.
      c.write('BDAT 12\r\nQUIT\r\nQUIT\r\n');
      assert.equal((await c.reply()).line, '503 5.5.1 Need MAIL command first');
      await c.command('MAIL FROM:<sender@remote.test>');
      c.write('BDAT 6 LAST\r\nRSET\r\n');
      assert.equal((await c.reply()).line, '554 5.5.1 No valid recipients');
      assert.equal((await c.command('BDAT ten')).line, '501 5.5.4 Syntax error in parameters or arguments');
      assert.equal((await c.command('NOOP')).line, '250 2.0.0 OK');
    } finally {
      c.destroy();
    }
    assert.equal(mx.pipeline.received.length, 2);
  });

  test('BDAT over the size limit: 552 5.3.4 for the chunk, the transaction ends, nothing stored', async () => {
    const small = await startSmtpFixture({ kind: 'mx', db: mx.db, limits: { maxMessageBytes: 100 } });
    const c = await SmtpWire.connect(small.port);
    try {
      await c.reply();
      await c.ehlo();
      await c.command('MAIL FROM:<sender@remote.test>');
      await c.command('RCPT TO:<bob@example.test>');
      c.write(`BDAT 60\r\n${'a'.repeat(60)}`);
      assert.equal((await c.reply()).line, '250 2.0.0 Chunk received');
      c.write(`BDAT 60\r\n${'b'.repeat(60)}`);
      assert.equal((await c.reply()).line, '552 5.3.4 Message size exceeds fixed maximum message size');
      c.write(`BDAT 5 LAST\r\nccccc`);
      assert.equal((await c.reply()).line, '503 5.5.1 Need MAIL command first');
      assert.equal(small.pipeline.received.length, 0);
      assert.equal(small.pipeline.aborted.length, 1);
    } finally {
      c.destroy();
      await small.close();
    }
  });

  test('addresses: SMTPUTF8 needed for non-ASCII, quoted local parts, source routes, <> and <Postmaster>', async () => {
    const c = await SmtpWire.connect(mx.port);
    try {
      await c.reply();
      assert.equal((await c.command('MAIL FROM:<a@remote.test>')).line, '503 5.5.1 Send EHLO or HELO first');
      assert.equal((await c.command('HELO client.test')).line, `250 ${TEST_HOSTNAME}`);
      assert.equal((await c.command('MAIL FROM:<送信者@remote.test>')).line, '553 5.6.7 Non-ASCII address requires SMTPUTF8');
      assert.equal((await c.command('MAIL FROM:<a@remote.test> RET=FULL')).line, '555 5.5.4 Unsupported parameter');
      assert.equal((await c.command('MAIL FROM:<a@remote.test> BODY=BINARYMIME')).line, '555 5.5.4 Unsupported parameter');
      assert.equal((await c.command('MAIL FROM:<not an address>')).line, '501 5.1.7 Bad sender address syntax');
      assert.equal((await c.command('MAIL FROM:<>')).line, '250 2.1.0 Sender OK');
      assert.equal((await c.command('MAIL FROM:<a@remote.test>')).line, '503 5.5.1 Sender already specified');
      assert.equal((await c.command('RCPT TO:<ユーザー@example.test>')).line, '553 5.6.7 Non-ASCII address requires SMTPUTF8');
      // A quoted local part (with a space and an @) reaches the pipeline as written.
      assert.equal((await c.command('RCPT TO:<"bob smith@home"@example.test>')).line, '550 5.1.1 No such user here');
      assert.equal(mx.pipeline.recipientChecks.at(-1), '"bob smith@home"@example.test');
      assert.equal((await c.command('RCPT TO:<bob@example.test>')).code, 250);
      assert.equal((await c.command('RCPT TO:<@relay.test,@other.test:carol@example.test>')).code, 250);
      assert.equal((await c.command('RCPT TO:<bob@example.test> NOTIFY=NEVER')).line, '555 5.5.4 Unsupported parameter');
      assert.equal((await c.command('DATA')).code, 354);
      assert.equal((await c.command('Subject: bounce\r\n\r\nx\r\n.')).code, 250);
      const [m] = await mx.pipeline.waitForMessages(1);
      assert.equal(m.envelope.mailFrom, null);
      assert.deepEqual(m.envelope.recipients.map((r) => r.address), ['bob@example.test', 'carol@example.test']);
      assert.equal((await c.command('HELP')).code, 214);
      assert.equal((await c.command('EXPN staff')).line, '502 5.5.1 Command not implemented');
    } finally {
      c.destroy();
    }
  });

  test('a client that disconnects during DATA: the pipeline stream is destroyed, nothing is stored', async () => {
    mx.pipeline.aborted.length = 0;
    const c = await SmtpWire.connect(mx.port);
    await c.reply();
    await c.ehlo();
    await c.command('MAIL FROM:<sender@remote.test>');
    await c.command('RCPT TO:<bob@example.test>');
    assert.equal((await c.command('DATA')).code, 354);
    c.write('Subject: cut\r\n\r\nhalf a message');
    await new Promise((r) => setTimeout(r, 200));
    c.destroy();
    const deadline = Date.now() + 5000;
    while (mx.pipeline.aborted.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(mx.pipeline.aborted.length, 1);
    assert.equal(mx.pipeline.received.length, 0);
  });

  test("Postfix's smtp-source: 200 messages over 10 concurrent sessions all arrive", async () => {
    const r = await run('smtp-source', ['-s', '10', '-m', '200', '-l', '2048', '-f', 'load@remote.test', '-t', 'bob@example.test', `127.0.0.1:${mx.port}`], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const messages = await mx.pipeline.waitForMessages(200, 30_000);
    assert.equal(messages.length, 200);
    assert.ok(messages.every((m) => m.data.length >= 2048));
  });

  test('metrics count connections and messages by listener and result', async () => {
    const text = (await mx.metrics.render()).body;
    assert.match(text, /mairust_smtp_connections_total\{listener="mx"\} [1-9]/);
    assert.match(text, /mairust_smtp_messages_total\{listener="mx",result="accepted"\} [1-9]/);
    assert.match(text, /mairust_smtp_messages_total\{listener="mx",result="rejected"\} [1-9]/);
    assert.match(text, /mairust_smtp_messages_total\{listener="mx",result="tempfail"\} [1-9]/);
  });
});
