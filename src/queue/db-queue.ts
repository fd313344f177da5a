/**
 * The database adapter of the `Queue` port (SPEC §2 "Queue in the first release"): jobs live in
 * `queue_jobs`, in SQLite for the embedded shape and in PostgreSQL for the cluster shape.
 *
 * - Workers poll every `pollIntervalMs` and re-poll at once while they find jobs. Enqueue wakes idle
 *   workers early: in this process through an in-memory signal, on other nodes through PostgreSQL
 *   `NOTIFY mairust_queue, '<queue>'` (one `LISTEN` connection per database pool). The wake-up is only a
 *   hint: a lost notification costs at most one poll interval.
 * - A claimed job is leased for `leaseSeconds`; a heartbeat renews the lease every third of it while
 *   the handler runs. A worker that dies stops renewing, and the job is claimed again by anyone once
 *   the lease has expired (at-least-once delivery; handlers are idempotent).
 * - Failures are retried on the job's backoff schedule and dead-lettered after `maxAttempts`.
 *
 * The lease SQL (and why results are fenced) is in ./claim.ts, the schedules in ./backoff.ts.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type pg from 'pg';
import { sql } from 'kysely';
import { newId, now, type Database } from '../store/db/database.js';
import type { JobStatus } from '../store/db/types.js';
import type { EnqueueOptions, Job, JobHandler, Queue, QueueStats, WorkerOptions } from './queue.js';
import { backoffDelayMs, parseBackoff, validateBackoff, validateMaxAttempts } from './backoff.js';
import {
  claimJobs,
  completeJob,
  deadLetterExpired,
  extendLease,
  failJob,
  releaseJob,
  type JobRow,
  type Lease,
} from './claim.js';

export type QueueMetricEvent = 'completed' | 'failed' | 'dead';

export interface DatabaseQueueOptions {
  /** This node's name; stored in `locked_by` of the jobs it runs. */
  nodeId: string;
  pollIntervalMs?: number;
  leaseSeconds?: number;
  defaultBackoffSeconds?: number[];
  defaultMaxAttempts?: number;
  logger?: Logger;
  onMetrics?: (event: QueueMetricEvent, queue: string) => void;
}

/** What a config reload may change (SPEC: `queue.*` keys marked reloadable, plus the lease). */
export type DatabaseQueueSettings = Pick<DatabaseQueueOptions, 'pollIntervalMs' | 'leaseSeconds' | 'defaultBackoffSeconds' | 'defaultMaxAttempts'>;

interface Settings {
  pollIntervalMs: number;
  leaseSeconds: number;
  defaultBackoffSeconds: readonly number[];
  defaultMaxAttempts: number;
}

/** PostgreSQL channel for "a job became due" hints; the payload is the queue name. */
export const NOTIFY_CHANNEL = 'mairust_queue';
/** Shown in pg_stat_activity, so operators (and tests) can find the listening connection. */
export const LISTENER_APPLICATION_NAME = 'mairust-queue-listener';

/**
 * Payloads describe work (ids, blob keys, addresses), never message bodies, which belong in the blob
 * store. 256 KiB leaves room for large recipient lists while keeping rows small.
 */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
export const MAX_DEDUPE_KEY_CHARS = 200;
export const MAX_LIST_LIMIT = 1000;
export const DEFAULT_LIST_LIMIT = 50;
export const MAX_CONCURRENCY = 1000;
/** Longest allowed enqueue delay: a year. Anything later is almost certainly a unit mistake (s vs ms). */
export const MAX_DELAY_MS = 365 * 24 * 3600 * 1000;
/**
 * Queue names travel as NOTIFY payloads and show up in metrics labels, so they are short plain tokens
 * (e.g. `outbound`, `hooks.post_receive`).
 */
const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;
const STATUSES: readonly JobStatus[] = ['ready', 'running', 'done', 'dead'];
/** Rows removed per statement by `purgeDone`, so housekeeping never holds a long write lock. */
const PURGE_BATCH = 1000;

// ---------------------------------------------------------------------------------------------
// validation

