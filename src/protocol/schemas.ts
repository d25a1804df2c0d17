// Schemas of every agent-protocol message, both directions, and of the enrolment body,
// with the bounds a real node can reach. The gateway checks each message an agent sends
// against them before anything else reads it (see the gateway's transport). Kept apart
// from index.ts so that the agent, which only needs the types, does not load TypeBox.
import { type Static, type TSchema, Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { DESIRED_STATES, INSTANCE_PHASES, MIGRATION_MODES, TRANSFER_PHASES } from './index.js';

const obj = <P extends Record<string, TSchema>>(props: P) =>
  Type.Object(props, { additionalProperties: false });
const str = (maxLength: number, extra: Record<string, unknown> = {}) => Type.String({ maxLength, ...extra });
const int = (minimum: number, maximum: number) => Type.Integer({ minimum, maximum });
const num = (minimum: number, maximum: number) => Type.Number({ minimum, maximum });
const union = <T extends string>(values: readonly T[]) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values] });

/** Largest sizes one node may claim: beyond any server built today, far below overflow. */
export const INVENTORY_BOUNDS = {
  cpus: 4096,
  memoryMiB: 64 * 1024 * 1024, // 64 TiB
  diskGiB: 1024 * 1024, // 1 PiB
  accelerators: 64,
  instances: 10_000,
} as const;

const Uid = str(64, { pattern: '^[0-9a-f-]{1,64}$' });
const Revision = int(0, Number.MAX_SAFE_INTEGER);
const Port = int(1, 65535);

export const AcceleratorSchema = obj({
  vendor: str(64, { minLength: 1 }),
  model: str(128, { minLength: 1 }),
  memoryMiB: Type.Optional(int(0, 16 * 1024 * 1024)),
  count: int(1, INVENTORY_BOUNDS.accelerators),
});

export const InventorySchema = obj({
  hostname: str(253),
  architecture: union(['x86_64', 'aarch64', 'riscv64'] as const),
  cpus: int(1, INVENTORY_BOUNDS.cpus),
  memoryMiB: int(1, INVENTORY_BOUNDS.memoryMiB),
  diskGiB: int(0, INVENTORY_BOUNDS.diskGiB),
  virtualization: union(['kvm', 'emulation'] as const),
  cpuSecurity: Type.Array(union(['sev-snp', 'tdx'] as const), { maxItems: 2, uniqueItems: true }),
  accelerators: Type.Array(AcceleratorSchema, { maxItems: INVENTORY_BOUNDS.accelerators }),
  /** The node sends and receives live migrations (QEMU's runtime can, unless turned off). */
  liveMigration: Type.Optional(Type.Boolean()),
  /** The node's runtime can move a stopped instance's disk (cold migration). */
  coldMigration: Type.Optional(Type.Boolean()),
  /** The node runs OCI containers (runc, umoci and socat there, as root). */
  containers: Type.Optional(Type.Boolean()),
});

export const NodeMetricsSchema = obj({
  cpuPercent: num(0, 100),
  memoryUsedMiB: num(0, INVENTORY_BOUNDS.memoryMiB),
  memoryTotalMiB: num(0, INVENTORY_BOUNDS.memoryMiB),
  load1: num(0, 1e6),
  load5: num(0, 1e6),
  load15: num(0, 1e6),
});

export const ObservedInstanceSchema = obj({
  uid: Uid,
  revision: Revision,
  phase: union([...INSTANCE_PHASES, 'Absent'] as const),
  ports: Type.Array(obj({ guest: Port, protocol: union(['tcp', 'udp'] as const), host: Port }), {
    maxItems: 64,
  }),
  restarts: int(0, Number.MAX_SAFE_INTEGER),
  message: Type.Optional(str(4096)),
  startedAt: Type.Optional(str(64)),
  accelerator: Type.Optional(str(256)),
});

const Instances = Type.Array(ObservedInstanceSchema, { maxItems: INVENTORY_BOUNDS.instances });

const Bytes = int(0, Number.MAX_SAFE_INTEGER);
export const TransferProgressSchema = obj({
  phase: union(TRANSFER_PHASES),
  diskDone: Type.Optional(Bytes),
  diskTotal: Type.Optional(Bytes),
  ramTransferred: Type.Optional(Bytes),
  ramRemaining: Type.Optional(Bytes),
  ramTotal: Type.Optional(Bytes),
  mbps: Type.Optional(num(0, 1e9)),
  dirtyPagesRate: Type.Optional(num(0, 1e12)),
  downtimeMs: Type.Optional(num(0, 1e9)),
  totalTimeMs: Type.Optional(num(0, 1e12)),
  path: Type.Optional(union(['direct', 'relay'] as const)),
  sha256: Type.Optional(str(64, { pattern: '^[0-9a-f]{64}$' })),
});
const MigrationId = str(64, { pattern: '^[0-9a-f-]{1,64}$' });
/** Agent reports carry a sequence number the gateway acknowledges once they are stored. */
const Seq = int(1, Number.MAX_SAFE_INTEGER);

