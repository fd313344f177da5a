/**
 * The structure must not depend on how the message is cut into chunks: every fixture gives the
 * same structure fed all at once, byte by byte, and in random (seeded) chunk sizes — including
 * chunk borders between CR and LF, inside delimiters and inside long header fields.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { MimeStructureParser, parseMimeStructure, type MimeStructure } from '../../src/mail/mime/index.js';
import { corpus, prng } from '../fixtures/mime/support.js';

function feed(raw: Buffer, sizes: () => number): MimeStructure {
  const parser = new MimeStructureParser();
  for (let pos = 0; pos < raw.length; ) {
    const n = Math.max(1, sizes());
    // A copy, so the parser cannot rely on seeing the caller's buffer again.
    parser.write(Buffer.from(raw.subarray(pos, pos + n)));
    pos += n;
  }
  return parser.end();
}

/** A larger message whose lines are longer than typical chunks and whose delimiters straddle them. */
function longLines(): Buffer {
  const random = prng(7);
  const line = (n: number) => Array.from({ length: n }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join('');
  return Buffer.from(
    [
      'From: long@example.com',
      `X-Long: ${line(3000)}`,
      'Content-Type: multipart/mixed;',
      ` boundary="${'b'.repeat(69)}"; x-pad="${line(2000)}"`,
      '',
      `--${'b'.repeat(69)}`,
      'Content-Type: text/plain',
      '',
      line(5000),
      line(10),
      `--${'b'.repeat(69)}${' '.repeat(300)}`,
      'Content-Type: application/octet-stream',
      `Content-Disposition: attachment; filename="${line(1500)}.bin"`,
      '',
      line(20000),
      `--${'b'.repeat(69)}--`,
      '',
    ].join('\r\n'),
  );
}

describe('chunking does not change the structure', () => {
  const messages: [string, Buffer][] = [...corpus(), ['long-lines (generated)', longLines()]];

  for (const [name, raw] of messages) {
    test(name, () => {
      const whole = parseMimeStructure(raw);
      assert.deepEqual(feed(raw, () => 1), whole, 'byte by byte');
      for (const seed of [1, 2, 3]) {
        const random = prng(seed);
        assert.deepEqual(feed(raw, () => 1 + Math.floor(random() * 97)), whole, `random chunks up to 97 bytes, seed ${seed}`);
        assert.deepEqual(feed(raw, () => 1 + Math.floor(random() * 4096)), whole, `random chunks up to 4 KiB, seed ${seed}`);
      }
      // Every two-chunk split: the one border lands on every byte once.
      if (raw.length <= 4096) {
        for (let cut = 1; cut < raw.length; cut++) {
          const parser = new MimeStructureParser();
          parser.write(raw.subarray(0, cut));
          parser.write(raw.subarray(cut));
          assert.deepEqual(parser.end(), whole, `split at ${cut}`);
        }
      }
    });
  }

  test('empty chunks and writes after end() are ignored; end() returns the same structure again', () => {
    const raw = readFileSync(new URL('../fixtures/mime/alternative.eml', import.meta.url));
    const parser = new MimeStructureParser();
    parser.write(Buffer.alloc(0));
    parser.write(raw);
    parser.write(Buffer.alloc(0));
    const first = parser.end();
    parser.write(Buffer.from('--alt-1\r\n\r\nmore\r\n'));
    assert.equal(parser.end(), first);
    assert.deepEqual(first, parseMimeStructure(raw));
  });

  test('the corpus directories are not empty', () => {
    assert.ok(readdirSync(new URL('../fixtures/mime/', import.meta.url)).filter((f) => f.endsWith('.eml')).length >= 10);
    assert.ok(readdirSync(new URL('../fixtures/mail/', import.meta.url)).filter((f) => f.endsWith('.eml')).length >= 10);
  });
});
