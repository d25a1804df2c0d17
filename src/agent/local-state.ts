// What an agent keeps on its own disk: its identity (server, pinned CA, credential) and
// the last desired state it received, so it keeps running its instances when the
// control plane is unreachable and resumes from the right revision.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { DesiredInstance } from '../protocol/index.js';

export interface AgentIdentity {
  server: string;
  caPem: string;
  caFingerprint: string;
  credential: string;
  provider: string;
  site: string;
  node: string;
}

export interface DesiredFile {
  /** Highest revision received. */
  revision: number;
  /** True once a full desired set has been received: from then on unknown VMs are orphans. */
  synced: boolean;
  instances: Record<string, DesiredInstance>;
  /** Restart counts survive agent restarts. */
  restarts: Record<string, number>;
  /** Reboot requests already carried out, per instance. */
  reboots: Record<string, number>;
}

async function writeAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  await fs.writeFile(`${path}.tmp`, data, { mode });
  await fs.rename(`${path}.tmp`, path);
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(path, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${path} is unreadable: ${(err as Error).message}`);
  }
}

export class LocalState {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  loadIdentity(): Promise<AgentIdentity | undefined> {
    return readJson(join(this.dir, 'identity.json'));
  }

  saveIdentity(id: AgentIdentity): Promise<void> {
    return writeAtomic(join(this.dir, 'identity.json'), JSON.stringify(id, null, 2));
  }

  async loadDesired(): Promise<DesiredFile> {
    const d = await readJson<DesiredFile>(join(this.dir, 'desired.json'));
    if (d) return { ...d, reboots: d.reboots ?? {}, restarts: d.restarts ?? {} };
    return { revision: 0, synced: false, instances: {}, restarts: {}, reboots: {} };
  }

  saveDesired(d: DesiredFile): Promise<void> {
    return writeAtomic(join(this.dir, 'desired.json'), JSON.stringify(d));
  }
}
