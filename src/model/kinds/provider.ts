// Provider: a legal entity that owns sites and nodes. Its sovereignty level is derived
// from jurisdiction, EU control and certifications, so policies can ask for a minimum.
import { Type } from 'typebox';
import {
  CERTIFICATIONS,
  type Certification,
  CountryCode,
  JURISDICTIONS,
  type Jurisdiction,
  MaxNodeSize,
  oneOf,
  strictObject,
} from '../common.js';
import { isCountryCode } from '../countries.js';
import { countryErrors, type KindDef } from '../kind.js';

export const SOVEREIGNTY_LEVELS = [
  'none',
  'eu-jurisdiction',
  'eu-controlled',
  'certified',
  'sovereign',
] as const;
export type SovereigntyLevel = (typeof SOVEREIGNTY_LEVELS)[number];

export const ProviderSpec = strictObject({
  displayName: Type.Optional(Type.String({ maxLength: 200 })),
  headquarters: CountryCode,
  jurisdiction: oneOf(JURISDICTIONS, 'legal jurisdiction the provider operates under'),
  euControlled: Type.Boolean({
    description: 'controlled by EU entities (no non-EU parent with control rights)',
  }),
  certifications: Type.Optional(Type.Array(oneOf(CERTIFICATIONS), { uniqueItems: true, maxItems: 32 })),
  maxNode: Type.Optional(MaxNodeSize),
});
export interface ProviderSpec {
  displayName?: string;
  headquarters: string;
  jurisdiction: Jurisdiction;
  euControlled: boolean;
  certifications?: Certification[];
  maxNode?: MaxNodeSize;
}

export const ProviderStatus = strictObject({ sovereigntyLevel: oneOf(SOVEREIGNTY_LEVELS) });
export interface ProviderStatus {
  sovereigntyLevel: SovereigntyLevel;
}

const CERTIFIED: readonly Certification[] = [
  'EUCS-substantial',
  'EUCS-high',
  'SecNumCloud',
  'C5',
  'ENS-high',
];
const SOVEREIGN: readonly Certification[] = ['EUCS-high', 'SecNumCloud'];

export function sovereigntyLevel(spec: ProviderSpec): SovereigntyLevel {
  if (spec.jurisdiction !== 'EU') return 'none';
  if (!spec.euControlled) return 'eu-jurisdiction';
  const certs = spec.certifications ?? [];
  if (certs.some((c) => SOVEREIGN.includes(c))) return 'sovereign';
  if (certs.some((c) => CERTIFIED.includes(c))) return 'certified';
  return 'eu-controlled';
}

export const providerKind: KindDef<ProviderSpec, ProviderStatus> = {
  kind: 'Provider',
  plural: 'providers',
  aliases: ['provider', 'providers', 'prov'],
  description: 'An infrastructure provider: the legal entity that owns sites and nodes.',
  spec: ProviderSpec,
  status: ProviderStatus,
  creatable: true,
  filters: ['country', 'jurisdiction'],
  columns: (spec) => ({ country: spec.headquarters, jurisdiction: spec.jurisdiction }),
  initialStatus: (spec) => ({ sovereigntyLevel: sovereigntyLevel(spec) }),
  onSpecChange: (spec) => ({ sovereigntyLevel: sovereigntyLevel(spec) }),
  check: (spec) => countryErrors(spec.headquarters, 'spec.headquarters', isCountryCode),
};
