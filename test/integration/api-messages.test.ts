/**
 * `/api/v1/messages` (SPEC §11): list with every filter and sort, keyset paging, one message with
 * decoded bodies, the raw `.eml`, attachments, PATCH of flags and tags, move and delete — over
 * real messages appended through the mailbox-state service (a multipart with an ISO-2022-JP text
 * part and binary/QP/HTML attachments, an HTML message, plain ones, one stored with its MIME
 * structure recorded), in both shapes.
 *
 * Isolation (SPEC §9): another user's and another tenant's message ids are 404 on every route, and
 * an admin cannot read a mailbox that has an owner (policy.ts canOpenMailbox) but can read an
 * owner-less shared one.
 *
 * Scale: the list stays fast over 100 000 messages in one mailbox (seeded directly in the tables).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import iconv from 'iconv-lite';
import { sql, type Insertable } from 'kysely';
import type { DB } from '../../src/store/db/types.js';
import { tenantScope, type Scope } from '../../src/core/scope.js';
import { newId } from '../../src/store/db/database.js';
import type { Folder } from '../../src/core/mailbox-state/index.js';
import type { Mailbox } from '../../src/core/tenancy/types.js';
import { parseMimeStructure } from '../../src/mail/mime/index.js';
import { extractMessageMeta } from '../../src/mail/extract.js';
import { listMessages, messageListQuery } from '../../src/core/messages/list.js';
import { startApi, type ApiHarness, type ApiResponse, type CallOptions, type TestTenant, type TestUser } from '../support/api.js';

const M = '/api/v1/messages';
const CRLF = '\r\n';
const BASE = Date.UTC(2024, 3, 10, 12, 0, 0);

/** ISO-2022-JP (RFC 1468) bytes: JIS X 0208 from the EUC-JP encoding with the high bits cleared. */
function toIso2022jp(text: string): Buffer {
  const euc = iconv.encode(text, 'euc-jp');
  const out: number[] = [];
  let kanji = false;
  for (let i = 0; i < euc.length; i++) {
    if (euc[i] < 0x80) {
      if (kanji) out.push(0x1b, 0x28, 0x42);
      kanji = false;
      out.push(euc[i]);
      continue;
    }
    if (!kanji) out.push(0x1b, 0x24, 0x42);
    kanji = true;
    out.push(euc[i] & 0x7f, euc[i + 1] & 0x7f);
    i++;
  }
  if (kanji) out.push(0x1b, 0x28, 0x42);
  return Buffer.from(out);
}

const jisWord = (text: string) => `=?ISO-2022-JP?B?${toIso2022jp(text).toString('base64')}?=`;
const lines76 = (b64: string) => b64.replace(/.{1,76}/g, (l) => l + CRLF);

/** A PDF-like binary: a header and every byte value, so any transcoding shows. */
const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1'), randomBytes(3000), Buffer.from([...Array(256).keys()]), Buffer.from('\n%%EOF\n')]);
const NOTES_TEXT = '議事録の補足です。'.repeat(12) + '\r\nend\r\n';
const PAGE_HTML = '<html><body><script>alert(document.cookie)</script>hi</body></html>';

/** Quoted-printable (RFC 2045 §6.7) with soft line breaks, for the attachment test. */
function qp(bytes: Buffer): string {
  let out = '';
  let line = '';
  for (const b of bytes) {
    const enc = (b >= 33 && b <= 126 && b !== 61) || b === 32 ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
    if (line.length + enc.length > 75) {
      out += line + '=' + CRLF;
      line = '';
    }
    line += enc;
  }
  return out + line;
}

function japaneseMultipart(to: string): Buffer {
  const head = [
    `From: ${jisWord('山田 太郎')} <yamada@example.jp>`,
    `To: ${to}`,
    `Subject: ${jisWord('会議の件')}`,
    'Date: Tue, 02 Apr 2024 09:15:00 +0900',
    'Message-ID: <jp.1@example.jp>',
    'In-Reply-To: <prev.0@example.jp>',
    'References: <root.0@example.jp>',
    ' <prev.0@example.jp>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="==B1=="',
    '',
    'This is a multi-part message in MIME format.',
    '--==B1==',
    'Content-Type: text/plain; charset=ISO-2022-JP',
    'Content-Transfer-Encoding: 7bit',
    '',
    '',
  ].join(CRLF);
  return Buffer.concat([
    Buffer.from(head, 'latin1'),
    toIso2022jp('お疲れ様です。'),
    Buffer.from(CRLF),
    toIso2022jp('本日の会議の議事録を送ります。'),
    Buffer.from(CRLF),
    Buffer.from(
      [
        '--==B1==',
        'Content-Type: application/pdf; name="report.pdf"',
        'Content-Disposition: attachment; filename="report.pdf"',
        'Content-Transfer-Encoding: base64',
        '',
        lines76(PDF.toString('base64')) + '--==B1==',
        'Content-Type: text/plain; charset=UTF-8',
        "Content-Disposition: attachment; filename*=UTF-8''%E8%AD%B0%E4%BA%8B%E9%8C%B2.txt",
        'Content-Transfer-Encoding: quoted-printable',
        '',
        qp(Buffer.from(NOTES_TEXT, 'utf8')),
        '--==B1==',
        'Content-Type: text/html; charset=UTF-8; name="page.html"',
        'Content-Disposition: attachment; filename="page.html"',
        'Content-ID: <page.1@example.jp>',
        '',
        PAGE_HTML,
        '--==B1==--',
        '',
      ].join(CRLF),
      'latin1',
    ),
  ]);
}

function htmlMessage(to: string): Buffer {
  return Buffer.from(
    [
      'From: Newsletter <news@example.com>',
      `To: ${to}`,
      'Subject: HTML only',
      'Date: Wed, 03 Apr 2024 10:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      '<p>Hello <b>world</b> caf=C3=A9 =',
      'soft</p>',
      '',
    ].join(CRLF),
    'latin1',
  );
}

