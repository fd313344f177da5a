/**
 * Renaming, deleting and (un)subscribing folders.
 */
import { now } from '../../store/db/database.js';
import { inScope, type Scope } from '../scope.js';
import type { Ctx } from './context.js';
import { lockFolder, writeTransaction, type FolderRow } from './db.js';
import { FolderExistsError, FolderHasChildrenError, FolderProtectedError, InvalidFolderNameError, LimitExceededError, NotFoundError } from './errors.js';
import { publishAll } from './events.js';
import { INBOX, isInbox, isInferior, normaliseFolderName, superiorNames, tombstoneName } from './folder-names.js';
import { insertFolder, liveFolderRows } from './folders.js';
import { MAX_FOLDERS_PER_MAILBOX } from './limits.js';
import { applyUsage } from './quota.js';
import { toFolder } from './rows.js';
import type { Folder } from './types.js';

/**
 * RFC 9051 §6.3.6: inferior folders are renamed with it; missing superiors of the new name are
 * created. The folder keeps its UIDVALIDITY and UIDs (its messages did not change); what the RFC
 * requires — that a new folder later created under the old name does not reuse the old UIDs — holds
 * because that new folder gets a fresh, strictly greater UIDVALIDITY (see folders.ts).
 *
 * Renaming INBOX is special in IMAP (its messages move to a new folder and INBOX stays); that is
 * refused for now, which the RFC allows ("some servers disallow renaming INBOX").
 */
export async function renameFolder(ctx: Ctx, scope: Scope, folderId: string, newName: string): Promise<Folder> {
  const target = normaliseFolderName(newName);
  const { renamed, created } = await writeTransaction(ctx.db, async (t) => {
    const folder = await lockFolder(t, ctx.db.dialect, scope, folderId);
    if (isInbox(folder.name)) {
      throw new FolderProtectedError(INBOX, 'renaming INBOX is not supported; create a folder and move the messages instead');
    }
    if (target === folder.name || isInbox(target)) throw new FolderExistsError(target);
    if (isInferior(target, folder.name)) throw new InvalidFolderNameError(target, 'a folder cannot be moved below itself');
    const live = await liveFolderRows(t, folder.mailbox_id);
    const names = new Set(live.map((r) => r.name));
    const moving = [folder, ...live.filter((r) => isInferior(r.name, folder.name))];
    const plan = moving.map((row) => ({ row, to: normaliseFolderName(target + row.name.slice(folder.name.length)) }));
    for (const p of plan) if (names.has(p.to)) throw new FolderExistsError(p.to);
    for (const p of plan) names.delete(p.row.name);
    const missing = superiorNames(target).filter((n) => !names.has(n));
    if (live.length + missing.length > MAX_FOLDERS_PER_MAILBOX) throw new LimitExceededError('folders per mailbox', MAX_FOLDERS_PER_MAILBOX);
    for (const p of plan) await t.updateTable('folders').set({ name: p.to }).where('id', '=', p.row.id).execute();
    const createdRows: FolderRow[] = [];
    for (const n of missing) {
      const row = await insertFolder(t, { id: folder.mailbox_id, tenant_id: folder.tenant_id }, n, {
        specialUse: null,
        subscribed: folder.subscribed === 1,
      });
      if (row) createdRows.push(row);
    }
    return { renamed: { ...folder, name: target }, created: createdRows };
  });
  await publishAll(ctx, [
    ...created.map((r) => ({ tenantId: r.tenant_id, mailboxId: r.mailbox_id, folderId: r.id, kind: 'folder_create' as const })),
    { tenantId: renamed.tenant_id, mailboxId: renamed.mailbox_id, folderId: renamed.id, kind: 'folder_rename' },
  ]);
  return toFolder(renamed);
}

/**
 * Deletes a folder (RFC 9051 §6.3.5). Its entries are logically deleted (kept until the purge job
 * removes them after the retention period, SPEC §4 "Lifecycle") and stop counting against quota;
 * the folder row becomes a tombstone so its name can be re-created at once.
 * INBOX and special-use folders are protected; a folder with subfolders is refused (HASCHILDREN).
 */
export async function deleteFolder(ctx: Ctx, scope: Scope, folderId: string): Promise<void> {
  const folder = await writeTransaction(ctx.db, async (t) => {
    const row = await lockFolder(t, ctx.db.dialect, scope, folderId);
    if (isInbox(row.name)) throw new FolderProtectedError(row.name, 'INBOX cannot be deleted');
    if (row.special_use) throw new FolderProtectedError(row.name, `special-use folder (${row.special_use}) cannot be deleted`);
    const live = await liveFolderRows(t, row.mailbox_id);
    if (live.some((r) => isInferior(r.name, row.name))) throw new FolderHasChildrenError(row.name);
    const at = now();
    const sum = await t
      .selectFrom('folder_entries')
      .select((eb) => eb.fn.sum<number>('size').as('bytes'))
      .where('folder_id', '=', row.id)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    await t.updateTable('folder_entries').set({ deleted_at: at }).where('folder_id', '=', row.id).where('deleted_at', 'is', null).execute();
    await t.updateTable('folders').set({ deleted_at: at, name: tombstoneName(row.id), subscribed: 0 }).where('id', '=', row.id).execute();
    await applyUsage(ctx, t, row.tenant_id, new Map([[row.mailbox_id, -Number(sum?.bytes ?? 0)]]));
    return row;
  });
  await publishAll(ctx, [{ tenantId: folder.tenant_id, mailboxId: folder.mailbox_id, folderId: folder.id, kind: 'folder_delete' }]);
}

/** RFC 9051 §6.3.7/§6.3.8 SUBSCRIBE/UNSUBSCRIBE for an existing folder. */
export async function setSubscribed(ctx: Ctx, scope: Scope, folderId: string, subscribed: boolean): Promise<Folder> {
  const row = await writeTransaction(ctx.db, async (t) => {
    const res = await t
      .updateTable('folders')
      .set({ subscribed: subscribed ? 1 : 0 })
      .where('id', '=', folderId)
      .where('deleted_at', 'is', null)
      .where(inScope(scope))
      .returningAll()
      .executeTakeFirst();
    if (!res) throw new NotFoundError('folder', folderId);
    return res;
  });
  return toFolder(row);
}
