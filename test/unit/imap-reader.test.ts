/**
 * IMAP command framing (src/protocols/imap/parser/reader.ts): lines, literals ({n}, {n+}, ~{n}),
 * continuation requests, every limit with its exact event, recovery after a rejected command,
 * line mode, and bounded memory under every split of the input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImapCommandReader, type ReaderEvent, type ReaderLimits } from '../../src/protocols/imap/parser/reader.js';
import type { ImapToken } from '../../src/protocols/imap/parser/types.js';

const LIMITS: ReaderLimits = { maxLineBytes: 100, maxLiteralBytes: 50, maxAppendBytes: 1000, maxCommandBytes: 400 };

function showToken(t: ImapToken): string {
  switch (t.type) {
    case 'atom':
      return t.value;
    case 'string':
      return `${t.literal ? (t.binary ? 'L8' : 'L') : ''}${JSON.stringify(t.value.toString('latin1'))}`;
    case 'list':
      return `(${t.items.map(showToken).join(' ')})`;
    case 'section':
      return `${t.name}[${t.section.map(showToken).join(' ')}]${t.partial ? `<${t.partial.join('.')}>` : ''}`;
  }
}

function show(e: ReaderEvent): string {
  switch (e.type) {
    case 'command':
      return [e.command.tag, e.command.name, ...e.command.args.map(showToken)].join(' ');
    case 'bad':
      return `BAD ${e.tag ?? '*'}${e.code ? ` [${e.code}]` : ''} ${e.text}`;
    case 'continue':
      return '+';
    case 'too-big':
      return `TOOBIG ${e.tag ?? '*'} ${e.synchronizing ? 'sync' : 'nonsync'} ${e.text}`;
    case 'line':
      return `LINE ${JSON.stringify(e.text)}`;
  }
}

function drain(reader: ImapCommandReader): string[] {
  const out: string[] = [];
  for (let e = reader.next(); e; e = reader.next()) out.push(show(e));
  return out;
}

/** Feeds `input` in pieces of `size` octets, draining after each; returns every event. */
function feed(input: string | Buffer, size = Infinity, limits = LIMITS): string[] {
  const reader = new ImapCommandReader(limits);
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const out: string[] = [];
  for (let i = 0; i < bytes.length; i += size === Infinity ? bytes.length : size) {
    reader.push(bytes.subarray(i, i + size));
    out.push(...drain(reader));
  }
  return out;
}

const PIPELINE =
  'a1 NOOP\r\n' +
  'a2 LOGIN {5}\r\nalice "se\\"cret"\r\n' +
  'a3 UID fetch 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (Subject {4+}\r\nFrom)]<0.100>)\r\n' +
  'a4 APPEND INBOX (\\Seen) ~{7}\r\nhi\r\n{3}\r\n\n' +
  'a5 SELECT INBOX\n';
const PIPELINE_EVENTS = [
  'a1 NOOP',
  '+',
  'a2 LOGIN L"alice" "se\\"cret"',
  'a3 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (Subject L"From")]<0.100>)',
  '+',
  'a4 APPEND INBOX (\\Seen) L8"hi\\r\\n{3}"',
  'a5 SELECT INBOX',
];

test('reader: pipelined commands in one chunk come out in order, literals kept byte for byte', () => {
  assert.deepEqual(feed(PIPELINE), PIPELINE_EVENTS);
});

test('reader: a pipeline split byte by byte (and in every chunk size up to 13) gives the same events', () => {
  for (let size = 1; size <= 13; size++) assert.deepEqual(feed(PIPELINE, size), PIPELINE_EVENTS, `chunk size ${size}`);
});

test('reader: a synchronizing literal gets one continue as soon as its line is complete, before any literal byte', () => {
  const reader = new ImapCommandReader(LIMITS);
  reader.push(Buffer.from('a1 LOGIN {5}\r'));
  assert.deepEqual(drain(reader), []);
  reader.push(Buffer.from('\n'));
  assert.deepEqual(drain(reader), ['+']);
  reader.push(Buffer.from('ali'));
  assert.deepEqual(drain(reader), []);
  reader.push(Buffer.from('ce {3}\r\npw1\r\n'));
  assert.deepEqual(drain(reader), ['+', 'a1 LOGIN L"alice" L"pw1"']);
});

