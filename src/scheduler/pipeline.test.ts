// The placement pipeline: each filter rejects for its stated reason (table), scores
// decide among feasible nodes, and every decision explains itself.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PlacementPolicy } from '../model/index.js';
import { estimateRttMs, minimumRttMs, REASONS, rttMs, schedule } from './index.js';
import { candidate } from './testing.js';
import type { CandidateNode, PlacementRequest } from './types.js';

const req = (policy: PlacementPolicy = {}, over: Partial<PlacementRequest> = {}): PlacementRequest => ({
  workload: 'w',
  policy,
  resources: { vcpus: 2, memoryMiB: 2048, diskGiB: 10 },
  spreadCounts: new Map(),
  ...over,
});

const madrid = { city: 'Madrid', maxRttMs: 5 };
const cases: [
  string,
  Partial<CandidateNode>,
  PlacementPolicy,
  string | undefined,
  Partial<PlacementRequest>?,
][] = [
  ['a plain node passes', {}, {}, undefined],
  ['pinned elsewhere', {}, { node: 'p1/other' }, REASONS.pinned],
  ['pinned here', {}, { node: 'p1/n1' }, undefined],
  ['the node being replaced', {}, {}, REASONS.avoided, { avoid: new Set(['p1/n1']) }],
  ['not ready', { ready: false }, {}, REASONS.notReady],
  ['cordoned', { unschedulable: true }, {}, REASONS.cordoned],
  ['denied provider', {}, { providers: { deny: ['p1'] } }, REASONS.providerDenied],
  ['provider outside the allow list', {}, { providers: { allow: ['p2'] } }, REASONS.providerDenied],
  ['country not allowed', {}, { countries: ['ES', 'PT'] }, REASONS.country],
  ['site not allowed', {}, { sites: ['p1/s2', 'p2/s1'] }, REASONS.site],
  ['site allowed', {}, { sites: ['p2/s1', 'p1/s1'] }, undefined],
  [
    'non-EU jurisdiction',
    {
      providerInfo: {
        jurisdiction: 'non-EU',
        euControlled: false,
        certifications: [],
        sovereigntyLevel: 'none',
      },
    },
    { jurisdiction: 'EU' },
    REASONS.jurisdiction,
  ],
  [
    'not EU-controlled',
    {
      providerInfo: {
        jurisdiction: 'EU',
        euControlled: false,
        certifications: [],
        sovereigntyLevel: 'eu-jurisdiction',
      },
    },
    { euControlled: true },
    REASONS.euControl,
  ],
  ['sovereignty too low', {}, { minSovereignty: 'certified' }, REASONS.sovereignty],
  ['missing certification', {}, { certifications: ['C5'] }, REASONS.certification],
  ['wrong architecture', { architecture: 'aarch64' }, {}, REASONS.architecture],
  ['needs KVM, has emulation', { virtualization: 'emulation' }, { virtualization: 'kvm' }, REASONS.noKvm],
  ['needs SEV-SNP', { cpuSecurity: ['tdx'] }, { confidentialComputing: 'sev-snp' }, REASONS.confidential],
  ['label mismatch', { labels: { zone: 'a' } }, { nodeSelector: { zone: 'b' } }, REASONS.labels],
  ['too far from Madrid (Frankfurt)', {}, { latency: [madrid] }, REASONS.latency],
  [
    'close to Madrid',
    { siteInfo: { country: 'ES', latitude: 40.42, longitude: -3.7, tier: 'edge', carbonIntensity: 150 } },
    { latency: [madrid] },
    undefined,
  ],
  [
    'hard spread: domain already used',
    {},
    { spread: { across: 'provider', minDomains: 2, mode: 'hard' } },
    REASONS.spread,
    { spreadCounts: new Map([['p1', 1]]) },
  ],
  [
    'hard spread satisfied already',
    {},
    { spread: { across: 'provider', minDomains: 1, mode: 'hard' } },
    undefined,
    { spreadCounts: new Map([['p1', 1]]) },
  ],
  [
    'full node',
    { allocated: { vcpus: 15, memoryMiB: 0, diskGiB: 0, accelerators: 0 } },
    {},
    REASONS.resources,
  ],
  [
    'no GPU',
    {},
    {},
    REASONS.accelerator,
    { resources: { vcpus: 1, memoryMiB: 1, diskGiB: 1, accelerators: { vendor: 'NVIDIA', count: 1 } } },
  ],
  [
    'GPU too small',
    { accelerators: [{ vendor: 'NVIDIA', model: 'L4', memoryMiB: 24576, count: 1 }] },
    {},
    REASONS.accelerator,
    {
      resources: {
        vcpus: 1,
        memoryMiB: 1,
        diskGiB: 1,
        accelerators: { model: 'L4', minMemoryMiB: 81920, count: 1 },
      },
    },
  ],
  [
    'GPU fits',
    { accelerators: [{ vendor: 'NVIDIA', model: 'H100 80GB', memoryMiB: 81920, count: 8 }] },
    {},
    undefined,
    { resources: { vcpus: 1, memoryMiB: 1, diskGiB: 1, accelerators: { model: 'h100', count: 4 } } },
  ],
];

