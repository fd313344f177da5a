/**
 * The circuit breaker of a `pre_receive` hook over real SMTP (SPEC §6 "Circuit breaker": the strict
 * profile of pre_receive opens after 3 consecutive failures or timeouts, stays open 60 s, then lets
 * one probe through; `on_open` defaults to skip; `on_timeout` to tempfail, `on_error` to allow).
 *
 *  1. On a live `mairust serve`: a plugin that accepts and never answers, hook timeout 500 ms.
 *     Messages 1–3 each wait for the timeout and get 451 4.7.1; from the 4th the plugin is skipped
 *     and mail is accepted at once; the API and /metrics show the breaker open; after a manual reset
 *     (POST …/circuit-breaker/reset) with the plugin answering again, the next message calls it.
 *  2. In-process (the 60 s open time cannot be shortened from outside a process, so the pieces of
 *     `serve` are composed here with a test clock for the hook system): a plugin that is down
 *     (connection refused) costs nothing but its failures; after 3 the breaker opens and no more
 *     calls are made; a probe 2 min later fails and it stays open; once the plugin is back, the
 *     probe 61 s after that closes the breaker and the plugin's tag is on the next messages. Every
 *     message sent during the outage is stored.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort, runCli, shapeEnv, startServerProcess, waitForReady, type ServerProcess, type ShapeEnv } from '../support/server-process.js';
import { shape, tempDir } from '../support/shape.js';
import { SmtpWire, type Reply } from '../support/smtp-wire.js';
import { openApp, type AppContext } from '../../src/app/context.js';
import { buildHookSystem, type HookSystem } from '../../src/app/hooks.js';
import { startMailListeners, type MailListeners } from '../../src/app/mail-listeners.js';
import { openSecretStore } from '../../src/security/secrets/index.js';
import { cliActor, systemActor } from '../../src/security/audit.js';
import { systemScope } from '../../src/core/scope.js';

const PASSWORD = 'correct horse battery staple';
const ALICE = 'alice@acme.test';
const ADMIN = 'root@example.test';
const ADMIN_PASSWORD = 'a long bootstrap password 42';

/** One message over SMTP; `ms` is the time from the end of DATA to the server's reply. */
async function deliver(port: number, subject: string): Promise<{ reply: Reply; ms: number }> {
  const w = await SmtpWire.connect(port);
  try {
    assert.equal((await w.reply()).code, 220);
    assert.equal((await w.ehlo()).reply.code, 250);
    assert.equal((await w.command('MAIL FROM:<sender@example.org>')).code, 250);
    assert.equal((await w.command(`RCPT TO:<${ALICE}>`)).code, 250);
    assert.equal((await w.command('DATA')).code, 354);
    w.write(`From: sender@example.org\r\nTo: ${ALICE}\r\nSubject: ${subject}\r\nMessage-ID: <${randomUUID()}@example.org>\r\n\r\nhello\r\n.\r\n`);
    const started = performance.now();
    const reply = await w.reply(15_000);
    const ms = performance.now() - started;
    w.send('QUIT');
    return { reply, ms };
  } finally {
    w.destroy();
  }
}

/** A plugin directory for an http plugin at `port` (no health endpoint: only real calls count). */
function writePlugin(dir: string, id: string, port: number, permissions: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'plugin.toml'),
    [
      `id = "${id}"`,
      'name = "Breaker test plugin"',
      'version = "1.0.0"',
      'author = "MaiRust tests"',
      'description = "A plugin server the breaker tests control."',
      'license = "Apache-2.0"',
      '[compat]',
      'mairust_min = "0.1.0"',
      '[entry]',
      'type = "hook"',
      'protocol = "http"',
      `endpoint = "http://127.0.0.1:${port}/hook"`,
      '[hooks]',
      'on = ["pre_receive"]',
      '[permissions]',
      permissions,
      '',
    ].join('\n'),
  );
  return dir;
}

/** A real plugin server on 127.0.0.1 whose answer the test switches; it counts the requests it got. */
class PluginServer {
  requests = 0;
  /** `hang`: accept and never answer; otherwise the JSON answer. */
  answer: 'hang' | Record<string, unknown> = 'hang';
  private server: Server | null = null;

  constructor(readonly port: number) {}

