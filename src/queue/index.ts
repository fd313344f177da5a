/**
 * Builds the configured `Queue` adapter (for the composition root, src/app/) and re-exports the
 * queue's public pieces.
 */
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

export function createQueue(db: Database, opts: CreateQueueOptions): DatabaseQueue {
  const config = opts.config ?? {};
  if (config.backend === 'nats') {
    // SPEC §2: NATS JetStream is the optional external backend behind the same port; not built yet.
    throw new Error('queue.backend "nats" is not available in this release; use "database"');
  }
  return new DatabaseQueue(db, {
    nodeId: opts.nodeId,
    ...stripUndefined(queueSettingsFromConfig(config)),
    logger: opts.logger,
    onMetrics: opts.onMetrics,
  });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
