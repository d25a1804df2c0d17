// Properties of the workload planner, driven without a database over generated fleets
// (providers of every sovereignty level, certifications, countries, labels, confidential
// computing, accelerators, nodes down or drained, load from other workloads) and
// generated workloads with instances already bound, some of them wrongly. Each case is
// planned, applied to a model, then the workload's policy, size and replica count change
// and it is planned again. The rules are checked by an oracle written here from the
// model's definitions, not with the scheduler's filters.
//  - soundness: a plan binds replicas only to ready, schedulable nodes that keep every
//    rule and have room; no node ends beyond its capacity; never two live copies of a
//    replica; a replica left where it breaks the rules is reported out of policy;
//  - completeness: a replica left unplaced, out of policy or on a lost node has no
//    compliant node with room anywhere in the fleet.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  CERTIFICATIONS,
  type PlacementPolicy,
  SOVEREIGNTY_LEVELS,
  type WorkloadSpec,
} from '../model/index.js';
import { type CandidateNode, StaticClasses } from '../scheduler/index.js';
import { candidate } from '../scheduler/testing.js';
import type { InstanceRecord } from '../store/index.js';
import { MemoryFleet } from './memory-fleet.js';
import { type PlannedStatus, type PlanStep, planWorkload, type WorkloadPlan } from './workload-plan.js';

type Node = CandidateNode & { state: string };
type Resources = WorkloadSpec['resources'];

const COUNTRIES = ['DE', 'FR', 'PL'] as const;
const IMAGE = { project: 'q', name: 'img', format: 'raw' as const, files: {} };

// ---- generated fleets ----------------------------------------------------------------

const providerArb = fc.record({
  jurisdiction: fc.constantFrom('EU' as const, 'non-EU' as const),
  euControlled: fc.boolean(),
  sovereigntyLevel: fc.constantFrom(...SOVEREIGNTY_LEVELS),
  certifications: fc.subarray([...CERTIFICATIONS], { maxLength: 3 }),
});

const nodeArb = fc.record({
  provider: fc.integer({ min: 0, max: 2 }),
  site: fc.constantFrom('s0', 's1'),
  country: fc.constantFrom(...COUNTRIES),
  state: fc.constantFrom('ready', 'ready', 'ready', 'ready', 'suspect', 'down'),
  unschedulable: fc.boolean().map((b) => b && Math.random() < 0.3),
  draining: fc.constantFrom(false, false, false, false, true),
  zone: fc.constantFrom('a', 'b'),
  virtualization: fc.constantFrom('kvm' as const, 'emulation' as const),
  cpuSecurity: fc.subarray(['sev-snp', 'tdx']),
  gpus: fc.constantFrom(0, 0, 1, 2),
  gpuModel: fc.constantFrom('L4', 'A100'),
  vcpus: fc.integer({ min: 2, max: 16 }),
  memoryMiB: fc.integer({ min: 1, max: 16 }).map((g) => g * 1024),
  diskGiB: fc.integer({ min: 20, max: 200 }),
  // Taken by other workloads.
  load: fc.double({ min: 0, max: 0.9, noNaN: true }),
});

const fleetArb = fc
  .tuple(
    fc.array(providerArb, { minLength: 3, maxLength: 3 }),
    fc.array(nodeArb, { minLength: 1, maxLength: 10 }),
  )
  .map(([providers, rows]) =>
    rows.map((r, i): Node => {
      const p = providers[r.provider]!;
      const provider = `p${r.provider}`;
      const node: Node = {
        ...candidate({
          provider,
          node: `n${i}`,
          key: `${provider}/n${i}`,
          site: r.site,
          ready: r.state === 'ready',
          unschedulable: r.unschedulable || r.draining,
          draining: r.draining,
          virtualization: r.virtualization,
          cpuSecurity: r.cpuSecurity,
          accelerators: r.gpus
            ? [{ vendor: 'nvidia', model: r.gpuModel, memoryMiB: 24576, count: r.gpus }]
            : [],
          labels: { zone: r.zone },
          capacity: { vcpus: r.vcpus, memoryMiB: r.memoryMiB, diskGiB: r.diskGiB },
          allocated: {
            vcpus: Math.floor(r.vcpus * r.load),
            memoryMiB: Math.floor(r.memoryMiB * r.load),
            diskGiB: Math.floor(r.diskGiB * r.load),
            accelerators: 0,
          },
          siteInfo: { country: r.country, latitude: 50, longitude: 10, tier: 'edge', carbonIntensity: 300 },
          providerInfo: p,
        }),
        state: r.state,
      };
      return node;
    }),
  );

