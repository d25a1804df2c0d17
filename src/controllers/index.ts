export { ClusterCache, type Held, HOST_RESERVED_MIB } from './cluster-cache.js';
export {
  type AgentLink,
  MigrationController,
  type MigrationControllerOptions,
} from './migration-controller.js';
export { admitMigration, chooseTarget, type Refusal, type TargetChoice } from './migration-target.js';
export {
  type Clock,
  DEFAULT_DOWN_AFTER_MS,
  DEFAULT_SUSPECT_AFTER_MS,
  NodeHealthController,
  type NodeHealthOptions,
  setNodeIntent,
  setNodeState,
} from './node-health.js';
export { type WorkItem, WorkQueue, type WorkQueueOptions } from './work-queue.js';
export { applyPlan } from './workload-apply.js';
export {
  DEFAULT_LIMIT_FEASIBLE,
  DEFAULT_MAX_BACKLOG_BATCH,
  DEFAULT_MAX_BATCH,
  WorkloadController,
  type WorkloadControllerOptions,
} from './workload-controller.js';
export {
  type Desired,
  type FleetView,
  type OutOfPolicy,
  type PlacementStatus,
  type PlanInput,
  type PlannedStatus,
  type PlanOptions,
  type PlanStep,
  planWorkload,
  summarize,
  type WorkloadPlan,
} from './workload-plan.js';
