/**
 * The text index behind substring search (SPEC §4 "Search", §5.3 SEARCH with CHARSET UTF-8):
 * table `message_text`, an FTS5 trigram table in SQLite and a pg_trgm-indexed table in PostgreSQL
 * (migration 0001). Trigrams need no word segmentation, so Japanese is searchable like any text.
 *
 * Matching is a case-insensitive substring match, as IMAP SEARCH requires (RFC 9051 §6.4.4):
 *  - SQLite, query of ≥ 3 characters: FTS5 MATCH with the query as one quoted string (a phrase of
 *    trigrams); shorter queries: LIKE '%…%' over the columns (ASCII case folding only, SQLite's LIKE);
 *  - PostgreSQL: ILIKE '%…%' (the trigram GIN indexes serve patterns of ≥ 3 characters).
 * Every search is tenant-scoped; mailbox and folder filters only see entries that are not expunged.
 *
 * Writes and deletes find a message's row by its primary key in PostgreSQL and, in SQLite, through
 * the rowid map `message_text_rowid` (migration 0006), so neither scans the index.
 */
import { sql, type Expression, type Insertable, type Kysely, type SqlBool } from 'kysely';
import { inScope, type Scope } from '../scope.js';
import type { Database, Dialect } from '../../store/db/database.js';
import type { DB } from '../../store/db/types.js';
import type { MessageMeta } from '../../mail/extract.js';
import { BODY_TEXT_MAX_BYTES } from '../../mail/extract.js';
import { cutUtf8 } from '../../mail/preview.js';
import { ftsPhrase, likeContains, MAX_SEARCH_LIMIT, TRIGRAM_MIN_CHARS, validateSearch, type SearchField } from './query.js';

export interface TextIndexRow {
  messageId: string;
  tenantId: string;
  subject: string;
  addresses: string;
  body: string;
}

export interface TextSearch {
  query: string;
  field?: SearchField;
  mailboxId?: string;
  folderId?: string;
  /** Default 1000, at most 10 000. */
  limit?: number;
}

/** Ids per DELETE statement: far below SQLite's and PostgreSQL's bound-parameter limits. */
const DELETE_CHUNK = 500;

/** NUL cannot be stored in PostgreSQL text; dropping it in both dialects keeps results identical. */
const withoutNul = (s: string) => (s.includes('\u0000') ? s.replaceAll('\u0000', '') : s);

/** The index row for a message from its extracted metadata (addresses: From, To, Cc, one per line). */
export function textIndexRowFromMeta(messageId: string, tenantId: string, meta: MessageMeta): TextIndexRow {
  const addresses = [meta.from, ...meta.to, ...meta.cc].filter((a): a is string => !!a);
  return { messageId, tenantId, subject: meta.subject ?? '', addresses: addresses.join('\n'), body: meta.bodyText };
}

/**
 * Indexes a message, replacing its previous index row if it has one. Call it in the transaction
 * that stores the message: in SQLite it runs several statements, and only a transaction makes them
 * one change (interrupted outside one, it could leave the message unindexed or an old row unmapped).
 *
 * PostgreSQL: an upsert on the message id (the primary key). SQLite: FTS5 cannot look a row up by
 * the UNINDEXED message_id, only by rowid, so the rowid of each message's row is kept in
 * `message_text_rowid` (migration 0006): drop the old row by rowid, insert the new one, record its
 * rowid — two B-tree lookups instead of a scan of every indexed message.
 */
export async function writeTextIndex(trx: Kysely<DB>, dialect: Dialect, row: TextIndexRow): Promise<void> {
  const values = {
    message_id: row.messageId,
    tenant_id: row.tenantId,
    subject: withoutNul(row.subject),
    addresses: withoutNul(row.addresses),
    body: cutUtf8(withoutNul(row.body), BODY_TEXT_MAX_BYTES),
  };
  if (dialect === 'postgres') {
    await trx
      .insertInto('message_text')
      .values(values)
      .onConflict((oc) =>
        oc.column('message_id').doUpdateSet((eb) => ({
          tenant_id: eb.ref('excluded.tenant_id'),
          subject: eb.ref('excluded.subject'),
          addresses: eb.ref('excluded.addresses'),
          body: eb.ref('excluded.body'),
        })),
      )
      .execute();
    return;
  }
  await writeSqlite(trx, values);
}

async function writeSqlite(db: Kysely<DB>, values: Insertable<DB['message_text']>): Promise<void> {
  const messageId = values.message_id;
  const [old] = (await sqliteTextIndexSql.findRowids([messageId]).execute(db)).rows;
  if (old) await sqliteTextIndexSql.deleteRows([old.fts_rowid], [messageId]).execute(db);
  // The rowid comes from the insert result (sqlite3_last_insert_rowid): `RETURNING rowid` reports
  // -1 for a virtual table.
  const inserted = await db.insertInto('message_text').values(values).executeTakeFirstOrThrow();
  if (inserted.insertId === undefined) throw new Error(`SQLite reported no rowid for the text index row of message ${messageId}`);
  const ftsRowid = Number(inserted.insertId);
  await db
    .insertInto('message_text_rowid')
    .values({ message_id: messageId, fts_rowid: ftsRowid })
    .onConflict((oc) => oc.column('message_id').doUpdateSet({ fts_rowid: ftsRowid }))
    .execute();
}

