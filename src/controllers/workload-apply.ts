// The applier: writes a workload plan in the caller's transaction — each instance step
// with its audit event (the event's sequence number is the instance's revision), then the
// workload's status. New replicas and statuses are gathered (PlanWrites) and written for
// all the workloads of a transaction at its end, a few statements in all: on PostgreSQL
// each statement is a round trip. It decides nothing.
import { migrationKind, type WorkloadStatus } from '../model/index.js';
import { render } from '../resources/index.js';
import { type InstanceRecord, instanceEventDoc, newUid, type Store } from '../store/index.js';
import type { PlanStep, WorkloadPlan } from './workload-plan.js';

const PENDING = { phase: 'Pending' as const, ports: [], restarts: 0, observedRevision: 0 };

type Create = Extract<PlanStep, { op: 'create' }>;

/** New replicas and workload statuses of a transaction's passes, written by flush(). */
export class PlanWrites {
  private creates: { project: string; workload: string; step: Create; now: string }[] = [];
  private statuses: { uid: string; status: WorkloadStatus; columns: { phase: string } }[] = [];

  create(project: string, workload: string, step: Create, now: string): void {
    this.creates.push({ project, workload, step, now });
  }

  status(uid: string, status: WorkloadStatus): void {
    this.statuses.push({ uid, status, columns: { phase: status.phase } });
  }

  /** Writes what was gathered: the new replicas' events, then their rows, then the statuses. */
  async flush(tx: Store, actor: string): Promise<void> {
    // Spreads come last in these literals: on Node 20 a property written after a spread
    // (`{ ...x, k }`) costs about a microsecond and a half, and a burst writes thousands.
    const creates = this.creates.map((c) => ({
      uid: newUid(),
      instanceName: `${c.workload}-${c.step.ordinal}`,
      ...c,
    }));
    const statuses = this.statuses;
    this.creates = [];
    this.statuses = [];
    if (creates.length) {
      const events = await tx.appendEvents(
        creates.map(({ project, workload, step, uid, instanceName }) => ({
          actor,
          action: 'create',
          kind: 'Instance',
          parent: project,
          name: instanceName,
          provider: step.provider,
          project,
          before: null,
          after: {
            uid,
            workload,
            provider: step.provider,
            node: step.node,
            desired: 'running',
            fence: 1,
          },
        })),
      );
      await tx.insertInstances(
        creates.map(({ project, workload, step, uid, instanceName, now }, i) => ({
          uid,
          project,
          name: instanceName,
          workload,
          ordinal: step.ordinal,
          provider: step.provider,
          node: step.node,
          fence: 1,
          revision: events[i]!.seq,
          status: PENDING,
          createdAt: now,
          updatedAt: now,
          ...step.next,
        })),
      );
    }
    await tx.setStatuses('workloads', ['phase'], statuses);
  }
}

/**
 * Writes a workload's plan: its removals, updates, re-placements and live moves at once,
 * its new replicas and its status into `writes` (the caller flushes them before commit).
 */
export async function applyPlan(
  tx: Store,
  target: { project: string; name: string; uid?: string },
  plan: WorkloadPlan,
  actor: string,
  now: string,
  writes: PlanWrites,
): Promise<void> {
  const { project, name } = target;
  for (const step of plan.steps) {
    if (step.op === 'create') {
      writes.create(project, name, step, now);
      continue;
    }
    if (step.op === 'migrate') {
      await createMigration(tx, project, step.instance, `${step.provider}/${step.node}`, actor, now);
      continue;
    }
    const inst = step.instance;
    // Object.assign, not `{ ...inst, k }`: see PlanWrites.flush.
    const draft: InstanceRecord =
      step.op === 'delete'
        ? Object.assign({}, inst, { desired: 'absent' as const })
        : step.op === 'update'
          ? Object.assign({}, inst, step.next)
          : Object.assign({}, inst, step.next, {
              provider: step.provider,
              node: step.node,
              fence: inst.fence + 1,
              status: PENDING,
            });
    const e = await tx.appendEvent({
      actor,
      action: step.op,
      kind: 'Instance',
      parent: project,
      name: inst.name,
      provider: draft.provider,
      project,
      before: instanceEventDoc(inst),
      after: instanceEventDoc(draft),
    });
    await tx.setInstanceDesired(Object.assign(draft, { revision: e.seq }), inst);
    // A replica bound anew starts over: what the old node reported no longer holds.
    if (step.op === 'replace') await tx.setInstanceStatus(inst.uid, PENDING);
  }
  if (plan.status && target.uid) writes.status(target.uid, plan.status);
}

/** A live move the planner chose: a Migration of the instance to the node, as a user's would be. */
async function createMigration(
  tx: Store,
  project: string,
  inst: InstanceRecord,
  to: string,
  actor: string,
  now: string,
): Promise<void> {
  // Named after the instance and the moment (base 36 milliseconds): unique, readable.
  const name = `${inst.name.slice(0, 48)}-${Date.parse(now).toString(36)}`;
  const row = await tx.insert('migrations', {
    uid: newUid(),
    parent: project,
    name,
    labels: {},
    spec: { instance: inst.name, to: { node: to } },
    status: { phase: 'Pending', message: 'moving off a node it may no longer run on' },
    createdBy: actor,
    columns: { phase: 'Pending' },
  });
  await tx.appendEvent({
    actor,
    action: 'create',
    kind: 'Migration',
    parent: project,
    name,
    provider: null,
    project,
    before: null,
    after: render(migrationKind, row),
  });
}
