/**
 * Every limit of the MIME structure parser, with the exact defect it records, and memory that
 * stays bounded whatever the size of the message.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_MIME_LIMITS,
  MAX_DEFECTS,
  MimeStructureParser,
  findPart,
  listParts,
  parseMimeStructure,
  resolveMimeLimits,
  type MimePart,
} from '../../src/mail/mime/index.js';

const CHUNK = 64 * 1024;

function depthOf(part: MimePart): number {
  const below = [...part.children, ...(part.message ? [part.message] : [])];
  return below.length === 0 ? 0 : 1 + Math.max(...below.map(depthOf));
}

/** `levels` multiparts nested in each other, the innermost holding one text part. */
function nested(levels: number): Buffer {
  let out = '';
  for (let i = 0; i < levels; i++) out += `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`;
  out += 'Content-Type: text/plain\r\n\r\ninnermost\r\n';
  for (let i = levels - 1; i >= 0; i--) out += `--b${i}--\r\n`;
  return Buffer.from(out);
}

function manyParts(count: number): Buffer {
  let out = 'Content-Type: multipart/mixed; boundary="m"\r\n\r\n';
  for (let i = 1; i <= count; i++) out += `--m\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`;
  return Buffer.from(out + '--m--\r\n');
}

/** Feeds `raw` in 64 KiB chunks and returns the structure and the most the parser held. */
function feedChunks(raw: Buffer): { structure: ReturnType<MimeStructureParser['end']>; maxRetained: number } {
  const parser = new MimeStructureParser();
  let maxRetained = 0;
  for (let pos = 0; pos < raw.length; pos += CHUNK) {
    parser.write(raw.subarray(pos, pos + CHUNK));
    maxRetained = Math.max(maxRetained, parser.retainedBytes());
  }
  return { structure: parser.end(), maxRetained };
}

describe('nesting depth', () => {
  test('40 levels: parsed to depth 32, the multipart at depth 32 is an opaque leaf', () => {
    const raw = nested(40);
    const s = parseMimeStructure(raw);
    assert.equal(s.truncated, true);
    const deepest = '1' + '.1'.repeat(31); // 32 levels below the root
    assert.deepEqual(s.defects, [{ code: 'depth-limit', part: deepest, offset: findPart(s.root, deepest)!.bodyStart }]);
    assert.equal(depthOf(s.root), 32);
    const leaf = findPart(s.root, deepest)!;
    assert.equal(leaf.contentType.subtype, 'mixed');
    assert.deepEqual(leaf.children, []);
    // Its body is everything inside it, up to the delimiter of its parent.
    assert.ok(raw.subarray(leaf.bodyStart, leaf.bodyEnd).toString().startsWith('--b32\r\nContent-Type: multipart/mixed; boundary="b33"'));
    assert.ok(raw.subarray(leaf.bodyStart, leaf.bodyEnd).toString().endsWith('--b32--'));
  });

  test('32 levels are within the limit, 33 are not; a configured maxDepth applies to message/rfc822 as well', () => {
    const s = parseMimeStructure(nested(32));
    assert.equal(s.truncated, false);
    assert.deepEqual(s.defects, []);
    assert.equal(depthOf(s.root), 32); // the innermost multipart at depth 31, its text part at 32
    assert.deepEqual(parseMimeStructure(nested(33)).defects.map((d) => d.code), ['depth-limit']);

    const message = Buffer.from('Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nbody\r\n');
    const limited = parseMimeStructure(message, { maxDepth: 1 });
    assert.equal(limited.truncated, true);
    assert.deepEqual(limited.defects, [{ code: 'depth-limit', part: '1', offset: 64 }]);
    assert.equal(limited.root.message?.message, null);
  });
});