/**
 * Removes the index rows of the given messages (purge), in chunks of 500 ids; call it in the
 * transaction that deletes the messages.
 *
 * PostgreSQL deletes by primary key. SQLite finds the rowids in `message_text_rowid` and deletes
 * by rowid: O(log n) per message. An id with no map entry — a row inserted into message_text
 * directly rather than through `writeTextIndex` — is still removed, by one scan of the FTS table
 * per chunk; `writeTextIndex` maps every row it writes, so stored messages never take that path.
 */
export async function deleteTextIndex(trx: Kysely<DB>, dialect: Dialect, messageIds: string[]): Promise<void> {
  const unique = [...new Set(messageIds)];
  if (unique.length === 0) return;
  if (dialect === 'postgres') {
    for (let i = 0; i < unique.length; i += DELETE_CHUNK) {
      await trx.deleteFrom('message_text').where('message_id', 'in', unique.slice(i, i + DELETE_CHUNK)).execute();
    }
    return;
  }
  for (let i = 0; i < unique.length; i += DELETE_CHUNK) await deleteSqliteChunk(trx, unique.slice(i, i + DELETE_CHUNK));
}

async function deleteSqliteChunk(db: Kysely<DB>, messageIds: string[]): Promise<void> {
  const mapped = (await sqliteTextIndexSql.findRowids(messageIds).execute(db)).rows;
  if (mapped.length > 0) {
    const mappedIds = mapped.map((m) => m.message_id);
    await sqliteTextIndexSql.deleteRows(mapped.map((m) => m.fts_rowid), mappedIds).execute(db);
    await sqliteTextIndexSql.forget(mappedIds).execute(db);
  }
  const known = new Set(mapped.map((m) => m.message_id));
  const unmapped = messageIds.filter((id) => !known.has(id));
  if (unmapped.length > 0) await sqliteTextIndexSql.scanDelete(unmapped).execute(db);
}

/**
 * The SQLite statements behind `writeTextIndex` and `deleteTextIndex`, exported so that a test can
 * check their query plans (a map lookup by primary key, an FTS5 lookup by rowid).
 */
export const sqliteTextIndexSql = {
  /** Rowids of the messages' FTS rows: a primary-key search of the map. */
  findRowids: (messageIds: string[]) =>
    sql<{ message_id: string; fts_rowid: number }>`SELECT message_id, fts_rowid FROM message_text_rowid WHERE message_id IN (${sql.join(messageIds)})`,
  /**
   * FTS rows by rowid. The message id is checked as well: should a row have been deleted behind
   * the map's back and its rowid reused (FTS5 hands out max(rowid) + 1), another message's row must
   * not go with it.
   */
  deleteRows: (rowids: number[], messageIds: string[]) =>
    sql`DELETE FROM message_text WHERE rowid IN (${sql.join(rowids)}) AND message_id IN (${sql.join(messageIds)})`,
  /** Map entries of deleted rows. */
  forget: (messageIds: string[]) => sql`DELETE FROM message_text_rowid WHERE message_id IN (${sql.join(messageIds)})`,
  /** The slow path, for rows the map does not know: reads every row of the FTS table. */
  scanDelete: (messageIds: string[]) => sql`DELETE FROM message_text WHERE message_id IN (${sql.join(messageIds)})`,
};

const FIELD_COLUMNS: Record<SearchField, readonly ('subject' | 'addresses' | 'body')[]> = {
  any: ['subject', 'addresses', 'body'],
  subject: ['subject'],
  addresses: ['addresses'],
  body: ['body'],
};

function textCondition(dialect: Dialect, field: SearchField, query: string, chars: number): Expression<SqlBool> {
  const columns = FIELD_COLUMNS[field];
  if (dialect === 'sqlite' && chars >= TRIGRAM_MIN_CHARS) {
    // `t.message_text` is FTS5's hidden column named after the table: MATCH over every indexed
    // column (message_id and tenant_id are UNINDEXED, so never matched).
    const target = field === 'any' ? sql.ref('t.message_text') : sql.ref(`t.${field}`);
    return sql<SqlBool>`${target} MATCH ${ftsPhrase(query)}`;
  }
  const pattern = likeContains(query);
  const op = dialect === 'postgres' ? sql.raw('ILIKE') : sql.raw('LIKE');
  const tests = columns.map((c) => sql`${sql.ref(`t.${c}`)} ${op} ${pattern} ESCAPE '\\'`);
  return sql<SqlBool>`(${sql.join(tests, sql` OR `)})`;
}

/**
 * Message ids whose subject/addresses/body contain `q.query`, newest first (by received_at), each
 * once. `mailboxId`/`folderId` restrict to messages with a live (not expunged) entry there.
 * Throws SearchQueryError for a query over 1000 characters, an unknown field or a bad limit.
 */
