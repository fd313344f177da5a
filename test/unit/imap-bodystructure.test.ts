/**
 * BODYSTRUCTURE and BODY (RFC 9051 §7.5.2, §9 `body`) from MIME structures with byte offsets. The
 * expected strings were written by hand from the fixtures (sizes are the octets between a part's
 * blank line and the line break before the next delimiter, RFC 2046 §5.1.1) and follow Dovecot's
 * conventions where the RFC leaves a choice.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { buildBodyStructure, encapsulatedMessages } from '../../src/mail/imap/index.js';
import { parseMimeStructure, type MimePart } from '../../src/mail/mime/index.js';
import { encodeValue } from '../../src/protocols/imap/encoder/index.js';

function load(path: string): Buffer {
  return readFileSync(new URL(`../fixtures/${path}`, import.meta.url));
}

function structure(raw: Buffer, extensible: boolean): string {
  const s = parseMimeStructure(raw);
  const headerOf = (p: MimePart) => raw.subarray(p.headerStart, p.headerEnd);
  return encodeValue(buildBodyStructure(s.root, headerOf, extensible), { utf8: false }).toString();
}

const crlf = (text: string) => Buffer.from(text.replace(/\n/g, '\r\n'));

describe('BODYSTRUCTURE', () => {
  test('RFC 9051 §7.5.2 single text part: lines, size, parameters as written', () => {
    const raw = crlf('From: a@b\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\n\nline one\nline two\n');
    assert.equal(structure(raw, true), '("text" "plain" ("charset" "US-ASCII") NIL NIL "7bit" 20 2 NIL NIL NIL NIL)');
    assert.equal(structure(raw, false), '("text" "plain" ("charset" "US-ASCII") NIL NIL "7bit" 20 2)');
  });

  test('no Content-Type: text/plain with the default charset (RFC 2045 §5.2)', () => {
    assert.equal(structure(crlf('Subject: x\n\nbody\n'), true), '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)');
  });

  test('a text part without charset gets charset us-ascii after its own parameters', () => {
    assert.equal(structure(crlf('Content-Type: text/html; format=flowed\n\n<p>\n'), false), '("text" "html" ("format" "flowed" "charset" "us-ascii") NIL NIL "7bit" 5 1)');
  });

  test('a non-text leaf has no line count and NIL parameters when it has none', () => {
    assert.equal(
      structure(crlf('Content-Type: application/octet-stream\nContent-Transfer-Encoding: BASE64\n\nAAEC\n'), true),
      '("application" "octet-stream" NIL NIL NIL "base64" 6 NIL NIL NIL NIL)',
    );
  });

  test('every Content-* field; message/rfc822 with envelope, nested multipart and line count', () => {
    const raw = load('imap/bodystructure-sample.eml');
    const notes =
      '("text" "x-notes" ("charset" "us-ascii" "label" "say \\"hi\\"") "<notes@example.org>" "meeting notes" "7bit" 7 1';
    const envelope =
      '("Sun, 1 Nov 2026 18:30:00 +0000" "forwarded" ((NIL NIL "dave" "example.org")) ((NIL NIL "dave" "example.org")) ' +
      '((NIL NIL "dave" "example.org")) ((NIL NIL "erin" "example.org")(NIL NIL "frank" "example.org")) NIL NIL NIL NIL)';
    assert.equal(
      structure(raw, true),
      `(${notes} "bm90ZXMgbWQ1IHZhbHVl" ("inline" ("creation-date" "Mon, 2 Nov 2026 08:00:00 +0100")) ("en" "ja") "https://example.org/notes.txt")` +
        `("message" "rfc822" NIL NIL NIL "7bit" 398 ${envelope} ` +
        '(("text" "html" ("charset" "us-ascii") NIL NIL "8bit" 15 1 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 16 1 NIL NIL NIL NIL) ' +
        '"alternative" ("boundary" "inner") NIL NIL NIL) 21 NIL NIL NIL NIL) "mixed" ("boundary" "outer edge") NIL NIL NIL)',
    );
    assert.equal(
      structure(raw, false),
      `(${notes})("message" "rfc822" NIL NIL NIL "7bit" 398 ${envelope} ` +
        '(("text" "html" ("charset" "us-ascii") NIL NIL "8bit" 15 1)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 16 1) "alternative") 21) "mixed")',
    );
  });

  test('the RFC 9051 §6.4.5 sample: multiparts inside message/rfc822 inside multipart', () => {
    const tp = (n: number) => `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" ${n} 1 NIL NIL NIL NIL)`;
    const oct = (n: number) => `("application" "octet-stream" NIL NIL NIL "7bit" ${n} NIL NIL NIL NIL)`;
    const env = (subject: string) => `(NIL "${subject}" NIL NIL NIL NIL NIL NIL NIL NIL)`;
    assert.equal(
      structure(load('mime/rfc9051-example.eml'), true),
      `(${tp(6)}${oct(6)}("message" "rfc822" NIL NIL NIL "7bit" 173 ${env('part 3')} (${tp(8)}${oct(8)} "mixed" ("boundary" "b3") NIL NIL NIL) 12 NIL NIL NIL NIL)` +
        `(("image" "gif" NIL NIL NIL "7bit" 8 NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7bit" 298 ${env('part 4.2')} ` +
        `(${tp(10)}(${tp(12)}("text" "richtext" ("charset" "us-ascii") NIL NIL "7bit" 12 1 NIL NIL NIL NIL) "alternative" ("boundary" "b422") NIL NIL NIL) "mixed" ("boundary" "b42") NIL NIL NIL) 20 NIL NIL NIL NIL)` +
        ` "mixed" ("boundary" "b4") NIL NIL NIL) "mixed" ("boundary" "b0") NIL NIL NIL)`,
    );
  });

  test('multipart/digest: parts without Content-Type are message/rfc822', () => {
    const msg = (from: string, subject: string, size: number, textSize: number) =>
      `("message" "rfc822" NIL NIL NIL "7bit" ${size} (NIL "${subject}" ((NIL NIL "${from}" "example.com")) ((NIL NIL "${from}" "example.com")) ((NIL NIL "${from}" "example.com")) NIL NIL NIL NIL NIL) ` +
      `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" ${textSize} 1) 4)`;
    assert.equal(
      structure(load('mime/digest.eml'), false),
      `(${msg('one', 'first', 55, 14)}${msg('two', 'second', 57, 15)}("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 25 1) "digest")`,
    );
  });

  test('message/rfc822 with a disposition and a single multipart/alternative inside', () => {
    assert.equal(
      structure(load('mime/rfc822-attachment.eml'), true),
      '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 26 1 NIL NIL NIL NIL)' +
        '("message" "rfc822" NIL NIL NIL "7bit" 215 (NIL "lunch" ((NIL NIL "bob" "example.com")) ((NIL NIL "bob" "example.com")) ((NIL NIL "bob" "example.com")) NIL NIL NIL NIL NIL) ' +
        '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 1 NIL NIL NIL NIL)("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 21 1 NIL NIL NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL) ' +
        '13 NIL ("inline" NIL) NIL NIL) "mixed" ("boundary" "outer") NIL NIL NIL)',
    );
  });

  test('attachment with id, description, disposition parameters and base64 size', () => {
    assert.equal(
      structure(load('mime/mixed-nested.eml'), true),
      '((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 8 1 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 15 1 NIL NIL NIL NIL) "alternative" ("boundary" "==mix==") NIL NIL NIL)' +
        '("application" "pdf" ("name" "report.pdf") "<report@example.com>" "Quarterly report" "base64" 34 NIL ("attachment" ("filename" "report.pdf" "size" "12")) NIL NIL) ' +
        '"mixed" ("boundary" "==mix==part") NIL NIL NIL)',
    );
  });

  test('a message/rfc822 part in base64 is not parsed: a basic part without envelope', () => {
    assert.equal(structure(load('mime/encoded-rfc822.eml'), false), '(("message" "rfc822" NIL NIL NIL "base64" 36) "mixed")');
  });

  test('an empty body, and a header without the blank line', () => {
    assert.equal(structure(load('mime/empty-body.eml'), false), '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)');
    assert.equal(structure(load('mime/no-separator.eml'), false), '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)');
  });

  test('a multipart whose boundary never occurs is one empty text/plain part (as Dovecot)', () => {
    const raw = crlf('Content-Type: multipart/mixed; boundary=nowhere\n\njust text\n');
    assert.equal(structure(raw, true), '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" ("boundary" "nowhere") NIL NIL NIL)');
    assert.equal(structure(raw, false), '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")');
    assert.equal(structure(crlf('Content-Type: multipart/related\n\nno boundary\n'), false), '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "related")');
  });

  test('an invalid transfer encoding is reported as 7bit', () => {
    assert.equal(structure(crlf('Content-Transfer-Encoding: ?weird\n\nx\n'), false), '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)');
  });

  test('non-ASCII parameter values (RFC 2231) are decoded text: literal for 7-bit clients', () => {
    const raw = crlf("Content-Type: application/pdf; name*=utf-8''%E8%A6%8B.pdf\n\nx\n");
    assert.equal(structure(raw, false), '("application" "pdf" ("name" {7}\r\n見.pdf) NIL NIL "7bit" 3)');
  });

  test('only the encapsulated messages\' headers are needed', () => {
    const raw = load('mime/rfc9051-example.eml');
    const s = parseMimeStructure(raw);
    const asked: string[] = [];
    buildBodyStructure(s.root, (p) => (asked.push(p.part), raw.subarray(p.headerStart, p.headerEnd)), true);
    assert.deepEqual(asked, ['3', '4.2']);
    assert.deepEqual(encapsulatedMessages(s.root).map((p) => p.part), ['3', '4.2']);
  });
});
