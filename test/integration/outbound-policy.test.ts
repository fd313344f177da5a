/**
 * The outbound policy engine (SPEC §8) on a real database with the shared database rate counter
 * and a fixed clock: levels along a burst, suspension and its lifting, whitelist profiles,
 * content and history signals, domain/tenant limits, counters shared between two engines, and
 * the monitor (a real HTTP server).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { freshDatabase, type TestDatabase } from '../support/shape.js';
import { cheapPasswords, insertSixFolders } from '../support/tenancy-fixtures.js';
import { openDatabase, type Database } from '../../src/store/db/database.js';
import { TenancyService } from '../../src/core/tenancy/service.js';
import { systemScope } from '../../src/core/scope.js';
import { cliActor } from '../../src/security/audit.js';
import { DatabaseRateCounter } from '../../src/http/api/rate-limit/db-counter.js';
import { MemoryRateCounter } from '../../src/http/api/rate-limit/memory-counter.js';
import { OutboundConfigSchema, type OutboundConfig } from '../../src/config/sections/outbound.js';
import type { Plan } from '../../src/config/schema.js';
import type { EventPublisher, WebhookEvent } from '../../src/webhooks/types.js';
import type { SendAttempt } from '../../src/outbound/types.js';
import { createOutboundPolicy, SUSPENDED_REPLY, type OutboundPolicyEngine } from '../../src/outbound/policy/engine.js';
import { GTUBE } from '../../src/outbound/policy/signals.js';

const SUSPENDED_TEXT = 'Sending from this account is temporarily suspended. Please contact your administrator.';
const plans: Record<string, Plan> = {
  default: { max_users: 50, max_domains: 5, storage_bytes: 0, mailbox_storage_bytes: 0, daily_outbound: 100_000 },
  tiny: { max_users: 10, max_domains: 2, storage_bytes: 0, mailbox_storage_bytes: 0, daily_outbound: 4 },
};

let tdb: TestDatabase;
let tenancy: TenancyService;
let clock = Date.UTC(2030, 0, 7, 10, 0, 0);
const published: { event: WebhookEvent; tenantId: string; data: Record<string, unknown> }[] = [];
/** Keeps what producers publish, as the webhook publisher's subscribers would see it. */
const events: EventPublisher = {
  async publish(event, tenantId, data) {
    published.push({ event, tenantId, data });
  },
};
const silent = { warn() {}, info() {} };
const users: Record<string, { id: string; tenantId: string; domainId: string }> = {};

function config(patch: { rate_limits?: Partial<OutboundConfig['rate_limits']>; policy?: Partial<OutboundConfig['policy']> } = {}): OutboundConfig {
  const c = Value.Default(OutboundConfigSchema, {}) as OutboundConfig;
  Object.assign(c.rate_limits, patch.rate_limits ?? {});
  Object.assign(c.policy, patch.policy ?? {});
  return c;
}

/**
 * The counter the app would use (createRateCounter `auto`): in memory for the one-process embedded
 * shape, the shared database table on PostgreSQL. `shared` forces the database counter.
 */
function engine(cfg: OutboundConfig, db: Database = tdb.db, t: TenancyService = tenancy, shared = false): OutboundPolicyEngine {
  const now = () => clock;
  const counter = shared || db.dialect === 'postgres' ? new DatabaseRateCounter(db, { now }) : new MemoryRateCounter({ now });
  return createOutboundPolicy({ db, counter, tenancy: t, config: () => cfg, events, logger: silent, now });
}

let seq = 0;
function attempt(who: string, over: Partial<SendAttempt> = {}): SendAttempt {
  const u = users[who];
  const body = over.bodyText ?? `Hello, message number ${++seq}.`;
  return {
    tenantId: u.tenantId,
    userId: u.id,
    domainId: u.domainId,
    mailFrom: `${who}@x`,
    recipients: ['someone@remote.example'],
    size: 1000,
    clientIp: '192.0.2.10',
    via: 'submission',
    subject: 'Hello',
    bodyText: body,
    contentHash: createHash('sha256').update(body).digest('hex'),
    urls: [],
    userAgent: 'Thunderbird/115.0',
    ...over,
  };
}

