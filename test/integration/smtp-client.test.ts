/**
 * The outbound SMTP client (SPEC §3.3, §5.2) against real peers: Postfix's smtp-sink (PIPELINING,
 * no STARTTLS, no SMTPUTF8) and MaiRust's own SMTP listener with the test pipeline (exact replies,
 * STARTTLS with a self-signed certificate, AUTH on submission). Servers that misbehave on purpose
 * (never greeting) are bare node:net servers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, chmodSync } from 'node:fs';
import net from 'node:net';
import { Readable } from 'node:stream';
import type { ClientSendInput } from '../../src/outbound/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { createSmtpClientPool, sendOverNewConnection } from '../../src/protocols/smtp/client/index.js';
import { ConnectionLimiter } from '../../src/protocols/net/connection-limiter.js';
import { freshDatabase, tempDir, type TestDatabase } from '../support/shape.js';
import { startSmtpFixture, testCertificate, TEST_HOSTNAME, type SmtpFixture } from '../support/smtp-fixture.js';

const MESSAGE = Buffer.from(
  'From: sender@origin.test\r\nTo: alice@example.test\r\nSubject: client test\r\n\r\n' +
    '.starts with a dot\r\nline two\r\n..two dots\r\n.\r\nH\u00e9llo 8-bit\r\nend\r\n',
  'utf8',
);

const logger = createLogger({ level: 'silent', format: 'json', destination: 2 });

function input(port: number, over: Partial<ClientSendInput> = {}): ClientSendInput {
  return {
    host: TEST_HOSTNAME,
    address: '127.0.0.1',
    port,
    heloName: 'client.origin.test',
    tls: 'opportunistic',
    verifyCertificate: false,
    mailFrom: 'sender@origin.test',
    recipients: ['alice@example.test'],
    message: async () => Readable.from([MESSAGE.subarray(0, 40), MESSAGE.subarray(40)]),
    size: MESSAGE.length,
    needsSmtputf8: false,
    eightBit: true,
    timeouts: { connectMs: 10_000, commandMs: 15_000, dataMs: 15_000 },
    ...over,
  };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A relay in front of a server that counts connections and records what the client wrote. */
interface CountingProxy {
  port: number;
  stats: { accepted: number; open: number; maxOpen: number; clientChunks: string[] };
  close(): Promise<void>;
}

async function countingProxy(targetPort: number): Promise<CountingProxy> {
  const stats = { accepted: 0, open: 0, maxOpen: 0, clientChunks: [] as string[] };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    stats.accepted++;
    stats.open++;
    stats.maxOpen = Math.max(stats.maxOpen, stats.open);
    const upstream = net.connect(targetPort, '127.0.0.1');
    let counted = true;
    const done = () => {
      if (counted) {
        counted = false;
        stats.open--;
      }
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => {
        sockets.delete(s);
        done();
      });
      s.on('error', done);
    }
    client.on('data', (d: Buffer) => stats.clientChunks.push(d.toString('latin1')));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    stats,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Postfix's smtp-sink on a free loopback port, dumping each message into `dir`. */