// ---- generated workloads -------------------------------------------------------------

const policyArb: fc.Arbitrary<PlacementPolicy> = fc
  .record(
    {
      countries: fc.subarray([...COUNTRIES], { minLength: 1 }),
      jurisdiction: fc.constant('EU' as const),
      euControlled: fc.constant(true),
      minSovereignty: fc.constantFrom(...SOVEREIGNTY_LEVELS),
      certifications: fc.subarray([...CERTIFICATIONS], { minLength: 1, maxLength: 2 }),
      nodeSelector: fc.constantFrom({ zone: 'a' }, { zone: 'b' }),
      virtualization: fc.constant('kvm' as const),
      confidentialComputing: fc.constantFrom('sev-snp' as const, 'tdx' as const, 'any' as const),
      spread: fc.record({
        across: fc.constantFrom('provider' as const, 'site' as const, 'country' as const),
        mode: fc.constantFrom('hard' as const, 'soft' as const),
        minDomains: fc.integer({ min: 2, max: 3 }),
      }),
      onNodeFailure: fc.constantFrom('replace' as const, 'wait' as const),
    },
    { requiredKeys: [] },
  )
  // Mostly few rules at once, so that many cases have somewhere to go.
  .filter((p) => Object.keys(p).length <= 3);

const resourcesArb: fc.Arbitrary<Resources> = fc.record(
  {
    vcpus: fc.integer({ min: 1, max: 4 }),
    memoryMiB: fc.integer({ min: 1, max: 8 }).map((n) => n * 512),
    diskGiB: fc.integer({ min: 5, max: 40 }),
    accelerators: fc.record({ count: fc.integer({ min: 1, max: 2 }), model: fc.constantFrom('L4', 'A100') }),
  },
  { requiredKeys: ['vcpus', 'memoryMiB', 'diskGiB'] },
);

const specArb = fc.record({
  replicas: fc.integer({ min: 0, max: 5 }),
  resources: resourcesArb,
  placement: policyArb,
});

/** Instances already bound: some ordinals twice or beyond the count, some absent, some stopped. */
const boundArb = fc.array(
  fc.record({
    ordinal: fc.integer({ min: 0, max: 6 }),
    node: fc.nat(),
    desired: fc.constantFrom('running' as const, 'running' as const, 'stopped' as const, 'absent' as const),
    resources: resourcesArb,
  }),
  { maxLength: 6 },
);

// ---- the oracle ------------------------------------------------------------------------

function matchingGpus(n: CandidateNode, r: Resources): number {
  const want = r.accelerators;
  if (!want) return 0;
  return n.accelerators
    .filter((a) => !want.model || a.model.toLowerCase().includes(want.model.toLowerCase()))
    .reduce((sum, a) => sum + a.count, 0);
}

