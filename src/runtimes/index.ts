export { type Accelerator, detectAccelerator } from './qemu/accel.js';
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
