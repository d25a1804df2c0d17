// Unauthenticated operational endpoints: health, metrics and the API description.
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';

export function systemRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/healthz',
    { schema: { tags: ['System'], summary: 'Liveness and store reachability' } },
    async (_req, reply) => {
      try {
        await ctx.store.ping();
        return { status: 'ok', store: ctx.store.engine, version: ctx.version };
      } catch (err) {
        return reply
          .status(503)
          .send({ status: 'unavailable', store: ctx.store.engine, error: (err as Error).message });
      }
    },
  );
  app.get('/metrics', { schema: { tags: ['System'], summary: 'Prometheus metrics' } }, async (_req, reply) =>
    reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
