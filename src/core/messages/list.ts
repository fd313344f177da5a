/**
 * The message list (SPEC §11 "messages: list with filters q, after, before, from, to, tag, folder,
 * flag, sort"): read-only, tenant-scoped queries over `folder_entries` joined with `messages`.
 * Writes never happen here — every change goes through the mailbox-state service (ARCHITECTURE §1.1).
 *
 * What a list item is: one live folder entry (one message in one folder). The same stored message
 * filed in two folders is two items with two ids, as in IMAP.
 *
 * Paging is keyset (seek) paging on (sort key, entry id): the id breaks ties, so a page boundary
 * that falls among entries with equal dates or sizes neither repeats nor skips any of them, and
 * entries arriving meanwhile do not shift later pages the way OFFSET would.
 *
 * Text search (`q`) joins the text index of src/core/search (migration 0001: FTS5 trigram in
 * SQLite, pg_trgm in PostgreSQL) with its own matching rules — a case-insensitive substring over
 * subject, addresses and body, trigram MATCH from 3 characters in SQLite and LIKE below (Japanese
 * words are often 2 characters), ILIKE in PostgreSQL — through `IN (subquery)`, so the index is
 * consulted once per list call rather than once per entry.
 */
import { sql, type Expression, type SqlBool } from 'kysely';
import type { Database, Dialect } from '../../store/db/database.js';
import type { DB } from '../../store/db/types.js';
import { inScope, type Scope } from '../scope.js';
import { flagLikePattern, parseList, storedFlagSet, type SystemFlag } from '../mailbox-state/flag-rules.js';
import { ftsPhrase, likeContains, TRIGRAM_MIN_CHARS, validateSearch } from '../search/query.js';

/**
 * Sort orders, each served by an index on (mailbox_id | folder_id, key, id) of live entries, so a
 * page costs the same on the first and the thousandth page. A subject order is deliberately not
 * offered: the subject lives in `messages`, so no index of a mailbox's entries can serve it, and
 * it would sort the whole mailbox on every page.
 */
export const MESSAGE_SORTS = ['date', 'date_asc', 'size', 'size_asc'] as const;
export type MessageSort = (typeof MESSAGE_SORTS)[number];

/** Flag filters: a system flag present, or (for the common two) absent. */
export const FLAG_FILTERS = ['seen', 'unseen', 'flagged', 'unflagged', 'answered', 'draft', 'deleted'] as const;
export type FlagFilter = (typeof FLAG_FILTERS)[number];

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 100;
/** Longest substring accepted for `from` / `to` filters (characters). */
export const MAX_ADDRESS_FILTER_CHARS = 320;

const FLAG_FILTER_RULE: Record<FlagFilter, { flag: SystemFlag; present: boolean }> = {
  seen: { flag: '\\Seen', present: true },
  unseen: { flag: '\\Seen', present: false },
  flagged: { flag: '\\Flagged', present: true },
  unflagged: { flag: '\\Flagged', present: false },
  answered: { flag: '\\Answered', present: true },
  draft: { flag: '\\Draft', present: true },
  deleted: { flag: '\\Deleted', present: true },
};

/** Keyset position: the sort key (date or size) of the last item returned and its entry id. */
export interface ListPosition {
  key: number;
  id: string;
}

export interface MessageListQuery {
  mailboxId: string;
  /** Only this folder (must belong to the mailbox; the caller resolves names). */
  folderId?: string;
  /** Substring of subject, addresses or body text; at most 1000 characters. */
  q?: string;
  /** Internal date ≥ after (ms). */
  after?: number;
  /** Internal date < before (ms). */
  before?: number;
  /** Substring of the From address (display name included), case-insensitive. */
  from?: string;
  /** Substring of any To or Cc address, case-insensitive. */
  to?: string;
  /** Has this keyword (case-insensitive, as IMAP compares keywords). */
  tag?: string;
  flag?: FlagFilter;
  /** Default `date` (newest first). */
  sort?: MessageSort;
  /** 1..100, default 50. */
  limit?: number;
  /** Continue after this position (from a previous page's `next`). */
  position?: ListPosition;
}

