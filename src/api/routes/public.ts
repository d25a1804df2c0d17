import { Type } from 'typebox';
import {
  Name,
  Problem,
  type ProviderSpec,
  type SiteSpec,
  validCertifications,
  validGaiaX,
} from '../../model/index.js';
import { EXPORT_FORMATS } from '../../resources/export.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';
import { ErrorBody } from './shared.js';

export function publicRoutes(app: Api, ctx: ApiContext): void {
  app.get('/public/export-formats', {
    schema: {
      tags: ['Published'],
      summary:
        'The register of export formats and standards (EU Data Act, Art. 26): what an export of a project holds, and in which open formats; no token needed',
      security: [],
      response: {
        200: Type.Object({
          archive: Type.String(),
          entries: Type.Array(
            Type.Object({
              paths: Type.Array(Type.String()),
              what: Type.String(),
              format: Type.String(),
              standards: Type.Array(Type.String()),
            }),
          ),
          charges: Type.String(),
        }),
      },
    },
    handler: async () => ({
      archive:
        'one tar archive with a folder continuum-export-PROJECT/ (continuum export project P -o FILE, or GET /v1/projects/P/exports/ID/bundle)',
      entries: EXPORT_FORMATS,
      charges:
        'none: exports and switching are never charged; the bytes of every download are recorded in the audit trail',
    }),
  });

  app.get('/public/providers/:provider/data-act-statement', {
    schema: {
      tags: ['Published'],
      summary:
        "A provider's statement under the EU Data Act (Art. 28): the jurisdiction of its infrastructure and its measures against foreign governmental access; no token needed",
      security: [],
      params: Type.Object({ provider: Name }),
      response: {
        200: Type.Object({
          provider: Type.String(),
          displayName: Type.Optional(Type.String()),
          generatedAt: Type.String(),
          fromRecord: Type.Boolean({ description: 'false: no sovereignty record; from the spec alone' }),
          legalSeat: Type.String(),
          jurisdiction: Type.String(),
          ultimateParent: Type.Optional(Type.Object({ name: Type.String(), country: Type.String() })),
          controlledFromOutsideEu: Type.Boolean(),
          infrastructure: Type.Object({
            countries: Type.Array(Type.String()),
            sites: Type.Array(Type.Object({ name: Type.String(), country: Type.String() })),
          }),
          subcontractors: Type.Array(
            Type.Object({ name: Type.String(), country: Type.String(), access: Type.Array(Type.String()) }),
          ),
          foreignAccessMeasures: Type.String(),
          certifications: Type.Array(Type.String()),
          gaiaX: Type.Integer(),
        }),
        404: ErrorBody,
      },
    },
    handler: async (req) => {
      const name = req.params.provider as string;
      const row = await ctx.store.get('providers', '', name);
      if (!row) throw new Problem('not_found', `Provider '${name}' not found`);
      const spec = row.spec as ProviderSpec;
      // Without a record, what the provider's spec says; `fromRecord` tells which.
      const r = spec.sovereignty;
      const sites = (await ctx.store.list('sites', { parents: [name] })).map((s) => ({
        name: s.name,
        country: (s.spec as SiteSpec).country,
      }));
      const now = Date.now();
      return {
        provider: name,
        ...(spec.displayName ? { displayName: spec.displayName } : {}),
        generatedAt: new Date(now).toISOString(),
        fromRecord: !!r,
        legalSeat: r?.legalSeat ?? spec.headquarters,
        jurisdiction: spec.jurisdiction,
        ...(r?.ultimateParent ? { ultimateParent: r.ultimateParent } : {}),
        controlledFromOutsideEu: r ? r.nonEuControl : !spec.euControlled,
        infrastructure: { countries: [...new Set(sites.map((s) => s.country))].sort(), sites },
        subcontractors: r?.subcontractors ?? [],
        foreignAccessMeasures: r?.foreignAccessMeasures ?? 'none stated',
        certifications: validCertifications(spec, now),
        gaiaX: validGaiaX(r, now),
      };
    },
  });
}
