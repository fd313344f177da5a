/**
 * Spam-check metrics (SPEC §12 "Metrics"), registered in the app's registry:
 *
 *   mairust_spam_checks_total{source,action}         verdicts, by who decided and what
 *   mairust_spam_rspamd_failures_total{reason}       checks where rspamd failed and the built-in
 *                                                    rules decided (reasons: errors.ts)
 *   mairust_spam_check_duration_seconds{source}      time per check, fallback included
 *
 * A checker is rebuilt on config reload, so an existing metric of the same name is reused rather
 * than registered twice (prom-client would throw).
 */
import { Counter, Histogram, Registry, type Metric } from 'prom-client';

export interface SpamMetrics {
  readonly checks: Counter<'source' | 'action'>;
  readonly rspamdFailures: Counter<'reason'>;
  readonly duration: Histogram<'source'>;
}

// Seconds: a healthy rspamd answers in milliseconds; the top buckets show timeouts (default 5 s).
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function reuse<T extends Metric>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function createSpamMetrics(registry: Registry = new Registry()): SpamMetrics {
  const registers = [registry];
  return {
    checks: reuse(
      registry,
      'mairust_spam_checks_total',
      () => new Counter({ name: 'mairust_spam_checks_total', help: 'Spam checks, by the checker that decided (rspamd, builtin) and its action.', labelNames: ['source', 'action'] as const, registers }),
    ),
    rspamdFailures: reuse(
      registry,
      'mairust_spam_rspamd_failures_total',
      () => new Counter({ name: 'mairust_spam_rspamd_failures_total', help: 'Spam checks where rspamd failed and the built-in rules decided, by reason.', labelNames: ['reason'] as const, registers }),
    ),
    duration: reuse(
      registry,
      'mairust_spam_check_duration_seconds',
      () => new Histogram({ name: 'mairust_spam_check_duration_seconds', help: 'Time per spam check, by the checker that decided.', labelNames: ['source'] as const, buckets: BUCKETS, registers }),
    ),
  };
}
