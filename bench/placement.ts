// Placement benchmark: the real WorkloadController, ClusterCache, scheduler pipeline and
// store (SQLite, or PostgreSQL with --database-url) place replicas of mixed-policy
// workloads onto a generated fleet, and the result is compared with the store's raw
// write ceiling measured in the same run on the same engine.
//
//   npm run bench:placement -- --nodes 10000 --providers 200 --replicas 100000
//   npm run bench:placement -- --database-url postgres://postgres@127.0.0.1:5432/postgres
//
// On PostgreSQL the store lives in a schema of its own, dropped at the end.
//
// Nodes are written to the store in the agents' own format (no agents run here: the
// agent-protocol side — heartbeats, failure to replacement — is measured with
// `continuum sim` and is not part of this figure).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { ClusterCache, DEFAULT_MAX_BACKLOG_BATCH, WorkloadController } from '../src/controllers/index.js';
import { sovereigntyLevel } from '../src/model/index.js';
import { generateFederation, simInventory } from '../src/sim/index.js';
import { newUid, Store } from '../src/store/index.js';
import { rawWriteCeiling } from './ceiling.js';
import { benchOptions, benchPolicies, benchResources } from './common.js';

const { numbers: args, text } = benchOptions({ 'database-url': { type: 'string' } }, ['database-url']);
const DATABASE_URL = text['database-url'];
const NODES = args.nodes!;
const PROVIDERS = args.providers!;
const REPLICAS = args.replicas!;
const PER = args['per-workload']!;

const dir = mkdtempSync(join(tmpdir(), 'continuum-bench-'));
const now = () => new Date().toISOString();
const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function seed(store: Store) {
  const fed = generateFederation({ providers: PROVIDERS, nodes: NODES, seed: 7 });
  await store.transaction(async (tx) => {
    for (const p of fed.providers as any[])
      await tx.insert('providers', {
        uid: newUid(),
        parent: '',
        name: p.metadata.name,
        labels: {},
        spec: p.spec,
        status: { sovereigntyLevel: sovereigntyLevel(p.spec) },
        createdBy: 'bench',
        columns: { country: p.spec.headquarters, jurisdiction: p.spec.jurisdiction },
      });
    for (const s of fed.sites) {
      const m = s.manifest as any;
      await tx.insert('sites', {
        uid: newUid(),
        parent: s.provider,
        name: s.name,
        labels: {},
        spec: m.spec,
        status: {},
        createdBy: 'bench',
        columns: { country: m.spec.country, tier: m.spec.tier },
      });
      for (const n of s.nodes)
        await tx.insert('nodes', {
          uid: newUid(),
          parent: s.provider,
          name: n.name,
          labels: {},
          spec: { site: s.name },
          status: { state: 'ready', inventory: simInventory(n.name, n.inventory), lastHeartbeat: now() },
          createdBy: 'bench',
          columns: { site: s.name, state: 'ready' },
        });
    }
    await tx.insert('projects', {
      uid: newUid(),
      parent: '',
      name: 'bench',
      labels: {},
      spec: {},
      status: { usage: { vcpus: 0, memoryMiB: 0, instances: 0 } },
      createdBy: 'bench',
      columns: {},
    });
    await tx.insert('images', {
      uid: newUid(),
      parent: 'bench',
      name: 'img',
      labels: {},
      spec: { format: 'raw', files: { disk: { sha256: 'a'.repeat(64) } } },
      status: { phase: 'Available', files: { disk: { sha256: 'a'.repeat(64), size: 1, uploadedAt: now() } } },
      createdBy: 'bench',
      columns: {},
    });
  });
  const policy = benchPolicies();
  const workloads = Math.ceil(REPLICAS / PER);
  await store.transaction(async (tx) => {
    for (let i = 0; i < workloads; i++)
      await tx.insert('workloads', {
        uid: newUid(),
        parent: 'bench',
        name: `w${i}`,
        labels: {},
        spec: {
          kind: 'vm',
          image: 'img',
          replicas: Math.min(PER, REPLICAS - i * PER),
          resources: benchResources(i),
          placement: policy(i),
        },
        status: { phase: 'Pending', observedGeneration: 0, readyReplicas: 0 },
        createdBy: 'bench',
        columns: { phase: 'Pending' },
      });
  });
  return { workloads, sites: fed.sites.length };
}

async function main() {
  const engine = DATABASE_URL ? 'PostgreSQL' : 'SQLite';
  process.stdout.write(
    `placement benchmark: ${NODES} nodes, ${PROVIDERS} providers, ${REPLICAS} replicas (${PER} per workload) on ${engine}\n`,
  );
  const ceiling = await rawWriteCeiling(
    dir,
    Math.min(REPLICAS, 50_000),
    PER,
    DEFAULT_MAX_BACKLOG_BATCH,
    DATABASE_URL,
  );
  process.stdout.write(
    `raw write ceiling: ${ceiling.toFixed(0)} instance rows/s (instance + event rows, ${PER * DEFAULT_MAX_BACKLOG_BATCH} per transaction)\n`,
  );
  const schema = `placement_${process.pid}`;
  const store = await Store.open(
    DATABASE_URL ? { url: DATABASE_URL, schema } : { url: join(dir, 'bench.db') },
  );
  const { workloads, sites } = await seed(store);
  const cache = new ClusterCache(store);
  const passTimes: number[] = [];
  const controller = new WorkloadController({
    store,
    cache,
    resyncIntervalMs: 3_600_000,
    onPlaced: (_replicas, passSeconds) => passTimes.push(passSeconds * 1000),
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await controller.start();
  await controller.queue.idle();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  controller.stop();
  const placed = (await store.listInstances()).length;
  const pending = (await store.list('workloads')).reduce(
    (n, w) => n + ((w.status as any).placement?.pending ?? 0),
    0,
  );
  const rate = placed / seconds;
  passTimes.sort((a, b) => a - b);
  const rss = process.memoryUsage().rss / 1024 ** 2;
  const rows: [string, string][] = [
    ['engine', engine],
    ['fleet', `${NODES} nodes, ${PROVIDERS} providers, ${sites} sites`],
    ['workloads', `${workloads} (${PER} replicas each, six policy mixes)`],
    ['replicas placed', `${placed} (${pending} unplaceable by their rules or capacity)`],
    ['time', `${seconds.toFixed(1)} s`],
    ['placements/s', rate.toFixed(0)],
    ['raw write ceiling (rows/s)', ceiling.toFixed(0)],
    ['placements / raw ceiling', `${((rate / ceiling) * 100).toFixed(1)} %`],
    [
      'placement latency p50 / p99',
      `${pct(passTimes, 50).toFixed(2)} ms / ${pct(passTimes, 99).toFixed(2)} ms (a workload's pass to the commit of its transaction of up to ${DEFAULT_MAX_BACKLOG_BATCH})`,
    ],
    [
      'CPU',
      `${((cpu.user + cpu.system) / 1e6).toFixed(1)} s (${(((cpu.user + cpu.system) / 1e6 / seconds) * 100).toFixed(0)} % of one core)`,
    ],
    ['RSS', `${rss.toFixed(0)} MiB`],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(30)} ${v}\n`);
  if (DATABASE_URL) await sql.raw(`drop schema ${schema} cascade`).execute(store.kysely);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

await main();