describe('number of parts', () => {
  test('2 000 parts: 1 000 are listed (the root included), the rest are skipped, offsets stay exact', () => {
    const raw = manyParts(2000);
    const s = parseMimeStructure(raw);
    assert.equal(s.truncated, true);
    assert.equal(listParts(s.root).length, 1000);
    assert.equal(s.root.children.length, 999);
    assert.equal(s.defects.length, 1);
    assert.equal(s.defects[0].code, 'part-limit');
    assert.equal(s.defects[0].part, '');
    const last = findPart(s.root, '999')!;
    assert.equal(raw.subarray(last.bodyStart, last.bodyEnd).toString(), 'part 999');
    assert.equal(s.root.bodyEnd, raw.length);
    assert.equal(findPart(s.root, '1000'), null);
  });

  test('a configured maxParts also stops encapsulated messages', () => {
    const raw = Buffer.from('Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nhi\r\n--q--\r\n');
    const s = parseMimeStructure(raw, { maxParts: 2 });
    assert.equal(s.truncated, true);
    assert.deepEqual(s.defects.map((d) => [d.code, d.part]), [['part-limit', '1']]);
    assert.equal(findPart(s.root, '1')?.message, null);
  });
});

describe('header limits', () => {
  test('a header block over 256 KiB: fields after the limit are not interpreted, the header still ends at its blank line', () => {
    const filler = Array.from({ length: 3000 }, (_, i) => `X-Filler-${i}: ${'x'.repeat(90)}\r\n`).join('');
    const raw = Buffer.from(`Subject: big\r\n${filler}Content-Type: text/html\r\n\r\n<p>body</p>\r\n`);
    const s = parseMimeStructure(raw);
    assert.equal(s.truncated, true);
    assert.equal(s.defects.length, 1);
    assert.equal(s.defects[0].code, 'header-too-large');
    assert.equal(s.root.contentType.subtype, 'plain');
    assert.equal(raw.subarray(s.root.bodyStart, s.root.bodyEnd).toString(), '<p>body</p>\r\n');
    assert.equal(s.root.headerEnd, raw.indexOf('\r\n\r\n') + 4);
  });

  test('a Content-Type field over 64 KiB is ignored; a long field that is not interpreted costs nothing', () => {
    const long = `Content-Type: text/html; x-pad="${'p'.repeat(70 * 1024)}"\r\n`;
    const s = parseMimeStructure(Buffer.from(`${long}\r\nbody`));
    assert.equal(s.truncated, true);
    assert.deepEqual(s.defects, [{ code: 'header-line-too-long', part: '', offset: 0 }]);
    assert.deepEqual(s.root.contentType, { type: 'text', subtype: 'plain', params: { charset: 'us-ascii' } });

    const folded = `Content-Type: text/html;\r\n${' x-pad="p"\r\n'.repeat(7000)}`;
    const f = parseMimeStructure(Buffer.from(`${folded}\r\nbody`));
    assert.equal(f.defects[0].code, 'header-line-too-long');

    const received = parseMimeStructure(Buffer.from(`Received: ${'r'.repeat(100 * 1024)}\r\nContent-Type: text/html\r\n\r\nbody`));
    assert.deepEqual(received.defects, []);
    assert.equal(received.root.contentType.subtype, 'html');
  });

  test('configured header limits', () => {
    const raw = Buffer.from('Content-Type: text/html; charset=utf-8\r\n\r\nbody');
    assert.equal(parseMimeStructure(raw, { maxHeaderLineBytes: 10 }).defects[0].code, 'header-line-too-long');
    assert.equal(parseMimeStructure(raw, { maxHeaderBlockBytes: 10 }).defects[0].code, 'header-too-large');
    assert.equal(parseMimeStructure(raw, { maxHeaderLineBytes: 40 }).root.contentType.subtype, 'html');
  });
});

describe('boundary length', () => {
  const message = (boundary: string) =>
    Buffer.from(`Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n--${boundary}\r\n\r\ntext\r\n--${boundary}--\r\n`);

  test('70 characters: as RFC 2046 §5.1.1 allows', () => {
    const s = parseMimeStructure(message('a'.repeat(70)));
    assert.deepEqual(s.defects, []);
    assert.equal(s.root.children.length, 1);
  });

  test('71 to 200 characters: used, and recorded', () => {
    const s = parseMimeStructure(message('a'.repeat(200)));
    assert.equal(s.truncated, false);
    assert.deepEqual(s.defects.map((d) => d.code), ['boundary-too-long']);
    assert.equal(s.root.children.length, 1);
  });

  test('over 200 characters: the multipart is kept as a leaf', () => {
    const s = parseMimeStructure(message('a'.repeat(201)));
    assert.equal(s.truncated, true);
    assert.deepEqual(s.defects.map((d) => d.code), ['boundary-over-limit']);
    assert.deepEqual(s.root.children, []);
  });
});

