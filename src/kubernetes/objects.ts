// Continuum's objects as Kubernetes objects: projects as Namespaces, nodes as Nodes,
// instances of container workloads as Pods (replicas not placed yet as Pending pods
// that carry the scheduler's reasons), audit events and placement failures as Events.
import type { ResourceObject, WorkloadSpec } from '../model/index.js';
import { REASONS } from '../scheduler/reasons.js';
import type { AuditEvent, InstanceRecord } from '../store/index.js';
import {
  ARCH_TO_KUBERNETES,
  deploymentStatus,
  LABEL_HOSTNAME,
  LABEL_PROVIDER,
  LABEL_REGION,
  LABEL_WORKLOAD,
  LABEL_ZONE,
  nodeNameOf,
  storedSpec,
  templateOf,
  visibleAnnotations,
  zoneOf,
} from './deployments.js';

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
};

/** RFC 3339 to the second, as Kubernetes writes times. */
export const kubeTime = (iso: string | undefined) => (iso ? `${iso.slice(0, 19)}Z` : undefined);
/** A resource version that changes with every write of the row. */
export const versionOf = (updatedAt: string) => String(Date.parse(updatedAt) || 0);

/** The metadata every rendering of an instance shares (as a Pod, as a Continuum Instance). */
export function instanceMeta(i: InstanceRecord) {
  return {
    name: i.name,
    namespace: i.project,
    uid: i.uid,
    resourceVersion: versionOf(i.updatedAt),
    creationTimestamp: kubeTime(i.createdAt)!,
  };
}

export function namespaceOf(p: ResourceObject): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: p.metadata.name,
      uid: p.metadata.uid,
      resourceVersion: versionOf(p.metadata.updatedAt),
      creationTimestamp: kubeTime(p.metadata.createdAt)!,
      labels: { 'kubernetes.io/metadata.name': p.metadata.name, ...p.metadata.labels },
    },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

export interface Place {
  site?: ResourceObject;
}

const NODE_READY: Record<string, [string, string, string]> = {
  ready: ['True', 'AgentReady', 'the agent heartbeats'],
  suspect: ['Unknown', 'AgentSuspect', 'the agent missed heartbeats'],
  down: ['False', 'AgentDown', 'the agent is silent; its replicas are re-placed'],
  enrolled: ['Unknown', 'AgentNotConnected', 'enrolled; its agent has not reported yet'],
};

export function nodeOf(n: ResourceObject, site: ResourceObject | undefined): KubeObject {
  const provider = n.metadata.provider!;
  const inv = (n.status.inventory ?? {}) as {
    hostname?: string;
    architecture?: string;
    cpus?: number;
    memoryMiB?: number;
    diskGiB?: number;
    containers?: boolean;
  };
  const name = nodeNameOf(provider, n.metadata.name);
  const [ready, reason, message] = NODE_READY[n.status.state] ?? NODE_READY.enrolled!;
  const cordoned = !!(n.spec.unschedulable || n.spec.drain);
  const arch = ARCH_TO_KUBERNETES[inv.architecture ?? 'x86_64'] ?? inv.architecture ?? 'amd64';
  const capacity = {
    cpu: String(inv.cpus ?? 0),
    memory: `${inv.memoryMiB ?? 0}Mi`,
    'ephemeral-storage': `${inv.diskGiB ?? 0}Gi`,
    pods: '110',
  };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      uid: n.metadata.uid,
      resourceVersion: versionOf(n.metadata.updatedAt),
      creationTimestamp: kubeTime(n.metadata.createdAt)!,
      labels: {
        ...n.metadata.labels,
        ...(site ? { [LABEL_REGION]: site.spec.country, 'continuum.eu/tier': site.spec.tier } : {}),
        [LABEL_ZONE]: zoneOf(provider, n.spec.site),
        [LABEL_PROVIDER]: provider,
        'continuum.eu/site': n.spec.site,
        [LABEL_HOSTNAME]: name,
        'kubernetes.io/arch': arch,
        'kubernetes.io/os': 'linux',
        'continuum.eu/containers': inv.containers ? 'true' : 'false',
      },
    },
    spec: {
      ...(cordoned
        ? {
            unschedulable: true,
            taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }],
          }
        : {}),
    },
    status: {
      capacity,
      allocatable: capacity,
      conditions: [
        {
          type: 'Ready',
          status: ready,
          reason,
          message,
          lastHeartbeatTime: kubeTime(n.status.lastHeartbeat) ?? null,
          lastTransitionTime: kubeTime(n.status.lastHeartbeat ?? n.metadata.updatedAt),
        },
      ],
      addresses: inv.hostname ? [{ type: 'Hostname', address: inv.hostname }] : [],
      nodeInfo: {
        architecture: arch,
        operatingSystem: 'linux',
        osImage: 'Continuum node',
        kernelVersion: '',
        kubeletVersion: 'continuum-agent',
        kubeProxyVersion: '',
        containerRuntimeVersion: inv.containers ? 'runc' : 'qemu (VMs only)',
        machineID: '',
        systemUUID: '',
        bootID: '',
      },
    },
  };
}

