/**
 * The plugin SDK (sdk/, SPEC §6 "Signing", SPEC §7 "Plugin tokens"): it verifies what MaiRust's
 * src/hooks/signing.ts signs, and its callback client speaks the callback API over real HTTP.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signHookCall } from '../../src/hooks/signing.js';
import {
  PluginApiError,
  createCallbackClient,
  verifyRequest,
  verifySignature,
  type HookPayload,
  type HookResponse,
} from '../../sdk/src/index.js';

const pluginId = 'com.example.spam-tagger';
const secretNew = 'plsec_new_0123456789abcdefghijklmnopqrstuvwxyz';
const secretOld = 'plsec_old_0123456789abcdefghijklmnopqrstuvwxyz';
const ts = 1_700_000_000;
const payload: HookPayload = {
  hook_type: 'pre_receive',
  message_id: 'm1',
  tenant_id: 't1',
  mailbox: 'alice@example.com',
  envelope: { from: 'bob@example.net', to: ['alice@example.com'] },
  headers: { subject: ['Grüße'] },
  body: { preview: 'Hallo', size: 1234, has_attachments: false },
  callback_url: 'https://mail.example.com/internal/plugins/callback/m1',
  metadata: { received_at: '2025-01-01T00:00:00.000Z', client_ip: '192.0.2.1' },
};
const body = JSON.stringify(payload);

function fields(h: ReturnType<typeof signHookCall>) {
  return { timestamp: h['X-MaiRust-Timestamp'], signature: h['X-MaiRust-Signature'], pluginIdHeader: h['X-MaiRust-Plugin-Id'] };
}

describe('verifySignature (SDK) against signHookCall (MaiRust)', () => {
  const signed = fields(signHookCall({ secrets: [secretNew], pluginId, body, timestamp: ts }));
  const base = { secrets: [secretNew], pluginId, body, now: ts, ...signed };

  test('accepts what MaiRust signed, for string, Buffer and Uint8Array bodies (non-ASCII included)', () => {
    assert.deepEqual(verifySignature(base), { ok: true });
    assert.deepEqual(verifySignature({ ...base, body: Buffer.from(body) }), { ok: true });
    assert.deepEqual(verifySignature({ ...base, body: new Uint8Array(Buffer.from(body)) }), { ok: true });
    // Without the header argument the plugin id is still bound through the HMAC.
    const { pluginIdHeader: _h, ...noHeader } = base;
    assert.deepEqual(verifySignature(noHeader), { ok: true });
  });

  test('refuses a tampered body, timestamp or plugin id', () => {
    assert.deepEqual(verifySignature({ ...base, body: body.replace('alice', 'mallory') }), { ok: false, reason: 'mismatch' });
    assert.deepEqual(verifySignature({ ...base, timestamp: String(ts - 1) }), { ok: false, reason: 'mismatch' });
    assert.deepEqual(verifySignature({ ...base, pluginIdHeader: 'com.example.other' }), { ok: false, reason: 'mismatch' });
    assert.deepEqual(verifySignature({ ...base, pluginId: 'com.example.other', pluginIdHeader: 'com.example.other' }), { ok: false, reason: 'mismatch' });
    assert.deepEqual(verifySignature({ ...base, secrets: [secretOld] }), { ok: false, reason: 'mismatch' });
  });

  test('accepts exactly ±300 s of clock skew and refuses 301 s, before any HMAC', () => {
    assert.deepEqual(verifySignature({ ...base, now: ts + 300 }), { ok: true });
    assert.deepEqual(verifySignature({ ...base, now: ts - 300 }), { ok: true });
    assert.deepEqual(verifySignature({ ...base, now: ts + 301 }), { ok: false, reason: 'timestamp_out_of_range' });
    assert.deepEqual(verifySignature({ ...base, now: ts - 301 }), { ok: false, reason: 'timestamp_out_of_range' });
    assert.deepEqual(verifySignature({ ...base, now: ts + 301, body: 'tampered' }), { ok: false, reason: 'timestamp_out_of_range' });
  });

  test('rotation: a call signed with both secrets verifies with either; a plugin holding both accepts either', () => {
    const both = fields(signHookCall({ secrets: [secretNew, secretOld], pluginId, body, timestamp: ts }));
    assert.deepEqual(verifySignature({ ...base, ...both, secrets: [secretOld] }), { ok: true });
    assert.deepEqual(verifySignature({ ...base, ...both, secrets: [secretNew] }), { ok: true });
    const oldOnly = fields(signHookCall({ secrets: [secretOld], pluginId, body, timestamp: ts }));
    assert.deepEqual(verifySignature({ ...base, ...oldOnly, secrets: [secretNew, secretOld] }), { ok: true });
    assert.deepEqual(verifySignature({ ...base, ...both, secrets: ['plsec_unrelated'] }), { ok: false, reason: 'mismatch' });
  });

  test('names missing and malformed headers', () => {
    assert.deepEqual(verifySignature({ ...base, signature: undefined }), { ok: false, reason: 'missing_header' });
    assert.deepEqual(verifySignature({ ...base, timestamp: null }), { ok: false, reason: 'missing_header' });
    assert.deepEqual(verifySignature({ ...base, pluginIdHeader: null }), { ok: false, reason: 'missing_header' });
    assert.deepEqual(verifySignature({ ...base, secrets: [] }), { ok: false, reason: 'missing_header' });
    assert.deepEqual(verifySignature({ ...base, timestamp: '-5' }), { ok: false, reason: 'malformed_timestamp' });
    assert.deepEqual(verifySignature({ ...base, signature: 'sha256=xyz' }), { ok: false, reason: 'malformed_signature' });
    assert.deepEqual(verifySignature({ ...base, signature: 'v1=' + 'a'.repeat(64) }), { ok: false, reason: 'malformed_signature' });
  });
});

/** A loopback server that records each request and answers with `reply`. */
interface Seen { method: string; url: string; headers: IncomingMessage['headers']; body: string }
let server: Server;
let baseUrl: string;
const seen: Seen[] = [];
let reply: (req: Seen, res: ServerResponse) => void = (_req, res) => res.end();

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      reply(s, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

describe('a plugin endpoint using verifyRequest, called like MaiRust calls it', () => {
  test('accepts a signed POST made with signHookCall and refuses one with a changed body', async () => {
    reply = (req, res) => {
      const r = verifyRequest({ secrets: [secretNew], pluginId, headers: req.headers, body: req.body });
      json(res, r.ok ? 200 : 401, r);
    };
    const headers = { 'content-type': 'application/json', ...signHookCall({ secrets: [secretNew], pluginId, body }) };
    const good = await fetch(`${baseUrl}/hook`, { method: 'POST', headers, body });
    assert.equal(good.status, 200);
    assert.deepEqual(await good.json(), { ok: true });
    const bad = await fetch(`${baseUrl}/hook`, { method: 'POST', headers, body: body + ' ' });
    assert.equal(bad.status, 401);
    assert.deepEqual(await bad.json(), { ok: false, reason: 'mismatch' });
  });
});

describe('createCallbackClient', () => {
  const token = 'plt_abcDEF0123456789';
  const response: HookResponse = { plugin_id: pluginId, action: 'tag', tags: ['newsletter'], score: 2.5, metadata: { list: 'weekly' } };

  test('callback POSTs the response as JSON to /internal/plugins/callback/:message_id with the bearer token', async () => {
    seen.length = 0;
    reply = (_req, res) => json(res, 200, { accepted: true });
    const client = createCallbackClient({ baseUrl, token });
    assert.deepEqual(await client.callback('msg-42', response), { accepted: true });
    assert.equal(seen.length, 1);
    const req = seen[0];
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/internal/plugins/callback/msg-42');
    assert.equal(req.headers.authorization, `Bearer ${token}`);
    assert.equal(req.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(req.body), response);
  });

  test('getMessage GETs /internal/plugins/messages/:id, keeps a base path and escapes the id', async () => {
    seen.length = 0;
    const message = { message_id: 'a/b?c', tenant_id: 't1', mailbox: 'alice@example.com' };
    reply = (_req, res) => json(res, 200, message);
    const client = createCallbackClient({ baseUrl: `${baseUrl}/mairust/`, token });
    assert.deepEqual(await client.getMessage('a/b?c'), message);
    assert.equal(seen[0].method, 'GET');
    assert.equal(seen[0].url, '/mairust/internal/plugins/messages/a%2Fb%3Fc');
    assert.equal(seen[0].headers.authorization, `Bearer ${token}`);
    assert.equal(seen[0].body, '');
  });

  test('a refused write (403) rejects with PluginApiError carrying the status and the parsed body', async () => {
    reply = (_req, res) => json(res, 403, { error: 'forbidden', message: 'write_tags not granted' });
    const client = createCallbackClient({ baseUrl, token });
    await assert.rejects(client.callback('m1', response), (err: unknown) => {
      assert.ok(err instanceof PluginApiError);
      assert.equal(err.kind, 'http');
      assert.equal(err.status, 403);
      assert.deepEqual(err.body, { error: 'forbidden', message: 'write_tags not granted' });
      assert.match(err.message, /POST \/internal\/plugins\/callback\/m1 answered 403/);
      return true;
    });
  });

  test('a server that never answers rejects with kind timeout', async () => {
    reply = () => { /* never answers; closed by closeAllConnections in after() */ };
    const client = createCallbackClient({ baseUrl, token, timeoutMs: 50 });
    await assert.rejects(client.getMessage('m1'), (err: unknown) => err instanceof PluginApiError && err.kind === 'timeout' && /timed out after 50 ms/.test(err.message));
  });

  test('a closed port rejects with kind network', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const client = createCallbackClient({ baseUrl: `http://127.0.0.1:${port}`, token });
    await assert.rejects(client.getMessage('m1'), (err: unknown) => err instanceof PluginApiError && err.kind === 'network');
  });

  test('refuses a bad token, base URL, timeout or message id before sending anything', async () => {
    assert.throws(() => createCallbackClient({ baseUrl, token: 'mk_live_x' }), /plugin token \(plt_…\)/);
    assert.throws(() => createCallbackClient({ baseUrl, token: 'plt_a\r\nX-Evil: 1' }), /plugin token/);
    assert.throws(() => createCallbackClient({ baseUrl: 'not a url', token }), /baseUrl is not a URL/);
    assert.throws(() => createCallbackClient({ baseUrl: 'ftp://example.com', token }), /http\(s\) URL/);
    assert.throws(() => createCallbackClient({ baseUrl, token, timeoutMs: 0 }), /positive/);
    seen.length = 0;
    await assert.rejects(createCallbackClient({ baseUrl, token }).callback('', response), /non-empty/);
    assert.equal(seen.length, 0);
  });
});
