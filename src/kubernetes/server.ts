// The Kubernetes API facade: an HTTPS listener (certificate from the federation's CA)
// that speaks enough of the Kubernetes API for an unmodified kubectl — discovery,
// OpenAPI v3, Tables, list/get/watch, create/replace/patch (merge, JSON, strategic and
// server-side apply), delete, the scale subresource and pod logs — over Continuum's
// own resources and authorization. Authentication: Continuum API tokens as bearer tokens.
import type { ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import YAML from 'yaml';
import type { AuthFailureLimiter, Principal } from '../auth/index.js';
import type { AgentGateway } from '../gateway/index.js';
import { Problem } from '../model/index.js';
import type { IdentityService, ResourceService } from '../resources/index.js';
import type { Store } from '../store/index.js';
import { APPLIED_ANNOTATION_PREFIX } from './deployments.js';
import type { KubeObject } from './objects.js';
import { openApiDocument, openApiIndex } from './openapi.js';
import { jsonPatch, mergePatch, PatchError, serverSideApply, strategicMergePatch } from './patch.js';
import {
  deployments,
  getScale,
  KubeError,
  type KubeResource,
  kubeErrorOf,
  podInstance,
  pods,
  RESOURCES,
  type Scope,
  setScale,
} from './resources.js';
import { fieldSelector, labelSelector, SelectorError } from './selectors.js';

export interface KubernetesOptions {
  store: Store;
  resources: ResourceService;
  identity: IdentityService;
  authLimiter: AuthFailureLimiter;
  gateway?: AgentGateway;
  version: string;
  tls: { key: string; cert: string };
  /** How often a watch looks for changes (default 1 s). */
  watchIntervalMs?: number;
  logger?: boolean | object;
}

declare module 'fastify' {
  interface FastifyRequest {
    kubePrincipal?: Principal;
  }
}

const groupVersion = (r: KubeResource) => (r.group ? `${r.group}/${r.version}` : r.version);
const basePath = (r: KubeResource) => (r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`);

function status(code: number, reason: string, message: string, details?: object) {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: code < 400 ? 'Success' : 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

export async function buildKubernetesApi(opts: KubernetesOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? false,
    https: { key: opts.tls.key, cert: opts.tls.cert },
    bodyLimit: 4 * 1024 * 1024,
  }) as unknown as FastifyInstance;
  const interval = opts.watchIntervalMs ?? 1000;

  // Bodies are JSON or YAML under several media types; each route parses what it needs.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof KubeError)
      return reply.status(err.code).send(status(err.code, err.reason, err.message, err.details));
    if (err instanceof Problem) {
      const k = kubeErrorOf(err, { kind: '', group: '', plural: '' });
      return reply.status(k.code).send(status(k.code, k.reason, k.message));
    }
    if (err instanceof SelectorError) return reply.status(400).send(status(400, 'BadRequest', err.message));
    const e = err as { statusCode?: number; message: string };
    if (e.statusCode && e.statusCode < 500)
      return reply.status(e.statusCode).send(status(e.statusCode, 'BadRequest', e.message));
    req.log.error({ err }, 'kubernetes facade error');
    return reply
      .status(500)
      .send(status(500, 'InternalError', 'internal error; the server log has the details'));
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .status(404)
      .send(
        status(
          404,
          'NotFound',
          `the server could not find the requested resource (${req.method} ${req.url.split('?')[0]})`,
        ),
      ),
  );

  app.addHook('onRequest', async (req) => {
    const header = req.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    const principal = m ? await opts.identity.authenticate(m[1]!) : undefined;
    if (!principal) {
      const wait = opts.authLimiter.failed(req.ip, 'api-token');
      if (wait)
        throw new KubeError(429, 'TooManyRequests', `too many failed authentications; retry in ${wait} s`);
      throw new KubeError(401, 'Unauthorized', 'Unauthorized');
    }
    opts.authLimiter.succeeded(req.ip);
    req.kubePrincipal = principal;
  });

  const scopeOf = (req: FastifyRequest): Scope => ({
    p: req.kubePrincipal!,
    resources: opts.resources,
    store: opts.store,
  });

  // ---- discovery --------------------------------------------------------------------
  const [major, minor] = ['1', '32'];
  app.get('/version', async () => ({
    major,
    minor,
    gitVersion: `v1.32.0-continuum.${opts.version}`,
    gitCommit: '',
    gitTreeState: 'clean',
    buildDate: '',
    goVersion: `node${process.versions.node}`,
    compiler: 'continuum',
    platform: `${process.platform}/${process.arch}`,
  }));
  app.get('/api', async () => ({
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '' }],
  }));
  const groups = [...new Set(RESOURCES.filter((r) => r.group).map((r) => r.group))];
  const groupInfo = (g: string) => ({
    name: g,
    versions: [{ groupVersion: `${g}/v1`, version: 'v1' }],
    preferredVersion: { groupVersion: `${g}/v1`, version: 'v1' },
  });
  app.get('/apis', async () => ({ kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map(groupInfo) }));
  for (const g of groups)
    app.get(`/apis/${g}`, async () => ({ kind: 'APIGroup', apiVersion: 'v1', ...groupInfo(g) }));
  const resourceList = (gv: string) => {
    const list: object[] = [];
    for (const r of RESOURCES.filter((x) => groupVersion(x) === gv)) {
      const verbs = [
        'get',
        'list',
        'watch',
        ...(r.create ? ['create', 'update', 'patch'] : []),
        ...(r.remove ? ['delete'] : []),
      ];
      list.push({
        name: r.plural,
        singularName: r.singular,
        namespaced: r.namespaced,
        kind: r.kind,
        verbs,
        ...(r.shortNames?.length ? { shortNames: r.shortNames } : {}),
        ...(r.categories ? { categories: r.categories } : {}),
      });
      if (r === deployments)
        list.push(
          {
            name: 'deployments/scale',
            singularName: '',
            namespaced: true,
            group: 'autoscaling',
            version: 'v1',
            kind: 'Scale',
            verbs: ['get', 'patch', 'update'],
          },
          {
            name: 'deployments/status',
            singularName: '',
            namespaced: true,
            kind: 'Deployment',
            verbs: ['get'],
          },
        );
      if (r === pods)
        list.push({ name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] });
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources: list };
  };
  app.get('/api/v1', async () => resourceList('v1'));
  for (const g of groups) app.get(`/apis/${g}/v1`, async () => resourceList(`${g}/v1`));

  // ---- OpenAPI v3 ---------------------------------------------------------------------
  // The documents do not change while the process runs: built once, on first ask.
  let index: object | undefined;
  const docs = new Map<string, object>();
  app.get('/openapi/v3', async () => {
    index ??= openApiIndex(RESOURCES);
    return index;
  });
  app.get('/openapi/v3/*', async (req, reply) => {
    const path = (req.params as { '*': string })['*'];
    // Only documents that exist are kept (a client's path is not a cache key otherwise).
    let doc = docs.get(path);
    if (!doc) {
      doc = openApiDocument(RESOURCES, path);
      if (doc) docs.set(path, doc);
    }
    if (!doc) return reply.status(404).send(status(404, 'NotFound', `no OpenAPI document for ${path}`));
    return doc;
  });

  // ---- resources ----------------------------------------------------------------------
  for (const r of RESOURCES) registerResource(app, r, scopeOf, interval);

  // Deployments' scale and status subresources.
  const dep = '/apis/apps/v1/namespaces/:namespace/deployments/:name';
  type P = { namespace: string; name: string };
  app.get(`${dep}/scale`, async (req) => {
    const { namespace, name } = req.params as P;
    return getScale(scopeOf(req), namespace, name);
  });
  app.get(`${dep}/status`, async (req) => {
    const { namespace, name } = req.params as P;
    return deployments.get(scopeOf(req), namespace, name);
  });
  const writeScale = async (req: FastifyRequest) => {
    const { namespace, name } = req.params as P;
    const s = scopeOf(req);
    let body = parseBody(req);
    if (req.method === 'PATCH') body = applyPatch(req, (await getScale(s, namespace, name)) as any, body, {});
    return setScale(s, namespace, name, body, isDryRun(req));
  };
  app.put(`${dep}/scale`, writeScale);
  app.patch(`${dep}/scale`, writeScale);

  // Pod logs: the container's output from its node's agent.
  app.get('/api/v1/namespaces/:namespace/pods/:name/log', async (req, reply) => {
    const { namespace, name } = req.params as P;
    const q = req.query as { follow?: string; tailLines?: string; limitBytes?: string };
    const s = scopeOf(req);
    const i = await podInstance(s, namespace, name);
    if (!opts.gateway)
      throw new KubeError(503, 'ServiceUnavailable', 'this control plane runs no agent gateway');
    const gateway = opts.gateway;
    const read = async (offset: number) => {
      try {
        return await gateway.request(i.provider, i.node, 'console', { uid: i.uid, offset, limit: 1048576 });
      } catch (err) {
        if (err instanceof Problem)
          throw new KubeError(
            503,
            'ServiceUnavailable',
            `the pod's node ${i.provider}/${i.node} is unreachable: ${err.message}`,
          );
        throw err;
      }
    };
    let text = '';
    let offset = 0;
    for (;;) {
      const r = await read(offset);
      text += r.data;
      if (r.next === offset) break;
      offset = r.next;
    }
    const tail = q.tailLines !== undefined ? Number(q.tailLines) : undefined;
    if (tail !== undefined && Number.isInteger(tail) && tail >= 0) {
      const lines = text.split(/(?<=\n)/);
      text = tail === 0 ? '' : lines.slice(-tail).join('');
    }
    if (q.limitBytes) text = text.slice(0, Number(q.limitBytes));
    if (q.follow !== 'true' && q.follow !== '1') return reply.type('text/plain').send(text);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-cache' });
    res.write(text);
    let closed = false;
    res.on('close', () => {
      closed = true;
    });
    while (!closed) {
      await new Promise((r) => setTimeout(r, interval));
      if (closed) break;
      const still = await opts.store.getInstance(namespace, name);
      if (!still || still.uid !== i.uid || still.desired === 'absent') break;
      try {
        const r = await read(offset);
        if (r.data) res.write(r.data);
        offset = r.next;
      } catch {
        // The node is away for now; keep following.
      }
    }
    res.end();
  });

  return app;
}

