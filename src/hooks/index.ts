/** The hook system (SPEC §6): config, filters, aggregation, SMTP replies, breaker, executors, store, runner, metrics, payloads. */
export * from './types.js';
export { HOOK_TIMEOUTS, validateHookConfig, validateHookResponse, orderHooks, type HookConfigIssue, type HookConfigResult } from './config.js';
export { compileFilter, compileSafeRegex, FilterPatternError, MATCH_INPUT_LIMIT, type FilterPredicate } from './filter.js';
export { aggregate, stopsChain, type AggregateDecision, type AggregateOptions, type ScoreMode } from './aggregate.js';
export { hookSmtpReply, DEFAULT_SMTP_REPLIES, SMTP_TEXT_MAX, type HookSmtpReply } from './smtp-reply.js';
export * from './circuit-breaker.js';
export * from './breaker-store.js';
export * from './signing.js';
export * from './executors/index.js';
export * from './runtime-types.js';
export { HookStore, HookNotFoundError, READ_CACHE_MS } from './store.js';
export { HookManager, stripUngrantedWrites, resolveCommand } from './manager.js';
export { createHookMetrics, type HookMetrics, type PluginStats } from './metrics.js';
export { buildPayloadSource, filterSubjectOf, PAYLOAD_PARSE_MAX_BYTES, type PayloadInput } from './payload.js';
export * from './apply.js';
export * from './post-receive.js';
export { readPluginMetadata, MAX_PLUGIN_METADATA_BYTES } from './metadata-store.js';
