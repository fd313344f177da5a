/**
 * The database adapter of the `Queue` port (SPEC §2 "Queue in the first release"): jobs live in
 * `queue_jobs`, in SQLite for the embedded shape and in PostgreSQL for the cluster shape.
 *
 * This file is the adapter's face: enqueue (on its own or inside a caller's transaction), inspection
 * and housekeeping, and the wiring of workers to wake-ups. The parts live next to it:
 *   ./worker.ts    the poll/claim/run/heartbeat loop of one queue name
 *   ./claim.ts     the lease SQL and why every result is fenced
 *   ./wakeup.ts    in-process wake-ups and the PostgreSQL LISTEN/NOTIFY hints
 *   ./job-row.ts   enqueue validation and row ↔ Job mapping
 *   ./insert-job.ts, ./list.ts, ./options.ts, ./backoff.ts, ./errors.ts
 */
import type { Logger } from 'pino';
import { sql, type Kysely } from 'kysely';
import { now, type Database } from '../store/db/database.js';
import type { DB, JobStatus } from '../store/db/types.js';
import type { EnqueueOptions, Job, JobHandler, Queue, QueueStats, WorkerOptions } from './queue.js';
import type { JobRow } from './claim.js';
import { errorText } from './errors.js';
import { insertJob } from './insert-job.js';
import { newJobRow, toJob, validateQueueName } from './job-row.js';
import { listJobs } from './list.js';
import {
  initialSettings,
  mergeSettings,
  validateNodeId,
  type DatabaseQueueOptions,
  type DatabaseQueueSettings,
  type QueueMetricEvent,
  type QueueSettings,
} from './options.js';
import { acquirePgListener, announce, emitDue, notifyInTransaction, offDue, onDue, releasePgListener, type DueListener } from './wakeup.js';
import { MAX_CONCURRENCY, Worker, type WorkerHost } from './worker.js';

// Every name this file exported before the split stays importable from here.
export type { DatabaseQueueOptions, DatabaseQueueSettings, QueueMetricEvent, QueueSettings } from './options.js';
export { LeaseLostError, QueueStoppingError } from './errors.js';
export { NOTIFY_CHANNEL, LISTENER_APPLICATION_NAME } from './wakeup.js';
export { MAX_PAYLOAD_BYTES, MAX_DEDUPE_KEY_CHARS, MAX_DELAY_MS } from './job-row.js';
export { MAX_LIST_LIMIT, DEFAULT_LIST_LIMIT } from './list.js';
export { MAX_CONCURRENCY } from './worker.js';

/** Rows removed per statement by `purgeDone`, so housekeeping never holds a long write lock. */
const PURGE_BATCH = 1000;

export class DatabaseQueue implements Queue {
  readonly kind = 'database' as const;
  private current: QueueSettings;
  private readonly nodeId: string;
  private readonly log: Logger | undefined;
  private readonly onMetrics: DatabaseQueueOptions['onMetrics'];
  private readonly workers: Worker[] = [];
  private localListener: DueListener | null = null;
  private stopped = false;

  constructor(
    private readonly db: Database,
    opts: DatabaseQueueOptions,
  ) {
    this.nodeId = validateNodeId(opts.nodeId);
    // The composition root may hand over a logger already bound to this component; binding it twice
    // would print the key twice in every line.
    this.log = opts.logger && opts.logger.bindings().component === undefined ? opts.logger.child({ component: 'queue' }) : opts.logger;
    this.onMetrics = opts.onMetrics;
    this.current = initialSettings(opts);
  }

  /** Applies reloaded settings; running workers pick them up at their next poll or claim. */
  setOptions(partial: DatabaseQueueSettings): void {
    this.current = mergeSettings(this.current, partial);
    for (const w of this.workers) w.wake();
  }

  settings(): Readonly<QueueSettings> {
    return this.current;
  }

  async enqueue<T>(queue: string, payload: T, opts: EnqueueOptions = {}): Promise<string> {
    const row = this.newRow(queue, payload, opts);
    const { id, created } = await insertJob(this.db.kysely, row);
    // A deduplicated enqueue found the job already queued (or run): nothing new to announce.
    if (created && isDue(row)) await announce(this.db, queue, this.log);
    return id;
  }

  /**
   * Enqueues inside the caller's transaction `trx` (a transaction of this queue's Database), so the
   * job exists exactly when the data it refers to does (SPEC §3.1 step 7):
   *
   *   const id = await db.kysely.transaction().execute(async (trx) => {
   *     await storeMessage(trx, …);
   *     return queue.enqueueIn(trx, 'hooks.post_receive', { messageId }, { dedupeKey: `post_receive:${messageId}` });
   *   });
   *   queue.wake('hooks.post_receive');
   *
   * Limits are checked before the first statement, so a refused job throws without aborting the
   * caller's PostgreSQL transaction. `dedupeKey` works as with `enqueue`; a key held by a transaction
   * still in flight makes PostgreSQL wait for it (see ./insert-job.ts).
   *
   * Wake-ups never fire before the commit. On PostgreSQL the NOTIFY is issued in `trx`: PostgreSQL
   * delivers it to every node (this one included) at commit and drops it on rollback. SQLite has no
   * such thing, so the caller calls `wake(queue)` after the commit — do it on both dialects (on
   * PostgreSQL it merely spares this node the LISTEN round trip); forgetting it delays the job by at
   * most one poll interval. A wake after a rollback is harmless: the workers find nothing.
   *
   * The caller's transaction must not use `this.db.kysely` meanwhile: on SQLite the transaction holds
   * the only connection, so everything here goes through `trx`.
   */
  async enqueueIn<T>(trx: Kysely<DB>, queue: string, payload: T, opts: EnqueueOptions = {}): Promise<string> {
    const row = this.newRow(queue, payload, opts);
    const { id, created } = await insertJob(trx, row);
    if (created && isDue(row)) await notifyInTransaction(this.db, trx, queue);
    return id;
  }

