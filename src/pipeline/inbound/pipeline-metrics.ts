/**
 * Inbound pipeline metrics (SPEC §12 "Metrics"), registered in the app's registry:
 *
 *   mairust_inbound_messages_total{listener,result,stage}   messages by outcome (accepted,
 *                                                           rejected, tempfail) and the stage that
 *                                                           decided (`commit` for accepted mail)
 *   mairust_inbound_junk_total{listener,reason}             accepted messages filed into Junk
 *                                                           (reason: spam, dmarc)
 *   mairust_inbound_duration_seconds{listener}              end of DATA to verdict, commit included
 *
 * The SMTP layer counts `mairust_smtp_messages_total` per reply; these add the pipeline's view
 * (which stage refused, how long durability took) without counting the same event twice.
 * A metric that already exists in the registry (a pipeline rebuilt on reload) is reused.
 */
import { Counter, Histogram, type Metric, type Registry } from 'prom-client';

export interface PipelineMetrics {
  readonly messages: Counter<'listener' | 'result' | 'stage'>;
  readonly junk: Counter<'listener' | 'reason'>;
  readonly duration: Histogram<'listener'>;
}

// Seconds: most messages commit in milliseconds; the upper buckets show slow DNS, rspamd or storage.
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function reuse<T extends Metric>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function createPipelineMetrics(registry: Registry): PipelineMetrics {
  const registers = [registry];
  return {
    messages: reuse(
      registry,
      'mairust_inbound_messages_total',
      () =>
        new Counter({
          name: 'mairust_inbound_messages_total',
          help: 'Messages through the inbound pipeline, by listener, result (accepted, rejected, tempfail) and deciding stage.',
          labelNames: ['listener', 'result', 'stage'] as const,
          registers,
        }),
    ),
    junk: reuse(
      registry,
      'mairust_inbound_junk_total',
      () => new Counter({ name: 'mairust_inbound_junk_total', help: 'Accepted messages filed into Junk, by reason (spam, dmarc).', labelNames: ['listener', 'reason'] as const, registers }),
    ),
    duration: reuse(
      registry,
      'mairust_inbound_duration_seconds',
      () => new Histogram({ name: 'mairust_inbound_duration_seconds', help: 'Time from the start of DATA to the verdict, commit included.', labelNames: ['listener'] as const, buckets: BUCKETS, registers }),
    ),
  };
}
