// What a node runs with: VMs on QEMU and, where the node can, containers on runc — one
// Runtime to the agent. An instance goes to the runtime its image calls for (an OCI image
// is a container), and later calls follow it to the runtime that holds it. Migration is
// the VMs' (containers are re-placed instead).
import type {
  MigrationEndpoint,
  MigrationProgress,
  MigrationSecret,
  OutgoingOptions,
} from './qemu/migration.js';
import type { InstanceObservation, InstanceRuntimeSpec, LiveMigration, Runtime } from './runtime.js';

export class NodeRuntime implements Runtime, LiveMigration {
  readonly name: string;
  readonly kinds: readonly ('vm' | 'container')[];
  /** Where each known instance lives (filled by create and by lookups). */
  private readonly owner = new Map<string, Runtime>();

  constructor(
    private readonly vms: Runtime & LiveMigration,
    /** Absent: this node runs no containers. */
    private readonly containers?: Runtime,
  ) {
    this.name = containers ? `${vms.name}+${containers.name}` : vms.name;
    this.kinds = containers ? ['vm', 'container'] : ['vm'];
  }

  /** The runtime holding an instance (the VMs' when neither does: it reports it absent). */
  private async of(id: string): Promise<Runtime> {
    const known = this.owner.get(id);
    if (known) return known;
    if (this.containers && (await this.containers.inspect(id)).state !== 'absent') {
      this.owner.set(id, this.containers);
      return this.containers;
    }
    return this.vms;
  }

  private async vm(id: string): Promise<Runtime & LiveMigration> {
    if ((await this.of(id)) !== this.vms)
      throw new Error(`instance ${id} is a container: containers do not migrate`);
    return this.vms;
  }

  async create(spec: InstanceRuntimeSpec): Promise<void> {
    const rt = spec.image.format === 'oci' ? this.containers : this.vms;
    if (!rt) throw new Error('this node runs no containers (it needs runc, umoci and socat, and root)');
    await rt.create(spec);
    this.owner.set(spec.id, rt);
  }

  async start(id: string): Promise<InstanceObservation> {
    return (await this.of(id)).start(id);
  }
  async stop(id: string, timeoutMs?: number): Promise<void> {
    return (await this.of(id)).stop(id, timeoutMs);
  }
  async reboot(id: string): Promise<void> {
    return (await this.of(id)).reboot(id);
  }
  async delete(id: string): Promise<void> {
    const rt = await this.of(id);
    await rt.delete(id);
    this.owner.delete(id);
  }
  async inspect(id: string): Promise<InstanceObservation> {
    return (await this.of(id)).inspect(id);
  }
  /** Also learns where each listed instance lives (an agent lists them when it starts). */
  async list(): Promise<string[]> {
    const vms = await this.vms.list();
    const containers = (await this.containers?.list()) ?? [];
    for (const id of vms) this.owner.set(id, this.vms);
    for (const id of containers) if (this.containers) this.owner.set(id, this.containers);
    return [...vms, ...containers];
  }
  async files(id: string): Promise<{ name: string; path: string }[]> {
    return (await (await this.of(id)).files?.(id)) ?? [];
  }
  async readConsole(id: string, offset?: number, limit?: number): Promise<{ data: string; next: number }> {
    return (await this.of(id)).readConsole(id, offset, limit);
  }

  // Migration: VMs only.
  receiveMigration(
    spec: InstanceRuntimeSpec,
    secret: MigrationSecret,
    host: string,
  ): Promise<MigrationEndpoint> {
    if (spec.image.format === 'oci') throw new Error('containers do not migrate');
    return this.vms.receiveMigration(spec, secret, host);
  }
  async incomingState(id: string): Promise<string> {
    return (await this.vm(id)).incomingState(id);
  }
  async completeIncoming(id: string): Promise<InstanceObservation> {
    return (await this.vm(id)).completeIncoming(id);
  }
  async sendMigration(
    id: string,
    to: MigrationEndpoint,
    secret: MigrationSecret,
    opts?: OutgoingOptions,
  ): Promise<MigrationProgress> {
    return (await this.vm(id)).sendMigration(id, to, secret, opts);
  }
  async exportDisk(id: string): Promise<string | undefined> {
    return (await this.vm(id)).exportDisk(id);
  }
  /** A container has no disk of its own to export (its image is exported as such). */
  async snapshotDisk(id: string): Promise<string | undefined> {
    const rt = await this.of(id);
    return rt === this.vms ? this.vms.snapshotDisk(id) : undefined;
  }
  prepareReceive(id: string): Promise<string> {
    return this.vms.prepareReceive(id);
  }
  finishReceive(spec: InstanceRuntimeSpec, withDisk: boolean): Promise<void> {
    if (spec.image.format === 'oci') throw new Error('containers do not migrate');
    return this.vms.finishReceive(spec, withDisk);
  }
  async adoptReceived(id: string): Promise<void> {
    return (await this.vm(id)).adoptReceived(id);
  }
  async markSent(id: string): Promise<void> {
    return (await this.vm(id)).markSent(id);
  }
  async reclaim(id: string): Promise<void> {
    return (await this.vm(id)).reclaim(id);
  }
}
