import { Type } from 'typebox';
import { isFederationAdmin, projectsOf } from '../../auth/index.js';
import { Name, Problem, type SwitchingStatus, switchingKind } from '../../model/index.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';
import { ErrorBody, principalOf } from './shared.js';

const Params = Type.Object({ project: Name, name: Name });
/** The request's status, its timeline recomputed. */
const Status = switchingKind.status;

export function switchingRoutes(app: Api, ctx: ApiContext): void {
  const sw = () => {
    if (!ctx.switching) throw new Problem('conflict', 'this control plane runs no switching controller');
    return ctx.switching;
  };

  /** A step of the timeline taken by a POST: its body's fields checked by the controller, which names them. */
  const step = (
    path: string,
    summary: string,
    fields: Record<string, string>,
    take: (p: ReturnType<typeof principalOf>, project: string, name: string, body: any) => Promise<unknown>,
  ) =>
    app.post(`/v1/projects/:project/switchings/:name/${path}`, {
      schema: {
        tags: ['Switching'],
        summary,
        params: Params,
        body: Type.Object(
          Object.fromEntries(
            Object.entries(fields).map(([k, d]) => [k, Type.Optional(Type.Unknown({ description: d }))]),
          ),
          { additionalProperties: false },
        ),
        response: {
          200: Status,
          400: ErrorBody,
          401: ErrorBody,
          404: ErrorBody,
          409: ErrorBody,
          422: ErrorBody,
        },
      },
      handler: async (req) => take(principalOf(req), req.params.project, req.params.name, req.body ?? {}),
    });

  step(
    'declaration',
    "The provider's declaration that a 30-day transition is technically unfeasible: within 14 working days of the request, with its justification, for at most seven months (Data Act Art. 25(4))",
    {
      transitionDays: 'days of transition, above 30, at most seven months',
      justification: 'why 30 days are technically unfeasible',
    },
    (p, project, name, body) => sw().actions.declare(p, project, name, body),
  );
  step(
    'extension',
    "The customer's extension of the transition: once (Data Act Art. 25(5))",
    { days: 'days added to the transition' },
    (p, project, name, body) => sw().actions.extend(p, project, name, body),
  );

  app.get('/v1/projects/:project/switchings/:name/erasure-certificate', {
    schema: {
      tags: ['Switching'],
      summary:
        "The erasure certificate of a completed switching: every artefact with its checksum and deletion time (canonical JSON), its signature with the federation's CA (ECDSA P-256 / SHA-256, DER, base64) and the CA certificate",
      params: Params,
      response: {
        200: Type.Object({
          certificate: Type.String(),
          signature: Type.String(),
          caCertificate: Type.String(),
        }),
        401: ErrorBody,
        404: ErrorBody,
        409: ErrorBody,
      },
    },
    handler: async (req) => {
      const p = principalOf(req);
      const { project, name } = req.params;
      const row = await ctx.store.get('switchings', project, name);
      if (!row || !(isFederationAdmin(p) || projectsOf(p).includes(project)))
        throw new Problem('not_found', `switching request '${project}/${name}' not found`);
      const cert = await sw().controller.certificate(row.uid);
      if (!cert)
        throw new Problem(
          'conflict',
          `no erasure certificate yet: the request is in ${(row.status as SwitchingStatus).phase}`,
        );
      return { certificate: cert.document, signature: cert.signature, caCertificate: await sw().caPem() };
    },
  });
}
