/**
 * Batched writes of folder entries, shared by deliver, copy/move, flags and expunge.
 *
 * Updates use `UPDATE … FROM (VALUES …)`, supported by both PostgreSQL and SQLite (≥ 3.33), whose
 * VALUES columns are both named column1, column2, …; so a STORE on thousands of messages costs a
 * few statements instead of one per message. Casts pin the parameter types PostgreSQL would
 * otherwise infer as text inside VALUES.
 */
import { sql } from 'kysely';
import { chunks, type EntryRow, type Tx } from './db.js';
import { UID_CHUNK } from './limits.js';

/** Rows per multi-row INSERT (12 columns each: well under both dialects' bind limits). */
const INSERT_CHUNK = 200;

export async function insertEntries(trx: Tx, rows: EntryRow[]): Promise<void> {
  for (const part of chunks(rows, INSERT_CHUNK)) await trx.insertInto('folder_entries').values(part).execute();
}

export interface FlagUpdate {
  id: string;
  modseq: number;
  flagsJson: string;
  keywordsJson: string;
}

export async function updateEntryFlags(trx: Tx, updates: FlagUpdate[]): Promise<void> {
  for (const part of chunks(updates, UID_CHUNK)) {
    const values = sql.join(part.map((u) => sql`(${u.id}, ${u.flagsJson}, ${u.keywordsJson}, CAST(${u.modseq} AS BIGINT))`));
    await sql`UPDATE folder_entries SET flags_json = v.column2, keywords_json = v.column3, modseq = v.column4
      FROM (VALUES ${values}) AS v WHERE folder_entries.id = v.column1`.execute(trx);
  }
}

/** Logical deletion (expunge): the row stays, with deleted_at and a new MODSEQ, so changesSince can report it. */
export async function markEntriesDeleted(trx: Tx, updates: { id: string; modseq: number }[], deletedAt: number): Promise<void> {
  for (const part of chunks(updates, UID_CHUNK)) {
    const values = sql.join(part.map((u) => sql`(${u.id}, CAST(${u.modseq} AS BIGINT))`));
    await sql`UPDATE folder_entries SET deleted_at = ${deletedAt}, modseq = v.column2
      FROM (VALUES ${values}) AS v WHERE folder_entries.id = v.column1`.execute(trx);
  }
}

/** Live entries of a folder with the given UIDs (in chunks), ascending by UID. */
export async function liveEntriesByUid(trx: Tx, folderId: string, uids: readonly number[]): Promise<EntryRow[]> {
  const wanted = [...new Set(uids.filter((u) => Number.isSafeInteger(u) && u > 0))].sort((a, b) => a - b);
  const out: EntryRow[] = [];
  for (const part of chunks(wanted, UID_CHUNK)) {
    const rows = await trx
      .selectFrom('folder_entries')
      .selectAll()
      .where('folder_id', '=', folderId)
      .where('uid', 'in', part)
      .where('deleted_at', 'is', null)
      .orderBy('uid')
      .execute();
    out.push(...rows);
  }
  return out;
}
