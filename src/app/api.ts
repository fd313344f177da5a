/**
 * Composition of the REST API: the API's stores built from the application context, and the API
 * plugin mounted on the HTTP server. Used by `mairust serve` (server.ts) and by the test harness,
 * so both run the same wiring.
 */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from './context.js';
import type { ApiDeps } from '../http/api/deps.js';
import { apiPlugin, API_PREFIX } from '../http/api/plugin.js';
import { SessionStore } from '../security/credentials/sessions.js';
import { BearerTokenStore } from '../security/credentials/bearer-tokens.js';
import { ApiKeyStore } from '../security/credentials/api-keys.js';
import { Lockout } from '../security/lockout.js';
import { createRateCounter } from '../http/api/rate-limit/index.js';
import { openSecretStore } from '../security/secrets/index.js';
import { WebhookPublisher, type EventPublisher } from '../webhooks/index.js';
import type { SecretStore } from '../security/secrets/types.js';
import { DkimKeyService } from '../emailauth/dkim-keys.js';
import { buildHookSystem, type HookSystem } from './hooks.js';
import type { InboundPipeline } from '../pipeline/inbound/contract.js';

export interface BuildApiOptions {
  /** `MAIRUST_EMERGENCY_TOKEN` (SPEC §10); default: the process environment. */
  emergencyToken?: string;
  now?: () => number;
  /** Shared with the mail pipeline when the server builds them first (see eventPublisher). */
  secrets?: SecretStore;
  events?: EventPublisher;
  /** The hook system the mail pipeline uses (default: the app's, see buildHookSystem). */
  hookSystem?: HookSystem;
  /** The inbound pipeline, for the send API (SPEC §3.2: the same path as submission). */
  pipeline?: InboundPipeline;
}

/** The event webhook publisher (shared by the API and the inbound pipeline). */
export function eventPublisher(app: AppContext): EventPublisher {
  return new WebhookPublisher({ db: app.db, queue: app.queue, config: () => app.config.webhooks, logger: app.logger.child({ component: 'webhooks' }) });
}

export async function buildApiDeps(app: AppContext, opts: BuildApiOptions = {}): Promise<ApiDeps> {
  const cfg = app.config.api;
  const now = opts.now ?? Date.now;
  const secrets = opts.secrets ?? (await openSecretStore({ config: app.config, db: app.db, logger: app.logger }));
  const emergency = opts.emergencyToken ?? process.env.MAIRUST_EMERGENCY_TOKEN;
  const events = opts.events ?? eventPublisher(app);
  const hookSystem = opts.hookSystem ?? buildHookSystem(app, { secrets, events, now: opts.now });
  return {
    app,
    sessions: new SessionStore(app.db, { ttlMs: cfg.session_ttl_hours * 3_600_000, now }),
    tokens: new BearerTokenStore(app.db, { accessTtlMs: cfg.access_token_ttl_seconds * 1000, refreshTtlMs: cfg.refresh_token_ttl_days * 86_400_000, now }),
    apiKeys: new ApiKeyStore(app.db, { now }),
    lockout: new Lockout(app.db, { now }),
    secrets,
    rateCounter: createRateCounter(app.config.api.rate_limit, app.db),
    events,
    dkim: new DkimKeyService({ db: app.db, secrets, now }),
    hookSystem,
    pipeline: opts.pipeline,
    emergencyToken: emergency && emergency.length >= 32 ? emergency : undefined,
    now,
  };
}

export async function mountApi(server: FastifyInstance, deps: ApiDeps): Promise<void> {
  await server.register(apiPlugin, { prefix: API_PREFIX, deps });
}
