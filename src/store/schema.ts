// Table types shared by both engines. JSON documents are kept as text so that the
// same queries run unchanged on SQLite and PostgreSQL; columns that filters and
// indexes need are lifted out of the JSON into their own columns.
import type { Generated } from 'kysely';

/** Columns every resource table has. `parent` is the owning provider or project ('' for global kinds). */
export interface ResourceTable {
  uid: string;
  parent: string;
  name: string;
  generation: number;
  labels: string;
  annotations: Generated<string>;
  spec: string;
  status: string;
  created_at: string;
  updated_at: string;
  created_by: string;
}

/** Kind-specific columns lifted out of spec/status so that lists can filter on an index. */
export const FILTER_COLUMNS = {
  providers: ['country', 'jurisdiction'],
  sites: ['country', 'tier'],
  nodes: ['site', 'state'],
  projects: [],
  users: [],
  workloads: ['phase'],
  images: [],
  migrations: ['phase'],
  switchings: ['phase'],
} as const satisfies Record<string, readonly string[]>;

export interface EventTable {
  seq: Generated<number>;
  time: string;
  actor: string;
  action: string;
  kind: string;
  parent: string;
  name: string;
  provider: string | null;
  project: string | null;
  before: string | null;
  after: string | null;
  /** The event's place in commit order (set at commit on PostgreSQL; SQLite's seq is already). */
  position: number | null;
}

export interface TokenTable {
  id: string;
  user_name: string;
  secret_hash: string;
  description: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}

export interface InstanceTable {
  uid: string;
  project: string;
  name: string;
  workload: string;
  ordinal: number;
  provider: string;
  node: string;
  /** Fencing epoch: raised whenever the instance is re-bound, so stale copies can be told apart. */
  fence: number;
  /** Sequence number of the last desired-state change; agents resume from it. */
  revision: number;
  desired: string;
  vcpus: number;
  memory_mib: number;
  disk_gib: number;
  spec: string;
  status: string;
  phase: string;
  created_at: string;
  updated_at: string;
}

export interface JoinTokenTable {
  id: string;
  provider: string;
  site: string;
  secret_hash: string;
  description: string;
  created_by: string;
  created_at: string;
  expires_at: string;
  max_uses: number;
  uses: number;
  replaces: string | null;
}

export interface NodeCredentialTable {
  id: string;
  provider: string;
  node: string;
  secret_hash: string;
  created_at: string;
}

export interface MetaTable {
  key: string;
  value: string;
}

export interface ReplicaTable {
  name: string;
  address: string;
  gateway: string;
  version: string;
  started_ms: number;
  seen_ms: number;
}

export interface LeaseTable {
  name: string;
  holder: string;
  epoch: number;
  acquired_ms: number;
  expires_ms: number;
}

export interface ChangeTable {
  seq: number;
  replica: string;
  at_ms: number;
  events_from: number;
  events_to: number;
  body: string;
}

export interface ImageChunkTable {
  sha256: string;
  idx: number;
  data: Uint8Array;
}

export const RESOURCE_TABLES = [
  'providers',
  'sites',
  'nodes',
  'projects',
  'users',
  'workloads',
  'images',
  'migrations',
  'switchings',
] as const;
export type ResourceTableName = (typeof RESOURCE_TABLES)[number];

export interface Database {
  providers: ResourceTable & { country: string; jurisdiction: string };
  sites: ResourceTable & { country: string; tier: string };
  nodes: ResourceTable & { site: string; state: string };
  projects: ResourceTable;
  users: ResourceTable;
  workloads: ResourceTable & { phase: string };
  images: ResourceTable;
  migrations: ResourceTable & { phase: string };
  switchings: ResourceTable & { phase: string };
  events: EventTable;
  tokens: TokenTable;
  meta: MetaTable;
  instances: InstanceTable;
  join_tokens: JoinTokenTable;
  node_credentials: NodeCredentialTable;
  replicas: ReplicaTable;
  leases: LeaseTable;
  changes: ChangeTable;
  image_chunks: ImageChunkTable;
}
