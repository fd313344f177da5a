/**
 * The consumer of one queue name on this node: polls for due jobs, claims up to its free concurrency,
 * runs the handler under a lease kept alive by a heartbeat, and records the outcome.
 *
 * - It polls every `pollIntervalMs` and re-polls at once while it finds jobs and has room; `wake()`
 *   (from ./wakeup.ts hints) cuts a sleep short.
 * - A claimed job is leased for `leaseSeconds`; the heartbeat renews the lease every third of it while
 *   the handler runs. A worker that dies stops renewing, and the job is claimed again by anyone once
 *   the lease has expired (at-least-once delivery; handlers are idempotent).
 * - Failures are retried on the job's backoff schedule and dead-lettered after `maxAttempts`.
 *
 * The lease SQL (and why results are fenced) is in ./claim.ts, the schedules in ./backoff.ts.
 */
import type { Logger } from 'pino';
import { now, type Database } from '../store/db/database.js';
import type { JobHandler } from './queue.js';
import type { QueueMetricEvent, QueueSettings } from './options.js';
import { backoffDelayMs, parseBackoff } from './backoff.js';
import { claimJobs, completeJob, deadLetterExpired, extendLease, failJob, releaseJob, type JobRow, type Lease } from './claim.js';
import { LeaseLostError, QueueStoppingError, errorText, isPermanentError } from './errors.js';
import { toJob } from './job-row.js';

export const MAX_CONCURRENCY = 1000;

/** What a worker needs from its queue; settings are read on every use so a reload applies at once. */
export interface WorkerHost {
  readonly db: Database;
  readonly workerId: string;
  settings(): QueueSettings;
  readonly log: Logger | undefined;
  metric(event: QueueMetricEvent, queue: string): void;
}

interface RunningJob {
  lease: Lease;
  controller: AbortController;
  /** Set when stop() handed the job back, or a heartbeat found the lease gone: the result is void. */
  abandoned: boolean;
  finished: Promise<void>;
}

/** Pauses between attempts to record a job's outcome over a database hiccup. */
const PERSIST_PAUSES_MS = [100, 500, 2000];

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class Worker {
  private readonly running = new Map<string, RunningJob>();
  private stopping = false;
  private woken = false;
  private wakeUp: (() => void) | null = null;
  private readonly loopDone: Promise<void>;

  /** Starts polling at once; `concurrency` is validated by the caller. */
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
    const retryAt = attempts >= Number(row.max_attempts) || isPermanentError(failure.error) ? null : at + backoffDelayMs(schedule, attempts);
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
    for (let i = 0; ; i++) {
      try {
        const applied = await write();
        if (!applied) this.host.log?.warn({ jobId: lease.id }, 'job result discarded: the lease was taken over or the job deleted');
        return applied;
      } catch (err) {
        if (i >= PERSIST_PAUSES_MS.length) {
          this.host.log?.error({ jobId: lease.id, err: errorText(err) }, 'could not record job result; it will run again after its lease expires');
          return false;
        }
        await delay(PERSIST_PAUSES_MS[i]);
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
