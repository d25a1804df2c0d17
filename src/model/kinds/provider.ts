// Provider: a legal entity that owns sites and nodes. Its sovereignty level is derived
// from jurisdiction, EU control and certifications, so policies can ask for a minimum.
// Its sovereignty record (spec.sovereignty) says who controls it, who else reaches its
// customers' data, which certifications and Gaia-X label it holds until when, and the
// SEAL level of each objective of the EU Cloud Sovereignty Framework: its weighted
// sovereignty score is in its status.
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
import type { FieldError } from '../problem.js';
import {
  type Contribution,
  expiryOf,
  MAX_SEAL,
  OBJECTIVES,
  type SovereigntyRecord,
  sovereigntyScore,
  validCertifications,
  validGaiaX,
} from '../sovereignty.js';

export const SOVEREIGNTY_LEVELS = [
  'none',
  'eu-jurisdiction',
  'eu-controlled',
  'certified',
  'sovereign',
] as const;
export type SovereigntyLevel = (typeof SOVEREIGNTY_LEVELS)[number];

const Expiry = Type.String({
  pattern: '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2}))?$',
  description: 'a day, YYYY-MM-DD (valid through that day, UTC), or an RFC 3339 time',
});

export const SovereigntyRecordSchema = strictObject(
  {
    legalSeat: CountryCode,
    ultimateParent: Type.Optional(
      strictObject(
        { name: Type.String({ minLength: 1, maxLength: 200 }), country: CountryCode },
        'the ultimate parent company and the country whose law governs it',
      ),
    ),
    nonEuControl: Type.Boolean({ description: 'an entity outside the EU controls the provider' }),
    subcontractors: Type.Optional(
      Type.Array(
        strictObject({
          name: Type.String({ minLength: 1, maxLength: 200 }),
          country: CountryCode,
          access: Type.Array(oneOf(['customer-data', 'iam'] as const), { minItems: 1, uniqueItems: true }),
        }),
        {
          maxItems: 100,
          description: 'subcontractors with access to customer data or to identity and access management',
        },
      ),
    ),
    certifications: Type.Optional(
      Type.Array(strictObject({ name: oneOf(CERTIFICATIONS), expires: Expiry }), {
        maxItems: 32,
        description: 'certifications held, each until its expiry',
      }),
    ),
    foreignAccessMeasures: Type.Optional(
      Type.String({
        maxLength: 4000,
        description:
          'the technical, organisational and contractual measures against international governmental access to customer data (published under the Data Act, Art. 28)',
      }),
    ),
    gaiaX: Type.Optional(
      strictObject(
        { level: Type.Integer({ minimum: 1, maximum: 3 }), expires: Expiry },
        'Gaia-X label level',
      ),
    ),
    objectives: Type.Optional(
      strictObject(
        Object.fromEntries(
          OBJECTIVES.map((o) => [
            o,
            Type.Optional(
              strictObject({
                seal: Type.Integer({ minimum: 0, maximum: MAX_SEAL, description: 'SEAL level 0–4' }),
                evidence: Type.Optional(Type.String({ maxLength: 2000 })),
              }),
            ),
          ]),
        ),
        'the SEAL level of each objective of the EU Cloud Sovereignty Framework, with its evidence',
      ),
    ),
  },
  'who controls the provider, who reaches its customers’ data, what it is certified for, and its SEAL levels',
);

export const ProviderSpec = strictObject({
  displayName: Type.Optional(Type.String({ maxLength: 200 })),
  headquarters: CountryCode,
  jurisdiction: oneOf(JURISDICTIONS, 'legal jurisdiction the provider operates under'),
  euControlled: Type.Boolean({
    description: 'controlled by EU entities (no non-EU parent with control rights)',
  }),
  certifications: Type.Optional(Type.Array(oneOf(CERTIFICATIONS), { uniqueItems: true, maxItems: 32 })),
  maxNode: Type.Optional(MaxNodeSize),
  sovereignty: Type.Optional(SovereigntyRecordSchema),
});
export interface ProviderSpec {
  displayName?: string;
  headquarters: string;
  jurisdiction: Jurisdiction;
  euControlled: boolean;
  certifications?: Certification[];
  maxNode?: MaxNodeSize;
  sovereignty?: SovereigntyRecord;
}

