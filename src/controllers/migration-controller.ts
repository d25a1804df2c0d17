// Runs Migrations. A new Migration is queued from the change feed; its target is chosen
// by the scheduler under the workload's policy (the same check refuses a bad request at
// the API, see `admitMigration`), its room reserved, and a job drives the two agents:
// the destination prepares a paused copy and listens, the source streams (progress in
// the status), and only once QEMU reports completion does the instance's binding move
// to the destination, with a higher fence. Any failure before that leaves the VM
// running on the source and removes what the destination prepared; the reason goes on
// the Migration.
import { randomBytes } from 'node:crypto';
import { MIGRATION_DONE, type MigrationSpec, type MigrationStatus } from '../model/index.js';
import type { AgentRequestMethod, AgentRequests, TransferProgress } from '../protocol/index.js';
import type { CandidateNode } from '../scheduler/index.js';
import {
  type Change,
  desiredInstanceOf,
  type InstanceRecord,
  instanceEventDoc,
  type Store,
  type StoredResource,
} from '../store/index.js';
import type { ClusterCache } from './cluster-cache.js';
import { chooseTarget } from './migration-target.js';
import { WorkQueue } from './work-queue.js';
import { held } from './workload-plan.js';

/** An incoming migration still reading its stream (QEMU's `query-migrate` states). */
const IN_FLIGHT = new Set(['active', 'device', 'postcopy-active', 'cancelling', 'wait-unplug']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ACTOR = 'controller:migrations';
const WORKLOADS_ACTOR = 'controller:workloads';

/** What the controller needs of the agent gateway. */
export interface AgentLink {
  request<M extends AgentRequestMethod>(
    provider: string,
    node: string,
    method: M,
    params: AgentRequests[M]['params'],
    timeoutMs?: number,
  ): Promise<AgentRequests[M]['result']>;
  on(
    event: 'migration-progress',
    fn: (migration: string, p: TransferProgress, provider: string, node: string) => void,
  ): unknown;
  off(event: 'migration-progress', fn: (...args: any[]) => void): unknown;
  /**
   * Lets a node fetch these image files (wherever its agent is connected, once resolved);
   * gives the function that takes the grant back.
   */
  allowImages(provider: string, node: string, sha256s: readonly string[]): Promise<() => void>;
  /** Lets the two nodes relay this migration's streams through the gateways; gives the undo. */
  allowRelay(migration: string, source: string, target: string): Promise<() => void>;
}

export interface MigrationControllerOptions {
  store: Store;
  cache: ClusterCache;
  agents?: AgentLink;
  log?: (msg: string, err?: unknown) => void;
  /** Longest a migration may stream before it is cancelled (default 30 min). */
  timeoutMs?: number;
}

interface Job {
  migration: string;
  cancelled: boolean;
  source: { provider: string; node: string };
  instance: string;
}

export class MigrationController {
  readonly queue: WorkQueue;
  /** Migrations this process runs now, by `project/name`. */
  private readonly jobs = new Map<string, Job>();
  /** Pending migrations waiting for a slot of their drain's bound. */
  private readonly waiting = new Set<string>();
  private unsubscribe?: () => void;

  constructor(private readonly opts: MigrationControllerOptions) {
    this.queue = new WorkQueue(
      async ([item]) => [
        await this.sync(item!.key).then(
          () => undefined,
          (err: unknown) => err,
        ),
      ],
      (key, err) => opts.log?.(`migration ${key} failed`, err),
    );
  }

  async start(): Promise<void> {
    this.unsubscribe = this.opts.store.changes.subscribe((changes) => {
      for (const c of changes as Change[])
        if (c.table === 'migrations' && c.part !== 'status' && c.part !== 'deleted')
          this.queue.add(`${c.parent}/${c.name}`);
    });
    this.queue.start();
    for (const m of await this.opts.store.list('migrations'))
      if (!MIGRATION_DONE.includes((m.status as MigrationStatus).phase))
        this.queue.add(`${m.parent}/${m.name}`);
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
    for (const j of this.jobs.values()) j.cancelled = true;
  }

  /** Instances being migrated now (by uid): the workload controller leaves them where they are. */
  readonly migrating = new Set<string>();
  /** When each instance's last live migration failed: moves stop and recreate for a while. */
  private readonly failedLive = new Map<string, number>();

  /**
   * May the workload controller move this instance live? It runs, and no live move the
   * workload controller asked for failed in the last ten minutes (then stop-and-recreate
   * moves it instead, so that a move that cannot work live is not tried for ever).
   */
  live(inst: InstanceRecord): boolean {
    if (inst.desired !== 'running' || inst.status.phase !== 'Running') return false;
    // A container moves by being started anew elsewhere (containers do not migrate yet).
    if (inst.spec.image.format === 'oci') return false;
    const failed = this.failedLive.get(inst.uid);
    if (failed === undefined) return true;
    if (Date.now() - failed < 10 * 60_000) return false;
    this.failedLive.delete(inst.uid);
    return true;
  }

  /** Resolves when no migration is queued or running (tests use it). */
  async idle(): Promise<void> {
    await this.queue.idle();
    while (this.jobs.size) await new Promise((r) => setTimeout(r, 50));
  }

  private async sync(key: string): Promise<void> {
    const slash = key.indexOf('/');
    const [project, name] = [key.slice(0, slash), key.slice(slash + 1)];
    const store = this.opts.store;
    const row = await store.get('migrations', project, name);
    const job = this.jobs.get(key);
    if (!row) {
      if (job) this.cancel(job);
      return;
    }
    const spec = row.spec as MigrationSpec;
    const status = row.status as MigrationStatus;
    if (MIGRATION_DONE.includes(status.phase)) return;
    if (job) {
      if (spec.cancel) this.cancel(job);
      return;
    }
    if (status.phase !== 'Pending') {
      // Started by a control plane that is gone: its streams went with it.
      await this.cleanUp(row, status);
      return;
    }
    if (spec.cancel) {
      await this.forgetBooking(row, spec);
      return this.write(row, { phase: 'Cancelled', message: 'cancelled before it started' });
    }
    if (!this.opts.agents) {
      await this.forgetBooking(row, spec);
      return this.write(row, { phase: 'Failed', message: 'this control plane runs no agent gateway' });
    }
    if (await this.waitForSlot(key, row, spec, status)) return;
    const choice = await chooseTarget(store, this.opts.cache, project, name, spec);
    if (!choice.ok) {
      await this.forgetBooking(row, spec);
      return this.write(row, { phase: 'Failed', message: choice.refusal.message });
    }
    const { instance, target, mode, modeReason } = choice;
    // A live move the workload controller asked for was booked by its planner.
    if (row.createdBy !== WORKLOADS_ACTOR) this.opts.cache.reserve(target.key, held(instance));
    const started: MigrationStatus = {
      phase: 'Preparing',
      mode,
      ...(modeReason ? { modeReason } : {}),
      from: `${instance.provider}/${instance.node}`,
      target: target.key,
      startedAt: new Date().toISOString(),
    };
    await this.write(row, started);
    const j: Job = {
      migration: row.uid,
      cancelled: false,
      source: { provider: instance.provider, node: instance.node },
      instance: instance.uid,
    };
    this.jobs.set(key, j);
    this.migrating.add(instance.uid);
    void this.run(row, j, instance, target, started).finally(() => {
      this.jobs.delete(key);
      this.migrating.delete(instance.uid);
      // A slot is free: migrations that waited for one try again.
      for (const k of this.waiting) this.queue.add(k);
      this.waiting.clear();
    });
  }

  /**
   * A drain with a bound (`drainParallel`) lets that many migrations off the node run at
   * once; the others wait, Pending, and are queued again as each ends. True: it waits.
   */
  private async waitForSlot(
    key: string,
    row: StoredResource,
    spec: MigrationSpec,
    status: MigrationStatus,
  ): Promise<boolean> {
    const store = this.opts.store;
    const inst = await store.getInstance(row.parent, spec.instance);
    const source = inst && (await store.get('nodes', inst.provider, inst.node));
    const bound = source?.spec.drain ? (source.spec.drainParallel as number | undefined) : undefined;
    if (!inst || !bound) return false;
    let running = 0;
    for (const j of this.jobs.values())
      if (j.source.provider === inst.provider && j.source.node === inst.node) running++;
    if (running < bound) return false;
    this.waiting.add(key);
    // Under way as far as the workload controller is concerned: not to be moved otherwise.
    this.migrating.add(inst.uid);
    const message = `waits: ${running} of ${bound} migrations off ${inst.provider}/${inst.node} run (its drain's --parallel)`;
    if (status.message !== message) await this.write(row, { ...status, message });
    return true;
  }

  /** A live move the planner booked that will not run: its booking and its instance are given back. */
  private async forgetBooking(row: StoredResource, spec: MigrationSpec): Promise<void> {
    if (row.createdBy !== WORKLOADS_ACTOR || !spec.to?.node) return;
    const inst = await this.opts.store.getInstance(row.parent, spec.instance);
    if (!inst) return;
    this.opts.cache.release(spec.to.node, held(inst));
    if (!spec.cancel) this.failedLive.set(inst.uid, Date.now());
  }

  private cancel(j: Job): void {
    if (j.cancelled) return;
    j.cancelled = true;
    this.opts.agents
      ?.request(j.source.provider, j.source.node, 'migrate-cancel', {
        migration: j.migration,
        uid: j.instance,
      })
      .catch(() => undefined);
  }

  /** Drives one migration to its end; never rejects. */
  private async run(
    row: StoredResource,
    j: Job,
    instance: InstanceRecord,
    target: CandidateNode,
    started: MigrationStatus,
  ): Promise<void> {
    const agents = this.opts.agents!;
    const secret = { identity: `continuum-${row.uid.slice(0, 8)}`, keyHex: randomBytes(32).toString('hex') };
    let status = started;
    let lastWrite = 0;
    const onProgress = (migration: string, p: TransferProgress, provider: string, node: string) => {
      // Only the source of this migration speaks for it.
      if (migration !== row.uid || provider !== j.source.provider || node !== j.source.node) return;
      status = {
        ...status,
        phase: p.phase === 'mirroring' ? 'Mirroring' : p.phase === 'copying' ? 'Copying' : 'Migrating',
        ...(p.path ? { path: p.path } : {}),
        progress: progressOf(p),
      };
      if (Date.now() - lastWrite < 500) return;
      lastWrite = Date.now();
      this.write(row, status).catch((err) => this.opts.log?.('writing migration progress failed', err));
    };
    agents.on('migration-progress', onProgress);
    const files = Object.values(instance.spec.image.files).flatMap((f) => (f ? [f.sha256] : []));
    let revokeImages = () => {};
    let endRelay = () => {};
    let prepared = false;
    const cold = started.mode === 'cold';
    const mode = started.mode ?? 'live';
    /** Cold: the source's copy may be stopped and sent (given back if the migration fails). */
    let sent = false;
    const sending = Date.now();
    try {
      // Given on every replica before either node is asked anything.
      revokeImages = await agents.allowImages(target.provider, target.node, files);
      endRelay = await agents.allowRelay(row.uid, `${j.source.provider}/${j.source.node}`, target.key);
      const endpoint = await agents.request(
        target.provider,
        target.node,
        'migrate-receive',
        { migration: row.uid, instance: desiredInstanceOf(instance), secret, ...(cold ? { mode } : {}) },
        120_000,
      );
      prepared = true;
      if (j.cancelled) throw new Error('cancelled');
      let done: TransferProgress;
      // Cold: from here on the source may have stopped and sent its copy, reply or not.
      sent = cold;
      try {
        done = await agents.request(
          j.source.provider,
          j.source.node,
          'migrate-send',
          { migration: row.uid, uid: instance.uid, to: endpoint, secret, ...(cold ? { mode } : {}) },
          this.opts.timeoutMs ?? 30 * 60_000,
        );
      } catch (err) {
        // The source may have gone while QEMU finished the stream on its own: the
        // destination knows, once it has read what was still on the way.
        if (cold || (await this.settled(target, row.uid, instance.uid)) !== 'completed') throw err;
        done = { phase: 'completed' };
      }
      if (cold) {
        // The source's copy is stopped and sent: the destination checks what it received
        // against the source's SHA-256 and makes the instance of it.
        if (j.cancelled) throw new Error('cancelled');
        await agents.request(
          target.provider,
          target.node,
          'migrate-finish',
          { migration: row.uid, uid: instance.uid, sha256: done.sha256 ?? '' },
          10 * 60_000,
        );
      } else {
        // The source has sent everything; the destination may still be reading the tail
        // (a relay holds megabytes in flight): it is bound there once it has it all. The
        // source's copy is paused for good: whatever the destination's agent says (it may
        // be restarting), the binding goes there — its agent adopts the guest, or starts
        // the instance afresh if its QEMU is gone.
        const there = await this.settled(target, row.uid, instance.uid, true);
        if (there !== 'completed')
          status = {
            ...status,
            message: `the destination's agent said '${there}' after the source completed; bound there all the same`,
          };
      }
      const bound = await this.bind(instance, target);
      if (!bound) throw new Error('the instance changed while it migrated; it stays where it was');
      agents.off('migration-progress', onProgress);
      revokeImages();
      endRelay();
      await this.write(row, {
        ...status,
        phase: 'Succeeded',
        ...(done.path ? { path: done.path } : {}),
        progress: progressOf(done),
        ...(done.downtimeMs !== undefined ? { downtimeMs: done.downtimeMs } : {}),
        ...(done.totalTimeMs !== undefined ? { totalTimeMs: done.totalTimeMs } : {}),
        // Cold: the instance was stopped from the start of the copy until its binding
        // moved (it starts on the destination right after).
        ...(cold ? { totalTimeMs: Date.now() - sending } : {}),
        finishedAt: new Date().toISOString(),
      });
    } catch (err) {
      agents.off('migration-progress', onProgress);
      revokeImages();
      endRelay();
      this.opts.cache.release(target.key, held(instance));
      if (prepared)
        await agents
          .request(target.provider, target.node, 'migrate-abort', { migration: row.uid, uid: instance.uid })
          .catch((e) =>
            this.opts.log?.(`migration ${row.parent}/${row.name}: cleaning up the destination failed`, e),
          );
      if (sent)
        await agents
          .request(j.source.provider, j.source.node, 'migrate-reclaim', {
            migration: row.uid,
            uid: instance.uid,
          })
          .catch((e) =>
            this.opts.log?.(`migration ${row.parent}/${row.name}: giving the source its copy back failed`, e),
          );
      const cancelled = j.cancelled;
      // A live move the planner asked for that failed: its next move stops and recreates.
      if (!cancelled && row.createdBy === WORKLOADS_ACTOR) this.failedLive.set(instance.uid, Date.now());
      await this.write(row, {
        ...status,
        phase: cancelled ? 'Cancelled' : 'Failed',
        message: cancelled
          ? 'cancelled; the instance keeps running on its node'
          : `${(err as Error).message}; the instance keeps running on ${j.source.provider}/${j.source.node}`,
        finishedAt: new Date().toISOString(),
      }).catch((e) => this.opts.log?.('recording a failed migration failed', e));
    }
  }

  /**
   * QEMU completed: the instance's binding moves to the destination with a higher fence
   * (the source's copy is stopped already and never resumes). False when the instance
   * changed meanwhile.
   */
  private async bind(instance: InstanceRecord, target: CandidateNode): Promise<boolean> {
    const bound = await this.opts.store.transaction(
      async (tx) => {
        const now = await tx.getInstanceByUid(instance.uid);
        if (
          !now ||
          now.fence !== instance.fence ||
          now.node !== instance.node ||
          now.provider !== instance.provider
        )
          return false;
        const draft: InstanceRecord = {
          ...now,
          provider: target.provider,
          node: target.node,
          fence: now.fence + 1,
        };
        const e = await tx.appendEvent({
          actor: ACTOR,
          action: 'migrate',
          kind: 'Instance',
          parent: now.project,
          name: now.name,
          provider: target.provider,
          project: now.project,
          before: instanceEventDoc(now),
          after: instanceEventDoc(draft),
        });
        await tx.setInstanceDesired({ ...draft, revision: e.seq }, now);
        // Running on the destination; its agent reports the new address and ports.
        await tx.setInstanceStatus(now.uid, { ...now.status, ports: [] });
        return true;
      },
      { by: ACTOR },
    );
    if (bound) this.opts.cache.release(`${instance.provider}/${instance.node}`, held(instance));
    return bound;
  }

  /**
   * The destination's incoming migration once it is over (QEMU's words: completed,
   * failed …), waiting while it still reads the stream; `unknown` when its agent does
   * not answer.
   */
  private async settled(
    target: { provider: string; node: string },
    migration: string,
    uid: string,
    /** An agent that does not answer may be reconnecting: asked again until the deadline. */
    waitUnknown = false,
  ) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { state } = await this.opts
        .agents!.request(target.provider, target.node, 'migrate-state', { migration, uid })
        .catch(() => ({ state: 'unknown' }));
      const waiting = IN_FLIGHT.has(state) || (waitUnknown && state === 'unknown');
      if (!waiting || Date.now() > deadline) return state;
      await sleep(state === 'unknown' ? 1000 : 100);
    }
  }

  /**
   * A migration left in flight by a control plane that stopped: nothing streams it now.
   * If the destination's stream completed meanwhile (QEMU finishes on its own), the guest
   * runs there: the binding moves. Otherwise what the destination prepared goes.
   */
  private async cleanUp(row: StoredResource, status: MigrationStatus): Promise<void> {
    const spec = row.spec as MigrationSpec;
    const inst = await this.opts.store.getInstance(row.parent, spec.instance);
    const agents = this.opts.agents;
    if (inst && status.target && agents) {
      const [provider, node] = status.target.split('/') as [string, string];
      const params = { migration: row.uid, uid: inst.uid };
      let there: { state: string };
      try {
        there = await agents.request(provider, node, 'migrate-state', params);
      } catch (err) {
        // Its agent may not have reconnected yet: asked again (the queue backs off),
        // for a while, before the migration is given up.
        if (Date.now() - Date.parse(status.startedAt ?? '') < 10 * 60_000) throw err;
        there = { state: 'unknown' };
      }
      const target = this.opts.cache.get(status.target);
      if (there.state === 'completed' && target) {
        this.opts.cache.reserve(target.key, held(inst));
        if (await this.bind(inst, target)) {
          await this.write(row, {
            ...status,
            phase: 'Succeeded',
            message: 'completed while the control plane restarted',
            finishedAt: new Date().toISOString(),
          });
          return;
        }
        this.opts.cache.release(target.key, held(inst));
      }
      await agents.request(provider, node, 'migrate-abort', params).catch(() => undefined);
      // A cold migration's source copy, stopped and sent, is the instance again.
      await agents.request(inst.provider, inst.node, 'migrate-reclaim', params).catch(() => undefined);
    }
    await this.write(row, {
      ...status,
      phase: 'Failed',
      message: 'the control plane restarted during the migration; the instance stays where it runs',
      finishedAt: new Date().toISOString(),
    });
  }

  /**
   * Writes a migration's status; a new phase goes into the audit log too, so the event
   * stream shows a migration's course (its progress bytes stay in the status).
   */
  private async write(row: StoredResource, status: MigrationStatus): Promise<void> {
    await this.opts.store.transaction(
      async (tx) => {
        const now = await tx.get('migrations', row.parent, row.name);
        if (!now || now.uid !== row.uid) return;
        const was = (now.status as MigrationStatus).phase;
        // A progress write that arrives late never overwrites how the migration ended.
        if (MIGRATION_DONE.includes(was)) return;
        await tx.setStatus('migrations', row.uid, status, { phase: status.phase });
        if (was === status.phase) return;
        await tx.appendEvent({
          actor: ACTOR,
          action: status.phase.toLowerCase(),
          kind: 'Migration',
          parent: row.parent,
          name: row.name,
          provider: null,
          project: row.parent,
          before: { phase: was },
          after: { instance: (row.spec as MigrationSpec).instance, ...status },
        });
      },
      { by: ACTOR },
    );
  }
}

function progressOf(p: TransferProgress): NonNullable<MigrationStatus['progress']> {
  const { phase: _phase, downtimeMs: _d, totalTimeMs: _t, path: _p, ...rest } = p;
  return rest;
}
