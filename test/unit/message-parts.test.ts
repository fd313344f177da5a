/**
 * The parsed message view (src/mail/parts.ts): which parts are bodies and which attachments,
 * transfer and charset decoding (ISO-2022-JP, Shift_JIS, unlabelled legacy Japanese), the body
 * cap, thread headers, reading byte ranges from a stream without reading past them, and the
 * streaming base64 / quoted-printable decoders fed in every chunk size.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, type Transform } from 'node:stream';
import { randomBytes } from 'node:crypto';
import iconv from 'iconv-lite';
import { parseMimeStructure, type MimePart } from '../../src/mail/mime/index.js';
import {
  Base64DecodeStream,
  decodeBody,
  decodeCharset,
  estimateDecodedSize,
  loadStructure,
  openPart,
  parseStoredStructure,
  PartNotFoundError,
  planParts,
  QuotedPrintableDecodeStream,
  readMessageView,
  readRanges,
  sliceStream,
  threadHeaders,
} from '../../src/mail/parts.js';

const CRLF = '\r\n';

function toIso2022jp(text: string): Buffer {
  const euc = iconv.encode(text, 'euc-jp');
  const out: number[] = [];
  let kanji = false;
  for (let i = 0; i < euc.length; i++) {
    if (euc[i] < 0x80) {
      if (kanji) out.push(0x1b, 0x28, 0x42);
      kanji = false;
      out.push(euc[i]);
      continue;
    }
    if (!kanji) out.push(0x1b, 0x24, 0x42);
    kanji = true;
    out.push(euc[i] & 0x7f, euc[i + 1] & 0x7f);
    i++;
  }
  if (kanji) out.push(0x1b, 0x28, 0x42);
  return Buffer.from(out);
}

/** A stream of `bytes` in chunks of `size`, counting how many chunks were pulled. */
function chunked(bytes: Buffer, size: number): Readable & { pulled: () => number } {
  let pos = 0;
  let pulled = 0;
  const stream = new Readable({
    read() {
      if (pos >= bytes.length) return this.push(null);
      pulled++;
      this.push(bytes.subarray(pos, pos + size));
      pos += size;
    },
  });
  return Object.assign(stream, { pulled: () => pulled });
}

async function collect(stream: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of stream) out.push(c as Buffer);
  return Buffer.concat(out);
}

/** Feeds `input` to a fresh transform in chunks of `size` and returns what comes out. */
async function throughChunks(make: () => Transform, input: Buffer, size: number): Promise<Buffer> {
  return collect(chunked(input, size).pipe(make()));
}

const lines76 = (b64: string) => b64.replace(/.{1,76}/g, (l) => l + CRLF);
const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(1500), Buffer.from([...Array(256).keys()])]);

function message(): Buffer {
  return Buffer.concat([
    Buffer.from(
      [
        'From: a@example.jp',
        'Subject: test',
        'In-Reply-To: <parent@example.jp> <other@example.jp>',
        'References: <root@example.jp>',
        '\t<parent@example.jp>',
        'Content-Type: multipart/mixed; boundary="outer"',
        '',
        '--outer',
        'Content-Type: multipart/alternative; boundary="alt"',
        '',
        '--alt',
        'Content-Type: text/plain; charset=ISO-2022-JP',
        '',
        '',
      ].join(CRLF),
    ),
    toIso2022jp('こんにちは、世界'),
    Buffer.from(
      [
        '',
        '--alt',
        'Content-Type: multipart/related; boundary="rel"',
        '',
        '--rel',
        'Content-Type: text/html; charset=Shift_JIS',
        'Content-Transfer-Encoding: base64',
        '',
        iconv.encode('<p>こんにちは</p>', 'shift_jis').toString('base64'),
        '--rel',
        'Content-Type: image/png',
        'Content-ID: <logo@example.jp>',
        'Content-Disposition: inline',
        'Content-Transfer-Encoding: base64',
        '',
        'iVBORw0KGgo=',
        '--rel--',
        '--alt--',
        '--outer',
        'Content-Type: application/pdf; name="a.pdf"',
        'Content-Disposition: attachment; filename="a.pdf"',
        'Content-Transfer-Encoding: base64',
        '',
        lines76(PDF.toString('base64')) + '--outer',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Disposition: attachment; filename="notes.txt"',
        '',
        'not a body',
        '--outer',
        'Content-Type: message/rfc822',
        '',
        'Subject: inner',
        'Content-Type: text/plain',
        '',
        'inner body is not the outer body',
        '--outer--',
        '',
      ].join(CRLF),
    ),
  ]);
}