test('reader: LITERAL+ and literal8 announcements get no continue; {0} is an empty literal', () => {
  assert.deepEqual(feed('a1 LOGIN {5+}\r\nalice ~{2+}\r\npw\r\n'), ['a1 LOGIN L"alice" L8"pw"']);
  assert.deepEqual(feed('a1 LOGIN {0}\r\n {0+}\r\n\r\n'), ['+', 'a1 LOGIN L"" L""']);
});

test('reader: a bare LF ends a line, a bare CR does not', () => {
  assert.deepEqual(feed('a1 NOOP\na2 NOOP\r\n'), ['a1 NOOP', 'a2 NOOP']);
  assert.deepEqual(feed('a1 NOOP\ra2 NOOP\r\na3 NOOP\r\n'), ["BAD a1 Unexpected 0x0d after the command name", 'a3 NOOP']);
});

test('reader: empty lines between commands are ignored', () => {
  assert.deepEqual(feed('\r\n\r\na1 NOOP\r\n\n'), ['a1 NOOP']);
});

test('reader: missing or invalid tag is BAD without a tag; a syntax error keeps the tag; both resynchronise', () => {
  assert.deepEqual(feed('+x NOOP\r\n* NOOP\r\n NOOP\r\na{ NOOP\r\na1 NOOP\r\n'), [
    'BAD * Missing or invalid tag',
    'BAD * Missing or invalid tag',
    'BAD * Missing or invalid tag',
    'BAD * Missing or invalid tag',
    'a1 NOOP',
  ]);
  assert.deepEqual(feed('a1\r\na2 LOGIN "x\r\na3 NOOP\r\n'), ['BAD a1 Missing command name', 'BAD a2 Unterminated quoted string', 'a3 NOOP']);
  // A tag may contain `]` (ASTRING-CHAR) but not `+`, `*`, `%`.
  assert.deepEqual(feed('a]1 NOOP\r\n'), ['a]1 NOOP']);
});

test('reader: an invalid tag announcing a literal: a synchronizing one is never sent, a non-synchronizing one is skipped', () => {
  assert.deepEqual(feed('+ LOGIN {5}\r\na1 NOOP\r\n'), ['BAD * Missing or invalid tag', 'a1 NOOP']);
  assert.deepEqual(feed('+ LOGIN {5+}\r\na2 NOab {3+}\r\nxyz\r\na1 NOOP\r\n'), ['BAD * Missing or invalid tag', 'a1 NOOP']);
});

test('reader: a line of exactly maxLineBytes passes, one more octet is "Command line too long" with the tag', () => {
  const exact = `a1 X ${'y'.repeat(LIMITS.maxLineBytes - 5)}`;
  assert.equal(exact.length, LIMITS.maxLineBytes);
  assert.deepEqual(feed(`${exact}\r\n`), [`a1 X ${'y'.repeat(LIMITS.maxLineBytes - 5)}`]);
  assert.deepEqual(feed(`${exact}y\r\na2 NOOP\r\n`), ['BAD a1 Command line too long', 'a2 NOOP']);
  // With a bare LF the limit is the same.
  assert.deepEqual(feed(`${exact}y\na2 NOOP\n`), ['BAD a1 Command line too long', 'a2 NOOP']);
  // A line too long to even show its tag is answered untagged.
  assert.deepEqual(feed(`${'z'.repeat(300)}\r\na2 NOOP\r\n`), ['BAD * Command line too long', 'a2 NOOP']);
});

test('reader: an endless line is dropped as it arrives (memory bounded) and answered once its LF comes', () => {
  const reader = new ImapCommandReader(LIMITS);
  reader.push(Buffer.from('a1 SEARCH '));
  let maxBuffered = 0;
  for (let i = 0; i < 1000; i++) {
    reader.push(Buffer.alloc(1000, 0x61));
    assert.deepEqual(drain(reader), []);
    maxBuffered = Math.max(maxBuffered, reader.buffered + reader.assembling);
  }
  assert.ok(maxBuffered <= LIMITS.maxLineBytes + 1, `held ${maxBuffered}`);
  reader.push(Buffer.from('\r\na2 NOOP\r\n'));
  assert.deepEqual(drain(reader), ['BAD a1 Command line too long', 'a2 NOOP']);
  assert.equal(reader.buffered, 0);
});

