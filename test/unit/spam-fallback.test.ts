/**
 * rspamd failing in every way a network service can, against real sockets on loopback: a closed
 * port, a server that accepts and never answers, answers too large, HTTP errors, garbage. In each
 * case the built-in rules decide, quickly, and the failure is counted and logged (rate-limited).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { createMetrics } from '../../src/observability/metrics.js';
import { createSpamChecker, type SpamCheckInput } from '../../src/spam/index.js';
import { WARN_INTERVAL_MS } from '../../src/spam/fallback-checker.js';
import type { SpamConfig } from '../../src/config/sections/spam.js';
import { bufferSource, capturedLogger, fixture } from '../fixtures/spam/support.js';

const servers: { close(): void }[] = [];
after(() => {
  for (const s of servers) s.close();
});

function config(url: string, rspamd: Partial<SpamConfig['rspamd']> = {}): SpamConfig {
  return {
    rspamd: { url, timeout_ms: 5000, max_response_bytes: 1048576, retry_after_ms: 0, ...rspamd },
    builtin: { add_header_score: 5, reject_score: 15, sample_bytes: 262144 },
  };
}

function input(message = fixture('gtube.eml')): SpamCheckInput {
  return { source: bufferSource(message), remoteAddress: '192.0.2.10', helo: 'mail.example.com', mailFrom: 'alice@example.com', recipients: ['bob@example.org'] };
}

async function listen(server: net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({ close: () => server.close() });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A loopback port with nothing listening (connection refused). */
async function closedPortUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** Accepts connections and reads everything, never answers. */
async function silentServer(): Promise<{ url: string; connections: () => number }> {
  const sockets = new Set<net.Socket>();
  let count = 0;
  const server = net.createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.resume();
    socket.on('close', () => sockets.delete(socket));
  });
  const url = await listen(server);
  servers.push({ close: () => sockets.forEach((s) => s.destroy()) });
  return { url, connections: () => count };
}

interface Recorded {
  method?: string;
  url?: string;
  rawHeaders: string[];
  body: Buffer;
}

/** An HTTP server whose answer the test chooses; it records every request. */
async function httpServer(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ url: string; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) });
      answer(req, res);
    });
  });
  const url = await listen(server);
  servers.push({ close: () => server.closeAllConnections() });
  return { url, requests };
}

const RSPAMD_ANSWER = JSON.stringify({ score: 6.5, required_score: 15, action: 'add header', symbols: { HFILTER_HOSTNAME_UNKNOWN: { score: 2.5 }, RDNS_NONE: { score: 1 } } });

async function metricLine(metrics: ReturnType<typeof createMetrics>, pattern: RegExp): Promise<string | undefined> {
  const { body } = await metrics.render();
  return body.split('\n').find((l) => pattern.test(l));
}

function warnings(entries: Record<string, unknown>[]) {
  return entries.filter((e) => e.level === 'warn');
}

