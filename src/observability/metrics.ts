/**
 * Prometheus metrics (SPEC §12 "Metrics"), served at /metrics.
 *
 * Each `createMetrics()` builds its own prom-client Registry instead of using the global one, so
 * tests (and several servers in one process) never collide on metric names.
 *
 * Naming: application metrics are `mairust_*`. The standard process/runtime metrics from
 * prom-client (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `nodejs_heap_*`,
 * `nodejs_eventloop_lag_*`, …) keep their conventional unprefixed names: they are the names the
 * Prometheus client guidelines define for every language, so stock dashboards and alerts work,
 * and the `job`/`instance` labels added by the scraper already say which service they belong to.
 *
 * Gauges whose value lives elsewhere (queue lengths in the queue's table, bytes in storage) are
 * computed at scrape time by a source function the composition root provides. A source that
 * fails or hangs must not break the whole scrape: it is bounded by a timeout, its gauge shows
 * "unknown" for that scrape (no series, or NaN for a gauge without labels), and
 * `mairust_metrics_source_errors_total{source}` is incremented.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface QueueLengthSample {
  queue: string;
  status: string;
  count: number;
}

export type QueueStatsSource = () => Promise<QueueLengthSample[]>;
export type StorageBytesSource = () => Promise<number>;

export interface MetricsOptions {
  /** Include process/runtime metrics (default true). */
  defaultMetrics?: boolean;
  /** Upper bound for one source function at scrape time (default 2000 ms). */
  sourceTimeoutMs?: number;
}

export interface Metrics {
  readonly registry: Registry;
  /** SMTP connections accepted, by listener (`mx`, `submission`, `submissions`). */
  readonly smtpConnections: Counter<'listener'>;
  /** Messages at end of DATA, by listener and result (`accepted`, `rejected`, `tempfail`). */
  readonly smtpMessages: Counter<'listener' | 'result'>;
  /** Whole SMTP session duration, by listener. */
  readonly smtpDuration: Histogram<'listener'>;
  /** IMAP/POP3 connections accepted, by protocol (`imap`, `pop3`) and listener (`imap`, `imaps`, `pop3`, `pop3s`). */
  readonly mailAccessConnections: Counter<'protocol' | 'listener'>;
  /** IMAP/POP3 sessions open now, by protocol and listener. */
  readonly mailAccessSessions: Gauge<'protocol' | 'listener'>;
  /** IMAP commands completed, by command name (`UID FETCH`…, `unknown` for unrecognised ones) and tagged status. */
  readonly imapCommands: Counter<'command' | 'status'>;
  /** REST/HTTP requests; `route` is the route pattern (`/api/v1/users/:id`), never the raw URL. */
  readonly apiRequests: Counter<'method' | 'route' | 'status'>;
  readonly apiDuration: Histogram<'method' | 'route'>;
  /** Jobs in the queue by queue name and status; filled from the queue stats source at scrape time. */
  readonly queueLength: Gauge<'queue' | 'status'>;
  /** Finished job attempts, by queue and result (`done`, `retry`, `dead`). */
  readonly queueJobs: Counter<'queue' | 'result'>;
  /** Bytes of stored message blobs; filled from the storage source at scrape time. */
  readonly storageBytes: Gauge<string>;
  /** Source functions that failed or timed out during a scrape. */
  readonly sourceErrors: Counter<'source'>;
  setQueueStatsSource(source: QueueStatsSource | null): void;
  setStorageBytesSource(source: StorageBytesSource | null): void;
  /** The exposition text and its content type, for the /metrics route. */
  render(): Promise<{ contentType: string; body: string }>;
}

// Seconds. SMTP sessions range from a quick probe to a slow peer sending a large message.
const SMTP_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
// Seconds. Includes 0.2 so the SPEC §12 target "API p95 < 200 ms" can be read off a bucket.
const API_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10];

class SourceTimeoutError extends Error {
  constructor(ms: number) {
    super(`metrics source timed out after ${ms} ms`);
  }
}

