/**
 * The shipped example plugins (examples/plugins/, SPEC §7 "Shipped examples"), run for real:
 * every plugin.toml parses; the echo script goes through MaiRust's script executor with its
 * manifest's limits; the http examples run as their own processes and are called by MaiRust's
 * http executor (signed requests, SPEC §6), with real HTTP servers standing in for NOTIFY_URL,
 * rspamd's /checkv2 and MaiRust's callback API — and, when available, the real rspamd.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAIRUST_VERSION } from '../../src/core/version.js';
import { validateHookResponse } from '../../src/hooks/config.js';
import { callHttpPlugin } from '../../src/hooks/executors/http.js';
import { runScript } from '../../src/hooks/executors/script.js';
import { signHookCall } from '../../src/hooks/signing.js';
import { hookSmtpReply } from '../../src/hooks/smtp-reply.js';
import type { HookResponse } from '../../src/hooks/types.js';
import { parseManifest, type PluginManifest } from '../../src/plugins/manifest.js';
import { validatePermissions } from '../../src/plugins/permissions.js';
import { baseUrlFromCallbackUrl, type HookPayload } from '../../sdk/src/index.js';
import { rspamdUrl } from '../fixtures/spam/support.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXAMPLES = path.join(ROOT, 'examples/plugins');
const SECRET = 'psec_example_secret_0123456789abcdefghijklmnop';
const OLD_SECRET = 'psec_example_old_secret_0123456789abcdefghijk';
/** Endpoints are IP literals: the executor never asks DNS for them. */
const noDns = {
  resolve4: async (): Promise<string[]> => {
    throw new Error('no DNS lookups in this test');
  },
  resolve6: async (): Promise<string[]> => {
    throw new Error('no DNS lookups in this test');
  },
};

function manifestOf(example: string): PluginManifest {
  const parsed = parseManifest(readFileSync(path.join(EXAMPLES, example, 'plugin.toml'), 'utf8'), { mairustVersion: MAIRUST_VERSION });
  assert.ok(parsed.ok, `${example}/plugin.toml: ${JSON.stringify(!parsed.ok && parsed.errors)}`);
  return parsed.manifest;
}

function payload(over: Partial<HookPayload> = {}): HookPayload {
  return {
    hook_type: 'post_receive',
    message_id: 'msg-1',
    tenant_id: 'tenant-1',
    mailbox: 'alice@example.com',
    envelope: { from: 'bob@example.net', to: ['alice@example.com'] },
    headers: { subject: ['Hello'], from: ['Bob <bob@example.net>'] },
    body: { size: 1200, has_attachments: false },
    callback_url: 'http://127.0.0.1:9/api/v1/internal/plugins/callback/msg-1',
    metadata: { received_at: '2025-01-01T12:00:00.000Z', client_ip: '192.0.2.10' },
    ...over,
  };
}

// ---------------------------------------------------------------------------------------------
// Processes and servers

const running: ChildProcess[] = [];
const servers: Server[] = [];
after(async () => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

interface Started {
  url: string;
  stderr: () => string;
}

/** Starts an example's server (node for .mjs, tsx for .ts) on a free port; resolves with its URL. */
function startExample(file: string, env: Record<string, string>): Promise<Started> {
  const args = file.endsWith('.ts') ? ['--import', 'tsx', file] : [file];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start: ${err}`)), 20_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], stderr: () => err });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited with ${code}: ${err}`));
    });
  });
}

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: Buffer;
}

/** A real HTTP server on 127.0.0.1 that records requests and answers with `reply`. */
async function recorder(reply: (r: Received) => { status: number; body: unknown }): Promise<{ url: string; requests: Received[]; next: () => Promise<Received> }> {
  const requests: Received[] = [];
  const waiting: ((r: Received) => void)[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) };
      requests.push(r);
      const answer = reply(r);
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
      waiting.shift()?.(r);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    next: () => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no request arrived within 10 s')), 10_000);
      waiting.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    }),
  };
}

/** One hook call through MaiRust's own http executor; returns the validated response. */
async function call(url: string, pluginId: string, p: HookPayload, secrets = [SECRET]): Promise<HookResponse> {
  const result = await callHttpPlugin({ endpoint: `${url}/hook`, pluginId, secrets, payload: p, timeoutMs: 10_000, allowPrivate: true, resolver: noDns });
  assert.ok(result.ok, `call failed: ${!result.ok && result.message}`);
  const valid = validateHookResponse(result.response);
  assert.ok(valid.ok, `invalid response: ${JSON.stringify(!valid.ok && valid.errors)}`);
  assert.equal(valid.response.plugin_id, pluginId);
  return valid.response;
}

