/**
 * The REST API (SPEC §11), mounted at `/api/v1` by the composition root:
 *
 *  - request validation that rejects unknown fields (validation.ts);
 *  - cookies, CORS from the configured allowlist (never `*` with credentials);
 *  - the OpenAPI 3.1 document generated from the route schemas (`/api/v1/openapi.json`) and the
 *    interactive docs (`/api/v1/docs`);
 *  - one `preValidation` hook that authenticates (auth-hook.ts), rate-limits (rate-limit/) and
 *    authorizes (policy.ts) every route from what the route declares in `config`:
 *    `{ action: <policy action> }` or `{ public: true }` — a route declaring neither is refused at
 *    start-up, so no route can forget its authorization;
 *  - Deprecation/Sunset/Link headers for routes declaring `config.deprecated`.
 */
import type { FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { ApiError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import type { Principal } from './principal.js';
import { ACTIONS, authorize, isAction, type Action } from './policy.js';
import { resolvePrincipal } from './auth-hook.js';
import { setDeprecationHeaders, type DeprecationInfo } from './deprecation.js';
import { validatorCompiler } from './validation.js';
import { ErrorSchema } from './schemas.js';
import { applyRateLimits, rateRulesFor } from './rate-limit/index.js';
import { loadRouteModules } from './routes/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the API's authentication hook; null on public routes without credentials. */
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** The policy action this route performs (policy.ts). */
    action?: Action;
    /** No authentication (login, refresh, emergency access, the OpenAPI document). */
    public?: boolean;
    /** Public routes that authenticate and rate-limit by their own credential (the `plt_` plugin API). */
    ownRateLimit?: boolean;
    deprecated?: DeprecationInfo;
  }
}

export const API_PREFIX = '/api/v1';
const DOCS_PREFIX = '/docs';

export interface ApiPluginOptions {
  deps: ApiDeps;
}

export async function apiPlugin(app: FastifyInstance, opts: ApiPluginOptions): Promise<void> {
  const { deps } = opts;
  const config = () => deps.app.config;

  app.setValidatorCompiler(validatorCompiler);
  app.decorateRequest('principal', null);
  await app.register(cookie);
  await app.register(cors, {
    // Read per request so a reloaded allowlist applies at once.
    origin: (origin, cb) => {
      if (!origin) return cb(null, false);
      cb(null, config().api.cors_origins.includes(origin) ? origin : false);
    },
    credentials: true,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'X-CSRF-Token', 'X-API-Key', 'X-Request-Id'],
    exposedHeaders: ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'Retry-After', 'X-Request-Id', 'Deprecation', 'Sunset', 'Link'],
    maxAge: 600,
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'MaiRust REST API',
        version: '1.0.0',
        description:
          'Multi-tenant mail platform API. Every response is `{"data": …}` (lists add `pagination`), every error `{"error": {"code","message","details"}}`. ' +
          'Authenticate with a bearer access token from `POST /api/v1/auth/login`, an API key (`Authorization: Bearer mk_live_…`), or the web session cookie plus the `X-CSRF-Token` header on state-changing requests.',
      },
      servers: [{ url: '/' }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'Access token (`mra_…`, 1 h) or API key (`mk_live_…`).' },
          session: { type: 'apiKey', in: 'cookie', name: 'mairust_session', description: 'Web session; state-changing requests also need the X-CSRF-Token header.' },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _frag, i) => String(json.$id ?? `def-${i}`) },
  });
  app.addSchema(ErrorSchema);

  // Every API route declares its authorization, checked once here rather than trusted.
  app.addHook('onRoute', (route) => {
    const cfg = (route.config ?? {}) as { action?: unknown; public?: boolean; deprecated?: DeprecationInfo };
    const isDocs = route.url.startsWith(`${API_PREFIX}${DOCS_PREFIX}`);
    if (isDocs) {
      route.config = { ...(route.config ?? {}), public: true } as typeof route.config;
      return;
    }
    if (route.method === 'HEAD') return; // Fastify's automatic HEAD twin of a GET route
    if (cfg.public !== true && !isAction(cfg.action)) {
      throw new Error(`API route ${String(route.method)} ${route.url} declares neither config.action nor config.public`);
    }
    if (cfg.deprecated) route.schema = { ...(route.schema ?? {}), deprecated: true } as typeof route.schema;
    if (cfg.public !== true && route.schema) {
      // OpenAPI: which role/scope the route needs, for readers of the document.
      const rule = ACTIONS[cfg.action as Action];
      const note = `Requires role ${rule.roles.join(' | ')}; API keys need scope \`${rule.scope}\`.`;
      const desc = (route.schema as { description?: string }).description;
      route.schema = { ...route.schema, description: desc ? `${desc}\n\n${note}` : note } as typeof route.schema;
    }
  });

  // Registered after the onRoute check so the docs' own routes are marked public by it.
  if (config().api.docs_enabled) {
    await app.register(swaggerUi, { routePrefix: DOCS_PREFIX, indexPrefix: API_PREFIX, staticCSP: true, uiConfig: { deepLinking: false } });
  }

  app.addHook('preValidation', async (request, reply) => {
    const cfg = request.routeOptions.config;
    const limits = config().api.rate_limit;
    if (cfg.deprecated) setDeprecationHeaders(reply, cfg.deprecated);
    if (cfg.public) {
      // Credentials are optional on public routes (logout with a cookie, for instance) but a bad one still fails.
      request.principal = await resolvePrincipal(request, deps).catch(() => null);
      // The plugin API counts per token (SPEC §11 "per-token for plugins"), not per client address:
      // one plugin host serves many messages.
      if (cfg.ownRateLimit) return;
      const ok = await applyRateLimits(
        deps.rateCounter,
        rateRulesFor({ principal: request.principal ? { userId: request.principal.user.id } : null, ip: request.ip, admin: false }, limits),
        reply,
        request.log,
      );
      if (!ok) return reply;
      return;
    }
    const principal = await resolvePrincipal(request, deps);
    if (!principal) throw new ApiError('UNAUTHORIZED', 'authentication required');
    request.principal = principal;
    const action = cfg.action as Action;
    const rule = ACTIONS[action];
    const ok = await applyRateLimits(
      deps.rateCounter,
      rateRulesFor(
        {
          principal: { userId: principal.user.id, apiKeyId: principal.via === 'api_key' ? principal.credentialId : undefined, plugin: principal.via === 'api_key' && principal.scopes.has('plugin') },
          ip: request.ip,
          admin: rule.admin,
        },
        limits,
      ),
      reply,
      request.log,
    );
    if (!ok) return reply;
    authorize(principal, action);
  });

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());

  for (const mod of await loadRouteModules()) {
    await app.register(async (scoped) => mod.register(scoped, deps));
  }
}