test('reader: an over-long continuation line ends its command; a non-synchronizing literal announced at its end is skipped', () => {
  const long = 'x'.repeat(200);
  assert.deepEqual(feed(`a1 LOGIN {3}\r\nabc ${long}\r\na2 NOOP\r\n`), ['+', 'BAD a1 Command line too long', 'a2 NOOP']);
  assert.deepEqual(feed(`a1 LOGIN ${long} {4+}\r\nNOOP\r\na2 NOOP\r\n`), ['BAD a1 Command line too long', 'a2 NOOP']);
});

test('reader: a synchronizing literal over maxLiteralBytes is NO [TOOBIG]: nothing read, next line is a new command', () => {
  assert.deepEqual(feed('a1 LOGIN {51}\r\na2 NOOP\r\n'), ['TOOBIG a1 sync Literal too big (limit 50 octets)', 'a2 NOOP']);
  assert.deepEqual(feed('a1 LOGIN {50}\r\n' + 'p'.repeat(50) + ' x\r\n'), ['+', `a1 LOGIN L"${'p'.repeat(50)}" x`]);
});

test('reader: a LITERAL+ over its limit is skipped without being buffered, with the rest of its command', () => {
  const reader = new ImapCommandReader(LIMITS);
  reader.push(Buffer.from('a1 LOGIN {100000+}\r\n'));
  assert.deepEqual(drain(reader), ['TOOBIG a1 nonsync Literal too big (limit 50 octets)']);
  for (let i = 0; i < 100; i++) {
    reader.push(Buffer.alloc(1000, 0x7b));
    assert.deepEqual(drain(reader), []);
    assert.equal(reader.buffered + reader.assembling, 0, 'skipped octets are not kept');
  }
  // The rest of the rejected command: a line announcing another literal, that literal, the last line.
  reader.push(Buffer.from(' pw {3+}\r\nxyz more\r\na2 NOOP\r\n'));
  assert.deepEqual(drain(reader), ['a2 NOOP']);
});

test('reader: APPEND message literals use maxAppendBytes, the mailbox literal maxLiteralBytes', () => {
  const msg = 'm'.repeat(900);
  assert.deepEqual(feed(`a1 APPEND INBOX {900+}\r\n${msg}\r\n`).map((e) => e.length), [`a1 APPEND INBOX L"${msg}"`.length]);
  assert.deepEqual(feed('a1 APPEND INBOX (\\Seen) {1001}\r\na2 NOOP\r\n'), ['TOOBIG a1 sync Message too big (APPENDLIMIT is 1000 octets)', 'a2 NOOP']);
  assert.deepEqual(feed(`a1 APPEND INBOX {1001+}\r\n${'m'.repeat(1001)}\r\na2 NOOP\r\n`), ['TOOBIG a1 nonsync Message too big (APPENDLIMIT is 1000 octets)', 'a2 NOOP']);
  // Lower-case command name, mailbox as a literal (maxLiteralBytes applies), then the message.
  assert.deepEqual(feed(`a1 append {5}\r\nInbox "1-Jan-2020 00:00:00 +0000" {60+}\r\n${'m'.repeat(60)}\r\n`), [
    '+',
    `a1 APPEND L"Inbox" "1-Jan-2020 00:00:00 +0000" L"${'m'.repeat(60)}"`,
  ]);
  assert.deepEqual(feed('a1 APPEND {51}\r\na2 NOOP\r\n'), ['TOOBIG a1 sync Literal too big (limit 50 octets)', 'a2 NOOP']);
  // Several message literals (MULTIAPPEND form) share one APPENDLIMIT.
  assert.deepEqual(feed(`a1 APPEND INBOX {600+}\r\n${'m'.repeat(600)} {500}\r\na2 NOOP\r\n`), [
    'TOOBIG a1 sync Message too big (APPENDLIMIT is 1000 octets)',
    'a2 NOOP',
  ]);
});