function validateQueueName(queue: string): void {
  if (typeof queue !== 'string' || !QUEUE_NAME.test(queue)) {
    throw new RangeError(`queue name must be 1–100 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit (got ${JSON.stringify(queue)})`);
  }
}

function validateSettings(s: Settings): Settings {
  if (!Number.isFinite(s.pollIntervalMs) || s.pollIntervalMs < 1 || s.pollIntervalMs > 3_600_000) {
    throw new RangeError(`pollIntervalMs must be from 1 to 3600000 (got ${String(s.pollIntervalMs)})`);
  }
  // Fractions of a second are allowed so tests can watch a lease expire; the config schema keeps
  // production values at 5 s or more.
  if (!Number.isFinite(s.leaseSeconds) || s.leaseSeconds <= 0 || s.leaseSeconds > 86_400) {
    throw new RangeError(`leaseSeconds must be more than 0 and at most 86400 (got ${String(s.leaseSeconds)})`);
  }
  validateBackoff(s.defaultBackoffSeconds);
  validateMaxAttempts(s.defaultMaxAttempts);
  return s;
}

function pick(partial: DatabaseQueueSettings): Partial<Settings> {
  const out: Partial<Settings> = {};
  if (partial.pollIntervalMs !== undefined) out.pollIntervalMs = partial.pollIntervalMs;
  if (partial.leaseSeconds !== undefined) out.leaseSeconds = partial.leaseSeconds;
  if (partial.defaultBackoffSeconds !== undefined) out.defaultBackoffSeconds = [...partial.defaultBackoffSeconds];
  if (partial.defaultMaxAttempts !== undefined) out.defaultMaxAttempts = partial.defaultMaxAttempts;
  return out;
}

// ---------------------------------------------------------------------------------------------
// rows ↔ jobs, cursors

function toJob(row: JobRow, lenient: boolean): Job {
  let payload: unknown;
  try {
    payload = JSON.parse(row.payload_json);
  } catch (err) {
    // Inspection (list/show) must still work for a damaged row; a worker treats it as a failure.
    if (!lenient) throw new Error(`job ${row.id} has an unreadable payload: ${(err as Error).message}`);
    payload = row.payload_json;
  }
  return {
    id: row.id,
    queue: row.queue,
    payload,
    status: row.status,
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
    runAt: Number(row.run_at),
    lastError: row.last_error,
    lockedBy: row.locked_by,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
  };
}

function encodeCursor(row: { created_at: number; id: string }): string {
  return Buffer.from(JSON.stringify([Number(row.created_at), row.id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: number; id: string } {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && Number.isFinite(v[0]) && typeof v[1] === 'string') return { createdAt: v[0], id: v[1] };
  } catch {
    // reported below
  }
  throw new RangeError('invalid cursor: pass back the cursor returned by the previous list call');
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// wake-ups

/**
 * In-process wake-ups, shared by every DatabaseQueue over the same Database object (several queue
 * instances in one process, e.g. tests or a CLI enqueue next to a worker).
 */
const localBuses = new WeakMap<Database, EventEmitter>();
function localBus(db: Database): EventEmitter {
  let bus = localBuses.get(db);
  if (!bus) {
    bus = new EventEmitter();
    bus.setMaxListeners(0);
    localBuses.set(db, bus);
  }
  return bus;
}

type ListenerClient = pg.PoolClient & { mairustReleased?: boolean };

/** Returns a broken or unneeded connection for destruction, once (pg throws on a second release). */
function destroyClient(client: ListenerClient): boolean {
  if (client.mairustReleased) return false;
  client.mairustReleased = true;
  client.release(true); // `true` destroys it: a LISTEN connection must not go back to the pool
  return true;
}

/**
 * A dedicated PostgreSQL connection that LISTENs for due-job hints from other nodes and passes them to
 * the in-process bus. If it drops (server restart, network), workers keep polling and the listener
 * reconnects with a growing pause.
 */
class PgWakeListener {
  private client: ListenerClient | null = null;
  private closed = false;
  private retryMs = 250;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly onWake: (queue: string | null) => void,
    private readonly log: Logger | undefined,
  ) {}

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    this.timer = null;
    if (this.closed) return;
    let client: ListenerClient | null = null;
    try {
      client = await this.pool.connect();
      const c = client;
      c.on('error', (err) => this.drop(c, err));
      c.on('end', () => this.drop(c, new Error('connection ended')));
      c.on('notification', (msg) => {
        if (msg.channel === NOTIFY_CHANNEL) this.onWake(msg.payload ?? null);
      });
      await c.query(`SET application_name = '${LISTENER_APPLICATION_NAME}'`);
      await c.query(`LISTEN ${NOTIFY_CHANNEL}`);
      if (this.closed) {
        destroyClient(c);
        return;
      }
      this.client = c;
      this.retryMs = 250;
      // Hints sent while we were disconnected are lost: look once now instead of waiting a poll.
      this.onWake(null);
    } catch (err) {
      if (client) this.drop(client, err);
      else this.scheduleReconnect(err);
    }
  }

  private drop(client: ListenerClient, err: unknown): void {
    if (this.client === client) this.client = null;
    if (destroyClient(client)) this.scheduleReconnect(err);
  }

  private scheduleReconnect(err: unknown): void {
    if (this.closed || this.timer) return;
    this.log?.warn({ err: errorText(err), retryMs: this.retryMs }, 'queue listener lost its PostgreSQL connection; polling until it reconnects');
    this.timer = setTimeout(() => void this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 10_000);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const c = this.client;
    this.client = null;
    if (c) destroyClient(c);
  }
}

