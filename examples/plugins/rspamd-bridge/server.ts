/**
 * The rspamd bridge (http protocol, SPEC §6/§7), written with the plugin SDK (sdk/): MaiRust
 * POSTs a signed pre_receive payload to /hook; the bridge rebuilds the message, asks rspamd
 * (`POST /checkv2`) and answers with the mapped action (rspamd.ts).
 *
 * When rspamd cannot be asked (down, slow, a broken answer) the bridge answers HTTP 502 quickly:
 * MaiRust then applies the hook's on_error (default allow) and its circuit breaker counts the
 * failure, instead of the SMTP session waiting for the hook's timeout.
 *
 * Environment:
 *   MAIRUST_PLUGIN_SECRET           signing secret (psec_…)                                  required
 *   MAIRUST_PLUGIN_SECRET_PREVIOUS  the previous secret, only while MaiRust rotates it        optional
 *   MAIRUST_PLUGIN_ID               default com.example.rspamd-bridge
 *   RSPAMD_URL                      rspamd's normal worker, default http://127.0.0.1:11333
 *   RSPAMD_TIMEOUT_MS               default 1500 (the pre_receive hook's timeout is 2 s by default)
 *   HOST, PORT                      default 127.0.0.1, 8789 (PORT=0: any free port, printed at start)
 *
 * Run: `npx tsx server.ts` (Node.js ≥ 20). The SDK is imported from this MaiRust checkout; in a
 * project of your own, install it (`npm install <mairust>/sdk`) and import '@mairust/plugin-sdk'.
 */
import http, { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { verifyRequest, type HookPayload } from '../../../sdk/src/index.js';
import { buildMessage, mapVerdict, RspamdAnswerError, rspamdHeaders } from './rspamd.js';

/** A pre_receive payload with read_body = "full" carries the whole text: allow a large one. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const MAX_ANSWER_BYTES = 1024 * 1024;
const env = process.env;
const pluginId = env.MAIRUST_PLUGIN_ID || 'com.example.rspamd-bridge';
const secrets = [env.MAIRUST_PLUGIN_SECRET, env.MAIRUST_PLUGIN_SECRET_PREVIOUS].filter((s): s is string => Boolean(s));
const timeoutMs = Number(env.RSPAMD_TIMEOUT_MS || 1500);

function fatal(message: string): never {
  process.stderr.write(`rspamd-bridge: ${message}\n`);
  process.exit(2);
}

if (secrets.length === 0) fatal('MAIRUST_PLUGIN_SECRET is not set');
if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) fatal('RSPAMD_TIMEOUT_MS must be a positive number');
let checkUrl: URL;
try {
  const base = env.RSPAMD_URL || 'http://127.0.0.1:11333';
  checkUrl = new URL('checkv2', base.endsWith('/') ? base : `${base}/`);
} catch {
  fatal('RSPAMD_URL is not a URL');
}
if (checkUrl.protocol !== 'http:' && checkUrl.protocol !== 'https:') fatal('RSPAMD_URL must be http:// or https://');

/** POST /checkv2; resolves with the answer text of a 200, rejects on anything else. */
function askRspamd(payload: HookPayload): Promise<string> {
  const message = buildMessage(payload);
  const request = checkUrl.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(checkUrl, { method: 'POST', headers: rspamdHeaders(payload, message.length), signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) {
          res.destroy();
          reject(new Error(`rspamd answer exceeds ${MAX_ANSWER_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`rspamd answered HTTP ${res.statusCode}`));
        else resolve(Buffer.concat(chunks).toString('utf8'));
      });
    });
    req.on('error', (err) => reject(err.name === 'AbortError' ? new Error(`rspamd did not answer within ${timeoutMs} ms`) : err));
    req.end(message);
  });
}

function send(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

async function handleHook(req: IncomingMessage, res: ServerResponse, raw: Buffer): Promise<void> {
  const check = verifyRequest({ secrets, pluginId, headers: req.headers, body: raw });
  if (!check.ok) return send(res, 401, { error: check.reason });
  let payload: HookPayload;
  try {
    payload = JSON.parse(raw.toString('utf8')) as HookPayload;
  } catch {
    return send(res, 400, { error: 'the body is not JSON' });
  }
  try {
    send(res, 200, mapVerdict(pluginId, await askRspamd(payload)));
  } catch (err) {
    const why = err instanceof RspamdAnswerError ? err.message : `rspamd check failed: ${(err as Error).message}`;
    process.stderr.write(`rspamd-bridge: ${payload.message_id}: ${why}\n`);
    send(res, 502, { error: why });
  }
}

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path === '/health' && req.method === 'GET') return send(res, 200, { ok: true });
  if (path !== '/hook') return send(res, 404, { error: 'not found' });
  if (req.method !== 'POST') return send(res, 405, { error: 'POST only' });
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
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
    handleHook(req, res, Buffer.concat(chunks)).catch((err: Error) => {
      process.stderr.write(`rspamd-bridge: ${err.stack ?? err.message}\n`);
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
    });
  });
});

server.listen(Number(env.PORT ?? 8789), env.HOST || '127.0.0.1', () => {
  const { address, port } = server.address() as AddressInfo;
  process.stdout.write(`rspamd-bridge listening on http://${address}:${port} (rspamd ${checkUrl.origin})\n`);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => server.close(() => process.exit(0)));
