// Who may do what, kind by kind. Reads of things outside a principal's scope are
// answered as "not found" by the caller, so their existence does not leak; writes to
// things a principal can see but not change are "forbidden".
//
//   kind       read                               write
//   Provider   everyone (the federation catalogue) create/delete: federation-admin; update: + its provider-admin
//   Site       everyone (the federation catalogue) federation-admin, its provider's admin
//   Node       federation-admin, provider's admin  same (agents register nodes; people label/cordon)
//   Project    federation-admin, its members       create/delete: federation-admin; update: + its
//                                                 project-admin (all but the quota)
//   User       federation-admin, self, an admin    federation-admin, or an admin covering every binding
//              covering every binding
//   Image,     federation-admin, project members   federation-admin, project members
//   Workload
//   Switching- federation-admin, project members   federation-admin, the project's admins
//   Request                                        (its provider declares through its own endpoint)
//
// Instances are read by project members and by the admins of the provider whose node
// runs them (which instances, where, their resource use and state); consoles and user
// data only by members, unless the project's spec.providerAccess grants them.
import {
  type KindDef,
  type ProjectSpec,
  type ProviderAccess,
  QUOTA_DIMENSIONS,
  type RoleBinding,
} from '../model/index.js';
import {
  adminOfProjects,
  adminOfProviders,
  coversBinding,
  isFederationAdmin,
  type Principal,
  projectsOf,
} from './principal.js';

export type Action = 'create' | 'update' | 'delete';

/** Which rows of a kind a principal may list: 'all', or restrictions on parent / name. */
export type ListScope =
  | 'all'
  | { parents?: string[]; names?: string[]; filter?: (spec: any, name: string) => boolean };

export function listScope(p: Principal, def: KindDef): ListScope {
  if (isFederationAdmin(p)) return 'all';
  switch (def.kind) {
    case 'Provider':
    case 'Site':
      return 'all';
    case 'Node':
      return { parents: adminOfProviders(p) };
    case 'Project':
      return { names: projectsOf(p) };
    case 'User':
      return { filter: (spec, name) => userVisible(p, name, spec.roles) };
    default:
      return def.parent === 'project' ? { parents: projectsOf(p) } : { parents: [] };
  }
}

function userVisible(p: Principal, name: string, roles: readonly RoleBinding[]): boolean {
  if (name === p.user) return true;
  return roles.length > 0 && roles.every((b) => coversBinding(p, b));
}

/** May the principal see this object? `spec` is needed for users only. */
export function canRead(p: Principal, def: KindDef, parent: string, name: string, spec?: any): boolean {
  const scope = listScope(p, def);
  if (scope === 'all') return true;
  if (scope.parents && !scope.parents.includes(parent)) return false;
  if (scope.names && !scope.names.includes(name)) return false;
  if (scope.filter && !scope.filter(spec ?? { roles: [] }, name)) return false;
  return true;
}

/** May the principal see the parent (a provider or project) that owns objects of this kind? */
export function canReadParent(p: Principal, def: KindDef, parent: string): boolean {
  if (isFederationAdmin(p) || !def.parent) return true;
  if (def.kind === 'Site') return true;
  if (def.parent === 'provider') return adminOfProviders(p).includes(parent);
  return projectsOf(p).includes(parent);
}

/**
 * May the principal perform `action`? For users, `before`/`after` are the old and new
 * role bindings: an admin may only manage users whose every binding they could grant.
 */
export function canWrite(
  p: Principal,
  def: KindDef,
  action: Action,
  parent: string,
  name: string,
  roles?: { before?: readonly RoleBinding[]; after?: readonly RoleBinding[] },
): boolean {
  if (isFederationAdmin(p)) return true;
  switch (def.kind) {
    case 'Provider':
      return action === 'update' && adminOfProviders(p).includes(name);
    case 'Site':
    case 'Node':
      return adminOfProviders(p).includes(parent);
    case 'Project':
      return action === 'update' && adminOfProjects(p).includes(name);
    // The customer's exit under the Data Act: the project's admins decide it.
    case 'SwitchingRequest':
      return adminOfProjects(p).includes(parent);
    case 'User': {
      const all = [...(roles?.before ?? []), ...(roles?.after ?? [])];
      return all.length > 0 && all.every((b) => coversBinding(p, b));
    }
    default:
      return def.parent === 'project' && projectsOf(p).includes(parent);
  }
}

/**
 * Parts of a spec only some writers may change, as a reason to refuse (or undefined):
 * a project's quota is the federation's to set, not the tenant's.
 */
export function refusedChange(
  p: Principal,
  def: KindDef,
  before: unknown,
  after: unknown,
): string | undefined {
  if (isFederationAdmin(p) || def.kind !== 'Project') return undefined;
  const quota = (s: unknown) => (s as ProjectSpec | undefined)?.quota;
  if (QUOTA_DIMENSIONS.every((d) => quota(before)?.[d] === quota(after)?.[d])) return undefined;
  const kept = quota(before);
  return `only a federation-admin may change a project's quota; ${
    kept ? `keep spec.quota as it is: ${JSON.stringify(kept)}` : 'leave spec.quota out'
  }`;
}

/** What a principal may do with one instance: its project's grant matters to provider-admins. */
export interface InstanceAccess {
  /** See it: which node runs it, its resources, state and usage. */
  read: boolean;
  /** Start, stop and reboot it. */
  power: boolean;
  console: boolean;
  userData: boolean;
}

export function instanceAccess(
  p: Principal,
  i: { project: string; provider: string },
  grant: ProviderAccess | undefined,
): InstanceAccess {
  if (isFederationAdmin(p) || projectsOf(p).includes(i.project))
    return { read: true, power: true, console: true, userData: true };
  if (adminOfProviders(p).includes(i.provider))
    return { read: true, power: false, console: grant?.console === true, userData: grant?.userData === true };
  return { read: false, power: false, console: false, userData: false };
}

/** Audit events a principal may read: everything, or those of its providers and projects. */
export function eventScope(p: Principal): { providers: string[]; projects: string[] } | undefined {
  if (isFederationAdmin(p)) return undefined;
  return { providers: adminOfProviders(p), projects: projectsOf(p) };
}
