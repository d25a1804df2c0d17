// The whole continuum on one map: filters by provider, country, tier and sovereignty
// level; a click on a site opens its panel (provider, nodes, load, carbon, prices, what
// runs there).
import { useState } from 'react';
import { useFleet } from './App.js';
import { derive, healthOf, mib, type SiteStats } from './derive.js';
import type { Fleet } from './fleet.js';
import { EuropeMap, HEALTH_LABEL, type SiteMarker } from './map.js';
import { NodeDrain } from './Nodes.js';

const LEVELS = ['none', 'eu-jurisdiction', 'eu-controlled', 'certified', 'sovereign'];

export function MapPage({ fleet }: { fleet: Fleet }) {
  useFleet(fleet);
  const d = derive(fleet);
  const [filter, setFilter] = useState({ provider: '', country: '', tier: '', level: '' });
  const [selected, setSelected] = useState<string>();

  const providers = fleet.list('Provider');
  const levelOf = (provider: string) =>
    fleet.objects.Provider.get(provider)?.status?.sovereigntyLevel as string;
  const all = [...d.sites.values()];
  const shown = all.filter((st) => {
    const s = st.site;
    if (filter.provider && s.metadata.provider !== filter.provider) return false;
    if (filter.country && s.spec.country !== filter.country) return false;
    if (filter.tier && s.spec.tier !== filter.tier) return false;
    if (filter.level && LEVELS.indexOf(levelOf(s.metadata.provider!)) < LEVELS.indexOf(filter.level))
      return false;
    return true;
  });
  const markers: SiteMarker[] = shown.map((st) => ({
    key: st.key,
    label: st.site.spec.displayName ?? st.key,
    latitude: st.site.spec.location.latitude,
    longitude: st.site.spec.location.longitude,
    capacity: fleet.seesNodes ? st.cpus : 0,
    health: healthOf(st, fleet.seesNodes),
  }));
  const countries = [...new Set(all.map((st) => st.site.spec.country as string))].sort();
  const site = selected ? d.sites.get(selected) : undefined;
  const select = (name: keyof typeof filter, label: string, options: [string, string][]) => (
    <div className="filter">
      <label htmlFor={`filter-${name}`}>{label}</label>
      <select
        id={`filter-${name}`}
        value={filter[name]}
        onChange={(e) => setFilter({ ...filter, [name]: e.target.value })}
      >
        <option value="">any</option>
        {options.map(([v, l]) => (
          <option key={v} value={v}>
            {l}
          </option>
        ))}
      </select>
    </div>
  );
  return (
    <div className="map-page">
      <section className="filters" aria-label="Filters">
        {select(
          'provider',
          'Provider',
          providers.map((p) => [p.metadata.name, p.spec.displayName ?? p.metadata.name]),
        )}
        {select(
          'country',
          'Country',
          countries.map((c) => [c, c]),
        )}
        {select(
          'tier',
          'Tier',
          ['core', 'regional', 'edge', 'far-edge'].map((t) => [t, t]),
        )}
        {select(
          'level',
          'Sovereignty at least',
          LEVELS.map((l) => [l, l]),
        )}
        <span className="count" data-testid="site-count">
          {shown.length} of {all.length} sites
          {fleet.seesNodes &&
            ` · ${fleet.objects.Node.size} nodes${fleet.loaded.has('Node') ? '' : ' (loading…)'}`}
        </span>
      </section>
      <div className="map-with-panel">
        <EuropeMap
          sites={markers}
          selected={selected}
          onSelect={setSelected}
          label="Map of the federation's sites"
        >
          <Legend />
        </EuropeMap>
        {site && <SitePanel fleet={fleet} st={site} onClose={() => setSelected(undefined)} />}
      </div>
    </div>
  );
}

