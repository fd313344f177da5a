/**
 * The spam checker the pipeline uses: rspamd when configured, the built-in rules when it is not or
 * when rspamd fails (SPEC §3.1 step 3: "rspamd, or built-in rules when rspamd is absent").
 *
 * A failing rspamd never delays or refuses mail beyond one bounded attempt:
 *  - any RspamdError (refused, timeout, HTTP error, unusable or oversized answer) → built-in verdict;
 *  - after a failure rspamd is not asked for `retryAfterMs`, so a hung rspamd costs one timeout,
 *    not one per message;
 *  - a warning is logged at most once per WARN_INTERVAL_MS (with how many failures it stands
 *    for), every failure is counted in `mairust_spam_rspamd_failures_total{reason}`, and the
 *    verdict's `source` is 'builtin'.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../observability/logger.js';
import type { BuiltinSpamChecker } from './builtin-checker.js';
import { RspamdError } from './errors.js';
import type { RspamdClient } from './rspamd-client.js';
import type { SpamCheckInput, SpamChecker } from './spam-checker.js';
import { formatSpamHeader } from './spam-header.js';
import type { SpamMetrics } from './spam-metrics.js';
import type { SpamVerdict } from './verdict.js';

export const WARN_INTERVAL_MS = 60_000;

export interface FallbackSpamCheckerOptions {
  /** null: rspamd is not configured; the built-in rules decide every message. */
  rspamd: Pick<RspamdClient, 'check'> | null;
  builtin: Pick<BuiltinSpamChecker, 'check'>;
  logger: Logger;
  metrics: SpamMetrics;
  retryAfterMs: number;
  now?: () => number;
}

export class FallbackSpamChecker implements SpamChecker {
  private readonly now: () => number;
  /** When rspamd last failed; null while it answers. */
  private failedAt: number | null = null;
  private lastWarnAt = Number.NEGATIVE_INFINITY;
  /** Failures since the last warning. */
  private unreported = 0;

  constructor(private readonly opts: FallbackSpamCheckerOptions) {
    this.now = opts.now ?? Date.now;
  }

  async check(input: SpamCheckInput): Promise<SpamVerdict> {
    const started = performance.now();
    const verdict = (await this.tryRspamd(input)) ?? (await this.opts.builtin.check(input));
    const { metrics } = this.opts;
    metrics.checks.inc({ source: verdict.source, action: verdict.action });
    metrics.duration.observe({ source: verdict.source }, (performance.now() - started) / 1000);
    return verdict;
  }

  /** The rspamd verdict, or null when the built-in rules must decide. */
  private async tryRspamd(input: SpamCheckInput): Promise<SpamVerdict | null> {
    const { rspamd, retryAfterMs, metrics } = this.opts;
    if (!rspamd) return null;
    if (this.failedAt !== null && this.now() - this.failedAt < retryAfterMs) {
      metrics.rspamdFailures.inc({ reason: 'recently_failed' });
      this.unreported++;
      return null;
    }
    try {
      const result = await rspamd.check(input);
      if (this.failedAt !== null) {
        this.opts.logger.info({ failures_since_last_warning: this.unreported }, 'rspamd answers again; spam checks use it');
        this.failedAt = null;
        this.unreported = 0;
        this.lastWarnAt = Number.NEGATIVE_INFINITY;
      }
      const verdict = { ...result, source: 'rspamd' as const };
      return { ...verdict, header: formatSpamHeader(verdict) };
    } catch (err) {
      // Anything else is a failure to read the message itself: the built-in rules could not read
      // it either, so it goes to the pipeline (which answers 451).
      if (!(err instanceof RspamdError)) throw err;
      this.failedAt = this.now();
      metrics.rspamdFailures.inc({ reason: err.reason });
      this.unreported++;
      this.warn(err);
      return null;
    }
  }

  private warn(err: RspamdError): void {
    const at = this.now();
    if (at - this.lastWarnAt < WARN_INTERVAL_MS) return;
    this.opts.logger.warn(
      { reason: err.reason, error: err.message, failures: this.unreported, retry_after_ms: this.opts.retryAfterMs },
      'rspamd check failed; the built-in spam rules decide until it answers again',
    );
    this.lastWarnAt = at;
    this.unreported = 0;
  }
}
