// The agent protocol: JSON messages over one WebSocket per node. The control plane
// sends the node's full desired set on connect, then changes; every instance carries
// a revision so an agent never applies the same change twice. Agents send observed
// state, heartbeats with metrics, and replies to requests (console reads).
import { createHash, X509Certificate } from 'node:crypto';
import type { Inventory, NodeMetrics, ObservedInstance } from './schemas.js';

// Type-only: the agent never loads the schemas (and TypeBox); the gateway checks with them.
export type { Accelerator, AgentMessageType, Inventory, NodeMetrics, ObservedInstance } from './schemas.js';

export const PROTOCOL_VERSION = 1;
export const AGENT_CONNECT_PATH = '/v1/agent/connect';
export const AGENT_ENROL_PATH = '/v1/agent/enrol';
export const AGENT_IMAGES_PATH = '/v1/agent/images';
/** A migration stream relayed by the gateway when the two nodes cannot reach each other. */
export const AGENT_RELAY_PATH = '/v1/agent/relay';
export const CA_PATH = '/ca.crt';

/** WebSocket close codes the gateway uses, each with what the agent should make of it. */
export const CLOSE_CODES = {
  /** Another connection of the same node took over. */
  replaced: 4000,
  /** The node's credential was revoked. */
  revoked: 4001,
  /** Not a JSON object with a type. */
  malformed: 4002,
  /** The agent speaks another protocol version. */
  unsupportedProtocol: 4003,
  /** A message that does not match its schema. */
  invalid: 4004,
  /** A message over its type's size limit, or nested too deeply. */
  tooLarge: 4005,
  /** More messages than the connection's rate limit allows. */
  rateLimited: 4006,
} as const;

export const DESIRED_STATES = ['running', 'stopped', 'absent'] as const;
export type DesiredState = (typeof DESIRED_STATES)[number];

export const INSTANCE_PHASES = ['Pending', 'Creating', 'Running', 'Stopped', 'Failed', 'Deleting'] as const;
export type InstancePhase = (typeof INSTANCE_PHASES)[number];

export interface InstanceImageRef {
  project: string;
  name: string;
  format: 'qcow2' | 'raw' | 'kernel-initrd' | 'oci';
  files: Partial<Record<'disk' | 'kernel' | 'initrd' | 'oci', { sha256: string }>>;
  cmdline?: string;
  /** oci: the tag in the image layout. */
  ref?: string;
}

/** A container's command, environment and restart policy (workloads of kind container). */
export interface InstanceContainer {
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  restart?: 'always' | 'on-failure' | 'never';
}

/** What an agent needs to run the instance (besides the sizes kept in columns). */
export interface InstanceSpec {
  hostname: string;
  image: InstanceImageRef;
  userData?: string;
  ports: { guest: number; protocol?: 'tcp' | 'udp' }[];
  /** Containers only: what runs (the image is then an OCI image). */
  container?: InstanceContainer;
  /** Accelerators the instance holds on its node (for capacity accounting). */
  accelerators?: number;
  /** Set by a user's `stop`; the instance stays stopped until `start`. */
  powerOff?: boolean;
  /** Raised by each `reboot` request; the agent reboots when it sees a higher count. */
  reboots?: number;
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
      seq?: number;
    }
  | { type: 'heartbeat'; metrics: NodeMetrics; usage: InstanceUsage[] }
  /** `seq` (from 1, rising): the gateway answers with an `ack` once the report is stored. */
  | { type: 'observed'; instances: ObservedInstance[]; seq?: number }
  | { type: 'probes'; rttMs: Record<string, number> }
  | { type: 'reply'; id: number; ok: true; result: unknown }
  | { type: 'reply'; id: number; ok: false; error: string }
  /** Progress of a live migration this node sends (between `migrate-send` and its reply). */
  | { type: 'migration'; migration: string; progress: TransferProgress };

export const TRANSFER_PHASES = [
  'mirroring',
  'migrating',
  'copying',
  'completed',
  'failed',
  'cancelled',
] as const;
export const MIGRATION_MODES = ['live', 'cold'] as const;
export type MigrationMode = (typeof MIGRATION_MODES)[number];

/**
 * A migration's progress: a live one's as QEMU reports it (bytes; rates in Mbit/s and
 * pages/s), a cold one's as its disk copy goes (`copying`, `diskDone` of `diskTotal`).
 */
export interface TransferProgress {
  phase: (typeof TRANSFER_PHASES)[number];
  diskDone?: number;
  diskTotal?: number;
  ramTransferred?: number;
  ramRemaining?: number;
  ramTotal?: number;
  mbps?: number;
  dirtyPagesRate?: number;
  downtimeMs?: number;
  totalTimeMs?: number;
  /** How the streams travel: straight to the destination, or through the gateway's relay. */
  path?: 'direct' | 'relay';
  /** Cold: the SHA-256 of the flattened disk sent (of nothing, for an instance without one). */
  sha256?: string;
}

