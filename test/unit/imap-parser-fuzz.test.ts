/**
 * Fuzzing the IMAP parser with a seeded PRNG: mutated valid commands, random bytes, huge numbers
 * and deep nesting, fed in random chunk sizes. The reader never throws, always makes progress,
 * keeps its memory within the limits and gives the same events however the input is split; the
 * tokenizer and every grammar helper throw nothing but ImapSyntaxError / UnsupportedCharsetError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  asAstring,
  asFlagList,
  asNstring,
  asNumber,
  decodeMailboxName,
  ImapCommandReader,
  parseCommand,
  parseDateTime,
  parseFetchRequest,
  parseSearchDate,
  parseSearchRequest,
  parseSequenceSet,
  parseStoreRequest,
  UnsupportedCharsetError,
  type ImapToken,
  type ParsedCommand,
  type ReaderEvent,
  type ReaderLimits,
} from '../../src/protocols/imap/parser/index.js';
import { ImapSyntaxError } from '../../src/protocols/imap/session/types.js';

const LIMITS: ReaderLimits = { maxLineBytes: 256, maxLiteralBytes: 64, maxAppendBytes: 512, maxCommandBytes: 1024 };
const STREAMS = 4000;

/** mulberry32: small, seeded, good enough to steer a fuzzer reproducibly. */
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

const CORPUS = [
  'a1 CAPABILITY\r\n',
  'a2 LOGIN alice "pa\\"ss"\r\n',
  'a3 LOGIN {5}\r\nalice {4+}\r\npass\r\n',
  'a4 SELECT INBOX (CONDSTORE)\r\n',
  'a5 SELECT "~peter/&U,BTFw-" (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n',
  'a6 UID FETCH 1:*,$ (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (Subject {4+}\r\nFrom)]<0.100> BINARY[1]<0.0> BINARY.SIZE[2]) (CHANGEDSINCE 12345 VANISHED)\r\n',
  'a7 FETCH 1:3 FULL\r\n',
  'a8 FETCH * (BODY[] RFC822.SIZE ENVELOPE BODYSTRUCTURE MODSEQ)\r\n',
  'a9 UID STORE 1:5 (UNCHANGEDSINCE 42) +FLAGS.SILENT (\\Seen $Forwarded)\r\n',
  'b1 STORE 2 -FLAGS \\Deleted\r\n',
  'b2 SEARCH RETURN (MIN MAX COUNT SAVE) CHARSET UTF-8 OR (FROM "x" SINCE 1-Feb-1994) NOT SUBJECT {6+}\r\n\xe6\x97\xa5\xe6\x9c\xac\r\n',
  'b3 UID SEARCH MODSEQ "/flags/\\\\draft" all 620162338 UID 1:* LARGER 100 OLDER 60 KEYWORD $Junk HEADER X-Spam ""\r\n',
  'b4 APPEND INBOX (\\Seen) "17-Jul-1996 02:44:25 -0700" {20+}\r\nSubject: hi\r\n\r\nbody\r\n\r\n',
  'b5 APPEND Drafts ~{5}\r\nhello\r\n',
  'b6 IDLE\r\nDONE\r\n',
  'b7 LIST "" "%" RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n',
  'b8 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ SIZE)\r\n',
  'b9 ENABLE QRESYNC UTF8=ACCEPT\r\n',
  'c1 AUTHENTICATE PLAIN\r\nAGFsaWNlAHBhc3M=\r\n',
  'c2 UID MOVE 4:2 Trash\r\n',
  'c3 COPY $ "Archive/2024"\r\n',
  'c4 ID ("name" "fuzz" "version" NIL)\r\n',
  'c5 SEARCH NOT NOT (OR SEEN (UNSEEN DRAFT)) SENTBEFORE "1-Jan-2000"\r\n',
  'c6 UID EXPUNGE 3:5\r\n',
];