/**
 * One LISTEN connection per Database (pool), however many queue instances use it: each would
 * otherwise hold a pool connection for good.
 */
const pgListeners = new WeakMap<Database, { refs: number; listener: PgWakeListener }>();

function acquirePgListener(db: Database, log: Logger | undefined): void {
  if (db.dialect !== 'postgres' || !db.pgPool) return;
  let shared = pgListeners.get(db);
  if (!shared) {
    const bus = localBus(db);
    shared = { refs: 0, listener: new PgWakeListener(db.pgPool, (queue) => bus.emit('due', queue), log) };
    pgListeners.set(db, shared);
    shared.listener.start();
  }
  shared.refs++;
}

function releasePgListener(db: Database): void {
  const shared = pgListeners.get(db);
  if (!shared) return;
  if (--shared.refs > 0) return;
  pgListeners.delete(db);
  shared.listener.close();
}

// ---------------------------------------------------------------------------------------------
// workers

/** What a worker needs from its queue; settings are read on every use so a reload applies at once. */
interface WorkerHost {
  readonly db: Database;
  readonly workerId: string;
  settings(): Settings;
  readonly log: Logger | undefined;
  metric(event: QueueMetricEvent, queue: string): void;
}

export class LeaseLostError extends Error {
  constructor(jobId: string) {
    super(`lease on job ${jobId} was lost (it expired and another worker took the job, or the job was deleted)`);
    this.name = 'LeaseLostError';
  }
}

export class QueueStoppingError extends Error {
  constructor() {
    super('the queue is stopping: the job was handed back for another worker');
    this.name = 'QueueStoppingError';
  }
}

interface RunningJob {
  lease: Lease;
  controller: AbortController;
  /** Set when stop() handed the job back, or a heartbeat found the lease gone: the result is void. */
  abandoned: boolean;
  finished: Promise<void>;
}

class Worker {
  private readonly running = new Map<string, RunningJob>();
  private stopping = false;
  private woken = false;
  private wakeUp: (() => void) | null = null;
  private readonly loopDone: Promise<void>;

