/**
 * Composition of the hook system (SPEC §6, §7): the plugin registry, the hook store, the circuit
 * breaker over the shared `hook_breakers` table, the hook metrics and the hook manager, built once
 * per application so that the REST API, the CLI and the mail pipeline use the same instances — one
 * set of breaker states, one metrics registration (prom-client refuses a second registration of a
 * name), one read cache per process.
 */
import { resolve } from 'node:path';
import type { AppContext } from './context.js';
import type { SecretStore } from '../security/secrets/types.js';
import type { EventPublisher } from '../webhooks/types.js';
import { MAIRUST_VERSION } from '../core/version.js';
import { PluginRegistry } from '../plugins/registry.js';
import { PluginFiles } from '../plugins/distribution.js';
import { HookStore } from '../hooks/store.js';
import { HookManager } from '../hooks/manager.js';
import { createHookMetrics, type HookMetrics } from '../hooks/metrics.js';
import { CircuitBreaker } from '../hooks/circuit-breaker.js';
import { DatabaseBreakerStore } from '../hooks/breaker-store.js';
import { writeAudit } from '../security/audit.js';
import type { Config } from '../config/schema.js';

/** The API path plugins call back on (SPEC §7 "Plugin tokens"), below the listener's base URL. */
export const CALLBACK_PATH = '/api/v1/internal/plugins/callback/';

export interface HookSystem {
  plugins: PluginRegistry;
  hooks: HookStore;
  runner: HookManager;
  breaker: CircuitBreaker;
  metrics: HookMetrics;
  /** Event webhooks (`plugin.error`), when the caller has a publisher. */
  events?: EventPublisher;
  /** The `callback_url` sent in payloads of stored messages. */
  callbackUrl(messageId: string): string;
}

export interface BuildHookSystemOptions {
  secrets: SecretStore;
  events?: EventPublisher;
  now?: () => number;
}

const systems = new WeakMap<AppContext, HookSystem>();

/**
 * Base URL plugins reach the API under: `api.public_url` when set, else the HTTP listener's
 * address; a wildcard bind address (0.0.0.0, ::) names no host a plugin could call, so
 * the node's `server.hostname` stands in for it. IPv6 literals are bracketed (RFC 3986 §3.2.2).
 */
export function apiBaseUrl(config: Pick<Config, 'listeners' | 'server' | 'api'>): string {
  // Behind a reverse proxy or a load balancer, the admin names the URL plugins must use.
  if (config.api.public_url) return config.api.public_url;
  const { host, port } = config.listeners.http;
  const wildcard = host === '0.0.0.0' || host === '::' || host === '[::]' || host === '*';
  let name = wildcard ? config.server.hostname : host;
  if (name.includes(':') && !name.startsWith('[')) name = `[${name}]`;
  return `http://${name}:${port}`;
}

/** The hook system of `app`, built on first use (later calls return the same instance and ignore `opts`). */
export function buildHookSystem(app: AppContext, opts: BuildHookSystemOptions): HookSystem {
  const existing = systems.get(app);
  if (existing) return existing;
  const logger = app.logger.child({ component: 'hooks' });
  const pluginsDir = app.config.plugins.dir || resolve(app.config.server.data_dir, 'plugins');
  const plugins = new PluginRegistry({
    db: app.db,
    secrets: opts.secrets,
    // Read per call: trusted keys, the egress allowlist and the token TTL are reloadable.
    config: () => app.config.plugins,
    pluginsDir,
    mairustVersion: MAIRUST_VERSION,
    now: opts.now,
    logger: app.logger.child({ component: 'plugins' }),
    // Plugin trees also go to the blob store, so every node of a cluster can run script plugins.
    files: new PluginFiles({ blobs: app.blobs, pluginsDir, mairustVersion: MAIRUST_VERSION, logger: app.logger.child({ component: 'plugins' }) }),
  });
  const hooks = new HookStore({
    db: app.db,
    config: () => app.config,
    pluginExists: async (id) => (await plugins.get(id)) !== null,
    logger,
    now: opts.now,
  });
  const breaker = new CircuitBreaker(new DatabaseBreakerStore(app.db));
  const metrics = createHookMetrics(app.metrics.registry);
  const callbackUrl = (messageId: string) => `${apiBaseUrl(app.config)}${CALLBACK_PATH}${encodeURIComponent(messageId)}`;
  const runner = new HookManager({
    hooks,
    plugins,
    breaker,
    resolver: app.resolver,
    metrics,
    scoreMode: () => app.config.hooks.score_mode,
    callbackUrl,
    now: opts.now,
    logger,
    audit: (entry) => writeAudit(app.db, entry),
    egressAllowlist: () => app.config.plugins.egress_allowlist,
  });
  const system: HookSystem = { plugins, hooks, runner, breaker, metrics, events: opts.events, callbackUrl };
  systems.set(app, system);
  return system;
}
