/**
 * Outbound policy metrics (SPEC §8 "Metrics", §12), registered in the app's registry:
 *
 *   mairust_outbound_total{result}          policy decisions, by result (`allow`, `delay`, `block`)
 *   mairust_outbound_blocked_total          attempts refused (suspended account, hard or domain limit)
 *   mairust_outbound_rate_limited_total     attempts over a soft or hard rate limit
 *   mairust_outbound_spam_score             histogram of the policy score (0…1)
 *   mairust_account_suspended_total         accounts suspended by the policy engine or an admin
 *
 * Engines may be built more than once per registry (config reload, one per API instance), so an
 * existing metric of the same name is reused rather than registered twice (prom-client throws).
 */
import { Counter, Histogram, Registry, type Metric } from 'prom-client';

export interface OutboundPolicyMetrics {
  readonly decisions: Counter<'result'>;
  readonly blocked: Counter<string>;
  readonly rateLimited: Counter<string>;
  readonly score: Histogram<string>;
  readonly suspended: Counter<string>;
}

const SCORE_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];

function reuse<T extends Metric>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function createOutboundPolicyMetrics(registry: Registry = new Registry()): OutboundPolicyMetrics {
  const registers = [registry];
  return {
    decisions: reuse(registry, 'mairust_outbound_total', () => new Counter({ name: 'mairust_outbound_total', help: 'Outbound policy decisions, by result (allow, delay, block).', labelNames: ['result'] as const, registers })),
    blocked: reuse(registry, 'mairust_outbound_blocked_total', () => new Counter({ name: 'mairust_outbound_blocked_total', help: 'Outbound messages refused by the policy (suspended account, hard or domain limit).', registers })),
    rateLimited: reuse(registry, 'mairust_outbound_rate_limited_total', () => new Counter({ name: 'mairust_outbound_rate_limited_total', help: 'Outbound messages over a soft or hard rate limit.', registers })),
    score: reuse(registry, 'mairust_outbound_spam_score', () => new Histogram({ name: 'mairust_outbound_spam_score', help: 'Outbound policy score per evaluated message (0 to 1).', buckets: SCORE_BUCKETS, registers })),
    suspended: reuse(registry, 'mairust_account_suspended_total', () => new Counter({ name: 'mairust_account_suspended_total', help: 'Sending accounts suspended (policy engine or admin).', registers })),
  };
}
