import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BuiltinSpamChecker, builtinAction } from '../../src/spam/builtin-checker.js';
import { BUILTIN_SYMBOLS, EXECUTABLE_EXTENSIONS, GTUBE, evaluateBuiltinRules, fileExtension, hasIpHost, isAllCaps, isValidMailboxAddress } from '../../src/spam/builtin-rules.js';
import { readMessageSample } from '../../src/spam/message-sample.js';
import { MAX_DEPTH, MAX_PARTS, parseMessageSample } from '../../src/spam/mime-sample.js';
import { bufferSource, fixture } from '../fixtures/spam/support.js';

const CONFIG = { add_header_score: 5, reject_score: 15, sample_bytes: 262144 };

const BASE_HEADERS: Record<string, string> = {
  From: 'Alice Example <alice@example.com>',
  To: 'bob@example.org',
  Subject: 'Lunch tomorrow?',
  Date: 'Sat, 28 Nov 2026 10:00:00 +0000',
  'Message-ID': '<m1@example.com>',
  'MIME-Version': '1.0',
  'Content-Type': 'text/plain; charset=utf-8',
};

/** A message from BASE_HEADERS with some fields replaced (string) or removed (null). */
function message(changes: Record<string, string | null> = {}, body = 'Hi Bob,\n\nlunch at noon?\n\nAlice\n'): Buffer {
  const fields = { ...BASE_HEADERS, ...changes };
  const head = Object.entries(fields)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n');
  return Buffer.from(`${head}\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}`, 'utf8');
}

function symbolsOf(bytes: Buffer): Record<string, number> {
  return evaluateBuiltinRules(parseMessageSample(bytes, false));
}

async function verdictOf(bytes: Buffer, cfg = CONFIG) {
  return new BuiltinSpamChecker(cfg).check({ source: bufferSource(bytes) });
}