export interface MessageSummary {
  /** The folder entry id: the message's public id in the API. */
  id: string;
  folderId: string;
  mailboxId: string;
  /** The stored message (shared by copies in other folders). */
  messageId: string;
  uid: number;
  modseq: number;
  flags: SystemFlag[];
  keywords: string[];
  internalDate: number;
  size: number;
  subject: string | null;
  from: string | null;
  to: string[];
  cc: string[];
  /** Date header (ms), null when absent or unparsable. */
  date: number | null;
  preview: string | null;
  hasAttachments: boolean;
  spamScore: number | null;
}

export interface MessagePage {
  items: MessageSummary[];
  /** Position to continue from; null on the last page. */
  next: ListPosition | null;
}

export class MessageListError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'MessageListError';
  }
}

interface SortSpec {
  /** The entry column sorted on (the entry id is always the tie-breaker). */
  column: 'fe.internal_date' | 'fe.size';
  desc: boolean;
  /** The key's value in a result row. */
  value: (s: MessageSummary) => number;
}

const SORTS: Record<MessageSort, SortSpec> = {
  date: { column: 'fe.internal_date', desc: true, value: (s) => s.internalDate },
  date_asc: { column: 'fe.internal_date', desc: false, value: (s) => s.internalDate },
  size: { column: 'fe.size', desc: true, value: (s) => s.size },
  size_asc: { column: 'fe.size', desc: false, value: (s) => s.size },
};

/** Whether `v` can be a list position (for decoding client cursors). */
export function isPosition(v: unknown): v is ListPosition {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string, unknown>;
  return typeof p.id === 'string' && p.id.length > 0 && p.id.length <= 64 && typeof p.key === 'number' && Number.isSafeInteger(p.key);
}

/** `LIKE`/`ILIKE` for case-insensitive substring tests: PostgreSQL's ILIKE; SQLite's LIKE already ignores ASCII case. */
function likeOp(dialect: Dialect) {
  return dialect === 'postgres' ? sql.raw('ILIKE') : sql.raw('LIKE');
}

function contains(dialect: Dialect, column: string, needle: string): Expression<SqlBool> {
  return sql<SqlBool>`${sql.ref(column)} ${likeOp(dialect)} ${likeContains(needle)} ESCAPE '\\'`;
}

/**
 * Message ids of the scope whose indexed text contains `query` (the rules of
 * src/core/search/text-index.ts `searchText`, as a subquery so the list can page over all hits).
 */
function textMatches(db: Database, scope: Scope, query: string) {
  const { chars } = validateSearch({ query });
  let condition: Expression<SqlBool>;
  if (db.dialect === 'sqlite' && chars >= TRIGRAM_MIN_CHARS) {
    // FTS5's hidden column named after the table matches over every indexed column.
    condition = sql<SqlBool>`${sql.ref('t.message_text')} MATCH ${ftsPhrase(query)}`;
  } else {
    const tests = (['t.subject', 't.addresses', 't.body'] as const).map((c) => contains(db.dialect, c, query));
    condition = sql<SqlBool>`(${sql.join(tests, sql` OR `)})`;
  }
  const hits = db.kysely
    .selectFrom('message_text as t')
    .select('t.message_id')
    .where(inScope(scope, 't.tenant_id'))
    .where(() => condition);
  // PostgreSQL estimates trigram ILIKE selectivity poorly and may then walk the mailbox in date
  // order testing each message's text by primary key (seconds for a rare word over 100 000
  // messages). OFFSET 0 keeps the subquery from being flattened into the join, so the matches are
  // found once through the trigram indexes and the entries checked against that set.
  return db.dialect === 'postgres' ? hits.offset(0) : hits;
}

