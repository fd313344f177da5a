/**
 * Optional monitor notifications (SPEC §8): when an account reaches a soft, hard or domain limit,
 * a JSON document is POSTed to `policy.monitor_url` — the decision, its score and signals, never
 * message content (no body, no subject, no recipients).
 *
 * Throttled as the SPEC says: per account at most one notice every 10 minutes and 24 per day;
 * system-wide at most one per second. The throttles use the shared `RateCounter`, so on
 * PostgreSQL they hold across every node. A notice over a throttle is dropped, not queued (the
 * next one carries the current state anyway).
 *
 * Fire-and-forget: `notify` never throws and the engine does not await it; a slow or failing
 * monitor never delays or blocks sending (bounded by a timeout, failures are logged).
 */
import type { RateCounter } from '../../http/api/rate-limit/types.js';
import type { PolicyDecision } from '../types.js';
import { DAY_MS } from './rate-limiter.js';

export const MONITOR_ACCOUNT_INTERVAL_MS = 10 * 60_000;
export const MONITOR_ACCOUNT_PER_DAY = 24;
export const MONITOR_SYSTEM_INTERVAL_MS = 1000;

export interface MonitorNotice {
  tenantId: string;
  userId: string;
  domainId: string | null;
  decision: PolicyDecision;
  /** Whether this decision suspended the account. */
  suspended: boolean;
}

export type MonitorOutcome = 'disabled' | 'throttled' | 'sent' | 'failed';

export interface PolicyMonitor {
  notify(notice: MonitorNotice): Promise<MonitorOutcome>;
}

export interface PolicyMonitorOptions {
  url: () => string;
  counter: RateCounter;
  logger?: { warn(obj: object, msg: string): void };
  timeoutMs?: number;
  now?: () => number;
}

export function createPolicyMonitor(opts: PolicyMonitorOptions): PolicyMonitor {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const now = opts.now ?? Date.now;

  async function allowed(userId: string): Promise<boolean> {
    // Account interval first: most notices stop there, and a dropped one costs no daily slot.
    const recent = await opts.counter.hit(`out:mon:a:${userId}`, MONITOR_ACCOUNT_INTERVAL_MS);
    if (recent.count > 1) return false;
    const daily = await opts.counter.hit(`out:mon:d:${userId}`, DAY_MS);
    if (daily.count > MONITOR_ACCOUNT_PER_DAY) return false;
    const system = await opts.counter.hit('out:mon:sys', MONITOR_SYSTEM_INTERVAL_MS);
    return system.count <= 1;
  }

  return {
    async notify(n) {
      const url = opts.url();
      if (!url) return 'disabled';
      try {
        if (!(await allowed(n.userId))) return 'throttled';
        const d = n.decision;
        const body = {
          type: 'outbound.policy',
          at: new Date(now()).toISOString(),
          tenant_id: n.tenantId,
          user_id: n.userId,
          domain_id: n.domainId,
          level: d.level,
          action: d.action,
          suspended: n.suspended,
          score: d.score,
          components: d.components,
          reason: d.reason,
          signals: d.signals.map((s) => ({ name: s.name, component: s.component, value: s.value, detail: s.detail })),
        };
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'MaiRust-outbound-monitor' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
          redirect: 'error',
        });
        await res.body?.cancel().catch(() => {});
        if (!res.ok) throw new Error(`monitor answered HTTP ${res.status}`);
        return 'sent';
      } catch (err) {
        opts.logger?.warn({ err: { message: (err as Error)?.message ?? String(err) } }, 'outbound policy monitor notification failed');
        return 'failed';
      }
    },
  };
}
