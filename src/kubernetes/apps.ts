// apps/v1 Deployments as Continuum's container workloads, with their scale subresource,
// and the instance behind a pod's logs.
import { instanceAccess } from '../auth/index.js';
import { type ResourceObject, validate, workloadKind } from '../model/index.js';
import type { InstanceRecord } from '../store/index.js';
import { pods } from './core.js';
import {
  APPLIED_ANNOTATION_PREFIX,
  type DeploymentInput,
  SPEC_ANNOTATION,
  selectorString,
  storedSpec,
  workloadOf,
} from './deployments.js';
import {
  ageColumn,
  containerWorkloads,
  invalid,
  KubeError,
  type KubeResource,
  nameColumn,
  namespaceRequired,
  type Scope,
  wrap,
} from './kube-resource.js';
import { deploymentOf, type KubeObject, versionOf } from './objects.js';
import { DeploymentIn, ScaleIn } from './schemas.js';

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
