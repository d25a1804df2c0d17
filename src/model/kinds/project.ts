// Project: a tenant's unit of isolation, with quotas. Usage is kept in status and
// updated in the same transaction as the workloads that consume it.
import { Type } from 'typebox';
import { strictObject } from '../common.js';
import type { KindDef } from '../kind.js';

export const QUOTA_DIMENSIONS = ['vcpus', 'memoryMiB', 'instances'] as const;
export type QuotaDimension = (typeof QUOTA_DIMENSIONS)[number];
export type ResourceAmounts = Record<QuotaDimension, number>;

export const ProjectSpec = strictObject({
  displayName: Type.Optional(Type.String({ maxLength: 200 })),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  quota: Type.Optional(
    strictObject(
      {
        vcpus: Type.Optional(Type.Integer({ minimum: 0 })),
        memoryMiB: Type.Optional(Type.Integer({ minimum: 0 })),
        instances: Type.Optional(Type.Integer({ minimum: 0 })),
      },
      'upper limits over all workloads of the project; an absent dimension is unlimited',
    ),
  ),
  providerAccess: Type.Optional(
    strictObject(
      {
        console: Type.Optional(
          Type.Boolean({ description: "read the serial consoles of this project's instances" }),
        ),
        userData: Type.Optional(
          Type.Boolean({ description: "read the cloud-init user data of this project's instances" }),
        ),
      },
      "what the admins of the providers whose nodes run this project's instances may see of them, beyond which instances run there and their resource use; absent: nothing more",
    ),
  ),
});
export interface ProjectSpec {
  displayName?: string;
  description?: string;
  quota?: Partial<ResourceAmounts>;
  providerAccess?: ProviderAccess;
}

/** What a project lets the admins of the providers running its instances see of them. */
export interface ProviderAccess {
  console?: boolean;
  userData?: boolean;
}

export const ProjectStatus = strictObject({
  usage: strictObject({
    vcpus: Type.Integer(),
    memoryMiB: Type.Integer(),
    instances: Type.Integer(),
  }),
});
export interface ProjectStatus {
  usage: ResourceAmounts;
}

export const projectKind: KindDef<ProjectSpec, ProjectStatus> = {
  kind: 'Project',
  plural: 'projects',
  aliases: ['project', 'projects', 'proj'],
  description: "A tenant's project: the unit of isolation, quotas and access.",
  spec: ProjectSpec,
  status: ProjectStatus,
  creatable: true,
  filters: [],
  columns: () => ({}),
  initialStatus: () => ({ usage: { vcpus: 0, memoryMiB: 0, instances: 0 } }),
};
