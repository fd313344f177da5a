/**
 * The HTTP listener's base: request ids, SPEC §11 error bodies, metrics, security headers and the
 * access log. Most cases go over a real socket (fetch against a listener on port 0); a few use
 * inject() where a real client cannot produce the request (forged X-Forwarded-Proto).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { createHealth } from '../../src/observability/health.js';
import { createHttpServer } from '../../src/http/server.js';
import { ApiError, httpStatusForCode, ERROR_CODES } from '../../src/http/errors.js';

const BODY_LIMIT = 64;

function logCapture() {
  const lines: Record<string, any>[] = [];
  let pending = '';
  const stream = new Writable({
    write(chunk, _e, done) {
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(pending.slice(0, nl)));
        pending = pending.slice(nl + 1);
      }
      done();
    },
  });
  return { stream, lines };
}

function assertSecurityHeaders(res: Response, what: string) {
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff', what);
  const csp = res.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'self'/, what);
  assert.match(csp, /frame-ancestors 'none'/, what);
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer', what);
  assert.equal(res.headers.get('strict-transport-security'), null, `${what}: no HSTS over plain HTTP (RFC 6797 §7.2)`);
}

describe('HTTP server base', () => {
  let app: FastifyInstance;
  let metrics: Metrics;
  let base: string;
  const log = logCapture();

  before(async () => {
    metrics = createMetrics({ defaultMetrics: false });
    const logger = createLogger({ level: 'debug', format: 'json', destination: log.stream });
    app = createHttpServer({ logger, metrics, health: createHealth({}), bodyLimitBytes: BODY_LIMIT });
    app.get('/items/:id', async (req) => ({ data: { id: (req.params as { id: string }).id } }));
    app.get('/boom', async () => {
      throw new Error('kaboom: secret internals at /srv/app.js');
    });
    app.get('/conflict', async () => {
      throw new ApiError('CONFLICT', 'domain example.com already exists', { field: 'name' });
    });
    app.get('/coded', async () => {
      throw Object.assign(new Error('no such mailbox'), { code: 'NOT_FOUND' });
    });
    app.get('/db-down', async () => {
      throw Object.assign(new Error('cannot reach PostgreSQL at postgres://u:***@db/x'), { code: 'DATABASE_UNAVAILABLE' });
    });
    app.post(
      '/things',
      {
        schema: {
          body: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 } } },
          querystring: { type: 'object', properties: { limit: { type: 'integer', maximum: 100 } } },
        },
      },
      async (req) => ({ data: req.body }),
    );
    app.post('/big', { bodyLimit: 4096 }, async () => ({ data: 'ok' }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    assert.ok(addr && typeof addr === 'object');
    base = `http://127.0.0.1:${addr.port}`;
  });

  after(async () => {
    await app.close();
  });

  test('a sane X-Request-Id is echoed and logged; others are replaced', async () => {
    let res = await fetch(`${base}/items/1`, { headers: { 'x-request-id': 'client-req.42' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-request-id'), 'client-req.42');
    await res.arrayBuffer();

    for (const bad of ['a'.repeat(65), 'has space', 'quote"d', '']) {
      res = await fetch(`${base}/items/1`, { headers: { 'x-request-id': bad } });
      const id = res.headers.get('x-request-id') ?? '';
      assert.notEqual(id, bad);
      assert.match(id, /^[0-9a-f-]{36}$/, `generated for ${JSON.stringify(bad)}`);
      await res.arrayBuffer();
    }
    res = await fetch(`${base}/items/1`);
    assert.match(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    await res.arrayBuffer();

    await tick();
    const access = log.lines.find((l) => l.request_id === 'client-req.42' && l.message === 'request completed');
    assert.ok(access, 'access log line carries request_id');
    assert.equal(access.component, 'http');
    assert.equal(access.method, 'GET');
    assert.equal(access.url, '/items/1');
    assert.equal(access.status, 200);
    assert.equal(typeof access.duration_ms, 'number');
    assert.equal(access.remote_addr, '127.0.0.1');
  });

  test('secret query parameters never reach the access log', async () => {
    const res = await fetch(`${base}/items/2?access_token=tok-123&limit=5`, { headers: { 'x-request-id': 'q-secret' } });
    await res.arrayBuffer();
    await tick();
    const line = log.lines.find((l) => l.request_id === 'q-secret' && l.message === 'request completed');
    assert.equal(line?.url, '/items/2?access_token=[redacted]&limit=5');
    assert.ok(!JSON.stringify(log.lines).includes('tok-123'));
  });

  test('unknown route: 404 NOT_FOUND in the SPEC §11 shape, with security headers', async () => {
    const res = await fetch(`${base}/no/such/route?x=1`);
    assert.equal(res.status, 404);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await res.json(), { error: { code: 'NOT_FOUND', message: 'no route for GET /no/such/route', details: {} } });
    assertSecurityHeaders(res, '404');
  });

  test('body over the limit: 413 with the limit in the message', async () => {
    const res = await fetch(`${base}/things`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x'.repeat(200) }),
    });
    assert.equal(res.status, 413);
    assert.deepEqual(await res.json(), {
      error: {
        code: 'INVALID_REQUEST',
        message: `request body exceeds the limit of ${BODY_LIMIT} bytes`,
        details: { limit_bytes: BODY_LIMIT },
      },
    });
    assertSecurityHeaders(res, '413');
  });

  test("a route's own body limit is the one reported", async () => {
    const res = await fetch(`${base}/big`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'y'.repeat(5000) });
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as any).error.message, 'request body exceeds the limit of 4096 bytes');
    const ok = await fetch(`${base}/big`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'y'.repeat(1000) });
    assert.equal(ok.status, 200, 'a body over the server default but under the route limit is accepted');
    await ok.arrayBuffer();
  });

  test('500: INTERNAL_ERROR with no message detail and no stack; the stack is logged', async () => {
    const res = await fetch(`${base}/boom`, { headers: { 'x-request-id': 'boom-1' } });
    assert.equal(res.status, 500);
    const text = await res.text();
    assert.deepEqual(JSON.parse(text), { error: { code: 'INTERNAL_ERROR', message: 'internal error', details: { request_id: 'boom-1' } } });
    assert.ok(!text.includes('kaboom') && !text.includes('.js') && !text.includes(' at '), text);
    assertSecurityHeaders(res, '500');
    await tick();
    const logged = log.lines.find((l) => l.request_id === 'boom-1' && l.level === 'error');
    assert.ok(logged?.err?.stack?.includes('kaboom'), 'the operator gets the stack');
  });

  test('typed errors map to their SPEC statuses', async () => {
    let res = await fetch(`${base}/conflict`);
    assert.equal(res.status, 409);
    assert.deepEqual(await res.json(), { error: { code: 'CONFLICT', message: 'domain example.com already exists', details: { field: 'name' } } });
    res = await fetch(`${base}/coded`);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: { code: 'NOT_FOUND', message: 'no such mailbox', details: {} } });
    res = await fetch(`${base}/db-down`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as any;
    assert.equal(body.error.code, 'SERVICE_UNAVAILABLE');
    assert.ok(!JSON.stringify(body).includes('PostgreSQL'), 'which backend is down stays in the log');

    const expected: Record<string, number> = {
      INVALID_REQUEST: 400, UNAUTHORIZED: 401, FORBIDDEN: 403, NOT_FOUND: 404, CONFLICT: 409,
      VALIDATION_ERROR: 422, RATE_LIMITED: 429, INTERNAL_ERROR: 500, SERVICE_UNAVAILABLE: 503,
    };
    assert.deepEqual([...ERROR_CODES].sort(), Object.keys(expected).sort());
    for (const code of ERROR_CODES) assert.equal(httpStatusForCode(code), expected[code], code);
  });

  test('validation: body → 422 VALIDATION_ERROR with fields; query → 400; broken JSON → 400', async () => {
    let res = await fetch(`${base}/things`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 422);
    assert.deepEqual(await res.json(), {
      error: { code: 'VALIDATION_ERROR', message: 'request body failed validation', details: { errors: [{ path: '/name', message: "must have required property 'name'" }] } },
    });
    res = await fetch(`${base}/things?limit=500`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"a"}' });
    assert.equal(res.status, 400);
    const q = (await res.json()) as any;
    assert.equal(q.error.code, 'INVALID_REQUEST');
    assert.equal(q.error.details.errors[0].path, '/limit');
    res = await fetch(`${base}/things`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":' });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as any).error.code, 'INVALID_REQUEST');
  });

  test('/metrics counts requests by route pattern, not raw URL', async () => {
    for (const id of ['a', 'b', 'c']) await (await fetch(`${base}/items/${id}`)).arrayBuffer();
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^mairust_api_requests_total\{method="GET",route="\/items\/:id",status="200"\} \d+$/m);
    assert.match(text, /^mairust_api_requests_total\{method="GET",route="<unmatched>",status="404"\} \d+$/m);
    assert.match(text, /^mairust_api_duration_seconds_count\{method="GET",route="\/items\/:id"\} \d+$/m);
    assert.doesNotMatch(text, /route="\/items\/a"/);
  });

  test('security headers on ordinary responses', async () => {
    const res = await fetch(`${base}/items/9`);
    assertSecurityHeaders(res, '200');
    await res.arrayBuffer();
  });

  test('HSTS only when the request arrived over TLS', async () => {
    const trusted = createHttpServer({
      logger: createLogger({ level: 'silent', format: 'json' }),
      metrics: createMetrics({ defaultMetrics: false }),
      health: createHealth({}),
      trustProxy: true,
    });
    try {
      const viaTls = await trusted.inject({ url: '/health/live', headers: { 'x-forwarded-proto': 'https' } });
      assert.equal(viaTls.statusCode, 200);
      assert.equal(viaTls.headers['strict-transport-security'], 'max-age=31536000');
      const plain = await trusted.inject({ url: '/health/live' });
      assert.equal(plain.headers['strict-transport-security'], undefined);
    } finally {
      await trusted.close();
    }
    // Without trustProxy a forged header changes nothing.
    const forged = await app.inject({ url: '/health/live', headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(forged.headers['strict-transport-security'], undefined);
  });

  test('requests arriving during shutdown get a SPEC-shaped 503 and the connection closes', async () => {
    const closingApp = createHttpServer({
      logger: createLogger({ level: 'silent', format: 'json' }),
      metrics: createMetrics({ defaultMetrics: false }),
      health: createHealth({}),
    });
    let release!: () => void;
    let started!: () => void;
    const inHandler = new Promise<void>((r) => (started = r));
    closingApp.get('/slow', async () => {
      started();
      await new Promise<void>((r) => (release = r));
      return { data: 'done' };
    });
    await closingApp.listen({ host: '127.0.0.1', port: 0 });
    const { port } = closingApp.server.address() as { port: number };
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (d) => (received += d.toString()));
    const ended = new Promise<void>((r) => socket.on('close', () => r()));
    // Request 1 is in flight when close() begins; request 2 is pipelined on the same connection.
    socket.write('GET /slow HTTP/1.1\r\nHost: t\r\n\r\n');
    await inHandler;
    const closed = closingApp.close();
    await new Promise((r) => setTimeout(r, 50));
    socket.write('GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n');
    release();
    await closed;
    await ended;
    const [first, second] = received.split(/(?=HTTP\/1\.1 )/);
    assert.match(first, /^HTTP\/1\.1 200 /, 'the in-flight request finishes normally');
    assert.match(second, /^HTTP\/1\.1 503 /);
    assert.match(second, /\r\nconnection: close\r\n/i);
    assert.match(second, /\r\nx-content-type-options: nosniff\r\n/i);
    const body = JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4));
    assert.deepEqual(body, { error: { code: 'SERVICE_UNAVAILABLE', message: 'server is shutting down; retry on another node', details: {} } });
  });
});
