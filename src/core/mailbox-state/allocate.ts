/**
 * UID and MODSEQ allocation.
 *
 * One atomic `UPDATE folders … RETURNING` per folder and transaction: on PostgreSQL the row lock
 * it takes (or already holds via lockFolder) serialises concurrent writers until commit, so two
 * appenders can never receive the same UID; on SQLite the IMMEDIATE transaction does the same.
 * A rolled-back transaction rolls the counters back with it, so UIDs stay gap-free in practice,
 * and because the counters only ever grow an expunged UID is never handed out again
 * (RFC 9051 §2.3.1.1: strictly ascending, never reused within one UIDVALIDITY).
 */
import type { Tx } from './db.js';
import { LimitExceededError, NotFoundError } from './errors.js';

/** UIDs are 32-bit nz-numbers (RFC 9051 §9 "uniqueid"). */
export const MAX_UID = 4294967295;

export interface Allocation {
  uidValidity: number;
  /** First of `uids` consecutive new UIDs (meaningless when 0 were asked for). */
  firstUid: number;
  /** First of `modseqs` consecutive new MODSEQs (RFC 7162 §3.1: per-folder, strictly increasing). */
  firstModseq: number;
  /** The folder's HIGHESTMODSEQ after this allocation. */
  highestModseq: number;
  uidNext: number;
}

export async function allocate(trx: Tx, folderId: string, uids: number, modseqs: number): Promise<Allocation> {
  const row = await trx
    .updateTable('folders')
    .set((eb) => ({
      uid_next: eb('uid_next', '+', uids),
      highest_modseq: eb('highest_modseq', '+', modseqs),
    }))
    .where('id', '=', folderId)
    .where('deleted_at', 'is', null)
    .returning(['uid_next', 'highest_modseq', 'uid_validity'])
    .executeTakeFirst();
  if (!row) throw new NotFoundError('folder', folderId);
  const uidNext = Number(row.uid_next);
  if (uidNext - 1 > MAX_UID) {
    // Rolls back with the transaction; a new UIDVALIDITY would be needed to continue.
    throw new LimitExceededError('UIDs per folder', MAX_UID, `folder ${folderId}`);
  }
  const highestModseq = Number(row.highest_modseq);
  return {
    uidValidity: Number(row.uid_validity),
    firstUid: uidNext - uids,
    firstModseq: highestModseq - modseqs + 1,
    highestModseq,
    uidNext,
  };
}
