// Turns workloads into instances placed by the scheduler. Level-triggered: sync(key)
// re-reads the workload and its instances and converges — placing missing replicas,
// re-placing those whose node is down or draining (the instance moves, its fence rises,
// so a returning node's copy is stopped), removing surplus ones — and records why each
// replica is where it is, or why it cannot be placed.
import type { ImageSpec, ImageStatus, WorkloadSpec, WorkloadStatus } from '../model/index.js';
import { canonical } from '../resources/index.js';
import {
  type CandidateNode,
  type Decision,
  domainOf,
  type Explanation,
  type PlacementRequest,
  Placer,
  REASONS,
  StaticClasses,
  unschedulableMessage,
  violations,
} from '../scheduler/index.js';
import {
  type Change,
  type DesiredState,
  type InstanceRecord,
  type InstanceSpec,
  instanceEventDoc,
  newUid,
  type Store,
} from '../store/index.js';
import type { ClusterCache } from './cluster-cache.js';
import { type WorkItem, WorkQueue } from './work-queue.js';

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
}

const ACTOR = 'controller:workloads';
const DEFAULT_DISK_GIB = 10;
/** Feasible nodes scored per placement: enough for good choices, bounded at fleet scale. */
export const DEFAULT_LIMIT_FEASIBLE = 100;
/**
 * Workloads converged in one transaction when they pile up: a commit costs about as much
 * as placing a workload, and under a burst most of it is shared.
 */
export const DEFAULT_MAX_BATCH = 8;
export const DEFAULT_RESYNC_MS = 5 * 60_000;

export interface PlacementStatus {
  attemptedAt: string;
  placed: number;
  pending: number;
  message?: string;
  explanation?: Explanation;
}

type Desired = Pick<InstanceRecord, 'vcpus' | 'memoryMiB' | 'diskGiB' | 'spec'>;

/** A replica that breaks its workload's rules where it runs, with no compliant node to go to. */
export interface OutOfPolicy {
  replica: string;
  node: string;
  reasons: string[];
  message: string;
}

/** A queue key, `project/name` (project names hold no '/'). */
function splitKey(key: string): [project: string, name: string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}

/** A workload's phase from its instances' desired states and reported phases. */
export function summarize(
  replicas: number,
  instances: readonly { desired: DesiredState; phase: string }[],
): { phase: WorkloadStatus['phase']; readyReplicas: number } {
  let ready = 0;
  let failed = false;
  for (const i of instances) {
    if (i.desired === 'running' && i.phase === 'Running') ready++;
    if (i.desired !== 'absent' && i.phase === 'Failed') failed = true;
  }
  const phase = ready === replicas ? 'Running' : failed ? 'Failed' : ready > 0 ? 'Degraded' : 'Pending';
  return { phase, readyReplicas: ready };
}

/** Running replicas that break the rules are not a healthy workload. */
function withCompliance(phase: WorkloadStatus['phase'], outOfPolicy: number): WorkloadStatus['phase'] {
  return outOfPolicy > 0 && phase === 'Running' ? 'Degraded' : phase;
}

