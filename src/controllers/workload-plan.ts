// The workload planner: from a workload, its instances, its image and the scheduler's
// view of the fleet, the steps that converge it (create, replace, update, delete) with
// the explanation and the workload's next status. No store, no clock, no I/O: it books
// the replicas it binds in the fleet view it is given, so that sibling replicas and the
// next workload of a batch see them, and the applier (workload-apply.ts) writes the steps.
import type { WorkloadSpec, WorkloadStatus } from '../model/index.js';
import { canonical } from '../resources/index.js';
import {
  type CandidateNode,
  type Decision,
  domainOf,
  type Explanation,
  type PlacementRequest,
  Placer,
  REASONS,
  type StaticClasses,
  unschedulableMessage,
  violations,
} from '../scheduler/index.js';
import type { DesiredState, InstanceRecord, InstanceSpec } from '../store/index.js';
import type { Held } from './cluster-cache.js';

const DEFAULT_DISK_GIB = 10;

/**
 * The scheduler's view of the fleet as the planner reads and books it: ClusterCache in
 * the controller, a plain in-memory fleet in the property tests.
 */
export interface FleetView {
  /** Changes whenever a node's, site's or provider's attributes change (not with allocations). */
  readonly version: number;
  get(key: string): (CandidateNode & { state: string }) | undefined;
  candidates(opts: { node?: string; countries?: readonly string[] }): Iterable<CandidateNode>;
  /** Nodes outside the given countries (a country-limited scan skips them). */
  countOutside(countries: readonly string[]): number;
  reserve(key: string, held: Held): void;
  release(key: string, held: Held): void;
}

export interface PlacementStatus {
  attemptedAt: string;
  placed: number;
  pending: number;
  message?: string;
  explanation?: Explanation;
}

/** A replica that breaks its workload's rules where it runs, with no compliant node to go to. */
export interface OutOfPolicy {
  replica: string;
  node: string;
  reasons: string[];
  message: string;
}

export type PlannedStatus = WorkloadStatus & { placement?: PlacementStatus; outOfPolicy?: OutOfPolicy[] };

/** An instance's desired side: size, spec and whether it runs. */
export type Desired = Pick<InstanceRecord, 'vcpus' | 'memoryMiB' | 'diskGiB' | 'spec'> & {
  desired: DesiredState;
};

export type PlanStep =
  /** A new instance row for a replica. */
  | { op: 'create'; ordinal: number; provider: string; node: string; next: Desired }
  /** The instance is bound to another node (or bound again after a delete), fenced anew. */
  | { op: 'replace'; instance: InstanceRecord; provider: string; node: string; next: Desired }
  /** Same node, a new size, spec or desired state. */
  | { op: 'update'; instance: InstanceRecord; next: Desired }
  /** Surplus, a duplicate, or its workload is gone. */
  | { op: 'delete'; instance: InstanceRecord }
  /**
   * The instance moves live to another node (a Migration): it keeps running where it is,
   * its size booked on both nodes, until the migration binds it there.
   */
  | { op: 'migrate'; instance: InstanceRecord; provider: string; node: string };

export interface WorkloadPlan {
  readonly steps: PlanStep[];
  /** The workload's status after the steps; absent when it does not change (or the workload is gone). */
  readonly status?: PlannedStatus;
  /** Replicas bound to a node by this plan (placed or re-placed). */
  readonly bound: number;
  /** Some replica waits for a node (unplaced, or out of policy): plan again when capacity appears. */
  readonly waiting: boolean;
  /** Capacity was given back (replicas removed or resized): other workloads may now fit. */
  readonly freed: boolean;
}

export interface PlanInput {
  /** `project/name`. */
  readonly key: string;
  /** Absent when the workload was deleted: its instances go. */
  readonly workload?: {
    readonly generation: number;
    readonly spec: WorkloadSpec;
    readonly status: PlannedStatus;
  };
  readonly instances: readonly InstanceRecord[];
  /** The image, or why there is none to run yet. */
  readonly image: InstanceSpec['image'] | { readonly unavailable: string };
  /** The pass's time, written on the placement status. */
  readonly now: string;
  /** Instances being migrated live: they stay where they are until their migration ends. */
  readonly migrating?: ReadonlySet<string>;
  /**
   * May this instance move live (its runtime and state allow it, no recent live failure)?
   * Such a move is a `migrate` step — the copy runs on until the new one does — instead of
   * stop-and-recreate. Absent: every move is a `replace`.
   */
  readonly live?: (inst: InstanceRecord) => boolean;
}

