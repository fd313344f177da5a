/**
 * The generic IMAP tokenizer (src/protocols/imap/parser/tokenizer.ts): command names, atoms,
 * quoted strings, literals wherever a string may stand, lists, sections, and its bounds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_LIST_DEPTH, MAX_TOKENS, literalAnnouncement, parseCommand, readTag } from '../../src/protocols/imap/parser/tokenizer.js';
import type { ImapToken } from '../../src/protocols/imap/parser/types.js';
import { ImapSyntaxError } from '../../src/protocols/imap/session/types.js';

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

/** Parses a command given as its lines (literal announcements included) and literals. */
function parse(lines: string | string[], literals: string[] = []): string {
  const ls = (typeof lines === 'string' ? [lines] : lines).map((l) => Buffer.from(l, 'latin1'));
  const c = parseCommand(ls, literals.map((l) => Buffer.from(l, 'latin1')));
  return [c.tag, c.name, ...c.args.map(showToken)].join(' ');
}

function syntaxError(lines: string | string[], message: string | RegExp, literals: string[] = []): void {
  assert.throws(() => parse(lines, literals), (err: unknown) => {
    assert.ok(err instanceof ImapSyntaxError, `not an ImapSyntaxError: ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

test('tokenizer: the command name is upper-cased and UID takes the next word', () => {
  assert.equal(parse('a1 noop'), 'a1 NOOP');
  assert.equal(parse('A.1 uid Fetch 1 FLAGS'), 'A.1 UID FETCH 1 FLAGS');
  assert.equal(parse('a1 UID   STORE 1 +FLAGS \\Seen'), 'a1 UID STORE 1 +FLAGS \\Seen');
  syntaxError('a1 UID', 'Missing command after UID');
  syntaxError('a1', 'Missing command name');
  syntaxError('a1 ', 'Missing command name');
  syntaxError('a1 NOOP(', "Unexpected '(' after the command name");
  syntaxError('+1 NOOP', 'Missing or invalid tag');
});

test('tokenizer: tags are ASTRING-CHARs except "+" (and list-wildcards)', () => {
  assert.equal(readTag(Buffer.from('a]1 NOOP')), 'a]1');
  assert.equal(readTag(Buffer.from('A001 NOOP')), 'A001');
  assert.equal(readTag(Buffer.from('A001')), 'A001');
  for (const bad of ['+ NOOP', 'a+ NOOP', '* NOOP', 'a% NOOP', 'a"b NOOP', 'a(b NOOP', 'a{b NOOP', 'a\\b NOOP', ' a NOOP', '', '\xe9 NOOP']) {
    assert.equal(readTag(Buffer.from(bad, 'latin1')), null, bad);
  }
});

test('tokenizer: atoms keep flags, wildcards, sequence sets, "]" and NIL as sent', () => {
  assert.equal(parse('a1 STORE 1:*,$ +FLAGS.SILENT (\\Seen \\* $Forwarded)'), 'a1 STORE 1:*,$ +FLAGS.SILENT (\\Seen \\* $Forwarded)');
  assert.equal(parse('a1 LIST "" %/*'), 'a1 LIST "" %/*');
  assert.equal(parse('a1 LIST "" foo]bar'), 'a1 LIST "" foo]bar');
  assert.equal(parse('a1 LIST "" foo[bar]'), 'a1 LIST "" foo[bar]');
  assert.equal(parse(`a1 LIST "" x${'['.repeat(60_000)}`), `a1 LIST "" x${'['.repeat(60_000)}`);
  assert.equal(parse('a1 X NIL nil ~tilde'), 'a1 X NIL nil ~tilde');
  syntaxError('a1 X \\', "A flag needs a name after '\\'");
  syntaxError('a1 X a\\b', "Unexpected '\\' after 'a'");
  syntaxError('a1 X ab"c"', `Unexpected '"' after 'ab'`);
  syntaxError('a1 X caf\xe9', "Unexpected 0xe9 after 'caf'");
  syntaxError('a1 X \x01', 'Unexpected 0x01');
  syntaxError('a1 X )', "Unexpected ')'");
});

test('tokenizer: quoted strings with \\" and \\\\ escapes, UTF-8 kept as bytes', () => {
  assert.equal(parse('a1 LOGIN "a b" "q\\"u\\\\o"'), 'a1 LOGIN "a b" "q\\"u\\\\o"');
  assert.equal(parse('a1 LOGIN "" ""'), 'a1 LOGIN "" ""');
  const c = parseCommand([Buffer.from('a1 SELECT "日本語"')]);
  const arg = c.args[0];
  assert.ok(arg.type === 'string' && !arg.literal);
  assert.equal(arg.value.toString('utf8'), '日本語');
  syntaxError('a1 LOGIN "a\\nb"', 'Invalid escape in a quoted string');
  syntaxError('a1 LOGIN "a\\', 'Invalid escape in a quoted string');
  syntaxError('a1 LOGIN "a\rb"', 'CR, LF or NUL in a quoted string');
  syntaxError('a1 LOGIN "a\x00b"', 'CR, LF or NUL in a quoted string');
  syntaxError('a1 LOGIN "abc', 'Unterminated quoted string');
  syntaxError('a1 LOGIN "a""b"', `Missing space before '"'`);
});

test('tokenizer: literals stand wherever a string may, bytes kept exactly', () => {
  assert.equal(parse(['a1 LOGIN {5}', ' {3+}', ''], ['al\r\nx', 'p"w']), 'a1 LOGIN L"al\\r\\nx" L"p\\"w"');
  assert.equal(parse(['a1 APPEND INBOX ~{3}', ''], ['\x00\xff\n']), 'a1 APPEND INBOX L8"\\u0000ÿ\\n"');
  // In a list, in a section's header list, and right before a closing parenthesis.
  assert.equal(parse(['a1 X (a {1}', ')'], ['b']), 'a1 X (a L"b")');
  assert.equal(parse(['a1 FETCH 1 BODY[HEADER.FIELDS ({7}', ' To)]<0.5>'], ['Subject']), 'a1 FETCH 1 BODY[HEADER.FIELDS (L"Subject" To)]<0.5>');
  assert.equal(parse(['a1 SEARCH CHARSET {5}', ' SUBJECT {6}', ''], ['UTF-8', '\xe6\x97\xa5\xe6\x9c\xac']), 'a1 SEARCH CHARSET L"UTF-8" SUBJECT L"\xe6\x97\xa5\xe6\x9c\xac"');
  syntaxError('a1 X {1}b', "Unexpected '{' (a literal announcement must end the line)");
  syntaxError(['a1 X {1}', 'b'], "Missing space before 'b'", ['a']);
  syntaxError(['a1 X ({1}', ''], "Missing ')'", ['a']);
  // A frame whose literal does not match its announcement is refused, not misread.
  syntaxError(['a1 X {2}', ''], 'Malformed command frame', ['a']);
  syntaxError(['a1 X', ''], 'Malformed command frame', ['a']);
});

test('tokenizer: literal announcements, with sizes too large to hold', () => {
  assert.deepEqual(literalAnnouncement(Buffer.from('a1 X {12}')), { start: 5, size: 12, synchronizing: true, binary: false });
  assert.deepEqual(literalAnnouncement(Buffer.from('a1 X ~{0+}')), { start: 5, size: 0, synchronizing: false, binary: true });
  assert.equal(literalAnnouncement(Buffer.from(`{${'9'.repeat(40)}}`))?.size, Infinity);
  assert.equal(literalAnnouncement(Buffer.from(`{${'0'.repeat(40)}7}`))?.size, 7);
  for (const none of ['a1 X {}', 'a1 X {+}', 'a1 X 12}', 'a1 X {1a}', 'a1 X {-1}', '}', '']) {
    assert.equal(literalAnnouncement(Buffer.from(none)), null, none);
  }
});

test('tokenizer: nested lists up to the depth limit', () => {
  const nest = (n: number) => `${'('.repeat(n)}x${')'.repeat(n)}`;
  assert.equal(parse(`a1 X ${nest(MAX_LIST_DEPTH)}`), `a1 X ${nest(MAX_LIST_DEPTH)}`);
  syntaxError(`a1 X ${nest(MAX_LIST_DEPTH + 1)}`, `Lists nested too deeply (limit ${MAX_LIST_DEPTH})`);
  assert.equal(parse('a1 X () (())'), 'a1 X () (())');
  assert.equal(parse('a1 X ( a  b )  '), 'a1 X (a b)');
  syntaxError('a1 X (a', "Missing ')'");
  syntaxError('a1 X (a)(b)', "Missing space before '('");
  syntaxError('a1 X a)', "Unexpected ')'");
});

test('tokenizer: at most MAX_TOKENS tokens per command', () => {
  assert.equal(parseCommand([Buffer.from(`a1 X ${'a '.repeat(MAX_TOKENS)}`)]).args.length, MAX_TOKENS);
  syntaxError(`a1 X ${'a '.repeat(MAX_TOKENS + 1)}`, `Too many tokens in one command (limit ${MAX_TOKENS})`);
  syntaxError(`a1 X (${'() '.repeat(MAX_TOKENS)})`, `Too many tokens in one command (limit ${MAX_TOKENS})`);
});

test('tokenizer: sections with partial ranges; only fetch item names take a section', () => {
  assert.equal(parse('a1 FETCH 1 (BODY[] body.peek[1.2.MIME] BINARY.PEEK[1]<0.0> BINARY.SIZE[2])'), 'a1 FETCH 1 (BODY[] body.peek[1.2.MIME] BINARY.PEEK[1]<0.0> BINARY.SIZE[2])');
  assert.equal(parse('a1 FETCH 1 BODY[HEADER.FIELDS.NOT (A "B")]<5>'), 'a1 FETCH 1 BODY[HEADER.FIELDS.NOT (A "B")]<5>');
  assert.equal(parse('a1 FETCH 1 BODY[]<4294967295.4294967295>'), 'a1 FETCH 1 BODY[]<4294967295.4294967295>');
  const c = parseCommand([Buffer.from('a1 FETCH 1 BODY.PEEK[TEXT]<10.20>')]);
  assert.deepEqual(c.args[1], { type: 'section', name: 'BODY.PEEK', section: [{ type: 'atom', value: 'TEXT' }], partial: [10, 20] });
  syntaxError('a1 FETCH 1 BODY[]<4294967296>', 'Number too large in a partial range');
  syntaxError('a1 FETCH 1 BODY[]<99999999999>', 'Number too large in a partial range');
  syntaxError('a1 FETCH 1 BODY[]<1.>', 'Expected a number in a partial range');
  syntaxError('a1 FETCH 1 BODY[]<1', "Missing '>' after a partial range");
  syntaxError('a1 FETCH 1 BODY[TEXT', "Missing ']'");
  syntaxError('a1 FETCH 1 BODY[]x', "Missing space before 'x'");
});
