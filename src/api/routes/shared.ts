import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Principal } from '../../auth/index.js';
import { Problem } from '../../model/index.js';

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
    document: Type.Optional(Type.Integer({ description: 'apply: 0-based index of the document at fault' })),
  }),
});

/** The paging parameters every list takes. */
export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  cursor: Type.Optional(Type.String({ description: 'nextCursor of the previous page' })),
};

export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new Problem('unauthenticated', 'this endpoint needs a bearer token');
  return req.principal;
}

/** Takes the response over for a Server-Sent Events stream: its headers are sent now. */
export function openEventStream(reply: FastifyReply): ServerResponse {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    // No proxy buffering: each event goes out when it happens.
    'x-accel-buffering': 'no',
  });
  return res;
}