describe('built-in spam rules', () => {
  test('a clean message matches no rule', async () => {
    assert.deepEqual(symbolsOf(message()), {});
    assert.deepEqual(symbolsOf(fixture('clean.eml')), {});
    const v = await verdictOf(fixture('clean.eml'));
    assert.deepEqual(v, {
      score: 0,
      requiredScore: 15,
      action: 'no action',
      symbols: {},
      source: 'builtin',
      header: 'X-Spam-Score: 0.00\r\nX-Spam-Status: No, score=0.00 required=15.00 action="no action" source=builtin\r\n',
    });
  });

  test('GTUBE is rejected with score 1000, also inside a base64 text part', async () => {
    const v = await verdictOf(fixture('gtube.eml'));
    assert.deepEqual(v.symbols, { GTUBE: 1000 });
    assert.equal(v.score, 1000);
    assert.equal(v.action, 'reject');
    assert.equal(
      v.header,
      'X-Spam-Flag: YES\r\nX-Spam-Score: 1000.00\r\nX-Spam-Status: Yes, score=1000.00 required=15.00 action="reject"\r\n\tsource=builtin\r\nX-Spam-Symbols: GTUBE(1000.00)\r\n',
    );
    const b64 = message({ 'Content-Transfer-Encoding': 'base64' }, Buffer.from(`test\r\n${GTUBE}\r\n`).toString('base64'));
    assert.deepEqual(symbolsOf(b64), { GTUBE: 1000 });
  });

  test('missing From, Date and Message-ID are each a symbol', () => {
    assert.deepEqual(symbolsOf(message({ From: null })), { MISSING_FROM: 3 });
    assert.deepEqual(symbolsOf(message({ Date: null })), { MISSING_DATE: 1.5 });
    assert.deepEqual(symbolsOf(message({ 'Message-ID': null })), { MISSING_MID: 1.5 });
    assert.deepEqual(symbolsOf(message({ From: null, Date: null, 'Message-ID': null })), { MISSING_FROM: 3, MISSING_DATE: 1.5, MISSING_MID: 1.5 });
  });

  test('a header cut off by the sample does not count as missing fields', () => {
    const head = Buffer.from('Subject: hello\r\nX-Long: ' + 'a'.repeat(100), 'utf8');
    assert.deepEqual(evaluateBuiltinRules(parseMessageSample(head, true)), {});
    // …but a complete message without a body and without the fields does.
    assert.deepEqual(evaluateBuiltinRules(parseMessageSample(Buffer.from('Subject: hello\r\n'), false)), { MISSING_FROM: 3, MISSING_DATE: 1.5, MISSING_MID: 1.5 });
  });

  test('a From without a valid mailbox is FROM_INVALID', () => {
    for (const from of ['not an address', 'Bob <bob@>', '<@example.com>', 'Alice <alice@example..com>', 'undisclosed-recipients:;', 'bob@localhost']) {
      assert.deepEqual(symbolsOf(message({ From: from })), { FROM_INVALID: 3 }, from);
    }
    for (const from of [
      '"John Q. Public" <jqp@example.com>',
      '"odd local part"@example.com',
      'postmaster@[192.0.2.1]',
      '=?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <taro@example.jp>',
      '山田 <山田@例え.jp>',
      'Team: a@example.com, b@example.org;',
    ]) {
      assert.deepEqual(symbolsOf(message({ From: from })), {}, from);
    }
    assert.equal(isValidMailboxAddress('a@b.example'), true);
    assert.equal(isValidMailboxAddress('a@b'), false);
  });

  test('an all-caps Subject is SUBJ_ALL_CAPS; short, mixed or caseless ones are not', () => {
    assert.deepEqual(symbolsOf(message({ Subject: 'FREE MONEY FOR YOU' })), { SUBJ_ALL_CAPS: 2 });
    assert.deepEqual(symbolsOf(message({ Subject: 'Re: MEETING AGENDA MONDAY' })), { SUBJ_ALL_CAPS: 2 });
    for (const s of ['URGENT', 'NASA and ESA update', 'Re: Hello', '【ＳＡＬＥ】最大５０％ＯＦＦ', '会議の議事録', 'ÜBER 2026 ÄNDERUNGEN für Sie']) {
      assert.equal(isAllCaps(s), false, s);
    }
    assert.equal(isAllCaps('ÜBER 2026 ÄNDERUNGEN'), true);
  });

  test('three exclamation marks in the Subject, or three runs of them in the body', () => {
    assert.deepEqual(symbolsOf(message({ Subject: 'Win now!!!' })), { SUBJ_EXCESS_EXCLAIM: 1.5 });
    assert.deepEqual(symbolsOf(message({ Subject: '大特価！！！' })), { SUBJ_EXCESS_EXCLAIM: 1.5 }, 'full-width marks count like ASCII ones');
    assert.deepEqual(symbolsOf(message({ Subject: 'Hello! Great news!' })), {});
    assert.deepEqual(symbolsOf(message({}, 'Buy now!!! Cheap!!!! Limited!!!\n')), { BODY_EXCESS_EXCLAIM: 1 });
    assert.deepEqual(symbolsOf(message({}, 'Wow!!! Thanks! See you!!\n')), {});
  });

  test('HTML without a text/plain part is MIME_HTML_ONLY', () => {
    const html = message({ 'Content-Type': 'text/html; charset=utf-8' }, '<p>Hello <b>Bob</b>, lunch at noon?</p>');
    assert.deepEqual(symbolsOf(html), { MIME_HTML_ONLY: 1 });
    const alternative = message(
      { 'Content-Type': 'multipart/alternative; boundary="x"' },
      '--x\nContent-Type: text/plain\n\nHello Bob\n--x\nContent-Type: text/html\n\n<p>Hello Bob</p>\n--x--\n',
    );
    assert.deepEqual(symbolsOf(alternative), {});
    const htmlInMixed = message(
      { 'Content-Type': 'multipart/mixed; boundary="y"' },
      '--y\nContent-Type: text/html\n\n<p>Hello Bob</p>\n--y\nContent-Type: application/pdf; name="a.pdf"\n\nJVBERi0=\n--y--\n',
    );
    assert.deepEqual(symbolsOf(htmlInMixed), { MIME_HTML_ONLY: 1 });
  });

  test('a body that is mostly a link to an IP address is BODY_URL_IP_ONLY', () => {
    assert.deepEqual(symbolsOf(message({}, 'http://203.0.113.9/login.php?id=42\n')), { BODY_URL_IP_ONLY: 3.5 });
    assert.deepEqual(symbolsOf(message({}, 'Verify: http://3232235777/account\n')), { BODY_URL_IP_ONLY: 3.5 });
    assert.deepEqual(symbolsOf(message({}, 'Click https://[2001:db8::1]/x now\n')), { BODY_URL_IP_ONLY: 3.5 });
    const html = message({ 'Content-Type': 'text/html' }, '<html><body><a href="http://198.51.100.4/pay">Click here</a></body></html>');
    assert.deepEqual(symbolsOf(html), { BODY_URL_IP_ONLY: 3.5, MIME_HTML_ONLY: 1 });
    // A real letter that happens to link an address, and a link to a name, are fine.
    const letter = 'Hi Bob,\n\nthe test server is up again. You can reach the dashboard at http://192.0.2.44:8080/ from the office network;\nthe login is the same as last week. Tell me if anything looks wrong.\n\nAlice\n';
    assert.deepEqual(symbolsOf(message({}, letter)), {});
    assert.deepEqual(symbolsOf(message({}, 'https://www.example.com/offer\n')), {});
    assert.equal(hasIpHost('http://user:pw@203.0.113.1:8080/'), true);
    assert.equal(hasIpHost('http://0xC0A80001/'), true);
    assert.equal(hasIpHost('http://203.0.113.1.example.com/'), false);
  });

  test('executable attachments are MIME_EXE_ATTACHMENT, with RFC 2231 and RFC 2047 names decoded', () => {
    const rfc2231 = parseMessageSample(fixture('exe-rfc2231.eml'), false);
    assert.deepEqual(rfc2231.parts.map((p) => p.filenames), [[], ['請求書.exe']]);
    assert.deepEqual(evaluateBuiltinRules(rfc2231), { MIME_EXE_ATTACHMENT: 6 });
    const rfc2047 = parseMessageSample(fixture('exe-rfc2047.eml'), false);
    assert.deepEqual(rfc2047.parts.map((p) => p.filenames), [[], ['請求書.scr']]);
    assert.deepEqual(evaluateBuiltinRules(rfc2047), { MIME_EXE_ATTACHMENT: 6 });
    assert.deepEqual(symbolsOf(fixture('pdf-attachment.eml')), {});

    for (const ext of EXECUTABLE_EXTENSIONS) {
      const m = message(
        { 'Content-Type': 'multipart/mixed; boundary="z"' },
        `--z\nContent-Type: text/plain\n\nsee attached\n--z\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename="Invoice.PDF.${ext.toUpperCase()}"\n\nAAAA\n--z--\n`,
      );
      assert.deepEqual(symbolsOf(m), { MIME_EXE_ATTACHMENT: 6 }, ext);
    }
    assert.equal(fileExtension('invoice.exe. '), 'exe', 'Windows ignores trailing dots and spaces');
    assert.equal(fileExtension('readme'), '');
  });

  test('Japanese mail is not penalised for being Japanese', async () => {
    for (const name of ['japanese-iso2022jp.eml', 'japanese-sjis.eml', 'japanese-utf8-alternative.eml']) {
      const v = await verdictOf(fixture(name));
      assert.deepEqual(v.symbols, {}, name);
      assert.equal(v.score, 0, name);
      assert.equal(v.action, 'no action', name);
    }
  });

  test('scores add up and map to actions by the configured thresholds', async () => {
    const exe = await verdictOf(fixture('exe-rfc2231.eml'));
    assert.equal(exe.score, BUILTIN_SYMBOLS.MIME_EXE_ATTACHMENT);
    assert.equal(exe.action, 'add header');
    const strict = await verdictOf(fixture('exe-rfc2231.eml'), { ...CONFIG, reject_score: 6 });
    assert.equal(strict.action, 'reject');
    assert.equal(strict.requiredScore, 6);
    const bare = await verdictOf(message({ From: 'nobody', Date: null, 'Message-ID': null, Subject: 'CHEAP PILLS TODAY!!!' }));
    assert.deepEqual(bare.symbols, { FROM_INVALID: 3, MISSING_DATE: 1.5, MISSING_MID: 1.5, SUBJ_ALL_CAPS: 2, SUBJ_EXCESS_EXCLAIM: 1.5 });
    assert.equal(bare.score, 9.5);
    assert.equal(bare.action, 'add header');
    assert.equal(builtinAction(4.99, CONFIG), 'no action');
    assert.equal(builtinAction(5, CONFIG), 'add header');
    assert.equal(builtinAction(15, CONFIG), 'reject');
  });
});

