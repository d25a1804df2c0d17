import { Type } from 'typebox';
import { listReplicas } from '../../store/index.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';
import { ErrorBody } from './shared.js';

const Replica = Type.Object({
  name: Type.String(),
  address: Type.String({ description: 'where clients and agents reach its API' }),
  gateway: Type.String({ description: "where agents reach its gateway ('' when it runs none)" }),
  version: Type.String(),
  leader: Type.Boolean({ description: 'it holds the unexpired lease and runs the controllers' }),
  epoch: Type.Union([Type.Integer(), Type.Null()], {
    description: "the leader's epoch (fencing: a controller write commits only under it); null on the others",
  }),
  leaseExpiresAt: Type.Union([Type.String(), Type.Null()], {
    description: "when the leader's lease runs out unless renewed; null on the others",
  }),
  startedAt: Type.String(),
  lastSeen: Type.String({ description: 'its last heartbeat in the database' }),
  answering: Type.Boolean({ description: 'this replica answered the request' }),
});

export function replicaRoutes(app: Api, ctx: ApiContext): void {
  app.get('/v1/replicas', {
    schema: {
      tags: ['System'],
      summary:
        'The control-plane replicas on this database: their addresses, which one leads (its epoch and lease expiry)',
      response: {
        200: Type.Object({
          items: Type.Array(Replica),
          leader: Type.Union([
            Type.Object({ name: Type.String(), epoch: Type.Integer(), leaseExpiresAt: Type.String() }),
            Type.Null(),
          ]),
        }),
        401: ErrorBody,
      },
    },
    handler: async () => {
      const { replicas, lease, now } = await listReplicas(ctx.store);
      const live = lease && lease.expiresMs > now ? lease : undefined;
      const iso = (ms: number) => new Date(ms).toISOString();
      return {
        items: replicas.map((r) => {
          const leads = live?.replica === r.name;
          return {
            name: r.name,
            address: r.address,
            gateway: r.gateway,
            version: r.version,
            leader: leads,
            epoch: leads ? live!.epoch : null,
            leaseExpiresAt: leads ? iso(live!.expiresMs) : null,
            startedAt: iso(r.startedMs),
            lastSeen: iso(r.seenMs),
            answering: r.name === ctx.store.replica,
          };
        }),
        leader: live ? { name: live.replica, epoch: live.epoch, leaseExpiresAt: iso(live.expiresMs) } : null,
      };
    },
  });
}
