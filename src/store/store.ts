// The Store: every read and write of persistent state goes through here, on either
// engine. A transaction is a Store bound to one database transaction; the audit events
// it appended and the changes it made are published only after it commits.
import { EventEmitter } from 'node:events';
import { type Compilable, CompiledQuery, type Kysely, type QueryResult, sql, type Transaction } from 'kysely';
import type pg from 'pg';
import type { TransferProgress } from '../protocol/index.js';
import { ChangeFeed, type InstanceWrite, type NewChange } from './change-feed.js';
import { type Engine, openDatabase, type StoreLocation } from './engine.js';
import {
  type DesiredState,
  type InstanceQuery,
  type InstanceRecord,
  type InstanceStatus,
  instanceRow,
  queryInstances,
  toInstance,
} from './instances.js';
import { migrateToLatest } from './migrations.js';
import type { Database, EventTable, ResourceTableName } from './schema.js';

export interface StoredResource {
  readonly uid: string;
  readonly parent: string;
  readonly name: string;
  readonly generation: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly spec: any;
  readonly status: any;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly createdBy: string;
}

/**
 * A resource row as stored, its JSON fields still text: a list can put them on the wire
 * without parsing them (render.ts renderText) and parse them only when it needs to.
 */
export interface StoredText {
  readonly uid: string;
  readonly parent: string;
  readonly name: string;
  readonly generation: number;
  readonly labels: string;
  /** null when the row never had any. */
  readonly annotations: string | null;
  readonly spec: string;
  readonly status: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly createdBy: string;
}

export interface NewResource {
  uid: string;
  parent: string;
  name: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  spec: unknown;
  status: unknown;
  createdBy: string;
  /** Values of the table's filter columns. */
  columns: Record<string, string>;
}

export interface ResourceChange {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  spec?: unknown;
  status?: unknown;
  columns?: Record<string, string>;
  /** Spec or label changes bump the generation; status-only writes do not. */
  bumpGeneration: boolean;
}

export interface ListQuery {
  parents?: readonly string[];
  names?: readonly string[];
  where?: Readonly<Record<string, string>>;
  /** Keyset pagination: rows strictly after this (parent, name). */
  after?: { parent: string; name: string };
  limit?: number;
}

export interface AuditEvent {
  /** Handed out when the event is written: an instance's revision is its event's seq. */
  readonly seq: number;
  /**
   * The event's place in commit order: readers resume after a position and never miss an
   * event that committed later with a lower seq (PostgreSQL hands out seq before commit).
   * Equal to seq on SQLite, whose writers take turns.
   */
  readonly position: number;
  readonly time: string;
  readonly actor: string;
  readonly action: string;
  readonly kind: string;
  readonly parent: string;
  readonly name: string;
  readonly provider: string | null;
  readonly project: string | null;
  readonly before: unknown;
  readonly after: unknown;
}

export type NewEvent = Omit<AuditEvent, 'seq' | 'position' | 'time'>;

export interface EventQuery {
  /** Only events after this position (commit order). */
  after?: number;
  limit?: number;
  /** Restrict to events of these providers or projects (a principal's scope); absent = all. */
  scope?: { providers: readonly string[]; projects: readonly string[] };
  kind?: string;
  parent?: string;
  name?: string;
  /** The latest `limit` events (still returned oldest first) instead of the first after `after`. */
  newest?: boolean;
}

export interface TokenRecord {
  readonly id: string;
  readonly userName: string;
  readonly secretHash: string;
  readonly description: string;
  readonly createdAt: string;
  readonly expiresAt: string | null;
  readonly lastUsedAt: string | null;
}

export interface JoinTokenRecord {
  readonly id: string;
  readonly provider: string;
  readonly site: string;
  readonly secretHash: string;
  readonly description: string;
  readonly createdBy: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly maxUses: number;
  readonly uses: number;
  /** The node this token re-enrols (its old credentials and instances go), if any. */
  readonly replaces?: string;
}

export interface NodeCredentialRecord {
  readonly id: string;
  readonly provider: string;
  readonly node: string;
  readonly secretHash: string;
  readonly createdAt: string;
}

export type UpdateResult =
  | { ok: true; resource: StoredResource }
  | { ok: false; code: 'conflict' | 'missing' };

type Db = Kysely<Database> | Transaction<Database>;

const INSTANCE_STATE_COLUMNS = [
  'uid',
  'project',
  'name',
  'workload',
  'ordinal',
  'provider',
  'node',
  'fence',
  'revision',
  'desired',
  'vcpus',
  'memory_mib',
  'disk_gib',
  'status',
  'created_at',
  'updated_at',
] as const;

/** The columns an instance's reported status writes. */
/** Rows written by one multi-row statement at most (far below either engine's parameter limit). */
const BATCH_ROWS = 100;

/** An audit event's row as written (its documents as JSON). */
type EventRow = Omit<EventTable, 'seq' | 'position'> & { seq: number };

/**
 * An event as the store hands it out. Spelled out, not `{ ...e, position }`: on Node 20 a
 * property written after a spread costs about a microsecond and a half, and a busy
 * transaction writes hundreds of events.
 */
function auditEvent(
  e: Omit<AuditEvent, 'seq' | 'position' | 'before' | 'after'>,
  seq: number,
  position: number,
  before: unknown,
  after: unknown,
): AuditEvent {
  return {
    seq,
    position,
    time: e.time,
    actor: e.actor,
    action: e.action,
    kind: e.kind,
    parent: e.parent,
    name: e.name,
    provider: e.provider,
    project: e.project,
    before,
    after,
  };
}

/** `rows` rows of `width` placeholders, for a VALUES list. */
function rowsOf(engine: Engine, rows: number, width: number): string {
  let n = 0;
  const p = () => (engine === 'postgres' ? `$${++n}` : '?');
  return Array.from({ length: rows }, () => `(${Array.from({ length: width }, p).join(', ')})`).join(', ');
}

/** A statement of the store's own SQL, for `run`. */
function raw(text: string, params: readonly unknown[]): Compilable<any> {
  return { compile: () => CompiledQuery.raw(text, [...params]) } as Compilable<any>;
}

/** An UPDATE of `rows` instances' status from a list of values (both engines read it alike). */
function reportStatusesSql(engine: Engine, rows: number): string {
  return `with v(uid, provider, node, status, phase, updated_at) as (values ${rowsOf(engine, rows, 6)})
update instances set status = v.status, phase = v.phase, updated_at = v.updated_at from v
where instances.uid = v.uid and instances.provider = v.provider and instances.node = v.node
and instances.desired <> 'absent'
returning instances.uid, instances.provider, instances.node, instances.project, instances.name, instances.workload`;
}

function statusColumns(status: InstanceStatus) {
  return { status: JSON.stringify(status), phase: status.phase, updated_at: new Date().toISOString() };
}

