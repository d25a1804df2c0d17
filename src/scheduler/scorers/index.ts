// Scorers. Each returns a raw value where higher is better; the pipeline rescales every
// scorer to 0–100 across the feasible nodes, so weights compare like with like.
import { domainOf } from '../filters/spread.js';
import { rttMs } from '../latency.js';
import type { Scorer } from '../types.js';

/** Mean round-trip time to the workload's users (lower is better). */
export const latency: Scorer = {
  name: 'latency',
  defaultWeight: 50,
  score: (n, r) => {
    const targets = r.policy.latency ?? [];
    if (!targets.length) return 0;
    return -targets.reduce((s, t) => s + rttMs(n.siteInfo, t), 0) / targets.length;
  },
};

/** Price of the replica per hour at the site (lower is better). */
export const cost: Scorer = {
  name: 'cost',
  defaultWeight: 20,
  score: (n, r) => {
    const p = n.siteInfo.prices;
    if (!p) return 0;
    return -(r.resources.vcpus * p.vcpuHour + (r.resources.memoryMiB / 1024) * p.memoryGbHour);
  },
};

/** Grid carbon intensity of the site (lower is better). */
export const carbon: Scorer = {
  name: 'carbon',
  defaultWeight: 20,
  score: (n) => -n.siteInfo.carbonIntensity,
};

/** Free share of the node after placement: balance prefers empty nodes, pack full ones. */
export const balance: Scorer = {
  name: 'balance',
  dynamic: true,
  defaultWeight: 30,
  score: (n, r) => {
    const cpu = (n.capacity.vcpus - n.allocated.vcpus - r.resources.vcpus) / Math.max(1, n.capacity.vcpus);
    const mem =
      (n.capacity.memoryMiB - n.allocated.memoryMiB - r.resources.memoryMiB) /
      Math.max(1, n.capacity.memoryMiB);
    const free = (cpu + mem) / 2;
    return r.policy.strategy === 'pack' ? -free : free;
  },
};

/** Soft spread: fewer replicas of the workload in the node's domain is better. */
export const spread: Scorer = {
  name: 'spread',
  dynamic: true,
  defaultWeight: 50,
  score: (n, r) => {
    const s = r.policy.spread;
    if (!s) return 0;
    return -(r.spreadCounts.get(domainOf(n, s.across)) ?? 0);
  },
};

export const SCORERS: readonly Scorer[] = [latency, cost, carbon, balance, spread];
