// Turns workloads into instances placed by the scheduler. Level-triggered: handlers
// of the change feed only queue keys; sync(key) re-reads the workload and its instances,
// has the planner (workload-plan.ts) decide — placing missing replicas, re-placing those
// whose node is down, draining or no longer complies, removing surplus ones — and the
// applier (workload-apply.ts) write the plan with the workload's status.
import {
  type ImageSpec,
  type ImageStatus,
  MIGRATION_DONE,
  nextExpiry,
  type ProviderSpec,
  providerStatus,
  type WorkloadSpec,
  type WorkloadStatus,
} from '../model/index.js';
import { canonical } from '../resources/index.js';
import { StaticClasses } from '../scheduler/index.js';
import type { Change, InstanceRecord, Store, StoredResource } from '../store/index.js';
import type { ClusterCache } from './cluster-cache.js';
import { type WorkItem, WorkQueue } from './work-queue.js';
import { applyPlan, PlanWrites } from './workload-apply.js';
import {
  type PlanInput,
  type PlannedStatus,
  planWorkload,
  summarize,
  withCompliance,
} from './workload-plan.js';

export interface WorkloadControllerOptions {
  store: Store;
  cache: ClusterCache;
  /**
   * Every workload is converged again this often (default 5 min): a safety net only, as
   * every change that needs a decision queues its workload at once. At 10,000 workloads
   * a resync costs seconds of the controller's time.
   */
  resyncIntervalMs?: number;
  /** Bounds the cost of a placement at fleet scale (see ScheduleOptions.limitFeasible). */
  limitFeasible?: number;
  log?: (msg: string, err?: unknown) => void;
  /** Most workloads converged in one transaction when they pile up (default 8). */
  maxBatch?: number;
  /**
   * After a pass that bound replicas to nodes (placed or re-placed): how many, how long
   * from the start of its pass to the commit of its transaction, and how long the
   * workload had waited in the queue.
   */
  onPlaced?: (replicas: number, passSeconds: number, queuedSeconds: number) => void;
  /** Instances being migrated live (the migration controller's): left alone until it ends. */
  migrating?: () => ReadonlySet<string>;
  /**
   * May this instance move live (the migration controller knows whether its last live move
   * failed)? Absent: moves stop and recreate.
   */
  live?: (inst: InstanceRecord) => boolean;
}

/** How long a live move this controller asked for counts as under way before its migration starts. */
const LIVE_MOVE_GRACE_MS = 60_000;
const NONE: ReadonlySet<string> = new Set();

const ACTOR = 'controller:workloads';
/** Feasible nodes scored per placement: enough for good choices, bounded at fleet scale. */
export const DEFAULT_LIMIT_FEASIBLE = 100;
/**
 * Workloads converged in one transaction when they pile up: a commit costs about as much
 * as placing a workload, and under a burst most of it is shared.
 */
export const DEFAULT_MAX_BATCH = 8;
/**
 * The most while thousands wait (a burst of submissions, a provider lost): a quarter of
 * the transactions for the same work. Measured on PostgreSQL (docs/benchmarks.md,
 * session 18): with the simulated fleet beside it a quarter more placements/s, the
 * controller alone half as many more; a pass takes four times longer.
 */
export const DEFAULT_MAX_BACKLOG_BATCH = 32;
export const DEFAULT_RESYNC_MS = 5 * 60_000;
/** Workloads' status passes in one transaction: three statements whatever their number up to this. */
const MAX_STATUS_BATCH = 100;

/** A workload as a pass reads it: its row (absent: deleted) and its instances by ordinal. */
interface Workload {
  row: StoredResource | undefined;
  instances: InstanceRecord[];
}

/** A queue key, `project/name` (project names hold no '/'). */
function splitKey(key: string): [project: string, name: string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}

