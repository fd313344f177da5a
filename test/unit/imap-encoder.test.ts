/**
 * IMAP response encoder (RFC 9051 §4): exact bytes for every value kind, the quoted-string vs
 * literal choice (RFC 6855 UTF-8), literal8 (RFC 3516), flag lists and INTERNALDATE.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeValue,
  encodeValues,
  flagList,
  formatInternalDate,
  isAtomSafe,
  literalPrefix,
  MAX_QUOTED_BYTES,
  type ImapValue,
} from '../../src/protocols/imap/encoder/index.js';

const ascii = { utf8: false };
const utf8 = { utf8: true };
const enc = (v: ImapValue, o = ascii) => encodeValue(v, o).toString('utf8');

describe('encodeValue', () => {
  test('NIL, numbers, atoms and raw text', () => {
    assert.equal(enc(null), 'NIL');
    assert.equal(enc(0), '0');
    assert.equal(enc(4294967295), '4294967295');
    assert.equal(enc(2 ** 53 - 1), '9007199254740991');
    assert.equal(enc({ atom: '\\Seen' }), '\\Seen');
    assert.equal(enc({ raw: 'BODY[HEADER]<0>' }), 'BODY[HEADER]<0>');
  });

  test('a number that is not a non-negative safe integer is a programming error', () => {
    assert.throws(() => enc(-1), RangeError);
    assert.throws(() => enc(1.5), RangeError);
    assert.throws(() => enc(Number.NaN), RangeError);
  });

  test('plain text is a quoted string with " and \\ escaped', () => {
    assert.equal(enc('Hello'), '"Hello"');
    assert.equal(enc(''), '""');
    assert.equal(enc('say "hi" \\ bye'), '"say \\"hi\\" \\\\ bye"');
    assert.equal(enc('tab\there'), '"tab\there"');
  });

  test('CR, LF and other controls force a literal', () => {
    assert.equal(enc('a\r\nb'), '{4}\r\na\r\nb');
    assert.equal(enc('a\nb'), '{3}\r\na\nb');
    assert.equal(enc('esc\u001b$B'), '{6}\r\nesc\u001b$B');
  });

  test('a NUL in text is dropped (a literal cannot carry it)', () => {
    assert.equal(enc('a\u0000b'), '{2}\r\nab');
  });

  test('non-ASCII text: literal for a 7-bit client, quoted UTF-8 after UTF8=ACCEPT', () => {
    assert.equal(enc('日本'), '{6}\r\n日本');
    assert.equal(enc('日本', utf8), '"日本"');
    assert.deepEqual(encodeValue('é', ascii), Buffer.concat([Buffer.from('{2}\r\n'), Buffer.from([0xc3, 0xa9])]));
  });

  test('text longer than MAX_QUOTED_BYTES goes as a literal, also when UTF-8 makes it longer', () => {
    const max = 'x'.repeat(MAX_QUOTED_BYTES);
    assert.equal(enc(max), `"${max}"`);
    assert.equal(enc(`${max}x`), `{${MAX_QUOTED_BYTES + 1}}\r\n${max}x`);
    const wide = 'é'.repeat(MAX_QUOTED_BYTES / 2 + 1); // 1026 UTF-8 bytes
    assert.equal(enc(wide, utf8), `{${MAX_QUOTED_BYTES + 2}}\r\n${wide}`);
  });

  test('a Buffer is always a literal with its bytes unchanged, NUL included', () => {
    const bytes = Buffer.from([0x41, 0x00, 0xff, 0x0d, 0x0a]);
    assert.deepEqual(encodeValue(bytes, utf8), Buffer.concat([Buffer.from('{5}\r\n'), bytes]));
    assert.equal(enc(Buffer.alloc(0)), '{0}\r\n');
  });

  test('literal8 (RFC 3516 §4.2)', () => {
    const bytes = Buffer.from([0x00, 0x01]);
    assert.deepEqual(encodeValue({ literal8: bytes }, ascii), Buffer.concat([Buffer.from('~{2}\r\n'), bytes]));
  });

  test('lists nest and join with single spaces', () => {
    assert.equal(enc([]), '()');
    assert.equal(enc([null, 1, 'a', [{ atom: 'X' }, []]]), '(NIL 1 "a" (X ()))');
    assert.equal(enc(['a\r\n', 'b']), '({3}\r\na\r\n "b")');
  });
});

describe('concat', () => {
  test('items follow each other without spaces (1*body, 1*address in RFC 9051 §9)', () => {
    assert.equal(enc([{ concat: [['a', null], ['b', 1]] }, 'mixed']), '(("a" NIL)("b" 1) "mixed")');
    assert.equal(enc([{ concat: [] }]), '()');
    assert.equal(enc([[{ concat: [[null, null, 'x', 'y.org']] }], null]), '(((NIL NIL "x" "y.org")) NIL)');
  });
});

describe('encodeValues', () => {
  test('space-joined, no line end', () => {
    assert.equal(encodeValues([3, { atom: 'FETCH' }, [{ atom: 'UID' }, 7]], ascii).toString(), '3 FETCH (UID 7)');
    assert.equal(encodeValues([], ascii).toString(), '');
  });
});

describe('literalPrefix', () => {
  test('literal and literal8 headers', () => {
    assert.equal(literalPrefix(0), '{0}\r\n');
    assert.equal(literalPrefix(1234), '{1234}\r\n');
    assert.equal(literalPrefix(5, true), '~{5}\r\n');
    assert.throws(() => literalPrefix(-1), RangeError);
  });
});

describe('flagList', () => {
  test('flags as atoms in a list', () => {
    assert.equal(enc(flagList(['\\Seen', '$Forwarded', 'work'])), '(\\Seen $Forwarded work)');
    assert.equal(enc(flagList([])), '()');
  });
});

describe('formatInternalDate', () => {
  test('RFC 9051 date-time in UTC with a two-digit day', () => {
    assert.equal(formatInternalDate(Date.UTC(2026, 10, 2, 10, 0, 0)), '02-Nov-2026 10:00:00 +0000');
    assert.equal(formatInternalDate(Date.UTC(1996, 6, 17, 9, 44, 25)), '17-Jul-1996 09:44:25 +0000');
    assert.equal(formatInternalDate(0), '01-Jan-1970 00:00:00 +0000');
    assert.equal(enc(formatInternalDate(Date.UTC(2000, 11, 31, 23, 59, 59))), '"31-Dec-2000 23:59:59 +0000"');
    assert.throws(() => formatInternalDate(Number.NaN), RangeError);
  });
});

describe('isAtomSafe', () => {
  test('ATOM-CHARs only', () => {
    for (const ok of ['INBOX', '$Junk', 'a.b-c_d', 'Foo/Bar', 'x+y', '[tag', 'a:b', "it's"]) assert.equal(isAtomSafe(ok), true, ok);
    for (const bad of ['', 'a b', '(x', 'x)', '{1}', '50%', 'a*', '"q"', 'back\\slash', 'end]', 'tab\t', 'é', 'nul\u0000']) {
      assert.equal(isAtomSafe(bad), false, JSON.stringify(bad));
    }
  });
});
