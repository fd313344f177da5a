/**
 * `mairust outbound …` (SPEC §8 "Recovery", §12: suspend, unsuspend, accounts, whitelist, stats)
 * and `mairust queue outbound …` (SPEC §3.3: list, show, hold, release, delete --bounce) against a
 * database of the current shape with the configuration the server uses.
 *
 * A CLI start costs seconds on this machine, so most commands run in-process: the command groups
 * (src/cli/outbound.ts, src/cli/queue.ts) registered on a commander program with a CliContext that
 * opens the real application from the config file, like `mairust` does, and records what is
 * printed. Two commands run as an operator runs them (bin/mairust.mjs in a child process, --json)
 * to cover the entry point and the JSON output. Every change is audited with actor `cli`.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { startApi, auditRowsFor, type ApiHarness, type TestTenant, type TestUser } from '../support/api.js';
import { runCli, type CliResult } from '../support/server-process.js';
import { shape } from '../support/shape.js';
import { openApp } from '../../src/app/context.js';
import { tenantScope } from '../../src/core/scope.js';
import type { CliContext } from '../../src/cli/cli-context.js';
import { register as registerOutbound } from '../../src/cli/outbound.js';
import { register as registerQueue } from '../../src/cli/queue.js';
import { createOutboundRecord } from '../../src/outbound/records.js';

let api: ApiHarness;
let t: TestTenant;
let sender: TestUser;
let configPath: string;
let logFd: number;
let inbox: string;
/** Queue ids: one2 (two recipients, a policy decision), two (one recipient). */
const ids = { one2: '', two: '' };
const POLICY = { action: 'allow', score: 0.25, signals: [] };

interface Outcome {
  printed: any[];
  failures: { message: string; code: number }[];
}

/** One command in-process, through the command group's own code and a real AppContext. */
async function run(args: string[], json = false): Promise<Outcome> {
  const out: Outcome = { printed: [], failures: [] };
  const program = new Command('mairust').exitOverride();
  const cli: CliContext = {
    globals: () => ({ json }),
    open: (needs) => openApp({ ...needs, configPath, env: {}, logDestination: logFd }),
    print: (v) => void out.printed.push(v),
    fail: (message, code = 1) => void out.failures.push({ message, code }),
  };
  registerOutbound(program, cli);
  registerQueue(program, cli);
  await program.parseAsync(args, { from: 'user' });
  return out;
}

