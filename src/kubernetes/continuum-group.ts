import { COLUMNS } from '../cli/columns.js';
import { findKind, type KindDef, Problem, projectKind, type ResourceObject } from '../model/index.js';
import type { InstanceRecord } from '../store/index.js';
import { APPLIED_ANNOTATION_PREFIX, splitQualified } from './deployments.js';
import {
  ageColumn,
  type Column,
  invalid,
  KubeError,
  type KubeResource,
  listAll,
  nameColumn,
  namespaceRequired,
  type Scope,
  wrap,
} from './kube-resource.js';
import { instanceMeta, type KubeObject, kubeTime, versionOf } from './objects.js';

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
