// Network namespaces as separate hosts for `continuum dev`: one bridge on the host with
// an address in a private subnet, and one namespace per node joined to it by a veth
// pair. Traffic stays between the host and namespaces made here.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function ip(...args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')}: ${stderr || (err as Error).message}`);
  }
}

async function ipQuiet(...args: string[]): Promise<void> {
  await run('ip', args).catch(() => undefined);
}

export interface DevNetwork {
  bridge: string;
  hostAddress: string;
  hosts: { name: string; netns: string; address: string }[];
}

export function canUseNamespaces(): boolean {
  return process.getuid?.() === 0 && process.platform === 'linux';
}

/** `prefix` is at most 6 characters so interface names stay within 15. */
export async function createNetwork(prefix: string, subnet: string, count: number): Promise<DevNetwork> {
  const base = subnet.split('.').slice(0, 3).join('.');
  const bridge = `${prefix}br`;
  await destroyNetwork(prefix, count);
  await ip('link', 'add', bridge, 'type', 'bridge');
  await ip('addr', 'add', `${base}.1/24`, 'dev', bridge);
  await ip('link', 'set', bridge, 'up');
  const hosts: DevNetwork['hosts'] = [];
  for (let i = 1; i <= count; i++) {
    const netns = `${prefix}-${i}`;
    const address = `${base}.${10 + i}`;
    await ip('netns', 'add', netns);
    await ip('link', 'add', `${prefix}${i}h`, 'type', 'veth', 'peer', 'name', `${prefix}${i}n`);
    await ip('link', 'set', `${prefix}${i}n`, 'netns', netns);
    await ip('link', 'set', `${prefix}${i}h`, 'master', bridge, 'up');
    await ip('-n', netns, 'addr', 'add', `${address}/24`, 'dev', `${prefix}${i}n`);
    await ip('-n', netns, 'link', 'set', `${prefix}${i}n`, 'up');
    await ip('-n', netns, 'link', 'set', 'lo', 'up');
    hosts.push({ name: `host-${i}`, netns, address });
  }
  return { bridge, hostAddress: `${base}.1`, hosts };
}

/** Removes what createNetwork made (also leftovers of an earlier run); never throws. */
export async function destroyNetwork(prefix: string, count: number): Promise<void> {
  for (let i = 1; i <= Math.max(count, 16); i++) {
    await ipQuiet('link', 'del', `${prefix}${i}h`);
    await ipQuiet('netns', 'del', `${prefix}-${i}`);
  }
  await ipQuiet('link', 'del', `${prefix}br`);
}

/** The /24 subnets (a.b.c.0) that addresses on this host's interfaces already use. */
export async function subnetsInUse(): Promise<Set<string>> {
  const { stdout } = await run('ip', ['-o', '-4', 'addr', 'show']);
  const used = new Set<string>();
  for (const m of stdout.matchAll(/inet (\d+\.\d+\.\d+)\.\d+\//g)) used.add(`${m[1]}.0`);
  return used;
}

/** The first of a.b.c.0, a.b.(c+1).0 … that no interface here uses. */
export async function freeSubnet(from: string): Promise<string> {
  const used = await subnetsInUse();
  const [a, b, c] = from.split('.').map(Number) as [number, number, number];
  for (let n = c; n < 256; n++) if (!used.has(`${a}.${b}.${n}.0`)) return `${a}.${b}.${n}.0`;
  throw new Error(`no free /24 subnet from ${from} on: give --subnet`);
}
