/**
 * Removing everything a mailbox holds, inside the transaction that removes the mailbox itself.
 *
 * Follows the storage lifecycle of the mailbox-state service (SPEC §4, core/mailbox-state/purge.ts):
 * folder entries go, then every message row (and its text-index row) that no folder entry of any
 * mailbox refers to any more. Blobs are not touched here: once their rows are committed away they
 * are orphans, which `mairust db check --fix` removes — an orphan blob is harmless, while a message
 * row without its blob would not be. The tenant's `used_bytes` (the sum over its mailboxes, see
 * mailbox-state/quota.ts) drops by the mailbox's usage.
 */
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../../store/db/database.js';
import type { DB } from '../../store/db/types.js';
import { deleteTextIndex } from '../search/text-index.js';
import { inScope, type Scope } from '../scope.js';

/** Ids per IN (...) list: far below SQLite's and PostgreSQL's bound-parameter limits. */
const CHUNK = 500;

export interface RemovedContent {
  entries: number;
  messages: number;
  /** Blob keys whose message rows were removed (now orphans unless another message shares them). */
  blobKeys: string[];
}

export async function removeMailboxContent(
  trx: Kysely<DB>,
  dialect: Dialect,
  scope: Scope,
  mailbox: { id: string; tenant_id: string },
): Promise<RemovedContent> {
  // Lock the mailbox row so a concurrent delivery cannot change its usage between read and release.
  const usage = await trx
    .selectFrom('mailboxes')
    .select('used_bytes')
    .where(inScope(scope))
    .where('id', '=', mailbox.id)
    .$if(dialect === 'postgres', (q) => q.forUpdate())
    .executeTakeFirstOrThrow();

  const messageIds = (
    await trx.selectFrom('folder_entries').select('message_id').distinct().where(inScope(scope)).where('mailbox_id', '=', mailbox.id).execute()
  ).map((r) => r.message_id);
  const deleted = await trx.deleteFrom('folder_entries').where(inScope(scope)).where('mailbox_id', '=', mailbox.id).executeTakeFirst();

  let messages = 0;
  const blobKeys: string[] = [];
  for (let i = 0; i < messageIds.length; i += CHUNK) {
    const unreferenced = await trx
      .selectFrom('messages')
      .select(['messages.id', 'messages.blob_key'])
      .where(inScope(scope, 'messages.tenant_id'))
      .where('messages.id', 'in', messageIds.slice(i, i + CHUNK))
      .where((eb) => eb.not(eb.exists(eb.selectFrom('folder_entries').select('folder_entries.id').whereRef('folder_entries.message_id', '=', 'messages.id'))))
      .execute();
    if (unreferenced.length === 0) continue;
    const ids = unreferenced.map((m) => m.id);
    await deleteTextIndex(trx, dialect, ids);
    const res = await trx.deleteFrom('messages').where(inScope(scope)).where('id', 'in', ids).executeTakeFirst();
    messages += Number(res.numDeletedRows);
    blobKeys.push(...unreferenced.map((m) => m.blob_key));
  }

  const used = Number(usage.used_bytes);
  if (used > 0) {
    await trx
      .updateTable('tenants')
      .set({ used_bytes: sql<number>`CASE WHEN used_bytes < ${used} THEN 0 ELSE used_bytes - ${used} END` })
      .where(inScope(scope, 'id'))
      .where('id', '=', mailbox.tenant_id)
      .execute();
  }
  return { entries: Number(deleted.numDeletedRows), messages, blobKeys: [...new Set(blobKeys)] };
}
