// Figures the pages show, derived from the fleet's objects: per site its nodes, health,
// capacity and what runs there; where each instance runs.
import citiesCsv from '../../data/eu-cities.csv?raw';
import type { Fleet, Obj } from './fleet.js';
import type { SiteMarker } from './map.js';

export interface SiteStats {
  site: Obj;
  key: string;
  nodes: Obj[];
  ready: number;
  suspect: number;
  down: number;
  enrolled: number;
  cpus: number;
  memoryMiB: number;
  usedVcpus: number;
  usedMemoryMiB: number;
  instances: Obj[];
}

export interface Derived {
  sites: Map<string, SiteStats>;
  /** provider/node → site key. */
  siteOfNode: Map<string, string>;
  /** provider/node → instances bound there. */
  instancesOnNode: Map<string, Obj[]>;
}

const cache = new WeakMap<Fleet, { version: number; value: Derived }>();

/** The figures of the fleet as it is now (computed once per version of it). */
export function derive(fleet: Fleet): Derived {
  const hit = cache.get(fleet);
  if (hit?.version === fleet.version) return hit.value;
  const value = compute(fleet);
  cache.set(fleet, { version: fleet.version, value });
  return value;
}

function compute(fleet: Fleet): Derived {
  const sites = new Map<string, SiteStats>();
  for (const s of fleet.objects.Site.values()) {
    const key = `${s.metadata.provider}/${s.metadata.name}`;
    sites.set(key, {
      site: s,
      key,
      nodes: [],
      ready: 0,
      suspect: 0,
      down: 0,
      enrolled: 0,
      cpus: 0,
      memoryMiB: 0,
      usedVcpus: 0,
      usedMemoryMiB: 0,
      instances: [],
    });
  }
  const siteOfNode = new Map<string, string>();
  for (const n of fleet.objects.Node.values()) {
    const nodeKey = `${n.metadata.provider}/${n.metadata.name}`;
    const siteKey = `${n.metadata.provider}/${n.spec.site}`;
    siteOfNode.set(nodeKey, siteKey);
    const st = sites.get(siteKey);
    if (!st) continue;
    st.nodes.push(n);
    const state = n.status?.state as 'ready' | 'suspect' | 'down' | 'enrolled';
    if (state in st) st[state]++;
    st.cpus += n.status?.inventory?.cpus ?? 0;
    st.memoryMiB += n.status?.inventory?.memoryMiB ?? 0;
  }
  const instancesOnNode = new Map<string, Obj[]>();
  for (const i of fleet.objects.Instance.values()) {
    if (i.spec.desired === 'absent') continue;
    const node = i.spec.node as string;
    instancesOnNode.set(node, [...(instancesOnNode.get(node) ?? []), i]);
    const st = sites.get(siteOfNode.get(node) ?? '');
    if (!st) continue;
    st.instances.push(i);
    st.usedVcpus += i.spec.vcpus;
    st.usedMemoryMiB += i.spec.memoryMiB;
  }
  return { sites, siteOfNode, instancesOnNode };
}

export function healthOf(st: SiteStats, seesNodes: boolean): SiteMarker['health'] {
  if (!seesNodes) return 'unknown';
  if (!st.nodes.length) return 'empty';
  if (st.ready === 0) return 'down';
  if (st.suspect || st.down) return 'degraded';
  return 'ready';
}

export const cities: Map<string, { name: string; latitude: number; longitude: number }> = new Map(
  citiesCsv
    .split('\n')
    .slice(1)
    .map((line) => line.split(','))
    .filter((f) => f.length >= 4)
    .map(([name, , lat, lon]) => [
      name!.toLowerCase(),
      { name: name!, latitude: Number(lat), longitude: Number(lon) },
    ]),
);

export function mib(n: number): string {
  return n >= 1024 * 1024
    ? `${(n / 1024 / 1024).toFixed(1)} TiB`
    : n >= 1024
      ? `${(n / 1024).toFixed(1)} GiB`
      : `${n} MiB`;
}

export function ago(iso: string | undefined): string {
  if (!iso) return '—';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}
