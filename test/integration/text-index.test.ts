/**
 * Text index and substring search (SPEC §4 "Search", §5.3) against the current shape: SQLite FTS5
 * trigram + LIKE fallback, or PostgreSQL pg_trgm + ILIKE.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { freshDatabase, shape, type TestDatabase } from '../support/shape.js';
import { newId } from '../../src/store/db/database.js';
import { systemScope, tenantScope, type Scope } from '../../src/core/scope.js';
import { deleteTextIndex, searchText, searchTextAll, textIndexRowFromMeta, writeTextIndex, type TextIndexRow, type TextSearch } from '../../src/core/search/text-index.js';
import { SearchQueryError, MAX_SEARCH_QUERY_CHARS, ftsPhrase, likeContains } from '../../src/core/search/query.js';
import { extractMessageMeta } from '../../src/mail/extract.js';

interface TenantFixture {
  tenantId: string;
  scope: Scope;
  mailboxId: string;
  inbox: string;
  archive: string;
}

let t: TestDatabase;
let A: TenantFixture;
let B: TenantFixture;
/** message ids by short name */
const ids: Record<string, string> = {};
let uid = 1;

async function createTenant(name: string): Promise<TenantFixture> {
  const k = t.db.kysely;
  const now = Date.now();
  const tenantId = newId();
  await k.insertInto('tenants').values({ id: tenantId, name, status: 'active', plan: 'default', limits_json: '{}', legal_hold: 0, retention_days: null, used_bytes: 0, created_at: now, updated_at: now, deleted_at: null }).execute();
  const domainId = newId();
  await k.insertInto('domains').values({ id: domainId, tenant_id: tenantId, name: `${name}.example`, status: 'active', catch_all_mailbox_id: null, created_at: now, updated_at: now }).execute();
  const mailboxId = newId();
  await k
    .insertInto('mailboxes')
    .values({ id: mailboxId, tenant_id: tenantId, domain_id: domainId, user_id: null, address: `user@${name}.example`, local_part: 'user', quota_bytes: 0, used_bytes: 0, legal_hold: 0, status: 'active', created_at: now, updated_at: now })
    .execute();
  const folder = async (folderName: string) => {
    const id = newId();
    await k
      .insertInto('folders')
      .values({ id, tenant_id: tenantId, mailbox_id: mailboxId, name: folderName, special_use: null, uid_validity: 1, uid_next: 1, highest_modseq: 1, subscribed: 1, created_at: now })
      .execute();
    return id;
  };
  return { tenantId, scope: tenantScope(tenantId), mailboxId, inbox: await folder('INBOX'), archive: await folder('Archive') };
}

/** Stores a message row, its text index row, and folder entries ([folderId, deleted?]). */
async function addMessage(
  name: string,
  owner: TenantFixture,
  receivedAt: number,
  text: Omit<TextIndexRow, 'messageId' | 'tenantId'>,
  entries: [string, boolean][],
): Promise<void> {
  const id = newId();
  ids[name] = id;
  await t.db.kysely.transaction().execute(async (trx) => {
    await trx
      .insertInto('messages')
      .values({
        id, tenant_id: owner.tenantId, blob_key: `blob-${id}`, size: 100, sha256: '0'.repeat(64), message_id_header: null, subject: text.subject.replaceAll('\u0000', ''),
        from_addr: null, to_addrs: null, cc_addrs: null, date_header: null, preview: null, has_attachments: 0, attachments_json: '[]',
        structure_json: null, auth_results: null, spam_score: null, thread_id: null, received_at: receivedAt, created_at: receivedAt,
      })
      .execute();
    await writeTextIndex(trx, t.db.dialect, { ...text, messageId: id, tenantId: owner.tenantId });
    for (const [folderId, deleted] of entries) {
      await trx
        .insertInto('folder_entries')
        .values({
          id: newId(), tenant_id: owner.tenantId, mailbox_id: owner.mailboxId, folder_id: folderId, message_id: id, uid: uid++, modseq: 1,
          flags_json: '[]', keywords_json: '[]', internal_date: receivedAt, size: 100, deleted_at: deleted ? receivedAt + 1 : null,
        })
        .execute();
    }
  });
}

const search = (scope: Scope, q: TextSearch) => searchText(t.db, scope, q);
/** Short names of the found messages, in result order. */
async function found(scope: Scope, q: TextSearch): Promise<string[]> {
  const byId = new Map(Object.entries(ids).map(([n, id]) => [id, n]));
  return (await search(scope, q)).map((id) => byId.get(id) ?? `unknown:${id}`);
}