  async start(): Promise<void> {
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      req.on('end', () => {
        this.requests++;
        if (this.answer === 'hang') return;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.answer));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** Closes the listener and every connection: afterwards connections are refused. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

function gaugeValue(exposition: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe(`pre_receive circuit breaker on a live mairust serve (${shape})`, () => {
  const PLUGIN = 'com.example.hang';
  const HOOK = 'hang-pre';
  let s: ShapeEnv;
  let server: ServerProcess;
  let plugin: PluginServer;
  let base: string;
  let token: string;
  const work = tempDir('mairust-breaker-');

  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  }

  before(async () => {
    s = await shapeEnv();
    writeFileSync(s.env.MAIRUST_CONFIG, "plugins:\n  egress_allowlist: ['127.0.0.1']\n");
    for (const args of [
      ['tenant', 'add', 'acme'],
      ['domain', 'add', 'acme.test', '--tenant', 'acme'],
      ['mailbox', 'add', ALICE],
    ]) {
      const r = await runCli(args, s.env, `${PASSWORD}\n`);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    plugin = new PluginServer(await freePort());
    await plugin.start();
    server = startServerProcess({ ...s.env, MAIRUST_ADMIN_EMAIL: ADMIN, MAIRUST_ADMIN_PASSWORD: ADMIN_PASSWORD });
    await waitForReady(s.httpPort);
    base = `http://127.0.0.1:${s.httpPort}/api/v1`;
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: ADMIN, password: ADMIN_PASSWORD }) });
    assert.equal(login.status, 200);
    token = ((await login.json()) as { data: { access_token: string } }).data.access_token;
  });

  after(async () => {
    await plugin?.stop();
    await server?.stop();
    await s?.cleanup();
    work.remove();
  });

  test('a hanging plugin: 3 × 451 after the timeout, then skipped at once; open on the API and /metrics; a reset calls it again', async () => {
    const installed = await api('POST', '/admin/plugins', { path: writePlugin(join(work.path, 'hang'), PLUGIN, plugin.port, '') });
    assert.equal(installed.status, 201, JSON.stringify(installed.json));
    assert.equal((await api('POST', `/admin/plugins/${PLUGIN}/approve`, { allow_private: true })).status, 200);
    assert.equal((await api('POST', `/admin/plugins/${PLUGIN}/enable`)).status, 200);
    const hook = await api('POST', '/admin/hooks', { id: HOOK, type: 'pre_receive', plugin_id: PLUGIN, timeout_ms: 500 });
    assert.equal(hook.status, 201, JSON.stringify(hook.json));
    assert.equal(hook.json.data.on_timeout, 'tempfail', 'the SPEC §6 default');

    for (let i = 1; i <= 3; i++) {
      const { reply, ms } = await deliver(s.smtpPorts.smtp, `waits ${i}`);
      assert.equal(reply.code, 451, `message ${i}: ${reply.line}`);
      assert.match(reply.line, /^451 4\.7\.1 /);
      assert.ok(ms >= 450, `message ${i} waited for the 500 ms timeout (${Math.round(ms)} ms)`);
      assert.equal(plugin.requests, i, 'each of the first three reached the plugin');
    }
    for (let i = 4; i <= 5; i++) {
      const { reply, ms } = await deliver(s.smtpPorts.smtp, `skipped ${i}`);
      assert.equal(reply.code, 250, `message ${i}: ${reply.line}`);
      assert.ok(ms < 400, `message ${i} did not wait for the plugin (${Math.round(ms)} ms)`);
    }
    assert.equal(plugin.requests, 3, 'the open breaker skips the plugin');

    const shown = await api('GET', `/admin/hooks/${HOOK}`);
    assert.equal(shown.status, 200);
    assert.equal(shown.json.data.circuit_breaker_state.state, 'open');
    assert.equal(shown.json.data.circuit_breaker_state.consecutive_failures, 3);
    const exposition = await (await fetch(`http://127.0.0.1:${s.httpPort}/metrics`)).text();
    assert.equal(gaugeValue(exposition, 'mairust_circuit_breaker_state', { hook_type: 'pre_receive', plugin_id: PLUGIN, hook_id: HOOK }), 1, 'open is 1');

    plugin.answer = { plugin_id: PLUGIN, action: 'allow' };
    const reset = await api('POST', `/admin/hooks/${HOOK}/circuit-breaker/reset`);
    assert.equal(reset.status, 200, JSON.stringify(reset.json));
    assert.equal(reset.json.data.circuit_breaker_state.state, 'closed');
    const { reply } = await deliver(s.smtpPorts.smtp, 'after the reset');
    assert.equal(reply.code, 250, reply.line);
    assert.equal(plugin.requests, 4, 'the next message went through the plugin again');
    const after = await (await fetch(`http://127.0.0.1:${s.httpPort}/metrics`)).text();
    assert.equal(gaugeValue(after, 'mairust_circuit_breaker_state', { hook_type: 'pre_receive', plugin_id: PLUGIN, hook_id: HOOK }), 0, 'closed is 0');
  });
});

