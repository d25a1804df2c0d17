// Each `continuum dev` run names its bridge and namespaces with a prefix of its own and
// records itself (pid, prefix, data directory) in a file under /run, so that two runs on
// one machine do not clash and what a crashed run left — namespaces, the bridge, agent
// and QEMU processes, its temporary data — is found and removed by the next start.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { QemuRuntime, RuncRuntime } from '../runtimes/index.js';
import { destroyNetwork } from './netns.js';

const RUNS_DIR = '/run/continuum-dev';

export interface DevRun {
  pid: number;
  /** At most 6 characters, for interface names within 15. */
  prefix: string;
  nodes: number;
  dataDir: string;
  /** The data directory was made for this run (and goes with it). */
  temporary: boolean;
}

/** A prefix of its own for this run: `cd` and four hex digits. */
export function newPrefix(): string {
  return `cd${randomBytes(2).toString('hex')}`;
}

export async function recordRun(run: DevRun): Promise<void> {
  await fs.mkdir(RUNS_DIR, { recursive: true, mode: 0o700 });
  await fs.writeFile(join(RUNS_DIR, `${run.prefix}.json`), JSON.stringify(run));
}

export async function forgetRun(prefix: string): Promise<void> {
  await fs.rm(join(RUNS_DIR, `${prefix}.json`), { force: true });
}

/** Kills every process whose command line names a path inside `dir` (a run's agents and VMs). */
async function killProcessesUsing(dir: string): Promise<void> {
  // Inside it: `/tmp/dev` must not match what runs in `/tmp/dev2`.
  const inside = `${dir.replace(/\/+$/, '')}/`;
  for (const pid of await fs.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(inside)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {}
    }
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Removes what runs whose process is gone left behind; returns their prefixes. */
export async function sweepDeadRuns(): Promise<string[]> {
  let files: string[];
  try {
    files = await fs.readdir(RUNS_DIR);
  } catch {
    return [];
  }
  const swept: string[] = [];
  for (const f of files.filter((x) => x.endsWith('.json'))) {
    let run: DevRun;
    try {
      run = JSON.parse(await fs.readFile(join(RUNS_DIR, f), 'utf8'));
    } catch {
      continue;
    }
    if (alive(run.pid)) continue;
    // Its agents (orphaned when it died), its VMs (their QEMU outlives the agents), then
    // its network and data.
    await killProcessesUsing(run.dataDir);
    const agents = join(run.dataDir, 'agents');
    for (const node of await fs.readdir(agents).catch(() => [] as string[]))
      await removeInstances(join(agents, node));
    await destroyNetwork(run.prefix, run.nodes);
    if (run.temporary) await fs.rm(run.dataDir, { recursive: true, force: true });
    await forgetRun(run.prefix);
    swept.push(run.prefix);
  }
  return swept;
}

/** Every VM and container an agent of a run left in its data directory, with their networks. */
export async function removeInstances(agentDir: string): Promise<void> {
  for (const rt of [
    new QemuRuntime({ dir: join(agentDir, 'instances') }),
    new RuncRuntime({ dir: join(agentDir, 'containers'), stopTimeoutMs: 1000 }),
  ])
    for (const id of await rt.list()) await rt.delete(id).catch(() => undefined);
}
