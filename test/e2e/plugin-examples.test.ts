/**
 * The shipped example plugins (examples/plugins/, SPEC §7 "Shipped examples") against a live
 * `mairust serve` of the current shape: each is installed, approved, enabled and hooked the way an
 * operator does it (CLI for echo, the REST API for the others), the http examples run as their own
 * processes with the signing secret printed at install, and mail arrives over real SMTP (swaks):
 *
 *  - echo (script, pre_receive): the message is accepted, the call shows in the plugin log, and
 *    `mairust_hook_calls_total{plugin_id="com.example.echo"}` moves on GET /metrics;
 *  - webhook-notifier (http, post_receive): a receiver on loopback gets the summary POST;
 *  - tagging (http, post_receive): a matching subject becomes an IMAP keyword (imapflow FETCH FLAGS),
 *    directly and — CALLBACK_MODE=1 with a `plt_` callback token — through the callback API;
 *  - rspamd-bridge (http, pre_receive) with the real rspamd: GTUBE is refused at DATA with
 *    550 5.7.1, a clean message is accepted.
 *
 * The http examples' plugin.toml names a fixed loopback port: the test installs a copy whose
 * endpoint names the free port the example is started on (`plugins.egress_allowlist` has
 * 127.0.0.1 and they are approved with allow_private, SPEC §7 "Egress").
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow, type FetchMessageObject } from 'imapflow';
import { freePort, repoRoot, runCli, shapeEnv, startServerProcess, waitForReady, type ServerProcess, type ShapeEnv } from '../support/server-process.js';
import { shape, tempDir } from '../support/shape.js';
import { rspamdUrl } from '../fixtures/spam/support.js';

const run = promisify(execFile);
const PASSWORD = 'correct horse battery staple';
const ALICE = 'alice@acme.test';
const ADMIN = 'root@example.test';
const ADMIN_PASSWORD = 'a long bootstrap password 42';
const EXAMPLES = join(repoRoot, 'examples/plugins');
/** The GTUBE line (rspamd's built-in test pattern: action "reject"). */
const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