export class WorkloadController {
  readonly queue: WorkQueue;
  private timer?: NodeJS.Timeout;
  /** Workloads with replicas that could not be placed: retried when capacity appears. */
  private readonly pending = new Set<string>();
  /** The current transaction gave capacity back (replicas removed or resized). */
  private freed = false;
  /** Live moves asked for (a Migration created), by instance uid, until when they count as under way. */
  private readonly liveMoves = new Map<string, number>();
  /** The images read in the current transaction (see image()). */
  private readonly images = new Map<string, Promise<StoredResource | undefined>>();
  /** Static filter results per class of policies, shared by all workloads' passes. */
  private readonly classes = new StaticClasses();
  private unsubscribe?: () => void;
  /** Per provider, the timer of its next certification or label expiry. */
  private readonly expiries = new Map<string, NodeJS.Timeout>();
  /**
   * Keys of nodes, sites, providers and images that changed: each is re-read into the
   * scheduler's cache and the workloads that depend on it are queued. A failing read is
   * retried with backoff, like a workload's sync.
   */
  readonly fleetQueue: WorkQueue;

  constructor(private readonly opts: WorkloadControllerOptions) {
    this.queue = new WorkQueue(
      (items) => this.syncItems(items),
      (key, err) => opts.log?.(`sync ${key} failed`, err),
      {
        maxBatch: opts.maxBatch ?? DEFAULT_MAX_BATCH,
        maxBacklogBatch: DEFAULT_MAX_BACKLOG_BATCH,
        maxLowBatch: MAX_STATUS_BATCH,
      },
    );
    this.fleetQueue = new WorkQueue(
      async ([item]) => [
        await this.syncFleet(item!.key).then(
          () => undefined,
          (err: unknown) => err,
        ),
      ],
      (key, err) => opts.log?.(`re-reading ${key} failed; retried`, err),
    );
  }

  async start(): Promise<void> {
    await this.opts.cache.refresh();
    this.unsubscribe = this.opts.store.changes.subscribe((changes) => this.onChanges(changes));
    this.queue.start();
    this.fleetQueue.start();
    for (const name of [...this.opts.cache.providerNames()]) await this.expiring(name);
    await this.resyncAll();
    this.timer = setInterval(
      () => this.background('resync', this.resyncAll()),
      this.opts.resyncIntervalMs ?? DEFAULT_RESYNC_MS,
    );
    this.timer.unref();
  }

  stop(): void {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    for (const t of this.expiries.values()) clearTimeout(t);
    this.expiries.clear();
    this.queue.stop();
    this.fleetQueue.stop();
  }

  /** Resolves when neither queue has work (tests use it). */
  async idle(): Promise<void> {
    do {
      await this.fleetQueue.idle();
      await this.queue.idle();
    } while (this.fleetQueue.busy || this.queue.busy);
  }

  /**
   * From the change feed, committed writes of others (this controller's own are in its
   * books already) only queue keys: a workload's spec → a decision; an instance's status
   * → a status pass; an instance removed with what it held (its node was enrolled anew)
   * → its capacity is free and the replica is placed again; a node, site, provider or
   * image → re-read, then what depends on it.
   */
  private onChanges(changes: readonly Change[]): void {
    for (const c of changes) {
      if (c.by === ACTOR) continue;
      switch (c.table) {
        case 'workloads':
          if (c.part !== 'status') this.queue.add(`${c.parent}/${c.name}`);
          break;
        case 'instances': {
          const key = `${c.parent}/${c.workload}`;
          if (c.released) {
            this.opts.cache.releaseCommitted(`${c.released.provider}/${c.released.node}`, c.released);
            this.queue.add(key);
          } else if (c.part === 'status' || c.part === 'deleted') this.queue.addLow(key);
          else this.queue.add(key);
          break;
        }
        case 'nodes':
        case 'sites':
        case 'providers':
        case 'images':
          if (!c.bookkeeping) this.fleetQueue.add(`${c.table} ${c.parent}/${c.name}`);
          break;
        case 'migrations':
          // A migration ended: if it did not move its instance, the workload decides again.
          if (c.part === 'status') this.fleetQueue.add(`${c.table} ${c.parent}/${c.name}`);
          break;
      }
    }
  }