/** Every rule of the policy about where a replica of this size may run. */
function keepsRules(n: CandidateNode, p: PlacementPolicy, r: Resources): boolean {
  const levels = SOVEREIGNTY_LEVELS as readonly string[];
  return (
    (!p.countries || p.countries.includes(n.siteInfo.country)) &&
    (!p.jurisdiction || n.providerInfo.jurisdiction === p.jurisdiction) &&
    (!p.euControlled || n.providerInfo.euControlled) &&
    (!p.minSovereignty ||
      levels.indexOf(n.providerInfo.sovereigntyLevel) >= levels.indexOf(p.minSovereignty)) &&
    (p.certifications ?? []).every((c) => n.providerInfo.certifications.includes(c)) &&
    Object.entries(p.nodeSelector ?? {}).every(([k, v]) => n.labels[k] === v) &&
    (p.virtualization !== 'kvm' || n.virtualization === 'kvm') &&
    (!p.confidentialComputing ||
      (p.confidentialComputing === 'any'
        ? n.cpuSecurity.length > 0
        : n.cpuSecurity.includes(p.confidentialComputing))) &&
    (!r.accelerators || matchingGpus(n, r) >= r.accelerators.count)
  );
}

const sizeOf = (r: Resources) => ({
  vcpus: r.vcpus,
  memoryMiB: r.memoryMiB,
  diskGiB: r.diskGiB ?? 10,
  accelerators: r.accelerators?.count ?? 0,
});

/** What is bound to each node at the end: the other workloads' load plus the live instances. */
function usage(nodes: readonly Node[], live: readonly InstanceRecord[]) {
  const used = new Map(nodes.map((n) => [n.key, { ...n.allocated }]));
  for (const i of live) {
    const u = used.get(`${i.provider}/${i.node}`);
    if (!u) continue;
    u.vcpus += i.vcpus;
    u.memoryMiB += i.memoryMiB;
    u.diskGiB += i.diskGiB;
    u.accelerators += i.spec.accelerators ?? 0;
  }
  return used;
}

function hasRoom(n: Node, used: CandidateNode['allocated'], r: Resources): boolean {
  const s = sizeOf(r);
  return (
    used.vcpus + s.vcpus <= n.capacity.vcpus &&
    used.memoryMiB + s.memoryMiB <= n.capacity.memoryMiB &&
    used.diskGiB + s.diskGiB <= n.capacity.diskGiB &&
    (!r.accelerators || matchingGpus(n, r) - used.accelerators >= r.accelerators.count)
  );
}

const placeable = (n: Node) => n.state === 'ready' && !n.unschedulable;

// ---- planning and applying to a model ------------------------------------------------

function instance(
  ordinal: number,
  node: Node,
  desired: InstanceRecord['desired'],
  r: Resources,
  uid: string,
): InstanceRecord {
  const s = sizeOf(r);
  return {
    uid,
    project: 'q',
    name: `w-${ordinal}`,
    workload: 'w',
    ordinal,
    provider: node.provider,
    node: node.node,
    fence: 1,
    revision: 1,
    desired,
    vcpus: s.vcpus,
    memoryMiB: s.memoryMiB,
    diskGiB: s.diskGiB,
    spec: {
      hostname: `w-${ordinal}`,
      image: IMAGE,
      ports: [],
      ...(s.accelerators ? { accelerators: s.accelerators } : {}),
      ...(desired === 'stopped' ? { powerOff: true } : {}),
    },
    status: {
      phase: desired === 'absent' ? 'Deleting' : 'Running',
      ports: [],
      restarts: 0,
      observedRevision: 1,
    },
    createdAt: '',
    updatedAt: '',
  };
}

/** The instances after the plan's steps, as the applier writes them. */
function applied(instances: readonly InstanceRecord[], steps: readonly PlanStep[]): InstanceRecord[] {
  const out = new Map(instances.map((i) => [i.uid, i]));
  for (const s of steps) {
    if (s.op === 'create') {
      const uid = `new-${s.ordinal}-${out.size}`;
      out.set(uid, {
        ...instance(
          s.ordinal,
          { provider: s.provider, node: s.node } as Node,
          'running',
          { vcpus: 1, memoryMiB: 1, diskGiB: 1 },
          uid,
        ),
        ...s.next,
        status: { phase: 'Pending', ports: [], restarts: 0, observedRevision: 0 },
      });
    } else if (s.op === 'delete') out.set(s.instance.uid, { ...s.instance, desired: 'absent' });
    else if (s.op === 'update') out.set(s.instance.uid, { ...s.instance, ...s.next });
    else if (s.op === 'migrate') throw new Error('no live moves without input.live');
    else
      out.set(s.instance.uid, {
        ...s.instance,
        ...s.next,
        provider: s.provider,
        node: s.node,
        fence: s.instance.fence + 1,
      });
  }
  return [...out.values()];
}