function isDryRun(req: FastifyRequest): boolean {
  return (req.query as { dryRun?: string }).dryRun === 'All';
}

function parseBody(req: FastifyRequest): unknown {
  const text = typeof req.body === 'string' ? req.body : '';
  if (!text.trim()) throw new KubeError(400, 'BadRequest', 'the request has no body');
  const type = String(req.headers['content-type'] ?? '');
  if (/protobuf|cbor/.test(type))
    throw new KubeError(
      415,
      'UnsupportedMediaType',
      `Continuum's Kubernetes API takes JSON and YAML bodies, not ${type.split(';')[0]} (kubectl create deployment and kubectl run send it): pipe them through apply, e.g. kubectl create deployment web --image=IMAGE --dry-run=client -o yaml | kubectl apply -f -`,
    );
  try {
    return type.includes('yaml') ? YAML.parse(text) : JSON.parse(text);
  } catch (err) {
    throw new KubeError(
      400,
      'BadRequest',
      `the body is not valid ${type.includes('yaml') ? 'YAML' : 'JSON'}: ${(err as Error).message}`,
    );
  }
}

/** `current` patched as the request's media type says (server-side apply is handled by the caller). */
function applyPatch(
  req: FastifyRequest,
  current: object,
  patch: unknown,
  keys: Record<string, string>,
): unknown {
  const type = String(req.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim();
  try {
    switch (type) {
      case 'application/merge-patch+json':
        return mergePatch(current as any, patch as any);
      case 'application/strategic-merge-patch+json':
        return strategicMergePatch(current as any, patch as any, keys);
      case 'application/json-patch+json':
        return jsonPatch(current as any, patch);
      default:
        throw new KubeError(
          415,
          'UnsupportedMediaType',
          `the body of a PATCH is one of application/merge-patch+json, application/strategic-merge-patch+json, application/json-patch+json, application/apply-patch+yaml; not ${type || 'unset'}`,
        );
    }
  } catch (err) {
    if (err instanceof PatchError)
      throw new KubeError(422, 'Invalid', `the patch cannot be applied: ${err.message}`);
    throw err;
  }
}

function wantsTable(req: FastifyRequest): boolean {
  return /as=Table/.test(String(req.headers.accept ?? ''));
}

function table(
  r: KubeResource,
  objects: readonly KubeObject[],
  includeObject: string | undefined,
  resourceVersion: string,
) {
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: r.columns.map((c) => ({
      name: c.name,
      type: c.type ?? 'string',
      format: c.format ?? '',
      description: c.description ?? c.name,
      priority: c.priority ?? 0,
    })),
    rows: objects.map((o) => ({
      cells: r.columns.map((c) => c.cell(o) ?? ''),
      object:
        includeObject === 'Object'
          ? o
          : includeObject === 'None'
            ? undefined
            : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}

function registerResource(
  app: FastifyInstance,
  r: KubeResource,
  scopeOf: (req: FastifyRequest) => Scope,
  interval: number,
): void {
  const base = basePath(r);
  const param = r.plural === 'namespaces' && !r.group ? 'namespace' : 'name';
  const collections = r.namespaced
    ? [`${base}/namespaces/:namespace/${r.plural}`, `${base}/${r.plural}`]
    : [`${base}/${r.plural}`];
  const item = r.namespaced
    ? `${base}/namespaces/:namespace/${r.plural}/:name`
    : `${base}/${r.plural}/:${param}`;
  type Q = {
    labelSelector?: string;
    fieldSelector?: string;
    watch?: string;
    includeObject?: string;
    resourceVersion?: string;
    timeoutSeconds?: string;
  };
  const nameOf = (req: FastifyRequest) =>
    (req.params as Record<string, string>)[r.namespaced ? 'name' : param]!;
  const nsOf = (req: FastifyRequest) =>
    r.namespaced ? (req.params as { namespace?: string }).namespace : undefined;

  const listed = async (req: FastifyRequest) => {
    const q = req.query as Q;
    const byLabels = labelSelector(q.labelSelector);
    const byFields = fieldSelector(q.fieldSelector);
    return (await r.list(scopeOf(req), nsOf(req))).filter(
      (o) => byLabels(o.metadata.labels ?? {}) && byFields(o),
    );
  };

  for (const path of collections) {
    app.get(path, async (req, reply) => {
      const q = req.query as Q;
      if (q.watch === 'true' || q.watch === '1') return watch(req, reply, r, () => listed(req), interval);
      const items = await listed(req);
      const rv = String(Date.now());
      if (wantsTable(req)) return table(r, items, q.includeObject, rv);
      return { kind: `${r.kind}List`, apiVersion: groupVersion(r), metadata: { resourceVersion: rv }, items };
    });
  }
  app.get(item, async (req) => {
    const o = await r.get(scopeOf(req), nsOf(req), nameOf(req));
    return wantsTable(req)
      ? table(r, [o], (req.query as Q).includeObject, o.metadata.resourceVersion ?? '')
      : o;
  });
  if (r.create) {
    const create = r.create;
    app.post(collections[0]!, async (req, reply) => {
      const o = await create(scopeOf(req), nsOf(req), parseBody(req), isDryRun(req));
      return reply.status(201).send(o);
    });
  }
  if (r.replace) {
    const replace = r.replace;
    app.put(item, async (req) =>
      replace(scopeOf(req), nsOf(req), nameOf(req), parseBody(req), isDryRun(req)),
    );
    app.patch(item, async (req, reply) => {
      const s = scopeOf(req);
      const ns = nsOf(req);
      const name = nameOf(req);
      const body = parseBody(req);
      const type = String(req.headers['content-type'] ?? '');
      if (type.startsWith('application/apply-patch+yaml')) {
        const manager = (req.query as { fieldManager?: string }).fieldManager;
        if (!manager) throw new KubeError(400, 'BadRequest', 'fieldManager is required for apply requests');
        const config = body as { metadata?: { annotations?: Record<string, string> } };
        const remember = (o: any) => {
          o.metadata ??= {};
          o.metadata.annotations = {
            ...o.metadata.annotations,
            [`${APPLIED_ANNOTATION_PREFIX}${manager}`]: JSON.stringify(config),
          };
          return o;
        };
        let current: KubeObject | undefined;
        try {
          current = await r.get(s, ns, name);
        } catch (err) {
          if (!(err instanceof KubeError && err.code === 404)) throw err;
        }
        if (!current) {
          const created = await r.create!(s, ns, remember(structuredClone(config)), isDryRun(req));
          return reply.status(201).send(created);
        }
        const previous = await r.appliedBy?.(s, ns, name, manager);
        const { status: _st, ...live } = current as KubeObject & { status?: unknown };
        const merged = serverSideApply(live as any, config as any, previous as any, r.mergeKeys ?? {});
        return replace(s, ns, name, remember(merged), isDryRun(req));
      }
      const current = await r.get(s, ns, name);
      const { status: _st, ...live } = current as KubeObject & { status?: unknown };
      const patched = applyPatch(req, live, body, r.mergeKeys ?? {});
      return replace(s, ns, name, patched, isDryRun(req));
    });
  }
  if (r.remove) {
    const remove = r.remove;
    app.delete(item, async (req) => {
      const o = await remove(scopeOf(req), nsOf(req), nameOf(req));
      return status(200, '', '', {
        name: o.metadata.name,
        ...(r.group ? { group: r.group } : {}),
        kind: r.plural,
        uid: o.metadata.uid,
      });
    });
  }
}

/**
 * A watch: the list now (unless the client names the version it listed at), then every
 * change as ADDED / MODIFIED / DELETED, found by comparing the list each interval.
 */
async function watch(
  req: FastifyRequest,
  reply: FastifyReply,
  r: KubeResource,
  list: () => Promise<KubeObject[]>,
  interval: number,
): Promise<void> {
  const q = req.query as { resourceVersion?: string; timeoutSeconds?: string; includeObject?: string };
  const asTable = wantsTable(req);
  const first = await list();
  reply.hijack();
  const res: ServerResponse = reply.raw;
  res.writeHead(200, {
    'content-type': 'application/json',
    'cache-control': 'no-cache',
    'transfer-encoding': 'chunked',
  });
  // Headers now: a client waits for them before it can stop a watch it no longer needs.
  res.flushHeaders();
  const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  const send = (type: string, o: KubeObject) =>
    res.write(
      `${JSON.stringify({ type, object: asTable ? table(r, [o], q.includeObject, o.metadata.resourceVersion ?? '') : o })}\n`,
    );
  let last = new Map(first.map((o) => [keyOf(o), { o, json: JSON.stringify(o) }]));
  if (!q.resourceVersion || q.resourceVersion === '0') for (const { o } of last.values()) send('ADDED', o);
  let closed = false;
  res.on('close', () => {
    closed = true;
  });
  const timeout = Number(q.timeoutSeconds ?? 1800);
  const end = Date.now() + (Number.isFinite(timeout) && timeout > 0 ? timeout : 1800) * 1000;
  while (!closed && Date.now() < end) {
    await new Promise((done) => setTimeout(done, interval));
    if (closed) break;
    let now: KubeObject[];
    try {
      now = await list();
    } catch (err) {
      const k = err instanceof KubeError ? err : new KubeError(500, 'InternalError', (err as Error).message);
      res.write(`${JSON.stringify({ type: 'ERROR', object: status(k.code, k.reason, k.message) })}\n`);
      break;
    }
    const next = new Map(now.map((o) => [keyOf(o), { o, json: JSON.stringify(o) }]));
    for (const [k, v] of next) {
      const was = last.get(k);
      if (!was) send('ADDED', v.o);
      else if (was.json !== v.json) send('MODIFIED', v.o);
    }
    for (const [k, v] of last) if (!next.has(k)) send('DELETED', v.o);
    last = next;
  }
  res.end();
}
