// apps/v1 Deployments are Continuum container workloads. A Deployment is turned into a
// workload (image, replicas, resources, command, env, ports, and a placement policy
// from nodeSelector, node affinity and the continuum.eu/placement annotation); what
// Kubernetes has and Continuum does not need (selector, template labels, the
// container's name, quantities as written) is kept in an annotation, so the same
// Deployment is served back. A workload made with `continuum apply` is served as a
// Deployment too.
import YAML from 'yaml';
import {
  NAME_PATTERN,
  Placement,
  type PlacementPolicy,
  type ResourceObject,
  validate,
  type WorkloadSpec,
} from '../model/index.js';
import type { FieldError } from '../model/problem.js';
import type { InstanceRecord } from '../store/index.js';
import { mebibytesOf, vcpusOf } from './quantity.js';
import type { ContainerSpec, DeploymentSpec, NodeSelectorTermSpec } from './schemas.js';

export const LABEL_REGION = 'topology.kubernetes.io/region';
export const LABEL_ZONE = 'topology.kubernetes.io/zone';
export const LABEL_HOSTNAME = 'kubernetes.io/hostname';
export const LABEL_PROVIDER = 'continuum.eu/provider';
export const LABEL_WORKLOAD = 'continuum.eu/workload';
export const PLACEMENT_ANNOTATION = 'continuum.eu/placement';
/** Internal: the Deployment's spec as written (Continuum's view keeps it as an annotation). */
export const SPEC_ANNOTATION = 'continuum.eu/kubernetes-spec';
/** Internal: a server-side apply manager's last configuration. */
export const APPLIED_ANNOTATION_PREFIX = 'continuum.eu/applied-by-';

const DEFAULT_MEMORY_MIB = 128;
const ARCH_TO_CONTINUUM: Record<string, string> = { amd64: 'x86_64', arm64: 'aarch64', riscv64: 'riscv64' };
export const ARCH_TO_KUBERNETES: Record<string, string> = {
  x86_64: 'amd64',
  aarch64: 'arm64',
  riscv64: 'riscv64',
};
const NAME = new RegExp(NAME_PATTERN);

/** Kubernetes names of Continuum things that are unique only within a provider. */
export const nodeNameOf = (provider: string, node: string) => `${provider}.${node}`;
export const zoneOf = (provider: string, site: string) => `${provider}.${site}`;
export function splitQualified(name: string): [string, string] | undefined {
  const i = name.indexOf('.');
  if (i <= 0) return undefined;
  const a = name.slice(0, i);
  const b = name.slice(i + 1);
  return NAME.test(a) && NAME.test(b) ? [a, b] : undefined;
}

export interface DeploymentInput {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: DeploymentSpec;
}

/** The workload manifest a Deployment stands for, or what is wrong with it (Kubernetes paths). */
export function workloadOf(
  dep: DeploymentInput,
  project: string,
): { manifest: object; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const spec = dep.spec;
  const pod = spec.template.spec;
  const containers = pod.containers;
  if (containers.length !== 1)
    errors.push({
      path: 'spec.template.spec.containers',
      message: `Continuum runs one container per pod; ${containers.length} given`,
    });
  const c = containers[0]!;
  const cpath = 'spec.template.spec.containers[0]';
  if (!NAME.test(c.image))
    errors.push({
      path: `${cpath}.image`,
      message: `'${c.image}' is not an image name of the project: images come from Continuum's image store (continuum image import), named with lower-case letters, digits and dashes`,
    });
  const selector = spec.selector.matchLabels ?? {};
  const podLabels = spec.template.metadata?.labels ?? {};
  if (!Object.keys(selector).length)
    errors.push({ path: 'spec.selector', message: 'Required value: give matchLabels' });
  else if (!Object.entries(selector).every(([k, v]) => podLabels[k] === v))
    errors.push({
      path: 'spec.template.metadata.labels',
      message: `Invalid value: ${JSON.stringify(podLabels)}: selector does not match template labels`,
    });

  const resources = resourcesOf(c, `${cpath}.resources`, errors);
  const ports: NonNullable<WorkloadSpec['ports']> = [];
  for (const [i, p] of (c.ports ?? []).entries()) {
    if (p.name !== undefined && !NAME.test(p.name))
      errors.push({
        path: `${cpath}.ports[${i}].name`,
        message: `'${p.name}' must be lower-case letters, digits and dashes`,
      });
    ports.push({
      guest: p.containerPort,
      ...(p.protocol ? { protocol: p.protocol === 'UDP' ? 'udp' : 'tcp' } : {}),
      ...(p.name !== undefined && NAME.test(p.name) ? { name: p.name } : {}),
    });
  }
  const env: Record<string, string> = {};
  for (const [i, e] of (c.env ?? []).entries()) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(e.name))
      errors.push({ path: `${cpath}.env[${i}].name`, message: `'${e.name}' is not a valid variable name` });
    env[e.name] = e.value ?? '';
  }
  const placement = placementOf(dep, errors);

  const annotations = { ...(dep.metadata.annotations ?? {}) };
  const { replicas: _r, ...kept } = spec;
  annotations[SPEC_ANNOTATION] = JSON.stringify(kept);
  const workload: WorkloadSpec = {
    kind: 'container',
    image: c.image,
    replicas: spec.replicas ?? 1,
    resources,
    container: {
      ...(c.command ? { command: c.command } : {}),
      ...(c.args ? { args: c.args } : {}),
      ...(Object.keys(env).length ? { env } : {}),
      restart: 'always',
    },
    ...(ports.length ? { ports } : {}),
    ...(placement && Object.keys(placement).length ? { placement } : {}),
  };
  return {
    manifest: {
      apiVersion: 'continuum/v1',
      kind: 'Workload',
      metadata: {
        name: dep.metadata.name,
        project,
        labels: dep.metadata.labels ?? {},
        annotations,
      },
      spec: workload,
    },
    errors,
  };
}

