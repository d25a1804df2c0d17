// Where a migration may go, and how: the scheduler's choice under the workload's policy,
// with the instance's current node excluded, among the nodes that can receive it live
// (preferred) or else cold; refusals in the words of `continuum explain`. The API's
// admission of a Migration (`admitMigration`) and the migration controller decide with
// the same function.
import {
  MIGRATION_DONE,
  type MigrationMode,
  type MigrationSpec,
  type MigrationStatus,
  type WorkloadSpec,
} from '../model/index.js';
import { canonical } from '../resources/index.js';
import {
  type CandidateNode,
  domainOf,
  type PlacementRequest,
  schedule,
  unschedulableMessage,
} from '../scheduler/index.js';
import type { InstanceRecord, Store, StoredResource } from '../store/index.js';
import type { ClusterCache } from './cluster-cache.js';
import { liveBetween, notLiveBecause } from './workload-plan.js';

/** Why a migration cannot go ahead, and which field of its spec says so. */
export interface Refusal {
  path: string;
  message: string;
}

export type TargetChoice =
  | { ok: true; instance: InstanceRecord; target: CandidateNode; mode: MigrationMode; modeReason?: string }
  | { ok: false; refusal: Refusal };

const refuse = (path: string, message: string): TargetChoice => ({ ok: false, refusal: { path, message } });

/**
 * The node an instance may move to under its workload's policy: the one named, or the
 * best of the site, the provider or the whole fleet, never the node it is on. Refusals
 * are in the words of `continuum explain`.
 */