export async function searchText(db: Database, scope: Scope, q: TextSearch): Promise<string[]> {
  const { limit } = validateSearch(q);
  return (await searchPage(db, scope, q, limit, null)).map((r) => r.message_id);
}

/**
 * Every match, read in pages of 10 000 with a keyset on (received_at, id) — for IMAP SEARCH, whose
 * answer must be exact however many messages match (RFC 9051 §6.4.4). Stops at `cap` ids.
 */
export async function searchTextAll(
  db: Database,
  scope: Scope,
  q: Omit<TextSearch, 'limit'>,
  cap = 1_000_000,
  pageSize = MAX_SEARCH_LIMIT,
  hints: { folderSize?: number } = {},
): Promise<string[]> {
  const field = q.field ?? 'any';
  if (q.folderId !== undefined && hints.folderSize !== undefined && hints.folderSize <= FOLDER_SCAN_MAX && (field === 'subject' || field === 'addresses')) {
    return (await scanFolder(db, scope, { ...q, folderId: q.folderId, field })).slice(0, cap);
  }
  const out: string[] = [];
  let after: { received_at: number; message_id: string } | null = null;
  for (;;) {
    const page = await searchPage(db, scope, q, pageSize, after);
    for (const r of page) out.push(r.message_id);
    if (page.length < pageSize || out.length >= cap) return out.slice(0, cap);
    after = page[page.length - 1];
  }
}

/**
 * Folders up to this many entries are searched by reading their rows, not through the index: the
 * trigram index answers for the whole tenant and each hit must then be checked against the folder,
 * which costs more than reading a small folder's subjects (10 ms vs 2 ms for 500 of 10 000).
 */
export const FOLDER_SCAN_MAX = 5000;

/**
 * The messages of one folder whose subject (or addresses) contain `query`: the folder's live
 * entries joined to their index rows (SQLite: through the rowid map, migration 0006), matched with
 * LIKE (SQLite, ASCII case folding) or ILIKE (PostgreSQL) — the same comparison `searchText` uses
 * for short queries.
 */
async function scanFolder(db: Database, scope: Scope, q: { query: string; folderId: string; field: 'subject' | 'addresses' }): Promise<string[]> {
  const { query } = validateSearch({ ...q, limit: 1 });
  if (query.includes('\u0000')) return [];
  const column = sql.ref(`t.${q.field}`);
  const tenant = scope.kind === 'tenant' ? sql`AND fe.tenant_id = ${scope.tenantId}` : sql``;
  const join =
    db.dialect === 'postgres'
      ? sql`JOIN message_text t ON t.message_id = fe.message_id`
      : sql`JOIN message_text_rowid r ON r.message_id = fe.message_id JOIN message_text t ON t.rowid = r.fts_rowid`;
  const op = db.dialect === 'postgres' ? sql.raw('ILIKE') : sql.raw('LIKE');
  const rows = await sql<{ message_id: string }>`
    SELECT DISTINCT fe.message_id FROM folder_entries fe ${join}
    WHERE fe.folder_id = ${q.folderId} AND fe.deleted_at IS NULL ${tenant}
      AND ${column} ${op} ${likeContains(query)} ESCAPE '\\'`.execute(db.kysely);
  return rows.rows.map((r) => r.message_id);
}

async function searchPage(
  db: Database,
  scope: Scope,
  q: TextSearch,
  limit: number,
  after: { received_at: number; message_id: string } | null,
): Promise<{ message_id: string; received_at: number }[]> {
  const { query, field, chars } = validateSearch({ ...q, limit });
  // Stored text never holds NUL (see writeTextIndex), so a query with one matches nothing.
  if (query.includes('\u0000')) return [];

  let select = db.kysely
    .selectFrom('message_text as t')
    .innerJoin('messages as m', 'm.id', 't.message_id')
    .select(['t.message_id', 'm.received_at'])
    .distinct()
    .where(inScope(scope, 't.tenant_id'))
    .where(() => textCondition(db.dialect, field, query, chars));

  if (q.mailboxId !== undefined || q.folderId !== undefined) {
    const { mailboxId, folderId } = q;
    select = select.where((eb) =>
      eb.exists(
        eb
          .selectFrom('folder_entries as fe')
          .select(sql.lit(1).as('one'))
          .whereRef('fe.message_id', '=', 't.message_id')
          .where('fe.deleted_at', 'is', null)
          .where(inScope(scope, 'fe.tenant_id'))
          .$if(mailboxId !== undefined, (qb) => qb.where('fe.mailbox_id', '=', mailboxId!))
          .$if(folderId !== undefined, (qb) => qb.where('fe.folder_id', '=', folderId!)),
      ),
    );
  }
  if (after) {
    // Newest first, ties by id ascending: the next page starts right after the last row seen.
    const a = after;
    select = select.where((eb) =>
      eb.or([eb('m.received_at', '<', a.received_at), eb.and([eb('m.received_at', '=', a.received_at), eb('t.message_id', '>', a.message_id)])]),
    );
  }
  const rows = await select.orderBy('m.received_at', 'desc').orderBy('t.message_id').limit(limit).execute();
  return rows.map((r) => ({ message_id: r.message_id, received_at: Number(r.received_at) }));
}
