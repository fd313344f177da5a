/**
 * Every limit of SPEC §5.1 with the exact reply line from the reply table, the greeting pause and
 * the early-talker check, and the graceful close.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ConnectionLimiter } from '../../src/protocols/net/connection-limiter.js';
import { TEST_HOSTNAME, python, startSmtpFixture, type SmtpFixture } from '../support/smtp-fixture.js';
import { SmtpWire } from '../support/smtp-wire.js';
import { freshDatabase, type TestDatabase } from '../support/shape.js';

async function greeted(port: number, localAddress?: string): Promise<SmtpWire> {
  const c = await SmtpWire.connect(port, { localAddress });
  assert.equal((await c.reply()).code, 220);
  await c.ehlo();
  return c;
}

describe('SMTP limits', () => {
  let db: TestDatabase;
  const fixtures: SmtpFixture[] = [];
  const start = async (opts: Parameters<typeof startSmtpFixture>[0]) => {
    const f = await startSmtpFixture({ db, ...opts });
    fixtures.push(f);
    return f;
  };

  before(async () => {
    db = await freshDatabase();
  });
  after(async () => {
    for (const f of fixtures) await f.close();
    await db.drop();
  });

  test('command line length: 512 octets with CRLF pass, 513 get 500 5.5.2 and the session goes on', async () => {
    const mx = await start({ kind: 'mx' });
    const c = await greeted(mx.port);
    try {
      // NOOP takes (and ignores) an argument: the cheapest way to send a line of a given length.
      assert.equal((await c.command(`NOOP ${'x'.repeat(505)}`)).line, '250 2.0.0 OK'); // 510 + CRLF = 512
      assert.equal((await c.command(`NOOP ${'x'.repeat(506)}`)).line, '500 5.5.2 Line too long');
      // A very long line in many packets is dropped as it arrives, then answered once.
      for (let i = 0; i < 20; i++) c.write('y'.repeat(10_000));
      assert.equal((await c.command('')).line, '500 5.5.2 Line too long');
      // Pipelined behind an over-long line: the next command is read normally.
      c.write(`MAIL FROM:<${'a'.repeat(600)}@remote.test>\r\nMAIL FROM:<a@remote.test>\r\n`);
      assert.equal((await c.reply()).line, '500 5.5.2 Line too long');
      assert.equal((await c.reply()).line, '250 2.1.0 Sender OK');
      assert.equal((await c.command('RCPT TO:<bob@example.test>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      assert.equal((await c.command('Subject: after\r\n\r\nstill usable\r\n.')).line, '250 2.0.0 Message accepted for delivery');
    } finally {
      c.destroy();
    }
  });

  test('a text line longer than 1000 octets inside DATA is accepted and counted toward the size', async () => {
    const mx = await start({ kind: 'mx', limits: { maxMessageBytes: 5000 } });
    const c = await greeted(mx.port);
    try {
      await c.command('MAIL FROM:<a@remote.test>');
      await c.command('RCPT TO:<bob@example.test>');
      await c.command('DATA');
      const message = `Subject: long line\r\n\r\n${'L'.repeat(3000)}\r\n`;
      assert.equal((await c.command(`${message}.`)).line, '250 2.0.0 Message accepted for delivery');
      const [m] = await mx.pipeline.waitForMessages(1);
      assert.equal(m.data.toString(), message);
      await c.command('MAIL FROM:<a@remote.test>');
      await c.command('RCPT TO:<bob@example.test>');
      await c.command('DATA');
      assert.equal((await c.command(`Subject: too long\r\n\r\n${'L'.repeat(6000)}\r\n.`)).line, '552 5.3.4 Message size exceeds fixed maximum message size');
    } finally {
      c.destroy();
    }
  });

  test('idle timeout: 421 and close; a slow pipeline does not count as idle', async () => {
    const mx = await start({ kind: 'mx', limits: { commandTimeoutMs: 1000 } });
    const c = await greeted(mx.port);
    const started = Date.now();
    assert.equal((await c.reply(10_000)).line, '421 4.4.2 Timeout, closing connection');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 900 && elapsed < 8000, `timed out after ${elapsed} ms`);
    await c.closed();

    // The server, not the client, is busy: no timeout while the pipeline holds the message.
    const release = mx.pipeline.hold();
    const d = await greeted(mx.port);
    try {
      await d.command('MAIL FROM:<a@remote.test>');
      await d.command('RCPT TO:<bob@example.test>');
      await d.command('DATA');
      d.send('Subject: slow\r\n\r\nbody\r\n.');
      await new Promise((r) => setTimeout(r, 2500));
      release();
      assert.equal((await d.reply()).line, '250 2.0.0 Message accepted for delivery');
    } finally {
      release();
      d.destroy();
    }
  });

  test('message size: announced in EHLO, SIZE= checked at MAIL, DATA over the limit is 552 5.3.4', async () => {
    const mx = await start({ kind: 'mx', limits: { maxMessageBytes: 1000 } });
    const c = await SmtpWire.connect(mx.port);
    try {
      await c.reply();
      assert.ok((await c.ehlo()).extensions.includes('SIZE 1000'));
      assert.equal((await c.command('MAIL FROM:<a@remote.test> SIZE=1001')).line, '552 5.3.4 Message size exceeds fixed maximum message size');
      assert.equal((await c.command('MAIL FROM:<a@remote.test> SIZE=99999999999999999999')).line, '552 5.3.4 Message size exceeds fixed maximum message size');
      assert.equal((await c.command('MAIL FROM:<a@remote.test> SIZE=1000')).code, 250);
      assert.equal((await c.command('RCPT TO:<bob@example.test>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      // 1500 bytes: refused after the final dot, the pipeline's stream destroyed, nothing stored.
      assert.equal((await c.command(`Subject: big\r\n\r\n${'y'.repeat(1480)}\r\n.`)).line, '552 5.3.4 Message size exceeds fixed maximum message size');
      assert.equal(mx.pipeline.received.length, 0);
      assert.equal(mx.pipeline.aborted.length, 1);
      assert.match(mx.pipeline.aborted[0].message, /message exceeds 1000 bytes/);
      // Exactly 1000 bytes (the CRLF before the final dot belongs to the message) are accepted.
      await c.command('MAIL FROM:<a@remote.test>');
      await c.command('RCPT TO:<bob@example.test>');
      await c.command('DATA');
      const header = 'Subject: fits\r\n\r\n';
      const body = `${'z'.repeat(1000 - header.length - 2)}\r\n`;
      assert.equal((await c.command(`${header}${body}.`)).line, '250 2.0.0 Message accepted for delivery');
      assert.equal(mx.pipeline.received[0].data.length, 1000);
    } finally {
      c.destroy();
    }
    // A real client sends SIZE= itself when the server announces SIZE (RFC 1870).
    const py = await python(
      `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='client.test')
try:
    s.sendmail('a@remote.test', ['bob@example.test'], b'Subject: big\\r\\n\\r\\n' + b'x' * 2000)
except smtplib.SMTPSenderRefused as e:
    print(e.smtp_code, e.smtp_error.decode())
`,
      mx.port,
    );
    assert.equal(py.stdout.trim(), '552 5.3.4 Message size exceeds fixed maximum message size', py.stderr);
  });

  test('back-pressure: a slow pipeline pauses the socket, the client is held back, nothing piles up', async () => {
    const total = 40 * 1024 * 1024;
    const mx = await start({ kind: 'mx', limits: { maxMessageBytes: total * 2 } });
    let consumed = 0;
    mx.pipeline.receive = async (_session, _envelope, data) => {
      for await (const chunk of data) {
        consumed += (chunk as Buffer).length;
        await new Promise((r) => setTimeout(r, 2)); // a blob store slower than the client
      }
      return { ok: true };
    };
    const client = net.connect(mx.port, '127.0.0.1');
    let text = '';
    client.on('data', (d) => (text += d));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 3000 && !re.test(text); i++) await new Promise((r) => setTimeout(r, 10));
      assert.match(text, re);
    };
    try {
      await waitFor(/^220 /);
      client.write('EHLO c.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n');
      await waitFor(/354 /);
      const line = Buffer.from(`${'x'.repeat(1022)}\r\n`);
      const block = Buffer.concat(Array.from({ length: 64 }, () => line)); // 64 KiB
      let handedToKernel = 0;
      let maxLag = 0;
      for (let sent = 0; sent < total; sent += block.length) {
        await new Promise<void>((resolve) => {
          if (client.write(block, () => (handedToKernel += block.length))) resolve();
          else client.once('drain', () => resolve());
        });
        maxLag = Math.max(maxLag, handedToKernel - consumed);
      }
      client.write('.\r\n');
      await waitFor(/250 2\.0\.0 Message accepted for delivery\r\n/);
      assert.equal(consumed, total);
      // Without back-pressure the whole 40 MiB would be read ahead of the pipeline; with it, only
      // what the kernel's socket buffers and our bounded buffers hold.
      assert.ok(maxLag < 16 * 1024 * 1024, `the client got ${maxLag} bytes ahead of the pipeline`);
    } finally {
      client.destroy();
    }
  });

  test('a pipeline that does not decide within smtp.data_timeout_seconds gets 451 4.3.0; the session goes on', async () => {
    const mx = await start({ kind: 'mx', limits: { dataTimeoutMs: 500 } });
    const original = mx.pipeline.receive.bind(mx.pipeline);
    mx.pipeline.receive = async (_s, _e, data) => {
      data.resume();
      return new Promise(() => {}); // never settles
    };
    const c = await greeted(mx.port);
    try {
      await c.command('MAIL FROM:<a@remote.test>');
      await c.command('RCPT TO:<bob@example.test>');
      await c.command('DATA');
      const started = Date.now();
      assert.equal((await c.command('Subject: stuck\r\n\r\nbody\r\n.')).line, '451 4.3.0 Temporary local problem, please try again later');
      const waited = Date.now() - started;
      assert.ok(waited >= 400 && waited < 5000, `answered after ${waited} ms`);
      mx.pipeline.receive = original;
      await c.command('MAIL FROM:<a@remote.test>');
      await c.command('RCPT TO:<bob@example.test>');
      await c.command('DATA');
      assert.equal((await c.command('Subject: fine\r\n\r\nbody\r\n.')).line, '250 2.0.0 Message accepted for delivery');
    } finally {
      c.destroy();
    }
  });

  test('recipients: 100 accepted, the 101st is 452 4.5.3, a repeated one does not count', async () => {
    const mx = await start({ kind: 'mx' });
    const c = await greeted(mx.port);
    try {
      await c.command('MAIL FROM:<a@remote.test>');
      // Pipelined (RFC 2920): all RCPTs in one write, the replies read afterwards in order.
      c.write(Array.from({ length: 101 }, (_, i) => `RCPT TO:<user${i}@example.test>\r\n`).join(''));
      for (let i = 0; i < 100; i++) assert.equal((await c.reply()).code, 250, `recipient ${i + 1}`);
      assert.equal((await c.reply()).line, '452 4.5.3 Too many recipients');
      assert.equal((await c.command('RCPT TO:<USER7@example.test>')).code, 250, 'repeat of an accepted recipient');
      assert.equal((await c.command('DATA')).code, 354);
      assert.equal((await c.command('Subject: many\r\n\r\nhi\r\n.')).code, 250);
      const [m] = await mx.pipeline.waitForMessages(1);
      assert.equal(m.envelope.recipients.length, 100);
      assert.equal(m.envelope.recipients[7].address, 'USER7@example.test');
      assert.equal(mx.pipeline.recipientChecks.length, 101, 'the 101st never reached the pipeline');
    } finally {
      c.destroy();
    }
  });

  test('connections per client: the one over the limit gets 421 4.7.0 at once; others and later ones are fine', async () => {
    const limiter = new ConnectionLimiter(3);
    const mx = await start({ kind: 'mx', limits: { maxConnectionsPerIp: 3 }, connectionLimiter: limiter });
    // A second listener sharing the limiter: the limit covers all SMTP ports of the node.
    const sub = await start({ kind: 'submission', connectionLimiter: limiter });
    const open = [await greeted(mx.port, '127.0.0.61'), await greeted(mx.port, '127.0.0.61'), await greeted(sub.port, '127.0.0.61')];
    try {
      // Written by the listener before a session exists: no greeting.
      const refused = await SmtpWire.connect(mx.port, { localAddress: '127.0.0.61' });
      assert.equal((await refused.reply()).line, '421 4.7.0 Too many connections from your address, try again later');
      await refused.closed();
      const other = await greeted(mx.port, '127.0.0.62');
      other.destroy();
      open.pop()!.destroy();
      await new Promise((r) => setTimeout(r, 100));
      const again = await greeted(mx.port, '127.0.0.61');
      again.destroy();
    } finally {
      open.forEach((c) => c.destroy());
    }
  });

  test('bad commands: 10 are answered (unknown, syntax, too long), the 11th gets 421 4.7.0 and the close', async () => {
    const mx = await start({ kind: 'mx' });
    const c = await greeted(mx.port);
    try {
      for (let i = 1; i <= 7; i++) assert.equal((await c.command(`BOGUS${i}`)).line, '500 5.5.1 Command unrecognized');
      assert.equal((await c.command('MAIL FROM:bob@remote.test')).line, '501 5.5.4 Syntax error in parameters or arguments');
      assert.equal((await c.command('RCPT TO:<no domain>')).line, '501 5.1.3 Bad recipient address syntax');
      assert.equal((await c.command(`NOOP ${'x'.repeat(600)}`)).line, '500 5.5.2 Line too long');
      // Refusals of well-formed commands are not bad commands.
      assert.equal((await c.command('RCPT TO:<bob@example.test>')).line, '503 5.5.1 Need MAIL command first');
      assert.equal((await c.command('BOGUS11')).line, '421 4.7.0 Too many errors, closing connection');
      await c.closed();
    } finally {
      c.destroy();
    }
    // The limit is configurable (smtp.max_bad_commands).
    const strict = await start({ kind: 'mx', limits: { maxBadCommands: 2 } });
    const d = await greeted(strict.port);
    try {
      assert.equal((await d.command('XYZZY')).code, 500);
      assert.equal((await d.command('XYZZY')).code, 500);
      assert.equal((await d.command('XYZZY')).line, '421 4.7.0 Too many errors, closing connection');
      await d.closed();
    } finally {
      d.destroy();
    }
  });

  test('greeting pause: off by default (greeting within 50 ms); with a pause an early talker gets 554 5.5.0', async () => {
    const mx = await start({ kind: 'mx' });
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const c = await SmtpWire.connect(mx.port);
      assert.equal((await c.reply()).line, `220 ${TEST_HOSTNAME} ESMTP MaiRust`);
      const elapsed = performance.now() - started;
      c.destroy();
      assert.ok(elapsed < 50, `greeting after ${elapsed.toFixed(1)} ms`);
    }
    const paused = await start({ kind: 'mx', limits: { greetingDelayMs: 300 } });
    const polite = await SmtpWire.connect(paused.port);
    const started = performance.now();
    try {
      assert.equal((await polite.reply()).line, `220 ${TEST_HOSTNAME} ESMTP MaiRust`);
      assert.ok(performance.now() - started >= 250, 'the greeting waited for the pause');
      assert.equal((await polite.ehlo()).reply.code, 250);
    } finally {
      polite.destroy();
    }
    const early = await SmtpWire.connect(paused.port);
    try {
      early.send('EHLO spambot.test');
      assert.equal((await early.reply()).line, '554 5.5.0 Protocol error: sent data before the greeting');
      await early.closed();
    } finally {
      early.destroy();
    }
  });
});

describe('SMTP graceful close', () => {
  let db: TestDatabase;

  before(async () => {
    db = await freshDatabase();
  });
  after(async () => {
    await db.drop();
  });

  test('idle sessions get 421 4.3.2 at once, a message in progress finishes, then no new connections', async () => {
    const mx = await startSmtpFixture({ kind: 'mx', db });
    const idle = await greeted(mx.port);
    const busy = await greeted(mx.port);
    const release = mx.pipeline.hold();
    try {
      await busy.command('MAIL FROM:<a@remote.test>');
      await busy.command('RCPT TO:<bob@example.test>');
      await busy.command('DATA');
      busy.send('Subject: in flight\r\n\r\nbody\r\n.');
      await new Promise((r) => setTimeout(r, 200));

      const started = Date.now();
      const closing = mx.listener.close(10_000);
      assert.equal((await idle.reply()).line, '421 4.3.2 Service shutting down, try again later');
      await idle.closed();
      await assert.rejects(SmtpWire.connect(mx.port), /ECONNREFUSED/);

      release();
      assert.equal((await busy.reply()).line, '250 2.0.0 Message accepted for delivery');
      assert.equal((await busy.reply()).line, '421 4.3.2 Service shutting down, try again later');
      await busy.closed();
      await closing;
      assert.ok(Date.now() - started < 5000, 'close did not wait for the whole drain time');
      assert.equal(mx.pipeline.received.length, 1);
    } finally {
      release();
      idle.destroy();
      busy.destroy();
      await mx.close();
    }
  });

  test('a transaction that does not finish within the drain time gets 421 4.3.2', async () => {
    const mx = await startSmtpFixture({ kind: 'mx', db });
    const c = await greeted(mx.port);
    try {
      assert.equal((await c.command('MAIL FROM:<a@remote.test>')).code, 250);
      const started = Date.now();
      const closing = mx.listener.close(500);
      assert.equal((await c.reply()).line, '421 4.3.2 Service shutting down, try again later');
      const waited = Date.now() - started;
      assert.ok(waited >= 400 && waited < 5000, `answered after ${waited} ms`);
      await c.closed();
      await closing;
      assert.equal(mx.listener.openSessions, 0);
    } finally {
      c.destroy();
      await mx.close();
    }
  });

  test('a session still waiting for its greeting is refused with 421 4.3.2', async () => {
    const mx = await startSmtpFixture({ kind: 'mx', db, limits: { greetingDelayMs: 5000 } });
    try {
      const socket = net.connect(mx.port, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      let received = '';
      socket.on('data', (d) => (received += d));
      await mx.listener.close(1000);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(received, '421 4.3.2 Service shutting down, try again later\r\n');
      assert.doesNotMatch(received, new RegExp(TEST_HOSTNAME));
      socket.destroy();
    } finally {
      await mx.close();
    }
  });
});
