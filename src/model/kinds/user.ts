// User: a person or automation with role bindings. Roles are scoped: a provider-admin
// to one provider, project roles to one project; federation-admin to everything;
// metrics-reader to /metrics alone (a Prometheus scraper's token).
import { Type } from 'typebox';
import { Name, oneOf, strictObject } from '../common.js';
import type { KindDef } from '../kind.js';
import type { FieldError } from '../problem.js';

export const ROLES = [
  'federation-admin',
  'provider-admin',
  'project-admin',
  'project-member',
  'metrics-reader',
] as const;
export type Role = (typeof ROLES)[number];

export interface RoleBinding {
  role: Role;
  provider?: string;
  project?: string;
}

export const RoleBindingSchema = strictObject({
  role: oneOf(ROLES),
  provider: Type.Optional(Name),
  project: Type.Optional(Name),
});

export const UserSpec = strictObject({
  displayName: Type.Optional(Type.String({ maxLength: 200 })),
  email: Type.Optional(Type.String({ maxLength: 254, pattern: '^[^@\\s]+@[^@\\s]+$' })),
  roles: Type.Array(RoleBindingSchema, { maxItems: 100 }),
});
export interface UserSpec {
  displayName?: string;
  email?: string;
  roles: RoleBinding[];
}

export const UserStatus = strictObject({});

/** Shape rules of a binding: which scope each role needs. */
export function bindingErrors(b: RoleBinding, path: string): FieldError[] {
  switch (b.role) {
    case 'federation-admin':
    case 'metrics-reader':
      return b.provider || b.project
        ? [{ path, message: `${b.role} takes neither provider nor project` }]
        : [];
    case 'provider-admin':
      if (!b.provider) return [{ path: `${path}.provider`, message: 'provider-admin needs a provider' }];
      return b.project ? [{ path: `${path}.project`, message: 'provider-admin takes no project' }] : [];
    default:
      if (!b.project) return [{ path: `${path}.project`, message: `${b.role} needs a project` }];
      return b.provider ? [{ path: `${path}.provider`, message: `${b.role} takes no provider` }] : [];
  }
}

export const userKind: KindDef<UserSpec, Record<string, never>> = {
  kind: 'User',
  plural: 'users',
  aliases: ['user', 'users'],
  description: 'A user with scoped role bindings; authenticates with API tokens.',
  spec: UserSpec,
  status: UserStatus,
  creatable: true,
  filters: [],
  columns: () => ({}),
  initialStatus: () => ({}),
  async check(spec, ctx) {
    const errors: FieldError[] = [];
    for (const [i, b] of spec.roles.entries()) {
      const path = `spec.roles[${i}]`;
      const shape = bindingErrors(b, path);
      errors.push(...shape);
      if (shape.length) continue;
      if (b.provider && !(await ctx.exists('Provider', '', b.provider)))
        errors.push({ path: `${path}.provider`, message: `provider '${b.provider}' does not exist` });
      if (b.project && !(await ctx.exists('Project', '', b.project)))
        errors.push({ path: `${path}.project`, message: `project '${b.project}' does not exist` });
    }
    return errors;
  },
};