/** Byte strings that steer the parser into its edge cases when spliced in. */
const TOKENS = [
  '{', '}', '{5}\r\n', '{3+}\r\n', '~{2}\r\n', `{${'9'.repeat(25)}}\r\n`, `{${'9'.repeat(25)}+}\r\n`, '{4294967296+}\r\n', '{100+}\r\n',
  '(', ')', '((((((((((((((((((((((((((((((((((((', '[', ']', '<', '>', '<0.', '"', '\\', '\\"', '\r', '\n', '\r\n', ' ', '  ',
  '*', '%', '$', ':', ',', '0', '4294967296', '99999999999999999999999', '-1', '\x00', '\xff', '\xe6\x97', '&', '&AGE-', 'NIL',
  'BODY[', 'BODY.PEEK[HEADER.FIELDS (', 'NOT ', 'OR ', 'UID ', 'CHARSET KOI8-R ', 'RETURN (', 'MODSEQ ', '.MIME', 'HEADER.FIELDS',
];

function mutate(input: Buffer, random: () => number): Buffer {
  let bytes = input;
  const int = (n: number) => Math.floor(random() * n);
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    const at = int(bytes.length + 1);
    switch (int(6)) {
      case 0:
        if (bytes.length > 0) {
          bytes = Buffer.from(bytes);
          bytes[Math.min(at, bytes.length - 1)] = int(256);
        }
        break;
      case 1:
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(TOKENS[int(TOKENS.length)], 'latin1'), bytes.subarray(at)]);
        break;
      case 2:
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + int(16))]);
        break;
      case 3: {
        const from = int(bytes.length + 1);
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(from, from + 1 + int(64)), bytes.subarray(at)]);
        break;
      }
      case 4:
        bytes = bytes.subarray(0, at);
        break;
      default:
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(CORPUS[int(CORPUS.length)], 'latin1'), bytes.subarray(at)]);
    }
  }
  return bytes;
}

/** A stream of commands: corpus entries, mutations, random bytes, long lines, deep nesting. */
function stream(random: () => number): Buffer {
  const int = (n: number) => Math.floor(random() * n);
  const parts: Buffer[] = [];
  const count = 1 + int(6);
  for (let i = 0; i < count; i++) {
    const base = Buffer.from(CORPUS[int(CORPUS.length)], 'latin1');
    switch (int(8)) {
      case 0:
        parts.push(base);
        break;
      case 1: {
        const junk = Buffer.alloc(1 + int(600));
        for (let k = 0; k < junk.length; k++) junk[k] = int(256);
        parts.push(junk);
        break;
      }
      case 2: {
        const depth = 1 + int(200);
        parts.push(Buffer.from(`d${i} X ${'('.repeat(depth)}a${')'.repeat(int(depth + 2))}\r\n`));
        break;
      }
      case 3:
        parts.push(Buffer.from(`n${i} SEARCH ${'NOT '.repeat(int(100))}${'OR ALL '.repeat(int(40))}ALL ALL\r\n`));
        break;
      case 4:
        parts.push(Buffer.from(`l${i} FETCH ${'1,'.repeat(int(400))}1 FLAGS\r\n`));
        break;
      default:
        parts.push(mutate(base, random));
    }
  }
  return Buffer.concat(parts);
}

function allowed(err: unknown): boolean {
  return err instanceof ImapSyntaxError || err instanceof UnsupportedCharsetError;
}

function expectOnlySyntaxErrors(what: string, fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!allowed(err)) assert.fail(`${what} threw ${String(err)}${err instanceof Error ? `\n${err.stack}` : ''}`);
  }
}

/** Runs every grammar helper over a command's arguments, as a command module might. */
function exerciseHelpers(cmd: ParsedCommand): void {
  const args = cmd.args;
  const rest = args.slice(1);
  expectOnlySyntaxErrors('parseFetchRequest', () => parseFetchRequest(rest, { uid: true }));
  expectOnlySyntaxErrors('parseFetchRequest', () => parseFetchRequest(args, { uid: false }));
  expectOnlySyntaxErrors('parseSearchRequest', () => parseSearchRequest(args));
  expectOnlySyntaxErrors('parseStoreRequest', () => parseStoreRequest(rest));
  for (const t of walk(args)) {
    if (t.type === 'atom') {
      expectOnlySyntaxErrors('parseSequenceSet', () => parseSequenceSet(t.value));
      expectOnlySyntaxErrors('asNumber', () => asNumber(t, 'n', Number.MAX_SAFE_INTEGER));
      expectOnlySyntaxErrors('parseSearchDate', () => parseSearchDate(t.value));
    }
    if (t.type === 'string') {
      expectOnlySyntaxErrors('parseDateTime', () => parseDateTime(t.value.toString('latin1')));
    }
    expectOnlySyntaxErrors('decodeMailboxName', () => decodeMailboxName(Buffer.from(asAstring(t, 'mailbox'), 'utf8'), false));
    expectOnlySyntaxErrors('decodeMailboxName', () => decodeMailboxName(t.type === 'string' ? t.value : Buffer.alloc(0), true));
    expectOnlySyntaxErrors('asFlagList', () => asFlagList(t));
    expectOnlySyntaxErrors('asNstring', () => asNstring(t, 'x'));
  }
}

