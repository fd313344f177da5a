/**
 * Builds the configured `Queue` adapter (for the composition root, src/app/) and re-exports the
 * queue's public pieces.
 */
import { NatsQueue } from './nats-queue.js';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Database } from '../store/db/database.js';
import { DatabaseQueue, type DatabaseQueueSettings, type QueueMetricEvent } from './db-queue.js';

export type { EnqueueOptions, Job, JobHandler, Queue, QueueStats, WorkerOptions } from './queue.js';
export {
  DatabaseQueue,
  LeaseLostError,
  QueueStoppingError,
  NOTIFY_CHANNEL,
  MAX_PAYLOAD_BYTES,
  MAX_LIST_LIMIT,
  type DatabaseQueueOptions,
  type DatabaseQueueSettings,
  type QueueMetricEvent,
} from './db-queue.js';
export { backoffDelayMs, validateBackoff, validateMaxAttempts } from './backoff.js';

export type QueueConfig = Config['queue'];

export interface CreateQueueOptions {
  nodeId: string;
  /** `queue.*` from the validated config; omitted keys take the adapter's defaults. */
  config?: Partial<QueueConfig>;
  logger?: Logger;
  onMetrics?: (event: QueueMetricEvent, queue: string) => void;
  /** `nats.servers`, for `backend: nats`. */
  natsServers?: string[];
}

/** Maps `queue.*` config keys to adapter settings; also what a config reload passes to `setOptions`. */
export function queueSettingsFromConfig(config: Partial<QueueConfig>): DatabaseQueueSettings {
  return {
    pollIntervalMs: config.poll_interval_ms,
    leaseSeconds: config.lease_seconds,
    defaultBackoffSeconds: config.default_backoff_seconds,
    defaultMaxAttempts: config.default_max_attempts,
  };
}

/**
 * The queue of `queue.backend`: the database adapter, or NATS JetStream (SPEC §2) with its
 * transactional outbox in `db` (so `enqueueIn` works with either).
 */
export function createQueue(db: Database, opts: CreateQueueOptions): DatabaseQueue | NatsQueue {
  const config = opts.config ?? {};
  const common = {
    nodeId: opts.nodeId,
    ...stripUndefined(queueSettingsFromConfig(config)),
    logger: opts.logger,
    onMetrics: opts.onMetrics,
  };
  if (config.backend === 'nats') return new NatsQueue({ ...common, servers: opts.natsServers, outbox: db });
  return new DatabaseQueue(db, common);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
