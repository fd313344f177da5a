/**
 * Building the hook payload source from real MIME fixtures (SPEC §6 "Payload to plugin").
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPayloadSource, filterSubjectOf, PAYLOAD_PARSE_MAX_BYTES, type PayloadInput } from '../../src/hooks/payload.js';
import { filterPayload, NO_PERMISSIONS } from '../../src/plugins/permissions.js';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '../fixtures/mail');
const fixture = (name: string) => readFileSync(join(fixtures, name));

function input(raw: Buffer, over: Partial<PayloadInput> = {}): PayloadInput {
  return {
    hookType: 'pre_receive',
    messageId: 'msg-1',
    tenantId: 't1',
    mailbox: null,
    envelope: { from: 'sender@example.org', to: ['a@example.jp', 'b@example.jp'] },
    raw,
    receivedAt: new Date('2024-04-08T01:00:00Z'),
    clientIp: '192.0.2.7',
    callbackUrl: null,
    ...over,
  };
}

describe('buildPayloadSource', () => {
  test('nested multipart: decoded headers, text body, attachments with decoded bytes', () => {
    const raw = fixture('nested-mixed-attachments.eml');
    const p = buildPayloadSource(input(raw));
    assert.equal(p.hook_type, 'pre_receive');
    assert.equal(p.message_id, 'msg-1');
    assert.equal(p.tenant_id, 't1');
    assert.deepEqual(p.envelope, { from: 'sender@example.org', to: ['a@example.jp', 'b@example.jp'] });
    assert.deepEqual(p.metadata, { received_at: '2024-04-08T01:00:00.000Z', client_ip: '192.0.2.7' });
    // Names lower-cased; RFC 2047 words (UTF-8 and ISO-2022-JP) decoded.
    assert.deepEqual(p.headers.subject, ['見積書の送付']);
    assert.deepEqual(p.headers.from, ['経理部 <keiri@example.jp>']);
    assert.deepEqual(p.headers['message-id'], ['<nested.1@example.jp>']);
    assert.ok(!('Subject' in p.headers));
    assert.equal(p.body.text, '見積書を添付します。ご確認ください。');
    assert.equal(p.body.size, raw.length);
    assert.equal(p.body.has_attachments, true);
    assert.deepEqual(
      p.body.attachments.map((a) => [a.filename, a.content_type]),
      [
        ['見積書.pdf', 'application/pdf'],
        ['data.csv', 'text/csv'],
        ['写真です.png', 'image/png'],
        ['売上表.xls', 'application/vnd.ms-excel'],
      ],
    );
    const csv = p.body.attachments[1];
    assert.match(Buffer.from(csv.content!).toString('utf8'), /^name,amount\r?\nwidget,3/);
    assert.equal(csv.size, csv.content!.length);
    // The PDF is base64 in the message: its decoded bytes start with the PDF magic.
    assert.equal(Buffer.from(p.body.attachments[0].content!).subarray(0, 5).toString('latin1'), '%PDF-');
  });

  test('HTML-only message: the HTML rendered to text', () => {
    const p = buildPayloadSource(input(fixture('html-only-alternative.eml')));
    assert.match(p.body.text, /Hello & welcome <team>/);
    assert.match(p.body.text, /日本語のニュースレターです。/);
    assert.doesNotMatch(p.body.text, /<p>|<\/?html/i);
    assert.equal(p.body.has_attachments, false);
    assert.deepEqual(p.body.attachments, []);
  });

  test('quoted-printable UTF-8 and ISO-2022-JP bodies are decoded', () => {
    assert.match(buildPayloadSource(input(fixture('utf8-qp.eml'))).body.text, /Café Müller at noon\. 寿司🍣がおいしい店です。/);
    const jp = buildPayloadSource(input(fixture('iso2022jp-b-subject.eml')));
    assert.deepEqual(jp.headers.subject, ['会議の議事録']);
    assert.match(jp.body.text, /本日の会議の議事録を送ります。/);
  });

  test('a message without headers and non-mail bytes do not throw', () => {
    const p = buildPayloadSource(input(fixture('no-headers.eml')));
    assert.deepEqual(p.headers, {});
    assert.match(p.body.text, /just a line of text/);
    const g = buildPayloadSource(input(fixture('garbage.bin.eml')));
    assert.equal(g.body.size, fixture('garbage.bin.eml').length);
    assert.ok(!g.body.text.includes('\u0000'));
  });

  test('a broken boundary: the body stays text, not an attachment', () => {
    const p = buildPayloadSource(input(fixture('broken-boundary.eml')));
    assert.equal(p.body.has_attachments, false);
    assert.match(p.body.text, /The parts use a boundary that was never declared\./);
  });

  test('folded and repeated headers: unfolded, every value kept; __proto__ dropped', () => {
    const raw = Buffer.from(
      'Received: from a\r\n by b; Mon, 1 Apr 2024 00:00:00 +0000\r\nReceived: from c by d\r\n__proto__: x\r\nX-Spam: yes\r\nSubject: hi\r\n\r\nbody\r\n',
    );
    const p = buildPayloadSource(input(raw));
    assert.deepEqual(p.headers.received, ['from a by b; Mon, 1 Apr 2024 00:00:00 +0000', 'from c by d']);
    assert.deepEqual(p.headers['x-spam'], ['yes']);
    assert.equal(Object.getPrototypeOf(p.headers), Object.prototype);
    assert.ok(!Object.prototype.hasOwnProperty.call(p.headers, '__proto__'));
    assert.equal(p.body.text, 'body');
  });

  test('over 25 MiB: headers only, no body text, no attachments', () => {
    const head = 'Subject: big\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n';
    const raw = Buffer.concat([Buffer.from(head), Buffer.alloc(PAYLOAD_PARSE_MAX_BYTES, 0x41), Buffer.from('\r\n--b--\r\n')]);
    const p = buildPayloadSource(input(raw));
    assert.deepEqual(p.headers.subject, ['big']);
    assert.equal(p.body.text, '');
    assert.deepEqual(p.body.attachments, []);
    assert.equal(p.body.size, raw.length);
    // Judged from the top-level type only.
    assert.equal(p.body.has_attachments, true);
    assert.equal(filterSubjectOf({ envelope: { from: 'x@y', to: ['z@w'] }, raw }).hasAttachments, true);
  });

  test('filterPayload over the source: only granted parts, preview ≤ 4 KiB', () => {
    const long = Buffer.from(`Subject: long\r\n\r\n${'あ'.repeat(5000)}\r\n`);
    const p = buildPayloadSource(input(long));
    const none = filterPayload(p, NO_PERMISSIONS);
    assert.equal(none.headers, undefined);
    assert.equal(none.body.preview, undefined);
    const preview = filterPayload(p, { ...NO_PERMISSIONS, read_headers: true, read_body: 'preview' });
    assert.deepEqual(preview.headers?.subject, ['long']);
    assert.ok(Buffer.byteLength(preview.body.preview!) <= 4096);
    assert.ok(preview.body.preview!.startsWith('あああ'));
  });
});

describe('filterSubjectOf', () => {
  test('from a payload source and from the raw message give the same subject', () => {
    const raw = fixture('nested-mixed-attachments.eml');
    const envelope = { from: 'sender@example.org', to: ['a@example.jp'] };
    const fromSource = filterSubjectOf(buildPayloadSource(input(raw, { envelope })));
    const fromRaw = filterSubjectOf({ envelope, raw });
    const expected = { recipients: ['a@example.jp'], sender: 'sender@example.org', subject: '見積書の送付', hasAttachments: true, size: raw.length };
    assert.deepEqual(fromSource, expected);
    assert.deepEqual(fromRaw, expected);
    const plain = filterSubjectOf({ envelope, raw: fixture('utf8-qp.eml') });
    assert.equal(plain.hasAttachments, false);
    assert.equal(plain.subject, 'Team lunch 🍣 tomorrow');
  });
});
