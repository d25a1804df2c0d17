import { nodeKind, Problem, projectKind, type ResourceObject, siteKind } from '../model/index.js';
import { splitQualified } from './deployments.js';
import {
  ageColumn,
  containerWorkloads,
  humanAge,
  KubeError,
  type KubeResource,
  listAll,
  nameColumn,
  namespaceRequired,
  type Scope,
  wrap,
} from './kube-resource.js';
import {
  eventOf,
  type KubeObject,
  namespaceOf,
  nodeOf,
  nodeStatusWord,
  podStatusWord,
  podsOf,
  schedulingEvents,
} from './objects.js';

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