  /** Re-reads a changed node, site, provider or image (a fleetQueue key) and queues its dependents. */
  private async syncFleet(key: string): Promise<void> {
    const space = key.indexOf(' ');
    const table = key.slice(0, space);
    const [parent, name] = splitKey(key.slice(space + 1));
    if (table === 'nodes') await this.nodeChanged(parent, name);
    else if (table === 'sites') await this.siteChanged(parent, name);
    else if (table === 'providers') await this.providerChanged(name);
    else if (table === 'images') await this.enqueueUsersOfImage(parent, name);
    else if (table === 'migrations') await this.migrationChanged(parent, name);
  }

  private async migrationChanged(project: string, name: string): Promise<void> {
    const m = await this.opts.store.get('migrations', project, name);
    if (!m || !MIGRATION_DONE.includes(m.status.phase)) return;
    const inst = await this.opts.store.getInstance(project, m.spec.instance);
    if (!inst) return;
    this.liveMoves.delete(inst.uid);
    this.queue.add(`${project}/${inst.workload}`);
  }

  /** A node appeared, changed state or was cordoned: re-read it and revisit what depends on it. */
  private async nodeChanged(provider: string, node: string): Promise<void> {
    await this.opts.cache.refreshNode(provider, node);
    for (const i of await this.opts.store.listInstances({ provider, node }))
      this.queue.add(`${i.project}/${i.workload}`);
    this.retryPending();
  }

  /**
   * Work started by a timer: a failure (the store unreachable a moment) is logged, never
   * an unhandled rejection; the next resync revisits what it missed.
   */
  private background(what: string, work: Promise<unknown>): void {
    work.catch((err) => this.opts.log?.(`${what} failed`, err));
  }

  /** A provider's attributes changed: its replicas are checked against their rules again. */
  private async providerChanged(provider: string): Promise<void> {
    await this.opts.cache.refreshProvider(provider);
    await this.expiring(provider);
    for (const w of await this.opts.store.instanceWorkloads({ provider }))
      this.queue.add(`${w.project}/${w.workload}`);
    this.retryPending();
  }

  /**
   * A provider's certifications and Gaia-X label count only until they expire: its status
   * is brought up to what is valid now, and at its next expiry it is read again like a
   * changed provider — the replicas placed under what expired are then out of policy,
   * and moved.
   */
  private async expiring(name: string): Promise<void> {
    clearTimeout(this.expiries.get(name));
    this.expiries.delete(name);
    const row = this.opts.cache.provider(name);
    if (!row) return;
    const spec = row.spec as ProviderSpec;
    const now = Date.now();
    const status = providerStatus(spec, now);
    if (canonical(status) !== canonical(row.status))
      await this.opts.store.transaction((tx) => tx.setStatus('providers', row.uid, status), { by: ACTOR });
    const at = nextExpiry(spec.sovereignty, now);
    if (at === undefined) return;
    const timer = setTimeout(
      () => {
        this.expiries.delete(name);
        this.fleetQueue.add(`providers /${name}`);
      },
      Math.min(at - now, 2 ** 31 - 1),
    );
    timer.unref();
    this.expiries.set(name, timer);
  }

  /**
   * A site's attributes or measured round-trip times changed: placements that wait may
   * now fit, and the replicas on its nodes are checked again.
   */
  private async siteChanged(provider: string, site: string): Promise<void> {
    await this.opts.cache.refreshSite(provider, site);
    for (const w of await this.opts.store.instanceWorkloads({ provider, site }))
      this.queue.add(`${w.project}/${w.workload}`);
    this.retryPending();
  }

  private retryPending(): void {
    for (const k of this.pending) this.queue.add(k);
  }

  private async enqueueUsersOfImage(project: string, image: string): Promise<void> {
    for (const w of await this.opts.store.list('workloads', { parents: [project] }))
      if ((w.spec as WorkloadSpec).image === image) this.queue.add(`${project}/${w.name}`);
  }

