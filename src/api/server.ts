// Builds the HTTP API: Fastify with strict validation, bearer-token authentication, the
// generated OpenAPI document, metrics, and every route group.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { AuthFailureLimiter } from '../auth/index.js';
import { coercingAjv, Problem, strictAjv } from '../model/index.js';
import { IdentityService, ImageFiles, ResourceService } from '../resources/index.js';
import type { Store } from '../store/index.js';
import type { ApiContext } from './context.js';
import { installErrorHandling } from './errors.js';
import { createMetrics, registerAuthMetrics } from './metrics.js';
import { applyRoutes } from './routes/apply.js';
import { eventRoutes } from './routes/events.js';
import { exportRoutes } from './routes/exports.js';
import { identityRoutes } from './routes/identity.js';
import { imageRoutes } from './routes/images.js';
import { instanceRoutes } from './routes/instances.js';
import { liveRoutes } from './routes/live.js';
import { nodeRoutes } from './routes/nodes.js';
import { publicRoutes } from './routes/public.js';
import { replicaRoutes } from './routes/replicas.js';
import { reportRoutes } from './routes/reports.js';
import { resourceRoutes } from './routes/resources.js';
import { switchingRoutes } from './routes/switching.js';
import { systemRoutes } from './routes/system.js';
import type { TypeBoxProvider } from './type-provider.js';

export interface ApiOptions {
  store: Store;
  /** Where image files are kept. */
  imageDir: string;
  maxImageBytes?: number;
  logger?: FastifyServerOptions['logger'];
  version?: string;
  /** Bytes an event-stream client may leave unread before it is disconnected (default 4 MiB). */
  sseBufferBytes?: number;
  /** Shared with the agent gateway, so a source is limited across both. */
  authLimiter?: AuthFailureLimiter;
  /** Serve /metrics without a token (default: a federation-admin's or metrics-reader's). */
  metricsPublic?: boolean;
  /** The web console's built files (default: dist/console of the installation). */
  consoleDir?: string;
}

/** The console loads nothing from elsewhere, and runs no script it did not ship with. */
const CONSOLE_CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const PUBLIC_PATHS = new Set(['/healthz', '/openapi.json']);

export async function buildApi(opts: ApiOptions): Promise<{ app: FastifyInstance; ctx: ApiContext }> {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: 16 * 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<TypeBoxProvider>();
  // Bodies are validated strictly (no "45" for 45); query strings and params are strings
  // on the wire and are coerced.
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema as object),
  );
  // Response schemas document the API; they must never silently drop fields.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  const store = opts.store;
  const resources = new ResourceService(store);
  const ctx: ApiContext = {
    store,
    resources,
    identity: new IdentityService(store),
    images: new ImageFiles(store, resources, opts.imageDir, opts.maxImageBytes ?? 64 * 1024 ** 3),
    metrics: createMetrics(store),
    version: opts.version ?? '0.0.0',
    authLimiter: opts.authLimiter ?? new AuthFailureLimiter(),
    sseBufferBytes: opts.sseBufferBytes ?? 4 * 1024 * 1024,
    metricsPublic: opts.metricsPublic ?? false,
  };
  registerAuthMetrics(ctx.metrics.registry, ctx.authLimiter);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Continuum API',
        version: ctx.version,
        description: 'Federated cloud-edge control plane. Authenticate with `Authorization: Bearer <token>`.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  installErrorHandling(app);

  app.addHook('onRequest', async (req) => {
    const path = req.url.split('?')[0]!;
    const guarded = path.startsWith('/v1/') || (path === '/metrics' && !ctx.metricsPublic);
    if (PUBLIC_PATHS.has(path) || !guarded) return;
    const header = req.headers.authorization;
    if (!header)
      throw new Problem(
        'unauthenticated',
        'missing Authorization: Bearer <token>; get one with `continuum login`',
      );
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    const principal = m ? await ctx.identity.authenticate(m[1]!) : undefined;
    if (!principal) {
      const wait = ctx.authLimiter.failed(req.ip, 'api-token');
      if (wait) throw Problem.tooManyFailures(wait);
      throw new Problem('unauthenticated', 'the bearer token is unknown, revoked or expired');
    }
    ctx.authLimiter.succeeded(req.ip);
    req.principal = principal;
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    ctx.metrics.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    ctx.metrics.duration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  systemRoutes(app, ctx);
  resourceRoutes(app, ctx);
  applyRoutes(app, ctx);
  identityRoutes(app, ctx);
  imageRoutes(app, ctx);
  eventRoutes(app, ctx);
  instanceRoutes(app, ctx);
  nodeRoutes(app, ctx);
  reportRoutes(app, ctx);
  exportRoutes(app, ctx);
  switchingRoutes(app, ctx);
  publicRoutes(app, ctx);
  replicaRoutes(app, ctx);
  liveRoutes(app, ctx);
  await consoleRoutes(app, opts.consoleDir ?? fileURLToPath(new URL('../../console/', import.meta.url)));
  return { app, ctx };
}

/** The web console at `/`: the files `npm run build` made, or a page saying how to make them. */
async function consoleRoutes(app: FastifyInstance, dir: string): Promise<void> {
  if (!existsSync(join(dir, 'index.html'))) {
    app.get('/', { schema: { hide: true } }, async (_req, reply) =>
      reply
        .type('text/plain; charset=utf-8')
        .send(
          'The web console is not built here: run `npm run build` (or `bash scripts/setup.sh`) and restart.\n',
        ),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    // One route per built file (no catch-all): an unknown path stays the API's JSON 404.
    wildcard: false,
    setHeaders: (res, path) => {
      res.header('content-security-policy', CONSOLE_CSP);
      res.header('x-content-type-options', 'nosniff');
      res.header('referrer-policy', 'no-referrer');
      // Hashed asset names never change content; the page itself is always re-checked.
      res.header(
        'cache-control',
        path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      );
    },
  });
}
