/**
 * Re-indexing and deleting text index rows without scanning the index (migration 0006): in SQLite
 * through the rowid map `message_text_rowid`, in PostgreSQL through message_text's primary key.
 * The behaviour tests run in both shapes; the query-plan test is SQLite's.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sql, type Kysely } from 'kysely';
import { freshDatabase, shape, type TestDatabase } from '../support/shape.js';
import { newId } from '../../src/store/db/database.js';
import type { DB } from '../../src/store/db/types.js';
import { migrateDown, migrateUp } from '../../src/store/db/migrator.js';
import { migrations } from '../../src/store/db/migrations/index.js';
import { tenantScope, type Scope } from '../../src/core/scope.js';
import { deleteTextIndex, searchText, sqliteTextIndexSql, writeTextIndex } from '../../src/core/search/text-index.js';

/** A tenant and messages rows (without text) for index rows to belong to. */
async function createTenant(db: Kysely<DB>): Promise<{ tenantId: string; scope: Scope }> {
  const now = Date.now();
  const tenantId = newId();
  await db
    .insertInto('tenants')
    .values({ id: tenantId, name: `t-${tenantId.slice(0, 8)}`, status: 'active', plan: 'default', limits_json: '{}', legal_hold: 0, retention_days: null, used_bytes: 0, created_at: now, updated_at: now, deleted_at: null })
    .execute();
  return { tenantId, scope: tenantScope(tenantId) };
}

async function addMessages(db: Kysely<DB>, tenantId: string, count: number, receivedAt = 1000): Promise<string[]> {
  const ids = Array.from({ length: count }, () => newId());
  // 100 rows per INSERT: 22 columns each stays far below both dialects' parameter limits.
  for (let i = 0; i < ids.length; i += 100) {
    await db
      .insertInto('messages')
      .values(
        ids.slice(i, i + 100).map((id, j) => ({
          id, tenant_id: tenantId, blob_key: `blob-${id}`, size: 10, sha256: '0'.repeat(64), message_id_header: null, subject: null,
          from_addr: null, to_addrs: null, cc_addrs: null, date_header: null, preview: null, has_attachments: 0, attachments_json: '[]',
          structure_json: null, auth_results: null, spam_score: null, thread_id: null, received_at: receivedAt + i + j, created_at: receivedAt,
        })),
      )
      .execute();
  }
  return ids;
}

async function textRowCount(db: Kysely<DB>, messageIds: string[]): Promise<number> {
  const r = await db.selectFrom('message_text').select((eb) => eb.fn.countAll<number>().as('n')).where('message_id', 'in', messageIds).executeTakeFirstOrThrow();
  return Number(r.n);
}

async function mapRowCount(db: Kysely<DB>, messageIds: string[]): Promise<number> {
  const r = await db.selectFrom('message_text_rowid').select((eb) => eb.fn.countAll<number>().as('n')).where('message_id', 'in', messageIds).executeTakeFirstOrThrow();
  return Number(r.n);
}

async function tableExists(t: TestDatabase, name: string): Promise<boolean> {
  const q =
    t.db.dialect === 'sqlite'
      ? sql<{ n: number }>`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ${name}`
      : sql<{ n: number }>`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ${name}`;
  return Number((await q.execute(t.db.kysely)).rows[0].n) === 1;
}

