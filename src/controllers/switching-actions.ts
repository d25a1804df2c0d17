// The steps of a switching request that come through the API rather than its spec —
// the provider's declaration of a longer transition, the customer's one extension — and
// the admission of a new request. The timeline itself runs in switching-controller.ts.
import { adminOfProjects, adminOfProviders, isFederationAdmin, type Principal } from '../auth/index.js';
import {
  type FieldError,
  Problem,
  SWITCHING_LIMITS,
  type SwitchingSpec,
  type SwitchingStatus,
  switchingKind,
} from '../model/index.js';
import { canonical } from '../resources/render.js';
import type { Store, StoredResource } from '../store/index.js';
import { addDays, addMonths, DAY, SwitchingController } from './switching-controller.js';

/** What the API asks of the controller: a provider's declaration, a customer's extension. */
export class SwitchingActions {
  constructor(
    private readonly store: Store,
    private readonly clock: () => Date,
  ) {}

  private async read(project: string, name: string, may: (spec: SwitchingSpec) => boolean) {
    const row = await this.store.get('switchings', project, name);
    if (!row || !may(row.spec as SwitchingSpec))
      throw new Problem('not_found', `switching request '${project}/${name}' not found`);
    const st = structuredClone(row.status) as SwitchingStatus;
    if (!st.requestedAt)
      throw new Problem('conflict', 'the switching request is being set up; try again in a moment');
    if (st.phase !== 'Notice' && st.phase !== 'Transition')
      throw new Problem('conflict', `the transition is over (the request is in ${st.phase})`);
    return { row, spec: row.spec as SwitchingSpec, st };
  }

  private async write(row: StoredResource, st: SwitchingStatus, action: string, by: string, after: object) {
    const spec = row.spec as SwitchingSpec;
    Object.assign(st, SwitchingController.timeline(spec, st, new Date(st.requestedAt!)));
    await this.store.transaction(async (tx) => {
      const current = await tx.get('switchings', row.parent, row.name);
      if (!current || canonical(current.status) !== canonical(row.status))
        throw new Problem('conflict', 'the switching request changed meanwhile; try again');
      await tx.setStatus('switchings', row.uid, st, { phase: st.phase });
      await tx.appendEvent({
        actor: by,
        action,
        kind: switchingKind.kind,
        parent: row.parent,
        name: row.name,
        provider: spec.from,
        project: row.parent,
        before: { transitionEndsAt: (row.status as SwitchingStatus).transitionEndsAt },
        after: { ...after, transitionEndsAt: st.transitionEndsAt },
      });
    });
    return st;
  }

  /**
   * The provider declares, within 14 working days of the request, that 30 days are
   * technically unfeasible, says why, and gives a transition of at most seven months.
   */
  async declare(
    p: Principal,
    project: string,
    name: string,
    body: { transitionDays?: unknown; justification?: unknown },
  ) {
    const { row, spec, st } = await this.read(
      project,
      name,
      (s) => isFederationAdmin(p) || adminOfProviders(p).includes(s.from),
    );
    if (st.declaration)
      throw new Problem('conflict', `provider ${spec.from} declared already, on ${st.declaration.at}`);
    const now = this.clock();
    const errors: FieldError[] = [];
    if (now > new Date(st.declarationDueAt!))
      throw Problem.invalid([
        {
          path: 'transitionDays',
          message: `too late: a longer transition must be declared within ${SWITCHING_LIMITS.declarationWorkingDays} working days of the request (by ${st.declarationDueAt}); it stays ${SWITCHING_LIMITS.transitionDays} days`,
        },
      ]);
    const start = new Date(st.noticeEndsAt!);
    const maxDays = Math.floor(
      (addMonths(start, SWITCHING_LIMITS.declaredMonths).getTime() - start.getTime()) / DAY,
    );
    const days = body.transitionDays;
    if (
      typeof days !== 'number' ||
      !Number.isInteger(days) ||
      days <= SWITCHING_LIMITS.transitionDays ||
      days > maxDays
    )
      errors.push({
        path: 'transitionDays',
        message: `a whole number of days above ${SWITCHING_LIMITS.transitionDays} and at most seven months (${maxDays} days from the transition's start)`,
      });
    const why = typeof body.justification === 'string' ? body.justification.trim() : '';
    if (!why)
      errors.push({
        path: 'justification',
        message: 'say why 30 days are technically unfeasible: the Data Act requires a justification',
      });
    if (errors.length) throw Problem.invalid(errors);
    st.declaration = {
      transitionDays: days as number,
      justification: why,
      at: now.toISOString(),
      by: p.user,
    };
    return this.write(row, st, 'declared', p.user, { declaration: st.declaration });
  }

  /** The customer extends the transition, once. */
  async extend(p: Principal, project: string, name: string, body: { days?: unknown }) {
    const { row, st } = await this.read(
      project,
      name,
      () => isFederationAdmin(p) || adminOfProjects(p).includes(project),
    );
    if (st.extension)
      throw new Problem(
        'conflict',
        `the transition was extended once already (by ${st.extension.days} days on ${st.extension.at}): the Data Act allows one extension`,
      );
    const days = body.days;
    if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > 366)
      throw Problem.invalid([{ path: 'days', message: 'a whole number of days, 1 to 366' }]);
    st.extension = { days, at: this.clock().toISOString(), by: p.user };
    return this.write(row, st, 'extended', p.user, { extension: st.extension });
  }
}

/**
 * Admission of a new SwitchingRequest: one open request per project, providers that
 * exist, a notice of at most two months; a request never changes once made.
 */
export function admitSwitching(clock: () => Date) {
  return async (
    tx: Store,
    parent: string,
    name: string,
    spec: SwitchingSpec,
    existing: StoredResource | undefined,
  ): Promise<FieldError[]> => {
    if (existing)
      return canonical(existing.spec) === canonical(spec)
        ? []
        : [
            {
              path: 'spec',
              message:
                'a switching request does not change once made: the provider declares a longer transition, the customer extends it (continuum switching declare|extend)',
            },
          ];
    const open = (await tx.list('switchings', { parents: [parent] })).find(
      (r) => r.name !== name && (r.status as SwitchingStatus).phase !== 'Completed',
    );
    if (open)
      return [
        {
          path: 'metadata.name',
          message: `project '${parent}' has an open switching request '${open.name}' (${(open.status as SwitchingStatus).phase}): one at a time`,
        },
      ];
    const errors: FieldError[] = [];
    if (!(await tx.get('providers', '', spec.from)))
      errors.push({ path: 'spec.from', message: `provider '${spec.from}' does not exist` });
    if (spec.to.provider && !(await tx.get('providers', '', spec.to.provider)))
      errors.push({ path: 'spec.to.provider', message: `provider '${spec.to.provider}' does not exist` });
    const now = clock();
    if (addDays(now, spec.noticeDays ?? 0) > addMonths(now, SWITCHING_LIMITS.noticeMonths))
      errors.push({ path: 'spec.noticeDays', message: 'the notice period is at most two months' });
    return errors;
  };
}
