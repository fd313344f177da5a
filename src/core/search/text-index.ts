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
 */
import { sql, type Expression, type Kysely, type SqlBool } from 'kysely';
import { inScope, type Scope } from '../scope.js';
import type { Database, Dialect } from '../../store/db/database.js';
import type { DB } from '../../store/db/types.js';
import type { MessageMeta } from '../../mail/extract.js';
import { BODY_TEXT_MAX_BYTES } from '../../mail/extract.js';
import { cutUtf8 } from '../../mail/preview.js';
import { ftsPhrase, likeContains, TRIGRAM_MIN_CHARS, validateSearch, type SearchField } from './query.js';

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
 * Indexes a newly stored message; call it in the transaction that stores the message.
 *
 * PostgreSQL replaces an existing row (upsert on the message id). SQLite's FTS5 table cannot be
 * looked up by message id without a full scan (the column is UNINDEXED), so there a row is only
 * added: write each message once, and call `deleteTextIndex` first to re-index one. A repeated
 * write costs space only — `searchText` returns each message once and `deleteTextIndex` removes
 * every copy.
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
  } else {
    await trx.insertInto('message_text').values(values).execute();
  }
}

/**
 * Removes the index rows of the given messages (purge). In SQLite each chunk of 500 ids scans the
 * FTS table once, since message_id is an UNINDEXED column; purge runs in the background, in batches.
 */
export async function deleteTextIndex(trx: Kysely<DB>, dialect: Dialect, messageIds: string[]): Promise<void> {
  void dialect; // the statement is the same in both dialects
  const unique = [...new Set(messageIds)];
  for (let i = 0; i < unique.length; i += DELETE_CHUNK) {
    await trx.deleteFrom('message_text').where('message_id', 'in', unique.slice(i, i + DELETE_CHUNK)).execute();
  }
}

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
  const { query, field, limit, chars } = validateSearch(q);
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

  const rows = await select.orderBy('m.received_at', 'desc').orderBy('t.message_id').limit(limit).execute();
  return rows.map((r) => r.message_id);
}
