/**
 * ENVELOPE (RFC 9051 §7.5.2) from header blocks: exact encoded strings, written by hand from the
 * RFC's example and the address syntax of RFC 5322 §3.4 (groups, routes, quoted names, comments),
 * with 8-bit and RFC 2047 header text returned as written.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { buildEnvelope, parseAddressList } from '../../src/mail/imap/index.js';
import { encodeValue } from '../../src/protocols/imap/encoder/index.js';

const crlf = (lines: string[]) => Buffer.from(`${lines.join('\r\n')}\r\n\r\n`);
const env = (header: Buffer | string[], utf8 = false) =>
  encodeValue(buildEnvelope(Array.isArray(header) ? crlf(header) : header), { utf8 }).toString('latin1');

describe('buildEnvelope', () => {
  test('the RFC 9051 §7.5.2 example', () => {
    const header = [
      'Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)',
      'From: Terry Gray <gray@cac.washington.edu>',
      'Subject: IMAP4rev1 WG mtg summary and minutes',
      'To: imap@cac.washington.edu',
      'cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>',
      'Message-Id: <B27397-0100000@cac.washington.edu>',
      'MIME-Version: 1.0',
      'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII',
    ];
    assert.equal(
      env(header),
      '("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" ' +
        '(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) ' +
        '(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) ' +
        '((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL ' +
        '"<B27397-0100000@cac.washington.edu>")',
    );
  });

  test('every field present, in envelope order', () => {
    const header = [
      'Message-ID: <msg@id>',
      'In-Reply-To: <parent@id>',
      'Date: Thu, 15 Feb 2007 01:02:03 +0200',
      'Subject: all fields',
      'From: From Name <from@example.org>',
      'To: To Name <to@example.org>',
      'Cc: Cc Name <cc@example.org>',
      'Bcc: Bcc Name <bcc@example.org>',
      'Sender: Sender Name <sender@example.org>',
      'Reply-To: Reply Name <reply@example.org>',
    ];
    assert.equal(
      env(header),
      '("Thu, 15 Feb 2007 01:02:03 +0200" "all fields" (("From Name" NIL "from" "example.org")) ' +
        '(("Sender Name" NIL "sender" "example.org")) (("Reply Name" NIL "reply" "example.org")) ' +
        '(("To Name" NIL "to" "example.org")) (("Cc Name" NIL "cc" "example.org")) ' +
        '(("Bcc Name" NIL "bcc" "example.org")) "<parent@id>" "<msg@id>")',
    );
  });

  test('absent fields are NIL; Sender and Reply-To default to From, also when present but empty', () => {
    assert.equal(env(['From: user@domain (Real Name)', 'Sender: ', 'Reply-To:']),
      '(NIL NIL (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) NIL NIL NIL NIL NIL)');
    assert.equal(env(['X-Other: 1']), '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)');
    assert.equal(env(Buffer.alloc(0)), '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)');
  });

  test('a present but empty Subject is an empty string, not NIL', () => {
    assert.equal(env(['Subject:']), '(NIL "" NIL NIL NIL NIL NIL NIL NIL NIL)');
  });

  test('groups: start marker with the group name, end marker; empty groups', () => {
    assert.equal(
      env(['From: a@b', 'To: team: one@d1.org, two@d2.org;, other: three@d3.org;', 'Cc: undisclosed-recipients:;, empty: (nobody) ;']),
      '(NIL NIL ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) ' +
        '((NIL NIL "team" NIL)(NIL NIL "one" "d1.org")(NIL NIL "two" "d2.org")(NIL NIL NIL NIL)' +
        '(NIL NIL "other" NIL)(NIL NIL "three" "d3.org")(NIL NIL NIL NIL)) ' +
        '((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)(NIL NIL "empty" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)',
    );
  });

  test('a group that is never closed gets its end marker', () => {
    assert.equal(env(['To: open: x@y.org']), '(NIL NIL NIL NIL NIL ((NIL NIL "open" NIL)(NIL NIL "x" "y.org")(NIL NIL NIL NIL)) NIL NIL NIL NIL)');
  });

  test('source route (obs-route) goes to the adl field', () => {
    assert.equal(env(['From: <@relay1.org,@relay2.org:user@domain>']),
      '(NIL NIL ((NIL "@relay1.org,@relay2.org" "user" "domain")) ((NIL "@relay1.org,@relay2.org" "user" "domain")) ((NIL "@relay1.org,@relay2.org" "user" "domain")) NIL NIL NIL NIL NIL)');
  });

  test('quoted display names: commas, escapes and quotes; unquoted phrases with dots', () => {
    assert.equal(
      env(['To: "Doe, John" <john@example.com>, "say \\"hi\\" \\\\ now" <q@example.com>, John Q. Public <jqp@example.com>']),
      '(NIL NIL NIL NIL NIL (("Doe, John" NIL "john" "example.com")("say \\"hi\\" \\\\ now" NIL "q" "example.com")' +
        '("John Q. Public" NIL "jqp" "example.com")) NIL NIL NIL NIL)',
    );
  });

  test('a comment names an address without a display name; comments elsewhere are dropped', () => {
    assert.equal(
      env(['To: alice@example.com (Alice A), (first) bob@example.com, Carol (the boss) <carol@example.com>']),
      '(NIL NIL NIL NIL NIL (("Alice A" NIL "alice" "example.com")("first" NIL "bob" "example.com")' +
        '("Carol" NIL "carol" "example.com")) NIL NIL NIL NIL)',
    );
  });

  test('a mailbox without a host, and an empty angle address, are filled in like Dovecot does', () => {
    assert.equal(env(['To: alice, Bob <bob>, <>']),
      '(NIL NIL NIL NIL NIL ((NIL NIL "alice" "MISSING_DOMAIN")("Bob" NIL "bob" "MISSING_DOMAIN")(NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) NIL NIL NIL NIL)');
  });

  test('a quoted local part keeps its quotes; a domain literal is kept', () => {
    assert.equal(env(['To: "john doe"@example.com, user@[192.0.2.1]']),
      '(NIL NIL NIL NIL NIL ((NIL NIL "\\"john doe\\"" "example.com")(NIL NIL "user" "[192.0.2.1]")) NIL NIL NIL NIL)');
  });

  test('an unquoted display name containing @ before an angle address', () => {
    assert.equal(env(['From: user@example.com <user@example.com>']),
      '(NIL NIL (("user@example.com" NIL "user" "example.com")) (("user@example.com" NIL "user" "example.com")) (("user@example.com" NIL "user" "example.com")) NIL NIL NIL NIL NIL)');
  });

  test('folded fields are unfolded (line breaks removed, folding whitespace kept)', () => {
    assert.equal(env(['Subject: a long', ' subject\tline', 'To: first@example.com,', '\tsecond@example.com']),
      '(NIL "a long subject\tline" NIL NIL NIL ((NIL NIL "first" "example.com")(NIL NIL "second" "example.com")) NIL NIL NIL NIL)');
  });

  test('the first of repeated fields wins; names are case-insensitive', () => {
    assert.equal(env(['SUBJECT: first', 'subject: second']), '(NIL "first" NIL NIL NIL NIL NIL NIL NIL NIL)');
  });

  test('RFC 2047 encoded words are returned undecoded', () => {
    assert.equal(env(['Subject: =?UTF-8?B?5pel5pys6Kqe?=', 'From: =?UTF-8?Q?J=C3=B6rg?= <j@example.de>']),
      '(NIL "=?UTF-8?B?5pel5pys6Kqe?=" (("=?UTF-8?Q?J=C3=B6rg?=" NIL "j" "example.de")) (("=?UTF-8?Q?J=C3=B6rg?=" NIL "j" "example.de")) (("=?UTF-8?Q?J=C3=B6rg?=" NIL "j" "example.de")) NIL NIL NIL NIL NIL)');
  });

  test('an LF-only header block and one without the blank line', () => {
    assert.equal(env(Buffer.from('Subject: lf\nFrom: a@b\n\n')), '(NIL "lf" ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) NIL NIL NIL NIL NIL)');
    assert.equal(env(Buffer.from('Subject: cut')), '(NIL "cut" NIL NIL NIL NIL NIL NIL NIL NIL)');
  });

  test('nothing after the blank line is read', () => {
    assert.equal(env(Buffer.from('Subject: head\r\n\r\nFrom: body@example.com\r\n')), '(NIL "head" NIL NIL NIL NIL NIL NIL NIL NIL)');
  });

  test('a NUL in non-UTF-8 header bytes is dropped from the literal', () => {
    const header = Buffer.concat([Buffer.from('Subject: a\u0000'), Buffer.from([0xff]), Buffer.from('\r\n\r\n')]);
    assert.deepEqual(encodeValue(buildEnvelope(header), { utf8: false }).subarray(0, 12), Buffer.from([0x28, 0x4e, 0x49, 0x4c, 0x20, 0x7b, 0x32, 0x7d, 0x0d, 0x0a, 0x61, 0xff]));
  });
});

describe('buildEnvelope with Japanese header text', () => {
  const raw = readFileSync(new URL('../fixtures/imap/japanese-headers.eml', import.meta.url));
  const header = raw.subarray(0, raw.indexOf('\r\n\r\n') + 4);
  const iso2022 = '\u001b$B2q5D\u001b(B'; // 会議 in ISO-2022-JP: 7-bit with ESC sequences
  const sjisName = Buffer.from([0x8e, 0x52, 0x93, 0x63]); // 山田 in Shift_JIS

  test('7-bit client: ESC and 8-bit text go as literals of the bytes as written', () => {
    const expected = Buffer.concat([
      Buffer.from(`("Tue, 3 Nov 2026 09:15:00 +0900" {10}\r\n${iso2022} `),
      Buffer.from('(("=?ISO-2022-JP?B?GyRCOzNFRBsoQg==?=" NIL "yamada" "example.jp")) '.repeat(3)),
      Buffer.from('(({4}\r\n'),
      sjisName,
      Buffer.from(' NIL "tanaka" "example.jp")) (({6}\r\n'),
      Buffer.from('鈴木'),
      Buffer.from(' NIL "suzuki" "example.jp")) NIL NIL "<jp-1@example.jp>")'),
    ]);
    assert.deepEqual(encodeValue(buildEnvelope(header), { utf8: false }), expected);
  });

  test('UTF-8 client: valid UTF-8 is quoted; non-UTF-8 bytes stay a literal', () => {
    const out = encodeValue(buildEnvelope(header), { utf8: true });
    const text = out.toString('latin1');
    assert.ok(out.includes(Buffer.from('(("鈴木" NIL "suzuki" "example.jp"))')), text);
    assert.ok(out.includes(Buffer.concat([Buffer.from('(({4}\r\n'), sjisName, Buffer.from(' NIL "tanaka"')])), text);
    assert.ok(text.includes(`{10}\r\n${iso2022} `), text);
  });
});

describe('parseAddressList', () => {
  test('never throws on garbage and always makes progress', () => {
    for (const value of ['', '<', '>>>', ',,,;;;', '"unterminated', '(unterminated', 'a@', '@', '<@x', ':;:;', '[', 'a@[b', '\\']) {
      assert.doesNotThrow(() => parseAddressList(value), value);
    }
    assert.deepEqual(parseAddressList(',,,'), []);
  });

  test('a long list is parsed in linear time (100 000 addresses)', () => {
    const value = Array.from({ length: 100_000 }, (_, i) => `u${i}@example.com`).join(', ');
    const list = parseAddressList(value);
    assert.equal(list.length, 100_000);
    assert.deepEqual(list[99_999], { name: null, route: null, mailbox: 'u99999', host: 'example.com' });
  });
});
