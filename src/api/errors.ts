// One error shape for every failure: `{error: {code, message, details?, document?}}`.
// Fastify's own errors (bad JSON, schema failures, size limits) are translated to it.
import type { FastifyError, FastifyInstance } from 'fastify';
import { formatErrors, Problem } from '../model/index.js';

function fromFastify(err: FastifyError): Problem | undefined {
  if (err.validation) {
    // Query and path errors are named after where they are, e.g. `query.limit`.
    const where =
      err.validationContext === 'querystring' ? 'query' : err.validationContext === 'params' ? 'path' : '';
    return Problem.invalid(formatErrors(err.validation as any, where));
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new Problem('invalid_json', `request body is not valid JSON: ${err.message}`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new Problem('payload_too_large', err.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new Problem('unsupported_media_type', `${err.message}; send application/json`);
  }
  if (err instanceof SyntaxError)
    return new Problem('invalid_json', `request body is not valid JSON: ${err.message}`);
  return undefined;
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const problem = err instanceof Problem ? err : fromFastify(err);
    if (problem) {
      if (problem.status >= 500) req.log.error({ err }, problem.message);
      if (problem.retryAfterS !== undefined) reply.header('retry-after', String(problem.retryAfterS));
      return reply.status(problem.status).type('application/json').send(problem.toJSON());
    }
    req.log.error({ err }, 'unhandled error');
    return reply
      .status(500)
      .type('application/json')
      .send(new Problem('internal', 'internal error; the server log has the details').toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    reply
      .status(404)
      .send(
        new Problem(
          'not_found',
          `no route ${req.method} ${req.url.split('?')[0]}; see /openapi.json`,
        ).toJSON(),
      );
  });
}
