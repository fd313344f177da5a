/**
 * Cross-check against mailparser over the existing message corpus (test/fixtures/mail): the text
 * of the text/plain parts, cut out of the message by our offsets and decoded, is the text
 * mailparser finds; the attachment file names are the ones it finds.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { listParts, parseMimeStructure, type MimePart } from '../../src/mail/mime/index.js';
import { decodeBytes } from '../../src/mail/charset.js';
import { corpus, decodeQuotedPrintable } from '../fixtures/mime/support.js';

function isInlineText(part: MimePart): boolean {
  return (
    part.children.length === 0 &&
    part.message === null &&
    part.contentType.type === 'text' &&
    part.contentType.subtype === 'plain' &&
    part.disposition?.type !== 'attachment'
  );
}

function decodedText(raw: Buffer, part: MimePart): string {
  let bytes = raw.subarray(part.bodyStart, part.bodyEnd);
  if (part.encoding === 'base64') bytes = Buffer.from(bytes.toString('latin1'), 'base64');
  else if (part.encoding === 'quoted-printable') bytes = decodeQuotedPrintable(bytes);
  return decodeBytes(bytes, part.contentType.params.charset ?? 'us-ascii');
}

const normalise = (text: string) => text.replace(/\r\n/g, '\n').trim();

/**
 * Messages whose first line is no header field: mailparser reads the whole message as a header
 * (and finds no text); we read it as a message with an empty header whose body is all of it.
 */
const NO_HEADER = new Set(['mail/no-headers.eml', 'mail/garbage.bin.eml']);

describe('the message corpus against mailparser', () => {
  const messages = corpus().filter(([name]) => name.startsWith('mail/'));

  for (const [name, raw] of messages) {
    test(name, async () => {
      const structure = parseMimeStructure(raw);
      const parsed = await simpleParser(raw);
      const ours = normalise(
        listParts(structure.root)
          .filter(isInlineText)
          .map((part) => decodedText(raw, part))
          .join('\n'),
      );
      if (NO_HEADER.has(name)) {
        assert.equal(parsed.text ?? '', '');
        assert.equal(structure.root.headerEnd, 0);
        assert.equal(structure.root.bodyEnd, raw.length);
        return;
      }
      assert.equal(ours, normalise(parsed.text ?? ''));
      const filenames = listParts(structure.root)
        .map((part) => part.filename)
        .filter((filename) => filename !== null);
      assert.deepEqual(filenames, parsed.attachments.map((a) => a.filename));
    });
  }

  test('file names in the hand-built RFC 2231 / RFC 2047 fixtures match mailparser too', async () => {
    for (const [name, raw] of corpus().filter(([n]) => /rfc2231|rfc2047|mixed-nested/.test(n))) {
      const parsed = await simpleParser(raw);
      const ours = listParts(parseMimeStructure(raw).root)
        .map((part) => part.filename)
        .filter((filename) => filename !== null);
      assert.deepEqual(ours, parsed.attachments.map((a) => a.filename), name);
    }
  });
});
