/**
 * Reading folder contents: entries, UID lists and STATUS counters. No locks: a reader sees the
 * last committed state (both dialects give statement-level consistency at least).
 */
import { sql } from 'kysely';
import type { Scope } from '../scope.js';
import type { Ctx } from './context.js';
import { chunks, readFolder, stateDb } from './db.js';
import { LimitExceededError } from './errors.js';
import { flagLikePattern } from './flag-rules.js';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, UID_CHUNK } from './limits.js';
import { toEntry } from './rows.js';
import type { Entry, FolderStatus, ListEntriesOptions } from './types.js';

/** Entries ascending by UID; live ones only unless includeDeleted. Page with afterUid + limit. */
export async function listEntries(ctx: Ctx, scope: Scope, folderId: string, opts: ListEntriesOptions = {}): Promise<Entry[]> {
  const limit = opts.limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new LimitExceededError('entries per page', MAX_LIST_LIMIT, `limit must be 1..${MAX_LIST_LIMIT}, got ${limit}`);
  }
  const trx = stateDb(ctx.db);
  const folder = await readFolder(trx, scope, folderId);
  const query = (uids?: number[]) => {
    let q = trx.selectFrom('folder_entries').selectAll().where('folder_id', '=', folder.id);
    if (!opts.includeDeleted) q = q.where('deleted_at', 'is', null);
    if (opts.afterUid !== undefined) q = q.where('uid', '>', opts.afterUid);
    if (uids) q = q.where('uid', 'in', uids);
    return q.orderBy('uid').limit(limit);
  };
  if (!opts.uids) return (await query().execute()).map(toEntry);
  const wanted = [...new Set(opts.uids)].sort((a, b) => a - b);
  const out: Entry[] = [];
  for (const part of chunks(wanted, UID_CHUNK)) {
    if (out.length >= limit) break;
    out.push(...(await query(part).execute()).map(toEntry));
  }
  return out.slice(0, limit);
}

/** One entry by UID (live only), or null. */
export async function getEntry(ctx: Ctx, scope: Scope, folderId: string, uid: number): Promise<Entry | null> {
  const trx = stateDb(ctx.db);
  const folder = await readFolder(trx, scope, folderId);
  const row = await trx
    .selectFrom('folder_entries')
    .selectAll()
    .where('folder_id', '=', folder.id)
    .where('uid', '=', uid)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return row ? toEntry(row) : null;
}

/** All live UIDs ascending: what an IMAP session needs to map sequence numbers (RFC 9051 §2.3.1.2). */
export async function listUids(ctx: Ctx, scope: Scope, folderId: string): Promise<number[]> {
  const trx = stateDb(ctx.db);
  const folder = await readFolder(trx, scope, folderId);
  const rows = await trx.selectFrom('folder_entries').select('uid').where('folder_id', '=', folder.id).where('deleted_at', 'is', null).orderBy('uid').execute();
  return rows.map((r) => Number(r.uid));
}

/**
 * The lowest live UID without \Seen and above `afterUid`, or null: IMAP4rev1's `[UNSEEN n]` at
 * SELECT (RFC 3501 §6.3.1). One indexed scan in the database instead of reading entries.
 */
export async function firstUnseenUid(ctx: Ctx, scope: Scope, folderId: string, afterUid = 0): Promise<number | null> {
  const trx = stateDb(ctx.db);
  const folder = await readFolder(trx, scope, folderId);
  const seen = flagLikePattern('\\Seen');
  const row = await trx
    .selectFrom('folder_entries')
    .select('uid')
    .where('folder_id', '=', folder.id)
    .where('deleted_at', 'is', null)
    .where('uid', '>', afterUid)
    .where(sql<boolean>`flags_json NOT LIKE ${seen} ESCAPE '!'`)
    .orderBy('uid')
    .limit(1)
    .executeTakeFirst();
  return row ? Number(row.uid) : null;
}

/**
 * Keywords set on any live entry of the folder, sorted: what IMAP SELECT lists in FLAGS besides
 * the system flags (RFC 9051 §7.3.5). Distinct keyword lists are read, so the work is one scan.
 */
export async function keywordsInUse(ctx: Ctx, scope: Scope, folderId: string): Promise<string[]> {
  const trx = stateDb(ctx.db);
  const folder = await readFolder(trx, scope, folderId);
  const rows = await trx
    .selectFrom('folder_entries')
    .select('keywords_json')
    .distinct()
    .where('folder_id', '=', folder.id)
    .where('deleted_at', 'is', null)
    .where('keywords_json', '!=', '[]')
    .execute();
  const out = new Set<string>();
  for (const r of rows) for (const k of JSON.parse(r.keywords_json) as string[]) out.add(k);
  return [...out].sort();
}

/** STATUS (RFC 9051 §6.3.11) counters of a folder. */
export async function folderStatus(ctx: Ctx, scope: Scope, folderId: string): Promise<FolderStatus> {
  const trx = stateDb(ctx.db);
  const folder = await readFolder(trx, scope, folderId);
  const seen = flagLikePattern('\\Seen');
  const deleted = flagLikePattern('\\Deleted');
  const row = await trx
    .selectFrom('folder_entries')
    .select([
      sql<number>`count(*)`.as('messages'),
      sql<number>`coalesce(sum(size), 0)`.as('size'),
      sql<number>`coalesce(sum(CASE WHEN flags_json LIKE ${seen} ESCAPE '!' THEN 0 ELSE 1 END), 0)`.as('unseen'),
      sql<number>`coalesce(sum(CASE WHEN flags_json LIKE ${deleted} ESCAPE '!' THEN 1 ELSE 0 END), 0)`.as('deleted'),
    ])
    .where('folder_id', '=', folder.id)
    .where('deleted_at', 'is', null)
    .executeTakeFirstOrThrow();
  return {
    messages: Number(row.messages),
    unseen: Number(row.unseen),
    deleted: Number(row.deleted),
    recent: 0,
    uidNext: Number(folder.uid_next),
    uidValidity: Number(folder.uid_validity),
    highestModseq: Number(folder.highest_modseq),
    size: Number(row.size),
  };
}