export interface PlanOptions {
  /** Feasible nodes scored per placement (see ScheduleOptions.limitFeasible). */
  limitFeasible: number;
  /** Static filter results shared between passes (see StaticClasses). */
  classes?: StaticClasses;
}

/** Can a VM move live from one node to the other (both can, and the same kind of CPU)? */
export function liveBetween(from: CandidateNode, to: CandidateNode): boolean {
  return notLiveBecause(from, to) === undefined;
}

/** Why a VM cannot move live from one node to the other; undefined: it can. */
export function notLiveBecause(from: CandidateNode, to: CandidateNode): string | undefined {
  for (const n of [from, to])
    if (!n.liveMigration)
      return `${n.key} takes no live migration (its runtime or its agent's --no-live-migration)`;
  if (from.architecture !== to.architecture)
    return `another CPU architecture (${from.architecture} on ${from.key}, ${to.architecture} on ${to.key})`;
  if (from.virtualization !== to.virtualization)
    return `another kind of virtualisation (${from.virtualization} on ${from.key}, ${to.virtualization} on ${to.key})`;
  return undefined;
}

/** A workload's phase from its instances' desired states and reported phases. */
export function summarize(
  replicas: number,
  instances: readonly { desired: DesiredState; phase: string }[],
): { phase: WorkloadStatus['phase']; readyReplicas: number } {
  let ready = 0;
  let failed = false;
  for (const i of instances) {
    if (i.desired === 'running' && i.phase === 'Running') ready++;
    if (i.desired !== 'absent' && i.phase === 'Failed') failed = true;
  }
  const phase = ready === replicas ? 'Running' : failed ? 'Failed' : ready > 0 ? 'Degraded' : 'Pending';
  return { phase, readyReplicas: ready };
}

/** Running replicas that break the rules are not a healthy workload. */
export function withCompliance(phase: WorkloadStatus['phase'], outOfPolicy: number): WorkloadStatus['phase'] {
  return outOfPolicy > 0 && phase === 'Running' ? 'Degraded' : phase;
}

/** What an instance holds on its node. */
export const held = (i: Pick<InstanceRecord, 'vcpus' | 'memoryMiB' | 'diskGiB' | 'spec'>): Held => ({
  vcpus: i.vcpus,
  memoryMiB: i.memoryMiB,
  diskGiB: i.diskGiB,
  accelerators: i.spec.accelerators ?? 0,
});

