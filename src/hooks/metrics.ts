/**
 * Hook and plugin metrics (SPEC §6 "Metrics", SPEC §7 "Per-plugin calls, bytes, latency, errors and
 * breaker state are recorded and shown in the admin UI"), in the app's prom-client registry:
 *
 *   mairust_hook_calls_total{hook_type,plugin_id,action}   calls made, by the action they contributed
 *                                                          (after on_timeout/on_error; `none`: nothing)
 *   mairust_hook_duration_seconds{hook_type,plugin_id}     wall time per call
 *   mairust_hook_errors_total{hook_type,plugin_id}         calls that failed (transport, bad reply)
 *   mairust_hook_timeouts_total{hook_type,plugin_id}       calls that timed out
 *   mairust_circuit_breaker_state{hook_type,plugin_id,hook_id}  0 closed, 1 open, 2 half_open
 *   mairust_plugin_bytes_sent_total{plugin_id}             payload bytes sent to plugins
 *   mairust_plugin_bytes_received_total{plugin_id}         reply bytes received from plugins
 *
 * Label values are bounded: hook types are an enum, plugin and hook ids are validated patterns
 * (types.ts), actions an enum. Besides the registry, an in-process summary per plugin backs
 * `GET /api/v1/admin/plugins/:id/metrics` (this node's view since it started).
 *
 * A manager may be rebuilt on reload: metrics already in the registry are reused (prom-client
 * throws on a second registration of a name).
 */
import { Counter, Gauge, Histogram, type Metric, type Registry } from 'prom-client';
import { BREAKER_STATE_VALUE, type BreakerStateName } from './circuit-breaker.js';

export interface PluginStats {
  calls: number;
  errors: number;
  timeouts: number;
  bytes_sent: number;
  bytes_received: number;
  /** Mean wall time of the calls made (0 when none). */
  avg_latency_ms: number;
  /** One line, no secrets; null when no call failed. */
  last_error: string | null;
  /** ms since the epoch; null when never called. */
  last_call_at: number | null;
}

export interface HookCallSample {
  hookType: string;
  pluginId: string;
  /** The action the call contributed; undefined → `none`. */
  action?: string;
  outcome: 'ok' | 'timeout' | 'error';
  durationMs: number;
  bytesSent: number;
  bytesReceived: number;
  error?: string;
  at: number;
}

export interface HookMetrics {
  /** One call made to a plugin (not for calls skipped by a filter, an open breaker or an unavailable plugin). */
  recordCall(sample: HookCallSample): void;
  setBreakerState(labels: { hookType: string; pluginId: string; hookId: string }, state: BreakerStateName): void;
  pluginStats(pluginId: string): PluginStats;
}

// Seconds: the SPEC §6 timeouts run from 2 s (sync hooks) up to 300 s (post_receive).
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300];

function reuse<T extends Metric>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

interface Accumulator {
  calls: number;
  errors: number;
  timeouts: number;
  bytesSent: number;
  bytesReceived: number;
  totalMs: number;
  lastError: string | null;
  lastCallAt: number | null;
}