export function nodeStatusWord(node: KubeObject): string {
  const ready = (node.status as any).conditions[0].status;
  const word = ready === 'True' ? 'Ready' : ready === 'False' ? 'NotReady' : 'Unknown';
  return (node.spec as any).unschedulable ? `${word},SchedulingDisabled` : word;
}

export function deploymentOf(w: ResourceObject, instances: readonly InstanceRecord[]): KubeObject {
  const spec = w.spec as WorkloadSpec;
  const template = templateOf(w);
  const annotations = visibleAnnotations(w.metadata.annotations);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: w.metadata.name,
      namespace: w.metadata.project!,
      uid: w.metadata.uid,
      resourceVersion: versionOf(w.metadata.updatedAt),
      generation: w.metadata.generation,
      creationTimestamp: kubeTime(w.metadata.createdAt)!,
      ...(Object.keys(w.metadata.labels).length ? { labels: w.metadata.labels } : {}),
      ...(annotations ? { annotations } : {}),
    },
    spec: { ...templateSpec(w, template), replicas: spec.replicas },
    status: deploymentStatus(w, instances),
  };
}

function templateSpec(w: ResourceObject, template: ReturnType<typeof templateOf>) {
  const { template: _t, ...rest } = storedSpec(w);
  return { ...rest, template };
}

const POD_PHASE: Record<string, string> = {
  Pending: 'Pending',
  Creating: 'Pending',
  Running: 'Running',
  Stopped: 'Succeeded',
  Failed: 'Failed',
  Deleting: 'Running',
};

/** The scheduler's explanation in Kubernetes' words: "0/12 nodes are available: 8 country not allowed, …". */
export function unschedulableMessage(w: ResourceObject): string {
  const pl = w.status?.placement as
    | {
        message?: string;
        explanation?: {
          nodesEvaluated: number;
          feasible: number;
          filtered: Record<string, number>;
          exhausted: Record<string, number>;
        };
      }
    | undefined;
  const e = pl?.explanation;
  if (!e) return pl?.message ?? w.status?.message ?? 'waiting for the scheduler';
  // As the Kubernetes scheduler says it, with the dimension a full node lacked.
  const parts: string[] = [];
  for (const [reason, n] of Object.entries(e.filtered))
    if (reason !== REASONS.resources || !Object.keys(e.exhausted).length) parts.push(`${n} ${reason}`);
  for (const [dim, n] of Object.entries(e.exhausted)) parts.push(`${n} insufficient ${dim}`);
  return `${e.feasible}/${e.nodesEvaluated} nodes are available${parts.length ? `: ${parts.join(', ')}` : ''}`;
}

