export { type Accelerator, detectAccelerator } from './qemu/accel.js';
export {
  MIGRATION_PHASES,
  type MigrationEndpoint,
  type MigrationPhase,
  type MigrationProgress,
  type MigrationSecret,
  MigrationStopped,
  type OutgoingOptions,
} from './qemu/migration.js';
export { QemuRuntime, type QemuRuntimeOptions } from './qemu/qemu-runtime.js';
export { QmpClient, qmp } from './qemu/qmp.js';
export {
  type InstanceObservation,
  type InstanceRuntimeSpec,
  type PortMapping,
  RUNTIME_STATES,
  type Runtime,
  type RuntimeImage,
  type RuntimeState,
} from './runtime.js';
export { SimulatedRuntime } from './simulated.js';