/** The row of a new resource, as written at `at`. */
function resourceRow(r: NewResource, at: string): Record<string, unknown> {
  const row: Record<string, unknown> = {
    uid: r.uid,
    parent: r.parent,
    name: r.name,
    generation: 1,
    labels: JSON.stringify(r.labels),
    annotations: JSON.stringify(r.annotations ?? {}),
    spec: JSON.stringify(r.spec),
    status: JSON.stringify(r.status),
    created_at: at,
    updated_at: at,
    created_by: r.createdBy,
  };
  for (const [column, value] of Object.entries(r.columns)) if (value !== undefined) row[column] = value;
  return row;
}

function toResource(row: any): StoredResource {
  return parseStored(toText(row));
}

function toText(row: any): StoredText {
  return {
    uid: row.uid,
    parent: row.parent,
    name: row.name,
    generation: Number(row.generation),
    labels: row.labels,
    annotations: row.annotations ?? null,
    spec: row.spec,
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    createdBy: row.created_by,
  };
}

export function parseStored(row: StoredText): StoredResource {
  return {
    uid: row.uid,
    parent: row.parent,
    name: row.name,
    generation: row.generation,
    labels: JSON.parse(row.labels),
    annotations: row.annotations ? JSON.parse(row.annotations) : {},
    spec: JSON.parse(row.spec),
    status: JSON.parse(row.status),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    createdBy: row.createdBy,
  };
}

function toEvent(row: any): AuditEvent {
  return {
    seq: Number(row.seq),
    position: Number(row.position ?? row.seq),
    time: row.time,
    actor: row.actor,
    action: row.action,
    kind: row.kind,
    parent: row.parent,
    name: row.name,
    provider: row.provider,
    project: row.project,
    before: row.before === null ? null : JSON.parse(row.before),
    after: row.after === null ? null : JSON.parse(row.after),
  };
}

function toToken(row: any): TokenRecord {
  return {
    id: row.id,
    userName: row.user_name,
    secretHash: row.secret_hash,
    description: row.description,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
  };
}

/** A unique-constraint violation from either engine. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string };
  return (
    e?.code === '23505' ||
    e?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}

function toJoinToken(row: any): JoinTokenRecord {
  return {
    id: row.id,
    provider: row.provider,
    site: row.site,
    secretHash: row.secret_hash,
    description: row.description,
    createdBy: row.created_by,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    maxUses: Number(row.max_uses),
    uses: Number(row.uses),
    ...(row.replaces ? { replaces: row.replaces } : {}),
  };
}

/**
 * SQL of the hot queries, compiled once per name: Kysely builds and compiles a query on
 * every call, which costs more than SQLite running it. Shared by a store and its
 * transactions.
 */
type Compiled = Map<string, CompiledQuery>;

interface Pending {
  events: AuditEvent[];
  /** PostgreSQL: the events' rows as written, for continuum_seal. */
  rows: EventRow[];
  /** PostgreSQL: sequence numbers drawn for this transaction and not used yet, ascending. */
  spare: number[];
  /** PostgreSQL: how many sequence numbers this transaction drew. */
  drawn: number;
  changes: NewChange[];
  by?: string;
  presence?: Presence;
}

/**
 * The agents a replica heard from since its last note (node keys PROVIDER/NODE): a
 * replica that does not lead passes them to the leader's node health through the feed.
 */
export interface Presence {
  readonly replica: string;
  /** Nodes whose agent connected (they are ready again, whatever they were). */
  readonly connected: readonly string[];
  /** Nodes whose agent sent a heartbeat or a report. */
  readonly seen: readonly string[];
  /** The latest progress agents here reported of the migrations they send. */
  readonly progress?: readonly MigrationProgressNote[];
}

/** A migration's progress as its source's agent reported it to a replica. */
export interface MigrationProgressNote {
  readonly migration: string;
  readonly provider: string;
  readonly node: string;
  readonly progress: TransferProgress;
}

export interface TransactionOptions {
  /** Who writes (e.g. 'controller:workloads'): carried by the transaction's changes. */
  by?: string;
}

/**
 * What a store's transactions commit under: the leader's epoch, read at the start of each
 * transaction (undefined: this replica does not lead, and nothing is written).
 */
export interface Fence {
  /** Who holds the lease: this replica's name and its process's own mark (NAME#MARK). */
  readonly holder: string;
  epoch(): number | undefined;
}

/** A controller write refused because its replica no longer holds the leader's lease. */
export class FencedError extends Error {
  readonly code = 'fenced';
}

/** True for a write refused by the fence (on either engine). */
export function isFenced(err: unknown): boolean {
  return err instanceof FencedError || (err as { code?: string })?.code === 'CN001';
}

/** What a committed transaction hands to the feed (and to every replica that follows it). */
export interface CommittedBatch {
  /** Its number in the durable feed (PostgreSQL); absent on SQLite. */
  readonly seq?: number;
  readonly events: readonly AuditEvent[];
  readonly changes: readonly NewChange[];
  readonly presence?: Presence;
}

/** A feed row's body. */
export interface FeedBody {
  readonly changes: readonly NewChange[];
  readonly presence?: Presence;
}

/** Shared by a store, its transactions and its fenced views. */
interface Shared {
  readonly engine: Engine;
  readonly committed: EventEmitter;
  readonly changes: ChangeFeed;
  readonly compiled: Compiled;
  /** Names this process in the feed and the lease. */
  replica: string;
  /** PostgreSQL: opens a connection of its own (the feed's LISTEN). */
  connect?: () => Promise<pg.Client>;
  /** Delivers committed batches in feed order (PostgreSQL, once following). */
  deliver?: (b: CommittedBatch) => Promise<void>;
}

export class Store {
  readonly engine: Engine;
  /**
   * After each commit: 'event' for each audit event, in order; 'presence' for a replica's
   * note of the agents it heard from. Listeners must not throw.
   */
  readonly committed: EventEmitter;
  /** After each commit: the changes the transaction made (see ChangeFeed). */
  readonly changes: ChangeFeed;
  private readonly compiled: Compiled;
  private pending: Pending | undefined;

  private constructor(
    private readonly shared: Shared,
    private readonly db: Db,
    pending?: Pending,
    private readonly fence?: Fence,
  ) {
    this.engine = shared.engine;
    this.committed = shared.committed;
    this.changes = shared.changes;
    this.compiled = shared.compiled;
    this.pending = pending;
  }

  static async open(loc: StoreLocation): Promise<Store> {
    const { db, engine, connect } = await openDatabase(loc);
    try {
      await migrateToLatest(db, engine, engine === 'postgres' ? loc.schema : undefined);
    } catch (err) {
      await db.destroy();
      throw err;
    }
    const emitter = new EventEmitter();
    emitter.setMaxListeners(0);
    const shared: Shared = {
      engine,
      committed: emitter,
      changes: new ChangeFeed(),
      compiled: new Map(),
      replica: loc.replica ?? 'local',
      ...(connect ? { connect } : {}),
    };
    return new Store(shared, db);
  }

  /** This process's name in the feed and the lease. */
  get replica(): string {
    return this.shared.replica;
  }

