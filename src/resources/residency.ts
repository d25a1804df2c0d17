// The residency report: where a project's VMs (and their disks, which live with them on
// their node) have been, from the audit trail — each stay on a node with its provider,
// site and country, from the moment the instance was bound there until it left it
// (re-placed, migrated, deleted) or until now. A node's site and a site's country come
// from the store, or from the audit trail when the node or site is gone.
import type { Store } from '../store/index.js';

export interface ResidencyStay {
  instance: string;
  workload: string;
  provider: string;
  node: string;
  site: string;
  country: string;
  /** When it was bound there. */
  from: string;
  /** When it left; absent: it is there now. */
  to?: string;
  /** How it came there: placed, re-placed (its node failed, a rule changed, a drain) or migrated. */
  how: 'placed' | 're-placed' | 'migrated';
}

const HOW: Record<string, ResidencyStay['how']> = {
  create: 'placed',
  replace: 're-placed',
  migrate: 'migrated',
};

interface Doc {
  workload?: string;
  provider?: string;
  node?: string;
  desired?: string;
}

/** Every stay of the project's instances (of one workload or one instance), in time order. */
export async function residencyReport(
  store: Store,
  project: string,
  only: { workload?: string; instance?: string } = {},
): Promise<ResidencyStay[]> {
  const stays: ResidencyStay[] = [];
  const open = new Map<string, ResidencyStay>();
  const workloadOf = new Map<string, string>();
  const where = new Places(store);
  let after = 0;
  for (;;) {
    const page = await store.listEvents({ kind: 'Instance', parent: project, after, limit: 1000 });
    for (const e of page) {
      after = e.position;
      if (only.instance && e.name !== only.instance) continue;
      const doc = (e.after ?? undefined) as Doc | undefined;
      if (doc?.workload) workloadOf.set(e.name, doc.workload);
      const workload = workloadOf.get(e.name) ?? (e.name.replace(/-\d+$/, '') || e.name);
      if (only.workload && workload !== only.workload) continue;
      const current = open.get(e.name);
      const gone = !doc || doc.desired === 'absent' || e.action === 'delete';
      const moved =
        !gone &&
        doc.node &&
        doc.provider &&
        (current?.node !== doc.node || current.provider !== doc.provider);
      if (current && (gone || moved)) {
        current.to = e.time;
        open.delete(e.name);
      }
      if (moved) {
        const place = await where.of(doc.provider!, doc.node!);
        const stay: ResidencyStay = {
          instance: e.name,
          workload,
          provider: doc.provider!,
          node: doc.node!,
          ...place,
          from: e.time,
          how: HOW[e.action] ?? 're-placed',
        };
        stays.push(stay);
        open.set(e.name, stay);
      }
    }
    if (page.length < 1000) break;
  }
  return stays;
}

/** Nodes' sites and sites' countries, read once each: from the store, else from the audit trail. */
class Places {
  private readonly nodes = new Map<string, Promise<{ site: string; country: string }>>();
  constructor(private readonly store: Store) {}

  of(provider: string, node: string): Promise<{ site: string; country: string }> {
    const key = `${provider}/${node}`;
    let p = this.nodes.get(key);
    if (!p) {
      p = this.look(provider, node);
      this.nodes.set(key, p);
    }
    return p;
  }

  private async look(provider: string, node: string): Promise<{ site: string; country: string }> {
    const site =
      ((await this.store.get('nodes', provider, node))?.spec.site as string | undefined) ??
      (await this.lastSpec('Node', provider, node))?.site ??
      'unknown';
    const country =
      ((await this.store.get('sites', provider, site))?.spec.country as string | undefined) ??
      (await this.lastSpec('Site', provider, site))?.country ??
      'unknown';
    return { site, country };
  }

  /** The spec an object last had in the audit trail (it was deleted since). */
  private async lastSpec(
    kind: string,
    parent: string,
    name: string,
  ): Promise<Record<string, any> | undefined> {
    let last: Record<string, any> | undefined;
    let after = 0;
    for (;;) {
      const page = await this.store.listEvents({ kind, parent, name, after, limit: 1000 });
      for (const e of page) {
        after = e.position;
        const doc = (e.after ?? e.before) as { spec?: Record<string, any> } | null;
        if (doc?.spec) last = doc.spec;
      }
      if (page.length < 1000) return last;
    }
  }
}

/** The report as CSV (RFC 4180: fields with a comma, quote or line break are quoted). */
export function residencyCsv(stays: readonly ResidencyStay[]): string {
  const cell = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const head = ['instance', 'workload', 'country', 'provider', 'site', 'node', 'from', 'to', 'how'];
  const rows = stays.map((s) =>
    [s.instance, s.workload, s.country, s.provider, s.site, s.node, s.from, s.to ?? '', s.how]
      .map(cell)
      .join(','),
  );
  return `${[head.join(','), ...rows].join('\r\n')}\r\n`;
}
