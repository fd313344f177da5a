/**
 * The `Queue` port (SPEC §2 "Queue in the first release"): durable jobs with delays, retries on a
 * backoff schedule and a dead-letter state. Adapters: the database (PostgreSQL `FOR UPDATE SKIP
 * LOCKED`, SQLite in one process) and, later, NATS JetStream behind the same interface.
 *
 * Delivery is at-least-once: a worker that dies mid-job loses its lease and the job runs again on
 * another worker, so handlers must be idempotent. A job is never run by two workers at once while
 * its lease holds.
 */
import type { Kysely } from 'kysely';
import type { DB, JobStatus } from '../store/db/types.js';

export interface EnqueueOptions {
  /** The job's id (a UUID), chosen by the caller; default a new one. The transactional outbox uses it. */
  id?: string;
  /** Run no earlier than this many ms from now. */
  delayMs?: number;
  maxAttempts?: number;
  /** Delays in seconds before attempt 2, 3, …; the last one repeats. */
  backoffSeconds?: number[];
  /** A second enqueue with the same key returns the existing job id instead of adding one. */
  dedupeKey?: string;
}

export interface Job<T = unknown> {
  id: string;
  queue: string;
  payload: T;
  status: JobStatus;
  attempts: number;
  maxAttempts: number;
  runAt: number;
  lastError: string | null;
  lockedBy: string | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

export type JobHandler<T = unknown> = (job: Job<T>, signal: AbortSignal) => Promise<void>;

export interface WorkerOptions {
  concurrency?: number;
}

export interface QueueStats {
  queue: string;
  status: JobStatus;
  count: number;
}

export interface Queue {
  readonly kind: 'database' | 'nats';
  enqueue<T>(queue: string, payload: T, opts?: EnqueueOptions): Promise<string>;
  /**
   * Like `enqueue`, but the job is written inside the caller's transaction `trx`, so it commits or
   * rolls back together with the data it refers to (SPEC §3.1 step 7: a crash between committing a
   * message and a separate enqueue would lose its post_receive job). Workers are never woken before
   * the commit; call `wake(queue)` after it (see the adapter for what each backend does). Only
   * adapters that keep jobs in the application's database offer it (the database adapter does, a
   * NATS one could not), hence optional.
   */
  enqueueIn?<T>(trx: Kysely<DB>, queue: string, payload: T, opts?: EnqueueOptions): Promise<string>;
  /**
   * Tells this process's idle workers of `queue` that a job is due, e.g. after committing a
   * transaction that used `enqueueIn`. A hint only: without it the job runs at the next poll.
   */
  wake?(queue: string): void;
  /** Starts consuming `queue` with `handler` until `stop`. */
  work<T>(queue: string, handler: JobHandler<T>, opts?: WorkerOptions): void;
  get(id: string): Promise<Job | null>;
  list(filter?: { queue?: string; status?: JobStatus; limit?: number; cursor?: string }): Promise<{ jobs: Job[]; cursor: string | null }>;
  /** Makes a waiting or dead job due now (attempts of a dead job start over). */
  retryNow(id: string): Promise<boolean>;
  delete(id: string): Promise<boolean>;
  stats(): Promise<QueueStats[]>;
  /** Latency of a round-trip to the queue's storage, for /health/ready. */
  ping(): Promise<number>;
  /** Stops taking jobs and waits up to `drainMs` for running ones; unfinished ones are released. */
  stop(drainMs?: number): Promise<void>;
}