/** The one-time pre-shared key of a migration, handed to its two nodes only. */
export interface MigrationSecret {
  identity: string;
  keyHex: string;
}

/**
 * Where a migration's destination listens: its migration stream (QEMU's, or the disk
 * copy of a cold migration), and NBD for a live migration's disk mirror.
 */
export interface MigrationEndpoint {
  host: string;
  migrationPort: number;
  nbdPort?: number;
  /** A port that accepts and closes: the source tries it to know whether it reaches the destination. */
  probePort?: number;
  /**
   * The control-plane gateway whose relay the destination's sockets wait at (the replica
   * its agent is connected to): the source's relay sockets go there too when that address
   * is one of its own servers, so that both sides meet at one replica.
   */
  relay?: string;
}

/** What the control plane asks of an agent, by method, and what it answers. */
export interface AgentRequests {
  console: { params: { uid: string; offset: number; limit: number }; result: { data: string; next: number } };
  /**
   * Destination: start the instance paused, waiting for the stream (live), or wait for
   * its disk (cold).
   */
  'migrate-receive': {
    params: { migration: string; instance: DesiredInstance; secret: MigrationSecret; mode?: MigrationMode };
    result: MigrationEndpoint;
  };
  /**
   * Source: stream the instance (progress in `migration` messages); answers when done.
   * Cold: stop it and send its flattened disk; the stopped copy then waits (never
   * started here again) until its binding moves, or `migrate-reclaim`.
   */
  'migrate-send': {
    params: {
      migration: string;
      uid: string;
      to: MigrationEndpoint;
      secret: MigrationSecret;
      mode?: MigrationMode;
    };
    result: TransferProgress;
  };
  /** Destination of a cold migration: check the disk received against the source's SHA-256 and make the instance of it. */
  'migrate-finish': { params: { migration: string; uid: string; sha256: string }; result: { state: string } };
  /** Source of a cold migration that failed after its disk was sent: the stopped copy is this node's again. */
  'migrate-reclaim': { params: { migration: string; uid: string }; result: { reclaimed: boolean } };
  /** Source: stop sending (before the switch-over). */
  'migrate-cancel': { params: { migration: string; uid: string }; result: { cancelled: boolean } };
  /** Destination: the state of the incoming stream (QEMU's words: active, completed, failed …). */
  'migrate-state': { params: { migration: string; uid: string }; result: { state: string } };
  /** Destination: the migration failed: remove what was prepared (never a bound instance). */
  'migrate-abort': { params: { migration: string; uid: string }; result: { removed: boolean } };
  /**
   * An export of the project: a crash-consistent copy of the instance's disk, flattened
   * (taken while it runs, or of the stopped disk), sent through the gateway's relay with
   * the export's key like a cold migration's disk; answers what was sent (no bytes: it
   * has no disk).
   */
  /**
   * A switching's erasure: the project's instances here (running or not) and its image
   * files no other instance here uses are hashed and deleted; answers what was deleted
   * (with checksum and time), what was already gone, and what was kept (shared).
   */
  erase: {
    params: { project: string; uids: string[]; images: string[] };
    result: { artefacts: ErasedArtefact[]; absent: string[]; kept: { sha256: string; reason: string }[] };
  };
  'export-disk': {
    params: { export: string; uid: string; secret: MigrationSecret };
    result: { bytes: number; sha256: string };
  };
}
/** One thing a node deleted in an erasure, as the erasure certificate lists it. */
export interface ErasedArtefact {
  /** disk, cloud-init, console-log, metadata, image or file. */
  kind: string;
  /** The instance and the file, or the image file's checksum. */
  name: string;
  sha256: string;
  bytes: number;
  deletedAt: string;
}
export type AgentRequestMethod = keyof AgentRequests;

export interface LatencyProbe {
  name: string;
  address: string;
}

export type ServerMessage =
  | { type: 'config'; probes: LatencyProbe[] }
  | { type: 'desired'; full: boolean; revision: number; instances: DesiredInstance[] }
  | {
      [M in AgentRequestMethod]: {
        type: 'request';
        id: number;
        method: M;
        params: AgentRequests[M]['params'];
      };
    }[AgentRequestMethod]
  /**
   * The reports up to `seq` are stored; `refused` names instances of them that were not
   * applied, and why (an instance not bound to this node): the agent stops sending those.
   */
  | { type: 'ack'; seq: number; refused?: { uid: string; reason: string }[] };

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

/** Lower-case hex SHA-256 of a certificate (DER): what join tokens pin. */
export function fingerprintOf(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}