export class WorkloadController {
  readonly queue: WorkQueue;
  private timer?: NodeJS.Timeout;
  /** Workloads with replicas that could not be placed: retried when capacity appears. */
  private readonly pending = new Set<string>();
  /** The current transaction gave capacity back (replicas removed or resized). */
  private freed = false;
  /** Static filter results per class of policies, shared by all workloads' passes. */
  private readonly classes = new StaticClasses();
  private unsubscribe?: () => void;
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
      { maxBatch: opts.maxBatch ?? DEFAULT_MAX_BATCH },
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
    for (const w of await this.opts.store.instanceWorkloads({ provider }))
      this.queue.add(`${w.project}/${w.workload}`);
    this.retryPending();
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
    const passes: { started: number; bound: number }[] = [];
    const cache = this.opts.cache;
    cache.begin();
    this.freed = false;
    try {
      await this.opts.store.transaction(
        async (tx) => {
          passes.length = 0;
          for (const { key, low } of items) {
            const started = performance.now();
            const bound = low ? await this.statusPass(tx, key) : await this.converge(tx, key);
            passes.push({ started, bound });
          }
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
    for (const [i, { started, bound }] of passes.entries())
      if (bound)
        this.opts.onPlaced?.(bound, (committed - started) / 1000, (started - items[i]!.queuedAt) / 1000);
    return [];
  }

  /**
   * Brings a workload's phase and ready count up to its instances' reported phases: what
   * agents' reports change, without the placement machinery of a full pass (the next
   * full pass, queued by any change that needs a decision, does the rest).
   */
  private async statusPass(tx: Store, key: string): Promise<0> {
    const [project, name] = splitKey(key);
    const w = await tx.get('workloads', project, name);
    if (!w) return 0;
    const old = w.status as WorkloadStatus;
    const summary = summarize((w.spec as WorkloadSpec).replicas, await tx.instancePhases(project, name));
    const { readyReplicas } = summary;
    const phase = withCompliance(summary.phase, old.outOfPolicy?.length ?? 0);
    if (phase !== old.phase || readyReplicas !== old.readyReplicas)
      await tx.setStatus('workloads', w.uid, { ...old, phase, readyReplicas }, { phase });
    return 0;
  }

  /** Converges one workload; returns how many replicas it bound to a node. */
  private async converge(tx: Store, key: string): Promise<number> {
    const cache = this.opts.cache;
    const [project, name] = splitKey(key);
    const w = await tx.get('workloads', project, name);
    const instances = await tx.workloadInstances(project, name);
    // One clock reading per pass: every row it writes carries the same time.
    const now = new Date().toISOString();

    // What the instances look like after this sync, for the workload's status (no re-read).
    const states = new Map(instances.map((i) => [i.uid, { desired: i.desired, phase: i.status.phase }]));
    const write = async (inst: InstanceRecord, next: Partial<InstanceRecord>, action: string) => {
      const draft = { ...inst, ...next };
      states.set(inst.uid, { desired: draft.desired, phase: draft.status.phase });
      const e = await tx.appendEvent({
        actor: ACTOR,
        action,
        kind: 'Instance',
        parent: project,
        name: inst.name,
        provider: draft.provider,
        project,
        before: instanceEventDoc(inst),
        after: instanceEventDoc(draft),
      });
      await tx.setInstanceDesired({ ...draft, revision: e.seq }, inst);
      if (next.status) await tx.setInstanceStatus(inst.uid, next.status);
    };
    const hold = (i: Pick<InstanceRecord, 'vcpus' | 'memoryMiB' | 'diskGiB' | 'spec'>) => ({
      ...i,
      accelerators: i.spec.accelerators ?? 0,
    });

    if (!w) {
      for (const inst of instances) {
        if (inst.desired === 'absent') continue;
        cache.release(`${inst.provider}/${inst.node}`, hold(inst));
        this.freed = true;
        await write(inst, { desired: 'absent' }, 'delete');
      }
      this.pending.delete(key);
      return 0;
    }

    const spec = w.spec as WorkloadSpec;
    const reasons: string[] = [];
    const image = await this.image(tx, project, spec.image, reasons);
    const desired = (ordinal: number): Desired | undefined =>
      image && {
        vcpus: spec.resources.vcpus,
        memoryMiB: spec.resources.memoryMiB,
        diskGiB: spec.resources.diskGiB ?? DEFAULT_DISK_GIB,
        spec: {
          hostname: `${name}-${ordinal}`,
          image,
          ports: (spec.ports ?? []).map((p) => ({ guest: p.guest, protocol: p.protocol ?? 'tcp' })),
          ...(spec.userData !== undefined ? { userData: spec.userData } : {}),
          ...(spec.resources.accelerators ? { accelerators: spec.resources.accelerators.count } : {}),
        },
      };
    const live = instances.filter((i) => i.desired !== 'absent');
    const spreadCounts = new Map<string, number>();
    const across = spec.placement?.spread?.across;
    const count = (nodeKey: string, delta: number) => {
      const n = cache.get(nodeKey);
      if (!across || !n) return;
      const d = domainOf(n, across);
      spreadCounts.set(d, (spreadCounts.get(d) ?? 0) + delta);
    };
    for (const i of live) if (i.ordinal < spec.replicas) count(`${i.provider}/${i.node}`, 1);
    let lastFailure: Decision | undefined;
    let lastDecision: Decision | undefined;
    // One placer per pass: sibling replicas are chosen from the nodes its first scan found
    // (it knows them siblings by the same policy object).
    const policy = spec.placement ?? {};
    const placer = new Placer(
      () => cache.candidates({ node: spec.placement?.node, countries: spec.placement?.countries }),
      {
        limitFeasible: this.opts.limitFeasible ?? DEFAULT_LIMIT_FEASIBLE,
        classes: { cache: this.classes, version: cache.version },
      },
    );
    const requestFor = (d: Desired, avoid?: string): PlacementRequest => ({
      workload: key,
      policy,
      resources: {
        vcpus: d.vcpus,
        memoryMiB: d.memoryMiB,
        diskGiB: d.diskGiB,
        ...(spec.resources.accelerators ? { accelerators: spec.resources.accelerators } : {}),
      },
      spreadCounts,
      ...(avoid ? { avoid: new Set([avoid]) } : {}),
    });
    /** A node for `d`; `compliance`: moving a replica that breaks the rules, not placing one. */
    const place = (d: Desired, avoid?: string, compliance = false) => {
      const decision = placer.place(requestFor(d, avoid));
      const countries = spec.placement?.countries;
      if (!decision.ok && countries && !spec.placement?.node) {
        // The scan skipped nodes outside the allowed countries; the explanation counts them.
        const outside = cache.countOutside(countries);
        if (outside) {
          const e = decision.explanation;
          e.nodesEvaluated += outside;
          e.filtered[REASONS.country] = (e.filtered[REASONS.country] ?? 0) + outside;
          decision.message = unschedulableMessage(e);
        }
      }
      if (compliance) return decision;
      lastDecision = decision;
      if (!decision.ok) lastFailure = decision;
      return decision;
    };
    /** Rebinds a replica to another node: stop there, create here, fenced anew. */
    const move = async (
      inst: InstanceRecord,
      next: Desired & { desired: DesiredState },
      to: CandidateNode,
    ) => {
      const from = `${inst.provider}/${inst.node}`;
      cache.release(from, hold(inst));
      cache.reserve(to.key, hold(next));
      count(from, -1);
      count(to.key, 1);
      await write(
        inst,
        {
          ...next,
          provider: to.provider,
          node: to.node,
          fence: inst.fence + 1,
          status: { phase: 'Pending', ports: [], restarts: 0, observedRevision: 0 },
        },
        'replace',
      );
    };
    const outOfPolicy: OutOfPolicy[] = [];

    let placed = 0;
    let bound = 0;
    const seen = new Set<number>();
    for (const inst of instances) {
      const nodeKey = `${inst.provider}/${inst.node}`;
      if (inst.desired === 'absent') continue;
      if (inst.ordinal >= spec.replicas || seen.has(inst.ordinal)) {
        cache.release(nodeKey, hold(inst));
        this.freed = true;
        await write(inst, { desired: 'absent' }, 'delete');
        continue;
      }
      seen.add(inst.ordinal);
      const want = desired(inst.ordinal);
      const node = cache.get(nodeKey);
      const lost = !node || node.state === 'down';
      const draining = !!node?.draining;
      const mayMove = draining || (lost && spec.placement?.onNodeFailure !== 'wait');
      const base = want ?? inst;
      const next: Desired & { desired: DesiredState } = {
        ...base,
        spec: {
          ...base.spec,
          ...(inst.spec.powerOff ? { powerOff: true } : {}),
          ...(inst.spec.reboots ? { reboots: inst.spec.reboots } : {}),
        },
        desired: inst.spec.powerOff ? 'stopped' : 'running',
      };
      if (mayMove) {
        const d = place(next, nodeKey);
        if (d.ok) {
          await move(inst, next, d.node);
          bound++;
        } else reasons.push(`replica ${inst.ordinal} waits for a node to replace ${nodeKey}`);
        placed++;
        continue;
      }
      placed++;
      // The rules hold after every change: a replica whose node no longer complies (the
      // policy, the node, its site or provider changed) or no longer has room for its
      // size moves to a node that does; with none, it stays, reported out of policy.
      const broken = node && want ? violations(node, requestFor(next), hold(inst)) : [];
      if (broken.length) {
        const d = place(next, nodeKey, true);
        if (d.ok) {
          await move(inst, next, d.node);
          bound++;
          continue;
        }
        outOfPolicy.push({
          replica: inst.name,
          node: nodeKey,
          reasons: broken,
          message: `no compliant node: ${d.message}`,
        });
        // A size that does not fit is not applied: the node is never bound beyond capacity.
        if (broken.includes(REASONS.resources)) continue;
      }
      const same =
        inst.desired === next.desired &&
        inst.vcpus === next.vcpus &&
        inst.memoryMiB === next.memoryMiB &&
        inst.diskGiB === next.diskGiB &&
        canonical(inst.spec) === canonical(next.spec);
      if (same) continue;
      cache.release(nodeKey, hold(inst));
      cache.reserve(nodeKey, hold(next));
      this.freed = true;
      await write(inst, next, 'update');
    }

    let unplaced = 0;
    for (let ordinal = 0; ordinal < spec.replicas; ordinal++) {
      if (seen.has(ordinal)) continue;
      const want = desired(ordinal);
      if (!want) {
        unplaced++;
        continue;
      }
      const d = place(want);
      if (!d.ok) {
        unplaced++;
        continue;
      }
      cache.reserve(d.node.key, hold(want));
      count(d.node.key, 1);
      const existing = instances.find((i) => i.ordinal === ordinal && i.desired === 'absent');
      const record = {
        ...want,
        provider: d.node.provider,
        node: d.node.node,
        desired: 'running' as DesiredState,
        status: { phase: 'Pending' as const, ports: [], restarts: 0, observedRevision: 0 },
      };
      if (existing) {
        // A replica being deleted comes back: the same instance is re-bound, fenced anew.
        await write(existing, { ...record, fence: existing.fence + 1 }, 'replace');
      } else {
        const uid = newUid();
        const e = await tx.appendEvent({
          actor: ACTOR,
          action: 'create',
          kind: 'Instance',
          parent: project,
          name: `${name}-${ordinal}`,
          provider: d.node.provider,
          project,
          before: null,
          after: {
            uid,
            workload: name,
            provider: d.node.provider,
            node: d.node.node,
            desired: 'running',
            fence: 1,
          },
        });
        states.set(uid, { desired: 'running', phase: 'Pending' });
        await tx.insertInstance({
          ...record,
          uid,
          project,
          name: `${name}-${ordinal}`,
          workload: name,
          ordinal,
          fence: 1,
          revision: e.seq,
          createdAt: now,
          updatedAt: now,
        });
      }
      placed++;
      bound++;
    }
    if (outOfPolicy.length)
      reasons.push(
        `${outOfPolicy.length} replica(s) out of policy: ${outOfPolicy
          .map((o) => `${o.replica} on ${o.node} (${o.reasons.join(', ')})`)
          .join('; ')}; no compliant node has room`,
      );
    if (unplaced || outOfPolicy.length) this.pending.add(key);
    else this.pending.delete(key);
    if (lastFailure && !lastFailure.ok)
      reasons.push(`${unplaced} replica(s) unplaceable: ${lastFailure.message}`);
    const decision = lastFailure ?? lastDecision;
    const placement: PlacementStatus | undefined = decision
      ? {
          attemptedAt: now,
          placed,
          pending: unplaced,
          ...(lastFailure && !lastFailure.ok ? { message: lastFailure.message } : {}),
          explanation: decision.explanation,
        }
      : (w.status as { placement?: PlacementStatus }).placement;
    await this.writeStatus(
      tx,
      w.uid,
      w.generation,
      w.status,
      spec,
      [...states.values()],
      reasons,
      placement,
      outOfPolicy,
    );
    return bound;
  }

  private async image(
    tx: Store,
    project: string,
    name: string,
    reasons: string[],
  ): Promise<InstanceSpec['image'] | undefined> {
    const img = await tx.get('images', project, name);
    if (!img) {
      reasons.push(`image '${name}' does not exist in project '${project}'`);
      return undefined;
    }
    const spec = img.spec as ImageSpec;
    if ((img.status as ImageStatus).phase !== 'Available') {
      reasons.push(`image '${name}' is not available yet (upload its files)`);
      return undefined;
    }
    return {
      project,
      name,
      format: spec.format,
      files: spec.files,
      ...(spec.cmdline !== undefined ? { cmdline: spec.cmdline } : {}),
    };
  }

  private async writeStatus(
    tx: Store,
    uid: string,
    generation: number,
    old: WorkloadStatus & { placement?: PlacementStatus },
    spec: WorkloadSpec,
    instances: { desired: DesiredState; phase: string }[],
    reasons: string[],
    placement: PlacementStatus | undefined,
    outOfPolicy: OutOfPolicy[],
  ): Promise<void> {
    const summary = summarize(spec.replicas, instances);
    const { readyReplicas } = summary;
    const phase = withCompliance(summary.phase, outOfPolicy.length);
    const status = {
      phase,
      observedGeneration: generation,
      readyReplicas,
      ...(reasons.length ? { message: reasons.join('; ') } : {}),
      ...(placement ? { placement } : {}),
      ...(outOfPolicy.length ? { outOfPolicy } : {}),
    };
    // The attempt time alone is no reason to write. The summary fields differ on most
    // passes that change anything; the documents are compared only when they match.
    const strip = (s: any) => ({
      ...s,
      placement: s.placement && { ...s.placement, attemptedAt: undefined },
    });
    const same =
      status.phase === old.phase &&
      status.observedGeneration === old.observedGeneration &&
      status.readyReplicas === old.readyReplicas &&
      status.message === old.message &&
      placement?.placed === old.placement?.placed &&
      placement?.pending === old.placement?.pending &&
      canonical(strip(status)) === canonical(strip(old));
    if (same) return;
    await tx.setStatus('workloads', uid, status, { phase });
  }
}
