// Does a replica still comply where it runs? The rules of its workload about *where* it
// may run — pinning, provider lists, residency, jurisdiction, EU control, sovereignty,
// certifications, hardware, labels, accelerators, latency — checked against the node it
// is bound to, and whether its (possibly new) size fits there. Readiness, cordons and
// spread are not rules about one replica's node: health, drains and placement own them.
import { matchingAccelerators } from './filters/capacity.js';
import { FILTERS } from './pipeline.js';
import { REASONS } from './reasons.js';
import type { CandidateNode, Capacity, Filter, PlacementRequest } from './types.js';

/** Filters about a node's state or about placing (not rules about where a replica may be). */
const NOT_RULES = new Set(['avoided', 'ready', 'schedulable', 'spread', 'fits']);

/** The placement filters that are rules about where a replica may run. */
export const RULE_FILTERS: readonly Filter[] = FILTERS.filter((f) => !NOT_RULES.has(f.name));

/**
 * Why a replica bound to `node` breaks its workload's rules there (empty: it complies).
 * `held` is what the replica holds on the node now: the request must fit in the node's
 * free capacity plus that.
 */
export function violations(
  node: CandidateNode,
  req: PlacementRequest,
  held: Capacity & { accelerators?: number },
): string[] {
  const out: string[] = [];
  for (const f of RULE_FILTERS) {
    const reason = f.check(node, req);
    if (reason) out.push(reason);
  }
  const { capacity: c, allocated: a } = node;
  const want = req.resources;
  if (
    a.vcpus - held.vcpus + want.vcpus > c.vcpus ||
    a.memoryMiB - held.memoryMiB + want.memoryMiB > c.memoryMiB ||
    a.diskGiB - held.diskGiB + want.diskGiB > c.diskGiB ||
    (want.accelerators &&
      a.accelerators - (held.accelerators ?? 0) + want.accelerators.count > matchingAccelerators(node, req))
  )
    out.push(REASONS.resources);
  return out;
}
