// The scheduler's view of the fleet: every node with its site and provider, and what is
// allocated on it. Built from the store and kept current by the controllers, so a
// placement needs no query; reservations happen synchronously here before the binding
// is written, so concurrent placements never overcommit a node.
import {
  DEFAULT_CPU_OVERCOMMIT,
  type NodeSpec,
  type NodeStatus,
  OBJECTIVES,
  type ProviderSpec,
  type SiteSpec,
  sovereigntyLevel,
  sovereigntyScore,
  validCertifications,
  validGaiaX,
} from '../model/index.js';
import type { CandidateNode, Capacity, NodeAccelerator } from '../scheduler/index.js';
import type { InstanceRecord, Store, StoredResource } from '../store/index.js';

/** Memory kept for the host and QEMU overhead (memory is never overcommitted). */
export const HOST_RESERVED_MIB = 512;

/** What an instance holds on its node. */
export type Held = Pick<InstanceRecord, 'vcpus' | 'memoryMiB' | 'diskGiB'> & { accelerators?: number };

type MutableNode = CandidateNode & { allocated: Capacity & { accelerators: number }; state: string };

/**
 * What a node's health and its operator's intent set: the scheduler checks them with
 * every placement (dynamic filters), so they may change without a new version.
 */
const LIVE_FIELDS = ['state', 'ready', 'unschedulable', 'draining', 'allocated'];

/** The node's attributes that the static filters judge, comparable as a string. */
const staticView = (n: MutableNode) => JSON.stringify(n, (k, v) => (LIVE_FIELDS.includes(k) ? undefined : v));