describe('built-in rules: bounds', () => {
  test('only sample_bytes of the message are read, and the stream is closed there', async () => {
    const big = message({}, `${'lorem ipsum dolor sit amet\n'.repeat(20000)}${GTUBE}\n`);
    const source = bufferSource(big, 4096);
    const sample = await readMessageSample(source, 16384);
    assert.equal(sample.bytes.length, 16384);
    assert.equal(sample.truncated, true);
    assert.equal(source.opened, 1);
    // The GTUBE string beyond the sample is not seen: the sample is what the rules promise to read.
    const v = await new BuiltinSpamChecker({ ...CONFIG, sample_bytes: 16384 }).check({ source: bufferSource(big) });
    assert.deepEqual(v.symbols, {});
    const whole = await readMessageSample(bufferSource(message()), 16384);
    assert.equal(whole.truncated, false);
  });

  test(`nesting deeper than ${MAX_DEPTH} and more than ${MAX_PARTS} parts are cut off`, () => {
    let body = 'innermost\n';
    for (let depth = 40; depth > 0; depth--) body = `--b${depth}\nContent-Type: multipart/mixed; boundary="b${depth + 1}"\n\n${body}\n--b${depth}--\n`;
    const deep = parseMessageSample(message({ 'Content-Type': 'multipart/mixed; boundary="b1"' }, body), false);
    assert.equal(deep.parts.length, 1);
    assert.equal(deep.parts[0].contentType, 'multipart/mixed', 'the walk stops at MAX_DEPTH and keeps the rest as one part');

    const many = Array.from({ length: 500 }, (_, i) => `--m\nContent-Type: text/plain\n\npart ${i}\n`).join('') + '--m--\n';
    const wide = parseMessageSample(message({ 'Content-Type': 'multipart/mixed; boundary="m"' }, many), false);
    assert.equal(wide.parts.length, MAX_PARTS);
  });

  test('garbage and truncated multiparts never throw', () => {
    for (const bytes of [
      Buffer.alloc(0),
      Buffer.from('\r\n\r\n'),
      Buffer.from([0xff, 0xfe, 0x00, 0x1b, 0x24, 0x42]),
      message({ 'Content-Type': 'multipart/mixed; boundary="cut"' }, '--cut\nContent-Type: text/html\n\n<p>unfinished'),
      message({ 'Content-Type': 'multipart/mixed' }, 'no boundary parameter'),
      message({ 'Content-Type': 'text/plain; charset=x-unknown-charset', 'Content-Transfer-Encoding': 'base64' }, '!!!not base64'),
    ]) {
      assert.doesNotThrow(() => evaluateBuiltinRules(parseMessageSample(bytes, true)));
    }
  });
});