async function auditRows(eventType: string, userId: string) {
  const rows = await tdb.db.kysely.selectFrom('audit_log').selectAll().where('event_type', '=', eventType).execute();
  return rows.filter((r) => JSON.parse(r.target_json).id === userId);
}

async function eventRows(kind: string, userId: string) {
  return tdb.db.kysely.selectFrom('outbound_events').selectAll().where('kind', '=', kind).where('user_id', '=', userId).execute();
}

before(async () => {
  tdb = await freshDatabase();
  tenancy = new TenancyService({ db: tdb.db, plans, defaultPlan: 'default', createDefaultFolders: insertSixFolders, passwordOptions: cheapPasswords });
  const make = async (tenant: string, plan: string, domain: string, names: string[]) => {
    const t = await tenancy.tenants.create(systemScope, { name: tenant, plan });
    const d = await tenancy.domains.add(systemScope, { tenantId: t.id, name: domain });
    for (const n of names) {
      const u = await tenancy.users.add(systemScope, { tenantId: t.id, email: `${n}@${domain}`, password: 'correct horse battery' });
      users[n] = { id: u.id, tenantId: t.id, domainId: d.id };
    }
  };
  await make('acme', 'default', 'acme.test', ['ann', 'bob', 'carl', 'erin', 'frank', 'nl', 'mon']);
  await make('dom', 'default', 'dom.test', ['d1', 'd2']);
  await make('tiny', 'tiny', 'tiny.test', ['t1']);
});

after(async () => {
  await tdb?.drop();
});