/** Agent → control plane, one schema per message type. */
export const AGENT_MESSAGE_SCHEMAS = {
  hello: obj({
    type: Type.Literal('hello'),
    protocol: int(0, 1_000_000),
    lastRevision: Revision,
    inventory: InventorySchema,
    address: str(253),
    instances: Instances,
    seq: Type.Optional(Seq),
  }),
  heartbeat: obj({
    type: Type.Literal('heartbeat'),
    metrics: NodeMetricsSchema,
    usage: Type.Array(
      obj({
        uid: Uid,
        cpuSeconds: num(0, Number.MAX_SAFE_INTEGER),
        rssMiB: num(0, INVENTORY_BOUNDS.memoryMiB),
      }),
      { maxItems: 1024 },
    ),
  }),
  observed: obj({ type: Type.Literal('observed'), instances: Instances, seq: Type.Optional(Seq) }),
  probes: obj({
    type: Type.Literal('probes'),
    rttMs: Type.Record(str(100), num(0, 60_000), { maxProperties: 50 }),
  }),
  migration: obj({
    type: Type.Literal('migration'),
    migration: MigrationId,
    progress: TransferProgressSchema,
  }),
  reply: Type.Union([
    obj({
      type: Type.Literal('reply'),
      id: int(1, Number.MAX_SAFE_INTEGER),
      ok: Type.Literal(true),
      result: Type.Unknown(),
    }),
    obj({
      type: Type.Literal('reply'),
      id: int(1, Number.MAX_SAFE_INTEGER),
      ok: Type.Literal(false),
      error: str(4096),
    }),
  ]),
} as const;
export type AgentMessageType = keyof typeof AGENT_MESSAGE_SCHEMAS;

const KiB = 1024;
const MiB = 1024 * KiB;
/**
 * Largest message of each type, in bytes of JSON: a heartbeat is small, a hello or a
 * report lists every instance of the node, a reply carries up to 1 MiB of console text
 * (escaped). The transport refuses anything larger than the largest before parsing it.
 */
export const AGENT_MESSAGE_LIMITS: Record<AgentMessageType, number> = {
  hello: 4 * MiB,
  heartbeat: 128 * KiB,
  observed: 4 * MiB,
  probes: 16 * KiB,
  migration: 4 * KiB,
  reply: 8 * MiB,
};
export const MAX_AGENT_MESSAGE = Math.max(...Object.values(AGENT_MESSAGE_LIMITS));
/** No message of the protocol nests deeper; deeper JSON is refused before it is parsed. */
export const MAX_JSON_DEPTH = 8;

const InstanceSpecSchema = obj({
  hostname: str(253),
  image: obj({
    project: str(63),
    name: str(63),
    format: union(['qcow2', 'raw', 'kernel-initrd'] as const),
    files: obj({
      disk: Type.Optional(obj({ sha256: str(64) })),
      kernel: Type.Optional(obj({ sha256: str(64) })),
      initrd: Type.Optional(obj({ sha256: str(64) })),
    }),
    cmdline: Type.Optional(str(4096)),
  }),
  userData: Type.Optional(Type.String()),
  ports: Type.Array(obj({ guest: Port, protocol: Type.Optional(union(['tcp', 'udp'] as const)) })),
  accelerators: Type.Optional(Type.Integer({ minimum: 0 })),
  powerOff: Type.Optional(Type.Boolean()),
  reboots: Type.Optional(Type.Integer({ minimum: 0 })),
});

export const DesiredInstanceSchema = obj({
  uid: Uid,
  project: str(63),
  name: str(128),
  revision: Revision,
  fence: Type.Integer({ minimum: 0 }),
  desired: union(DESIRED_STATES),
  vcpus: Type.Integer({ minimum: 1 }),
  memoryMiB: Type.Integer({ minimum: 1 }),
  diskGiB: Type.Integer({ minimum: 0 }),
  spec: InstanceSpecSchema,
});

const SecretSchema = obj({
  identity: str(64, { pattern: '^[A-Za-z0-9-]{1,64}$' }),
  keyHex: str(256, { pattern: '^[0-9a-f]{64,256}$' }),
});
const EndpointSchema = obj({
  host: str(253),
  migrationPort: Port,
  nbdPort: Type.Optional(Port),
  probePort: Type.Optional(Port),
  relay: Type.Optional(str(2048, { pattern: '^(https?|wss?)://' })),
});
const request = <P extends Record<string, TSchema>>(method: string, params: P) =>
  obj({
    type: Type.Literal('request'),
    id: int(1, Number.MAX_SAFE_INTEGER),
    method: Type.Literal(method),
    params: obj(params),
  });

