/**
 * The DSN builder (src/outbound/dsn.ts): a multipart/report (RFC 6522, formerly RFC 3462) that a
 * real MIME parser (mailparser) reads, with the per-message and per-recipient fields of RFC 3464
 * and the original header section as text/rfc822-headers.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { buildDsn, readHeaderSection, statusOf } from '../../src/outbound/dsn.js';
import { retryPlan } from '../../src/outbound/records.js';
import { Readable } from 'node:stream';

const ORIGINAL = 'Received: from client by mail.test\r\nFrom: Alice <alice@local.test>\r\nTo: bob@remote.test\r\nSubject: Quarterly numbers\r\nMessage-ID: <orig-1@local.test>\r\n';

/**
 * The parts of the multipart/report, split at the boundary mailparser read from the top-level
 * Content-Type (mailparser shows message/delivery-status inline in `text`, so the structure is
 * checked here part by part).
 */
function partsOf(raw: Buffer, boundary: string): { type: string; body: string }[] {
  const text = raw.toString('utf8');
  const chunks = text.split(`--${boundary}`).slice(1, -1);
  return chunks.map((c) => {
    const [head, ...rest] = c.replace(/^\r\n/, '').split('\r\n\r\n');
    const type = /^Content-Type:\s*([^;\r\n]+)/im.exec(head)?.[1].trim().toLowerCase() ?? 'text/plain';
    return { type, body: rest.join('\r\n\r\n') };
  });
}

async function report(raw: Buffer) {
  const parsed = await simpleParser(raw);
  const ct = parsed.headers.get('content-type') as { value: string; params: Record<string, string> };
  assert.equal(ct.value, 'multipart/report');
  assert.equal(ct.params['report-type'], 'delivery-status');
  const parts = partsOf(raw, ct.params.boundary);
  const status = parts.find((p) => p.type === 'message/delivery-status');
  assert.ok(status, 'a message/delivery-status part');
  return { parsed, parts, status: status.body };
}

/** Splits a message/delivery-status body into its field groups (RFC 3464 §2.1). */
function groups(text: string): Record<string, string>[] {
  return text
    .trim()
    .split(/\r?\n\r?\n/)
    .map((block) => Object.fromEntries(block.split(/\r?\n/).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()])));
}