describe(`pre_receive circuit breaker: a plugin down and back, with a test clock (${shape})`, () => {
  const PLUGIN = 'com.example.flaky';
  const HOOK = 'flaky-pre';
  let s: ShapeEnv;
  let app: AppContext;
  let sys: HookSystem;
  let mail: MailListeners;
  let plugin: PluginServer;
  /** Added to the real time by the hook system's clock (breaker decisions and caches). */
  let offset = 0;
  const work = tempDir('mairust-breaker-clock-');

  before(async () => {
    s = await shapeEnv();
    writeFileSync(s.env.MAIRUST_CONFIG, "log:\n  level: error\nplugins:\n  egress_allowlist: ['127.0.0.1']\n");
    // The parts of `serve` (src/app/server.ts) that take mail: the app, its hook system (here with
    // the test clock) and the mail listeners with that hook system. No health checks: only calls count.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MAIRUST')));
    app = await openApp({ env: { ...env, ...s.env } });
    const secrets = await openSecretStore({ config: app.config, db: app.db, logger: app.logger });
    sys = buildHookSystem(app, { secrets, now: () => Date.now() + offset });
    const tenant = await app.tenancy.tenants.create(systemScope, { name: 'acme' }, systemActor);
    await app.tenancy.domains.add(systemScope, { tenantId: tenant.id, name: 'acme.test' }, systemActor);
    await app.tenancy.mailboxes.add(systemScope, { address: ALICE }, systemActor);
    mail = await startMailListeners(app, { hookSystem: sys });

    plugin = new PluginServer(await freePort());
    plugin.answer = { plugin_id: PLUGIN, action: 'tag', tags: ['checked'] };
    await sys.plugins.installFromDirectory(writePlugin(join(work.path, 'flaky'), PLUGIN, plugin.port, 'read_headers = true\nwrite_tags = true'), cliActor);
    await sys.plugins.approve(PLUGIN, cliActor, { allowPrivate: true });
    await sys.plugins.enable(PLUGIN, cliActor);
    await sys.hooks.create({ id: HOOK, type: 'pre_receive', plugin_id: PLUGIN, timeout_ms: 1000 }, cliActor);
  });

  after(async () => {
    await plugin?.stop();
    await mail?.close(0);
    await app?.close();
    await s?.cleanup();
    work.remove();
  });

  async function stored(): Promise<{ subject: string | null; keywords: string[] }[]> {
    const rows = await app.db.kysely
      .selectFrom('folder_entries as e')
      .innerJoin('mailboxes as m', 'm.id', 'e.mailbox_id')
      .innerJoin('messages as msg', 'msg.id', 'e.message_id')
      .select(['msg.subject', 'e.keywords_json'])
      .where('m.address', '=', ALICE)
      .where('e.deleted_at', 'is', null)
      .orderBy('e.uid')
      .execute();
    return rows.map((r) => ({ subject: r.subject, keywords: JSON.parse(r.keywords_json) as string[] }));
  }

  const breakerState = async () => (await sys.runner.breakerState((await sys.hooks.get(HOOK))!)).state;
  const calls = () => sys.metrics.pluginStats(PLUGIN).calls;

  test('down: mail flows, the breaker opens after 3 failures, a probe 2 min later fails; back: the probe after 61 s closes it', async () => {
    const subjects: string[] = [];
    const send = async (subject: string) => {
      subjects.push(subject);
      const { reply } = await deliver(mail.ports.smtp, subject);
      assert.equal(reply.code, 250, `${subject}: ${reply.line}`);
    };

    // The plugin is down (nothing listens on its port): on_error allow, every failure counted.
    for (let i = 1; i <= 3; i++) await send(`down ${i}`);
    assert.equal(calls(), 3);
    assert.equal(await breakerState(), 'open', 'strict profile: 3 consecutive failures');
    for (let i = 4; i <= 5; i++) await send(`down ${i}`);
    assert.equal(calls(), 3, 'no more connection attempts while open');

    // Two minutes on, still down: one probe, which fails: open again, mail still flows.
    offset += 120_000;
    await send('probe while down');
    assert.equal(calls(), 4, 'the half-open probe was tried');
    assert.equal(await breakerState(), 'open');
    await send('after the failed probe');
    assert.equal(calls(), 4);

    // The plugin is back, but the breaker waits out its 60 s before trying it.
    await plugin.start();
    await send('back, breaker still open');
    assert.equal(plugin.requests, 0);
    offset += 61_000;
    await send('probe when back');
    assert.equal(plugin.requests, 1, 'the probe reached the plugin');
    assert.equal(await breakerState(), 'closed');
    await send('closed again');
    assert.equal(plugin.requests, 2);

    const rows = await stored();
    assert.deepEqual(rows.map((r) => r.subject), subjects, 'every message sent during the outage was stored');
    const tagged = rows.filter((r) => r.keywords.includes('checked')).map((r) => r.subject);
    assert.deepEqual(tagged, ['probe when back', 'closed again'], "the plugin's tag only where it was called and answered");
  });
});
