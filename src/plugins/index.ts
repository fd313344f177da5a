/** Plugin cores (SPEC §7): manifest, permissions, packages. */
export * from './manifest.js';
export * from './permissions.js';
export * from './package.js';
export * from './types.js';
export * from './egress-allowlist.js';
export { PluginRegistry, RUNNABLE_CACHE_MS, MAX_TENANT_CONFIG_BYTES, type PluginRegistryDeps } from './registry.js';
export { startHealthChecks, HEALTH_TIMEOUT_MS, type HealthChecker, type HealthCheckOptions } from './health.js';
