// Test helpers that give each test a real store on each engine: SQLite in a temporary
// directory, and PostgreSQL in a schema of its own that is dropped afterwards.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type Engine, Store } from '../../src/store/index.js';

export const TEST_ENGINES: readonly Engine[] = ['sqlite', 'postgres'];

export function postgresUrl(): string {
  const url = process.env.CONTINUUM_TEST_DATABASE_URL;
  if (!url)
    throw new Error(
      'CONTINUUM_TEST_DATABASE_URL is not set: run the suite with `npm test` (which starts a throwaway PostgreSQL) or point it at a server',
    );
  return url;
}

export interface TestDatabase {
  engine: Engine;
  /** What startControlPlane takes: a postgres URL + schema, or nothing (SQLite in the data dir). */
  databaseUrl?: string;
  databaseSchema?: string;
  dataDir: string;
  cleanup(): Promise<void>;
}

export async function testDatabase(engine: Engine): Promise<TestDatabase> {
  const dataDir = mkdtempSync(join(tmpdir(), 'continuum-test-'));
  if (engine === 'sqlite') {
    return { engine, dataDir, cleanup: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const url = postgresUrl();
  const schema = `t_${randomBytes(6).toString('hex')}`;
  return {
    engine,
    dataDir,
    databaseUrl: url,
    databaseSchema: schema,
    async cleanup() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`drop schema if exists ${schema} cascade`);
      } finally {
        await c.end();
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function openTestStore(engine: Engine): Promise<{ store: Store; cleanup(): Promise<void> }> {
  const db = await testDatabase(engine);
  const store = await Store.open(
    engine === 'sqlite'
      ? { url: join(db.dataDir, 'test.db') }
      : { url: db.databaseUrl!, schema: db.databaseSchema },
  );
  return {
    store,
    async cleanup() {
      await store.close();
      await db.cleanup();
    },
  };
}

/** A PostgreSQL database of its own, for server processes (which take no schema), dropped afterwards. */
export async function scratchPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = postgresUrl();
  const name = `continuum_ha_${randomBytes(5).toString('hex')}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`create database ${name}`);
  await c.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const d = new pg.Client({ connectionString: admin });
      await d.connect();
      await d.query(`drop database if exists ${name} with (force)`);
      await d.end();
    },
  };
}
