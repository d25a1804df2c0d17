// Fleet benchmark: a control plane (its own process, SQLite) and simulated nodes — real
// agents over the real protocol, with the simulated runtime — in this process.
// Measures heartbeats ingested per second, the control plane's CPU and RSS, placement of
// replicas onto the fleet, and the time from a batch of nodes failing to all of their
// replicas running elsewhere.
//
//   npm run bench:fleet -- --nodes 2000 --providers 100 --replicas 10000 --kill 50
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runFleet } from '../src/sim/index.js';

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '2000' },
    providers: { type: 'string', default: '100' },
    replicas: { type: 'string', default: '10000' },
    kill: { type: 'string', default: '50' },
  },
});
const NODES = Number(args.nodes);
const REPLICAS = Number(args.replicas);
const KILL = Number(args.kill);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'continuum-fleet-bench-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function procStats(pid: number) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(f[11]) + Number(f[12])) / 100;
  const rss = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  return { cpu, rss };
}

async function startServer(): Promise<{ child: ChildProcess; api: string; token: string }> {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'server',
      '--listen',
      '127.0.0.1:0',
      '--agent-listen',
      '127.0.0.1:0',
      '--data-dir',
      join(dir, 'cp'),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  await new Promise<void>((resolve) =>
    child.stdout!.on('data', (d) => {
      out += d;
      if (/Log in with/.test(out)) resolve();
    }),
  );
  const api = /listening on (\S+)/.exec(out)![1]!;
  const token = readFileSync(join(dir, 'cp', 'admin-token'), 'utf8').trim();
  return { child, api, token };
}

async function main() {
  const server = await startServer();
  const call = async (method: string, path: string, body?: unknown) => {
    const h = {
      authorization: `Bearer ${server.token}`,
      'content-type': Buffer.isBuffer(body) ? 'application/octet-stream' : 'application/json',
    };
    const r = await fetch(server.api + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
    return r.json() as Promise<any>;
  };
  const metric = async (name: string) =>
    Number(
      new RegExp(`^${name} (\\S+)$`, 'm').exec(await (await fetch(`${server.api}/metrics`)).text())?.[1] ?? 0,
    );

  process.stdout.write(
    `fleet benchmark: ${NODES} simulated nodes, ${args.providers} providers, ${REPLICAS} replicas, ${KILL} nodes killed\n`,
  );
  const t0 = performance.now();
  const fleet = await runFleet({
    api: server.api,
    token: server.token,
    nodes: NODES,
    providers: Number(args.providers),
    heartbeatIntervalMs: 5000,
  });
  const enrolSeconds = (performance.now() - t0) / 1000;

  // Heartbeats and control-plane load over a quiet 20 s window.
  const hb0 = await metric('continuum_agent_heartbeats_total');
  const s0 = procStats(server.child.pid!);
  await sleep(20_000);
  const hb1 = await metric('continuum_agent_heartbeats_total');
  const s1 = procStats(server.child.pid!);
  const heartbeats = (hb1 - hb0) / 20;
  const idleCpu = ((s1.cpu - s0.cpu) / 20) * 100;

  // Placement of replicas onto the fleet, until every replica runs.
  const disk = Buffer.from('bench');
  await call('POST', '/v1/apply', {
    documents: [
      { kind: 'Project', metadata: { name: 'bench' }, spec: {} },
      {
        kind: 'Image',
        metadata: { name: 'img', project: 'bench' },
        spec: { format: 'raw', files: { disk: { sha256: createHash('sha256').update(disk).digest('hex') } } },
      },
    ],
  });
  await call('PUT', '/v1/projects/bench/images/img/files/disk', disk);
  const workloads = Math.ceil(REPLICAS / 10);
  const p0 = performance.now();
  for (let i = 0; i < workloads; i += 200) {
    const docs = [];
    for (let k = i; k < Math.min(workloads, i + 200); k++)
      docs.push({
        kind: 'Workload',
        metadata: { name: `w${k}`, project: 'bench' },
        spec: {
          kind: 'vm',
          image: 'img',
          replicas: 10,
          resources: { vcpus: 1, memoryMiB: 1024 },
          placement: k % 2 ? { jurisdiction: 'EU' } : {},
        },
      });
    await call('POST', '/v1/apply', { documents: docs });
  }
  const running = async () => {
    let n = 0;
    let cursor: string | undefined;
    do {
      const page = await call(
        'GET',
        `/v1/projects/bench/workloads?phase=Running&limit=1000${cursor ? `&cursor=${cursor}` : ''}`,
      );
      n += page.items.length;
      cursor = page.nextCursor;
    } while (cursor);
    return n;
  };
  while ((await running()) < workloads) await sleep(500);
  const placeSeconds = (performance.now() - p0) / 1000;
  const busy = procStats(server.child.pid!);

  // Kill a batch of nodes that run replicas; time until all of those replicas run elsewhere.
  const all = (await call('GET', '/v1/instances?project=bench')).items as any[];
  const byNode = new Map<string, string[]>();
  for (const i of all) byNode.set(i.spec.node, [...(byNode.get(i.spec.node) ?? []), i.metadata.name]);
  const victims = [...byNode.keys()].slice(0, KILL);
  const affected = new Set(victims.flatMap((v) => byNode.get(v)!));
  const k0 = performance.now();
  await Promise.all(
    fleet.nodes.filter((n) => victims.some((v) => v.endsWith(`/${n.name}`))).map((n) => n.agent.stop()),
  );
  for (;;) {
    const now = (await call('GET', '/v1/instances?project=bench')).items as any[];
    const moved = now.filter(
      (i) => affected.has(i.metadata.name) && !victims.includes(i.spec.node) && i.status.phase === 'Running',
    );
    if (moved.length === affected.size) break;
    await sleep(500);
  }
  const failSeconds = (performance.now() - k0) / 1000;

  const rows: [string, string][] = [
    [
      'nodes enrolled',
      `${NODES} in ${enrolSeconds.toFixed(0)} s (${(NODES / enrolSeconds).toFixed(0)} per s)`,
    ],
    [
      'heartbeats/s ingested',
      `${heartbeats.toFixed(0)} (every node every 5 s: ${(NODES / 5).toFixed(0)} expected)`,
    ],
    ['control plane, idle fleet', `${idleCpu.toFixed(0)} % of one core, RSS ${s1.rss.toFixed(0)} MiB`],
    [
      'replicas placed and running',
      `${REPLICAS} in ${placeSeconds.toFixed(1)} s (${(REPLICAS / placeSeconds).toFixed(0)} per s, end to end)`,
    ],
    ['control plane after placement', `RSS ${busy.rss.toFixed(0)} MiB`],
    [
      'failure to replacement',
      `${affected.size} replicas of ${victims.length} killed nodes running elsewhere after ${failSeconds.toFixed(1)} s`,
    ],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(32)} ${v}\n`);
  await fleet.stop();
  server.child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

await main();