  /** The same store, whose every writing transaction commits only under the fence's epoch. */
  fenced(fence: Fence): Store {
    if (this.pending) throw new Error('a transaction cannot be fenced');
    return new Store(this.shared, this.db, undefined, fence);
  }

  /**
   * Hands committed batches to `deliver` instead of publishing them at once: a follower
   * of the durable feed publishes every replica's batches, this one's included, in feed
   * order (PostgreSQL). `transaction` resolves once its batch is published.
   */
  deliverThrough(deliver: ((b: CommittedBatch) => Promise<void>) | undefined): void {
    this.shared.deliver = deliver;
  }

  /** Publishes a committed batch to this process (the follower calls it in feed order). */
  publish(b: CommittedBatch): void {
    for (const e of b.events) this.committed.emit('event', e);
    this.changes.publish(b.changes);
    if (b.presence) this.committed.emit('presence', b.presence);
  }

  /** Sends the agents this replica heard from to the leader, with the transaction. */
  notePresence(p: Presence): void {
    if (!this.pending) throw new Error('notePresence must run inside Store.transaction');
    this.pending.presence = p;
  }

  /** PostgreSQL: a connection of the store's own, outside its pool (the caller ends it). */
  async connection(): Promise<pg.Client> {
    if (!this.shared.connect) throw new Error('only a PostgreSQL store has connections of its own');
    return this.shared.connect();
  }

  /** The Kysely instance, for the modules of this folder that keep their own SQL. */
  get kysely(): Kysely<any> {
    return this.db as unknown as Kysely<any>;
  }

  get inTransaction(): boolean {
    return this.pending !== undefined;
  }

  /** Runs fn in one transaction; its events and changes are published after commit. */
  async transaction<T>(fn: (tx: Store) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    if (this.pending) return fn(this);
    const epoch = this.fence?.epoch();
    if (this.fence && epoch === undefined)
      throw new FencedError(`${this.fence.holder} does not lead: controller writes are refused`);
    const pending: Pending = {
      events: [],
      rows: [],
      spare: [],
      drawn: 0,
      changes: [],
      ...(opts.by ? { by: opts.by } : {}),
    };
    let seq: number | undefined;
    const result = await (this.db as Kysely<Database>).transaction().execute(async (trx) => {
      const r = await fn(new Store(this.shared, trx, pending, this.fence));
      if (pending.changes.length || pending.events.length || pending.presence)
        seq = await this.sealed(trx, pending, epoch);
      return r;
    });
    const batch: CommittedBatch = {
      ...(seq !== undefined ? { seq } : {}),
      events: pending.events,
      changes: pending.changes,
      ...(pending.presence ? { presence: pending.presence } : {}),
    };
    if (seq !== undefined && this.shared.deliver) await this.shared.deliver(batch);
    else this.publish(batch);
    return result;
  }

  /**
   * The last statement of a writing transaction. PostgreSQL: the fence, the feed row and
   * the events in their places in commit order (continuum_seal); returns the feed number.
   * SQLite (one process writes): the fence only.
   */
  private async sealed(trx: Transaction<Database>, pending: Pending, epoch: number | undefined) {
    const replica = this.shared.replica;
    const holder = this.fence?.holder ?? replica;
    if (this.engine !== 'postgres') {
      if (epoch === undefined) return undefined;
      const held = await trx
        .selectFrom('leases')
        .select('epoch')
        .where('name', '=', 'controllers')
        .where('holder', '=', holder)
        .where('epoch', '=', epoch)
        .where('expires_ms', '>', Date.now())
        .executeTakeFirst();
      if (!held) throw new FencedError(`${holder} no longer leads with epoch ${epoch}`);
      return undefined;
    }
    const body: FeedBody = {
      changes: pending.changes,
      ...(pending.presence ? { presence: pending.presence } : {}),
    };
    const column = <K extends keyof EventRow>(k: K) => pending.rows.map((r) => r[k]);
    const { rows } = await sql<{ feed_seq: number; events_from: number }>`
      select feed_seq, events_from from continuum_seal(${replica}, ${holder}, ${epoch ?? null}, ${JSON.stringify(body)},
        ${column('seq')}::bigint[], ${column('time')}::text[], ${column('actor')}::text[], ${column('action')}::text[],
        ${column('kind')}::text[], ${column('parent')}::text[], ${column('name')}::text[], ${column('provider')}::text[],
        ${column('project')}::text[], ${column('before')}::text[], ${column('after')}::text[])`.execute(trx);
    const { feed_seq, events_from } = rows[0]!;
    pending.events = pending.events.map((e, i) =>
      auditEvent(e, e.seq, Number(events_from) + i, e.before, e.after),
    );
    return Number(feed_seq);
  }

  /**
   * Publishes a change with its transaction's commit. Outside one (no writer of the
   * control plane does that) it is published in this process at once and other replicas
   * do not hear of it.
   */
  private changed(c: NewChange): void {
    if (!this.pending) this.changes.publish([c]);
    else this.pending.changes.push(this.pending.by ? Object.assign({}, c, { by: this.pending.by }) : c);
  }

  async ping(): Promise<void> {
    await (this.db as Kysely<any>).selectFrom('meta').select('key').limit(1).execute();
  }

  async close(): Promise<void> {
    await (this.db as Kysely<Database>).destroy();
  }

  private get any(): Kysely<any> {
    return this.db as unknown as Kysely<any>;
  }

  /**
   * Runs a hot query by name: `build` makes it (with these parameters) the first time
   * only; later calls run the same SQL with `parameters`, which must be the values in
   * the order the query takes them (checked against Kysely's own on the first call), and
   * none undefined (Kysely leaves those out of the query: the SQL would differ).
   */
  private async run<R>(
    name: string,
    build: () => Compilable<R>,
    parameters: readonly unknown[],
  ): Promise<QueryResult<R>> {
    if (parameters.includes(undefined)) throw new Error(`query ${name}: a parameter is undefined`);
    let compiled = this.compiled.get(name) as CompiledQuery<R> | undefined;
    if (!compiled) {
      compiled = build().compile();
      const expected = JSON.stringify(compiled.parameters);
      if (expected !== JSON.stringify(parameters))
        throw new Error(
          `query ${name}: parameters ${JSON.stringify(parameters)} are not in the order ${expected}`,
        );
      this.compiled.set(name, compiled);
      return this.db.executeQuery(compiled);
    }
    return this.db.executeQuery(Object.assign({}, compiled, { parameters }));
  }

  // ---- resources -------------------------------------------------------------

  async get(table: ResourceTableName, parent: string, name: string): Promise<StoredResource | undefined> {
    const row = await this.getText(table, parent, name);
    return row && parseStored(row);
  }

  /** As get, the JSON fields left as stored (renderText sends them as they are). */
  async getText(table: ResourceTableName, parent: string, name: string): Promise<StoredText | undefined> {
    const { rows } = await this.run(
      `get ${table}`,
      () => this.any.selectFrom(table).selectAll().where('parent', '=', parent).where('name', '=', name),
      [parent, name],
    );
    return rows[0] ? toText(rows[0]) : undefined;
  }