  /** Wakes this process's idle workers of `queue` now (after committing an `enqueueIn`). */
  wake(queue: string): void {
    validateQueueName(queue);
    emitDue(this.db, queue);
  }

  private newRow(queue: string, payload: unknown, opts: EnqueueOptions): JobRow {
    const defaults = { maxAttempts: this.current.defaultMaxAttempts, backoffSeconds: this.current.defaultBackoffSeconds };
    return newJobRow(queue, payload, opts, defaults, now());
  }

  work<T>(queue: string, handler: JobHandler<T>, opts: WorkerOptions = {}): void {
    if (this.stopped) throw new Error('this queue was stopped; create a new one to run workers again');
    validateQueueName(queue);
    const concurrency = opts.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
      throw new RangeError(`concurrency must be an integer from 1 to ${MAX_CONCURRENCY} (got ${String(concurrency)})`);
    }
    this.ensureWakeSources();
    const host: WorkerHost = {
      db: this.db,
      workerId: this.nodeId,
      settings: () => this.current,
      log: this.log,
      metric: (event, q) => this.metric(event, q),
    };
    this.workers.push(new Worker(host, queue, handler as JobHandler<unknown>, concurrency));
  }

  /** Subscribes once, when the first worker starts: a queue that only enqueues listens to nothing. */
  private ensureWakeSources(): void {
    if (this.localListener) return;
    // `null` wakes every worker (e.g. after the listener reconnected and may have missed hints).
    this.localListener = (queue: string | null) => {
      for (const w of this.workers) if (queue === null || w.queue === queue) w.wake();
    };
    onDue(this.db, this.localListener);
    acquirePgListener(this.db, this.log);
  }

  private metric(event: QueueMetricEvent, queue: string): void {
    try {
      this.onMetrics?.(event, queue);
    } catch (err) {
      this.log?.warn({ err: errorText(err) }, 'queue metrics callback failed');
    }
  }

  async get(id: string): Promise<Job | null> {
    const row = await this.db.kysely.selectFrom('queue_jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toJob(row, true) : null;
  }

  list(filter: { queue?: string; status?: JobStatus; limit?: number; cursor?: string } = {}): Promise<{ jobs: Job[]; cursor: string | null }> {
    return listJobs(this.db.kysely, filter);
  }

  async retryNow(id: string): Promise<boolean> {
    const at = now();
    const row = await this.db.kysely
      .updateTable('queue_jobs')
      .set({
        status: 'ready',
        run_at: at,
        // A dead job gets a full set of attempts again; a waiting one keeps its count.
        attempts: sql<number>`CASE WHEN status = 'dead' THEN 0 ELSE attempts END`,
        finished_at: null,
        updated_at: at,
      })
      .where('id', '=', id)
      .where('status', 'in', ['ready', 'dead'])
      .returning('queue')
      .executeTakeFirst();
    if (!row) return false;
    await announce(this.db, row.queue, this.log);
    return true;
  }

  async delete(id: string): Promise<boolean> {
    const r = await this.db.kysely.deleteFrom('queue_jobs').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async stats(): Promise<QueueStats[]> {
    const rows = await this.db.kysely
      .selectFrom('queue_jobs')
      .select(['queue', 'status', (eb) => eb.fn.countAll().as('count')])
      .groupBy(['queue', 'status'])
      .orderBy('queue')
      .orderBy('status')
      .execute();
    return rows.map((r) => ({ queue: r.queue, status: r.status, count: Number(r.count) }));
  }

  async ping(): Promise<number> {
    const t = performance.now();
    await this.db.kysely.selectFrom('queue_jobs').select('id').limit(1).execute();
    return performance.now() - t;
  }

  /** Housekeeping: deletes `done` jobs finished more than `olderThanMs` ago; returns how many. */
  async purgeDone(olderThanMs: number): Promise<number> {
    if (!Number.isFinite(olderThanMs) || olderThanMs < 0) throw new RangeError(`olderThanMs must be a number >= 0 (got ${String(olderThanMs)})`);
    const cutoff = now() - olderThanMs;
    let total = 0;
    for (;;) {
      const batch = this.db.kysely
        .selectFrom('queue_jobs')
        .select('id')
        .where('status', '=', 'done')
        .where('finished_at', '<', cutoff)
        .limit(PURGE_BATCH);
      const r = await this.db.kysely.deleteFrom('queue_jobs').where('id', 'in', batch).executeTakeFirst();
      const n = Number(r.numDeletedRows);
      total += n;
      if (n < PURGE_BATCH) return total;
    }
  }

  async stop(drainMs = 30_000): Promise<void> {
    if (!Number.isFinite(drainMs) || drainMs < 0) throw new RangeError(`drainMs must be a number >= 0 (got ${String(drainMs)})`);
    this.stopped = true;
    const deadline = Date.now() + drainMs;
    await Promise.all(this.workers.map((w) => w.stop(deadline)));
    if (this.localListener) {
      offDue(this.db, this.localListener);
      this.localListener = null;
      releasePgListener(this.db);
    }
  }
}

/** Only a job due now is worth a wake-up; a delayed one is found by the poll that follows its run_at. */
function isDue(row: JobRow): boolean {
  return row.run_at <= row.created_at;
}