describe(`text index (${shape})`, () => {
  before(async () => {
    t = await freshDatabase();
    A = await createTenant('tenant-a');
    B = await createTenant('tenant-b');
    await addMessage('a1', A, 1000, { subject: '会議の議事録', addresses: '山田 太郎 <yamada@example.jp>', body: '本日の会議について報告します。' }, [[A.inbox, false]]);
    await addMessage(
      'a2', A, 2000,
      { subject: 'Quarterly REPORT', addresses: 'Finance <finance@example.com>', body: 'Revenue grew by 50% (fifty_percent) "quoted" * star OR NEAR( x' },
      [[A.inbox, false], [A.archive, true]],
    );
    await addMessage('a3', A, 3000, { subject: '見積書', addresses: 'sales@example.jp', body: '会議室の予約 100%_done C:\\path' }, [[A.archive, false]]);
    await addMessage('a4', A, 500, { subject: 'Team lunch 🍣', addresses: 'alice@example.com', body: 'sushi' }, []);
    await addMessage('b1', B, 1500, { subject: '会議の議事録', addresses: '山田 太郎 <yamada@example.jp>', body: '別テナントの会議です。' }, [[B.inbox, false]]);
  });
  after(async () => {
    await t?.drop();
  });

  test('Japanese substrings of 3+ characters match in subject and body', async () => {
    assert.deepEqual(await found(A.scope, { query: '議事録', field: 'subject' }), ['a1']);
    assert.deepEqual(await found(A.scope, { query: '会議の議事録' }), ['a1']);
    assert.deepEqual(await found(A.scope, { query: '会議室', field: 'body' }), ['a3']);
    assert.deepEqual(await found(A.scope, { query: '議事録', field: 'body' }), []);
    assert.deepEqual(await found(A.scope, { query: '山田 太郎', field: 'addresses' }), ['a1']);
  });

  test('Japanese substrings of 1 and 2 characters match (LIKE fallback in SQLite)', async () => {
    assert.deepEqual(await found(A.scope, { query: '会議' }), ['a3', 'a1'], 'newest first');
    assert.deepEqual(await found(A.scope, { query: '会議', field: 'subject' }), ['a1']);
    assert.deepEqual(await found(A.scope, { query: '会議', field: 'body' }), ['a3', 'a1']);
    assert.deepEqual(await found(A.scope, { query: '録', field: 'subject' }), ['a1']);
    assert.deepEqual(await found(A.scope, { query: '山田', field: 'addresses' }), ['a1']);
    assert.deepEqual(await found(A.scope, { query: '🍣' }), ['a4'], 'one astral character');
    assert.deepEqual(await found(A.scope, { query: '無' }), []);
  });

  test('ASCII matching is case-insensitive for short and long queries', async () => {
    assert.deepEqual(await found(A.scope, { query: 'quarterly report' }), ['a2']);
    assert.deepEqual(await found(A.scope, { query: 'rEpOrT', field: 'subject' }), ['a2']);
    assert.deepEqual(await found(A.scope, { query: 'qU', field: 'subject' }), ['a2']);
    assert.deepEqual(await found(A.scope, { query: 'FINANCE@EXAMPLE', field: 'addresses' }), ['a2']);
    assert.deepEqual(await found(A.scope, { query: 'SUSHI', field: 'subject' }), [], 'field restriction holds');
  });

  test('FTS and LIKE metacharacters are literal and never error', async () => {
    const cases: [string, string[]][] = [
      ['%', ['a3', 'a2']],
      ['_', ['a3', 'a2']],
      ['%_', ['a3']],
      ['100%_d', ['a3']],
      ['50%', ['a2']],
      ['"', ['a2']],
      ['"quoted"', ['a2']],
      ['*', ['a2']],
      ['* star', ['a2']],
      ['OR', ['a2']],
      ['NEAR(', ['a2']],
      ['NEAR( x', ['a2']],
      ['\\', ['a3']],
      ['\\p', ['a3']],
      [':\\pa', ['a3']],
      ['x%y', []],
      ['a_b', []],
      ['report OR sushi', []],
      ['sush*', []],
      ['""', []],
      ['NEAR(a b)', []],
      ['{subject}: x', []],
      ["'; DROP TABLE message_text; --", []],
    ];
    for (const [query, expected] of cases) {
      assert.deepEqual(await found(A.scope, { query }), expected, `query ${JSON.stringify(query)}`);
    }
    // The table is still there and intact.
    assert.deepEqual(await found(A.scope, { query: '議事録' }), ['a1']);
  });

  test('a tenant never sees another tenant’s messages', async () => {
    assert.deepEqual(await found(B.scope, { query: '議事録' }), ['b1']);
    assert.deepEqual(await found(B.scope, { query: '会議' }), ['b1']);
    assert.deepEqual(await found(B.scope, { query: 'Quarterly' }), []);
    assert.deepEqual(await found(B.scope, { query: '%' }), []);
    assert.deepEqual(await found(B.scope, { query: '' }), ['b1']);
    // B's scope with A's folder or mailbox finds nothing, even for text A's messages contain.
    assert.deepEqual(await found(B.scope, { query: '会議', folderId: A.archive }), []);
    assert.deepEqual(await found(B.scope, { query: '会議', mailboxId: A.mailboxId }), []);
    // The system scope sees both tenants.
    assert.deepEqual(await found(systemScope, { query: '議事録' }), ['b1', 'a1']);
  });

  test('folder and mailbox filters honour deleted_at', async () => {
    assert.deepEqual(await found(A.scope, { query: 'Quarterly', folderId: A.inbox }), ['a2']);
    assert.deepEqual(await found(A.scope, { query: 'Quarterly', folderId: A.archive }), [], 'expunged entry is invisible');
    assert.deepEqual(await found(A.scope, { query: '会議', folderId: A.archive }), ['a3']);
    assert.deepEqual(await found(A.scope, { query: '会議', folderId: A.inbox }), ['a1']);
    assert.deepEqual(await found(A.scope, { query: '会議', mailboxId: A.mailboxId }), ['a3', 'a1']);
    assert.deepEqual(await found(A.scope, { query: '会議', mailboxId: A.mailboxId, folderId: A.inbox }), ['a1']);
    assert.deepEqual(await found(A.scope, { query: 'sushi', mailboxId: A.mailboxId }), [], 'a message in no folder');
  });

  test('empty query matches every message in scope; limit truncates newest first', async () => {
    assert.deepEqual(await found(A.scope, { query: '' }), ['a3', 'a2', 'a1', 'a4']);
    assert.deepEqual(await found(A.scope, { query: '会議', limit: 1 }), ['a3']);
  });

  test('searchTextAll pages by (received_at, id) and returns every match exactly once', async () => {
    // Two more messages received at the same moment as a1, so a page boundary falls inside a tie.
    await addMessage('t1', A, 1000, { subject: 'tie one', addresses: 'x@example.com', body: 'paging' }, [[A.inbox, false]]);
    await addMessage('t2', A, 1000, { subject: 'tie two', addresses: 'y@example.com', body: 'paging' }, [[A.inbox, false]]);
    const byId = new Map(Object.entries(ids).map(([n, id]) => [id, n]));
    const names = async (pageSize: number, cap?: number) =>
      (await searchTextAll(t.db, A.scope, { query: '' }, cap, pageSize)).map((id) => byId.get(id));
    const all = await names(10_000);
    assert.equal(all.length, 6);
    for (const size of [1, 2, 3, 5]) assert.deepEqual(await names(size), all, `page size ${size}`);
    assert.deepEqual(await names(2, 3), all.slice(0, 3), 'the cap stops paging');
    assert.deepEqual((await searchTextAll(t.db, A.scope, { query: 'paging', folderId: A.inbox }, undefined, 1)).map((id) => byId.get(id)).sort(), ['t1', 't2']);
    await t.db.kysely.deleteFrom('folder_entries').where('message_id', 'in', [ids.t1, ids.t2]).execute();
    await deleteTextIndex(t.db.kysely, t.db.dialect, [ids.t1, ids.t2]);
    await t.db.kysely.deleteFrom('messages').where('id', 'in', [ids.t1, ids.t2]).execute();
    delete ids.t1;
    delete ids.t2;
  });

  test('a small folder is searched by reading its rows, with the same answers as the index', async () => {
    const byId = new Map(Object.entries(ids).map(([n, id]) => [id, n]));
    const names = async (folderSize: number | undefined, query: string, field: 'subject' | 'addresses', folderId: string, scope = A.scope) =>
      (await searchTextAll(t.db, scope, { query, field, folderId }, undefined, undefined, { folderSize })).map((id) => byId.get(id)).sort();
    const cases: [string, 'subject' | 'addresses', string][] = [
      ['会議', 'subject', A.inbox], ['議事録', 'subject', A.inbox], ['report', 'subject', A.inbox], ['REPORT', 'subject', A.archive],
      ['yamada', 'addresses', A.inbox], ['FINANCE@', 'addresses', A.inbox], ['見積', 'subject', A.archive], ['%', 'subject', A.inbox],
    ];
    for (const [query, field, folder] of cases) {
      const viaIndex = await names(undefined, query, field, folder);
      assert.deepEqual(await names(10, query, field, folder), viaIndex, `${field} ${query}`);
    }
    assert.deepEqual(await names(10, 'report', 'subject', A.archive), [], 'the expunged archive entry of a2 is not found');
    assert.deepEqual(await names(10, '会議', 'subject', A.inbox), ['a1']);
    assert.deepEqual(await names(10, '会議', 'subject', A.inbox, B.scope), [], 'another tenant finds nothing in this folder');
  });

  test('limits give clear errors', async () => {
    const long = 'あ'.repeat(MAX_SEARCH_QUERY_CHARS + 1);
    await assert.rejects(search(A.scope, { query: long }), (err: unknown) => {
      assert.ok(err instanceof SearchQueryError);
      assert.equal(err.code, 'SEARCH_QUERY_TOO_LONG');
      assert.match(err.message, /1001 characters; the limit is 1000/);
      return true;
    });
    assert.deepEqual(await search(A.scope, { query: 'あ'.repeat(MAX_SEARCH_QUERY_CHARS) }), [], 'exactly the limit is accepted');
    await assert.rejects(search(A.scope, { query: 'x', limit: 0 }), { code: 'SEARCH_LIMIT_INVALID' });
    await assert.rejects(search(A.scope, { query: 'x', limit: 10_001 }), { code: 'SEARCH_LIMIT_INVALID' });
    await assert.rejects(search(A.scope, { query: 'x', field: 'date' as never }), { code: 'SEARCH_FIELD_INVALID' });
  });

  test('NUL is dropped from stored text and a NUL query matches nothing', async () => {
    await addMessage('nul', A, 4000, { subject: 'zero\u0000byte', addresses: '', body: '' }, []);
    assert.deepEqual(await found(A.scope, { query: 'zerobyte' }), ['nul']);
    assert.deepEqual(await found(A.scope, { query: 'zero\u0000' }), []);
    await deleteTextIndex(t.db.kysely, t.db.dialect, [ids.nul]);
    assert.deepEqual(await found(A.scope, { query: 'zerobyte' }), []);
  });

  test('writing the same message twice returns it once', async () => {
    const row = { messageId: ids.a4, tenantId: A.tenantId, subject: 'Team lunch 🍣', addresses: 'alice@example.com', body: 'sushi again' };
    await writeTextIndex(t.db.kysely, t.db.dialect, row);
    assert.deepEqual(await found(A.scope, { query: 'Team lunch' }), ['a4']);
    assert.deepEqual(await found(A.scope, { query: 'sushi again' }), ['a4']);
  });

  test('an extracted ISO-2022-JP message is searchable by its decoded text', async () => {
    const meta = await extractMessageMeta(readFileSync(new URL('../fixtures/mail/iso2022jp-b-subject.eml', import.meta.url)));
    await addMessage('eml', A, 5000, textIndexRowFromMeta('ignored', 'ignored', meta), [[A.inbox, false]]);
    assert.deepEqual(await found(A.scope, { query: '会議の議事録', field: 'subject', folderId: A.inbox }), ['eml', 'a1']);
    assert.deepEqual(await found(A.scope, { query: '佐藤', field: 'addresses' }), ['eml']);
    assert.deepEqual(await found(A.scope, { query: '①次回', field: 'body' }), ['eml']);
  });

  test('deleteTextIndex removes the rows of the given messages only', async () => {
    await deleteTextIndex(t.db.kysely, t.db.dialect, [ids.a1, ids.a3, ids.a1, newId()]);
    assert.deepEqual(await found(A.scope, { query: '会議', field: 'body' }), ['eml']);
    assert.deepEqual(await found(systemScope, { query: '議事録', field: 'subject' }), ['eml', 'b1']);
    assert.deepEqual(await found(A.scope, { query: 'Quarterly' }), ['a2']);
    await deleteTextIndex(t.db.kysely, t.db.dialect, []);
    const left = await t.db.kysely.selectFrom('message_text').select('message_id').where('message_id', 'in', [ids.a1, ids.a3]).execute();
    assert.equal(left.length, 0);
  });

  test('quoting helpers produce literal FTS strings and LIKE patterns', () => {
    assert.equal(ftsPhrase('a "b" c'), '"a ""b"" c"');
    assert.equal(likeContains('50%_\\x'), '%50\\%\\_\\\\x%');
  });
});
