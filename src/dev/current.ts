// Where a running `continuum dev` says it is: its API and the file of its admin token, in
// a small file under the user's state directory, so that `continuum login --dev` finds
// it without copying anything. The latest run writes it; a run removes it only if it is
// its own.
import { promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface CurrentDev {
  pid: number;
  api: string;
  tokenFile: string;
}

export function currentDevPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'continuum', 'dev.json');
}

export async function writeCurrentDev(c: CurrentDev): Promise<void> {
  const path = currentDevPath();
  await fs.mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  await fs.writeFile(path, JSON.stringify(c), { mode: 0o600 });
}

export async function forgetCurrentDev(pid: number): Promise<void> {
  const c = await readCurrentDev();
  if (c?.pid === pid) await fs.rm(currentDevPath(), { force: true });
}

/** The running dev federation, if one runs (its process alive). */
export async function readCurrentDev(): Promise<CurrentDev | undefined> {
  let c: CurrentDev;
  try {
    c = JSON.parse(await fs.readFile(currentDevPath(), 'utf8'));
  } catch {
    return undefined;
  }
  try {
    process.kill(c.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  return c;
}
