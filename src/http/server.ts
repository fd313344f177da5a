/**
 * The HTTP listener's base (REST API, web UI, health, metrics): request ids, the access log,
 * SPEC §11 error bodies, request metrics and security headers. Route groups are added by the
 * composition root with `app.register(...)` before `listen()`.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import helmet from '@fastify/helmet';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Health } from '../observability/health.js';
import { redactUrlQuery } from '../observability/redaction.js';
import { errorBody, toErrorReply } from './errors.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';

export interface HttpServerOptions {
  logger: Logger;
  metrics: Metrics;
  health: Health;
  /** Largest accepted request body (default 1 MiB); a route may set its own `bodyLimit`. */
  bodyLimitBytes?: number;
  /** Believe X-Forwarded-For/-Proto from these peers (only reverse proxies you run): true, or addresses/CIDRs. */
  trustProxy?: boolean | string[];
  /** Longest time to receive a whole request (default 300 s; slow-client protection). */
  requestTimeoutMs?: number;
}

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/** Route label used in metrics for requests that matched no route (keeps label cardinality bounded). */
export const UNMATCHED_ROUTE = '<unmatched>';

// A caller-supplied X-Request-Id is kept only if it is a short token of safe characters, so it
// can go into logs and response headers verbatim (no spaces, quotes, control characters).
const SANE_REQUEST_ID = /^[A-Za-z0-9._:+/=-]{1,64}$/;

export function requestIdFrom(header: unknown): string {
  return typeof header === 'string' && SANE_REQUEST_ID.test(header) ? header : randomUUID();
}

// Probes and scrapes arrive every few seconds; at info level they would drown the real traffic.
function isProbe(route: string | undefined): boolean {
  return route === '/metrics' || route === '/health' || (route?.startsWith('/health/') ?? false);
}

export function createHttpServer(opts: HttpServerOptions): FastifyInstance {
  const { metrics, health } = opts;
  const bodyLimit = opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const app = Fastify({
    // Our logger, not Fastify's own: every line follows the SPEC §2 format, and request.log
    // carries `request_id`. Fastify's per-request "incoming request"/"request completed" lines
    // are replaced by the single access-log line below.
    // (typed as Fastify's base logger interface, which pino implements)
    loggerInstance: opts.logger.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    requestIdHeader: false, // handled by genReqId, which validates it
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    bodyLimit,
    trustProxy: opts.trustProxy ?? false,
    requestTimeout: opts.requestTimeoutMs ?? 300_000,
    // Fastify's own 503-while-closing body is not the SPEC §11 shape; the hook below replies instead.
    return503OnClosing: false,
    // Route modules and their schemas load at start; on a busy 2-core machine that can exceed
    // Fastify's 10 s default, and failing the start for it helps nobody.
    pluginTimeout: 60_000,
  });

  // Graceful shutdown (SPEC §12): once close() has begun, requests still arriving on open
  // keep-alive connections get a 503 telling the client to go elsewhere, and the connection closes.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // RFC 6797 §7.2: HSTS is sent only over secure transport (SPEC §10 "HSTS (when TLS)");
    // `request.protocol` honours X-Forwarded-Proto when trustProxy is on.
    if (request.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000');
  });
  // preParsing, not onRequest: every onRequest hook (helmet's headers included) has run by then.
  app.addHook('preParsing', async (_request, reply) => {
    if (closing) {
      return reply
        .code(503)
        .header('connection', 'close')
        .send(errorBody('SERVICE_UNAVAILABLE', 'server is shutting down; retry on another node'));
    }
  });

  // X-Content-Type-Options, Referrer-Policy, X-Frame-Options and friends from helmet's defaults;
  // the CSP is the restrictive baseline (SPEC §10): the web UI's routes may widen it for themselves.
  void app.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        objectSrc: ["'none'"],
      },
    },
    strictTransportSecurity: false, // set per request above
    // Agrees with frame-ancestors 'none' for browsers that only know X-Frame-Options.
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
  });

  app.setErrorHandler((err, request, reply) => {
    const limit = request.routeOptions?.bodyLimit ?? bodyLimit;
    const out = toErrorReply(err, { bodyLimitBytes: limit });
    if (out.serverFault) {
      request.log.error({ err }, 'request failed');
    } else {
      request.log.debug({ code: out.body.error.code, reason: (err as Error).message }, 'request rejected');
    }
    // The request id lets an operator find the logged stack trace the client never sees.
    if (out.body.error.code === 'INTERNAL_ERROR') out.body.error.details = { request_id: request.id };
    // RFC 9110 §11.6.1 / RFC 6750 §3: a 401 names the scheme the client should use.
    if (out.status === 401) reply.header('www-authenticate', 'Bearer realm="mairust"');
    return reply.code(out.status).send(out.body);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0].slice(0, 200);
    return reply.code(404).send(errorBody('NOT_FOUND', `no route for ${request.method} ${path}`));
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions?.url ?? UNMATCHED_ROUTE;
    const status = reply.statusCode;
    const seconds = reply.elapsedTime / 1000;
    metrics.apiRequests.inc({ method: request.method, route, status: String(status) });
    metrics.apiDuration.observe({ method: request.method, route }, seconds);
    const line = {
      method: request.method,
      url: redactUrlQuery(request.url),
      status,
      duration_ms: Math.round(reply.elapsedTime * 100) / 100,
      remote_addr: request.ip,
    };
    if (isProbe(route)) request.log.debug(line, 'request completed');
    else request.log.info(line, 'request completed');
  });

  void app.register(healthRoutes, { health });
  void app.register(metricsRoutes, { metrics });
  return app;
}