export function createHookMetrics(registry: Registry): HookMetrics {
  const registers = [registry];
  const calls = reuse(registry, 'mairust_hook_calls_total', () =>
    new Counter({ name: 'mairust_hook_calls_total', help: 'Hook calls made to plugins, by hook type, plugin and the action the call contributed (none: nothing).', labelNames: ['hook_type', 'plugin_id', 'action'] as const, registers }),
  ) as Counter<'hook_type' | 'plugin_id' | 'action'>;
  const duration = reuse(registry, 'mairust_hook_duration_seconds', () =>
    new Histogram({ name: 'mairust_hook_duration_seconds', help: 'Wall time of hook calls, by hook type and plugin.', labelNames: ['hook_type', 'plugin_id'] as const, buckets: DURATION_BUCKETS, registers }),
  ) as Histogram<'hook_type' | 'plugin_id'>;
  const errors = reuse(registry, 'mairust_hook_errors_total', () =>
    new Counter({ name: 'mairust_hook_errors_total', help: 'Hook calls that failed (transport error, bad or invalid reply), by hook type and plugin.', labelNames: ['hook_type', 'plugin_id'] as const, registers }),
  ) as Counter<'hook_type' | 'plugin_id'>;
  const timeouts = reuse(registry, 'mairust_hook_timeouts_total', () =>
    new Counter({ name: 'mairust_hook_timeouts_total', help: 'Hook calls that timed out, by hook type and plugin.', labelNames: ['hook_type', 'plugin_id'] as const, registers }),
  ) as Counter<'hook_type' | 'plugin_id'>;
  const breaker = reuse(registry, 'mairust_circuit_breaker_state', () =>
    new Gauge({ name: 'mairust_circuit_breaker_state', help: 'Circuit breaker per (hook, plugin): 0 closed, 1 open, 2 half_open.', labelNames: ['hook_type', 'plugin_id', 'hook_id'] as const, registers }),
  ) as Gauge<'hook_type' | 'plugin_id' | 'hook_id'>;
  const bytesSent = reuse(registry, 'mairust_plugin_bytes_sent_total', () =>
    new Counter({ name: 'mairust_plugin_bytes_sent_total', help: 'Payload bytes sent to plugins.', labelNames: ['plugin_id'] as const, registers }),
  ) as Counter<'plugin_id'>;
  const bytesReceived = reuse(registry, 'mairust_plugin_bytes_received_total', () =>
    new Counter({ name: 'mairust_plugin_bytes_received_total', help: 'Reply bytes received from plugins.', labelNames: ['plugin_id'] as const, registers }),
  ) as Counter<'plugin_id'>;

  const stats = new Map<string, Accumulator>();
  const acc = (pluginId: string): Accumulator => {
    let a = stats.get(pluginId);
    if (!a) {
      a = { calls: 0, errors: 0, timeouts: 0, bytesSent: 0, bytesReceived: 0, totalMs: 0, lastError: null, lastCallAt: null };
      stats.set(pluginId, a);
    }
    return a;
  };

  return {
    recordCall(s) {
      const labels = { hook_type: s.hookType, plugin_id: s.pluginId };
      calls.inc({ ...labels, action: s.action ?? 'none' });
      duration.observe(labels, Math.max(0, s.durationMs) / 1000);
      if (s.outcome === 'error') errors.inc(labels);
      if (s.outcome === 'timeout') timeouts.inc(labels);
      if (s.bytesSent > 0) bytesSent.inc({ plugin_id: s.pluginId }, s.bytesSent);
      if (s.bytesReceived > 0) bytesReceived.inc({ plugin_id: s.pluginId }, s.bytesReceived);
      const a = acc(s.pluginId);
      a.calls += 1;
      a.totalMs += Math.max(0, s.durationMs);
      a.bytesSent += s.bytesSent;
      a.bytesReceived += s.bytesReceived;
      if (s.outcome === 'error') a.errors += 1;
      if (s.outcome === 'timeout') a.timeouts += 1;
      if (s.outcome !== 'ok' && s.error) a.lastError = s.error;
      a.lastCallAt = s.at;
    },
    setBreakerState(l, state) {
      breaker.set({ hook_type: l.hookType, plugin_id: l.pluginId, hook_id: l.hookId }, BREAKER_STATE_VALUE[state]);
    },
    pluginStats(pluginId) {
      const a = stats.get(pluginId);
      if (!a) return { calls: 0, errors: 0, timeouts: 0, bytes_sent: 0, bytes_received: 0, avg_latency_ms: 0, last_error: null, last_call_at: null };
      return {
        calls: a.calls,
        errors: a.errors,
        timeouts: a.timeouts,
        bytes_sent: a.bytesSent,
        bytes_received: a.bytesReceived,
        avg_latency_ms: a.calls === 0 ? 0 : Math.round(a.totalMs / a.calls),
        last_error: a.lastError,
        last_call_at: a.lastCallAt,
      };
    },
  };
}
