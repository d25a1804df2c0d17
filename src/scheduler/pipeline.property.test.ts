// Properties of placement over random fleets and policies (fast-check). The oracles
// here are written independently of the filters they check.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { findCity, type PlacementPolicy } from '../model/index.js';
import { domainOf, estimateRttMs, schedule } from './index.js';
import { candidate } from './testing.js';
import type { CandidateNode, PlacementRequest } from './types.js';

const COUNTRIES = ['DE', 'FR', 'ES', 'PL', 'SE'] as const;
const COORDS: Record<string, [number, number]> = {
  DE: [50.11, 8.68],
  FR: [48.86, 2.35],
  ES: [40.42, -3.7],
  PL: [52.23, 21.01],
  SE: [59.33, 18.07],
};
const PROVIDERS = ['p0', 'p1', 'p2', 'p3'];
const CERTS = ['C5', 'ISO27001', 'SecNumCloud'] as const;

const nodeArb = (i: number) =>
  fc
    .record({
      provider: fc.constantFrom(...PROVIDERS),
      country: fc.constantFrom(...COUNTRIES),
      ready: fc.boolean(),
      kvm: fc.boolean(),
      arch: fc.constantFrom('x86_64', 'aarch64'),
      nonEu: fc.boolean(),
      euControlled: fc.boolean(),
      certs: fc.subarray([...CERTS]),
      vcpus: fc.integer({ min: 1, max: 32 }),
      memGiB: fc.integer({ min: 1, max: 64 }),
      usedFrac: fc.double({ min: 0, max: 1, noNaN: true }),
      tier: fc.constantFrom('core', 'regional', 'edge', 'far-edge' as const),
    })
    .map((r): CandidateNode => {
      const [lat, lon] = COORDS[r.country]!;
      return candidate({
        provider: r.provider,
        node: `n${i}`,
        key: `${r.provider}/n${i}`,
        ready: r.ready,
        virtualization: r.kvm ? 'kvm' : 'emulation',
        architecture: r.arch,
        capacity: { vcpus: r.vcpus, memoryMiB: r.memGiB * 1024, diskGiB: 100 },
        allocated: {
          vcpus: Math.floor(r.vcpus * r.usedFrac),
          memoryMiB: Math.floor(r.memGiB * 1024 * r.usedFrac),
          diskGiB: 0,
          accelerators: 0,
        },
        siteInfo: {
          country: r.country,
          latitude: lat,
          longitude: lon,
          tier: r.tier as any,
          carbonIntensity: 100,
        },
        providerInfo: {
          jurisdiction: r.nonEu ? 'non-EU' : 'EU',
          euControlled: r.euControlled,
          certifications: r.certs,
          sovereigntyLevel: 'eu-controlled',
        },
      });
    });

const fleetArb = fc
  .integer({ min: 1, max: 30 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => nodeArb(i))));