describe('spam checker: rspamd failures fall back to the built-in rules', () => {
  test('rspamd down (connection refused): built-in verdict in well under a second, GTUBE still rejected', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const log = capturedLogger();
    const checker = createSpamChecker(config(await closedPortUrl()), { logger: log.logger, metrics });
    const started = Date.now();
    const v = await checker.check(input());
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    assert.equal(v.source, 'builtin');
    assert.equal(v.action, 'reject');
    assert.deepEqual(v.symbols, { GTUBE: 1000 });
    assert.match(v.header, /source=builtin/);
    assert.equal(await metricLine(metrics, /^mairust_spam_rspamd_failures_total\{reason="unreachable"\}/), 'mairust_spam_rspamd_failures_total{reason="unreachable"} 1');
    assert.equal(await metricLine(metrics, /^mairust_spam_checks_total\{/), 'mairust_spam_checks_total{source="builtin",action="reject"} 1');
    const [warn] = warnings(log.entries());
    assert.equal(warn.component, 'spam');
    assert.equal(warn.reason, 'unreachable');
    assert.match(String(warn.error), /ECONNREFUSED/);
  });

  test('rspamd hangs: built-in verdict within the timeout plus a small margin, then rspamd is not asked for retry_after_ms', async () => {
    const silent = await silentServer();
    const metrics = createMetrics({ defaultMetrics: false });
    const log = capturedLogger();
    const checker = createSpamChecker(config(silent.url, { timeout_ms: 300, retry_after_ms: 60000 }), { logger: log.logger, metrics });
    let started = Date.now();
    const v = await checker.check(input());
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 1300, `took ${took} ms`);
    assert.equal(v.source, 'builtin');
    assert.equal(v.action, 'reject');

    started = Date.now();
    const again = await checker.check(input(fixture('clean.eml')));
    assert.ok(Date.now() - started < 250, 'the second check does not wait for rspamd again');
    assert.equal(again.source, 'builtin');
    assert.equal(again.action, 'no action');
    assert.equal(silent.connections(), 1);
    assert.equal(await metricLine(metrics, /reason="timeout"/), 'mairust_spam_rspamd_failures_total{reason="timeout"} 1');
    assert.equal(await metricLine(metrics, /reason="recently_failed"/), 'mairust_spam_rspamd_failures_total{reason="recently_failed"} 1');
    const warns = warnings(log.entries());
    assert.equal(warns.length, 1);
    assert.equal(warns[0].error, 'rspamd did not answer within 300 ms');
    assert.equal(warns[0].retry_after_ms, 60000);
  });

  test('an answer larger than max_response_bytes is not read: built-in verdict (declared and chunked)', async () => {
    const declared = await httpServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(2 * 1024 * 1024) });
      res.end('{"score":' + ' '.repeat(2 * 1024 * 1024 - 9));
    });
    const LIMIT = 64 * 1024 * 1024;
    let written = 0;
    let closed = false;
    const chunked = await httpServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const block = Buffer.alloc(16384, 0x20);
      res.on('close', () => {
        closed = true;
      });
      const pump = () => {
        while (!closed && written < LIMIT) {
          written += block.length;
          if (!res.write(block)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    for (const [url, error] of [
      [declared.url, 'rspamd answer of 2097152 bytes exceeds 65536'],
      [chunked.url, 'rspamd answer exceeds 65536 bytes'],
    ]) {
      const metrics = createMetrics({ defaultMetrics: false });
      const log = capturedLogger();
      const checker = createSpamChecker(config(url, { max_response_bytes: 65536 }), { logger: log.logger, metrics });
      const started = Date.now();
      const v = await checker.check(input());
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
      assert.equal(v.source, 'builtin');
      assert.equal(v.action, 'reject');
      assert.equal(await metricLine(metrics, /reason="too_large"/), 'mairust_spam_rspamd_failures_total{reason="too_large"} 1', url);
      assert.equal(warnings(log.entries())[0].error, error);
    }
    assert.ok(written < LIMIT, `the chunked answer was not read to its end (${written} bytes sent)`);
  });

  test('HTTP errors and unusable answers: built-in verdict, reason counted, one warning per minute', async () => {
    let status = 500;
    let body = 'internal error\r\nsecret: no';
    const server = await httpServer((_req, res) => {
      res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(body);
    });
    let now = 1_000_000;
    const metrics = createMetrics({ defaultMetrics: false });
    const log = capturedLogger();
    const checker = createSpamChecker(config(server.url), { logger: log.logger, metrics, now: () => now });

    assert.equal((await checker.check(input(fixture('clean.eml')))).source, 'builtin');
    status = 200;
    body = '{"score": "high"}';
    now += 1000;
    assert.equal((await checker.check(input(fixture('clean.eml')))).source, 'builtin');
    now += WARN_INTERVAL_MS;
    assert.equal((await checker.check(input(fixture('clean.eml')))).source, 'builtin');

    assert.equal(await metricLine(metrics, /reason="http_status"/), 'mairust_spam_rspamd_failures_total{reason="http_status"} 1');
    assert.equal(await metricLine(metrics, /reason="bad_response"/), 'mairust_spam_rspamd_failures_total{reason="bad_response"} 2');
    const warns = warnings(log.entries());
    assert.equal(warns.length, 2, 'the second failure, within a minute of the first, is not logged');
    assert.equal(warns[0].reason, 'http_status');
    assert.equal(warns[0].error, 'rspamd answered HTTP 500: internal error secret: no');
    assert.equal(warns[1].reason, 'bad_response');
    assert.equal(warns[1].failures, 2, 'the warning says how many failures it stands for');
  });

  test('after retry_after_ms rspamd is asked again, and its recovery is logged', async () => {
    let failing = true;
    const server = await httpServer((_req, res) => {
      if (failing) {
        res.writeHead(503).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(RSPAMD_ANSWER);
    });
    let now = 0;
    const log = capturedLogger();
    const checker = createSpamChecker(config(server.url, { retry_after_ms: 10000 }), { logger: log.logger, now: () => now });
    assert.equal((await checker.check(input(fixture('clean.eml')))).source, 'builtin');
    failing = false;
    now = 9999;
    assert.equal((await checker.check(input(fixture('clean.eml')))).source, 'builtin');
    assert.equal(server.requests.length, 1, 'not asked within retry_after_ms');
    now = 10000;
    const v = await checker.check(input(fixture('clean.eml')));
    assert.equal(v.source, 'rspamd');
    assert.equal(server.requests.length, 2);
    assert.ok(log.entries().some((e) => e.level === 'info' && /answers again/.test(String(e.message))));
  });
});

