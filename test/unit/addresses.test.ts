import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  normaliseDomain,
  normaliseLocalPart,
  parseAddress,
  splitSubaddress,
  tryParseAddress,
} from '../../src/core/tenancy/addresses.js';
import { ValidationError } from '../../src/core/tenancy/errors.js';

function rejects(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (err: unknown) => err instanceof ValidationError && err.code === 'VALIDATION_ERROR' && pattern.test(err.message));
}

describe('normaliseDomain', () => {
  test('lower-cases and strips one trailing dot', () => {
    assert.equal(normaliseDomain('Example.COM'), 'example.com');
    assert.equal(normaliseDomain('  mail.Example.org. '), 'mail.example.org');
  });

  test('converts IDNs to A-labels (RFC 5890)', () => {
    assert.equal(normaliseDomain('bücher.de'), 'xn--bcher-kva.de');
    assert.equal(normaliseDomain('例え.テスト'), 'xn--r8jz45g.xn--zckzah');
    assert.equal(normaliseDomain('ＥＸＡＭＰＬＥ.com'), 'example.com');
    assert.equal(normaliseDomain('xn--bcher-kva.de'), 'xn--bcher-kva.de');
  });

  test('enforces label and total length (RFC 1035)', () => {
    assert.equal(normaliseDomain(`${'a'.repeat(63)}.com`), `${'a'.repeat(63)}.com`);
    rejects(() => normaliseDomain(`${'a'.repeat(64)}.com`), /longer than 63/);
    const long = Array.from({ length: 4 }, () => 'a'.repeat(63)).join('.'); // 255 characters
    rejects(() => normaliseDomain(long), /longer than 253/);
    const max = [...Array.from({ length: 3 }, () => 'a'.repeat(63)), 'a'.repeat(61)].join('.'); // 253
    assert.equal(normaliseDomain(max).length, 253);
  });

  test('rejects non-LDH labels, empty labels, numeric TLDs and single labels', () => {
    rejects(() => normaliseDomain('a_b.com'), /letters, digits and inner hyphens/);
    rejects(() => normaliseDomain('-a.com'), /inner hyphens/);
    rejects(() => normaliseDomain('a-.com'), /inner hyphens/);
    rejects(() => normaliseDomain('a..com'), /empty label/);
    rejects(() => normaliseDomain('1.2.3.4'), /numeric/);
    rejects(() => normaliseDomain('localhost'), /two labels/);
    rejects(() => normaliseDomain('ex ample.com'), /not a valid/);
    rejects(() => normaliseDomain(''), /empty/);
    rejects(() => normaliseDomain('[192.0.2.1]'), /literal/);
    rejects(() => normaliseDomain('ab--cd.com'), /reserved/);
    assert.equal(normaliseDomain('localhost', 'domain', { allowSingleLabel: true }), 'localhost');
  });
});

describe('normaliseLocalPart', () => {
  test('lower-cases dot-atoms and keeps atext specials', () => {
    assert.equal(normaliseLocalPart('Alice.Smith'), 'alice.smith');
    assert.equal(normaliseLocalPart("o'brien+news"), "o'brien+news");
    assert.equal(normaliseLocalPart('a!#$%&*/=?^_`{|}~-z'), 'a!#$%&*/=?^_`{|}~-z');
  });

  test('accepts UTF-8 local parts (RFC 6532) and counts octets', () => {
    assert.equal(normaliseLocalPart('Ünïcode'), 'ünïcode');
    assert.equal(normaliseLocalPart('あ'.repeat(21)), 'あ'.repeat(21)); // 63 octets
    rejects(() => normaliseLocalPart('あ'.repeat(22)), /64 octets/); // 66 octets
  });

  test('enforces 64 octets (RFC 5321 §4.5.3.1.1)', () => {
    assert.equal(normaliseLocalPart('a'.repeat(64)), 'a'.repeat(64));
    rejects(() => normaliseLocalPart('a'.repeat(65)), /64 octets/);
  });

  test('rejects dots in the wrong place, quoted strings, specials and controls', () => {
    rejects(() => normaliseLocalPart('.alice'), /dots/);
    rejects(() => normaliseLocalPart('alice.'), /dots/);
    rejects(() => normaliseLocalPart('al..ice'), /dots/);
    rejects(() => normaliseLocalPart('"quoted"'), /quoted/);
    rejects(() => normaliseLocalPart('a b'), /may only contain/);
    rejects(() => normaliseLocalPart('a,b'), /may only contain/);
    rejects(() => normaliseLocalPart('a\r\nb'), /control/);
    rejects(() => normaliseLocalPart(''), /empty/);
  });
});

describe('parseAddress', () => {
  test('normalises both parts and strips angle brackets', () => {
    assert.deepEqual(parseAddress(' <Alice@Example.COM> '), { localPart: 'alice', domain: 'example.com', address: 'alice@example.com' });
    assert.equal(parseAddress('user@bücher.de').address, 'user@xn--bcher-kva.de');
  });

  test('rejects missing parts and names the field', () => {
    rejects(() => parseAddress('alice'), /invalid address.*local-part@domain/);
    rejects(() => parseAddress('@example.com'), /local-part@domain/);
    rejects(() => parseAddress('alice@'), /local-part@domain/);
    rejects(() => parseAddress('a@b@example.com'), /local part/);
    rejects(() => parseAddress('x', 'email'), /invalid email/);
  });

  test('rejects addresses over 254 octets', () => {
    const domain = [...Array.from({ length: 3 }, () => 'a'.repeat(63)), 'a'.repeat(61)].join('.');
    rejects(() => parseAddress(`${'b'.repeat(10)}@${domain}`), /254 octets/);
  });

  test('tryParseAddress returns null instead of throwing', () => {
    assert.equal(tryParseAddress('not an address'), null);
    assert.equal(tryParseAddress('Bob@Example.com')?.address, 'bob@example.com');
  });
});

describe('splitSubaddress', () => {
  test('splits at the first plus', () => {
    assert.deepEqual(splitSubaddress('alice+news'), { base: 'alice', tag: 'news' });
    assert.deepEqual(splitSubaddress('alice+a+b'), { base: 'alice', tag: 'a+b' });
    assert.deepEqual(splitSubaddress('alice+'), { base: 'alice', tag: '' });
  });

  test('no base or no plus → null', () => {
    assert.equal(splitSubaddress('+news'), null);
    assert.equal(splitSubaddress('alice'), null);
  });
});
