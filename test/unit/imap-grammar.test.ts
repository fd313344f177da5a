/**
 * The IMAP grammar helpers (src/protocols/imap/parser/): sequence sets, FETCH items, SEARCH keys,
 * STORE arguments, dates, mailbox names and the argument readers, each with its exact errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  asAstring,
  asAtom,
  asFlagList,
  asList,
  asNstring,
  asNumber,
  asString,
  decodeMailboxName,
  encodeMailboxName,
  expectArgs,
  formatDateTime,
  formatSequenceSet,
  MAX_SEARCH_DEPTH,
  parseCommand,
  parseDateTime,
  parseFetchRequest,
  parseSearchDate,
  parseSearchRequest,
  parseSequenceSet,
  parseStoreRequest,
  UnsupportedCharsetError,
  type ImapToken,
} from '../../src/protocols/imap/parser/index.js';
import { ImapSyntaxError } from '../../src/protocols/imap/session/types.js';

/** The argument tokens of `a1 X <text>`, with literals given separately after `{n}` lines. */
function args(text: string, literals: string[] = []): ImapToken[] {
  const lines = `a1 X ${text}`.split('\n').map((l) => Buffer.from(l, 'utf8'));
  return parseCommand(lines, literals.map((l) => Buffer.from(l, 'utf8'))).args;
}

