import { type Static, Type } from 'typebox';
import { canReadParent, canWrite, type Principal } from '../../auth/index.js';
import { setNodeIntent } from '../../controllers/index.js';
import { Name, nodeKind, Problem } from '../../model/index.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';
import { ErrorBody, principalOf } from './shared.js';

const JoinTokenInfo = Type.Object({
  id: Type.String(),
  provider: Type.String(),
  site: Type.String(),
  description: Type.String(),
  createdBy: Type.String(),
  createdAt: Type.String(),
  expiresAt: Type.String(),
  maxUses: Type.Integer(),
  uses: Type.Integer(),
  replaces: Type.Optional(Type.String({ description: 'the node this token enrols anew' })),
});

export function nodeRoutes(app: Api, ctx: ApiContext): void {
  const tags = ['Node'];
  const errors = { 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody };
  const enrolment = () => {
    if (!ctx.enrolment) throw new Problem('node_unreachable', 'this control plane runs no agent gateway');
    return ctx.enrolment;
  };
  const SiteParams = Type.Object({ provider: Name, site: Name });

  app.post('/v1/providers/:provider/sites/:site/join-tokens', {
    schema: {
      tags,
      summary: 'Create a join token with which agents enrol nodes at this site (shown only now)',
      params: SiteParams,
      body: Type.Object(
        {
          description: Type.Optional(Type.String({ maxLength: 200 })),
          expiresInHours: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 24 * 365, default: 24 })),
          maxUses: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000, default: 1 })),
          replaces: Type.Optional({
            ...Name,
            description:
              'a node of this site to enrol anew under its name (a reinstalled machine): its credentials and instances go',
          }),
        },
        { additionalProperties: false },
      ),
      response: {
        201: Type.Object({
          ...JoinTokenInfo.properties,
          token: Type.String(),
          server: Type.String({ description: 'the agent gateway URL' }),
          command: Type.String(),
        }),
        ...errors,
      },
    },
    handler: async (req, reply) => {
      const t = await enrolment().createJoinToken(
        principalOf(req),
        req.params.provider,
        req.params.site,
        req.body ?? {},
      );
      const server = ctx.gatewayUrl ?? 'https://CONTROL-PLANE:7401';
      return reply
        .status(201)
        .send({ ...t, server, command: `continuum agent --server ${server} --token ${t.token}` });
    },
  });

  app.get('/v1/providers/:provider/sites/:site/join-tokens', {
    schema: {
      tags,
      summary: "List a site's join tokens (never their secrets)",
      params: SiteParams,
      response: { 200: Type.Object({ items: Type.Array(JoinTokenInfo) }), ...errors },
    },
    handler: async (req) => ({
      items: await enrolment().listJoinTokens(principalOf(req), req.params.provider, req.params.site),
    }),
  });

  app.delete('/v1/providers/:provider/sites/:site/join-tokens/:id', {
    schema: {
      tags,
      summary: 'Revoke a join token',
      params: Type.Object({ provider: Name, site: Name, id: Type.String() }),
      response: { 200: JoinTokenInfo, ...errors },
    },
    handler: async (req) =>
      enrolment().revokeJoinToken(principalOf(req), req.params.provider, req.params.site, req.params.id),
  });

  app.post('/v1/providers/:provider/nodes/:name/revoke', {
    schema: {
      tags,
      summary: "Revoke a node's credentials and disconnect its agent (it must enrol again)",
      params: Type.Object({ provider: Name, name: Name }),
      response: { 200: Type.Object({ revoked: Type.Integer() }), ...errors },
    },
    handler: async (req) => {
      const revoked = await enrolment().revokeNode(principalOf(req), req.params.provider, req.params.name);
      ctx.gateway?.disconnect(req.params.provider, req.params.name);
      return { revoked };
    },
  });

  const DrainBody = Type.Object(
    {
      parallel: Type.Optional(
        Type.Integer({
          minimum: 1,
          maximum: 1000,
          description: 'at most this many replicas of each node migrate live at a time',
        }),
      ),
    },
    { additionalProperties: false },
  );
  type DrainOptions = Static<typeof DrainBody>;
  // Intent goes into the node's spec; its status keeps only health, so a heartbeat blip
  // cannot end a drain.
  for (const [action, drain] of [
    ['drain', true],
    ['uncordon', false],
  ] as const) {
    app.post(`/v1/providers/:provider/nodes/:name/${action}`, {
      schema: {
        tags,
        summary:
          action === 'drain'
            ? 'Cordon a node and move its replicas elsewhere'
            : 'Make a drained or cordoned node schedulable again',
        params: Type.Object({ provider: Name, name: Name }),
        ...(action === 'drain' ? { body: Type.Optional(DrainBody) } : {}),
        response: {
          200: Type.Object({
            node: Type.String(),
            state: Type.String({ description: "the node's health" }),
            drain: Type.Boolean(),
            unschedulable: Type.Boolean(),
          }),
          ...errors,
        },
      },
      handler: async (req) => {
        const p = principalOf(req);
        const { provider, name } = req.params;
        if (!canReadParent(p, nodeKind, provider) || !canWrite(p, nodeKind, 'update', provider, name))
          throw new Problem(
            'forbidden',
            `user '${p.user}' may not ${action} nodes of provider '${provider}'`,
          );
        // Only a drain takes a body (the schema says so); its type is the schema's.
        const parallel = drain ? (req.body as DrainOptions | undefined)?.parallel : undefined;
        const row = await setNodeIntent(ctx.store, provider, name, action, p.user, {
          unschedulable: drain,
          drain,
          ...(parallel ? { drainParallel: parallel } : {}),
        });
        if (!row) throw new Problem('not_found', `Node '${provider}/${name}' not found`);
        return { node: `${provider}/${name}`, state: row.status.state, drain, unschedulable: drain };
      },
    });
  }

  // A site or a provider drained is each of its nodes drained (the intent in each node's
  // spec): nothing new is placed there and every replica moves away, live where it can.
  const Drained = Type.Object({
    drain: Type.Boolean(),
    nodes: Type.Array(Type.String(), { description: 'the nodes whose intent changed or was already so' }),
  });
  /** `body`: the drain's options (the routes take a body only for drains). */
  const drainAll = async (
    p: Principal,
    provider: string,
    body: DrainOptions | undefined,
    action: 'drain' | 'uncordon',
    site?: string,
  ) => {
    if (!canReadParent(p, nodeKind, provider) || !canWrite(p, nodeKind, 'update', provider, '*'))
      throw new Problem('forbidden', `user '${p.user}' may not ${action} nodes of provider '${provider}'`);
    const what = site ? `site '${provider}/${site}'` : `provider '${provider}'`;
    const owner = site
      ? await ctx.store.get('sites', provider, site)
      : await ctx.store.get('providers', '', provider);
    if (!owner) throw new Problem('not_found', `${what[0]!.toUpperCase()}${what.slice(1)} not found`);
    const drain = action === 'drain';
    const parallel = drain ? body?.parallel : undefined;
    const nodes = await ctx.store.list('nodes', {
      parents: [provider],
      ...(site ? { where: { site } } : {}),
    });
    for (const n of nodes)
      await setNodeIntent(ctx.store, provider, n.name, action, p.user, {
        unschedulable: drain,
        drain,
        ...(parallel ? { drainParallel: parallel } : {}),
      });
    return { drain, nodes: nodes.map((n) => `${provider}/${n.name}`) };
  };
  for (const action of ['drain', 'uncordon'] as const) {
    const summary = action === 'drain' ? 'Drain every node of' : 'Make schedulable again every node of';
    const body = action === 'drain' ? { body: Type.Optional(DrainBody) } : {};
    app.post(`/v1/providers/:provider/sites/:site/${action}`, {
      schema: {
        tags,
        summary: `${summary} a site`,
        params: SiteParams,
        ...body,
        response: { 200: Drained, ...errors },
      },
      // Only a drain takes a body (the schema says so); its type is the schema's.
      handler: (req) =>
        drainAll(principalOf(req), req.params.provider, req.body as DrainOptions, action, req.params.site),
    });
    app.post(`/v1/providers/:provider/${action}`, {
      schema: {
        tags,
        summary: `${summary} a provider`,
        params: Type.Object({ provider: Name }),
        ...body,
        response: { 200: Drained, ...errors },
      },
      handler: (req) => drainAll(principalOf(req), req.params.provider, req.body as DrainOptions, action),
    });
  }
}