  constructor(
    private readonly host: WorkerHost,
    readonly queue: string,
    private readonly handler: JobHandler<unknown>,
    private readonly concurrency: number,
  ) {
    this.loopDone = this.loop();
  }

  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  private async loop(): Promise<void> {
    const { db, workerId, log } = this.host;
    while (!this.stopping) {
      // Any wake-up that arrived before this poll is answered by it.
      this.woken = false;
      const free = this.concurrency - this.running.size;
      let found = 0;
      if (free > 0) {
        try {
          const at = now();
          for (const row of await deadLetterExpired(db, this.queue, at)) {
            log?.error({ jobId: row.id, queue: row.queue, attempts: row.attempts }, 'job dead-lettered: its lease expired on the last attempt');
            this.host.metric('dead', row.queue);
          }
          const leaseMs = Math.round(this.host.settings().leaseSeconds * 1000);
          const rows = await claimJobs(db, { queue: this.queue, workerId, limit: free, leaseMs, now: at });
          found = rows.length;
          for (const row of rows) this.start(row, leaseMs);
        } catch (err) {
          log?.warn({ queue: this.queue, err: errorText(err) }, 'queue poll failed; retrying after the poll interval');
        }
      }
      // More jobs may be due right now: poll again at once while there is room to run them.
      if (found > 0 && this.running.size < this.concurrency) continue;
      await this.sleep(this.host.settings().pollIntervalMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.woken || this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  private start(row: JobRow, leaseMs: number): void {
    const entry: RunningJob = {
      lease: { id: row.id, workerId: this.host.workerId, attempts: Number(row.attempts) },
      controller: new AbortController(),
      abandoned: false,
      finished: Promise.resolve(),
    };
    this.running.set(row.id, entry);
    entry.finished = this.execute(row, entry, leaseMs)
      .catch((err) => this.host.log?.error({ jobId: row.id, err: errorText(err) }, 'queue worker error'))
      .finally(() => {
        this.running.delete(row.id);
        this.wake(); // a slot is free
      });
  }

  private async execute(row: JobRow, entry: RunningJob, leaseMs: number): Promise<void> {
    const { db, log } = this.host;
    const { lease, controller } = entry;
    let settled = false;
    let timer: NodeJS.Timeout | null = null;
    const heartbeatMs = Math.max(Math.floor(leaseMs / 3), 1);
    const beat = async () => {
      timer = null;
      try {
        const held = await extendLease(db, lease, leaseMs, now());
        if (!held && !settled && !entry.abandoned) {
          entry.abandoned = true;
          log?.warn({ jobId: lease.id, queue: row.queue }, 'job lease lost; aborting the handler, its result will be discarded');
          controller.abort(new LeaseLostError(lease.id));
          return;
        }
      } catch (err) {
        // The lease may still hold; keep trying. If it expires meanwhile, the next beat notices.
        log?.warn({ jobId: lease.id, err: errorText(err) }, 'job lease renewal failed');
      }
      if (!settled) timer = setTimeout(() => void beat(), heartbeatMs);
    };
    timer = setTimeout(() => void beat(), heartbeatMs);

    let failure: { error: unknown } | null = null;
    try {
      const job = toJob(row, false);
      await this.handler(job, controller.signal);
    } catch (err) {
      failure = { error: err };
    } finally {
      settled = true;
      if (timer) clearTimeout(timer);
    }
    if (entry.abandoned) return;

    const at = now();
    if (!failure) {
      if (await this.persist(lease, () => completeJob(db, lease, at))) this.host.metric('completed', row.queue);
      return;
    }
    const attempts = lease.attempts;
    const schedule = parseBackoff(row.backoff_json, this.host.settings().defaultBackoffSeconds);
    const retryAt = attempts >= Number(row.max_attempts) ? null : at + backoffDelayMs(schedule, attempts);
    const error = errorText(failure.error);
    if (await this.persist(lease, () => failJob(db, lease, { error, retryAt, now: at }))) {
      if (retryAt === null) {
        log?.error({ jobId: lease.id, queue: row.queue, attempts, err: error }, 'job dead-lettered after its last attempt');
        this.host.metric('dead', row.queue);
      } else {
        log?.warn({ jobId: lease.id, queue: row.queue, attempts, retryAt, err: error }, 'job failed; will retry');
        this.host.metric('failed', row.queue);
      }
    }
  }

  /**
   * Writes a job's outcome, retrying briefly over a database hiccup. Returns false when the write did
   * not apply; the job then runs again once its lease expires (at-least-once).
   */
  private async persist(lease: Lease, write: () => Promise<boolean>): Promise<boolean> {
    const pauses = [100, 500, 2000];
    for (let i = 0; ; i++) {
      try {
        const applied = await write();
        if (!applied) this.host.log?.warn({ jobId: lease.id }, 'job result discarded: the lease was taken over or the job deleted');
        return applied;
      } catch (err) {
        if (i >= pauses.length) {
          this.host.log?.error({ jobId: lease.id, err: errorText(err) }, 'could not record job result; it will run again after its lease expires');
          return false;
        }
        await delay(pauses[i]);
      }
    }
  }

  /** Stops claiming, waits until `deadline` for running jobs, then aborts and hands back the rest. */
  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loopDone;
    const pending = [...this.running.values()].map((e) => e.finished);
    if (pending.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(deadline - Date.now(), 0));
      });
      await Promise.race([Promise.allSettled(pending), timeout]);
      clearTimeout(timer);
    }
    const left = [...this.running.values()];
    for (const e of left) {
      e.abandoned = true;
      e.controller.abort(new QueueStoppingError());
    }
    await Promise.allSettled(
      left.map(async (e) => {
        try {
          await releaseJob(this.host.db, e.lease, now());
        } catch (err) {
          this.host.log?.warn({ jobId: e.lease.id, err: errorText(err) }, 'could not hand back job at stop; it runs again after its lease expires');
        }
      }),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// the adapter

export class DatabaseQueue implements Queue {
  readonly kind = 'database' as const;
  private current: Settings;
  private readonly nodeId: string;
  private log: Logger | undefined;
  private readonly onMetrics: DatabaseQueueOptions['onMetrics'];
  private readonly workers: Worker[] = [];
  private localListener: ((queue: string | null) => void) | null = null;
  private stopped = false;

  constructor(
    private readonly db: Database,
    opts: DatabaseQueueOptions,
  ) {
    if (typeof opts.nodeId !== 'string' || opts.nodeId.length === 0 || opts.nodeId.length > 200) {
      throw new RangeError('nodeId must be a non-empty string of at most 200 characters');
    }
    this.nodeId = opts.nodeId;
    // The composition root may hand over a logger already bound to this component; binding it twice
    // would print the key twice in every line.
    this.log = opts.logger && opts.logger.bindings().component === undefined ? opts.logger.child({ component: 'queue' }) : opts.logger;
    this.onMetrics = opts.onMetrics;
    this.current = validateSettings({
      pollIntervalMs: opts.pollIntervalMs ?? 1000,
      leaseSeconds: opts.leaseSeconds ?? 300,
      defaultBackoffSeconds: [...(opts.defaultBackoffSeconds ?? [30, 120, 600])],
      defaultMaxAttempts: opts.defaultMaxAttempts ?? 4,
    });
  }

  /** Applies reloaded settings; running workers pick them up at their next poll or claim. */
  setOptions(partial: DatabaseQueueSettings): void {
    this.current = validateSettings({ ...this.current, ...pick(partial) });
    for (const w of this.workers) w.wake();
  }

  settings(): Readonly<Settings> {
    return this.current;
  }

  async enqueue<T>(queue: string, payload: T, opts: EnqueueOptions = {}): Promise<string> {
    validateQueueName(queue);
    const json = JSON.stringify(payload);
    if (json === undefined) throw new TypeError('job payload must be a JSON value (got undefined or a function)');
    const bytes = Buffer.byteLength(json);
    if (bytes > MAX_PAYLOAD_BYTES) {
      throw new RangeError(`job payload is ${bytes} bytes; at most ${MAX_PAYLOAD_BYTES} are allowed (put large data in the blob store and enqueue its key)`);
    }
    const delayMs = opts.delayMs ?? 0;
    if (!Number.isFinite(delayMs) || delayMs < 0 || delayMs > MAX_DELAY_MS) {
      throw new RangeError(`delayMs must be from 0 to ${MAX_DELAY_MS} (got ${String(delayMs)})`);
    }
    const maxAttempts = validateMaxAttempts(opts.maxAttempts ?? this.current.defaultMaxAttempts);
    const backoff = validateBackoff(opts.backoffSeconds ?? this.current.defaultBackoffSeconds);
    const dedupeKey = opts.dedupeKey ?? null;
    if (dedupeKey !== null && (typeof dedupeKey !== 'string' || dedupeKey.length === 0 || dedupeKey.length > MAX_DEDUPE_KEY_CHARS)) {
      throw new RangeError(`dedupeKey must be a non-empty string of at most ${MAX_DEDUPE_KEY_CHARS} characters`);
    }

    const at = now();
    const runAt = at + Math.round(delayMs);
    const row: JobRow = {
      id: newId(),
      queue,
      payload_json: json,
      status: 'ready',
      attempts: 0,
      max_attempts: maxAttempts,
      backoff_json: JSON.stringify(backoff),
      run_at: runAt,
      locked_by: null,
      locked_until: null,
      last_error: null,
      dedupe_key: dedupeKey,
      created_at: at,
      updated_at: at,
      finished_at: null,
    };

    let id = row.id;
    if (dedupeKey === null) {
      await this.db.kysely.insertInto('queue_jobs').values(row).execute();
    } else {
      id = await this.insertDeduplicated(row, dedupeKey);
      if (id !== row.id) return id; // already queued (or run): nothing new to announce
    }
    if (runAt <= at) await this.announce(queue);
    return id;
  }

  /** The unique index on dedupe_key decides races between nodes; the loser returns the winner's id. */
  private async insertDeduplicated(row: JobRow, dedupeKey: string): Promise<string> {
    for (let i = 0; i < 3; i++) {
      const inserted = await this.db.kysely
        .insertInto('queue_jobs')
        .values(row)
        .onConflict((oc) => oc.column('dedupe_key').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (inserted) return inserted.id;
      const existing = await this.db.kysely.selectFrom('queue_jobs').select('id').where('dedupe_key', '=', dedupeKey).executeTakeFirst();
      if (existing) return existing.id;
      // The holder of the key was deleted between our two statements: try the insert again.
    }
    throw new Error(`could not enqueue job with dedupeKey ${JSON.stringify(dedupeKey)}: the key kept changing hands`);
  }

  /** Wakes idle workers for `queue` here and, on PostgreSQL, on other nodes. Best effort. */
  private async announce(queue: string): Promise<void> {
    localBus(this.db).emit('due', queue);
    if (this.db.dialect !== 'postgres') return;
    try {
      await sql`SELECT pg_notify(${NOTIFY_CHANNEL}, ${queue})`.execute(this.db.kysely);
    } catch (err) {
      this.log?.warn({ queue, err: errorText(err) }, 'queue NOTIFY failed; workers will find the job at their next poll');
    }
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

  private ensureWakeSources(): void {
    if (this.localListener) return;
    this.localListener = (queue: string | null) => this.wake(queue);
    localBus(this.db).on('due', this.localListener);
    acquirePgListener(this.db, this.log);
  }

  /** `null` wakes every worker (e.g. after the listener reconnected and may have missed hints). */
  private wake(queue: string | null): void {
    for (const w of this.workers) if (queue === null || w.queue === queue) w.wake();
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

  async list(filter: { queue?: string; status?: JobStatus; limit?: number; cursor?: string } = {}): Promise<{ jobs: Job[]; cursor: string | null }> {
    const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new RangeError(`limit must be an integer from 1 to ${MAX_LIST_LIMIT} (got ${String(limit)})`);
    }
    if (filter.status !== undefined && !STATUSES.includes(filter.status)) {
      throw new RangeError(`status must be one of ${STATUSES.join(', ')} (got ${JSON.stringify(filter.status)})`);
    }
    let q = this.db.kysely.selectFrom('queue_jobs').selectAll();
    if (filter.queue !== undefined) q = q.where('queue', '=', filter.queue);
    if (filter.status !== undefined) q = q.where('status', '=', filter.status);
    if (filter.cursor) {
      const c = decodeCursor(filter.cursor);
      q = q.where((eb) => eb.or([eb('created_at', '>', c.createdAt), eb.and([eb('created_at', '=', c.createdAt), eb('id', '>', c.id)])]));
    }
    const rows = await q.orderBy('created_at').orderBy('id').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    return { jobs: page.map((r) => toJob(r, true)), cursor: rows.length > limit ? encodeCursor(page[page.length - 1]) : null };
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
    await this.announce(row.queue);
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
      localBus(this.db).off('due', this.localListener);
      this.localListener = null;
      releasePgListener(this.db);
    }
  }
}