/** The pods of a container workload: its instances, and Pending pods for replicas not placed. */
export function podsOf(w: ResourceObject, instances: readonly InstanceRecord[]): KubeObject[] {
  const spec = w.spec as WorkloadSpec;
  const template = templateOf(w);
  const labels = { ...template.metadata?.labels, [LABEL_WORKLOAD]: w.metadata.name };
  const owner = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    name: w.metadata.name,
    uid: w.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
  const container = template.spec.containers[0]!;
  const out: KubeObject[] = [];
  const placed = new Set<number>();
  for (const i of instances) {
    if (i.desired !== 'absent') placed.add(i.ordinal);
    const phase = POD_PHASE[i.status.phase] ?? 'Unknown';
    const running = i.status.phase === 'Running';
    const address = i.status.ports[0]?.address;
    const state = running
      ? { running: { startedAt: kubeTime(i.status.startedAt) ?? kubeTime(i.updatedAt) } }
      : i.status.phase === 'Stopped' || i.status.phase === 'Failed'
        ? {
            terminated: {
              exitCode: i.status.phase === 'Failed' ? 1 : 0,
              reason: i.status.phase,
              ...(i.status.message ? { message: i.status.message } : {}),
            },
          }
        : {
            waiting: {
              reason: 'ContainerCreating',
              ...(i.status.message ? { message: i.status.message } : {}),
            },
          };
    const cond = (type: string, ok: boolean) => ({
      type,
      status: ok ? 'True' : 'False',
      lastTransitionTime: kubeTime(i.updatedAt),
    });
    out.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        ...instanceMeta(i),
        labels: { ...labels, [LABEL_PROVIDER]: i.provider },
        ownerReferences: [owner],
        ...(i.desired === 'absent'
          ? { deletionTimestamp: kubeTime(i.updatedAt), deletionGracePeriodSeconds: 5 }
          : {}),
      },
      spec: {
        ...template.spec,
        nodeName: nodeNameOf(i.provider, i.node),
        containers: [
          {
            ...container,
            image: i.spec.image.name,
            ...(container.ports
              ? {
                  ports: container.ports.map((p) => {
                    const fwd = i.status.ports.find((f) => f.guest === p.containerPort);
                    return fwd ? { ...p, hostPort: fwd.host } : p;
                  }),
                }
              : {}),
          },
        ],
        restartPolicy: 'Always',
      },
      status: {
        phase,
        conditions: [
          cond('PodScheduled', true),
          cond('Initialized', true),
          cond('ContainersReady', running),
          cond('Ready', running),
        ],
        ...(address ? { hostIP: address, podIP: address, podIPs: [{ ip: address }] } : {}),
        ...(i.status.startedAt ? { startTime: kubeTime(i.status.startedAt) } : {}),
        containerStatuses: [
          {
            name: container.name,
            image: i.spec.image.name,
            imageID: '',
            ready: running,
            started: running,
            restartCount: i.status.restarts,
            state,
          },
        ],
        ...(i.status.message ? { message: i.status.message } : {}),
      },
    });
  }
  const message = unschedulableMessage(w);
  for (let ordinal = 0; ordinal < spec.replicas; ordinal++) {
    if (placed.has(ordinal)) continue;
    const attempted = kubeTime(w.status?.placement?.attemptedAt ?? w.metadata.updatedAt);
    out.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${w.metadata.name}-${ordinal}`,
        namespace: w.metadata.project!,
        uid: pendingUid(w, ordinal),
        resourceVersion: versionOf(w.metadata.updatedAt),
        creationTimestamp: kubeTime(w.metadata.createdAt)!,
        labels,
        ownerReferences: [owner],
      },
      spec: { ...template.spec, containers: [container], restartPolicy: 'Always' },
      status: {
        phase: 'Pending',
        conditions: [
          {
            type: 'PodScheduled',
            status: 'False',
            reason: 'Unschedulable',
            message,
            lastTransitionTime: attempted,
          },
        ],
      },
    });
  }
  return out.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name, 'en', { numeric: true }));
}

const pendingUid = (w: ResourceObject, ordinal: number) => `${w.metadata.uid}-pending-${ordinal}`;

/** What `kubectl get pods` shows in STATUS. */
export function podStatusWord(pod: KubeObject): string {
  if (pod.metadata.deletionTimestamp) return 'Terminating';
  const s = pod.status as any;
  const c = s.containerStatuses?.[0];
  if (c?.state?.waiting) return c.state.waiting.reason;
  if (c?.state?.terminated) return c.state.terminated.reason;
  return s.phase;
}

const INSTANCE_REASONS: Record<string, [string, string]> = {
  create: ['Scheduled', 'Normal'],
  delete: ['Killing', 'Normal'],
  start: ['Started', 'Normal'],
  stop: ['Stopped', 'Normal'],
  reboot: ['Rebooted', 'Normal'],
  migrate: ['Migrating', 'Normal'],
  update: ['Updated', 'Normal'],
};

/** Audit events of a project as Kubernetes Events (instances as Pods, workloads as Deployments). */
export function eventOf(e: AuditEvent, project: string): KubeObject | undefined {
  const after = (e.after ?? {}) as any;
  const before = (e.before ?? {}) as any;
  let kind: string;
  let reason: string;
  let type = 'Normal';
  let message: string;
  if (e.kind === 'Instance') {
    kind = 'Pod';
    [reason, type] = INSTANCE_REASONS[e.action] ?? [e.action[0]!.toUpperCase() + e.action.slice(1), 'Normal'];
    const where = after.provider
      ? nodeNameOf(after.provider, after.node)
      : before.provider
        ? nodeNameOf(before.provider, before.node)
        : '';
    message =
      e.action === 'create'
        ? `Successfully assigned ${project}/${e.name} to ${where}`
        : e.action === 'delete'
          ? `Stopping ${e.name} on ${where}`
          : `${e.action} by ${e.actor}${where ? ` on ${where}` : ''}`;
  } else if (e.kind === 'Workload') {
    kind = 'Deployment';
    reason = e.action === 'create' ? 'Created' : e.action === 'delete' ? 'Deleted' : 'Updated';
    message = `${reason.toLowerCase()} by ${e.actor}`;
    if (e.action === 'update' && before.spec?.replicas !== after.spec?.replicas)
      message = `scaled from ${before.spec?.replicas} to ${after.spec?.replicas} replicas by ${e.actor}`;
  } else return undefined;
  const time = kubeTime(e.time);
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: {
      name: `${e.name}.${e.seq}`,
      namespace: project,
      uid: `event-${e.seq}`,
      resourceVersion: String(e.seq),
      creationTimestamp: time!,
    },
    involvedObject: {
      kind,
      namespace: project,
      name: e.name,
      apiVersion: kind === 'Pod' ? 'v1' : 'apps/v1',
      ...(after.uid ? { uid: after.uid } : {}),
    },
    reason,
    message,
    type,
    source: { component: 'continuum' },
    firstTimestamp: time,
    lastTimestamp: time,
    count: 1,
    reportingComponent: 'continuum',
  };
}

/** A Warning for each pending pod, with the scheduler's reasons (as the Kubernetes scheduler reports). */
export function schedulingEvents(pods: readonly KubeObject[]): KubeObject[] {
  const out: KubeObject[] = [];
  for (const p of pods) {
    const c = (p.status as any).conditions?.[0];
    if (c?.type !== 'PodScheduled' || c.status !== 'False') continue;
    out.push({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        name: `${p.metadata.name}.failedscheduling`,
        namespace: p.metadata.namespace!,
        uid: `${p.metadata.uid}-failedscheduling`,
        resourceVersion: p.metadata.resourceVersion!,
        creationTimestamp: c.lastTransitionTime,
      },
      involvedObject: {
        kind: 'Pod',
        namespace: p.metadata.namespace,
        name: p.metadata.name,
        uid: p.metadata.uid,
        apiVersion: 'v1',
      },
      reason: 'FailedScheduling',
      message: c.message,
      type: 'Warning',
      source: { component: 'continuum-scheduler' },
      firstTimestamp: c.lastTransitionTime,
      lastTimestamp: c.lastTransitionTime,
      count: 1,
      reportingComponent: 'continuum-scheduler',
    });
  }
  return out;
}
