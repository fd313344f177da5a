/**
 * The tagging plugin (http protocol, SPEC §6/§7), written with the plugin SDK (sdk/): on
 * post_receive it matches the subject and sender against rules (rules.ts) and answers
 * `{ action: "tag", tags }`, or `allow` when nothing matches.
 *
 * With CALLBACK_MODE=1 it answers `allow` at once and sends the tags afterwards with the SDK's
 * callback client (POST <api>/internal/plugins/callback/:message_id, Bearer MAIRUST_PLUGIN_TOKEN):
 * the pattern for work that takes longer than a hook's timeout.
 *
 * Environment:
 *   MAIRUST_PLUGIN_SECRET           signing secret (psec_…)                                 required
 *   MAIRUST_PLUGIN_SECRET_PREVIOUS  the previous secret, only while MaiRust rotates it       optional
 *   MAIRUST_PLUGIN_ID               default com.example.tagging
 *   RULES_FILE                      default rules.json next to this file; RULES (JSON text) wins over it
 *   CALLBACK_MODE                   1 = answer allow, then call back with the tags
 *   MAIRUST_PLUGIN_TOKEN            plt_… token with the `callback` scope                   CALLBACK_MODE only
 *   HOST, PORT                      default 127.0.0.1, 8788 (PORT=0: any free port, printed at start)
 *
 * Run: `npx tsx server.ts` (Node.js ≥ 20). The SDK is imported from this MaiRust checkout; in a
 * project of your own, install it (`npm install <mairust>/sdk`) and import '@mairust/plugin-sdk'.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  baseUrlFromCallbackUrl,
  createCallbackClient,
  verifyRequest,
  type HookPayload,
  type HookResponse,
} from '../../../sdk/src/index.js';
import { matchTags, parseRules, RulesError, type Rule } from './rules.js';

const MAX_BODY_BYTES = 1024 * 1024;
const env = process.env;
const pluginId = env.MAIRUST_PLUGIN_ID || 'com.example.tagging';
const secrets = [env.MAIRUST_PLUGIN_SECRET, env.MAIRUST_PLUGIN_SECRET_PREVIOUS].filter((s): s is string => Boolean(s));
const callbackMode = env.CALLBACK_MODE === '1';
const token = env.MAIRUST_PLUGIN_TOKEN ?? '';

function fatal(message: string): never {
  process.stderr.write(`tagging: ${message}\n`);
  process.exit(2);
}

if (secrets.length === 0) fatal('MAIRUST_PLUGIN_SECRET is not set');
if (callbackMode && !token.startsWith('plt_')) fatal('CALLBACK_MODE=1 needs MAIRUST_PLUGIN_TOKEN (plt_…)');

let rules: Rule[];
try {
  rules = parseRules(env.RULES ?? readFileSync(env.RULES_FILE || fileURLToPath(new URL('rules.json', import.meta.url)), 'utf8'));
} catch (err) {
  fatal(err instanceof RulesError ? err.message : `cannot read the rules: ${(err as Error).message}`);
}

function send(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

function tagsFor(payload: HookPayload): string[] {
  const headers = payload.headers ?? {};
  return matchTags(rules, {
    subject: headers.subject?.[0] ?? '',
    senders: [payload.envelope.from, ...(headers.from ?? [])],
  });
}

function answer(tags: string[]): HookResponse {
  return tags.length > 0 ? { plugin_id: pluginId, action: 'tag', tags } : { plugin_id: pluginId, action: 'allow' };
}

/** CALLBACK_MODE: the tags go to MaiRust after the hook call has been answered. */
async function callBack(payload: HookPayload, tags: string[]): Promise<void> {
  if (tags.length === 0 || !payload.callback_url) return;
  // callback_url comes from a verified payload: the token is only ever sent where MaiRust said.
  const client = createCallbackClient({ baseUrl: baseUrlFromCallbackUrl(payload.callback_url), token });
  await client.callback(payload.message_id, answer(tags));
}

function handleHook(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
  const check = verifyRequest({ secrets, pluginId, headers: req.headers, body: raw });
  if (!check.ok) return send(res, 401, { error: check.reason });
  let payload: HookPayload;
  try {
    payload = JSON.parse(raw.toString('utf8')) as HookPayload;
  } catch {
    return send(res, 400, { error: 'the body is not JSON' });
  }
  const tags = payload.hook_type === 'post_receive' ? tagsFor(payload) : [];
  if (!callbackMode) return send(res, 200, answer(tags));
  send(res, 200, answer([]));
  callBack(payload, tags).catch((err: Error) => {
    process.stderr.write(`tagging: callback for ${payload.message_id} failed: ${err.message}\n`);
  });
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
    if (!res.headersSent) handleHook(req, res, Buffer.concat(chunks));
  });
});

server.listen(Number(env.PORT ?? 8788), env.HOST || '127.0.0.1', () => {
  const { address, port } = server.address() as AddressInfo;
  process.stdout.write(`tagging listening on http://${address}:${port}${callbackMode ? ' (callback mode)' : ''}\n`);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => server.close(() => process.exit(0)));
