/**
 * Spam checking of inbound mail (SPEC §3.1 step 3): rspamd over its HTTP API, built-in rules when
 * rspamd is absent or failing. The pipeline uses `createSpamChecker` and the `SpamChecker` port.
 */
export { createSpamChecker, type SpamCheckInput, type SpamChecker, type SpamCheckerDeps } from './spam-checker.js';
export { SPAM_ACTIONS, isSpam, isSpamAction, type SpamAction, type SpamSource, type SpamVerdict } from './verdict.js';
export { RspamdError, type RspamdFailureReason } from './errors.js';
export { formatSpamHeader } from './spam-header.js';
export { BUILTIN_SYMBOLS, evaluateBuiltinRules, type BuiltinSymbol } from './builtin-rules.js';