describe(`text index re-indexing and deletes (${shape})`, () => {
  let t: TestDatabase;
  let k: Kysely<DB>;
  let tenantId: string;
  let scope: Scope;
  const write = (messageId: string, subject: string, body = '') => writeTextIndex(k, t.db.dialect, { messageId, tenantId, subject, addresses: '', body });
  const search = (query: string, limit?: number) => searchText(t.db, scope, { query, limit });

  before(async () => {
    t = await freshDatabase();
    k = t.db.kysely;
    ({ tenantId, scope } = await createTenant(k));
  });
  after(async () => {
    await t?.drop();
  });

  test('writing the same message twice leaves one row: the new text is found once, the old not at all', async () => {
    const [id] = await addMessages(k, tenantId, 1);
    await write(id, 'first draft', 'alphaword');
    await write(id, 'second draft', 'betaword');
    assert.equal(await textRowCount(k, [id]), 1);
    assert.deepEqual(await search('betaword'), [id]);
    assert.deepEqual(await search('second draft'), [id]);
    assert.deepEqual(await search('draft'), [id], 'one result, not one per write');
    assert.deepEqual(await search('alphaword'), [], 'the first text is gone');
    // A third write inside a transaction, as delivery does it.
    await k.transaction().execute((trx) => writeTextIndex(trx, t.db.dialect, { messageId: id, tenantId, subject: 'third draft', addresses: '', body: 'gammaword' }));
    assert.deepEqual(await search('draft'), [id]);
    assert.deepEqual(await search('betaword'), []);

    await deleteTextIndex(k, t.db.dialect, [id]);
    assert.deepEqual(await search('gammaword'), []);
    assert.deepEqual(await search('draft'), []);
    assert.equal(await textRowCount(k, [id]), 0);
    if (t.db.dialect === 'sqlite') assert.equal(await mapRowCount(k, [id]), 0, 'the map entry goes with the row');
  });

  test('deleting many ids (several chunks, repeats and unknown ids) removes exactly those rows', async () => {
    const ids = await addMessages(k, tenantId, 1200, 10_000);
    await k.transaction().execute(async (trx) => {
      for (const [n, id] of ids.entries()) {
        await writeTextIndex(trx, t.db.dialect, { messageId: id, tenantId, subject: `bulk ${String(n).padStart(4, '0')}`, addresses: '', body: 'bulkword' });
      }
    });
    assert.equal(await textRowCount(k, ids), 1200);

    const gone = ids.slice(0, 1100);
    const kept = ids.slice(1100);
    await k.transaction().execute((trx) => deleteTextIndex(trx, t.db.dialect, [...gone, ...gone.slice(0, 50), newId(), newId()]));

    assert.equal(await textRowCount(k, gone), 0);
    assert.equal(await textRowCount(k, kept), 100);
    if (t.db.dialect === 'sqlite') {
      assert.equal(await mapRowCount(k, gone), 0);
      assert.equal(await mapRowCount(k, kept), 100);
    }
    const found = await search('bulkword', 10_000);
    assert.equal(found.length, 100);
    assert.deepEqual(new Set(found), new Set(kept));
    assert.deepEqual(await search('bulk 0001'), [], 'a deleted message');
    assert.deepEqual(await search('bulk 1150'), [ids[1150]], 'a kept message');
    await deleteTextIndex(k, t.db.dialect, kept);
    assert.deepEqual(await search('bulkword'), []);
  });

  test('rows written around writeTextIndex: a direct insert is still deleted, a reused rowid never deletes another message', async () => {
    const [direct, a, b] = await addMessages(k, tenantId, 3, 50_000);
    // Inserted straight into message_text (as some test fixtures do): no map entry in SQLite.
    await k.insertInto('message_text').values({ message_id: direct, tenant_id: tenantId, subject: 'directword', addresses: '', body: '' }).execute();
    assert.deepEqual(await search('directword'), [direct]);
    await deleteTextIndex(k, t.db.dialect, [direct]);
    assert.deepEqual(await search('directword'), []);

    // a's row deleted behind the map's back; b's row may then get a's old rowid (FTS5 hands out
    // max(rowid) + 1). Deleting a must leave b alone.
    await write(a, 'awordx');
    await k.deleteFrom('message_text').where('message_id', '=', a).execute();
    await write(b, 'bwordx');
    if (t.db.dialect === 'sqlite') {
      const rowids = (await sqliteTextIndexSql.findRowids([a, b]).execute(k)).rows.map((r) => r.fts_rowid);
      assert.equal(rowids.length, 2);
      assert.equal(rowids[0], rowids[1], 'precondition: b got the rowid a is still mapped to');
    }
    await deleteTextIndex(k, t.db.dialect, [a]);
    assert.deepEqual(await search('bwordx'), [b]);
    await deleteTextIndex(k, t.db.dialect, [b]);
    assert.deepEqual(await search('bwordx'), []);
  });

  test('a message is found through the index after being written, re-written and its neighbours deleted', async () => {
    // Interleaved writes and deletes: each message keeps exactly its own latest text.
    const ids = await addMessages(k, tenantId, 6, 60_000);
    for (const [n, id] of ids.entries()) await write(id, `mixed ${n} v1`);
    for (const [n, id] of ids.entries()) if (n % 2 === 0) await write(id, `mixed ${n} v2`);
    await deleteTextIndex(k, t.db.dialect, [ids[1], ids[2]]);
    assert.deepEqual(await search('mixed 0 v2'), [ids[0]]);
    assert.deepEqual(await search('mixed 0 v1'), []);
    assert.deepEqual(await search('mixed 2 v'), []);
    assert.deepEqual(await search('mixed 3 v1'), [ids[3]]);
    assert.deepEqual(new Set(await search('mixed')), new Set([ids[0], ids[3], ids[4], ids[5]]));
    await deleteTextIndex(k, t.db.dialect, ids);
    assert.deepEqual(await search('mixed'), []);
  });

  test('SQLite deletes look rows up by key (map primary key, FTS rowid); PostgreSQL keys message_text by message_id', async () => {
    if (t.db.dialect === 'postgres') {
      // No map there: the text table's own primary key is message_id.
      assert.equal(await tableExists(t, 'message_text_rowid'), false);
      const pk = await sql<{ column_name: string }>`
        SELECT kcu.column_name FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema
        WHERE tc.table_schema = current_schema() AND tc.table_name = 'message_text' AND tc.constraint_type = 'PRIMARY KEY'`.execute(k);
      assert.deepEqual(pk.rows.map((r) => r.column_name), ['message_id']);
      return;
    }
    const plan = async (stmt: ReturnType<typeof sqliteTextIndexSql.scanDelete>) =>
      (await sql<{ detail: string }>`EXPLAIN QUERY PLAN ${stmt}`.execute(k)).rows.map((r) => r.detail).join('\n');
    const ids = [newId(), newId()];

    assert.match(await plan(sqliteTextIndexSql.findRowids(ids)), /SEARCH message_text_rowid USING PRIMARY KEY \(message_id=\?\)/);
    assert.match(await plan(sqliteTextIndexSql.forget(ids)), /SEARCH message_text_rowid USING PRIMARY KEY \(message_id=\?\)/);
    // FTS5 reports the constraints it serves after the colon of "INDEX n:"; '=' is a rowid lookup.
    // The scan delete, with nothing after the colon, is the control showing the check can fail.
    const byRowid = await plan(sqliteTextIndexSql.deleteRows([1, 2], ids));
    const scan = await plan(sqliteTextIndexSql.scanDelete(ids));
    assert.match(byRowid, /^SCAN message_text VIRTUAL TABLE INDEX \d+:\S*=/);
    assert.match(scan, /^SCAN message_text VIRTUAL TABLE INDEX \d+:$/);

    // And deleteTextIndex does take the map path: with m's entry deliberately pointing at n's row,
    // nothing is deleted (the message-id check protects n, and m, being mapped, is not scanned for).
    const [m, n] = await addMessages(k, tenantId, 2, 70_000);
    await write(m, 'mwordx');
    await write(n, 'nwordx');
    const nRowid = (await sqliteTextIndexSql.findRowids([n]).execute(k)).rows[0].fts_rowid;
    await k.updateTable('message_text_rowid').set({ fts_rowid: nRowid }).where('message_id', '=', m).execute();
    await deleteTextIndex(k, t.db.dialect, [m]);
    assert.deepEqual(await search('nwordx'), [n]);
    assert.deepEqual(await search('mwordx'), [m], 'a scan would have removed it');
    await deleteTextIndex(k, t.db.dialect, [n]);
    await k.deleteFrom('message_text').where('message_id', '=', m).execute();
  });
});

