/**
 * Outbound mail end to end between two real servers (SPEC §3.2, §3.3, §5.2, §8): `mairust serve`
 * A (a.test, the sender) and B (b.test, the receiver), both resolving through one loopback DNS
 * server (test/support/dns-server.ts) that publishes a.test's SPF, DKIM key and DMARC p=reject and
 * the MX of b.test. A delivers to B's MX listener over real SMTP (`outbound.port` = B's port 25
 * equivalent), B verifies what A signed. Clients are real: swaks for submission with STARTTLS +
 * AUTH, a raw socket with PIPELINING for the burst, imapflow to read the mailboxes, the CLI for
 * setup and administration. One pair of servers serves every test.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { openDatabase, type Database } from '../../src/store/db/database.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { runCli, shapeEnv, startServerProcess, waitForReady, type ServerProcess, type ShapeEnv } from '../support/server-process.js';
import { SmtpWire, plainCredentials, type Reply } from '../support/smtp-wire.js';
import { shape } from '../support/shape.js';

const run = promisify(execFile);
const PASSWORD = 'correct horse battery staple';
const ADMIN = 'root@admin.test';
const ADMIN_PASSWORD = 'a long bootstrap password 42';
/** SPEC §8: the exact reply to a suspended account. */
const SUSPENDED = '550 5.7.1 Sending from this account is temporarily suspended. Please contact your administrator.';
/** The burst account's hourly limit; soft from floor(10 × 0.8) + 1 = the 9th message. */
const USER_PER_HOUR = 10;
const SOFT_POINT = 8;

async function swaks(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('swaks', ['--hide-informational', '--timeout', '20', ...args]);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: `${e.stdout}${e.stderr}` };
  }
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Both servers' config: the shared DNS server, short timeouts, distinct hostnames (authserv-ids). */
function configYaml(o: { hostname: string; dns: string; outboundPort?: number }): string {
  return [
    'server:',
    `  hostname: ${o.hostname}`,
    'dns:',
    `  servers: ["${o.dns}"]`,
    '  timeout_ms: 500',
    '  cache_ttl_seconds: 0',
    '  negative_cache_ttl_seconds: 0',
    'queue:',
    '  poll_interval_ms: 200',
    'outbound:',
    `  port: ${o.outboundPort ?? 25}`,
    '  connect_timeout_ms: 5000',
    '  command_timeout_ms: 20000',
    '  connection_idle_seconds: 0',
    '  retry_schedule_seconds: [300]',
    '  rate_limits:',
    `    user_per_hour: ${USER_PER_HOUR}`,
    '    soft_ratio: 0.8',
    '',
  ].join('\n');
}