describe('outbound policy engine', () => {
  test('a burst of 300: normal to 160, soft to 200, then hard with the exact reply and a suspension', async () => {
    clock = Date.UTC(2030, 0, 7, 10, 0, 0);
    const p = engine(config());
    const levels: string[] = [];
    const decisions = [];
    for (let i = 1; i <= 300; i++) {
      const d = await p.evaluate(attempt('ann'));
      levels.push(d.level);
      decisions.push(d);
    }
    assert.ok(levels.slice(0, 160).every((l) => l === 'normal'), `first 160 normal, got ${levels.slice(0, 160).filter((l) => l !== 'normal').length} others`);
    assert.ok(decisions.slice(0, 160).every((d) => d.action === 'allow'));
    assert.ok(levels.slice(160, 200).every((l) => l === 'soft'), 'messages 161–200 soft');
    assert.ok(decisions.slice(160, 200).every((d) => d.action === 'delay' && d.delayMs === 900_000));
    assert.match(decisions[160].reason, /user_hour over the soft point \(161 of 200 per hour/);
    const hard = decisions[200];
    assert.equal(hard.level, 'hard');
    assert.equal(hard.action, 'block');
    assert.deepEqual(hard.reply, { code: 550, enhanced: '5.7.1', message: SUSPENDED_TEXT });
    assert.match(hard.reason, /user_hour limit exceeded \(201 of 200 per hour\)/);
    assert.ok(decisions.slice(201).every((d) => d.action === 'block' && d.reply?.message === SUSPENDED_TEXT), 'every later message is refused');
    assert.equal(decisions[250].signals[0].name, 'account_suspended');

    const row = await tdb.db.kysely.selectFrom('outbound_accounts').selectAll().where('user_id', '=', users.ann.id).executeTakeFirstOrThrow();
    assert.equal(row.level, 'hard');
    assert.equal(Number(row.suspended_at), clock);
    assert.equal((await eventRows('suspended', users.ann.id)).length, 1, 'suspended once');
    assert.equal((await eventRows('soft_limited', users.ann.id)).length, 1, 'soft recorded once when the level changed');
    assert.equal((await auditRows('outbound.account_suspended', users.ann.id)).length, 1);
    const pub = published.filter((e) => e.event === 'account.suspended' && e.data.user_id === users.ann.id);
    assert.equal(pub.length, 1);
    assert.equal(pub[0].tenantId, users.ann.tenantId);
    assert.equal(pub[0].data.email, 'ann@acme.test');

    const blocked = await p.accountBlocked(users.ann.tenantId, users.ann.id);
    assert.equal(blocked?.action, 'block');
    assert.deepEqual(blocked?.reply, { ...SUSPENDED_REPLY });
    // Receiving is untouched: the user itself is still active.
    assert.equal((await tenancy.users.get(systemScope, users.ann.id)).status, 'active');

    // Manual unsuspension restores sending at once (fresh per-user counts), and is audited.
    const view = await p.accounts.unsuspend(systemScope, 'ann@acme.test', cliActor);
    assert.equal(view.suspended, false);
    assert.equal(await p.accountBlocked(users.ann.tenantId, users.ann.id), null);
    const after = await p.evaluate(attempt('ann'));
    assert.equal(after.action, 'allow', after.reason);
    const blocks = after.signals.find((s) => s.name === 'past_blocks');
    assert.equal(blocks?.value, 0.5, 'the past suspension is remembered by the history signal');
    assert.equal((await auditRows('outbound.account_unsuspended', users.ann.id)).length, 1);
    const suspendedMetric = await p.metrics.suspended.get();
    assert.equal(suspendedMetric.values[0]?.value, 1);
  });

  test('an automatic suspension is lifted after auto_reenable_after_hours (recorded)', async () => {
    clock = Date.UTC(2030, 0, 8, 10, 0, 0);
    const p = engine(config({ rate_limits: { user_per_hour: 5 }, policy: { auto_reenable_after_hours: 2 } }));
    let last;
    for (let i = 0; i < 6; i++) last = await p.evaluate(attempt('bob'));
    assert.equal(last?.action, 'block');
    clock += 60 * 60_000;
    assert.notEqual(await p.accountBlocked(users.bob.tenantId, users.bob.id), null, 'still suspended after 1 h');
    clock += 60 * 60_000;
    assert.equal(await p.accountBlocked(users.bob.tenantId, users.bob.id), null, 'lifted after 2 h');
    const lifted = await eventRows('unsuspended', users.bob.id);
    assert.equal(lifted.length, 1);
    assert.equal(JSON.parse(lifted[0].details_json).automatic, true);
    const audit = await auditRows('outbound.account_unsuspended', users.bob.id);
    assert.equal(audit.length, 1);
    assert.equal((await p.evaluate(attempt('bob'))).action, 'allow');
  });

  test('a whitelisted newsletter account is not blocked at 1 000/h, identical content included', async () => {
    clock = Date.UTC(2030, 0, 9, 10, 0, 0);
    const p = engine(config());
    const entry = await p.accounts.addWhitelist(systemScope, 'nl@acme.test', 'newsletter', 'monthly letter', cliActor);
    assert.equal(entry.hourlyLimit, 5000);
    const body = 'Our monthly newsletter: news and updates.';
    const results: string[] = [];
    for (let batch = 0; batch < 100; batch++) {
      const ds = await Promise.all(Array.from({ length: 10 }, () => p.evaluate(attempt('nl', { bodyText: body }))));
      for (const d of ds) results.push(d.action);
    }
    assert.equal(results.length, 1000);
    assert.equal(results.filter((r) => r === 'block').length, 0);
    assert.equal(results.filter((r) => r === 'allow').length, 1000, 'not even delayed: 1000 is far below 0.8·5000');
    const last = await p.evaluate(attempt('nl', { bodyText: body }));
    assert.match(last.signals.find((s) => s.name === 'repeated_content')!.detail, /not scored: whitelist profile newsletter/);
    // A plain account sending the same 1000 would have been suspended at 201.
    await p.accounts.removeWhitelist(systemScope, 'nl@acme.test', cliActor);
    assert.equal((await p.evaluate(attempt('nl', { bodyText: body }))).action, 'block');
  });

  test('repeated identical content raises the content score', async () => {
    clock = Date.UTC(2030, 0, 10, 10, 0, 0);
    const p = engine(config());
    const body = 'Please see the attached document.';
    const first = await p.evaluate(attempt('carl', { bodyText: body }));
    let tenth = first;
    for (let i = 0; i < 9; i++) tenth = await p.evaluate(attempt('carl', { bodyText: body }));
    assert.equal(first.components.content, 0);
    assert.ok(tenth.components.content > 0.3, `content ${tenth.components.content}`);
    assert.ok(tenth.score > first.score);
    const sig = tenth.signals.find((s) => s.name === 'repeated_content')!;
    assert.match(sig.detail, /^10 identical/);
    // A different text from the same account is not repeated.
    const other = await p.evaluate(attempt('carl'));
    assert.equal(other.signals.find((s) => s.name === 'repeated_content')!.value, 0);
  });

  test('spam content with a bad history reaches the hard score: blocked and suspended by the score', async () => {
    clock = Date.UTC(2030, 0, 11, 10, 0, 0);
    const p = engine(config());
    await p.accounts.report(systemScope, 'frank@acme.test', 'complaint from a recipient', cliActor);
    await p.accounts.report(systemScope, 'frank@acme.test', 'second complaint', cliActor);
    const first = await p.evaluate(attempt('frank', { bodyText: `win ${GTUBE}` }));
    assert.equal(first.level, 'soft', first.reason);
    assert.match(first.reason, /score .* ≥ soft limit 0\.5/);
    let d = first;
    for (let i = 0; i < 20 && d.action !== 'block'; i++) d = await p.evaluate(attempt('frank', { bodyText: `win ${GTUBE} ${i}` }));
    assert.equal(d.level, 'hard');
    assert.deepEqual(d.reply, { code: 550, enhanced: '5.7.1', message: SUSPENDED_TEXT });
    assert.match(d.reason, /score .* ≥ hard limit 0\.8/);
    assert.ok(d.score >= 0.8);
    assert.equal(d.signals.find((s) => s.name === 'admin_reports')?.value, 1);
    assert.notEqual(await p.accountBlocked(users.frank.tenantId, users.frank.id), null);
  });

  test('domain limit: the whole domain gets 451 4.7.1, nobody is suspended, one event per window', async () => {
    clock = Date.UTC(2030, 0, 12, 10, 0, 0);
    const p = engine(config({ rate_limits: { domain_per_hour: 5 } }));
    const out = [];
    for (const who of ['d1', 'd2', 'd1', 'd2', 'd1', 'd2', 'd1']) out.push(await p.evaluate(attempt(who)));
    assert.deepEqual(out.slice(0, 5).map((d) => d.action !== 'block'), [true, true, true, true, true]);
    for (const d of out.slice(5)) {
      assert.equal(d.level, 'domain');
      assert.equal(d.action, 'block');
      assert.deepEqual(d.reply, { code: 451, enhanced: '4.7.1', message: 'Sending from this domain is temporarily rate limited. Please try again later.' });
      assert.match(d.reason, /domain_hour limit exceeded/);
    }
    assert.equal(await p.accountBlocked(users.d1.tenantId, users.d1.id), null);
    assert.equal(await p.accountBlocked(users.d2.tenantId, users.d2.id), null);
    const ev = await tdb.db.kysely.selectFrom('outbound_events').selectAll().where('kind', '=', 'domain_limited').where('tenant_id', '=', users.d1.tenantId).execute();
    assert.equal(ev.length, 1);
    assert.equal(ev[0].domain_id, users.d1.domainId);
    // The next hour is a new window.
    clock += 60 * 60_000;
    assert.equal((await p.evaluate(attempt('d1'))).action, 'allow');
  });

  test("tenant limit: the plan's daily_outbound stops the tenant with 451 4.7.1", async () => {
    clock = Date.UTC(2030, 0, 13, 10, 0, 0);
    const p = engine(config());
    const out = [];
    for (let i = 0; i < 5; i++) out.push(await p.evaluate(attempt('t1')));
    assert.notEqual(out[3].action, 'block');
    assert.equal(out[4].level, 'domain');
    assert.equal(out[4].reply?.code, 451);
    assert.equal(out[4].reply?.enhanced, '4.7.1');
    assert.match(out[4].reason, /^Tenant limit: tenant_day limit exceeded \(5 of 4 per day\)/);
    assert.equal(await p.accountBlocked(users.t1.tenantId, users.t1.id), null);
  });

  test('two engines on one database see one count; a new client address is a signal', async () => {
    clock = Date.UTC(2030, 0, 14, 10, 0, 0);
    const db2 = await openDatabase(tdb.url, { poolMax: 2 });
    try {
      const tenancy2 = new TenancyService({ db: db2, plans, defaultPlan: 'default', createDefaultFolders: insertSixFolders, passwordOptions: cheapPasswords });
      const a = engine(config(), tdb.db, tenancy, true);
      const b = engine(config(), db2, tenancy2, true);
      for (let i = 0; i < 3; i++) await a.evaluate(attempt('erin'));
      await b.evaluate(attempt('erin'));
      const d = await b.evaluate(attempt('erin', { clientIp: '198.51.100.99', userAgent: 'python-requests/2.31' }));
      assert.equal(d.signals.find((s) => s.name === 'user_hour_rate')?.detail, '5 of 200 per hour');
      assert.equal(d.signals.find((s) => s.name === 'new_client_ip')?.value, 0.3);
      assert.ok(d.signals.find((s) => s.name === 'unusual_user_agent')!.value >= 0.4);
      assert.ok(d.components.history > 0);

      // Explanations list every signal with its value and what was measured.
      const names = d.signals.map((s) => s.name).sort();
      for (const n of ['user_hour_rate', 'user_day_rate', 'domain_hour_rate', 'tenant_hour_rate', 'tenant_day_rate', 'burst', 'repeated_content', 'recipient_count', 'spam_pattern', 'dangerous_url', 'past_blocks', 'admin_reports', 'new_client_ip', 'unusual_user_agent']) {
        assert.ok(names.includes(n), `signal ${n} listed`);
      }
      for (const s of d.signals) {
        assert.ok(s.value >= 0 && s.value <= 1);
        assert.ok(s.detail.length > 0);
      }
      assert.ok(d.reason.length > 0 && !d.reason.includes('\n'));
      assert.deepEqual(Object.keys(d.components).sort(), ['content', 'history', 'rate']);
    } finally {
      await db2.close();
    }
  });
});

describe('monitor notifications', () => {
  test('soft limits notify the monitor once per 10 min, without content; a failing monitor never blocks', async () => {
    const received: Record<string, unknown>[] = [];
    let fail = false;
    let got: () => void = () => {};
    const server = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', () => {
        received.push(JSON.parse(raw));
        got();
        res.statusCode = fail ? 500 : 204;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      clock = Date.UTC(2030, 0, 15, 10, 0, 0);
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`;
      const p = engine(config({ rate_limits: { user_per_hour: 10 }, policy: { monitor_url: url } }));
      const arrived = new Promise<void>((r) => (got = r));
      const subject = 'Quarterly secret figures';
      for (let i = 0; i < 9; i++) await p.evaluate(attempt('mon', { subject, bodyText: `confidential body ${i}` }));
      await Promise.race([arrived, new Promise((_, rej) => setTimeout(() => rej(new Error('no monitor notification within 10 s')), 10_000))]);
      assert.equal(received.length, 1);
      const n = received[0];
      assert.equal(n.level, 'soft');
      assert.equal(n.user_id, users.mon.id);
      const text = JSON.stringify(n);
      assert.ok(!text.includes('Quarterly') && !text.includes('confidential'), 'no subject or body in the notification');
      // Within 10 minutes: throttled; after them, a failing monitor does not change the decision.
      await p.evaluate(attempt('mon'));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(received.length, 1, 'second soft decision within 10 min is not notified');
      fail = true;
      clock += 11 * 60_000;
      const started = Date.now();
      const d = await p.evaluate(attempt('mon'));
      assert.notEqual(d.action, 'allow');
      assert.ok(Date.now() - started < 5000, 'the decision does not wait for the monitor');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