function resourcesOf(c: ContainerSpec, path: string, errors: FieldError[]): WorkloadSpec['resources'] {
  const pick = (k: 'cpu' | 'memory') => {
    const limits = c.resources?.limits?.[k];
    return limits !== undefined
      ? { q: limits, at: `${path}.limits.${k}` }
      : c.resources?.requests?.[k] !== undefined
        ? { q: c.resources.requests[k]!, at: `${path}.requests.${k}` }
        : undefined;
  };
  const cpu = pick('cpu');
  const mem = pick('memory');
  let vcpus = 1;
  let memoryMiB = DEFAULT_MEMORY_MIB;
  if (cpu) {
    const v = vcpusOf(cpu.q);
    if (v === undefined)
      errors.push({ path: cpu.at, message: `'${cpu.q}' is not a CPU quantity (e.g. 500m, 2)` });
    else vcpus = v;
  }
  if (mem) {
    const v = mebibytesOf(mem.q);
    if (v === undefined)
      errors.push({ path: mem.at, message: `'${mem.q}' is not a memory quantity (e.g. 64Mi, 1Gi)` });
    else if (v < 16) errors.push({ path: mem.at, message: `${mem.q} is below Continuum's minimum of 16Mi` });
    else memoryMiB = v;
  }
  return { vcpus, memoryMiB };
}

