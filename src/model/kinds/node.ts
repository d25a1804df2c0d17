// Node: a host running the Continuum agent. Agents register nodes and report their
// inventory into status; people only label or cordon them.
import { Type } from 'typebox';
import { ARCHITECTURES, Name, oneOf, strictObject, Timestamp } from '../common.js';
import type { KindDef } from '../kind.js';

export const NODE_STATES = ['ready', 'suspect', 'down', 'draining'] as const;
export type NodeState = (typeof NODE_STATES)[number];

export const NodeSpec = strictObject({
  site: Name,
  unschedulable: Type.Optional(Type.Boolean({ description: 'cordoned: no new instances are placed here' })),
});
export interface NodeSpec {
  site: string;
  unschedulable?: boolean;
}

export const Accelerator = strictObject({
  vendor: Type.String(),
  model: Type.String(),
  memoryMiB: Type.Optional(Type.Integer({ minimum: 0 })),
  count: Type.Integer({ minimum: 1 }),
});

export const NodeStatus = strictObject({
  state: oneOf(NODE_STATES),
  lastHeartbeat: Type.Optional(Timestamp),
  inventory: Type.Optional(
    strictObject({
      hostname: Type.String(),
      architecture: oneOf(ARCHITECTURES),
      cpus: Type.Integer({ minimum: 1 }),
      memoryMiB: Type.Integer({ minimum: 1 }),
      diskGiB: Type.Integer({ minimum: 0 }),
      virtualization: oneOf(['kvm', 'emulation'] as const),
      cpuSecurity: Type.Array(oneOf(['sev-snp', 'tdx'] as const)),
      accelerators: Type.Array(Accelerator),
    }),
  ),
});
export interface NodeStatus {
  state: NodeState;
  lastHeartbeat?: string;
  inventory?: unknown;
}

export const nodeKind: KindDef<NodeSpec, NodeStatus> = {
  kind: 'Node',
  plural: 'nodes',
  parent: 'provider',
  aliases: ['node', 'nodes', 'no'],
  description: 'A host running the Continuum agent, registered by the agent itself.',
  spec: NodeSpec,
  status: NodeStatus,
  creatable: false,
  filters: ['site', 'state'],
  columns: (spec, status) => ({ site: spec.site, state: status.state }),
  initialStatus: () => ({ state: 'down' }),
};
