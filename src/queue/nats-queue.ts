/**
 * The NATS JetStream adapter of the `Queue` port (SPEC §2 "Queue in the first release": NATS
 * JetStream is the optional external backend behind the same interface as the database queue).
 *
 * Design
 * - Job records live in a JetStream KV bucket (`mairust_jobs`, history 1, file storage): key
 *   `job.<id>`, value the same row the database adapter keeps in `queue_jobs` (status, attempts,
 *   max_attempts, run_at, lease, last_error, payload, timestamps) plus `notified_at`. get, list,
 *   stats, retryNow, delete and purgeDone work on these records. Every change is a compare-and-set on
 *   the key's revision (`kv.update(key, value, revision)`, ./nats/records.ts), which fences claims,
 *   lease renewals and results exactly like the SQL of ./claim.ts: delivery workers on several nodes
 *   never run one job twice while its lease holds.
 * - Due work travels as hints in one stream (`MAIRUST_JOBS`, subjects `mairust.jobs.<queue>`,
 *   WorkQueue retention, file storage): a message is just a job id. Each queue name has a durable
 *   pull consumer shared by every node; its ack wait is the lease. A worker claims the job a hint
 *   names, holds the hint while the job runs (`msg.working()` with each lease renewal) and acks it
 *   with the result; a hint for a job that is not claimable is acked and dropped
 *   (./nats/worker.ts).
 * - Delayed jobs and retries wait in the bucket with their run_at; a scheduler (one per process
 *   that works queues, ./nats/scheduler.ts) publishes their hint when due, republishes a hint that
 *   looks lost, re-offers the job of a worker whose lease expired (a crashed node) and dead-letters
 *   one whose lease expired on its last attempt. Schedulers on several nodes may race; the
 *   compare-and-set on `notified_at` lets one win, and a duplicate hint is harmless anyway.
 * - Retries, backoff and dead letters are those of the database adapter (./backoff.ts,
 *   ./errors.ts `isPermanentError`, the same default settings and limits).
 * - `dedupeKey`: a KV key `dedupe.<sha256>` created only if absent, holding the job id; it lives as
 *   long as the job (deleted with it and by `purgeDone`).
 *
 * `enqueueIn` goes through the transactional outbox (./outbox.ts) when the application's database
 * is given (`outbox`): the job is written in the caller's transaction and relayed here after the
 * commit (`wake`) or by the outbox timer. Without `outbox` it throws, as before.
 *
 * Names carry an optional `namespace` (./nats/names.ts) so independent installations or parallel
 * test suites share a NATS server without seeing one another.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../store/db/database.js';
import type { DB } from '../store/db/types.js';
import { decodeCursor, encodeCursor } from './list.js';
import { QueueOutbox } from './outbox.js';
import type { Logger } from 'pino';
import {
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  connect,
  nanos,
  type Consumer,
  type JetStreamClient,
  type JetStreamManager,
  type KV,
  type NatsConnection,
} from 'nats';
import type { JobStatus } from '../store/db/types.js';
import type { EnqueueOptions, Job, JobHandler, Queue, QueueStats, WorkerOptions } from './queue.js';
import { errorText } from './errors.js';
import { newJobRow, toJob, validateQueueName } from './job-row.js';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from './list.js';
import {
  initialSettings,
  mergeSettings,
  validateNodeId,
  type DatabaseQueueOptions,
  type DatabaseQueueSettings,
  type QueueMetricEvent,
  type QueueSettings,
} from './options.js';
import { MAX_CONCURRENCY } from './worker.js';
import { consumerFor, dedupeKeyFor, isValidJobId, natsNames, subjectFor, type NatsNames } from './nats/names.js';
import { RecordStore, isRevisionConflict, type JobRecord } from './nats/records.js';
import { Scheduler } from './nats/scheduler.js';
import { retryNow } from './nats/transitions.js';
import { NatsWorker, type NatsWorkerHost } from './nats/worker.js';

export interface NatsQueueOptions extends DatabaseQueueOptions {
  /** NATS server URLs (config `nats.servers`); ignored when `connection` is given. */
  servers?: string[];
  /** An open connection to use instead of opening one; `stop` leaves it open. */
  connection?: NatsConnection;
  /** Suffix of the stream, bucket and subject names; empty for the standard names. */
  namespace?: string;
  /** The application's database: enables `enqueueIn` through the transactional outbox. */
  outbox?: Database;
}