interface Round {
  spec: WorkloadSpec;
  plan: WorkloadPlan;
  /** The workload's status after the round (the plan's, or as it was). */
  status: PlannedStatus;
  before: InstanceRecord[];
  after: InstanceRecord[];
}

function round(
  fleet: MemoryFleet,
  spec: WorkloadSpec,
  instances: InstanceRecord[],
  status: PlannedStatus,
): Round {
  const plan = planWorkload(
    { key: 'q/w', workload: { generation: 1, spec, status }, instances, image: IMAGE, now: 'now' },
    fleet,
    { limitFeasible: 100, classes: new StaticClasses() },
  );
  return {
    spec,
    plan,
    status: plan.status ?? status,
    before: instances,
    after: applied(instances, plan.steps),
  };
}

function check(nodes: readonly Node[], fleet: MemoryFleet, r: Round): void {
  const { spec, plan, before, after, status } = r;
  const policy = spec.placement ?? {};
  const byKey = new Map(nodes.map((n) => [n.key, n]));
  const live = after.filter((i) => i.desired !== 'absent');

  // Never two live copies of a replica, none beyond the count.
  const ordinals = live.map((i) => i.ordinal);
  assert.equal(new Set(ordinals).size, ordinals.length, `two live copies: ${ordinals}`);
  assert.ok(
    ordinals.every((o) => o < spec.replicas),
    `a replica beyond ${spec.replicas}: ${ordinals}`,
  );

  // No node ends beyond its capacity (the other workloads' load alone never is), and the
  // books the planner kept are what is bound.
  const used = usage(nodes, live);
  for (const n of nodes) {
    const u = used.get(n.key)!;
    assert.ok(
      u.vcpus <= n.capacity.vcpus && u.memoryMiB <= n.capacity.memoryMiB && u.diskGiB <= n.capacity.diskGiB,
      `${n.key} over-filled: ${JSON.stringify(u)} of ${JSON.stringify(n.capacity)}`,
    );
    assert.ok(
      u.accelerators <= n.accelerators.reduce((s, a) => s + a.count, 0),
      `${n.key}: accelerators over-filled`,
    );
    assert.deepEqual(
      fleet.get(n.key)!.allocated,
      u,
      `${n.key}: the planner's books differ from what is bound`,
    );
  }

  // Every replica the plan binds goes to a ready, schedulable node that keeps the rules.
  for (const s of plan.steps) {
    if (s.op !== 'create' && s.op !== 'replace') continue;
    const n = byKey.get(`${s.provider}/${s.node}`)!;
    assert.ok(
      placeable(n),
      `bound to ${n.key}, which is ${n.state}${n.unschedulable ? ', unschedulable' : ''}`,
    );
    assert.ok(keepsRules(n, policy, spec.resources), `bound to ${n.key}, which breaks the rules`);
  }

  // A hard spread placed from scratch covers as many domains as it can.
  const across = policy.spread?.across;
  if (across && policy.spread?.mode === 'hard' && before.every((i) => i.desired === 'absent')) {
    const domain = (i: InstanceRecord) => {
      const n = byKey.get(`${i.provider}/${i.node}`)!;
      return across === 'provider'
        ? n.provider
        : across === 'site'
          ? `${n.provider}/${n.site}`
          : n.siteInfo.country;
    };
    const domains = new Set(live.map(domain)).size;
    assert.ok(domains >= Math.min(policy.spread.minDomains ?? 2, live.length), 'hard spread not kept');
  }

  // Where a replica still is against the rules, the status says so; where none could
  // go, no compliant node with room exists anywhere.
  const reported = new Set((status.outOfPolicy ?? []).map((o) => o.replica));
  const hardSpread = across && policy.spread?.mode === 'hard';
  const roomFor = (exclude?: string) =>
    nodes.filter(
      (n) =>
        n.key !== exclude &&
        placeable(n) &&
        keepsRules(n, policy, spec.resources) &&
        hasRoom(n, used.get(n.key)!, spec.resources),
    );
  for (let ordinal = 0; ordinal < spec.replicas; ordinal++) {
    const i = live.find((x) => x.ordinal === ordinal);
    if (!i) {
      if (!hardSpread)
        assert.deepEqual(
          roomFor().map((n) => n.key),
          [],
          `replica ${ordinal} unplaced, but these nodes have room`,
        );
      continue;
    }
    const n = byKey.get(`${i.provider}/${i.node}`);
    const lost = !n || n.state === 'down';
    if (n?.draining || (lost && policy.onNodeFailure !== 'wait')) {
      // Still on a drained or lost node: nowhere else to go.
      if (!hardSpread)
        assert.deepEqual(
          roomFor(n?.key).map((x) => x.key),
          [],
          `replica ${ordinal} left on ${i.node}, but these nodes have room`,
        );
      continue;
    }
    if (!n) continue;
    const want = sizeOf(spec.resources);
    const u = used.get(n.key)!;
    const fitsHere =
      u.vcpus - i.vcpus + want.vcpus <= n.capacity.vcpus &&
      u.memoryMiB - i.memoryMiB + want.memoryMiB <= n.capacity.memoryMiB &&
      u.diskGiB - i.diskGiB + want.diskGiB <= n.capacity.diskGiB &&
      (!spec.resources.accelerators ||
        matchingGpus(n, spec.resources) - u.accelerators + (i.spec.accelerators ?? 0) >= want.accelerators);
    if (keepsRules(n, policy, spec.resources) && fitsHere) continue;
    assert.ok(
      reported.has(i.name),
      `${i.name} breaks the rules on ${n.key} and is not reported out of policy`,
    );
    assert.equal(status.phase === 'Running', false, 'a workload with a replica out of policy is not Running');
    if (!hardSpread)
      assert.deepEqual(
        roomFor(n.key).map((x) => x.key),
        [],
        `${i.name} left out of policy, but these nodes have room`,
      );
  }
}

