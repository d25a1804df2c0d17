// The latency model. Round-trip time between a site and a user location is estimated
// from the great-circle distance:
//
//   rtt = 2 × distance × PATH_STRETCH / FIBRE_KM_PER_MS + TIER_OVERHEAD_MS[tier]
//
// Light in fibre covers about 200 km per millisecond (two thirds of c); real routes are
// about 1.5 times longer than the great circle; the tier overhead stands for access
// networks and queuing (an edge site sits close to its users, a core site behind more
// hops). A round-trip time an agent measured replaces the estimate — unless it is below
// the physical minimum, the great circle there and back at fibre speed, which no network
// beats (the gateway refuses such reports; this guards what was stored before it did).
// See docs/latency.md. This file imports nothing: the web console estimates with it too.

export const FIBRE_KM_PER_MS = 200;
export const PATH_STRETCH = 1.5;
export const TIER_OVERHEAD_MS = { core: 2, regional: 1.5, edge: 1, 'far-edge': 0.5 } as const;
const EARTH_RADIUS_KM = 6371;

export function greatCircleKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** The lowest round-trip time physics allows: the great circle there and back in fibre. */
export function minimumRttMs(
  a: { latitude: number; longitude: number },
  b: { latitude: number; longitude: number },
): number {
  return (2 * greatCircleKm(a.latitude, a.longitude, b.latitude, b.longitude)) / FIBRE_KM_PER_MS;
}

export function estimateRttMs(
  site: { latitude: number; longitude: number; tier: keyof typeof TIER_OVERHEAD_MS },
  user: { latitude: number; longitude: number },
): number {
  const km = greatCircleKm(site.latitude, site.longitude, user.latitude, user.longitude);
  return (2 * km * PATH_STRETCH) / FIBRE_KM_PER_MS + TIER_OVERHEAD_MS[site.tier];
}
