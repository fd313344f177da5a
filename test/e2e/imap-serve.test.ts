/**
 * IMAP and POP3 of real `mairust serve` processes, through real clients:
 *  1. mail sent with swaks to the MX port reaches an imapflow session in IDLE (RFC 2177);
 *  2. a flag set through the REST API reaches the IDLE session as FETCH (FLAGS …) with MODSEQ
 *     (imapflow ENABLEs CONDSTORE, RFC 7162 §3.1.4);
 *  3. a change made through one process reaches an IDLE session on another process sharing the
 *     database and bucket (cluster shape: PostgreSQL NOTIFY); in the embedded shape (one process
 *     per data dir) the same scenario runs across two sessions of one process;
 *  4. POP3 with curl (`pop3://` + STLS and `pop3s://`): LIST and RETR of the swaks message;
 *  5. durability: `kill -9` while a client APPENDs in a loop; after a restart every APPEND that got
 *     its tagged OK [APPENDUID …] is there, byte for byte (RFC 4315 §3: the UID is final).
 * Waits for pushed responses are bounded far below the server's fallback poll, so only a push
 * passes; nothing else is timed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { ImapFlow, type FetchMessageObject, type ImapFlowOptions } from 'imapflow';
import { curl, idleWatcher, runClient, within } from '../support/real-clients.js';
import { freePort, runCli, shapeEnv, startServerProcess, waitForReady, type ServerProcess, type ShapeEnv } from '../support/server-process.js';
import { shape, tempDir } from '../support/shape.js';

const PASSWORD = 'correct horse battery staple';
const ALICE = 'alice@acme.test';
const DURABLE = 'durable@acme.test';
/** A push must arrive well within this; the server's fallback poll is 30 s. */
const PUSH_LIMIT_MS = 10_000;

interface Ports {
  http: number;
  smtp: number;
  imap: number;
  imaps: number;
  pop3: number;
  pop3s: number;
}

