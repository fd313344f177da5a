import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RspamdError } from '../../src/spam/errors.js';
import { MAX_HEADER_VALUE, MAX_RCPT_HEADERS, headerValue, rspamdHeaders } from '../../src/spam/rspamd-client.js';
import { MAX_SYMBOLS, parseRspamdResponse } from '../../src/spam/rspamd-response.js';
import { MAX_HEADER_SYMBOLS, formatSpamHeader } from '../../src/spam/spam-header.js';
import { bufferSource } from '../fixtures/spam/support.js';

function badResponse(body: string, message: RegExp) {
  assert.throws(
    () => parseRspamdResponse(body),
    (err: unknown) => err instanceof RspamdError && err.reason === 'bad_response' && message.test(err.message),
    body.slice(0, 60),
  );
}

describe('rspamd /checkv2 answer', () => {
  test('score, required score, action and symbol scores are read', () => {
    const body = JSON.stringify({
      is_skipped: false,
      score: 7.3,
      required_score: 15,
      action: 'add header',
      symbols: {
        RDNS_NONE: { name: 'RDNS_NONE', score: 1, metric_score: 1, description: 'Cannot resolve reverse DNS' },
        HFILTER_HOSTNAME_UNKNOWN: { name: 'HFILTER_HOSTNAME_UNKNOWN', score: 2.5, options: ['x'] },
        MIME_GOOD: { name: 'MIME_GOOD', score: -0.1 },
      },
      messages: {},
    });
    assert.deepEqual(parseRspamdResponse(body), {
      score: 7.3,
      requiredScore: 15,
      action: 'add header',
      symbols: { RDNS_NONE: 1, HFILTER_HOSTNAME_UNKNOWN: 2.5, MIME_GOOD: -0.1 },
    });
  });

  test('an answer that cannot be trusted is refused, never read as "no action"', () => {
    badResponse('<html>502 Bad Gateway</html>', /not JSON/);
    badResponse('[1,2]', /not a JSON object/);
    badResponse('{"required_score":15,"action":"reject"}', /"score" is not a number/);
    badResponse('{"score":"5","required_score":15,"action":"reject"}', /"score" is not a number/);
    badResponse('{"score":5,"action":"reject"}', /"required_score" is not a number/);
    badResponse('{"score":5,"required_score":15,"action":"explode"}', /unknown action "explode"/);
    badResponse('{"score":5,"required_score":15}', /unknown action "undefined"/);
    badResponse('{"score":5,"required_score":15,"action":"reject","symbols":[]}', /"symbols" is not an object/);
  });

  test('rspamd actions outside the metric are mapped: discard → reject, quarantine → add header', () => {
    assert.equal(parseRspamdResponse('{"score":20,"required_score":15,"action":"discard"}').action, 'reject');
    assert.equal(parseRspamdResponse('{"score":9,"required_score":15,"action":"quarantine"}').action, 'add header');
  });

  test('symbols with unsafe names or without a numeric score are dropped; their count is bounded', () => {
    const symbols: Record<string, unknown> = {
      'EVIL\r\nX-Injected: 1': { score: 1 },
      'WITH SPACE': { score: 1 },
      NO_SCORE: { name: 'NO_SCORE' },
      STRING_SCORE: { score: '1' },
      GOOD: { score: 0.5 },
    };
    for (let i = 0; i < MAX_SYMBOLS + 50; i++) symbols[`S${i}`] = { score: 0 };
    const parsed = parseRspamdResponse(JSON.stringify({ score: 1, required_score: 15, action: 'no action', symbols }));
    assert.equal(parsed.symbols.GOOD, 0.5);
    for (const k of Object.keys(parsed.symbols)) assert.match(k, /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/);
    assert.equal(Object.keys(parsed.symbols).length, MAX_SYMBOLS);
  });
});

