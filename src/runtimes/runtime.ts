// The boundary between the agent and whatever runs instances: QEMU for real VMs, runc
// for OCI containers, a simulated runtime for the fleet simulator. One contract for all
// implementations (test/runtime-contract.test.ts).

export interface RuntimeImage {
  /** VM images for QEMU; `oci` (an OCI image layout as a tar archive) for containers. */
  format: 'qcow2' | 'raw' | 'kernel-initrd' | 'oci';
  /** Local paths of the verified, cached image files. */
  files: { disk?: string; kernel?: string; initrd?: string; oci?: string };
  cmdline?: string;
  /** An OCI image: the tag in its layout (default `latest`). */
  ref?: string;
}

/** What a container runs, beyond its image's defaults. */
export interface ContainerSpec {
  /** Replaces the image's entrypoint and command. */
  command?: string[];
  /** Replaces the image's command (its arguments), after the entrypoint. */
  args?: string[];
  env?: Record<string, string>;
  /** When the supervisor runs it again after it exits (default always). */
  restart?: 'always' | 'on-failure' | 'never';
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
  /** Containers only. */
  container?: ContainerSpec;
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
  /** Waiting for or receiving a live migration: not this node's copy until it completes. */
  incoming?: true;
  /** Migrated to another node: this copy never runs here again. */
  migratedAway?: true;
  /** Made of a cold migration's disk copy: not this node's copy until it is bound here. */
  received?: true;
}

export interface Runtime {
  readonly name: string;
  /** What it runs: VMs, containers or both (the agent reports it; the scheduler filters on it). */
  readonly kinds: readonly ('vm' | 'container')[];
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
  /** The files an instance keeps on this host (its disk, seed, console log, metadata), by name. */
  files?(id: string): Promise<{ name: string; path: string }[]>;
  /** Reads the serial console from a byte offset. */
  readConsole(id: string, offset?: number, limit?: number): Promise<{ data: string; next: number }>;
}

/** The live-migration side of a runtime (QEMU has it; the simulated runtime does not). */
export interface LiveMigration {
  /** Destination: starts the instance paused, waiting for the stream; returns where to send it. */
  receiveMigration(
    spec: InstanceRuntimeSpec,
    secret: import('./qemu/migration.js').MigrationSecret,
    host: string,
  ): Promise<import('./qemu/migration.js').MigrationEndpoint>;
  /** Destination: QEMU's state of the incoming stream (active, completed, failed …). */
  incomingState(id: string): Promise<string>;
  /** Destination, after completion: the guest is this node's from now on. */
  completeIncoming(id: string): Promise<InstanceObservation>;
  /** Source: streams the running instance to the destination; resolves when it completed. */
  sendMigration(
    id: string,
    to: import('./qemu/migration.js').MigrationEndpoint,
    secret: import('./qemu/migration.js').MigrationSecret,
    opts?: import('./qemu/migration.js').OutgoingOptions,
  ): Promise<import('./qemu/migration.js').MigrationProgress>;

  // Cold migration: the instance stopped, its disk flattened and copied, started there.
  /** Source, the instance stopped: its disk flattened into one file (none: no disk). */
  exportDisk(id: string): Promise<string | undefined>;
  /**
   * An export: the instance's disk flattened into one file, crash-consistent while it
   * runs (a QEMU backup job), as left when it is stopped; none when it has no disk. The
   * caller removes the file.
   */
  snapshotDisk(id: string): Promise<string | undefined>;
  /** Destination: a clean place for the instance, and the file its disk copy goes to. */
  prepareReceive(id: string): Promise<string>;
  /**
   * Destination, the copy checked: the instance made of it (stopped, marked `received`
   * until it is adopted), or of its image alone when it had no disk.
   */
  finishReceive(spec: InstanceRuntimeSpec, withDisk: boolean): Promise<void>;
  /** Destination: a received instance is bound here; it is this node's from now on. */
  adoptReceived(id: string): Promise<void>;
  /** Source: its stopped copy is sent; it never starts here again unless reclaimed. */
  markSent(id: string): Promise<void>;
  /** Source: the cold migration failed after the copy was sent: this copy is this node's again. */
  reclaim(id: string): Promise<void>;
}

export function canMigrate(rt: Runtime): rt is Runtime & LiveMigration {
  return typeof (rt as Partial<LiveMigration>).receiveMigration === 'function';
}
