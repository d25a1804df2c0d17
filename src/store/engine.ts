// Opens a Kysely instance on one of the two engines. SQLite is the embedded default;
// a postgres:// URL selects PostgreSQL. Everything above this file is engine-neutral.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

export const ENGINES = ['sqlite', 'postgres'] as const;
export type Engine = (typeof ENGINES)[number];

export interface StoreLocation {
  /** A postgres:// (or postgresql://) URL, or a path to an SQLite file (':memory:' allowed). */
  url: string;
  /** PostgreSQL only: run in this schema (created if missing). Tests use it to stay isolated. */
  schema?: string;
  /** PostgreSQL only: pool size. */
  poolSize?: number;
  /** This process's name among the control-plane replicas (default 'local'). */
  replica?: string;
  /** PostgreSQL: an idle pooled connection broke (it is replaced at the next query). */
  onConnectionError?: (err: Error) => void;
}

export function engineOf(url: string): Engine {
  return /^postgres(ql)?:\/\//.test(url) ? 'postgres' : 'sqlite';
}

const INT8_OID = 20;

export interface OpenedDatabase {
  db: Kysely<Database>;
  engine: Engine;
  /** PostgreSQL: a connection of its own (in the store's schema), for LISTEN. */
  connect?: () => Promise<pg.Client>;
}

export async function openDatabase(loc: StoreLocation): Promise<OpenedDatabase> {
  const engine = engineOf(loc.url);
  if (engine === 'sqlite') {
    if (loc.url !== ':memory:') mkdirSync(dirname(loc.url), { recursive: true });
    const conn = new SQLite(loc.url);
    conn.pragma('journal_mode = WAL');
    conn.pragma('synchronous = NORMAL');
    conn.pragma('busy_timeout = 5000');
    conn.pragma('foreign_keys = ON');
    // 64 MiB of page cache (the default is 2 MiB): a federation's working set of nodes,
    // instances and index pages stays in memory instead of being re-read page by page.
    conn.pragma('cache_size = -65536');
    // Kysely prepares every query anew; better-sqlite3 statements are reusable, so keep
    // them by SQL text (the query builder yields a small, fixed set of shapes).
    const prepare = conn.prepare.bind(conn);
    const statements = new Map<string, ReturnType<typeof prepare>>();
    conn.prepare = ((sql: string) => {
      let st = statements.get(sql);
      if (!st) {
        st = prepare(sql);
        if (statements.size > 2000) statements.clear();
        statements.set(sql, st);
      }
      return st;
    }) as typeof conn.prepare;
    return { engine, db: new Kysely<Database>({ dialect: new SqliteDialect({ database: conn }) }) };
  }
  const schema = loc.schema;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema))
    throw new Error(`invalid schema name ${schema}`);
  if (schema) {
    const admin = new pg.Client({ connectionString: loc.url });
    await admin.connect();
    try {
      await admin.query(`create schema if not exists ${schema}`);
    } finally {
      await admin.end();
    }
  }
  const searchPath = schema ? { options: `-c search_path=${schema}` } : {};
  const pool = new pg.Pool({
    connectionString: loc.url,
    max: loc.poolSize ?? 10,
    ...searchPath,
    // COUNT(*) and bigserial come back as int8; our numbers stay far below 2^53.
    types: {
      getTypeParser: ((oid: number, format?: string) =>
        oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as any)) as any,
    },
  });
  // An idle connection that breaks (the server restarted, a failover) is dropped by the
  // pool and replaced at the next query; unhandled, its 'error' would end the process.
  pool.on('error', (err) => loc.onConnectionError?.(err));
  // The pool listens only while a connection is idle: one in use (a transaction between
  // statements) that hears the server go (a failover) would end the process otherwise.
  // The broken connection fails its next statement and the pool drops it.
  pool.on('connect', (client) => client.on('error', (err) => loc.onConnectionError?.(err)));
  // Fail fast with the server's own message (bad host, missing database …).
  const client = await pool.connect();
  client.release();
  const connect = async () => {
    const c = new pg.Client({ connectionString: loc.url, ...searchPath });
    await c.connect();
    return c;
  };
  return {
    engine,
    connect,
    db: new Kysely<Database>({ dialect: new PostgresDialect({ pool: callbackStatements(pool) }) }),
  };
}

/**
 * The pool as Kysely sees it, each statement sent in pg's callback form. Awaiting the
 * promise pg's `query` returns kept every row it read alive past the young generation's
 * collections until the next full one (reproduced with pg 8.23 on Node 20 outside
 * Continuum: about 85 KB promoted a read of 100 rows, nothing in the callback form).
 * Under 200 API reads a second that was 11 MiB/s into the old generation: a full
 * collection every 15–30 s, and its marking threads took the CPU the requests waited for.
 */
function callbackStatements(pool: pg.Pool): PostgresPool {
  // One wrapper a pooled connection: Kysely keeps its connection objects by the client's identity.
  const wrappers = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  return {
    connect: async () => {
      const client = await pool.connect();
      let wrapper = wrappers.get(client);
      if (!wrapper) {
        const query = (sql: string, parameters: readonly unknown[]) =>
          new Promise((resolve, reject) =>
            client.query(sql, parameters as unknown[], (err, result) =>
              err ? reject(err) : resolve(result),
            ),
          );
        wrapper = { query: query as PostgresPoolClient['query'], release: () => client.release() };
        wrappers.set(client, wrapper);
      }
      return wrapper;
    },
    end: () => pool.end(),
  };
}
