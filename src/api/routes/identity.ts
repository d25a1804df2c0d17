import { Type } from 'typebox';
import { Name, Problem, RoleBindingSchema } from '../../model/index.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';
import { ErrorBody, principalOf } from './shared.js';

const TokenInfo = Type.Object({
  id: Type.String(),
  user: Type.String(),
  description: Type.String(),
  createdAt: Type.String(),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
  lastUsedAt: Type.Union([Type.String(), Type.Null()]),
});
const errors = { 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 422: ErrorBody };

export function identityRoutes(app: Api, ctx: ApiContext): void {
  app.get('/v1/whoami', {
    schema: {
      tags: ['Identity'],
      summary: 'The user behind the token, with its role bindings',
      response: {
        200: Type.Object({
          user: Type.String(),
          roles: Type.Array(RoleBindingSchema),
          tokenId: Type.String(),
          federationAdmin: Type.Boolean(),
        }),
        ...errors,
      },
    },
    handler: async (req) => ctx.identity.whoami(principalOf(req)),
  });

  app.get('/v1/kubernetes', {
    schema: {
      tags: ['Identity'],
      summary:
        'Where the Kubernetes API facade listens and the CA of its certificate (for a kubeconfig: `continuum kubeconfig`)',
      response: {
        200: Type.Object({
          server: Type.String({ description: 'https://HOST:PORT of the facade' }),
          certificateAuthority: Type.String({
            description: 'PEM of the federation CA that signed its certificate',
          }),
        }),
        ...errors,
      },
    },
    handler: async (req) => {
      principalOf(req);
      if (!ctx.kubernetes)
        throw new Problem(
          'not_found',
          'this control plane serves no Kubernetes API (start it with --kubernetes-listen HOST:PORT)',
        );
      return { server: ctx.kubernetes.url, certificateAuthority: ctx.kubernetes.caPem };
    },
  });

  app.post('/v1/users/:name/tokens', {
    schema: {
      tags: ['Identity'],
      summary: 'Issue an API token for a user (the secret is returned only now)',
      params: Type.Object({ name: Name }),
      body: Type.Object(
        {
          description: Type.Optional(Type.String({ maxLength: 200 })),
          expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
        },
        { additionalProperties: false },
      ),
      response: { 201: Type.Object({ ...TokenInfo.properties, token: Type.String() }), ...errors },
    },
    handler: async (req, reply) =>
      reply
        .status(201)
        .send(await ctx.identity.createToken(principalOf(req), req.params.name, req.body ?? {})),
  });

  app.get('/v1/users/:name/tokens', {
    schema: {
      tags: ['Identity'],
      summary: "List a user's tokens (never their secrets)",
      params: Type.Object({ name: Name }),
      response: { 200: Type.Object({ items: Type.Array(TokenInfo) }), ...errors },
    },
    handler: async (req) => ({
      items: await ctx.identity.listTokens(principalOf(req), req.params.name),
    }),
  });

  app.delete('/v1/tokens/:id', {
    schema: {
      tags: ['Identity'],
      summary: 'Revoke a token',
      params: Type.Object({ id: Type.String() }),
      response: { 200: TokenInfo, ...errors },
    },
    handler: async (req) => ctx.identity.revokeToken(principalOf(req), req.params.id),
  });
}
