/** Pure header helpers of the inbound pipeline: Received (RFC 5321 §4.4), header block, prepended text. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { addressLiteral, receivedHeader, rfc5322Date, sanitizeHelo, traceProtocol } from '../../src/pipeline/inbound/received-header.js';
import { fieldsNamed, parseHeaderBlock } from '../../src/pipeline/inbound/header-block.js';
import { checkHeaderText, InvalidHeaderTextError, MAX_HEADER_LINE, unfoldedValue } from '../../src/pipeline/inbound/header-lines.js';
import { normaliseRanges, storedChunks, storedSize } from '../../src/pipeline/inbound/stored-bytes.js';

const date = new Date(Date.UTC(2025, 10, 29, 10, 0, 5));

test('Received: from/by/with/id/for and an RFC 5322 date, folded, CRLF-terminated', () => {
  const h = receivedHeader({ helo: 'mail.example.org', remoteAddress: '192.0.2.7', hostname: 'mx.example.com', protocol: 'ESMTPS', id: 'abc123', recipient: 'alice@example.com', date });
  assert.equal(
    h,
    'Received: from mail.example.org ([192.0.2.7])\r\n\tby mx.example.com with ESMTPS id abc123\r\n\tfor <alice@example.com>; Sat, 29 Nov 2025 10:00:05 +0000\r\n',
  );
  assert.equal(rfc5322Date(date), 'Sat, 29 Nov 2025 10:00:05 +0000');
});

test('Received without a single recipient names none (RFC 5321 §7.2: Bcc must not leak)', () => {
  const h = receivedHeader({ helo: 'x.example', remoteAddress: '2001:db8::1', hostname: 'mx.example.com', protocol: 'ESMTP', id: 'q1', date });
  assert.equal(h, 'Received: from x.example ([IPv6:2001:db8::1])\r\n\tby mx.example.com with ESMTP id q1;\r\n\tSat, 29 Nov 2025 10:00:05 +0000\r\n');
});

test('hostile HELO and recipient cannot inject lines or break the field', () => {
  const h = receivedHeader({
    helo: 'evil\r\nX-Injected: yes (a)',
    remoteAddress: '::ffff:198.51.100.9',
    hostname: 'mx.example.com',
    protocol: traceProtocol(true, true),
    id: 'id\r\nX: y',
    recipient: 'a@b.example>\r\nX-Evil: 1',
    date,
  });
  assert.equal(h.split('\r\n').length, 4, 'three lines plus the final empty piece');
  assert.ok(!/\r\nX-/.test(h));
  assert.match(h, /^Received: from evil__X-Injected:_yes__a_ \(\[198\.51\.100\.9\]\)\r\n/);
  assert.match(h, /with ESMTPSA id idXy;/);
  assert.equal(sanitizeHelo(''), 'unknown');
  assert.equal(sanitizeHelo('a'.repeat(1000)).length, 255);
  assert.equal(addressLiteral('not-an-ip'), '[unknown]');
  assert.equal(traceProtocol(false, false), 'ESMTP');
  assert.equal(traceProtocol(false, true), 'ESMTPA');
});

test('header block: fields with byte offsets, folding, LF-only, end of header', () => {
  const raw = Buffer.from('From: a@b.example\r\nSubject: one\r\n two\r\nX-Bare: lf\nNoColon line\r\n\r\nbody\r\n');
  const block = parseHeaderBlock(raw);
  assert.equal(block.bodyStart, raw.indexOf('body'));
  assert.deepEqual(
    block.fields.map((f) => [f.name, f.value, raw.subarray(f.start, f.end).toString()]),
    [
      ['From', 'a@b.example', 'From: a@b.example\r\n'],
      ['Subject', 'one two', 'Subject: one\r\n two\r\n'],
      ['X-Bare', 'lf', 'X-Bare: lf\n'],
      ['', 'NoColon line', 'NoColon line\r\n'],
    ],
  );
  assert.equal(fieldsNamed(block, 'SUBJECT').length, 1);
});

test('header block without an empty line: bodyStart null, fields still listed', () => {
  const block = parseHeaderBlock(Buffer.from('A: 1\r\nB: 2'));
  assert.equal(block.bodyStart, null);
  assert.deepEqual(block.fields.map((f) => f.name), ['A', 'B']);
  assert.equal(parseHeaderBlock(Buffer.from('\r\nbody')).bodyStart, 2);
});

test('checkHeaderText accepts folded fields and refuses injection and overlong lines', () => {
  assert.equal(checkHeaderText('X-Spam-Score: 1.5\nX-Spam-Status: No,\n\tscore=1.5'), 'X-Spam-Score: 1.5\r\nX-Spam-Status: No,\r\n\tscore=1.5\r\n');
  assert.equal(checkHeaderText(''), '');
  assert.throws(() => checkHeaderText('not a field\r\n'), InvalidHeaderTextError);
  assert.throws(() => checkHeaderText('X-A: 1\r\n\r\nbody'), InvalidHeaderTextError);
  assert.throws(() => checkHeaderText('X-A: 1\rX-B: 2\r\n'), /bare CR/);
  assert.throws(() => checkHeaderText('X-A: \u0000\r\n'), /control/);
  assert.throws(() => checkHeaderText(`X-A: ${'a'.repeat(MAX_HEADER_LINE)}\r\n`), /998/);
  assert.equal(unfoldedValue('Authentication-Results: mx.example.com;\r\n spf=pass\r\n'), 'mx.example.com; spf=pass');
});

async function collect(gen: AsyncGenerator<Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(c);
  return Buffer.concat(parts).toString();
}

function source(text: string, chunk: number) {
  const buf = Buffer.from(text);
  return {
    size: buf.length,
    open: () => {
      const parts: Buffer[] = [];
      for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
      return Readable.from(parts);
    },
  };
}

test('stored bytes: prefix + original with drop ranges removed, for every chunking', async () => {
  const text = 'A: 1\r\nAuthentication-Results: forged\r\nB: 2\r\n\r\nbody\r\n';
  const start = text.indexOf('Authentication');
  const end = text.indexOf('B: 2');
  const expected = 'Received: x\r\nA: 1\r\nB: 2\r\n\r\nbody\r\n';
  for (const chunk of [1, 2, 3, 7, 16, 1000]) {
    const out = await collect(storedChunks(Buffer.from('Received: x\r\n'), source(text, chunk), [[start, end]]));
    assert.equal(out, expected, `chunk size ${chunk}`);
  }
  assert.equal(storedSize(Buffer.from('Received: x\r\n'), Buffer.byteLength(text), [[start, end]]), expected.length);
  assert.deepEqual(normaliseRanges([[5, 9], [0, 2], [1, 3], [8, 12], [20, 30]], 25), [[0, 3], [5, 12], [20, 25]]);
  assert.equal(await collect(storedChunks(Buffer.alloc(0), source('abc', 1), [])), 'abc');
});

test('Return-Path (RFC 5321 §4.4): the reverse-path in angle brackets, <> for the null sender', async () => {
  const { returnPathField } = await import('../../src/pipeline/inbound/stages/data.js');
  assert.equal(returnPathField('alice@example.com'), 'Return-Path: <alice@example.com>\r\n');
  assert.equal(returnPathField(''), 'Return-Path: <>\r\n');
  assert.equal(returnPathField(null), 'Return-Path: <>\r\n');
});
