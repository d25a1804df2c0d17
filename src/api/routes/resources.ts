// The REST surface of every kind, generated from its KindDef:
//   global kinds:  /v1/{plural}            and /v1/{plural}/{name}
//   owned kinds:   /v1/{plural}            (list across the owners one may see)
//                  /v1/{owners}/{owner}/{plural} and …/{plural}/{name}
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { KINDS, type KindDef, manifestSchema, Name, objectSchema, Problem } from '../../model/index.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';
import { ErrorBody, PageQuery, principalOf } from './shared.js';

const ListResponse = (def: KindDef) =>
  Type.Object({ items: Type.Array(objectSchema(def)), nextCursor: Type.Optional(Type.String()) });

function listQuery(def: KindDef, withParent: boolean) {
  return Type.Object(
    {
      ...PageQuery,
      ...(withParent && def.parent ? { [def.parent]: Type.Optional(Name) } : {}),
      ...Object.fromEntries(def.filters.map((f) => [f, Type.Optional(Type.String())])),
    },
    { additionalProperties: false },
  );
}

const DryRunQuery = Type.Object(
  { dryRun: Type.Optional(Type.Boolean({ description: 'validate and authorize only; write nothing' })) },
  { additionalProperties: false },
);

/** Parses an If-Match header ("5", 5 or W/"5") into a generation. */
function ifMatch(req: FastifyRequest): number | undefined {
  const raw = req.headers['if-match'];
  if (raw === undefined) return undefined;
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(String(raw).trim());
  if (!m)
    throw Problem.invalid([
      { path: 'If-Match', message: 'must be the generation (ETag) of the object, e.g. "3"' },
    ]);
  return Number(m[1]);
}

function send(reply: FastifyReply, status: number, obj: { metadata: { generation: number } }) {
  return reply.status(status).header('etag', `"${obj.metadata.generation}"`).send(obj);
}

export function resourceRoutes(app: Api, ctx: ApiContext): void {
  for (const def of KINDS) {
    const tags = [def.kind];
    const ownerPlural = def.parent === 'provider' ? 'providers' : 'projects';
    const base = def.parent ? `/v1/${ownerPlural}/:${def.parent}/${def.plural}` : `/v1/${def.plural}`;
    const ownerParams = def.parent ? { [def.parent]: Name } : {};
    const Params = Type.Object({ ...ownerParams });
    const ItemParams = Type.Object({ ...ownerParams, name: Type.String({ minLength: 1, maxLength: 253 }) });
    const parentOf = (params: any): string => (def.parent ? params[def.parent] : '');
    const errors = {
      400: ErrorBody,
      401: ErrorBody,
      403: ErrorBody,
      404: ErrorBody,
      409: ErrorBody,
      422: ErrorBody,
    };

    // A kind's schemas are built from its definition at run time: their static types are
    // the shapes below (paging, the owner, the kind's filter columns).
    const list = async (
      req: FastifyRequest<{
        Querystring: { limit?: number; cursor?: string } & Record<string, string | undefined>;
        Params: Record<string, string>;
      }>,
      reply: FastifyReply,
    ) => {
      const { limit, cursor, ...rest } = req.query;
      const parent = def.parent ? (req.params[def.parent] ?? rest[def.parent]) : undefined;
      if (def.parent) delete rest[def.parent];
      const filters = Object.fromEntries(
        Object.entries(rest).filter((e): e is [string, string] => e[1] !== undefined),
      );
      // Sent as the store's text: the documents are not parsed and serialized again.
      reply.type('application/json; charset=utf-8');
      return ctx.resources.listJson(principalOf(req), def, { limit, cursor, parent, filters });
    };

    if (def.parent) {
      app.get(`/v1/${def.plural}`, {
        schema: {
          tags,
          summary: `List ${def.plural} across every ${def.parent} you can see`,
          querystring: listQuery(def, true),
          response: { 200: ListResponse(def), ...errors },
        },
        handler: list,
      });
    }
    app.get(base, {
      schema: {
        tags,
        summary: `List ${def.plural}`,
        params: Params,
        querystring: listQuery(def, false),
        response: { 200: ListResponse(def), ...errors },
      },
      handler: list,
    });

    app.get(`${base}/:name`, {
      schema: {
        tags,
        summary: `Read one ${def.kind}`,
        params: ItemParams,
        response: { 200: objectSchema(def), ...errors },
      },
      handler: async (req, reply) => {
        // Sent as the store's text, like a list.
        const { json, generation } = await ctx.resources.getJson(
          principalOf(req),
          def,
          parentOf(req.params),
          req.params.name,
        );
        return reply.type('application/json; charset=utf-8').header('etag', `"${generation}"`).send(json);
      },
    });

    if (def.creatable) {
      app.post(base, {
        schema: {
          tags,
          summary: `Create a ${def.kind}`,
          params: Params,
          querystring: DryRunQuery,
          body: manifestSchema(def),
          response: { 201: objectSchema(def), ...errors },
        },
        handler: async (req, reply) => {
          const parent = def.parent ? parentOf(req.params) : undefined;
          const res = await ctx.resources.create(principalOf(req), def, parent, req.body, req.query.dryRun);
          const path = `${base.replace(`:${def.parent}`, parent ?? '')}/${res.object.metadata.name}`;
          return send(reply.header('location', path), req.query.dryRun ? 200 : 201, res.object);
        },
      });
    }

    app.put(`${base}/:name`, {
      schema: {
        tags,
        summary: `Replace the spec and labels of a ${def.kind}`,
        description:
          'Send If-Match (or metadata.generation) to fail with 409 if someone changed it meanwhile.',
        params: ItemParams,
        querystring: DryRunQuery,
        body: manifestSchema(def),
        response: { 200: objectSchema(def), ...errors },
      },
      handler: async (req, reply) => {
        const target = { parent: def.parent ? parentOf(req.params) : undefined, name: req.params.name };
        const res = await ctx.resources.update(
          principalOf(req),
          def,
          target,
          req.body,
          ifMatch(req),
          req.query.dryRun,
        );
        return send(reply, 200, res.object);
      },
    });

    app.delete(`${base}/:name`, {
      schema: {
        tags,
        summary: `Delete a ${def.kind}`,
        params: ItemParams,
        response: { 200: objectSchema(def), ...errors },
      },
      handler: async (req, reply) =>
        send(
          reply,
          200,
          await ctx.resources.remove(
            principalOf(req),
            def,
            parentOf(req.params),
            req.params.name,
            ifMatch(req),
          ),
        ),
    });
  }
}
