// The agent protocol: JSON messages over one WebSocket per node. The control plane
// sends the node's full desired set on connect, then changes; every instance carries
// a revision so an agent never applies the same change twice. Agents send observed
// state, heartbeats with metrics, and replies to requests (console reads).
import type { DesiredState, InstancePhase, InstanceSpec } from '../store/index.js';

export const PROTOCOL_VERSION = 1;
export const AGENT_CONNECT_PATH = '/v1/agent/connect';
export const AGENT_ENROL_PATH = '/v1/agent/enrol';
export const AGENT_IMAGES_PATH = '/v1/agent/images';
export const CA_PATH = '/ca.crt';

export interface Accelerator {
  vendor: string;
  model: string;
  memoryMiB?: number;
  count: number;
}

export interface Inventory {
  hostname: string;
  architecture: 'x86_64' | 'aarch64' | 'riscv64';
  cpus: number;
  memoryMiB: number;
  diskGiB: number;
  virtualization: 'kvm' | 'emulation';
  cpuSecurity: ('sev-snp' | 'tdx')[];
  accelerators: Accelerator[];
}

export interface NodeMetrics {
  cpuPercent: number;
  memoryUsedMiB: number;
  memoryTotalMiB: number;
  load1: number;
  load5: number;
  load15: number;
}

export interface DesiredInstance {
  uid: string;
  project: string;
  name: string;
  revision: number;
  fence: number;
  desired: DesiredState;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  spec: InstanceSpec;
}

export interface ObservedInstance {
  uid: string;
  /** The revision of the desired state this observation follows from. */
  revision: number;
  phase: InstancePhase | 'Absent';
  ports: { guest: number; protocol: 'tcp' | 'udp'; host: number }[];
  restarts: number;
  message?: string;
  startedAt?: string;
  accelerator?: string;
}

export interface InstanceUsage {
  uid: string;
  cpuSeconds: number;
  rssMiB: number;
}

export type AgentMessage =
  | {
      type: 'hello';
      protocol: number;
      lastRevision: number;
      inventory: Inventory;
      address: string;
      instances: ObservedInstance[];
    }
  | { type: 'heartbeat'; metrics: NodeMetrics; usage: InstanceUsage[] }
  | { type: 'observed'; instances: ObservedInstance[] }
  | { type: 'probes'; rttMs: Record<string, number> }
  | { type: 'reply'; id: number; ok: true; result: unknown }
  | { type: 'reply'; id: number; ok: false; error: string };

export interface LatencyProbe {
  name: string;
  address: string;
}

export type ServerMessage =
  | { type: 'config'; probes: LatencyProbe[] }
  | { type: 'desired'; full: boolean; revision: number; instances: DesiredInstance[] }
  | {
      type: 'request';
      id: number;
      method: 'console';
      params: { uid: string; offset: number; limit: number };
    };

export interface EnrolRequest {
  token: string;
  name?: string;
  inventory: Inventory;
}

export interface EnrolResponse {
  provider: string;
  site: string;
  node: string;
  credential: string;
}

/** Join tokens carry the CA fingerprint they pin: ctj_<id>_<secret>_<sha256 hex>. */
export function parseJoinToken(
  token: string,
): { id: string; secret: string; caFingerprint: string } | undefined {
  const m = /^ctj_([0-9a-f]{16})_([A-Za-z0-9_-]{43})_([0-9a-f]{64})$/.exec(token.trim());
  return m ? { id: m[1]!, secret: m[2]!, caFingerprint: m[3]! } : undefined;
}

export function parseNodeCredential(token: string): { id: string; secret: string } | undefined {
  const m = /^ctn_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/.exec(token.trim());
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}
