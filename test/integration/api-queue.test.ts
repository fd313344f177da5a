/**
 * `/api/v1/queue…` (SPEC §3.3 "Queue is inspectable and manageable: list, show, retry now,
 * delete/bounce, hold/release (CLI + API)") through the whole HTTP pipeline, over queue records
 * written the way the submission pipeline writes them (`createOutboundRecord` in a transaction,
 * with its job): filters and pages, statistics, the detail with recipients, attempts and the policy
 * decision (SPEC §8), retry/hold/release against the real queue job and the real delivery worker,
 * delete with and without a bounce (an RFC 3464 DSN to the sender's INBOX, or a new null-sender
 * record for a remote sender), roles and tenant isolation (SPEC §9: another tenant's entry is 404),
 * and an audit row with the caller for every change.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startApi, auditRowsFor, actorOf, errorPaths, type ApiHarness, type TestTenant, type TestUser } from '../support/api.js';
import { shape } from '../support/shape.js';
import { tenantScope } from '../../src/core/scope.js';
import { createOutboundRecord, type OutboundJobPayload } from '../../src/outbound/records.js';
import { startOutboundWorker } from '../../src/outbound/delivery/worker.js';
import { createDsnSender } from '../../src/outbound/dsn.js';
import { newId } from '../../src/store/db/database.js';
import type { Job } from '../../src/queue/queue.js';

const Q = '/api/v1/queue';
const HOUR = 3600_000;

let api: ApiHarness;
let a: TestTenant;
let b: TestTenant;
let plain: TestUser;
let superAdmin: TestUser;
let senderMailbox: string;
let senderInbox: string;
/** Queue ids: A1 (2 recipients, a policy decision), A2 (1 recipient), A3 (remote sender), B1. */
const ids = { a1: '', a2: '', a3: '', b1: '' };
const POLICY = { action: 'allow', score: 1.5, level: 'normal', signals: [{ name: 'recipients_per_message', value: 2, weight: 0.5 }] };

/** A stored message of the tenant and its queue record + job, written like the pipeline does. */
async function record(tenantId: string, o: { mailFrom: string; recipients: string[]; policy?: unknown }): Promise<string> {
  const raw = Buffer.from(`From: <${o.mailFrom}>\r\nTo: ${o.recipients.join(', ')}\r\nSubject: Quarterly report\r\nMessage-ID: <${randomBytes(6).toString('hex')}@qa.test>\r\n\r\nThe numbers.\r\n`);
  const stored = await api.app.mailboxState.storeMessage(tenantScope(tenantId), { raw });
  const id = randomBytes(8).toString('hex');
  // The first attempt is an hour away, so a test sees "retry now" and "release" move it.
  await api.app.db.kysely.transaction().execute((trx) =>
    createOutboundRecord(api.app.queue, trx, { id, tenantId, messageId: stored.id, userId: null, mailFrom: o.mailFrom, recipients: o.recipients, size: raw.length, policy: o.policy, delayMs: HOUR }),
  );
  return id;
}