  /**
   * A resource read to be written in this transaction: on PostgreSQL its row is locked
   * until the commit, so that a concurrent writer of it waits and reads what this one
   * wrote (SQLite runs one writing transaction at a time).
   */
  async getForUpdate(
    table: ResourceTableName,
    parent: string,
    name: string,
  ): Promise<StoredResource | undefined> {
    if (this.engine !== 'postgres') return this.get(table, parent, name);
    const { rows } = await this.run(
      `getForUpdate ${table}`,
      () =>
        this.any
          .selectFrom(table)
          .selectAll()
          .where('parent', '=', parent)
          .where('name', '=', name)
          .forUpdate(),
      [parent, name],
    );
    return rows[0] ? toResource(rows[0]) : undefined;
  }

  /**
   * Several resources by (parent, name), BATCH_ROWS to a statement; keyed `parent/name`,
   * the missing ones absent.
   */
  async getMany(
    table: ResourceTableName,
    keys: readonly { parent: string; name: string }[],
  ): Promise<Map<string, StoredResource>> {
    const found = new Map<string, StoredResource>();
    for (let at = 0; at < keys.length; at += BATCH_ROWS) {
      const part = keys.slice(at, at + BATCH_ROWS);
      const params = part.flatMap((k) => [k.parent, k.name]);
      const { rows } = await this.run(
        `getMany ${table} ${part.length}`,
        () =>
          raw(
            `with k(parent, name) as (values ${rowsOf(this.engine, part.length, 2)})
select t.* from ${table} t join k on t.parent = k.parent and t.name = k.name`,
            params,
          ),
        params,
      );
      for (const row of rows) {
        const r = toResource(row);
        found.set(`${r.parent}/${r.name}`, r);
      }
    }
    return found;
  }

  async list(table: ResourceTableName, q: ListQuery = {}): Promise<StoredResource[]> {
    return (await this.listText(table, q)).map(parseStored);
  }

  /** Store.list with the JSON fields left as stored (text). */
  async listText(table: ResourceTableName, q: ListQuery = {}): Promise<StoredText[]> {
    if (q.parents?.length === 0 || q.names?.length === 0) return [];
    let query = this.any.selectFrom(table).selectAll();
    if (q.parents) query = query.where('parent', 'in', q.parents as string[]);
    if (q.names) query = query.where('name', 'in', q.names as string[]);
    for (const [col, value] of Object.entries(q.where ?? {})) query = query.where(col, '=', value);
    const after = q.after;
    if (after) {
      query = query.where((eb) =>
        eb.or([
          eb('parent', '>', after.parent),
          eb.and([eb('parent', '=', after.parent), eb('name', '>', after.name)]),
        ]),
      );
    }
    query = query.orderBy('parent').orderBy('name');
    if (q.limit !== undefined) query = query.limit(q.limit);
    return (await query.execute()).map(toText);
  }

  async count(table: ResourceTableName, where: Record<string, string> = {}): Promise<number> {
    let query = this.any.selectFrom(table).select((eb) => eb.fn.countAll().as('n'));
    for (const [col, value] of Object.entries(where)) query = query.where(col, '=', value);
    const row = await query.executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async insert(table: ResourceTableName, r: NewResource): Promise<StoredResource> {
    const row = resourceRow(r, new Date().toISOString());
    await this.insertRows(table, [row]);
    return toResource(row);
  }

  /**
   * Inserts resources of a table, BATCH_ROWS to a statement: an apply of hundreds of
   * documents in a few round trips. Written with the time `at` (default now), as
   * Store.stored gives them before.
   */
  async insertMany(
    table: ResourceTableName,
    rs: readonly NewResource[],
    at = new Date().toISOString(),
  ): Promise<void> {
    await this.insertRows(
      table,
      rs.map((r) => resourceRow(r, at)),
    );
  }

  private async insertRows(
    table: ResourceTableName,
    rows: readonly Record<string, unknown>[],
  ): Promise<void> {
    for (let i = 0; i < rows.length; i += BATCH_ROWS) {
      const part = rows.slice(i, i + BATCH_ROWS);
      // Compiled once per table, set of columns and number of rows: building the
      // statement each time was a tenth of an apply's time. (Rows whose columns differ
      // fail the compiled statement's check of its parameters.)
      await this.run(
        `insert ${table} ${Object.keys(part[0]!).join(',')} ${part.length}`,
        () => this.any.insertInto(table).values(part),
        part.flatMap((row) => Object.values(row)),
      );
    }
    for (const row of rows)
      this.changed({ table, parent: row.parent as string, name: row.name as string, part: 'created' });
  }

  /** A resource as insertMany(…, at) will store it, before it is written. */
  static stored(r: NewResource, at: string): StoredResource {
    return toResource(resourceRow(r, at));
  }

  /** Compare-and-set on generation when expectedGeneration is given. */
  async update(
    table: ResourceTableName,
    uid: string,
    expectedGeneration: number | undefined,
    change: ResourceChange,
  ): Promise<UpdateResult> {
    const set: Record<string, unknown> = { updated_at: new Date().toISOString(), ...change.columns };
    if (change.labels !== undefined) set.labels = JSON.stringify(change.labels);
    if (change.annotations !== undefined) set.annotations = JSON.stringify(change.annotations);
    if (change.spec !== undefined) set.spec = JSON.stringify(change.spec);
    if (change.status !== undefined) set.status = JSON.stringify(change.status);
    let query = this.any
      .updateTable(table)
      .set((eb) => ({ ...set, ...(change.bumpGeneration ? { generation: eb('generation', '+', 1) } : {}) }))
      .where('uid', '=', uid);
    if (expectedGeneration !== undefined) query = query.where('generation', '=', expectedGeneration);
    const res = await query.executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) {
      const exists = await this.any.selectFrom(table).select('uid').where('uid', '=', uid).executeTakeFirst();
      return { ok: false, code: exists ? 'conflict' : 'missing' };
    }
    const row = await this.any.selectFrom(table).selectAll().where('uid', '=', uid).executeTakeFirstOrThrow();
    const part =
      change.spec !== undefined || change.labels !== undefined || change.annotations !== undefined
        ? 'spec'
        : 'status';
    this.changed({ table, parent: row.parent, name: row.name, part });
    return { ok: true, resource: toResource(row) };
  }

  /**
   * Writes a resource's status (and filter columns) without reading it back: for
   * controllers' and the gateway's bookkeeping at fleet scale. False when it is gone.
   * `bookkeeping`: no decision depends on what changed (a heartbeat's time and metrics).
   */
  async setStatus(
    table: ResourceTableName,
    uid: string,
    status: unknown,
    columns: Record<string, string> = {},
    opts: { bookkeeping?: boolean } = {},
  ): Promise<boolean> {
    const set: Record<string, unknown> = {
      updated_at: new Date().toISOString(),
      status: JSON.stringify(status),
    };
    for (const [column, value] of Object.entries(columns)) if (value !== undefined) set[column] = value;
    const { rows } = await this.run<{ parent: string; name: string }>(
      `setStatus ${table} ${Object.keys(set).join(',')}`,
      () => this.any.updateTable(table).set(set).where('uid', '=', uid).returning(['parent', 'name']),
      [...Object.values(set), uid],
    );
    const row = rows[0];
    if (!row) return false;
    this.changed({
      table,
      parent: row.parent,
      name: row.name,
      part: 'status',
      ...(opts.bookkeeping ? { bookkeeping: true } : {}),
    });
    return true;
  }