describe('planParts', () => {
  test('bodies are the first inline text/plain and text/html; every other leaf is an attachment', () => {
    const s = parseMimeStructure(message());
    const plan = planParts(s.root);
    assert.equal(plan.text?.part, '1.1');
    assert.equal(plan.html?.part, '1.2.1');
    assert.deepEqual(plan.attachments.map((p) => p.part), ['1.2.2', '2', '3', '4']);
    assert.equal(plan.attachments[3].contentType.subtype, 'rfc822', 'an encapsulated message is one attachment, its text no body');
  });

  test('a single-part message: its body is part 1; a text part with a file name is an attachment', () => {
    const single = parseMimeStructure(Buffer.from(`Subject: x${CRLF}${CRLF}hello${CRLF}`));
    const plan = planParts(single.root);
    assert.equal(plan.text, single.root);
    assert.deepEqual(plan.attachments, []);
    const named = parseMimeStructure(Buffer.from(`Content-Type: text/plain; name="a.txt"${CRLF}${CRLF}hello${CRLF}`));
    const p2 = planParts(named.root);
    assert.equal(p2.text, null);
    assert.equal(p2.attachments.length, 1);
  });
});

describe('decoding', () => {
  const part = (type: string, encoding: string, charset?: string): MimePart =>
    ({ contentType: { type: type.split('/')[0], subtype: type.split('/')[1], params: charset ? { charset } : {} }, encoding }) as MimePart;

  test('charsets: labelled ISO-2022-JP, Shift_JIS, EUC-JP, Latin-1; unlabelled and us-ascii-labelled legacy bytes are sniffed', () => {
    assert.deepEqual(decodeCharset(toIso2022jp('会議の件'), 'ISO-2022-JP'), { text: '会議の件', charset: 'iso-2022-jp' });
    assert.deepEqual(decodeCharset(iconv.encode('見積もり①', 'shift_jis'), 'Shift_JIS'), { text: '見積もり①', charset: 'shift_jis' });
    assert.deepEqual(decodeCharset(iconv.encode('日本語', 'euc-jp'), 'euc-jp'), { text: '日本語', charset: 'euc-jp' });
    assert.deepEqual(decodeCharset(iconv.encode('Grüße', 'latin1'), 'iso-8859-1'), { text: 'Grüße', charset: 'iso-8859-1' });
    assert.deepEqual(decodeCharset(iconv.encode('宣言のないシフトJISの本文です。', 'shift_jis'), undefined), { text: '宣言のないシフトJISの本文です。', charset: 'shift_jis' });
    assert.deepEqual(decodeCharset(toIso2022jp('ラベルなし'), 'us-ascii'), { text: 'ラベルなし', charset: 'iso-2022-jp' });
    assert.deepEqual(decodeCharset(Buffer.from('plain'), undefined), { text: 'plain', charset: 'us-ascii' });
    // Labelled UTF-8 carrying a raw ISO-2022-JP run (mislabelled mail) is repaired too.
    assert.equal(decodeCharset(Buffer.concat([Buffer.from('x '), toIso2022jp('日本')]), 'utf-8').text, 'x 日本');
    assert.equal(decodeCharset(Buffer.from('caf\xc3\xa9', 'latin1'), 'no-such-charset').text, 'café');
  });

  test('transfer encodings: base64, quoted-printable with soft breaks, 7bit; NUL removed', () => {
    assert.equal(decodeBody(part('text/plain', 'base64', 'utf-8'), Buffer.from(Buffer.from('héllo').toString('base64')), 100).content, 'héllo');
    assert.equal(decodeBody(part('text/plain', 'quoted-printable', 'utf-8'), Buffer.from(`caf=C3=A9 =${CRLF}soft=3D`), 100).content, 'café soft=');
    assert.equal(decodeBody(part('text/plain', '7bit'), Buffer.from('a\u0000b'), 100).content, 'ab');
  });

  test('the cap: cut on a character boundary at most maxBytes, truncated set; a partly read body is truncated', () => {
    const text = 'あいうえお'; // 15 UTF-8 bytes
    const full = decodeBody(part('text/plain', '8bit', 'utf-8'), Buffer.from(text), 15);
    assert.deepEqual([full.content, full.truncated], [text, false]);
    const cut = decodeBody(part('text/plain', '8bit', 'utf-8'), Buffer.from(text), 10);
    assert.deepEqual([cut.content, cut.truncated], ['あいう', true]);
    assert.equal(decodeBody(part('text/plain', '8bit', 'utf-8'), Buffer.from(text), 100, true).truncated, true);
  });

  test('estimated decoded size of a base64 part with CRLF lines is exact up to padding', () => {
    const s = parseMimeStructure(message());
    const pdf = planParts(s.root).attachments.find((p) => p.filename === 'a.pdf')!;
    assert.ok(Math.abs(estimateDecodedSize(pdf) - PDF.length) <= 2, `${estimateDecodedSize(pdf)} vs ${PDF.length}`);
  });

  test('streaming base64: any chunk size gives the same bytes; whitespace and junk skipped', async () => {
    const bytes = randomBytes(1000);
    const encoded = Buffer.from(lines76(bytes.toString('base64')));
    for (let size = 1; size <= 13; size++) assert.ok((await throughChunks(() => new Base64DecodeStream(), encoded, size)).equals(bytes), `chunk size ${size}`);
    assert.ok((await throughChunks(() => new Base64DecodeStream(), Buffer.from(' QU\r\n JD\t!'), 3)).equals(Buffer.from('ABC')));
  });

  test('streaming quoted-printable: escapes and soft breaks split across chunks, transport padding', async () => {
    const encoded = Buffer.from(`caf=C3=A9 =${CRLF}soft =  ${CRLF}padded=3D=\nlf=E3=81=82 end=`);
    const expected = decodeBody(part('text/plain', 'quoted-printable', 'utf-8'), encoded, 1000).content;
    assert.equal(expected, 'café soft padded=lfあ end=');
    for (let size = 1; size <= 11; size++) {
      const out = await throughChunks(() => new QuotedPrintableDecodeStream(), encoded, size);
      assert.equal(out.toString('utf8'), expected, `chunk size ${size}`);
    }
    assert.equal(QuotedPrintableDecodeStream.incompleteTail(Buffer.from('ab=')), 1);
    assert.equal(QuotedPrintableDecodeStream.incompleteTail(Buffer.from('ab=4')), 2);
    assert.equal(QuotedPrintableDecodeStream.incompleteTail(Buffer.from('ab=41')), 0);
    assert.equal(QuotedPrintableDecodeStream.incompleteTail(Buffer.from('ab= \t\r')), 4);
    assert.equal(QuotedPrintableDecodeStream.incompleteTail(Buffer.from('ab=\r\n')), 0);
    assert.equal(QuotedPrintableDecodeStream.incompleteTail(Buffer.from('a=b c')), 0);
  });
});