/** The steps that converge one workload, with its next status. */
export function planWorkload(input: PlanInput, fleet: FleetView, opts: PlanOptions): WorkloadPlan {
  const { key, workload: w, instances } = input;
  const steps: PlanStep[] = [];
  let freed = false;
  if (!w) {
    for (const inst of instances) {
      if (inst.desired === 'absent') continue;
      fleet.release(`${inst.provider}/${inst.node}`, held(inst));
      freed = true;
      steps.push({ op: 'delete', instance: inst });
    }
    return { steps, bound: 0, waiting: false, freed };
  }
  const name = key.slice(key.indexOf('/') + 1);
  const spec = w.spec;
  const reasons: string[] = [];
  const image = 'unavailable' in input.image ? undefined : input.image;
  if (!image) reasons.push((input.image as { unavailable: string }).unavailable);

  // What the instances look like after the steps, for the workload's status.
  const states = new Map(instances.map((i) => [i.uid, { desired: i.desired, phase: i.status.phase }]));
  const desiredFor = (ordinal: number): Desired | undefined =>
    image && {
      vcpus: spec.resources.vcpus,
      memoryMiB: spec.resources.memoryMiB,
      diskGiB: spec.resources.diskGiB ?? DEFAULT_DISK_GIB,
      desired: 'running',
      spec: {
        hostname: `${name}-${ordinal}`,
        image,
        ports: (spec.ports ?? []).map((p) => ({ guest: p.guest, protocol: p.protocol ?? 'tcp' })),
        ...(spec.userData !== undefined ? { userData: spec.userData } : {}),
        ...(spec.container ? { container: spec.container } : {}),
        ...(spec.resources.accelerators ? { accelerators: spec.resources.accelerators.count } : {}),
      },
    };

  const spreadCounts = new Map<string, number>();
  const across = spec.placement?.spread?.across;
  const count = (nodeKey: string, delta: number) => {
    const n = fleet.get(nodeKey);
    if (!across || !n) return;
    const d = domainOf(n, across);
    spreadCounts.set(d, (spreadCounts.get(d) ?? 0) + delta);
  };
  for (const i of instances)
    if (i.desired !== 'absent' && i.ordinal < spec.replicas) count(`${i.provider}/${i.node}`, 1);

  let lastFailure: Decision | undefined;
  let lastDecision: Decision | undefined;
  // One placer per round: sibling replicas are chosen from the nodes its first scan found
  // (it knows them siblings by the same policy object).
  const policy = spec.placement ?? {};
  const newPlacer = () =>
    new Placer(() => fleet.candidates({ node: policy.node, countries: policy.countries }), {
      limitFeasible: opts.limitFeasible,
      ...(opts.classes ? { classes: { cache: opts.classes, version: fleet.version } } : {}),
    });
  let placer = newPlacer();
  /** A placement failed, then capacity was given back: what failed may fit now. */
  let failed = false;
  let releasedSinceFailure = false;
  const release = (nodeKey: string, h: Held) => {
    fleet.release(nodeKey, h);
    if (failed) releasedSinceFailure = true;
  };
  const requestFor = (d: Desired, avoid?: string): PlacementRequest => ({
    workload: key,
    kind: spec.kind,
    policy,
    resources: {
      vcpus: d.vcpus,
      memoryMiB: d.memoryMiB,
      diskGiB: d.diskGiB,
      ...(spec.resources.accelerators ? { accelerators: spec.resources.accelerators } : {}),
    },
    spreadCounts,
    ...(avoid ? { avoid: new Set([avoid]) } : {}),
  });
  /** A node for `d`; `compliance`: moving a replica that breaks the rules, not placing one. */
  const place = (d: Desired, avoid?: string, compliance = false) => {
    const decision = placer.place(requestFor(d, avoid));
    if (!decision.ok) failed = true;
    if (!decision.ok && policy.countries && !policy.node) {
      // The scan skipped nodes outside the allowed countries; the explanation counts them.
      const outside = fleet.countOutside(policy.countries);
      if (outside) {
        const e = decision.explanation;
        e.nodesEvaluated += outside;
        e.filtered[REASONS.country] = (e.filtered[REASONS.country] ?? 0) + outside;
        decision.message = unschedulableMessage(e);
      }
    }
    if (compliance) return decision;
    lastDecision = decision;
    if (!decision.ok) lastFailure = decision;
    return decision;
  };
  /**
   * Rebinds a replica to another node: by a Migration when it may (its node still runs
   * it, its size unchanged, both nodes move VMs: live, or else cold with its disk), else
   * stop there, create here, fenced anew.
   */
  const move = (inst: InstanceRecord, next: Desired, to: CandidateNode) => {
    const from = `${inst.provider}/${inst.node}`;
    const node = fleet.get(from);
    const sameSize =
      next.vcpus === inst.vcpus && next.memoryMiB === inst.memoryMiB && next.diskGiB === inst.diskGiB;
    const live = !!node && liveBetween(node, to);
    const cold = !live && !!node?.coldMigration && !!to.coldMigration;
    if (node && node.state === 'ready' && sameSize && (live || cold) && input.live?.(inst)) {
      fleet.reserve(to.key, held(inst));
      count(from, -1);
      count(to.key, 1);
      reasons.push(`replica ${inst.ordinal} moves ${live ? 'live' : 'cold, with its disk,'} to ${to.key}`);
      steps.push({ op: 'migrate', instance: inst, provider: to.provider, node: to.node });
      return;
    }
    release(from, held(inst));
    fleet.reserve(to.key, held(next));
    count(from, -1);
    count(to.key, 1);
    states.set(inst.uid, { desired: next.desired, phase: 'Pending' });
    steps.push({ op: 'replace', instance: inst, provider: to.provider, node: to.node, next });
  };

  // Surplus replicas and duplicates go first: what they free is there for the rest.
  const kept: InstanceRecord[] = [];
  const seen = new Set<number>();
  for (const inst of instances) {
    if (inst.desired === 'absent') continue;
    if (inst.ordinal >= spec.replicas || seen.has(inst.ordinal)) {
      release(`${inst.provider}/${inst.node}`, held(inst));
      freed = true;
      states.set(inst.uid, { desired: 'absent', phase: inst.status.phase });
      steps.push({ op: 'delete', instance: inst });
      continue;
    }
    seen.add(inst.ordinal);
    kept.push(inst);
  }

  /** Replicas that must leave their node (lost, drained, out of policy) and found no other yet. */
  const stuck: { inst: InstanceRecord; next: Desired; lost: boolean; message: string }[] = [];
  let placed = 0;
  let bound = 0;
  for (const inst of kept) {
    const nodeKey = `${inst.provider}/${inst.node}`;
    if (input.migrating?.has(inst.uid)) {
      // Its migration moves it (or leaves it): no second move, no resize meanwhile.
      placed++;
      reasons.push(`replica ${inst.ordinal} is being migrated`);
      continue;
    }
    const want = desiredFor(inst.ordinal);
    const node = fleet.get(nodeKey);
    const lost = !node || node.state === 'down';
    const mayMove = !!node?.draining || (lost && policy.onNodeFailure !== 'wait');
    const base = want ?? inst;
    // What the tenant did to this instance (power off, reboots) stays.
    const next: Desired = {
      vcpus: base.vcpus,
      memoryMiB: base.memoryMiB,
      diskGiB: base.diskGiB,
      spec: {
        ...base.spec,
        ...(inst.spec.powerOff ? { powerOff: true } : {}),
        ...(inst.spec.reboots ? { reboots: inst.spec.reboots } : {}),
      },
      desired: inst.spec.powerOff ? 'stopped' : 'running',
    };
    placed++;
    // The rules hold after every change: a replica whose node no longer complies (the
    // policy, the node, its site or provider changed) or no longer has room for its
    // size moves to a node that does, as does one whose node is lost or drained.
    const broken = !mayMove && node && want ? violations(node, requestFor(next), held(inst)) : [];
    if (mayMove || broken.length) {
      const d = place(next, nodeKey, !mayMove);
      if (d.ok) {
        move(inst, next, d.node);
        bound++;
      } else stuck.push({ inst, next, lost: mayMove, message: d.ok ? '' : d.message });
      continue;
    }
    update(inst, next);
  }

  /** The replica stays on its node: its new size and spec apply there. */
  function update(inst: InstanceRecord, next: Desired): void {
    const same =
      inst.desired === next.desired &&
      inst.vcpus === next.vcpus &&
      inst.memoryMiB === next.memoryMiB &&
      inst.diskGiB === next.diskGiB &&
      canonical(inst.spec) === canonical(next.spec);
    if (same) return;
    const nodeKey = `${inst.provider}/${inst.node}`;
    release(nodeKey, held(inst));
    fleet.reserve(nodeKey, held(next));
    freed = true;
    states.set(inst.uid, { desired: next.desired, phase: inst.status.phase });
    steps.push({ op: 'update', instance: inst, next });
  }

  const missing: number[] = [];
  for (let ordinal = 0; ordinal < spec.replicas; ordinal++) if (!seen.has(ordinal)) missing.push(ordinal);
  const placeMissing = () => {
    for (const ordinal of [...missing]) {
      const want = desiredFor(ordinal);
      const d = want && place(want);
      if (!want || !d?.ok) continue;
      missing.splice(missing.indexOf(ordinal), 1);
      fleet.reserve(d.node.key, held(want));
      count(d.node.key, 1);
      const to = { provider: d.node.provider, node: d.node.node, next: want };
      // A replica being deleted comes back: the same instance is bound again, fenced anew.
      const existing = instances.find((i) => i.ordinal === ordinal && i.desired === 'absent');
      if (existing) {
        states.set(existing.uid, { desired: 'running', phase: 'Pending' });
        steps.push({ op: 'replace', instance: existing, ...to });
      } else {
        states.set(`new:${ordinal}`, { desired: 'running', phase: 'Pending' });
        steps.push({ op: 'create', ordinal, ...to });
      }
      placed++;
      bound++;
    }
  };
  placeMissing();
  // Capacity given back after a placement failed (a replica moved or shrank) may be what
  // the failed one needed: again, with a fresh scan, until nothing more moves.
  while (releasedSinceFailure && (stuck.length || missing.length)) {
    releasedSinceFailure = false;
    failed = false;
    placer = newPlacer();
    for (const s of [...stuck]) {
      const nodeKey = `${s.inst.provider}/${s.inst.node}`;
      const d = place(s.next, nodeKey, !s.lost);
      if (!d.ok) continue;
      stuck.splice(stuck.indexOf(s), 1);
      move(s.inst, s.next, d.node);
      bound++;
    }
    placeMissing();
  }

  const outOfPolicy: OutOfPolicy[] = [];
  for (const { inst, next, lost, message } of stuck) {
    const nodeKey = `${inst.provider}/${inst.node}`;
    if (lost) {
      reasons.push(`replica ${inst.ordinal} waits for a node to replace ${nodeKey}`);
      continue;
    }
    // It stays where it breaks the rules, reported; a size that does not fit, or
    // accelerators the node lacks, are not applied: the node never holds more than it has.
    const broken = violations(fleet.get(nodeKey)!, requestFor(next), held(inst));
    if (!broken.length) {
      update(inst, next);
      continue;
    }
    outOfPolicy.push({
      replica: inst.name,
      node: nodeKey,
      reasons: broken,
      message: `no compliant node: ${message}`,
    });
    if (!broken.includes(REASONS.resources) && !broken.includes(REASONS.accelerator)) update(inst, next);
  }
  const unplaced = missing.length;
  if (outOfPolicy.length)
    reasons.push(
      `${outOfPolicy.length} replica(s) out of policy: ${outOfPolicy
        .map((o) => `${o.replica} on ${o.node} (${o.reasons.join(', ')})`)
        .join('; ')}; no compliant node has room`,
    );
  if (lastFailure && !lastFailure.ok)
    reasons.push(`${unplaced} replica(s) unplaceable: ${lastFailure.message}`);
  const decision = lastFailure ?? lastDecision;
  const placement: PlacementStatus | undefined = decision
    ? {
        attemptedAt: input.now,
        placed,
        pending: unplaced,
        ...(lastFailure && !lastFailure.ok ? { message: lastFailure.message } : {}),
        explanation: decision.explanation,
      }
    : w.status.placement;
  const status = nextStatus(w, [...states.values()], reasons, placement, outOfPolicy);
  return {
    steps,
    ...(status ? { status } : {}),
    bound,
    waiting: unplaced > 0 || outOfPolicy.length > 0,
    freed,
  };
}

