// Image file upload and download. Uploads are raw bodies (application/octet-stream),
// streamed to disk and verified against the sha256 the image declares.
import type { Readable } from 'node:stream';
import { Type } from 'typebox';
import { IMAGE_FILES, imageKind, Name, objectSchema, oneOf } from '../../model/index.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';
import { ErrorBody, principalOf } from './shared.js';

const Params = Type.Object({ project: Name, name: Name, file: oneOf(IMAGE_FILES) });

export function imageRoutes(app: Api, ctx: ApiContext): void {
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.put('/v1/projects/:project/images/:name/files/:file', {
    schema: {
      tags: ['Image'],
      summary: 'Upload one file of an image; refused unless its sha256 matches the spec',
      params: Params,
      consumes: ['application/octet-stream'],
      response: {
        200: objectSchema(imageKind),
        404: ErrorBody,
        413: ErrorBody,
        415: ErrorBody,
        422: ErrorBody,
      },
    },
    handler: async (req, reply) => {
      if (!String(req.headers['content-type'] ?? '').startsWith('application/octet-stream'))
        return reply.status(415).send({
          error: {
            code: 'unsupported_media_type',
            message: 'upload with Content-Type: application/octet-stream',
          },
        });
      const { project, name, file } = req.params;
      return ctx.images.upload(principalOf(req), project, name, file, req.body as Readable);
    },
  });

  app.get('/v1/projects/:project/images/:name/files/:file', {
    schema: {
      tags: ['Image'],
      summary: 'Download one file of an image',
      params: Params,
      response: { 404: ErrorBody },
    },
    handler: async (req, reply) => {
      const { project, name, file } = req.params;
      const f = await ctx.images.open(principalOf(req), project, name, file);
      return reply
        .header('content-type', 'application/octet-stream')
        .header('content-length', String(f.size))
        .header('x-content-sha256', f.sha256)
        .send(f.stream);
    },
  });
}
