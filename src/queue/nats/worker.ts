/**
 * The consumer of one queue name on this node for the NATS adapter: pulls hints (job ids) from the
 * queue's durable consumer, claims each job by compare-and-set on its record, runs the handler under
 * a lease, and records the outcome. The parts it shares with the database worker (../worker.ts):
 * the lease length and heartbeat (a third of the lease), the retry schedule (../backoff.ts), permanent
 * errors and the abort reasons (../errors.ts), and the metrics.
 *
 * A hint is held un-acknowledged while its job runs and `msg.working()` is sent with every lease
 * renewal, so JetStream re-delivers it after the consumer's ack wait (= the lease) if this process
 * dies; whoever receives it then finds the lease expired and takes the job over. A hint for a job
 * that is not claimable (done, deleted, not yet due, held by a live lease) is acknowledged and
 * dropped: the record, not the stream, is the truth, and the scheduler publishes again when needed.
 */
import type { Logger } from 'pino';
import type { Consumer, JsMsg } from 'nats';
import type { JobHandler } from '../queue.js';
import type { QueueMetricEvent, QueueSettings } from '../options.js';
import type { Lease } from '../claim.js';
import { backoffDelayMs, parseBackoff } from '../backoff.js';
import { LeaseLostError, QueueStoppingError, errorText, isPermanentError } from '../errors.js';
import { toJob } from '../job-row.js';
import { isValidJobId } from './names.js';
import type { JobRecord, RecordStore } from './records.js';
import { claim, complete, deadLetterExpired, fail, isExpiredOnLastAttempt, release, renew } from './transitions.js';

/** A pull request waits this long for hints before it is renewed (the client's minimum is 1 s). */
export const FETCH_EXPIRES_MS = 1000;
/** Pauses between attempts to record a job's outcome over a NATS hiccup. */
const PERSIST_PAUSES_MS = [100, 500, 2000];

export interface NatsWorkerHost {
  /** The job records; available once `consumer()` has resolved (the queue is connected then). */
  store(): RecordStore;
  readonly workerId: string;
  readonly log: Logger | undefined;
  settings(): QueueSettings;
  /** The durable consumer of `queue`, created or updated so its ack wait is `leaseMs`. */
  consumer(queue: string, leaseMs: number): Promise<Consumer>;
  metric(event: QueueMetricEvent, queue: string): void;
}

interface RunningJob {
  msg: JsMsg;
  lease: Lease | null;
  controller: AbortController;
  abandoned: boolean;
  finished: Promise<void>;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class NatsWorker {
  private readonly running = new Set<RunningJob>();
  private stopping = false;
  private slotFreed: (() => void) | null = null;
  private fetch: { stop(): void } | null = null;
  private readonly loopDone: Promise<void>;

  constructor(
    private readonly host: NatsWorkerHost,
    readonly queue: string,
    private readonly handler: JobHandler<unknown>,
    private readonly concurrency: number,
  ) {
    this.loopDone = this.loop();
  }

  private async loop(): Promise<void> {
    const { log } = this.host;
    while (!this.stopping) {
      const free = this.concurrency - this.running.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        this.slotFreed = null;
        continue;
      }
      try {
        const leaseMs = Math.round(this.host.settings().leaseSeconds * 1000);
        const consumer = await this.host.consumer(this.queue, leaseMs);
        if (this.stopping) break;
        const iter = await consumer.fetch({ max_messages: free, expires: FETCH_EXPIRES_MS });
        this.fetch = iter;
        for await (const msg of iter) {
          // Arrived while stopping: hand it straight back for another node.
          if (this.stopping) msg.nak();
          else this.start(msg, leaseMs);
        }
      } catch (err) {
        if (this.stopping) break;
        log?.warn({ queue: this.queue, err: errorText(err) }, 'queue fetch failed; retrying after the poll interval');
        await delay(this.host.settings().pollIntervalMs);
      } finally {
        this.fetch = null;
      }
    }
  }

  private start(msg: JsMsg, leaseMs: number): void {
    const entry: RunningJob = { msg, lease: null, controller: new AbortController(), abandoned: false, finished: Promise.resolve() };
    this.running.add(entry);
    entry.finished = this.execute(entry, leaseMs)
      .catch((err) => {
        this.host.log?.error({ queue: this.queue, err: errorText(err) }, 'queue worker error');
        // The hint comes back after the ack wait; the record decides then what happens.
      })
      .finally(() => {
        this.running.delete(entry);
        this.slotFreed?.();
      });
  }

  /** Claims the job the hint names; false (hint dropped) when it is not claimable now. */
  private async claimFor(entry: RunningJob, leaseMs: number): Promise<JobRecord | null> {
    const { log, workerId } = this.host;
    const store = this.host.store();
    const id = entry.msg.string();
    if (!isValidJobId(id)) {
      entry.msg.term();
      return null;
    }
    const at = Date.now();
    const cur = await store.read(id);
    if (cur && isExpiredOnLastAttempt(cur.record, at)) {
      const dead = await store.mutate(id, deadLetterExpired(at));
      if (dead) {
        log?.error({ jobId: id, queue: dead.queue, attempts: Number(dead.attempts) }, 'job dead-lettered: its lease expired on the last attempt');
        this.host.metric('dead', dead.queue);
      }
      entry.msg.ack();
      return null;
    }
    const claimed = cur ? await store.mutate(id, claim(workerId, leaseMs, at)) : null;
    if (!claimed) {
      entry.msg.ack();
      return null;
    }
    return claimed;
  }