for (const [what, node, policy, reason, over] of cases) {
  test(`filter: ${what}`, () => {
    const d = schedule([candidate(node)], req(policy, over));
    if (reason === undefined) assert.ok(d.ok, JSON.stringify(d.explanation));
    else {
      assert.equal(d.ok, false);
      assert.deepEqual(d.explanation.filtered, { [reason]: 1 });
    }
  });
}

test('an unplaceable replica says why, counted per reason and per exhausted dimension', () => {
  const nodes = [
    candidate({ node: 'a', virtualization: 'emulation' }),
    candidate({ node: 'b', virtualization: 'emulation' }),
    candidate({ node: 'c', allocated: { vcpus: 0, memoryMiB: 65000, diskGiB: 0, accelerators: 0 } }),
    candidate({ node: 'd', ready: false }),
  ];
  const d = schedule(nodes, req({ virtualization: 'kvm' }));
  assert.equal(d.ok, false);
  assert.deepEqual(d.explanation.filtered, {
    [REASONS.noKvm]: 2,
    [REASONS.resources]: 1,
    [REASONS.notReady]: 1,
  });
  assert.deepEqual(d.explanation.exhausted, { memoryMiB: 1 });
  assert.equal(
    d.ok === false && d.message,
    '0/4 nodes are available: 2 missing kvm, 1 resources exhausted, 1 node not ready',
  );
});

test('weights decide: carbon picks the greenest site, cost the cheapest, latency the closest', () => {
  const site = (country: string, lat: number, lon: number, carbonIntensity: number, vcpuHour: number) => ({
    country,
    latitude: lat,
    longitude: lon,
    tier: 'edge' as const,
    carbonIntensity,
    prices: { vcpuHour, memoryGbHour: 0.001 },
  });
  const nodes = [
    candidate({ provider: 'se', siteInfo: site('SE', 59.33, 18.07, 30, 0.05) }),
    candidate({ provider: 'pl', siteInfo: site('PL', 52.23, 21.01, 660, 0.01) }),
    candidate({ provider: 'es', siteInfo: site('ES', 40.42, -3.7, 150, 0.03) }),
  ];
  const pick = (policy: PlacementPolicy) => {
    const d = schedule(nodes, req(policy));
    assert.ok(d.ok);
    return d.node.provider;
  };
  assert.equal(pick({ weights: { carbon: 100, cost: 0, balance: 0 } }), 'se');
  assert.equal(pick({ weights: { cost: 100, carbon: 0, balance: 0 } }), 'pl');
  assert.equal(
    pick({
      latency: [{ city: 'Lisbon', maxRttMs: 100 }],
      weights: { latency: 100, cost: 0, carbon: 0, balance: 0 },
    }),
    'es',
  );
  const d = schedule(nodes, req({ weights: { carbon: 100, cost: 0, balance: 0 } }));
  assert.ok(d.ok);
  assert.equal(d.explanation.topScores[0]!.node, 'se/n1');
  assert.equal(d.explanation.topScores[0]!.scores.carbon, 100);
  assert.equal(d.explanation.topScores.length, 3);
});

test('the latency model: Madrid to Madrid is the tier overhead, Frankfurt to Madrid about 23 ms', () => {
  assert.equal(
    estimateRttMs({ latitude: 40.42, longitude: -3.7, tier: 'edge' }, { latitude: 40.42, longitude: -3.7 }),
    1,
  );
  const fra = estimateRttMs(
    { latitude: 50.11, longitude: 8.68, tier: 'regional' },
    { latitude: 40.42, longitude: -3.7 },
  );
  assert.ok(fra > 22 && fra < 25, String(fra));
});

test('a measurement below the physical minimum is not used: the estimate is', () => {
  const frankfurt = { latitude: 50.11, longitude: 8.68, tier: 'regional' as const };
  const madrid = { city: 'Madrid', maxRttMs: 30 };
  // About 1,420 km: at least 14.2 ms there and back in fibre.
  const floor = minimumRttMs(frankfurt, { latitude: 40.42, longitude: -3.7 });
  assert.ok(floor > 14 && floor < 14.5, String(floor));
  assert.equal(rttMs({ ...frankfurt, measuredRttMs: { Madrid: 16 } }, madrid), 16);
  const estimate = estimateRttMs(frankfurt, { latitude: 40.42, longitude: -3.7 });
  assert.equal(rttMs({ ...frankfurt, measuredRttMs: { Madrid: 3 } }, madrid), estimate);
});