describe(`migration 0006 backfill (${shape})`, () => {
  let t: TestDatabase;
  const upTo = (version: number) => migrations.filter((m) => m.version <= version);
  after(async () => {
    await t?.drop();
  });

  test('existing rows are mapped, older duplicate copies removed, and rollback drops the map', async () => {
    t = await freshDatabase({ migrate: false });
    const k = t.db.kysely;
    await migrateUp(t.db, upTo(5));
    const { tenantId, scope } = await createTenant(k);
    const [x, y, z] = await addMessages(k, tenantId, 3);
    const insert = (messageId: string, subject: string) => k.insertInto('message_text').values({ message_id: messageId, tenant_id: tenantId, subject, addresses: '', body: '' }).execute();
    await insert(x, 'xold version');
    await insert(y, 'yonly version');
    if (t.db.dialect === 'sqlite') await insert(x, 'xnew version'); // the old writeTextIndex appended in SQLite
    else await k.updateTable('message_text').set({ subject: 'xnew version' }).where('message_id', '=', x).execute();

    await migrateUp(t.db, upTo(6));
    const search = (query: string) => searchText(t.db, scope, { query });
    assert.equal(await textRowCount(k, [x, y]), 2);
    assert.deepEqual(await search('xnew'), [x]);
    assert.deepEqual(await search('xold'), [], 'the older copy of x is gone');
    assert.deepEqual(await search('yonly'), [y]);

    if (t.db.dialect === 'sqlite') {
      const map = (await sqliteTextIndexSql.findRowids([x, y]).execute(k)).rows;
      assert.equal(map.length, 2);
      for (const entry of map) {
        const row = await sql<{ message_id: string }>`SELECT message_id FROM message_text WHERE rowid = ${entry.fts_rowid}`.execute(k);
        assert.deepEqual(row.rows, [{ message_id: entry.message_id }], 'each entry points at its own message’s row');
      }
    } else {
      assert.equal(await tableExists(t, 'message_text_rowid'), false);
    }

    // Backfilled rows behave like written ones.
    await writeTextIndex(k, t.db.dialect, { messageId: x, tenantId, subject: 'xthird version', addresses: '', body: '' });
    await writeTextIndex(k, t.db.dialect, { messageId: z, tenantId, subject: 'zfresh version', addresses: '', body: '' });
    assert.deepEqual(await search('version'), [z, y, x], 'newest first, each once');
    assert.deepEqual(await search('xnew'), []);
    await deleteTextIndex(k, t.db.dialect, [x, y]);
    assert.deepEqual(await search('version'), [z]);

    const rolledBack = await migrateDown(t.db, upTo(6));
    assert.equal(rolledBack?.version, 6);
    assert.equal(await tableExists(t, 'message_text_rowid'), false);
    assert.deepEqual(await search('zfresh'), [z], 'the text index itself is untouched');
  });
});