function plainMessage(i: number, to: string, extra: { cc?: string; body?: string } = {}): Buffer {
  return Buffer.from(
    [
      `From: Sender ${i} <sender${i}@example.org>`,
      `To: ${to}`,
      ...(extra.cc ? [`Cc: ${extra.cc}`] : []),
      `Subject: Plain ${String.fromCharCode(0x61 + ((i * 5) % 7))} ${i}`,
      `Date: Thu, 04 Apr 2024 0${i % 10}:00:00 +0000`,
      `Message-ID: <plain.${i}@example.org>`,
      '',
      extra.body ?? `Plain body number ${i}.${'x'.repeat(i * 37)}`,
      '',
    ].join(CRLF),
    'utf8',
  );
}

describe('api: messages', () => {
  let api: ApiHarness;
  let acme: TestTenant;
  let beta: TestTenant;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let scope: Scope;
  let aliceBox: Mailbox;
  let bobBox: Mailbox;
  let shared: Mailbox;
  let sales: Mailbox;
  const folders: Record<string, Folder> = {};
  /** Entry id → raw bytes appended. */
  const raws = new Map<string, Buffer>();
  const ids: Record<string, string> = {};
  let inboxIds: string[] = [];
  let bobMessage: string;
  let carolMessage: string;
  let sharedMessage: string;

  const call = (method: string, path: string, opts: CallOptions = {}): Promise<ApiResponse> => api.call(method, path, opts);
  const get = (path: string, token = alice.token) => call('GET', path, { token });

  async function fetchBytes(path: string, token = alice.token): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
    const res = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
  }

  async function entryIdOf(folderId: string, uid: number): Promise<string> {
    const e = await api.app.mailboxState.getEntry(scope, folderId, uid);
    assert.ok(e);
    return e.id;
  }

  async function append(s: Scope, box: Mailbox, folderName: string, raw: Buffer, internalDate: number): Promise<string> {
    const folder = (await api.app.mailboxState.findFolder(s, box.id, folderName))!;
    const r = await api.app.mailboxState.append(s, box.id, folder.id, raw, { internalDate });
    const id = (await api.app.mailboxState.getEntry(s, folder.id, r.uid))!.id;
    raws.set(id, raw);
    return id;
  }

  /** Every page of a list, following cursors; fails on a repeated id. */
  async function allPages(query: string, limit: number, token = alice.token, from: string | null = null): Promise<any[]> {
    const out: any[] = [];
    let cursor: string | null = from;
    for (let guard = 0; guard < 100; guard++) {
      const res = await get(`${M}?${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, token);
      assert.equal(res.status, 200, res.body);
      assert.ok(res.json.data.length <= limit);
      out.push(...res.json.data);
      cursor = res.json.pagination.cursor;
      assert.equal(res.json.pagination.has_more, cursor !== null);
      if (!cursor) break;
    }
    assert.equal(new Set(out.map((m) => m.id)).size, out.length, 'no message repeats across pages');
    return out;
  }

  before(async () => {
    api = await startApi();
    acme = await api.tenant();
    beta = await api.tenant();
    scope = tenantScope(acme.id);
    const tenancy = api.app.tenancy;
    const domain = await tenancy.domains.add(scope, { name: `${acme.name}.example` });
    alice = await api.user(acme.id);
    bob = await api.user(acme.id);
    aliceBox = await tenancy.mailboxes.add(scope, { address: `alice@${domain.name}`, user: alice.user.id });
    bobBox = await tenancy.mailboxes.add(scope, { address: `bob@${domain.name}`, user: bob.user.id });
    shared = await tenancy.mailboxes.add(scope, { address: `support@${domain.name}` });
    sales = await tenancy.mailboxes.add(scope, { address: `sales@${domain.name}` });
    for (const f of await api.app.mailboxState.listFolders(scope, aliceBox.id)) folders[f.name] = f;

    const to = `Alice <alice@${domain.name}>`;
    ids.jp = await append(scope, aliceBox, 'INBOX', japaneseMultipart(to), BASE - 5000);
    ids.html = await append(scope, aliceBox, 'INBOX', htmlMessage(to), BASE - 4000);
    // Ties on the internal date (three at BASE, two at BASE + 1000) for the cursor tests.
    const dates = [BASE, BASE, BASE, BASE - 1000, BASE - 2000, BASE + 1000, BASE + 1000];
    for (let i = 1; i <= 7; i++) {
      ids[`p${i}`] = await append(scope, aliceBox, 'INBOX', plainMessage(i, to, i === 3 ? { cc: 'Carol Watcher <carol.watcher@example.net>' } : {}), dates[i - 1]);
    }
    // One message stored with its MIME structure recorded (as SMTP delivery does), Latin-1 in base64.
    const latin = Buffer.from(
      ['From: latin@example.fr', `To: ${to}`, 'Subject: Structured', 'Content-Type: text/plain; charset=ISO-8859-1', 'Content-Transfer-Encoding: base64', '', iconv.encode('Grüße aus Köln', 'latin1').toString('base64'), ''].join(CRLF),
    );
    const stored = await api.app.mailboxState.storeMessage(scope, { raw: latin, meta: await extractMessageMeta(latin), structureJson: JSON.stringify(parseMimeStructure(latin)) });
    const [delivered] = await api.app.mailboxState.deliver(scope, stored.id, [{ mailboxId: aliceBox.id, folderName: 'INBOX', internalDate: BASE - 3000 }]);
    ids.structured = await entryIdOf(delivered.folderId, delivered.uid);
    raws.set(ids.structured, latin);
    inboxIds = Object.values(ids);

    bobMessage = await append(scope, bobBox, 'INBOX', plainMessage(8, `bob@${domain.name}`), BASE);
    sharedMessage = await append(scope, shared, 'INBOX', plainMessage(9, `support@${domain.name}`), BASE);
    const betaScope = tenantScope(beta.id);
    const betaDomain = await tenancy.domains.add(betaScope, { name: `${beta.name}.example` });
    carol = await api.user(beta.id);
    const carolBox = await tenancy.mailboxes.add(betaScope, { address: `carol@${betaDomain.name}`, user: carol.user.id });
    carolMessage = await append(betaScope, carolBox, 'INBOX', japaneseMultipart(`carol@${betaDomain.name}`), BASE);
  });
  after(async () => {
    await api?.close();
  });

  describe('list', () => {
    test('default: the caller\'s own mailbox, newest first, ties by id, summary fields', async () => {
      const res = await get(M);
      assert.equal(res.status, 200, res.body);
      const data = res.json.data as any[];
      assert.deepEqual(new Set(data.map((m) => m.id)), new Set(inboxIds));
      for (let i = 1; i < data.length; i++) {
        const [a, b] = [data[i - 1], data[i]];
        assert.ok(a.date > b.date || (a.date === b.date && a.id > b.id), `order at ${i}`);
      }
      assert.deepEqual(res.json.pagination, { cursor: null, has_more: false });
      const jp = data.find((m) => m.id === ids.jp);
      assert.deepEqual(Object.keys(jp).sort(), ['cc', 'date', 'flags', 'folder_id', 'from', 'has_attachments', 'id', 'mailbox_id', 'modseq', 'preview', 'sent_at', 'size', 'spam_score', 'subject', 'tags', 'to', 'uid'].sort());
      assert.equal(jp.subject, '会議の件');
      assert.equal(jp.from, '山田 太郎 <yamada@example.jp>');
      assert.equal(jp.folder_id, folders.INBOX.id);
      assert.equal(jp.mailbox_id, aliceBox.id);
      assert.equal(jp.date, new Date(BASE - 5000).toISOString());
      assert.equal(jp.sent_at, '2024-04-02T00:15:00.000Z');
      assert.equal(jp.size, raws.get(ids.jp)!.length);
      assert.equal(jp.has_attachments, true);
      assert.deepEqual(jp.flags, []);
      assert.deepEqual(jp.tags, []);
      assert.match(jp.preview, /お疲れ様です。/);
      assert.equal(jp.spam_score, null);
    });

    test('cursor paging in every sort order: all messages once, in order, across pages of 3', async () => {
      const cmp: Record<string, (a: any, b: any) => boolean> = {
        date: (a, b) => a.date > b.date || (a.date === b.date && a.id > b.id),
        date_asc: (a, b) => a.date < b.date || (a.date === b.date && a.id < b.id),
        size: (a, b) => a.size > b.size || (a.size === b.size && a.id > b.id),
        size_asc: (a, b) => a.size < b.size || (a.size === b.size && a.id < b.id),
      };
      for (const sort of Object.keys(cmp)) {
        const full = (await get(`${M}?sort=${sort}&limit=100`)).json.data as any[];
        const paged = await allPages(`sort=${sort}`, 3);
        assert.deepEqual(paged.map((m) => m.id), full.map((m) => m.id), `sort ${sort}`);
        assert.equal(paged.length, inboxIds.length);
        for (let i = 1; i < paged.length; i++) assert.ok(cmp[sort](paged[i - 1], paged[i]), `${sort} order at ${i}`);
      }
      // Page size 1 walks the ties one by one.
      assert.equal((await allPages('sort=date', 1)).length, inboxIds.length);
    });

    test('a message arriving between pages shows up in no page twice and shifts nothing', async () => {
      const first = await get(`${M}?limit=4`);
      const late = await append(scope, aliceBox, 'INBOX', plainMessage(42, 'x@example.org'), BASE + 99_000);
      try {
        const rest = await allPages('sort=date', 4, alice.token, first.json.pagination.cursor);
        const seen = [...first.json.data, ...rest].map((m) => m.id);
        assert.equal(new Set(seen).size, seen.length);
        assert.deepEqual(new Set(seen), new Set(inboxIds), 'the newer message sorts before the cursor, so it is not in later pages');
      } finally {
        await call('DELETE', `${M}/${late}?permanent=true`, { token: alice.token });
      }
    });

    test('q: Japanese substrings of 2 and 3+ characters, addresses, ASCII case-insensitive, no match', async () => {
      const q = async (text: string) => ((await get(`${M}?q=${encodeURIComponent(text)}`)).json.data as any[]).map((m) => m.id).sort();
      assert.deepEqual(await q('会議'), [ids.jp]); // 2 characters: below one trigram
      assert.deepEqual(await q('議事録'), [ids.jp]); // 3 characters: body text
      assert.deepEqual(await q('本日の会議の議事録'), [ids.jp]);
      assert.deepEqual(await q('山田'), [ids.jp]); // From display name
      assert.deepEqual(await q('HTML ONLY'), [ids.html]);
      assert.deepEqual(await q('grüße'), [ids.structured]);
      assert.deepEqual(await q('body number 4'), [ids.p4]);
      assert.deepEqual(await q('天気'), []);
      assert.deepEqual(await q('100%_'), []); // LIKE wildcards are literal
      // Bob's message says "Plain body number 8": searching never reaches other mailboxes.
      assert.deepEqual(await q('number 8'), []);
    });

    test('from / to (To and Cc) substrings, case-insensitive', async () => {
      const ids_ = async (qs: string) => ((await get(`${M}?${qs}`)).json.data as any[]).map((m) => m.id).sort();
      assert.deepEqual(await ids_('from=YAMADA%40example'), [ids.jp]);
      assert.deepEqual(await ids_('from=sender5'), [ids.p5]);
      assert.deepEqual(await ids_(`from=${encodeURIComponent('山田 太郎')}`), [ids.jp]);
      assert.deepEqual(await ids_('to=carol.watcher'), [ids.p3]);
      assert.deepEqual(await ids_('to=ALICE%40'), [...inboxIds].sort());
      assert.deepEqual(await ids_('from=nobody-here'), []);
    });

    test('after / before on the arrival date', async () => {
      const list = async (qs: string) => ((await get(`${M}?${qs}`)).json.data as any[]).map((m) => m.id).sort();
      const at = (ms: number) => encodeURIComponent(new Date(ms).toISOString());
      assert.deepEqual(await list(`after=${at(BASE + 1000)}`), [ids.p6, ids.p7].sort());
      assert.deepEqual(await list(`before=${at(BASE - 3000)}`), [ids.jp, ids.html].sort());
      assert.deepEqual(await list(`after=${at(BASE - 3000)}&before=${at(BASE - 1000)}`), [ids.structured, ids.p5].sort());
      assert.deepEqual(await list(`after=${at(BASE + 5000)}`), []);
    });

    test('folder by name or id; flag and tag filters follow PATCH', async () => {
      assert.equal((await get(`${M}?folder=INBOX`)).json.data.length, inboxIds.length);
      assert.equal((await get(`${M}?folder=inbox`)).json.data.length, inboxIds.length);
      assert.equal((await get(`${M}?folder=${folders.INBOX.id}`)).json.data.length, inboxIds.length);
      assert.deepEqual((await get(`${M}?folder=Archive`)).json.data, []);
      assert.equal((await get(`${M}?folder=NoSuchFolder`)).status, 404);
      assert.equal((await get(`${M}?folder=${newId()}`)).status, 404);

      const patched = await call('PATCH', `${M}/${ids.p2}`, { token: alice.token, body: { flags: { add: ['seen', 'flagged'] }, tags: { add: ['Work'] } } });
      assert.equal(patched.status, 200, patched.body);
      const only = async (qs: string) => ((await get(`${M}?${qs}`)).json.data as any[]).map((m) => m.id).sort();
      assert.deepEqual(await only('flag=seen'), [ids.p2]);
      assert.deepEqual(await only('flag=flagged'), [ids.p2]);
      assert.equal((await only('flag=unseen')).length, inboxIds.length - 1);
      assert.ok(!(await only('flag=unflagged')).includes(ids.p2));
      assert.deepEqual(await only('tag=work'), [ids.p2]);
      assert.deepEqual(await only('tag=WORK&flag=seen&q=number%202'), [ids.p2]);
      assert.deepEqual(await only('tag=work&flag=unseen'), []);
      assert.deepEqual(await only('flag=answered'), []);
      await call('PATCH', `${M}/${ids.p2}`, { token: alice.token, body: { flags: { remove: ['seen', 'flagged'] }, tags: { remove: ['work'] } } });
      assert.deepEqual(await only('flag=seen'), []);
      assert.deepEqual(await only('tag=work'), []);
    });

    test('query validation and limits: 400 INVALID_REQUEST with the field', async () => {
      const bad = async (qs: string) => {
        const res = await get(`${M}?${qs}`);
        assert.equal(res.status, 400, `${qs}: ${res.body}`);
        assert.equal(res.json.error.code, 'INVALID_REQUEST');
        return res.json.error;
      };
      await bad('limit=101');
      await bad('limit=0');
      assert.equal((await get(`${M}?limit=100`)).status, 200);
      await bad(`q=${'あ'.repeat(1001)}`);
      assert.equal((await get(`${M}?q=${encodeURIComponent('あ'.repeat(1000))}`)).status, 200);
      await bad(`from=${'a'.repeat(321)}`);
      assert.equal((await get(`${M}?from=${'a'.repeat(320)}`)).status, 200);
      await bad(`tag=${'t'.repeat(65)}`);
      await bad('flag=important');
      await bad('sort=random');
      await bad('after=yesterday');
      await bad('unknown=1');
      await bad('q=');
      assert.equal((await bad('cursor=not-a-cursor')).details.field, 'cursor');
      const page = await get(`${M}?limit=2&sort=size`);
      const err = await bad(`cursor=${encodeURIComponent(page.json.pagination.cursor)}&sort=date`);
      assert.equal(err.details.field, 'cursor');
      const forged = Buffer.from(JSON.stringify({ s: 'date', k: 'x', i: 'y' })).toString('base64url');
      await bad(`cursor=${forged}`);
    });
  });

  describe('one message', () => {
    test('multipart: decoded ISO-2022-JP text, thread headers, attachment list', async () => {
      const res = await get(`${M}/${ids.jp}`);
      assert.equal(res.status, 200, res.body);
      const m = res.json.data;
      assert.equal(m.id, ids.jp);
      assert.equal(m.subject, '会議の件');
      assert.deepEqual(m.headers, {
        subject: '会議の件',
        from: '山田 太郎 <yamada@example.jp>',
        to: [`Alice <alice@${acme.name}.example>`],
        cc: [],
        date: '2024-04-02T00:15:00.000Z',
        message_id: '<jp.1@example.jp>',
        in_reply_to: '<prev.0@example.jp>',
        references: ['<root.0@example.jp>', '<prev.0@example.jp>'],
      });
      assert.deepEqual(m.text, { content: 'お疲れ様です。\r\n本日の会議の議事録を送ります。', truncated: false, charset: 'iso-2022-jp' });
      assert.equal(m.html, null);
      assert.equal(m.attachments.length, 3);
      const [pdf, notes, page] = m.attachments;
      assert.deepEqual({ ...pdf, size: undefined }, { part_id: '2', filename: 'report.pdf', content_type: 'application/pdf', size: undefined, disposition: 'attachment', content_id: null });
      assert.ok(Math.abs(pdf.size - PDF.length) <= 2, `estimated size ${pdf.size} vs ${PDF.length}`);
      assert.equal(notes.part_id, '3');
      assert.equal(notes.filename, '議事録.txt');
      assert.equal(notes.content_type, 'text/plain');
      assert.deepEqual([page.part_id, page.filename, page.content_type, page.content_id], ['4', 'page.html', 'text/html', 'page.1@example.jp']);
    });

    test('HTML-only message: quoted-printable decoded, no text body', async () => {
      const m = (await get(`${M}/${ids.html}`)).json.data;
      assert.deepEqual(m.html, { content: '<p>Hello <b>world</b> café soft</p>\r\n', truncated: false, charset: 'utf-8' });
      assert.equal(m.text, null);
      assert.deepEqual(m.attachments, []);
      assert.equal(m.headers.in_reply_to, null);
      assert.deepEqual(m.headers.references, []);
    });

    test('a message with a recorded MIME structure: Latin-1 in base64', async () => {
      const m = (await get(`${M}/${ids.structured}`)).json.data;
      assert.deepEqual(m.text, { content: 'Grüße aus Köln', truncated: false, charset: 'iso-8859-1' });
    });

    test('a body over 256 KiB is cut on a character boundary and flagged truncated', async () => {
      const long = 'あいうえお'.repeat(20_000); // 300 000 UTF-8 bytes
      const id = await append(scope, aliceBox, 'Archive', plainMessage(50, 'x@example.org', { body: long }), BASE);
      try {
        const m = (await get(`${M}/${id}`)).json.data;
        assert.equal(m.text.truncated, true);
        assert.ok(Buffer.byteLength(m.text.content) <= 256 * 1024);
        assert.ok(Buffer.byteLength(m.text.content) > 256 * 1024 - 3);
        assert.ok(long.startsWith(m.text.content));
      } finally {
        await call('DELETE', `${M}/${id}?permanent=true`, { token: alice.token });
      }
    });

    test('raw: the exact bytes appended, as a message/rfc822 download', async () => {
      for (const id of [ids.jp, ids.html, ids.structured]) {
        const res = await fetchBytes(`${M}/${id}/raw`);
        assert.equal(res.status, 200);
        assert.ok(res.bytes.equals(raws.get(id)!), `raw bytes of ${id}`);
        assert.equal(res.headers.get('content-type'), 'message/rfc822');
        assert.equal(res.headers.get('content-disposition'), `attachment; filename="${id}.eml"; filename*=UTF-8''${id}.eml`);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
        assert.equal(Number(res.headers.get('content-length')), raws.get(id)!.length);
      }
    });

    test('attachments: decoded bytes identical, forced download, sandboxed', async () => {
      const pdf = await fetchBytes(`${M}/${ids.jp}/attachments/2`);
      assert.equal(pdf.status, 200);
      assert.ok(pdf.bytes.equals(PDF), 'base64 attachment decoded to the original bytes');
      assert.equal(pdf.headers.get('content-type'), 'application/pdf');
      assert.equal(pdf.headers.get('content-disposition'), 'attachment; filename="report.pdf"; filename*=UTF-8\'\'report.pdf');
      assert.equal(pdf.headers.get('x-content-type-options'), 'nosniff');
      assert.match(pdf.headers.get('content-security-policy')!, /\bsandbox\b/);

      const notes = await fetchBytes(`${M}/${ids.jp}/attachments/3`);
      assert.equal(notes.bytes.toString('utf8'), NOTES_TEXT, 'quoted-printable with soft line breaks decoded');
      assert.equal(notes.headers.get('content-type'), 'text/plain; charset=UTF-8');
      assert.equal(notes.headers.get('content-disposition'), `attachment; filename="___.txt"; filename*=UTF-8''%E8%AD%B0%E4%BA%8B%E9%8C%B2.txt`);

      const page = await fetchBytes(`${M}/${ids.jp}/attachments/4`);
      assert.equal(page.bytes.toString('utf8'), PAGE_HTML);
      assert.match(page.headers.get('content-type')!, /^text\/html/);
      assert.match(page.headers.get('content-disposition')!, /^attachment;/);
      assert.match(page.headers.get('content-security-policy')!, /^sandbox;/);
      assert.match(page.headers.get('content-security-policy')!, /default-src 'none'/);
      assert.equal(page.headers.get('x-content-type-options'), 'nosniff');

      // The text body is a part too; the multipart container and missing parts are not.
      const body = await fetchBytes(`${M}/${ids.jp}/attachments/1`);
      assert.ok(body.bytes.equals(Buffer.concat([toIso2022jp('お疲れ様です。'), Buffer.from(CRLF), toIso2022jp('本日の会議の議事録を送ります。')])));
      assert.equal((await get(`${M}/${ids.jp}/attachments/5`)).status, 404);
      assert.equal((await get(`${M}/${ids.jp}/attachments/2.1`)).status, 404);
      assert.equal((await get(`${M}/${ids.jp}/attachments/0`)).status, 400);
      assert.equal((await get(`${M}/${ids.jp}/attachments/..%2F1`)).status, 400);
      // A single-part message's body is part 1.
      const html = await fetchBytes(`${M}/${ids.html}/attachments/1`);
      assert.equal(html.bytes.toString('utf8'), '<p>Hello <b>world</b> café soft</p>\r\n');
      assert.match(html.headers.get('content-security-policy')!, /sandbox/);
    });
  });

  describe('changes', () => {
    test('PATCH flags and tags: visible through the mailbox-state service with a new MODSEQ', async () => {
      const inbox = folders.INBOX.id;
      const before = (await get(`${M}/${ids.p4}`)).json.data;
      const entry0 = (await api.app.mailboxState.getEntry(scope, inbox, before.uid))!;
      const res = await call('PATCH', `${M}/${ids.p4}`, { token: alice.token, body: { flags: { add: ['seen', 'answered'] }, tags: { add: ['project-x', '$Important'] } } });
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(res.json.data.flags, ['seen', 'answered']);
      assert.deepEqual(res.json.data.tags, ['project-x', '$Important']);
      const entry1 = (await api.app.mailboxState.getEntry(scope, inbox, before.uid))!;
      assert.deepEqual(entry1.flags, ['\\Seen', '\\Answered', 'project-x', '$Important']);
      assert.ok(entry1.modseq > entry0.modseq);
      assert.equal(res.json.data.modseq, entry1.modseq);

      const res2 = await call('PATCH', `${M}/${ids.p4}`, { token: alice.token, body: { flags: { remove: ['answered'], add: ['deleted'] }, tags: { remove: ['PROJECT-X'] } } });
      assert.equal(res2.status, 200, res2.body);
      const entry2 = (await api.app.mailboxState.getEntry(scope, inbox, before.uid))!;
      assert.deepEqual(entry2.flags, ['\\Seen', '\\Deleted', '$Important']);
      assert.ok(entry2.modseq > entry1.modseq);
      assert.deepEqual(res2.json.data.flags, ['seen', 'deleted']);

      // A PATCH that changes nothing keeps the MODSEQ.
      const res3 = await call('PATCH', `${M}/${ids.p4}`, { token: alice.token, body: { flags: { add: ['seen'] } } });
      assert.equal(res3.json.data.modseq, entry2.modseq);
      await call('PATCH', `${M}/${ids.p4}`, { token: alice.token, body: { flags: { remove: ['seen', 'deleted'] }, tags: { remove: ['$Important'] } } });
    });

    test('PATCH validation and limits: 422, and 409 past 64 tags on one message', async () => {
      const patch = (body: unknown) => call('PATCH', `${M}/${ids.p5}`, { token: alice.token, body });
      const expect422 = async (body: unknown) => {
        const res = await patch(body);
        assert.equal(res.status, 422, `${JSON.stringify(body)}: ${res.body}`);
        assert.equal(res.json.error.code, 'VALIDATION_ERROR');
        return res.json.error;
      };
      await expect422({});
      await expect422({ flags: { add: ['recent'] } });
      await expect422({ flags: { add: ['\\Seen'] } });
      await expect422({ tags: { add: ['two words'] } });
      await expect422({ tags: { add: ['\\Seen'] } });
      await expect422({ tags: { add: ['a(b'] } });
      await expect422({ tags: { add: ['t'.repeat(65)] } });
      await expect422({ tags: { add: [''] } });
      await expect422({ tags: { add: Array.from({ length: 65 }, (_, i) => `t${i}`) } });
      await expect422({ flags: { add: ['seen'] }, labels: ['x'] });
      const both = await expect422({ flags: { add: ['seen'], remove: ['seen'] } });
      assert.match(both.message, /both added and removed/);
      await expect422({ tags: { add: ['Work'], remove: ['work'] } });

      const full = Array.from({ length: 64 }, (_, i) => `tag${i}`);
      assert.equal((await patch({ tags: { add: full } })).status, 200);
      const over = await patch({ tags: { add: ['one-more'] } });
      assert.equal(over.status, 409, over.body);
      assert.equal(over.json.error.code, 'CONFLICT');
      assert.deepEqual(over.json.error.details, { limit: 'keywords per message', max: 64 });
      assert.equal((await patch({ tags: { remove: full } })).status, 200);
    });

    test('move: same mailbox only, new id, old id gone', async () => {
      const id = await append(scope, aliceBox, 'INBOX', plainMessage(60, 'x@example.org'), BASE);
      const old = (await get(`${M}/${id}`)).json.data;
      const res = await call('POST', `${M}/${id}/move`, { token: alice.token, body: { folder_id: folders.Archive.id } });
      assert.equal(res.status, 200, res.body);
      const moved = res.json.data;
      assert.notEqual(moved.id, id);
      assert.equal(moved.folder_id, folders.Archive.id);
      assert.equal(moved.subject, old.subject);
      assert.equal((await get(`${M}/${id}`)).status, 404);
      assert.equal(await api.app.mailboxState.getEntry(scope, folders.INBOX.id, old.uid), null);
      assert.deepEqual(((await get(`${M}?folder=Archive`)).json.data as any[]).map((m) => m.id), [moved.id]);
      const raw = await fetchBytes(`${M}/${moved.id}/raw`);
      assert.ok(raw.bytes.equals(raws.get(id)!));

      const same = await call('POST', `${M}/${moved.id}/move`, { token: alice.token, body: { folder_id: folders.Archive.id } });
      assert.equal(same.status, 422);
      const bobInbox = (await api.app.mailboxState.findFolder(scope, bobBox.id, 'INBOX'))!;
      assert.equal((await call('POST', `${M}/${moved.id}/move`, { token: alice.token, body: { folder_id: bobInbox.id } })).status, 404);
      assert.equal((await call('POST', `${M}/${moved.id}/move`, { token: alice.token, body: { folder_id: newId() } })).status, 404);
      assert.equal((await call('POST', `${M}/${moved.id}/move`, { token: alice.token, body: { folder: 'Archive' } })).status, 422);
      await call('DELETE', `${M}/${moved.id}?permanent=true`, { token: alice.token });

      // An admin who may open two shared mailboxes still cannot move between them.
      const salesInbox = (await api.app.mailboxState.findFolder(scope, sales.id, 'INBOX'))!;
      const cross = await call('POST', `${M}/${sharedMessage}/move`, { token: acme.admin.token, body: { folder_id: salesInbox.id } });
      assert.equal(cross.status, 422, cross.body);
      assert.equal(cross.json.error.details.field, 'folder_id');
    });

    test('delete: to Trash first, then for good; ?permanent=true at once', async () => {
      const id = await append(scope, aliceBox, 'INBOX', plainMessage(61, 'x@example.org'), BASE);
      const res = await call('DELETE', `${M}/${id}`, { token: alice.token });
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.data.permanent, false);
      const trashId = res.json.data.trash_id;
      assert.equal((await get(`${M}/${id}`)).status, 404);
      const inTrash = (await get(`${M}/${trashId}`)).json.data;
      assert.equal(inTrash.folder_id, folders.Trash.id);

      const res2 = await call('DELETE', `${M}/${trashId}`, { token: alice.token });
      assert.deepEqual(res2.json.data, { permanent: true, trash_id: null });
      assert.equal((await get(`${M}/${trashId}`)).status, 404);
      assert.equal(await api.app.mailboxState.getEntry(scope, folders.Trash.id, inTrash.uid), null);
      assert.equal((await call('DELETE', `${M}/${trashId}`, { token: alice.token })).status, 404);

      const id2 = await append(scope, aliceBox, 'INBOX', plainMessage(62, 'x@example.org'), BASE);
      const res3 = await call('DELETE', `${M}/${id2}?permanent=true`, { token: alice.token });
      assert.deepEqual(res3.json.data, { permanent: true, trash_id: null });
      assert.deepEqual((await get(`${M}?folder=Trash`)).json.data, []);
      assert.equal((await call('DELETE', `${M}/${id2}?permanent=yes`, { token: alice.token })).status, 400);
    });

    test('a read-only API key reads but cannot change', async () => {
      const ro = await api.deps.apiKeys.create({ tenantId: acme.id, userId: alice.user.id, name: 'ro', scopes: ['read'] });
      assert.equal((await get(`${M}/${ids.p1}`, ro.key)).status, 200);
      const res = await call('PATCH', `${M}/${ids.p1}`, { token: ro.key, body: { flags: { add: ['seen'] } } });
      assert.equal(res.status, 403);
      assert.equal(res.json.error.details.required_scope, 'write');
    });
  });

  describe('isolation', () => {
    const routes = (id: string): [string, string, unknown?][] => [
      ['GET', `${M}/${id}`],
      ['GET', `${M}/${id}/raw`],
      ['GET', `${M}/${id}/attachments/1`],
      ['PATCH', `${M}/${id}`, { flags: { add: ['seen'] } }],
      ['POST', `${M}/${id}/move`, { folder_id: newId() }],
      ['DELETE', `${M}/${id}`],
    ];

    async function expectAll404(token: string, id: string) {
      for (const [method, path, body] of routes(id)) {
        const res = await call(method, path, { token, body });
        assert.equal(res.status, 404, `${method} ${path}: ${res.body}`);
        assert.equal(res.json.error.code, 'NOT_FOUND');
        assert.equal(res.json.error.message, 'message not found');
      }
    }

    test('another user\'s message, another tenant\'s message, an unknown id: the same 404 on every route', async () => {
      await expectAll404(alice.token, bobMessage);
      await expectAll404(alice.token, carolMessage);
      await expectAll404(carol.token, ids.jp);
      await expectAll404(alice.token, newId());
      // Nothing changed on the way.
      assert.equal((await get(`${M}/${bobMessage}`, bob.token)).status, 200);
      assert.equal((await get(`${M}/${ids.jp}`)).json.data.flags.length, 0);
      const listed = await get(`${M}?mailbox_id=${bobBox.id}`);
      assert.equal(listed.status, 404);
      assert.equal((await get(`${M}?mailbox_id=${aliceBox.id}`, carol.token)).status, 404);
      assert.equal((await get(`${M}?folder=${folders.INBOX.id}`, bob.token)).status, 404);
      assert.equal((await get(`${M}?q=${encodeURIComponent('会議')}`, carol.token)).json.data.length, 1, 'carol finds only her own copy');
    });

    test('an admin cannot read a user-owned mailbox, but can read an owner-less shared one', async () => {
      await expectAll404(acme.admin.token, ids.jp);
      assert.equal((await get(`${M}?mailbox_id=${aliceBox.id}`, acme.admin.token)).status, 404);
      const sharedList = await get(`${M}?mailbox_id=${shared.id}`, acme.admin.token);
      assert.equal(sharedList.status, 200, sharedList.body);
      assert.deepEqual(sharedList.json.data.map((m: any) => m.id), [sharedMessage]);
      assert.equal((await get(`${M}/${sharedMessage}`, acme.admin.token)).status, 200);
      // A plain user is no admin of the shared mailbox.
      assert.equal((await get(`${M}/${sharedMessage}`)).status, 404);
      assert.equal((await get(`${M}?mailbox_id=${shared.id}`)).status, 404);
      // The admin has no mailbox of their own: the default needs mailbox_id.
      const none = await get(M, acme.admin.token);
      assert.equal(none.status, 404);
      assert.equal(none.json.error.details.field, 'mailbox_id');
    });
  });

  describe('scale', () => {
    /**
     * The list over 100 000 messages of one mailbox (rows seeded directly, in batches; a few in a
     * second folder, some seen, some tagged, one word in a quarter of them and another in 1 of 1000).
     * Every page of the listing is one range scan of a (mailbox | folder, key, id) index of live
     * entries — checked in the query plan — so the 21st page costs what the first does.
     */
    test('100 000 messages in one mailbox: each page is an index range scan, and fast', async () => {
      const db = api.app.db;
      const s = tenantScope(beta.id);
      const box = await api.app.tenancy.mailboxes.add(s, { address: `bulk@${beta.name}.example` });
      const inbox = (await api.app.mailboxState.findFolder(s, box.id, 'INBOX'))!;
      const archive = (await api.app.mailboxState.findFolder(s, box.id, 'Archive'))!;
      const N = 100_000;
      const BATCH = 1000;
      const dateOf = (i: number) => BASE + Math.floor(i / 3) * 1000; // three arrivals per second: ties
      for (let start = 0; start < N; start += BATCH) {
        const messages: Insertable<DB['messages']>[] = [];
        const entries: Insertable<DB['folder_entries']>[] = [];
        const texts: Insertable<DB['message_text']>[] = [];
        for (let i = start; i < start + BATCH; i++) {
          const id = newId();
          const subject = `Bulk ${i}${i % 4 === 0 ? ' 打ち合わせ' : ''}${i % 1000 === 7 ? ' zebrafish' : ''}`;
          messages.push({
            id, tenant_id: beta.id, blob_key: `msg/2024/01/01/bulk${i}`, size: 1000 + (i % 977), sha256: 'x', message_id_header: null,
            subject, from_addr: `sender${i % 50}@bulk.example`, to_addrs: '["bulk@x"]', cc_addrs: '[]', date_header: null, preview: null,
            has_attachments: 0, attachments_json: '[]', structure_json: null, auth_results: null, spam_score: null, thread_id: null,
            received_at: dateOf(i), created_at: BASE,
          });
          entries.push({
            id: newId(), tenant_id: beta.id, mailbox_id: box.id, folder_id: i % 10 === 5 ? archive.id : inbox.id, message_id: id, uid: i + 1, modseq: i + 1,
            flags_json: i % 10 === 0 ? '["\\\\Seen"]' : '[]', keywords_json: i % 1000 === 0 ? '["rare"]' : '[]',
            internal_date: dateOf(i), size: 1000 + (i % 977), deleted_at: i % 17 === 0 ? BASE : null,
          });
          texts.push({ message_id: id, tenant_id: beta.id, subject, addresses: `sender${i % 50}@bulk.example`, body: `body ${i}` });
        }
        await db.kysely.transaction().execute(async (trx) => {
          await trx.insertInto('messages').values(messages).execute();
          await trx.insertInto('folder_entries').values(entries).execute();
          await trx.insertInto('message_text').values(texts).execute();
        });
      }
      await sql`ANALYZE`.execute(db.kysely);
      const live = (i: number) => i % 17 !== 0;

      // The plan: an index range scan in key order, no sort of the mailbox.
      // (For a folder holding most of the mailbox, the mailbox index serves as well as the folder's.)
      for (const [q, indexes] of [
        [{ mailboxId: box.id }, ['folder_entries_mailbox_date']],
        [{ mailboxId: box.id, folderId: inbox.id, sort: 'date_asc' }, ['folder_entries_folder_date', 'folder_entries_mailbox_date']],
        [{ mailboxId: box.id, folderId: archive.id }, ['folder_entries_folder_date']],
        [{ mailboxId: box.id, sort: 'size' }, ['folder_entries_mailbox_size']],
      ] as const) {
        const compiled = messageListQuery(db, s, { ...q, limit: 50, position: { key: dateOf(N / 2), id: newId() } }).compile();
        const explained = await db.kysely.executeQuery({ ...compiled, sql: `${db.dialect === 'sqlite' ? 'EXPLAIN QUERY PLAN' : 'EXPLAIN'} ${compiled.sql}` });
        const plan = JSON.stringify(explained.rows);
        assert.ok(indexes.some((i) => plan.includes(i)), `${JSON.stringify(q)} should use ${indexes.join(' or ')} (migration 0009): ${plan}`);
        assert.ok(!/TEMP B-TREE FOR ORDER BY|Sort Key/.test(plan), `${JSON.stringify(q)} sorts instead of scanning in order: ${plan}`);
      }

      const timings: Record<string, number> = {};
      /** Median of three runs (the first one warms the caches). */
      const timed = async (name: string, q: Parameters<typeof listMessages>[2]) => {
        let page = await listMessages(db, s, q);
        const runs: number[] = [];
        for (let r = 0; r < 3; r++) {
          const t0 = performance.now();
          page = await listMessages(db, s, q);
          runs.push(performance.now() - t0);
        }
        timings[name] = Math.round(runs.sort((a, b) => a - b)[1]);
        return page;
      };
      const first = await timed('first page', { mailboxId: box.id, limit: 50 });
      assert.equal(first.items.length, 50);
      assert.equal(first.items[0].internalDate, dateOf(N - 1));
      let position = first.next!;
      let walked = 0;
      for (let p = 0; p < 19; p++) {
        const page = await listMessages(db, s, { mailboxId: box.id, limit: 50, position });
        walked += page.items.length;
        position = page.next!;
      }
      const deep = await timed('21st page', { mailboxId: box.id, limit: 50, position });
      assert.equal(walked, 19 * 50);
      const liveIndexes = Array.from({ length: N }, (_, i) => N - 1 - i).filter(live);
      assert.equal(deep.items[0].internalDate, dateOf(liveIndexes[20 * 50]));
      await timed('folder, oldest first', { mailboxId: box.id, folderId: archive.id, sort: 'date_asc', limit: 50 });
      await timed('largest first', { mailboxId: box.id, sort: 'size', limit: 50 });
      await timed('smallest first', { mailboxId: box.id, sort: 'size_asc', limit: 50 });
      const seen = await timed('flag=seen', { mailboxId: box.id, flag: 'seen', limit: 50 });
      assert.ok(seen.items.length === 50 && seen.items.every((m) => m.flags.includes('\\Seen')));
      await timed('flag=unseen', { mailboxId: box.id, flag: 'unseen', limit: 50 });
      const sender = await timed('from', { mailboxId: box.id, from: 'sender7@', limit: 50 });
      assert.ok(sender.items.length === 50 && sender.items.every((m) => m.from === 'sender7@bulk.example'));
      await timed('after', { mailboxId: box.id, after: dateOf(N / 2), limit: 50 });
      const rare = await timed('q, 1 in 1000', { mailboxId: box.id, q: 'zebrafish', limit: 100 });
      assert.equal(rare.items.length, Array.from({ length: N }, (_, i) => i).filter((i) => i % 1000 === 7 && live(i)).length);
      // A rare tag or a word in a quarter of all messages cost a scan: of the mailbox's entries for the
      // tag (keywords are JSON text), of the text index's matches for the word.
      const tag = await timed('scan: tag, 1 in 1000', { mailboxId: box.id, tag: 'rare', limit: 100 });
      assert.equal(tag.items.length, Array.from({ length: N }, (_, i) => i).filter((i) => i % 1000 === 0 && live(i)).length);
      const common3 = await timed('scan: q, 1 in 4, 3+ characters', { mailboxId: box.id, q: '打ち合わせ', limit: 50 });
      assert.ok(common3.items.length === 50 && common3.items.every((m) => m.subject!.endsWith('打ち合わせ')));
      const common2 = await timed('scan: q, 1 in 4, 2 characters', { mailboxId: box.id, q: '打ち', limit: 50 });
      assert.equal(common2.items.length, 50);
      console.log(`message list over ${N} messages (${db.dialect}), median ms: ${JSON.stringify(timings)}`);

      // SPEC §12: API p95 < 200 ms on 2 vCPU; the list query is most of a list request.
      for (const [name, ms] of Object.entries(timings)) {
        const bound = name.startsWith('scan:') ? 600 : 200;
        assert.ok(ms < bound, `${name}: ${ms} ms (bound ${bound} ms): ${JSON.stringify(timings)}`);
      }
    });
  });
});

describe('api: message previews', () => {
  test('list items carry a 256-character snippet, one message its whole stored preview', async () => {
    const api = await startApi();
    try {
      const t = await api.tenant();
      const s = tenantScope(t.id);
      const domain = await api.app.tenancy.domains.add(s, { name: `${t.name}.example` });
      const u = await api.user(t.id);
      const box = await api.app.tenancy.mailboxes.add(s, { address: `long@${domain.name}`, user: u.user.id });
      const inbox = (await api.app.mailboxState.findFolder(s, box.id, 'INBOX'))!;
      const body = '長い本文の見本です。'.repeat(100); // 1 000 characters, 3 000 UTF-8 bytes
      const raw = Buffer.from(`From: a@example.net\r\nTo: long@${domain.name}\r\nSubject: long\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}\r\n`);
      await api.app.mailboxState.append(s, box.id, inbox.id, raw);
      const list = await api.call('GET', '/api/v1/messages', { token: u.token });
      assert.equal(list.status, 200, list.body);
      const item = list.json.data[0];
      assert.equal(Array.from(item.preview as string).length, 256);
      assert.ok(body.startsWith(item.preview));
      const one = await api.call('GET', `/api/v1/messages/${item.id}`, { token: u.token });
      assert.equal(one.status, 200);
      assert.ok(Array.from(one.json.data.preview as string).length > 256, 'the whole stored preview');
      assert.ok(one.json.data.preview.startsWith(item.preview));
    } finally {
      await api.close();
    }
  });
});
