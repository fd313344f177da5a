/**
 * IMAP and POP3 report to the Prometheus registry (SPEC §12): connections accepted and sessions
 * open, by protocol and listener, and IMAP commands by name and tagged status — with bounded
 * label values (an unknown command is counted as `unknown`, never by its text).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startImapServer, type ImapTestServer } from '../support/imap.js';
import { loggedIn, startPop3Harness, type Pop3Harness } from '../support/pop3.js';
import type { TestAccount } from '../support/mail-services.js';
import type { Metrics } from '../../src/observability/metrics.js';

async function value(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} is registered`);
  const data = await metric.get();
  const hit = data.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return hit?.value ?? 0;
}

async function eventually(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail('condition not reached within 2 s');
}

describe('IMAP metrics', () => {
  let server: ImapTestServer;
  let alice: TestAccount;
  before(async () => {
    server = await startImapServer();
    alice = await server.fixture.addAccount('alice@metrics.test');
  });
  after(async () => server.close());

  test('connections, open sessions and commands by status are counted', async () => {
    const m = server.fixture.metrics;
    const wire = await server.login(alice);
    assert.equal(await value(m, 'mairust_mail_access_connections_total', { protocol: 'imap', listener: 'imaps' }), 1);
    assert.equal(await value(m, 'mairust_mail_access_sessions', { protocol: 'imap', listener: 'imaps' }), 1);
    await wire.command('a1 SELECT INBOX');
    await wire.command('a2 SELECT Nowhere');
    await wire.command('a3 FROBNICATE now');
    assert.equal(await value(m, 'mairust_imap_commands_total', { command: 'LOGIN', status: 'OK' }), 1);
    assert.equal(await value(m, 'mairust_imap_commands_total', { command: 'SELECT', status: 'OK' }), 1);
    assert.equal(await value(m, 'mairust_imap_commands_total', { command: 'SELECT', status: 'NO' }), 1);
    assert.equal(await value(m, 'mairust_imap_commands_total', { command: 'unknown', status: 'BAD' }), 1);
    await wire.command('a4 LOGOUT');
    await eventually(async () => (await value(m, 'mairust_mail_access_sessions', { protocol: 'imap', listener: 'imaps' })) === 0);
  });
});

describe('POP3 metrics', () => {
  let h: Pop3Harness;
  let bob: TestAccount;
  before(async () => {
    h = await startPop3Harness();
    bob = await h.fx.addAccount('bob@metrics.test');
  });
  after(async () => h.close());

  test('connections and open sessions are counted per listener', async () => {
    const m = h.fx.metrics;
    const { c, status } = await loggedIn(h.port, bob.email, bob.password);
    assert.match(status, /^\+OK/);
    assert.equal(await value(m, 'mairust_mail_access_connections_total', { protocol: 'pop3', listener: 'pop3' }), 1);
    assert.equal(await value(m, 'mairust_mail_access_sessions', { protocol: 'pop3', listener: 'pop3' }), 1);
    c.destroy();
    await eventually(async () => (await value(m, 'mairust_mail_access_sessions', { protocol: 'pop3', listener: 'pop3' })) === 0);
  });
});
