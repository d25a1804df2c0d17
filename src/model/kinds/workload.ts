// Workload: what a tenant asks for — kind, resources, image, replicas, cloud-init data
// and the placement policy the scheduler must honour.
import { Type } from 'typebox';
import { findCity } from '../cities.js';
import {
  ARCHITECTURES,
  type Architecture,
  CERTIFICATIONS,
  type Certification,
  CountryCode,
  Labels,
  Name,
  oneOf,
  strictObject,
} from '../common.js';
import { isCountryCode } from '../countries.js';
import type { KindDef } from '../kind.js';
import type { FieldError } from '../problem.js';
import { MAX_SEAL, OBJECTIVES, type Objective } from '../sovereignty.js';
import { SOVEREIGNTY_LEVELS, type SovereigntyLevel } from './provider.js';

/** Virtual machines (QEMU) or OCI containers (runc). */
export const WORKLOAD_KINDS = ['vm', 'container'] as const;
export const SPREAD_DOMAINS = ['provider', 'site', 'country'] as const;
export const OPTIMISE_FOR = ['latency', 'cost', 'carbon', 'balance'] as const;
export const WORKLOAD_PHASES = ['Pending', 'Scheduling', 'Running', 'Degraded', 'Failed'] as const;
export type WorkloadPhase = (typeof WORKLOAD_PHASES)[number];

const LatencyTarget = strictObject(
  {
    name: Type.Optional(Type.String({ maxLength: 100 })),
    city: Type.Optional(Type.String({ description: 'a city of data/eu-cities.csv, e.g. Madrid' })),
    latitude: Type.Optional(Type.Number({ minimum: -90, maximum: 90 })),
    longitude: Type.Optional(Type.Number({ minimum: -180, maximum: 180 })),
    maxRttMs: Type.Number({ exclusiveMinimum: 0, maximum: 10000, description: 'maximum round-trip time' }),
  },
  'users at a city or at coordinates, and the round-trip time they may have to the replica',
);

export const Placement = strictObject({
  node: Type.Optional(
    Type.String({ description: 'pin to one node (provider/node); bypasses the scheduler' }),
  ),
  countries: Type.Optional(
    Type.Array(CountryCode, { uniqueItems: true, minItems: 1, description: 'data residency' }),
  ),
  sites: Type.Optional(
    Type.Array(Type.String({ pattern: '^[a-z0-9-]+/[a-z0-9-]+$' }), {
      uniqueItems: true,
      minItems: 1,
      description: 'only these sites, each PROVIDER/SITE',
    }),
  ),
  jurisdiction: Type.Optional(oneOf(['EU'] as const, 'only providers under this jurisdiction')),
  euControlled: Type.Optional(Type.Boolean({ description: 'only EU-controlled providers' })),
  minSovereignty: Type.Optional(
    oneOf(SOVEREIGNTY_LEVELS, 'minimum derived sovereignty level of the provider'),
  ),
  certifications: Type.Optional(
    Type.Array(oneOf(CERTIFICATIONS), { uniqueItems: true, description: 'all required, valid today' }),
  ),
  minSovereigntyScore: Type.Optional(
    Type.Number({
      minimum: 0,
      maximum: 100,
      description: 'minimum sovereignty score of the provider (0–100)',
    }),
  ),
  minSeal: Type.Optional(
    strictObject(
      Object.fromEntries(
        OBJECTIVES.map((o) => [o, Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SEAL }))]),
      ),
      'minimum SEAL level (0–4) of the provider per sovereignty objective, e.g. legal: 3',
    ),
  ),
  subcontractorCountries: Type.Optional(
    Type.Array(Type.String({ pattern: '^([A-Z]{2}|EU)$' }), {
      uniqueItems: true,
      minItems: 1,
      description:
        'only providers whose subcontractors with access to customer data or IAM are in these countries (EU: any member state)',
    }),
  ),
  minGaiaX: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 3,
      description: 'minimum Gaia-X label level of the provider, valid today',
    }),
  ),
  providers: Type.Optional(
    strictObject({
      allow: Type.Optional(Type.Array(Name, { uniqueItems: true, minItems: 1 })),
      deny: Type.Optional(Type.Array(Name, { uniqueItems: true })),
    }),
  ),
  architecture: Type.Optional(oneOf(ARCHITECTURES)),
  virtualization: Type.Optional(oneOf(['kvm', 'any'] as const, 'kvm: hardware virtualization required')),
  confidentialComputing: Type.Optional(oneOf(['sev-snp', 'tdx', 'any'] as const)),
  nodeSelector: Type.Optional(Labels),
  latency: Type.Optional(Type.Array(LatencyTarget, { maxItems: 20 })),
  spread: Type.Optional(
    strictObject({
      across: oneOf(SPREAD_DOMAINS),
      minDomains: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
      mode: Type.Optional(oneOf(['hard', 'soft'] as const, 'hard: unplaceable rather than unspread')),
    }),
  ),
  weights: Type.Optional(
    strictObject(
      Object.fromEntries(
        OPTIMISE_FOR.map((k) => [k, Type.Optional(Type.Number({ minimum: 0, maximum: 100 }))]),
      ),
      'relative importance of each objective',
    ),
  ),
  strategy: Type.Optional(oneOf(['balance', 'pack'] as const)),
  onNodeFailure: Type.Optional(
    oneOf(['replace', 'wait'] as const, 'replace: re-place replicas of a down node'),
  ),
});