function baseQuery(db: Database, scope: Scope) {
  return db.kysely
    .selectFrom('folder_entries as fe')
    .innerJoin('messages as m', 'm.id', 'fe.message_id')
    .select([
      'fe.id',
      'fe.folder_id',
      'fe.mailbox_id',
      'fe.message_id',
      'fe.uid',
      'fe.modseq',
      'fe.flags_json',
      'fe.keywords_json',
      'fe.internal_date',
      'fe.size',
      'm.subject',
      'm.from_addr',
      'm.to_addrs',
      'm.cc_addrs',
      'm.date_header',
      'm.preview',
      'm.has_attachments',
      'm.spam_score',
    ])
    .where(inScope(scope, 'fe.tenant_id'))
    .where('fe.deleted_at', 'is', null);
}

type SummaryRow = Awaited<ReturnType<ReturnType<typeof baseQuery>['executeTakeFirstOrThrow']>>;

function toSummary(r: SummaryRow): MessageSummary {
  const set = storedFlagSet(r.flags_json, r.keywords_json);
  return {
    id: r.id,
    folderId: r.folder_id,
    mailboxId: r.mailbox_id,
    messageId: r.message_id,
    uid: Number(r.uid),
    modseq: Number(r.modseq),
    flags: set.flags,
    keywords: set.keywords,
    internalDate: Number(r.internal_date),
    size: Number(r.size),
    subject: r.subject,
    from: r.from_addr,
    to: parseList(r.to_addrs),
    cc: parseList(r.cc_addrs),
    date: r.date_header === null ? null : Number(r.date_header),
    preview: r.preview,
    hasAttachments: Number(r.has_attachments) === 1,
    spamScore: r.spam_score === null ? null : Number(r.spam_score),
  };
}

function checkText(field: string, value: string | undefined, max: number): void {
  if (value === undefined) return;
  if (value.length === 0) throw new MessageListError(field, `${field} must not be empty`);
  if ([...value].length > max) throw new MessageListError(field, `${field} is limited to ${max} characters`);
}

/**
 * The query behind `listMessages` (fetching `limit + 1` rows: the extra one tells whether there is
 * more), exported so that tests can check its plan. Throws MessageListError for input the API's
 * schema would normally have refused already (empty or over-long filters, a bad limit).
 */
export function messageListQuery(db: Database, scope: Scope, q: MessageListQuery) {
  const sort = SORTS[q.sort ?? 'date'];
  const limit = q.limit ?? DEFAULT_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new MessageListError('limit', `limit must be 1..${MAX_PAGE}`);
  checkText('q', q.q, 1000);
  checkText('from', q.from, MAX_ADDRESS_FILTER_CHARS);
  checkText('to', q.to, MAX_ADDRESS_FILTER_CHARS);
  if (q.position && !isPosition(q.position)) throw new MessageListError('cursor', 'malformed cursor');

  let query = baseQuery(db, scope).where('fe.mailbox_id', '=', q.mailboxId);
  if (q.folderId !== undefined) query = query.where('fe.folder_id', '=', q.folderId);
  if (q.after !== undefined) query = query.where('fe.internal_date', '>=', q.after);
  if (q.before !== undefined) query = query.where('fe.internal_date', '<', q.before);
  if (q.from !== undefined) query = query.where(() => contains(db.dialect, 'm.from_addr', q.from!));
  if (q.to !== undefined) {
    // The stored lists are JSON arrays of "Name <addr>" strings; a substring of the JSON text is a
    // substring of one of them (a needle spanning two entries would need the `","` separator).
    const to = q.to;
    query = query.where((eb) => eb.or([contains(db.dialect, 'm.to_addrs', to), contains(db.dialect, 'm.cc_addrs', to)]));
  }
  if (q.tag !== undefined) {
    // Keywords are IMAP atoms (no `"` or `\`), so their JSON spelling is the atom in quotes.
    const pattern = JSON.stringify(q.tag);
    query = query.where(() => contains(db.dialect, 'fe.keywords_json', pattern));
  }
  if (q.flag !== undefined) {
    const rule = FLAG_FILTER_RULE[q.flag];
    const test = sql<SqlBool>`fe.flags_json LIKE ${flagLikePattern(rule.flag)} ESCAPE '!'`;
    query = query.where(() => (rule.present ? test : sql<SqlBool>`NOT (${test})`));
  }
  if (q.q !== undefined) {
    // The index never holds NUL (see writeTextIndex), so such a query matches nothing.
    query = q.q.includes('\u0000') ? query.where(sql<SqlBool>`1 = 0`) : query.where('fe.message_id', 'in', textMatches(db, scope, q.q));
  }
  if (q.position) {
    const { key, id } = q.position;
    // (key, id) strictly after the position in the sort direction, written with the key's range
    // first so an index on (…, key, id) serves it as one range scan.
    query = query.where((eb) => {
      const beyond = sort.desc ? '<' : '>';
      const within = sort.desc ? '<=' : '>=';
      return eb.and([eb(sort.column, within, key), eb.or([eb(sort.column, beyond, key), eb('fe.id', beyond, id)])]);
    });
  }
  const dir = sort.desc ? 'desc' : 'asc';
  return query
    .orderBy(sort.column, dir)
    .orderBy('fe.id', dir)
    .limit(limit + 1);
}