const policyArb: fc.Arbitrary<PlacementPolicy> = fc.record(
  {
    countries: fc.subarray([...COUNTRIES], { minLength: 1 }),
    providers: fc.record({ deny: fc.subarray(PROVIDERS) }),
    jurisdiction: fc.constant('EU' as const),
    euControlled: fc.boolean(),
    certifications: fc.subarray([...CERTS]),
    architecture: fc.constantFrom('x86_64', 'aarch64' as const),
    virtualization: fc.constantFrom('kvm', 'any' as const),
    latency: fc.array(
      fc.record({
        city: fc.constantFrom('Madrid', 'Warsaw', 'Paris', 'Berlin'),
        maxRttMs: fc.integer({ min: 1, max: 60 }),
      }),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
);

const resourcesArb = fc.record({
  vcpus: fc.integer({ min: 1, max: 8 }),
  memoryMiB: fc.integer({ min: 128, max: 16384 }),
  diskGiB: fc.constant(10),
});

function request(
  policy: PlacementPolicy,
  resources: PlacementRequest['resources'],
  spreadCounts = new Map<string, number>(),
): PlacementRequest {
  return { workload: 'w', policy, resources, spreadCounts };
}

test('property: no placement breaks a hard rule', () => {
  fc.assert(
    fc.property(fleetArb, policyArb, resourcesArb, (nodes, policy, resources) => {
      const d = schedule(nodes, request(policy, resources));
      if (!d.ok) return;
      const n = d.node;
      assert.ok(n.ready);
      if (policy.countries) assert.ok(policy.countries.includes(n.siteInfo.country));
      if (policy.providers?.deny) assert.ok(!policy.providers.deny.includes(n.provider));
      if (policy.jurisdiction) assert.equal(n.providerInfo.jurisdiction, 'EU');
      if (policy.euControlled) assert.ok(n.providerInfo.euControlled);
      for (const c of policy.certifications ?? []) assert.ok(n.providerInfo.certifications.includes(c));
      assert.equal(n.architecture, policy.architecture ?? 'x86_64');
      if (policy.virtualization === 'kvm') assert.equal(n.virtualization, 'kvm');
      for (const t of policy.latency ?? []) {
        const c = findCity(t.city!)!;
        assert.ok(estimateRttMs(n.siteInfo, c) <= t.maxRttMs);
      }
      assert.ok(n.capacity.vcpus - n.allocated.vcpus >= resources.vcpus);
      assert.ok(n.capacity.memoryMiB - n.allocated.memoryMiB >= resources.memoryMiB);
    }),
    { numRuns: 500 },
  );
});

test('property: capacity is never exceeded, however many replicas are placed', () => {
  fc.assert(
    fc.property(fleetArb, fc.array(resourcesArb, { minLength: 1, maxLength: 60 }), (fleet, replicas) => {
      const nodes = fleet.map((n) => ({ ...n, allocated: { ...n.allocated } }));
      for (const resources of replicas) {
        const d = schedule(nodes, request({ architecture: undefined }, resources));
        if (!d.ok) continue;
        const target = nodes.find((n) => n.key === d.node.key)!;
        (target.allocated as any).vcpus += resources.vcpus;
        (target.allocated as any).memoryMiB += resources.memoryMiB;
        (target.allocated as any).diskGiB += resources.diskGiB;
      }
      for (const n of nodes) {
        const orig = fleet.find((f) => f.key === n.key)!;
        // Only what the scheduler added is checked against capacity: fixtures may start over-full.
        if (n.allocated.vcpus !== orig.allocated.vcpus) assert.ok(n.allocated.vcpus <= n.capacity.vcpus);
        if (n.allocated.memoryMiB !== orig.allocated.memoryMiB)
          assert.ok(n.allocated.memoryMiB <= n.capacity.memoryMiB);
      }
    }),
    { numRuns: 300 },
  );
});

test('property: hard spread holds whenever enough domains have room', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 6 }),
      fc.constantFrom('provider', 'country' as const),
      fleetArb,
      (minDomains, extra, across, fleet) => {
        // Scorers pull towards the greenest node; only the hard rule can force the spread.
        const nodes = fleet.map((n, k) => ({
          ...n,
          ready: true,
          architecture: 'x86_64',
          siteInfo: { ...n.siteInfo, carbonIntensity: k === 0 ? 1 : 500 + k },
          allocated: { vcpus: 0, memoryMiB: 0, diskGiB: 0, accelerators: 0 },
        }));
        const domains = new Set(nodes.map((n) => domainOf(n, across)));
        fc.pre(domains.size >= minDomains);
        const counts = new Map<string, number>();
        const resources = { vcpus: 1, memoryMiB: 128, diskGiB: 1 };
        for (let i = 0; i < minDomains + extra; i++) {
          const d = schedule(
            nodes,
            request(
              { spread: { across, minDomains, mode: 'hard' }, weights: { carbon: 100, cost: 0, balance: 0 } },
              resources,
              counts,
            ),
          );
          if (!d.ok) break;
          const dom = domainOf(d.node, across);
          counts.set(dom, (counts.get(dom) ?? 0) + 1);
          const t = nodes.find((n) => n.key === d.node.key)!;
          t.allocated.vcpus += 1;
          t.allocated.memoryMiB += 128;
        }
        const placed = [...counts.values()].reduce((a, b) => a + b, 0);
        if (placed >= minDomains)
          assert.ok(counts.size >= minDomains, `${counts.size} domains for minDomains ${minDomains}`);
      },
    ),
    { numRuns: 300 },
  );
});
