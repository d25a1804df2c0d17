// Project quotas: usage is recomputed from the project's workloads inside the writing
// transaction, so two concurrent deployments cannot both squeeze under the limit.
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
 * Recomputes a project's usage and stores it. A write that raises a dimension above its
 * quota fails; one that only lowers usage is accepted even while over quota.
 */
export async function refreshProjectUsage(tx: Store, project: string): Promise<void> {
  const row = await tx.get('projects', '', project);
  if (!row) return;
  const before = (row.status as ProjectStatus).usage;
  const usage = await projectUsage(tx, project);
  const quota = (row.spec as ProjectSpec).quota ?? {};
  for (const d of QUOTA_DIMENSIONS) {
    const limit = quota[d];
    const grew = usage[d] > (before?.[d] ?? 0);
    if (limit !== undefined && usage[d] > limit && grew) {
      throw new Problem(
        'quota_exceeded',
        `project '${project}' would use ${usage[d]} ${UNITS[d]}, above its quota of ${limit}`,
        [{ path: 'spec', message: `${d}: ${usage[d]} > quota ${limit}` }],
      );
    }
  }
  const status: ProjectStatus = { ...(row.status as ProjectStatus), usage };
  await tx.update('projects', row.uid, undefined, { status, bumpGeneration: false });
}
