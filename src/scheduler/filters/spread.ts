// Hard spread: until the workload covers minDomains domains, a replica must go to a
// domain it does not use yet.
import { REASONS } from '../reasons.js';
import type { CandidateNode, Filter, PlacementRequest } from '../types.js';

export function domainOf(n: CandidateNode, across: 'provider' | 'site' | 'country'): string {
  if (across === 'provider') return n.provider;
  if (across === 'site') return `${n.provider}/${n.site}`;
  return n.siteInfo.country;
}

export function domainsUsed(r: PlacementRequest): number {
  let used = 0;
  for (const c of r.spreadCounts.values()) if (c > 0) used++;
  return used;
}

export const spread: Filter = {
  name: 'spread',
  dynamic: true,
  check: (n, r) => {
    const s = r.policy.spread;
    if (s?.mode !== 'hard') return undefined;
    const min = s.minDomains ?? 2;
    if (domainsUsed(r) >= min) return undefined;
    return (r.spreadCounts.get(domainOf(n, s.across)) ?? 0) > 0 ? REASONS.spread : undefined;
  },
};
