// Project quotas: usage is kept in the project's status and changed inside the writing
// transaction by the difference a workload write makes (old spec out, new spec in), so
// two concurrent deployments cannot both squeeze under the limit and a write costs the
// same whether the project has ten workloads or ten thousand. `projectUsage` recomputes
// it from scratch (for a project without recorded usage).
import {
  Problem,
  type ProjectSpec,
  type ProjectStatus,
  QUOTA_DIMENSIONS,
  type ResourceAmounts,
  type WorkloadSpec,
  workloadUsage,
} from '../model/index.js';
import type { Store } from '../store/index.js';

const UNITS: Record<string, string> = { vcpus: 'vCPUs', memoryMiB: 'MiB of memory', instances: 'instances' };

export async function projectUsage(tx: Store, project: string): Promise<ResourceAmounts> {
  const usage: ResourceAmounts = { vcpus: 0, memoryMiB: 0, instances: 0 };
  for (const w of await tx.list('workloads', { parents: [project] })) {
    const u = workloadUsage(w.spec as WorkloadSpec);
    for (const d of QUOTA_DIMENSIONS) usage[d] += u[d];
  }
  return usage;
}

/**
 * Applies a workload write to its project's usage (`before`/`after`: the workload's spec
 * before and after, undefined when absent). A write that raises a dimension above its
 * quota fails; one that only lowers usage is accepted even while over quota.
 */
export async function updateProjectUsage(
  tx: Store,
  project: string,
  before: WorkloadSpec | undefined,
  after: WorkloadSpec | undefined,
): Promise<void> {
  const row = await tx.get('projects', '', project);
  if (!row) return;
  const recorded = (row.status as ProjectStatus).usage;
  const base = recorded ?? (await projectUsage(tx, project));
  const usage: ResourceAmounts = { ...base };
  // Without recorded usage the recount already includes this write.
  if (recorded) {
    const out = before ? workloadUsage(before) : undefined;
    const into = after ? workloadUsage(after) : undefined;
    for (const d of QUOTA_DIMENSIONS) usage[d] += (into?.[d] ?? 0) - (out?.[d] ?? 0);
  }
  const quota = (row.spec as ProjectSpec).quota ?? {};
  for (const d of QUOTA_DIMENSIONS) {
    const limit = quota[d];
    const grew = usage[d] > (recorded?.[d] ?? 0);
    if (limit !== undefined && usage[d] > limit && grew) {
      throw new Problem(
        'quota_exceeded',
        `project '${project}' would use ${usage[d]} ${UNITS[d]}, above its quota of ${limit}`,
        [{ path: 'spec', message: `${d}: ${usage[d]} > quota ${limit}` }],
      );
    }
  }
  const status: ProjectStatus = { ...(row.status as ProjectStatus), usage };
  await tx.setStatus('projects', row.uid, status);
}
