/**
 * Structured MIME header values: parameters (RFC 2045 §5.1), RFC 2231 continuations and charsets,
 * RFC 2047 words in file names, and the malformed forms real mail carries.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import iconv from 'iconv-lite';
import { decodeFileName, decodeParameters, splitStructuredValue } from '../../src/mail/mime/index.js';

/** Parameters of a value as name → decoded text. */
function params(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, decoded] of decodeParameters(splitStructuredValue(value).params)) out[name] = decoded.text;
  return out;
}

describe('splitStructuredValue', () => {
  test('main value without comments and whitespace; names lower-cased', () => {
    assert.deepEqual(splitStructuredValue('Text / Plain (comment; with semicolon); CharSet="UTF-8"'), {
      value: 'Text/Plain',
      params: [{ name: 'charset', value: 'UTF-8' }],
    });
  });

  test('quoted strings: escapes, semicolons inside, unterminated quotes', () => {
    assert.deepEqual(params('attachment; filename="a \\"b\\".txt"'), { filename: 'a "b".txt' });
    assert.deepEqual(params('attachment; filename="a;b.txt"; size=3'), { filename: 'a;b.txt', size: '3' });
    assert.deepEqual(params('attachment; filename="abc'), { filename: 'abc' });
  });

  test('unquoted values with spaces or parentheses, trailing and leading comments', () => {
    assert.deepEqual(params('attachment; filename=my file.pdf'), { filename: 'my file.pdf' });
    assert.deepEqual(params('attachment; filename=report (1).pdf'), { filename: 'report (1).pdf' });
    assert.deepEqual(params('text/plain; charset=us-ascii (Plain text)'), { charset: 'us-ascii' });
    assert.deepEqual(params('text/plain; charset=(old) iso-8859-1'), { charset: 'iso-8859-1' });
  });

  test('stray semicolons, parameters without "=", repeated names (the first wins)', () => {
    assert.deepEqual(params('text/plain;; charset=utf-8;;broken; charset=latin1;'), { charset: 'utf-8' });
    assert.deepEqual(params('text/plain; =novalue'), {});
  });

  test('a value with no parameters at all', () => {
    assert.deepEqual(splitStructuredValue(''), { value: '', params: [] });
    assert.deepEqual(splitStructuredValue('inline'), { value: 'inline', params: [] });
  });
});

describe('RFC 2231', () => {
  test('the examples of RFC 2231 §3, §4 and §4.1', () => {
    assert.deepEqual(params('message/external-body; access-type=URL; URL*0="ftp://"; URL*1="cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"'), {
      'access-type': 'URL',
      url: 'ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar',
    });
    assert.deepEqual(params("application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A"), {
      title: 'This is ***fun***',
    });
    assert.deepEqual(
      params(`application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2="isn't it!"`),
      { title: "This is even more ***fun*** isn't it!" },
    );
  });

  test('segments are joined in index order, not in the order written', () => {
    assert.deepEqual(params('x/y; title*2=c; title*0=a; title*10=d; title*1=b'), { title: 'abcd' });
  });

  test('charsets: UTF-8, Shift_JIS, EUC-JP, ISO-2022-JP; an unknown charset reads as UTF-8', () => {
    const pct = (bytes: Buffer) => [...bytes].map((b) => '%' + b.toString(16).padStart(2, '0')).join('');
    assert.equal(params(`a; filename*=UTF-8''${pct(Buffer.from('見積書.pdf'))}`).filename, '見積書.pdf');
    assert.equal(params(`a; filename*=shift_jis''${pct(iconv.encode('見積書.pdf', 'shift_jis'))}`).filename, '見積書.pdf');
    assert.equal(params(`a; filename*=euc-jp'ja'${pct(iconv.encode('見積書.pdf', 'euc-jp'))}`).filename, '見積書.pdf');
    assert.equal(params(`a; filename*=ISO-2022-JP''%1B%24B8%2B%40Q%3Dq%1B%28B.pdf`).filename, '見積書.pdf');
    assert.equal(params(`a; filename*=x-unknown''${pct(Buffer.from('é'))}`).filename, 'é');
  });

  test('the RFC 2231 form wins over a plain parameter of the same name', () => {
    assert.deepEqual(params(`a; filename="plain.txt"; filename*=utf-8''fancy.txt`), { filename: 'fancy.txt' });
    assert.deepEqual(params(`a; filename*=utf-8''fancy.txt; filename="plain.txt"`), { filename: 'fancy.txt' });
  });

  test('malformed percent escapes and a missing charset quote are kept literally', () => {
    assert.deepEqual(params(`a; name*=utf-8''100%ZZ%4`), { name: '100%ZZ%4' });
    assert.deepEqual(params(`a; name*=no-quotes%41`), { name: 'no-quotesA' });
  });

  test('the raw bytes of a value are available (boundaries are compared as bytes)', () => {
    const decoded = decodeParameters(splitStructuredValue('multipart/mixed; boundary="=_\xe9_"').params);
    assert.deepEqual(decoded.get('boundary')?.bytes, Buffer.from([0x3d, 0x5f, 0xe9, 0x5f]));
  });
});

describe('decodeFileName', () => {
  test('RFC 2047 words (B and Q), mixed with plain text', () => {
    assert.equal(decodeFileName('=?UTF-8?B?6KaL56mN5pu4?=.pdf'), '見積書.pdf');
    assert.equal(decodeFileName('=?ISO-8859-1?Q?caf=E9?= menu.txt'), 'café menu.txt');
    assert.equal(decodeFileName('=?ISO-2022-JP?B?GyRCOCtAUT1xGyhC?=.pdf'), '見積書.pdf');
  });

  test('malformed words stay as written; control characters are removed', () => {
    assert.equal(decodeFileName('=?bogus?X?abc?= name'), '=?bogus?X?abc?= name');
    assert.equal(decodeFileName('evil\r\nname\u0000.txt'), 'evilname.txt');
  });
});