  /**
   * setStatus of many resources of a table, BATCH_ROWS to a statement; every item sets
   * the same filter columns (`columns`, names from code). Gives how many were written.
   */
  async setStatuses(
    table: ResourceTableName,
    columns: readonly string[],
    items: readonly { uid: string; status: unknown; columns: Record<string, string> }[],
    opts: { bookkeeping?: boolean } = {},
  ): Promise<number> {
    for (const c of columns) if (!/^[a-z_]+$/.test(c)) throw new Error(`setStatuses: bad column ${c}`);
    const names = ['uid', 'status', 'updated_at', ...columns];
    const now = new Date().toISOString();
    return this.statusBatches(
      table,
      `setStatuses ${table} ${columns.join(',')}`,
      items,
      (rows) => `with v(${names.join(', ')}) as (values ${rowsOf(this.engine, rows, names.length)})
update ${table} set ${names
        .slice(1)
        .map((c) => `${c} = v.${c}`)
        .join(', ')} from v
where ${table}.uid = v.uid returning ${table}.parent, ${table}.name`,
      (i) => [
        i.uid,
        JSON.stringify(i.status),
        now,
        ...columns.map((c) => {
          const v = i.columns[c];
          if (v === undefined) throw new Error(`setStatuses: ${i.uid} has no value for ${c}`);
          return v;
        }),
      ],
      opts.bookkeeping,
    );
  }

  /**
   * Sets top-level fields of many resources' status without reading them, BATCH_ROWS to
   * a statement; the rest of each status stays as it is. For heartbeats (a node's metrics
   * and time): reading and rewriting every node's whole status was most of the gateway's
   * work at fleet scale, and on PostgreSQL a read-then-write could put back a state that
   * another transaction had just changed. `fields`: names from code, the same for every
   * item. Gives how many were written (a resource that is gone is left out).
   */
  async mergeStatuses(
    table: ResourceTableName,
    fields: readonly string[],
    items: readonly { parent: string; name: string; values: Record<string, unknown> }[],
    opts: { bookkeeping?: boolean } = {},
  ): Promise<number> {
    for (const f of fields)
      if (!/^[A-Za-z][A-Za-z0-9]*$/.test(f)) throw new Error(`mergeStatuses: bad field ${f}`);
    const slots = fields.map((_, i) => `f${i}`);
    const names = ['parent', 'name', 'updated_at', ...slots];
    const merged =
      this.engine === 'postgres'
        ? `(${table}.status::jsonb || jsonb_build_object(${fields
            .map((f, i) => `'${f}', v.${slots[i]}::jsonb`)
            .join(', ')}))::text`
        : `json_set(${table}.status, ${fields.map((f, i) => `'$.${f}', json(v.${slots[i]})`).join(', ')})`;
    const now = new Date().toISOString();
    return this.statusBatches(
      table,
      `mergeStatuses ${table} ${fields.join(',')}`,
      items,
      (rows) => `with v(${names.join(', ')}) as (values ${rowsOf(this.engine, rows, names.length)})
update ${table} set status = ${merged}, updated_at = v.updated_at from v
where ${table}.parent = v.parent and ${table}.name = v.name returning ${table}.parent, ${table}.name`,
      (i) => [
        i.parent,
        i.name,
        now,
        ...fields.map((f) => {
          const v = i.values[f];
          if (v === undefined) throw new Error(`mergeStatuses: ${i.parent}/${i.name} has no value for ${f}`);
          return JSON.stringify(v);
        }),
      ],
      opts.bookkeeping,
    );
  }

  /**
   * A status UPDATE of many rows, BATCH_ROWS to a statement (`sql` for a statement of so
   * many rows, returning each row's parent and name; `params` an item's values), and a
   * status change published for each row written. Gives how many were.
   */
  private async statusBatches<T>(
    table: ResourceTableName,
    name: string,
    items: readonly T[],
    sql: (rows: number) => string,
    params: (item: T) => unknown[],
    bookkeeping: boolean | undefined,
  ): Promise<number> {
    let written = 0;
    for (let at = 0; at < items.length; at += BATCH_ROWS) {
      const part = items.slice(at, at + BATCH_ROWS);
      const values = part.flatMap(params);
      const { rows } = await this.run<{ parent: string; name: string }>(
        `${name} ${part.length}`,
        () => raw(sql(part.length), values),
        values,
      );
      for (const row of rows)
        this.changed({
          table,
          parent: row.parent,
          name: row.name,
          part: 'status',
          ...(bookkeeping ? { bookkeeping: true } : {}),
        });
      written += rows.length;
    }
    return written;
  }

  async delete(table: ResourceTableName, uid: string, expectedGeneration?: number): Promise<boolean> {
    let query = this.any.deleteFrom(table).where('uid', '=', uid);
    if (expectedGeneration !== undefined) query = query.where('generation', '=', expectedGeneration);
    const row = await query.returning(['parent', 'name']).executeTakeFirst();
    if (!row) return false;
    this.changed({ table, parent: row.parent, name: row.name, part: 'deleted' });
    return true;
  }

  // ---- events ----------------------------------------------------------------

  /** Appends to the audit log; must run inside a transaction so it commits with the change. */
  async appendEvent(e: NewEvent): Promise<AuditEvent> {
    return (await this.appendEvents([e]))[0]!;
  }

  /**
   * Appends events in order, BATCH_ROWS to a statement (on PostgreSQL a statement is a
   * round trip: a placement pass writes one event per replica); gives them with their
   * sequence numbers, in the same order.
   */
  async appendEvents(es: readonly NewEvent[]): Promise<AuditEvent[]> {
    if (!this.pending) throw new Error('appendEvent must run inside Store.transaction');
    const time = new Date().toISOString();
    const out: AuditEvent[] = [];
    for (let at = 0; at < es.length; at += BATCH_ROWS) {
      const part = es.slice(at, at + BATCH_ROWS);
      const rows = part.map((e) => ({
        time,
        actor: e.actor,
        action: e.action,
        kind: e.kind,
        parent: e.parent,
        name: e.name,
        provider: e.provider ?? null,
        project: e.project ?? null,
        before: e.before === null || e.before === undefined ? null : JSON.stringify(e.before),
        after: e.after === null || e.after === undefined ? null : JSON.stringify(e.after),
      }));
      // PostgreSQL: numbers only; the rows go in with the transaction's last statement,
      // in their place in commit order (continuum_seal).
      const numbers =
        this.engine === 'postgres'
          ? await this.eventSeqs(rows.length)
          : // One statement takes its sequence numbers in the order of its rows; the order
            // RETURNING gives them in is not promised, so they are sorted.
            (
              await this.run<{ seq: number }>(
                `appendEvents ${rows.length}`,
                () => this.any.insertInto('events').values(rows).returning('seq'),
                rows.flatMap((r) => Object.values(r)),
              )
            ).rows
              .map((r) => Number(r.seq))
              .sort((a, b) => a - b);
      rows.forEach((row, i) => {
        const seq = numbers[i]!;
        if (this.engine === 'postgres') this.pending!.rows.push({ seq, ...row });
        // The documents as given (the caller does not change them afterwards), not
        // parsed back from the JSON just written. PostgreSQL: the position is set when
        // the transaction commits (continuum_seal).
        const e = part[i]!;
        out.push(auditEvent(row, seq, seq, e.before ?? null, e.after ?? null));
      });
    }
    this.pending.events.push(...out);
    return out;
  }

