// Properties of placing many replicas of one workload through one Placer, which picks
// siblings from the pool of its first scan: the same guarantees as placing each alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { PlacementPolicy } from '../model/index.js';
import { domainOf, FILTERS, Placer, SCORERS, StaticClasses } from './index.js';
import { candidate } from './testing.js';
import type { CandidateNode, PlacementRequest } from './types.js';

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

/**
 * The definition the Placer's pool and incremental scoring must agree with: every node
 * through every filter, every weighed scorer rescaled to 0–100 over the feasible nodes,
 * the weighted mean, the highest first (the earlier node on a tie).
 */
function reference(nodes: readonly CandidateNode[], req: PlacementRequest) {
  const feasible = nodes.filter((n) => FILTERS.every((f) => !f.check(n, req)));
  if (!feasible.length) return undefined;
  const weights = SCORERS.map((s) => {
    if (s.name === 'latency' && !req.policy.latency?.length) return 0;
    if (s.name === 'spread' && !req.policy.spread) return 0;
    return (req.policy.weights as Record<string, number> | undefined)?.[s.name] ?? s.defaultWeight;
  });
  const totals = feasible.map(() => 0);
  SCORERS.forEach((s, j) => {
    if (!weights[j]) return;
    const raw = feasible.map((n) => s.score(n, req));
    const min = Math.min(...raw);
    const max = Math.max(...raw);
    raw.forEach((v, k) => {
      totals[k]! += (max === min ? 100 : (100 * (v - min)) / (max - min)) * weights[j]!;
    });
  });
  let best = 0;
  totals.forEach((t, k) => {
    if (t > totals[best]!) best = k;
  });
  const sum = weights.reduce((a, b) => a + b, 0);
  return { node: feasible[best]!.key, total: Math.round((sum ? totals[best]! / sum : 100) * 10) / 10 };
}

/** A fresh copy of the fleet (nothing allocated yet), with site prices that differ. */
function priced(fleet: readonly CandidateNode[]): CandidateNode[] {
  return fleet.map((n, i) => ({
    ...n,
    allocated: { ...n.allocated },
    siteInfo: { ...n.siteInfo, prices: { vcpuHour: 0.01 * (i % 7), memoryGbHour: 0.002 * (i % 5) } },
  }));
}

/** A replica of 1 vCPU, 1 GiB and 1 GiB of disk. */
function request(policy: PlacementPolicy, counts: Map<string, number>): PlacementRequest {
  return {
    workload: 'w',
    policy,
    resources: { vcpus: 1, memoryMiB: 1024, diskGiB: 1 },
    spreadCounts: counts,
  };
}

/** What binding such a replica does: its room taken, its domain counted. */
function bind(n: CandidateNode, policy: PlacementPolicy, counts: Map<string, number>): void {
  n.allocated.vcpus += 1;
  n.allocated.memoryMiB += 1024;
  n.allocated.diskGiB += 1;
  if (policy.spread) {
    const dom = domainOf(n, policy.spread.across);
    counts.set(dom, (counts.get(dom) ?? 0) + 1);
  }
}

const policyArb: fc.Arbitrary<PlacementPolicy> = fc.record(
  {
    strategy: fc.constantFrom('balance' as const, 'pack' as const),
    weights: fc.record(
      {
        cost: fc.integer({ min: 0, max: 100 }),
        carbon: fc.integer({ min: 0, max: 100 }),
        balance: fc.integer({ min: 0, max: 100 }),
        spread: fc.integer({ min: 0, max: 100 }),
      },
      { requiredKeys: [] },
    ),
    spread: fc.record({
      across: fc.constantFrom('provider' as const, 'country' as const),
      minDomains: fc.integer({ min: 1, max: 3 }),
      mode: fc.constantFrom('hard' as const, 'soft' as const),
    }),
    latency: fc.constant([{ city: 'Madrid', maxRttMs: 200 }]),
  },
  { requiredKeys: [] },
);

test('property: replicas picked from the pool are those a full scoring of every node picks', () => {
  fc.assert(
    fc.property(fleetArb, policyArb, fc.integer({ min: 1, max: 20 }), (fleet, policy, replicas) => {
      const nodes = priced(fleet);
      const counts = new Map<string, number>();
      const placer = new Placer(() => nodes);
      for (let i = 0; i < replicas; i++) {
        const req = request(policy, counts);
        const want = reference(nodes, req);
        const d = placer.place(req);
        assert.equal(d.ok ? d.node.key : undefined, want?.node, `replica ${i}`);
        if (!d.ok) break;
        assert.equal(d.explanation.topScores[0]!.total, want!.total);
        bind(d.node, policy, counts);
      }
    }),
    { numRuns: 300 },
  );
});

/** Rejections per reason by the definition: each node under the first filter it fails. */
function referenceRejections(nodes: readonly CandidateNode[], req: PlacementRequest) {
  const filtered: Record<string, number> = {};
  for (const n of nodes) {
    const reason = FILTERS.map((f) => f.check(n, req)).find((r) => r !== undefined);
    if (reason) filtered[reason] = (filtered[reason] ?? 0) + 1;
  }
  return filtered;
}

test('property: with static classes shared between workloads, every decision is what a full scoring picks', () => {
  fc.assert(
    fc.property(
      fleetArb,
      fc.array(policyArb, { minLength: 1, maxLength: 2 }),
      fc.array(
        fc.record({
          policy: fc.nat(),
          countries: fc.option(fc.subarray(['DE', 'FR', 'PL'], { minLength: 1 }), { nil: undefined }),
          replicas: fc.integer({ min: 1, max: 5 }),
          // Before this workload, a node changes (it goes unready or comes back).
          flip: fc.option(fc.nat(), { nil: undefined }),
        }),
        { minLength: 1, maxLength: 6 },
      ),
      (fleet, policies, workloads) => {
        const nodes = priced(fleet);
        const classes = new StaticClasses();
        let version = 0;
        for (const w of workloads) {
          if (w.flip !== undefined) {
            // As the cluster cache does: a changed node is a new object and a new version.
            const k = w.flip % nodes.length;
            nodes[k] = { ...nodes[k]!, ready: !nodes[k]!.ready };
            version++;
          }
          const policy: PlacementPolicy = {
            ...policies[w.policy % policies.length]!,
            ...(w.countries ? { countries: w.countries } : {}),
          };
          const counts = new Map<string, number>();
          const placer = new Placer(() => nodes, { classes: { cache: classes, version } });
          for (let i = 0; i < w.replicas; i++) {
            const req = request(policy, counts);
            const want = reference(nodes, req);
            const rejections = referenceRejections(nodes, req);
            const d = placer.place(req);
            assert.equal(d.ok, want !== undefined, `replica ${i}`);
            if (i === 0 || !d.ok) {
              // A fresh scan (or the failure it left): every node counted once, by reason.
              assert.equal(d.explanation.nodesEvaluated, nodes.length);
              assert.deepEqual(d.explanation.filtered, rejections);
            }
            const e = d.explanation;
            const filtered = Object.values(e.filtered).reduce((a, b) => a + b, 0);
            assert.equal(e.nodesEvaluated, e.feasible + filtered, 'evaluated = feasible + filtered');
            if (!d.ok) break;
            // Ties may go to another node of the same total (the scan starts at random).
            assert.equal(d.explanation.topScores[0]!.total, want!.total);
            assert.ok(
              FILTERS.every((f) => !f.check(d.node, req)),
              'the chosen node passes every filter',
            );
            assert.ok(nodes.includes(d.node), 'a current node, not one from before a change');
            bind(d.node, policy, counts);
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});
