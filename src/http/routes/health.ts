/**
 * Health endpoints (SPEC §12). They live outside /api/v1 and use plain bodies (no `{"data":…}`
 * envelope) because their consumers are load balancers and orchestrators, not API clients.
 *
 *   GET /health        200 or 503 with the readiness report (overall state, one call for humans)
 *   GET /health/live   200 while the process serves requests (restart me only if this fails)
 *   GET /health/ready  200 when every dependency check passes, else 503 naming the failing ones
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Health, ReadyReport } from '../../observability/health.js';

function sendReport(reply: FastifyReply, report: ReadyReport): FastifyReply {
  // Probes must see the current state, never a cached one.
  return reply.header('cache-control', 'no-store').code(report.status === 'ok' ? 200 : 503).send(report);
}

export async function healthRoutes(app: FastifyInstance, opts: { health: Health }): Promise<void> {
  const { health } = opts;
  app.get('/health', async (_req, reply) => sendReport(reply, await health.ready()));
  app.get('/health/live', async (_req, reply) => reply.header('cache-control', 'no-store').send(health.live()));
  app.get('/health/ready', async (_req, reply) => sendReport(reply, await health.ready()));
}
