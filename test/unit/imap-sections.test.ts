/**
 * BODY[section]<partial> (RFC 9051 §6.4.5) and BINARY (RFC 3516) over messages held in memory:
 * exact bytes for every section form, the part numbering of non-multipart and message/rfc822
 * parts, partial windows, header field filtering, transfer decoding and the errors.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { readAll } from '../../src/store/blob/blob-store.js';
import {
  binarySize,
  fetchBinary,
  fetchSection,
  HeaderFieldFilter,
  inMemoryMessageContent,
  NoSuchPartError,
  partialWindow,
  UnknownCteError,
  type MessageContent,
} from '../../src/protocols/imap/fetch/index.js';
import type { SectionSpec } from '../../src/protocols/imap/parser/types.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/mime/${name}`, import.meta.url));
const crlf = (text: string) => Buffer.from(text.replace(/\n/g, '\r\n'));

/** `3.HEADER.FIELDS (A B)`-like shorthand → SectionSpec. */
function spec(s: string, fields?: string[]): SectionSpec {
  const parts = s === '' ? [] : s.split('.');
  const numbers: number[] = [];
  while (parts.length > 0 && /^\d+$/.test(parts[0])) numbers.push(Number(parts.shift()));
  const text = parts.length > 0 ? (parts.join('.') as SectionSpec['text']) : undefined;
  return { part: numbers, ...(text ? { text } : {}), ...(fields ? { fields } : {}) };
}

async function section(content: MessageContent, s: string, partial?: { start: number; length: number }, fields?: string[]): Promise<string> {
  const body = await fetchSection(content, spec(s, fields), partial);
  const bytes = await readAll(await body.open());
  assert.equal(bytes.length, body.size, `size of ${s} matches its bytes`);
  return bytes.toString('latin1');
}

describe('BODY[section] of the RFC 9051 §6.4.5 sample', () => {
  const raw = fixture('rfc9051-example.eml');
  const content = inMemoryMessageContent(raw);
  const rootHeader = 'From: alice@example.com\r\nSubject: RFC 9051 section 6.4.5 example\r\nContent-Type: MULTIPART/MIXED; boundary="b0"\r\n\r\n';

  test('[] is the whole message, HEADER ends with the blank line, TEXT is the rest', async () => {
    assert.equal(await section(content, ''), raw.toString('latin1'));
    assert.equal(await section(content, 'HEADER'), rootHeader);
    assert.equal(await section(content, 'TEXT'), raw.toString('latin1').slice(rootHeader.length));
  });

  test('numbered parts are their bodies, without the line break before the delimiter', async () => {
    assert.equal(await section(content, '1'), 'part 1');
    assert.equal(await section(content, '2'), 'part 2');
    assert.equal(await section(content, '3.1'), 'part 3.1');
    assert.equal(await section(content, '3.2'), 'part 3.2');
    assert.equal(await section(content, '4.1'), 'part 4.1');
    assert.equal(await section(content, '4.2.1'), 'part 4.2.1');
    assert.equal(await section(content, '4.2.2.1'), 'part 4.2.2.1');
    assert.equal(await section(content, '4.2.2.2'), 'part 4.2.2.2');
  });

  test('a message/rfc822 part: the whole encapsulated message; HEADER and TEXT of it', async () => {
    const header3 = 'Subject: part 3\r\nContent-Type: MULTIPART/MIXED; boundary="b3"\r\n\r\n';
    const text3 = '--b3\r\nContent-Type: TEXT/PLAIN\r\n\r\npart 3.1\r\n--b3\r\nContent-Type: APPLICATION/OCTET-STREAM\r\n\r\npart 3.2\r\n--b3--';
    assert.equal(await section(content, '3'), header3 + text3);
    assert.equal(await section(content, '3.HEADER'), header3);
    assert.equal(await section(content, '3.TEXT'), text3);
    assert.equal(await section(content, '4.2.HEADER'), 'Subject: part 4.2\r\nContent-Type: MULTIPART/MIXED; boundary="b42"\r\n\r\n');
  });

  test('a multipart part is its body with the delimiters', async () => {
    assert.equal(
      await section(content, '4.2.2'),
      '--b422\r\nContent-Type: TEXT/PLAIN\r\n\r\npart 4.2.2.1\r\n--b422\r\nContent-Type: TEXT/RICHTEXT\r\n\r\npart 4.2.2.2\r\n--b422--',
    );
  });

  test('MIME is the part\'s own header', async () => {
    assert.equal(await section(content, '1.MIME'), 'Content-Type: TEXT/PLAIN\r\n\r\n');
    assert.equal(await section(content, '3.MIME'), 'Content-Type: MESSAGE/RFC822\r\n\r\n');
    assert.equal(await section(content, '4.1.MIME'), 'Content-Type: IMAGE/GIF\r\n\r\n');
    assert.equal(await section(content, '4.2.2.MIME'), 'Content-Type: MULTIPART/ALTERNATIVE; boundary="b422"\r\n\r\n');
  });

  test('HEADER.FIELDS keeps the message order and ends with CRLF; .NOT keeps the others', async () => {
    assert.equal(await section(content, 'HEADER.FIELDS', undefined, ['SUBJECT', 'FROM']), 'From: alice@example.com\r\nSubject: RFC 9051 section 6.4.5 example\r\n\r\n');
    assert.equal(
      await section(content, 'HEADER.FIELDS.NOT', undefined, ['SUBJECT']),
      'From: alice@example.com\r\nContent-Type: MULTIPART/MIXED; boundary="b0"\r\n\r\n',
    );
    assert.equal(await section(content, 'HEADER.FIELDS', undefined, ['X-NONE']), '\r\n');
    assert.equal(await section(content, '3.HEADER.FIELDS', undefined, ['subject']), 'Subject: part 3\r\n\r\n');
  });

  test('parts that do not exist, and HEADER/TEXT of a part that is no message', async () => {
    for (const s of ['5', '1.1', '4.3', '4.2.2.3', '0', '2.HEADER', '1.TEXT', '4.HEADER.FIELDS', 'MIME']) {
      await assert.rejects(() => fetchSection(content, spec(s, ['A'])), NoSuchPartError, s);
    }
  });

  test('partials: <start.length> windows, a start at or past the end is empty', async () => {
    assert.equal(await section(content, '', { start: 0, length: 10 }), 'From: alic');
    assert.equal(await section(content, '1', { start: 2, length: 100 }), 'rt 1');
    assert.equal(await section(content, '1', { start: 5, length: 1 }), '1');
    assert.equal(await section(content, '1', { start: 6, length: 5 }), '');
    assert.equal(await section(content, '1', { start: 100, length: 5 }), '');
    assert.equal(await section(content, '1', { start: 0, length: 0 }), '');
    assert.equal(await section(content, 'HEADER.FIELDS', { start: 6, length: 5 }, ['FROM']), 'alice');
    assert.equal(await section(content, 'HEADER.FIELDS', { start: 20, length: 4294967295 }, ['FROM']), 'com\r\n\r\n');
  });
});

