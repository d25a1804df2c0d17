// Every listed user location must be within its maximum round-trip time of the site.
import { rttMs } from '../latency.js';
import { REASONS } from '../reasons.js';
import type { Filter } from '../types.js';

export const latency: Filter = {
  name: 'latency',
  check: (n, r) => {
    for (const t of r.policy.latency ?? []) if (rttMs(n.siteInfo, t) > t.maxRttMs) return REASONS.latency;
    return undefined;
  },
};