describe('reading from the blob', () => {
  test('readRanges: the bytes of each range from one pass, nothing read far past the last range', async () => {
    const bytes = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
    const stream = chunked(bytes, 4);
    const [a, b, c] = await readRanges(stream, [{ start: 2, end: 7 }, { start: 9, end: 10 }, { start: 5, end: 13 }]);
    assert.deepEqual([a.toString(), b.toString(), c.toString()], ['23456', '9', '56789abc']);
    assert.equal(stream.destroyed, true);
    // A large blob: only the stream's read-ahead (16 KiB) beyond the ranges is ever pulled.
    const big = chunked(randomBytes(1024 * 1024), 1024);
    const [head] = await readRanges(big, [{ start: 0, end: 3000 }]);
    assert.equal(head.length, 3000);
    assert.ok(big.pulled() < 40, `pulled ${big.pulled()} of 1024 chunks`);
  });

  test('sliceStream: exactly [start, end) across chunks, and the source is closed early', async () => {
    const bytes = randomBytes(1024 * 1024);
    for (const size of [1, 3, 7, 64, 1024]) {
      const source = chunked(bytes, size);
      const out = await collect(sliceStream(source, 10, 5000));
      assert.ok(out.equals(bytes.subarray(10, 5000)), `chunk size ${size}`);
      assert.equal(source.destroyed, true);
      assert.ok(source.pulled() * size < 5000 + 64 * 1024, `chunk size ${size}: pulled ${source.pulled() * size} bytes`);
    }
  });

  test('threadHeaders: folded References, the first In-Reply-To id, none', () => {
    const s = message();
    assert.deepEqual(threadHeaders(s.subarray(0, s.indexOf('\r\n\r\n') + 4)), {
      inReplyTo: '<parent@example.jp>',
      references: ['<root@example.jp>', '<parent@example.jp>'],
    });
    assert.deepEqual(threadHeaders(Buffer.from(`Subject: x${CRLF}${CRLF}`)), { inReplyTo: null, references: [] });
    const many = Array.from({ length: 150 }, (_, i) => `<r${i}@x>`).join(' ');
    const refs = threadHeaders(Buffer.from(`References: ${many}${CRLF}${CRLF}`)).references;
    assert.equal(refs.length, 100);
    assert.equal(refs[99], '<r149@x>', 'the newest ids are kept');
  });

  test('readMessageView: decoded bodies and the attachment list, from a chunked blob', async () => {
    const raw = message();
    const structure = parseMimeStructure(raw);
    let opened = 0;
    const open = async () => {
      opened++;
      return chunked(raw, 17);
    };
    const view = await readMessageView(structure, open);
    assert.equal(opened, 1);
    assert.deepEqual(view.text, { content: 'こんにちは、世界', truncated: false, charset: 'iso-2022-jp' });
    assert.deepEqual(view.html, { content: '<p>こんにちは</p>', truncated: false, charset: 'shift_jis' });
    assert.deepEqual(view.inReplyTo, '<parent@example.jp>');
    assert.deepEqual(
      view.attachments.map((a) => [a.partId, a.filename, a.contentType, a.disposition, a.contentId]),
      [
        ['1.2.2', null, 'image/png', 'inline', 'logo@example.jp'],
        ['2', 'a.pdf', 'application/pdf', 'attachment', null],
        ['3', 'notes.txt', 'text/plain', 'attachment', null],
        ['4', null, 'message/rfc822', null, null],
      ],
    );
    const small = await readMessageView(structure, open, { maxBodyBytes: 6 });
    assert.deepEqual([small.text?.content, small.text?.truncated], ['こん', true]);
  });

  test('openPart: decoded content of any leaf; containers and unknown parts are not found', async () => {
    const raw = message();
    const structure = parseMimeStructure(raw);
    const open = async () => chunked(raw, 13);
    const pdf = await openPart(structure, '2', open);
    assert.ok((await collect(pdf.stream)).equals(PDF));
    assert.equal(pdf.info.filename, 'a.pdf');
    const inner = await openPart(structure, '4', open);
    assert.equal((await collect(inner.stream)).toString(), `Subject: inner${CRLF}Content-Type: text/plain${CRLF}${CRLF}inner body is not the outer body`);
    const text = await openPart(structure, '1.1', open);
    assert.equal(text.charset, 'ISO-2022-JP');
    assert.ok((await collect(text.stream)).equals(toIso2022jp('こんにちは、世界')));
    for (const id of ['', '1', '1.2', '9', '2.1', '1.1.1']) await assert.rejects(openPart(structure, id, open), PartNotFoundError, `part "${id}"`);
  });

  test('openPart: a reader that goes away closes the blob stream', async () => {
    const raw = Buffer.from(
      ['Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '', lines76(randomBytes(1024 * 1024).toString('base64')) + '--b--', ''].join(CRLF),
    );
    const source = chunked(raw, 1024);
    const { stream } = await openPart(parseMimeStructure(raw), '1', async () => source);
    for await (const _ of stream) break; // one chunk, then the reader leaves
    await new Promise((r) => setImmediate(r));
    assert.equal(source.destroyed, true);
    assert.ok(source.pulled() * 1024 < raw.length / 4, `read ${source.pulled()} KiB of ${Math.round(raw.length / 1024)} KiB`);
  });

  test('loadStructure: the stored structure when usable (no blob read), else the blob parsed', async () => {
    const raw = message();
    const json = JSON.stringify(parseMimeStructure(raw));
    let opened = 0;
    const open = async () => {
      opened++;
      return chunked(raw, 100);
    };
    const stored = await loadStructure(json, open);
    assert.equal(opened, 0);
    assert.equal(stored.root.children.length, 4);
    for (const bad of [null, '', 'not json', '{"root":{"part":""}}', '[]']) {
      assert.equal(parseStoredStructure(bad), null, String(bad));
      const parsed = await loadStructure(bad, open);
      assert.deepEqual(parsed, JSON.parse(json));
    }
    assert.equal(opened, 5);
  });
});