describe('spam checker: the request rspamd receives', () => {
  test('POST /checkv2 with the message streamed as the body and the SMTP context in headers', async () => {
    const server = await httpServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(RSPAMD_ANSWER));
    const metrics = createMetrics({ defaultMetrics: false });
    const checker = createSpamChecker(config(`${server.url}/`), { logger: capturedLogger().logger, metrics });
    const message = Buffer.concat([fixture('japanese-iso2022jp.eml'), Buffer.alloc(300_000, 0x61)]);
    const v = await checker.check({
      source: bufferSource(message, 7000),
      remoteAddress: '2001:db8::25',
      helo: 'mx.example.jp',
      hostname: 'mx.example.jp',
      mailFrom: 'taro@example.jp',
      recipients: ['hanako@example.org', '花子@例え.jp'],
      authenticatedUser: 'taro@example.jp',
      queueId: 'm-42',
    });
    assert.deepEqual(v, {
      score: 6.5,
      requiredScore: 15,
      action: 'add header',
      symbols: { HFILTER_HOSTNAME_UNKNOWN: 2.5, RDNS_NONE: 1 },
      source: 'rspamd',
      header:
        'X-Spam-Flag: YES\r\nX-Spam-Score: 6.50\r\nX-Spam-Status: Yes, score=6.50 required=15.00 action="add header"\r\n\tsource=rspamd\r\n' +
        'X-Spam-Symbols: HFILTER_HOSTNAME_UNKNOWN(2.50), RDNS_NONE(1.00)\r\n',
    });
    const [req] = server.requests;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/checkv2');
    assert.ok(req.body.equals(message), 'the body is the message, byte for byte');
    const pairs: [string, string][] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) pairs.push([req.rawHeaders[i].toLowerCase(), req.rawHeaders[i + 1]]);
    const values = (name: string) => pairs.filter(([k]) => k === name).map(([, val]) => Buffer.from(val, 'latin1').toString('utf8'));
    assert.deepEqual(values('content-length'), [String(message.length)]);
    assert.deepEqual(values('ip'), ['2001:db8::25']);
    assert.deepEqual(values('helo'), ['mx.example.jp']);
    assert.deepEqual(values('hostname'), ['mx.example.jp']);
    assert.deepEqual(values('from'), ['taro@example.jp']);
    assert.deepEqual(values('rcpt'), ['hanako@example.org', '花子@例え.jp'], 'one Rcpt header per recipient, UTF-8 as bytes');
    assert.deepEqual(values('user'), ['taro@example.jp']);
    assert.deepEqual(values('queue-id'), ['m-42']);
    assert.equal(await metricLine(metrics, /^mairust_spam_checks_total\{/), 'mairust_spam_checks_total{source="rspamd",action="add header"} 1');
  });
});

describe('spam checker: configuration and errors', () => {
  test('without spam.rspamd.url only the built-in rules run', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const checker = createSpamChecker(config(''), { logger: capturedLogger().logger, metrics });
    const v = await checker.check(input());
    assert.equal(v.source, 'builtin');
    assert.equal(v.action, 'reject');
    assert.equal(await metricLine(metrics, /^mairust_spam_rspamd_failures_total\{/), undefined, 'not a failure: rspamd is not configured');
    // Rebuilding the checker (config reload) reuses the registered metrics.
    assert.doesNotThrow(() => createSpamChecker(config(''), { logger: capturedLogger().logger, metrics }));
  });

  test('a message that cannot be read is an error, not a verdict', async () => {
    const broken = {
      size: 100,
      open: () =>
        new Readable({
          read() {
            this.destroy(new Error('spool file vanished'));
          },
        }),
    };
    const server = await httpServer((_req, res) => res.writeHead(200).end(RSPAMD_ANSWER));
    for (const url of ['', server.url]) {
      const checker = createSpamChecker(config(url), { logger: capturedLogger().logger });
      await assert.rejects(checker.check({ ...input(), source: broken }), /spool file vanished/, url || 'builtin only');
    }
  });
});