describe(`IMAP and POP3 through mairust serve (${shape})`, () => {
  let s: ShapeEnv;
  let server: ServerProcess;
  let ports: Ports;
  let second: { server: ServerProcess; ports: Ports; dir: { remove(): void } } | undefined;
  const clients = new Set<ImapFlow>();

  async function imap(port: number, user: string, opts: Partial<ImapFlowOptions> = {}): Promise<ImapFlow> {
    const client = new ImapFlow({
      host: '127.0.0.1',
      port,
      secure: true,
      auth: { user, pass: PASSWORD },
      tls: { rejectUnauthorized: false },
      logger: false,
      ...opts,
    });
    client.on('error', () => {});
    await client.connect();
    clients.add(client);
    return client;
  }

  async function closeClient(c: ImapFlow) {
    clients.delete(c);
    await c.logout().catch(() => c.close());
  }

  /** An IMAP client in IDLE on INBOX; `started` has resolved once the server answered `+`. */
  async function idleOn(port: number, user: string) {
    const watch = idleWatcher();
    const client = await imap(port, user, { logger: watch.logger as never });
    await client.mailboxOpen('INBOX');
    const started = watch.next();
    const idling = client.idle();
    await within(started, PUSH_LIMIT_MS, 'the + answer to IDLE');
    return { client, idling, exists: client.mailbox ? client.mailbox.exists : 0 };
  }

  before(async () => {
    s = await shapeEnv();
    for (const args of [
      ['tenant', 'add', 'acme'],
      ['domain', 'add', 'acme.test', '--tenant', 'acme'],
      ['user', 'add', ALICE, '--tenant', 'acme', '--password-stdin'],
      ['mailbox', 'add', ALICE, '--user', ALICE],
      ['user', 'add', DURABLE, '--tenant', 'acme', '--password-stdin'],
      ['mailbox', 'add', DURABLE, '--user', DURABLE],
    ]) {
      const r = await runCli(args, s.env, `${PASSWORD}\n`);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    ports = { http: s.httpPort, smtp: s.smtpPorts.smtp, ...s.mailPorts };
    server = startServerProcess(s.env);
    await waitForReady(s.httpPort);
  });

  after(async () => {
    for (const c of [...clients]) await closeClient(c);
    await second?.server.stop();
    second?.dir.remove();
    await server?.stop();
    await s?.cleanup();
  });

  test('1. mail sent with swaks to the MX port reaches an imapflow IDLE session', async () => {
    const idle = await idleOn(ports.imaps, ALICE);
    const exists = once(idle.client, 'exists');
    const r = await runClient('swaks', [
      '--hide-informational', '--timeout', '20', '--server', `127.0.0.1:${ports.smtp}`,
      '--from', 'sender@example.org', '--to', ALICE, '--header', 'Subject: hello idle', '--body', 'pushed to IDLE',
    ]);
    assert.equal(r.code, 0, r.stdout.toString() + r.stderr);
    const [ev] = (await within(exists, PUSH_LIMIT_MS, 'EXISTS after SMTP delivery')) as [{ count: number }];
    assert.equal(ev.count, idle.exists + 1);
    const msg = (await idle.client.fetchOne('*', { envelope: true, uid: true })) as FetchMessageObject;
    await idle.idling;
    assert.equal(msg.envelope!.subject, 'hello idle');
    await closeClient(idle.client);
  });

  test('2. a flag set through the REST API reaches the IDLE session as FETCH (FLAGS …) with MODSEQ', async () => {
    const base = `http://127.0.0.1:${ports.http}/api/v1`;
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: ALICE, password: PASSWORD }) });
    assert.equal(login.status, 200, await login.clone().text());
    const token = ((await login.json()) as { data: { access_token: string } }).data.access_token;
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const list = (await (await fetch(`${base}/messages?folder=INBOX`, { headers: auth })).json()) as { data: { id: string; uid: number; subject: string }[] };
    const target = list.data.find((m) => m.subject === 'hello idle');
    assert.ok(target, `the swaks message is listed: ${JSON.stringify(list)}`);

    const idle = await idleOn(ports.imaps, ALICE);
    assert.ok(idle.client.enabled.has('CONDSTORE'), 'imapflow enabled CONDSTORE');
    const flags = once(idle.client, 'flags');
    const patch = await fetch(`${base}/messages/${target.id}`, { method: 'PATCH', headers: auth, body: JSON.stringify({ flags: { add: ['flagged'] } }) });
    assert.equal(patch.status, 200, await patch.clone().text());
    const patched = ((await patch.json()) as { data: { modseq: number } }).data;
    const [ev] = (await within(flags, PUSH_LIMIT_MS, 'FETCH FLAGS after the API change')) as [{ uid?: number; flags: Set<string>; modseq?: bigint }];
    assert.ok(ev.flags.has('\\Flagged'), [...ev.flags].join(' '));
    assert.equal(ev.modseq, BigInt(patched.modseq), 'MODSEQ of the FETCH is the one the change got (RFC 7162 §3.2.4)');
    if (ev.uid !== undefined) assert.equal(ev.uid, target.uid);
    await idle.client.noop();
    await idle.idling;
    await closeClient(idle.client);
  });

  test(`3. a change through one ${shape === 'cluster' ? 'process' : 'session'} reaches an IDLE session on ${shape === 'cluster' ? 'another process' : 'another session'}`, async () => {
    let idlePort = ports.imaps;
    if (shape === 'cluster') {
      // Same database, bucket and master key (in s.env); own data dir and ports.
      const dir = tempDir('mairust-e2e-2-');
      const p2: Ports = { http: await freePort(), smtp: await freePort(), imap: await freePort(), imaps: await freePort(), pop3: await freePort(), pop3s: await freePort() };
      const env2 = {
        ...s.env,
        MAIRUST_DATA_DIR: dir.path,
        MAIRUST__LISTENERS__HTTP__PORT: String(p2.http),
        MAIRUST__LISTENERS__SMTP__PORT: String(p2.smtp),
        MAIRUST__LISTENERS__SUBMISSION__PORT: String(await freePort()),
        MAIRUST__LISTENERS__SMTPS__PORT: String(await freePort()),
        MAIRUST__LISTENERS__IMAP__PORT: String(p2.imap),
        MAIRUST__LISTENERS__IMAPS__PORT: String(p2.imaps),
        MAIRUST__LISTENERS__POP3__PORT: String(p2.pop3),
        MAIRUST__LISTENERS__POP3S__PORT: String(p2.pop3s),
      };
      second = { server: startServerProcess(env2), ports: p2, dir };
      await waitForReady(p2.http);
      idlePort = p2.imaps;
    }
    const writer = await imap(ports.imaps, ALICE);
    const idle = await idleOn(idlePort, ALICE);

    const exists = once(idle.client, 'exists');
    const raw = Buffer.from(`From: alice@acme.test\r\nTo: alice@acme.test\r\nSubject: across\r\nMessage-ID: <${randomBytes(6).toString('hex')}@acme.test>\r\n\r\nappended elsewhere\r\n`);
    const appended = await writer.append('INBOX', raw);
    assert.ok(appended && appended.uid, 'APPENDUID');
    const [ev] = (await within(exists, PUSH_LIMIT_MS, 'EXISTS after an APPEND elsewhere')) as [{ count: number }];
    assert.equal(ev.count, idle.exists + 1);

    const flags = once(idle.client, 'flags');
    await writer.mailboxOpen('INBOX');
    assert.equal(await writer.messageFlagsAdd(String(appended.uid), ['\\Answered'], { uid: true }), true);
    const [fl] = (await within(flags, PUSH_LIMIT_MS, 'FETCH FLAGS after a STORE elsewhere')) as [{ uid?: number; seq: number; flags: Set<string> }];
    assert.ok(fl.flags.has('\\Answered'), [...fl.flags].join(' '));
    assert.equal(fl.seq, ev.count, 'the new message is the one that changed');

    const fetched = (await idle.client.fetchOne(String(appended.uid), { source: true }, { uid: true })) as FetchMessageObject;
    await idle.idling;
    assert.ok(fetched.source!.equals(raw), 'the other side reads the same bytes');
    await closeClient(idle.client);
    await closeClient(writer);
  });

  test('4. POP3 with curl: LIST and RETR of the swaks message over pop3:// (STLS) and pop3s://', async () => {
    const reader = await imap(ports.imaps, ALICE);
    await reader.mailboxOpen('INBOX', { readOnly: true });
    const first = (await reader.fetchOne('1', { source: true, size: true })) as FetchMessageObject;
    const count = reader.mailbox ? reader.mailbox.exists : 0;
    await closeClient(reader);
    assert.match(first.source!.toString('utf8'), /Subject: hello idle/);

    const user = ['-u', `${ALICE}:${PASSWORD}`];
    const list = await curl(['-k', '--ssl-reqd', ...user, `pop3://127.0.0.1:${ports.pop3}/`]);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.toString('utf8').split(/\r?\n/).filter(Boolean);
    assert.equal(lines.length, count, `one LIST line per message: ${lines.join(' | ')}`);
    assert.equal(lines[0], `1 ${first.size}`, 'scan listing: number and exact size (RFC 1939 §5)');

    const retr = await curl(['-k', '--ssl-reqd', ...user, `pop3://127.0.0.1:${ports.pop3}/1`]);
    assert.equal(retr.code, 0, retr.stderr);
    assert.ok(retr.stdout.equals(first.source!), 'RETR gives the stored bytes (curl removes the dot-stuffing)');

    const secure = await curl(['-k', ...user, `pop3s://127.0.0.1:${ports.pop3s}/1`]);
    assert.equal(secure.code, 0, secure.stderr);
    assert.ok(secure.stdout.equals(first.source!));
  });

  test('5. kill -9 during an APPEND loop: every APPEND that got its tagged OK [APPENDUID] is there after a restart', async (t) => {
    const acked: { uid: number; uidValidity: bigint; raw: Buffer }[] = [];
    let sent = 0;
    let killed = false;
    const kill = () => {
      if (killed) return;
      killed = true;
      server.child.kill('SIGKILL');
    };
    // Three connections append at once, so the kill lands while APPENDs are in flight.
    const loop = async () => {
      const c = await imap(ports.imaps, DURABLE);
      try {
        while (!killed) {
          const n = sent++;
          const body = n % 5 === 4 ? randomBytes(48 * 1024).toString('base64') : `message ${n} ${randomBytes(16).toString('hex')}`;
          const raw = Buffer.from(`From: durable@acme.test\r\nTo: durable@acme.test\r\nSubject: durable ${n}\r\nMessage-ID: <d${n}.${randomBytes(4).toString('hex')}@acme.test>\r\n\r\n${body.replace(/(.{76})/g, '$1\r\n')}\r\n`);
          const r = await c.append('INBOX', raw);
          if (!r || !r.uid || r.uidValidity === undefined) throw new Error(`APPEND without APPENDUID (uid ${r ? r.uid : "-"})`);
          acked.push({ uid: r.uid, uidValidity: BigInt(r.uidValidity), raw });
          if (acked.length >= 30) kill();
        }
      } catch (err) {
        if (!killed) throw err;
      } finally {
        clients.delete(c);
        c.close();
      }
    };
    await within(Promise.all([loop(), loop(), loop()]), 45_000, 'the APPEND loop reaching the kill point');
    await server.exited;
    assert.ok(acked.length >= 30);

    server = startServerProcess(s.env);
    await waitForReady(ports.http);
    const c = await imap(ports.imaps, DURABLE);
    const box = await c.mailboxOpen('INBOX', { readOnly: true });
    const validity = new Set(acked.map((a) => a.uidValidity));
    assert.deepEqual([...validity], [BigInt(box.uidValidity)], 'UIDVALIDITY unchanged by the crash');
    assert.equal(new Set(acked.map((a) => a.uid)).size, acked.length, 'no UID was handed out twice');
    t.diagnostic(`${acked.length} APPENDs acknowledged of ${sent} started; ${box.exists} messages after the restart`);
    assert.ok(box.exists >= acked.length && box.exists <= sent, `${box.exists} messages for ${acked.length} acknowledged of ${sent} sent`);
    const missing: number[] = [];
    const differs: number[] = [];
    for await (const m of c.fetch(acked.map((a) => a.uid).join(','), { uid: true, source: true }, { uid: true })) {
      const a = acked.find((x) => x.uid === m.uid);
      if (a && !m.source!.equals(a.raw)) differs.push(m.uid);
      if (a) (a as { seen?: boolean }).seen = true;
    }
    for (const a of acked) if (!(a as { seen?: boolean }).seen) missing.push(a.uid);
    assert.deepEqual(missing, [], 'acknowledged APPENDs lost');
    assert.deepEqual(differs, [], 'acknowledged APPENDs changed');
    await closeClient(c);
  });
});
