// Migration: a tenant's request to move one instance of a workload to another node —
// live (memory streamed while the guest runs) or cold — within or across providers. The
// spec names the instance and, optionally, where to: a node, a site or a provider (the
// scheduler picks within it, or anywhere, by the workload's policy). The status follows
// the move: phase, the chosen target, the path the stream took, progress, and QEMU's
// downtime and total time.
import { Type } from 'typebox';
import { MIGRATION_MODES, type MigrationMode, type TransferProgress } from '../../protocol/index.js';
import { Name, oneOf, strictObject } from '../common.js';
import type { KindDef } from '../kind.js';
import type { FieldError } from '../problem.js';

export { MIGRATION_MODES, type MigrationMode };
export const MIGRATION_PHASES = [
  'Pending',
  'Preparing',
  'Mirroring',
  'Migrating',
  'Copying',
  'Succeeded',
  'Failed',
  'Cancelled',
] as const;
export type MigrationPhase = (typeof MIGRATION_PHASES)[number];
/** Phases after which nothing changes any more. */
export const MIGRATION_DONE: readonly MigrationPhase[] = ['Succeeded', 'Failed', 'Cancelled'];

const QualifiedName = Type.String({
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  description: 'provider/name',
});

export const MigrationSpec = strictObject({
  instance: Type.String({ minLength: 1, maxLength: 128, description: 'the instance to move (e.g. web-0)' }),
  to: Type.Optional(
    strictObject(
      {
        node: Type.Optional(QualifiedName),
        site: Type.Optional(QualifiedName),
        provider: Type.Optional(Name),
      },
      'where to: a node, a site or a provider (one of them); absent: the scheduler picks',
    ),
  ),
  mode: Type.Optional(
    oneOf(
      MIGRATION_MODES,
      'live (memory streamed while it runs) or cold (stop, copy the flattened disk, start); absent: live where both nodes can, else cold',
    ),
  ),
  cancel: Type.Optional(Type.Boolean({ description: 'set to cancel before the switch-over' })),
});
export interface MigrationSpec {
  instance: string;
  to?: { node?: string; site?: string; provider?: string };
  mode?: MigrationMode;
  cancel?: boolean;
}

const Bytes = Type.Integer({ minimum: 0 });
export const MigrationStatus = strictObject({
  phase: oneOf(MIGRATION_PHASES),
  message: Type.Optional(Type.String()),
  mode: Type.Optional(oneOf(MIGRATION_MODES)),
  modeReason: Type.Optional(Type.String({ description: 'why this mode' })),
  from: Type.Optional(Type.String({ description: 'provider/node the instance ran on' })),
  target: Type.Optional(Type.String({ description: 'provider/node it moves to' })),
  path: Type.Optional(oneOf(['direct', 'relay'] as const, 'how the stream travelled')),
  progress: Type.Optional(
    strictObject({
      diskDone: Type.Optional(Bytes),
      diskTotal: Type.Optional(Bytes),
      ramTransferred: Type.Optional(Bytes),
      ramRemaining: Type.Optional(Bytes),
      ramTotal: Type.Optional(Bytes),
      mbps: Type.Optional(Type.Number()),
      dirtyPagesRate: Type.Optional(Type.Number()),
    }),
  ),
  downtimeMs: Type.Optional(Type.Number()),
  totalTimeMs: Type.Optional(Type.Number()),
  startedAt: Type.Optional(Type.String()),
  finishedAt: Type.Optional(Type.String()),
});
export interface MigrationStatus {
  phase: MigrationPhase;
  message?: string;
  mode?: MigrationMode;
  /** Why this mode: asked for, or what keeps it from moving live. */
  modeReason?: string;
  from?: string;
  target?: string;
  path?: 'direct' | 'relay';
  /** The last progress QEMU reported (bytes; rates in Mbit/s and pages/s). */
  progress?: Omit<TransferProgress, 'phase' | 'downtimeMs' | 'totalTimeMs' | 'path'>;
  downtimeMs?: number;
  totalTimeMs?: number;
  startedAt?: string;
  finishedAt?: string;
}

function migrationErrors(spec: MigrationSpec): FieldError[] {
  const to = spec.to ?? {};
  const given = (['node', 'site', 'provider'] as const).filter((k) => to[k] !== undefined);
  if (given.length > 1)
    return [{ path: 'spec.to', message: `give one of node, site or provider, not ${given.join(' and ')}` }];
  if (spec.to && !given.length)
    return [{ path: 'spec.to', message: 'give a node, a site or a provider (or leave out spec.to)' }];
  return [];
}

export const migrationKind: KindDef<MigrationSpec, MigrationStatus> = {
  kind: 'Migration',
  plural: 'migrations',
  parent: 'project',
  aliases: ['migration', 'migrations', 'mig'],
  description: 'Moves an instance to another node, live or cold, within or across providers.',
  spec: MigrationSpec,
  status: MigrationStatus,
  creatable: true,
  filters: ['phase'],
  columns: (_spec, status) => ({ phase: status.phase }),
  initialStatus: () => ({ phase: 'Pending' }),
  check: migrationErrors,
};