async function row(id: string) {
  return api.app.db.kysely.selectFrom('outbound_messages').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

async function inboxMessages(): Promise<string[]> {
  const scope = tenantScope(a.id);
  const out: string[] = [];
  for (const e of await api.app.mailboxState.listEntries(scope, senderInbox)) {
    const chunks: Buffer[] = [];
    for await (const c of await api.app.mailboxState.openMessage(scope, e.messageId)) chunks.push(c as Buffer);
    out.push(Buffer.concat(chunks).toString('utf8'));
  }
  return out;
}

const get = (t: TestUser, path: string) => api.call('GET', path, { token: t.token });
const post = (t: TestUser, path: string) => api.call('POST', path, { token: t.token });
const del = (t: TestUser, path: string) => api.call('DELETE', path, { token: t.token });

before(async () => {
  api = await startApi();
  a = await api.tenant('qa');
  b = await api.tenant('qb');
  plain = await api.user(a.id, { role: 'user' });
  superAdmin = await api.superAdmin();
  const scope = tenantScope(a.id);
  await api.app.tenancy.domains.add(scope, { name: 'qa.test' });
  senderMailbox = (await api.app.tenancy.mailboxes.add(scope, { address: 'sender@qa.test' })).id;
  senderInbox = (await api.app.mailboxState.findFolder(scope, senderMailbox, 'INBOX'))!.id;
  ids.a1 = await record(a.id, { mailFrom: 'sender@qa.test', recipients: ['x@remote-one.test', 'y@remote-two.test'], policy: POLICY });
  ids.a2 = await record(a.id, { mailFrom: 'sender@qa.test', recipients: ['z@remote-two.test'] });
  ids.a3 = await record(a.id, { mailFrom: 'someone@elsewhere.example', recipients: ['v@remote-two.test'] });
  ids.b1 = await record(b.id, { mailFrom: 'b@qb.test', recipients: ['w@remote-one.test'] });
});

after(async () => {
  await api?.close();
});

describe(`queue API (${shape})`, () => {
  test('roles: plain users are refused, another tenant\'s entry is 404, a super-admin sees all', async () => {
    for (const res of [
      await get(plain, Q),
      await get(plain, `${Q}/stats`),
      await get(plain, `${Q}/${ids.a1}`),
      await post(plain, `${Q}/${ids.a1}/hold`),
      await post(plain, `${Q}/${ids.a1}/retry`),
      await del(plain, `${Q}/${ids.a1}`),
    ]) {
      assert.equal(res.status, 403, res.body);
    }
    // Tenant B's admin: A's entry is exactly like one that does not exist (SPEC §9).
    for (const res of [
      await get(b.admin, `${Q}/${ids.a1}`),
      await post(b.admin, `${Q}/${ids.a1}/hold`),
      await post(b.admin, `${Q}/${ids.a1}/retry`),
      await post(b.admin, `${Q}/${ids.a1}/release`),
      await del(b.admin, `${Q}/${ids.a1}?bounce=true`),
      await get(a.admin, `${Q}/no-such-entry`),
    ]) {
      assert.equal(res.status, 404, res.body);
    }
    assert.equal((await row(ids.a1)).held, 0, 'the refused calls changed nothing');
    assert.equal((await row(ids.a1)).status, 'queued');

    const listA = await get(a.admin, Q);
    assert.equal(listA.status, 200, listA.body);
    assert.deepEqual(listA.json.data.map((r: any) => r.id).sort(), [ids.a1, ids.a2, ids.a3].sort());
    assert.ok(listA.json.data.every((r: any) => r.tenant_id === a.id));
    // A tenant admin cannot widen the scope with tenant_id.
    const sneaky = await get(a.admin, `${Q}?tenant_id=${b.id}`);
    assert.equal(sneaky.status, 200);
    assert.deepEqual(sneaky.json.data, []);
    const listB = await get(b.admin, Q);
    assert.deepEqual(listB.json.data.map((r: any) => r.id), [ids.b1]);

    const all = await get(superAdmin, Q);
    assert.deepEqual(all.json.data.map((r: any) => r.id).sort(), [ids.a1, ids.a2, ids.a3, ids.b1].sort());
    const onlyB = await get(superAdmin, `${Q}?tenant_id=${b.id}`);
    assert.deepEqual(onlyB.json.data.map((r: any) => r.id), [ids.b1]);
    assert.equal((await get(superAdmin, `${Q}/${ids.b1}`)).status, 200);
  });

  test('list: filters by status and recipient domain, pages with a cursor; a bad status is refused', async () => {
    const one = await get(a.admin, `${Q}?domain=remote-one.test`);
    assert.deepEqual(one.json.data.map((r: any) => r.id), [ids.a1]);
    const upper = await get(a.admin, `${Q}?domain=REMOTE-TWO.TEST`);
    assert.deepEqual(upper.json.data.map((r: any) => r.id).sort(), [ids.a1, ids.a2, ids.a3].sort(), 'domains compare case-insensitively');
    assert.equal((await get(a.admin, `${Q}?status=queued`)).json.data.length, 3);
    assert.deepEqual((await get(a.admin, `${Q}?status=delivered`)).json.data, []);
    // A malformed query string is the framework's 400 INVALID_REQUEST, naming the field.
    const bad = await get(a.admin, `${Q}?status=stuck`);
    assert.equal(bad.status, 400, bad.body);
    assert.equal(bad.json.error.code, 'INVALID_REQUEST');
    assert.deepEqual(errorPaths(bad), ['/status']);

    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 5; page++) {
      const res = await get(a.admin, `${Q}?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.data.length, 1);
      seen.push(res.json.data[0].id);
      cursor = res.json.pagination.cursor;
      if (!res.json.pagination.has_more) break;
    }
    assert.equal(cursor, null, 'the last page has no cursor');
    assert.deepEqual([...seen].sort(), [ids.a1, ids.a2, ids.a3].sort(), 'every entry once, none of tenant B');
    const entry = (await get(a.admin, `${Q}?domain=remote-one.test`)).json.data[0];
    assert.equal(entry.mail_from, 'sender@qa.test');
    assert.equal(entry.held, false);
    assert.deepEqual(entry.recipients, { pending: 2 });
    assert.equal(entry.attempts, 0);
    assert.ok(Date.parse(entry.next_attempt_at) > Date.now() + HOUR / 2, 'the first attempt is an hour away');
  });

  test('stats count per status and held, per tenant', async () => {
    const sa = await get(a.admin, `${Q}/stats`);
    assert.equal(sa.status, 200, sa.body);
    assert.deepEqual(sa.json.data, [{ status: 'queued', count: 3 }, { status: 'held', count: 0 }]);
    const sb = await get(b.admin, `${Q}/stats`);
    assert.deepEqual(sb.json.data, [{ status: 'queued', count: 1 }, { status: 'held', count: 0 }]);
    const all = await get(superAdmin, `${Q}/stats`);
    assert.deepEqual(all.json.data, [{ status: 'queued', count: 4 }, { status: 'held', count: 0 }]);
  });

  test('show: recipients, every attempt with its transcript, and the policy decision', async () => {
    // An attempt as the worker writes it (SPEC §5.2 transcript, AUTH redacted, no message data).
    await api.app.db.kysely
      .insertInto('outbound_attempts')
      .values({ id: newId(), outbound_id: ids.a1, domain: 'remote-two.test', at: Date.now() - 1000, mx_host: 'mx.remote-two.test', address: '127.0.0.1', tls: 'TLSv1.3', result: 'deferred', transcript: 'S: 220 mx.remote-two.test\nC: EHLO mail.test\nS: 451 4.3.0 try later' })
      .execute();
    const res = await get(a.admin, `${Q}/${ids.a1}`);
    assert.equal(res.status, 200, res.body);
    const d = res.json.data;
    assert.equal(d.id, ids.a1);
    assert.deepEqual(
      d.recipient_list.map((r: any) => [r.address, r.domain, r.status, r.attempts]),
      [
        ['x@remote-one.test', 'remote-one.test', 'pending', 0],
        ['y@remote-two.test', 'remote-two.test', 'pending', 0],
      ],
    );
    assert.equal(d.attempt_list.length, 1);
    assert.deepEqual(d.attempt_list[0].transcript, ['S: 220 mx.remote-two.test', 'C: EHLO mail.test', 'S: 451 4.3.0 try later']);
    assert.equal(d.attempt_list[0].tls, 'TLSv1.3');
    assert.equal(d.attempt_list[0].result, 'deferred');
    assert.deepEqual(d.policy, POLICY);
    assert.equal((await get(a.admin, `${Q}/${ids.a2}`)).json.data.policy, null);
  });

  test('retry makes the waiting job due now; audited', async () => {
    const before = await row(ids.a1);
    const jobBefore = (await api.app.queue.get(before.job_id!))!;
    assert.ok(jobBefore.runAt > Date.now() + HOUR / 2);
    const t0 = Date.now();
    const res = await post(a.admin, `${Q}/${ids.a1}/retry`);
    assert.equal(res.status, 200, res.body);
    assert.ok(Date.parse(res.json.data.next_attempt_at) <= Date.now());
    const after = await row(ids.a1);
    const job = (await api.app.queue.get(after.job_id!))!;
    assert.equal(job.status, 'ready');
    assert.ok(job.runAt <= Date.now() && job.runAt >= t0 - 5000, `job due now (run_at ${new Date(job.runAt).toISOString()})`);
    const audit = await auditRowsFor(api, 'outbound.retried', ids.a1);
    assert.equal(audit.length, 1);
    assert.deepEqual(audit[0].actor, actorOf(a.admin));
    assert.equal(audit[0].tenantId, a.id);
  });

  test('hold: the worker skips a held entry; retry is refused; release makes it due again', async () => {
    const res = await post(a.admin, `${Q}/${ids.a2}/hold`);
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.data.held, true);
    assert.equal((await post(a.admin, `${Q}/${ids.a2}/retry`)).status, 409, 'a held entry is not retried');
    assert.deepEqual((await get(a.admin, `${Q}/stats`)).json.data.find((s: any) => s.status === 'held'), { status: 'held', count: 1 });

    // The real delivery worker runs the entry's job: it must end without touching the network.
    let networkCalls = 0;
    const worker = startOutboundWorker(
      {
        queue: api.app.queue,
        db: api.app.db,
        mailboxState: api.app.mailboxState,
        resolver: { resolve: async () => { networkCalls++; throw new Error('a held entry must not be resolved'); } },
        pool: { send: async () => { networkCalls++; throw new Error('a held entry must not be sent'); }, close: async () => {} },
        config: () => api.app.config.outbound,
        hostname: 'mail.test',
        dsn: createDsnSender({ db: api.app.db, mailboxState: api.app.mailboxState, tenancy: api.app.tenancy, queue: api.app.queue, hostname: 'mail.test' }),
        logger: api.app.logger,
      },
      { consume: false },
    );
    const job = (await api.app.queue.get((await row(ids.a2)).job_id!)) as Job<OutboundJobPayload>;
    await worker.handle(job);
    assert.equal(networkCalls, 0);
    const held = await row(ids.a2);
    assert.equal(held.status, 'queued');
    assert.equal(Number(held.attempts), 0);
    assert.equal(held.next_attempt_at, null, 'a held entry has no next attempt');
    assert.equal((await api.app.db.kysely.selectFrom('outbound_attempts').select('id').where('outbound_id', '=', ids.a2).execute()).length, 0);

    const t0 = Date.now();
    const rel = await post(a.admin, `${Q}/${ids.a2}/release`);
    assert.equal(rel.status, 200, rel.body);
    assert.equal(rel.json.data.held, false);
    const released = await row(ids.a2);
    const due = (await api.app.queue.get(released.job_id!))!;
    assert.equal(due.status, 'ready');
    assert.ok(due.runAt <= Date.now() && due.runAt >= t0 - 5000, 'delivery resumes at once');
    assert.ok(Number(released.next_attempt_at) >= t0 - 5000);
    assert.equal((await post(a.admin, `${Q}/${ids.a2}/release`)).status, 409, 'not held any more');

    for (const [event, n] of [['outbound.held', 1], ['outbound.released', 1]] as const) {
      const rows = await auditRowsFor(api, event, ids.a2);
      assert.equal(rows.length, n, event);
      assert.deepEqual(rows[0].actor, actorOf(a.admin));
    }
  });

  test('a super-admin manages any tenant\'s entry, audited in that tenant', async () => {
    assert.equal((await post(superAdmin, `${Q}/${ids.b1}/hold`)).json.data.held, true);
    assert.equal((await post(superAdmin, `${Q}/${ids.b1}/release`)).json.data.held, false);
    const rows = await auditRowsFor(api, 'outbound.held', ids.b1);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].tenantId, b.id);
    assert.deepEqual(rows[0].actor, actorOf(superAdmin));
  });

  test('delete without bounce cancels the recipients, removes the job, sends nothing', async () => {
    const jobId = (await row(ids.a2)).job_id!;
    const inboxBefore = (await inboxMessages()).length;
    const res = await del(a.admin, `${Q}/${ids.a2}`);
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.data.status, 'deleted');
    assert.deepEqual(res.json.data.recipients, { cancelled: 1 });
    assert.equal(res.json.data.next_attempt_at, null);
    assert.equal(await api.app.queue.get(jobId), null, 'the job is gone');
    assert.equal((await inboxMessages()).length, inboxBefore, 'no DSN');
    assert.equal((await del(a.admin, `${Q}/${ids.a2}`)).status, 404, 'deleted once');
    assert.equal((await post(a.admin, `${Q}/${ids.a2}/retry`)).status, 409, 'nothing is left to deliver');
    // Still listed, for the record.
    assert.deepEqual((await get(a.admin, `${Q}?status=deleted`)).json.data.map((r: any) => r.id), [ids.a2]);
    const audit = await auditRowsFor(api, 'outbound.deleted', ids.a2);
    assert.equal(audit.length, 1);
    assert.deepEqual(audit[0].actor, actorOf(a.admin));
    assert.deepEqual(audit[0].metadata, { bounce: false, recipients: 1 });
  });

  test('delete with bounce: a DSN for every undelivered recipient in the local sender\'s INBOX', async () => {
    const res = await del(a.admin, `${Q}/${ids.a1}?bounce=true`);
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.data.status, 'deleted');
    assert.deepEqual(res.json.data.recipients, { bounced: 2 });
    const dsns = (await inboxMessages()).filter((m) => /^Subject: Undelivered Mail Returned to Sender$/m.test(m));
    assert.equal(dsns.length, 1, 'one DSN');
    const dsn = dsns[0];
    assert.match(dsn, /^To: <sender@qa\.test>$/m);
    assert.match(dsn, /report-type=delivery-status/);
    assert.match(dsn, /^Final-Recipient: rfc822; x@remote-one\.test$/m);
    assert.match(dsn, /^Final-Recipient: rfc822; y@remote-two\.test$/m);
    assert.match(dsn, /^Action: failed$/m);
    assert.match(dsn, /^Status: 5\.0\.0$/m);
    assert.match(dsn, new RegExp(`^X-MaiRust-Queue-ID: ${ids.a1}$`, 'm'));
    assert.match(dsn, /^Subject: Quarterly report$/m, 'the original header section is attached');
    const audit = await auditRowsFor(api, 'outbound.deleted', ids.a1);
    assert.deepEqual(audit[0].metadata, { bounce: true, recipients: 2 });
  });

  test('delete with bounce for a remote sender queues a null-sender DSN, which is never bounced itself', async () => {
    const res = await del(a.admin, `${Q}/${ids.a3}?bounce=true`);
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json.data.recipients, { bounced: 1 });
    const known = new Set(Object.values(ids));
    const fresh = (await get(a.admin, Q)).json.data.filter((r: any) => !known.has(r.id));
    assert.equal(fresh.length, 1, 'one new entry: the DSN');
    const dsn = fresh[0];
    assert.equal(dsn.mail_from, '');
    assert.equal(dsn.status, 'queued');
    const detail = (await get(a.admin, `${Q}/${dsn.id}`)).json.data;
    assert.deepEqual(detail.recipient_list.map((r: any) => r.address), ['someone@elsewhere.example']);

    // RFC 3464 §2: deleting the DSN with bounce=true sends nothing (no bounce of a bounce).
    const gone = await del(a.admin, `${Q}/${dsn.id}?bounce=true`);
    assert.equal(gone.status, 200, gone.body);
    const after = (await get(a.admin, Q)).json.data.filter((r: any) => !known.has(r.id) && r.id !== dsn.id);
    assert.deepEqual(after, []);
  });
});
