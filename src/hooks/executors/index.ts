/**
 * Plugin executors (SPEC §7 "Protocols"): one call to a plugin, by protocol. The hook manager
 * picks the executor from `[entry] protocol` and treats every ExecResult the same way.
 */
export * from './types.js';
export { callHttpPlugin, type HttpCall } from './http.js';
export { runScript, defaultLimitMethod, limitedCommand, scriptEnvironment, MAX_STDERR_BYTES, PRLIMIT_PATH, type ScriptCall, type LimitMethod } from './script.js';