/** Control plane → agent. */
export const SERVER_MESSAGE_SCHEMAS = {
  config: obj({
    type: Type.Literal('config'),
    probes: Type.Array(obj({ name: str(100), address: str(300) })),
  }),
  desired: obj({
    type: Type.Literal('desired'),
    full: Type.Boolean(),
    revision: Revision,
    instances: Type.Array(DesiredInstanceSchema),
  }),
  request: Type.Union([
    request('console', {
      uid: Uid,
      offset: Type.Integer({ minimum: 0 }),
      limit: Type.Integer({ minimum: 0 }),
    }),
    request('migrate-receive', {
      migration: MigrationId,
      instance: DesiredInstanceSchema,
      secret: SecretSchema,
      mode: Type.Optional(union(MIGRATION_MODES)),
    }),
    request('migrate-send', {
      migration: MigrationId,
      uid: Uid,
      to: EndpointSchema,
      secret: SecretSchema,
      mode: Type.Optional(union(MIGRATION_MODES)),
    }),
    request('migrate-finish', {
      migration: MigrationId,
      uid: Uid,
      sha256: str(64, { pattern: '^[0-9a-f]{64}$' }),
    }),
    request('migrate-reclaim', { migration: MigrationId, uid: Uid }),
    request('migrate-cancel', { migration: MigrationId, uid: Uid }),
    request('migrate-state', { migration: MigrationId, uid: Uid }),
    request('migrate-abort', { migration: MigrationId, uid: Uid }),
    request('export-disk', { export: MigrationId, uid: Uid, secret: SecretSchema }),
    request('erase', {
      project: str(63),
      uids: Type.Array(Uid, { maxItems: 100_000 }),
      images: Type.Array(str(64, { pattern: '^[0-9a-f]{64}$' }), { maxItems: 10_000 }),
    }),
  ]),
  ack: obj({
    type: Type.Literal('ack'),
    seq: Seq,
    refused: Type.Optional(Type.Array(obj({ uid: Uid, reason: str(200) }))),
  }),
} as const;

export const EnrolRequestSchema = obj({
  token: str(200, { minLength: 1 }),
  name: Type.Optional(str(63)),
  inventory: InventorySchema,
});

export const EnrolResponseSchema = obj({
  provider: str(63),
  site: str(63),
  node: str(63),
  credential: str(200),
});

export type Inventory = Static<typeof InventorySchema>;
export type Accelerator = Static<typeof AcceleratorSchema>;
export type NodeMetrics = Static<typeof NodeMetricsSchema>;
export type ObservedInstance = Static<typeof ObservedInstanceSchema>;

type Checker = ReturnType<typeof Compile>;
const checkers = new Map<TSchema, Checker>();

/** The first few things wrong with a value, by dotted field path (empty when it is valid). */
export function schemaErrors(schema: TSchema, value: unknown, max = 3): { path: string; message: string }[] {
  let c = checkers.get(schema);
  if (!c) {
    c = Compile(schema);
    checkers.set(schema, c);
  }
  if (c.Check(value)) return [];
  const out: { path: string; message: string }[] = [];
  for (const e of c.Errors(value)) {
    if (e.keyword === 'anyOf' || e.keyword === 'boolean') continue;
    const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const extra =
      e.keyword === 'additionalProperties'
        ? `unknown field '${(e.params as { additionalProperties: string[] }).additionalProperties.join("', '")}'`
        : e.message;
    out.push({ path, message: extra });
    if (out.length >= max) break;
  }
  return out.length ? out : [{ path: '', message: 'does not match the schema' }];
}

/** Checks an agent message: its type is known and it matches that type's schema. */
export function checkAgentMessage(
  msg: unknown,
): { ok: true; type: AgentMessageType } | { ok: false; errors: string[] } {
  const type = (msg as { type?: unknown })?.type;
  if (typeof type !== 'string' || !Object.hasOwn(AGENT_MESSAGE_SCHEMAS, type))
    return { ok: false, errors: [`type: unknown message type ${JSON.stringify(type)?.slice(0, 40)}`] };
  const errors = schemaErrors(AGENT_MESSAGE_SCHEMAS[type as AgentMessageType], msg);
  return errors.length
    ? { ok: false, errors: errors.map((e) => `${type}${e.path ? `.${e.path}` : ''}: ${e.message}`) }
    : { ok: true, type: type as AgentMessageType };
}

/**
 * How deeply a JSON text nests, read without parsing it (brackets outside strings);
 * stops counting once past `limit`, so a hostile text costs one pass at most.
 */
export function jsonDepthExceeds(text: Uint8Array | string, limit: number): boolean {
  const bytes = typeof text === 'string' ? Buffer.from(text) : text;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}