export const WorkloadSpec = strictObject({
  kind: oneOf(WORKLOAD_KINDS),
  image: Name,
  replicas: Type.Integer({ minimum: 0, maximum: 10000 }),
  resources: strictObject({
    vcpus: Type.Integer({ minimum: 1, maximum: 512 }),
    memoryMiB: Type.Integer({ minimum: 16, maximum: 16 * 1024 * 1024 }),
    diskGiB: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536 })),
    accelerators: Type.Optional(
      strictObject({
        vendor: Type.Optional(Type.String({ maxLength: 100 })),
        model: Type.Optional(Type.String({ maxLength: 100 })),
        minMemoryMiB: Type.Optional(Type.Integer({ minimum: 0 })),
        count: Type.Integer({ minimum: 1, maximum: 64 }),
      }),
    ),
  }),
  userData: Type.Optional(Type.String({ maxLength: 65536, description: 'cloud-init user data (VMs)' })),
  container: Type.Optional(
    strictObject(
      {
        command: Type.Optional(
          Type.Array(Type.String({ maxLength: 4096 }), {
            minItems: 1,
            maxItems: 256,
            description: "replaces the image's entrypoint and command",
          }),
        ),
        args: Type.Optional(
          Type.Array(Type.String({ maxLength: 4096 }), {
            maxItems: 256,
            description: "replaces the image's command (the arguments of its entrypoint)",
          }),
        ),
        env: Type.Optional(
          Type.Record(
            Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }),
            Type.String({ maxLength: 32768 }),
            {
              description: 'environment variables, added to the image’s',
            },
          ),
        ),
        restart: Type.Optional(
          oneOf(
            ['always', 'on-failure', 'never'] as const,
            'when an exited container runs again (default always)',
          ),
        ),
      },
      'containers only: what runs, beyond the image’s defaults',
    ),
  ),
  ports: Type.Optional(
    Type.Array(
      strictObject({
        guest: Type.Integer({ minimum: 1, maximum: 65535 }),
        protocol: Type.Optional(oneOf(['tcp', 'udp'] as const)),
        name: Type.Optional(Name),
      }),
      { maxItems: 32 },
    ),
  ),
  placement: Type.Optional(Placement),
});

export interface LatencyTarget {
  name?: string;
  city?: string;
  latitude?: number;
  longitude?: number;
  maxRttMs: number;
}

export interface PlacementPolicy {
  node?: string;
  countries?: string[];
  sites?: string[];
  jurisdiction?: 'EU';
  euControlled?: boolean;
  minSovereignty?: SovereigntyLevel;
  certifications?: Certification[];
  minSovereigntyScore?: number;
  minSeal?: Partial<Record<Objective, number>>;
  subcontractorCountries?: string[];
  minGaiaX?: number;
  providers?: { allow?: string[]; deny?: string[] };
  architecture?: Architecture;
  virtualization?: 'kvm' | 'any';
  confidentialComputing?: 'sev-snp' | 'tdx' | 'any';
  nodeSelector?: Record<string, string>;
  latency?: LatencyTarget[];
  spread?: { across: (typeof SPREAD_DOMAINS)[number]; minDomains?: number; mode?: 'hard' | 'soft' };
  weights?: Partial<Record<(typeof OPTIMISE_FOR)[number], number>>;
  strategy?: 'balance' | 'pack';
  onNodeFailure?: 'replace' | 'wait';
}

export interface WorkloadSpec {
  kind: (typeof WORKLOAD_KINDS)[number];
  image: string;
  replicas: number;
  resources: {
    vcpus: number;
    memoryMiB: number;
    diskGiB?: number;
    accelerators?: { vendor?: string; model?: string; minMemoryMiB?: number; count: number };
  };
  userData?: string;
  container?: {
    command?: string[];
    args?: string[];
    env?: Record<string, string>;
    restart?: 'always' | 'on-failure' | 'never';
  };
  ports?: { guest: number; protocol?: 'tcp' | 'udp'; name?: string }[];
  placement?: PlacementPolicy;
}

