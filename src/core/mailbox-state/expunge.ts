/**
 * EXPUNGE / UID EXPUNGE (RFC 9051 §6.4.3, RFC 4315 §2.1) and the API's direct delete.
 *
 * Removal is logical: the entry keeps its row with `deleted_at` and a new MODSEQ, so CONDSTORE/
 * QRESYNC clients learn about it through changesSince (VANISHED, RFC 7162 §3.2.10); the purge job
 * removes the row and, once unreferenced, the message and its blob after the retention period.
 * The bytes stop counting against quota at once.
 */
import { sql, type SqlBool } from 'kysely';
import { now } from '../../store/db/database.js';
import type { ChangeEvent } from '../../store/events/change-bus.js';
import type { Scope } from '../scope.js';
import type { Ctx } from './context.js';
import { chunks, lockFolder, writeTransaction, type EntryRow, type FolderRow, type Tx } from './db.js';
import { liveEntriesByUid, markEntriesDeleted } from './entry-writes.js';
import { publishAll } from './events.js';
import { allocate } from './allocate.js';
import { flagLikePattern } from './flag-rules.js';
import { UID_CHUNK } from './limits.js';
import { applyUsage } from './quota.js';

/**
 * Marks `entries` (all live, all in `folder`, which the caller has locked) deleted, each with a new
 * MODSEQ. Returns their UIDs ascending, the bytes they held (the caller releases them from the quota
 * together with its other usage changes, in lock order) and the event to publish.
 */
export async function removeEntries(
  trx: Tx,
  folder: FolderRow,
  entries: EntryRow[],
): Promise<{ uids: number[]; bytes: number; event: ChangeEvent | null }> {
  if (entries.length === 0) return { uids: [], bytes: 0, event: null };
  const sorted = [...entries].sort((a, b) => Number(a.uid) - Number(b.uid));
  const a = await allocate(trx, folder.id, 0, sorted.length);
  await markEntriesDeleted(trx, sorted.map((e, i) => ({ id: e.id, modseq: a.firstModseq + i })), now());
  return {
    uids: sorted.map((e) => Number(e.uid)),
    bytes: sorted.reduce((sum, e) => sum + Number(e.size), 0),
    event: { tenantId: folder.tenant_id, mailboxId: folder.mailbox_id, folderId: folder.id, kind: 'expunge', modseq: a.highestModseq },
  };
}

/** removeEntries + quota release, for expunge and delete. */
async function removeAndRelease(ctx: Ctx, trx: Tx, folder: FolderRow, entries: EntryRow[]) {
  const removed = await removeEntries(trx, folder, entries);
  if (removed.bytes > 0) await applyUsage(ctx, trx, folder.tenant_id, new Map([[folder.mailbox_id, -removed.bytes]]));
  return removed;
}

const deletedFlag = sql<SqlBool>`flags_json LIKE ${flagLikePattern('\\Deleted')} ESCAPE '!'`;

async function deletedEntries(trx: Tx, folderId: string, uids?: number[]): Promise<EntryRow[]> {
  const base = () => trx.selectFrom('folder_entries').selectAll().where('folder_id', '=', folderId).where('deleted_at', 'is', null).where(deletedFlag);
  if (!uids) return base().execute();
  const out: EntryRow[] = [];
  for (const part of chunks([...new Set(uids)], UID_CHUNK)) out.push(...(await base().where('uid', 'in', part).execute()));
  return out;
}

/** Expunges entries flagged \Deleted — only those in `uids` when given (UID EXPUNGE). Returns expunged UIDs. */
export async function expunge(ctx: Ctx, scope: Scope, folderId: string, opts: { uids?: number[] } = {}): Promise<number[]> {
  if (opts.uids && opts.uids.length === 0) return [];
  const { uids, event } = await writeTransaction(ctx.db, async (trx) => {
    const folder = await lockFolder(trx, ctx.db.dialect, scope, folderId);
    return removeAndRelease(ctx, trx, folder, await deletedEntries(trx, folder.id, opts.uids));
  });
  if (event) await publishAll(ctx, [event]);
  return uids;
}

/** Deletes entries by UID without needing \Deleted first (REST/API delete). Returns the UIDs removed. */
export async function deleteMessages(ctx: Ctx, scope: Scope, folderId: string, uids: number[]): Promise<number[]> {
  if (uids.length === 0) return [];
  const { uids: removed, event } = await writeTransaction(ctx.db, async (trx) => {
    const folder = await lockFolder(trx, ctx.db.dialect, scope, folderId);
    return removeAndRelease(ctx, trx, folder, await liveEntriesByUid(trx, folder.id, uids));
  });
  if (event) await publishAll(ctx, [event]);
  return removed;
}
