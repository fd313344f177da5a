/**
 * The SQL of a job's lease: claim, extend, complete, fail, release.
 *
 * A claim sets `status='running'`, `locked_by` (the worker) and `locked_until` (lease end) and counts
 * the attempt. Every later statement of that run is fenced on (id, status running, locked_by,
 * attempts): once the lease expired and another worker re-claimed the job (which bumps `attempts`),
 * the first worker's late result matches no row and changes nothing. This is what keeps "never run by
 * two workers at once while its lease holds" honest even when a worker stalls (src/queue/queue.ts).
 *
 * Timestamps are the application's clock (`now()` in ms, like every other table). Nodes of a cluster
 * are expected to run NTP; a skew far below the lease length (minutes by default) is harmless.
 */
import { sql, type ExpressionBuilder } from 'kysely';
import type { Database } from '../store/db/database.js';
import type { DB, QueueJobsTable } from '../store/db/types.js';

export type JobRow = QueueJobsTable;

/** Identifies one claim of one job: the fence for every statement after the claim. */
export interface Lease {
  id: string;
  workerId: string;
  attempts: number;
}

/** Error texts are stored for operators, not as a log: long stack dumps are cut here. */
export const MAX_ERROR_CHARS = 2000;

function changed(result: { numUpdatedRows: bigint } | { numDeletedRows: bigint }): boolean {
  const n = 'numUpdatedRows' in result ? result.numUpdatedRows : result.numDeletedRows;
  return Number(n) > 0;
}

function fenced(eb: ExpressionBuilder<DB, 'queue_jobs'>, lease: Lease) {
  return eb.and([
    eb('id', '=', lease.id),
    eb('status', '=', 'running'),
    eb('locked_by', '=', lease.workerId),
    eb('attempts', '=', lease.attempts),
  ]);
}

/**
 * A job is claimable when it is ready and due, or running under a lease that expired (its worker
 * died or hung) and it still has attempts left.
 */
function claimable(eb: ExpressionBuilder<DB, 'queue_jobs'>, queue: string, at: number) {
  return eb.and([
    eb('queue', '=', queue),
    eb.or([
      eb.and([eb('status', '=', 'ready'), eb('run_at', '<=', at)]),
      eb.and([eb('status', '=', 'running'), eb('locked_until', '<', at), eb('attempts', '<', eb.ref('max_attempts'))]),
    ]),
  ]);
}

/**
 * Claims up to `limit` due jobs of `queue` for `workerId`, oldest `run_at` first.
 *
 * PostgreSQL: the inner SELECT takes row locks with `FOR UPDATE SKIP LOCKED`, so concurrent workers on
 * other nodes each get different rows without waiting on one another; a row another transaction just
 * claimed is re-checked against the WHERE after its commit (READ COMMITTED) and dropped.
 * SQLite: one UPDATE statement is its own transaction and takes the write lock before it reads, so no
 * other connection (or process sharing the file) can claim the same rows between the read and write.
 */
export async function claimJobs(
  db: Database,
  args: { queue: string; workerId: string; limit: number; leaseMs: number; now: number },
): Promise<JobRow[]> {
  const { queue, workerId, limit, leaseMs, now: at } = args;
  let due = db.kysely
    .selectFrom('queue_jobs')
    .select('id')
    .where((eb) => claimable(eb, queue, at))
    .orderBy('run_at')
    .limit(limit);
  if (db.dialect === 'postgres') due = due.forUpdate().skipLocked();
  const rows = await db.kysely
    .updateTable('queue_jobs')
    .set({
      status: 'running',
      locked_by: workerId,
      locked_until: at + leaseMs,
      attempts: sql<number>`attempts + 1`,
      updated_at: at,
    })
    .where('id', 'in', due)
    // Repeated so a row that changed between the subquery and the update is never taken twice.
    .where((eb) => claimable(eb, queue, at))
    .returningAll()
    .execute();
  return rows.sort((a, b) => Number(a.run_at) - Number(b.run_at));
}

/**
 * A job whose lease expired on its last attempt goes to the dead letter: a job that keeps killing its
 * worker (crash, out of memory) must not be handed to worker after worker forever.
 */
export async function deadLetterExpired(db: Database, queue: string, at: number): Promise<JobRow[]> {
  return db.kysely
    .updateTable('queue_jobs')
    .set({
      status: 'dead',
      locked_by: null,
      locked_until: null,
      last_error: sql<string>`'lease expired on the last attempt: the worker stopped responding'`,
      updated_at: at,
      finished_at: at,
    })
    .where('queue', '=', queue)
    .where('status', '=', 'running')
    .where('locked_until', '<', at)
    .where((eb) => eb('attempts', '>=', eb.ref('max_attempts')))
    .returningAll()
    .execute();
}

/** Heartbeat: pushes the lease end forward. False means the lease is gone (taken over or deleted). */
export async function extendLease(db: Database, lease: Lease, leaseMs: number, at: number): Promise<boolean> {
  const r = await db.kysely
    .updateTable('queue_jobs')
    .set({ locked_until: at + leaseMs, updated_at: at })
    .where((eb) => fenced(eb, lease))
    .executeTakeFirst();
  return changed(r);
}

/** Success: the row is kept as `done` (history for `queue list`) until `purgeDone` removes it. */
export async function completeJob(db: Database, lease: Lease, at: number): Promise<boolean> {
  const r = await db.kysely
    .updateTable('queue_jobs')
    .set({ status: 'done', locked_by: null, locked_until: null, updated_at: at, finished_at: at })
    .where((eb) => fenced(eb, lease))
    .executeTakeFirst();
  return changed(r);
}

/** Failure: back to `ready` at `retryAt`, or `dead` when `retryAt` is null (no attempts left). */
export async function failJob(db: Database, lease: Lease, args: { error: string; retryAt: number | null; now: number }): Promise<boolean> {
  const error = args.error.length > MAX_ERROR_CHARS ? `${args.error.slice(0, MAX_ERROR_CHARS - 1)}…` : args.error;
  const r = await db.kysely
    .updateTable('queue_jobs')
    .set(
      args.retryAt === null
        ? { status: 'dead', locked_by: null, locked_until: null, last_error: error, updated_at: args.now, finished_at: args.now }
        : { status: 'ready', locked_by: null, locked_until: null, last_error: error, updated_at: args.now, run_at: args.retryAt },
    )
    .where((eb) => fenced(eb, lease))
    .executeTakeFirst();
  return changed(r);
}

/**
 * Graceful stop: hands an unfinished job back at once instead of letting it wait for its lease to
 * expire. The attempt is not counted: the job did not fail, this node went away.
 */
export async function releaseJob(db: Database, lease: Lease, at: number): Promise<boolean> {
  const r = await db.kysely
    .updateTable('queue_jobs')
    .set({
      status: 'ready',
      locked_by: null,
      locked_until: null,
      run_at: at,
      attempts: sql<number>`attempts - 1`,
      updated_at: at,
    })
    .where((eb) => fenced(eb, lease))
    .executeTakeFirst();
  return changed(r);
}
