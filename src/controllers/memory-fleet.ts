// A fleet view held in memory, for driving the workload planner without a store (the
// property tests): the same reads and bookings as the cluster cache, over plain
// candidate nodes, scanned in the order given.
import type { CandidateNode } from '../scheduler/index.js';
import type { Held } from './cluster-cache.js';
import type { FleetView } from './workload-plan.js';

type Node = CandidateNode & { state: string; allocated: CandidateNode['allocated'] };

export class MemoryFleet implements FleetView {
  readonly version = 0;
  private readonly nodes = new Map<string, Node>();

  /** Copies the nodes: bookings change this fleet's allocations, never the caller's. */
  constructor(nodes: readonly (CandidateNode & { state: string })[]) {
    for (const n of nodes) this.nodes.set(n.key, { ...n, allocated: { ...n.allocated } });
  }

  get(key: string): Node | undefined {
    return this.nodes.get(key);
  }

  *candidates(opts: { node?: string; countries?: readonly string[] } = {}): Iterable<CandidateNode> {
    for (const n of this.nodes.values()) {
      if (opts.node !== undefined && n.key !== opts.node) continue;
      if (opts.countries && !opts.countries.includes(n.siteInfo.country)) continue;
      yield n;
    }
  }

  countOutside(countries: readonly string[]): number {
    let outside = 0;
    for (const n of this.nodes.values()) if (!countries.includes(n.siteInfo.country)) outside++;
    return outside;
  }

  reserve(key: string, held: Held): void {
    this.book(key, held, 1);
  }

  release(key: string, held: Held): void {
    this.book(key, held, -1);
  }

  private book(key: string, h: Held, sign: 1 | -1): void {
    const a = this.nodes.get(key)?.allocated;
    if (!a) return;
    a.vcpus += sign * h.vcpus;
    a.memoryMiB += sign * h.memoryMiB;
    a.diskGiB += sign * h.diskGiB;
    a.accelerators += sign * (h.accelerators ?? 0);
  }
}