  /**
   * PostgreSQL: `n` event sequence numbers, ascending, from those this transaction drew.
   * A statement is a round trip, and an apply of many documents appends its events one at
   * a time: each draw takes at least as many as the transaction drew so far (at most
   * BATCH_ROWS), so n single events cost about log2(n) statements. Numbers drawn and not
   * used are skipped, as a rolled-back transaction's are; positions in the feed have no gaps.
   */
  private async eventSeqs(n: number): Promise<number[]> {
    const pending = this.pending!;
    const missing = n - pending.spare.length;
    if (missing > 0) {
      const count = Math.max(missing, Math.min(BATCH_ROWS, pending.drawn));
      const { rows } = await this.run<{ seq: number }>(
        'eventSeqs',
        () => raw(`select nextval('events_seq_seq') as seq from generate_series(1, $1::integer)`, [count]),
        [count],
      );
      pending.drawn += count;
      pending.spare.push(...rows.map((r) => Number(r.seq)).sort((a, b) => a - b));
    }
    return pending.spare.splice(0, n);
  }

  async listEvents(q: EventQuery = {}): Promise<AuditEvent[]> {
    const order = this.positionColumn;
    let query = this.any.selectFrom('events').selectAll();
    if (q.after !== undefined) query = query.where(order, '>', q.after);
    if (q.kind) query = query.where('kind', '=', q.kind);
    if (q.parent !== undefined) query = query.where('parent', '=', q.parent);
    if (q.name) query = query.where('name', '=', q.name);
    const scope = q.scope;
    if (scope) {
      if (scope.providers.length === 0 && scope.projects.length === 0) return [];
      query = query.where((eb) => {
        const ors = [];
        if (scope.providers.length) ors.push(eb('provider', 'in', scope.providers as string[]));
        if (scope.projects.length) ors.push(eb('project', 'in', scope.projects as string[]));
        return eb.or(ors);
      });
    }
    query = query.orderBy(order, q.newest ? 'desc' : 'asc').limit(q.limit ?? 100);
    const events = (await query.execute()).map(toEvent);
    return q.newest ? events.reverse() : events;
  }

  /** The position of the latest committed event (0 when there is none). */
  async lastEventPosition(): Promise<number> {
    const row = await this.any
      .selectFrom('events')
      .select((eb) => eb.fn.max(this.positionColumn).as('m'))
      .executeTakeFirst();
    return Number(row?.m ?? 0);
  }

  /** Events with positions from..to (a feed row's), in order. */
  async eventsAt(from: number, to: number): Promise<AuditEvent[]> {
    if (to < from) return [];
    const rows = await this.any
      .selectFrom('events')
      .selectAll()
      .where(this.positionColumn, '>=', from)
      .where(this.positionColumn, '<=', to)
      .orderBy(this.positionColumn)
      .execute();
    return rows.map(toEvent);
  }

  /** SQLite's writers take turns, so its seq is commit order; PostgreSQL's is set at commit. */
  private get positionColumn(): 'seq' | 'position' {
    return this.engine === 'postgres' ? 'position' : 'seq';
  }

  // ---- tokens ----------------------------------------------------------------

  async insertToken(t: Omit<TokenRecord, 'lastUsedAt'>): Promise<void> {
    await this.any
      .insertInto('tokens')
      .values({
        id: t.id,
        user_name: t.userName,
        secret_hash: t.secretHash,
        description: t.description,
        created_at: t.createdAt,
        expires_at: t.expiresAt,
        last_used_at: null,
      })
      .execute();
  }

  /** Read on every API request (compiled once). */
  async getToken(id: string): Promise<TokenRecord | undefined> {
    const { rows } = await this.run(
      'getToken',
      () => this.any.selectFrom('tokens').selectAll().where('id', '=', id),
      [id],
    );
    return rows[0] ? toToken(rows[0]) : undefined;
  }

  /**
   * A token with its user's spec (absent when the user is gone), in one statement: every
   * API request is authenticated, and on PostgreSQL a statement is a round trip.
   */
  async getTokenWithUser(
    id: string,
  ): Promise<{ token: TokenRecord; userSpec?: Record<string, unknown> } | undefined> {
    const { rows } = await this.run(
      'getTokenWithUser',
      () =>
        raw(
          `select t.*, (select u.spec from users u where u.parent = '' and u.name = t.user_name) as user_spec
from tokens t where t.id = ${this.engine === 'postgres' ? '$1' : '?'}`,
          [id],
        ),
      [id],
    );
    const row = rows[0] as (Parameters<typeof toToken>[0] & { user_spec: string | null }) | undefined;
    if (!row) return undefined;
    return {
      token: toToken(row),
      ...(row.user_spec !== null ? { userSpec: JSON.parse(row.user_spec) } : {}),
    };
  }

  async listTokens(userName: string): Promise<TokenRecord[]> {
    const rows = await this.any
      .selectFrom('tokens')
      .selectAll()
      .where('user_name', '=', userName)
      .orderBy('created_at')
      .execute();
    return rows.map(toToken);
  }

