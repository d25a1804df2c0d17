// The resources the Kubernetes facade serves: what each lists, reads and writes, and
// the columns `kubectl get` prints. Every read and write goes through Continuum's
// ResourceService with the caller's principal, so a tenant sees and changes only its
// projects, as with the Continuum API.
import { instanceAccess, type Principal } from '../auth/index.js';
import { COLUMNS } from '../cli/columns.js';
import {
  findKind,
  type KindDef,
  nodeKind,
  Problem,
  projectKind,
  type ResourceObject,
  siteKind,
  validate,
  workloadKind,
} from '../model/index.js';
import type { FieldError } from '../model/problem.js';
import type { ResourceService } from '../resources/index.js';
import type { InstanceRecord, Store } from '../store/index.js';
import {
  APPLIED_ANNOTATION_PREFIX,
  type DeploymentInput,
  SPEC_ANNOTATION,
  selectorString,
  splitQualified,
  storedSpec,
  workloadOf,
} from './deployments.js';
import {
  deploymentOf,
  eventOf,
  instanceMeta,
  type KubeObject,
  kubeTime,
  namespaceOf,
  nodeOf,
  nodeStatusWord,
  podStatusWord,
  podsOf,
  schedulingEvents,
  versionOf,
} from './objects.js';
import { DeploymentIn, ScaleIn } from './schemas.js';

export interface Column {
  name: string;
  type?: 'string' | 'integer' | 'number' | 'date';
  format?: string;
  description?: string;
  /** 0: always shown; 1: with -o wide. */
  priority?: number;
  cell(o: KubeObject): unknown;
}

export interface Scope {
  p: Principal;
  resources: ResourceService;
  store: Store;
}

export interface KubeResource {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  columns: Column[];
  list(s: Scope, namespace: string | undefined): Promise<KubeObject[]>;
  get(s: Scope, namespace: string | undefined, name: string): Promise<KubeObject>;
  /** Writable resources: the object as written, from a full object (create and replace). */
  create?(s: Scope, namespace: string | undefined, body: unknown, dryRun: boolean): Promise<KubeObject>;
  replace?(
    s: Scope,
    namespace: string | undefined,
    name: string,
    body: unknown,
    dryRun: boolean,
  ): Promise<KubeObject>;
  remove?(s: Scope, namespace: string | undefined, name: string): Promise<KubeObject>;
  /** Lists with merge keys for strategic merge patches. */
  mergeKeys?: Record<string, string>;
  /** The configuration a server-side apply manager applied last (kept by the facade). */
  appliedBy?(s: Scope, namespace: string | undefined, name: string, manager: string): Promise<unknown>;
}

/** A Kubernetes error: kubectl prints `Error from server (<reason>): <message>`. */
export class KubeError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: {
      name?: string;
      group?: string;
      kind?: string;
      causes?: { reason: string; message: string; field: string }[];
    },
  ) {
    super(message);
  }
}

const PROBLEM_REASONS: Record<string, [number, string]> = {
  not_found: [404, 'NotFound'],
  parent_not_found: [404, 'NotFound'],
  already_exists: [409, 'AlreadyExists'],
  conflict: [409, 'Conflict'],
  has_dependents: [409, 'Conflict'],
  forbidden: [403, 'Forbidden'],
  quota_exceeded: [403, 'Forbidden'],
  unauthenticated: [401, 'Unauthorized'],
  method_not_allowed: [405, 'MethodNotAllowed'],
  too_many_requests: [429, 'TooManyRequests'],
  node_unreachable: [503, 'ServiceUnavailable'],
  payload_too_large: [413, 'RequestEntityTooLarge'],
  unsupported_media_type: [415, 'UnsupportedMediaType'],
};

/** The Kubernetes form of a Continuum Problem about `kind "name"`. */
export function kubeErrorOf(
  err: Problem,
  what: { kind: string; group: string; name?: string; plural: string },
): KubeError {
  const qualified = what.group ? `${what.plural}.${what.group}` : what.plural;
  if (err.code === 'validation_failed' || err.code === 'invalid_json' || err.code === 'invalid_yaml')
    return invalid(what, err.details.length ? err.details : [{ path: '', message: err.message }]);
  const [code, reason] = PROBLEM_REASONS[err.code] ?? [500, 'InternalError'];
  const project = /^project '([^']+)' not found$/.exec(err.message);
  const message = project
    ? `namespaces "${project[1]}" not found`
    : reason === 'NotFound' && what.name && err.code === 'not_found'
      ? `${qualified} "${what.name}" not found`
      : err.message;
  return new KubeError(code, reason, message, {
    ...(what.name ? { name: what.name } : {}),
    group: what.group,
    kind: what.plural,
  });
}