/** The placement policy: the annotation's, with nodeSelector and node affinity added. */
function placementOf(dep: DeploymentInput, errors: FieldError[]): PlacementPolicy | undefined {
  const apath = `metadata.annotations[${PLACEMENT_ANNOTATION}]`;
  let policy: PlacementPolicy = {};
  const text = dep.metadata.annotations?.[PLACEMENT_ANNOTATION];
  if (text !== undefined) {
    let parsed: unknown;
    try {
      parsed = YAML.parse(text);
    } catch (err) {
      errors.push({ path: apath, message: `is not YAML or JSON: ${(err as Error).message.split('\n')[0]}` });
    }
    const found = validate(Placement, parsed ?? {}, apath);
    if (found.length) errors.push(...found);
    else policy = (parsed ?? {}) as PlacementPolicy;
  }
  const fromAnnotation = new Set(Object.keys(policy));
  const set = <K extends keyof PlacementPolicy>(key: K, value: PlacementPolicy[K], path: string) => {
    if (fromAnnotation.has(key)) {
      errors.push({
        path,
        message: `sets placement.${key}, which the ${PLACEMENT_ANNOTATION} annotation sets too; say it in one place`,
      });
      return;
    }
    policy[key] = value;
  };
  const pod = dep.spec.template.spec;
  const requirement = (key: string, op: string, values: string[], path: string) => {
    const vals = [...new Set(values)];
    if (op !== 'In' && !(op === 'NotIn' && key === LABEL_PROVIDER)) {
      errors.push({
        path,
        message: `${op} on ${key} is not supported (In on ${LABEL_REGION}, ${LABEL_ZONE}, ${LABEL_PROVIDER}, ${LABEL_HOSTNAME} or a node label; NotIn on ${LABEL_PROVIDER}); the ${PLACEMENT_ANNOTATION} annotation takes any Continuum placement rule`,
      });
      return;
    }
    if (!vals.length) {
      errors.push({ path, message: 'Required value: values' });
      return;
    }
    switch (key) {
      case LABEL_REGION:
        set('countries', [...new Set([...(policy.countries ?? []), ...vals])], path);
        return;
      case LABEL_ZONE: {
        const sites: string[] = [];
        for (const v of vals) {
          const s = splitQualified(v);
          if (!s) errors.push({ path, message: `zone '${v}' is not PROVIDER.SITE` });
          else sites.push(`${s[0]}/${s[1]}`);
        }
        set('sites', sites, path);
        return;
      }
      case LABEL_PROVIDER:
        if (op === 'NotIn') set('providers', { ...policy.providers, deny: vals }, path);
        else set('providers', { ...policy.providers, allow: vals }, path);
        return;
      case LABEL_HOSTNAME: {
        const n = vals.length === 1 ? splitQualified(vals[0]!) : undefined;
        if (!n) errors.push({ path, message: `give one node, as PROVIDER.NODE (got ${vals.join(', ')})` });
        else set('node', `${n[0]}/${n[1]}`, path);
        return;
      }
      case 'kubernetes.io/arch': {
        const a = vals.length === 1 ? ARCH_TO_CONTINUUM[vals[0]!] : undefined;
        if (!a) errors.push({ path, message: `give one of ${Object.keys(ARCH_TO_CONTINUUM).join(', ')}` });
        else set('architecture', a as PlacementPolicy['architecture'], path);
        return;
      }
      case 'kubernetes.io/os':
        if (vals.some((v) => v !== 'linux'))
          errors.push({ path, message: 'every Continuum node runs linux' });
        return;
      default:
        if (vals.length !== 1) {
          errors.push({ path, message: `node labels match one value (got ${vals.length})` });
          return;
        }
        policy.nodeSelector = { ...policy.nodeSelector, [key]: vals[0]! };
    }
  };
  for (const [k, v] of Object.entries(pod.nodeSelector ?? {}))
    requirement(k, 'In', [v], `spec.template.spec.nodeSelector[${k}]`);
  const na = pod.affinity?.nodeAffinity;
  if (na?.preferredDuringSchedulingIgnoredDuringExecution?.length)
    errors.push({
      path: 'spec.template.spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution',
      message: `is not supported: preferences are the weights (latency, cost, carbon) of the ${PLACEMENT_ANNOTATION} annotation`,
    });
  const terms: NodeSelectorTermSpec[] =
    na?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  const tpath =
    'spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms';
  if (terms.length > 1)
    errors.push({
      path: tpath,
      message: `Continuum takes one term (terms are alternatives); ${terms.length} given`,
    });
  for (const [i, term] of terms.slice(0, 1).entries()) {
    if (term.matchFields?.length)
      errors.push({ path: `${tpath}[${i}].matchFields`, message: 'is not supported; use matchExpressions' });
    for (const [j, e] of (term.matchExpressions ?? []).entries())
      requirement(e.key, e.operator, e.values ?? [], `${tpath}[${i}].matchExpressions[${j}]`);
  }
  return policy;
}

/** A Deployment's spec without its replicas (the workload has them). */
export type StoredSpec = Pick<DeploymentSpec, 'selector' | 'template'> & Record<string, unknown>;

/** The Deployment spec as written, from the annotation, or one made for a workload made elsewhere. */
export function storedSpec(w: ResourceObject): StoredSpec {
  const text = w.metadata.annotations?.[SPEC_ANNOTATION];
  if (text) {
    try {
      return JSON.parse(text);
    } catch {}
  }
  return {
    selector: { matchLabels: { [LABEL_WORKLOAD]: w.metadata.name } },
    template: {
      metadata: { labels: { [LABEL_WORKLOAD]: w.metadata.name } },
      spec: { containers: [{ name: w.metadata.name, image: w.spec.image }] },
    },
  };
}

/** What a Kubernetes client sees of annotations: the internal ones are left out. */
export function visibleAnnotations(
  a: Record<string, string> | undefined,
): Record<string, string> | undefined {
  if (!a) return undefined;
  const out = Object.fromEntries(
    Object.entries(a).filter(([k]) => k !== SPEC_ANNOTATION && !k.startsWith(APPLIED_ANNOTATION_PREFIX)),
  );
  return Object.keys(out).length ? out : undefined;
}