function* walk(tokens: ImapToken[]): Generator<ImapToken> {
  for (const t of tokens) {
    yield t;
    if (t.type === 'list') yield* walk(t.items);
    if (t.type === 'section') yield* walk(t.section);
  }
}

function show(e: ReaderEvent): string {
  return e.type === 'command' ? `command ${e.command.tag} ${e.command.name} ${e.command.args.length}` : JSON.stringify(e);
}

/**
 * Feeds `input` in chunks chosen by `random` (or whole), drains after every push with a bounded
 * number of calls, switches to line mode after IDLE/AUTHENTICATE like the session does, and checks
 * memory after each drain. Returns the events as text.
 */
function run(input: Buffer, random: (() => number) | null, onCommand: (cmd: ParsedCommand) => void): string[] {
  const reader = new ImapCommandReader(LIMITS);
  const events: string[] = [];
  let at = 0;
  while (at < input.length) {
    const size = random ? 1 + Math.floor(random() * (random() < 0.2 ? 4 : 300)) : input.length;
    const chunk = input.subarray(at, at + size);
    at += chunk.length;
    reader.push(chunk);
    // Every event consumes input or is the one `continue` after a line: at most 2 per octet.
    let budget = 2 * chunk.length + 2;
    for (let e = reader.next(); e; e = reader.next()) {
      assert.ok(budget-- > 0, 'the reader keeps returning events without consuming input');
      events.push(show(e));
      if (e.type === 'command') {
        onCommand(e.command);
        if (e.command.name === 'IDLE' || e.command.name === 'AUTHENTICATE') reader.lineMode = true;
      } else if (e.type === 'line') {
        reader.lineMode = false;
      }
    }
    assert.ok(reader.buffered <= LIMITS.maxLineBytes + 1, `buffered ${reader.buffered}`);
    assert.ok(reader.assembling <= LIMITS.maxCommandBytes + LIMITS.maxAppendBytes, `assembling ${reader.assembling}`);
  }
  return events;
}

test('fuzz: the reader never throws, makes progress, stays bounded, and does not depend on chunking', () => {
  const random = prng(0x1a2b3c);
  let commands = 0;
  let bads = 0;
  for (let i = 0; i < STREAMS; i++) {
    const input = stream(random);
    const whole = run(input, null, () => commands++);
    const chunked = run(input, random, () => {});
    assert.deepEqual(chunked, whole, `stream ${i}: ${JSON.stringify(input.toString('latin1').slice(0, 300))}`);
    bads += whole.filter((e) => e.includes('"bad"') || e.includes('"too-big"')).length;
  }
  // The corpus must actually reach the tokenizer, and the mutations must actually break things.
  assert.ok(commands > STREAMS, `only ${commands} commands parsed`);
  assert.ok(bads > STREAMS / 2, `only ${bads} rejections`);
});

test('fuzz: the grammar helpers throw only ImapSyntaxError or UnsupportedCharsetError', () => {
  const random = prng(0xbeef);
  let helped = 0;
  for (let i = 0; i < STREAMS; i++) {
    run(stream(random), null, (cmd) => {
      helped++;
      exerciseHelpers(cmd);
    });
  }
  assert.ok(helped > STREAMS, `only ${helped} commands exercised`);
});

test('fuzz: the tokenizer on random lines throws only ImapSyntaxError', () => {
  const random = prng(7);
  const int = (n: number) => Math.floor(random() * n);
  for (let i = 0; i < 3000; i++) {
    const line = mutate(Buffer.from(CORPUS[int(CORPUS.length)].split('\r\n')[0], 'latin1'), random);
    // Only the last line may end without a literal: cut at the first LF like the reader would.
    const lf = line.indexOf(0x0a);
    expectOnlySyntaxErrors('parseCommand', () => parseCommand([lf < 0 ? line : line.subarray(0, lf)], []));
  }
});
