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

let tmpCounter = 0;

async function writeAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  const tmp = `${path}.${process.pid}.${tmpCounter++}.tmp`;
  await fs.writeFile(tmp, data, { mode });
  await fs.rename(tmp, path);
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
  /** The write of the desired state under way, and the newest one waiting for it. */
  private writing?: Promise<void>;
  private next?: { data: string; done: Promise<void> };

  constructor(
    readonly dir: string,
    private readonly persistDesired = true,
  ) {}

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
    const d = this.persistDesired ? await readJson<DesiredFile>(join(this.dir, 'desired.json')) : undefined;
    if (d) return { ...d, reboots: d.reboots ?? {}, restarts: d.restarts ?? {} };
    return { revision: 0, synced: false, instances: {}, restarts: {}, reboots: {} };
  }

  /**
   * Writes the desired state. Writes happen one after the other; saves made while one is
   * under way are folded into a single write of the newest state.
   */
  saveDesired(d: DesiredFile): Promise<void> {
    if (!this.persistDesired) return Promise.resolve();
    const data = JSON.stringify(d);
    if (this.next) {
      this.next.data = data;
      return this.next.done;
    }
    if (!this.writing) return this.write(data);
    const next = { data, done: Promise.resolve() };
    next.done = this.writing
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.write(next.data);
      });
    this.next = next;
    return next.done;
  }

  private write(data: string): Promise<void> {
    const w = writeAtomic(join(this.dir, 'desired.json'), data).finally(() => {
      if (this.writing === w) this.writing = undefined;
    });
    this.writing = w;
    return w;
  }
}
