// Versioned schema migrations, applied at start by Kysely's Migrator. A migration is
// append-only: once released it never changes; later changes get a new entry.
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import type { Engine } from './engine.js';
import { FILTER_COLUMNS, type ResourceTableName } from './schema.js';

/** A resource table: the shape every kind shares, with its filter columns indexed. */
async function createResourceTable(db: Kysely<any>, engine: Engine, table: ResourceTableName): Promise<void> {
  // Byte order for names on PostgreSQL, as on SQLite, so lists and pages sort alike.
  const collate = engine === 'postgres' ? sql`collate "C"` : sql``;
  let t = db.schema
    .createTable(table)
    .addColumn('uid', 'text', (c) => c.primaryKey())
    .addColumn('parent', 'text', (c) => c.notNull().modifyEnd(collate))
    .addColumn('name', 'text', (c) => c.notNull().modifyEnd(collate))
    .addColumn('generation', 'integer', (c) => c.notNull())
    .addColumn('labels', 'text', (c) => c.notNull())
    .addColumn('spec', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull());
  for (const col of FILTER_COLUMNS[table]) t = t.addColumn(col, 'text', (c) => c.notNull());
  await t.addUniqueConstraint(`${table}_parent_name`, ['parent', 'name']).execute();
  for (const col of FILTER_COLUMNS[table])
    await db.schema.createIndex(`${table}_${col}`).on(table).columns([col, 'parent', 'name']).execute();
}

/** The resource tables of the first release (a migration never changes once released). */
const INITIAL_TABLES = ['providers', 'sites', 'nodes', 'projects', 'users', 'workloads', 'images'] as const;

function initial(engine: Engine): Migration {
  return {
    async up(db: Kysely<any>) {
      for (const table of INITIAL_TABLES) await createResourceTable(db, engine, table);
      await db.schema
        .createTable('events')
        .addColumn('seq', engine === 'postgres' ? 'bigserial' : 'integer', (c) =>
          engine === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('time', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('parent', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('provider', 'text')
        .addColumn('project', 'text')
        .addColumn('before', 'text')
        .addColumn('after', 'text')
        .execute();
      await db.schema.createIndex('events_project').on('events').columns(['project', 'seq']).execute();
      await db.schema.createIndex('events_provider').on('events').columns(['provider', 'seq']).execute();
      await db.schema
        .createIndex('events_object')
        .on('events')
        .columns(['kind', 'parent', 'name', 'seq'])
        .execute();
      await db.schema
        .createTable('tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_name', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('last_used_at', 'text')
        .execute();
      await db.schema.createIndex('tokens_user').on('tokens').column('user_name').execute();
      await db.schema
        .createTable('meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  };
}

/** Instances (desired and observed state of each replica), join tokens, node credentials. */
function agents(engine: Engine): Migration {
  const collate = engine === 'postgres' ? sql`collate "C"` : sql``;
  const big = engine === 'postgres' ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('instances')
        .addColumn('uid', 'text', (c) => c.primaryKey())
        .addColumn('project', 'text', (c) => c.notNull().modifyEnd(collate))
        .addColumn('name', 'text', (c) => c.notNull().modifyEnd(collate))
        .addColumn('workload', 'text', (c) => c.notNull())
        .addColumn('ordinal', 'integer', (c) => c.notNull())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('fence', 'integer', (c) => c.notNull())
        .addColumn('revision', big, (c) => c.notNull())
        .addColumn('desired', 'text', (c) => c.notNull())
        .addColumn('vcpus', 'integer', (c) => c.notNull())
        .addColumn('memory_mib', 'integer', (c) => c.notNull())
        .addColumn('disk_gib', 'integer', (c) => c.notNull())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('phase', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('instances_project_name', ['project', 'name'])
        .execute();
      await db.schema
        .createIndex('instances_node')
        .on('instances')
        .columns(['provider', 'node', 'revision'])
        .execute();
      await db.schema
        .createIndex('instances_workload')
        .on('instances')
        .columns(['project', 'workload'])
        .execute();
      await db.schema
        .createTable('join_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('site', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('max_uses', 'integer', (c) => c.notNull())
        .addColumn('uses', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('join_tokens_site')
        .on('join_tokens')
        .columns(['provider', 'site'])
        .execute();
      await db.schema
        .createTable('node_credentials')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('node_credentials_node')
        .on('node_credentials')
        .columns(['provider', 'node'])
        .execute();
    },
  };
}

/** A join token may be issued to replace one named node (re-enrolment under its name). */
const joinTokenReplaces: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('join_tokens').addColumn('replaces', 'text').execute();
  },
};

/**
 * A drain is the operator's intent, kept in the node's spec: nodes stored with the old
 * `draining` state get spec.drain (and unschedulable) and a health state again.
 */
const nodeIntent: Migration = {
  async up(db: Kysely<any>) {
    const rows = await db
      .selectFrom('nodes')
      .select(['uid', 'spec', 'status'])
      .where('state', '=', 'draining')
      .execute();
    for (const r of rows) {
      const spec = { ...JSON.parse(r.spec), unschedulable: true, drain: true };
      const status = { ...JSON.parse(r.status), state: 'ready' };
      await db
        .updateTable('nodes')
        .set({ spec: JSON.stringify(spec), status: JSON.stringify(status), state: 'ready' })
        .where('uid', '=', r.uid)
        .execute();
    }
  },
};

/** Annotations: free-form metadata of tools (kubectl keeps its last-applied configuration there). */
const annotations: Migration = {
  async up(db: Kysely<any>) {
    for (const table of Object.keys(FILTER_COLUMNS))
      await db.schema
        .alterTable(table)
        .addColumn('annotations', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
  },
};

export function migrationsFor(engine: Engine): Record<string, Migration> {
  return {
    '0001_initial': initial(engine),
    '0002_agents': agents(engine),
    '0003_join_token_replaces': joinTokenReplaces,
    '0004_node_intent': nodeIntent,
    '0005_migrations': { up: (db) => createResourceTable(db, engine, 'migrations') },
    '0006_switchings': { up: (db) => createResourceTable(db, engine, 'switchings') },
    '0007_annotations': annotations,
  };
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Kysely<any>, engine: Engine): Promise<string[]> {
  const provider: MigrationProvider = { getMigrations: async () => migrationsFor(engine) };
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`database migration ${failed} failed: ${(error as Error).message}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