  private async resyncAll(): Promise<void> {
    const store = this.opts.store;
    for (const w of await store.list('workloads')) this.queue.add(`${w.parent}/${w.name}`);
    for (const i of await store.instanceWorkloads()) this.queue.add(`${i.project}/${i.workload}`);
  }

  /** Converges one workload now. */
  async sync(key: string): Promise<void> {
    const [err] = await this.syncItems([{ key, queuedAt: performance.now(), low: false }]);
    if (err !== undefined) throw err;
  }

  /**
   * Converges the workloads (a status pass for those queued for status only) in one
   * transaction; returns the error of each that failed, by position.
   */
  async syncItems(items: readonly WorkItem[]): Promise<unknown[]> {
    // Decisions are taken on the fleet as committed: a node enrolled anew in the same
    // transaction that evicted its instances is known not ready before they are placed again.
    if (this.fleetQueue.busy) await this.fleetQueue.idle();
    const passes: { started: number; bound: number; queuedAt: number }[] = [];
    const cache = this.opts.cache;
    cache.begin();
    this.freed = false;
    try {
      await this.opts.store.transaction(
        async (tx) => {
          passes.length = 0;
          this.images.clear();
          const writes = new PlanWrites();
          const decide = items.filter((i) => !i.low);
          // Every workload and its instances read in two statements, before any pass writes.
          const read = await this.readWorkloads(
            tx,
            decide.map((i) => i.key),
          );
          for (const { key, queuedAt } of decide) {
            const started = performance.now();
            passes.push({ started, bound: await this.converge(tx, key, read(key), writes), queuedAt });
          }
          await this.statusPasses(
            tx,
            items.filter((i) => i.low).map((i) => i.key),
            writes,
          );
          await writes.flush(tx, ACTOR);
        },
        { by: ACTOR },
      );
    } catch (err) {
      // Reservations made during a failed transaction must not linger.
      await cache.rollback();
      if (items.length === 1) return [err];
      // One at a time, so that a failing workload does not hold the others back.
      const errors: unknown[] = [];
      for (const item of items) errors.push((await this.syncItems([item]))[0]);
      return errors;
    }
    await cache.commit();
    // Capacity given back may be what waiting replicas need.
    if (this.freed) this.retryPending();
    const committed = performance.now();
    for (const { started, bound, queuedAt } of passes)
      if (bound) this.opts.onPlaced?.(bound, (committed - started) / 1000, (started - queuedAt) / 1000);
    return [];
  }

  /**
   * Brings workloads' phases and ready counts up to their instances' reported phases:
   * what agents' reports change, without the placement machinery of a full pass (the
   * next full pass, queued by any change that needs a decision, does the rest). Three
   * statements for the lot: on PostgreSQL a statement is a round trip, and a fleet's
   * reports queue a status pass for most workloads.
   */
  private async statusPasses(tx: Store, keys: readonly string[], writes: PlanWrites): Promise<void> {
    if (!keys.length) return;
    const names = keys.map((k) => {
      const [project, name] = splitKey(k);
      return { project, name };
    });
    const rows = await tx.getMany(
      'workloads',
      names.map(({ project, name }) => ({ parent: project, name })),
    );
    const phases = await tx.instancePhases(names.map(({ project, name }) => ({ project, workload: name })));
    for (const key of keys) {
      const w = rows.get(key);
      if (!w) continue;
      const old = w.status as WorkloadStatus;
      const summary = summarize((w.spec as WorkloadSpec).replicas, phases.get(key) ?? []);
      const { readyReplicas } = summary;
      const phase = withCompliance(summary.phase, old.outOfPolicy?.length ?? 0);
      if (phase !== old.phase || readyReplicas !== old.readyReplicas)
        writes.status(w.uid, Object.assign({}, old, { phase, readyReplicas }));
    }
  }