async function startSink(dir: string, extraArgs: string[] = []): Promise<{ port: number; child: ChildProcess; stop(): Promise<void> }> {
  const port = await freePort();
  const root = process.getuid?.() === 0;
  const args = [...(root ? ['-u', 'nobody'] : []), '-d', `${dir}/%M.`, ...extraArgs, `127.0.0.1:${port}`, '10'];
  const child = spawn('/usr/sbin/smtp-sink', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`smtp-sink did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The smtp-sink dump files (envelope as X-* fields, then the data with LF line ends). */
function sinkDumps(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .map((f) => readFileSync(`${dir}/${f}`, 'utf8'));
}

describe('against Postfix smtp-sink', () => {
  let sink: Awaited<ReturnType<typeof startSink>>;
  let dump: ReturnType<typeof tempDir>;

  before(async () => {
    dump = tempDir('mairust-sink-');
    chmodSync(dump.path, 0o777); // smtp-sink writes as `nobody`
    sink = await startSink(dump.path);
  });
  after(async () => {
    await sink?.stop();
    dump?.remove();
  });

  test('plain delivery, several recipients, MAIL/RCPT/DATA pipelined in one write (RFC 2920)', async () => {
    const proxy = await countingProxy(sink.port);
    try {
      const recipients = ['one@remote.test', 'two@remote.test', 'three@remote.test'];
      const before = sinkDumps(dump.path).length;
      const r = await sendOverNewConnection(input(proxy.port, { recipients }));
      assert.equal(r.error, null, JSON.stringify(r));
      assert.equal(r.stage, 'done');
      assert.equal(r.dataReply?.code, 250);
      assert.deepEqual(r.recipients.map((x) => [x.address, x.delivered, x.rcptReply?.code]), recipients.map((a) => [a, true, 250]));
      assert.equal(r.tls, null, 'smtp-sink offers no STARTTLS: opportunistic goes on in plain text');
      assert.ok(r.transcript.includes('* STARTTLS not offered; continuing without TLS'));

      // The transcript shows every command of the group before the first reply to it.
      const t = r.transcript;
      const mail = t.findIndex((l) => l.startsWith('C: MAIL FROM:<sender@origin.test>'));
      const data = t.indexOf('C: DATA');
      const firstReplyAfterMail = t.findIndex((l, i) => i > mail && l.startsWith('S: '));
      assert.ok(mail >= 0 && data > mail && firstReplyAfterMail > data, t.join('\n'));
      assert.equal(t.filter((l) => l.startsWith('C: RCPT TO:')).length, 3);
      // …and on the wire they went out as one write.
      assert.ok(
        proxy.stats.clientChunks.some((c) => c.startsWith('MAIL FROM:') && c.endsWith('DATA\r\n') && c.split('RCPT TO:').length === 4),
        JSON.stringify(proxy.stats.clientChunks),
      );
      assert.ok(t.includes('C: QUIT') === false, 'QUIT is not part of the transaction transcript');

      await waitFor('the dump file', () => sinkDumps(dump.path).length > before);
      const dumped = sinkDumps(dump.path).at(-1)!;
      assert.match(dumped, /^X-Mail-Args: <sender@origin\.test> BODY=8BITMIME$/m);
      for (const a of recipients) assert.match(dumped, new RegExp(`^X-Rcpt-Args: <${a}>$`, 'm'));
      // smtp-sink removed our dot-stuffing again: the body arrived as it was.
      assert.ok(dumped.includes('\n.starts with a dot\nline two\n..two dots\n.\nH\u00e9llo 8-bit\nend\n'), dumped);
    } finally {
      await proxy.close();
    }
  });

  test('TLS required but not offered → temporary error before MAIL', async () => {
    const r = await sendOverNewConnection(input(sink.port, { tls: 'required' }));
    assert.deepEqual(r.error, { temporary: true, reply: null, message: 'TLS required but not offered' });
    assert.equal(r.stage, 'starttls');
    assert.equal(r.dataReply, null);
    assert.ok(!r.transcript.some((l) => l.startsWith('C: MAIL')));
    assert.ok(r.recipients.every((x) => !x.delivered && x.rcptReply === null));
  });

  test('SMTPUTF8 needed but not offered → permanent error, nothing sent (RFC 6531 §3.4)', async () => {
    const r = await sendOverNewConnection(input(sink.port, { needsSmtputf8: true, recipients: ['j\u00f6rg@remote.test'] }));
    assert.equal(r.error?.temporary, false);
    assert.match(r.error!.message, /SMTPUTF8/);
    assert.equal(r.stage, 'mail');
    assert.ok(!r.transcript.some((l) => l.startsWith('C: MAIL')));
  });

  test('AUTH goes only over TLS unless the route says tls: none; its argument is redacted', async () => {
    const auth = { user: 'relay-user', password: 'relay secret password' };
    const refused = await sendOverNewConnection(input(sink.port, { auth }));
    assert.equal(refused.stage, 'auth');
    assert.equal(refused.error?.temporary, true);
    assert.match(refused.error!.message, /unencrypted/);
    assert.ok(!refused.transcript.some((l) => l.startsWith('C: AUTH')));

    const r = await sendOverNewConnection(input(sink.port, { auth, tls: 'none' }));
    assert.ok(r.transcript.includes('C: AUTH PLAIN ***'), r.transcript.join('\n'));
    // smtp-sink answers AUTH with `250`, not RFC 4954's `235`: the client does not take that as success.
    assert.equal(r.stage, 'auth');
    assert.equal(r.error?.reply?.code, 250);
    const secret = Buffer.from(`\u0000relay-user\u0000relay secret password`).toString('base64');
    assert.ok(!r.transcript.join('\n').includes(secret));
    assert.ok(!r.transcript.join('\n').includes('relay secret password'));
  });

  test('EHLO refused (500) → HELO without extensions: commands one at a time, no BODY parameter', async () => {
    const plainDump = tempDir('mairust-sink-helo-');
    chmodSync(plainDump.path, 0o777);
    const old = await startSink(plainDump.path, ['-e']);
    try {
      const r = await sendOverNewConnection(input(old.port, { recipients: ['one@remote.test', 'two@remote.test'] }));
      assert.equal(r.error, null, JSON.stringify(r));
      assert.ok(r.recipients.every((x) => x.delivered));
      const t = r.transcript;
      const helo = t.indexOf('C: HELO client.origin.test');
      assert.ok(helo > t.indexOf('C: EHLO client.origin.test'), t.join('\n'));
      // Without PIPELINING every command waits for the previous reply.
      const mail = t.indexOf('C: MAIL FROM:<sender@origin.test>');
      assert.ok(mail > helo, 'MAIL without BODY=8BITMIME when 8BITMIME is not offered');
      assert.ok(t[mail + 1].startsWith('S: 250'));
      assert.equal(t[mail + 2], 'C: RCPT TO:<one@remote.test>');
      assert.ok(t[mail + 3].startsWith('S: 250'));
      assert.equal(t[mail + 4], 'C: RCPT TO:<two@remote.test>');
      assert.ok(t[mail + 5].startsWith('S: 250'));
      assert.equal(t[mail + 6], 'C: DATA');
    } finally {
      await old.stop();
      plainDump.remove();
    }
  });

  test('pool: two sends share one connection (RSET between), close() ends it', async () => {
    const proxy = await countingProxy(sink.port);
    const pool = createSmtpClientPool({ idleMs: () => 30_000, maxPerDestination: () => 4, logger });
    try {
      const first = await pool.send(input(proxy.port));
      const second = await pool.send(input(proxy.port, { recipients: ['other@remote.test'] }));
      assert.equal(first.error, null);
      assert.equal(second.error, null);
      assert.equal(second.recipients[0].delivered, true);
      assert.equal(proxy.stats.accepted, 1, 'the second send reused the connection');
      assert.ok(second.transcript.includes('C: RSET'), second.transcript.join('\n'));
      assert.ok(!second.transcript.some((l) => l.startsWith('C: EHLO')), 'no new greeting/EHLO on reuse');
      assert.equal(proxy.stats.open, 1);
      await pool.close();
      await waitFor('the connection to close', () => proxy.stats.open === 0);
      assert.ok(proxy.stats.clientChunks.join('').endsWith('QUIT\r\n'), 'closed with QUIT');
      const late = await pool.send(input(proxy.port));
      assert.equal(late.error?.temporary, true, 'a closed pool refuses sends');
    } finally {
      await pool.close();
      await proxy.close();
    }
  });

  test('pool: an idle connection is closed after idleMs, the next send opens a new one', async () => {
    const proxy = await countingProxy(sink.port);
    const pool = createSmtpClientPool({ idleMs: () => 200, maxPerDestination: () => 2, logger });
    try {
      assert.equal((await pool.send(input(proxy.port))).error, null);
      await waitFor('the idle connection to close', () => proxy.stats.open === 0, 10_000);
      assert.equal((await pool.send(input(proxy.port))).error, null);
      assert.equal(proxy.stats.accepted, 2);
    } finally {
      await pool.close();
      await proxy.close();
    }
  });
});

describe('against the MaiRust SMTP listener', () => {
  let db: TestDatabase;
  let mx: SmtpFixture;

  before(async () => {
    db = await freshDatabase();
    mx = await startSmtpFixture({ kind: 'mx', db, users: ['alice', 'bob'] });
  });
  after(async () => {
    await mx?.close();
    await db?.drop();
  });

  test('STARTTLS opportunistic (self-signed accepted), SIZE and BODY params, exact content, per-recipient 550', async () => {
    const before = mx.pipeline.received.length;
    const r = await sendOverNewConnection(input(mx.port, { recipients: ['alice@example.test', 'nobody@example.test', 'bob@example.test'] }));
    assert.equal(r.error, null, JSON.stringify(r));
    assert.equal(r.stage, 'done');
    assert.ok(r.tls, 'TLS was negotiated');
    assert.equal(r.tls.authorized, false, 'self-signed and not verified');
    assert.match(r.tls.protocol, /^TLSv1\.[23]$/);
    assert.deepEqual(
      r.recipients.map((x) => [x.address, x.delivered, x.rcptReply?.code, x.rcptReply?.enhanced]),
      [
        ['alice@example.test', true, 250, '2.1.5'],
        ['nobody@example.test', false, 550, '5.1.1'],
        ['bob@example.test', true, 250, '2.1.5'],
      ],
    );
    const t = r.transcript;
    assert.ok(t.includes('C: STARTTLS'));
    assert.equal(t.filter((l) => l.startsWith('C: EHLO client.origin.test')).length, 2, 'EHLO again after TLS (RFC 3207 §4.2)');
    assert.ok(t.includes(`C: MAIL FROM:<sender@origin.test> SIZE=${MESSAGE.length} BODY=8BITMIME`), t.join('\n'));

    const [msg] = (await mx.pipeline.waitForMessages(before + 1)).slice(before);
    assert.deepEqual(msg.data, MESSAGE, 'the listener un-stuffed exactly what we sent');
    assert.deepEqual(msg.envelope.recipients.map((x) => x.address), ['alice@example.test', 'bob@example.test']);
  });

  test('SMTPUTF8 when needed and offered: the MAIL parameter is sent', async () => {
    const r = await sendOverNewConnection(input(mx.port, { needsSmtputf8: true, mailFrom: 'j\u00f6rg@origin.test' }));
    assert.equal(r.error, null, JSON.stringify(r));
    assert.ok(r.transcript.some((l) => l.startsWith('C: MAIL FROM:<j\u00f6rg@origin.test>') && l.endsWith(' SMTPUTF8')));
  });

  test('verifyCertificate without the CA → temporary TLS error; with the CA → verified', async () => {
    const bad = await sendOverNewConnection(input(mx.port, { verifyCertificate: true, tls: 'required' }));
    assert.equal(bad.stage, 'starttls');
    assert.equal(bad.error?.temporary, true);
    assert.match(bad.error!.message, /TLS handshake failed/);

    const good = await sendOverNewConnection(input(mx.port, { verifyCertificate: true, tls: 'required', ca: [testCertificate().cert] }));
    assert.equal(good.error, null, JSON.stringify(good));
    assert.equal(good.tls?.authorized, true);

    const wrongName = await sendOverNewConnection(input(mx.port, { host: 'other.example.test', verifyCertificate: true, ca: [testCertificate().cert] }));
    assert.equal(wrongName.error?.temporary, true, 'the certificate must match the host name');
    assert.equal(wrongName.stage, 'starttls');
  });

  test('a refusal after the data: 451 → temporary, 554 → permanent, at stage done', async () => {
    try {
      mx.pipeline.force.receive = { ok: false, reply: { code: 451, enhanced: '4.3.0', message: 'Try again later' } };
      const temp = await sendOverNewConnection(input(mx.port));
      assert.equal(temp.stage, 'done');
      assert.deepEqual(temp.dataReply, { code: 451, enhanced: '4.3.0', text: 'Try again later' });
      assert.equal(temp.error?.temporary, true);
      assert.deepEqual(temp.error?.reply, temp.dataReply);
      assert.equal(temp.recipients[0].delivered, false);

      mx.pipeline.force.receive = { ok: false, reply: { code: 554, enhanced: '5.7.1', message: 'Rejected as spam' } };
      const perm = await sendOverNewConnection(input(mx.port));
      assert.equal(perm.error?.temporary, false);
      assert.equal(perm.dataReply?.code, 554);
      assert.match(perm.error!.message, /554 5\.7\.1 Rejected as spam/);
    } finally {
      mx.pipeline.force.receive = undefined;
    }
  });

  test('every recipient refused: no data is sent, per-recipient replies only', async () => {
    const before = mx.pipeline.received.length;
    const r = await sendOverNewConnection(input(mx.port, { recipients: ['ghost@example.test', 'someone@elsewhere.test'] }));
    assert.equal(r.stage, 'rcpt');
    assert.equal(r.error, null);
    assert.equal(r.dataReply, null);
    assert.deepEqual(r.recipients.map((x) => x.rcptReply?.code), [550, 554]);
    assert.ok(r.recipients.every((x) => !x.delivered));
    assert.equal(mx.pipeline.received.length, before);
  });

  test('the message cannot be read to its end → temporary failure, connection dropped without the final dot', async () => {
    const before = mx.pipeline.received.length;
    const broken = async () =>
      new Readable({
        read() {
          this.push(MESSAGE.subarray(0, 60));
          this.destroy(new Error('blob store unavailable'));
        },
      });
    const r = await sendOverNewConnection(input(mx.port, { message: broken }));
    assert.equal(r.stage, 'data');
    assert.equal(r.error?.temporary, true);
    assert.match(r.error!.message, /blob store unavailable/);
    assert.equal(r.recipients[0].delivered, false);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(mx.pipeline.received.length, before, 'no truncated message was delivered');
  });

  test('no final reply within dataMs → temporary timeout', async () => {
    const release = mx.pipeline.hold();
    try {
      const started = Date.now();
      const r = await sendOverNewConnection(input(mx.port, { timeouts: { connectMs: 10_000, commandMs: 15_000, dataMs: 300 } }));
      assert.equal(r.error?.temporary, true);
      assert.match(r.error!.message, /timed out after 300 ms waiting for the reply to the end of the message data/);
      assert.equal(r.dataReply, null);
      assert.ok(Date.now() - started < 10_000);
    } finally {
      release();
    }
  });

  test('a message over the server SIZE limit fails permanently before MAIL (RFC 1870)', async () => {
    const small = await startSmtpFixture({ kind: 'mx', db, limits: { maxMessageBytes: 100 } });
    try {
      const r = await sendOverNewConnection(input(small.port));
      assert.equal(r.error?.temporary, false);
      assert.equal(r.stage, 'mail');
      assert.match(r.error!.message, /size limit of 100 bytes/);
      assert.ok(!r.transcript.some((l) => l.startsWith('C: MAIL')));
    } finally {
      await small.close();
    }
  });

  test('421 at the greeting → temporary error with the reply', async () => {
    const limiter = new ConnectionLimiter(1);
    const busy = await startSmtpFixture({ kind: 'mx', db, connectionLimiter: limiter });
    const occupier = net.connect(busy.port, '127.0.0.1');
    try {
      await new Promise<void>((resolve) => occupier.once('data', () => resolve()));
      const r = await sendOverNewConnection(input(busy.port));
      assert.equal(r.stage, 'greeting');
      assert.equal(r.error?.temporary, true);
      assert.equal(r.error?.reply?.code, 421);
      assert.equal(r.error?.reply?.enhanced, '4.7.0');
    } finally {
      occupier.destroy();
      await busy.close();
    }
  });

  test('AUTH PLAIN on submission after STARTTLS; a wrong password is refused at stage auth', async () => {
    const sub = await startSmtpFixture({ kind: 'submission', db });
    try {
      const auth = { user: 'alice@example.test', password: 'correct horse battery staple' };
      const r = await sendOverNewConnection(input(sub.port, { auth, tls: 'required', mailFrom: 'alice@example.test', recipients: ['friend@remote.test'] }));
      assert.equal(r.error, null, JSON.stringify(r));
      assert.ok(r.transcript.includes('C: AUTH PLAIN ***'));
      assert.ok(!r.transcript.join('\n').includes(Buffer.from(`\u0000${auth.user}\u0000${auth.password}`).toString('base64')));
      const [msg] = await sub.pipeline.waitForMessages(1);
      assert.equal(msg.session.user?.email, 'alice@example.test');

      const wrong = await sendOverNewConnection(input(sub.port, { auth: { ...auth, password: 'wrong' }, tls: 'required', mailFrom: 'alice@example.test', recipients: ['friend@remote.test'] }));
      assert.equal(wrong.stage, 'auth');
      assert.equal(wrong.error?.reply?.code, 535);
      assert.equal(sub.pipeline.received.length, 1);
    } finally {
      await sub.close();
    }
  });

  test('implicit TLS (465 style) with AUTH', async () => {
    const sub = await startSmtpFixture({ kind: 'submission', db, implicitTls: true });
    try {
      const r = await sendOverNewConnection(
        input(sub.port, { tls: 'implicit', auth: { user: 'bob@example.test', password: 'another long passphrase' }, mailFrom: 'bob@example.test', recipients: ['x@remote.test'] }),
      );
      assert.equal(r.error, null, JSON.stringify(r));
      assert.ok(r.tls);
      assert.ok(!r.transcript.includes('C: STARTTLS'));
    } finally {
      await sub.close();
    }
  });

  test('pool: at most N connections per destination; waiting sends go FIFO and reuse them', async () => {
    const proxy = await countingProxy(mx.port);
    const pool = createSmtpClientPool({ idleMs: () => 30_000, maxPerDestination: () => 2, logger });
    const release = mx.pipeline.hold();
    const fromPool = () => mx.pipeline.received.filter((m) => m.envelope.mailFrom === 'pool@origin.test').length;
    try {
      const order: number[] = [];
      const sends = [0, 1, 2, 3].map((i) =>
        pool.send(input(proxy.port, { mailFrom: 'pool@origin.test' })).then((r) => {
          order.push(i);
          return r;
        }),
      );
      await waitFor('two connections', () => proxy.stats.open === 2);
      // Give a third connection every chance to appear (generous; the limit must hold).
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(proxy.stats.accepted, 2);
      release();
      const results = await Promise.all(sends);
      for (const r of results) assert.equal(r.error, null, JSON.stringify(r));
      assert.equal(proxy.stats.accepted, 2, 'the waiting sends reused the two connections');
      assert.equal(proxy.stats.maxOpen, 2);
      assert.equal(fromPool(), 4);
      assert.ok(results.filter((r) => r.transcript.includes('C: RSET')).length === 2);
      assert.deepEqual(order.slice(2).sort(), [2, 3], 'the queued sends finish last');
    } finally {
      release();
      await pool.close();
      await proxy.close();
    }
  });
});

describe('network failures', () => {
  test('a server that never greets → temporary timeout within a generous bound', async () => {
    const server = net.createServer(() => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const sockets: net.Socket[] = [];
    server.on('connection', (s) => sockets.push(s));
    try {
      const started = Date.now();
      const r = await sendOverNewConnection(input((server.address() as net.AddressInfo).port, { timeouts: { connectMs: 5_000, commandMs: 300, dataMs: 5_000 } }));
      const elapsed = Date.now() - started;
      assert.equal(r.stage, 'greeting');
      assert.equal(r.error?.temporary, true);
      assert.match(r.error!.message, /timed out after 300 ms/);
      assert.ok(elapsed < 5_000, `answered in ${elapsed} ms`);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('connection refused → temporary error at stage connect', async () => {
    const port = await freePort();
    const r = await sendOverNewConnection(input(port));
    assert.equal(r.stage, 'connect');
    assert.equal(r.error?.temporary, true);
    assert.match(r.error!.message, /refused/);
    assert.ok(r.transcript[0].startsWith('* connecting to'));
  });

  test('an aborted send ends at once as a temporary failure', async () => {
    const server = net.createServer(() => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const sockets: net.Socket[] = [];
    server.on('connection', (s) => sockets.push(s));
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 200);
      const r = await sendOverNewConnection(input((server.address() as net.AddressInfo).port, { signal: ac.signal }));
      assert.equal(r.error?.temporary, true);
      assert.match(r.error!.message, /aborted/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
