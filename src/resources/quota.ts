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
import type { Store, StoredResource } from '../store/index.js';

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
 * The quota usage changes of one transaction: each project is read once (locked against
 * concurrent writers of its usage on PostgreSQL), every workload write is checked against
 * its quota as it comes, and each project's usage is written once, by flush() — an apply
 * of 500 workloads read and wrote its project 500 times.
 */
export class UsageLedger {
  private readonly projects = new Map<
    string,
    { row: StoredResource; usage: ResourceAmounts; written: ResourceAmounts | undefined }
  >();

  /**
   * Applies a workload write to its project's usage (`before`/`after`: the workload's spec
   * before and after, undefined when absent). A write that raises a dimension above its
   * quota fails; one that only lowers usage is accepted even while over quota.
   */
  async change(
    tx: Store,
    project: string,
    before: WorkloadSpec | undefined,
    after: WorkloadSpec | undefined,
  ): Promise<void> {
    let entry = this.projects.get(project);
    let usage: ResourceAmounts;
    let prior: ResourceAmounts | undefined;
    if (entry) {
      prior = entry.usage;
      usage = applied(prior, before, after);
    } else {
      const row = await tx.getForUpdate('projects', '', project);
      if (!row) return;
      const recorded = (row.status as ProjectStatus).usage;
      prior = recorded;
      // Without recorded usage the recount already includes this write.
      usage = recorded ? applied(recorded, before, after) : await projectUsage(tx, project);
      entry = { row, usage, written: recorded };
      this.projects.set(project, entry);
    }
    const quota = (entry.row.spec as ProjectSpec).quota ?? {};
    for (const d of QUOTA_DIMENSIONS) {
      const limit = quota[d];
      const grew = usage[d] > (prior?.[d] ?? 0);
      if (limit !== undefined && usage[d] > limit && grew) {
        throw new Problem(
          'quota_exceeded',
          `project '${project}' would use ${usage[d]} ${UNITS[d]}, above its quota of ${limit}`,
          [{ path: 'spec', message: `${d}: ${usage[d]} > quota ${limit}` }],
        );
      }
    }
    entry.usage = usage;
  }

  /** Writes the usage of every project that changed. */
  /** The project's usage is known to this ledger (change() reads nothing for it). */
  has(project: string): boolean {
    return this.projects.has(project);
  }

  async flush(tx: Store): Promise<void> {
    for (const { row, usage, written } of this.projects.values())
      if (!written || QUOTA_DIMENSIONS.some((d) => usage[d] !== written[d]))
        await tx.setStatus('projects', row.uid, { ...(row.status as ProjectStatus), usage });
    this.projects.clear();
  }
}

function applied(
  base: ResourceAmounts,
  before: WorkloadSpec | undefined,
  after: WorkloadSpec | undefined,
): ResourceAmounts {
  const usage: ResourceAmounts = { ...base };
  const out = before ? workloadUsage(before) : undefined;
  const into = after ? workloadUsage(after) : undefined;
  for (const d of QUOTA_DIMENSIONS) usage[d] += (into?.[d] ?? 0) - (out?.[d] ?? 0);
  return usage;
}

/** A single workload write's usage change, written at once (see UsageLedger). */
export async function updateProjectUsage(
  tx: Store,
  project: string,
  before: WorkloadSpec | undefined,
  after: WorkloadSpec | undefined,
): Promise<void> {
  const ledger = new UsageLedger();
  await ledger.change(tx, project, before, after);
  await ledger.flush(tx);
}