export const ProviderStatus = strictObject({
  sovereigntyLevel: oneOf(SOVEREIGNTY_LEVELS),
  sovereigntyScore: Type.Optional(
    Type.Number({ minimum: 0, maximum: 100, description: 'weighted score of the sovereignty record' }),
  ),
  contributions: Type.Optional(
    Type.Array(
      strictObject({
        objective: oneOf(OBJECTIVES),
        name: Type.String(),
        weight: Type.Number(),
        seal: Type.Integer(),
        points: Type.Number(),
      }),
      { description: 'what each objective adds to the score (weight × SEAL / 4)' },
    ),
  ),
  validCertifications: Type.Optional(
    Type.Array(Type.String(), { description: 'the certifications valid now' }),
  ),
  gaiaX: Type.Optional(Type.Integer({ minimum: 0, maximum: 3, description: 'Gaia-X label level valid now' })),
});
export interface ProviderStatus {
  sovereigntyLevel: SovereigntyLevel;
  sovereigntyScore?: number;
  contributions?: Contribution[];
  validCertifications?: string[];
  gaiaX?: number;
}

const CERTIFIED: readonly Certification[] = [
  'EUCS-substantial',
  'EUCS-high',
  'SecNumCloud',
  'C5',
  'ENS-high',
];
const SOVEREIGN: readonly Certification[] = ['EUCS-high', 'SecNumCloud'];

/** The derived level at `now`: certifications count while they are valid. */
export function sovereigntyLevel(spec: ProviderSpec, now = Date.now()): SovereigntyLevel {
  if (spec.jurisdiction !== 'EU') return 'none';
  if (!spec.euControlled) return 'eu-jurisdiction';
  const certs = validCertifications(spec, now) as Certification[];
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
  initialStatus: (spec) => providerStatus(spec),
  onSpecChange: (spec) => providerStatus(spec),
  check: (spec) => [
    ...countryErrors(spec.headquarters, 'spec.headquarters', isCountryCode),
    ...recordErrors(spec),
  ],
};

/** The status of a provider at `now`: what its record is worth and what of it is valid. */
export function providerStatus(spec: ProviderSpec, now = Date.now()): ProviderStatus {
  const r = spec.sovereignty;
  if (!r) return { sovereigntyLevel: sovereigntyLevel(spec, now) };
  const { score, contributions } = sovereigntyScore(r);
  return {
    sovereigntyLevel: sovereigntyLevel(spec, now),
    sovereigntyScore: score,
    contributions,
    validCertifications: validCertifications(spec, now),
    gaiaX: validGaiaX(r, now),
  };
}

/** What the schema cannot say of a sovereignty record. */
function recordErrors(spec: ProviderSpec): FieldError[] {
  const r = spec.sovereignty;
  if (!r) return [];
  const errors: FieldError[] = [];
  const country = (code: string, path: string) => errors.push(...countryErrors(code, path, isCountryCode));
  country(r.legalSeat, 'spec.sovereignty.legalSeat');
  if (r.ultimateParent) country(r.ultimateParent.country, 'spec.sovereignty.ultimateParent.country');
  for (const [i, s] of (r.subcontractors ?? []).entries())
    country(s.country, `spec.sovereignty.subcontractors[${i}].country`);
  if (r.nonEuControl && spec.euControlled)
    errors.push({
      path: 'spec.euControlled',
      message:
        'is true, but spec.sovereignty.nonEuControl says an entity outside the EU controls the provider',
    });
  if (r.certifications && spec.certifications)
    errors.push({
      path: 'spec.certifications',
      message: 'give the certifications once: in spec.sovereignty.certifications, with their expiry',
    });
  const date = (d: string, path: string) => {
    if (Number.isNaN(expiryOf(d))) errors.push({ path, message: `'${d}' is not a real day or time` });
  };
  if (r.gaiaX) date(r.gaiaX.expires, 'spec.sovereignty.gaiaX.expires');
  const seen = new Set<string>();
  for (const [i, c] of (r.certifications ?? []).entries()) {
    date(c.expires, `spec.sovereignty.certifications[${i}].expires`);
    if (seen.has(c.name))
      errors.push({
        path: `spec.sovereignty.certifications[${i}].name`,
        message: `${c.name} is listed twice`,
      });
    seen.add(c.name);
  }
  return errors;
}
