/**
 * Writes a new job row, through whichever Kysely the caller hands in: the Database itself (the job
 * commits on its own) or a transaction (the job commits or rolls back with the caller's data).
 */
import type { Kysely } from 'kysely';
import type { DB } from '../store/db/types.js';
import type { JobRow } from './claim.js';

/** How often a dedupe insert is retried when the key's holder vanishes between our two statements. */
const DEDUPE_TRIES = 3;

/**
 * Inserts `row` and returns its id with `created: true`, or — when `row.dedupe_key` is already taken —
 * the holder's id with `created: false` (nothing new to announce).
 *
 * The unique index on `dedupe_key` decides races between nodes; the loser returns the winner's id.
 * Inside a transaction this holds too: on PostgreSQL (READ COMMITTED, the default) an insert that
 * meets another transaction's uncommitted key waits for it, then either finds the key committed (and
 * the follow-up SELECT, a new snapshot, sees the holder) or free again after a rollback. Under
 * REPEATABLE READ or SERIALIZABLE PostgreSQL reports such a race as a serialization failure instead,
 * which the caller retries like any other. SQLite serializes writers, so no race arises there.
 */
export async function insertJob(db: Kysely<DB>, row: JobRow): Promise<{ id: string; created: boolean }> {
  const dedupeKey = row.dedupe_key;
  if (dedupeKey === null) {
    await db.insertInto('queue_jobs').values(row).execute();
    return { id: row.id, created: true };
  }
  for (let i = 0; i < DEDUPE_TRIES; i++) {
    const inserted = await db
      .insertInto('queue_jobs')
      .values(row)
      .onConflict((oc) => oc.column('dedupe_key').doNothing())
      .returning('id')
      .executeTakeFirst();
    if (inserted) return { id: inserted.id, created: true };
    const existing = await db.selectFrom('queue_jobs').select('id').where('dedupe_key', '=', dedupeKey).executeTakeFirst();
    if (existing) return { id: existing.id, created: false };
    // The holder of the key was deleted between our two statements: try the insert again.
  }
  throw new Error(`could not enqueue job with dedupeKey ${JSON.stringify(dedupeKey)}: the key kept changing hands`);
}
