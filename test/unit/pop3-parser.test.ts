/**
 * The POP3 command parser (RFC 1939 §3, §7; RFC 2449 §4; RFC 5034 §4): every command, the error of
 * each kind of bad line, and a seeded fuzz run (never throws, results well-formed, and every valid
 * command survives a format → parse round trip).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_USER_LENGTH, parseCommand, type ParseError, type ParseResult, type Pop3Command } from '../../src/protocols/pop3/parser.js';
import { REPLIES } from '../../src/protocols/pop3/replies.js';

const parse = (line: string | Buffer): ParseResult => parseCommand(typeof line === 'string' ? Buffer.from(line, 'utf8') : line);
const command = (line: string): Pop3Command => {
  const r = parse(line);
  assert.ok(r.ok, `${JSON.stringify(line)} should parse, got ${r.ok ? '' : r.error}`);
  return r.command;
};
const refused = (line: string | Buffer): ParseError => {
  const r = parse(line);
  assert.ok(!r.ok, `${JSON.stringify(String(line))} should be refused, got ${JSON.stringify(r.ok && r.command)}`);
  return r.error;
};

test('commands without arguments, case-insensitive; arguments are a syntax error', () => {
  for (const verb of ['STAT', 'NOOP', 'RSET', 'QUIT', 'CAPA', 'STLS'] as const) {
    assert.deepEqual(command(verb), { verb });
    assert.deepEqual(command(verb.toLowerCase()), { verb });
    assert.deepEqual(command(`${verb}  `), { verb }, 'trailing spaces are tolerated');
    assert.equal(refused(`${verb} 1`), 'SYNTAX_ERROR');
  }
});

test('LIST and UIDL take an optional message number', () => {
  assert.deepEqual(command('LIST'), { verb: 'LIST', msg: null });
  assert.deepEqual(command('list 3'), { verb: 'LIST', msg: 3 });
  assert.deepEqual(command('UIDL'), { verb: 'UIDL', msg: null });
  assert.deepEqual(command('UIDL  12 '), { verb: 'UIDL', msg: 12 });
  assert.deepEqual(command('LIST 0'), { verb: 'LIST', msg: 0 }, 'whether 0 exists is the maildrop’s business');
  assert.equal(refused('LIST x'), 'BAD_MESSAGE_NUMBER');
  assert.equal(refused('LIST -1'), 'BAD_MESSAGE_NUMBER');
  assert.equal(refused('UIDL 1.5'), 'BAD_MESSAGE_NUMBER');
  assert.equal(refused('LIST 12345678901'), 'BAD_MESSAGE_NUMBER', 'more than 10 digits');
  assert.deepEqual(command('LIST 9999999999'), { verb: 'LIST', msg: 9999999999 });
  assert.equal(refused('LIST 1 2'), 'SYNTAX_ERROR');
});

test('RETR, DELE and TOP need their numbers', () => {
  assert.deepEqual(command('RETR 1'), { verb: 'RETR', msg: 1 });
  assert.deepEqual(command('dele 7'), { verb: 'DELE', msg: 7 });
  assert.deepEqual(command('TOP 2 0'), { verb: 'TOP', msg: 2, lines: 0 });
  assert.deepEqual(command('TOP 2 10'), { verb: 'TOP', msg: 2, lines: 10 });
  assert.equal(refused('RETR'), 'SYNTAX_ERROR');
  assert.equal(refused('RETR 1 2'), 'SYNTAX_ERROR');
  assert.equal(refused('DELE one'), 'BAD_MESSAGE_NUMBER');
  assert.equal(refused('TOP 1'), 'SYNTAX_ERROR');
  assert.equal(refused('TOP x 1'), 'BAD_MESSAGE_NUMBER');
  assert.equal(refused('TOP 1 -1'), 'SYNTAX_ERROR');
});

test('USER takes one name (UTF-8 allowed, bounded); PASS takes the rest of the line, spaces included', () => {
  assert.deepEqual(command('USER alice@acme.test'), { verb: 'USER', name: 'alice@acme.test' });
  assert.deepEqual(command('USER 用户@例子.test'), { verb: 'USER', name: '用户@例子.test' });
  assert.equal(refused('USER'), 'SYNTAX_ERROR');
  assert.equal(refused('USER a b'), 'SYNTAX_ERROR');
  assert.equal(refused(`USER ${'a'.repeat(MAX_USER_LENGTH + 1)}`), 'SYNTAX_ERROR');
  assert.deepEqual(command(`USER ${'a'.repeat(MAX_USER_LENGTH)}`), { verb: 'USER', name: 'a'.repeat(MAX_USER_LENGTH) });
  assert.deepEqual(command('PASS correct horse battery staple'), { verb: 'PASS', password: 'correct horse battery staple' });
  assert.deepEqual(command('PASS  leading and trailing  '), { verb: 'PASS', password: ' leading and trailing  ' });
  assert.deepEqual(command('PASS pässwörd'), { verb: 'PASS', password: 'pässwörd' });
  assert.equal(refused('PASS'), 'SYNTAX_ERROR');
  assert.equal(refused('PASS '), 'SYNTAX_ERROR');
  assert.equal(refused('PASS a\x00b'), 'SYNTAX_ERROR');
  assert.equal(refused('PASS a\tb'), 'SYNTAX_ERROR');
});

test('AUTH: mechanism (upper-cased), optional initial response, or nothing at all', () => {
  assert.deepEqual(command('AUTH'), { verb: 'AUTH', mechanism: null, initialResponse: null });
  assert.deepEqual(command('auth plain'), { verb: 'AUTH', mechanism: 'PLAIN', initialResponse: null });
  assert.deepEqual(command('AUTH PLAIN AGFsaWNlAHB3'), { verb: 'AUTH', mechanism: 'PLAIN', initialResponse: 'AGFsaWNlAHB3' });
  assert.deepEqual(command('AUTH PLAIN ='), { verb: 'AUTH', mechanism: 'PLAIN', initialResponse: '=' });
  assert.deepEqual(command('AUTH X-OTHER'), { verb: 'AUTH', mechanism: 'X-OTHER', initialResponse: null });
  assert.equal(refused('AUTH PLAIN a b'), 'SYNTAX_ERROR');
  assert.equal(refused(`AUTH ${'M'.repeat(21)}`), 'SYNTAX_ERROR');
  assert.equal(refused('AUTH PL@IN'), 'SYNTAX_ERROR');
});

test('APOP is recognised (to be refused by the session), whatever its arguments', () => {
  assert.deepEqual(command('APOP mrose c4c9334bac560ecc979e58001b3e22fb'), { verb: 'APOP' });
});

test('unknown keywords, empty lines, control characters and invalid UTF-8', () => {
  assert.equal(refused('HELO'), 'UNKNOWN_COMMAND');
  assert.equal(refused('XTND XMIT'), 'UNKNOWN_COMMAND');
  assert.equal(refused('RETRIEVE 1'), 'UNKNOWN_COMMAND');
  assert.equal(refused('RE'), 'UNKNOWN_COMMAND');
  assert.equal(refused('ST4T'), 'UNKNOWN_COMMAND');
  assert.equal(refused(''), 'SYNTAX_ERROR');
  assert.equal(refused(' STAT'), 'SYNTAX_ERROR');
  assert.equal(refused('LIST\x001'), 'UNKNOWN_COMMAND');
  assert.equal(refused('LIST 1\x00'), 'SYNTAX_ERROR');
  assert.equal(refused('STAT\r'), 'UNKNOWN_COMMAND');
  assert.equal(refused('RETR 1\x7f'), 'SYNTAX_ERROR');
  assert.equal(refused(Buffer.from([0x53, 0x54, 0x41, 0x54, 0x20, 0xff])), 'SYNTAX_ERROR');
  assert.equal(refused('LIST é'), 'SYNTAX_ERROR', 'non-ASCII outside USER/PASS');
});

test('every parse error has its reply line in the table', () => {
  for (const error of ['UNKNOWN_COMMAND', 'SYNTAX_ERROR', 'BAD_MESSAGE_NUMBER'] as const) {
    assert.match(REPLIES[error], /^-ERR /);
  }
});

// ── fuzz ────────────────────────────────────────────────────────────────────────────────────────

/** mulberry32: a small seeded generator, so a failure can be reproduced from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VERBS = ['USER', 'PASS', 'AUTH', 'APOP', 'STAT', 'NOOP', 'RSET', 'QUIT', 'CAPA', 'STLS', 'LIST', 'UIDL', 'RETR', 'DELE', 'TOP'];
const PIECES = [' ', '  ', '1', '0', '99999999999', '-', '=', '*', 'PLAIN', 'AGFsaWNlAHB3', '\x00', '\t', '\r', '\xff', 'é', '.', 'a@b'];

function format(c: Pop3Command): string {
  switch (c.verb) {
    case 'USER':
      return `USER ${c.name}`;
    case 'PASS':
      return `PASS ${c.password}`;
    case 'AUTH':
      return ['AUTH', c.mechanism, c.initialResponse].filter((p) => p !== null).join(' ');
    case 'LIST':
    case 'UIDL':
      return c.msg === null ? c.verb : `${c.verb} ${c.msg}`;
    case 'RETR':
    case 'DELE':
      return `${c.verb} ${c.msg}`;
    case 'TOP':
      return `TOP ${c.msg} ${c.lines}`;
    default:
      return c.verb;
  }
}

function wellFormed(r: ParseResult): void {
  if (!r.ok) {
    assert.ok(['UNKNOWN_COMMAND', 'SYNTAX_ERROR', 'BAD_MESSAGE_NUMBER'].includes(r.error));
    return;
  }
  const c = r.command;
  assert.ok(VERBS.includes(c.verb));
  for (const n of ['msg', 'lines'] as const) {
    const v = (c as Record<string, unknown>)[n];
    if (v !== undefined && v !== null) assert.ok(Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 9_999_999_999);
  }
  if (c.verb === 'USER') assert.ok(c.name.length > 0 && c.name.length <= MAX_USER_LENGTH && !/[\s\x00-\x1f]/.test(c.name));
  if (c.verb === 'PASS') assert.ok(c.password.length > 0 && !/[\x00-\x1f\x7f]/.test(c.password));
}

test('fuzz: random lines never throw and give well-formed results; valid commands round-trip', () => {
  const random = prng(0x9f3a1c);
  const int = (n: number) => Math.floor(random() * n);
  for (let i = 0; i < 5000; i++) {
    let line: Buffer;
    if (random() < 0.5) {
      const parts = [random() < 0.8 ? VERBS[int(VERBS.length)] : PIECES[int(PIECES.length)]];
      for (let k = int(4); k > 0; k--) parts.push(PIECES[int(PIECES.length)]);
      line = Buffer.from(parts.join(random() < 0.7 ? ' ' : ''), 'utf8');
      if (random() < 0.3) line = line.subarray(0, int(line.length + 1));
    } else {
      line = Buffer.from(Array.from({ length: int(40) }, () => (random() < 0.7 ? 0x20 + int(95) : int(256))));
    }
    const r = parseCommand(line);
    wellFormed(r);
    if (r.ok && r.command.verb !== 'APOP') {
      assert.deepEqual(parse(format(r.command)), r, `round trip of ${JSON.stringify(line.toString('latin1'))}`);
    }
  }
});
