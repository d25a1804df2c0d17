export {
  CHANGE_PARTS,
  type Change,
  ChangeFeed,
  type ChangeListener,
  type ChangePart,
  type InstanceChangeNote,
  type InstanceWrite,
  type NewChange,
  type ReleasedInstance,
  type ResourceChangeNote,
} from './change-feed.js';
export { ENGINES, type Engine, engineOf, type StoreLocation } from './engine.js';
export { FEED_RETENTION_MS, FeedFollower, type FeedFollowerOptions, pruneFeed } from './feed.js';
export {
  DESIRED_STATES,
  type DesiredState,
  desiredInstanceOf,
  type EvictedInstance,
  INSTANCE_EVICTED,
  INSTANCE_PHASES,
  type InstanceImageRef,
  type InstancePhase,
  type InstanceQuery,
  type InstanceRecord,
  type InstanceSpec,
  type InstanceStatus,
  instanceEventDoc,
} from './instances.js';
export { migrationsFor } from './migrations.js';
export {
  acquireLease,
  databaseNow,
  forgetReplicas,
  heartbeatReplica,
  LEADER_LEASE,
  type Lease,
  listReplicas,
  type ReplicaRecord,
  readLease,
  releaseLease,
} from './replicas.js';
export { FILTER_COLUMNS, RESOURCE_TABLES, type ResourceTableName } from './schema.js';
export {
  type AuditEvent,
  type CommittedBatch,
  type EventQuery,
  type FeedBody,
  type Fence,
  FencedError,
  isFenced,
  isUniqueViolation,
  type JoinTokenRecord,
  type ListQuery,
  type MigrationProgressNote,
  type NewEvent,
  type NewResource,
  type NodeCredentialRecord,
  type Presence,
  parseStored,
  type ResourceChange,
  Store,
  type StoredResource,
  type StoredText,
  type TokenRecord,
  type TransactionOptions,
  type UpdateResult,
} from './store.js';
export { newUid } from './uid.js';
