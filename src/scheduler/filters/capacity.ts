// Does the replica fit? vCPUs, memory, disk, and accelerators by vendor, model, memory
// and count. The dimension that runs out is reported for the explanation.
import { REASONS } from '../reasons.js';
import type { CandidateNode, Filter, PlacementRequest } from '../types.js';

/** Accelerators of the node that satisfy the request, ignoring how many are in use. */
export function matchingAccelerators(n: CandidateNode, r: PlacementRequest): number {
  const want = r.resources.accelerators;
  if (!want) return 0;
  let count = 0;
  for (const a of n.accelerators) {
    if (want.vendor && a.vendor.toLowerCase() !== want.vendor.toLowerCase()) continue;
    if (want.model && !a.model.toLowerCase().includes(want.model.toLowerCase())) continue;
    if (want.minMemoryMiB && (a.memoryMiB ?? 0) < want.minMemoryMiB) continue;
    count += a.count;
  }
  return count;
}

export const acceleratorModel: Filter = {
  name: 'accelerator',
  check: (n, r) => {
    const want = r.resources.accelerators;
    return want && matchingAccelerators(n, r) < want.count ? REASONS.accelerator : undefined;
  },
};

/** The first dimension that does not fit, if any. */
export function exhaustedDimension(n: CandidateNode, r: PlacementRequest): string | undefined {
  const { capacity: c, allocated: a } = n;
  if (c.vcpus - a.vcpus < r.resources.vcpus) return 'vcpus';
  if (c.memoryMiB - a.memoryMiB < r.resources.memoryMiB) return 'memoryMiB';
  if (c.diskGiB - a.diskGiB < r.resources.diskGiB) return 'diskGiB';
  const want = r.resources.accelerators;
  if (want && matchingAccelerators(n, r) - n.allocated.accelerators < want.count) return 'accelerators';
  return undefined;
}

export const fits: Filter = {
  name: 'fits',
  dynamic: true,
  check: (n, r) => (exhaustedDimension(n, r) ? REASONS.resources : undefined),
};