function shuffled<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export class ClusterCache {
  private readonly nodes = new Map<string, MutableNode>();
  /** Every node's stored row (also those not schedulable yet), to rebuild from. */
  private readonly rows = new Map<string, StoredResource>();
  private providers = new Map<string, StoredResource>();
  /** Each provider's scheduling attributes, built once per read of it (not per node). */
  private readonly infos = new Map<string, CandidateNode['providerInfo']>();
  private sites = new Map<string, StoredResource>();
  /**
   * Nodes in a random order for rotating scans, rebuilt when the set of nodes changes:
   * a limited scan from a random start then samples the whole fleet, not a run of one
   * provider's nodes (the store lists them by provider).
   */
  private ordered?: CandidateNode[];
  /** Positions in `ordered` of each country's nodes, ascending (a residency scan reads only those). */
  private byCountry?: Map<string, number[]>;
  private attributesVersion = 0;

  /** Reservations and releases since begin(), to undo if the transaction fails. */
  private journal?: { key: string; r: Held; sign: 1 | -1 }[];
  /** Counts full reloads: one during a transaction voids its journal. */
  private reloads = 0;
  private reloadsAtBegin = 0;

  constructor(private readonly store: Store) {}

  /** From now on, records reservations and releases (a controller transaction begins). */
  begin(): void {
    this.journal = [];
    this.reloadsAtBegin = this.reloads;
  }

  /**
   * The transaction committed: its reservations stand. If the cache was reloaded while
   * it ran, the reload missed the transaction's rows: reload again.
   */
  async commit(): Promise<void> {
    this.journal = undefined;
    if (this.reloads !== this.reloadsAtBegin) await this.refresh();
  }

  /**
   * The transaction failed: undoes its reservations and releases, newest first (a full
   * reload only if one happened meanwhile; at 10,000 nodes a reload takes a second).
   */
  async rollback(): Promise<void> {
    const journal = this.journal ?? [];
    this.journal = undefined;
    if (this.reloads !== this.reloadsAtBegin) return this.refresh();
    for (let i = journal.length - 1; i >= 0; i--) {
      const { key, r, sign } = journal[i]!;
      this.apply(key, r, -sign as 1 | -1);
    }
  }

  /** Reloads providers, sites, nodes and allocations from the store. */
  async refresh(): Promise<void> {
    this.reloads++;
    const [providers, sites, nodes, instances] = await Promise.all([
      this.store.list('providers'),
      this.store.list('sites'),
      this.store.list('nodes'),
      this.store.listInstances(),
    ]);
    this.providers = new Map(providers.map((p) => [p.name, p]));
    this.infos.clear();
    this.sites = new Map(sites.map((s) => [`${s.parent}/${s.name}`, s]));
    this.nodes.clear();
    this.rows.clear();
    this.unorder();
    for (const n of nodes) {
      this.rows.set(`${n.parent}/${n.name}`, n);
      const c = this.build(n);
      if (c) this.nodes.set(c.key, c);
    }
    for (const i of instances)
      if (i.desired !== 'absent')
        this.apply(`${i.provider}/${i.node}`, { ...i, accelerators: i.spec.accelerators ?? 0 }, 1);
  }

  private build(n: StoredResource): MutableNode | undefined {
    const spec = n.spec as NodeSpec;
    const status = n.status as NodeStatus & { inventory?: any };
    const site = this.sites.get(`${n.parent}/${spec.site}`);
    const provider = this.providers.get(n.parent);
    const inv = status.inventory;
    if (!site || !provider || !inv) return undefined;
    const s = site.spec as SiteSpec;
    const p = provider.spec as ProviderSpec;
    return {
      key: `${n.parent}/${n.name}`,
      provider: n.parent,
      node: n.name,
      site: spec.site,
      state: status.state,
      ready: status.state === 'ready',
      unschedulable: !!spec.unschedulable || !!spec.drain,
      draining: !!spec.drain,
      architecture: inv.architecture,
      virtualization: inv.virtualization,
      containers: !!inv.containers,
      liveMigration: !!inv.liveMigration,
      coldMigration: !!inv.coldMigration,
      cpuSecurity: inv.cpuSecurity ?? [],
      accelerators: (inv.accelerators ?? []) as NodeAccelerator[],
      labels: n.labels,
      // CPU time is shared: a site offers its nodes' CPUs several times over (its
      // cpuOvercommit); memory and disk are not.
      host: { cpus: inv.cpus, cpuOvercommit: s.cpuOvercommit ?? DEFAULT_CPU_OVERCOMMIT },
      capacity: {
        vcpus: Math.floor(inv.cpus * (s.cpuOvercommit ?? DEFAULT_CPU_OVERCOMMIT)),
        memoryMiB: Math.max(0, inv.memoryMiB - HOST_RESERVED_MIB),
        diskGiB: inv.diskGiB,
      },
      allocated: { vcpus: 0, memoryMiB: 0, diskGiB: 0, accelerators: 0 },
      siteInfo: {
        country: s.country,
        latitude: s.location.latitude,
        longitude: s.location.longitude,
        tier: s.tier,
        carbonIntensity: s.carbonIntensity,
        ...(s.prices ? { prices: s.prices } : {}),
        ...(site.status?.measuredRttMs ? { measuredRttMs: site.status.measuredRttMs } : {}),
      },
      providerInfo: this.providerInfo(n.parent, p),
    };
  }

  /** What the scheduler knows of a provider, as valid now; one object shared by its nodes. */
  private providerInfo(name: string, p: ProviderSpec): CandidateNode['providerInfo'] {
    const known = this.infos.get(name);
    if (known) return known;
    const now = Date.now();
    const r = p.sovereignty;
    const info: CandidateNode['providerInfo'] = {
      jurisdiction: p.jurisdiction,
      euControlled: p.euControlled,
      certifications: validCertifications(p, now),
      sovereigntyLevel: sovereigntyLevel(p, now),
      ...(r
        ? {
            record: {
              score: sovereigntyScore(r).score,
              seal: Object.fromEntries(OBJECTIVES.map((o) => [o, r.objectives?.[o]?.seal ?? 0])),
              subcontractorCountries: (r.subcontractors ?? []).map((s) => s.country),
              gaiaX: validGaiaX(r, now),
            },
          }
        : {}),
    };
    this.infos.set(name, info);
    return info;
  }

  /** A provider as last read (its spec: the sovereignty record and what expires when). */
  provider(name: string): StoredResource | undefined {
    return this.providers.get(name);
  }

  providerNames(): Iterable<string> {
    return this.providers.keys();
  }

  /** Re-reads one node (after enrolment, a state change, a cordon), keeping its allocations. */
  async refreshNode(provider: string, node: string): Promise<void> {
    const key = `${provider}/${node}`;
    const row = await this.store.get('nodes', provider, node);
    if (!row) {
      this.rows.delete(key);
      this.nodes.delete(key);
      this.unorder();
      return;
    }
    if (!this.providers.has(provider) || !this.sites.has(`${provider}/${row.spec.site}`))
      return this.refresh();
    this.rows.set(key, row);
    this.rebuild(key);
  }

  /** Re-reads one site (its attributes, its measured latencies) and rebuilds its nodes. */
  async refreshSite(provider: string, site: string): Promise<void> {
    const row = await this.store.get('sites', provider, site);
    if (row) this.sites.set(`${provider}/${site}`, row);
    else this.sites.delete(`${provider}/${site}`);
    for (const [key, n] of this.rows) if (n.parent === provider && n.spec.site === site) this.rebuild(key);
  }

  /** Re-reads one provider (jurisdiction, certifications …) and rebuilds its nodes. */
  async refreshProvider(provider: string): Promise<void> {
    const row = await this.store.get('providers', '', provider);
    if (row) this.providers.set(provider, row);
    else this.providers.delete(provider);
    this.infos.delete(provider);
    for (const [key, n] of this.rows) if (n.parent === provider) this.rebuild(key);
  }

  /**
   * Rebuilds a node from its row, keeping what is allocated on it. When only its health
   * or its operator's intent changed (ready, cordoned, draining), the object the scan
   * order and the static classes hold is updated in place and the version stays: at
   * fleet scale nodes come and go all the time, and each new version had every class
   * judge every node again.
   */
  private rebuild(key: string): void {
    const row = this.rows.get(key);
    const old = this.nodes.get(key);
    const fresh = row && this.build(row);
    if (fresh && old) {
      fresh.allocated = old.allocated;
      if (staticView(fresh) === staticView(old)) {
        Object.assign(old, {
          state: fresh.state,
          ready: fresh.ready,
          unschedulable: fresh.unschedulable,
          draining: fresh.draining,
        });
        return;
      }
    }
    if (fresh) this.nodes.set(key, fresh);
    else this.nodes.delete(key);
    this.unorder();
  }

  /**
   * Candidates for a placement, starting at a random node so that a limited scan
   * (ScheduleOptions.limitFeasible) samples the whole fleet; a pinned node or a country
   * list narrows the scan first.
   */
  *candidates(opts: { node?: string; countries?: readonly string[] } = {}): Iterable<CandidateNode> {
    if (opts.node) {
      const n = this.nodes.get(opts.node);
      if (n) yield n;
      return;
    }
    const list = this.scanOrder();
    let at: ArrayLike<number> | undefined;
    if (opts.countries) {
      const index = this.countryIndex();
      const parts = [...new Set(opts.countries)].map((c) => index.get(c) ?? []);
      // Several countries' nodes in the fleet's random order, as one list.
      at = parts.length === 1 ? parts[0]! : Int32Array.from(parts.flat()).sort();
    }
    const count = at ? at.length : list.length;
    const start = Math.floor(Math.random() * count);
    for (let i = 0; i < count; i++) {
      const k = (start + i) % count;
      yield list[at ? at[k]! : k]!;
    }
  }

  private scanOrder(): CandidateNode[] {
    this.ordered ??= shuffled([...this.nodes.values()]);
    return this.ordered;
  }

  private countryIndex(): Map<string, number[]> {
    if (this.byCountry) return this.byCountry;
    const index = new Map<string, number[]>();
    for (const [i, n] of this.scanOrder().entries()) {
      const positions = index.get(n.siteInfo.country);
      if (positions) positions.push(i);
      else index.set(n.siteInfo.country, [i]);
    }
    this.byCountry = index;
    return index;
  }

  /**
   * Nodes or their attributes changed: the scan order is drawn again on next use, and
   * static filter results (StaticClasses) of the previous version no longer hold.
   */
  private unorder(): void {
    this.ordered = undefined;
    this.byCountry = undefined;
    this.attributesVersion++;
  }

  /** Changes whenever a node, its site or its provider changes (not with allocations). */
  get version(): number {
    return this.attributesVersion;
  }

  get(key: string): (CandidateNode & { state: string }) | undefined {
    return this.nodes.get(key);
  }

  /** Nodes outside the given countries (skipped by a country-limited scan). */
  countOutside(countries: readonly string[]): number {
    let inside = 0;
    for (const c of new Set(countries)) inside += this.countryIndex().get(c)?.length ?? 0;
    return this.nodes.size - inside;
  }

  get size(): number {
    return this.nodes.size;
  }

  reserve(key: string, r: Held): void {
    this.journal?.push({ key, r, sign: 1 });
    this.apply(key, r, 1);
  }

  release(key: string, r: Held): void {
    this.journal?.push({ key, r, sign: -1 });
    this.apply(key, r, -1);
  }

  /**
   * Gives back what rows that another transaction removed (and committed) held: not part
   * of the running controller transaction, so never undone by its rollback.
   */
  releaseCommitted(key: string, r: Held): void {
    this.apply(key, r, -1);
  }

  private apply(key: string, r: Held, sign: 1 | -1): void {
    const n = this.nodes.get(key);
    if (!n) return;
    n.allocated.vcpus += sign * r.vcpus;
    n.allocated.memoryMiB += sign * r.memoryMiB;
    n.allocated.diskGiB += sign * r.diskGiB;
    n.allocated.accelerators += sign * (r.accelerators ?? 0);
  }
}