describe('DSN builder (RFC 3464 / RFC 6522)', () => {
  test('a failure report parses, with every RFC 3464 field and the original headers', async () => {
    const raw = buildDsn({
      reportingMta: 'mail.test',
      to: 'alice@local.test',
      envelopeId: 'abc123',
      arrivalDate: new Date('2026-11-29T10:00:00Z'),
      recipients: [
        { address: 'bob@remote.test', action: 'failed', status: '5.1.1', remoteMta: 'mx.remote.test', diagnostic: '550 5.1.1 No such user', lastAttemptAt: Date.parse('2026-11-29T10:00:05Z') },
        { address: 'carol@remote.test', action: 'failed', status: '5.4.7', diagnostic: '451 4.4.1 timeout (delivery time expired)' },
      ],
      originalHeaders: ORIGINAL,
    });
    const text = raw.toString('utf8');
    assert.match(text, /^Content-Type: multipart\/report; report-type=delivery-status; boundary=/m);
    assert.match(text, /^Auto-Submitted: auto-replied$/m);
    const { parsed, parts, status } = await report(raw);
    assert.equal(parts[0].type, 'text/plain', 'the human-readable part comes first (RFC 6522 §3)');
    assert.equal(parsed.subject, 'Undelivered Mail Returned to Sender');
    assert.equal((parsed.to as { text: string }).text, 'alice@local.test');
    assert.match(parsed.text ?? '', /bob@remote\.test>: 550 5\.1\.1 No such user/);
    const [perMessage, bob, carol] = groups(status);
    assert.equal(perMessage['reporting-mta'], 'dns; mail.test');
    assert.equal(perMessage['arrival-date'], 'Sun, 29 Nov 2026 10:00:00 +0000');
    assert.equal(bob['final-recipient'], 'rfc822; bob@remote.test');
    assert.equal(bob.action, 'failed');
    assert.equal(bob.status, '5.1.1');
    assert.equal(bob['remote-mta'], 'dns; mx.remote.test');
    assert.equal(bob['diagnostic-code'], 'smtp; 550 5.1.1 No such user');
    assert.equal(carol.status, '5.4.7');
    assert.equal(carol['remote-mta'], undefined);
    const headers = parsed.attachments.find((a) => a.contentType === 'text/rfc822-headers');
    assert.ok(headers, 'the original header section');
    assert.match(headers.content.toString('utf8'), /^Subject: Quarterly numbers\r?$/m);
    assert.match(headers.content.toString('utf8'), /Message-ID: <orig-1@local\.test>/);
  });

  test('a delay report says delayed and until when it is retried', async () => {
    const raw = buildDsn({
      reportingMta: 'mail.test',
      to: 'alice@local.test',
      envelopeId: 'q1',
      arrivalDate: new Date('2026-11-29T10:00:00Z'),
      recipients: [{ address: 'bob@remote.test', action: 'delayed', status: '4.4.1', diagnostic: '451 4.4.1 no answer' }],
      originalHeaders: ORIGINAL,
      willRetryUntil: new Date('2026-12-04T10:00:00Z'),
    });
    const { parsed, status } = await report(raw);
    assert.match(parsed.subject ?? '', /Delayed/);
    const [, bob] = groups(status);
    assert.equal(bob.action, 'delayed');
    assert.equal(bob['will-retry-until'], 'Fri, 04 Dec 2026 10:00:00 +0000');
  });

  test('a reply text cannot inject fields; UTF-8 addresses use the RFC 6533 forms', async () => {
    const raw = buildDsn({
      reportingMta: 'mail.test',
      to: 'alice@local.test',
      envelopeId: 'q2',
      arrivalDate: new Date(),
      recipients: [{ address: 'jörg@remote.test', action: 'failed', status: '5.6.7', diagnostic: '553 nope\r\nX-Injected: yes' }],
      originalHeaders: ORIGINAL,
    });
    const text = raw.toString('utf8');
    assert.doesNotMatch(text, /^X-Injected/m);
    assert.match(text, /^Content-Type: message\/global-delivery-status$/m);
    assert.match(text, /^Final-Recipient: utf-8; jörg@remote\.test$/m);
  });

  test('status codes come from the reply, else from its class', () => {
    assert.equal(statusOf('550 5.1.1 No such user', '5.0.0'), '5.1.1');
    assert.equal(statusOf('554 transaction failed', '5.0.0'), '5.0.0');
    assert.equal(statusOf('421 try later', '5.0.0'), '4.0.0');
    assert.equal(statusOf(null, '4.0.0'), '4.0.0');
  });

  test('the header section is read up to the empty line', async () => {
    const h = await readHeaderSection(Readable.from([Buffer.from('A: 1\r\nB: 2\r\n\r\nbody\r\n')]));
    assert.equal(h, 'A: 1\r\nB: 2\r\n');
  });

  test('retry plan: attempts fit into max_queue_hours on the schedule', () => {
    const p = retryPlan({ retry_schedule_seconds: [300, 900, 1800, 3600, 7200, 14400], max_queue_hours: 120 });
    // 28 200 s for the listed delays, then 4 h steps up to 432 000 s: 6 + 28 retries + the first attempt.
    assert.equal(p.maxAttempts, 35);
    let total = 0;
    for (let i = 1; i < p.maxAttempts; i++) total += p.backoffSeconds[Math.min(i - 1, p.backoffSeconds.length - 1)];
    assert.ok(total <= 120 * 3600);
    assert.equal(retryPlan({ retry_schedule_seconds: [60], max_queue_hours: 1 }).maxAttempts, 61);
  });
});