/** 400 for unknown fields (strict decoding, as the API server says it); 422 for bad values. */
export function invalid(
  what: { kind: string; group: string; name?: string },
  errors: readonly FieldError[],
): KubeError {
  const unknown = errors.filter((e) => e.message.startsWith("unknown field '"));
  if (unknown.length) {
    const fields = unknown.map((e) => {
      const field = e.message.slice("unknown field '".length, -1);
      return `unknown field "${e.path ? `${e.path}.${field}` : field}"`;
    });
    return new KubeError(
      400,
      'BadRequest',
      `${what.kind} in version "v1" cannot be handled as a ${what.kind}: strict decoding error: ${fields.join(', ')}`,
    );
  }
  const kindName = what.group ? `${what.kind}.${what.group}` : what.kind;
  const list = errors.map((e) => `${e.path ? `${e.path}: ` : ''}${e.message}`);
  return new KubeError(
    422,
    'Invalid',
    `${kindName} "${what.name ?? ''}" is invalid: ${list.length === 1 ? list[0] : `[${list.join(', ')}]`}`,
    {
      ...(what.name ? { name: what.name } : {}),
      group: what.group,
      kind: what.kind,
      causes: errors.map((e) => ({ reason: 'FieldValueInvalid', message: e.message, field: e.path })),
    },
  );
}

/** Every visible object of a kind (all pages). */
async function listAll(s: Scope, def: KindDef, parent?: string): Promise<ResourceObject[]> {
  const out: ResourceObject[] = [];
  let cursor: string | undefined;
  do {
    const page = await s.resources.list(s.p, def, {
      limit: 1000,
      ...(parent !== undefined ? { parent } : {}),
      ...(cursor ? { cursor } : {}),
    });
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

const nameColumn: Column = { name: 'Name', type: 'string', format: 'name', cell: (o) => o.metadata.name };
const ageColumn: Column = {
  name: 'Age',
  type: 'string',
  cell: (o) => humanAge(o.metadata.creationTimestamp),
};

/** Kubernetes' short ages: 45s, 3m12s, 5h, 2d4h, 90d. */
export function humanAge(ts: string | undefined, now = Date.now()): string {
  if (!ts) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(ts)) / 1000));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const d = Math.floor(h / 24);
  if (s < 120) return `${s}s`;
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  if (h < 3) return `${m}m`;
  if (h < 8) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  if (h < 48) return `${h}h`;
  if (d < 8) return `${d}d${h % 24 ? `${h % 24}h` : ''}`;
  return `${d}d`;
}

async function namespaceRequired(ns: string | undefined): Promise<string> {
  if (!ns) throw new KubeError(400, 'BadRequest', 'a namespace (a Continuum project) is required');
  return ns;
}

/** Container workloads of a project (or of every visible project) with their instances. */
async function containerWorkloads(s: Scope, ns: string | undefined, opts: { deleted?: boolean } = {}) {
  const projects = ns ? [ns] : (await listAll(s, projectKind)).map((p) => p.metadata.name);
  const out: { w: ResourceObject; instances: InstanceRecord[] }[] = [];
  for (const project of projects) {
    const all = await listAll(s, workloadKind, project);
    const workloads = all.filter((w) => w.spec.kind === 'container');
    const byWorkload = new Map<string, InstanceRecord[]>();
    for (const i of await s.store.listInstances({ project }))
      byWorkload.set(i.workload, [...(byWorkload.get(i.workload) ?? []), i]);
    for (const w of workloads) out.push({ w, instances: byWorkload.get(w.metadata.name) ?? [] });
    if (!opts.deleted) continue;
    // A deleted Deployment's containers, until their nodes have removed them (Terminating pods).
    const known = new Set(all.map((w) => w.metadata.name));
    for (const [name, instances] of byWorkload)
      if (!known.has(name) && instances.some((i) => i.spec.image.format === 'oci'))
        out.push({ w: deletedWorkload(project, name, instances), instances });
  }
  return out;
}