function syntaxError(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ImapSyntaxError, `not an ImapSyntaxError: ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

const atom = (value: string): ImapToken => ({ type: 'atom', value });
const quoted = (value: string): ImapToken => ({ type: 'string', value: Buffer.from(value), literal: false });

// ---------------------------------------------------------------------------------------------
// Sequence sets

test('sequence set: numbers, ranges as written, *, and $', () => {
  assert.deepEqual(parseSequenceSet('1,3:5,7:*'), {
    kind: 'ranges',
    ranges: [
      { from: 1, to: 1 },
      { from: 3, to: 5 },
      { from: 7, to: '*' },
    ],
  });
  assert.deepEqual(parseSequenceSet('*'), { kind: 'ranges', ranges: [{ from: '*', to: '*' }] });
  assert.deepEqual(parseSequenceSet('4:2'), { kind: 'ranges', ranges: [{ from: 4, to: 2 }] });
  assert.deepEqual(parseSequenceSet('*:4'), { kind: 'ranges', ranges: [{ from: '*', to: 4 }] });
  assert.deepEqual(parseSequenceSet('$'), { kind: 'saved' });
  assert.deepEqual(parseSequenceSet('4294967295'), { kind: 'ranges', ranges: [{ from: 4294967295, to: 4294967295 }] });
  assert.deepEqual(parseSequenceSet('007'), { kind: 'ranges', ranges: [{ from: 7, to: 7 }] });
});

test('sequence set: 0, numbers over 2^32-1 and malformed sets are syntax errors', () => {
  syntaxError(() => parseSequenceSet('0'), "0 is not a valid message number in '0'");
  syntaxError(() => parseSequenceSet('1:0'), "0 is not a valid message number in '1:0'");
  syntaxError(() => parseSequenceSet('4294967296'), "Number too large in sequence set '4294967296'");
  syntaxError(() => parseSequenceSet('1:99999999999999999999999999999'), "Number too large in sequence set '1:99999999999999999999999999999'");
  syntaxError(() => parseSequenceSet(''), 'Empty sequence set');
  for (const bad of ['1,,2', '1:', ':1', '1:2:3', '$,1', '1,$', '-1', '1 ', 'a', '1.5', '+1']) {
    syntaxError(() => parseSequenceSet(bad), `Invalid sequence set '${bad}'`);
  }
});

test('sequence set: formatting compresses runs, sorts and drops repeats', () => {
  assert.equal(formatSequenceSet([]), '');
  assert.equal(formatSequenceSet([7]), '7');
  assert.equal(formatSequenceSet([1, 2, 3, 7]), '1:3,7');
  assert.equal(formatSequenceSet([9, 1, 3, 2, 3, 10, 5]), '1:3,5,9:10');
  assert.equal(formatSequenceSet([4294967294, 4294967295]), '4294967294:4294967295');
});

// ---------------------------------------------------------------------------------------------
// FETCH

test('fetch: the macros ALL, FAST and FULL (RFC 9051 §6.4.5)', () => {
  assert.deepEqual(parseFetchRequest(args('all'), { uid: false }), {
    items: [{ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }, { kind: 'ENVELOPE' }],
  });
  assert.deepEqual(parseFetchRequest(args('FAST'), { uid: false }), { items: [{ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }] });
  assert.deepEqual(parseFetchRequest(args('FULL'), { uid: false }), {
    items: [{ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }, { kind: 'ENVELOPE' }, { kind: 'BODY-STRUCTURE-SHORT' }],
  });
  syntaxError(() => parseFetchRequest(args('(FLAGS ALL)'), { uid: false }), 'ALL is a macro and cannot be in a list');
});

test('fetch: simple items, alone or in a list; BODY alone is the short BODYSTRUCTURE; UID is not added', () => {
  assert.deepEqual(parseFetchRequest(args('flags'), { uid: true }), { items: [{ kind: 'FLAGS' }] });
  assert.deepEqual(
    parseFetchRequest(args('(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY MODSEQ RFC822 RFC822.HEADER RFC822.TEXT SAVEDATE EMAILID THREADID)'), { uid: false }).items,
    [
      { kind: 'UID' }, { kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }, { kind: 'ENVELOPE' }, { kind: 'BODYSTRUCTURE' },
      { kind: 'BODY-STRUCTURE-SHORT' }, { kind: 'MODSEQ' }, { kind: 'RFC822' }, { kind: 'RFC822.HEADER' }, { kind: 'RFC822.TEXT' },
      { kind: 'SAVEDATE' }, { kind: 'EMAILID' }, { kind: 'THREADID' },
    ],
  );
  syntaxError(() => parseFetchRequest(args('()'), { uid: false }), 'Empty FETCH data item list');
  syntaxError(() => parseFetchRequest([], { uid: false }), 'Missing FETCH data items');
  syntaxError(() => parseFetchRequest(args('(FLAGS BODY.PEEK)'), { uid: false }), "Unknown FETCH data item 'BODY.PEEK'");
  syntaxError(() => parseFetchRequest(args('"FLAGS"'), { uid: false }), 'Invalid FETCH data item');
  syntaxError(() => parseFetchRequest(args('FLAGS (CHANGEDSINCE 1) x'), { uid: false }), 'Too many arguments to FETCH');
});

test('fetch: BODY[section]<partial> and BODY.PEEK', () => {
  const items = parseFetchRequest(
    args('(BODY[] BODY.PEEK[HEADER] body[1.2.header.fields (subject "X-Mailer" {4}\n)]<0.0> BODY[TEXT]<10.20> BODY[2.MIME] BODY[3.1] BODY[1.HEADER.FIELDS.NOT (Received)] BODY[1.TEXT])', ['date']),
    { uid: false },
  ).items;
  assert.deepEqual(items, [
    { kind: 'BODY', peek: false, section: { part: [] } },
    { kind: 'BODY', peek: true, section: { part: [], text: 'HEADER' } },
    { kind: 'BODY', peek: false, section: { part: [1, 2], text: 'HEADER.FIELDS', fields: ['SUBJECT', 'X-MAILER', 'DATE'] }, partial: { start: 0, length: 0 } },
    { kind: 'BODY', peek: false, section: { part: [], text: 'TEXT' }, partial: { start: 10, length: 20 } },
    { kind: 'BODY', peek: false, section: { part: [2], text: 'MIME' } },
    { kind: 'BODY', peek: false, section: { part: [3, 1] } },
    { kind: 'BODY', peek: false, section: { part: [1], text: 'HEADER.FIELDS.NOT', fields: ['RECEIVED'] } },
    { kind: 'BODY', peek: false, section: { part: [1], text: 'TEXT' } },
  ]);
});

test('fetch: section grammar errors', () => {
  const fetch = (text: string) => () => parseFetchRequest(args(text), { uid: false });
  syntaxError(fetch('BODY[MIME]'), 'MIME needs a part number');
  syntaxError(fetch('BODY[HEADER.FIELDS]'), 'HEADER.FIELDS needs a list of header field names');
  syntaxError(fetch('BODY[HEADER.FIELDS ()]'), 'HEADER.FIELDS needs a list of header field names');
  syntaxError(fetch('BODY[HEADER.FIELDS (A) (B)]'), 'HEADER.FIELDS needs a list of header field names');
  syntaxError(fetch('BODY[HEADER.FIELDS ("A:B")]'), 'Invalid header field name');
  syntaxError(fetch('BODY[HEADER.FIELDS ("")]'), 'Invalid header field name');
  syntaxError(fetch('BODY[HEADER (A)]'), 'Invalid section');
  syntaxError(fetch('BODY[1 TEXT]'), 'Invalid section');
  syntaxError(fetch('BODY["TEXT"]'), 'Invalid section');
  for (const bad of ['0', '1.', '01', '1..TEXT', '.TEXT', 'TEXT.', 'BODY', '1.2.3.HEADERS', 'HEADER.FIELDS.NOT.X']) {
    syntaxError(fetch(`BODY[${bad}]`), `Invalid section '${bad}'`);
  }
  syntaxError(fetch('BODY[4294967296]'), 'Part number too large');
  syntaxError(fetch('BODY[]<5>'), 'A partial range needs <start.length>');
});

test('fetch: BINARY[part]<partial>, BINARY.PEEK and BINARY.SIZE (RFC 3516)', () => {
  assert.deepEqual(parseFetchRequest(args('(BINARY[] BINARY.PEEK[1.2]<5.10> BINARY.SIZE[3])'), { uid: false }).items, [
    { kind: 'BINARY', peek: false, part: [] },
    { kind: 'BINARY', peek: true, part: [1, 2], partial: { start: 5, length: 10 } },
    { kind: 'BINARY.SIZE', part: [3] },
  ]);
  syntaxError(() => parseFetchRequest(args('BINARY[1.TEXT]'), { uid: false }), 'Invalid BINARY section');
  syntaxError(() => parseFetchRequest(args('BINARY[1 2]'), { uid: false }), 'Invalid BINARY section');
  syntaxError(() => parseFetchRequest(args('BINARY.SIZE[1]<0.1>'), { uid: false }), 'BINARY.SIZE takes no partial range');
});

test('fetch: CHANGEDSINCE and VANISHED modifiers (RFC 7162)', () => {
  assert.deepEqual(parseFetchRequest(args('FLAGS (CHANGEDSINCE 12345)'), { uid: false }), { items: [{ kind: 'FLAGS' }], changedSince: 12345 });
  assert.deepEqual(parseFetchRequest(args('(FLAGS) (vanished changedsince 9007199254740991)'), { uid: true }), {
    items: [{ kind: 'FLAGS' }],
    changedSince: 9007199254740991,
    vanished: true,
  });
  const fetch = (text: string, uid = true) => () => parseFetchRequest(args(text), { uid });
  syntaxError(fetch('FLAGS (CHANGEDSINCE 1 VANISHED)', false), 'VANISHED is only allowed with UID FETCH');
  syntaxError(fetch('FLAGS (VANISHED)'), 'VANISHED needs CHANGEDSINCE');
  syntaxError(fetch('FLAGS (CHANGEDSINCE)'), 'Missing CHANGEDSINCE');
  syntaxError(fetch('FLAGS (CHANGEDSINCE x)'), 'Expected a number for CHANGEDSINCE');
  syntaxError(fetch('FLAGS (CHANGEDSINCE 9007199254740992)'), 'Number too large for CHANGEDSINCE');
  syntaxError(fetch('FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)'), 'CHANGEDSINCE given twice');
  syntaxError(fetch('FLAGS (CHANGEDSINCE 1 VANISHED VANISHED)'), 'VANISHED given twice');
  syntaxError(fetch('FLAGS (PARTIAL 1:5)'), 'Unknown FETCH modifier');
  syntaxError(fetch('FLAGS ()'), 'Expected a FETCH modifier list');
  syntaxError(fetch('FLAGS CHANGEDSINCE'), 'Expected a FETCH modifier list');
});

// ---------------------------------------------------------------------------------------------
// SEARCH

test('search: every flag key, NEW/OLD/RECENT on \\Recent, and several keys are an AND', () => {
  const flags = 'ANSWERED DELETED DRAFT FLAGGED SEEN RECENT OLD UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN';
  const { key, charset, returnOptions } = parseSearchRequest(args(flags));
  assert.equal(charset, 'US-ASCII');
  assert.equal(returnOptions, undefined);
  assert.deepEqual(key, {
    op: 'and',
    keys: [
      { op: 'flag', flag: '\\Answered', set: true },
      { op: 'flag', flag: '\\Deleted', set: true },
      { op: 'flag', flag: '\\Draft', set: true },
      { op: 'flag', flag: '\\Flagged', set: true },
      { op: 'flag', flag: '\\Seen', set: true },
      { op: 'flag', flag: '\\Recent', set: true },
      { op: 'flag', flag: '\\Recent', set: false },
      { op: 'flag', flag: '\\Answered', set: false },
      { op: 'flag', flag: '\\Deleted', set: false },
      { op: 'flag', flag: '\\Draft', set: false },
      { op: 'flag', flag: '\\Flagged', set: false },
      { op: 'flag', flag: '\\Seen', set: false },
    ],
  });
  assert.deepEqual(parseSearchRequest(args('new')).key, {
    op: 'and',
    keys: [
      { op: 'flag', flag: '\\Recent', set: true },
      { op: 'flag', flag: '\\Seen', set: false },
    ],
  });
  assert.deepEqual(parseSearchRequest(args('ALL')).key, { op: 'all' });
  assert.deepEqual(parseSearchRequest(args('KEYWORD $Forwarded UNKEYWORD foo')).key, {
    op: 'and',
    keys: [
      { op: 'flag', flag: '$Forwarded', set: true },
      { op: 'flag', flag: 'foo', set: false },
    ],
  });
  syntaxError(() => parseSearchRequest(args('KEYWORD \\Seen')), 'Invalid keyword');
  syntaxError(() => parseSearchRequest(args('KEYWORD "x"')), 'Invalid keyword');
});

test('search: text keys take an astring (atom, quoted, literal) decoded as UTF-8', () => {
  const { key } = parseSearchRequest(args('BCC a BODY "b c" CC {6}\n FROM x TEXT "" TO t SUBJECT {9}\n', ['日本', 'テスト']));
  assert.deepEqual(key, {
    op: 'and',
    keys: [
      { op: 'text', field: 'BCC', value: 'a' },
      { op: 'text', field: 'BODY', value: 'b c' },
      { op: 'text', field: 'CC', value: '日本' },
      { op: 'text', field: 'FROM', value: 'x' },
      { op: 'text', field: 'TEXT', value: '' },
      { op: 'text', field: 'TO', value: 't' },
      { op: 'text', field: 'SUBJECT', value: 'テスト' },
    ],
  });
  syntaxError(() => parseSearchRequest(args('SUBJECT')), 'Missing SUBJECT value');
  syntaxError(() => parseSearchRequest(args('SUBJECT (a)')), 'Expected an atom or string for SUBJECT');
});

test('search: HEADER, dates, sizes, OLDER/YOUNGER, UID, sequence sets and $', () => {
  const { key } = parseSearchRequest(
    args('HEADER Message-ID "<x@y>" HEADER "X-Spam" "" BEFORE 1-Feb-1994 ON "01-Feb-1994" SINCE 29-feb-2024 SENTBEFORE 31-Dec-1999 SENTON 1-Jan-2000 SENTSINCE 2-Mar-2001 LARGER 100 SMALLER 9007199254740991 OLDER 60 YOUNGER 4294967295 UID 1:* 2,4:* $'),
  );
  assert.deepEqual(key, {
    op: 'and',
    keys: [
      { op: 'header', name: 'Message-ID', value: '<x@y>' },
      { op: 'header', name: 'X-Spam', value: '' },
      { op: 'date', field: 'BEFORE', date: '1994-02-01' },
      { op: 'date', field: 'ON', date: '1994-02-01' },
      { op: 'date', field: 'SINCE', date: '2024-02-29' },
      { op: 'date', field: 'SENTBEFORE', date: '1999-12-31' },
      { op: 'date', field: 'SENTON', date: '2000-01-01' },
      { op: 'date', field: 'SENTSINCE', date: '2001-03-02' },
      { op: 'size', cmp: 'LARGER', size: 100 },
      { op: 'size', cmp: 'SMALLER', size: 9007199254740991 },
      { op: 'age', cmp: 'OLDER', seconds: 60 },
      { op: 'age', cmp: 'YOUNGER', seconds: 4294967295 },
      { op: 'uid', set: { kind: 'ranges', ranges: [{ from: 1, to: '*' }] } },
      { op: 'seq', set: { kind: 'ranges', ranges: [{ from: 2, to: 2 }, { from: 4, to: '*' }] } },
      { op: 'seq', set: { kind: 'saved' } },
    ],
  });
  assert.deepEqual(parseSearchRequest(args('UID $')).key, { op: 'uid', set: { kind: 'saved' } });
  const search = (text: string) => () => parseSearchRequest(args(text));
  syntaxError(search('SINCE 30-Feb-2024'), "Invalid day in date '30-Feb-2024'");
  syntaxError(search('SINCE 29-Feb-2023'), "Invalid day in date '29-Feb-2023'");
  syntaxError(search('SINCE 1-Foo-2024'), "Invalid month in date '1-Foo-2024'");
  syntaxError(search('SINCE 2024-02-01'), "Invalid date '2024-02-01'");
  syntaxError(search('SINCE "1-Feb-1994 00:00:00 +0000"'), "Invalid date '1-Feb-1994 00:00:00 +0000'");
  syntaxError(search('LARGER 9007199254740992'), 'Number too large for LARGER');
  syntaxError(search('LARGER -1'), 'Expected a number for LARGER');
  syntaxError(search('OLDER 0'), 'OLDER needs a positive number of seconds');
  syntaxError(search('YOUNGER 4294967296'), 'Number too large for YOUNGER');
  syntaxError(search('UID 0'), "0 is not a valid message number in '0'");
  syntaxError(search('UID "1"'), 'Expected a UID set');
  syntaxError(search('HEADER "Bad Name" x'), 'Invalid header field name');
  syntaxError(search('HEADER Subject'), 'Missing HEADER value');
  syntaxError(search('1:0'), "0 is not a valid message number in '1:0'");
  syntaxError(search('$x'), "Invalid sequence set '$x'");
});

test('search: NOT, OR, parenthesised groups, and the nesting limit', () => {
  assert.deepEqual(parseSearchRequest(args('OR (SEEN FLAGGED) NOT OR 1 2')).key, {
    op: 'or',
    a: { op: 'and', keys: [{ op: 'flag', flag: '\\Seen', set: true }, { op: 'flag', flag: '\\Flagged', set: true }] },
    b: { op: 'not', key: { op: 'or', a: { op: 'seq', set: { kind: 'ranges', ranges: [{ from: 1, to: 1 }] } }, b: { op: 'seq', set: { kind: 'ranges', ranges: [{ from: 2, to: 2 }] } } } },
  });
  assert.deepEqual(parseSearchRequest(args('((SEEN))')).key, { op: 'flag', flag: '\\Seen', set: true });
  let deep = parseSearchRequest(args(`${'NOT '.repeat(MAX_SEARCH_DEPTH)}ALL`)).key;
  for (let i = 0; i < MAX_SEARCH_DEPTH; i++) {
    assert.equal(deep.op, 'not');
    if (deep.op === 'not') deep = deep.key;
  }
  assert.deepEqual(deep, { op: 'all' });
  syntaxError(() => parseSearchRequest(args(`${'NOT '.repeat(MAX_SEARCH_DEPTH + 1)}ALL`)), `Search keys nested too deeply (limit ${MAX_SEARCH_DEPTH})`);
  syntaxError(() => parseSearchRequest(args(`${'OR ALL '.repeat(10_000)}ALL`)), `Search keys nested too deeply (limit ${MAX_SEARCH_DEPTH})`);
  syntaxError(() => parseSearchRequest(args('OR SEEN')), 'Missing search key');
  syntaxError(() => parseSearchRequest(args('NOT')), 'Missing search key');
  syntaxError(() => parseSearchRequest(args('()')), 'Empty search key list');
  syntaxError(() => parseSearchRequest([]), 'Missing search key');
  syntaxError(() => parseSearchRequest(args('FOO')), "Unknown search key 'FOO'");
  syntaxError(() => parseSearchRequest(args('"SEEN"')), 'Expected a search key');
});

test('search: RETURN options (RFC 4731) and CHARSET', () => {
  assert.deepEqual(parseSearchRequest(args('RETURN () ALL')), { returnOptions: ['ALL'], charset: 'US-ASCII', key: { op: 'all' } });
  assert.deepEqual(parseSearchRequest(args('return (min MAX count ALL save MIN) CHARSET utf-8 SEEN')), {
    returnOptions: ['MIN', 'MAX', 'COUNT', 'ALL', 'SAVE'],
    charset: 'UTF-8',
    key: { op: 'flag', flag: '\\Seen', set: true },
  });
  assert.equal(parseSearchRequest(args('CHARSET "us-ascii" ALL')).charset, 'US-ASCII');
  assert.equal(parseSearchRequest(args('CHARSET {5}\n ALL', ['UTF-8'])).charset, 'UTF-8');
  syntaxError(() => parseSearchRequest(args('RETURN (FIRST) ALL')), 'Unknown RETURN option');
  syntaxError(() => parseSearchRequest(args('RETURN ALL')), 'Expected a list of RETURN options');
  syntaxError(() => parseSearchRequest(args('RETURN')), 'Missing RETURN options');
  syntaxError(() => parseSearchRequest(args('CHARSET UTF-8')), 'Missing search key');
  syntaxError(() => parseSearchRequest(args('CHARSET (UTF-8) ALL')), 'Expected an atom or string for charset');
  assert.throws(
    () => parseSearchRequest(args('CHARSET iso-2022-jp SUBJECT x')),
    (err: unknown) => err instanceof UnsupportedCharsetError && err.charset === 'ISO-2022-JP' && err.message === 'Charset ISO-2022-JP is not supported' && err.supported.join(' ') === 'UTF-8 US-ASCII',
  );
});

test('search: MODSEQ with and without an entry name (RFC 7162 §3.1.5)', () => {
  assert.deepEqual(parseSearchRequest(args('MODSEQ 0')).key, { op: 'modseq', modseq: 0 });
  assert.deepEqual(parseSearchRequest(args('MODSEQ "/flags/\\\\draft" all 620162338')).key, { op: 'modseq', modseq: 620162338 });
  assert.deepEqual(parseSearchRequest(args('MODSEQ "/flags/$Junk" PRIV 5')).key, { op: 'modseq', modseq: 5 });
  syntaxError(() => parseSearchRequest(args('MODSEQ "/flags/" all 5')), 'Invalid MODSEQ entry name');
  syntaxError(() => parseSearchRequest(args('MODSEQ "/x/y" all 5')), 'Invalid MODSEQ entry name');
  syntaxError(() => parseSearchRequest(args('MODSEQ "/flags/\\\\Seen" mine 5')), 'Invalid MODSEQ entry type');
  syntaxError(() => parseSearchRequest(args('MODSEQ "/flags/\\\\Seen" all')), 'Missing MODSEQ value');
  syntaxError(() => parseSearchRequest(args('MODSEQ')), 'Missing MODSEQ value');
});

// ---------------------------------------------------------------------------------------------
// STORE

test('store: FLAGS, +FLAGS, -FLAGS, .SILENT, flag list or flags, UNCHANGEDSINCE', () => {
  assert.deepEqual(parseStoreRequest(args('FLAGS (\\Seen \\Deleted)')), { mode: 'replace', silent: false, flags: ['\\Seen', '\\Deleted'] });
  assert.deepEqual(parseStoreRequest(args('+flags.silent \\Flagged $Junk')), { mode: 'add', silent: true, flags: ['\\Flagged', '$Junk'] });
  assert.deepEqual(parseStoreRequest(args('-FLAGS ()')), { mode: 'remove', silent: false, flags: [] });
  assert.deepEqual(parseStoreRequest(args('(UNCHANGEDSINCE 0) -FLAGS.SILENT \\Seen')), { mode: 'remove', silent: true, flags: ['\\Seen'], unchangedSince: 0 });
  assert.deepEqual(parseStoreRequest(args('(unchangedsince 320162338) FLAGS.SILENT ($x)')).unchangedSince, 320162338);
  const store = (text: string) => () => parseStoreRequest(args(text));
  syntaxError(store(''), 'Expected FLAGS, +FLAGS or -FLAGS');
  syntaxError(store('FLAGS'), 'Missing flags');
  syntaxError(store('X-GM-LABELS (a)'), "Unknown STORE data item 'X-GM-LABELS'");
  syntaxError(store('FLAGS.LOUD (a)'), "Unknown STORE data item 'FLAGS.LOUD'");
  syntaxError(store('FLAGS ("\\\\Seen")'), 'Invalid flag');
  syntaxError(store('FLAGS (\\*)'), 'Invalid flag');
  syntaxError(store('FLAGS (a%)'), 'Invalid flag');
  syntaxError(store('FLAGS (a) (b)'), 'Invalid flag');
  syntaxError(store('(UNCHANGEDSINCE) FLAGS (a)'), 'Missing UNCHANGEDSINCE');
  syntaxError(store('(UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) FLAGS (a)'), 'UNCHANGEDSINCE given twice');
  syntaxError(store('(NOTIFY 1) FLAGS (a)'), 'Unknown STORE modifier');
  syntaxError(store('() FLAGS (a)'), 'Empty STORE modifier list');
});

// ---------------------------------------------------------------------------------------------
// Dates

test('dates: APPEND date-time, strict, with zones and a space-padded day', () => {
  assert.equal(parseDateTime('17-Jul-1996 02:44:25 -0700'), Date.UTC(1996, 6, 17, 9, 44, 25));
  assert.equal(parseDateTime(' 7-jul-1996 02:44:25 +0130'), Date.UTC(1996, 6, 7, 1, 14, 25));
  assert.equal(parseDateTime('07-JUL-1996 00:00:00 +0000'), Date.UTC(1996, 6, 7));
  assert.equal(parseDateTime('29-Feb-2024 23:59:59 +0000'), Date.UTC(2024, 1, 29, 23, 59, 59));
  assert.equal(parseDateTime('01-Jan-0099 00:00:00 +0000'), new Date('0099-01-01T00:00:00Z').getTime());
  for (const bad of ['7-Jul-1996 02:44:25 -0700', '17-Jul-96 02:44:25 -0700', '17-Jul-1996 02:44 -0700', '17-Jul-1996 02:44:25', '17-Jul-1996 02:44:25 0700', '17-Jul-1996  02:44:25 -0700', ' 17-Jul-1996 02:44:25 -0700', '17-Jul-1996 02:44:25 -0700 ', '']) {
    syntaxError(() => parseDateTime(bad), `Invalid date-time '${bad}'`);
  }
  syntaxError(() => parseDateTime('30-Feb-2024 00:00:00 +0000'), "Invalid day in date '30-Feb-2024 00:00:00 +0000'");
  syntaxError(() => parseDateTime('00-Jan-2024 00:00:00 +0000'), "Invalid day in date '00-Jan-2024 00:00:00 +0000'");
  syntaxError(() => parseDateTime('01-Jxn-2024 00:00:00 +0000'), "Invalid month in date '01-Jxn-2024 00:00:00 +0000'");
  syntaxError(() => parseDateTime('01-Jan-2024 24:00:00 +0000'), "Invalid time in date-time '01-Jan-2024 24:00:00 +0000'");
  syntaxError(() => parseDateTime('01-Jan-2024 00:60:00 +0000'), "Invalid time in date-time '01-Jan-2024 00:60:00 +0000'");
  syntaxError(() => parseDateTime('01-Jan-2024 00:00:00 +0060'), "Invalid zone in date-time '01-Jan-2024 00:00:00 +0060'");
});

test('dates: INTERNALDATE formatting in UTC, and SEARCH dates', () => {
  assert.equal(formatDateTime(Date.UTC(1996, 6, 7, 9, 4, 5)), '07-Jul-1996 09:04:05 +0000');
  assert.equal(formatDateTime(parseDateTime('17-Jul-1996 02:44:25 -0700')), '17-Jul-1996 09:44:25 +0000');
  assert.equal(parseSearchDate('1-Feb-1994'), '1994-02-01');
  assert.equal(parseSearchDate('01-dec-2020'), '2020-12-01');
  syntaxError(() => parseSearchDate('001-Feb-1994'), "Invalid date '001-Feb-1994'");
  syntaxError(() => parseSearchDate('31-Apr-2020'), "Invalid day in date '31-Apr-2020'");
});

// ---------------------------------------------------------------------------------------------
// Mailbox names

test('mailbox names: modified UTF-7 both ways (RFC 3501 §5.1.3) and INBOX in any case', () => {
  assert.equal(decodeMailboxName(Buffer.from('~peter/mail/&U,BTFw-/&ZeVnLIqe-'), false), '~peter/mail/台北/日本語');
  assert.equal(encodeMailboxName('~peter/mail/台北/日本語', false), '~peter/mail/&U,BTFw-/&ZeVnLIqe-');
  assert.equal(decodeMailboxName(Buffer.from('A&-B'), false), 'A&B');
  assert.equal(encodeMailboxName('A&B', false), 'A&-B');
  assert.equal(encodeMailboxName('Entwürfe', false), 'Entw&APw-rfe');
  assert.equal(decodeMailboxName(Buffer.from('Entw&APw-rfe'), false), 'Entwürfe');
  assert.equal(encodeMailboxName('📧', false), '&2D3c5w-');
  assert.equal(decodeMailboxName(Buffer.from('&2D3c5w-'), false), '📧');
  assert.equal(decodeMailboxName(Buffer.from('&AOk-&-'), false), 'é&');
  for (const name of ['inbox', 'InBoX', 'INBOX']) {
    assert.equal(decodeMailboxName(Buffer.from(name), false), 'INBOX');
    assert.equal(decodeMailboxName(Buffer.from(name), true), 'INBOX');
  }
  assert.equal(decodeMailboxName(Buffer.from('inbox/Sub'), false), 'inbox/Sub');
  assert.equal(decodeMailboxName(Buffer.from(''), false), '');
});

test('mailbox names: UTF-8 as is for UTF8=ACCEPT / IMAP4rev2 clients', () => {
  assert.equal(decodeMailboxName(Buffer.from('台北 & Co'), true), '台北 & Co');
  assert.equal(decodeMailboxName(Buffer.from('&U,BTFw-'), true), '&U,BTFw-');
  assert.equal(encodeMailboxName('台北 & Co', true), '台北 & Co');
  syntaxError(() => decodeMailboxName(Buffer.from([0x61, 0xff]), true), 'Invalid mailbox name: not valid UTF-8');
  syntaxError(() => decodeMailboxName(Buffer.from('a\tb'), true), 'Invalid mailbox name: control character');
});

test('mailbox names: invalid modified UTF-7 is a syntax error', () => {
  const cases: [string | Buffer, string][] = [
    [Buffer.from('台北'), '8-bit characters must be sent as modified UTF-7'],
    ['&U,BTFw', "'&' without a closing '-'"],
    ['&', "'&' without a closing '-'"],
    ['&U,BTFw-&ZeVnLIqe-', 'adjacent modified BASE64 sequences'],
    ['&U/BTFw-', 'bad character in modified BASE64'],
    ['&U,BTFw=-', 'bad character in modified BASE64'],
    ['&AGE-', 'printable ASCII must not be BASE64 encoded'],
    ['&AOl-', 'bad modified BASE64 padding'],
    ['&AOkA-', 'modified BASE64 is not whole UTF-16 units'],
    ['&2D0-', 'unpaired UTF-16 surrogate'],
    ['&3OdYPQ-', 'unpaired UTF-16 surrogate'],
    ['&AAk-', 'control character'],
    ['a\x7fb', 'control character'],
  ];
  for (const [raw, why] of cases) {
    syntaxError(() => decodeMailboxName(typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw, false), `Invalid mailbox name: ${why}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Argument readers

test('args: string, astring, nstring, atom, list', () => {
  const [a, q, l, list, nil] = args('abc "q r" {3}\n (x) NIL', ['lit']);
  assert.equal(asString(q, 'password'), 'q r');
  assert.equal(asString(l, 'password'), 'lit');
  syntaxError(() => asString(a, 'password'), 'Expected a string for password');
  syntaxError(() => asString(undefined, 'password'), 'Missing password');
  assert.equal(asAstring(a, 'user'), 'abc');
  assert.equal(asAstring(q, 'user'), 'q r');
  assert.equal(asAstring(l, 'user'), 'lit');
  assert.equal(asAstring(quoted('日本'), 'user'), '日本');
  syntaxError(() => asAstring(list, 'user'), 'Expected an atom or string for user');
  assert.equal(asNstring(nil, 'x'), null);
  assert.equal(asNstring(atom('nil'), 'x'), null);
  assert.equal(asNstring(q, 'x'), 'q r');
  syntaxError(() => asNstring(a, 'x'), 'Expected a string for x');
  assert.equal(asAtom(a, 'mode'), 'abc');
  syntaxError(() => asAtom(q, 'mode'), 'Expected mode');
  assert.deepEqual(asList(list, 'flags'), [atom('x')]);
  syntaxError(() => asList(a, 'flags'), 'Expected a list for flags');
});

test('args: numbers are digits only, 0 … 2^32-1 unless a larger maximum is given', () => {
  assert.equal(asNumber(atom('0'), 'n'), 0);
  assert.equal(asNumber(atom('0042'), 'n'), 42);
  assert.equal(asNumber(atom('4294967295'), 'n'), 4294967295);
  syntaxError(() => asNumber(atom('4294967296'), 'n'), 'Number too large for n');
  assert.equal(asNumber(atom('9007199254740991'), 'n', Number.MAX_SAFE_INTEGER), 9007199254740991);
  syntaxError(() => asNumber(atom('9007199254740992'), 'n', Number.MAX_SAFE_INTEGER), 'Number too large for n');
  syntaxError(() => asNumber(atom('9'.repeat(400)), 'n', Number.MAX_SAFE_INTEGER), 'Number too large for n');
  syntaxError(() => asNumber(atom('10'), 'n', 9), 'Number too large for n');
  for (const bad of ['-1', '+1', '1e3', '0x10', '1.0', '', ' 1']) syntaxError(() => asNumber(atom(bad), 'n'), 'Expected a number for n');
  syntaxError(() => asNumber(quoted('1'), 'n'), 'Expected a number for n');
  syntaxError(() => asNumber(undefined, 'n'), 'Missing n');
});

test('args: flag lists validate flag syntax', () => {
  assert.deepEqual(asFlagList(atom('\\Seen')), ['\\Seen']);
  assert.deepEqual(asFlagList({ type: 'list', items: [atom('\\Seen'), atom('$Forwarded'), atom('\\X-Ext'), atom('Junk[1')] }), ['\\Seen', '$Forwarded', '\\X-Ext', 'Junk[1']);
  assert.deepEqual(asFlagList({ type: 'list', items: [] }), []);
  for (const bad of ['\\', '\\*', 'a*', 'a]', 'caf\u00e9', '\\\\Seen']) syntaxError(() => asFlagList(atom(bad)), 'Invalid flag');
  syntaxError(() => asFlagList(quoted('\\Seen')), 'Invalid flag');
  syntaxError(() => asFlagList({ type: 'list', items: [{ type: 'list', items: [] }] }), 'Invalid flag');
  syntaxError(() => asFlagList(undefined), 'Missing flag list');
});

test('args: argument counts', () => {
  expectArgs([atom('a')], 1, 2, 'SELECT');
  syntaxError(() => expectArgs([], 1, 2, 'SELECT'), 'Missing arguments to SELECT');
  syntaxError(() => expectArgs([atom('a'), atom('b'), atom('c')], 1, 2, 'SELECT'), 'Too many arguments to SELECT');
});
