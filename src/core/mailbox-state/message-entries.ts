/**
 * The folder entries of one stored message: where a message lives across its tenant's mailboxes.
 * Plugins act on a *message* (SPEC §3.1 step 7: post_receive results are "applied via the
 * mailbox-state service"), while every write here works per folder and UID; this is the bridge.
 *
 * Tenant-checked like every read of the module: a message of another tenant is a NotFoundError,
 * indistinguishable from one that does not exist (SPEC §9).
 */
import { inScope, type Scope } from '../scope.js';
import type { Ctx } from './context.js';
import { stateDb } from './db.js';
import { imapFlags, storedFlagSet } from './flag-rules.js';
import { readMessageRow } from './messages.js';

export interface MessageEntry {
  entryId: string;
  folderId: string;
  mailboxId: string;
  uid: number;
  /** System flags and keywords, as IMAP FLAGS shows them. */
  flags: string[];
}

/**
 * Live entries (not expunged, in a live folder) of `messageId`, ordered by mailbox, folder and UID
 * so callers that write folder by folder take folder locks in a stable order.
 */
export async function entriesOfMessage(ctx: Ctx, scope: Scope, messageId: string): Promise<MessageEntry[]> {
  const trx = stateDb(ctx.db);
  await readMessageRow(trx, scope, messageId);
  const rows = await trx
    .selectFrom('folder_entries as e')
    .innerJoin('folders as f', 'f.id', 'e.folder_id')
    .select(['e.id', 'e.folder_id', 'e.mailbox_id', 'e.uid', 'e.flags_json', 'e.keywords_json'])
    .where('e.message_id', '=', messageId)
    .where('e.deleted_at', 'is', null)
    .where('f.deleted_at', 'is', null)
    .where(inScope(scope, 'e.tenant_id'))
    .orderBy('e.mailbox_id')
    .orderBy('e.folder_id')
    .orderBy('e.uid')
    .execute();
  return rows.map((r) => ({
    entryId: r.id,
    folderId: r.folder_id,
    mailboxId: r.mailbox_id,
    uid: Number(r.uid),
    flags: imapFlags(storedFlagSet(r.flags_json, r.keywords_json)),
  }));
}