/** Stands in for a workload already deleted, so that its last instances render as pods. */
function deletedWorkload(project: string, name: string, instances: InstanceRecord[]): ResourceObject {
  const i = instances[0]!;
  return {
    apiVersion: 'continuum/v1',
    kind: 'Workload',
    metadata: {
      name,
      project,
      uid: '',
      generation: 0,
      labels: {},
      createdAt: i.createdAt,
      updatedAt: i.updatedAt,
      createdBy: '',
    },
    spec: {
      kind: 'container',
      image: i.spec.image.name,
      replicas: 0,
      resources: { vcpus: i.vcpus, memoryMiB: i.memoryMiB },
    },
    status: {},
  };
}

function wrap<T>(
  what: { kind: string; group: string; plural: string; name?: string },
  fn: () => Promise<T>,
): Promise<T> {
  return fn().catch((err) => {
    throw err instanceof Problem ? kubeErrorOf(err, what) : err;
  });
}

// ---- core/v1 ------------------------------------------------------------------------

export const namespaces: KubeResource = {
  group: '',
  version: 'v1',
  plural: 'namespaces',
  singular: 'namespace',
  kind: 'Namespace',
  namespaced: false,
  shortNames: ['ns'],
  columns: [nameColumn, { name: 'Status', cell: () => 'Active' }, ageColumn],
  list: async (s) => (await listAll(s, projectKind)).map(namespaceOf),
  get: (s, _ns, name) =>
    wrap({ kind: 'Namespace', group: '', plural: 'namespaces', name }, async () =>
      namespaceOf(await s.resources.get(s.p, projectKind, '', name)),
    ),
};

async function sitesByKey(s: Scope): Promise<Map<string, ResourceObject>> {
  return new Map((await listAll(s, siteKind)).map((x) => [`${x.metadata.provider}/${x.metadata.name}`, x]));
}

export const nodes: KubeResource = {
  group: '',
  version: 'v1',
  plural: 'nodes',
  singular: 'node',
  kind: 'Node',
  namespaced: false,
  shortNames: ['no'],
  columns: [
    nameColumn,
    { name: 'Status', cell: nodeStatusWord },
    { name: 'Provider', cell: (o) => o.metadata.labels?.['continuum.eu/provider'] },
    { name: 'Region', cell: (o) => o.metadata.labels?.['topology.kubernetes.io/region'] ?? '<none>' },
    { name: 'Zone', cell: (o) => o.metadata.labels?.['topology.kubernetes.io/zone'] },
    ageColumn,
    { name: 'CPUs', priority: 1, cell: (o) => (o.status as any).capacity.cpu },
    { name: 'Memory', priority: 1, cell: (o) => (o.status as any).capacity.memory },
    { name: 'Arch', priority: 1, cell: (o) => (o.status as any).nodeInfo.architecture },
    {
      name: 'Container-Runtime',
      priority: 1,
      cell: (o) => (o.status as any).nodeInfo.containerRuntimeVersion,
    },
  ],
  list: (s) =>
    wrap({ kind: 'Node', group: '', plural: 'nodes' }, async () => {
      const sites = await sitesByKey(s);
      return (await listAll(s, nodeKind)).map((n) =>
        nodeOf(n, sites.get(`${n.metadata.provider}/${n.spec.site}`)),
      );
    }),
  get: (s, _ns, name) =>
    wrap({ kind: 'Node', group: '', plural: 'nodes', name }, async () => {
      const q = splitQualified(name);
      if (!q) throw new Problem('not_found', `nodes "${name}" not found (node names are PROVIDER.NODE)`);
      const n = await s.resources.get(s.p, nodeKind, q[0], q[1]);
      const site = await s.resources.get(s.p, siteKind, q[0], n.spec.site).catch(() => undefined);
      return nodeOf(n, site);
    }),
};

