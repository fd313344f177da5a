/**
 * The session's input readers: bounded command lines (RFC 5321 §4.5.3.1.4) and the DATA body with
 * dot-unstuffing and end detection (RFC 5321 §4.5.2), under every split of the input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DotUnstuffer } from '../../src/protocols/smtp/engine/data-reader.js';
import { LineReader, type LineResult } from '../../src/protocols/net/line-reader.js';

function readAll(reader: LineReader): string[] {
  const out: string[] = [];
  let r: LineResult | null;
  while ((r = reader.readLine())) out.push(r.kind === 'line' ? r.line.toString() : '<too-long>');
  return out;
}

/** Feeds `input` split at `cuts` and collects every result. */
function linesSplit(input: string, max: number, cuts: number[]): string[] {
  const reader = new LineReader(max);
  const bytes = Buffer.from(input);
  const out: string[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    reader.push(bytes.subarray(from, cut));
    out.push(...readAll(reader));
    from = cut;
  }
  return out;
}

test('line reader: CRLF and lone LF end a line, at every split point', () => {
  const input = 'EHLO a\r\nMAIL FROM:<x@y>\nNOOP\r\n\r\n';
  const expected = ['EHLO a', 'MAIL FROM:<x@y>', 'NOOP', ''];
  for (let i = 0; i <= input.length; i++) assert.deepEqual(linesSplit(input, 512, [i]), expected, `split at ${i}`);
  for (let i = 0; i <= input.length; i++) {
    for (let j = i; j <= input.length; j++) assert.deepEqual(linesSplit(input, 512, [i, j]), expected, `split at ${i},${j}`);
  }
});

test('line reader: 512 octets with CRLF pass, 513 are one too-long result, the next line is fine', () => {
  const ok = `${'a'.repeat(510)}\r\n`;
  const long = `${'b'.repeat(511)}\r\n`;
  for (const cut of [0, 100, 510, 511, 512, 600, 1024]) {
    assert.deepEqual(linesSplit(`${ok}${long}NOOP\r\n`, 512, [cut]), ['a'.repeat(510), '<too-long>', 'NOOP'], `split at ${cut}`);
  }
});

test('line reader: an endless line is not buffered, and is reported once when it ends', () => {
  const reader = new LineReader(512);
  for (let i = 0; i < 1000; i++) {
    reader.push(Buffer.alloc(1000, 0x41));
    assert.equal(reader.readLine(), null);
    assert.ok(reader.buffered <= 1000, `holds ${reader.buffered} bytes`);
  }
  reader.push(Buffer.from('AAAA\r\nQUIT\r\n'));
  assert.deepEqual(readAll(reader), ['<too-long>', 'QUIT']);
});

test('line reader: take, unshift and clear', () => {
  const r = new LineReader(512);
  r.push(Buffer.from('BDAT 3\r\nabcNOOP\r\n'));
  assert.equal((r.readLine() as { line: Buffer }).line.toString(), 'BDAT 3');
  assert.equal(r.take(3)!.toString(), 'abc');
  assert.deepEqual(readAll(r), ['NOOP']);
  assert.equal(r.take(), null);
  r.unshift(Buffer.from('RSET\r\n'));
  r.push(Buffer.from('QUIT\r\n'));
  assert.deepEqual(readAll(r), ['RSET', 'QUIT']);
  r.push(Buffer.from('STARTTLS-injected\r\n'));
  r.clear();
  assert.equal(r.readLine(), null);
  assert.throws(() => new LineReader(2), RangeError);
});

/** Decodes `wire` split at `cuts`; returns the message, whether it ended, and what followed. */
function unstuff(wire: string | Buffer, cuts: number[] = []) {
  const bytes = typeof wire === 'string' ? Buffer.from(wire, 'latin1') : wire;
  const d = new DotUnstuffer();
  const parts: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    const r = d.push(bytes.subarray(from, cut));
    parts.push(...r.data);
    if (r.done) return { message: Buffer.concat(parts).toString('latin1'), done: true, rest: Buffer.concat([r.rest, bytes.subarray(cut)]).toString('latin1') };
    from = cut;
  }
  return { message: Buffer.concat(parts).toString('latin1'), done: false, rest: '' };
}

test('data reader: dot-unstuffing and the end line, at every split point', () => {
  const wire = 'Subject: x\r\n\r\n..leading dot\r\n...\r\n. \r\nend\r\n.\r\nQUIT\r\n';
  const expected = { message: 'Subject: x\r\n\r\n.leading dot\r\n..\r\n \r\nend\r\n', done: true, rest: 'QUIT\r\n' };
  for (let i = 0; i <= wire.length; i++) {
    for (let j = i; j <= wire.length; j += 3) assert.deepEqual(unstuff(wire, [i, j]), expected, `split at ${i},${j}`);
  }
});

test('data reader: the CRLF before the final dot belongs to the message; an empty message', () => {
  assert.deepEqual(unstuff('a\r\n.\r\n'), { message: 'a\r\n', done: true, rest: '' });
  assert.deepEqual(unstuff('.\r\n'), { message: '', done: true, rest: '' });
  assert.deepEqual(unstuff('a\r\n.'), { message: 'a\r\n', done: false, rest: '' });
  // `.\r` at a line start that is not the end: the dot was stuffing, the CR is content.
  assert.deepEqual(unstuff('.\rx\r\n.\r\n', [1, 2]), { message: '\rx\r\n', done: true, rest: '' });
  assert.deepEqual(unstuff('.\r\r\n.\r\n', [2]), { message: '\r\r\n', done: true, rest: '' });
});

test('data reader: lone LF and lone CR never end the message (no SMTP smuggling)', () => {
  const wire = 'a\n.\nb\n.\r\nc\r.\r\nd\r\n.\n e\r\n.\r\n';
  const r = unstuff(wire);
  assert.equal(r.done, true);
  assert.equal(r.message, 'a\n.\nb\n.\r\nc\r.\r\nd\r\n\n e\r\n');
  for (let i = 0; i <= wire.length; i++) assert.deepEqual(unstuff(wire, [i]), r, `split at ${i}`);
});

test('data reader: size accounting equals the bytes out, long lines pass, binary is kept', () => {
  const line = 'x'.repeat(5000);
  const wire = Buffer.concat([Buffer.from(`${line}\r\n..\r\n`), Buffer.from([0, 0xff, 0x0d, 0x0a]), Buffer.from('.\r\n')]);
  const d = new DotUnstuffer();
  let size = 0;
  let done = false;
  for (let i = 0; i < wire.length && !done; i += 7) {
    const r = d.push(wire.subarray(i, i + 7));
    size += r.data.reduce((n, b) => n + b.length, 0);
    done = r.done;
  }
  assert.equal(done, true);
  assert.equal(size, 5000 + 2 + 1 + 2 + 4);
  assert.throws(() => d.push(Buffer.from('x')), /already complete/);
});
