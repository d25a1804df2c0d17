// Who is calling, and what their role bindings let them reach.
import type { RoleBinding } from '../model/index.js';

export interface Principal {
  readonly user: string;
  readonly bindings: readonly RoleBinding[];
  readonly tokenId: string;
}

export function isFederationAdmin(p: Principal): boolean {
  return p.bindings.some((b) => b.role === 'federation-admin');
}

export function adminOfProviders(p: Principal): string[] {
  return p.bindings.filter((b) => b.role === 'provider-admin' && b.provider).map((b) => b.provider!);
}

/** Projects the principal belongs to, as admin or member. */
export function projectsOf(p: Principal): string[] {
  return p.bindings
    .filter((b) => (b.role === 'project-admin' || b.role === 'project-member') && b.project)
    .map((b) => b.project!);
}

export function adminOfProjects(p: Principal): string[] {
  return p.bindings.filter((b) => b.role === 'project-admin' && b.project).map((b) => b.project!);
}

/** True if the principal may grant (or revoke) this binding to someone. */
export function coversBinding(p: Principal, b: RoleBinding): boolean {
  if (isFederationAdmin(p)) return true;
  if (b.role === 'provider-admin') return !!b.provider && adminOfProviders(p).includes(b.provider);
  if (b.role === 'project-admin' || b.role === 'project-member')
    return !!b.project && adminOfProjects(p).includes(b.project);
  return false;
}