export const DEFAULT_NATS_SERVERS = ['nats://127.0.0.1:4222'];
/** JetStream drops a re-published hint with the same message id within this window. */
const DUPLICATE_WINDOW_MS = 2 * 60 * 1000;
/** Hints a queue's consumer may have out at once, over all nodes; each running job holds one. */
const MAX_ACK_PENDING = 10_000;
/** A loser of a dedupe race waits this long for the winner's job record to appear. */
const DEDUPE_WAIT_MS = 2000;
const DEDUPE_TRIES = 5;

interface Connected {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kv: KV;
  store: RecordStore;
}

export class NatsQueue implements Queue {
  readonly kind = 'nats' as const;
  readonly names: NatsNames;
  private current: QueueSettings;
  private readonly nodeId: string;
  private readonly log: Logger | undefined;
  private readonly onMetrics: DatabaseQueueOptions['onMetrics'];
  private readonly servers: string[];
  private readonly ownConnection: boolean;
  private connecting: Promise<Connected> | null = null;
  private readonly consumers = new Map<string, { leaseMs: number; consumer: Promise<Consumer> }>();
  private readonly workers: NatsWorker[] = [];
  private scheduler: Promise<Scheduler | null> | null = null;
  /** Set once connected: what workers use synchronously. */
  private connected: Connected | null = null;
  private stopped = false;

  private readonly outbox: QueueOutbox | null;

  constructor(private readonly opts: NatsQueueOptions) {
    this.nodeId = validateNodeId(opts.nodeId);
    this.names = natsNames(opts.namespace);
    this.log = opts.logger && opts.logger.bindings().component === undefined ? opts.logger.child({ component: 'queue' }) : opts.logger;
    this.onMetrics = opts.onMetrics;
    this.current = initialSettings(opts);
    this.servers = opts.servers && opts.servers.length > 0 ? [...opts.servers] : DEFAULT_NATS_SERVERS;
    this.ownConnection = opts.connection === undefined;
    this.outbox = opts.outbox ? new QueueOutbox(opts.outbox, (q, p, o) => this.enqueue(q, p, o), this.log) : null;
    this.outbox?.start();
  }

  /** The job commits with `trx` (transactional outbox); call `wake` after the commit. */
  async enqueueIn<T>(trx: Kysely<DB>, queue: string, payload: T, opts: EnqueueOptions = {}): Promise<string> {
    if (!this.outbox) throw new Error('the nats queue cannot enqueue inside a database transaction without an outbox database');
    return this.outbox.add(trx, queue, payload, opts);
  }

  /** Relays committed outbox rows now. */
  wake(_queue: string): void {
    this.outbox?.wake();
  }

  /**
   * Connects and makes sure the stream and bucket exist. Every method calls it; the composition
   * root may await it at startup to fail early when NATS is unreachable. A failed attempt is retried
   * by the next call.
   */
  start(): Promise<Connected> {
    if (!this.connecting) {
      this.connecting = this.open();
      this.connecting.catch(() => {
        this.connecting = null;
      });
    }
    return this.connecting;
  }

