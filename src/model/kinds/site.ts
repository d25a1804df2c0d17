// Site: one location of a provider. Coordinates, country and tier feed the latency model
// and residency rules; carbon intensity and prices feed the scorers.
import { Type } from 'typebox';
import { CountryCode, MaxNodeSize, oneOf, SITE_TIERS, type SiteTier, strictObject } from '../common.js';
import { isCountryCode } from '../countries.js';
import { countryErrors, type KindDef } from '../kind.js';

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
  latencyProbes?: { name: string; address: string }[];
  maxNode?: MaxNodeSize;
}

export const SiteStatus = strictObject({
  measuredRttMs: Type.Optional(
    Type.Record(Type.String(), Type.Number(), {
      description: 'lowest recent round-trip time per probe target',
    }),
  ),
});
export interface SiteStatus {
  measuredRttMs?: Record<string, number>;
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
  check: (spec) => countryErrors(spec.country, 'spec.country', isCountryCode),
};
