// Agent memory benchmark: the resident memory (RSS, from /proc) of a real agent process,
// enrolled over TLS with a control plane on this machine, idle with no VM and then with
// one real QEMU VM it started; compared in the same run with a bare Node.js process and
// with the agent started with the CLI's modules loaded too (what `continuum agent` cost
// before the agent had its own entry point).
//
//   npm run bench:agent                      # idle windows of 20 s, then one VM
//   npm run bench:agent -- --idle 10 --no-vm
//
// The VM's own memory is QEMU's, in its own process; it is shown apart, not counted.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startControlPlane } from '../src/control-plane/index.js';
import { QemuRuntime } from '../src/runtimes/index.js';
import { http } from '../test/support/control-plane.js';
import { project, provider, site } from '../test/support/fixtures.js';
import { testImage, uploadTestImage, waitFor } from '../test/support/test-image.js';

const { values } = parseArgs({
  options: {
    idle: { type: 'string', default: '20' },
    'no-vm': { type: 'boolean', default: false },
  },
});
const IDLE_S = Number(values.idle);
if (!Number.isInteger(IDLE_S) || IDLE_S < 2)
  throw new Error(`--idle must be whole seconds ≥ 2, not '${values.idle}'`);
const BUDGET_MIB = 60;

const AGENT_BIN = fileURLToPath(new URL('../../bin/continuum-agent', import.meta.url));
const PROGRAM = fileURLToPath(new URL('../src/cli/program.js', import.meta.url));

/** VmRSS and VmHWM (peak) of a process, in MiB. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** RSS sampled once a second over the window: median, and the process's peak so far. */
async function sample(pid: number, seconds: number): Promise<{ rss: number; peak: number }> {
  const xs: number[] = [];
  for (let i = 0; i < seconds; i++) {
    await sleep(1000);
    xs.push(memory(pid).rss);
  }
  return { rss: median(xs), peak: memory(pid).peak };
}

const dir = mkdtempSync(join(tmpdir(), 'continuum-bench-agent-'));
const cp = await startControlPlane({
  listen: '127.0.0.1:0',
  agentListen: '127.0.0.1:0',
  dataDir: join(dir, 'cp'),
  logLevel: 'warn',
});
const admin = http(cp.url, cp.adminToken!);
const children: ChildProcess[] = [];

async function startAgent(
  name: string,
  nodeArgs: string[],
  env: Record<string, string> = {},
): Promise<ChildProcess> {
  const token = (await admin.post('/v1/providers/bench/sites/fra-1/join-tokens', {})).body.token;
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      AGENT_BIN,
      '--server',
      cp.gatewayUrl!,
      '--token',
      token,
      '--data-dir',
      join(dir, name),
      '--name',
      name,
      '--port-bind-address',
      '127.0.0.1',
      '--stop-timeout',
      '2000',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  children.push(child);
  let out = '';
  child.stderr!.on('data', (d) => {
    out += d;
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      if (String(d).includes('Continuum agent running as node')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`agent ${name} exited (${code}): ${out}`)));
  });
  await waitFor(`node ${name} ready`, async () => {
    const n = (await admin.get(`/v1/providers/bench/nodes/${name}`)).body;
    return n.status?.state === 'ready';
  });
  return child;
}

async function stop(child: ChildProcess) {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

const rows: Array<{ what: string; rss: number; peak: number }> = [];
try {
  const setup = await admin.post('/v1/apply', {
    documents: [provider('bench'), site('bench', 'fra-1'), project('bench')],
  });
  if (setup.status !== 200) throw new Error(setup.text);
  process.stderr.write(`[bench] idle windows of ${IDLE_S} s\n`);

  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
  children.push(bare);
  await sleep(1000);
  rows.push({ what: 'bare Node.js process (reference)', ...(await sample(bare.pid!, IDLE_S)) });
  await stop(bare);

  // As `continuum agent` ran before it had an entry point of its own: CLI loaded, no V8 flags.
  const noFlags = { CONTINUUM_AGENT_V8_FLAGS: '' };
  const withCli = await startAgent('with-cli', ['--import', PROGRAM], noFlags);
  rows.push({ what: 'agent + CLI modules, no V8 flags (before)', ...(await sample(withCli.pid!, IDLE_S)) });
  await stop(withCli);
  const plain = await startAgent('plain', [], noFlags);
  rows.push({ what: 'continuum-agent without lite mode', ...(await sample(plain.pid!, IDLE_S)) });
  await stop(plain);

  const lean = await startAgent('lean', []);
  rows.push({ what: 'continuum-agent (lite mode), idle, no VM', ...(await sample(lean.pid!, IDLE_S)) });

  let qemu: { rss: number; peak: number } | undefined;
  if (!values['no-vm']) {
    await uploadTestImage(admin, 'bench', testImage());
    const apply = await admin.post('/v1/apply', {
      documents: [
        {
          kind: 'Workload',
          metadata: { name: 'vm', project: 'bench' },
          spec: {
            kind: 'vm',
            image: 'testvm',
            replicas: 1,
            resources: { vcpus: 1, memoryMiB: 256 },
            placement: { node: 'bench/lean' },
          },
        },
      ],
    });
    if (apply.status !== 200) throw new Error(apply.text);
    process.stderr.write('[bench] booting one VM on the lean agent\n');
    const inst = await waitFor(
      'VM running',
      async () => {
        const i = (await admin.get('/v1/projects/bench/instances/vm-0')).body;
        return i.status?.phase === 'Running' && i;
      },
      180_000,
    );
    rows.push({ what: 'continuum-agent (lite mode), one VM running', ...(await sample(lean.pid!, IDLE_S)) });
    const pidFile = join(dir, 'lean', 'instances', inst.metadata.uid, 'qemu.pid');
    qemu = memory(Number(readFileSync(pidFile, 'utf8').trim()));
    await admin.del('/v1/projects/bench/workloads/vm');
    await waitFor(
      'VM gone',
      async () => (await admin.get('/v1/projects/bench/instances/vm-0')).status === 404,
      60_000,
    );
  }
  await stop(lean);

  const ref = rows[0]!.rss;
  const table = [
    '| process | RSS (median) | peak (VmHWM) | × bare Node.js | RSS within 60 MiB |',
    '|---|---:|---:|---:|:---:|',
    ...rows.map(
      (r) =>
        `| ${r.what} | ${r.rss.toFixed(1)} MiB | ${r.peak.toFixed(1)} MiB | ${(r.rss / ref).toFixed(2)} | ${r.what.startsWith('continuum-agent') ? (r.rss <= BUDGET_MIB ? 'yes' : 'NO') : ''} |`,
    ),
  ];
  if (qemu)
    table.push(
      `| (the VM's QEMU process, apart) | ${qemu.rss.toFixed(1)} MiB | ${qemu.peak.toFixed(1)} MiB | | |`,
    );
  process.stdout.write(`${table.join('\n')}\n`);
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await cp.close().catch(() => undefined);
  const rt = new QemuRuntime({ dir: join(dir, 'lean', 'instances') });
  for (const id of await rt.list().catch(() => [])) await rt.delete(id).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
