// The boundary between the agent and whatever runs instances: QEMU for real VMs, a
// simulated runtime for the fleet simulator. One contract for all implementations.

export interface RuntimeImage {
  format: 'qcow2' | 'raw' | 'kernel-initrd';
  /** Local paths of the verified, cached image files. */
  files: { disk?: string; kernel?: string; initrd?: string };
  cmdline?: string;
}

export interface InstanceRuntimeSpec {
  /** Stable identity (the instance uid); also the cloud-init instance-id. */
  id: string;
  hostname: string;
  vcpus: number;
  memoryMiB: number;
  diskGiB?: number;
  image: RuntimeImage;
  userData?: string;
  ports: { guest: number; protocol?: 'tcp' | 'udp' }[];
}

export const RUNTIME_STATES = ['running', 'stopped', 'crashed', 'absent'] as const;
export type RuntimeState = (typeof RUNTIME_STATES)[number];

export interface PortMapping {
  guest: number;
  protocol: 'tcp' | 'udp';
  host: number;
}

export interface InstanceObservation {
  id: string;
  state: RuntimeState;
  pid?: number;
  ports: PortMapping[];
  startedAt?: string;
  accelerator?: 'kvm' | 'tcg';
}

export interface Runtime {
  readonly name: string;
  /** Prepares disks and seed; idempotent, keeps an existing instance's disk. */
  create(spec: InstanceRuntimeSpec): Promise<void>;
  start(id: string): Promise<InstanceObservation>;
  /** Asks the guest to power off, then forces it after the timeout. */
  stop(id: string, timeoutMs?: number): Promise<void>;
  reboot(id: string): Promise<void>;
  /** Stops the instance if needed and removes everything of it. */
  delete(id: string): Promise<void>;
  inspect(id: string): Promise<InstanceObservation>;
  /** Instances present on this host, running or not (for adoption after a restart). */
  list(): Promise<string[]>;
  /** Reads the serial console from a byte offset. */
  readConsole(id: string, offset?: number, limit?: number): Promise<{ data: string; next: number }>;
}
