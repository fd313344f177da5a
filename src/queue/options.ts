/**
 * Options of the database queue adapter, their defaults and their limits. Settings are kept apart
 * from the fixed options because a config reload may change them while workers run (SPEC: `queue.*`
 * keys marked reloadable, plus the lease).
 */
import type { Logger } from 'pino';
import { validateBackoff, validateMaxAttempts } from './backoff.js';

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

/** The settings in force: every key present and validated. */
export interface QueueSettings {
  pollIntervalMs: number;
  leaseSeconds: number;
  defaultBackoffSeconds: readonly number[];
  defaultMaxAttempts: number;
}

/** Defaults match the config schema's defaults; SPEC §3.1 step 7 gives the 30 s, 2 min, 10 min schedule. */
export function initialSettings(opts: DatabaseQueueSettings): QueueSettings {
  return validateSettings({
    pollIntervalMs: opts.pollIntervalMs ?? 1000,
    leaseSeconds: opts.leaseSeconds ?? 300,
    defaultBackoffSeconds: [...(opts.defaultBackoffSeconds ?? [30, 120, 600])],
    defaultMaxAttempts: opts.defaultMaxAttempts ?? 4,
  });
}

/** `current` with the keys `partial` sets replaced; throws (and changes nothing) when one is out of range. */
export function mergeSettings(current: QueueSettings, partial: DatabaseQueueSettings): QueueSettings {
  return validateSettings({ ...current, ...pick(partial) });
}

export function validateNodeId(nodeId: string): string {
  if (typeof nodeId !== 'string' || nodeId.length === 0 || nodeId.length > 200) {
    throw new RangeError('nodeId must be a non-empty string of at most 200 characters');
  }
  return nodeId;
}

function validateSettings(s: QueueSettings): QueueSettings {
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

/** Only the keys actually given: `{ leaseSeconds: undefined }` must not erase the current value. */
function pick(partial: DatabaseQueueSettings): Partial<QueueSettings> {
  const out: Partial<QueueSettings> = {};
  if (partial.pollIntervalMs !== undefined) out.pollIntervalMs = partial.pollIntervalMs;
  if (partial.leaseSeconds !== undefined) out.leaseSeconds = partial.leaseSeconds;
  if (partial.defaultBackoffSeconds !== undefined) out.defaultBackoffSeconds = [...partial.defaultBackoffSeconds];
  if (partial.defaultMaxAttempts !== undefined) out.defaultMaxAttempts = partial.defaultMaxAttempts;
  return out;
}
