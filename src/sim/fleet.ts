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
  const agent = new Agent({
    dataDir,
    server: gateway,
    joinToken: spec.joinToken,
    name: spec.name,
    runtime,
    inventory: simInventory(spec.name, spec.inventory),
    skipImages: true,
    persistDesired: false,
    ...(opts.resendAfterMs ? { resendAfterMs: opts.resendAfterMs } : {}),
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 1000,
    // Desired-state messages trigger a pass at once; the periodic pass only heals.
    reconcileIntervalMs: opts.reconcileIntervalMs ?? 5000,
    metrics: async () => ({
      cpuPercent: 20,
      memoryUsedMiB: 4096,
      memoryTotalMiB: 32768,
      load1: 1,
      load5: 1,
      load15: 1,
    }),
    probeIntervalMs: opts.probeIntervalMs ?? 30_000,
    log: () => {},
  });
  await agent.start();
  return { name: spec.name, agent, runtime, dataDir };
}
