/**
 * What the smtp-server callbacks (auth.ts, transaction.ts, data.ts) share with the listener that
 * created them. Kept as one small interface so each handler file depends on the listener only
 * through it.
 */
import type { InboundPipeline, ListenerKind } from '../../pipeline/inbound/contract.js';
import type { Metrics } from '../../observability/metrics.js';
import type { SmtpLimits } from './limits.js';
import type { SessionRegistry, SessionState } from './session-info.js';

export interface HandlerContext {
  readonly kind: ListenerKind;
  readonly limits: SmtpLimits;
  readonly pipeline: InboundPipeline;
  readonly registry: SessionRegistry;
  readonly metrics?: Metrics;
  /** Metrics label of the listener: `mx`, `submission` or `submissions` (implicit TLS). */
  readonly metricLabel: string;
  /** True once close() was called: no new transactions start. */
  draining(): boolean;
  /** Called right after a handler answered, so a draining listener can end a session that became idle. */
  settled(state: SessionState): void;
}

/** The callback wrapped so that only its first call goes through (a reply is written once). */
export function once<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  let called = false;
  return (...args: A) => {
    if (called) return;
    called = true;
    fn(...args);
  };
}

/**
 * Runs a handler body with the session marked busy. The bodies catch their own errors and answer;
 * should one still throw, `fallback` answers for it — smtp-server does not time out a session while
 * a handler is pending, so a handler that never answered would hold the session forever.
 */
export function track(ctx: HandlerContext, state: SessionState, work: () => Promise<void>, fallback: () => void): void {
  state.busy++;
  work()
    .catch((err: unknown) => {
      state.log.error({ err }, 'SMTP handler failed');
      fallback();
    })
    .finally(() => {
      state.busy--;
      ctx.settled(state);
    });
}
