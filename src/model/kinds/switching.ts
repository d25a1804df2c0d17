// Switching: a project's exit from a provider, as the EU Data Act (chapter VI) defines
// it — to another provider of the federation, or out of the federation. A project-admin
// creates it; the switching controller runs its timeline on the control plane's clock:
// notice (at most two months), transition (30 days, or up to seven months when the
// provider declares in time that 30 days are technically unfeasible, and why; the
// customer may extend it once), retrieval (at least 30 days), then erasure of what the
// project held on the provider, proven by a certificate signed with the federation's CA.
import { Type } from 'typebox';
import { Name, oneOf, strictObject } from '../common.js';
import type { KindDef } from '../kind.js';
import type { FieldError } from '../problem.js';

export const SWITCHING_PHASES = ['Notice', 'Transition', 'Retrieval', 'Erasure', 'Completed'] as const;
export type SwitchingPhase = (typeof SWITCHING_PHASES)[number];

/** The Data Act's bounds (Art. 25). */
export const SWITCHING_LIMITS = {
  /** Longest notice period, in months. */
  noticeMonths: 2,
  /** The transition period, in days, unless the provider declares it unfeasible. */
  transitionDays: 30,
  /** The longest transition a provider may declare, in months. */
  declaredMonths: 7,
  /** Working days (Monday to Friday) the provider has to declare. */
  declarationWorkingDays: 14,
  /** Shortest data-retrieval period, in days. */
  retrievalDays: 30,
} as const;

export const SwitchingSpec = strictObject({
  from: Name,
  to: strictObject(
    {
      provider: Type.Optional(Name),
      outside: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 200,
          description: 'out of the federation: where to (free text); the transition ends with an export',
        }),
      ),
    },
    'another provider of the federation (provider), or out of it (outside); one of them',
  ),
  noticeDays: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 62, description: 'notice period, at most two months (default 0)' }),
  ),
  retrievalDays: Type.Optional(
    Type.Integer({
      minimum: SWITCHING_LIMITS.retrievalDays,
      maximum: 366,
      description: 'data-retrieval period after the transition, at least 30 days (default 30)',
    }),
  ),
});
export interface SwitchingSpec {
  from: string;
  to: { provider?: string; outside?: string };
  noticeDays?: number;
  retrievalDays?: number;
}

const Time = Type.String({ description: 'RFC 3339' });
export const SwitchingStatus = strictObject({
  phase: oneOf(SWITCHING_PHASES),
  message: Type.Optional(Type.String()),
  requestedAt: Type.Optional(Time),
  noticeEndsAt: Type.Optional(Time),
  declarationDueAt: Type.Optional(Time),
  declaration: Type.Optional(
    strictObject({
      transitionDays: Type.Integer(),
      justification: Type.String(),
      at: Time,
      by: Type.String(),
    }),
  ),
  extension: Type.Optional(strictObject({ days: Type.Integer(), at: Time, by: Type.String() })),
  transitionEndsAt: Type.Optional(Time),
  transitionDoneAt: Type.Optional(Time),
  retrievalEndsAt: Type.Optional(Time),
  erasedAt: Type.Optional(Time),
  /** Replicas of the project still on the provider (inside the federation). */
  remaining: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Deadlines that passed with their step not done. */
  missed: Type.Optional(Type.Array(Type.String())),
  /** The audit sequence when the request was made: exports after it end a transition out. */
  sinceSeq: Type.Optional(Type.Integer({ minimum: 0 })),
  certificate: Type.Optional(
    strictObject({ artefacts: Type.Integer(), sha256: Type.String(), signedBy: Type.String() }),
  ),
});
export interface SwitchingStatus {
  phase: SwitchingPhase;
  message?: string;
  requestedAt?: string;
  noticeEndsAt?: string;
  declarationDueAt?: string;
  declaration?: { transitionDays: number; justification: string; at: string; by: string };
  extension?: { days: number; at: string; by: string };
  transitionEndsAt?: string;
  transitionDoneAt?: string;
  retrievalEndsAt?: string;
  erasedAt?: string;
  remaining?: number;
  missed?: string[];
  sinceSeq?: number;
  certificate?: { artefacts: number; sha256: string; signedBy: string };
}

function switchingErrors(spec: SwitchingSpec): FieldError[] {
  const given = (['provider', 'outside'] as const).filter((k) => spec.to[k] !== undefined);
  if (given.length !== 1)
    return [
      {
        path: 'spec.to',
        message: given.length
          ? 'give provider or outside, not both'
          : 'give provider (another provider of the federation) or outside (out of the federation)',
      },
    ];
  if (spec.to.provider === spec.from)
    return [{ path: 'spec.to.provider', message: `'${spec.from}' is the provider the project leaves` }];
  return [];
}

export const switchingKind: KindDef<SwitchingSpec, SwitchingStatus> = {
  kind: 'SwitchingRequest',
  plural: 'switchings',
  parent: 'project',
  aliases: ['switching', 'switchings', 'switchingrequest', 'switchingrequests', 'sw'],
  description:
    "A project's exit from a provider under the EU Data Act: notice, transition, retrieval and erasure, with a signed erasure certificate.",
  spec: SwitchingSpec,
  status: SwitchingStatus,
  creatable: true,
  filters: ['phase'],
  columns: (_spec, status) => ({ phase: status.phase }),
  initialStatus: () => ({ phase: 'Notice' }),
  check: switchingErrors,
};
