/**
 * The IMAP listeners through real clients (docs TEST-PEERS): imapflow (the Node client most
 * integrations use), Python's imaplib (a strict IMAP4rev1 client) and curl (libcurl's IMAP, a
 * minimal one). Each client gets its own account so the groups do not see each other's changes;
 * every result a client reports is also checked through the mailbox-state service.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { ImapFlow, type FetchMessageObject, type MessageStructureObject } from 'imapflow';
import { startImapServer, type ImapTestServer } from '../support/imap.js';
import { sampleMessage, type TestAccount } from '../support/mail-services.js';
import {
  curl,
  idleWatcher,
  nestedJapaneseMessage,
  NESTED_BODY_TEXT,
  NESTED_FROM_NAME,
  NESTED_SUBJECT,
  runPython,
  within,
} from '../support/real-clients.js';
import { shape } from '../support/shape.js';

let server: ImapTestServer;

before(async () => {
  server = await startImapServer();
});
after(async () => {
  await server?.close();
});

async function flagsOf(account: TestAccount, folder: string, uid: number): Promise<string[]> {
  const f = await account.folder(folder);
  const e = await server.fixture.state.getEntry(account.scope, f.id, uid);
  assert.ok(e, `${folder} UID ${uid} exists`);
  return [...e.flags].sort();
}

async function uidsOf(account: TestAccount, folder: string): Promise<number[]> {
  const f = await account.folder(folder);
  return server.fixture.state.listUids(account.scope, f.id);
}

async function bytesOf(account: TestAccount, folder: string, uid: number): Promise<Buffer> {
  const f = await account.folder(folder);
  const [e] = await server.fixture.state.listEntries(account.scope, f.id, { uids: [uid] });
  assert.ok(e, `${folder} UID ${uid} exists`);
  const chunks: Buffer[] = [];
  for await (const c of await server.fixture.state.openMessage(account.scope, e.messageId)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe(`imapflow (${shape})`, () => {
  let flow: TestAccount;
  let client: ImapFlow;
  let nestedUid: number;
  const nested = () => nestedJapaneseMessage('flow@acme.test');

  before(async () => {
    flow = await server.fixture.addAccount('flow@acme.test');
    nestedUid = (await flow.deliver(nested().raw)).uid;
    // A second message that matches none of the Japanese searches.
    await flow.deliver(sampleMessage({ subject: 'Weekly report', body: 'Nothing to see here.', to: 'flow@acme.test' }));
    client = await server.imapflowClient(flow);
  });

  test('login over STARTTLS on the imap port (doSTARTTLS) and over implicit TLS on imaps', async () => {
    const starttls = new ImapFlow({
      host: '127.0.0.1',
      port: server.imapPort,
      secure: false,
      doSTARTTLS: true,
      auth: { user: flow.email, pass: flow.password },
      tls: { rejectUnauthorized: false },
      logger: false,
    });
    starttls.on('error', () => {});
    await starttls.connect();
    try {
      assert.equal(starttls.secureConnection, true, 'upgraded with STARTTLS');
      assert.ok(starttls.authenticated, 'logged in');
      assert.ok(starttls.capabilities.has('IDLE'), 'post-login capabilities');
      assert.ok(starttls.capabilities.has('IMAP4rev2'));
    } finally {
      await starttls.logout();
    }
    assert.equal(client.secureConnection, true);
    assert.ok(client.authenticated);
    // imapflow ENABLEs CONDSTORE, UTF8=ACCEPT and IMAP4rev2 when offered (RFC 5161).
    assert.ok(client.enabled.has('CONDSTORE'), `enabled: ${[...client.enabled].join(' ')}`);
  });

  test('wrong password: imapflow gets an authentication failure, not a hang', async () => {
    const bad = new ImapFlow({
      host: '127.0.0.1',
      port: server.imapsPort,
      secure: true,
      auth: { user: flow.email, pass: 'not the password at all' },
      tls: { rejectUnauthorized: false },
      logger: false,
    });
    bad.on('error', () => {});
    await assert.rejects(bad.connect(), (err: { authenticationFailed?: boolean; serverResponseCode?: string }) => {
      assert.equal(err.authenticationFailed, true);
      assert.equal(err.serverResponseCode, 'AUTHENTICATIONFAILED');
      return true;
    });
    bad.close();
  });

  test('list: the six folders with their special-use attributes (RFC 6154)', async () => {
    const list = await client.list();
    const byPath = new Map(list.map((m) => [m.path, m]));
    assert.deepEqual([...byPath.keys()].sort(), ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
    assert.equal(byPath.get('Sent')!.specialUse, '\\Sent');
    assert.equal(byPath.get('Drafts')!.specialUse, '\\Drafts');
    assert.equal(byPath.get('Junk')!.specialUse, '\\Junk');
    assert.equal(byPath.get('Trash')!.specialUse, '\\Trash');
    assert.equal(byPath.get('Archive')!.specialUse, '\\Archive');
    assert.ok(byPath.get('Sent')!.flags.has('\\Sent'), 'the attribute is on the LIST response, not guessed from the name');
    assert.equal(byPath.get('INBOX')!.delimiter, '/');
  });

  test('mailboxOpen: EXISTS, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and permanent flags as the state service has them', async () => {
    const box = await client.mailboxOpen('INBOX');
    const folder = await flow.folder('INBOX');
    assert.equal(box.path, 'INBOX');
    assert.equal(box.exists, 2);
    assert.equal(Number(box.uidValidity), folder.uidValidity);
    assert.equal(box.uidNext, folder.uidNext);
    assert.equal(Number(box.highestModseq), folder.highestModseq);
    assert.equal(box.readOnly, false);
    assert.ok(box.permanentFlags?.has('\\*'), 'keywords may be created');
  });

  test('fetch of a nested multipart with message/rfc822 and an ISO-2022-JP subject: envelope, bodyStructure and source field by field', async () => {
    const n = nested();
    const msg = (await client.fetchOne(String(nestedUid), { uid: true, envelope: true, bodyStructure: true, source: true, size: true, flags: true }, { uid: true })) as FetchMessageObject;
    assert.ok(msg, 'the message is fetched');
    assert.equal(msg.uid, nestedUid);
    assert.equal(msg.size, n.raw.length, 'RFC822.SIZE is the stored size');
    assert.ok(msg.source && msg.source.equals(n.raw), 'BODY[] is the message byte for byte');

    const env = msg.envelope!;
    assert.equal(env.subject, NESTED_SUBJECT);
    assert.equal(env.messageId, '<nested-1@example.jp>');
    assert.equal(new Date(env.date!).toISOString(), '2026-11-03T00:30:00.000Z');
    assert.deepEqual(env.from, [{ name: NESTED_FROM_NAME, address: 'tanaka@example.jp' }]);
    // RFC 9051 §7.5.2: an absent Sender / Reply-To is reported as the From address.
    assert.deepEqual(env.sender, [{ name: NESTED_FROM_NAME, address: 'tanaka@example.jp' }]);
    assert.deepEqual(env.replyTo, [{ name: NESTED_FROM_NAME, address: 'tanaka@example.jp' }]);
    assert.deepEqual(env.to, [{ name: 'Flow User', address: 'flow@acme.test' }]);
    assert.deepEqual(env.cc, [{ name: '', address: 'carol@example.jp' }]);
    assert.equal(env.bcc, undefined);
    assert.equal(env.inReplyTo, undefined);

    const root = msg.bodyStructure!;
    assert.equal(root.type, 'multipart/mixed');
    assert.equal(root.part, undefined, 'the root of a multipart has no part number');
    assert.deepEqual(root.parameters, { boundary: 'outer-b' });
    assert.equal(root.childNodes!.length, 3);

    const [alt, rfc822, pdf] = root.childNodes! as MessageStructureObject[];
    assert.equal(alt.part, '1');
    assert.equal(alt.type, 'multipart/alternative');
    assert.deepEqual(alt.parameters, { boundary: 'alt-b' });
    const [plain, html] = alt.childNodes!;
    assert.equal(plain.part, '1.1');
    assert.equal(plain.type, 'text/plain');
    assert.equal(plain.parameters!.charset.toLowerCase(), 'iso-2022-jp');
    assert.equal(plain.encoding, '7bit');
    assert.equal(plain.size, n.parts.text.size);
    assert.equal(plain.lineCount, n.parts.text.lines);
    assert.equal(html.part, '1.2');
    assert.equal(html.type, 'text/html');
    assert.equal(html.parameters!.charset.toLowerCase(), 'utf-8');
    assert.equal(html.encoding, '7bit', 'no Content-Transfer-Encoding means 7BIT (RFC 2045 §6.1)');
    assert.equal(html.size, n.parts.html.size);
    assert.equal(html.lineCount, n.parts.html.lines);

    assert.equal(rfc822.part, '2');
    assert.equal(rfc822.type, 'message/rfc822');
    assert.equal(rfc822.description, 'forwarded message');
    assert.equal(rfc822.encoding, '7bit');
    assert.equal(rfc822.size, n.parts.rfc822.size);
    assert.equal(rfc822.lineCount, n.parts.rfc822.lines);
    assert.equal(rfc822.disposition, 'inline');
    assert.equal(rfc822.envelope!.subject, 'inner subject');
    assert.equal(rfc822.envelope!.messageId, '<inner-1@example.org>');
    assert.deepEqual(rfc822.envelope!.from, [{ name: 'Bob', address: 'bob@example.org' }]);
    assert.deepEqual(rfc822.envelope!.to, [{ name: '', address: 'tanaka@example.jp' }]);
    const innerText = rfc822.childNodes![0];
    assert.equal(innerText.type, 'text/plain');
    assert.equal(innerText.part, '2', 'a non-multipart encapsulated body is part 2 itself (RFC 9051 §6.4.5)');
    assert.equal(innerText.parameters!.charset.toLowerCase(), 'us-ascii');
    assert.equal(innerText.size, n.parts.innerText.size);
    assert.equal(innerText.lineCount, n.parts.innerText.lines);

    assert.equal(pdf.part, '3');
    assert.equal(pdf.type, 'application/pdf');
    assert.deepEqual(pdf.parameters, { name: 'report.pdf' });
    assert.equal(pdf.id, '<report@example.jp>');
    assert.equal(pdf.encoding, 'base64');
    assert.equal(pdf.size, n.parts.pdf.size);
    assert.equal(pdf.lineCount, undefined, 'only text/* and message/rfc822 have a line count');
    assert.equal(pdf.disposition, 'attachment');
    assert.deepEqual(pdf.dispositionParameters, { filename: 'report.pdf' });
  });

  test('download of the ISO-2022-JP part decodes to the original Japanese text', async () => {
    const { content } = await client.download(String(nestedUid), '1.1', { uid: true });
    assert.ok(content, 'part 1.1 is there');
    const chunks: Buffer[] = [];
    for await (const c of content) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString('utf8'), NESTED_BODY_TEXT);
  });

  test('search by a Japanese subject and a Japanese body substring', async () => {
    assert.deepEqual(await client.search({ subject: '会議' }, { uid: true }), [nestedUid]);
    assert.deepEqual(await client.search({ body: '請求書' }, { uid: true }), [nestedUid]);
    assert.deepEqual(await client.search({ subject: '存在しない件名' }, { uid: true }), []);
    const all = await client.search({ all: true }, { uid: true });
    assert.equal((all as number[]).length, 2);
  });

  test('flags add/remove: imapflow sees the new flags and so does the state service', async () => {
    assert.equal(await client.messageFlagsAdd(String(nestedUid), ['\\Flagged', '$Work'], { uid: true }), true);
    let msg = (await client.fetchOne(String(nestedUid), { flags: true }, { uid: true })) as FetchMessageObject;
    assert.ok(msg.flags!.has('\\Flagged') && msg.flags!.has('$Work'), [...msg.flags!].join(' '));
    assert.deepEqual(await flagsOf(flow, 'INBOX', nestedUid), ['$Work', '\\Flagged'].sort());
    assert.equal(await client.messageFlagsRemove(String(nestedUid), ['$Work'], { uid: true }), true);
    msg = (await client.fetchOne(String(nestedUid), { flags: true }, { uid: true })) as FetchMessageObject;
    assert.ok(!msg.flags!.has('$Work') && msg.flags!.has('\\Flagged'));
    assert.deepEqual(await flagsOf(flow, 'INBOX', nestedUid), ['\\Flagged']);
  });

  test('append with flags and internal date: APPENDUID, bytes and date read back', async () => {
    const raw = Buffer.from(sampleMessage({ subject: 'Appended by imapflow', to: 'flow@acme.test', body: 'ünïcödé body' }));
    const when = new Date('2026-10-01T12:34:56Z');
    const r = await client.append('INBOX', raw, ['\\Seen', '$Label1'], when);
    assert.ok(r && r.uid, 'APPENDUID reported');
    const folder = await flow.folder('INBOX');
    assert.equal(Number(r.uidValidity), folder.uidValidity);
    assert.ok((await bytesOf(flow, 'INBOX', r.uid)).equals(raw));
    assert.deepEqual(await flagsOf(flow, 'INBOX', r.uid), ['$Label1', '\\Seen'].sort());
    const msg = (await client.fetchOne(String(r.uid), { internalDate: true, source: true }, { uid: true })) as FetchMessageObject;
    assert.equal(new Date(msg.internalDate!).toISOString(), when.toISOString());
    assert.ok(msg.source!.equals(raw));
  });

  test('copy, move and messageDelete: COPYUID maps and the state service agrees', async () => {
    const a = await flow.deliver(sampleMessage({ subject: 'to copy', to: 'flow@acme.test' }));
    const b = await flow.deliver(sampleMessage({ subject: 'to move', to: 'flow@acme.test' }));
    const c = await flow.deliver(sampleMessage({ subject: 'to delete', to: 'flow@acme.test' }));
    await client.noop();

    const copied = await client.messageCopy(String(a.uid), 'Archive', { uid: true });
    assert.ok(copied && copied.uidMap, 'COPYUID reported');
    const archived = copied.uidMap!.get(a.uid);
    assert.ok(archived, 'the copied UID is mapped');
    assert.deepEqual(await uidsOf(flow, 'Archive'), [archived]);
    assert.ok((await uidsOf(flow, 'INBOX')).includes(a.uid), 'COPY leaves the source');
    assert.ok((await bytesOf(flow, 'Archive', archived)).equals(await bytesOf(flow, 'INBOX', a.uid)));

    const moved = await client.messageMove(String(b.uid), 'Trash', { uid: true });
    assert.ok(moved && moved.uidMap, 'MOVE reported COPYUID');
    const trashed = moved.uidMap!.get(b.uid);
    assert.deepEqual(await uidsOf(flow, 'Trash'), [trashed]);
    assert.ok(!(await uidsOf(flow, 'INBOX')).includes(b.uid), 'MOVE removes the source');

    assert.equal(await client.messageDelete(String(c.uid), { uid: true }), true);
    assert.ok(!(await uidsOf(flow, 'INBOX')).includes(c.uid), 'messageDelete = \\Deleted + UID EXPUNGE');
    assert.ok((await uidsOf(flow, 'INBOX')).includes(a.uid), 'only the named message is expunged');
    const status = await client.status('INBOX', { messages: true });
    assert.ok(status, 'STATUS answered');
    assert.equal(status.messages, (await uidsOf(flow, 'INBOX')).length);
  });

  test('idle: a message appended through the state service reaches the IDLE-ing client as `exists`', async () => {
    const watch = idleWatcher();
    const idler = await server.imapflowClient(flow, { logger: watch.logger as never });
    try {
      const box = await idler.mailboxOpen('INBOX');
      const before = box.exists;
      const exists = once(idler, 'exists');
      const started = watch.next();
      const idling = idler.idle();
      await within(started, 10_000, 'the + answer to IDLE');
      const { uid } = await flow.deliver(sampleMessage({ subject: 'pushed while idling', to: 'flow@acme.test' }));
      // No timing is measured; the limit is far below the server's 30 s fallback poll, so only a
      // pushed EXISTS passes.
      const [ev] = (await within(exists, 10_000, 'EXISTS during IDLE')) as [{ count: number; prevCount: number }];
      assert.equal(ev.prevCount, before);
      assert.equal(ev.count, before + 1);
      const msg = (await idler.fetchOne('*', { uid: true, envelope: true })) as FetchMessageObject;
      await idling;
      assert.equal(msg.uid, uid);
      assert.equal(msg.envelope!.subject, 'pushed while idling');
    } finally {
      await idler.logout();
    }
  });
});

describe(`Python imaplib (${shape})`, () => {
  let py: TestAccount;
  const raws = [1, 2, 3].map((i) => sampleMessage({ subject: `python ${i}`, to: 'py@acme.test', body: `body ${i}`, messageId: `<py-${i}@example.net>` }));
  let uids: number[];

  before(async () => {
    py = await server.fixture.addAccount('py@acme.test');
    uids = [];
    uids.push((await py.deliver(raws[0])).uid);
    uids.push((await py.deliver(raws[1], { flags: ['\\Seen'] })).uid);
    uids.push((await py.deliver(raws[2])).uid);
  });

  const STARTTLS_SCRIPT = String.raw`
import imaplib, ssl, sys, json, base64
port, user, pw, uid2 = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
out = {}
m = imaplib.IMAP4('127.0.0.1', port, timeout=20)
out['before_tls'] = sorted(m.capabilities)
m.starttls(ssl_context=ctx)
out['after_tls'] = sorted(m.capabilities)
out['login'] = m.login(user, pw)[0]
typ, data = m.list()
out['list'] = [typ, [d.decode() for d in data]]
typ, data = m.select('INBOX')
out['select'] = [typ, data[0].decode()]
out['unseen'] = m.search(None, 'UNSEEN')[1][0].decode()
typ, data = m.fetch(b'1', '(RFC822)')
out['rfc822'] = base64.b64encode(data[0][1]).decode()
out['unseen_after_fetch'] = m.search(None, 'UNSEEN')[1][0].decode()
typ, data = m.store(b'3', '+FLAGS', '(\\Deleted)')
out['store'] = [typ, [d.decode() for d in data if d]]
typ, data = m.uid('COPY', uid2, 'Archive')
out['copy'] = [typ, [d.decode() for d in data if d]]
out['copyuid'] = [x.decode() if isinstance(x, bytes) else x for x in (m.untagged_responses.get('COPYUID') or [])]
typ, data = m.expunge()
out['expunge'] = [typ, [d.decode() for d in data if d]]
out['logout'] = m.logout()[0]
print(json.dumps(out))
`;

  test('STARTTLS with an unverified context, then LOGIN, LIST, SELECT, SEARCH UNSEEN, FETCH RFC822, STORE, UID COPY, EXPUNGE, LOGOUT', async () => {
    const out = await runPython<Record<string, any>>(STARTTLS_SCRIPT, [server.imapPort, py.email, py.password, uids[1]]);
    assert.ok(out.before_tls.includes('STARTTLS'));
    assert.ok(out.before_tls.includes('LOGINDISABLED'), 'no LOGIN in clear text (RFC 9051 §6.2.3)');
    assert.ok(!out.after_tls.includes('STARTTLS'));
    assert.ok(!out.after_tls.includes('LOGINDISABLED'));
    assert.equal(out.login, 'OK');

    assert.equal(out.list[0], 'OK');
    const names = (out.list[1] as string[]).map((l) => l.replace(/^\(.*?\) "\/" /, '').replace(/^"(.*)"$/, '$1')).sort();
    assert.deepEqual(names, ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
    assert.ok((out.list[1] as string[]).some((l) => /^\(.*\\Sent.*\) "\/" "?Sent"?$/.test(l)), out.list[1].join('\n'));

    assert.deepEqual(out.select, ['OK', '3']);
    assert.equal(out.unseen, '1 3');
    assert.equal(Buffer.from(out.rfc822, 'base64').toString('utf8'), raws[0], 'RFC822 is the message byte for byte');
    assert.equal(out.unseen_after_fetch, '3', 'FETCH RFC822 set \\Seen (RFC 9051 §6.4.5: like BODY[])');
    assert.equal(out.store[0], 'OK');
    assert.match(out.store[1].join(' '), /^3 \(.*FLAGS \([^)]*\\Deleted/);
    assert.equal(out.copy[0], 'OK');
    const archive = await uidsOf(py, 'Archive');
    assert.equal(archive.length, 1);
    // imaplib files the tagged OK's response code under untagged_responses['COPYUID'] (its data only).
    assert.match(out.copyuid.join(' ').trim(), new RegExp(`^\\d+ ${uids[1]} ${archive[0]}$`), 'RFC 4315 COPYUID');
    assert.deepEqual(out.expunge, ['OK', ['3']]);
    assert.equal(out.logout, 'BYE');

    assert.deepEqual(await uidsOf(py, 'INBOX'), [uids[0], uids[1]]);
    assert.ok((await flagsOf(py, 'INBOX', uids[0])).includes('\\Seen'));
    assert.equal((await bytesOf(py, 'Archive', archive[0])).toString('utf8'), raws[1]);
  });

  test('IMAP4_SSL on the implicit-TLS port: LOGIN, EXAMINE (readonly), UID FETCH FLAGS, LOGOUT', async () => {
    const script = String.raw`
import imaplib, ssl, sys, json
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx, timeout=20)
out = {'login': m.login(user, pw)[0]}
typ, data = m.select('INBOX', readonly=True)
out['examine'] = [typ, data[0].decode()]
typ, data = m.uid('FETCH', '1:*', '(FLAGS)')
out['fetch'] = [typ, [d.decode() for d in data]]
typ, data = m.store(b'1', '+FLAGS', '(\\Flagged)')
out['store_readonly'] = typ
out['logout'] = m.logout()[0]
print(json.dumps(out))
`;
    const out = await runPython<Record<string, any>>(script, [server.imapsPort, py.email, py.password]);
    assert.equal(out.login, 'OK');
    assert.deepEqual(out.examine, ['OK', '2']);
    assert.equal(out.fetch[0], 'OK');
    const lines = (out.fetch[1] as string[]).join('\n');
    assert.match(lines, new RegExp(`UID ${uids[0]}\\b`));
    assert.match(lines, new RegExp(`UID ${uids[1]}\\b`));
    assert.equal(out.logout, 'BYE');
    // imaplib sends STORE as it is; the server must refuse it in a folder opened with EXAMINE
    // (RFC 9051 §6.3.3: read-only).
    assert.equal(out.store_readonly, 'NO');
    assert.ok(!(await flagsOf(py, 'INBOX', uids[0])).includes('\\Flagged'), 'EXAMINE changed nothing');
  });
});

describe(`curl (${shape})`, () => {
  let c: TestAccount;
  const raws = [1, 2].map((i) => sampleMessage({ subject: `curl ${i}`, to: 'curl@acme.test', body: `curl body ${i}\r\nsecond line` }));
  let uids: number[];

  before(async () => {
    c = await server.fixture.addAccount('curl@acme.test');
    uids = [(await c.deliver(raws[0])).uid, (await c.deliver(raws[1])).uid];
  });

  const user = () => ['-u', `${c.email}:${c.password}`];

  test('imap:// with --ssl-reqd (STARTTLS): fetch one message by UID, byte for byte', async () => {
    const r = await curl(['-k', '--ssl-reqd', ...user(), `imap://127.0.0.1:${server.imapPort}/INBOX;UID=${uids[0]}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString('utf8'), raws[0]);
  });

  test("imap:// -X 'EXAMINE INBOX': the untagged responses of EXAMINE", async () => {
    const r = await curl(['-k', '--ssl-reqd', ...user(), '-X', 'EXAMINE INBOX', `imap://127.0.0.1:${server.imapPort}/`]);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.toString('utf8');
    const folder = await c.folder('INBOX');
    assert.match(out, /^\* 2 EXISTS\r?$/m);
    assert.match(out, new RegExp(`^\\* OK \\[UIDVALIDITY ${folder.uidValidity}\\]`, 'm'));
    assert.match(out, new RegExp(`^\\* OK \\[UIDNEXT ${folder.uidNext}\\]`, 'm'));
    assert.match(out, /^\* FLAGS \(/m);
  });

  test('imap:// listing: LIST of every folder', async () => {
    const r = await curl(['-k', '--ssl-reqd', ...user(), `imap://127.0.0.1:${server.imapPort}/`]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.toString('utf8').split(/\r?\n/).filter((l) => l.startsWith('* LIST'));
    const names = lines.map((l) => l.replace(/^\* LIST \(.*?\) "\/" /, '').replace(/^"(.*)"$/, '$1')).sort();
    assert.deepEqual(names, ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
  });

  test('imaps:// (implicit TLS): fetch by UID, byte for byte; a wrong password is a login failure (exit 67)', async () => {
    const r = await curl(['-k', ...user(), `imaps://127.0.0.1:${server.imapsPort}/INBOX;UID=${uids[1]}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString('utf8'), raws[1]);
    const bad = await curl(['-k', '-u', `${c.email}:wrong password here`, `imaps://127.0.0.1:${server.imapsPort}/INBOX;UID=${uids[1]}`]);
    assert.equal(bad.code, 67, `curl: ${bad.stderr}`);
  });

  test('imap:// without TLS support asked: curl is refused LOGIN in clear text (LOGINDISABLED)', async () => {
    // --ssl-reqd absent and STARTTLS not requested: curl tries to log in over plain text, which the
    // server must refuse (RFC 9051 §6.2.3 / SPEC §10) — nothing is fetched.
    const r = await curl([...user(), `imap://127.0.0.1:${server.imapPort}/INBOX;UID=${uids[0]}`]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout.length, 0);
  });
});
