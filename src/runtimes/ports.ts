// What the QEMU and runc runtimes share: an instance's directory and its meta.json, and
// host ports for forwarded guest ports (the ones it had while still free, else new ones).
import { promises as fs } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { PortMapping } from './runtime.js';

/** Instance ids (uids) as directory names: nothing that could leave the directory. */
export const ID_PATTERN = /^[a-zA-Z0-9-]{1,64}$/;

export function instanceDir(root: string, id: string): string {
  if (!ID_PATTERN.test(id)) throw new Error(`invalid instance id ${id}`);
  return join(root, id);
}

/** An instance's meta.json, or undefined when it has none (or it is unreadable). */
/** Every regular file under an instance's directory, by its path there (an erasure's record). */
export async function filesUnder(dir: string): Promise<{ name: string; path: string }[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => {
      const path = join(e.parentPath, e.name);
      return { name: path.slice(dir.length + 1), path };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

export async function readMeta<T>(root: string, id: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(join(instanceDir(root, id), 'meta.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

export async function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, address, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function portFree(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, address, () => srv.close(() => resolve(true)));
  });
}

/** Host ports on `bind` for `ports`: each keeps its previous one while that is free. */
export async function allocatePorts(
  bind: string,
  ports: readonly { guest: number; protocol?: 'tcp' | 'udp' }[],
  previous: readonly PortMapping[],
): Promise<PortMapping[]> {
  const out: PortMapping[] = [];
  for (const p of ports) {
    const protocol = p.protocol ?? 'tcp';
    const prev = previous.find((m) => m.guest === p.guest && m.protocol === protocol);
    const host = prev && (await portFree(bind, prev.host)) ? prev.host : await freePort(bind);
    out.push({ guest: p.guest, protocol, host });
  }
  return out;
}
