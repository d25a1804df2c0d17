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

/**
 * Several control-plane replicas on one database (PostgreSQL): who they are, the lease of
 * the one that runs the controllers, the change feed every replica follows, the audit
 * log's commit order, and image content every replica can stream.
 */
function replicas(engine: Engine): Migration {
  return {
    async up(db: Kysely<any>) {
      const big = engine === 'postgres' ? 'bigint' : 'integer';
      await db.schema
        .createTable('replicas')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('gateway', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('started_ms', big, (c) => c.notNull())
        .addColumn('seen_ms', big, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('leases')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('epoch', big, (c) => c.notNull())
        .addColumn('acquired_ms', big, (c) => c.notNull())
        .addColumn('expires_ms', big, (c) => c.notNull())
        .execute();
      // One row per committed transaction, numbered without gaps in commit order.
      await db.schema
        .createTable('changes')
        .addColumn('seq', big, (c) => c.primaryKey())
        .addColumn('replica', 'text', (c) => c.notNull())
        .addColumn('at_ms', big, (c) => c.notNull())
        .addColumn('events_from', big, (c) => c.notNull())
        .addColumn('events_to', big, (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .execute();
      // An event's place in commit order (PostgreSQL hands out `seq` at insert, not commit).
      await db.schema.alterTable('events').addColumn('position', big).execute();
      await db.updateTable('events').set({ position: sql`seq` }).execute();
      await db.schema.createIndex('events_position').on('events').column('position').execute();
      await db.schema
        .createTable('image_chunks')
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('data', engine === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
        .addPrimaryKeyConstraint('image_chunks_pk', ['sha256', 'idx'])
        .execute();
      if (engine !== 'postgres') return;
      // The end of every writing transaction, in one round trip: the fence (a controller
      // write commits only while its epoch holds the lease), the feed's lock (held to the
      // commit, so numbers follow commit order), the events' positions, the feed row and
      // the notification every replica listens for.
      await sql`
        create function continuum_commit(p_replica text, p_holder text, p_epoch bigint, p_body text, p_events bigint[])
        returns table (feed_seq bigint, events_from bigint) language plpgsql as $$
        declare
          now_ms bigint := (extract(epoch from clock_timestamp()) * 1000)::bigint;
          last_seq bigint;
          last_to bigint;
          n integer := coalesce(array_length(p_events, 1), 0);
        begin
          if p_epoch is not null then
            perform 1 from leases l
              where l.name = 'controllers' and l.holder = p_holder and l.epoch = p_epoch and l.expires_ms > now_ms
              for share;
            if not found then
              raise exception 'fenced: % no longer leads with epoch %', p_holder, p_epoch
                using errcode = 'CN001';
            end if;
          end if;
          perform pg_advisory_xact_lock(hashtext('continuum_feed ' || current_schema()));
          select c.seq, c.events_to into last_seq, last_to from changes c order by c.seq desc limit 1;
          if last_seq is null then
            last_seq := 0;
            select coalesce(max(e.position), 0) into last_to from events e where e.position is not null;
          end if;
          if n > 0 then
            update events e set position = last_to + u.i
              from unnest(p_events) with ordinality as u(s, i) where e.seq = u.s;
          end if;
          insert into changes (seq, replica, at_ms, events_from, events_to, body)
            values (last_seq + 1, p_replica, now_ms, last_to + 1, last_to + n, p_body);
          perform pg_notify('continuum_feed_' || current_schema(), (last_seq + 1)::text || ' ' || p_replica);
          return query select last_seq + 1, last_to + 1;
        end
        $$`.execute(db);
    },
  };
}

/**
 * A page of a workload's instances (`?workload=W&limit=N`, in name order) is read from an
 * index in that order: with only (project, workload), SQLite walked the (project, name)
 * index of every instance of the project to spare itself a sort. The new index serves
 * whatever the old one did, which goes. Either step may have run already (a database
 * rewound by hand), so neither minds.
 */
const workloadPages: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createIndex('instances_workload_name')
      .ifNotExists()
      .on('instances')
      .columns(['project', 'workload', 'name'])
      .execute();
    await db.schema.dropIndex('instances_workload').ifExists().execute();
  },
};

/**
 * PostgreSQL: a transaction's audit events are inserted by the function that ends it,
 * already in their place in commit order (continuum_seal). continuum_commit inserted
 * nothing and set each event's position afterwards: position is indexed, so every event
 * was written twice, with its five index entries each time. continuum_commit stays for
 * replicas of the previous release during a rolling upgrade: both take the same lock and
 * continue from the same last feed row. Instances and workloads get room on their pages
 * (fillfactor) for the reports and status passes that follow each insert: an update
 * that fits on its page and changes no indexed column writes no index entry (in a
 * 10,000-node benchmark 15 % of instance updates did).
 */
function sealedEvents(engine: Engine): Migration {
  return {
    async up(db: Kysely<any>) {
      if (engine !== 'postgres') return;
      await sql`alter table instances set (fillfactor = 80)`.execute(db);
      await sql`alter table workloads set (fillfactor = 80)`.execute(db);
      await sql`
        create function continuum_seal(p_replica text, p_holder text, p_epoch bigint, p_body text,
          p_seq bigint[], p_time text[], p_actor text[], p_action text[], p_kind text[], p_parent text[],
          p_name text[], p_provider text[], p_project text[], p_before text[], p_after text[])
        returns table (feed_seq bigint, events_from bigint) language plpgsql as $$
        declare
          now_ms bigint := (extract(epoch from clock_timestamp()) * 1000)::bigint;
          last_seq bigint;
          last_to bigint;
          n integer := coalesce(array_length(p_seq, 1), 0);
        begin
          if p_epoch is not null then
            perform 1 from leases l
              where l.name = 'controllers' and l.holder = p_holder and l.epoch = p_epoch and l.expires_ms > now_ms
              for share;
            if not found then
              raise exception 'fenced: % no longer leads with epoch %', p_holder, p_epoch
                using errcode = 'CN001';
            end if;
          end if;
          perform pg_advisory_xact_lock(hashtext('continuum_feed ' || current_schema()));
          select c.seq, c.events_to into last_seq, last_to from changes c order by c.seq desc limit 1;
          if last_seq is null then
            last_seq := 0;
            select coalesce(max(e.position), 0) into last_to from events e where e.position is not null;
          end if;
          if n > 0 then
            insert into events (seq, position, time, actor, action, kind, parent, name, provider, project, before, after)
              select u.s, last_to + u.i, u.t, u.a, u.ac, u.k, u.pa, u.na, u.pr, u.pj, u.b, u.af
              from unnest(p_seq, p_time, p_actor, p_action, p_kind, p_parent, p_name, p_provider, p_project, p_before, p_after)
                with ordinality as u(s, t, a, ac, k, pa, na, pr, pj, b, af, i);
          end if;
          insert into changes (seq, replica, at_ms, events_from, events_to, body)
            values (last_seq + 1, p_replica, now_ms, last_to + 1, last_to + n, p_body);
          perform pg_notify('continuum_feed_' || current_schema(), (last_seq + 1)::text || ' ' || p_replica);
          return query select last_seq + 1, last_to + 1;
        end
        $$`.execute(db);
    },
  };
}

export function migrationsFor(engine: Engine): Record<string, Migration> {
  return {
    '0001_initial': initial(engine),
    '0002_agents': agents(engine),
    '0003_join_token_replaces': joinTokenReplaces,
    '0004_node_intent': nodeIntent,
    '0005_migrations': { up: (db) => createResourceTable(db, engine, 'migrations') },
    '0006_switchings': { up: (db) => createResourceTable(db, engine, 'switchings') },
    '0007_annotations': annotations,
    '0008_replicas': replicas(engine),
    '0009_workload_pages': workloadPages,
    '0010_sealed_events': sealedEvents(engine),
  };
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Kysely<any>, engine: Engine, schema?: string): Promise<string[]> {
  const provider: MigrationProvider = { getMigrations: async () => migrationsFor(engine) };
  // In a schema of its own, the migrator's tables are looked for there only: left alone, it
  // finds another schema's and takes them for its own.
  const migrator = new Migrator({ db, provider, ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`database migration ${failed} failed: ${(error as Error).message}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
