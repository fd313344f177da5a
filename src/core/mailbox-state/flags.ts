/**
 * STORE: changing flags and keywords of folder entries, with CONDSTORE semantics.
 *
 * RFC 7162 §3.1.3: with UNCHANGEDSINCE, an entry whose MODSEQ is above the given value is left
 * alone and reported in MODIFIED; the check and the write happen under the folder lock, so a
 * concurrent change can never slip in between. Every entry whose flags actually change gets its
 * own new MODSEQ (§3.1: strictly increasing per folder); a STORE that changes nothing changes no
 * MODSEQ and publishes nothing.
 */
import type { Scope } from '../scope.js';
import type { Ctx } from './context.js';
import { lockFolder, writeTransaction } from './db.js';
import { liveEntriesByUid, updateEntryFlags, type FlagUpdate } from './entry-writes.js';
import { publishAll } from './events.js';
import { allocate } from './allocate.js';
import { applyFlagOp, classifyFlags, imapFlags, storedFlagSet } from './flag-rules.js';
import type { FlagOp, SetFlagsResult } from './types.js';

export async function setFlags(
  ctx: Ctx,
  scope: Scope,
  folderId: string,
  uids: number[],
  op: FlagOp,
  flags: string[],
  opts: { unchangedSince?: number } = {},
): Promise<SetFlagsResult> {
  const change = classifyFlags(flags);
  const { result, event } = await writeTransaction(ctx.db, async (trx) => {
    const folder = await lockFolder(trx, ctx.db.dialect, scope, folderId);
    const entries = await liveEntriesByUid(trx, folder.id, uids);
    const modifiedUids: number[] = [];
    const pending: { id: string; uid: number; flagsJson: string; keywordsJson: string; view: string[] }[] = [];
    for (const e of entries) {
      if (opts.unchangedSince !== undefined && Number(e.modseq) > opts.unchangedSince) {
        modifiedUids.push(Number(e.uid));
        continue;
      }
      const next = applyFlagOp(storedFlagSet(e.flags_json, e.keywords_json), op, change);
      if (!next.changed) continue;
      pending.push({
        id: e.id,
        uid: Number(e.uid),
        flagsJson: JSON.stringify(next.flags),
        keywordsJson: JSON.stringify(next.keywords),
        view: imapFlags(next),
      });
    }
    if (pending.length === 0) return { result: { updated: [], modifiedUids }, event: null };
    const a = await allocate(trx, folder.id, 0, pending.length);
    const updates: FlagUpdate[] = pending.map((p, i) => ({ id: p.id, modseq: a.firstModseq + i, flagsJson: p.flagsJson, keywordsJson: p.keywordsJson }));
    await updateEntryFlags(trx, updates);
    return {
      result: { updated: pending.map((p, i) => ({ uid: p.uid, modseq: a.firstModseq + i, flags: p.view })), modifiedUids },
      event: { tenantId: folder.tenant_id, mailboxId: folder.mailbox_id, folderId: folder.id, kind: 'flags' as const, modseq: a.highestModseq },
    };
  });
  if (event) await publishAll(ctx, [event]);
  return result;
}