test('reader: literals and lines together stay within maxCommandBytes', () => {
  // 9 literals of 40 octets plus their lines pass 400 octets on the 9th.
  let input = 'a1 X';
  for (let i = 0; i < 9; i++) input += ` {40+}\r\n${String(i).repeat(40)}`;
  const events = feed(`${input}\r\na2 NOOP\r\n`);
  assert.deepEqual(events, ['TOOBIG a1 nonsync Command too big (limit 400 octets)', 'a2 NOOP']);
  // Short lines joined by tiny literals: the line that crosses the limit ends the command.
  const bad = feed(`a1 X ${'{1+}\r\nx'.repeat(150)}\r\na2 NOOP\r\n`);
  assert.deepEqual(bad, ['BAD a1 [TOOBIG] Command too long', 'a2 NOOP']);
});

test('reader: literal lengths of any size are parsed safely', () => {
  assert.deepEqual(feed('a1 LOGIN {4294967295}\r\na2 NOOP\r\n'), ['TOOBIG a1 sync Literal too big (limit 50 octets)', 'a2 NOOP']);
  assert.deepEqual(feed(`a1 LOGIN {${'9'.repeat(30)}}\r\na2 NOOP\r\n`), ['TOOBIG a1 sync Literal too big (limit 50 octets)', 'a2 NOOP']);
  assert.deepEqual(feed(`a1 LOGIN {${'0'.repeat(30)}3}\r\nabc x\r\n`), ['+', 'a1 LOGIN L"abc" x']);
  // Not announcements: the command ends there and the tokenizer rejects the brace.
  assert.deepEqual(feed('a1 LOGIN {}\r\na2 LOGIN {-1}\r\na3 LOGIN {5-}\r\n'), [
    "BAD a1 Unexpected '{' (a literal announcement must end the line)",
    "BAD a2 Unexpected '{' (a literal announcement must end the line)",
    "BAD a3 Unexpected '{' (a literal announcement must end the line)",
  ]);
});

test('reader: line mode returns raw lines (IDLE DONE, AUTHENTICATE responses), then commands again', () => {
  const reader = new ImapCommandReader(LIMITS);
  reader.push(Buffer.from('a1 IDLE\r\nDONE\r\na2 AUTHENTICATE PLAIN\r\n\r\nd\xc3\xa9j\xc3\xa0\r\na3 NOOP\r\n', 'latin1'));
  assert.deepEqual(show(reader.next()!), 'a1 IDLE');
  reader.lineMode = true;
  assert.deepEqual(show(reader.next()!), 'LINE "DONE"');
  reader.lineMode = false;
  assert.deepEqual(show(reader.next()!), 'a2 AUTHENTICATE PLAIN');
  reader.lineMode = true;
  assert.deepEqual(show(reader.next()!), 'LINE ""');
  assert.deepEqual(show(reader.next()!), 'LINE "déjà"');
  reader.lineMode = false;
  assert.deepEqual(drain(reader), ['a3 NOOP']);
  reader.lineMode = true;
  reader.push(Buffer.from(`${'d'.repeat(150)}\r\nDONE\r\n`));
  assert.deepEqual(drain(reader), ['BAD * Line too long', 'LINE "DONE"']);
});

test('reader: buffered counts unread input and the partial line only', () => {
  const reader = new ImapCommandReader(LIMITS);
  reader.push(Buffer.from('a1 NOOP\r\na2 NO'));
  assert.equal(reader.buffered, 14);
  assert.equal(show(reader.next()!), 'a1 NOOP');
  assert.equal(reader.buffered, 5);
  assert.equal(reader.next(), null);
  assert.equal(reader.buffered, 5);
  reader.push(Buffer.from('OP {10+}\r\n12345'));
  assert.equal(reader.next(), null);
  assert.equal(reader.buffered, 0);
  assert.ok(reader.assembling >= 5);
});

test('reader: invalid limits are refused', () => {
  assert.throws(() => new ImapCommandReader({ ...LIMITS, maxLineBytes: 0 }), RangeError);
  assert.throws(() => new ImapCommandReader({ ...LIMITS, maxAppendBytes: 1.5 }), RangeError);
});