async function swaks(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('swaks', ['--hide-informational', '--timeout', '20', ...args]);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: `${e.stdout}${e.stderr}` };
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`);
}

/** The sum of a counter's samples whose labels include all of `labels` (0 when there are none). */
function counterValue(exposition: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

interface Example {
  child: ChildProcess;
  stderr: () => string;
}

describe(`example plugins against mairust serve (${shape})`, () => {
  let s: ShapeEnv;
  let server: ServerProcess;
  let base: string;
  let token: string;
  const children: ChildProcess[] = [];
  const receivers: Server[] = [];
  const work = tempDir('mairust-plugin-examples-');

  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  }

  async function cli(args: string[]): Promise<any> {
    const r = await runCli(['--json', ...args], s.env);
    assert.equal(r.code, 0, `mairust ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  async function metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${s.httpPort}/metrics`)).text();
  }

  /** A copy of an http example whose plugin.toml points at `port` (the shipped one names a fixed port). */
  function copyWithPort(name: string, port: number): string {
    const dir = join(work.path, name);
    cpSync(join(EXAMPLES, name), dir, { recursive: true });
    const toml = join(dir, 'plugin.toml');
    writeFileSync(toml, readFileSync(toml, 'utf8').replace(/http:\/\/127\.0\.0\.1:\d+\//g, `http://127.0.0.1:${port}/`));
    return dir;
  }

  /** Installs, approves (loopback allowed) and enables an http example over the REST API; returns its secret. */
  async function installHttp(dir: string, id: string): Promise<string> {
    const installed = await api('POST', '/admin/plugins', { path: dir });
    assert.equal(installed.status, 201, JSON.stringify(installed.json));
    assert.equal(installed.json.data.id, id);
    assert.equal(installed.json.data.status, 'installed', 'a new plugin waits for approval');
    const secret: string = installed.json.data.secret;
    assert.match(secret, /^psec_/);
    const approved = await api('POST', `/admin/plugins/${id}/approve`, { allow_private: true });
    assert.equal(approved.status, 200, JSON.stringify(approved.json));
    const enabled = await api('POST', `/admin/plugins/${id}/enable`);
    assert.equal(enabled.status, 200, JSON.stringify(enabled.json));
    assert.equal(enabled.json.data.runnable, true);
    return secret;
  }

  async function createHook(body: Record<string, unknown>): Promise<void> {
    const r = await api('POST', '/admin/hooks', body);
    assert.equal(r.status, 201, JSON.stringify(r.json));
  }

  async function deleteHook(id: string): Promise<void> {
    const r = await api('DELETE', `/admin/hooks/${id}`);
    assert.equal(r.status, 204, JSON.stringify(r.json));
  }

  /** Starts an example's server (node for .mjs, tsx for .ts) on `port`; resolves once it listens. */
  function startExample(file: string, port: number, env: Record<string, string>): Promise<Example> {
    const args = file.endsWith('.ts') ? ['--import', 'tsx', file] : [file];
    const child = spawn(process.execPath, args, {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOST: '127.0.0.1', PORT: String(port), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${file} did not start: ${err}`)), 20_000);
      child.stdout!.on('data', (d) => {
        out += d;
        if (out.includes(`listening on http://127.0.0.1:${port}`)) {
          clearTimeout(timer);
          resolve({ child, stderr: () => err });
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${file} exited with ${code}: ${err}`));
      });
    });
  }

  async function stopExample(e: Example): Promise<void> {
    if (e.child.exitCode !== null) return;
    const exited = new Promise((r) => e.child.once('exit', r));
    e.child.kill('SIGTERM');
    await exited;
  }

  async function imapFlags(subject: string): Promise<Set<string> | undefined> {
    const client = new ImapFlow({ host: '127.0.0.1', port: s.mailPorts.imaps, secure: true, auth: { user: ALICE, pass: PASSWORD }, tls: { rejectUnauthorized: false }, logger: false });
    client.on('error', () => {});
    await client.connect();
    try {
      await client.mailboxOpen('INBOX');
      const msgs = (await client.fetchAll('1:*', { envelope: true, flags: true })) as FetchMessageObject[];
      return msgs.find((m) => m.envelope?.subject === subject)?.flags;
    } finally {
      await client.logout().catch(() => client.close());
    }
  }

  async function send(args: string[]): Promise<{ code: number; out: string }> {
    return swaks(['--server', `127.0.0.1:${s.smtpPorts.smtp}`, '--to', ALICE, ...args]);
  }

  before(async () => {
    s = await shapeEnv();
    // HTTP plugins on loopback need the allowlist (SPEC §7 "Egress"); post_receive jobs are polled
    // quickly; the test polls admin routes more often than the default 30/min per address allows.
    writeFileSync(
      s.env.MAIRUST_CONFIG,
      "plugins:\n  egress_allowlist: ['127.0.0.1']\nqueue:\n  poll_interval_ms: 200\napi:\n  rate_limit:\n    admin_per_ip_per_minute: 1000\n    per_user_per_minute: 1000\n",
    );
    for (const args of [
      ['tenant', 'add', 'acme'],
      ['domain', 'add', 'acme.test', '--tenant', 'acme'],
      ['user', 'add', ALICE, '--tenant', 'acme', '--password-stdin'],
      ['mailbox', 'add', ALICE, '--user', ALICE],
    ]) {
      const r = await runCli(args, s.env, `${PASSWORD}\n`);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    server = startServerProcess({ ...s.env, MAIRUST_ADMIN_EMAIL: ADMIN, MAIRUST_ADMIN_PASSWORD: ADMIN_PASSWORD });
    await waitForReady(s.httpPort);
    base = `http://127.0.0.1:${s.httpPort}/api/v1`;
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: ADMIN, password: ADMIN_PASSWORD }) });
    assert.equal(login.status, 200);
    token = ((await login.json()) as { data: { access_token: string } }).data.access_token;
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const r of receivers) r.closeAllConnections();
    await Promise.all(receivers.map((r) => new Promise((done) => r.close(done))));
    await server?.stop();
    await s?.cleanup();
    work.remove();
  });

  test('echo (script, pre_receive) via the CLI: the message is accepted, the call is logged and counted', async () => {
    const installed = await cli(['plugin', 'install', join(EXAMPLES, 'echo')]);
    assert.equal(installed.id, 'com.example.echo');
    assert.equal(installed.entry.protocol, 'script');
    assert.match(installed.secret, /^psec_/, 'a new plugin gets its signing secret, shown once');
    await cli(['plugin', 'approve', 'com.example.echo']);
    const enabled = await cli(['plugin', 'enable', 'com.example.echo']);
    assert.equal(enabled.runnable, true);
    const hookFile = join(work.path, 'echo-hook.json');
    writeFileSync(hookFile, JSON.stringify({ id: 'echo-pre', type: 'pre_receive', plugin_id: 'com.example.echo' }));
    const hook = await cli(['hook', 'create', '--file', hookFile]);
    assert.equal(hook.id, 'echo-pre');
    assert.equal(hook.circuit_breaker_state.state, 'closed');

    const labels = { hook_type: 'pre_receive', plugin_id: 'com.example.echo', action: 'allow' };
    const before = counterValue(await metrics(), 'mairust_hook_calls_total', labels);
    // The server reads hooks made by another process (the CLI) within its 2 s cache: send until a call is counted.
    let sent = 0;
    await until('an echo call on /metrics', async () => {
      const r = await send(['--from', 'sender@example.org', '--header', `Subject: echo ${++sent}`]);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /<- {2}250 2\.0\.0 /, 'accepted');
      return counterValue(await metrics(), 'mairust_hook_calls_total', labels) > before ? true : undefined;
    });

    // Echo's stderr line is the plugin's log (docs/plugins.md "Script plugins").
    const logs = await until('the echo line in the plugin log', async () => {
      const r = await api('GET', '/admin/plugins/com.example.echo/logs');
      assert.equal(r.status, 200, JSON.stringify(r.json));
      const lines = (r.json.data as { message: string }[]).map((l) => l.message);
      return lines.some((m) => m.includes('echo: pre_receive') && m.includes('from=<sender@example.org>') && m.includes(`to=${ALICE}`)) ? lines : undefined;
    }, 5_000);
    assert.ok(logs.length > 0);
    await deleteHook('echo-pre');
  });

  test('webhook-notifier (http, post_receive): the receiver gets the summary with subject and sender', async () => {
    const summaries: Record<string, unknown>[] = [];
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        summaries.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
        res.writeHead(204).end();
      });
    });
    receivers.push(receiver);
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const notifyUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/notify`;

    const port = await freePort();
    const secret = await installHttp(copyWithPort('webhook-notifier', port), 'com.example.webhook-notifier');
    const plugin = await startExample(join(EXAMPLES, 'webhook-notifier/server.mjs'), port, { MAIRUST_PLUGIN_SECRET: secret, NOTIFY_URL: notifyUrl });
    await createHook({ id: 'notify-post', type: 'post_receive', plugin_id: 'com.example.webhook-notifier' });

    const r = await send(['--from', 'bob@example.org', '--header', 'Subject: Quarterly numbers']);
    assert.equal(r.code, 0, r.out);
    const summary = await until('the summary POST', async () => summaries.find((x) => x.subject === 'Quarterly numbers'));
    assert.equal(summary.event, 'message.received');
    assert.equal(summary.from, 'bob@example.org');
    assert.deepEqual(summary.to, [ALICE]);
    assert.equal(typeof summary.message_id, 'string');
    assert.equal(plugin.stderr(), '', 'every call verified (a refused signature would be logged)');
    await deleteHook('notify-post');
    await stopExample(plugin);
  });

  test('tagging (http, post_receive): the matching subject becomes an IMAP keyword, directly and through the callback API', async () => {
    const port = await freePort();
    const secret = await installHttp(copyWithPort('tagging', port), 'com.example.tagging');
    const direct = await startExample(join(EXAMPLES, 'tagging/server.ts'), port, { MAIRUST_PLUGIN_SECRET: secret });
    await createHook({ id: 'tagging-post', type: 'post_receive', plugin_id: 'com.example.tagging' });

    assert.equal((await send(['--from', 'billing@example.org', '--header', 'Subject: Invoice 42'])).code, 0);
    assert.equal((await send(['--from', 'friend@example.org', '--header', 'Subject: lunch?'])).code, 0);
    const flags = await until('the invoice keyword over IMAP', async () => {
      const f = await imapFlags('Invoice 42');
      return f?.has('invoice') ? f : undefined;
    });
    assert.ok(flags.has('invoice'));
    // The other message matches no rule: the plugin answered `allow` and it carries no tag.
    await until('the untagged message stored', async () => ((await imapFlags('lunch?')) ? true : undefined));
    assert.equal((await imapFlags('lunch?'))!.has('invoice'), false);
    await stopExample(direct);

    // CALLBACK_MODE=1: the plugin answers allow at once and sends the tags with a plt_ callback token.
    const issued = await api('POST', '/admin/plugins/com.example.tagging/tokens', { scopes: ['callback'] });
    assert.equal(issued.status, 201, JSON.stringify(issued.json));
    const pluginToken: string = issued.json.data.token;
    assert.match(pluginToken, /^plt_/);
    const later = await startExample(join(EXAMPLES, 'tagging/server.ts'), port, { MAIRUST_PLUGIN_SECRET: secret, CALLBACK_MODE: '1', MAIRUST_PLUGIN_TOKEN: pluginToken });
    assert.equal((await send(['--from', 'newsletter@example.org', '--header', 'Subject: Weekly digest'])).code, 0);
    const viaCallback = await until('the newsletter keyword set by the callback', async () => {
      const f = await imapFlags('Weekly digest');
      return f?.has('newsletter') ? f : undefined;
    });
    assert.ok(viaCallback.has('newsletter'));
    const tokens = await api('GET', '/admin/plugins/com.example.tagging/tokens');
    const used = (tokens.json.data as { id: string; last_used_at: string | null }[]).find((t) => t.id === issued.json.data.id);
    assert.ok(used?.last_used_at, 'the tag came through the callback API with the plt_ token');
    assert.equal(later.stderr(), '', 'the callback succeeded');
    await deleteHook('tagging-post');
    await stopExample(later);
  });

  test('rspamd-bridge (http, pre_receive): GTUBE is refused at DATA with 550 5.7.1, a clean message is accepted', async () => {
    const port = await freePort();
    const secret = await installHttp(copyWithPort('rspamd-bridge', port), 'com.example.rspamd-bridge');
    const bridge = await startExample(join(EXAMPLES, 'rspamd-bridge/server.ts'), port, { MAIRUST_PLUGIN_SECRET: secret, RSPAMD_URL: await rspamdUrl() });
    await createHook({ id: 'rspamd-pre', type: 'pre_receive', plugin_id: 'com.example.rspamd-bridge', timeout_ms: 2500 });

    const spam = await send(['--from', 'spammer@example.org', '--header', 'Subject: cheap stuff', '--body', `Buy now.\n${GTUBE}\n`]);
    assert.notEqual(spam.code, 0, 'swaks reports the refusal');
    assert.match(spam.out, /<\*\* +550 5\.7\.1 /, spam.out);
    const clean = await send(['--from', 'colleague@example.org', '--header', 'Subject: meeting notes', '--body', 'The notes from today are attached to the wiki page.\n']);
    assert.equal(clean.code, 0, clean.out);
    assert.match(clean.out, /<- {2}250 2\.0\.0 /);
    const stored = await until('the clean message over IMAP', async () => ((await imapFlags('meeting notes')) ? true : undefined));
    assert.ok(stored);
    assert.equal(await imapFlags('cheap stuff'), undefined, 'the refused message was not stored');
    await deleteHook('rspamd-pre');
    await stopExample(bridge);
  });
});
