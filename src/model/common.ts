// Schema pieces shared by several kinds. Schemas are plain JSON Schema built with
// TypeBox: one definition gives validation, the OpenAPI document and the TS type.
import { type TSchema, Type } from 'typebox';

export const NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';

export const Name = Type.String({
  pattern: NAME_PATTERN,
  description: 'lower-case letters, digits and dashes; 1–63 characters; starts and ends alphanumeric',
});

export const CountryCode = Type.String({
  pattern: '^[A-Z]{2}$',
  description: 'ISO 3166-1 alpha-2 country code, e.g. DE',
});

export const Labels = Type.Record(
  Type.String({ pattern: '^[a-zA-Z0-9]([a-zA-Z0-9._/-]{0,126}[a-zA-Z0-9])?$' }),
  Type.String({ maxLength: 253 }),
  { description: 'free-form key/value labels', maxProperties: 64 },
);

/** Tools' metadata (kubectl keeps its last-applied configuration here); 256 KiB in all. */
export const Annotations = Type.Record(
  Type.String({ pattern: '^[a-zA-Z0-9]([a-zA-Z0-9._/-]{0,250}[a-zA-Z0-9])?$' }),
  Type.String({ maxLength: 262144 }),
  { description: 'free-form key/value annotations of tools and people', maxProperties: 64 },
);

export const Timestamp = Type.String({ format: 'date-time' });

export const SITE_TIERS = ['core', 'regional', 'edge', 'far-edge'] as const;
export type SiteTier = (typeof SITE_TIERS)[number];

export const JURISDICTIONS = ['EU', 'non-EU'] as const;
export type Jurisdiction = (typeof JURISDICTIONS)[number];

export const ARCHITECTURES = ['x86_64', 'aarch64', 'riscv64'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

/** Certifications that placement rules can require. */
export const CERTIFICATIONS = [
  'EUCS-basic',
  'EUCS-substantial',
  'EUCS-high',
  'SecNumCloud',
  'C5',
  'ISO27001',
  'ISO27017',
  'ISO27018',
  'ENS-high',
  'TISAX',
  'SOC2',
] as const;
export type Certification = (typeof CERTIFICATIONS)[number];

/** A string enum; validation errors then list the allowed values in one message. */
export function oneOf<T extends readonly string[]>(values: T, description?: string) {
  return Type.Unsafe<T[number]>({
    type: 'string',
    enum: [...values],
    ...(description ? { description } : {}),
  });
}

export function strictObject<P extends Record<string, TSchema>>(props: P, description?: string) {
  return Type.Object(props, { additionalProperties: false, ...(description ? { description } : {}) });
}

/** The largest node a provider (or one of its sites) declares: agents claiming more are capped. */
export const MaxNodeSize = Type.Object(
  {
    cpus: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })),
    memoryMiB: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 * 1024 * 1024 })),
    diskGiB: Type.Optional(Type.Integer({ minimum: 0, maximum: 1024 * 1024 })),
    accelerators: Type.Optional(Type.Integer({ minimum: 0, maximum: 64, description: 'devices in all' })),
  },
  {
    additionalProperties: false,
    description:
      'largest size one node may report; an enrolment claiming more is refused, a later report is capped',
  },
);
export interface MaxNodeSize {
  cpus?: number;
  memoryMiB?: number;
  diskGiB?: number;
  accelerators?: number;
}
