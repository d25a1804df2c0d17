// Placement benchmark: the real WorkloadController, ClusterCache, scheduler pipeline and
// SQLite store place replicas of mixed-policy workloads onto a generated fleet, and the
// result is compared with the store's raw write ceiling measured in the same run.
//
//   npm run bench -- --nodes 10000 --providers 200 --replicas 100000
//
// Nodes are written to the store in the agents' own format (no agents run here: the
// agent-protocol side — heartbeats, failure to replacement — is measured with
// `continuum sim` and is not part of this figure).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ClusterCache, WorkloadController } from '../src/controllers/index.js';
import { sovereigntyLevel } from '../src/model/index.js';
import { generateFederation, rng, simInventory } from '../src/sim/index.js';
import { Store } from '../src/store/index.js';

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '10000' },
    providers: { type: 'string', default: '200' },
    replicas: { type: 'string', default: '100000' },
    'per-workload': { type: 'string', default: '10' },
  },
});
const NODES = Number(args.nodes);
const PROVIDERS = Number(args.providers);
const REPLICAS = Number(args.replicas);
const PER = Number(args['per-workload']);

const dir = mkdtempSync(join(tmpdir(), 'continuum-bench-'));
const now = () => new Date().toISOString();
const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function rawCeiling(): Promise<number> {
  const store = await Store.open({ url: join(dir, 'raw.db') });
  const n = Math.min(REPLICAS, 50_000);
  const t0 = performance.now();
  for (let i = 0; i < n; i += PER) {
    await store.transaction(async (tx) => {
      for (let k = 0; k < PER; k++) {
        const e = await tx.appendEvent({
          actor: 'bench',
          action: 'create',
          kind: 'Instance',
          parent: 'p',
          name: `w-${i + k}`,
          provider: 'x',
          project: 'p',
          before: null,
          after: { node: 'x/y' },
        });
        await tx.insertInstance({
          uid: randomUUID(),
          project: 'p',
          name: `w-${i + k}`,
          workload: `w${i}`,
          ordinal: k,
          provider: 'x',
          node: 'y',
          fence: 1,
          revision: e.seq,
          desired: 'running',
          vcpus: 1,
          memoryMiB: 512,
          diskGiB: 10,
          spec: { hostname: 'h', image: { project: 'p', name: 'i', format: 'raw', files: {} }, ports: [] },
          status: { phase: 'Pending', ports: [], restarts: 0, observedRevision: 0 },
          createdAt: now(),
          updatedAt: now(),
        });
      }
    });
  }
  const rate = n / ((performance.now() - t0) / 1000);
  await store.close();
  return rate;
}

async function seed(store: Store) {
  const fed = generateFederation({ providers: PROVIDERS, nodes: NODES, seed: 7 });
  await store.transaction(async (tx) => {
    for (const p of fed.providers as any[])
      await tx.insert('providers', {
        uid: randomUUID(),
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
        uid: randomUUID(),
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
          uid: randomUUID(),
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
      uid: randomUUID(),
      parent: '',
      name: 'bench',
      labels: {},
      spec: {},
      status: { usage: { vcpus: 0, memoryMiB: 0, instances: 0 } },
      createdBy: 'bench',
      columns: {},
    });
    await tx.insert('images', {
      uid: randomUUID(),
      parent: 'bench',
      name: 'img',
      labels: {},
      spec: { format: 'raw', files: { disk: { sha256: 'a'.repeat(64) } } },
      status: { phase: 'Available', files: { disk: { sha256: 'a'.repeat(64), size: 1, uploadedAt: now() } } },
      createdBy: 'bench',
      columns: {},
    });
  });
  // Mixed policies: residency, sovereignty, latency, spread, cost/carbon weights, plain.
  const rand = rng(11);
  const cities = ['Madrid', 'Warsaw', 'Paris', 'Berlin', 'Milan', 'Stockholm', 'Vienna', 'Lisbon'];
  const countries = ['DE', 'FR', 'ES', 'IT', 'PL', 'NL', 'SE', 'AT'];
  const policy = (i: number) => {
    switch (i % 6) {
      case 0:
        return {
          countries: [
            countries[Math.floor(rand() * countries.length)]!,
            countries[Math.floor(rand() * countries.length)]!,
          ].filter((c, k, a) => a.indexOf(c) === k),
        };
      case 1:
        return { jurisdiction: 'EU', euControlled: true, weights: { carbon: 80, cost: 20 } };
      case 2:
        return {
          latency: [{ city: cities[Math.floor(rand() * cities.length)]!, maxRttMs: 25 }],
          weights: { latency: 70, balance: 30 },
        };
      case 3:
        return {
          spread: { across: 'provider', minDomains: 3, mode: 'hard' },
          weights: { cost: 60, balance: 40 },
        };
      case 4:
        return { minSovereignty: 'eu-controlled', strategy: 'pack' };
      default:
        return {};
    }
  };
  const workloads = Math.ceil(REPLICAS / PER);
  await store.transaction(async (tx) => {
    for (let i = 0; i < workloads; i++)
      await tx.insert('workloads', {
        uid: randomUUID(),
        parent: 'bench',
        name: `w${i}`,
        labels: {},
        spec: {
          kind: 'vm',
          image: 'img',
          replicas: Math.min(PER, REPLICAS - i * PER),
          resources: { vcpus: 1 + (i % 4), memoryMiB: 1024 * (1 + (i % 3)) },
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
  process.stdout.write(
    `placement benchmark: ${NODES} nodes, ${PROVIDERS} providers, ${REPLICAS} replicas (${PER} per workload)\n`,
  );
  const ceiling = await rawCeiling();
  process.stdout.write(
    `raw write ceiling: ${ceiling.toFixed(0)} instance rows/s (instance + event rows, ${PER} per transaction)\n`,
  );
  const store = await Store.open({ url: join(dir, 'bench.db') });
  const { workloads, sites } = await seed(store);
  const cache = new ClusterCache(store);
  const controller = new WorkloadController({ store, cache, resyncIntervalMs: 3_600_000 });
  const syncTimes: number[] = [];
  const sync = controller.sync.bind(controller);
  controller.sync = async (key: string) => {
    const t = performance.now();
    await sync(key);
    syncTimes.push(performance.now() - t);
  };
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
  syncTimes.sort((a, b) => a - b);
  const perReplica = syncTimes.map((t) => t / PER);
  const rss = process.memoryUsage().rss / 1024 ** 2;
  const rows: [string, string][] = [
    ['fleet', `${NODES} nodes, ${PROVIDERS} providers, ${sites} sites`],
    ['workloads', `${workloads} (${PER} replicas each, six policy mixes)`],
    ['replicas placed', `${placed} (${pending} unplaceable by their rules or capacity)`],
    ['time', `${seconds.toFixed(1)} s`],
    ['placements/s', rate.toFixed(0)],
    ['raw write ceiling (rows/s)', ceiling.toFixed(0)],
    ['placements / raw ceiling', `${((rate / ceiling) * 100).toFixed(1)} %`],
    [
      'placement latency p50 / p99',
      `${pct(perReplica, 50).toFixed(2)} ms / ${pct(perReplica, 99).toFixed(2)} ms per replica (${PER}-replica workload sync / ${PER})`,
    ],
    [
      'CPU',
      `${((cpu.user + cpu.system) / 1e6).toFixed(1)} s (${(((cpu.user + cpu.system) / 1e6 / seconds) * 100).toFixed(0)} % of one core)`,
    ],
    ['RSS', `${rss.toFixed(0)} MiB`],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(30)} ${v}\n`);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

await main();