/** One command as an operator runs it. */
async function binary(...args: string[]): Promise<any> {
  const r: CliResult = await runCli(['--json', ...args], { MAIRUST_CONFIG: configPath });
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const ok = (o: Outcome): any => {
  assert.deepEqual(o.failures, []);
  assert.equal(o.printed.length, 1);
  return o.printed[0];
};

async function record(o: { recipients: string[]; policy?: unknown }): Promise<string> {
  const raw = Buffer.from(`From: <sender@ob.test>\r\nTo: ${o.recipients.join(', ')}\r\nSubject: Invoice 42\r\nMessage-ID: <${randomBytes(6).toString('hex')}@ob.test>\r\n\r\nPlease pay.\r\n`);
  const stored = await api.app.mailboxState.storeMessage(tenantScope(t.id), { raw });
  const id = randomBytes(8).toString('hex');
  await api.app.db.kysely.transaction().execute((trx) =>
    createOutboundRecord(api.app.queue, trx, { id, tenantId: t.id, messageId: stored.id, userId: sender.user.id, mailFrom: 'sender@ob.test', recipients: o.recipients, size: raw.length, policy: o.policy, delayMs: 3600_000 }),
  );
  return id;
}

async function cliAudit(event: string, target: string): Promise<unknown[]> {
  return (await auditRowsFor(api, event, target)).map((r) => r.actor);
}

before(async () => {
  api = await startApi();
  configPath = join(api.dataDir, 'config.yaml');
  logFd = openSync(join(api.dataDir, 'cli.log'), 'a');
  t = await api.tenant('ob');
  const scope = tenantScope(t.id);
  await api.app.tenancy.domains.add(scope, { name: 'ob.test' });
  sender = await api.user(t.id, { role: 'user', email: 'sender@ob.test' });
  const mailbox = await api.app.tenancy.mailboxes.add(scope, { address: 'sender@ob.test', user: sender.user.id });
  inbox = (await api.app.mailboxState.findFolder(scope, mailbox.id, 'INBOX'))!.id;
  ids.one2 = await record({ recipients: ['x@remote-one.test', 'y@remote-two.test'], policy: POLICY });
  ids.two = await record({ recipients: ['z@remote-two.test'] });
});

after(async () => {
  if (logFd !== undefined) closeSync(logFd);
  await api?.close();
});

describe(`mairust outbound (${shape})`, () => {
  test('suspend: the account is refused sending, audited; a second suspend fails', async () => {
    const row = ok(await run(['outbound', 'suspend', 'sender@ob.test', '--reason', 'phishing reported'], true));
    assert.equal(row.user, 'sender@ob.test');
    assert.equal(row.suspended, true);
    assert.equal(row.level, 'hard');
    assert.equal(row.reason, 'phishing reported');
    const acct = await api.app.db.kysely.selectFrom('outbound_accounts').selectAll().where('user_id', '=', sender.user.id).executeTakeFirstOrThrow();
    assert.notEqual(acct.suspended_at, null);
    assert.deepEqual(await cliAudit('outbound.account_suspended', sender.user.id), [{ type: 'cli' }]);

    const again = await run(['outbound', 'suspend', sender.user.id]);
    assert.equal(again.failures.length, 1);
    assert.match(again.failures[0].message, /already suspended/);
    const unknown = await run(['outbound', 'suspend', 'nobody@ob.test']);
    assert.equal(unknown.failures.length, 1, 'an unknown user fails with one line');
  });

  test('`mairust --json outbound accounts --suspended` lists the suspended account', async () => {
    const list = await binary('outbound', 'accounts', '--suspended');
    assert.ok(Array.isArray(list));
    assert.deepEqual(
      list.map((a: any) => [a.userId, a.email, a.suspended, a.suspendedReason]),
      [[sender.user.id, 'sender@ob.test', true, 'phishing reported']],
    );
  });

  test('unsuspend: sending allowed again; the suspended list is empty', async () => {
    const row = ok(await run(['outbound', 'unsuspend', 'sender@ob.test'], true));
    assert.equal(row.suspended, false);
    assert.equal(row.level, 'normal');
    assert.deepEqual(ok(await run(['outbound', 'accounts', '--suspended'], true)), []);
    const all = ok(await run(['outbound', 'accounts'], false));
    assert.deepEqual(all.map((r: any) => [r.user, r.suspended]), [['sender@ob.test', false]]);
    assert.deepEqual(await cliAudit('outbound.account_unsuspended', sender.user.id), [{ type: 'cli' }]);
    assert.match((await run(['outbound', 'unsuspend', 'sender@ob.test'])).failures[0]?.message ?? '', /not suspended/);
  });

  test('whitelist add, list, remove; an unknown profile fails', async () => {
    const bad = await run(['outbound', 'whitelist', 'add', 'sender@ob.test', '--profile', 'nope']);
    assert.match(bad.failures[0]?.message ?? '', /unknown whitelist profile "nope"/);
    const added = ok(await run(['outbound', 'whitelist', 'add', 'sender@ob.test', '--profile', 'newsletter', '--note', 'monthly'], true));
    assert.deepEqual({ ...added, id: undefined }, { id: undefined, user: 'sender@ob.test', profile: 'newsletter', per_hour: 5000, per_day: 50000 });
    const list = ok(await run(['outbound', 'whitelist', 'list'], true));
    assert.deepEqual(list, [{ id: added.id, user: 'sender@ob.test', profile: 'newsletter', per_hour: 5000, per_day: 50000, note: 'monthly' }]);
    assert.match((await run(['outbound', 'whitelist', 'add', sender.user.id, '--profile', 'newsletter'])).failures[0]?.message ?? '', /already/);

    assert.deepEqual(ok(await run(['outbound', 'whitelist', 'remove', 'sender@ob.test'])), 'removed sender@ob.test from the outbound whitelist');
    assert.deepEqual(ok(await run(['outbound', 'whitelist', 'list'], true)), []);
    assert.deepEqual(await cliAudit('outbound.whitelist_added', sender.user.id), [{ type: 'cli' }]);
    assert.deepEqual(await cliAudit('outbound.whitelist_removed', sender.user.id), [{ type: 'cli' }]);
  });

  test('stats: accounts, whitelist, events and messages of the last 24 h', async () => {
    const s = ok(await run(['outbound', 'stats'], true));
    assert.deepEqual(s.accounts, { suspended: 0, soft: 0, hard: 0, tracked: 1 });
    assert.equal(s.whitelisted, 0);
    assert.equal(s.eventsLast24h.suspended, 1);
    assert.equal(s.eventsLast24h.unsuspended, 1);
    assert.equal(s.messagesLast24h, 2, 'the two queue records');
  });
});

describe(`mairust queue outbound (${shape})`, () => {
  test('list with filters; a bad --status fails without opening the app', async () => {
    const rows = ok(await run(['queue', 'outbound', 'list']));
    assert.deepEqual(rows.map((r: any) => r.id).sort(), [ids.one2, ids.two].sort());
    const row = rows.find((r: any) => r.id === ids.one2);
    assert.equal(row.status, 'queued');
    assert.equal(row.from, 'sender@ob.test');
    assert.equal(row.recipients, 'pending:2');
    const byDomain = ok(await run(['queue', 'outbound', 'list', '--domain', 'remote-one.test', '--status', 'queued'], true));
    assert.deepEqual(byDomain.map((r: any) => r.id), [ids.one2]);
    assert.deepEqual(byDomain[0].counts, { pending: 2 });
    assert.deepEqual(ok(await run(['queue', 'outbound', 'list', '--status', 'delivered'])), []);
    const bad = await run(['queue', 'outbound', 'list', '--status', 'stuck']);
    assert.deepEqual(bad.failures.map((f) => f.code), [2]);
    assert.match(bad.failures[0].message, /--status must be one of/);
  });

  test('show: recipients, attempts and the policy decision; an unknown id fails', async () => {
    const d = ok(await run(['queue', 'outbound', 'show', ids.one2], true));
    assert.equal(d.id, ids.one2);
    assert.deepEqual(d.recipients.map((r: any) => [r.address, r.status]), [['x@remote-one.test', 'pending'], ['y@remote-two.test', 'pending']]);
    assert.deepEqual(d.attempts, []);
    assert.deepEqual(d.policy, POLICY);
    assert.match(d.nextAttemptAt, /^\d{4}-\d\d-\d\dT/);
    const missing = await run(['queue', 'outbound', 'show', 'no-such-entry']);
    assert.deepEqual(missing.failures, [{ message: 'queue entry "no-such-entry" not found', code: 1 }]);
  });

  test('hold and release: the record is held, then due now; audited with actor cli', async () => {
    const held = ok(await run(['queue', 'outbound', 'hold', ids.two]));
    assert.equal(held.status, 'queued (held)');
    assert.equal(Number((await api.app.db.kysely.selectFrom('outbound_messages').select('held').where('id', '=', ids.two).executeTakeFirstOrThrow()).held), 1);
    assert.match((await run(['queue', 'outbound', 'retry', ids.two])).failures[0]?.message ?? '', /is held/);

    const t0 = Date.now();
    const released = ok(await run(['queue', 'outbound', 'release', ids.two]));
    assert.equal(released.status, 'queued');
    assert.ok(Date.parse(released.next_attempt_at) >= t0 - 5000 && Date.parse(released.next_attempt_at) <= Date.now(), 'due now');
    assert.match((await run(['queue', 'outbound', 'release', ids.two])).failures[0]?.message ?? '', /is not held/);
    assert.deepEqual(await cliAudit('outbound.held', ids.two), [{ type: 'cli' }]);
    assert.deepEqual(await cliAudit('outbound.released', ids.two), [{ type: 'cli' }]);
  });

  test('`mairust --json queue outbound delete --bounce` bounces the recipients with a DSN to the sender', async () => {
    const jobId = (await api.app.db.kysely.selectFrom('outbound_messages').select('job_id').where('id', '=', ids.one2).executeTakeFirstOrThrow()).job_id!;
    const out = await binary('queue', 'outbound', 'delete', ids.one2, '--bounce');
    assert.equal(out.id, ids.one2);
    assert.equal(out.status, 'deleted');
    assert.equal(out.recipients, 'bounced:2');
    assert.equal(await api.app.queue.get(jobId), null, 'the job is gone');

    const scope = tenantScope(t.id);
    const entries = await api.app.mailboxState.listEntries(scope, inbox);
    assert.equal(entries.length, 1, 'one DSN in the sender\'s INBOX');
    const chunks: Buffer[] = [];
    for await (const c of await api.app.mailboxState.openMessage(scope, entries[0].messageId)) chunks.push(c as Buffer);
    const dsn = Buffer.concat(chunks).toString('utf8');
    assert.match(dsn, /^Subject: Undelivered Mail Returned to Sender$/m);
    assert.match(dsn, /^Final-Recipient: rfc822; x@remote-one\.test$/m);
    assert.match(dsn, /^Final-Recipient: rfc822; y@remote-two\.test$/m);
    assert.match(dsn, /^Subject: Invoice 42$/m, 'the original header section is attached');
    const audit = await auditRowsFor(api, 'outbound.deleted', ids.one2);
    assert.deepEqual(audit.map((r) => [r.actor, r.metadata]), [[{ type: 'cli' }, { bounce: true, recipients: 2 }]]);

    // Deleted once; deleting again is "not found".
    const again = await run(['queue', 'outbound', 'delete', ids.one2, '--bounce']);
    assert.equal(again.failures.length, 1);
    assert.equal((await api.app.mailboxState.listEntries(scope, inbox)).length, 1, 'no second DSN');
  });
});