/** The workload's status after a pass; undefined when nothing but the attempt time changed. */
function nextStatus(
  w: NonNullable<PlanInput['workload']>,
  instances: { desired: DesiredState; phase: string }[],
  reasons: string[],
  placement: PlacementStatus | undefined,
  outOfPolicy: OutOfPolicy[],
): PlannedStatus | undefined {
  const old = w.status;
  const summary = summarize(w.spec.replicas, instances);
  const { readyReplicas } = summary;
  const phase = withCompliance(summary.phase, outOfPolicy.length);
  const status: PlannedStatus = {
    phase,
    observedGeneration: w.generation,
    readyReplicas,
    ...(reasons.length ? { message: reasons.join('; ') } : {}),
    ...(placement ? { placement } : {}),
    ...(outOfPolicy.length ? { outOfPolicy } : {}),
  };
  // The attempt time alone is no reason to write. The summary fields differ on most
  // passes that change anything; the documents are compared only when they match.
  const strip = (s: any) =>
    Object.assign({}, s, {
      placement: s.placement && Object.assign({}, s.placement, { attemptedAt: undefined }),
    });
  const same =
    status.phase === old.phase &&
    status.observedGeneration === old.observedGeneration &&
    status.readyReplicas === old.readyReplicas &&
    status.message === old.message &&
    placement?.placed === old.placement?.placed &&
    placement?.pending === old.placement?.pending &&
    canonical(strip(status)) === canonical(strip(old));
  return same ? undefined : status;
}
