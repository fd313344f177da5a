/**
 * Outbound delivery metrics (SPEC §12 "Metrics … outbound"), in the app's registry:
 *
 *   mairust_outbound_deliveries_total{result}    recipients finished or deferred per attempt
 *                                                (delivered, bounced, deferred)
 *   mairust_outbound_queue_messages{status}      queue records per status, read at scrape time
 *                                                (like mairust_queue_length), plus `held`
 *
 * Existing metrics of the same name are reused (a worker rebuilt on reload registers nothing twice).
 */
import { Counter, Gauge, Registry, type Metric } from 'prom-client';

export interface OutboundMetrics {
  readonly deliveries: Counter<'result'>;
  readonly queueMessages: Gauge<'status'>;
}

function reuse<T extends Metric>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/** `source` gives the per-status counts at scrape time (OutboundRecords.stats with the system scope). */
export function createOutboundMetrics(registry: Registry, source?: () => Promise<{ status: string; count: number }[]>): OutboundMetrics {
  const registers = [registry];
  return {
    deliveries: reuse(
      registry,
      'mairust_outbound_deliveries_total',
      () => new Counter({ name: 'mairust_outbound_deliveries_total', help: 'Outbound recipients per attempt outcome (delivered, bounced, deferred).', labelNames: ['result'] as const, registers }),
    ),
    queueMessages: reuse(
      registry,
      'mairust_outbound_queue_messages',
      () =>
        new Gauge({
          name: 'mairust_outbound_queue_messages',
          help: 'Outbound queue records by status (held: waiting records on hold).',
          labelNames: ['status'] as const,
          registers,
          async collect() {
            if (!source) return;
            try {
              const rows = await source();
              this.reset(); // statuses that emptied must disappear
              for (const r of rows) this.set({ status: r.status }, r.count);
            } catch {
              this.reset(); // unknown, not zero
            }
          },
        }),
    ),
  };
}