/** A raw signed POST, for the answers the executor turns into bare errors (401 with a reason). */
async function rawPost(url: string, pluginId: string, p: HookPayload, opts: { secret?: string; timestamp?: number } = {}) {
  const body = JSON.stringify(p);
  const headers = signHookCall({ secrets: [opts.secret ?? SECRET], pluginId, body, timestamp: opts.timestamp });
  const res = await fetch(`${url}/hook`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

// ---------------------------------------------------------------------------------------------

describe('example manifests', () => {
  test('every plugin.toml parses and its permissions satisfy their dependencies', () => {
    const expected: Record<string, { protocol: string; on: string[] }> = {
      echo: { protocol: 'script', on: ['pre_receive', 'post_receive', 'pre_send', 'pre_delivery'] },
      'webhook-notifier': { protocol: 'http', on: ['post_receive'] },
      'rspamd-bridge': { protocol: 'http', on: ['pre_receive'] },
      tagging: { protocol: 'http', on: ['post_receive'] },
    };
    for (const [example, want] of Object.entries(expected)) {
      const m = manifestOf(example);
      assert.equal(m.id, `com.example.${example}`);
      assert.equal(m.entry.protocol, want.protocol, example);
      assert.deepEqual(m.hooks.on, want.on, example);
      assert.deepEqual(validatePermissions(m.permissions), [], example);
    }
    // Minimal grants where minimal is enough; the bridge needs the whole text.
    assert.equal(manifestOf('echo').permissions.read_headers, false);
    assert.equal(manifestOf('rspamd-bridge').permissions.read_body, 'full');
    assert.equal(manifestOf('tagging').permissions.write_tags, true);
    assert.equal(manifestOf('tagging').entry.callback_api, true);
  });
});

describe('echo (script protocol)', () => {
  test('runs through the script executor with its manifest limits, logs to stderr and allows', async () => {
    const m = manifestOf('echo');
    assert.equal(m.entry.protocol, 'script');
    if (m.entry.protocol !== 'script') return;
    const dir = path.join(EXAMPLES, 'echo');
    const command = [path.resolve(dir, m.entry.command[0]), ...m.entry.command.slice(1)];
    for (const hookType of m.hooks.on) {
      const result = await runScript({
        command,
        cwd: dir,
        payload: payload({ hook_type: hookType, envelope: { from: 'bob@example.net', to: ['alice@example.com', 'carol@example.com'] } }),
        wallTimeMs: m.limits.wall_time_ms,
        memoryBytes: m.limits.memory_mb * 1024 * 1024,
        cpuMs: m.limits.cpu_ms,
      });
      assert.ok(result.ok, `${hookType}: ${!result.ok && result.message} ${result.stderr}`);
      const valid = validateHookResponse(result.response);
      assert.ok(valid.ok);
      assert.deepEqual(valid.response, { plugin_id: 'com.example.echo', action: 'allow', tags: [], metadata: {} });
      assert.equal(result.stderr, `echo: ${hookType} message=msg-1 from=<bob@example.net> to=alice@example.com,carol@example.com\n`);
    }
  });

  test('a control character in the payload cannot start a second log line', async () => {
    const dir = path.join(EXAMPLES, 'echo');
    const result = await runScript({ command: [path.join(dir, 'echo.mjs')], cwd: dir, payload: payload({ message_id: 'a\nforged' }), wallTimeMs: 5000 });
    assert.ok(result.ok);
    assert.equal(result.stderr?.split('\n').filter(Boolean).length, 1);
    assert.match(result.stderr ?? '', /message=a\?forged/);
  });
});

describe('webhook-notifier (http, dependency-free)', async () => {
  const id = 'com.example.webhook-notifier';
  const receiver = await recorder((r) => ({ status: r.body.includes('"subject":"fail') ? 500 : 204, body: {} }));
  const plugin = await startExample(path.join(EXAMPLES, 'webhook-notifier/server.mjs'), {
    MAIRUST_PLUGIN_SECRET: SECRET,
    MAIRUST_PLUGIN_SECRET_PREVIOUS: OLD_SECRET,
    NOTIFY_URL: `${receiver.url}/notify`,
  });

  test('post_receive: POSTs the summary to NOTIFY_URL, then allows', async () => {
    const arrived = receiver.next();
    const response = await call(plugin.url, id, payload({ headers: { subject: ['Invoice 42'] } }));
    assert.equal(response.action, 'allow');
    const r = await arrived;
    assert.equal(r.method, 'POST');
    assert.equal(r.url, '/notify');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(r.body.toString('utf8')), {
      event: 'message.received',
      message_id: 'msg-1',
      tenant_id: 'tenant-1',
      mailbox: 'alice@example.com',
      from: 'bob@example.net',
      to: ['alice@example.com'],
      subject: 'Invoice 42',
      received_at: '2025-01-01T12:00:00.000Z',
    });
  });

  test('other hooks are allowed without a notification', async () => {
    const before = receiver.requests.length;
    assert.equal((await call(plugin.url, id, payload({ hook_type: 'pre_receive' }))).action, 'allow');
    assert.equal(receiver.requests.length, before);
  });

  test('accepts either secret during a rotation (MaiRust signs with both)', async () => {
    assert.equal((await call(plugin.url, id, payload({ hook_type: 'pre_send' }), ['psec_brand_new_secret_not_known_yet_0123456', OLD_SECRET])).action, 'allow');
  });

  test('401 on a wrong secret, a stale timestamp or another plugin id; nothing is notified', async () => {
    const before = receiver.requests.length;
    const viaExecutor = await callHttpPlugin({ endpoint: `${plugin.url}/hook`, pluginId: id, secrets: ['psec_wrong_0123456789abcdefghijklmnopqrstuv'], payload: payload(), timeoutMs: 5000, allowPrivate: true, resolver: noDns });
    assert.equal(viaExecutor.ok, false);
    assert.match(!viaExecutor.ok ? viaExecutor.message : '', /HTTP 401/);
    assert.deepEqual(await rawPost(plugin.url, id, payload(), { timestamp: Math.floor(Date.now() / 1000) - 600 }), { status: 401, body: { error: 'timestamp_out_of_range' } });
    assert.equal((await rawPost(plugin.url, 'com.example.other', payload())).status, 401);
    const unsigned = await fetch(`${plugin.url}/hook`, { method: 'POST', body: JSON.stringify(payload()) });
    assert.equal(unsigned.status, 401);
    assert.equal(receiver.requests.length, before);
  });

  test('a failing NOTIFY_URL is an error answer (MaiRust retries post_receive)', async () => {
    const result = await callHttpPlugin({ endpoint: `${plugin.url}/hook`, pluginId: id, secrets: [SECRET], payload: payload({ headers: { subject: ['fail please'] } }), timeoutMs: 5000, allowPrivate: true, resolver: noDns });
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.message : '', /HTTP 502/);
  });
});