test('property: the planner is sound and complete over generated fleets, before and after policy and size changes', () => {
  fc.assert(
    fc.property(fleetArb, specArb, boundArb, specArb, (nodes, first, bound, second) => {
      // Instances already bound where they fit (a node is never beyond capacity to start with).
      const start = new MemoryFleet(nodes);
      const instances: InstanceRecord[] = [];
      for (const [k, b] of bound.entries()) {
        const n = nodes[b.node % nodes.length]!;
        const s = sizeOf(b.resources);
        const a = start.get(n.key)!.allocated;
        if (b.desired !== 'absent') {
          if (
            !hasRoom(n, a, b.resources) ||
            a.accelerators + s.accelerators > n.accelerators.reduce((t, x) => t + x.count, 0)
          )
            continue;
          start.reserve(n.key, s);
        }
        instances.push(instance(b.ordinal, n, b.desired, b.resources, `u${k}`));
      }
      const spec = (x: typeof first): WorkloadSpec => ({ kind: 'vm', image: 'img', ...x });
      const initial: PlannedStatus = { phase: 'Pending', observedGeneration: 0, readyReplicas: 0 };
      const one = round(start, spec(first), instances, initial);
      check(nodes, start, one);
      // The tenant changes the policy, the size and the count.
      const running = one.after.map((i) => ({ ...i, status: { ...i.status, phase: 'Running' as const } }));
      const two = round(start, spec(second), running, one.status);
      check(nodes, start, two);
    }),
    { numRuns: 400, includeErrorInReport: true },
  );
});
