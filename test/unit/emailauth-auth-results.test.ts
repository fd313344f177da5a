/** Authentication-Results: writing (RFC 8601 §2.2, folded per RFC 5322), reading, and removing forged ones (§5). */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatAuthResults,
  formatPvalue,
  formatComment,
  foldWords,
  parseAuthResults,
  authservIdOf,
  stripForgedAuthResults,
  MAX_LINE,
} from '../../src/emailauth/index.js';
import { MAX_VALUE_LENGTH } from '../../src/emailauth/auth-results.js';
import { MAX_COMMENT_DEPTH, MAX_FIELD_LENGTH } from '../../src/emailauth/auth-results-parser.js';

function valueOf(field: string): string {
  return field.slice(field.indexOf(':') + 1).replace(/\r\n(?=[ \t])/g, '');
}

describe('writing', () => {
  test('one resinfo per line, separated by ";", ending in CRLF', () => {
    const h = formatAuthResults('mx.example.net', [
      { method: 'spf', result: 'pass', properties: [['smtp.mailfrom', 'alice@example.com']] },
      { method: 'dkim', result: 'none' },
    ]);
    assert.equal(h, 'Authentication-Results: mx.example.net;\r\n spf=pass smtp.mailfrom=alice@example.com;\r\n dkim=none\r\n');
  });

  test('no results is the "none" form (RFC 8601 §2.2 no-result)', () => {
    assert.equal(formatAuthResults('mx.example.net', []), 'Authentication-Results: mx.example.net; none\r\n');
    assert.deepEqual(parseAuthResults(valueOf(formatAuthResults('mx.example.net', []))), { authservId: 'mx.example.net', results: [] });
  });

  test('pvalues: tokens and addresses stay bare, anything else is a quoted-string', () => {
    assert.equal(formatPvalue('example.com'), 'example.com');
    assert.equal(formatPvalue('alice@example.com'), 'alice@example.com');
    assert.equal(formatPvalue('@example.com'), '@example.com');
    assert.equal(formatPvalue('rsa-sha256'), 'rsa-sha256');
    assert.equal(formatPvalue('ab/+cd=='), '"ab/+cd=="');
    assert.equal(formatPvalue('SRS0=ab=cd@fwd.example'), '"SRS0=ab=cd@fwd.example"');
    assert.equal(formatPvalue('a b@example.com'), '"a b@example.com"');
    assert.equal(formatPvalue('say "hi"\\'), '"say \\"hi\\"\\\\"');
    assert.equal(formatPvalue('x\r\nX-Injected: 1'), '"xX-Injected: 1"');
    assert.equal(formatPvalue('[192.0.2.1]'), '"[192.0.2.1]"');
    assert.equal(formatPvalue('postmaster@[192.0.2.1]'), 'postmaster@[192.0.2.1]');
  });

  test('comments escape parentheses and are bounded', () => {
    assert.equal(formatComment('p=reject (really)'), '(p=reject \\(really\\))');
    assert.equal(formatComment('a\r\n\tb'), '(ab)');
    const long = formatComment('x'.repeat(1000));
    assert.ok(long.length <= 202 + 10, `comment of ${long.length}`);
    assert.ok(long.endsWith('...)'));
  });

  test('a bad method, result or property name is a programming error', () => {
    assert.throws(() => formatAuthResults('mx', [{ method: 'spf;x', result: 'pass' }]), /method or result/);
    assert.throws(() => formatAuthResults('mx', [{ method: 'spf', result: 'pass pass' }]), /method or result/);
    assert.throws(() => formatAuthResults('mx', [{ method: 'spf', result: 'pass', properties: [['smtp mailfrom', 'x']] }]), /property name/);
  });

  test(`a value longer than ${MAX_VALUE_LENGTH} characters is left out`, () => {
    const h = formatAuthResults('mx', [{ method: 'spf', result: 'pass', properties: [['smtp.mailfrom', `${'a'.repeat(MAX_VALUE_LENGTH)}@example.com`], ['smtp.helo', 'h.example']] }]);
    assert.doesNotMatch(h, /mailfrom/);
    assert.match(h, /smtp\.helo=h\.example/);
  });

  test(`folding keeps lines at most ${MAX_LINE} characters; one over-long word gets a line of its own`, () => {
    const words = Array.from({ length: 40 }, (_, i) => `header.p${i}=value-${i}`);
    const lines = foldWords('Authentication-Results:', words);
    for (const l of lines) assert.ok(l.length <= MAX_LINE, l);
    assert.equal(lines.slice(1).every((l) => l.startsWith(' ')), true);
    assert.equal(lines.join(' ').replace(/\s+/g, ' '), `Authentication-Results: ${words.join(' ')}`);
    const long = 'x'.repeat(200);
    const withLong = foldWords('Name:', ['a', long, 'b']);
    assert.deepEqual(withLong, ['Name: a', ` ${long}`, ' b']);
  });

  test('fuzz: any value written is read back as written (minus control characters)', () => {
    const alphabet = 'abcXYZ019 .@-_=+/\\"();:,<>[]?!#$%&\'*^`{|}~\t\r\n\u00e9\u65e5';
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
    for (let i = 0; i < 500; i++) {
      const len = 1 + Math.floor(rand() * 40);
      let v = '';
      for (let j = 0; j < len; j++) v += alphabet[Math.floor(rand() * alphabet.length)];
      const expected = v.replace(/[\u0000-\u001f\u007f]/g, '');
      if (expected === '') continue;
      const h = formatAuthResults('mx.example.net', [{ method: 'spf', result: 'pass', comment: v, properties: [['smtp.mailfrom', v], ['smtp.helo', 'ok']] }]);
      assert.doesNotMatch(h.slice(0, -2), /\r\n(?![ \t])/, 'no line starts outside a continuation');
      const parsed = parseAuthResults(valueOf(h));
      assert.ok(parsed, `parses: ${JSON.stringify(h)}`);
      assert.equal(parsed.results.length, 1);
      assert.deepEqual(
        parsed.results[0].properties.map((p) => [p.property, p.value]),
        [['mailfrom', expected], ['helo', 'ok']],
        JSON.stringify(h),
      );
    }
  });
});

