/**
 * COPY (RFC 9051 §6.4.7) and MOVE (RFC 6851), answering with what COPYUID needs (RFC 4315 §3).
 *
 * A copy is a new folder entry pointing at the same stored message (no new blob); it keeps flags,
 * keywords and internal date (RFC 9051 §6.4.7: "SHOULD be preserved") and counts against the
 * destination mailbox's quota. MOVE is copy + expunge of the source in one transaction, so no
 * client can ever see the message in both folders or in neither (RFC 6851 §3.3).
 */
import { newId } from '../../store/db/database.js';
import type { ChangeEvent } from '../../store/events/change-bus.js';
import type { Scope } from '../scope.js';
import type { Ctx } from './context.js';
import { lockFolder, writeTransaction, type EntryRow, type FolderRow } from './db.js';
import { insertEntries, liveEntriesByUid } from './entry-writes.js';
import { NotFoundError } from './errors.js';
import { publishAll } from './events.js';
import { allocate } from './allocate.js';
import { removeEntries } from './expunge.js';
import { applyUsage } from './quota.js';
import type { CopyResult } from './types.js';

async function copyOrMove(ctx: Ctx, scope: Scope, fromFolderId: string, uids: number[], toFolderId: string, move: boolean): Promise<CopyResult> {
  const { result, events } = await writeTransaction(ctx.db, async (trx) => {
    // Lock both folders in ascending id order (db.ts lock order).
    const locked = new Map<string, FolderRow>();
    for (const id of [...new Set([fromFolderId, toFolderId])].sort()) locked.set(id, await lockFolder(trx, ctx.db.dialect, scope, id));
    const from = locked.get(fromFolderId)!;
    const to = locked.get(toFolderId)!;
    // Entries never cross tenants, even for the system scope.
    if (to.tenant_id !== from.tenant_id) throw new NotFoundError('folder', toFolderId);

    const source = await liveEntriesByUid(trx, from.id, uids);
    if (source.length === 0) return { result: { uidValidity: Number(to.uid_validity), mapping: [] }, events: [] as ChangeEvent[] };

    const a = await allocate(trx, to.id, source.length, source.length);
    const rows: EntryRow[] = source.map((e, i) => ({
      id: newId(),
      tenant_id: to.tenant_id,
      mailbox_id: to.mailbox_id,
      folder_id: to.id,
      message_id: e.message_id,
      uid: a.firstUid + i,
      modseq: a.firstModseq + i,
      flags_json: e.flags_json,
      keywords_json: e.keywords_json,
      internal_date: e.internal_date,
      size: e.size,
      deleted_at: null,
    }));
    await insertEntries(trx, rows);

    const events: ChangeEvent[] = [];
    let highest = a.highestModseq;
    const bytes = source.reduce((sum, e) => sum + Number(e.size), 0);
    // One usage change for the whole operation (mailboxes in lock order): a move inside one
    // mailbox nets to zero and so can never fail on quota; a copy or a move to another mailbox must
    // fit the destination's quota.
    const usage = new Map<string, number>([[to.mailbox_id, bytes]]);
    if (move) {
      const removed = await removeEntries(trx, from, source);
      usage.set(from.mailbox_id, (usage.get(from.mailbox_id) ?? 0) - removed.bytes);
      if (removed.event) events.push(removed.event);
      if (from.id === to.id && removed.event?.modseq) highest = removed.event.modseq;
    }
    await applyUsage(ctx, trx, to.tenant_id, usage);
    events.unshift({ tenantId: to.tenant_id, mailboxId: to.mailbox_id, folderId: to.id, kind: 'append', modseq: highest });
    return {
      result: { uidValidity: Number(to.uid_validity), mapping: source.map((e, i) => ({ from: Number(e.uid), to: a.firstUid + i })) },
      events,
    };
  });
  await publishAll(ctx, events);
  return result;
}

export function copy(ctx: Ctx, scope: Scope, fromFolderId: string, uids: number[], toFolderId: string): Promise<CopyResult> {
  return copyOrMove(ctx, scope, fromFolderId, uids, toFolderId, false);
}

export function move(ctx: Ctx, scope: Scope, fromFolderId: string, uids: number[], toFolderId: string): Promise<CopyResult> {
  return copyOrMove(ctx, scope, fromFolderId, uids, toFolderId, true);
}
