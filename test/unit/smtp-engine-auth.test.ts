/**
 * The AUTH exchange state machine (RFC 4954 §4) for PLAIN (RFC 4616) and LOGIN, and the EHLO
 * extension list per listener and TLS state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthExchange } from '../../src/protocols/smtp/engine/auth-exchange.js';
import { ehloKeywords, ehloReply } from '../../src/protocols/smtp/engine/ehlo.js';
import { decodePlain } from '../../src/protocols/net/sasl.js';
import { REPLIES } from '../../src/protocols/smtp/replies.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

test('PLAIN: initial response or after an empty challenge; authzid kept', () => {
  assert.deepEqual(new AuthExchange('PLAIN').start(b64('\0alice@example.test\0pw')), {
    kind: 'done',
    attempt: { mechanism: 'PLAIN', authzid: '', username: 'alice@example.test', password: 'pw' },
  });
  const x = new AuthExchange('PLAIN');
  assert.deepEqual(x.start(), { kind: 'challenge', text: '' });
  assert.deepEqual(x.respond(b64('bob\0alice\0pässword')), { kind: 'done', attempt: { mechanism: 'PLAIN', authzid: 'bob', username: 'alice', password: 'pässword' } });
});

test('PLAIN: malformed messages, cancel, bad base64, empty initial response', () => {
  assert.deepEqual(new AuthExchange('PLAIN').start('*'), { kind: 'fail', reply: REPLIES.AUTH_CANCELLED });
  assert.deepEqual(new AuthExchange('PLAIN').start('!!!!'), { kind: 'fail', reply: REPLIES.AUTH_BAD_BASE64 });
  assert.deepEqual(new AuthExchange('PLAIN').start('='), { kind: 'fail', reply: REPLIES.AUTH_BAD_BASE64 });
  for (const bad of ['alice\0pw', '\0\0pw', '\0alice\0', 'a\0b\0c\0d', `\0${'u'.repeat(256)}\0pw`]) {
    assert.deepEqual(new AuthExchange('PLAIN').start(b64(bad)), { kind: 'fail', reply: REPLIES.AUTH_BAD_BASE64 }, JSON.stringify(bad));
  }
  assert.equal(decodePlain(Buffer.from([0, 0x61, 0, 0xff])), null, 'not UTF-8');
});

test('LOGIN: username and password challenges; initial response is the username; cancel', () => {
  const x = new AuthExchange('LOGIN');
  assert.deepEqual(x.start(), { kind: 'challenge', text: 'VXNlcm5hbWU6' });
  assert.deepEqual(x.respond(b64('alice')), { kind: 'challenge', text: 'UGFzc3dvcmQ6' });
  assert.deepEqual(x.respond(b64('secret')), { kind: 'done', attempt: { mechanism: 'LOGIN', username: 'alice', password: 'secret' } });
  const y = new AuthExchange('LOGIN');
  assert.deepEqual(y.start(b64('bob')), { kind: 'challenge', text: 'UGFzc3dvcmQ6' });
  assert.deepEqual(y.respond('*'), { kind: 'fail', reply: REPLIES.AUTH_CANCELLED });
  assert.deepEqual(new AuthExchange('LOGIN').start(b64('')), { kind: 'fail', reply: REPLIES.AUTH_BAD_BASE64 });
});

test('EHLO: STARTTLS only in clear, AUTH only for submission under TLS, no DSN', () => {
  const base = { hostname: 'mx.example.test', maxMessageBytes: 1000 };
  const common = ['PIPELINING', 'SIZE 1000', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'CHUNKING'];
  assert.deepEqual(ehloKeywords({ ...base, secure: false, authAvailable: true }), [...common, 'STARTTLS']);
  assert.deepEqual(ehloKeywords({ ...base, secure: true, authAvailable: true }), [...common, 'AUTH PLAIN LOGIN']);
  assert.deepEqual(ehloKeywords({ ...base, secure: true, authAvailable: false }), common);
  assert.equal(
    ehloReply({ ...base, secure: true, authAvailable: false }),
    '250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n',
  );
});