  async deleteToken(id: string): Promise<boolean> {
    const res = await this.any.deleteFrom('tokens').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async deleteTokensOf(userName: string): Promise<number> {
    const res = await this.any.deleteFrom('tokens').where('user_name', '=', userName).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  async touchToken(id: string, at: string): Promise<void> {
    await this.any.updateTable('tokens').set({ last_used_at: at }).where('id', '=', id).execute();
  }

  // ---- instances -------------------------------------------------------------

  async listInstances(q: InstanceQuery = {}): Promise<InstanceRecord[]> {
    return queryInstances(this.any, q);
  }

  /** A workload's instances by ordinal (the controller's read of every pass). */
  async workloadInstances(project: string, workload: string): Promise<InstanceRecord[]> {
    const { rows } = await this.run(
      'workloadInstances',
      () =>
        this.any
          .selectFrom('instances')
          .selectAll()
          .where('project', '=', project)
          .where('workload', '=', workload)
          .orderBy('ordinal'),
      [project, workload],
    );
    return rows.map(toInstance);
  }

  /**
   * The instances of several workloads by ordinal, keyed `project/workload` (absent: none);
   * BATCH_ROWS workloads to a statement.
   */
  async instancesOfWorkloads(
    workloads: readonly { project: string; workload: string }[],
  ): Promise<Map<string, InstanceRecord[]>> {
    const out = new Map<string, InstanceRecord[]>();
    for (let at = 0; at < workloads.length; at += BATCH_ROWS) {
      const part = workloads.slice(at, at + BATCH_ROWS);
      const params = part.flatMap((w) => [w.project, w.workload]);
      const { rows } = await this.run(
        `instancesOfWorkloads ${part.length}`,
        () =>
          raw(
            `with k(project, workload) as (values ${rowsOf(this.engine, part.length, 2)})
select i.* from instances i join k on i.project = k.project and i.workload = k.workload
order by i.project, i.workload, i.ordinal`,
            params,
          ),
        params,
      );
      for (const row of rows) {
        const inst = toInstance(row);
        const k = `${inst.project}/${inst.workload}`;
        const list = out.get(k);
        if (list) list.push(inst);
        else out.set(k, [inst]);
      }
    }
    return out;
  }

  async getInstance(project: string, name: string): Promise<InstanceRecord | undefined> {
    const { rows } = await this.run(
      'getInstance',
      () =>
        this.any.selectFrom('instances').selectAll().where('project', '=', project).where('name', '=', name),
      [project, name],
    );
    return rows[0] ? toInstance(rows[0]) : undefined;
  }

  /**
   * The desired state and reported phase of the instances of several workloads (no
   * documents parsed), keyed `project/workload`; BATCH_ROWS workloads to a statement.
   */
  async instancePhases(
    workloads: readonly { project: string; workload: string }[],
  ): Promise<Map<string, { desired: DesiredState; phase: string }[]>> {
    const out = new Map<string, { desired: DesiredState; phase: string }[]>();
    for (let at = 0; at < workloads.length; at += BATCH_ROWS) {
      const part = workloads.slice(at, at + BATCH_ROWS);
      const params = part.flatMap((w) => [w.project, w.workload]);
      const { rows } = await this.run<{
        project: string;
        workload: string;
        desired: DesiredState;
        phase: string;
      }>(
        `instancePhases ${part.length}`,
        () =>
          raw(
            `with k(project, workload) as (values ${rowsOf(this.engine, part.length, 2)})
select i.project, i.workload, i.desired, i.phase from instances i
join k on i.project = k.project and i.workload = k.workload`,
            params,
          ),
        params,
      );
      for (const { project, workload, desired, phase } of rows) {
        const k = `${project}/${workload}`;
        const list = out.get(k);
        if (list) list.push({ desired, phase });
        else out.set(k, [{ desired, phase }]);
      }
    }
    return out;
  }

  /**
   * Instances without their spec (not parsed), for the agents' reports, 100 to a
   * statement; those not there are absent from the map.
   */
  async getInstanceStatesByUid(uids: readonly string[]): Promise<Map<string, Omit<InstanceRecord, 'spec'>>> {
    const found = new Map<string, Omit<InstanceRecord, 'spec'>>();
    for (let at = 0; at < uids.length; at += BATCH_ROWS) {
      const part = uids.slice(at, at + BATCH_ROWS);
      const { rows } = await this.run(
        `getInstanceStatesByUid ${part.length}`,
        () => this.any.selectFrom('instances').select(INSTANCE_STATE_COLUMNS).where('uid', 'in', part),
        part,
      );
      for (const row of rows) found.set(row.uid, toInstance(Object.assign({}, row, { spec: undefined })));
    }
    return found;
  }

  async getInstanceByUid(uid: string): Promise<InstanceRecord | undefined> {
    const row = await this.any.selectFrom('instances').selectAll().where('uid', '=', uid).executeTakeFirst();
    return row ? toInstance(row) : undefined;
  }

  /** The (project, workload) pairs that have instances, without loading the instances. */
  /** The workloads with instances (bound to a provider's nodes, or to one site's nodes). */
  async instanceWorkloads(
    on: { provider?: string; site?: string } = {},
  ): Promise<{ project: string; workload: string }[]> {
    let q = this.any.selectFrom('instances').select(['instances.project', 'instances.workload']).distinct();
    if (on.provider !== undefined) q = q.where('instances.provider', '=', on.provider);
    if (on.site !== undefined)
      q = q
        .innerJoin('nodes', (j) =>
          j.onRef('nodes.parent', '=', 'instances.provider').onRef('nodes.name', '=', 'instances.node'),
        )
        .where('nodes.site', '=', on.site);
    return q.execute();
  }

  async insertInstance(r: InstanceRecord): Promise<void> {
    await this.insertInstances([r]);
  }

  /** Inserts instances, BATCH_ROWS to a statement. */
  async insertInstances(rs: readonly InstanceRecord[]): Promise<void> {
    for (let at = 0; at < rs.length; at += BATCH_ROWS) {
      const rows = rs.slice(at, at + BATCH_ROWS).map(instanceRow);
      await this.run(
        `insertInstances ${rows.length}`,
        () => this.any.insertInto('instances').values(rows),
        rows.flatMap((r) => Object.values(r)),
      );
    }
    for (const r of rs)
      this.changed({
        table: 'instances',
        parent: r.project,
        name: r.name,
        workload: r.workload,
        part: 'created',
        write: { record: r },
      });
  }

  /**
   * Writes the control plane's side (binding, desired state, spec) of the instance `d.uid`,
   * which was bound to `previous`; status is left alone.
   */
  async setInstanceDesired(d: InstanceRecord, previous: { provider: string; node: string }): Promise<void> {
    const set = {
      provider: d.provider,
      node: d.node,
      fence: d.fence,
      revision: d.revision,
      desired: d.desired,
      vcpus: d.vcpus,
      memory_mib: d.memoryMiB,
      disk_gib: d.diskGiB,
      spec: JSON.stringify(d.spec),
      updated_at: new Date().toISOString(),
    };
    await this.run(
      'setInstanceDesired',
      () => this.any.updateTable('instances').set(set).where('uid', '=', d.uid),
      [...Object.values(set), d.uid],
    );
    const write: InstanceWrite = {
      record: d,
      ...(previous.provider !== d.provider || previous.node !== d.node ? { previous } : {}),
    };
    this.changed({
      table: 'instances',
      parent: d.project,
      name: d.name,
      workload: d.workload,
      part: 'spec',
      write,
    });
  }

  /**
   * Writes what the agent of `provider/node` observed of an instance still bound to that
   * node and not being deleted, in one statement; returns its workload, or undefined when
   * nothing was written (moved, deleting or gone: the caller looks closer).
   */
  async reportInstanceStatus(
    uid: string,
    provider: string,
    node: string,
    status: InstanceStatus,
  ): Promise<{ project: string; workload: string } | undefined> {
    return (await this.reportInstanceStatuses([{ uid, provider, node, status }])).get(
      `${uid} ${provider}/${node}`,
    );
  }

  /**
   * Writes what agents observed of live instances still bound to the reporting node, up
   * to BATCH_ROWS in one statement (one uid and node once); gives the uids written — the
   * others (unbound, being deleted, gone) are the caller's to look at one by one. Written
   * ones are keyed `UID PROVIDER/NODE`, with their workload.
   */
  async reportInstanceStatuses(
    items: readonly { uid: string; provider: string; node: string; status: InstanceStatus }[],
  ): Promise<Map<string, { project: string; workload: string }>> {
    const written = new Map<string, { project: string; workload: string }>();
    const now = new Date().toISOString();
    for (let at = 0; at < items.length; at += BATCH_ROWS) {
      const part = items.slice(at, at + BATCH_ROWS);
      const params = part.flatMap((i) => [
        i.uid,
        i.provider,
        i.node,
        JSON.stringify(i.status),
        i.status.phase,
        now,
      ]);
      const { rows } = await this.run<{
        uid: string;
        provider: string;
        node: string;
        project: string;
        name: string;
        workload: string;
      }>(
        `reportInstanceStatuses ${part.length}`,
        // Built once per row count (the compiled query is kept), not on every report.
        () => raw(reportStatusesSql(this.engine, part.length), params),
        params,
      );
      for (const row of rows) {
        written.set(`${row.uid} ${row.provider}/${row.node}`, {
          project: row.project,
          workload: row.workload,
        });
        this.instanceStatusChanged(row);
      }
    }
    return written;
  }

  private instanceStatusChanged(row: { project: string; name: string; workload: string }): void {
    this.changed({
      table: 'instances',
      parent: row.project,
      name: row.name,
      workload: row.workload,
      part: 'status',
    });
  }

  /** Writes what the agent observed; the desired side is left alone. */
  async setInstanceStatus(uid: string, status: InstanceStatus): Promise<void> {
    const set = statusColumns(status);
    const { rows } = await this.run<{ project: string; name: string; workload: string }>(
      'setInstanceStatus',
      () =>
        this.any
          .updateTable('instances')
          .set(set)
          .where('uid', '=', uid)
          .returning(['project', 'name', 'workload']),
      [...Object.values(set), uid],
    );
    if (rows[0]) this.instanceStatusChanged(rows[0]);
  }

  /** Removes an instance's row (its agent deleted it, or its node was enrolled anew). */
  async deleteInstance(uid: string): Promise<boolean> {
    return (await this.deleteInstances([uid])).size > 0;
  }

  /** Deletes instances (each as deleteInstance), 100 to a statement; returns the uids that were there. */
  async deleteInstances(uids: readonly string[]): Promise<Set<string>> {
    const deleted = new Set<string>();
    for (let at = 0; at < uids.length; at += BATCH_ROWS) {
      const part = uids.slice(at, at + BATCH_ROWS);
      const { rows } = await this.run(
        `deleteInstances ${part.length}`,
        () =>
          this.any
            .deleteFrom('instances')
            .where('uid', 'in', part)
            .returning([
              'uid',
              'project',
              'name',
              'workload',
              'provider',
              'node',
              'desired',
              'vcpus',
              'memory_mib',
              'disk_gib',
              'spec',
            ]),
        part,
      );
      // The order of the uids given, whatever order RETURNING gives.
      const byUid = new Map(rows.map((r) => [r.uid, r]));
      for (const uid of part) {
        const row = byUid.get(uid);
        if (!row || deleted.has(uid)) continue;
        deleted.add(uid);
        this.deletedInstance(row);
      }
    }
    return deleted;
  }

  private deletedInstance(row: {
    project: string;
    name: string;
    workload: string;
    provider: string;
    node: string;
    desired: string;
    vcpus: number | string;
    memory_mib: number | string;
    disk_gib: number | string;
    spec: string;
  }): void {
    const released =
      row.desired === 'absent'
        ? undefined
        : {
            provider: row.provider,
            node: row.node,
            vcpus: Number(row.vcpus),
            memoryMiB: Number(row.memory_mib),
            diskGiB: Number(row.disk_gib),
            accelerators: JSON.parse(row.spec).accelerators ?? 0,
          };
    this.changed({
      table: 'instances',
      parent: row.project,
      name: row.name,
      workload: row.workload,
      part: 'deleted',
      ...(released ? { released } : {}),
    });
  }

  // ---- join tokens and node credentials ---------------------------------------

  async insertJoinToken(t: JoinTokenRecord): Promise<void> {
    await this.any
      .insertInto('join_tokens')
      .values({
        id: t.id,
        provider: t.provider,
        site: t.site,
        secret_hash: t.secretHash,
        description: t.description,
        created_by: t.createdBy,
        created_at: t.createdAt,
        expires_at: t.expiresAt,
        max_uses: t.maxUses,
        uses: t.uses,
        replaces: t.replaces ?? null,
      })
      .execute();
  }

  async getJoinToken(id: string): Promise<JoinTokenRecord | undefined> {
    const row = await this.any.selectFrom('join_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toJoinToken(row) : undefined;
  }

  async listJoinTokens(provider: string, site?: string): Promise<JoinTokenRecord[]> {
    let q = this.any.selectFrom('join_tokens').selectAll().where('provider', '=', provider);
    if (site !== undefined) q = q.where('site', '=', site);
    return (await q.orderBy('created_at').execute()).map(toJoinToken);
  }

  /** Counts one use if the token still has one left; false when used up. */
  async useJoinToken(id: string): Promise<boolean> {
    const res = await this.any
      .updateTable('join_tokens')
      .set((eb) => ({ uses: eb('uses', '+', 1) }))
      .where('id', '=', id)
      .whereRef('uses', '<', 'max_uses')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async deleteJoinToken(id: string): Promise<boolean> {
    const res = await this.any.deleteFrom('join_tokens').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async insertNodeCredential(c: NodeCredentialRecord): Promise<void> {
    await this.any
      .insertInto('node_credentials')
      .values({
        id: c.id,
        provider: c.provider,
        node: c.node,
        secret_hash: c.secretHash,
        created_at: c.createdAt,
      })
      .execute();
  }

  async getNodeCredential(id: string): Promise<NodeCredentialRecord | undefined> {
    const row = await this.any
      .selectFrom('node_credentials')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row
      ? {
          id: row.id,
          provider: row.provider,
          node: row.node,
          secretHash: row.secret_hash,
          createdAt: row.created_at,
        }
      : undefined;
  }

  async countNodeCredentials(provider: string, node: string): Promise<number> {
    const row = await this.any
      .selectFrom('node_credentials')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('provider', '=', provider)
      .where('node', '=', node)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async deleteNodeCredentials(provider: string, node: string): Promise<number> {
    const res = await this.any
      .deleteFrom('node_credentials')
      .where('provider', '=', provider)
      .where('node', '=', node)
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  // ---- meta ------------------------------------------------------------------

  async getMeta(key: string): Promise<string | undefined> {
    const row = await this.any.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst();
    return row?.value;
  }

  async deleteMeta(key: string): Promise<void> {
    await this.any.deleteFrom('meta').where('key', '=', key).execute();
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.any
      .insertInto('meta')
      .values({ key, value })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
      .execute();
  }
}
