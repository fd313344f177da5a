/**
 * The SMTP command parser and path syntax (RFC 5321 §4.1.1, §4.1.2; RFC 1870, 6152, 6531, 4954,
 * 3030): every verb, the reply of each kind of bad line, and garbage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommand, type ParseResult } from '../../src/protocols/smtp/engine/command-parser.js';
import { isAddressLiteral, isDomain, parseForwardPath, parseMailbox, parseReversePath } from '../../src/protocols/smtp/engine/path.js';
import { REPLIES } from '../../src/protocols/smtp/replies.js';

const parse = (line: string | Buffer): ParseResult => parseCommand(typeof line === 'string' ? Buffer.from(line, 'utf8') : line);
const command = (line: string) => {
  const r = parse(line);
  assert.ok(r.ok, `${line} should parse, got ${r.ok ? '' : r.reply.message}`);
  return r.command;
};
const refused = (line: string | Buffer) => {
  const r = parse(line);
  assert.ok(!r.ok, `${String(line)} should be refused`);
  return r.reply;
};

test('simple verbs, case-insensitive, and their argument rules', () => {
  for (const verb of ['DATA', 'RSET', 'QUIT', 'STARTTLS']) {
    assert.deepEqual(command(verb), { verb });
    assert.deepEqual(command(verb.toLowerCase()), { verb });
    assert.equal(refused(`${verb} extra`), REPLIES.SYNTAX_ERROR);
  }
  assert.deepEqual(command('NOOP'), { verb: 'NOOP' });
  assert.deepEqual(command('NOOP anything at all'), { verb: 'NOOP' });
  assert.deepEqual(command('HELP MAIL'), { verb: 'HELP' });
  assert.deepEqual(command('VRFY bob'), { verb: 'VRFY' });
  assert.equal(refused('VRFY'), REPLIES.SYNTAX_ERROR);
  assert.deepEqual(command('EXPN list'), { verb: 'EXPN' });
});

test('EHLO and HELO need one name; address literals and odd names are accepted', () => {
  assert.deepEqual(command('EHLO client.example'), { verb: 'EHLO', domain: 'client.example' });
  assert.deepEqual(command('helo [192.0.2.1]'), { verb: 'HELO', domain: '[192.0.2.1]' });
  assert.deepEqual(command('EHLO   spaced.example  '), { verb: 'EHLO', domain: 'spaced.example' });
  assert.equal(refused('EHLO'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('EHLO two words'), REPLIES.SYNTAX_ERROR);
});

test('MAIL FROM: paths, <>, and the SIZE, BODY, SMTPUTF8, AUTH parameters', () => {
  assert.deepEqual(command('MAIL FROM:<a@example.com>'), { verb: 'MAIL', from: { address: 'a@example.com', utf8: false }, params: { smtputf8: false } });
  assert.deepEqual(command('mail from:<>'), { verb: 'MAIL', from: null, params: { smtputf8: false } });
  assert.deepEqual(command('MAIL FROM: <a@example.com>'), command('MAIL FROM:<a@example.com>'), 'a space after the colon is tolerated');
  assert.deepEqual(command('MAIL FROM:<a@example.com> SIZE=1000 BODY=8bitmime SMTPUTF8 AUTH=<>'), {
    verb: 'MAIL',
    from: { address: 'a@example.com', utf8: false },
    params: { size: 1000, body: '8BITMIME', smtputf8: true },
  });
  assert.deepEqual(command('MAIL FROM:<a@example.com> BODY=7BIT'), { verb: 'MAIL', from: { address: 'a@example.com', utf8: false }, params: { smtputf8: false, body: '7BIT' } });
  const huge = command('MAIL FROM:<a@example.com> SIZE=123456789012345678901234567890');
  assert.equal(huge.verb === 'MAIL' && huge.params.size, Infinity);
  assert.deepEqual(command('MAIL FROM:<用户@例子.广告> SMTPUTF8'), { verb: 'MAIL', from: { address: '用户@例子.广告', utf8: true }, params: { smtputf8: true } });

  assert.equal(refused('MAIL FROM:a@example.com'), REPLIES.SYNTAX_ERROR, 'angle brackets are required');
  assert.equal(refused('MAIL TO:<a@example.com>'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('MAIL'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('MAIL FROM:<a@example.com'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('MAIL FROM:<a@example.com>SIZE=1'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('MAIL FROM:<a@example.com> SIZE=abc'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('MAIL FROM:<a@example.com> SIZE'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('MAIL FROM:<a@example.com> SIZE=1 SIZE=2'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('MAIL FROM:<a@example.com> SMTPUTF8=yes'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('MAIL FROM:<a@example.com> BODY=BINARYMIME'), REPLIES.PARAMETER_UNSUPPORTED);
  assert.equal(refused('MAIL FROM:<a@example.com> RET=HDRS'), REPLIES.PARAMETER_UNSUPPORTED);
  assert.equal(refused('MAIL FROM:<a@example.com> =x'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('MAIL FROM:<no-at-sign>'), REPLIES.SENDER_BAD_SYNTAX);
  assert.equal(refused('MAIL FROM:<a@@example.com>'), REPLIES.SENDER_BAD_SYNTAX);
  assert.equal(refused('MAIL FROM:<a b@example.com>'), REPLIES.SENDER_BAD_SYNTAX);
});

test('RCPT TO: quoted local parts, source routes, Postmaster, no parameters yet', () => {
  assert.deepEqual(command('RCPT TO:<b@example.com>'), { verb: 'RCPT', to: { address: 'b@example.com', utf8: false } });
  assert.deepEqual(command('RCPT TO:<"john doe"@example.com>'), { verb: 'RCPT', to: { address: '"john doe"@example.com', utf8: false } });
  assert.deepEqual(command('RCPT TO:<"a>b\\"c"@example.com>'), { verb: 'RCPT', to: { address: '"a>b\\"c"@example.com', utf8: false } });
  assert.deepEqual(command('RCPT TO:<@one.example,@two.example:c@example.com>'), { verb: 'RCPT', to: { address: 'c@example.com', utf8: false } });
  assert.deepEqual(command('RCPT TO:<Postmaster>'), { verb: 'RCPT', to: { address: 'Postmaster', utf8: false } });
  assert.deepEqual(command('RCPT TO:<user@[192.0.2.1]>'), { verb: 'RCPT', to: { address: 'user@[192.0.2.1]', utf8: false } });
  assert.deepEqual(command('RCPT TO:<ユーザー@example.test>'), { verb: 'RCPT', to: { address: 'ユーザー@example.test', utf8: true } });
  assert.equal(refused('RCPT TO:<>'), REPLIES.RCPT_PATH_SYNTAX);
  assert.equal(refused('RCPT TO:<b@example.com> NOTIFY=NEVER'), REPLIES.PARAMETER_UNSUPPORTED);
  assert.equal(refused('RCPT TO:<b@-bad-.example>'), REPLIES.RCPT_PATH_SYNTAX);
  assert.equal(refused('RCPT TO:<@x:b@example.com'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('RCPT FROM:<b@example.com>'), REPLIES.SYNTAX_ERROR);
});

test('AUTH: mechanism, optional initial response (base64 or =)', () => {
  assert.deepEqual(command('AUTH plain'), { verb: 'AUTH', mechanism: 'PLAIN' });
  assert.deepEqual(command('AUTH PLAIN AGFsaWNlAHNlY3JldA=='), { verb: 'AUTH', mechanism: 'PLAIN', initialResponse: 'AGFsaWNlAHNlY3JldA==' });
  assert.deepEqual(command('AUTH LOGIN ='), { verb: 'AUTH', mechanism: 'LOGIN', initialResponse: '=' });
  assert.equal(refused('AUTH'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('AUTH PLAIN abc!'), REPLIES.AUTH_BAD_BASE64);
  assert.equal(refused('AUTH PLAIN a b'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused(`AUTH ${'X'.repeat(21)}`), REPLIES.SYNTAX_ERROR);
});

test('BDAT: size and LAST', () => {
  assert.deepEqual(command('BDAT 100'), { verb: 'BDAT', size: 100, last: false });
  assert.deepEqual(command('bdat 0 last'), { verb: 'BDAT', size: 0, last: true });
  assert.equal(refused('BDAT'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('BDAT -1'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('BDAT 10 FIRST'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('BDAT 1234567890123456'), REPLIES.SYNTAX_ERROR);
});

test('garbage: unknown verbs, empty lines, control characters, invalid UTF-8', () => {
  assert.equal(refused(''), REPLIES.COMMAND_UNRECOGNIZED);
  assert.equal(refused('GET / HTTP/1.1'), REPLIES.COMMAND_UNRECOGNIZED);
  assert.equal(refused('MAILFROM:<a@b.c>'), REPLIES.COMMAND_UNRECOGNIZED);
  assert.equal(refused('NOOP \x00'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused('NOOP \x1b[31m'), REPLIES.SYNTAX_ERROR);
  assert.equal(refused(Buffer.from([0x4e, 0x4f, 0x4f, 0x50, 0x20, 0xff, 0xfe])), REPLIES.SYNTAX_ERROR);
  // No input crashes the parser.
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const alphabet = ['MAIL FROM:', 'RCPT TO:', '<', '>', '@', '"', '\\', ' ', 'a', '.', ':', ',', '=', 'SIZE', '[', ']', 'é', '\x00'];
  for (let i = 0; i < 5000; i++) {
    const line = Array.from({ length: Math.floor(random() * 12) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    const r = parse(line);
    assert.ok(r.ok || [500, 501, 555].includes(r.reply.code), line);
  }
});

test('paths: domains, literals, lengths (RFC 5321 §4.5.3.1)', () => {
  assert.ok(isDomain('mail.example.com'));
  assert.ok(isDomain('xn--r8jz45g.example'));
  assert.ok(isDomain('例え.テスト'));
  assert.ok(!isDomain('-x.example'));
  assert.ok(!isDomain('a..b'));
  assert.ok(!isDomain(`${'a'.repeat(64)}.example`));
  assert.ok(isAddressLiteral('[IPv6:2001:db8::1]'));
  assert.ok(!isAddressLiteral('[IPv6:2001:db8::zz]'));
  assert.ok(!isAddressLiteral('[300.1.1.1]'));
  assert.ok(parseMailbox(`${'a'.repeat(64)}@example.com`));
  assert.equal(parseMailbox(`${'a'.repeat(65)}@example.com`), null);
  assert.equal(parseMailbox('a.@example.com'), null);
  assert.equal(parseMailbox('.a@example.com'), null);
  assert.ok(parseMailbox("o'neil+tag@example.com"));
  assert.deepEqual(parseReversePath('<>'), { ok: true, mailbox: null });
  assert.deepEqual(parseReversePath('<@bad..route:a@example.com>'), { ok: false });
  assert.equal(parseForwardPath(`<${'a'.repeat(60)}@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(20)}.example>`), null);
});