describe('X-Spam-* header fields', () => {
  test('flag, score, status and symbols by weight', () => {
    const header = formatSpamHeader({
      score: 7.3,
      requiredScore: 15,
      action: 'add header',
      symbols: { MIME_GOOD: -0.1, RDNS_NONE: 1, HFILTER_HOSTNAME_UNKNOWN: 2.5 },
      source: 'rspamd',
    });
    assert.equal(
      header,
      'X-Spam-Flag: YES\r\n' +
        'X-Spam-Score: 7.30\r\n' +
        'X-Spam-Status: Yes, score=7.30 required=15.00 action="add header"\r\n' +
        '\tsource=rspamd\r\n' +
        'X-Spam-Symbols: HFILTER_HOSTNAME_UNKNOWN(2.50), RDNS_NONE(1.00),\r\n' +
        '\tMIME_GOOD(-0.10)\r\n',
    );
    const long = formatSpamHeader({ score: 1000, requiredScore: 15, action: 'rewrite subject', symbols: {}, source: 'builtin' });
    assert.equal(long, 'X-Spam-Flag: YES\r\nX-Spam-Score: 1000.00\r\nX-Spam-Status: Yes, score=1000.00 required=15.00 action="rewrite subject"\r\n\tsource=builtin\r\n');
    const greylist = formatSpamHeader({ score: 4.2, requiredScore: 15, action: 'greylist', symbols: {}, source: 'rspamd' });
    assert.equal(greylist, 'X-Spam-Score: 4.20\r\nX-Spam-Status: No, score=4.20 required=15.00 action="greylist" source=rspamd\r\n');
  });

  test('long symbol lists are folded below 78 characters and bounded', () => {
    const symbols: Record<string, number> = {};
    for (let i = 0; i < MAX_HEADER_SYMBOLS + 7; i++) symbols[`SYMBOL_NUMBER_${String(i).padStart(3, '0')}`] = 1;
    const header = formatSpamHeader({ score: 57, requiredScore: 15, action: 'reject', symbols, source: 'rspamd' });
    const lines = header.split('\r\n').slice(0, -1);
    for (const line of lines) assert.ok(line.length <= 78, line);
    const field = header.slice(header.indexOf('X-Spam-Symbols:')).replace(/\r\n\t/g, ' ');
    assert.equal((field.match(/SYMBOL_NUMBER_/g) ?? []).length, MAX_HEADER_SYMBOLS);
    assert.match(field, /, \+7 more\r\n$/);
    assert.ok(lines.slice(1).every((l) => /^(X-Spam-[A-Za-z]+: |\t)/.test(l)), 'continuation lines start with TAB');
  });
});

describe('rspamd request headers', () => {
  const source = bufferSource('Subject: x\r\n\r\nbody\r\n');

  test('IP, Helo, Hostname, From, one Rcpt per recipient, User, Queue-Id, Content-Length', () => {
    const h = rspamdHeaders(
      {
        source,
        remoteAddress: '192.0.2.10',
        helo: 'mail.example.com',
        hostname: 'mail.example.com',
        mailFrom: 'alice@example.com',
        recipients: ['bob@example.org', 'carol@example.org'],
        authenticatedUser: 'alice@example.com',
        queueId: 'q-123',
      },
      source.size,
    );
    assert.deepEqual(h, {
      'Content-Length': String(source.size),
      IP: '192.0.2.10',
      Helo: 'mail.example.com',
      Hostname: 'mail.example.com',
      From: 'alice@example.com',
      Rcpt: ['bob@example.org', 'carol@example.org'],
      User: 'alice@example.com',
      'Queue-Id': 'q-123',
    });
  });

  test('the null sender is <>; empty HELO and absent user are left out', () => {
    const h = rspamdHeaders({ source, remoteAddress: '192.0.2.10', helo: '', mailFrom: null, recipients: ['bob@example.org'] }, 10);
    assert.deepEqual(h, { 'Content-Length': '10', IP: '192.0.2.10', From: '<>', Rcpt: ['bob@example.org'] });
  });

  test('untrusted values cannot inject headers, are bounded, and keep UTF-8 as bytes', () => {
    assert.equal(headerValue('evil.example\r\nUser: admin'), 'evil.exampleUser: admin');
    assert.equal(headerValue('x'.repeat(5000)).length, MAX_HEADER_VALUE);
    assert.equal(Buffer.from(headerValue('山田@例え.jp'), 'latin1').toString('utf8'), '山田@例え.jp');
    const many = Array.from({ length: MAX_RCPT_HEADERS + 10 }, (_, i) => `r${i}@example.org`);
    const h = rspamdHeaders({ source, remoteAddress: '192.0.2.10', helo: 'x', mailFrom: null, recipients: many }, 10);
    assert.equal((h.Rcpt as string[]).length, MAX_RCPT_HEADERS);
  });
});
