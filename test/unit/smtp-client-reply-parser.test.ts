/** The outbound client's reply parser (RFC 5321 §4.2, RFC 2034/3463) and EHLO keywords (SPEC §5.2). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_REPLY_LINE_BYTES,
  MAX_REPLY_LINES,
  ReplyParser,
  ReplyProtocolError,
  parseEhlo,
  replyWireLines,
  type ParsedReply,
} from '../../src/protocols/smtp/client/reply-parser.js';
import { Transcript, redactCommand } from '../../src/protocols/smtp/client/transcript.js';

function parseAll(text: string | Buffer, chunk = Infinity): ParsedReply[] {
  const p = new ReplyParser();
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const out: ParsedReply[] = [];
  for (let i = 0; i < buf.length; i += chunk === Infinity ? buf.length : chunk) {
    p.push(buf.subarray(i, chunk === Infinity ? buf.length : i + chunk));
    for (let r = p.next(); r; r = p.next()) out.push(r);
  }
  return out;
}

describe('replies', () => {
  test('single-line reply with an enhanced code: code, enhanced, text without the code', () => {
    const [r] = parseAll('250 2.1.5 Recipient OK\r\n');
    assert.equal(r.code, 250);
    assert.equal(r.enhanced, '2.1.5');
    assert.equal(r.text, 'Recipient OK');
    assert.deepEqual(r.lines, ['2.1.5 Recipient OK']);
  });

  test('multi-line reply: lines joined with a space, repeated enhanced codes stripped', () => {
    const [r] = parseAll('550-5.7.1 Message rejected\r\n550-5.7.1 because of policy\r\n550 5.7.1 see https://example.test\r\n');
    assert.equal(r.code, 550);
    assert.equal(r.enhanced, '5.7.1');
    assert.equal(r.text, 'Message rejected because of policy see https://example.test');
    assert.deepEqual(replyWireLines(r), ['550-5.7.1 Message rejected', '550-5.7.1 because of policy', '550 5.7.1 see https://example.test']);
  });

  test('no enhanced code, or one of another class, gives enhanced null', () => {
    assert.equal(parseAll('220 mx.example.test ESMTP ready\r\n')[0].enhanced, null);
    const [r] = parseAll('451 5.0.0 odd server\r\n');
    assert.equal(r.enhanced, null, 'class 5 on a 4xx reply is not an enhanced code of that reply');
    assert.equal(r.text, '5.0.0 odd server');
    assert.equal(parseAll('250 2.0.0\r\n')[0].enhanced, '2.0.0');
    assert.equal(parseAll('250 2.0.0\r\n')[0].text, '');
  });

  test('a bare code (no text) and a bare LF line end are accepted', () => {
    const rs = parseAll('250-smtp-sink\n250 \r\n354\r\n');
    assert.equal(rs.length, 2);
    assert.deepEqual(rs[0].lines, ['smtp-sink', '']);
    assert.equal(rs[1].code, 354);
    assert.equal(rs[1].text, '');
  });

  test('several replies in one chunk come out in order (PIPELINING, RFC 2920 §3.2)', () => {
    const rs = parseAll('250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 No such user\r\n354 go ahead\r\n');
    assert.deepEqual(rs.map((r) => r.code), [250, 250, 550, 354]);
  });

  test('the same result whatever the chunking', () => {
    const text = '250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n421 4.3.2 bye\r\n';
    const whole = parseAll(text);
    for (const size of [1, 2, 3, 7, 13]) assert.deepEqual(parseAll(text, size), whole);
  });

  test('an incomplete reply is held until its last line', () => {
    const p = new ReplyParser();
    p.push(Buffer.from('250-first\r\n250-sec'));
    assert.equal(p.next(), null);
    assert.equal(p.partial, true);
    p.push(Buffer.from('ond\r\n250 third\r\n'));
    assert.deepEqual(p.next()?.lines, ['first', 'second', 'third']);
    assert.equal(p.partial, false);
  });

  test('malformed lines are protocol errors and the parser stays failed', () => {
    for (const bad of ['hello\r\n', '25 x\r\n', '250x\r\n', '650 nope\r\n', '250-a\r\n251 b\r\n']) {
      const p = new ReplyParser();
      assert.throws(() => p.push(Buffer.from(bad)), ReplyProtocolError, bad);
      assert.throws(() => p.next(), ReplyProtocolError);
    }
  });

  test('a line over 4 KiB is a protocol error, with or without its line end', () => {
    assert.equal(MAX_REPLY_LINE_BYTES, 4096);
    const p = new ReplyParser();
    assert.throws(() => p.push(Buffer.from(`250 ${'x'.repeat(5000)}`)), /longer than 4096/);
    const q = new ReplyParser();
    assert.throws(() => q.push(Buffer.from(`250 ${'x'.repeat(4100)}\r\n`)), /longer than 4096/);
    // Just under the bound is fine.
    assert.equal(parseAll(`250 ${'x'.repeat(4000)}\r\n`)[0].text.length, 4000);
  });

  test('more than 100 lines in one reply is a protocol error; 100 is fine', () => {
    assert.equal(MAX_REPLY_LINES, 100);
    const ok = `${'250-x\r\n'.repeat(99)}250 end\r\n`;
    assert.equal(parseAll(ok)[0].lines.length, 100);
    assert.throws(() => parseAll(`${'250-x\r\n'.repeat(100)}250 end\r\n`), /longer than 100 lines/);
  });

  test('reset forgets everything held (RFC 3207 §4.2)', () => {
    const p = new ReplyParser();
    p.push(Buffer.from('250 injected\r\n250-partial'));
    p.reset();
    assert.equal(p.next(), null);
    p.push(Buffer.from('220 fresh\r\n'));
    assert.equal(p.next()?.text, 'fresh');
  });
});

describe('EHLO keywords', () => {
  test('the extensions MaiRust uses, case-insensitive, the first line is the name', () => {
    const caps = parseEhlo(['mx.example.test Hello', 'pipelining', 'SIZE 35882577', '8BITMIME', 'SMTPUTF8', 'STARTTLS', 'ENHANCEDSTATUSCODES', 'AUTH PLAIN login', 'CHUNKING', 'DSN']);
    assert.equal(caps.esmtp, true);
    assert.equal(caps.pipelining, true);
    assert.equal(caps.size, true);
    assert.equal(caps.maxSize, 35882577);
    assert.equal(caps.eightBitMime, true);
    assert.equal(caps.smtputf8, true);
    assert.equal(caps.starttls, true);
    assert.equal(caps.enhancedStatusCodes, true);
    assert.equal(caps.chunking, true);
    assert.equal(caps.dsn, true);
    assert.deepEqual(caps.auth, ['PLAIN', 'LOGIN']);
  });

  test('nothing offered → everything off; SIZE without a number = no fixed maximum', () => {
    const caps = parseEhlo(['smtp-sink', 'SIZE', '']);
    assert.equal(caps.size, true);
    assert.equal(caps.maxSize, 0);
    assert.equal(caps.pipelining, false);
    assert.equal(caps.starttls, false);
    assert.equal(caps.smtputf8, false);
    assert.deepEqual(caps.auth, []);
    // The name line is never a keyword, even when it looks like one.
    assert.equal(parseEhlo(['STARTTLS']).starttls, false);
  });

  test('the old `AUTH=` form counts; duplicates are merged; junk SIZE is ignored', () => {
    const caps = parseEhlo(['x', 'AUTH=PLAIN', 'AUTH PLAIN CRAM-MD5', 'SIZE lots']);
    assert.deepEqual(caps.auth, ['PLAIN', 'CRAM-MD5']);
    assert.equal(caps.size, true);
    assert.equal(caps.maxSize, 0);
  });
});

describe('transcript', () => {
  test('AUTH arguments are redacted; other commands are kept', () => {
    assert.equal(redactCommand('AUTH PLAIN AGFsaWNlAHNlY3JldA=='), 'AUTH PLAIN ***');
    assert.equal(redactCommand('auth login YWxpY2U='), 'auth login ***');
    assert.equal(redactCommand('AUTH LOGIN'), 'AUTH LOGIN');
    assert.equal(redactCommand('MAIL FROM:<a@b>'), 'MAIL FROM:<a@b>');
    const t = new Transcript();
    t.client('AUTH PLAIN c2VjcmV0');
    t.clientSecret();
    t.server('235 2.7.0 ok');
    assert.deepEqual(t.lines(), ['C: AUTH PLAIN ***', 'C: ***', 'S: 235 2.7.0 ok']);
  });

  test('bounded: keeps the start and the end, counts what was left out', () => {
    const t = new Transcript(200);
    for (let i = 0; i < 1000; i++) t.client(`RCPT TO:<u${i}@example.test>`);
    const lines = t.lines();
    assert.equal(lines.length, 200);
    assert.equal(lines[0], 'C: RCPT TO:<u0@example.test>');
    assert.equal(lines[99], 'C: RCPT TO:<u99@example.test>');
    assert.equal(lines[100], '* … 801 line(s) omitted');
    assert.equal(lines[199], 'C: RCPT TO:<u999@example.test>');
  });
});
