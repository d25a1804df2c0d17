// Route handlers' requests typed from their TypeBox schemas: the body, query string,
// params and headers a handler reads are the static types of the schemas Fastify
// validates them against (Fastify's type-provider mechanism, for `typebox` 1.x).
// Answers are not typed here: the response schemas document the API (and generate the
// client's types), and the handlers' results are checked by the tests.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance, FastifyTypeProvider, RawServerDefault } from 'fastify';
import type { Static, TSchema } from 'typebox';

export interface TypeBoxProvider extends FastifyTypeProvider {
  readonly validator: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
  readonly serializer: unknown;
}

/** The Fastify instance every route group registers on. */
export type Api = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxProvider
>;
