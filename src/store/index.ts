export { ENGINES, type Engine, engineOf, type StoreLocation } from './engine.js';
export { migrationsFor } from './migrations.js';
export { FILTER_COLUMNS, RESOURCE_TABLES, type ResourceTableName } from './schema.js';
export {
  type AuditEvent,
  type EventQuery,
  isUniqueViolation,
  type ListQuery,
  type NewEvent,
  type NewResource,
  type ResourceChange,
  Store,
  type StoredResource,
  type TokenRecord,
  type UpdateResult,
} from './store.js';