describe('memory', () => {
  test('a 50 MiB single-part message fed in 64 KiB chunks: the parser holds well under 1 MiB', () => {
    const header = Buffer.from('From: big@example.com\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n');
    const line = Buffer.from('QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n');
    const lines = Math.ceil((50 * 1024 * 1024) / line.length);
    const raw = Buffer.concat([header, Buffer.alloc(lines * line.length)]);
    for (let i = 0; i < lines; i++) line.copy(raw, header.length + i * line.length);
    const { structure, maxRetained } = feedChunks(raw);
    assert.ok(maxRetained < 1024 * 1024, `retained ${maxRetained} bytes`);
    assert.ok(maxRetained < 4 * 1024, `retained ${maxRetained} bytes (only a header field and a partial line)`);
    assert.equal(structure.root.bodyEnd, raw.length);
    assert.equal(structure.root.bodyLines, lines);
    assert.equal(structure.lines, lines + 4);
  });

  test('a multipart with a 20 MiB line without line breaks and a 10 MiB header line: bounded by the line limits', () => {
    const raw = Buffer.concat([
      Buffer.from(`Content-Type: multipart/mixed; boundary=z\r\nX-Huge: ${'h'.repeat(10 * 1024 * 1024)}\r\n\r\n--z\r\n\r\n`),
      Buffer.alloc(20 * 1024 * 1024, 0x2d), // a line of dashes: a delimiter candidate until it is too long
      Buffer.from('\r\n--z\r\nContent-Type: text/plain\r\n\r\nend\r\n--z--\r\n'),
    ]);
    const { structure, maxRetained } = feedChunks(raw);
    assert.ok(maxRetained <= DEFAULT_MIME_LIMITS.maxHeaderLineBytes + 4096, `retained ${maxRetained} bytes`);
    assert.equal(structure.root.children.length, 2);
    assert.equal(structure.root.children[0].bodyEnd - structure.root.children[0].bodyStart, 20 * 1024 * 1024);
    assert.equal(raw.subarray(structure.root.children[1].bodyStart, structure.root.children[1].bodyEnd).toString(), 'end');
  });
});

describe('the limits themselves', () => {
  test('defaults, overrides, and invalid values', () => {
    assert.deepEqual(resolveMimeLimits(), { ...DEFAULT_MIME_LIMITS });
    assert.deepEqual(DEFAULT_MIME_LIMITS, {
      maxDepth: 32,
      maxParts: 1000,
      maxHeaderBlockBytes: 256 * 1024,
      maxHeaderLineBytes: 64 * 1024,
      maxBoundaryLength: 200,
    });
    assert.equal(resolveMimeLimits({ maxParts: 5 }).maxParts, 5);
    assert.equal(resolveMimeLimits({ maxDepth: 10 ** 9 }).maxDepth, 1000);
    assert.throws(() => resolveMimeLimits({ maxDepth: 0 }), { name: 'RangeError', message: 'MIME limit maxDepth must be a positive integer, got 0' });
    assert.throws(() => resolveMimeLimits({ maxParts: 1.5 }), { name: 'RangeError', message: 'MIME limit maxParts must be a positive integer, got 1.5' });
  });

  test(`at most ${MAX_DEFECTS} defects are recorded`, () => {
    const raw = Buffer.from(`From: a\r\n${'no colon here\r\n'.repeat(500)}\r\nbody`);
    const s = parseMimeStructure(raw);
    assert.equal(s.defects.length, MAX_DEFECTS);
    assert.equal(s.truncated, false);
    assert.equal(raw.subarray(s.root.bodyStart).toString(), 'body');
  });
});
