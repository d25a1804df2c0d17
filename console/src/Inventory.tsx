// Providers (with their sovereignty record), sites, nodes (state, inventory, CPU and
// memory sparkline from heartbeats) and projects (quotas and usage), each a virtualised,
// sortable, filterable table.
import { useCallback, useEffect, useRef, useState } from 'react';
import { useFleet } from './App.js';
import { ago, derive, mib } from './derive.js';
import type { Fleet, Obj } from './fleet.js';
import { NodeActions, NodeDrain } from './Nodes.js';
import { type Column, Sparkline, VirtualTable } from './table.js';

type Samples = readonly (readonly [number, number, number])[];

export function Inventory({ fleet, tab }: { fleet: Fleet; tab: string }) {
  useFleet(fleet);
  const d = derive(fleet);
  const tabs = [
    ['providers', 'Providers'],
    ['sites', 'Sites'],
    ...(fleet.seesNodes ? [['nodes', 'Nodes']] : []),
    ['projects', 'Projects'],
  ];
  return (
    <div className="inventory">
      <nav className="tabs" aria-label="Inventory">
        {tabs.map(([id, label]) => (
          <a key={id} href={`#/inventory/${id}`} aria-current={tab === id ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {tab === 'providers' && <Providers fleet={fleet} />}
      {tab === 'sites' && (
        <VirtualTable
          label="sites"
          rows={[...d.sites.values()]}
          rowKey={(r) => r.key}
          columns={[
            { key: 'name', label: 'Site', value: (r) => r.key },
            { key: 'country', label: 'Country', value: (r) => r.site.spec.country, width: '6em' },
            { key: 'tier', label: 'Tier', value: (r) => r.site.spec.tier, width: '7em' },
            { key: 'carbon', label: 'gCO₂/kWh', value: (r) => r.site.spec.carbonIntensity, width: '7em' },
            {
              key: 'price',
              label: '€/vCPU-h',
              value: (r) => r.site.spec.prices?.vcpuHour ?? '',
              width: '7em',
            },
            ...(fleet.seesNodes
              ? [
                  { key: 'nodes', label: 'Nodes', value: (r: any) => r.nodes.length, width: '6em' },
                  { key: 'ready', label: 'Ready', value: (r: any) => r.ready, width: '6em' },
                  { key: 'load', label: 'vCPUs used', value: (r: any) => r.usedVcpus, width: '7em' },
                ]
              : []),
          ]}
        />
      )}
      {tab === 'nodes' && fleet.seesNodes && <Nodes fleet={fleet} instancesOnNode={d.instancesOnNode} />}
      {tab === 'projects' && <Projects fleet={fleet} />}
    </div>
  );
}

function Providers({ fleet }: { fleet: Fleet }) {
  return (
    <VirtualTable
      label="providers"
      rows={fleet.list('Provider')}
      rowKey={(p) => p.metadata.name}
      columns={[
        { key: 'name', label: 'Provider', value: (p) => p.metadata.name },
        { key: 'display', label: 'Name', value: (p) => p.spec.displayName ?? '' },
        { key: 'hq', label: 'HQ', value: (p) => p.spec.headquarters ?? '', width: '5em' },
        { key: 'jur', label: 'Jurisdiction', value: (p) => p.spec.jurisdiction ?? '', width: '8em' },
        { key: 'level', label: 'Sovereignty', value: (p) => p.status?.sovereigntyLevel ?? '' },
        {
          key: 'score',
          label: 'Score',
          value: (p) => p.status?.sovereigntyScore ?? -1,
          render: (p) => (p.status?.sovereigntyScore === undefined ? 'no record' : p.status.sovereigntyScore),
          width: '7em',
        },
        {
          key: 'certs',
          label: 'Valid certifications',
          value: (p) => (p.status?.validCertifications ?? []).join(', '),
          width: '2fr',
        },
      ]}
    />
  );
}

function Nodes({ fleet, instancesOnNode }: { fleet: Fleet; instancesOnNode: Map<string, Obj[]> }) {
  const [metrics, setMetrics] = useState(new Map<string, Samples>());
  const visible = useRef<Obj[]>([]);
  const fetchMetrics = useCallback(async () => {
    const byProvider = new Map<string, string[]>();
    for (const n of visible.current)
      byProvider.set(n.metadata.provider!, [
        ...(byProvider.get(n.metadata.provider!) ?? []),
        n.metadata.name,
      ]);
    const got = new Map<string, Samples>();
    await Promise.all(
      [...byProvider].map(async ([p, names]) => {
        try {
          const r = await fleet.api.get(`/v1/providers/${p}/node-metrics`, { names: names.join(',') });
          for (const i of r.items) got.set(`${p}/${i.node}`, i.samples);
        } catch {
          // No sparklines this time: the table still works.
        }
      }),
    );
    if (got.size) setMetrics((m) => new Map([...m, ...got]));
  }, [fleet]);
  // Heartbeat metrics are not in the change stream (bookkeeping): the rows in view re-read them.
  useEffect(() => {
    const t = setInterval(fetchMetrics, 10_000);
    return () => clearInterval(t);
  }, [fetchMetrics]);
  const debounce = useRef<ReturnType<typeof setTimeout>>(undefined);
  const onRange = (rows: Obj[]) => {
    visible.current = rows;
    clearTimeout(debounce.current);
    debounce.current = setTimeout(fetchMetrics, 150);
  };
  const key = (n: Obj) => `${n.metadata.provider}/${n.metadata.name}`;
  const columns: Column<Obj>[] = [
    { key: 'name', label: 'Node', value: key, width: '2fr' },
    { key: 'site', label: 'Site', value: (n) => n.spec.site },
    {
      key: 'state',
      label: 'State',
      value: (n) => n.status?.state ?? '',
      render: (n) => (
        <span className={`state ${n.status?.state}`}>
          {n.status?.state}
          {n.spec.drain ? ' · drained' : n.spec.unschedulable ? ' · cordoned' : ''}
        </span>
      ),
      width: '9em',
    },
    { key: 'cpus', label: 'CPUs', value: (n) => n.status?.inventory?.cpus ?? 0, width: '5em' },
    {
      key: 'mem',
      label: 'Memory',
      value: (n) => n.status?.inventory?.memoryMiB ?? 0,
      render: (n) => mib(n.status?.inventory?.memoryMiB ?? 0),
      width: '7em',
    },
    {
      key: 'acc',
      label: 'Accelerators',
      value: (n) =>
        (n.status?.inventory?.accelerators ?? []).map((a: any) => `${a.count}× ${a.model}`).join(', '),
    },
    { key: 'inst', label: 'Replicas', value: (n) => instancesOnNode.get(key(n))?.length ?? 0, width: '6em' },
    {
      key: 'spark',
      label: 'CPU / memory',
      value: (n) => metrics.get(key(n))?.at(-1)?.[1] ?? -1,
      render: (n) => <Sparkline samples={metrics.get(key(n))} />,
      width: '8em',
    },
    {
      key: 'hb',
      label: 'Heartbeat',
      value: (n) => n.status?.lastHeartbeat ?? '',
      render: (n) => ago(n.status?.lastHeartbeat),
      width: '7em',
    },
    {
      key: 'act',
      label: 'Actions',
      value: (n) => (n.spec.drain ? 'drain' : ''),
      render: (n) => (
        <>
          <NodeActions fleet={fleet} node={n} />
          <NodeDrain fleet={fleet} node={n} />
        </>
      ),
      width: '12em',
    },
  ];
  return (
    <VirtualTable label="nodes" rows={fleet.list('Node')} rowKey={key} columns={columns} onRange={onRange} />
  );
}

function Projects({ fleet }: { fleet: Fleet }) {
  const workloads = new Map<string, number>();
  for (const w of fleet.objects.Workload.values())
    workloads.set(w.metadata.project!, (workloads.get(w.metadata.project!) ?? 0) + 1);
  const usage = (p: Obj, k: 'vcpus' | 'memoryMiB' | 'instances'): number => p.status?.usage?.[k] ?? 0;
  const column = (
    k: 'vcpus' | 'memoryMiB' | 'instances',
    label: string,
    fmt: (n: number) => string = String,
  ) => ({
    key: k,
    label,
    value: (p: Obj) => usage(p, k),
    render: (p: Obj) => {
      const q: number | undefined = p.spec.quota?.[k];
      return q === undefined ? (
        `${fmt(usage(p, k))} (no quota)`
      ) : (
        <>
          {fmt(usage(p, k))} of {fmt(q)}{' '}
          <meter min={0} max={Math.max(1, q)} value={usage(p, k)} high={q * 0.9} />
        </>
      );
    },
  });
  return (
    <VirtualTable
      label="projects"
      rows={fleet.list('Project')}
      rowKey={(p) => p.metadata.name}
      columns={[
        { key: 'name', label: 'Project', value: (p) => p.metadata.name },
        column('instances', 'Instances'),
        column('vcpus', 'vCPUs'),
        column('memoryMiB', 'Memory', mib),
        { key: 'work', label: 'Workloads', value: (p) => workloads.get(p.metadata.name) ?? 0, width: '7em' },
      ]}
    />
  );
}
