/**
 * Mail through the real server process: `mairust serve` with its SMTP listeners, real clients
 * (swaks, Python smtplib), and the stored result read back from the database and blob store.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { openDatabase, type Database } from '../../src/store/db/database.js';
import { runCli, shapeEnv, startServerProcess, waitForReady, type ServerProcess, type ShapeEnv } from '../support/server-process.js';
import { shape } from '../support/shape.js';

const run = promisify(execFile);
const PASSWORD = 'correct horse battery staple';

async function swaks(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('swaks', ['--hide-informational', '--timeout', '20', ...args]);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: `${e.stdout}${e.stderr}` };
  }
}

describe(`SMTP delivery through mairust serve (${shape})`, () => {
  let s: ShapeEnv;
  let server: ServerProcess;
  let db: Database;

  before(async () => {
    s = await shapeEnv();
    for (const args of [
      ['tenant', 'add', 'acme'],
      ['domain', 'add', 'acme.test', '--tenant', 'acme'],
      ['user', 'add', 'alice@acme.test', '--tenant', 'acme', '--password-stdin'],
      ['mailbox', 'add', 'alice@acme.test', '--user', 'alice@acme.test'],
      ['mailbox', 'add', 'bob@acme.test'],
      ['alias', 'add', 'team@acme.test', '--to', 'alice@acme.test,bob@acme.test'],
    ]) {
      const r = await runCli(args, s.env, `${PASSWORD}\n`);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    server = startServerProcess(s.env);
    await waitForReady(s.httpPort);
    db = await openDatabase(s.env.MAIRUST_DATABASE_URL ?? `sqlite:${join(s.dataDir, 'mairust.db')}`);
  });

  after(async () => {
    await db?.close();
    await server?.stop();
    await s.cleanup();
  });

  async function entriesOf(address: string, folder = 'INBOX') {
    return db.kysely
      .selectFrom('folder_entries as e')
      .innerJoin('folders as f', 'f.id', 'e.folder_id')
      .innerJoin('mailboxes as m', 'm.id', 'e.mailbox_id')
      .innerJoin('messages as msg', 'msg.id', 'e.message_id')
      .select(['e.uid', 'msg.subject', 'msg.blob_key', 'msg.id as message_id'])
      .where('m.address', '=', address)
      .where('f.name', '=', folder)
      .where('e.deleted_at', 'is', null)
      .orderBy('e.uid')
      .execute();
  }

  test('MX: swaks delivers to an alias with two targets: one stored message, two folder entries', async () => {
    const r = await swaks(['--server', `127.0.0.1:${s.smtpPorts.smtp}`, '--from', 'sender@example.org', '--to', 'team@acme.test', '--header', 'Subject: hello team']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /<- {2}250 2\.0\.0 /);
    const alice = await entriesOf('alice@acme.test');
    const bob = await entriesOf('bob@acme.test');
    assert.equal(alice.length, 1);
    assert.equal(bob.length, 1);
    assert.equal(alice[0].subject, 'hello team');
    assert.equal(alice[0].message_id, bob[0].message_id, 'one messages row serves both recipients');
  });

  test('MX: unknown user 550 5.1.1 and a non-hosted domain 554 5.7.1 (no open relay)', async () => {
    const unknown = await swaks(['--server', `127.0.0.1:${s.smtpPorts.smtp}`, '--from', 'x@example.org', '--to', 'nobody@acme.test', '--quit-after', 'RCPT']);
    assert.match(unknown.out, /<\*\* 550 5\.1\.1 /);
    const relay = await swaks(['--server', `127.0.0.1:${s.smtpPorts.smtp}`, '--from', 'x@example.org', '--to', 'victim@elsewhere.example', '--quit-after', 'RCPT']);
    assert.match(relay.out, /<\*\* 554 5\.7\.1 /);
  });

  test('submission: STARTTLS + AUTH, a local recipient is delivered and a copy lands in Sent; a remote one waits in the queue', async () => {
    const r = await swaks([
      '--server', `127.0.0.1:${s.smtpPorts.submission}`, '--tls',
      '--auth', 'PLAIN', '--auth-user', 'alice@acme.test', '--auth-password', PASSWORD,
      '--from', 'alice@acme.test', '--to', 'bob@acme.test,carol@remote.example',
      '--header', 'From: alice@acme.test', '--header', 'Subject: from alice',
    ]);
    assert.equal(r.code, 0, r.out);
    const bob = await entriesOf('bob@acme.test');
    assert.ok(bob.some((e) => e.subject === 'from alice'), 'delivered to bob');
    const sent = await entriesOf('alice@acme.test', 'Sent');
    assert.ok(sent.some((e) => e.subject === 'from alice'), 'copy in Sent');
    // The remote recipient is in an outbound record (mairust queue outbound), on the domain filter.
    const q = await runCli(['--json', 'queue', 'outbound', 'list', '--domain', 'remote.example'], s.env);
    assert.equal(q.code, 0, q.stderr);
    const records = JSON.parse(q.stdout) as { id: string; mailFrom: string }[];
    assert.equal(records.length, 1, `one record for the remote recipient: ${q.stdout}`);
    assert.equal(records[0].mailFrom, 'alice@acme.test');
  });

  test('submission: sending as an address the user does not own is refused with 553 5.7.1', async () => {
    const r = await swaks([
      '--server', `127.0.0.1:${s.smtpPorts.submission}`, '--tls',
      '--auth', 'LOGIN', '--auth-user', 'alice@acme.test', '--auth-password', PASSWORD,
      '--from', 'bob@acme.test', '--to', 'bob@acme.test', '--quit-after', 'MAIL',
    ]);
    assert.match(r.out, /<~\* 553 5\.7\.1 Sender address not owned/);
  });

  test('implicit TLS port: Python smtplib SMTP_SSL logs in and sends', async () => {
    const py = [
      'import smtplib, ssl, sys',
      'ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE',
      `s = smtplib.SMTP_SSL("127.0.0.1", ${s.smtpPorts.smtps}, context=ctx, timeout=20)`,
      `s.login("alice@acme.test", "${PASSWORD}")`,
      's.sendmail("alice@acme.test", ["bob@acme.test"], b"From: alice@acme.test\\r\\nTo: bob@acme.test\\r\\nSubject: via smtps\\r\\n\\r\\nhi\\r\\n")',
      's.quit()',
    ].join('\n');
    await run('python3', ['-c', py]);
    const bob = await entriesOf('bob@acme.test');
    assert.ok(bob.some((e) => e.subject === 'via smtps'));
  });
});
