/**
 * The `http` plugin executor (SPEC §6 signing, SPEC §7 protocols and egress) against a real
 * node:http server on loopback. No database: the same in both shapes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { callHttpPlugin, type HttpCall } from '../../src/hooks/executors/http.js';
import { PLUGIN_ID_HEADER } from '../../src/hooks/signing.js';
import { MAX_REPLY_BYTES } from '../../src/hooks/executors/types.js';
import { verifyWebhookSignature } from '../../src/webhooks/signature.js';

const SECRET = 'plsec_test_0123456789';
const PLUGIN_ID = 'com.example.spam';

/** Names resolve only through this table (no real DNS in tests). */
const resolver: HttpCall['resolver'] = {
  resolve4: async (name: string) => {
    if (name === 'plugin.test') return ['127.0.0.1'];
    throw Object.assign(new Error(`queryA ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  },
  resolve6: async (name: string) => {
    throw Object.assign(new Error(`queryAaaa ENODATA ${name}`), { code: 'ENODATA' });
  },
};

interface Seen {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

describe('http plugin executor', () => {
  let server: http.Server;
  let base: string;
  let port: number;
  const seen: Seen[] = [];
  const hanging = new Set<http.ServerResponse>();

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        seen.push({ path: req.url ?? '', headers: req.headers, body });
        switch (req.url) {
          case '/verify': {
            // What a plugin does: verify the raw body against its secret(s), then answer.
            const v = verifyWebhookSignature({
              secrets: ['plsec_old', SECRET],
              id: req.headers['x-mairust-plugin-id'] as string | undefined,
              timestamp: req.headers['x-mairust-timestamp'] as string | undefined,
              signature: req.headers['x-mairust-signature'] as string | undefined,
              body,
            });
            res.writeHead(v.ok ? 200 : 401, { 'Content-Type': 'application/json' });
            res.end(JSON.stringify({ plugin_id: PLUGIN_ID, action: 'tag', tags: ['checked'], echo: JSON.parse(body.toString('utf8')) }));
            return;
          }
          case '/hang':
            hanging.add(res); // never answered; closed in after()
            return;
          case '/slow-body':
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.write('{"action":');
            hanging.add(res);
            return;
          case '/500':
            res.writeHead(500, { 'Content-Type': 'application/json' });
            res.end('{"error":"boom"}');
            return;
          case '/redirect':
            res.writeHead(302, { Location: '/verify' });
            res.end();
            return;
          case '/huge': {
            // Chunked (no Content-Length): the executor must count the bytes itself.
            res.writeHead(200, { 'Content-Type': 'application/json' });
            const chunk = Buffer.alloc(64 * 1024, 0x20);
            let sent = 0;
            const more = () => {
              while (sent <= MAX_REPLY_BYTES + chunk.length) {
                sent += chunk.length;
                if (!res.write(chunk)) return void res.once('drain', more);
              }
              res.end('{}');
            };
            res.on('error', () => undefined);
            more();
            return;
          }
          case '/huge-declared':
            res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(MAX_REPLY_BYTES + 1) });
            res.end('{}'); // the declared length alone is enough to refuse it
            return;
          case '/bad-json':
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.end('{"action": "allow"} {"again": true}');
            return;
          default:
            res.writeHead(404);
            res.end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const call = (path: string, extra: Partial<HttpCall> = {}) =>
    callHttpPlugin({ endpoint: `${base}${path}`, pluginId: PLUGIN_ID, secrets: [SECRET], payload: { hook_type: 'pre_receive', message_id: 'm1' }, timeoutMs: 2000, allowPrivate: true, resolver, ...extra });

  it('signs the request so that the plugin verifies it, and returns the parsed reply', async () => {
    const payload = { hook_type: 'pre_receive', message_id: 'm1', text: 'héllo' };
    const r = await call('/verify', { payload });
    assert.equal(r.ok, true, JSON.stringify(r));
    if (!r.ok) return;
    assert.deepEqual(r.response, { plugin_id: PLUGIN_ID, action: 'tag', tags: ['checked'], echo: payload });
    const req = seen.at(-1)!;
    assert.equal(req.headers[PLUGIN_ID_HEADER.toLowerCase()], PLUGIN_ID);
    assert.equal(req.headers['content-type'], 'application/json');
    assert.match(String(req.headers['x-mairust-signature']), /^sha256=[0-9a-f]{64}$/);
    assert.equal(r.bytesOut, Buffer.byteLength(JSON.stringify(payload)));
    assert.equal(r.bytesOut, req.body.length);
    assert.ok(r.bytesIn > 0);
  });

  it('a wrong secret is detected by the plugin (401 → error)', async () => {
    const r = await call('/verify', { secrets: ['plsec_wrong'] });
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.kind, 'error');
      assert.equal(r.message, 'endpoint answered HTTP 401');
    }
  });

  it('no answer within the timeout → timeout', async () => {
    const r = await call('/hang', { timeoutMs: 300 });
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.kind, 'timeout');
      assert.equal(r.message, 'no answer within 300 ms');
    }
  });

  it('a body that stops half way is a timeout too', async () => {
    const r = await call('/slow-body', { timeoutMs: 300 });
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.kind, 'timeout');
      assert.equal(r.message, 'no answer within 300 ms');
    }
  });

  it('a cancelled call is reported as a timeout', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await call('/hang', { timeoutMs: 10_000, signal: ac.signal });
    assert.equal(r.ok, false);
    if (!r.ok) assert.deepEqual([r.kind, r.message], ['timeout', 'the call was cancelled']);
  });

  it('HTTP 500 → error', async () => {
    const r = await call('/500');
    assert.equal(r.ok, false);
    if (!r.ok) assert.deepEqual([r.kind, r.message], ['error', 'endpoint answered HTTP 500']);
  });

  it('a redirect is not followed', async () => {
    const before = seen.length;
    const r = await call('/redirect');
    assert.equal(r.ok, false);
    if (!r.ok) assert.deepEqual([r.kind, r.message], ['error', 'endpoint answered HTTP 302; redirects are not followed']);
    assert.deepEqual(
      seen.slice(before).map((s) => s.path),
      ['/redirect'],
    );
  });

  it('a reply over 1 MiB → error (counted, and by Content-Length)', async () => {
    const r = await call('/huge');
    assert.equal(r.ok, false);
    if (!r.ok) assert.deepEqual([r.kind, r.message], ['error', `reply exceeds ${MAX_REPLY_BYTES} bytes`]);
    assert.ok(r.bytesIn > MAX_REPLY_BYTES);
    const d = await call('/huge-declared');
    assert.equal(d.ok, false);
    if (!d.ok) assert.deepEqual([d.kind, d.message], ['error', `reply exceeds ${MAX_REPLY_BYTES} bytes (Content-Length ${MAX_REPLY_BYTES + 1})`]);
  });

  it('a reply that is not one JSON value → error', async () => {
    const r = await call('/bad-json');
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.kind, 'error');
      assert.match(r.message, /^reply is not one JSON value: /);
    }
  });

  it('a loopback endpoint is refused before connecting unless private addresses are allowed', async () => {
    const before = seen.length;
    const literal = await call('/verify', { allowPrivate: false });
    assert.equal(literal.ok, false);
    if (!literal.ok) assert.deepEqual([literal.kind, literal.message], ['error', 'refused: 127.0.0.1 is loopback (RFC 1122); private endpoints are not allowed for this plugin']);
    // A name is checked by the addresses it resolves to.
    const named = await call('/verify', { allowPrivate: false, endpoint: `http://plugin.test:${port}/verify` });
    assert.equal(named.ok, false);
    if (!named.ok) assert.equal(named.message, 'refused: plugin.test resolves to 127.0.0.1, which is loopback (RFC 1122); private endpoints are not allowed for this plugin');
    assert.equal(seen.length, before, 'no request reached the server');
    assert.equal(literal.bytesOut, 0);
    // Allowed: the socket goes to the checked address.
    const allowed = await call('/verify', { endpoint: `http://plugin.test:${port}/verify` });
    assert.equal(allowed.ok, true, JSON.stringify(allowed));
    assert.equal(seen.at(-1)?.headers.host, `plugin.test:${port}`);
  });

  it('unresolvable host, refused connection and bad URLs → error', async () => {
    const dns = await call('/', { endpoint: 'http://nowhere.test/' });
    assert.equal(dns.ok, false);
    if (!dns.ok) assert.equal(dns.message, 'host nowhere.test has no A or AAAA records');
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = await call('/', { endpoint: `http://127.0.0.1:${closedPort}/` });
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.equal(refused.message, `connection to 127.0.0.1:${closedPort} failed: ECONNREFUSED`);
    const bad = await call('/', { endpoint: 'ftp://127.0.0.1/' });
    assert.equal(bad.ok, false);
    if (!bad.ok) assert.equal(bad.message, 'endpoint scheme ftp: is not http: or https:');
  });
});
