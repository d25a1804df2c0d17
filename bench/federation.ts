// The federation benchmark: one command, a whole control plane under a simulated fleet.
//
//   npm run bench                                  # 10,000 nodes, 200 providers, 100,000 replicas
//   npm run bench -- --nodes 2000 --providers 50 --replicas 20000 --kill 20
//   npm run bench -- --database-url postgres://postgres@127.0.0.1/postgres --cp-replicas 3
//
// With --database-url the control plane runs on PostgreSQL (in a database the benchmark
// creates there and drops after: the URL's user must be allowed to), as --cp-replicas
// processes whose gateways share the simulated agents; the raw ceiling is measured on
// PostgreSQL too. It then also reports the API's latency under 200 requests/s of mixed
// reads spread over the replicas and, with more than one, the time a replica takes to
// lead after the leader is killed.
//
// 1. The store's raw write ceiling (bench/ceiling.ts), measured first on the idle machine.
// 2. A control plane (`continuum server`, SQLite) in its own process.
// 3. A simulated fleet in another process (bench/sim-worker.ts): real agents, real
//    enrolment over TLS, the real WebSocket protocol and heartbeats, simulated VMs.
// 4. Heartbeats ingested and the control plane's CPU and RSS over a quiet window.
// 5. Workloads of mixed policies submitted through the API; placements/s and latency
//    from the control plane's own metrics; then until every replica reports Running.
// 6. A batch of nodes fails (their agents stop); time until all their replicas run elsewhere.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { DEFAULT_MAX_BACKLOG_BATCH } from '../src/controllers/index.js';
import { rawWriteCeiling } from './ceiling.js';
import { benchOptions, benchPolicies, benchResources, httpGet, POLICY_MIXES } from './common.js';

const { numbers: args, text } = benchOptions(
  {
    kill: { type: 'string', default: '50' },
    'heartbeat-interval': { type: 'string', default: '5000' },
    'database-url': { type: 'string' },
    'cp-replicas': { type: 'string', default: '1' },
  },
  ['database-url'],
);
const DATABASE_URL = text['database-url'];
const CP_REPLICAS = args['cp-replicas']!;
/** PostgreSQL runs on this machine: its processes' CPU can be read from /proc. */
const LOCAL_POSTGRES =
  DATABASE_URL !== undefined &&
  ['', 'localhost', '127.0.0.1', '[::1]'].includes(new URL(DATABASE_URL).hostname);
if (CP_REPLICAS < 1 || (CP_REPLICAS > 1 && !DATABASE_URL))
  throw new Error('--cp-replicas: at least 1, and more than one needs --database-url (PostgreSQL)');
