/**
 * The spam-check port of the inbound pipeline (SPEC §3.1 step 3) and the factory that builds it
 * from the `spam` config section:
 *
 *   spam.rspamd.url set  → rspamd over HTTP, falling back to the built-in rules whenever rspamd is
 *                          unreachable, slow, or answers something unusable (fallback-checker.ts)
 *   spam.rspamd.url ''   → the built-in rules only (builtin-checker.ts)
 *
 * The verdict's `source` says which one decided. The pipeline acts on `action` (reject, Junk, add
 * header), stores score and symbols with the message, and prepends `header`.
 */
import type { SpamConfig } from '../config/sections/spam.js';
import type { MessageSource } from '../mail/message-source.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { BuiltinSpamChecker } from './builtin-checker.js';
import { FallbackSpamChecker } from './fallback-checker.js';
import { RspamdClient } from './rspamd-client.js';
import { createSpamMetrics } from './spam-metrics.js';
import type { SpamVerdict } from './verdict.js';

export interface SpamCheckInput {
  /** The received message (as it will be stored, before the X-Spam-* header is added). */
  source: MessageSource;
  /** The SMTP client's IP address. */
  remoteAddress: string;
  /** The HELO/EHLO argument. */
  helo: string;
  /** Envelope sender; null for the null reverse-path `<>`. */
  mailFrom: string | null;
  /** Envelope recipients (RCPT TO addresses). */
  recipients: string[];
  /** The AUTH identity on submission; absent on MX. */
  authenticatedUser?: string;
  /** Our id for the message, passed on so the checker's log can be matched to ours. */
  queueId?: string;
  /** The client's verified reverse-DNS name, when the SMTP layer looked it up. */
  hostname?: string;
}

export interface SpamChecker {
  /**
   * Checks one message. Resolves with a verdict whenever the message could be read — a failing
   * rspamd is never an error here, the built-in rules answer instead. Rejects only when the
   * message source itself cannot be read.
   */
  check(input: SpamCheckInput): Promise<SpamVerdict>;
}

export interface SpamCheckerDeps {
  logger: Logger;
  /** Where the spam counters are registered (the app's metrics); omitted in tools and tests. */
  metrics?: Pick<Metrics, 'registry'>;
  /** Clock for the warning rate limit and the retry pause; tests pass their own. */
  now?: () => number;
}

export function createSpamChecker(cfg: SpamConfig, deps: SpamCheckerDeps): SpamChecker {
  const logger = deps.logger.child({ component: 'spam' });
  const metrics = createSpamMetrics(deps.metrics?.registry);
  const builtin = new BuiltinSpamChecker(cfg.builtin);
  if (!cfg.rspamd.url) return new FallbackSpamChecker({ rspamd: null, builtin, logger, metrics, retryAfterMs: 0, now: deps.now });
  const rspamd = new RspamdClient({ url: cfg.rspamd.url, timeoutMs: cfg.rspamd.timeout_ms, maxResponseBytes: cfg.rspamd.max_response_bytes });
  return new FallbackSpamChecker({ rspamd, builtin, logger, metrics, retryAfterMs: cfg.rspamd.retry_after_ms, now: deps.now });
}
