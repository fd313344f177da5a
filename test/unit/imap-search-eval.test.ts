/**
 * SEARCH key evaluation without a database (RFC 9051 §6.4.4): the three-valued evaluation that
 * decides cheap keys first and asks for the header only when needed, header decoding (RFC 2047,
 * ISO-2022-JP, raw Shift_JIS and UTF-8 bytes) and the day rules of BEFORE/ON/SINCE and SENT….
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import iconv from 'iconv-lite';
import { encodedWordJp, iso2022jp } from '../support/real-clients.js';
import type { Entry } from '../../src/core/mailbox-state/index.js';
import type { SearchKey } from '../../src/protocols/imap/parser/types.js';
import { addDays, compareDay, compareDayAround, utcDay, writtenDay } from '../../src/protocols/imap/search/days.js';
import { containsText, DecodedHeader, decodeHeaderBlock } from '../../src/protocols/imap/search/header-text.js';
import { evaluateKey, usesModseq, usesSentDate, type MessageFacts, type PreparedSearch } from '../../src/protocols/imap/search/keys.js';

const day = (s: string) => Date.parse(`${s}Z`);

function entry(over: Partial<Entry> = {}): Entry {
  return {
    id: 'e1',
    folderId: 'f',
    mailboxId: 'm',
    messageId: 'msg1',
    uid: 7,
    modseq: 40,
    flags: ['\\Seen', '$Work'],
    keywords: ['$Work'],
    internalDate: day('2026-11-02T10:00:00'),
    size: 1200,
    deletedAt: null,
    ...over,
  };
}

function pre(over: Partial<PreparedSearch> = {}): PreparedSearch {
  return { now: day('2026-11-10T00:00:00'), sets: new Map(), text: new Map(), ...over };
}

const ev = (key: SearchKey, facts: MessageFacts = { entry: entry() }, p = pre()) => evaluateKey(key, facts, p);

describe('cheap keys', () => {
  test('flags and keywords, case-insensitively; \\Recent never set', () => {
    assert.equal(ev({ op: 'flag', flag: '\\SEEN', set: true }), true);
    assert.equal(ev({ op: 'flag', flag: '\\Flagged', set: true }), false);
    assert.equal(ev({ op: 'flag', flag: '\\Flagged', set: false }), true);
    assert.equal(ev({ op: 'flag', flag: '$work', set: true }), true);
    assert.equal(ev({ op: 'flag', flag: '\\Recent', set: true }), false);
  });

  test('size, MODSEQ, WITHIN, internal dates (UTC day)', () => {
    assert.equal(ev({ op: 'size', cmp: 'LARGER', size: 1199 }), true);
    assert.equal(ev({ op: 'size', cmp: 'LARGER', size: 1200 }), false);
    assert.equal(ev({ op: 'size', cmp: 'SMALLER', size: 1201 }), true);
    assert.equal(ev({ op: 'modseq', modseq: 40 }), true);
    assert.equal(ev({ op: 'modseq', modseq: 41 }), false);
    assert.equal(ev({ op: 'age', cmp: 'OLDER', seconds: 86400 }), true);
    assert.equal(ev({ op: 'age', cmp: 'YOUNGER', seconds: 86400 }), false);
    assert.equal(ev({ op: 'date', field: 'ON', date: '2026-11-02' }), true);
    assert.equal(ev({ op: 'date', field: 'BEFORE', date: '2026-11-02' }), false);
    assert.equal(ev({ op: 'date', field: 'SINCE', date: '2026-11-02' }), true);
  });

  test('seq/uid keys use the prepared sets', () => {
    const key: SearchKey = { op: 'uid', set: { kind: 'ranges', ranges: [{ from: 7, to: 7 }] } };
    assert.equal(ev(key, { entry: entry() }, pre({ sets: new Map([[key, new Set([7])]]) })), true);
    assert.equal(ev(key, { entry: entry({ uid: 8 }) }, pre({ sets: new Map([[key, new Set([7])]]) })), false);
  });

  test('NOT, OR and AND in three-valued logic', () => {
    const header: SearchKey = { op: 'header', name: 'X-Tag', value: 'a' };
    const seen: SearchKey = { op: 'flag', flag: '\\Seen', set: true };
    const flagged: SearchKey = { op: 'flag', flag: '\\Flagged', set: true };
    assert.equal(ev(header), undefined);
    assert.equal(ev({ op: 'not', key: header }), undefined);
    assert.equal(ev({ op: 'and', keys: [flagged, header] }), false, 'a false key decides AND without the header');
    assert.equal(ev({ op: 'and', keys: [seen, header] }), undefined);
    assert.equal(ev({ op: 'or', a: header, b: seen }), true, 'a true key decides OR without the header');
    assert.equal(ev({ op: 'or', a: header, b: flagged }), undefined);
    assert.equal(ev({ op: 'and', keys: [] }), true);
  });

  test('usesSentDate / usesModseq look through the tree', () => {
    assert.equal(usesSentDate({ op: 'not', key: { op: 'date', field: 'SENTON', date: '2026-01-01' } }), true);
    assert.equal(usesSentDate({ op: 'date', field: 'ON', date: '2026-01-01' }), false);
    assert.equal(usesModseq({ op: 'or', a: { op: 'all' }, b: { op: 'modseq', modseq: 1 } }), true);
  });
});

describe('text keys', () => {
  const subject: SearchKey = { op: 'text', field: 'SUBJECT', value: '会議' };
  const from: SearchKey = { op: 'text', field: 'FROM', value: 'bob' };
  const body: SearchKey = { op: 'text', field: 'BODY', value: 'invoice' };
  const text: SearchKey = { op: 'text', field: 'TEXT', value: 'x-mailer-foo' };

  test('SUBJECT and BODY are decided by the index; the empty string matches everything', () => {
    const p = pre({ text: new Map([[subject, { ids: new Set(['msg1']), complete: true }], [body, { ids: new Set(), complete: true }]]) });
    assert.equal(ev(subject, { entry: entry() }, p), true);
    assert.equal(ev(subject, { entry: entry({ messageId: 'other' }) }, p), false);
    assert.equal(ev(body, { entry: entry() }, p), false);
    assert.equal(ev({ op: 'text', field: 'BODY', value: '' }), true);
  });

  test('FROM: an index hit is confirmed in the From field (the index mixes From, To and Cc)', () => {
    const p = pre({ text: new Map([[from, { ids: new Set(['msg1']), complete: true }]]) });
    assert.equal(ev(from, { entry: entry() }, p), undefined);
    const toBob = new DecodedHeader(Buffer.from('From: alice@example.com\r\nTo: bob@example.com\r\n\r\n'));
    assert.equal(ev(from, { entry: entry(), header: toBob }, p), false);
    const fromBob = new DecodedHeader(Buffer.from('From: Bob <bob@example.com>\r\n\r\n'));
    assert.equal(ev(from, { entry: entry(), header: fromBob }, p), true);
    assert.equal(ev(from, { entry: entry({ messageId: 'not-indexed' }) }, p), false, 'no index hit: no header read');
  });

  test('TEXT: index hit, else the whole header', () => {
    const p = pre({ text: new Map([[text, { ids: new Set(), complete: true }]]) });
    assert.equal(ev(text, { entry: entry() }, p), undefined);
    const h = new DecodedHeader(Buffer.from('Subject: hi\r\nX-Mailer: X-Mailer-Foo 1.0\r\n\r\n'));
    assert.equal(ev(text, { entry: entry(), header: h }, p), true);
    assert.equal(ev(text, { entry: entry(), header: null }, p), false, 'unreadable header: no match');
  });

  test('BCC and HEADER read the header; HEADER with "" matches when the field exists', () => {
    const h = new DecodedHeader(Buffer.from('Bcc: hidden@example.com\r\nX-Priority: 1\r\n\r\n'));
    assert.equal(ev({ op: 'text', field: 'BCC', value: 'HIDDEN' }, { entry: entry(), header: h }), true);
    assert.equal(ev({ op: 'header', name: 'x-priority', value: '' }, { entry: entry(), header: h }), true);
    assert.equal(ev({ op: 'header', name: 'X-Spam', value: '' }, { entry: entry(), header: h }), false);
    assert.equal(ev({ op: 'header', name: 'X-Priority', value: '2' }, { entry: entry(), header: h }), false);
  });
});

describe('header decoding', () => {
  test('RFC 2047 ISO-2022-JP encoded words and folded lines', () => {
    const block = Buffer.from(`Subject: ${encodedWordJp('来週の会議について')}\r\n  (再送)\r\nFrom: a@b\r\n\r\nbody`);
    const fields = decodeHeaderBlock(block);
    assert.deepEqual(fields.map((f) => f.name), ['subject', 'from']);
    assert.equal(new DecodedHeader(block).fieldContains('Subject', '会議'), true);
    assert.equal(new DecodedHeader(block).fieldContains('subject', '再送'), true);
  });

  test('raw ISO-2022-JP, raw Shift_JIS and raw UTF-8 header bytes', () => {
    const jis = Buffer.concat([Buffer.from('Subject: '), iso2022jp('定例会議'), Buffer.from('\r\n\r\n')]);
    assert.equal(new DecodedHeader(jis).fieldContains('subject', '会議'), true);
    const sjis = Buffer.concat([Buffer.from('Subject: '), iconv.encode('請求書の送付', 'shift_jis'), Buffer.from('\r\n\r\n')]);
    assert.equal(new DecodedHeader(sjis).fieldContains('subject', '請求書'), true);
    const utf8 = Buffer.from('Subject: 東京オフィス\r\n\r\n');
    assert.equal(new DecodedHeader(utf8).first('SUBJECT'), '東京オフィス');
  });

  test('containsText is case-insensitive and "" is always contained', () => {
    assert.equal(containsText('Hello World', 'WORLD'), true);
    assert.equal(containsText('abc', ''), true);
    assert.equal(containsText('abc', 'abd'), false);
  });
});

describe('days', () => {
  test('utcDay, addDays, writtenDay', () => {
    assert.equal(utcDay(day('2026-03-01T00:30:00')), '2026-03-01');
    assert.equal(addDays('2026-03-01', -1), '2026-02-28');
    assert.equal(writtenDay('Mon, 2 Nov 2026 23:30:00 -0500'), '2026-11-02');
    assert.equal(writtenDay('2 Nov 96 10:00 GMT'), '1996-11-02');
    assert.equal(writtenDay('garbage'), null);
  });

  test('SENT… keys: the written day, never the UTC one', () => {
    // 23:30 -0500 is already 3 Nov in UTC; SENTON 2-Nov must match.
    const h = new DecodedHeader(Buffer.from('Date: Mon, 2 Nov 2026 23:30:00 -0500\r\n\r\n'));
    const key: SearchKey = { op: 'date', field: 'SENTON', date: '2026-11-02' };
    const sentAt = Date.parse('2026-11-03T04:30:00Z');
    assert.equal(ev(key, { entry: entry(), sentAt }), undefined, 'near the boundary the header is needed');
    assert.equal(ev(key, { entry: entry(), sentAt, header: h }), true);
    // Far from the boundary the UTC instant decides without the header.
    assert.equal(ev({ op: 'date', field: 'SENTBEFORE', date: '2026-12-01' }, { entry: entry(), sentAt }), true);
    // No Date header at all: the internal date stands in.
    assert.equal(ev({ op: 'date', field: 'SENTON', date: '2026-11-02' }, { entry: entry(), sentAt: null }), true);
  });

  test('compareDay / compareDayAround', () => {
    assert.equal(compareDay('BEFORE', '2026-01-01', '2026-01-02'), true);
    assert.equal(compareDay('SINCE', '2026-01-02', '2026-01-02'), true);
    assert.equal(compareDayAround('SENTSINCE', '2026-01-05', '2026-01-02'), true);
    assert.equal(compareDayAround('SENTSINCE', '2026-01-02', '2026-01-02'), undefined);
  });
});
