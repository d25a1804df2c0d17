// Finding real processes by their command line, for tests that count VMs.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QemuRuntime } from '../../src/runtimes/index.js';

export function pidsMatching(fragment: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (cmd.includes(fragment) && !/^\d+ \(.*\) Z/.test(stat)) out.push(Number(entry));
    } catch {}
  }
  return out;
}

const handedOut = new Set<number>();

/**
 * A free port below Linux's ephemeral range (32768+), for servers that must come back on
 * the same port after a restart: listeners on port 0 elsewhere in the suite cannot take it.
 */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    // Nothing listens on a port until its process starts: a port handed out before (etcd's,
    // while Patroni's is chosen) is still free, and must not be handed out twice.
    if (handedOut.has(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) {
      handedOut.add(port);
      return port;
    }
  }
}

/**
 * Ends agent processes outright and removes the VMs they leave behind (their QEMU
 * processes and files, under DIR/NAME/instances for each node NAME).
 */
export async function endAgentsAndVms(
  children: readonly ChildProcess[],
  dir: string,
  names: readonly string[],
): Promise<void> {
  for (const c of children)
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await once(c, 'exit');
    }
  for (const n of names) {
    const rt = new QemuRuntime({ dir: join(dir, n, 'instances') });
    for (const id of await rt.list().catch(() => [])) await rt.delete(id);
  }
}