describe('tagging (http, SDK)', async () => {
  const id = 'com.example.tagging';
  const rules = JSON.stringify({ rules: [{ tag: 'invoice', subject: '\\binvoice\\b' }, { tag: 'newsletter', sender: '^news@' }, { tag: 'vip', sender: '@board\\.example\\.com>?$', subject: 'urgent' }] });
  const plugin = await startExample(path.join(EXAMPLES, 'tagging/server.ts'), { MAIRUST_PLUGIN_SECRET: SECRET, RULES: rules });

  test('answers tag with the tags of every matching rule, or allow', async () => {
    assert.deepEqual(await call(plugin.url, id, payload({ headers: { subject: ['Your Invoice 42'] } })), { plugin_id: id, action: 'tag', tags: ['invoice'], metadata: {} });
    const both = await call(plugin.url, id, payload({ envelope: { from: 'news@shop.example', to: ['alice@example.com'] }, headers: { subject: ['invoice and news'] } }));
    assert.deepEqual(both.tags, ['invoice', 'newsletter']);
    // Both patterns of a rule must match; `sender` also looks at the From header.
    const vip = await call(plugin.url, id, payload({ headers: { subject: ['URGENT: call me'], from: ['CEO <ceo@board.example.com>'] } }));
    assert.deepEqual(vip.tags, ['vip']);
    assert.equal((await call(plugin.url, id, payload({ headers: { subject: ['not urgent'] } }))).action, 'allow');
    assert.equal((await call(plugin.url, id, payload({ headers: { subject: ['lunch?'] } }))).action, 'allow');
  });

  test('401 on a bad signature', async () => {
    assert.deepEqual(await rawPost(plugin.url, id, payload(), { secret: 'psec_wrong_0123456789abcdefghijklmnopqrstuv' }), { status: 401, body: { error: 'mismatch' } });
  });

  test("the SDK derives the API base from a payload's callback_url", () => {
    assert.equal(baseUrlFromCallbackUrl('https://mail.example.com/api/v1/internal/plugins/callback/4f7c'), 'https://mail.example.com/api/v1');
    assert.equal(baseUrlFromCallbackUrl('http://127.0.0.1:8080/internal/plugins/callback/m1'), 'http://127.0.0.1:8080');
    assert.throws(() => baseUrlFromCallbackUrl('https://mail.example.com/api/v1/messages/4f7c'), TypeError);
    assert.throws(() => baseUrlFromCallbackUrl('not a url'), TypeError);
  });

  test('CALLBACK_MODE=1: allows at once, then calls back with the tags and its plugin token', async () => {
    const mairust = await recorder(() => ({ status: 200, body: { applied: { tags: ['invoice'] } } }));
    const token = 'plt_example_token_0123456789';
    const cb = await startExample(path.join(EXAMPLES, 'tagging/server.ts'), { MAIRUST_PLUGIN_SECRET: SECRET, RULES: rules, CALLBACK_MODE: '1', MAIRUST_PLUGIN_TOKEN: token });
    const arrived = mairust.next();
    const sync = await call(cb.url, id, payload({
      message_id: 'msg-cb',
      headers: { subject: ['invoice attached'] },
      callback_url: `${mairust.url}/api/v1/internal/plugins/callback/msg-cb`,
    }));
    assert.equal(sync.action, 'allow');
    const r = await arrived;
    assert.equal(r.method, 'POST');
    assert.equal(r.url, '/api/v1/internal/plugins/callback/msg-cb');
    assert.equal(r.headers.authorization, `Bearer ${token}`);
    const body = JSON.parse(r.body.toString('utf8')) as unknown;
    assert.deepEqual(body, { plugin_id: id, action: 'tag', tags: ['invoice'] });
    assert.ok(validateHookResponse(body).ok);
    // Nothing to tag → no callback.
    await call(cb.url, id, payload({ message_id: 'msg-none', headers: { subject: ['lunch'] }, callback_url: `${mairust.url}/api/v1/internal/plugins/callback/msg-none` }));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(mairust.requests.length, 1);
  });
});