  private async open(): Promise<Connected> {
    const nc = this.opts.connection ?? (await connect({ servers: this.servers, name: `mairust-queue-${this.nodeId}`, maxReconnectAttempts: -1 }));
    try {
      const jsm = await nc.jetstreamManager();
      const { stream, subjectPrefix, bucket } = this.names;
      try {
        await jsm.streams.info(stream);
      } catch {
        await jsm.streams.add({
          name: stream,
          subjects: [`${subjectPrefix}.>`],
          retention: RetentionPolicy.Workqueue,
          storage: StorageType.File,
          duplicate_window: nanos(DUPLICATE_WINDOW_MS),
        });
      }
      const js = nc.jetstream();
      const kv = await js.views.kv(bucket, { history: 1, storage: StorageType.File });
      return { nc, js, jsm, kv, store: new RecordStore(kv) };
    } catch (err) {
      if (this.ownConnection) await nc.close().catch(() => {});
      throw err;
    }
  }

  setOptions(partial: DatabaseQueueSettings): void {
    this.current = mergeSettings(this.current, partial);
  }

  settings(): Readonly<QueueSettings> {
    return this.current;
  }

  async enqueue<T>(queue: string, payload: T, opts: EnqueueOptions = {}): Promise<string> {
    const row = newJobRow(queue, payload, opts, { maxAttempts: this.current.defaultMaxAttempts, backoffSeconds: this.current.defaultBackoffSeconds }, Date.now());
    const due = row.run_at <= row.created_at;
    const record: JobRecord = { ...row, notified_at: due ? row.created_at : null };
    const c = await this.start();
    if (record.dedupe_key !== null) {
      const holder = await this.takeDedupeKey(c, record.dedupe_key, record.id);
      if (holder !== record.id) return holder;
    }
    try {
      await c.store.create(record);
    } catch (err) {
      if (record.dedupe_key !== null) await this.releaseDedupeKey(c, record.dedupe_key, record.id).catch(() => {});
      throw err;
    }
    if (due) await this.publishQuietly(c, record);
    return record.id;
  }

  /**
   * Returns `id` when this enqueue now holds `dedupeKey`, or the id of the job that holds it. The
   * holder writes the key first and its record right after, so a loser that finds no record yet
   * waits a moment; a key whose job is really gone (a crash between the two deletes) is taken over.
   */
  private async takeDedupeKey(c: Connected, dedupeKey: string, id: string): Promise<string> {
    const key = dedupeKeyFor(dedupeKey);
    for (let i = 0; i < DEDUPE_TRIES; i++) {
      try {
        await c.kv.create(key, Buffer.from(id));
        return id;
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
      }
      const e = await c.kv.get(key);
      if (!e || e.operation !== 'PUT') continue;
      const holder = e.string();
      const deadline = Date.now() + DEDUPE_WAIT_MS;
      for (;;) {
        if (isValidJobId(holder) && (await c.store.read(holder))) return holder;
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      try {
        await c.kv.update(key, Buffer.from(id), e.revision);
        return id;
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
      }
    }
    throw new Error(`could not enqueue job with dedupeKey ${JSON.stringify(dedupeKey)}: the key kept changing hands`);
  }

  private async releaseDedupeKey(c: Connected, dedupeKey: string, id: string): Promise<void> {
    const key = dedupeKeyFor(dedupeKey);
    const e = await c.kv.get(key);
    if (!e || e.operation !== 'PUT' || e.string() !== id) return;
    try {
      await c.kv.delete(key, { previousSeq: e.revision });
    } catch (err) {
      if (!isRevisionConflict(err)) throw err;
    }
  }

  private async publish(c: Connected, r: JobRecord): Promise<void> {
    await c.js.publish(subjectFor(this.names, r.queue), Buffer.from(r.id), { msgID: `${r.id}:${r.attempts}:${r.notified_at}` });
  }

  /** A hint that fails to go out is published again by a scheduler once it looks lost. */
  private async publishQuietly(c: Connected, r: JobRecord): Promise<void> {
    try {
      await this.publish(c, r);
    } catch (err) {
      this.log?.warn({ jobId: r.id, queue: r.queue, err: errorText(err) }, 'could not publish job hint; a scheduler will publish it later');
    }
  }

  work<T>(queue: string, handler: JobHandler<T>, opts: WorkerOptions = {}): void {
    if (this.stopped) throw new Error('this queue was stopped; create a new one to run workers again');
    validateQueueName(queue);
    const concurrency = opts.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
      throw new RangeError(`concurrency must be an integer from 1 to ${MAX_CONCURRENCY} (got ${String(concurrency)})`);
    }
    this.ensureScheduler();
    const host: NatsWorkerHost = {
      store: () => this.storeNow(),
      workerId: this.nodeId,
      log: this.log,
      settings: () => this.current,
      consumer: (q: string, leaseMs: number) => this.consumer(q, leaseMs),
      metric: (event: QueueMetricEvent, q: string) => this.metric(event, q),
    };
    this.workers.push(new NatsWorker(host, queue, handler as JobHandler<unknown>, concurrency));
  }

