export { WorkQueue } from './work-queue.js';
export { WorkloadController, type WorkloadControllerOptions } from './workload-controller.js';