export const WorkloadStatus = strictObject({
  phase: oneOf(WORKLOAD_PHASES),
  observedGeneration: Type.Integer(),
  readyReplicas: Type.Integer(),
  message: Type.Optional(Type.String({ description: 'why replicas are not (all) running' })),
  placement: Type.Optional(
    Type.Object(
      {
        attemptedAt: Type.String(),
        placed: Type.Integer(),
        pending: Type.Integer(),
        message: Type.Optional(Type.String()),
        explanation: Type.Optional(
          Type.Object({
            nodesEvaluated: Type.Integer(),
            feasible: Type.Integer({ description: 'nodes that met every rule and had room' }),
            filtered: Type.Record(Type.String(), Type.Integer(), {
              description: 'nodes ruled out, by reason (e.g. "country not allowed": 12)',
            }),
            exhausted: Type.Record(Type.String(), Type.Integer(), {
              description: 'nodes out of room, by dimension (vcpus, memoryMiB, diskGiB, accelerators)',
            }),
            topScores: Type.Array(
              Type.Object({
                node: Type.String({ description: 'PROVIDER/NODE' }),
                total: Type.Number({ description: 'score 0–100' }),
                scores: Type.Record(Type.String(), Type.Number(), { description: 'per objective, 0–100' }),
                room: Type.Optional(
                  Type.String({ description: 'its capacity in words before this replica' }),
                ),
              }),
            ),
          }),
        ),
      },
      {
        description:
          'the last placement attempt: nodes evaluated, filtered by reason, exhausted by dimension, top scores',
      },
    ),
  ),
  outOfPolicy: Type.Optional(
    Type.Array(
      strictObject({
        replica: Type.String(),
        node: Type.String(),
        reasons: Type.Array(Type.String()),
        message: Type.String(),
      }),
      {
        description:
          'replicas that break the rules where they run (after a change of the policy, the size, or the node, site or provider) and have no compliant node with room to move to; every other replica complies',
      },
    ),
  ),
});
export interface WorkloadStatus {
  phase: WorkloadPhase;
  observedGeneration: number;
  readyReplicas: number;
  message?: string;
  placement?: unknown;
  outOfPolicy?: { replica: string; node: string; reasons: string[]; message: string }[];
}

function placementErrors(p: PlacementPolicy | undefined, replicas: number): FieldError[] {
  if (!p) return [];
  const errors: FieldError[] = [];
  for (const [i, c] of (p.countries ?? []).entries()) {
    if (!isCountryCode(c))
      errors.push({ path: `spec.placement.countries[${i}]`, message: `unknown country code '${c}'` });
  }
  for (const [i, c] of (p.subcontractorCountries ?? []).entries()) {
    if (c !== 'EU' && !isCountryCode(c))
      errors.push({
        path: `spec.placement.subcontractorCountries[${i}]`,
        message: `unknown country code '${c}' (or EU for any member state)`,
      });
  }
  const deny = new Set(p.providers?.deny ?? []);
  for (const [i, a] of (p.providers?.allow ?? []).entries()) {
    if (deny.has(a))
      errors.push({
        path: `spec.placement.providers.allow[${i}]`,
        message: `provider '${a}' is both allowed and denied`,
      });
  }
  for (const [i, t] of (p.latency ?? []).entries()) {
    const path = `spec.placement.latency[${i}]`;
    const hasCoords = t.latitude !== undefined || t.longitude !== undefined;
    if (t.city !== undefined && hasCoords)
      errors.push({ path, message: 'give either city or latitude/longitude, not both' });
    else if (t.city !== undefined && !findCity(t.city))
      errors.push({ path: `${path}.city`, message: `unknown city '${t.city}' (see data/eu-cities.csv)` });
    else if (t.city === undefined && (t.latitude === undefined || t.longitude === undefined))
      errors.push({ path, message: 'needs a city, or both latitude and longitude' });
  }
  const minDomains = p.spread?.minDomains;
  if (minDomains !== undefined && minDomains > replicas && replicas > 0)
    errors.push({
      path: 'spec.placement.spread.minDomains',
      message: `${minDomains} domains cannot be covered by ${replicas} replicas`,
    });
  return errors;
}

export const workloadKind: KindDef<WorkloadSpec, WorkloadStatus> = {
  kind: 'Workload',
  plural: 'workloads',
  parent: 'project',
  aliases: ['workload', 'workloads', 'wl'],
  description: 'Virtual machines (later containers, Kubernetes clusters) with a placement policy.',
  spec: WorkloadSpec,
  status: WorkloadStatus,
  creatable: true,
  filters: ['phase'],
  columns: (_spec, status) => ({ phase: status.phase }),
  initialStatus: () => ({ phase: 'Pending', observedGeneration: 0, readyReplicas: 0 }),
  check: (spec) => [...kindErrors(spec), ...placementErrors(spec.placement, spec.replicas)],
};

/** What belongs to VMs only and what to containers only. */
function kindErrors(spec: WorkloadSpec): FieldError[] {
  const errors: FieldError[] = [];
  if (spec.kind === 'container') {
    if (spec.userData !== undefined)
      errors.push({
        path: 'spec.userData',
        message: 'containers take no cloud-init user data (use spec.container.env)',
      });
    if (spec.resources.diskGiB !== undefined)
      errors.push({ path: 'spec.resources.diskGiB', message: 'containers have no disk of their own' });
    if (spec.resources.accelerators)
      errors.push({
        path: 'spec.resources.accelerators',
        message: 'accelerators are for VMs only (for now)',
      });
  } else if (spec.container) errors.push({ path: 'spec.container', message: "only for kind 'container'" });
  return errors;
}

/** What a workload consumes against its project's quota. */
export function workloadUsage(spec: WorkloadSpec) {
  return {
    vcpus: spec.resources.vcpus * spec.replicas,
    memoryMiB: spec.resources.memoryMiB * spec.replicas,
    instances: spec.replicas,
  };
}