describe('BODY[section] of other shapes', () => {
  test('a non-multipart message: part 1 is its body; part 2 and 1.HEADER do not exist', async () => {
    const raw = fixture('single-part.eml');
    const content = inMemoryMessageContent(raw);
    const body = raw.subarray(raw.indexOf('\r\n\r\n') + 4).toString('latin1');
    assert.equal(await section(content, '1'), body);
    assert.equal(await section(content, 'TEXT'), body);
    await assert.rejects(() => fetchSection(content, spec('2')), NoSuchPartError);
    await assert.rejects(() => fetchSection(content, spec('1.HEADER')), NoSuchPartError);
  });

  test('message/rfc822 holding a single-part message: 2.1 is that message\'s body', async () => {
    const raw = crlf('Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nfirst\n--b\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner body\n--b--\n');
    const content = inMemoryMessageContent(raw);
    assert.equal(await section(content, '2'), 'Subject: inner\r\n\r\ninner body');
    assert.equal(await section(content, '2.1'), 'inner body');
    assert.equal(await section(content, '2.TEXT'), 'inner body');
    assert.equal(await section(content, '2.HEADER'), 'Subject: inner\r\n\r\n');
    await assert.rejects(() => fetchSection(content, spec('2.2')), NoSuchPartError);
  });

  test('HEADER.FIELDS keeps folded lines as written; names compare case-insensitively', async () => {
    const content = inMemoryMessageContent(fixture('mixed-nested.eml'));
    assert.equal(await section(content, 'HEADER.FIELDS', undefined, ['CONTENT-TYPE']), 'Content-Type: multipart/mixed;\r\n boundary="==mix==part"\r\n\r\n');
    assert.equal(await section(content, 'HEADER.FIELDS', undefined, ['content-type', 'MIME-VERSION']), 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary="==mix==part"\r\n\r\n');
  });

  test('LF-only mail: the lines are kept as written, the header still ends with CRLF', async () => {
    const content = inMemoryMessageContent(fixture('lf-only.eml'));
    assert.equal(await section(content, 'HEADER.FIELDS', undefined, ['SUBJECT']), 'Subject: LF only\n\r\n');
  });

  test('a header without blank line or final line break', async () => {
    const content = inMemoryMessageContent(fixture('no-separator.eml'));
    assert.equal(await section(content, 'HEADER.FIELDS', undefined, ['CONTENT-TYPE']), 'Content-Type: text/plain\r\n\r\n');
    const cut = inMemoryMessageContent(Buffer.from('From: a@b\r\nSubject: cut'));
    assert.equal(await section(cut, 'HEADER.FIELDS', undefined, ['SUBJECT']), 'Subject: cut\r\n\r\n');
    assert.equal(await section(cut, 'TEXT'), '');
  });

  test('HEADER.FIELDS.NOT keeps lines that are no field', async () => {
    const content = inMemoryMessageContent(fixture('header-no-colon.eml'));
    assert.equal(await section(content, 'HEADER.FIELDS.NOT', undefined, ['CONTENT-TYPE']), 'From: alice@example.com\r\nThis line has no colon\r\n\r\n');
    assert.equal(await section(content, 'HEADER.FIELDS', undefined, ['FROM']), 'From: alice@example.com\r\n\r\n');
  });
});

describe('HeaderFieldFilter', () => {
  test('the same result whatever the chunk borders', () => {
    const header = Buffer.from('Subject: one\r\n two\r\nFrom: a@b\r\nTo: c@d\r\n\r\nSubject: body\r\n');
    const whole = new HeaderFieldFilter(['subject', 'to'], false);
    whole.write(header);
    const expected = 'Subject: one\r\n two\r\nTo: c@d\r\n\r\n';
    assert.equal(whole.end().toString(), expected);
    const bytewise = new HeaderFieldFilter(['SUBJECT', 'TO'], false);
    for (const b of header) bytewise.write(Buffer.from([b]));
    assert.equal(bytewise.done, true);
    assert.equal(bytewise.end().toString(), expected);
  });
});

describe('partialWindow', () => {
  test('windows inside a section', () => {
    assert.deepEqual(partialWindow(10), { offset: 0, length: 10 });
    assert.deepEqual(partialWindow(10, { start: 3, length: 4 }), { offset: 3, length: 4 });
    assert.deepEqual(partialWindow(10, { start: 8, length: 4 }), { offset: 8, length: 2 });
    assert.deepEqual(partialWindow(10, { start: 10, length: 4 }), { offset: 10, length: 0 });
    assert.deepEqual(partialWindow(0, { start: 0, length: 4 }), { offset: 0, length: 0 });
  });
});

describe('BINARY (RFC 3516)', () => {
  const pdf = Buffer.from('255044462d312e340a25c7ec8fa20a312030206f626a0a', 'hex'); // "%PDF-1.4\n%…\n1 0 obj\n"

  test('base64 content is decoded; BINARY.SIZE counts the decoded octets', async () => {
    const content = inMemoryMessageContent(fixture('mixed-nested.eml'));
    assert.deepEqual(await fetchBinary(content, [2]), pdf);
    assert.equal(await binarySize(content, [2]), 23);
    assert.deepEqual(await fetchBinary(content, [2], { start: 1, length: 3 }), Buffer.from('PDF'));
    assert.deepEqual(await fetchBinary(content, [2], { start: 23, length: 3 }), Buffer.alloc(0));
  });

  test('quoted-printable content is decoded (soft line breaks removed)', async () => {
    const content = inMemoryMessageContent(crlf('Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9 soft=\nbreak=3D\n'));
    assert.deepEqual(await fetchBinary(content, [1]), Buffer.from('café softbreak=\r\n'));
    assert.equal(await binarySize(content, [1]), 18);
  });

  test('identity encodings and multiparts are returned as they are; [] is the whole message', async () => {
    const single = fixture('single-part.eml');
    const content = inMemoryMessageContent(single);
    assert.deepEqual(await fetchBinary(content, [1]), single.subarray(single.indexOf('\r\n\r\n') + 4));
    assert.deepEqual(await fetchBinary(content, []), single);
    assert.equal(await binarySize(content, []), single.length);
    const nested = inMemoryMessageContent(fixture('mixed-nested.eml'));
    assert.match((await fetchBinary(nested, [1])).toString(), /^--==mix==\r\nContent-Type: text\/plain/);
  });

  test('decoded bytes may contain NUL (the caller sends literal8)', async () => {
    const content = inMemoryMessageContent(crlf('Content-Transfer-Encoding: base64\n\nAAEA/w==\n'));
    assert.deepEqual(await fetchBinary(content, [1]), Buffer.from([0x00, 0x01, 0x00, 0xff]));
  });

  test('partial windows of a large base64 part read in small chunks match the decoded bytes', async () => {
    const data = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 256));
    const encoded = data.toString('base64').replace(/.{76}/g, '$&\r\n');
    const memory = inMemoryMessageContent(Buffer.from(`Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${encoded}\r\n`));
    // The same message delivered in 1000-byte chunks, as a blob store stream would.
    const chunked: MessageContent = {
      ...memory,
      open: async (start, end) => {
        const bytes = await memory.read(start, end);
        return Readable.from(Array.from({ length: Math.ceil(bytes.length / 1000) }, (_, i) => bytes.subarray(i * 1000, (i + 1) * 1000)));
      },
    };
    assert.equal(await binarySize(chunked, [1]), data.length);
    assert.deepEqual(await fetchBinary(chunked, [1]), data);
    for (const [start, length] of [[0, 65536], [65536, 65536], [196608, 65536], [123_457, 1], [199_999, 10], [200_000, 10]]) {
      assert.deepEqual(await fetchBinary(chunked, [1], { start, length }), data.subarray(start, start + length), `<${start}.${length}>`);
    }
  });

  test('an unknown transfer encoding is UnknownCteError; a missing part NoSuchPartError', async () => {
    const content = inMemoryMessageContent(crlf('Content-Transfer-Encoding: x-uuencode\n\nbegin 644 a\n'));
    await assert.rejects(() => fetchBinary(content, [1]), UnknownCteError);
    await assert.rejects(() => binarySize(content, [1]), UnknownCteError);
    await assert.rejects(() => fetchBinary(content, [2]), NoSuchPartError);
  });
});
