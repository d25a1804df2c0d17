// Properties of placing many replicas of one workload through one Placer, which picks
// siblings from the pool of its first scan: the same guarantees as placing each alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { domainOf, Placer } from './index.js';
import { candidate } from './testing.js';
import type { CandidateNode } from './types.js';

const fleetArb = fc
  .array(
    fc.record({
      provider: fc.constantFrom('p0', 'p1', 'p2', 'p3', 'p4'),
      country: fc.constantFrom('DE', 'FR', 'PL'),
      ready: fc.boolean(),
      vcpus: fc.integer({ min: 1, max: 16 }),
      memGiB: fc.integer({ min: 1, max: 32 }),
      carbon: fc.integer({ min: 10, max: 800 }),
    }),
    { minLength: 1, maxLength: 40 },
  )
  .map((rows) =>
    rows.map(
      (r, i): CandidateNode =>
        candidate({
          provider: r.provider,
          node: `n${i}`,
          key: `${r.provider}/n${i}`,
          ready: r.ready,
          capacity: { vcpus: r.vcpus, memoryMiB: r.memGiB * 1024, diskGiB: 100 },
          allocated: { vcpus: 0, memoryMiB: 0, diskGiB: 0, accelerators: 0 },
          siteInfo: {
            country: r.country,
            latitude: 50,
            longitude: 10,
            tier: 'core',
            carbonIntensity: r.carbon,
          },
        }),
    ),
  );

test('property: one placer for many replicas never overcommits, never breaks a rule, holds hard spread', () => {
  fc.assert(
    fc.property(
      fleetArb,
      fc.integer({ min: 1, max: 30 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 20 }),
      fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
      (fleet, replicas, vcpus, limit, minDomains) => {
        const nodes = fleet.map((n) => ({ ...n, allocated: { ...n.allocated } }));
        const policy = {
          countries: ['DE', 'FR'],
          ...(minDomains
            ? { spread: { across: 'provider' as const, minDomains, mode: 'hard' as const } }
            : {}),
        };
        const resources = { vcpus, memoryMiB: 1024, diskGiB: 1 };
        const counts = new Map<string, number>();
        const placer = new Placer(() => nodes, { limitFeasible: limit });
        const chosen: CandidateNode[] = [];
        for (let i = 0; i < replicas; i++) {
          const d = placer.place({ workload: 'w', policy, resources, spreadCounts: counts });
          if (!d.ok) continue;
          const n = nodes.find((x) => x.key === d.node.key)!;
          assert.ok(n.ready && ['DE', 'FR'].includes(n.siteInfo.country));
          n.allocated.vcpus += vcpus;
          n.allocated.memoryMiB += 1024;
          assert.ok(n.allocated.vcpus <= n.capacity.vcpus, 'vCPUs overcommitted');
          assert.ok(n.allocated.memoryMiB <= n.capacity.memoryMiB, 'memory overcommitted');
          const dom = domainOf(n, 'provider');
          counts.set(dom, (counts.get(dom) ?? 0) + 1);
          chosen.push(n);
        }
        if (minDomains) {
          // Until minDomains are used, no domain holds two replicas — whenever the fleet
          // had enough eligible domains with room for one.
          const eligible = new Set(
            nodes
              .filter(
                (n) => n.ready && ['DE', 'FR'].includes(n.siteInfo.country) && n.capacity.vcpus >= vcpus,
              )
              .map((n) => n.provider),
          );
          const firstK = chosen.slice(0, Math.min(minDomains, eligible.size));
          assert.equal(new Set(firstK.map((n) => n.provider)).size, firstK.length, 'spread broken');
        }
      },
    ),
    { numRuns: 400 },
  );
});
