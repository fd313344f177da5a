/**
 * Real POP3 clients against the POP3 listeners (TEST-PEERS.md): Python's poplib (STLS with an
 * unverified context on the clear port, POP3_SSL on the implicit-TLS port; USER/PASS and AUTH PLAIN)
 * and curl (`pop3://` with `--ssl-reqd`, and `pop3s://`; curl logs in with AUTH PLAIN): CAPA, LIST,
 * UIDL, TOP, RETR, DELE and QUIT, with the result checked in the mailbox-state service afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { run, type RunResult } from '../support/smtp-fixture.js';
import { sampleMessage, type TestAccount } from '../support/mail-services.js';
import { startPop3Harness, type Pop3Harness } from '../support/pop3.js';

let h: Pop3Harness;
let accounts = 0;

async function account(): Promise<TestAccount> {
  const n = ++accounts;
  return h.fx.addAccount(`client${n}@c${n}.test`, { tenant: `clients-${n}` });
}

async function liveSubjects(a: TestAccount): Promise<string[]> {
  const inbox = await a.folder('INBOX');
  const entries = await h.services.state.listEntries(a.scope, inbox.id);
  return Promise.all(entries.map(async (e) => (await h.services.state.getMessage(a.scope, e.messageId)).subject ?? ''));
}

/** poplib session; the script prints one JSON object. argv: port, user, password, mode. */
const POPLIB = String.raw`
import json, poplib, ssl, sys, base64
port, user, password, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl._create_unverified_context()
out = {}
if mode == 'stls':
    p = poplib.POP3('127.0.0.1', port, timeout=20)
    out['capa_before'] = sorted(p.capa().keys())
    p.stls(context=ctx)
else:
    p = poplib.POP3_SSL('127.0.0.1', port, context=ctx, timeout=20)
out['welcome'] = p.getwelcome().decode()
out['capa'] = sorted(p.capa().keys())
if mode == 'sasl':
    token = base64.b64encode(('\0' + user + '\0' + password).encode()).decode()
    out['login'] = p._shortcmd('AUTH PLAIN ' + token).decode()
else:
    p.user(user)
    out['login'] = p.pass_(password).decode()
out['stat'] = list(p.stat())
out['list'] = [l.decode() for l in p.list()[1]]
out['uidl'] = [l.decode() for l in p.uidl()[1]]
out['top'] = [l.decode() for l in p.top(1, 0)[1]]
out['retr'] = [l.decode() for l in p.retr(2)[1]]
out['dele'] = p.dele(1).decode()
out['quit'] = p.quit().decode()
print(json.dumps(out))
`;

async function poplib(port: number, a: TestAccount, mode: 'stls' | 'ssl' | 'sasl'): Promise<Record<string, unknown>> {
  const r = await run('python3', ['-c', POPLIB, String(port), a.email, a.password, mode]);
  assert.equal(r.code, 0, `poplib failed:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

function curl(args: string[]): Promise<RunResult> {
  return run('curl', ['--silent', '--show-error', '--max-time', '20', '-k', ...args]);
}

before(async () => {
  h = await startPop3Harness();
});
after(async () => {
  await h?.close();
});

describe('Python poplib', () => {
  for (const mode of ['stls', 'ssl', 'sasl'] as const) {
    test(`${mode === 'stls' ? 'STLS on the clear port' : mode === 'ssl' ? 'POP3_SSL (implicit TLS)' : 'POP3_SSL with AUTH PLAIN'}: LIST, UIDL, TOP, RETR, DELE, QUIT`, async () => {
      const a = await account();
      await a.deliver(sampleMessage({ subject: 'first' }));
      await a.deliver(sampleMessage({ subject: 'second', body: '.dot line\r\nlast line' }));
      const out = await poplib(mode === 'stls' ? h.port : h.tlsPort, a, mode);
      assert.match(String(out.welcome), /^\+OK MaiRust POP3 server ready </);
      if (mode === 'stls') assert.deepEqual(out.capa_before, ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'STLS', 'TOP', 'UIDL']);
      assert.deepEqual(out.capa, ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'SASL', 'TOP', 'UIDL', 'USER']);
      assert.match(String(out.login), /^\+OK Mailbox open, 2 messages \(\d+ octets\)$/);
      const stat = out.stat as number[];
      assert.equal(stat[0], 2);
      assert.equal((out.list as string[]).length, 2);
      assert.equal((out.list as string[]).reduce((s, l) => s + Number(l.split(' ')[1]), 0), stat[1]);
      assert.deepEqual((out.uidl as string[]).map((l) => l.split(' ')[0]), ['1', '2']);
      assert.ok((out.top as string[]).includes('Subject: first'));
      assert.equal((out.top as string[]).at(-1), '');
      const retr = out.retr as string[];
      assert.ok(retr.includes('Subject: second'));
      assert.deepEqual(retr.slice(-2), ['.dot line', 'last line'], 'poplib un-stuffs the dot line');
      assert.equal(out.dele, '+OK Message 1 deleted');
      assert.equal(out.quit, '+OK MaiRust POP3 server signing off (1 messages left)');
      assert.deepEqual(await liveSubjects(a), ['second']);
    });
  }
});

describe('curl', () => {
  test('pop3:// with --ssl-reqd (STLS, AUTH PLAIN): LIST, RETR, DELE', async () => {
    const a = await account();
    await a.deliver(sampleMessage({ subject: 'curl one' }));
    await a.deliver(sampleMessage({ subject: 'curl two', body: 'hello from curl' }));
    const base = `pop3://127.0.0.1:${h.port}`;
    const auth = ['--ssl-reqd', '-u', `${a.email}:${a.password}`];
    const list = await curl([...auth, `${base}/`]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^1 \d+\r\n2 \d+\r\n$/);
    const retr = await curl([...auth, `${base}/2`]);
    assert.equal(retr.code, 0, retr.stderr);
    assert.match(retr.stdout, /\r\nSubject: curl two\r\n/);
    assert.match(retr.stdout, /\r\n\r\nhello from curl\r\n$/);
    const dele = await curl([...auth, '-X', 'DELE', '-I', `${base}/1`]);
    assert.equal(dele.code, 0, dele.stderr);
    assert.deepEqual(await liveSubjects(a), ['curl two']);
  });

  test('pop3s:// (implicit TLS): LIST, RETR, DELE; and a wrong password fails', async () => {
    const a = await account();
    await a.deliver(sampleMessage({ subject: 'secure one' }));
    const base = `pop3s://127.0.0.1:${h.tlsPort}`;
    // curl prefers SASL PLAIN when offered and has no option to force USER/PASS (poplib covers those).
    const auth = ['-u', `${a.email}:${a.password}`];
    const list = await curl([...auth, `${base}/`]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^1 \d+\r\n$/);
    const retr = await curl([...auth, `${base}/1`]);
    assert.match(retr.stdout, /\r\nSubject: secure one\r\n/);
    const dele = await curl([...auth, '-X', 'DELE', '-I', `${base}/1`]);
    assert.equal(dele.code, 0, dele.stderr);
    assert.deepEqual(await liveSubjects(a), []);
    const wrong = await curl(['-u', `${a.email}:not the password`, `${base}/`]);
    assert.equal(wrong.code, 67, `curl exit 67 = login denied; got ${wrong.code}: ${wrong.stderr}`);
  });
});
