/**
 * What a spam check decides about one message. The action names are rspamd's (its `action` field,
 * https://rspamd.com/doc/configuration/metrics.html), so a verdict from rspamd passes through
 * unchanged and the built-in rules speak the same language.
 */

export const SPAM_ACTIONS = ['no action', 'greylist', 'add header', 'rewrite subject', 'soft reject', 'reject'] as const;

export type SpamAction = (typeof SPAM_ACTIONS)[number];

/** Which checker produced a verdict: rspamd, or the built-in rules (rspamd absent or failing). */
export type SpamSource = 'rspamd' | 'builtin';

export interface SpamVerdict {
  score: number;
  /** Score at which the checker rejects (rspamd's `required_score`; built-in: `reject_score`). */
  requiredScore: number;
  action: SpamAction;
  /** Symbol name → score it contributed. */
  symbols: Record<string, number>;
  source: SpamSource;
  /** `X-Spam-*` header fields to add, each ending in CRLF (see spam-header.ts). */
  header: string;
}

export function isSpamAction(value: unknown): value is SpamAction {
  return typeof value === 'string' && (SPAM_ACTIONS as readonly string[]).includes(value);
}

/**
 * True for the actions that mean "this is spam": the message is flagged (and filed into Junk) or
 * refused. `greylist` is not a spam verdict: it asks for a retry, which MaiRust does not do.
 */
export function isSpam(action: SpamAction): boolean {
  return action === 'add header' || action === 'rewrite subject' || action === 'soft reject' || action === 'reject';
}
