// Instances: one row per replica, with the desired state the control plane wants on a
// node and the state its agent observed. Kept in a table of their own (not the generic
// resource tables) because the scheduler and the agent gateway query them by node and
// revision at fleet scale.
import type { Kysely } from 'kysely';

import type { DesiredInstance, DesiredState, InstancePhase, InstanceSpec } from '../protocol/index.js';

export {
  DESIRED_STATES,
  type DesiredState,
  INSTANCE_PHASES,
  type InstanceImageRef,
  type InstancePhase,
  type InstanceSpec,
} from '../protocol/index.js';

/** The audit action of an instance removed because its node was enrolled anew. */
export const INSTANCE_EVICTED = 'evict';

/** What an eviction event keeps of the instance (`before`): enough to give its capacity back. */
export interface EvictedInstance {
  workload: string;
  provider: string;
  node: string;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  accelerators: number;
}

/**
 * What the audit log keeps of an instance: where it is bound and what is wanted of it.
 * Never its spec: user data is the tenant's, and provider-admins read the events of
 * their nodes.
 */
/** What an agent is sent of an instance: its desired side, as the row holds it. */
export function desiredInstanceOf(r: InstanceRecord): DesiredInstance {
  return {
    uid: r.uid,
    project: r.project,
    name: r.name,
    revision: r.revision,
    fence: r.fence,
    desired: r.desired,
    vcpus: r.vcpus,
    memoryMiB: r.memoryMiB,
    diskGiB: r.diskGiB,
    spec: r.spec,
  };
}

export function instanceEventDoc(
  r: Pick<InstanceRecord, 'uid' | 'workload' | 'provider' | 'node' | 'desired' | 'fence'>,
) {
  return {
    uid: r.uid,
    workload: r.workload,
    provider: r.provider,
    node: r.node,
    desired: r.desired,
    fence: r.fence,
  };
}

export interface InstanceStatus {
  phase: InstancePhase;
  ports: { guest: number; protocol: 'tcp' | 'udp'; host: number; address: string }[];
  restarts: number;
  message?: string;
  observedRevision: number;
  startedAt?: string;
  accelerator?: string;
}

export interface InstanceRecord {
  readonly uid: string;
  readonly project: string;
  readonly name: string;
  readonly workload: string;
  readonly ordinal: number;
  readonly provider: string;
  readonly node: string;
  readonly fence: number;
  readonly revision: number;
  readonly desired: DesiredState;
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly diskGiB: number;
  readonly spec: InstanceSpec;
  readonly status: InstanceStatus;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface InstanceQuery {
  project?: string;
  projects?: readonly string[];
  workload?: string;
  provider?: string;
  providers?: readonly string[];
  node?: string;
  /** Only instances of these projects OR on these providers' nodes (a principal's reach). */
  reach?: { projects: readonly string[]; providers: readonly string[] };
  /** A page: instances after this one in (project, name) order, at most `limit`. */
  after?: { project: string; name: string };
  limit?: number;
}

export function toInstance(row: any): InstanceRecord {
  return {
    uid: row.uid,
    project: row.project,
    name: row.name,
    workload: row.workload,
    ordinal: Number(row.ordinal),
    provider: row.provider,
    node: row.node,
    fence: Number(row.fence),
    revision: Number(row.revision),
    desired: row.desired,
    vcpus: Number(row.vcpus),
    memoryMiB: Number(row.memory_mib),
    diskGiB: Number(row.disk_gib),
    spec: row.spec === undefined ? undefined : JSON.parse(row.spec),
    status: JSON.parse(row.status),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function instanceRow(r: InstanceRecord) {
  return {
    uid: r.uid,
    project: r.project,
    name: r.name,
    workload: r.workload,
    ordinal: r.ordinal,
    provider: r.provider,
    node: r.node,
    fence: r.fence,
    revision: r.revision,
    desired: r.desired,
    vcpus: r.vcpus,
    memory_mib: r.memoryMiB,
    disk_gib: r.diskGiB,
    spec: JSON.stringify(r.spec),
    status: JSON.stringify(r.status),
    phase: r.status.phase,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
  };
}

export async function queryInstances(db: Kysely<any>, q: InstanceQuery): Promise<InstanceRecord[]> {
  if (q.projects?.length === 0 || q.providers?.length === 0) return [];
  let query = db.selectFrom('instances').selectAll();
  if (q.project !== undefined) query = query.where('project', '=', q.project);
  if (q.projects) query = query.where('project', 'in', q.projects as string[]);
  if (q.workload !== undefined) query = query.where('workload', '=', q.workload);
  if (q.provider !== undefined) query = query.where('provider', '=', q.provider);
  if (q.providers) query = query.where('provider', 'in', q.providers as string[]);
  if (q.node !== undefined) query = query.where('node', '=', q.node);
  const reach = q.reach;
  if (reach) {
    if (reach.projects.length === 0 && reach.providers.length === 0) return [];
    query = query.where((eb) =>
      eb.or([
        ...(reach.projects.length ? [eb('project', 'in', reach.projects as string[])] : []),
        ...(reach.providers.length ? [eb('provider', 'in', reach.providers as string[])] : []),
      ]),
    );
  }
  const after = q.after;
  if (after)
    query = query.where((eb) =>
      eb.or([
        eb('project', '>', after.project),
        eb.and([eb('project', '=', after.project), eb('name', '>', after.name)]),
      ]),
    );
  // Pages follow (project, name). Otherwise order by what the selective index already
  // sorts, so SQLite's planner does not walk the (project, name) index of every instance
  // just to avoid a small sort.
  if (q.limit !== undefined || after) query = query.orderBy('project').orderBy('name');
  else if (q.workload !== undefined) query = query.orderBy('ordinal');
  else if (q.node !== undefined) query = query.orderBy('revision');
  else query = query.orderBy('project').orderBy('name');
  if (q.limit !== undefined) query = query.limit(q.limit);
  return (await query.execute()).map(toInstance);
}
