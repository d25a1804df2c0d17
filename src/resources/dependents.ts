// What must go before an object can be deleted. Deleting never cascades silently: the
// user is told what still depends on the object.
import type { KindDef, RoleBinding, WorkloadSpec } from '../model/index.js';
import type { Store } from '../store/index.js';

async function boundUsers(tx: Store, key: 'provider' | 'project', value: string): Promise<string[]> {
  const users = await tx.list('users');
  return users
    .filter((u) => (u.spec.roles as RoleBinding[]).some((b) => b[key] === value))
    .map((u) => u.name);
}

function describe(n: number, what: string, names: string[]): string {
  const shown = names.slice(0, 5).join(', ');
  return `${n} ${what}${names.length ? ` (${shown}${names.length > 5 ? ', …' : ''})` : ''}`;
}

/** Returns a sentence per blocking dependency; empty when the object may be deleted. */
export async function dependentsOf(tx: Store, def: KindDef, parent: string, name: string): Promise<string[]> {
  const out: string[] = [];
  const add = (rows: { name: string }[], what: string) => {
    if (rows.length)
      out.push(
        describe(
          rows.length,
          what,
          rows.map((r) => r.name),
        ),
      );
  };
  switch (def.kind) {
    case 'Provider': {
      add(await tx.list('sites', { parents: [name], limit: 6 }), 'site(s)');
      add(await tx.list('nodes', { parents: [name], limit: 6 }), 'node(s)');
      add(
        (await boundUsers(tx, 'provider', name)).map((n) => ({ name: n })),
        'user(s) bound to it',
      );
      break;
    }
    case 'Site':
      add(await tx.list('nodes', { parents: [parent], where: { site: name }, limit: 6 }), 'node(s)');
      break;
    case 'Project': {
      add(await tx.list('workloads', { parents: [name], limit: 6 }), 'workload(s)');
      add(await tx.list('images', { parents: [name], limit: 6 }), 'image(s)');
      add(
        (await tx.list('switchings', { parents: [name] })).filter((r) => r.status.phase !== 'Completed'),
        'open switching request(s)',
      );
      add(
        (await boundUsers(tx, 'project', name)).map((n) => ({ name: n })),
        'user(s) bound to it',
      );
      break;
    }
    case 'Node': {
      const bound = (await tx.listInstances({ provider: parent, node: name })).filter(
        (i) => i.desired !== 'absent',
      );
      add(
        bound.map((i) => ({ name: `${i.project}/${i.name}` })),
        'instance(s) bound to it',
      );
      break;
    }
    case 'SwitchingRequest': {
      const row = await tx.get('switchings', parent, name);
      const phase = (row?.status as { phase?: string } | undefined)?.phase;
      if (row && phase !== 'Notice')
        out.push(
          `a course under way (${phase}): a switching request can be withdrawn during its notice period only`,
        );
      break;
    }
    case 'Image': {
      const users = (await tx.list('workloads', { parents: [parent] })).filter(
        (w) => (w.spec as WorkloadSpec).image === name,
      );
      add(users, 'workload(s) using it');
      break;
    }
  }
  return out;
}
