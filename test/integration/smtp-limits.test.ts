/**
 * Every limit of SPEC §5.1 with the exact reply line it produces, and the graceful close.
 *
 * Four of these lines are written by the smtp-server library and cannot be changed through its
 * options (docs/adr/0007-smtp-server-library.md): line too long, idle timeout, too many unknown
 * commands, SIZE= over the maximum. The tests pin them as they are, so a library upgrade that changes
 * them is noticed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ConnectionLimiter } from '../../src/protocols/smtp/connection-limiter.js';
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

  test('command line length: 512 octets with CRLF pass, 513 close the session (library reply)', async () => {
    const mx = await start({ kind: 'mx' });
    const c = await greeted(mx.port);
    try {
      // NOOP takes (and ignores) an argument: the cheapest way to send a line of a given length.
      assert.equal((await c.command(`NOOP ${'x'.repeat(505)}`)).line, '250 OK'); // 510 + CRLF = 512
      assert.equal((await c.command(`NOOP ${'x'.repeat(506)}`)).line, '421 Error: Command line too long');
      await c.closed();
    } finally {
      c.destroy();
    }
  });

  test('idle timeout: 421 and close; a slow pipeline does not count as idle', async () => {
    const mx = await start({ kind: 'mx', limits: { commandTimeoutMs: 1000 } });
    const c = await greeted(mx.port);
    const started = Date.now();
    assert.equal((await c.reply(10_000)).line, '421 Timeout - closing connection');
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
      assert.equal((await c.command('MAIL FROM:<a@remote.test> SIZE=1001')).line, '552 Error: message exceeds fixed maximum message size 1000');
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
    assert.equal(py.stdout.trim(), '552 Error: message exceeds fixed maximum message size 1000', py.stderr);
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
      // Written by the listener before the engine sees the socket: no greeting, no 100 ms pause.
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

  test('unknown commands: the 10th closes the session (library reply)', async () => {
    const mx = await start({ kind: 'mx' });
    const c = await greeted(mx.port);
    try {
      for (let i = 1; i <= 9; i++) assert.equal((await c.command(`BOGUS${i}`)).line, '500 Error: command not recognized');
      assert.equal((await c.command('BOGUS10')).line, '421 Error: too many unrecognized commands');
      await c.closed();
    } finally {
      c.destroy();
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
    const mx = await startSmtpFixture({ kind: 'mx', db });
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
