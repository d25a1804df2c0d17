// Simulated nodes for the fleet simulator and scale tests: real Agent objects (the real
// enrolment, TLS and WebSocket protocol, heartbeats and reconcile loop) over the
// SimulatedRuntime, with a synthetic inventory.
import { join } from 'node:path';
import { Agent } from '../agent/index.js';
import type { Inventory } from '../protocol/index.js';
import { SimulatedRuntime } from '../runtimes/index.js';

export interface SimNodeSpec {
  name: string;
  joinToken: string;
  inventory?: Partial<Inventory>;
}

export interface SimNode {
  name: string;
  /** Its provider, when the fleet knows it (runFleet). */
  provider?: string;
  agent: Agent;
  runtime: SimulatedRuntime;
  dataDir: string;
}

export function simInventory(name: string, over: Partial<Inventory> = {}): Inventory {
  return {
    hostname: name,
    architecture: 'x86_64',
    cpus: 8,
    memoryMiB: 32768,
    diskGiB: 500,
    virtualization: 'kvm',
    cpuSecurity: [],
    accelerators: [],
    ...over,
  };
}

export async function startSimNode(
  gateway: string,
  baseDir: string,
  spec: SimNodeSpec,
  runtime = new SimulatedRuntime(),
  opts: {
    heartbeatIntervalMs?: number;
    probeIntervalMs?: number;
    reconcileIntervalMs?: number;
    resendAfterMs?: number;
  } = {},
): Promise<SimNode> {
  const dataDir = join(baseDir, spec.name);
  const inventory = simInventory(spec.name, spec.inventory);
  // Load that follows what runs here, with a slow wave of its own so that graphs move.
  const phase = [...spec.name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 997, 7);
  const metrics = async () => {
    const used = runtime.running();
    const wave = 4 * Math.sin(Date.now() / 60_000 + phase);
    const cpuPercent = Math.min(100, Math.max(0, 6 + wave + (100 * used.vcpus) / (2 * inventory.cpus)));
    const memoryUsedMiB = Math.min(inventory.memoryMiB, 1024 + used.memoryMiB);
    const load = (cpuPercent / 100) * inventory.cpus;
    return {
      cpuPercent,
      memoryUsedMiB,
      memoryTotalMiB: inventory.memoryMiB,
      load1: load,
      load5: load,
      load15: load,
    };
  };
  const agent = new Agent({
    dataDir,
    server: gateway,
    joinToken: spec.joinToken,
    name: spec.name,
    runtime,
    inventory,
    skipImages: true,
    persistDesired: false,
    ...(opts.resendAfterMs ? { resendAfterMs: opts.resendAfterMs } : {}),
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 1000,
    // Desired-state messages trigger a pass at once; the periodic pass only heals.
    reconcileIntervalMs: opts.reconcileIntervalMs ?? 5000,
    metrics,
    probeIntervalMs: opts.probeIntervalMs ?? 30_000,
    log: () => {},
  });
  await agent.start();
  return { name: spec.name, agent, runtime, dataDir };
}
