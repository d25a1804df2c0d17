// The largest node a provider and its site declare (`maxNode`): an agent's inventory is a
// claim, and a claim beyond what its provider declared is refused at enrolment and capped
// afterwards, so one lying node cannot draw every workload of the federation to itself.
import type { MaxNodeSize } from '../model/index.js';
import type { Inventory } from '../protocol/index.js';

export interface NodeLimits {
  limits: MaxNodeSize;
  /** Where each limit comes from, for messages: `site acme/fra-1` or `provider acme`. */
  source: Partial<Record<keyof MaxNodeSize, string>>;
}

/** The tighter of the provider's and the site's declarations. */
export function nodeLimits(
  provider: { name: string; maxNode?: MaxNodeSize },
  site: { name: string; maxNode?: MaxNodeSize },
): NodeLimits {
  const out: NodeLimits = { limits: {}, source: {} };
  for (const [who, m] of [
    [`provider ${provider.name}`, provider.maxNode],
    [`site ${provider.name}/${site.name}`, site.maxNode],
  ] as const)
    for (const k of ['cpus', 'memoryMiB', 'diskGiB', 'accelerators'] as const) {
      const v = m?.[k];
      if (v !== undefined && (out.limits[k] === undefined || v < out.limits[k]!)) {
        out.limits[k] = v;
        out.source[k] = who;
      }
    }
  return out;
}

const acceleratorCount = (inv: Inventory) => inv.accelerators.reduce((n, a) => n + a.count, 0);

/** Each way the inventory exceeds the limits, by field, in words. */
export function inventoryExcess(
  inv: Inventory,
  { limits, source }: NodeLimits,
): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const check = (k: keyof MaxNodeSize, claimed: number, unit: string) => {
    const max = limits[k];
    if (max !== undefined && claimed > max)
      out.push({
        path: `inventory.${k}`,
        message: `claims ${claimed} ${unit}, more than the ${max} that ${source[k]} declares as its largest node (maxNode.${k})`,
      });
  };
  check('cpus', inv.cpus, 'CPUs');
  check('memoryMiB', inv.memoryMiB, 'MiB of memory');
  check('diskGiB', inv.diskGiB, 'GiB of disk');
  check('accelerators', acceleratorCount(inv), 'accelerators');
  return out;
}

/** The inventory within the limits (accelerators beyond the limit are dropped, last first). */
export function capInventory(inv: Inventory, { limits }: NodeLimits): Inventory {
  let room = limits.accelerators ?? Number.POSITIVE_INFINITY;
  const accelerators = [];
  for (const a of inv.accelerators) {
    const count = Math.min(a.count, room);
    room -= count;
    if (count > 0) accelerators.push({ ...a, count });
  }
  return {
    ...inv,
    cpus: Math.min(inv.cpus, limits.cpus ?? inv.cpus),
    memoryMiB: Math.min(inv.memoryMiB, limits.memoryMiB ?? inv.memoryMiB),
    diskGiB: Math.min(inv.diskGiB, limits.diskGiB ?? inv.diskGiB),
    accelerators,
  };
}