export async function chooseTarget(
  tx: Store,
  cache: ClusterCache,
  project: string,
  name: string,
  spec: MigrationSpec,
): Promise<TargetChoice> {
  const inst = await tx.getInstance(project, spec.instance);
  if (!inst || inst.desired === 'absent')
    return refuse('spec.instance', `instance '${spec.instance}' not found in project '${project}'`);
  if (inst.desired !== 'running' || inst.status.phase !== 'Running')
    return refuse(
      'spec.instance',
      `instance '${spec.instance}' is ${inst.desired === 'stopped' ? 'stopped' : `not running (phase ${inst.status.phase})`}: only a running instance migrates`,
    );
  for (const m of await tx.list('migrations', { parents: [project] }))
    if (
      m.name !== name &&
      (m.spec as MigrationSpec).instance === spec.instance &&
      !MIGRATION_DONE.includes((m.status as MigrationStatus).phase)
    )
      return refuse(
        'spec.instance',
        `instance '${spec.instance}' is being migrated already (migration '${m.name}')`,
      );
  const w = await tx.get('workloads', project, inst.workload);
  if (!w) return refuse('spec.instance', `the workload of instance '${spec.instance}' is gone`);
  const ws = w.spec as WorkloadSpec;
  if (ws.kind === 'container')
    return refuse(
      'spec.instance',
      `instance '${spec.instance}' is a container: containers do not migrate (yet); a drain or a rule change re-places them (stopped there, started anew elsewhere)`,
    );
  const here = `${inst.provider}/${inst.node}`;
  const to = spec.to ?? {};
  let pool: CandidateNode[];
  let path = 'spec.to';
  const source = cache.get(here);
  if (!source) return refuse('spec.instance', `the node of instance '${spec.instance}' (${here}) is gone`);
  const liveFrom = (n: CandidateNode) => liveBetween(source, n);
  const coldFrom = (n: CandidateNode) => !!source.coldMigration && !!n.coldMigration;
  const movable =
    spec.mode === 'live'
      ? liveFrom
      : spec.mode === 'cold'
        ? coldFrom
        : (n: CandidateNode) => liveFrom(n) || coldFrom(n);
  const how =
    spec.mode === 'cold' ? 'a cold migration' : spec.mode === 'live' ? 'a live migration' : 'a migration';
  if (to.node) {
    path = 'spec.to.node';
    if (to.node === here) return refuse(path, `instance '${spec.instance}' already runs on node '${here}'`);
    const n = cache.get(to.node);
    if (!n) return refuse(path, `node '${to.node}' does not exist (or has not reported yet)`);
    pool = [n];
  } else {
    const all = [...cache.candidates()].filter(movable);
    if (to.site) {
      path = 'spec.to.site';
      pool = all.filter((n) => `${n.provider}/${n.site}` === to.site);
      if (!pool.length)
        return refuse(
          path,
          `site '${to.site}' does not exist or has no node that can receive ${how} from ${here}`,
        );
    } else if (to.provider) {
      path = 'spec.to.provider';
      pool = all.filter((n) => n.provider === to.provider);
      if (!pool.length)
        return refuse(
          path,
          `provider '${to.provider}' does not exist or has no node that can receive ${how} from ${here}`,
        );
    } else pool = all;
  }
  // The workload's other replicas, for its spread.
  const spreadCounts = new Map<string, number>();
  const across = ws.placement?.spread?.across;
  if (across)
    for (const i of await tx.workloadInstances(project, inst.workload)) {
      const n =
        i.desired !== 'absent' && i.uid !== inst.uid ? cache.get(`${i.provider}/${i.node}`) : undefined;
      if (n) spreadCounts.set(domainOf(n, across), (spreadCounts.get(domainOf(n, across)) ?? 0) + 1);
    }
  const req: PlacementRequest = {
    workload: `${project}/${inst.workload}`,
    kind: ws.kind,
    policy: ws.placement ?? {},
    resources: {
      vcpus: inst.vcpus,
      memoryMiB: inst.memoryMiB,
      diskGiB: inst.diskGiB,
      ...(ws.resources.accelerators ? { accelerators: ws.resources.accelerators } : {}),
    },
    spreadCounts,
    avoid: new Set([here]),
  };
  // With no mode asked for, a node that takes it live is preferred to one that takes it cold.
  const live = spec.mode === undefined && pool.length > 1 ? pool.filter(liveFrom) : [];
  let d = live.length ? schedule(live, req, { limitFeasible: 100 }) : undefined;
  if (!d?.ok) d = schedule(pool, req, { limitFeasible: 100 });
  if (!d.ok) return refuse(path, `no node to move to: ${unschedulableMessage(d.explanation)}`);
  const target = d.node;
  const why = notLiveBecause(source, target);
  if (spec.mode === 'cold') {
    if (!coldFrom(target))
      return refuse(
        path,
        `${target.key} cannot receive a cold migration from ${here}: ${here} or ${target.key} has no runtime that moves disks`,
      );
    return { ok: true, instance: inst, target, mode: 'cold', modeReason: 'asked for (spec.mode: cold)' };
  }
  if (!why) return { ok: true, instance: inst, target, mode: 'live' };
  if (spec.mode === 'live' || !coldFrom(target))
    return refuse(
      path,
      `${target.key} cannot receive a live migration from ${here}: ${why}${coldFrom(target) ? '; leave out spec.mode to move it cold (stopped, disk copied, started)' : ''}`,
    );
  return { ok: true, instance: inst, target, mode: 'cold', modeReason: `not live: ${why}` };
}

/**
 * The API's check of a Migration (ResourceService admission): a new one must have a
 * running instance and a target the workload's policy allows; an existing one may
 * change only `cancel`.
 */
export function admitMigration(cache: ClusterCache) {
  return async (
    tx: Store,
    parent: string,
    name: string,
    spec: MigrationSpec,
    existing: StoredResource | undefined,
  ): Promise<Refusal[]> => {
    if (existing) {
      const { cancel: _before, ...was } = existing.spec as MigrationSpec;
      const { cancel: _after, ...now } = spec;
      if (canonical(was) === canonical(now)) return [];
      return [
        {
          path: 'spec',
          message:
            "a migration's instance, target and mode cannot change once created: cancel it (spec.cancel: true) and create another",
        },
      ];
    }
    const choice = await chooseTarget(tx, cache, parent, name, spec);
    return choice.ok ? [] : [choice.refusal];
  };
}