/** The Deployment's pod template as the workload says it is now. */
export function templateOf(w: ResourceObject): DeploymentSpec['template'] {
  const spec = w.spec as WorkloadSpec;
  const stored = storedSpec(w).template;
  const c0 = stored.spec.containers[0] ?? { name: w.metadata.name, image: spec.image };
  const container: ContainerSpec = { ...c0, image: spec.image };
  const cc = spec.container ?? {};
  if (cc.command) container.command = cc.command;
  else delete container.command;
  if (cc.args) container.args = cc.args;
  else delete container.args;
  if (cc.env && Object.keys(cc.env).length) {
    const before = new Map((c0.env ?? []).map((e) => [e.name, e]));
    container.env = Object.entries(cc.env).map(([name, value]) =>
      before.get(name)?.value === value || (value === '' && before.has(name))
        ? before.get(name)!
        : { name, value },
    );
  } else delete container.env;
  if (spec.ports?.length)
    container.ports = spec.ports.map((p) => ({
      containerPort: p.guest,
      protocol: p.protocol === 'udp' ? 'UDP' : 'TCP',
      ...(p.name ? { name: p.name } : {}),
    }));
  else delete container.ports;
  // The quantities as written while they still say what the workload has.
  const r = c0.resources;
  const cpuQ = r?.limits?.cpu ?? r?.requests?.cpu;
  const memQ = r?.limits?.memory ?? r?.requests?.memory;
  const cpuSame = cpuQ === undefined ? spec.resources.vcpus === 1 : vcpusOf(cpuQ) === spec.resources.vcpus;
  const memSame =
    memQ === undefined
      ? spec.resources.memoryMiB === DEFAULT_MEMORY_MIB
      : mebibytesOf(memQ) === spec.resources.memoryMiB;
  if (!cpuSame || !memSame)
    container.resources = {
      limits: { cpu: String(spec.resources.vcpus), memory: `${spec.resources.memoryMiB}Mi` },
    };
  return {
    ...stored,
    spec: { ...stored.spec, containers: [container] },
  };
}

/** A Deployment's status from its workload and instances. */
export function deploymentStatus(w: ResourceObject, instances: readonly InstanceRecord[]) {
  const spec = w.spec as WorkloadSpec;
  const live = instances.filter((i) => i.desired !== 'absent');
  const current = live.filter((i) => i.ordinal < spec.replicas && isCurrent(i, spec));
  const ready = live.filter((i) => i.status.phase === 'Running');
  const available = current.filter((i) => i.status.phase === 'Running');
  const complete = available.length >= spec.replicas && live.length === spec.replicas;
  const message = w.status?.placement?.message ?? w.status?.message;
  const now = `${w.metadata.updatedAt.slice(0, 19)}Z`;
  return {
    observedGeneration: w.status?.observedGeneration ?? 0,
    replicas: live.length,
    updatedReplicas: current.length,
    readyReplicas: ready.length,
    availableReplicas: available.length,
    ...(spec.replicas - available.length > 0
      ? { unavailableReplicas: spec.replicas - available.length }
      : {}),
    conditions: [
      {
        type: 'Available',
        status: available.length >= spec.replicas ? 'True' : 'False',
        reason: available.length >= spec.replicas ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
        message:
          available.length >= spec.replicas
            ? 'Deployment has minimum availability.'
            : `${available.length} of ${spec.replicas} replicas are running${message ? `: ${message}` : ''}`,
        lastUpdateTime: now,
        lastTransitionTime: now,
      },
      {
        type: 'Progressing',
        status: 'True',
        reason: complete ? 'NewReplicaSetAvailable' : 'ReplicaSetUpdated',
        message: complete
          ? `Deployment "${w.metadata.name}" has successfully progressed.`
          : `Deployment "${w.metadata.name}" is progressing${message ? `: ${message}` : ''}`,
        lastUpdateTime: now,
        lastTransitionTime: now,
      },
    ],
  };
}

/** An instance runs what the workload asks for now (image, size, command, ports). */
function isCurrent(i: InstanceRecord, spec: WorkloadSpec): boolean {
  return (
    i.spec.image.name === spec.image &&
    i.vcpus === spec.resources.vcpus &&
    i.memoryMiB === spec.resources.memoryMiB &&
    JSON.stringify(i.spec.container ?? {}) === JSON.stringify(spec.container ?? {})
  );
}

/** `app=web,tier=front` for a selector. */
export function selectorString(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
