// The simulated runtime of the fleet simulator: instances "run" at once, in memory,
// with ports that are never opened. It implements the same Runtime contract as QEMU, so
// simulated agents exercise the real agent and the real protocol.
import type { InstanceObservation, InstanceRuntimeSpec, Runtime } from './runtime.js';

interface SimInstance {
  spec: InstanceRuntimeSpec;
  state: 'running' | 'stopped' | 'crashed';
  startedAt?: string;
  console: string;
}

export class SimulatedRuntime implements Runtime {
  readonly name = 'simulated';
  /** The simulator's nodes "run" both. */
  readonly kinds = ['vm', 'container'] as const;
  private readonly instances = new Map<string, SimInstance>();
  private nextPort = 20000;

  /** Instances this runtime holds. */
  get size(): number {
    return this.instances.size;
  }

  /** The instances this runtime holds (their uids). */
  ids(): string[] {
    return [...this.instances.keys()];
  }

  /** What the running instances use: the simulated node's load. */
  running(): { vcpus: number; memoryMiB: number } {
    let vcpus = 0;
    let memoryMiB = 0;
    for (const i of this.instances.values())
      if (i.state === 'running') {
        vcpus += i.spec.vcpus;
        memoryMiB += i.spec.memoryMiB;
      }
    return { vcpus, memoryMiB };
  }

  async create(spec: InstanceRuntimeSpec): Promise<void> {
    const old = this.instances.get(spec.id);
    this.instances.set(spec.id, { spec, state: old?.state ?? 'stopped', console: old?.console ?? '' });
  }

  async start(id: string): Promise<InstanceObservation> {
    const i = this.instances.get(id);
    if (!i) throw new Error(`instance ${id} does not exist on this node`);
    i.state = 'running';
    i.startedAt = new Date().toISOString();
    i.console += `simulated boot of ${i.spec.hostname}\n`;
    return this.inspect(id);
  }

  async stop(id: string): Promise<void> {
    const i = this.instances.get(id);
    if (i) i.state = 'stopped';
  }

  async reboot(id: string): Promise<void> {
    const i = this.instances.get(id);
    if (i?.state !== 'running') throw new Error(`instance ${id} is not running`);
    i.console += `simulated reboot of ${i.spec.hostname}\n`;
  }

  async delete(id: string): Promise<void> {
    this.instances.delete(id);
  }

  /** Test hook: the VM dies without being asked to. */
  crash(id: string): void {
    const i = this.instances.get(id);
    if (i) i.state = 'crashed';
  }

  async inspect(id: string): Promise<InstanceObservation> {
    const i = this.instances.get(id);
    if (!i) return { id, state: 'absent', ports: [] };
    return {
      id,
      state: i.state,
      ports: i.spec.ports.map((p, k) => ({
        guest: p.guest,
        protocol: p.protocol ?? 'tcp',
        host: this.nextPort + k,
      })),
      ...(i.startedAt ? { startedAt: i.startedAt } : {}),
    };
  }

  async list(): Promise<string[]> {
    return [...this.instances.keys()];
  }

  async readConsole(id: string, offset = 0, limit = 65536): Promise<{ data: string; next: number }> {
    const text = Buffer.from(this.instances.get(id)?.console ?? '');
    const data = text.subarray(offset, offset + limit);
    return { data: data.toString(), next: offset + data.length };
  }
}