  /** The workloads and their instances, read for many passes at once. */
  private async readWorkloads(tx: Store, keys: readonly string[]): Promise<(key: string) => Workload> {
    const names = keys.map((k) => {
      const [project, name] = splitKey(k);
      return { project, name };
    });
    const rows = await tx.getMany(
      'workloads',
      names.map(({ project, name }) => ({ parent: project, name })),
    );
    const instances = await tx.instancesOfWorkloads(
      names.map(({ project, name }) => ({ project, workload: name })),
    );
    return (key) => ({ row: rows.get(key), instances: instances.get(key) ?? [] });
  }

  /** Instances being migrated, and those whose live move this controller asked for a moment ago. */
  private migratingNow(): ReadonlySet<string> {
    const running = this.opts.migrating?.() ?? NONE;
    // The common case, on every pass: nothing migrates, nothing to copy.
    if (!this.liveMoves.size) return running;
    const now = performance.now();
    const out = new Set(running);
    for (const [uid, until] of this.liveMoves)
      if (until < now) this.liveMoves.delete(uid);
      else out.add(uid);
    return out;
  }

  /** Converges one workload: plans from what was read, applies the plan; returns the replicas bound. */
  private async converge(tx: Store, key: string, read: Workload, writes: PlanWrites): Promise<number> {
    const [project, name] = splitKey(key);
    const { row: w, instances } = read;
    // One clock reading per pass: every row it writes carries the same time.
    const now = new Date().toISOString();
    const spec = w?.spec as WorkloadSpec | undefined;
    const plan = planWorkload(
      {
        key,
        ...(w && spec
          ? { workload: { generation: w.generation, spec, status: w.status as PlannedStatus } }
          : {}),
        instances,
        image: spec ? await this.image(tx, project, spec.image, spec.kind) : { unavailable: 'no workload' },
        now,
        migrating: this.migratingNow(),
        ...(this.opts.live ? { live: this.opts.live } : {}),
      },
      this.opts.cache,
      { limitFeasible: this.opts.limitFeasible ?? DEFAULT_LIMIT_FEASIBLE, classes: this.classes },
    );
    await applyPlan(tx, { project, name, ...(w ? { uid: w.uid } : {}) }, plan, ACTOR, now, writes);
    for (const step of plan.steps)
      if (step.op === 'migrate')
        this.liveMoves.set(step.instance.uid, performance.now() + LIVE_MOVE_GRACE_MS);
    if (plan.freed) this.freed = true;
    if (plan.waiting) this.pending.add(key);
    else this.pending.delete(key);
    return plan.bound;
  }

  /**
   * The workload's image as instances carry it, or why it cannot run yet. Read once per
   * transaction: the workloads converged together mostly share their images.
   */
  private async image(
    tx: Store,
    project: string,
    name: string,
    kind: WorkloadSpec['kind'],
  ): Promise<PlanInput['image']> {
    const key = `${project}/${name}`;
    let img = this.images.get(key);
    if (!img) {
      img = tx.get('images', project, name);
      this.images.set(key, img);
    }
    return imageInput(await img, project, name, kind);
  }
}

function imageInput(
  img: StoredResource | undefined,
  project: string,
  name: string,
  kind: WorkloadSpec['kind'],
): PlanInput['image'] {
  if (!img) return { unavailable: `image '${name}' does not exist in project '${project}'` };
  const spec = img.spec as ImageSpec;
  if ((spec.format === 'oci') !== (kind === 'container'))
    return {
      unavailable:
        kind === 'container'
          ? `image '${name}' is a ${spec.format} VM image: a container runs an oci image`
          : `image '${name}' is an OCI image: a VM runs a qcow2, raw or kernel-initrd image`,
    };
  if ((img.status as ImageStatus).phase !== 'Available')
    return { unavailable: `image '${name}' is not available yet (upload its files)` };
  return {
    project,
    name,
    format: spec.format,
    files: spec.files,
    ...(spec.cmdline !== undefined ? { cmdline: spec.cmdline } : {}),
    ...(spec.ref !== undefined ? { ref: spec.ref } : {}),
  };
}