function Legend() {
  return (
    <ul className="legend" aria-label="Legend">
      {(['ready', 'degraded', 'down', 'empty', 'unknown'] as const).map((h) => (
        <li key={h}>
          <span className={`dot ${h}`} /> {HEALTH_LABEL[h]}
        </li>
      ))}
    </ul>
  );
}

function SitePanel({ fleet, st, onClose }: { fleet: Fleet; st: SiteStats; onClose: () => void }) {
  const s = st.site;
  const provider = fleet.objects.Provider.get(s.metadata.provider!);
  // vCPUs offered per physical CPU (the scheduler's default when the site sets none).
  const overcommit: number = s.spec.cpuOvercommit ?? 4;
  const pct = (a: number, b: number) => (b ? `${Math.round((100 * a) / b)} %` : '—');
  const workloads = new Map<string, number>();
  for (const i of st.instances) {
    const key = `${i.metadata.project}/${i.spec.workload}`;
    workloads.set(key, (workloads.get(key) ?? 0) + 1);
  }
  return (
    <aside className="panel" aria-label={`Site ${st.key}`} data-testid="site-panel">
      <header>
        <h2>{s.spec.displayName ?? s.metadata.name}</h2>
        <button type="button" className="link" onClick={onClose} aria-label="Close the site panel">
          ✕
        </button>
      </header>
      <dl>
        <dt>Site</dt>
        <dd>{st.key}</dd>
        <dt>Provider</dt>
        <dd>
          {provider?.spec.displayName ?? s.metadata.provider} ({provider?.status?.sovereigntyLevel ?? '?'}
          {provider?.status?.sovereigntyScore !== undefined && `, score ${provider.status.sovereigntyScore}`})
        </dd>
        <dt>Where</dt>
        <dd>
          {s.spec.country}
          {s.spec.region ? `, ${s.spec.region}` : ''} · {s.spec.tier}
        </dd>
        <dt>Carbon</dt>
        <dd>{s.spec.carbonIntensity} gCO₂/kWh</dd>
        <dt>Prices</dt>
        <dd>
          {s.spec.prices
            ? `€${s.spec.prices.vcpuHour}/vCPU-h · €${s.spec.prices.memoryGbHour}/GB-h`
            : 'not published'}
        </dd>
        {fleet.seesNodes && (
          <>
            <dt>Nodes</dt>
            <dd>
              {st.nodes.length}: {st.ready} ready, {st.suspect} suspect, {st.down} down
              {st.enrolled ? `, ${st.enrolled} enrolled` : ''}
            </dd>
            <dt>Load</dt>
            <dd>
              {st.usedVcpus} of {st.cpus * overcommit} vCPUs ({pct(st.usedVcpus, st.cpus * overcommit)};{' '}
              {st.cpus} CPUs × {overcommit}) · memory {mib(st.usedMemoryMiB)} of {mib(st.memoryMiB)} (
              {pct(st.usedMemoryMiB, st.memoryMiB)})
            </dd>
          </>
        )}
      </dl>
      {fleet.seesNodes && (
        <>
          <h3>Nodes</h3>
          <ul className="nodes" data-testid="site-nodes">
            {st.nodes.slice(0, 200).map((n) => (
              <li key={n.metadata.name}>
                <span className={`state ${n.status?.state}`}>{n.status?.state}</span> {n.metadata.name}
                {n.spec.unschedulable && !n.spec.drain && ' (cordoned)'}
                <NodeDrain fleet={fleet} node={n} />
              </li>
            ))}
            {st.nodes.length > 200 && <li>… and {st.nodes.length - 200} more (see Inventory)</li>}
          </ul>
        </>
      )}
      <h3>What runs here</h3>
      {workloads.size ? (
        <ul>
          {[...workloads].map(([w, n]) => (
            <li key={w}>
              <a href={`#/workloads/${w}`}>{w}</a>: {n} replica{n === 1 ? '' : 's'}
            </li>
          ))}
        </ul>
      ) : (
        <p>Nothing you can see.</p>
      )}
    </aside>
  );
}
