/**
 * Body preview (SPEC §2: cut on a UTF-8 character boundary), the UTF-8 byte cap and HTML → text.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { cutUtf8, decodeHtmlEntities, htmlToText, makePreview } from '../../src/mail/preview.js';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('cutUtf8', () => {
  test('cuts between code points at every budget', () => {
    const text = 'aé日🍣b'; // 1 + 2 + 3 + 4 + 1 bytes
    const expected = ['', 'a', 'a', 'aé', 'aé', 'aé', 'aé日', 'aé日', 'aé日', 'aé日', 'aé日🍣', 'aé日🍣b'];
    for (let max = 0; max < expected.length; max++) {
      const cut = cutUtf8(text, max);
      assert.equal(cut, expected[max], `max ${max}`);
      assert.ok(bytes(cut) <= max);
    }
  });

  test('never leaves half a surrogate pair', () => {
    const cut = cutUtf8('🍣🍣', 7);
    assert.equal(cut, '🍣');
    assert.ok(!/[\ud800-\udbff]$/.test(cut));
  });

  test('a lone surrogate counts as the three bytes of U+FFFD', () => {
    assert.equal(cutUtf8('a\ud800b', 3), 'a');
    assert.equal(cutUtf8('a\ud800b', 4), 'a\ud800');
  });

  test('short text is returned unchanged', () => {
    assert.equal(cutUtf8('日本', 6), '日本');
    assert.equal(cutUtf8('', 0), '');
  });
});

describe('makePreview', () => {
  test('collapses whitespace and control characters', () => {
    assert.equal(makePreview('  Hello,\r\n\r\n\tworld\u3000！\u0000\u001b end  ', 100), 'Hello, world ！ end');
  });

  test('Japanese (3-byte) characters at the boundary are never split', () => {
    const text = 'あいうえお'.repeat(10); // 150 bytes
    for (const max of [3, 4, 5, 6, 100, 101, 102]) {
      const p = makePreview(text, max);
      assert.equal(bytes(p), Math.floor(max / 3) * 3, `max ${max}`);
      assert.ok(text.startsWith(p));
    }
  });

  test('emoji (4-byte, surrogate pairs) at the boundary are never split', () => {
    const text = 'ab🍣🍣🍣';
    assert.equal(makePreview(text, 5), 'ab');
    assert.equal(makePreview(text, 6), 'ab🍣');
    assert.equal(makePreview(text, 9), 'ab🍣');
    assert.equal(makePreview(text, 10), 'ab🍣🍣');
    for (let max = 0; max <= bytes(text); max++) {
      const p = makePreview(text, max);
      assert.ok(bytes(p) <= max);
      assert.ok(!/[\ud800-\udbff]$/.test(p), `max ${max}: no dangling high surrogate`);
      assert.ok(!p.includes('\ufffd'));
    }
  });

  test('mixed 1/2/3/4-byte text stays valid UTF-8 at every budget', () => {
    const text = 'Aé日🍣'.repeat(20);
    for (let max = 0; max <= bytes(text) + 2; max++) {
      const p = makePreview(text, max);
      assert.ok(bytes(p) <= max, `max ${max}`);
      assert.equal(Buffer.from(p, 'utf8').toString('utf8'), p);
      assert.ok(text.startsWith(p));
    }
  });

  test('a grapheme cluster (ZWJ family, flag, combining mark) is kept whole or dropped whole', () => {
    const family = '👨‍👩‍👧'; // 18 bytes
    assert.equal(makePreview(`ok ${family}`, 3 + 17), 'ok');
    assert.equal(makePreview(`ok ${family}`, 3 + 18), `ok ${family}`);
    assert.equal(makePreview('x🇯🇵', 5), 'x', 'half a flag is not kept');
    assert.equal(makePreview('xe\u0301', 2), 'x', 'base letter without its accent is not kept');
  });

  test('a single cluster larger than the budget falls back to the code-point cut', () => {
    const zalgo = 'a' + '\u0301'.repeat(50);
    const p = makePreview(zalgo, 10);
    assert.ok(p.length > 0 && bytes(p) <= 10);
  });

  test('preview of text within the budget is the collapsed text', () => {
    assert.equal(makePreview('会議の\n議事録', 4096), '会議の 議事録');
    assert.equal(makePreview('', 4096), '');
  });
});

describe('htmlToText', () => {
  test('drops script, style, head and comments; keeps text and block breaks', () => {
    const html =
      '<html><head><title>T</title><style>p{color:red}</style></head><body>' +
      '<script type="text/javascript">if (a < b) { evil() }</script>' +
      '<!-- a comment <p>hidden</p> -->' +
      '<h1>Title</h1><p>First&nbsp;para</p><div>Second<br>line</div>' +
      '<table><tr><td>a</td><td>b</td></tr></table></body></html>';
    assert.equal(htmlToText(html), 'Title\n\nFirst para\n\nSecond\nline\n\na b');
  });

  test('decodes entities and handles quoted ">" and stray quotes in attributes', () => {
    assert.equal(htmlToText('<a title="x > y" href=\'z\'>link</a> &amp; &lt;tag&gt; &#x65E5;&#26412; &unknown;'), 'link & <tag> 日本 &unknown;');
    assert.equal(htmlToText("<p class=it's>still here</p><p>next</p>"), 'still here\n\nnext');
    assert.equal(htmlToText('a < b and c > d'), 'a < b and c > d');
  });

  test('source whitespace collapses like a browser renders it', () => {
    assert.equal(htmlToText('<p>one\n   two\tthree</p>'), 'one two three');
  });

  test('unterminated markup does not hang or throw', () => {
    assert.equal(htmlToText('<p>open <b'), 'open');
    assert.equal(htmlToText('<script>never closed'), '');
    assert.equal(htmlToText('text <!-- unterminated comment'), 'text');
    const hostile = '<a '.repeat(20_000) + '"'.repeat(20_000);
    assert.equal(typeof htmlToText(hostile), 'string');
  });

  test('stops after about maxChars of output', () => {
    const html = '<p>word</p>'.repeat(100_000);
    assert.ok(htmlToText(html, 1000).length < 2000);
  });

  test('invalid numeric references become U+FFFD', () => {
    assert.equal(decodeHtmlEntities('&#0;&#xD800;&#x110000;&#65;'), '\ufffd\ufffd\ufffdA');
  });
});