/** One page of the mailbox's messages, filtered and sorted (see messageListQuery). */
export async function listMessages(db: Database, scope: Scope, q: MessageListQuery): Promise<MessagePage> {
  const rows = await messageListQuery(db, scope, q).execute();
  const limit = q.limit ?? DEFAULT_PAGE;
  const sort = SORTS[q.sort ?? 'date'];
  const items = rows.slice(0, limit).map(toSummary);
  const last = items[items.length - 1];
  return { items, next: rows.length > limit && last ? { key: sort.value(last), id: last.id } : null };
}

/** One live entry by its id, or null (also for ids outside the scope). */
export async function getMessageSummary(db: Database, scope: Scope, entryId: string): Promise<MessageSummary | null> {
  const row = await baseQuery(db, scope).where('fe.id', '=', entryId).executeTakeFirst();
  return row ? toSummary(row) : null;
}

export interface FolderCounts {
  total: number;
  unseen: number;
  /** Sum of message sizes in bytes. */
  size: number;
}

/**
 * Counters of every folder of a mailbox in one grouped query (what per-folder STATUS calls would
 * give, without one round trip per folder). Folders without live entries are absent from the map.
 */
export async function folderCounts(db: Database, scope: Scope, mailboxId: string): Promise<Map<string, FolderCounts>> {
  const seen = flagLikePattern('\\Seen');
  const rows = await db.kysely
    .selectFrom('folder_entries')
    .select([
      'folder_id',
      sql<number>`count(*)`.as('total'),
      sql<number>`coalesce(sum(size), 0)`.as('size'),
      sql<number>`coalesce(sum(CASE WHEN flags_json LIKE ${seen} ESCAPE '!' THEN 0 ELSE 1 END), 0)`.as('unseen'),
    ])
    .where(inScope(scope))
    .where('mailbox_id', '=', mailboxId)
    .where('deleted_at', 'is', null)
    .groupBy('folder_id')
    .execute();
  return new Map(rows.map((r) => [r.folder_id, { total: Number(r.total), unseen: Number(r.unseen), size: Number(r.size) }]));
}

/** What the message view needs from the stored message beyond the summary. */
export interface MessageDetail {
  messageIdHeader: string | null;
  /** MIME structure with byte offsets (JSON), when it was recorded at delivery. */
  structureJson: string | null;
}

export async function getMessageDetail(db: Database, scope: Scope, messageId: string): Promise<MessageDetail | null> {
  const row = await db.kysely
    .selectFrom('messages')
    .select(['message_id_header', 'structure_json'])
    .where('id', '=', messageId)
    .where(inScope(scope))
    .executeTakeFirst();
  return row ? { messageIdHeader: row.message_id_header, structureJson: row.structure_json } : null;
}
