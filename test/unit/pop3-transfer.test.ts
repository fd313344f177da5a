/**
 * The RETR/TOP encoder (RFC 1939 §3, §7): CRLF line ends, byte-stuffing, the terminating ".", TOP's
 * header + n body lines — and a seeded fuzz run that checks the output against a simple reference
 * for every way of cutting the input into chunks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageTransfer } from '../../src/protocols/pop3/transfer.js';

function encode(input: string | Buffer, chunkSizes: number[] = [], lines?: number): string {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const t = new MessageTransfer(lines);
  const out: Buffer[] = [];
  let at = 0;
  let k = 0;
  while (at < bytes.length && !t.done) {
    const size = chunkSizes.length > 0 ? Math.max(1, chunkSizes[k++ % chunkSizes.length]) : bytes.length;
    out.push(t.push(bytes.subarray(at, at + size)));
    at += size;
  }
  out.push(t.finish());
  return Buffer.concat(out).toString('latin1');
}

test('RETR: CRLF kept, final "." added', () => {
  assert.equal(encode('Subject: x\r\n\r\nbody\r\n'), 'Subject: x\r\n\r\nbody\r\n.\r\n');
});

test('bare LF and bare CR become CRLF; an unterminated last line gets one', () => {
  assert.equal(encode('a\nb\rc\r\nd'), 'a\r\nb\r\nc\r\nd\r\n.\r\n');
  assert.equal(encode('a\r\r\nb'), 'a\r\n\r\nb\r\n.\r\n');
  assert.equal(encode('a\r'), 'a\r\n.\r\n');
});

test('lines starting with "." are byte-stuffed, also across chunk borders', () => {
  const input = '.\r\n..x\r\nmid.dle\r\n.\r\n.end';
  const expected = '..\r\n...x\r\nmid.dle\r\n..\r\n..end\r\n.\r\n';
  assert.equal(encode(input), expected);
  for (const size of [1, 2, 3, 5]) assert.equal(encode(input, [size]), expected, `chunks of ${size}`);
  // A CR at the end of one chunk and its LF at the start of the next are one line end.
  assert.equal(encode('a\r\n.b', [2]), 'a\r\n..b\r\n.\r\n');
});

test('an empty message is just the terminator', () => {
  assert.equal(encode(''), '.\r\n');
});

test('TOP n: header, empty line, first n body lines; the rest is not read', () => {
  const msg = 'From: a\r\nSubject: s\r\n\r\nline 1\r\n.line 2\r\nline 3\r\n';
  assert.equal(encode(msg, [], 0), 'From: a\r\nSubject: s\r\n\r\n.\r\n');
  assert.equal(encode(msg, [], 2), 'From: a\r\nSubject: s\r\n\r\nline 1\r\n..line 2\r\n.\r\n');
  assert.equal(encode(msg, [], 99), `${msg.replace('.line', '..line')}.\r\n`);
  assert.equal(encode(msg, [3], 1), 'From: a\r\nSubject: s\r\n\r\nline 1\r\n.\r\n');
  // A message without a body: the whole header.
  assert.equal(encode('From: a\r\nSubject: s', [], 5), 'From: a\r\nSubject: s\r\n.\r\n');
  // LF-only messages have their header end found too.
  assert.equal(encode('From: a\n\nb1\nb2\n', [], 1), 'From: a\r\n\r\nb1\r\n.\r\n');
  const t = new MessageTransfer(0);
  t.push(Buffer.from('H: v\r\n\r\nbody\r\n'));
  assert.equal(t.done, true, 'done tells the caller to stop reading');
});

// ── fuzz ────────────────────────────────────────────────────────────────────────────────────────

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The reference: split into lines at CRLF, CR or LF; stuff; CRLF each; terminator. */
function reference(input: string, lines?: number): string {
  const parts = input.split(/\r\n|\r|\n/);
  if (parts[parts.length - 1] === '') parts.pop();
  let selected = parts;
  if (lines !== undefined) {
    const blank = parts.indexOf('');
    if (blank >= 0) selected = parts.slice(0, blank + 1 + lines);
  }
  return selected.map((l) => `${l.startsWith('.') ? '.' : ''}${l}\r\n`).join('') + '.\r\n';
}

test('fuzz: any input, any chunking → the reference output; never a bare CR or LF', () => {
  const random = prng(0x51c0de);
  const int = (n: number) => Math.floor(random() * n);
  const alphabet = ['a', 'b', '.', '\r', '\n', '\r\n', ' ', ':', '\x00', '\xff'];
  for (let i = 0; i < 3000; i++) {
    const input = Array.from({ length: int(60) }, () => alphabet[int(alphabet.length)]).join('');
    const lines = random() < 0.4 ? int(4) : undefined;
    const chunks = Array.from({ length: 1 + int(4) }, () => 1 + int(8));
    const out = encode(input, chunks, lines);
    assert.equal(out, reference(input, lines), `input ${JSON.stringify(input)} chunks ${chunks} lines ${lines}`);
    assert.doesNotMatch(out, /\r(?!\n)|(?<!\r)\n/);
  }
});
