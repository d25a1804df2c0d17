// The store's raw write ceiling: plain inserts of the rows one placement writes (an
// instance row and its audit event, of the same size as the controller's, a workload's
// replicas in two multi-row statements as the applier writes them), as many workloads'
// replicas per transaction as the controller commits together under load.
import { join } from 'node:path';
import { sql } from 'kysely';
import { newUid, Store } from '../src/store/index.js';

export async function rawWriteCeiling(
  dir: string,
  rows: number,
  perWorkload: number,
  workloadsPerTransaction: number,
  /** PostgreSQL: measured there, in a schema of its own (dropped after); default SQLite in `dir`. */
  databaseUrl?: string,
): Promise<number> {
  const perTransaction = perWorkload * workloadsPerTransaction;
  const schema = `ceiling_${process.pid}`;
  const store = await Store.open(
    databaseUrl ? { url: databaseUrl, schema } : { url: join(dir, 'raw-ceiling.db') },
  );
  const sha = 'a'.repeat(64);
  const t0 = performance.now();
  for (let i = 0; i < rows; i += perTransaction) {
    await store.transaction(async (tx) => {
      const n = Math.min(perTransaction, rows - i);
      // As the applier writes a workload's new replicas: its events in one statement,
      // then its rows in another.
      for (let w = 0; w < n; w += perWorkload) {
        const workload = `w${(i + w) / perWorkload}`;
        const replicas = Array.from({ length: Math.min(perWorkload, n - w) }, (_, k) => ({
          k,
          uid: newUid(),
          node: { provider: 'prov-001', node: `site-1-n${(i + w + k) % 500}` },
        }));
        const events = await tx.appendEvents(
          replicas.map(({ k, uid, node }) => ({
            actor: 'controller:workloads',
            action: 'create',
            kind: 'Instance',
            parent: 'bench',
            name: `${workload}-${k}`,
            provider: node.provider,
            project: 'bench',
            before: null,
            after: { uid, workload, ...node, desired: 'running', fence: 1 },
          })),
        );
        const now = new Date().toISOString();
        await tx.insertInstances(
          replicas.map(({ k, uid, node }, r) => ({
            uid,
            project: 'bench',
            name: `${workload}-${k}`,
            workload,
            ordinal: k,
            ...node,
            fence: 1,
            revision: events[r]!.seq,
            desired: 'running',
            vcpus: 2,
            memoryMiB: 2048,
            diskGiB: 10,
            spec: {
              hostname: `${workload}-${k}`,
              image: { project: 'bench', name: 'img', format: 'raw', files: { disk: { sha256: sha } } },
              ports: [],
            },
            status: { phase: 'Pending', ports: [], restarts: 0, observedRevision: 0 },
            createdAt: now,
            updatedAt: now,
          })),
        );
      }
    });
  }
  const rate = rows / ((performance.now() - t0) / 1000);
  if (databaseUrl) await sql.raw(`drop schema ${schema} cascade`).execute(store.kysely);
  await store.close();
  return rate;
}
