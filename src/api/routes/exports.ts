// Exports and imports of whole projects in open formats (EU Data Act, chapter VI): an
// export is gathered (its disks come from the nodes, with progress), then downloaded as
// one tar archive as many times as needed; an import takes such an archive into this
// federation. Downloads are streamed, their bytes recorded, and never charged.
import type { Readable } from 'node:stream';
import { Type } from 'typebox';
import { Name, Problem } from '../../model/index.js';
import { EXPORT_PHASES, type ExportService } from '../../resources/export.js';
import { importBundle } from '../../resources/import.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';
import { ErrorBody, principalOf } from './shared.js';

const Job = Type.Object({
  id: Type.String(),
  project: Type.String(),
  createdBy: Type.String(),
  createdAt: Type.String(),
  phase: Type.Union(EXPORT_PHASES.map((p) => Type.Literal(p))),
  message: Type.Optional(Type.String()),
  progress: Type.Object({
    disksDone: Type.Integer(),
    disksTotal: Type.Integer(),
    bytesDone: Type.Integer({ description: 'bytes of the disk being copied' }),
  }),
  size: Type.Optional(Type.Integer({ description: 'bytes of the archive, once Ready' })),
  files: Type.Optional(Type.Integer()),
  bytesServed: Type.Integer({ description: 'bytes downloaded so far (never charged)' }),
});
const Params = Type.Object({ project: Name, id: Type.String({ maxLength: 64 }) });

export function exportRoutes(app: Api, ctx: ApiContext): void {
  const exports = (): ExportService => {
    if (!ctx.exports)
      throw new Problem('conflict', 'this control plane makes no exports (it runs no agent gateway)');
    return ctx.exports;
  };

  app.post('/v1/projects/:project/exports', {
    schema: {
      tags: ['Exports'],
      summary:
        'Start an export of the project: VM disks (copied crash-consistently from their nodes), images, cloud-init data, manifests, history, residency and audit log; poll it, then download it',
      params: Type.Object({ project: Name }),
      response: { 202: Job, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody },
    },
    handler: async (req, reply) => {
      const job = await exports().start(principalOf(req), req.params.project);
      return reply.status(202).send(job);
    },
  });

  app.get('/v1/projects/:project/exports', {
    schema: {
      tags: ['Exports'],
      summary: "The project's exports (kept until deleted or the control plane restarts)",
      params: Type.Object({ project: Name }),
      response: { 200: Type.Object({ items: Type.Array(Job) }), 401: ErrorBody },
    },
    handler: async (req) => ({ items: exports().list(principalOf(req), req.params.project) }),
  });

  app.get('/v1/projects/:project/exports/:id', {
    schema: {
      tags: ['Exports'],
      summary: 'One export: its phase and progress',
      params: Params,
      response: { 200: Job, 401: ErrorBody, 404: ErrorBody },
    },
    handler: async (req) => exports().get(principalOf(req), req.params.project, req.params.id),
  });

  app.delete('/v1/projects/:project/exports/:id', {
    schema: {
      tags: ['Exports'],
      summary: 'Remove an export and its files',
      params: Params,
      response: { 204: Type.Null(), 401: ErrorBody, 404: ErrorBody },
    },
    handler: async (req, reply) => {
      await exports().remove(principalOf(req), req.params.project, req.params.id);
      return reply.status(204).send();
    },
  });

  app.get('/v1/projects/:project/exports/:id/bundle', {
    schema: {
      tags: ['Exports'],
      summary: 'Download the export as one tar archive (streamed; its bytes are recorded, never charged)',
      params: Params,
      response: { 401: ErrorBody, 404: ErrorBody, 409: ErrorBody },
    },
    handler: async (req, reply) => {
      const { project, id } = req.params;
      const d = await exports().download(principalOf(req), project, id);
      return reply
        .header('content-type', 'application/x-tar')
        .header('content-length', String(d.size))
        .header('content-disposition', `attachment; filename="continuum-export-${project}.tar"`)
        .send(d.stream);
    },
  });

  app.addContentTypeParser('application/x-tar', (_req, payload, done) => done(null, payload));
  app.post('/v1/imports', {
    schema: {
      tags: ['Exports'],
      summary:
        'Import an export bundle (a tar archive, Content-Type: application/x-tar): the project, its images, its workloads, and VMs booting from its disks; every file is checked against the signed manifest first, and nothing is written when one fails',
      consumes: ['application/x-tar'],
      response: {
        201: Type.Object({
          project: Type.String(),
          signedBy: Type.String({ description: 'SHA-256 fingerprint of the CA that signed the bundle' }),
          bytes: Type.Integer(),
          created: Type.Array(Type.Object({ kind: Type.String(), name: Type.String() })),
          disks: Type.Array(
            Type.Object({ workload: Type.String(), instance: Type.String(), image: Type.String() }),
          ),
          adjusted: Type.Array(Type.Object({ workload: Type.String(), message: Type.String() }), {
            description:
              "what of a workload's placement named the other federation's providers or nodes, and was left out",
          }),
        }),
        400: ErrorBody,
        401: ErrorBody,
        403: ErrorBody,
        409: ErrorBody,
        415: ErrorBody,
        422: ErrorBody,
      },
    },
    handler: async (req, reply) => {
      if (!String(req.headers['content-type'] ?? '').startsWith('application/x-tar'))
        throw new Problem('unsupported_media_type', 'send the bundle with Content-Type: application/x-tar');
      if (!ctx.importDir) throw new Problem('conflict', 'this control plane takes no imports');
      const result = await importBundle(
        {
          store: ctx.store,
          resources: ctx.resources,
          dir: ctx.importDir,
          imagePath: (sha) => ctx.images.pathOf(sha),
          shareImage: (sha) => ctx.images.adopt(sha),
          dropImage: (sha) => ctx.images.drop(sha),
        },
        principalOf(req),
        // The archive is the request stream itself (the tar parser hands it on unread).
        req.body as Readable,
      );
      return reply.status(201).send(result);
    },
  });
}
