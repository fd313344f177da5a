/**
 * GET /metrics: Prometheus text exposition (SPEC §12). Unauthenticated like most exporters;
 * restrict it at the network level (or bind the HTTP listener privately) where that matters.
 */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../observability/metrics.js';

export async function metricsRoutes(app: FastifyInstance, opts: { metrics: Metrics }): Promise<void> {
  const { metrics } = opts;
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.header('cache-control', 'no-store').type(contentType).send(body);
  });
}
