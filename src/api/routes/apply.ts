import { Type } from 'typebox';
import { oneOf } from '../../model/index.js';
import { APPLY_ACTIONS } from '../../resources/index.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';
import { ErrorBody, principalOf } from './shared.js';

const ApplyBody = Type.Object(
  {
    documents: Type.Array(Type.Unknown(), {
      minItems: 1,
      maxItems: 1000,
      description: 'manifests: {apiVersion?, kind, metadata, spec}',
    }),
  },
  { additionalProperties: false },
);

const ApplyResult = Type.Object({
  results: Type.Array(
    Type.Object({
      kind: Type.String(),
      name: Type.String(),
      provider: Type.Optional(Type.String()),
      project: Type.Optional(Type.String()),
      generation: Type.Integer(),
      action: oneOf(APPLY_ACTIONS),
    }),
  ),
  dryRun: Type.Boolean(),
});

export function applyRoutes(app: Api, ctx: ApiContext): void {
  app.post('/v1/apply', {
    schema: {
      tags: ['Apply'],
      summary: 'Create or update many objects atomically',
      querystring: Type.Object({ dryRun: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      body: ApplyBody,
      response: {
        200: ApplyResult,
        400: ErrorBody,
        403: ErrorBody,
        404: ErrorBody,
        409: ErrorBody,
        422: ErrorBody,
      },
    },
    handler: async (req) => {
      const dryRun = req.query.dryRun ?? false;
      const results = await ctx.resources.apply(principalOf(req), req.body.documents, dryRun);
      return {
        dryRun,
        results: results.map((r) => ({
          kind: r.object.kind,
          name: r.object.metadata.name,
          ...(r.object.metadata.provider ? { provider: r.object.metadata.provider } : {}),
          ...(r.object.metadata.project ? { project: r.object.metadata.project } : {}),
          generation: r.object.metadata.generation,
          action: r.action,
        })),
      };
    },
  });
}
