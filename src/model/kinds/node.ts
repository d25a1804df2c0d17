// Node: a host running the Continuum agent. Agents register nodes and report their
// inventory into status; people only label or cordon them.
import { Type } from 'typebox';
import { ARCHITECTURES, Name, oneOf, strictObject, Timestamp } from '../common.js';
import type { KindDef } from '../kind.js';

/** `enrolled`: registered, but its agent has not connected and reported yet (nothing is placed there). */
/** Health only: what the operator wants of a node (cordon, drain) is in its spec. */
export const NODE_STATES = ['enrolled', 'ready', 'suspect', 'down'] as const;
export type NodeState = (typeof NODE_STATES)[number];

export const NodeSpec = strictObject({
  site: Name,
  unschedulable: Type.Optional(Type.Boolean({ description: 'cordoned: no new instances are placed here' })),
  drain: Type.Optional(
    Type.Boolean({
      description:
        'drained: its replicas are moved elsewhere and nothing new is placed here, until uncordoned — whatever its health does meanwhile',
    }),
  ),
  drainParallel: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 1000,
      description:
        'while drained: at most this many of its replicas migrate live at a time (default: no bound)',
    }),
  ),
});
export interface NodeSpec {
  site: string;
  unschedulable?: boolean;
  drain?: boolean;
  drainParallel?: number;
}

export const Accelerator = strictObject({
  vendor: Type.String(),
  model: Type.String(),
  memoryMiB: Type.Optional(Type.Integer({ minimum: 0 })),
  count: Type.Integer({ minimum: 1 }),
});

const Inventory = strictObject({
  hostname: Type.String(),
  architecture: oneOf(ARCHITECTURES),
  cpus: Type.Integer({ minimum: 1 }),
  memoryMiB: Type.Integer({ minimum: 1 }),
  diskGiB: Type.Integer({ minimum: 0 }),
  virtualization: oneOf(['kvm', 'emulation'] as const),
  cpuSecurity: Type.Array(oneOf(['sev-snp', 'tdx'] as const)),
  accelerators: Type.Array(Accelerator),
});

export const NodeStatus = strictObject({
  state: oneOf(NODE_STATES),
  lastHeartbeat: Type.Optional(Timestamp),
  inventory: Type.Optional(Inventory),
  inventoryClaim: Type.Optional(
    strictObject(
      { inventory: Inventory, cappedBy: Type.String({ description: "the provider's or site's maxNode" }) },
      'what the agent claimed, when it exceeded the declared maximum node size (inventory is capped)',
    ),
  ),
});
export interface NodeStatus {
  state: NodeState;
  lastHeartbeat?: string;
  inventory?: unknown;
  inventoryClaim?: { inventory: unknown; cappedBy: string };
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
