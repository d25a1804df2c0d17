export { NodeRuntime } from './node-runtime.js';
export { type Accelerator, detectAccelerator } from './qemu/accel.js';
export {
  type MigrationEndpoint,
  type MigrationProgress,
  type MigrationSecret,
  MigrationStopped,
  type OutgoingOptions,
  TRANSFER_PHASES,
} from './qemu/migration.js';
export { QemuRuntime, type QemuRuntimeOptions } from './qemu/qemu-runtime.js';
export { QmpClient, qmp } from './qemu/qmp.js';
export {
  containersUnsupported,
  type RestartPolicy,
  RuncRuntime,
  type RuncRuntimeOptions,
} from './runc/runc-runtime.js';
export {
  type ContainerSpec,
  canMigrate,
  type InstanceObservation,
  type InstanceRuntimeSpec,
  type LiveMigration,
  type PortMapping,
  RUNTIME_STATES,
  type Runtime,
  type RuntimeImage,
  type RuntimeState,
} from './runtime.js';
export { SimulatedRuntime } from './simulated.js';
