import { isFederationAdmin } from '../../auth/index.js';
import { Problem } from '../../model/index.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';

export function systemRoutes(app: Api, ctx: ApiContext): void {
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
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['System'],
        summary:
          "Prometheus metrics (a federation-admin's or metrics-reader's token, unless --metrics-public)",
      },
    },
    async (req, reply) => {
      const p = req.principal;
      if (
        !ctx.metricsPublic &&
        p &&
        !isFederationAdmin(p) &&
        !p.bindings.some((b) => b.role === 'metrics-reader')
      )
        throw new Problem(
          'forbidden',
          `user '${p.user}' may not read metrics (federation-admin or metrics-reader)`,
        );
      return reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
    },
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