describe('reading (RFC 8601 Appendix B examples)', () => {
  test('B.2: nothing done', () => {
    assert.deepEqual(parseAuthResults(' example.org 1; none'), { authservId: 'example.org', version: '1', results: [] });
  });

  test('B.3: SPF with a property', () => {
    assert.deepEqual(parseAuthResults(' example.com; spf=pass smtp.mailfrom=example.net'), {
      authservId: 'example.com',
      results: [{ method: 'spf', result: 'pass', comments: [], properties: [{ ptype: 'smtp', property: 'mailfrom', value: 'example.net' }] }],
    });
  });

  test('B.4: several methods with comments and folding', () => {
    const p = parseAuthResults(' example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n          spf=pass smtp.mailfrom=example.net');
    assert.ok(p);
    assert.deepEqual(
      p.results.map((r) => [r.method, r.result, r.comments, r.properties.map((x) => `${x.ptype}.${x.property}=${x.value}`)]),
      [
        ['auth', 'pass', ['cram-md5'], ['smtp.auth=sender@example.net']],
        ['spf', 'pass', [], ['smtp.mailfrom=example.net']],
      ],
    );
  });

  test('B.6-style: reason, method version, quoted values, nested comments', () => {
    const p = parseAuthResults(
      ' (a comment (nested)) example.com; dkim/1=fail reason="bad signature" (b=wrong (really)) header.i=@mail-router.example.net; dkim=pass header.b="ab/+12=="',
    );
    assert.ok(p);
    assert.equal(p.authservId, 'example.com');
    assert.equal(p.results[0].methodVersion, '1');
    assert.equal(p.results[0].reason, 'bad signature');
    assert.deepEqual(p.results[0].comments, ['b=wrong (really)']);
    assert.equal(p.results[0].properties[0].value, '@mail-router.example.net');
    assert.equal(p.results[1].properties[0].value, 'ab/+12==');
  });

  test('malformed values give null, never an exception', () => {
    for (const bad of ['', ' ;', ' example.com', ' example.com; spf', ' example.com; spf=', ' example.com; spf=pass smtp', ' example.com; spf=pass (unterminated', ' "unterminated']) {
      assert.equal(parseAuthResults(bad), null, JSON.stringify(bad));
    }
  });

  test(`limits: comments nested deeper than ${MAX_COMMENT_DEPTH}, values longer than ${MAX_FIELD_LENGTH}`, () => {
    const deep = `${'('.repeat(MAX_COMMENT_DEPTH + 1)}x${')'.repeat(MAX_COMMENT_DEPTH + 1)} example.com; none`;
    assert.equal(parseAuthResults(deep), null);
    const ok = `${'('.repeat(MAX_COMMENT_DEPTH)}x${')'.repeat(MAX_COMMENT_DEPTH)} example.com; none`;
    assert.equal(parseAuthResults(ok)?.authservId, 'example.com');
    assert.equal(parseAuthResults(` example.com; spf=pass (${'x'.repeat(MAX_FIELD_LENGTH)})`), null);
    assert.equal(authservIdOf(' '.repeat(MAX_FIELD_LENGTH + 1)), null);
  });
});

describe('removing forged Authentication-Results (RFC 8601 §5)', () => {
  const ours = 'mx.receiver.test';

  test('fields claiming our authserv-id are removed; others, and ARC-Authentication-Results, stay', () => {
    const fields = [
      'Received: from a.example by b.example; Mon, 1 Jan 2024 00:00:00 +0000',
      'Authentication-Results: mx.receiver.test; dkim=pass header.d=bank.example',
      'Authentication-Results: other.example; spf=pass smtp.mailfrom=a@other.example',
      'authentication-results: (sneaky comment) MX.Receiver.Test.; dkim=pass',
      'Authentication-Results:  "mx.receiver.test" ; spf=pass',
      'Authentication-Results:\r\n mx.receiver.test;\r\n dkim=pass',
      'Authentication-Results: mx.receiver.test',
      'ARC-Authentication-Results: i=1; mx.receiver.test; spf=pass',
      'Authentication-Results: mx.receiver.test.evil.example; dkim=pass',
      'Authentication-Results: ;;; garbage',
      'X-Authentication-Results: mx.receiver.test; dkim=pass',
    ];
    assert.deepEqual(stripForgedAuthResults(fields, ours), [
      fields[0],
      fields[2],
      fields[7],
      fields[8],
      fields[9],
      fields[10],
    ]);
  });

  test("works on mailparser's { key, line } header lines and with several names", () => {
    const lines = [
      { key: 'authentication-results', line: 'Authentication-Results: node-1.mx.test; spf=pass' },
      { key: 'authentication-results', line: 'Authentication-Results: node-2.mx.test; spf=pass' },
      { key: 'subject', line: 'Subject: hi' },
    ];
    assert.deepEqual(stripForgedAuthResults(lines, ['node-1.mx.test', 'NODE-2.MX.TEST']), [lines[2]]);
    assert.deepEqual(stripForgedAuthResults(lines, []), lines);
  });

  test('authservIdOf reads the id even when the rest is not valid', () => {
    assert.equal(authservIdOf(' mx.receiver.test; this is not valid ((('), 'mx.receiver.test');
    assert.equal(authservIdOf(' (c) "quoted.id" ;'), 'quoted.id');
    assert.equal(authservIdOf(' ;'), null);
  });
});
