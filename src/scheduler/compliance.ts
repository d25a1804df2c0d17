// Does a replica still comply where it runs? The rules of its workload about *where* it
// may run — pinning, provider lists, residency, jurisdiction, EU control, sovereignty,
// certifications, hardware, labels, accelerators, latency — checked against the node it
// is bound to, and whether its (possibly new) size fits there. Readiness, cordons and
// spread are not rules about one replica's node: health, drains and placement own them.
import { acceleratorModel } from './filters/capacity.js';
import { architecture, confidential, labels, virtualization } from './filters/hardware.js';
import { latency } from './filters/latency.js';
import { pinned } from './filters/node.js';
import {
  certifications,
  countries,
  euControl,
  jurisdiction,
  providers,
  sovereignty,
} from './filters/sovereignty.js';
import { REASONS } from './reasons.js';
import type { CandidateNode, Capacity, Filter, PlacementRequest } from './types.js';

export const RULE_FILTERS: readonly Filter[] = [
  pinned,
  providers,
  countries,
  jurisdiction,
  euControl,
  sovereignty,
  certifications,
  architecture,
  virtualization,
  confidential,
  labels,
  acceleratorModel,
  latency,
];

/**
 * Why a replica bound to `node` breaks its workload's rules there (empty: it complies).
 * `held` is what the replica holds on the node now: the request must fit in the node's
 * free capacity plus that.
 */
export function violations(node: CandidateNode, req: PlacementRequest, held: Capacity): string[] {
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
    a.diskGiB - held.diskGiB + want.diskGiB > c.diskGiB
  )
    out.push(REASONS.resources);
  return out;
}
