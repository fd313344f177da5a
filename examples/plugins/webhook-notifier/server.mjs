#!/usr/bin/env node
// The webhook notifier (http protocol, SPEC §6/§7): MaiRust POSTs a signed hook payload to /hook;
// on post_receive this service POSTs a small JSON summary of the message to NOTIFY_URL and answers
// "allow". Node.js ≥ 20, no dependencies.
//
// Environment:
//   MAIRUST_PLUGIN_SECRET           the plugin's signing secret (psec_…, shown once at install)   required
//   MAIRUST_PLUGIN_SECRET_PREVIOUS  the previous secret, only while MaiRust rotates it             optional
//   MAIRUST_PLUGIN_ID               default com.example.webhook-notifier
//   NOTIFY_URL                      where summaries go (http/https)                                required
//   NOTIFY_TIMEOUT_MS               default 10000 (the post_receive hook's own timeout is 30 s)
//   HOST, PORT                      default 127.0.0.1, 8787 (PORT=0: any free port, printed at start)
import { createServer } from 'node:http';
import { verifyHookCall } from './signature.mjs';

/** More than any payload this plugin is sent (it has no body permission); bigger requests are refused. */
const MAX_BODY_BYTES = 1024 * 1024;

const env = process.env;
const pluginId = env.MAIRUST_PLUGIN_ID || 'com.example.webhook-notifier';
const secrets = [env.MAIRUST_PLUGIN_SECRET, env.MAIRUST_PLUGIN_SECRET_PREVIOUS].filter(Boolean);
const notifyUrl = env.NOTIFY_URL;
const notifyTimeoutMs = Number(env.NOTIFY_TIMEOUT_MS || 10_000);

if (secrets.length === 0) fatal('MAIRUST_PLUGIN_SECRET is not set');
if (!notifyUrl || !/^https?:\/\//.test(notifyUrl)) fatal('NOTIFY_URL must be an http:// or https:// URL');
if (!Number.isFinite(notifyTimeoutMs) || notifyTimeoutMs <= 0) fatal('NOTIFY_TIMEOUT_MS must be a positive number');

function fatal(message) {
  process.stderr.write(`webhook-notifier: ${message}\n`);
  process.exit(2);
}

function send(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

/** The summary sent to NOTIFY_URL: what a chat or ticket system needs to show "new mail". */
function summarize(payload) {
  const subject = payload.headers?.subject?.[0] ?? null;
  return {
    event: 'message.received',
    message_id: payload.message_id,
    tenant_id: payload.tenant_id ?? null,
    mailbox: payload.mailbox ?? null,
    from: payload.envelope?.from ?? '',
    to: payload.envelope?.to ?? [],
    subject,
    received_at: payload.metadata?.received_at ?? null,
  };
}

async function notify(summary) {
  const res = await fetch(notifyUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'mairust-webhook-notifier/1.0' },
    body: JSON.stringify(summary),
    redirect: 'error',
    signal: AbortSignal.timeout(notifyTimeoutMs),
  });
  await res.arrayBuffer(); // drain, so the connection can be reused
  if (!res.ok) throw new Error(`NOTIFY_URL answered HTTP ${res.status}`);
}

async function handleHook(req, res, raw) {
  // Verify the raw bytes before parsing anything (re-serialised JSON would not match).
  const check = verifyHookCall({ secrets, pluginId, headers: req.headers, body: raw });
  if (!check.ok) return send(res, 401, { error: check.reason });
  let payload;
  try {
    payload = JSON.parse(raw.toString('utf8'));
  } catch {
    return send(res, 400, { error: 'the body is not JSON' });
  }
  if (payload.hook_type === 'post_receive') {
    try {
      await notify(summarize(payload));
    } catch (err) {
      // An error answer (not "allow"): MaiRust logs it and retries the post_receive call later
      // (3 attempts by default), so a short NOTIFY_URL outage loses no notification.
      process.stderr.write(`webhook-notifier: notify failed for ${payload.message_id}: ${err.message}\n`);
      return send(res, 502, { error: 'notification failed' });
    }
  }
  send(res, 200, { plugin_id: pluginId, action: 'allow' });
}

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path === '/health' && req.method === 'GET') return send(res, 200, { ok: true });
  if (path !== '/hook') return send(res, 404, { error: 'not found' });
  if (req.method !== 'POST') return send(res, 405, { error: 'POST only' });
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      send(res, 413, { error: 'request too large' });
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (res.headersSent) return;
    handleHook(req, res, Buffer.concat(chunks)).catch((err) => {
      process.stderr.write(`webhook-notifier: ${err.stack ?? err}\n`);
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
    });
  });
});

server.listen(Number(env.PORT ?? 8787), env.HOST || '127.0.0.1', () => {
  const { address, port } = server.address();
  process.stdout.write(`webhook-notifier listening on http://${address}:${port}\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
