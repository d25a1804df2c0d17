// Round-trip times to latency targets: the estimate of latency-model.ts, or what the
// site's nodes measured — unless below the physical minimum (see latency-model.ts).

import type { LatencyTarget } from '../model/index.js';
import { findCity } from '../model/index.js';

export {
  estimateRttMs,
  FIBRE_KM_PER_MS,
  greatCircleKm,
  minimumRttMs,
  PATH_STRETCH,
  TIER_OVERHEAD_MS,
} from './latency-model.js';

import { estimateRttMs, minimumRttMs, type TIER_OVERHEAD_MS } from './latency-model.js';

/** The coordinates and a stable label of a latency target. */
export function targetLocation(t: LatencyTarget): { label: string; latitude: number; longitude: number } {
  if (t.city) {
    const c = findCity(t.city);
    if (!c) throw new Error(`unknown city ${t.city}`);
    return { label: t.name ?? c.name, latitude: c.latitude, longitude: c.longitude };
  }
  return { label: t.name ?? `${t.latitude},${t.longitude}`, latitude: t.latitude!, longitude: t.longitude! };
}

export function rttMs(
  site: {
    latitude: number;
    longitude: number;
    tier: keyof typeof TIER_OVERHEAD_MS;
    measuredRttMs?: Readonly<Record<string, number>>;
  },
  t: LatencyTarget,
): number {
  const loc = targetLocation(t);
  const measured = site.measuredRttMs?.[loc.label];
  if (measured !== undefined && measured >= minimumRttMs(site, loc)) return measured;
  return estimateRttMs(site, loc);
}
