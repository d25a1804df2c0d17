import { Type } from 'typebox';
import { adminOfProviders, canRead, canReadParent, isFederationAdmin, projectsOf } from '../../auth/index.js';
import { KINDS, Name, nodeKind, Problem } from '../../model/index.js';
import type { Change } from '../../store/index.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';
import { ErrorBody, openEventStream, principalOf } from './shared.js';

const KIND_OF_TABLE = new Map(KINDS.map((d) => [d.plural as string, d]));
/** Changes are gathered this long and sent as one message, each object once. */
const BATCH_MS = 250;
const KEEPALIVE_MS = 15_000;

export function liveRoutes(app: Api, ctx: ApiContext): void {
  app.get('/v1/changes/watch', {
    schema: {
      tags: ['Events'],
      summary:
        'Stream which objects you can see were created, changed or deleted, as Server-Sent Events (`changes`: a batch of {kind, parent, name, part}); re-read them for their content',
      produces: ['text/event-stream'],
    },
    handler: async (req, reply) => {
      if (req.method === 'HEAD') return reply.header('content-type', 'text/event-stream').send();
      const p = principalOf(req);
      const admin = isFederationAdmin(p);
      const projects = new Set(projectsOf(p));
      const providers = new Set(adminOfProviders(p));
      const visible = (c: Change): string | undefined => {
        if (c.table === 'instances') {
          const record = 'write' in c ? c.write?.record : undefined;
          const seen =
            admin || projects.has(c.parent) || (record !== undefined && providers.has(record.provider));
          return seen ? 'Instance' : undefined;
        }
        if ('bookkeeping' in c && c.bookkeeping) return undefined;
        const def = KIND_OF_TABLE.get(c.table);
        return def && canRead(p, def, c.parent, c.name) ? def.kind : undefined;
      };
      const res = openEventStream(reply);
      const pending = new Map<string, { kind: string; parent: string; name: string; part: string }>();
      let timer: NodeJS.Timeout | undefined;
      const flush = () => {
        timer = undefined;
        if (res.destroyed || !pending.size) return;
        res.write(`event: changes\ndata: ${JSON.stringify([...pending.values()])}\n\n`);
        pending.clear();
        if (res.writableLength > ctx.sseBufferBytes) res.destroy();
      };
      const unsubscribe = ctx.store.changes.subscribe((changes) => {
        for (const c of changes) {
          const kind = visible(c);
          if (!kind) continue;
          const key = `${kind}/${c.parent}/${c.name}`;
          const before = pending.get(key);
          // A creation or deletion says more than a later spec or status write of the object.
          const ends = (part: string) => part === 'created' || part === 'deleted';
          if (!before || ends(c.part) || !ends(before.part))
            pending.set(key, { kind, parent: c.parent, name: c.name, part: c.part });
        }
        if (pending.size && !timer) timer = setTimeout(flush, BATCH_MS);
      });
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
      req.raw.on('close', () => {
        unsubscribe();
        clearInterval(keepalive);
        if (timer) clearTimeout(timer);
      });
      res.write(': connected\n\n');
    },
  });

  app.get('/v1/providers/:provider/node-metrics', {
    schema: {
      tags: ['Node'],
      summary:
        "Recent heartbeat metrics of a provider's nodes (kept in memory, the last minutes): per node, samples of [unix seconds, CPU %, memory %]",
      params: Type.Object({ provider: Name }),
      querystring: Type.Object(
        {
          names: Type.Optional(
            Type.String({
              minLength: 1,
              maxLength: 20_000,
              description: "comma-separated node names (at most 500); absent: every node of the provider's",
            }),
          ),
        },
        { additionalProperties: false },
      ),
      response: {
        200: Type.Object({
          items: Type.Array(
            Type.Object({
              node: Type.String(),
              samples: Type.Array(Type.Tuple([Type.Number(), Type.Number(), Type.Number()])),
            }),
          ),
        }),
        400: ErrorBody,
        401: ErrorBody,
        403: ErrorBody,
        422: ErrorBody,
      },
    },
    handler: async (req) => {
      const p = principalOf(req);
      const provider: string = req.params.provider;
      if (!canReadParent(p, nodeKind, provider))
        throw new Problem('forbidden', `user '${p.user}' may not read the nodes of provider '${provider}'`);
      const names: string[] =
        req.query.names === undefined
          ? (await ctx.store.list('nodes', { parents: [provider] })).map((n) => n.name)
          : String(req.query.names).split(',').filter(Boolean);
      if (req.query.names !== undefined && names.length > 500)
        throw Problem.invalid([
          { path: 'names', message: `at most 500 nodes at a time (got ${names.length})` },
        ]);
      const samples = await ctx.nodeMetrics?.(provider, names);
      return { items: names.map((node) => ({ node, samples: samples?.get(node) ?? [] })) };
    },
  });
}