  private storeNow(): RecordStore {
    if (!this.connected) throw new Error('the NATS queue is not connected yet');
    return this.connected.store;
  }

  private async connectedNow(): Promise<Connected> {
    const c = await this.start();
    this.connected = c;
    return c;
  }

  private ensureScheduler(): void {
    if (this.scheduler) return;
    this.scheduler = this.connectedNow().then(
      (c) =>
        this.stopped
          ? null
          : new Scheduler({
              store: c.store,
              log: this.log,
              pollIntervalMs: () => this.current.pollIntervalMs,
              // A hint is presumed lost only after JetStream would have re-delivered it (the ack wait).
              republishAfterMs: () => Math.max(2 * this.current.leaseSeconds * 1000, 60_000),
              publish: (r) => this.publish(c, r),
              metric: (event, q) => this.metric(event, q),
            }),
      (err) => {
        // Workers keep retrying the connection; the scheduler is started again on their next success.
        this.log?.error({ err: errorText(err) }, 'NATS queue could not connect; retrying');
        this.scheduler = null;
        return null;
      },
    );
  }

  /** The durable pull consumer of `queue`, its ack wait kept equal to the lease. */
  private consumer(queue: string, leaseMs: number): Promise<Consumer> {
    const cached = this.consumers.get(queue);
    if (cached && cached.leaseMs === leaseMs) return cached.consumer;
    const consumer = (async () => {
      const c = await this.connectedNow();
      this.ensureScheduler();
      const { stream } = this.names;
      const name = consumerFor(queue);
      const config = {
        durable_name: name,
        filter_subject: subjectFor(this.names, queue),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(leaseMs),
        max_deliver: -1,
        max_ack_pending: MAX_ACK_PENDING,
      };
      try {
        await c.jsm.consumers.add(stream, config);
      } catch {
        // It exists with other settings (another lease, set by another node or an older release).
        await c.jsm.consumers.update(stream, name, { ack_wait: config.ack_wait, max_deliver: -1, max_ack_pending: MAX_ACK_PENDING });
      }
      return c.js.consumers.get(stream, name);
    })();
    this.consumers.set(queue, { leaseMs, consumer });
    consumer.catch(() => {
      if (this.consumers.get(queue)?.consumer === consumer) this.consumers.delete(queue);
    });
    return consumer;
  }

  private metric(event: QueueMetricEvent, queue: string): void {
    try {
      this.onMetrics?.(event, queue);
    } catch (err) {
      this.log?.warn({ err: errorText(err) }, 'queue metrics callback failed');
    }
  }

  async get(id: string): Promise<Job | null> {
    if (!isValidJobId(id)) return null;
    const c = await this.start();
    const cur = await c.store.read(id);
    return cur ? toJob(cur.record, true) : null;
  }

