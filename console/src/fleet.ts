// What the console knows of the federation: the objects the signed-in user may see,
// loaded once and then kept current from the change stream (each changed object is
// re-read; a burst of one kind reloads that kind). Components subscribe and re-render
// on a version number, so 10,000 nodes cost one render per batch, not one per node.
import type { paths } from '../../src/api/client/index.js';
import { type Api, follow } from './api.js';

export interface Meta {
  name: string;
  provider?: string;
  project?: string;
  generation: number;
  labels?: Record<string, string>;
  createdAt?: string;
  updatedAt?: string;
}
export interface Obj<S = any, T = any> {
  kind: string;
  metadata: Meta;
  spec: S;
  status: T;
}
/** The signed-in user, and an entry of the audit log, as the API answers them (generated types). */
export type Whoami = paths['/v1/whoami']['get']['responses'][200]['content']['application/json'];
export type AuditEvent =
  paths['/v1/events']['get']['responses'][200]['content']['application/json']['items'][number];

/** The kinds the console follows, where each lives in the API, and who owns it. */
const KINDS = {
  Provider: { plural: 'providers', owner: undefined },
  Site: { plural: 'sites', owner: 'providers' },
  Node: { plural: 'nodes', owner: 'providers' },
  Project: { plural: 'projects', owner: undefined },
  Workload: { plural: 'workloads', owner: 'projects' },
  Instance: { plural: 'instances', owner: 'projects' },
  Migration: { plural: 'migrations', owner: 'projects' },
} as const;
export type KindName = keyof typeof KINDS;

const keyOf = (o: Obj) => {
  const parent = o.metadata.provider ?? o.metadata.project;
  return parent ? `${parent}/${o.metadata.name}` : o.metadata.name;
};
const pathOf = (kind: KindName, parent: string, name: string) => {
  const k = KINDS[kind];
  return k.owner ? `/v1/${k.owner}/${parent}/${k.plural}/${name}` : `/v1/${k.plural}/${name}`;
};

export class Fleet {
  readonly objects: Record<KindName, Map<string, Obj>> = {
    Provider: new Map(),
    Site: new Map(),
    Node: new Map(),
    Project: new Map(),
    Workload: new Map(),
    Instance: new Map(),
    Migration: new Map(),
  };
  /** Kinds whose first load finished. */
  readonly loaded = new Set<KindName>();
  events: AuditEvent[] = [];
  connected = false;
  version = 0;
  private readonly listeners = new Set<() => void>();
  private readonly abort = new AbortController();
  private bumpQueued = false;

  constructor(
    readonly api: Api,
    readonly me: Whoami,
  ) {}

  /** May this user see nodes (a federation or provider admin)? */
  get seesNodes(): boolean {
    return this.me.federationAdmin || this.me.roles.some((r) => r.role === 'provider-admin');
  }
  /** May this user change objects of a project (a member with write rights)? */
  canWriteProject(project: string): boolean {
    return (
      this.me.federationAdmin ||
      this.me.roles.some(
        (r) => r.project === project && (r.role === 'project-admin' || r.role === 'project-member'),
      )
    );
  }

  /** May this user manage this provider's nodes (drain, uncordon)? */
  adminsProvider(provider: string): boolean {
    return (
      this.me.federationAdmin ||
      this.me.roles.some((r) => r.role === 'provider-admin' && r.provider === provider)
    );
  }
  /** May this user administer this project (exports, among others)? */
  adminsProject(project: string): boolean {
    return (
      this.me.federationAdmin ||
      this.me.roles.some((r) => r.role === 'project-admin' && r.project === project)
    );
  }

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };
  getVersion = (): number => this.version;

  /** One re-render per animation frame at most, however many changes arrive. */
  private bump(): void {
    if (this.bumpQueued) return;
    this.bumpQueued = true;
    requestAnimationFrame(() => {
      this.bumpQueued = false;
      this.version++;
      for (const fn of this.listeners) fn();
    });
  }

  list<K extends KindName>(kind: K): Obj[] {
    return [...this.objects[kind].values()];
  }

  async start(): Promise<void> {
    const signal = this.abort.signal;
    // Changes first, so that nothing written while the lists load is missed.
    void follow(
      this.api.token,
      '/v1/changes/watch',
      (m) => void this.applyChanges(JSON.parse(m.data)),
      (up) => {
        this.connected = up;
        this.bump();
      },
      signal,
    );
    void follow(
      this.api.token,
      '/v1/events/watch',
      (m) => {
        const e = JSON.parse(m.data) as AuditEvent;
        if (this.events.some((x) => x.seq === e.seq)) return;
        this.events = [...this.events.slice(-499), e];
        this.bump();
      },
      () => {},
      signal,
    );
    const kinds: KindName[] = ['Provider', 'Site', 'Project', 'Workload', 'Instance', 'Migration'];
    if (this.seesNodes) kinds.push('Node');
    const recent = this.api
      .get('/v1/events', { newest: 'true', limit: 200 })
      .then((r: { items: AuditEvent[] }) => {
        const seen = new Set(this.events.map((e) => e.seq));
        this.events = [...r.items.filter((e) => !seen.has(e.seq)), ...this.events].sort(
          (a, b) => a.position - b.position,
        );
        this.bump();
      });
    await Promise.all([...kinds.map((k) => this.reload(k)), recent]);
  }

  stop(): void {
    this.abort.abort();
  }

  private async reload(kind: KindName): Promise<void> {
    const fresh = new Map<string, Obj>();
    await this.api.listAll<Obj>(`/v1/${KINDS[kind].plural}`, {}, (page) => {
      // The first page shows at once; later pages add to it.
      for (const o of page) {
        fresh.set(keyOf(o), o);
        if (!this.loaded.has(kind)) this.objects[kind].set(keyOf(o), o);
      }
      this.bump();
    });
    this.objects[kind] = fresh;
    this.loaded.add(kind);
    this.bump();
  }

  private async applyChanges(
    notes: { kind: string; parent: string; name: string; part: string }[],
  ): Promise<void> {
    const byKind = new Map<KindName, typeof notes>();
    for (const n of notes) {
      if (!(n.kind in KINDS)) continue;
      const kind = n.kind as KindName;
      if (kind === 'Node' && !this.seesNodes) continue;
      byKind.set(kind, [...(byKind.get(kind) ?? []), n]);
    }
    await Promise.all(
      [...byKind].map(async ([kind, list]) => {
        if (list.length > 100) return this.reload(kind);
        await Promise.all(
          list.map(async (n) => {
            const key = n.parent ? `${n.parent}/${n.name}` : n.name;
            if (n.part === 'deleted') {
              this.objects[kind].delete(key);
              return;
            }
            try {
              this.objects[kind].set(key, await this.api.get<Obj>(pathOf(kind, n.parent, n.name)));
            } catch {
              // Gone again, or no longer visible.
              this.objects[kind].delete(key);
            }
          }),
        );
        this.bump();
      }),
    );
  }
}
