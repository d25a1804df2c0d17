// Manifest validation: every error names the field path and says what is wrong.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type KindDef, manifestSchema, providerKind, siteKind, validate, workloadKind } from './index.js';
import { sovereigntyLevel } from './kinds/provider.js';
import { bindingErrors } from './kinds/user.js';

const site = (spec: object, metadata: object = { name: 'fra-1', provider: 'p' }) => ({
  kind: 'Site',
  metadata,
  spec,
});
const goodSite = {
  country: 'DE',
  location: { latitude: 50.11, longitude: 8.68 },
  tier: 'edge',
  carbonIntensity: 380,
};

async function errorsOf(def: KindDef, doc: any) {
  const schema = validate(manifestSchema(def), doc);
  const semantic = schema.length ? [] : await (def.check?.(doc.spec, { exists: async () => true }) ?? []);
  return [...schema, ...semantic].map((e) => `${e.path}: ${e.message}`);
}

const cases: [string, KindDef, any, string[]][] = [
  ['a valid site', siteKind, site(goodSite), []],
  [
    'latitude above 90',
    siteKind,
    site({ ...goodSite, location: { latitude: 90.5, longitude: 1 } }),
    ['spec.location.latitude: must be <= 90'],
  ],
  [
    'longitude below -180',
    siteKind,
    site({ ...goodSite, location: { latitude: 1, longitude: -181 } }),
    ['spec.location.longitude: must be >= -180'],
  ],
  [
    'a number given as a string',
    siteKind,
    site({ ...goodSite, carbonIntensity: '380' }),
    ['spec.carbonIntensity: must be of type number'],
  ],
  ['an unknown field', siteKind, site({ ...goodSite, colour: 'red' }), ["spec: unknown field 'colour'"]],
  ['a missing field', siteKind, site({ ...goodSite, tier: undefined }), ['spec.tier: is required']],
  [
    'an unknown tier',
    siteKind,
    site({ ...goodSite, tier: 'huge' }),
    ['spec.tier: must be one of: core, regional, edge, far-edge'],
  ],
  [
    'an unknown country',
    siteKind,
    site({ ...goodSite, country: 'XX' }),
    ["spec.country: unknown country code 'XX' (expected an ISO 3166-1 alpha-2 code such as DE)"],
  ],
  [
    'a lower-case country',
    siteKind,
    site({ ...goodSite, country: 'de' }),
    ['spec.country: has an invalid format (must match ^[A-Z]{2}$)'],
  ],
  [
    'a bad name',
    siteKind,
    site(goodSite, { name: 'Fra_1' }),
    ['metadata.name: has an invalid format (must match ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$)'],
  ],
  ['a wrong kind', siteKind, { ...site(goodSite), kind: 'Provider' }, ['kind: must be "Site"']],
  [
    'an unknown certification',
    providerKind,
    {
      kind: 'Provider',
      metadata: { name: 'p' },
      spec: { headquarters: 'DE', jurisdiction: 'EU', euControlled: true, certifications: ['ISO9001'] },
    },
    [
      'spec.certifications[0]: must be one of: EUCS-basic, EUCS-substantial, EUCS-high, SecNumCloud, C5, ISO27001, ISO27017, ISO27018, ENS-high, TISAX, SOC2',
    ],
  ],
  [
    'a provider both allowed and denied',
    workloadKind,
    {
      kind: 'Workload',
      metadata: { name: 'w', project: 'p' },
      spec: {
        kind: 'vm',
        image: 'i',
        replicas: 1,
        resources: { vcpus: 1, memoryMiB: 64 },
        placement: { providers: { allow: ['a'], deny: ['a'] } },
      },
    },
    ["spec.placement.providers.allow[0]: provider 'a' is both allowed and denied"],
  ],
  [
    'a latency target in an unknown city',
    workloadKind,
    {
      kind: 'Workload',
      metadata: { name: 'w' },
      spec: {
        kind: 'vm',
        image: 'i',
        replicas: 1,
        resources: { vcpus: 1, memoryMiB: 64 },
        placement: { latency: [{ city: 'Atlantis', maxRttMs: 5 }] },
      },
    },
    ["spec.placement.latency[0].city: unknown city 'Atlantis' (see data/eu-cities.csv)"],
  ],
  [
    'a latency target in a known city',
    workloadKind,
    {
      kind: 'Workload',
      metadata: { name: 'w' },
      spec: {
        kind: 'vm',
        image: 'i',
        replicas: 1,
        resources: { vcpus: 1, memoryMiB: 64 },
        placement: { latency: [{ city: 'madrid', maxRttMs: 5 }] },
      },
    },
    [],
  ],
  [
    'more spread domains than replicas',
    workloadKind,
    {
      kind: 'Workload',
      metadata: { name: 'w' },
      spec: {
        kind: 'vm',
        image: 'i',
        replicas: 2,
        resources: { vcpus: 1, memoryMiB: 64 },
        placement: { spread: { across: 'provider', minDomains: 3 } },
      },
    },
    ['spec.placement.spread.minDomains: 3 domains cannot be covered by 2 replicas'],
  ],
  [
    'a fractional vCPU count',
    workloadKind,
    {
      kind: 'Workload',
      metadata: { name: 'w' },
      spec: { kind: 'vm', image: 'i', replicas: 1, resources: { vcpus: 1.5, memoryMiB: 64 } },
    },
    ['spec.resources.vcpus: must be an integer'],
  ],
];

for (const [what, def, doc, expected] of cases) {
  test(`validation: ${what}`, async () => assert.deepEqual(await errorsOf(def, doc), expected));
}

test('sovereignty level follows jurisdiction, EU control and certifications', () => {
  const base = { headquarters: 'DE', euControlled: true } as const;
  assert.equal(sovereigntyLevel({ ...base, jurisdiction: 'non-EU' }), 'none');
  assert.equal(sovereigntyLevel({ ...base, jurisdiction: 'EU', euControlled: false }), 'eu-jurisdiction');
  assert.equal(sovereigntyLevel({ ...base, jurisdiction: 'EU' }), 'eu-controlled');
  assert.equal(
    sovereigntyLevel({ ...base, jurisdiction: 'EU', certifications: ['ISO27001'] }),
    'eu-controlled',
  );
  assert.equal(sovereigntyLevel({ ...base, jurisdiction: 'EU', certifications: ['C5'] }), 'certified');
  assert.equal(
    sovereigntyLevel({ ...base, jurisdiction: 'EU', certifications: ['C5', 'SecNumCloud'] }),
    'sovereign',
  );
});

test('role bindings name exactly the scope their role needs', () => {
  assert.deepEqual(bindingErrors({ role: 'federation-admin' }, 'r'), []);
  assert.deepEqual(bindingErrors({ role: 'provider-admin' }, 'r'), [
    { path: 'r.provider', message: 'provider-admin needs a provider' },
  ]);
  assert.deepEqual(bindingErrors({ role: 'project-member', project: 'p' }, 'r'), []);
  assert.deepEqual(bindingErrors({ role: 'project-admin', project: 'p', provider: 'x' }, 'r'), [
    { path: 'r.provider', message: 'project-admin takes no provider' },
  ]);
});