  /** A full read of the bucket, then the database adapter's order and cursor (./list.ts). */
  async list(filter: { queue?: string; status?: JobStatus; limit?: number; cursor?: string } = {}): Promise<{ jobs: Job[]; cursor: string | null }> {
    const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new RangeError(`limit must be an integer from 1 to ${MAX_LIST_LIMIT} (got ${String(limit)})`);
    }
    if (filter.status !== undefined && !STATUSES.includes(filter.status)) {
      throw new RangeError(`status must be one of ${STATUSES.join(', ')} (got ${JSON.stringify(filter.status)})`);
    }
    const after = filter.cursor ? decodeCursor(filter.cursor) : null;
    const c = await this.start();
    const rows = (await c.store.snapshot())
      .filter((r) => filter.queue === undefined || r.queue === filter.queue)
      .filter((r) => filter.status === undefined || r.status === filter.status)
      .filter((r) => !after || Number(r.created_at) > after.createdAt || (Number(r.created_at) === after.createdAt && r.id > after.id))
      .sort((a, b) => Number(a.created_at) - Number(b.created_at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const page = rows.slice(0, limit);
    return { jobs: page.map((r) => toJob(r, true)), cursor: rows.length > limit ? encodeCursor(page[page.length - 1]) : null };
  }

  async retryNow(id: string): Promise<boolean> {
    if (!isValidJobId(id)) return false;
    const c = await this.start();
    const r = await c.store.mutate(id, retryNow(Date.now()));
    if (!r) return false;
    await this.publishQuietly(c, r);
    return true;
  }

  async delete(id: string): Promise<boolean> {
    if (!isValidJobId(id)) return false;
    const c = await this.start();
    const removed = await c.store.remove(id);
    if (removed === false) return false;
    if (removed?.dedupe_key) await this.releaseDedupeKey(c, removed.dedupe_key, id);
    return true;
  }

  async stats(): Promise<QueueStats[]> {
    const c = await this.start();
    const counts = new Map<string, QueueStats>();
    for (const r of await c.store.snapshot()) {
      const k = `${r.queue}\u0000${r.status}`;
      const s = counts.get(k) ?? { queue: r.queue, status: r.status, count: 0 };
      s.count++;
      counts.set(k, s);
    }
    return [...counts.values()].sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : a.status < b.status ? -1 : a.status > b.status ? 1 : 0));
  }

  async ping(): Promise<number> {
    const t = performance.now();
    const c = await this.start();
    await c.kv.status();
    return performance.now() - t;
  }

  /** Housekeeping: deletes `done` jobs finished more than `olderThanMs` ago; returns how many. */
  async purgeDone(olderThanMs: number): Promise<number> {
    if (!Number.isFinite(olderThanMs) || olderThanMs < 0) throw new RangeError(`olderThanMs must be a number >= 0 (got ${String(olderThanMs)})`);
    const cutoff = Date.now() - olderThanMs;
    const c = await this.start();
    let total = 0;
    for (const r of await c.store.snapshot()) {
      if (r.status !== 'done' || r.finished_at === null || Number(r.finished_at) >= cutoff) continue;
      const removed = await c.store.remove(r.id, (cur) => cur?.status === 'done');
      if (removed === false) continue;
      total++;
      if (removed?.dedupe_key) await this.releaseDedupeKey(c, removed.dedupe_key, r.id);
    }
    return total;
  }

  async stop(drainMs = 30_000): Promise<void> {
    if (!Number.isFinite(drainMs) || drainMs < 0) throw new RangeError(`drainMs must be a number >= 0 (got ${String(drainMs)})`);
    this.stopped = true;
    await this.outbox?.stop();
    const deadline = Date.now() + drainMs;
    await Promise.all(this.workers.map((w) => w.stop(deadline)));
    const scheduler = await this.scheduler;
    await scheduler?.stop();
    const c = this.connecting ? await this.connecting.catch(() => null) : null;
    if (c && this.ownConnection) {
      // Inspection (get, list, stats…) still works after stop, as with the database adapter: it
      // connects again, and a later stop closes that connection too.
      this.connecting = null;
      this.connected = null;
      this.consumers.clear();
      await c.nc.close();
    }
  }
}

const STATUSES: readonly JobStatus[] = ['ready', 'running', 'done', 'dead'];