describe('rspamd-bridge (http, SDK)', async () => {
  const id = 'com.example.rspamd-bridge';
  /** Speaks /checkv2's JSON; the action it answers is named by the message's X-Test-Action header. */
  const rspamd = await recorder((r) => {
    if (r.url !== '/checkv2') return { status: 404, body: {} };
    const action = /^X-Test-Action: (.*)$/im.exec(r.body.toString('utf8'))?.[1]?.trim() ?? 'no action';
    if (action === 'broken') return { status: 200, body: { oops: true } };
    return {
      status: 200,
      body: {
        action,
        score: 12.345,
        required_score: 15,
        symbols: { BAYES_SPAM: { name: 'BAYES_SPAM', score: 5.1 }, R_SPF_ALLOW: { name: 'R_SPF_ALLOW', score: -0.2 }, MANY_INVISIBLE_PARTS: { name: 'MANY_INVISIBLE_PARTS', score: 7 } },
        messages: action === 'reject' ? { smtp_message: 'Spam message rejected; see https://example.com/why' } : {},
      },
    };
  });
  const plugin = await startExample(path.join(EXAMPLES, 'rspamd-bridge/server.ts'), { MAIRUST_PLUGIN_SECRET: SECRET, RSPAMD_URL: rspamd.url });
  const withAction = (action: string) => payload({
    hook_type: 'pre_receive',
    envelope: { from: 'bob@example.net', to: ['alice@example.com', 'carol@example.com'] },
    headers: { subject: ['Cheap watches'], 'x-test-action': [action], 'content-type': ['multipart/mixed; boundary=x'] },
    body: { size: 300, has_attachments: false, full: 'Buy now!\nReally.' },
  });

  test('sends the rebuilt message and the SMTP context to /checkv2', async () => {
    await call(plugin.url, id, withAction('no action'));
    const r = rspamd.requests.at(-1)!;
    assert.equal(r.method, 'POST');
    assert.equal(r.headers.from, 'bob@example.net');
    assert.equal(r.headers.ip, '192.0.2.10');
    assert.equal(r.headers['queue-id'], 'msg-1');
    const rcpts = r.rawHeaders.filter((_v, i) => i % 2 === 1 && r.rawHeaders[i - 1].toLowerCase() === 'rcpt');
    assert.deepEqual(rcpts, ['alice@example.com', 'carol@example.com']);
    const message = r.body.toString('utf8');
    assert.match(message, /^Subject: Cheap watches\r\n/m);
    // The original MIME type no longer describes the decoded text.
    assert.doesNotMatch(message, /multipart/);
    assert.match(message, /Content-Type: text\/plain; charset=utf-8\r\n/);
    assert.ok(message.endsWith('\r\n\r\nBuy now!\r\nReally.'));
  });

  test('maps every rspamd action to a hook answer with the score and metadata', async () => {
    const metadata = { rspamd_action: '', score: 12.35, required_score: 15, symbols: ['MANY_INVISIBLE_PARTS', 'BAYES_SPAM', 'R_SPF_ALLOW'] };
    const cases: [string, Partial<HookResponse>][] = [
      ['reject', { action: 'reject', smtp_code: 550, smtp_enhanced: '5.7.1', smtp_message: 'Spam message rejected; see https://example.com/why' }],
      ['soft reject', { action: 'tempfail', smtp_code: 451, smtp_enhanced: '4.7.1', smtp_message: 'Try again later' }],
      ['add header', { action: 'tag', tags: ['spam'] }],
      ['rewrite subject', { action: 'tag', tags: ['spam'] }],
      ['greylist', { action: 'allow' }],
      ['no action', { action: 'allow' }],
    ];
    for (const [rspamdAction, want] of cases) {
      const response = await call(plugin.url, id, withAction(rspamdAction));
      assert.deepEqual(response, { plugin_id: id, tags: [], score: 12.35, ...want, metadata: { ...metadata, rspamd_action: rspamdAction } }, rspamdAction);
      if (response.action === 'reject' || response.action === 'tempfail') {
        // MaiRust takes the plugin's reply as it is (no fallback to the default text).
        assert.deepEqual(hookSmtpReply(response.action, response).fallbacks, []);
      }
    }
  });

  test('a broken rspamd answer or an unreachable rspamd is an error answer, quickly', async () => {
    const broken = await callHttpPlugin({ endpoint: `${plugin.url}/hook`, pluginId: id, secrets: [SECRET], payload: withAction('broken'), timeoutMs: 5000, allowPrivate: true, resolver: noDns });
    assert.equal(broken.ok, false);
    assert.match(!broken.ok ? broken.message : '', /HTTP 502/);
    const dead = await startExample(path.join(EXAMPLES, 'rspamd-bridge/server.ts'), { MAIRUST_PLUGIN_SECRET: SECRET, RSPAMD_URL: 'http://127.0.0.1:9' });
    const started = Date.now();
    const result = await callHttpPlugin({ endpoint: `${dead.url}/hook`, pluginId: id, secrets: [SECRET], payload: withAction('no action'), timeoutMs: 5000, allowPrivate: true, resolver: noDns });
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.message : '', /HTTP 502/);
    assert.ok(Date.now() - started < 3000, 'answered within the pre_receive maximum');
  });

  test('401 on a bad signature; rspamd is not asked', async () => {
    const before = rspamd.requests.length;
    assert.equal((await rawPost(plugin.url, id, withAction('reject'), { secret: 'psec_wrong_0123456789abcdefghijklmnopqrstuv' })).status, 401);
    assert.equal(rspamd.requests.length, before);
  });

  test('against the real rspamd: GTUBE is rejected with 550 5.7.1, a plain message is not', async () => {
    const real = await startExample(path.join(EXAMPLES, 'rspamd-bridge/server.ts'), { MAIRUST_PLUGIN_SECRET: SECRET, RSPAMD_URL: await rspamdUrl(), RSPAMD_TIMEOUT_MS: '5000' });
    const message = (full: string) => payload({
      hook_type: 'pre_receive',
      envelope: { from: 'alice@example.com', to: ['bob@example.org'] },
      headers: {
        from: ['Alice <alice@example.com>'], to: ['Bob <bob@example.org>'], subject: ['Lunch on Friday'],
        date: [new Date().toUTCString().replace('GMT', '+0000')], 'message-id': ['<lunch-1@example.com>'],
      },
      body: { size: full.length, has_attachments: false, full },
      metadata: { received_at: new Date().toISOString(), client_ip: '192.0.2.10' },
    });
    const gtube = await call(real.url, id, message('Test\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n'));
    assert.equal(gtube.action, 'reject');
    assert.equal(gtube.smtp_code, 550);
    assert.equal(gtube.smtp_enhanced, '5.7.1');
    assert.equal((gtube.metadata as { rspamd_action: string }).rspamd_action, 'reject');
    const clean = await call(real.url, id, message('Hi Bob,\n\nshall we have lunch on Friday at noon?\n\nAlice\n'));
    assert.ok(['allow', 'tag'].includes(clean.action), clean.action);
    assert.equal(typeof clean.score, 'number');
    assert.ok(clean.score! < 15);
  });
});
