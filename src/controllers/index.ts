export { ClusterCache, HOST_RESERVED_MIB } from './cluster-cache.js';
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
export {
  DEFAULT_MAX_BATCH,
  type PlacementStatus,
  WorkloadController,
  type WorkloadControllerOptions,
} from './workload-controller.js';