describe(`outbound mail between two mairust serve instances (${shape})`, () => {
  let dns: TestDnsServer;
  let a: ShapeEnv;
  let b: ShapeEnv;
  let serverA: ServerProcess;
  let serverB: ServerProcess;
  let dbA: Database;
  let dbB: Database;
  const imapClients = new Set<ImapFlow>();
  let userIds: Record<string, string> = {};

  async function cli(env: ShapeEnv, args: string[], input = '') {
    const r = await runCli(args, env.env, input);
    assert.equal(r.code, 0, `mairust ${args.join(' ')}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** The REST API of one server as the bootstrap super-admin (SPEC §9). */
  async function api(env: ShapeEnv, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    tokens[env.httpPort] ??= await login(env);
    const res = await fetch(`http://127.0.0.1:${env.httpPort}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${tokens[env.httpPort]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null };
  }
  const tokens: Record<number, string> = {};
  async function login(env: ShapeEnv): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${env.httpPort}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: ADMIN, password: ADMIN_PASSWORD }) });
    const json = (await res.json()) as { data: { access_token: string } };
    assert.equal(res.status, 200, JSON.stringify(json));
    return json.data.access_token;
  }
  async function created(env: ShapeEnv, path: string, body: unknown): Promise<any> {
    const r = await api(env, 'POST', path, body);
    assert.equal(r.status, 201, `POST ${path}: ${JSON.stringify(r.json)}`);
    return r.json.data;
  }

  /** A tenant with `domain` and a user + mailbox per address, through the API. */
  async function provision(env: ShapeEnv, tenant: string, domain: string, users: string[]): Promise<{ domainId: string; userIds: Record<string, string> }> {
    const t = await created(env, '/admin/tenants', { name: tenant });
    const d = await created(env, '/domains', { name: domain, tenant_id: t.id });
    const userIds: Record<string, string> = {};
    for (const email of users) {
      const u = await created(env, '/users', { email, password: PASSWORD, tenant_id: t.id });
      await created(env, '/mailboxes', { address: email, user_id: u.id });
      userIds[email] = u.id;
    }
    return { domainId: d.id, userIds };
  }

  before(async () => {
    dns = await startDnsServer({
      'a.test': { MX: [{ priority: 10, exchange: 'mail.a.test' }], TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
      'mail.a.test': { A: ['127.0.0.1'] },
      '_dmarc.a.test': { TXT: ['v=DMARC1; p=reject'] },
      'b.test': { MX: [{ priority: 10, exchange: 'mx.b.test' }] },
      'mx.b.test': { A: ['127.0.0.1'] },
    });
    [a, b] = await Promise.all([shapeEnv(), shapeEnv()]);
    writeFileSync(a.env.MAIRUST_CONFIG, configYaml({ hostname: 'mail.a.test', dns: dns.address, outboundPort: b.smtpPorts.smtp }));
    writeFileSync(b.env.MAIRUST_CONFIG, configYaml({ hostname: 'mx.b.test', dns: dns.address }));
    const admin = { MAIRUST_ADMIN_EMAIL: ADMIN, MAIRUST_ADMIN_PASSWORD: ADMIN_PASSWORD };
    serverA = startServerProcess({ ...a.env, ...admin });
    serverB = startServerProcess({ ...b.env, ...admin });
    await Promise.all([waitForReady(a.httpPort, 60_000), waitForReady(b.httpPort, 60_000)]);

    const [onA] = await Promise.all([
      provision(a, 'acme', 'a.test', ['alice@a.test', 'carol@a.test', 'news@a.test']),
      provision(b, 'bcorp', 'b.test', ['bob@b.test']),
    ]);
    userIds = onA.userIds;
    // The API created a.test's DKIM key with the domain; publish its record as the API lists it.
    const records = await api(a, 'GET', `/domains/${onA.domainId}/dns-records`);
    assert.equal(records.status, 200, JSON.stringify(records.json));
    const dkim = (records.json.data.records as { type: string; name: string; value: string; purpose: string }[]).find((r) => r.purpose === 'dkim');
    assert.ok(dkim, JSON.stringify(records.json.data.records));
    assert.match(dkim.name, /^[a-z0-9-]+\._domainkey\.a\.test$/);
    assert.match(dkim.value, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]+$/);
    dns.set(dkim.name, { TXT: [dkim.value] });
    dbA = await openDatabase(a.env.MAIRUST_DATABASE_URL ?? `sqlite:${join(a.dataDir, 'mairust.db')}`);
    dbB = await openDatabase(b.env.MAIRUST_DATABASE_URL ?? `sqlite:${join(b.dataDir, 'mairust.db')}`);
  });

  after(async () => {
    for (const c of imapClients) await c.logout().catch(() => c.close());
    await dbA?.close();
    await dbB?.close();
    await Promise.all([serverA?.stop(), serverB?.stop()]);
    await Promise.all([a?.cleanup(), b?.cleanup()]);
    await dns?.close();
  });

  /** Folder entries of `address` on one server (newest last). */
  function entries(db: Database, address: string, folder = 'INBOX') {
    return db.kysely
      .selectFrom('folder_entries as e')
      .innerJoin('folders as f', 'f.id', 'e.folder_id')
      .innerJoin('mailboxes as m', 'm.id', 'e.mailbox_id')
      .innerJoin('messages as msg', 'msg.id', 'e.message_id')
      .select(['e.uid', 'msg.subject', 'msg.id as message_id'])
      .where('m.address', '=', address)
      .where('f.name', '=', folder)
      .where('e.deleted_at', 'is', null)
      .orderBy('e.uid')
      .execute();
  }

  /** The raw message with IMAP UID `uid` in INBOX of `user`, read with imapflow over IMAPS. */
  async function fetchRaw(env: ShapeEnv, user: string, uid: number): Promise<string> {
    const client = new ImapFlow({ host: '127.0.0.1', port: env.mailPorts.imaps, secure: true, auth: { user, pass: PASSWORD }, tls: { rejectUnauthorized: false }, logger: false });
    client.on('error', () => {});
    await client.connect();
    imapClients.add(client);
    try {
      await client.mailboxOpen('INBOX');
      const msg = await client.fetchOne(String(uid), { source: true }, { uid: true });
      assert.ok(msg && msg.source, `UID ${uid} of ${user}`);
      return msg.source.toString('utf8');
    } finally {
      imapClients.delete(client);
      await client.logout().catch(() => client.close());
    }
  }

  /** A's queue record of the submitted message with `subject`. */
  async function recordOf(subject: string) {
    return dbA.kysely
      .selectFrom('outbound_messages as o')
      .innerJoin('messages as m', 'm.id', 'o.message_id')
      .select(['o.id', 'o.status', 'o.policy_json', 'o.next_attempt_at', 'o.created_at'])
      .where('m.subject', '=', subject)
      .executeTakeFirst();
  }

  /** GET /api/v1/queue/:id on A: the entry with its recipients and SMTP transcripts. */
  async function showRecord(id: string) {
    const r = await api(a, 'GET', `/queue/${id}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return r.json.data as {
      status: string;
      recipient_list: { address: string; status: string; last_reply: string | null }[];
      attempt_list: { result: string; mx_host: string | null; tls: string | null; transcript: string[] }[];
    };
  }

  async function suspendedEmails(): Promise<string[]> {
    const r = await api(a, 'GET', '/admin/outbound/accounts?status=suspended');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return (r.json.data as { email: string | null; suspended: boolean }[]).filter((x) => x.suspended).map((x) => x.email ?? '');
  }

  function submitArgs(from: string, to: string, subject: string): string[] {
    return [
      '--server', `127.0.0.1:${a.smtpPorts.submission}`, '--tls',
      '--auth', 'PLAIN', '--auth-user', from, '--auth-password', PASSWORD,
      '--from', from, '--to', to,
      '--header', `From: ${from}`, '--header', `Subject: ${subject}`,
      '--body', `Hello from ${from}, ${randomBytes(6).toString('hex')}.`,
    ];
  }

  test('alice@a.test → bob@b.test: delivered into bob\'s INBOX on B with dkim, spf and dmarc pass; A\'s record delivered with a transcript', async () => {
    const subject = `Quarterly figures ${randomBytes(3).toString('hex')}`;
    const r = await swaks(submitArgs('alice@a.test', 'bob@b.test', subject));
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /<- {2}250 /);

    const entry = await until('the message in bob\'s INBOX on B', async () => (await entries(dbB, 'bob@b.test')).find((e) => e.subject === subject));
    const raw = await fetchRaw(b, 'bob@b.test', Number(entry.uid));
    const ar = raw.split(/\r\n(?![ \t])/).find((f) => /^Authentication-Results:\s*mx\.b\.test\b/i.test(f));
    assert.ok(ar, `B's Authentication-Results:\n${raw.slice(0, 4000)}`);
    const text = ar.replace(/\r\n[ \t]+/g, ' ');
    assert.match(text, /\bspf=pass\b[^;]*smtp\.mailfrom=alice@a\.test/, text);
    assert.match(text, /\bdkim=pass\b[^;]*header\.d=a\.test/, text);
    assert.match(text, /\bdmarc=pass\b[^;]*header\.from=a\.test/, text);
    assert.match(raw, /^DKIM-Signature:[^]*?\bd=a\.test;/m, 'A signed it');

    const rec = await until('A\'s record delivered', async () => {
      const row = await recordOf(subject);
      return row && row.status === 'delivered' ? row : null;
    });
    const shown = await showRecord(rec.id);
    assert.equal(shown.status, 'delivered');
    assert.equal(shown.recipient_list[0].address, 'bob@b.test');
    assert.equal(shown.recipient_list[0].status, 'delivered');
    assert.match(shown.recipient_list[0].last_reply ?? '', /^250 /);
    const attempt = shown.attempt_list.at(-1)!;
    assert.equal(attempt.result, 'delivered');
    assert.equal(attempt.mx_host, 'mx.b.test');
    assert.match(attempt.tls ?? '', /TLS/, 'opportunistic STARTTLS between the servers');
    assert.ok(attempt.transcript.some((l) => /^C: MAIL FROM:<alice@a\.test>/.test(l)), attempt.transcript.join('\n'));
    assert.ok(attempt.transcript.some((l) => /^C: RCPT TO:<bob@b\.test>/.test(l)));
    assert.ok(attempt.transcript.some((l) => /^S: 250\b/.test(l)));
  });

  test('5xx: unknown@b.test is refused by B at RCPT → A bounces the record and alice gets a DSN with the original headers', async () => {
    const subject = `Lost letter ${randomBytes(3).toString('hex')}`;
    const r = await swaks(submitArgs('alice@a.test', 'unknown@b.test', subject));
    assert.equal(r.code, 0, r.out);
    const rec = await until('A\'s record bounced', async () => {
      const row = await recordOf(subject);
      return row && row.status === 'bounced' ? row : null;
    });
    const shown = await showRecord(rec.id);
    assert.equal(shown.recipient_list[0].status, 'bounced');
    assert.match(shown.recipient_list[0].last_reply ?? '', /^550 5\.1\.1 /, 'B\'s own RCPT reply');
    assert.ok(shown.attempt_list.at(-1)!.transcript.some((l) => /^S: 550 5\.1\.1 /.test(l)));

    // The DSN is the INBOX message of alice's whose rfc822-headers part carries the Subject.
    const dsn = await until('the DSN in alice\'s INBOX on A', async () => {
      for (const e of await entries(dbA, 'alice@a.test')) {
        const raw = await fetchRaw(a, 'alice@a.test', Number(e.uid));
        if (raw.includes('multipart/report') && raw.includes(`Subject: ${subject}`)) return raw;
      }
      return null;
    });
    assert.match(dsn, /^From: Mail Delivery System <MAILER-DAEMON@[^>]+>/m);
    // Delivered locally (alice is on A): there is no SMTP envelope, so nothing records the null
    // reverse-path; the DSN marks itself as automatic instead (RFC 3834 §5).
    assert.match(dsn, /^Auto-Submitted: auto-replied$/m);
    assert.match(dsn, /^To: <alice@a\.test>$/m);
    assert.match(dsn, /report-type="?delivery-status/i);
    assert.match(dsn, /^Content-Type: text\/rfc822-headers/m);
    assert.match(dsn, /^Final-Recipient: rfc822; unknown@b\.test$/m);
    assert.match(dsn, /^Action: failed$/m);
    assert.match(dsn, /^Status: 5\.1\.1$/m);
    assert.match(dsn, /^Remote-MTA: dns; mx\.b\.test$/m);
    assert.match(dsn, /^Diagnostic-Code: smtp; 550 5\.1\.1 /m);
    const headersPart = dsn.slice(dsn.search(/^Content-Type: text\/rfc822-headers/m));
    assert.match(headersPart, /^From: alice@a\.test/m, 'the original header section');
    assert.match(headersPart, new RegExp(`^Subject: ${subject}`, 'm'));
  });

  /** One connection on A's submission port: STARTTLS, AUTH PLAIN as `user`. */
  async function submissionSession(user: string): Promise<SmtpWire> {
    const wire = await SmtpWire.connect(a.smtpPorts.submission);
    assert.equal((await wire.reply()).code, 220);
    const { extensions } = await wire.ehlo('client.a.test');
    assert.ok(extensions.includes('PIPELINING'), `PIPELINING offered: ${extensions.join(', ')}`);
    assert.equal((await wire.startTls()).code, 220);
    await wire.ehlo('client.a.test');
    const auth = await wire.command(`AUTH PLAIN ${plainCredentials(user, PASSWORD)}`);
    assert.equal(auth.code, 235, auth.line);
    return wire;
  }

  /**
   * One message with MAIL, RCPT and DATA pipelined in one write (RFC 2920 §3.1), then the text.
   * Returns the first refusal or the final reply.
   */
  async function pipelined(wire: SmtpWire, from: string, to: string, subject: string, body: string): Promise<Reply> {
    wire.write(`MAIL FROM:<${from}>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
    const mail = await wire.reply();
    const rcpt = await wire.reply();
    const data = await wire.reply();
    if (mail.code !== 250) return mail;
    if (rcpt.code !== 250) return rcpt;
    if (data.code !== 354) return data;
    wire.write(`From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${randomBytes(8).toString('hex')}@a.test>\r\n\r\n${body}\r\n.\r\n`);
    return wire.reply(30_000);
  }

  test('policy over real SMTP: a burst is allowed, then soft-limited, then refused with the SPEC §8 reply; receiving continues; unsuspend restores sending', async () => {
    const wire = await submissionSession('carol@a.test');
    const replies: { subject: string; reply: Reply }[] = [];
    const tag = randomBytes(3).toString('hex');
    try {
      for (let i = 1; i <= USER_PER_HOUR + 2; i++) {
        const subject = `Burst ${tag} #${i}`;
        replies.push({ subject, reply: await pipelined(wire, 'carol@a.test', 'bob@b.test', subject, `Distinct text number ${i} ${randomBytes(8).toString('hex')}.`) });
      }
      await wire.command('QUIT').catch(() => null);
    } finally {
      wire.destroy();
    }

    // 1 … limit accepted (250); limit+1 and later: the exact SPEC §8 line.
    for (const [i, r] of replies.entries()) {
      const n = i + 1;
      if (n <= USER_PER_HOUR) assert.equal(r.reply.code, 250, `message ${n}: ${r.reply.line}`);
      else assert.equal(r.reply.line, SUSPENDED, `message ${n}`);
    }
    // Up to the soft point: normal, queued now. Above it: soft, still accepted but delayed.
    for (const [i, r] of replies.slice(0, USER_PER_HOUR).entries()) {
      const n = i + 1;
      const row = await recordOf(r.subject);
      assert.ok(row, `a queue record for message ${n}`);
      const policy = JSON.parse(row.policy_json ?? 'null') as { level: string; action: string; delayMs: number; reason: string } | null;
      assert.ok(policy, `message ${n} has its policy decision stored`);
      if (n <= SOFT_POINT) {
        assert.equal(policy.level, 'normal', `message ${n}: ${policy.reason}`);
        assert.equal(policy.action, 'allow');
      } else {
        assert.equal(policy.level, 'soft', `message ${n}: ${policy.reason}`);
        assert.equal(policy.action, 'delay');
        assert.equal(policy.delayMs, 900_000, 'policy.soft_delay_seconds default');
        assert.ok(Number(row.next_attempt_at) >= Number(row.created_at) + 890_000, `message ${n} waits in the queue`);
        assert.equal(row.status, 'queued');
      }
    }
    assert.equal(await recordOf(replies[USER_PER_HOUR].subject), undefined, 'a refused message is not queued');

    assert.deepEqual(await suspendedEmails(), ['carol@a.test'], 'the hard limit suspended the account');

    // Receiving is untouched: mail TO the suspended account is accepted on A's MX port.
    const inbound = `Still reachable ${tag}`;
    const rx = await swaks(['--server', `127.0.0.1:${a.smtpPorts.smtp}`, '--from', 'someone@b.test', '--to', 'carol@a.test', '--header', `Subject: ${inbound}`]);
    assert.equal(rx.code, 0, rx.out);
    await until('the inbound message in carol\'s INBOX', async () => (await entries(dbA, 'carol@a.test')).some((e) => e.subject === inbound));

    // A new connection is refused too (the suspension is stored, not per session).
    const again = await submissionSession('carol@a.test');
    try {
      const r = await pipelined(again, 'carol@a.test', 'bob@b.test', `Again ${tag}`, 'Still suspended?');
      assert.equal(r.line, SUSPENDED);
      const lifted = await api(a, 'POST', `/admin/outbound/accounts/${userIds['carol@a.test']}/unsuspend`);
      assert.equal(lifted.status, 200, JSON.stringify(lifted.json));
      assert.equal(lifted.json.data.suspended, false);
      const ok = await pipelined(again, 'carol@a.test', 'bob@b.test', `After unsuspend ${tag}`, `Back again ${randomBytes(6).toString('hex')}.`);
      assert.equal(ok.code, 250, `sending works again after unsuspend: ${ok.line}`);
    } finally {
      again.destroy();
    }
    const after = await recordOf(`After unsuspend ${tag}`);
    assert.equal((JSON.parse(after!.policy_json ?? '{}') as { level: string }).level, 'normal', 'fresh counts after unsuspend');
  });

  test('a whitelisted newsletter account is not blocked past the normal hourly limit', async () => {
    // The operator's way (SPEC §12): the CLI, against the running server's database.
    const added = JSON.parse(await cli(a, ['--json', 'outbound', 'whitelist', 'add', 'news@a.test', '--profile', 'newsletter', '--note', 'monthly newsletter'])) as { profile: string; per_hour: number };
    assert.equal(added.profile, 'newsletter');
    assert.equal(added.per_hour, 5000, 'the default newsletter profile');
    const wire = await submissionSession('news@a.test');
    const tag = randomBytes(3).toString('hex');
    const count = USER_PER_HOUR + 3;
    try {
      for (let i = 1; i <= count; i++) {
        // A newsletter sends the same text to many people: identical bodies on purpose.
        const r = await pipelined(wire, 'news@a.test', 'bob@b.test', `Newsletter ${tag} #${i}`, 'This month: identical newsletter text for every reader.');
        assert.equal(r.code, 250, `newsletter message ${i}: ${r.line}`);
      }
      await wire.command('QUIT').catch(() => null);
    } finally {
      wire.destroy();
    }
    for (let i = 1; i <= count; i++) {
      const row = await recordOf(`Newsletter ${tag} #${i}`);
      const policy = JSON.parse(row!.policy_json ?? '{}') as { level: string; reason: string };
      assert.equal(policy.level, 'normal', `newsletter message ${i}: ${policy.reason}`);
    }
    assert.ok(!(await suspendedEmails()).includes('news@a.test'), 'not suspended');
  });
});