async function withTimeout<T>(work: () => Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new SourceTimeoutError(ms)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const sourceTimeoutMs = opts.sourceTimeoutMs ?? 2000;
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  let queueSource: QueueStatsSource | null = null;
  let storageSource: StorageBytesSource | null = null;
  // Source reads started by the current scrape. prom-client starts every metric's collect() in
  // registration order and awaits them together, so the error counter (registered after the
  // gauges) waits for these to report this scrape's failures in this scrape, not the next.
  let sourceReads: Promise<unknown>[] = [];
  const failed = new Set<string>();
  function readSource<T>(name: string, source: () => Promise<T>): Promise<T> {
    const read = withTimeout(source, sourceTimeoutMs).catch((err: unknown) => {
      failed.add(name);
      throw err;
    });
    sourceReads.push(read.catch(() => {}));
    return read;
  }

  const queueLength = new Gauge({
    name: 'mairust_queue_length',
    help: 'Jobs in the queue, by queue and status.',
    labelNames: ['queue', 'status'] as const,
    registers,
    async collect() {
      if (!queueSource) return;
      const source = queueSource;
      try {
        const samples = await readSource('queue_length', source);
        this.reset(); // statuses that emptied since the last scrape must disappear, not linger
        for (const s of samples) this.set({ queue: s.queue, status: s.status }, s.count);
      } catch {
        this.reset(); // no series at all: "unknown", not "empty"
      }
    },
  });

  const storageBytes = new Gauge({
    name: 'mairust_storage_bytes',
    help: 'Bytes of stored message blobs.',
    registers,
    async collect() {
      if (!storageSource) return;
      const source = storageSource;
      try {
        this.set(await readSource('storage_bytes', source));
      } catch {
        // A label-less gauge cannot be absent in prom-client; NaN says "unknown" (a 0 would lie).
        // prom-client prints it as "Nan", which Prometheus parses (case-insensitive float parsing).
        this.set(Number.NaN);
      }
    },
  });

  const sourceErrors = new Counter({
    name: 'mairust_metrics_source_errors_total',
    help: 'Scrape-time metric sources that failed or timed out.',
    labelNames: ['source'] as const,
    registers,
    async collect() {
      const reads = sourceReads;
      sourceReads = [];
      await Promise.all(reads);
      for (const name of failed) this.inc({ source: name });
      failed.clear();
    },
  });

  const metrics: Metrics = {
    registry,
    smtpConnections: new Counter({
      name: 'mairust_smtp_connections_total',
      help: 'SMTP connections accepted.',
      labelNames: ['listener'] as const,
      registers,
    }),
    smtpMessages: new Counter({
      name: 'mairust_smtp_messages_total',
      help: 'Messages received over SMTP, by result.',
      labelNames: ['listener', 'result'] as const,
      registers,
    }),
    smtpDuration: new Histogram({
      name: 'mairust_smtp_duration_seconds',
      help: 'SMTP session duration.',
      labelNames: ['listener'] as const,
      buckets: SMTP_BUCKETS,
      registers,
    }),
    mailAccessConnections: new Counter({
      name: 'mairust_mail_access_connections_total',
      help: 'IMAP and POP3 connections accepted, by protocol and listener.',
      labelNames: ['protocol', 'listener'] as const,
      registers,
    }),
    mailAccessSessions: new Gauge({
      name: 'mairust_mail_access_sessions',
      help: 'IMAP and POP3 sessions open now, by protocol and listener.',
      labelNames: ['protocol', 'listener'] as const,
      registers,
    }),
    imapCommands: new Counter({
      name: 'mairust_imap_commands_total',
      help: 'IMAP commands completed, by command and tagged status (OK, NO, BAD).',
      labelNames: ['command', 'status'] as const,
      registers,
    }),
    apiRequests: new Counter({
      name: 'mairust_api_requests_total',
      help: 'HTTP requests served, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'] as const,
      registers,
    }),
    apiDuration: new Histogram({
      name: 'mairust_api_duration_seconds',
      help: 'HTTP request duration, by method and route pattern.',
      labelNames: ['method', 'route'] as const,
      buckets: API_BUCKETS,
      registers,
    }),
    queueLength,
    queueJobs: new Counter({
      name: 'mairust_queue_jobs_total',
      help: 'Finished job attempts, by queue and result.',
      labelNames: ['queue', 'result'] as const,
      registers,
    }),
    storageBytes,
    sourceErrors,
    setQueueStatsSource(source) {
      queueSource = source;
    },
    setStorageBytesSource(source) {
      storageSource = source;
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
  return metrics;
}
