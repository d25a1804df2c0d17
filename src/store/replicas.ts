// Control-plane replicas and the leader's lease. Every replica writes its row (name,
// advertised address) every few seconds; one holds the lease named 'controllers' and
// runs the controllers. The lease carries an epoch, raised each time it changes hands
// (or is taken again after it lapsed): a controller's transaction commits only while its
// epoch still holds an unexpired lease (continuum_seal on PostgreSQL), so a leader that
// was paused or cut off can never commit after another took over.
//
// Times are the database's clock on PostgreSQL (replicas' clocks may differ); SQLite has
// one process, whose clock it is.
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Store } from './store.js';

export const LEADER_LEASE = 'controllers';

export interface ReplicaRecord {
  readonly name: string;
  /** Where clients and agents reach its API (http://host:port). */
  readonly address: string;
  /** Where agents reach its gateway ('' when it runs none). */
  readonly gateway: string;
  readonly version: string;
  readonly startedMs: number;
  readonly seenMs: number;
}

export interface Lease {
  /** NAME#MARK: the replica and its process (a restarted process is another holder). */
  readonly holder: string;
  /** The replica's name. */
  readonly replica: string;
  readonly epoch: number;
  readonly acquiredMs: number;
  readonly expiresMs: number;
}

/** Milliseconds since 1970 on the database's clock. */
function nowMs(store: Store): RawBuilder<number> | number {
  return store.engine === 'postgres'
    ? sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`
    : Date.now();
}

/** The database's clock, in ms (replicas compare lease times with it, not with their own). */
export async function databaseNow(store: Store): Promise<number> {
  if (store.engine !== 'postgres') return Date.now();
  const { rows } = await sql<{ now: number }>`select ${nowMs(store)} as now`.execute(store.kysely);
  return Number(rows[0]!.now);
}

/** Writes (or refreshes) a replica's row; its `seen` time is now. */
export async function heartbeatReplica(store: Store, r: Omit<ReplicaRecord, 'seenMs'>): Promise<void> {
  const now = nowMs(store);
  await store.kysely
    .insertInto('replicas')
    .values({
      name: r.name,
      address: r.address,
      gateway: r.gateway,
      version: r.version,
      started_ms: r.startedMs,
      seen_ms: now,
    })
    .onConflict((oc) =>
      oc.column('name').doUpdateSet({
        address: r.address,
        gateway: r.gateway,
        version: r.version,
        started_ms: r.startedMs,
        seen_ms: now,
      }),
    )
    .execute();
}

/** Removes a replica's row (it stops) and the rows of replicas silent longer than `staleMs`. */
export async function forgetReplicas(store: Store, opts: { name?: string; staleMs?: number }): Promise<void> {
  const db: Kysely<any> = store.kysely;
  if (opts.name) await db.deleteFrom('replicas').where('name', '=', opts.name).execute();
  if (opts.staleMs !== undefined)
    await db
      .deleteFrom('replicas')
      .where('seen_ms', '<', sql<number>`${nowMs(store)} - ${opts.staleMs}`)
      .execute();
}

export async function listReplicas(
  store: Store,
): Promise<{ replicas: ReplicaRecord[]; lease?: Lease; now: number }> {
  const rows = await store.kysely.selectFrom('replicas').selectAll().orderBy('name').execute();
  return {
    replicas: rows.map((r: any) => ({
      name: r.name,
      address: r.address,
      gateway: r.gateway,
      version: r.version,
      startedMs: Number(r.started_ms),
      seenMs: Number(r.seen_ms),
    })),
    lease: await readLease(store),
    now: await databaseNow(store),
  };
}

export async function readLease(store: Store): Promise<Lease | undefined> {
  const row = await store.kysely
    .selectFrom('leases')
    .selectAll()
    .where('name', '=', LEADER_LEASE)
    .executeTakeFirst();
  return row
    ? {
        holder: row.holder,
        replica: row.holder.split('#')[0]!,
        epoch: Number(row.epoch),
        acquiredMs: Number(row.acquired_ms),
        expiresMs: Number(row.expires_ms),
      }
    : undefined;
}

/**
 * Takes or renews the leader's lease for `ttlMs`: renewed (same epoch) while `holder`
 * holds it unexpired; taken with the next epoch when it is free or has lapsed (or at once
 * with `force`: SQLite's single process). Returns the lease as it stands after the
 * attempt (another's when it is held by another).
 */
export async function acquireLease(
  store: Store,
  holder: string,
  ttlMs: number,
  opts: { force?: boolean } = {},
): Promise<Lease> {
  const now = nowMs(store);
  const expires = sql<number>`${now} + ${ttlMs}`;
  await store.kysely
    .insertInto('leases')
    .values({ name: LEADER_LEASE, holder, epoch: 1, acquired_ms: now, expires_ms: expires })
    .onConflict((oc) => {
      const update = oc.column('name').doUpdateSet({
        holder,
        epoch: sql`case when leases.holder = ${holder} and leases.expires_ms > ${now} then leases.epoch else leases.epoch + 1 end`,
        acquired_ms: sql`case when leases.holder = ${holder} and leases.expires_ms > ${now} then leases.acquired_ms else ${now} end`,
        expires_ms: expires,
      });
      return opts.force
        ? update
        : update.where((eb) => eb.or([eb('leases.holder', '=', holder), eb('leases.expires_ms', '<=', now)]));
    })
    .execute();
  return (await readLease(store))!;
}

/** Gives the lease up at once (a replica that stops), so that another takes it without waiting. */
export async function releaseLease(store: Store, holder: string, epoch: number): Promise<void> {
  await store.kysely
    .updateTable('leases')
    .set({ expires_ms: 0 })
    .where('name', '=', LEADER_LEASE)
    .where('holder', '=', holder)
    .where('epoch', '=', epoch)
    .execute();
}
