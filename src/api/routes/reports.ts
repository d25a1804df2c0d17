import { Type } from 'typebox';
import { eventScope } from '../../auth/index.js';
import { Name, Problem } from '../../model/index.js';
import { residencyCsv, residencyReport } from '../../resources/residency.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';
import { ErrorBody, principalOf } from './shared.js';

const Stay = Type.Object({
  instance: Type.String(),
  workload: Type.String(),
  provider: Type.String(),
  node: Type.String(),
  site: Type.String(),
  country: Type.String(),
  from: Type.String({ description: 'when the instance was bound to the node' }),
  to: Type.Optional(Type.String({ description: 'when it left; absent: it is there now' })),
  how: Type.Union([Type.Literal('placed'), Type.Literal('re-placed'), Type.Literal('migrated')], {
    description: 'placed, re-placed (its node failed, a rule changed, a drain) or migrated',
  }),
});

export function reportRoutes(app: Api, ctx: ApiContext): void {
  app.get('/v1/projects/:project/residency', {
    schema: {
      tags: ['Reports'],
      summary:
        "Residency report: every country, provider, site and node the project's VMs (and their disks) have been on, with time ranges",
      params: Type.Object({ project: Name }),
      querystring: Type.Object(
        {
          workload: Type.Optional(Name),
          instance: Type.Optional(Type.String({ maxLength: 128 })),
          format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')], { default: 'json' })),
        },
        { additionalProperties: false },
      ),
      response: {
        200: Type.Object({
          project: Type.String(),
          generatedAt: Type.String(),
          countries: Type.Array(Type.String()),
          stays: Type.Array(Stay),
        }),
        400: ErrorBody,
        401: ErrorBody,
        404: ErrorBody,
      },
    },
    handler: async (req, reply) => {
      const { project } = req.params as { project: string };
      const q = req.query as { workload?: string; instance?: string; format?: 'json' | 'csv' };
      const scope = eventScope(principalOf(req));
      // A project the user does not see does not exist for them.
      if ((scope && !scope.projects.includes(project)) || !(await ctx.store.get('projects', '', project)))
        throw new Problem('not_found', `Project '${project}' not found`);
      if (q.workload && q.instance)
        throw new Problem('invalid_request', 'give workload or instance, not both');
      const stays = await residencyReport(ctx.store, project, q);
      if (q.format === 'csv')
        return reply
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="residency-${project}.csv"`)
          .serializer((s: string) => s)
          .send(residencyCsv(stays));
      return {
        project,
        generatedAt: new Date().toISOString(),
        countries: [...new Set(stays.map((s) => s.country))].sort(),
        stays,
      };
    },
  });
}
