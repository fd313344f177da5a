/**
 * "What changed since MODSEQ n" — the basis of CONDSTORE FETCH CHANGEDSINCE (RFC 7162 §3.1.4),
 * QRESYNC SELECT/VANISHED (§3.2.5, §3.2.10), IDLE/NOOP updates and JMAP /changes.
 *
 * Expunged entries stay as rows with their expunge MODSEQ until the purge job deletes them, so a
 * client that resynchronises within the retention period gets an exact VANISHED list.
 */
import type { Scope } from '../scope.js';
import type { Ctx } from './context.js';
import { readFolder, stateDb } from './db.js';
import { toFlagState } from './rows.js';
import type { Changes } from './types.js';

export async function changesSince(ctx: Ctx, scope: Scope, folderId: string, modseq: number): Promise<Changes> {
  const trx = stateDb(ctx.db);
  const folder = await readFolder(trx, scope, folderId);
  const rows = await trx
    .selectFrom('folder_entries')
    .select(['uid', 'modseq', 'flags_json', 'keywords_json', 'deleted_at'])
    .where('folder_id', '=', folder.id)
    .where('modseq', '>', modseq)
    .orderBy('uid')
    .execute();
  const changed = rows.filter((r) => r.deleted_at === null).map(toFlagState);
  const expunged = rows.filter((r) => r.deleted_at !== null).map((r) => Number(r.uid));
  // The folder was read before the entries, so a change committed in between can carry a MODSEQ
  // above folder.highest_modseq. Reporting the maximum is safe: MODSEQs of one folder are allocated
  // under its row lock and so commit in order — seeing n means everything below n is visible too.
  const highest = rows.reduce((max, r) => Math.max(max, Number(r.modseq)), Number(folder.highest_modseq));
  return { highestModseq: highest, changed, expunged };
}
