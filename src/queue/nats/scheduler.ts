/**
 * The NATS adapter's scheduler: one per process that works queues. It keeps an index of the jobs
 * that may need attention (ready or running), fed by a KV watch of the bucket, and every poll
 * interval:
 *
 * - publishes the hint of every job that is due but has none (a delayed job reaching its run_at, a
 *   retry after its backoff) or whose hint looks lost (due longer than `republishAfterMs` without
 *   being claimed), and of every running job whose lease expired (its worker crashed);
 * - dead-letters a running job whose lease expired on its last attempt.
 *
 * Every action is a compare-and-set on the record (see ./records.ts), so schedulers on several nodes
 * never publish one hint twice for one state, and a stale index entry costs one read, not a mistake.
 * Hints themselves only speed things up: a duplicate or stray one is dropped by the worker that reads
 * it (the record says the job is not claimable).
 */
import type { Logger } from 'pino';
import type { KV } from 'nats';
import type { QueueMetricEvent } from '../options.js';
import { errorText } from '../errors.js';
import { JOB_KEYS } from './names.js';
import { decodeRecord, type JobRecord, type RecordStore } from './records.js';
import { deadLetterExpired, isExpiredOnLastAttempt, noted } from './transitions.js';

export interface SchedulerHost {
  readonly store: RecordStore;
  readonly log: Logger | undefined;
  pollIntervalMs(): number;
  /** How long a published hint may go unclaimed before it is presumed lost and published again. */
  republishAfterMs(): number;
  publish(r: JobRecord): Promise<void>;
  metric(event: QueueMetricEvent, queue: string): void;
}

/** Pause before re-opening a watch that ended (connection lost, bucket recreated). */
const REWATCH_PAUSE_MS = 1000;

/** True when the scheduler must publish a hint for `r` now (see the file header). */
export function needsHint(r: JobRecord, at: number, republishAfterMs: number): boolean {
  const notified = r.notified_at === null ? null : Number(r.notified_at);
  if (r.status === 'ready') {
    const runAt = Number(r.run_at);
    if (runAt > at) return false;
    return notified === null || (at - notified > republishAfterMs && at - runAt > republishAfterMs);
  }
  if (r.status === 'running' && r.locked_until !== null && Number(r.locked_until) < at && Number(r.attempts) < Number(r.max_attempts)) {
    return notified === null || notified <= Number(r.locked_until) || at - notified > republishAfterMs;
  }
  return false;
}

export class Scheduler {
  /** Jobs that are ready or running, by id, without their payloads (the index never needs them). */
  private readonly index = new Map<string, JobRecord>();
  private stopped = false;
  private iter: Awaited<ReturnType<KV['watch']>> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private wakeWatch: (() => void) | null = null;
  private tickRunning: Promise<void> = Promise.resolve();
  private readonly watchDone: Promise<void>;

  constructor(private readonly host: SchedulerHost) {
    this.watchDone = this.watchLoop();
    this.schedule();
  }

  private async watchLoop(): Promise<void> {
    const { store, log } = this.host;
    while (!this.stopped) {
      try {
        const iter = await store.kv.watch({ key: JOB_KEYS });
        this.iter = iter;
        if (this.stopped) iter.stop();
        this.index.clear();
        for await (const e of iter) {
          const id = e.key.slice('job.'.length);
          const r = e.operation === 'PUT' ? decodeRecord(e.value) : null;
          if (r && (r.status === 'ready' || r.status === 'running')) this.index.set(id, { ...r, payload_json: '' });
          else this.index.delete(id);
        }
      } catch (err) {
        if (!this.stopped) log?.warn({ err: errorText(err) }, 'queue scheduler watch failed; re-opening it');
      }
      this.iter = null;
      if (!this.stopped) await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, REWATCH_PAUSE_MS);
        this.wakeWatch = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.tickRunning = this.tick().finally(() => this.schedule());
    }, this.host.pollIntervalMs());
  }

  private async tick(): Promise<void> {
    const { store, log } = this.host;
    const at = Date.now();
    const again = this.host.republishAfterMs();
    for (const r of [...this.index.values()]) {
      if (this.stopped) return;
      try {
        if (isExpiredOnLastAttempt(r, at)) {
          const dead = await store.mutate(r.id, deadLetterExpired(at));
          if (dead) {
            log?.error({ jobId: r.id, queue: r.queue, attempts: Number(dead.attempts) }, 'job dead-lettered: its lease expired on the last attempt');
            this.host.metric('dead', r.queue);
          }
        } else if (needsHint(r, at, again)) {
          const next = await store.mutate(r.id, noted((cur) => needsHint(cur, at, again), at));
          if (next) await this.host.publish(next);
        }
      } catch (err) {
        log?.warn({ jobId: r.id, err: errorText(err) }, 'queue scheduler could not handle a job; retrying at the next round');
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.iter?.stop();
    this.wakeWatch?.();
    await this.tickRunning;
    await this.watchDone;
  }
}
