// Site: one location of a provider. Coordinates, country and tier feed the latency model
// and residency rules; carbon intensity and prices feed the scorers.
import { Type } from 'typebox';
import { findCity } from '../cities.js';
import { CountryCode, MaxNodeSize, oneOf, SITE_TIERS, type SiteTier, strictObject } from '../common.js';
import { isCountryCode } from '../countries.js';
import { countryErrors, type KindDef } from '../kind.js';

/** vCPUs a node offers per physical CPU unless its site says otherwise. */
export const DEFAULT_CPU_OVERCOMMIT = 4;

export const SiteSpec = strictObject({
  displayName: Type.Optional(Type.String({ maxLength: 200 })),
  country: CountryCode,
  region: Type.Optional(Type.String({ maxLength: 100, description: 'free-form region, e.g. Bavaria' })),
  location: strictObject({
    latitude: Type.Number({ minimum: -90, maximum: 90 }),
    longitude: Type.Number({ minimum: -180, maximum: 180 }),
  }),
  tier: oneOf(SITE_TIERS),
  carbonIntensity: Type.Number({ minimum: 0, maximum: 2000, description: 'grid carbon intensity, gCO2/kWh' }),
  prices: Type.Optional(
    strictObject(
      {
        vcpuHour: Type.Number({ minimum: 0, description: 'EUR per vCPU-hour' }),
        memoryGbHour: Type.Number({ minimum: 0, description: 'EUR per GB-hour of memory' }),
      },
      'prices per resource unit',
    ),
  ),
  maxNode: Type.Optional(MaxNodeSize),
  cpuOvercommit: Type.Optional(
    Type.Number({
      minimum: 1,
      maximum: 16,
      description: `vCPUs offered per physical CPU of this site's nodes (CPU time is shared); default ${DEFAULT_CPU_OVERCOMMIT}, 1 for none. Memory is never overcommitted.`,
    }),
  ),
  latencyProbes: Type.Optional(
    Type.Array(
      strictObject({
        name: Type.String({
          minLength: 1,
          maxLength: 100,
          description: 'matches a latency target: a city or a named location',
        }),
        address: Type.String({
          pattern: '^[^\\s:]+:[0-9]{1,5}$',
          description: 'HOST:PORT the nodes time a TCP connection to',
        }),
        latitude: Type.Optional(
          Type.Number({
            minimum: -90,
            maximum: 90,
            description: 'where the target is, if its name is not a known city',
          }),
        ),
        longitude: Type.Optional(Type.Number({ minimum: -180, maximum: 180 })),
      }),
      { maxItems: 50, description: 'targets whose round-trip time the nodes of this site measure' },
    ),
  ),
});
export interface SiteSpec {
  displayName?: string;
  country: string;
  region?: string;
  location: { latitude: number; longitude: number };
  tier: SiteTier;
  carbonIntensity: number;
  prices?: { vcpuHour: number; memoryGbHour: number };
  latencyProbes?: LatencyProbe[];
  maxNode?: MaxNodeSize;
  cpuOvercommit?: number;
}

/** A target the site's nodes time: a known city by name, or a named place with coordinates. */
export interface LatencyProbe {
  name: string;
  address: string;
  latitude?: number;
  longitude?: number;
}

/** A probe's coordinates: its own, or its city's; undefined when neither is known. */
export function probeLocation(p: LatencyProbe): { latitude: number; longitude: number } | undefined {
  if (p.latitude !== undefined && p.longitude !== undefined)
    return { latitude: p.latitude, longitude: p.longitude };
  return findCity(p.name);
}

export const SiteStatus = strictObject({
  measuredRttMs: Type.Optional(
    Type.Record(Type.String(), Type.Number(), {
      description: 'lowest recent round-trip time per probe target',
    }),
  ),
  suspectRttMs: Type.Optional(
    Type.Record(
      Type.String(),
      strictObject({
        node: Type.String(),
        reportedMs: Type.Number(),
        minimumMs: Type.Number(),
        at: Type.String(),
      }),
      {
        description:
          "per probe target, the last round-trip time a node reported below the physical minimum for the distance (rejected; the estimate or other nodes' measurements are used)",
      },
    ),
  ),
});
export interface SiteStatus {
  measuredRttMs?: Record<string, number>;
  suspectRttMs?: Record<string, SuspectRtt>;
}

/** A measurement refused because light in fibre cannot cover the distance that fast. */
export interface SuspectRtt {
  node: string;
  reportedMs: number;
  minimumMs: number;
  at: string;
}

export const siteKind: KindDef<SiteSpec, SiteStatus> = {
  kind: 'Site',
  plural: 'sites',
  parent: 'provider',
  aliases: ['site', 'sites'],
  description: "A provider's location: coordinates, country, tier, carbon intensity and prices.",
  spec: SiteSpec,
  status: SiteStatus,
  creatable: true,
  filters: ['country', 'tier'],
  columns: (spec) => ({ country: spec.country, tier: spec.tier }),
  initialStatus: () => ({}),
  check: (spec) => [
    ...countryErrors(spec.country, 'spec.country', isCountryCode),
    ...(spec.latencyProbes ?? []).flatMap((p, i) => {
      const path = `spec.latencyProbes[${i}]`;
      if ((p.latitude === undefined) !== (p.longitude === undefined))
        return [{ path, message: 'give both latitude and longitude, or neither' }];
      if (!probeLocation(p))
        return [
          {
            path: `${path}.name`,
            message: `'${p.name}' is not a known city: give the target's latitude and longitude`,
          },
        ];
      return [];
    }),
  ],
};