const NODES = args.nodes!;
const PROVIDERS = args.providers!;
const REPLICAS = args.replicas!;
const PER = args['per-workload']!;
const KILL = args.kill!;
const HEARTBEAT_MS = args['heartbeat-interval']!;

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const WORKER = fileURLToPath(new URL('./sim-worker.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'continuum-bench-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
let stopping = false;

/** CPU seconds (utime + stime) in a /proc stat line. */
function cpuSeconds(stat: string): number {
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function procStats(pid: number) {
  const cpu = cpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  // The main thread alone (its task id is the process id): the control plane's writing
  // thread — how long it ran, and how long it was ready to run but waited for a CPU.
  const main = cpuSeconds(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8'));
  const [, waitNs] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  const rss = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  return { cpu, main, mainWait: waitNs! / 1e9, rss, at: performance.now() };
}
/** The machine's CPU time so far (s, all cores): busy, and stolen by the hypervisor. */
function machineStats() {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n', 1)[0]!
    .split(/\s+/)
    .slice(1)
    .map((v) => Number(v) / 100);
  return {
    busy: user! + nice! + system! + irq! + softirq!,
    idle: idle! + iowait!,
    steal: steal!,
    at: performance.now(),
  };
}

/** CPU seconds of each PostgreSQL process on this machine (the benchmark's server is local). */
function postgresCpu(): Map<string, number> {
  const cpu = new Map<string, number>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres')
        cpu.set(pid, cpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8')));
    } catch {
      // gone meanwhile
    }
  }
  return cpu;
}

/**
 * PostgreSQL's CPU seconds between two readings: of the processes at the second, what
 * each ran since the first (all of it for one started since). A connection closed in
 * between is left out (its time unknown), so this errs low.
 */
function postgresCpuBetween(a: Map<string, number>, b: Map<string, number>): number {
  let sum = 0;
  for (const [pid, cpu] of b) sum += cpu - (a.get(pid) ?? 0);
  return sum;
}

/** A share of the machine's CPU time between two readings, in percent. */
const share = (
  a: ReturnType<typeof machineStats>,
  b: ReturnType<typeof machineStats>,
  of: 'busy' | 'steal',
) => {
  const all = b.busy + b.idle + b.steal - (a.busy + a.idle + a.steal);
  return (((b[of] - a[of]) / all) * 100).toFixed(0);
};

const cpuShare = (
  a: ReturnType<typeof procStats>,
  b: ReturnType<typeof procStats>,
  of: 'cpu' | 'main' | 'mainWait' = 'cpu',
) => ((b[of] - a[of]) / ((b.at - a.at) / 1000)) * 100;

/** A database of the benchmark's own on the given server (dropped at the end). */
async function scratchDatabase(url: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `continuum_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(url);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

interface Server {
  child: ChildProcess;
  name: string;
  api: string;
  gateway: string;
  token: string;
}

async function startServer(i: number, databaseUrl?: string): Promise<Server> {
  const name = `r${i}`;
  const child = spawn(
    process.execPath,
    // e.g. CONTINUUM_BENCH_CP_NODE_OPTIONS=--cpu-prof to profile the control plane
    [
      ...(process.env.CONTINUUM_BENCH_CP_NODE_OPTIONS ?? '').split(' ').filter(Boolean),
      CLI,
      'server',
      '--listen',
      '127.0.0.1:0',
      '--agent-listen',
      '127.0.0.1:0',
      '--data-dir',
      join(dir, `cp${i}`),
      '--kubernetes-listen',
      '',
      ...(databaseUrl ? ['--database-url', databaseUrl, '--replica-name', name] : []),
      // Replicas share the federation CA's key (a copy in production).
      ...(i > 0 ? ['--ca-key-file', join(dir, 'cp0', 'ca.key')] : []),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`continuum server exited (${code})`)));
    child.stdout!.on('data', (d) => {
      out += d;
      if (/Log in with/.test(out)) resolve();
    });
  });
  const api = /listening on (\S+)/.exec(out)![1]!;
  const gateway = /agents: +(\S+)/.exec(out)![1]!;
  const token = readFileSync(join(dir, 'cp0', 'admin-token'), 'utf8').trim();
  return { child, name, api, gateway, token };
}

/** The p50 and p99 of a list of milliseconds. */
function percentiles(ms: number[]): { p50: number; p99: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99) };
}

function startSimulator(): Promise<ChildProcess> {
  const child = fork(WORKER, [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // e.g. CONTINUUM_BENCH_SIM_NODE_OPTIONS=--cpu-prof to profile the simulator
    execArgv: (process.env.CONTINUUM_BENCH_SIM_NODE_OPTIONS ?? '').split(' ').filter(Boolean),
  });
  child.once('exit', (code, signal) => {
    if (!stopping) {
      log(`the simulator exited early (${signal ?? code})`);
      process.exit(1);
    }
  });
  return new Promise((resolve) => child.once('message', () => resolve(child)));
}

function reply<T>(child: ChildProcess, type: string, onOther?: (m: any) => void): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: any) => {
      if (m.type !== type) return onOther?.(m);
      child.off('message', on);
      resolve(m);
    };
    child.on('message', on);
  });
}

async function main() {
  process.stdout.write(
    `federation benchmark: ${NODES} simulated nodes, ${PROVIDERS} providers, ${REPLICAS} replicas ` +
      `(${PER} per workload), ${KILL} nodes killed, heartbeats every ${HEARTBEAT_MS} ms\n`,
  );
  const db = DATABASE_URL ? await scratchDatabase(DATABASE_URL) : undefined;
  log(`measuring the raw write ceiling of the store (${db ? 'PostgreSQL' : 'SQLite'})`);
  const ceiling = await rawWriteCeiling(
    dir,
    Math.min(REPLICAS, 50_000),
    PER,
    DEFAULT_MAX_BACKLOG_BATCH,
    db?.url,
  );

  const servers: Server[] = [];
  for (let i = 0; i < CP_REPLICAS; i++) servers.push(await startServer(i, db?.url));
  // The first to start leads (the placement figures are its metrics).
  const server = servers[0]!;
  const cp = server.child.pid!;
  const headers = { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' };
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(server.api + path, {
      method,
      headers: Buffer.isBuffer(body) ? { ...headers, 'content-type': 'application/octet-stream' } : headers,
      body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
    const json = (await r.json()) as any;
    if (!r.ok) throw new Error(`${method} ${path}: ${json?.error?.message ?? r.status}`);
    return json;
  };
  const metricsText = async (s: Server) => (await fetch(`${s.api}/metrics`, { headers })).text();
  const metricsOf = async (s: Server) => {
    const text = await metricsText(s);
    return (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  };
  const metrics = () => metricsOf(server);
  /** A metric summed over every replica. */
  const total = async (name: string) => {
    let n = 0;
    for (const s of servers) n += (await metricsOf(s))(name);
    return n;
  };

  /**
   * API reads the replicas answered so far, and how many of them within 50 ms by their own
   * clock (from request to response; not the time a request waited to be read); and their
   * full garbage collections so far (each one's marking threads take CPU the requests wait for).
   */
  const answered = async () => {
    let all = 0;
    let fast = 0;
    let fullGcs = 0;
    for (const s of servers) {
      const text = await metricsText(s);
      for (const m of text.matchAll(/^continuum_http_request_duration_seconds_bucket\{(.*)\} (\S+)$/gm)) {
        if (!m[1]!.includes('method="GET"') || m[1]!.includes('route="/metrics"')) continue;
        if (m[1]!.includes('le="+Inf"')) all += Number(m[2]);
        else if (m[1]!.includes('le="0.05"')) fast += Number(m[2]);
      }
      fullGcs += Number(
        /^continuum_nodejs_gc_duration_seconds_count\{kind="major"\} (\S+)$/m.exec(text)?.[1] ?? 0,
      );
    }
    return { all, fast, fullGcs };
  };

  // ---- the fleet ----------------------------------------------------------------
  const sim = await startSimulator();
  const t0 = performance.now();
  let lastLog = 0;
  sim.send({
    type: 'start',
    api: server.api,
    token: server.token,
    nodes: NODES,
    providers: PROVIDERS,
    heartbeatIntervalMs: HEARTBEAT_MS,
    ...(servers.length > 1 ? { gateways: servers.map((s) => s.gateway) } : {}),
  });
  await reply(sim, 'started', (m) => {
    if (m.type === 'progress' && performance.now() - lastLog > 5000) {
      lastLog = performance.now();
      log(`enrolled ${m.started}/${m.total} nodes`);
    }
  });
  for (;;) {
    const connected = await total('continuum_agents_connected');
    if (connected >= NODES) break;
    await sleep(500);
  }
  const enrolSeconds = (performance.now() - t0) / 1000;
  log(`${NODES} nodes enrolled and connected in ${enrolSeconds.toFixed(0)} s; waiting for them to be ready`);
  // Node health marks a connected node ready a moment later (a write each): placement is
  // measured on a fleet that is ready, not while the fleet still changes. Every replica
  // counts every committed event, so one replica's count is the federation's.
  for (;;) {
    const ready = (await metrics())('continuum_events_total\\{kind="Node",action="ready"\\}');
    if (ready >= NODES) break;
    await sleep(500);
  }
  const readySeconds = (performance.now() - t0) / 1000;
  log(`${NODES} nodes ready ${readySeconds.toFixed(0)} s after the start; quiet window of 20 s`);

  // ---- heartbeats over a quiet window ---------------------------------------------
  await sleep(HEARTBEAT_MS);
  const perReplica = async () =>
    Promise.all(servers.map(async (s) => (await metricsOf(s))('continuum_agent_heartbeats_total')));
  const hb0 = await perReplica();
  const q0 = procStats(cp);
  const s0 = procStats(sim.pid!);
  await sleep(20_000);
  const hb1 = await perReplica();
  const q1 = procStats(cp);
  const s1 = procStats(sim.pid!);
  const quietSeconds = (q1.at - q0.at) / 1000;
  const heartbeatsPer = servers.map((_, i) => (hb1[i]! - hb0[i]!) / quietSeconds);
  const heartbeats = heartbeatsPer.reduce((a, b) => a + b, 0);

  // ---- placement -------------------------------------------------------------------
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
  const workloads = Math.ceil(REPLICAS / PER);
  const policy = benchPolicies();
  log(`submitting ${workloads} workloads`);
  const placed0 = (await metrics())('continuum_placements_total');
  const p0 = procStats(cp);
  const sp0 = procStats(sim.pid!);
  const m0 = machineStats();
  const self0 = procStats(process.pid);
  const pg0 = LOCAL_POSTGRES ? postgresCpu() : new Map<string, number>();
  const submitted = (async () => {
    for (let i = 0; i < workloads; i += 500) {
      const documents = [];
      for (let k = i; k < Math.min(workloads, i + 500); k++)
        documents.push({
          kind: 'Workload',
          metadata: { name: `w${k}`, project: 'bench' },
          spec: {
            kind: 'vm',
            image: 'img',
            replicas: Math.min(PER, REPLICAS - k * PER),
            resources: benchResources(k),
            placement: policy(k),
          },
        });
      await call('POST', '/v1/apply', { documents });
    }
    return performance.now();
  })();
  let placedAt = 0;
  let last = { n: 0, at: performance.now() };
  for (let n = 0; ; ) {
    // Not too often: a scrape costs the control plane a count of every table; within two
    // seconds of the end at the rate so far, ten times a second, so that the end is known
    // to a tenth of a second (a second was a seventh of a 7 s placement).
    const rate = n / ((performance.now() - p0.at) / 1000);
    await sleep(n > 0 && (REPLICAS - n) / rate < 2 ? 100 : 1000);
    n = (await metrics())('continuum_placements_total') - placed0;
    if (n !== last.n) last = { n, at: performance.now() };
    if (n >= REPLICAS) {
      placedAt = performance.now();
      break;
    }
    if (performance.now() - last.at > 30_000) {
      log(`placement stalled at ${n} of ${REPLICAS} replicas`);
      break;
    }
  }
  const submittedAt = await submitted;
  const p1 = procStats(cp);
  const sp1 = procStats(sim.pid!);
  const m1 = machineStats();
  const self1 = procStats(process.pid);
  const pg1 = LOCAL_POSTGRES ? postgresCpu() : new Map<string, number>();
  const m = await metrics();
  const placed = m('continuum_placements_total') - placed0;
  const replaced = m('continuum_events_total\\{kind="Instance",action="replace"\\}') || 0;
  const placeSeconds = ((placedAt || last.at) - p0.at) / 1000;
  const q = (name: string, quantile: string) => m(`${name}\\{quantile="${quantile}"\\}`) * 1000;

  log('waiting for every workload to report Running');
  const running = async () => {
    let count = 0;
    let cursor: string | undefined;
    do {
      const page = await call(
        'GET',
        `/v1/projects/bench/workloads?phase=Running&limit=1000${cursor ? `&cursor=${cursor}` : ''}`,
      );
      count += page.items.length;
      cursor = page.nextCursor;
    } while (cursor);
    return count;
  };
  // Like the placement wait, it gives up after 30 s without progress (a rule the fleet
  // cannot meet leaves workloads short of Running for good).
  let runningCount = 0;
  for (let seen = { n: -1, at: performance.now() }; ; await sleep(1000)) {
    runningCount = await running();
    if (runningCount >= workloads) break;
    if (runningCount !== seen.n) seen = { n: runningCount, at: performance.now() };
    else if (performance.now() - seen.at > 30_000) {
      log(`stopped waiting: ${runningCount} of ${workloads} workloads Running, none more for 30 s`);
      break;
    }
  }
  const runningSeconds = (performance.now() - p0.at) / 1000;
  const busy = procStats(cp);

  // ---- the API under 200 requests/s of mixed reads, spread over the replicas ------------
  log('API latency: 200 requests/s of reads and lists for 20 s');
  const latencies: number[] = [];
  let apiErrors = 0;
  const reads = [
    (k: number) => `/v1/projects/bench/workloads/w${k}`,
    (k: number) => `/v1/instances?project=bench&workload=w${k}&limit=100`,
    () => '/v1/nodes?limit=100',
    () => '/v1/projects/bench/workloads?limit=100',
    () => '/v1/providers?limit=50',
    (k: number) => `/v1/projects/bench/instances/w${k}-0`,
  ];
  // What each read costs alone (one at a time, the fleet still heartbeating): where the
  // time under load goes.
  const alone: [string, number][] = [];
  const client = new Agent({ keepAlive: true });
  for (const read of reads) {
    const ms: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t = performance.now();
      await httpGet(servers[0]!.api + read(Math.floor(Math.random() * workloads)), headers, client);
      ms.push(performance.now() - t);
    }
    alone.push([read(0).replace(/w0/g, 'W'), percentiles(ms).p50]);
  }
  log(`each read alone, p50: ${alone.map(([p, ms]) => `${p} ${ms.toFixed(1)} ms`).join('; ')}`);
  const inflight: Promise<void>[] = [];
  // Where the slow ones were: by read, and whether they came together (a stall).
  const byRead = new Map<string, number[]>();
  const slowest: [number, number, string][] = [];
  await metrics(); // resets the event-loop delay the next scrape reports
  const answered0 = await answered();
  const w0 = { cp: procStats(cp), self: procStats(process.pid), sim: procStats(sim.pid!), m: machineStats() };
  const a0 = performance.now();
  const opened = new Date().toISOString();
  for (let i = 0; performance.now() - a0 < 20_000; i++) {
    const due = a0 + i * 5;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const s = servers[i % servers.length]!;
    const read = reads[i % reads.length]!;
    const path = read(Math.floor(Math.random() * workloads));
    const t = performance.now();
    inflight.push(
      httpGet(s.api + path, headers, client)
        .then((status) => {
          if (status !== 200) return void apiErrors++;
          const ms = performance.now() - t;
          latencies.push(ms);
          const name = read(0).replace(/w0/g, 'W');
          const list = byRead.get(name) ?? [];
          list.push(ms);
          byRead.set(name, list);
          slowest.push([ms, (t - a0) / 1000, name]);
        })
        .catch(() => {
          apiErrors++;
        }),
    );
  }
  await Promise.all(inflight);
  client.destroy();
  const w1 = { cp: procStats(cp), self: procStats(process.pid), sim: procStats(sim.pid!), m: machineStats() };
  const apiRate = (latencies.length + apiErrors) / ((performance.now() - a0) / 1000);
  const api = percentiles(latencies);
  const lag = (await metrics())('continuum_nodejs_eventloop_lag_max_seconds');
  const answered1 = await answered();
  const within50 = ((answered1.fast - answered0.fast) / Math.max(1, answered1.all - answered0.all)) * 100;
  log(
    `under load, p99 by read: ${[...byRead].map(([p, ms]) => `${p} ${percentiles(ms).p99.toFixed(0)} ms`).join('; ')}`,
  );
  log(
    `slowest: ${slowest
      .sort((a, b) => b[0] - a[0])
      .slice(0, 8)
      .map(([ms, at]) => `${ms.toFixed(0)} ms at ${at.toFixed(1)} s`)
      .join(
        ', ',
      )} of the window opened at ${opened}; the control plane's event loop stalled up to ${(lag * 1000).toFixed(0)} ms`,
  );

  // ---- a batch of nodes fails -------------------------------------------------------
  log(`stopping the agents of ${KILL} nodes that run replicas`);
  const k0 = performance.now();
  sim.send({ type: 'kill', count: KILL });
  const { nodes: victims } = await reply<{ nodes: string[] }>(sim, 'killed');
  const affected = new Map<string, string>(); // instance → workload
  for (const v of victims)
    for (const i of (await call('GET', `/v1/instances?limit=1000&node=${encodeURIComponent(v)}`)).items)
      affected.set(i.metadata.name, i.spec.workload ?? i.metadata.name.replace(/-\d+$/, ''));
  const dead = new Set(victims);
  const affectedWorkloads = [...new Set(affected.values())];
  let failSeconds = Number.NaN;
  for (;;) {
    let healed = 0;
    for (let i = 0; i < affectedWorkloads.length; i += 16) {
      const pages = await Promise.all(
        affectedWorkloads
          .slice(i, i + 16)
          .map((w) => call('GET', `/v1/instances?limit=1000&project=bench&workload=${w}`)),
      );
      for (const p of pages)
        for (const inst of p.items)
          if (
            affected.has(inst.metadata.name) &&
            !dead.has(inst.spec.node) &&
            inst.status.phase === 'Running'
          )
            healed++;
    }
    if (healed === affected.size) {
      failSeconds = (performance.now() - k0) / 1000;
      break;
    }
    if (performance.now() - k0 > 120_000) {
      log(`only ${healed} of ${affected.size} replicas were replaced within 120 s`);
      break;
    }
    await sleep(500);
  }

  // ---- rules that change after placement (issue 11's scale figures) --------------------
  const pagesOf = async (path: string): Promise<any[]> => {
    const out: any[] = [];
    let cursor: string | undefined;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const page = await call('GET', `${path}${sep}limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      out.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return out;
  };
  const siteCountry = new Map<string, string>();
  for (const site of await pagesOf('/v1/sites'))
    siteCountry.set(`${site.metadata.provider}/${site.metadata.name}`, site.spec.country);
  const nodeCountry = new Map<string, string>();
  for (const n of await pagesOf('/v1/nodes'))
    nodeCountry.set(
      `${n.metadata.provider}/${n.metadata.name}`,
      siteCountry.get(`${n.metadata.provider}/${n.spec.site}`)!,
    );
  /**
   * The time from a rule change until every watched replica was re-checked — moved (its
   * instance re-bound: the `replace` audit events, read from /metrics) or flagged out of
   * policy — and until every affected workload is Running again (or only flagged ones
   * are not). Only the workloads that are not Running are listed (?phase=), so the
   * measurement does not load the control plane it measures.
   */
  const untilCompliant = async (
    watched: Map<string, string>, // instance → workload
    from: number,
    replaced0: number,
  ): Promise<{ recheck: number; settled: number; flagged: number }> => {
    const names = new Set(watched.values());
    const notRunning = async () => {
      const out: any[] = [];
      for (const phase of ['Pending', 'Scheduling', 'Degraded', 'Failed'])
        out.push(...(await pagesOf(`/v1/projects/bench/workloads?phase=${phase}`)));
      return out.filter((w) => names.has(w.metadata.name));
    };
    let recheck = Number.NaN;
    for (let round = 0; ; round++) {
      const now = (performance.now() - from) / 1000;
      const moved = (await replacedNow()) - replaced0;
      const waiting = round % 4 === 0 || !Number.isNaN(recheck) ? await notRunning() : undefined;
      const flagged = (waiting ?? []).reduce(
        (n, w) => n + (w.status.outOfPolicy ?? []).filter((o: any) => watched.has(o.replica)).length,
        0,
      );
      if (Number.isNaN(recheck) && moved + flagged >= watched.size) recheck = now;
      if (!Number.isNaN(recheck) && waiting?.every((w) => w.status.outOfPolicy))
        return { recheck, settled: now, flagged };
      if (now > 180) {
        log(`not settled within 180 s (${moved} moved, ${flagged} flagged of ${watched.size})`);
        return { recheck, settled: Number.NaN, flagged };
      }
      await sleep(250);
    }
  };
  const replacedNow = async () =>
    (await metrics())('continuum_events_total\\{kind="Instance",action="replace"\\}') || 0;

  // A provider loses what its tenants' rules require: EU control (mixes 1 and 4 require
  // it — jurisdiction EU with EU control, and minimum sovereignty eu-controlled).
  const all = await pagesOf('/v1/instances?project=bench');
  const wIndex = (w: string) => Number(w.slice(1));
  const needsControl = (w: string) => [1, 4].includes(wIndex(w) % POLICY_MIXES);
  const perProvider = new Map<string, Map<string, string>>();
  for (const inst of all) {
    if (!needsControl(inst.spec.workload)) continue;
    const prov = inst.spec.node.split('/')[0];
    const m = perProvider.get(prov) ?? new Map<string, string>();
    m.set(inst.metadata.name, inst.spec.workload);
    perProvider.set(prov, m);
  }
  const [loser, losing] = [...perProvider.entries()].sort((a, b) => b[1].size - a[1].size)[0]!;
  log(`provider ${loser} loses EU control: ${losing.size} replicas must move`);
  const prov = await call('GET', `/v1/providers/${loser}`);
  const replacedBefore = await replacedNow();
  const c0 = performance.now();
  await call('PUT', `/v1/providers/${loser}`, {
    metadata: { name: loser },
    spec: { ...prov.spec, euControlled: false },
  });
  const control = await untilCompliant(losing, c0, replacedBefore);
  const stillThere = (await pagesOf('/v1/instances?project=bench')).filter(
    (i) => losing.has(i.metadata.name) && i.spec.node.startsWith(`${loser}/`),
  ).length;
  if (stillThere !== control.flagged)
    log(`${stillThere} replicas still on ${loser}, ${control.flagged} flagged`);

  // A policy change on 1,000 workloads: residency to two other countries.
  const residency = [...new Set(all.map((i) => i.spec.workload))]
    .filter((w) => wIndex(w) % POLICY_MIXES === 0)
    .slice(0, 1000);
  const target = ['FR', 'ES'];
  const changing = new Map<string, string>();
  for (const inst of all)
    if (residency.includes(inst.spec.workload) && !target.includes(nodeCountry.get(inst.spec.node)!))
      changing.set(inst.metadata.name, inst.spec.workload);
  log(
    `${residency.length} workloads change residency to ${target.join('+')}: ${changing.size} replicas must move`,
  );
  const specs = new Map(
    (await pagesOf('/v1/projects/bench/workloads')).map((w) => [w.metadata.name, w.spec]),
  );
  const docs = residency.map((w) => ({
    kind: 'Workload',
    metadata: { name: w, project: 'bench' },
    spec: { ...specs.get(w), placement: { ...specs.get(w).placement, countries: target } },
  }));
  const replacedBefore2 = await replacedNow();
  const r0 = performance.now();
  for (let i = 0; i < docs.length; i += 500)
    await call('POST', '/v1/apply', { documents: docs.slice(i, i + 500) });
  const policyChange = await untilCompliant(changing, r0, replacedBefore2);
  const outside = (await pagesOf('/v1/instances?project=bench')).filter(
    (i) => changing.has(i.metadata.name) && !target.includes(nodeCountry.get(i.spec.node)!),
  ).length;
  if (outside !== policyChange.flagged)
    log(`${outside} replicas still outside ${target}, ${policyChange.flagged} flagged`);

  // ---- report ---------------------------------------------------------------------------
  const rate = placed / placeSeconds;
  const ratio = (rate / ceiling) * 100;
  const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const rows: [string, string, string][] = [
    [
      'nodes enrolled and connected',
      `${NODES} in ${enrolSeconds.toFixed(0)} s (${(NODES / enrolSeconds).toFixed(0)}/s); all ready after ${readySeconds.toFixed(0)} s`,
      '',
    ],
    [
      'heartbeats/s ingested',
      `${heartbeats.toFixed(0)} (${NODES} nodes every ${HEARTBEAT_MS / 1000} s: ${((NODES * 1000) / HEARTBEAT_MS).toFixed(0)} sent)`,
      '',
    ],
    [
      'control plane, idle fleet',
      `${cpuShare(q0, q1).toFixed(0)} % of one core, RSS ${q1.rss.toFixed(0)} MiB`,
      '',
    ],
    [
      'simulator, idle fleet',
      `${cpuShare(s0, s1).toFixed(0)} % of one core, RSS ${s1.rss.toFixed(0)} MiB`,
      '',
    ],
    [
      'replicas placed',
      `${placed} of ${REPLICAS} in ${placeSeconds.toFixed(1)} s (workloads submitted in ${((submittedAt - p0.at) / 1000).toFixed(1)} s)`,
      '',
    ],
    ['re-placed while placing', `${replaced} (replicas moved because a node looked failed)`, ''],
    ['placements/s', rate.toFixed(0), `>= 3000: ${mark(rate >= 3000)}`],
    [
      'raw write ceiling',
      `${ceiling.toFixed(0)} rows/s (instance + event, ${PER * DEFAULT_MAX_BACKLOG_BATCH} per transaction)`,
      '',
    ],
    ['placements / raw ceiling', `${ratio.toFixed(1)} %`, `>= 50 %: ${mark(ratio >= 50)}`],
    [
      'placement latency p50 / p99',
      `${q('continuum_placement_seconds', '0.5').toFixed(2)} ms / ${q('continuum_placement_seconds', '0.99').toFixed(2)} ms (controller pass to commit, per workload pass)`,
      '',
    ],
    [
      'queue wait p50 / p99',
      `${q('continuum_placement_queue_seconds', '0.5').toFixed(0)} ms / ${q('continuum_placement_queue_seconds', '0.99').toFixed(0)} ms (workload waiting for the controller)`,
      '',
    ],
    [
      'control plane while placing',
      `${cpuShare(p0, p1).toFixed(0)} % of one core; its main thread ran ${cpuShare(p0, p1, 'main').toFixed(0)} % ` +
        `of the time and waited for a CPU ${cpuShare(p0, p1, 'mainWait').toFixed(0)} %`,
      '',
    ],
    ['simulator while placing', `${cpuShare(sp0, sp1).toFixed(0)} % of one core`, ''],
    ...(LOCAL_POSTGRES
      ? [
          [
            'PostgreSQL while placing',
            `${((postgresCpuBetween(pg0, pg1) / ((p1.at - p0.at) / 1000)) * 100).toFixed(0)} % of one core`,
            '',
          ] as [string, string, string],
        ]
      : []),
    ['this benchmark while placing', `${cpuShare(self0, self1).toFixed(0)} % of one core`, ''],
    [
      'machine while placing',
      `${share(m0, m1, 'busy')} % of its CPU time busy, ${share(m0, m1, 'steal')} % taken by the hypervisor (steal)`,
      '',
    ],
    runningCount >= workloads
      ? ['every replica Running', `${runningSeconds.toFixed(1)} s after the first submission`, '']
      : [
          'workloads Running',
          `${runningCount} of ${workloads} (the rest stalled), ${runningSeconds.toFixed(1)} s after the first submission`,
          '',
        ],
    [
      'control plane RSS after placement',
      `${busy.rss.toFixed(0)} MiB`,
      `<= 1536 MiB: ${mark(busy.rss <= 1536)}`,
    ],
    [
      'failure to replacement',
      `${affected.size} replicas of ${victims.length} killed nodes running elsewhere after ${failSeconds.toFixed(1)} s`,
      `<= 30 s: ${mark(failSeconds <= 30)}`,
    ],
    [
      'provider loses EU control: re-checked',
      `${losing.size} replicas moved or flagged after ${control.recheck.toFixed(1)} s (${control.flagged} flagged; ${((losing.size - control.flagged) / control.recheck).toFixed(0)} moves/s)`,
      `<= 10 s: ${mark(control.recheck <= 10)}`,
    ],
    [
      'provider loses EU control: running',
      `every affected workload Running and compliant after ${control.settled.toFixed(1)} s`,
      '',
    ],
    [
      `residency change, ${residency.length.toLocaleString('en')} workloads: re-checked`,
      `${changing.size} replicas moved or flagged after ${policyChange.recheck.toFixed(1)} s (${policyChange.flagged} flagged; ${((changing.size - policyChange.flagged) / policyChange.recheck).toFixed(0)} moves/s)`,
      `<= 10 s: ${mark(policyChange.recheck <= 10)}`,
    ],
    [
      `residency change, ${residency.length.toLocaleString('en')} workloads: running`,
      `every changed workload Running and compliant after ${policyChange.settled.toFixed(1)} s`,
      '',
    ],
  ];
  rows.push([
    'API latency p50 / p99',
    `${api.p50.toFixed(1)} ms / ${api.p99.toFixed(1)} ms at ${apiRate.toFixed(0)} requests/s of reads and lists over ${servers.length} replica(s) (${apiErrors} failed)`,
    `p99 <= 50 ms: ${mark(api.p99 <= 50)}`,
  ]);
  rows.push([
    'API reads within 50 ms, server side',
    `${within50.toFixed(2)} % (the replicas' own request-to-response time, without the wait to be read)`,
    '',
  ]);
  rows.push([
    'full GCs during the API window',
    `${answered1.fullGcs - answered0.fullGcs} over ${servers.length} replica(s) (mark-compact collections of the old generation)`,
    '',
  ]);
  rows.push([
    'during the API window',
    `control plane ${cpuShare(w0.cp, w1.cp).toFixed(0)} % of one core (its main thread ran ${cpuShare(w0.cp, w1.cp, 'main').toFixed(0)} % ` +
      `of the time and waited for a CPU ${cpuShare(w0.cp, w1.cp, 'mainWait').toFixed(0)} %), simulator ${cpuShare(w0.sim, w1.sim).toFixed(0)} %, ` +
      `load client ${cpuShare(w0.self, w1.self).toFixed(0)} %; machine ${share(w0.m, w1.m, 'busy')} % busy`,
    '',
  ]);
  rows.push(['each read alone, p50', alone.map(([p, ms]) => `${p} ${ms.toFixed(1)} ms`).join('; '), '']);
  if (servers.length > 1) {
    // The leader dies without a word; another replica must take over.
    log(`killing the leader ${server.name}`);
    const k = performance.now();
    server.child.kill('SIGKILL');
    const other = servers[1]!;
    let took = Number.NaN;
    while (performance.now() - k < 60_000) {
      const r = await fetch(`${other.api}/v1/replicas`, { headers }).then(
        (x) => x.json() as any,
        () => undefined,
      );
      if (r?.leader && r.leader.name !== server.name) {
        took = (performance.now() - k) / 1000;
        break;
      }
      await sleep(100);
    }
    rows.push([
      'takeover after the leader is killed',
      `${took.toFixed(1)} s (lease 10 s, renewed every 2 s)`,
      `<= 15 s: ${mark(took <= 15)}`,
    ]);
  }
  process.stdout.write(
    `store: ${db ? 'PostgreSQL' : 'SQLite'}, ${servers.length} control-plane replica(s); heartbeats/s per replica: ${heartbeatsPer.map((h, i) => `${servers[i]!.name} ${h.toFixed(0)}`).join(', ')}\n`,
  );
  for (const [k, v, t] of rows) process.stdout.write(`${k.padEnd(36)} ${v}${t ? `   [${t}]` : ''}\n`);
  stopping = true;
  sim.disconnect();
  for (const s of servers) {
    if (s.child.exitCode !== null || s.child.signalCode !== null) continue;
    s.child.kill('SIGTERM');
    await new Promise((r) => s.child.once('exit', r));
  }
  await db?.drop();
  await new Promise((r) => (sim.exitCode === null ? sim.once('exit', r) : r(null)));
  rmSync(dir, { recursive: true, force: true });
}

await main();
