import { Type } from 'typebox';
import { eventScope, type Principal } from '../../auth/index.js';
import { Name } from '../../model/index.js';
import type { AuditEvent, EventQuery } from '../../store/index.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';
import { ErrorBody, openEventStream, principalOf } from './shared.js';

const EventObject = Type.Object({
  seq: Type.Integer({ description: "handed out when the event was written (an instance's revision)" }),
  position: Type.Integer({
    description:
      'the place of the event in commit order: resume after it (`after`, Last-Event-ID); equal to seq on SQLite',
  }),
  time: Type.String(),
  actor: Type.String(),
  action: Type.String(),
  kind: Type.String(),
  parent: Type.String(),
  name: Type.String(),
  provider: Type.Union([Type.String(), Type.Null()]),
  project: Type.Union([Type.String(), Type.Null()]),
  before: Type.Unknown(),
  after: Type.Unknown(),
});

const Filters = {
  after: Type.Optional(Type.Integer({ minimum: 0, description: 'only events with a larger position' })),
  kind: Type.Optional(Type.String()),
  name: Type.Optional(Type.String()),
  provider: Type.Optional(Name),
  project: Type.Optional(Name),
};
type FilterQuery = {
  after?: number;
  kind?: string;
  name?: string;
  provider?: string;
  project?: string;
  limit?: number;
};

/** Combines the principal's scope with the requested provider/project filter. */
function queryFor(p: Principal, q: FilterQuery): EventQuery {
  const own = eventScope(p);
  let scope = own;
  if (q.provider || q.project) {
    const providers = q.provider && (!own || own.providers.includes(q.provider)) ? [q.provider] : [];
    const projects = q.project && (!own || own.projects.includes(q.project)) ? [q.project] : [];
    scope = { providers, projects };
  }
  return { after: q.after, kind: q.kind, name: q.name, limit: q.limit, ...(scope ? { scope } : {}) };
}

function matches(e: AuditEvent, q: EventQuery): boolean {
  if (q.after !== undefined && e.position <= q.after) return false;
  if (q.kind && e.kind !== q.kind) return false;
  if (q.name && e.name !== q.name) return false;
  if (q.scope) {
    const inProvider = e.provider !== null && q.scope.providers.includes(e.provider);
    const inProject = e.project !== null && q.scope.projects.includes(e.project);
    if (!inProvider && !inProject) return false;
  }
  return true;
}

const KEEPALIVE_MS = 15_000;

export function eventRoutes(app: Api, ctx: ApiContext): void {
  app.get('/v1/events', {
    schema: {
      tags: ['Events'],
      summary: 'The audit log: who changed what, when, with before/after',
      querystring: Type.Object(
        {
          ...Filters,
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
          newest: Type.Optional(
            Type.Boolean({
              description: 'the latest `limit` events (oldest first) instead of the first ones',
            }),
          ),
        },
        { additionalProperties: false },
      ),
      response: {
        200: Type.Object({ items: Type.Array(EventObject), nextAfter: Type.Optional(Type.Integer()) }),
        401: ErrorBody,
      },
    },
    handler: async (req) => {
      const q = queryFor(principalOf(req), { ...req.query, limit: req.query.limit ?? 100 });
      const items = await ctx.store.listEvents({ ...q, newest: req.query.newest === true });
      const last = items[items.length - 1];
      return items.length === q.limit && last && !req.query.newest
        ? { items, nextAfter: last.position }
        : { items };
    },
  });

  app.get('/v1/events/watch', {
    schema: {
      tags: ['Events'],
      summary: 'Stream events as Server-Sent Events (resume with Last-Event-ID or ?after=)',
      querystring: Type.Object(Filters, { additionalProperties: false }),
      produces: ['text/event-stream'],
    },
    handler: async (req, reply) => {
      // HEAD (Fastify answers it with this handler): the headers, at once, and no stream.
      if (req.method === 'HEAD') return reply.header('content-type', 'text/event-stream').send();
      const lastId = Number(req.headers['last-event-id']);
      const after = Number.isInteger(lastId) && lastId >= 0 ? lastId : req.query.after;
      const q = queryFor(principalOf(req), { ...req.query, after });
      const res = openEventStream(reply);
      let replaying = true;
      const buffered: AuditEvent[] = [];
      let sent = after ?? 0;
      const write = (e: AuditEvent) => {
        if (e.position <= sent || !matches(e, q) || res.destroyed) return;
        sent = e.position;
        res.write(`id: ${e.position}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`);
        // A client that does not read would make the server hold every event for it: past
        // the bound it is cut off (it resumes from its Last-Event-ID when it reconnects).
        if (res.writableLength > ctx.sseBufferBytes) res.destroy();
      };
      // Subscribe before reading the log so that nothing committed in between is lost.
      const onEvent = (e: AuditEvent) => (replaying ? buffered.push(e) : write(e));
      ctx.store.committed.on('event', onEvent);
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
      req.raw.on('close', () => {
        clearInterval(keepalive);
        ctx.store.committed.off('event', onEvent);
      });
      if (after === undefined) sent = await ctx.store.lastEventPosition();
      res.write(': connected\n\n');
      // Replay what was missed, page by page, then drain what arrived meanwhile.
      for (;;) {
        const page = await ctx.store.listEvents({ ...q, after: sent, limit: 500 });
        for (const e of page) write(e);
        if (page.length < 500) break;
      }
      replaying = false;
      for (const e of buffered.splice(0)) write(e);
    },
  });
}