export const pods: KubeResource = {
  group: '',
  version: 'v1',
  plural: 'pods',
  singular: 'pod',
  kind: 'Pod',
  namespaced: true,
  shortNames: ['po'],
  categories: ['all'],
  columns: [
    nameColumn,
    {
      name: 'Ready',
      cell: (o) => `${(o.status as any).containerStatuses?.[0]?.ready ? 1 : 0}/1`,
    },
    { name: 'Status', cell: podStatusWord },
    {
      name: 'Restarts',
      type: 'integer',
      cell: (o) => (o.status as any).containerStatuses?.[0]?.restartCount ?? 0,
    },
    ageColumn,
    { name: 'IP', priority: 1, cell: (o) => (o.status as any).podIP ?? '<none>' },
    { name: 'Node', priority: 1, cell: (o) => (o.spec as any).nodeName ?? '<none>' },
    {
      name: 'Ports',
      priority: 1,
      description: 'ports forwarded on the node: container → node',
      cell: (o) => portsOf(o),
    },
  ],
  list: (s, ns) =>
    wrap({ kind: 'Pod', group: '', plural: 'pods' }, async () =>
      (await containerWorkloads(s, ns, { deleted: true })).flatMap(({ w, instances }) =>
        podsOf(w, instances),
      ),
    ),
  get: async (s, ns, name) => {
    const found = (await pods.list(s, await namespaceRequired(ns))).find((p) => p.metadata.name === name);
    if (!found) throw new KubeError(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' });
    return found;
  },
  remove: async (_s, _ns, name) => {
    throw new KubeError(
      405,
      'MethodNotAllowed',
      `pod "${name}" belongs to its Deployment, which keeps its replicas: scale the Deployment, or move the replica with \`continuum migrate\``,
    );
  },
};

/** The ports a pod's node forwards: "8080→192.0.2.1:41234". */
function portsOf(o: KubeObject): string {
  const ip = (o.status as any).hostIP;
  const ports = ((o.spec as any).containers[0]?.ports ?? []).filter((p: any) => p.hostPort);
  return ports.length ? ports.map((p: any) => `${p.containerPort}→${ip}:${p.hostPort}`).join(',') : '<none>';
}

export const events: KubeResource = {
  group: '',
  version: 'v1',
  plural: 'events',
  singular: 'event',
  kind: 'Event',
  namespaced: true,
  shortNames: ['ev'],
  columns: [
    { name: 'Last Seen', cell: (o) => humanAge(o.lastTimestamp as string) },
    { name: 'Type', cell: (o) => o.type },
    { name: 'Reason', cell: (o) => o.reason },
    {
      name: 'Object',
      cell: (o) =>
        `${String((o.involvedObject as any).kind).toLowerCase()}/${(o.involvedObject as any).name}`,
    },
    { name: 'Message', cell: (o) => o.message },
    { name: 'Name', priority: 1, format: 'name', cell: (o) => o.metadata.name },
  ],
  list: (s, ns) =>
    wrap({ kind: 'Event', group: '', plural: 'events' }, async () => {
      const projects = ns ? [ns] : (await listAll(s, projectKind)).map((p) => p.metadata.name);
      const out: KubeObject[] = [];
      for (const project of projects) {
        // Visible to the principal (a hidden project is not found).
        await s.resources.get(s.p, projectKind, '', project);
        const audit = await s.store.listEvents({
          scope: { projects: [project], providers: [] },
          newest: true,
          limit: 500,
        });
        for (const e of audit) {
          const k = eventOf(e, project);
          if (k) out.push(k);
        }
        const pending = (await containerWorkloads(s, project)).flatMap(({ w, instances }) =>
          podsOf(w, instances),
        );
        out.push(...schedulingEvents(pending));
      }
      return out;
    }),
  get: async (s, ns, name) => {
    const found = (await events.list(s, await namespaceRequired(ns))).find((e) => e.metadata.name === name);
    if (!found) throw new KubeError(404, 'NotFound', `events "${name}" not found`, { name, kind: 'events' });
    return found;
  },
};

// ---- apps/v1 Deployments ----------------------------------------------------------

const DEPLOYMENT = { kind: 'Deployment', group: 'apps', plural: 'deployments' };

/** A Deployment body checked against what Continuum runs: unknown fields and bad values named. */
function checkDeployment(
  body: unknown,
  ns: string,
  name?: string,
): { dep: DeploymentInput; manifest: object } {
  const errors = validate(DeploymentIn, body);
  const given = (body as any)?.metadata?.name;
  const what = { ...DEPLOYMENT, name: name ?? given };
  if (errors.length) throw invalid(what, errors);
  const dep = body as DeploymentInput & { metadata: { namespace?: string } };
  if (!dep.metadata.name)
    throw invalid(what, [
      { path: 'metadata.name', message: 'Required value: name or generateName is required' },
    ]);
  if (name !== undefined && dep.metadata.name !== name)
    throw new KubeError(
      400,
      'BadRequest',
      `the name of the object (${dep.metadata.name}) does not match the name on the URL (${name})`,
    );
  if (dep.metadata.namespace !== undefined && dep.metadata.namespace !== ns)
    throw new KubeError(
      400,
      'BadRequest',
      `the namespace of the provided object does not match the namespace sent on the request`,
    );
  const { manifest, errors: mapping } = workloadOf(dep, ns);
  if (mapping.length) throw invalid(what, mapping);
  return { dep, manifest };
}

async function readWorkload(s: Scope, ns: string, name: string): Promise<ResourceObject> {
  const w = await wrap({ ...DEPLOYMENT, name }, () => s.resources.get(s.p, workloadKind, ns, name));
  if (w.spec.kind !== 'container')
    throw new KubeError(
      404,
      'NotFound',
      `deployments.apps "${name}" not found (workload ${ns}/${name} runs VMs: kubectl get workloads.continuum ${name})`,
      {
        name,
        group: 'apps',
        kind: 'deployments',
      },
    );
  return w;
}

async function renderDeployment(s: Scope, w: ResourceObject): Promise<KubeObject> {
  const instances = await s.store.listInstances({ project: w.metadata.project!, workload: w.metadata.name });
  return deploymentOf(w, instances);
}

/** The annotations the facade keeps for itself (server-side apply managers), carried across writes. */
function internalAnnotations(w: ResourceObject): Record<string, string> {
  return Object.fromEntries(
    Object.entries(w.metadata.annotations ?? {}).filter(([k]) => k.startsWith(APPLIED_ANNOTATION_PREFIX)),
  );
}

export const deployments: KubeResource = {
  group: 'apps',
  version: 'v1',
  plural: 'deployments',
  singular: 'deployment',
  kind: 'Deployment',
  namespaced: true,
  shortNames: ['deploy'],
  categories: ['all'],
  mergeKeys: { containers: 'name', env: 'name', ports: 'containerPort' },
  columns: [
    nameColumn,
    { name: 'Ready', cell: (o) => `${(o.status as any).readyReplicas}/${(o.spec as any).replicas}` },
    { name: 'Up-to-date', type: 'integer', cell: (o) => (o.status as any).updatedReplicas },
    { name: 'Available', type: 'integer', cell: (o) => (o.status as any).availableReplicas },
    ageColumn,
    {
      name: 'Containers',
      priority: 1,
      cell: (o) => (o.spec as any).template.spec.containers.map((c: any) => c.name).join(','),
    },
    {
      name: 'Images',
      priority: 1,
      cell: (o) => (o.spec as any).template.spec.containers.map((c: any) => c.image).join(','),
    },
    {
      name: 'Selector',
      priority: 1,
      cell: (o) => selectorString((o.spec as any).selector.matchLabels ?? {}),
    },
  ],
  list: (s, ns) =>
    wrap(DEPLOYMENT, async () =>
      (await containerWorkloads(s, ns)).map(({ w, instances }) => deploymentOf(w, instances)),
    ),
  get: async (s, ns, name) => renderDeployment(s, await readWorkload(s, await namespaceRequired(ns), name)),
  create: async (s, ns, body, dryRun) => {
    const project = await namespaceRequired(ns);
    const { dep, manifest } = checkDeployment(body, project);
    const res = await wrap({ ...DEPLOYMENT, name: dep.metadata.name }, () =>
      s.resources.create(s.p, workloadKind, project, manifest, dryRun),
    );
    return renderDeployment(s, res.object);
  },
  replace: async (s, ns, name, body, dryRun) => {
    const project = await namespaceRequired(ns);
    const existing = await readWorkload(s, project, name);
    const rv = (body as any)?.metadata?.resourceVersion;
    if (rv && rv !== versionOf(existing.metadata.updatedAt))
      throw new KubeError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on deployments.apps "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    const { dep, manifest } = checkDeployment(body, project, name);
    const before = storedSpec(existing).selector.matchLabels ?? {};
    const after = dep.spec.selector.matchLabels ?? {};
    if (existing.metadata.annotations?.[SPEC_ANNOTATION] && selectorString(before) !== selectorString(after))
      throw invalid({ ...DEPLOYMENT, name }, [
        {
          path: 'spec.selector',
          message: `Invalid value: ${JSON.stringify({ matchLabels: after })}: field is immutable`,
        },
      ]);
    const m = manifest as { metadata: { annotations: Record<string, string> } };
    m.metadata.annotations = { ...internalAnnotations(existing), ...m.metadata.annotations };
    const res = await wrap({ ...DEPLOYMENT, name }, () =>
      s.resources.update(
        s.p,
        workloadKind,
        { parent: project, name },
        manifest,
        existing.metadata.generation,
        dryRun,
      ),
    );
    return renderDeployment(s, res.object);
  },
  remove: async (s, ns, name) => {
    const project = await namespaceRequired(ns);
    const w = await readWorkload(s, project, name);
    const shown = await renderDeployment(s, w);
    await wrap({ ...DEPLOYMENT, name }, () => s.resources.remove(s.p, workloadKind, project, name));
    return shown;
  },
  appliedBy: async (s, ns, name, manager) => {
    const w = await readWorkload(s, await namespaceRequired(ns), name);
    const text = w.metadata.annotations?.[`${APPLIED_ANNOTATION_PREFIX}${manager}`];
    return text ? JSON.parse(text) : undefined;
  },
};

/** The scale subresource (autoscaling/v1 Scale) of a Deployment. */
export async function getScale(s: Scope, ns: string, name: string): Promise<KubeObject> {
  const d = await deployments.get(s, ns, name);
  return scaleOf(d);
}

function scaleOf(d: KubeObject): KubeObject {
  return {
    apiVersion: 'autoscaling/v1',
    kind: 'Scale',
    metadata: {
      name: d.metadata.name,
      namespace: d.metadata.namespace,
      uid: d.metadata.uid,
      resourceVersion: d.metadata.resourceVersion,
      creationTimestamp: d.metadata.creationTimestamp,
    },
    spec: { replicas: (d.spec as any).replicas },
    status: {
      replicas: (d.status as any).replicas,
      selector: selectorString((d.spec as any).selector.matchLabels ?? {}),
    },
  };
}

export async function setScale(
  s: Scope,
  ns: string,
  name: string,
  body: unknown,
  dryRun: boolean,
): Promise<KubeObject> {
  const errors = validate(ScaleIn, body);
  if (errors.length) throw invalid({ kind: 'Scale', group: 'autoscaling', name }, errors);
  const replicas = (body as { spec: { replicas: number } }).spec.replicas;
  const w = await readWorkload(s, ns, name);
  const manifest = {
    apiVersion: 'continuum/v1',
    kind: 'Workload',
    metadata: { name, project: ns, labels: w.metadata.labels, annotations: w.metadata.annotations ?? {} },
    spec: { ...w.spec, replicas },
  };
  const res = await wrap({ ...DEPLOYMENT, name }, () =>
    s.resources.update(s.p, workloadKind, { parent: ns, name }, manifest, w.metadata.generation, dryRun),
  );
  return scaleOf(await renderDeployment(s, res.object));
}

/** Log access to a pod's instance (its project's members; provider admins when granted). */
export async function podInstance(s: Scope, ns: string, name: string): Promise<InstanceRecord> {
  const pod = await pods.get(s, ns, name);
  const i = await s.store.getInstance(ns, name);
  if (!i || !(pod.spec as any).nodeName)
    throw new KubeError(
      400,
      'BadRequest',
      `container "${name}" in pod "${name}" is waiting to start: the pod is not placed yet`,
    );
  if (!instanceAccess(s.p, i, undefined).console)
    throw new KubeError(
      403,
      'Forbidden',
      `user "${s.p.user}" cannot get the logs of pods in namespace "${ns}"`,
    );
  return i;
}

// ---- continuum/v1: Continuum's own kinds -------------------------------------------

export const CONTINUUM_GROUP = 'continuum';

/** A Continuum object in Kubernetes' shape: the project is the namespace. */
function continuumObject(def: KindDef, o: ResourceObject): KubeObject {
  const { name, project, provider, uid, generation, labels, annotations, createdAt, updatedAt } = o.metadata;
  return {
    apiVersion: 'continuum/v1',
    kind: def.kind,
    metadata: {
      name,
      ...(project ? { namespace: project } : {}),
      ...(provider ? { provider } : {}),
      uid,
      resourceVersion: versionOf(updatedAt),
      generation,
      creationTimestamp: kubeTime(createdAt)!,
      ...(Object.keys(labels).length ? { labels } : {}),
      ...(annotations && Object.keys(annotations).length ? { annotations } : {}),
    },
    spec: o.spec,
    status: o.status,
  };
}

const SERVER_FIELDS = [
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'managedFields',
  'selfLink',
  'namespace',
  'createdAt',
  'updatedAt',
  'createdBy',
];

/** The Continuum manifest of a Kubernetes-shaped body. */
function continuumManifest(def: KindDef, body: unknown, ns: string | undefined): object {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw invalid({ kind: def.kind, group: CONTINUUM_GROUP }, [{ path: '', message: 'must be an object' }]);
  const b = body as { metadata?: Record<string, unknown>; status?: unknown; [k: string]: unknown };
  const meta = { ...(b.metadata ?? {}) };
  if (def.parent === 'project') {
    if (meta.project !== undefined && ns !== undefined && meta.project !== ns)
      throw invalid({ kind: def.kind, group: CONTINUUM_GROUP, name: String(meta.name) }, [
        { path: 'metadata.project', message: `'${meta.project}' does not match the namespace '${ns}'` },
      ]);
    if (ns) meta.project = ns;
  }
  for (const f of SERVER_FIELDS) delete meta[f];
  const { status: _s, ...rest } = b;
  return { ...rest, metadata: meta };
}

function continuumResource(kind: string, plural: string, shortNames: string[]): KubeResource {
  const def = findKind(kind)!;
  const namespaced = def.parent === 'project';
  const what = (name?: string) => ({
    kind: def.kind,
    group: CONTINUUM_GROUP,
    plural,
    ...(name ? { name } : {}),
  });
  /** Provider-owned objects are named NAME, or PROVIDER.NAME where NAME alone is ambiguous. */
  const locate = async (s: Scope, ns: string | undefined, name: string): Promise<[string, string]> => {
    if (def.parent === 'project') return [await namespaceRequired(ns), name];
    if (def.parent !== 'provider') return ['', name];
    const q = splitQualified(name);
    if (q) return q;
    const matches = (await listAll(s, def)).filter((o) => o.metadata.name === name);
    if (matches.length > 1)
      throw new KubeError(
        409,
        'Conflict',
        `${plural} "${name}" is ambiguous: name it as PROVIDER.${name} (${matches.map((m) => `${m.metadata.provider}.${name}`).join(', ')})`,
      );
    return [matches[0]?.metadata.provider ?? '', name];
  };
  const columns: Column[] = (COLUMNS[def.kind] ?? []).map(([header, value]) => ({
    name: header,
    ...(header === 'NAME' ? { format: 'name' } : {}),
    cell: (o: KubeObject) => value(continuumShape(o)),
  }));
  return {
    group: CONTINUUM_GROUP,
    version: 'v1',
    plural,
    singular: def.kind.toLowerCase(),
    kind: def.kind,
    namespaced,
    shortNames,
    categories: ['continuum'],
    columns,
    list: (s, ns) =>
      wrap(what(), async () =>
        (await listAll(s, def, namespaced ? ns : undefined)).map((o) => continuumObject(def, o)),
      ),
    get: async (s, ns, name) => {
      const [parent, n] = await locate(s, ns, name);
      return wrap(what(name), async () => continuumObject(def, await s.resources.get(s.p, def, parent, n)));
    },
    ...(def.creatable
      ? {
          create: async (s: Scope, ns: string | undefined, body: unknown, dryRun: boolean) => {
            const m = continuumManifest(def, body, ns);
            const name = (m as any).metadata?.name;
            const res = await wrap(what(name), () =>
              s.resources.create(s.p, def, namespaced ? ns : undefined, m, dryRun),
            );
            return continuumObject(def, res.object);
          },
          replace: async (s: Scope, ns: string | undefined, name: string, body: unknown, dryRun: boolean) => {
            const [parent, n] = await locate(s, ns, name);
            const m = continuumManifest(def, body, ns);
            const rv = (body as any)?.metadata?.resourceVersion;
            const res = await wrap(what(name), async () => {
              const current = await s.resources.get(s.p, def, parent, n);
              if (rv && rv !== versionOf(current.metadata.updatedAt))
                throw new Problem(
                  'conflict',
                  `Operation cannot be fulfilled on ${plural}.${CONTINUUM_GROUP} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
                );
              return s.resources.update(
                s.p,
                def,
                { parent: parent || undefined, name: n },
                m,
                current.metadata.generation,
                dryRun,
              );
            });
            return continuumObject(def, res.object);
          },
          remove: async (s: Scope, ns: string | undefined, name: string) => {
            const [parent, n] = await locate(s, ns, name);
            return wrap(what(name), async () =>
              continuumObject(def, await s.resources.remove(s.p, def, parent, n)),
            );
          },
          appliedBy: async (s: Scope, ns: string | undefined, name: string, manager: string) => {
            const [parent, n] = await locate(s, ns, name);
            const o = await wrap(what(name), () => s.resources.get(s.p, def, parent, n));
            const text = o.metadata.annotations?.[`${APPLIED_ANNOTATION_PREFIX}${manager}`];
            return text ? JSON.parse(text) : undefined;
          },
        }
      : {}),
  };
}

/** The Continuum object behind a Kubernetes-shaped one (for the CLI's columns). */
function continuumShape(o: KubeObject) {
  const m = o.metadata;
  return {
    metadata: { ...m, project: m.namespace, createdAt: m.creationTimestamp },
    spec: o.spec,
    status: o.status,
  };
}

/** Instances (replicas of every workload, VMs included), read-only. */
const instances: KubeResource = {
  group: CONTINUUM_GROUP,
  version: 'v1',
  plural: 'instances',
  singular: 'instance',
  kind: 'Instance',
  namespaced: true,
  shortNames: ['inst'],
  categories: ['continuum'],
  columns: [
    nameColumn,
    { name: 'Workload', cell: (o) => (o.spec as any).workload },
    { name: 'Node', cell: (o) => (o.spec as any).node },
    { name: 'Phase', cell: (o) => (o.status as any).phase },
    { name: 'Restarts', type: 'integer', cell: (o) => (o.status as any).restarts },
    ageColumn,
  ],
  list: (s, ns) =>
    wrap({ kind: 'Instance', group: CONTINUUM_GROUP, plural: 'instances' }, async () => {
      const projects = ns ? [ns] : (await listAll(s, projectKind)).map((p) => p.metadata.name);
      const out: KubeObject[] = [];
      for (const project of projects) {
        await s.resources.get(s.p, projectKind, '', project);
        for (const i of await s.store.listInstances({ project })) out.push(instanceObject(i));
      }
      return out;
    }),
  get: async (s, ns, name) => {
    const found = (await instances.list(s, await namespaceRequired(ns))).find(
      (o) => o.metadata.name === name,
    );
    if (!found)
      throw new KubeError(404, 'NotFound', `instances.continuum "${name}" not found`, {
        name,
        kind: 'instances',
      });
    return found;
  },
};

function instanceObject(i: InstanceRecord): KubeObject {
  return {
    apiVersion: 'continuum/v1',
    kind: 'Instance',
    metadata: instanceMeta(i),
    spec: {
      workload: i.workload,
      ordinal: i.ordinal,
      node: `${i.provider}/${i.node}`,
      desired: i.desired,
      vcpus: i.vcpus,
      memoryMiB: i.memoryMiB,
      image: i.spec.image.name,
      ports: i.spec.ports,
    },
    status: i.status,
  };
}

export const CONTINUUM_RESOURCES: KubeResource[] = [
  continuumResource('Provider', 'providers', ['prov']),
  continuumResource('Site', 'sites', []),
  continuumResource('Project', 'projects', ['proj']),
  continuumResource('Workload', 'workloads', ['wl']),
  continuumResource('Image', 'images', ['img']),
  continuumResource('Migration', 'migrations', ['mig']),
  instances,
];

export const RESOURCES: KubeResource[] = [
  namespaces,
  nodes,
  pods,
  events,
  deployments,
  ...CONTINUUM_RESOURCES,
];