  private async execute(entry: RunningJob, leaseMs: number): Promise<void> {
    const { log } = this.host;
    const store = this.host.store();
    const row = await this.claimFor(entry, leaseMs);
    if (!row) return;
    const lease: Lease = { id: row.id, workerId: this.host.workerId, attempts: Number(row.attempts) };
    if (entry.abandoned) {
      // stop() gave up on this slot while the claim was in flight: hand the job straight back.
      await store.mutate(lease.id, release(lease, Date.now()));
      entry.msg.nak();
      return;
    }
    entry.lease = lease;
    const { controller, msg } = entry;

    let settled = false;
    let timer: NodeJS.Timeout | null = null;
    const heartbeatMs = Math.max(Math.floor(leaseMs / 3), 1);
    const beat = async () => {
      timer = null;
      try {
        msg.working();
        const held = await store.mutate(lease.id, renew(lease, leaseMs, Date.now()));
        if (!held && !settled && !entry.abandoned) {
          entry.abandoned = true;
          log?.warn({ jobId: lease.id, queue: row.queue }, 'job lease lost; aborting the handler, its result will be discarded');
          controller.abort(new LeaseLostError(lease.id));
          msg.ack();
          return;
        }
      } catch (err) {
        log?.warn({ jobId: lease.id, err: errorText(err) }, 'job lease renewal failed');
      }
      if (!settled && !entry.abandoned) timer = setTimeout(() => void beat(), heartbeatMs);
    };
    timer = setTimeout(() => void beat(), heartbeatMs);

    let failure: { error: unknown } | null = null;
    try {
      await this.handler(toJob(row, false), controller.signal);
    } catch (err) {
      failure = { error: err };
    } finally {
      settled = true;
      if (timer) clearTimeout(timer);
    }
    if (entry.abandoned) return;

    const at = Date.now();
    if (!failure) {
      const applied = await this.persist(lease, () => store.mutate(lease.id, complete(lease, at)));
      if (applied !== undefined) msg.ack();
      if (applied) this.host.metric('completed', row.queue);
      return;
    }
    const attempts = lease.attempts;
    const schedule = parseBackoff(row.backoff_json, this.host.settings().defaultBackoffSeconds);
    const retryAt = attempts >= Number(row.max_attempts) || isPermanentError(failure.error) ? null : at + backoffDelayMs(schedule, attempts);
    // An immediate retry re-delivers this very hint; a later one is published by the scheduler.
    const immediate = retryAt !== null && retryAt <= at;
    const error = errorText(failure.error);
    const applied = await this.persist(lease, () => store.mutate(lease.id, fail(lease, { error, retryAt, now: at, notifiedAt: immediate ? at : null })));
    if (applied !== undefined) {
      if (applied && immediate) msg.nak();
      else msg.ack();
    }
    if (!applied) return;
    if (retryAt === null) {
      log?.error({ jobId: lease.id, queue: row.queue, attempts, err: error }, 'job dead-lettered after its last attempt');
      this.host.metric('dead', row.queue);
    } else {
      log?.warn({ jobId: lease.id, queue: row.queue, attempts, retryAt, err: error }, 'job failed; will retry');
      this.host.metric('failed', row.queue);
    }
  }

  /**
   * Writes an outcome, retrying over a NATS hiccup. Returns whether it applied (false: the lease was
   * taken over or the job deleted), or undefined when it could not be written at all: the hint then
   * stays un-acknowledged and the job runs again after its lease (at-least-once).
   */
  private async persist(lease: Lease, write: () => Promise<JobRecord | null>): Promise<boolean | undefined> {
    for (let i = 0; ; i++) {
      try {
        const applied = (await write()) !== null;
        if (!applied) this.host.log?.warn({ jobId: lease.id }, 'job result discarded: the lease was taken over or the job deleted');
        return applied;
      } catch (err) {
        if (i >= PERSIST_PAUSES_MS.length) {
          this.host.log?.error({ jobId: lease.id, err: errorText(err) }, 'could not record job result; it will run again after its lease expires');
          return undefined;
        }
        await delay(PERSIST_PAUSES_MS[i]);
      }
    }
  }

  /** Stops pulling, waits until `deadline` for running jobs, then aborts and hands back the rest. */
  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    this.fetch?.stop();
    this.slotFreed?.();
    await this.loopDone;
    const pending = [...this.running].map((e) => e.finished);
    if (pending.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(deadline - Date.now(), 0));
      });
      await Promise.race([Promise.allSettled(pending), timeout]);
      clearTimeout(timer);
    }
    const left = [...this.running];
    for (const e of left) {
      e.abandoned = true;
      e.controller.abort(new QueueStoppingError());
    }
    await Promise.allSettled(
      left.map(async (e) => {
        try {
          // Still claiming (no lease yet): execute() sees `abandoned` and hands the job back itself.
          if (!e.lease) return;
          await this.host.store().mutate(e.lease.id, release(e.lease, Date.now()));
          e.msg.nak();
        } catch (err) {
          this.host.log?.warn({ jobId: e.lease?.id, err: errorText(err) }, 'could not hand back job at stop; it runs again after its lease expires');
        }
      }),
    );
  }
}
