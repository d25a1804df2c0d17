// Turns workloads into instances. Until the global scheduler exists, a workload names its
// node with spec.placement.node ("provider/node"); each replica becomes one instance
// bound there. Deleting a workload or scaling it down marks instances absent; agents
// remove them and the gateway deletes the rows. Level-triggered: sync(key) re-reads the
// workload and its instances and converges.
import { randomUUID } from 'node:crypto';
import type { ImageSpec, ImageStatus, WorkloadSpec, WorkloadStatus } from '../model/index.js';
import { canonical } from '../resources/index.js';
import type { DesiredState, InstanceRecord, InstanceSpec, Store } from '../store/index.js';
import { WorkQueue } from './work-queue.js';

export interface WorkloadControllerOptions {
  store: Store;
  resyncIntervalMs?: number;
  log?: (msg: string, err?: unknown) => void;
}

const ACTOR = 'controller:workloads';
const DEFAULT_DISK_GIB = 10;

function eventDoc(
  r: Pick<InstanceRecord, 'uid' | 'workload' | 'provider' | 'node' | 'desired' | 'fence' | 'revision'>,
) {
  return {
    uid: r.uid,
    workload: r.workload,
    provider: r.provider,
    node: r.node,
    desired: r.desired,
    fence: r.fence,
    revision: r.revision,
  };
}

export class WorkloadController {
  readonly queue: WorkQueue;
  private timer?: NodeJS.Timeout;
  private readonly onEvent = (e: { kind: string; parent: string; name: string; after: any; before: any }) => {
    if (e.kind === 'Workload') this.queue.add(`${e.parent}/${e.name}`);
    if (e.kind === 'Image') void this.enqueueUsersOfImage(e.parent, e.name);
  };

  constructor(private readonly opts: WorkloadControllerOptions) {
    this.queue = new WorkQueue(
      (key) => this.sync(key),
      (key, err) => opts.log?.(`sync ${key} failed`, err),
    );
  }

  async start(): Promise<void> {
    this.opts.store.committed.on('event', this.onEvent);
    this.queue.start();
    await this.resyncAll();
    this.timer = setInterval(() => void this.resyncAll(), this.opts.resyncIntervalMs ?? 30_000);
    this.timer.unref();
  }

  stop(): void {
    this.opts.store.committed.off('event', this.onEvent);
    if (this.timer) clearInterval(this.timer);
    this.queue.stop();
  }

  /** Called when an agent reports instance state, so workload status follows. */
  instanceChanged(project: string, workload: string): void {
    this.queue.add(`${project}/${workload}`);
  }

  private async enqueueUsersOfImage(project: string, image: string): Promise<void> {
    for (const w of await this.opts.store.list('workloads', { parents: [project] }))
      if ((w.spec as WorkloadSpec).image === image) this.queue.add(`${project}/${w.name}`);
  }

  private async resyncAll(): Promise<void> {
    const store = this.opts.store;
    for (const w of await store.list('workloads')) this.queue.add(`${w.parent}/${w.name}`);
    // Instances whose workload is gone still need to be wound down.
    for (const i of await store.listInstances()) this.queue.add(`${i.project}/${i.workload}`);
  }

  async sync(key: string): Promise<void> {
    const slash = key.indexOf('/');
    const project = key.slice(0, slash);
    const name = key.slice(slash + 1);
    await this.opts.store.transaction(async (tx) => {
      const w = await tx.get('workloads', project, name);
      const instances = await tx.listInstances({ project, workload: name });
      const reasons: string[] = [];
      const wanted = new Map<
        number,
        Omit<InstanceRecord, 'uid' | 'revision' | 'fence' | 'status' | 'createdAt' | 'updatedAt' | 'ordinal'>
      >();
      if (w) {
        const spec = w.spec as WorkloadSpec;
        const binding = await this.binding(tx, spec, reasons);
        const image = binding ? await this.image(tx, project, spec.image, reasons) : undefined;
        if (binding && image) {
          for (let ordinal = 0; ordinal < spec.replicas; ordinal++) {
            const instSpec: InstanceSpec = {
              hostname: `${name}-${ordinal}`,
              image,
              ports: (spec.ports ?? []).map((p) => ({ guest: p.guest, protocol: p.protocol ?? 'tcp' })),
              ...(spec.userData !== undefined ? { userData: spec.userData } : {}),
            };
            wanted.set(ordinal, {
              project,
              name: `${name}-${ordinal}`,
              workload: name,
              provider: binding.provider,
              node: binding.node,
              desired: 'running',
              vcpus: spec.resources.vcpus,
              memoryMiB: spec.resources.memoryMiB,
              diskGiB: spec.resources.diskGiB ?? DEFAULT_DISK_GIB,
              spec: instSpec,
            });
          }
        }
      }
      // Converge existing instances, then create the missing ones.
      for (const inst of instances) {
        const fresh = wanted.get(inst.ordinal);
        wanted.delete(inst.ordinal);
        // Power state set by users on the instance survives spec changes of the workload.
        const want = fresh && {
          ...fresh,
          desired: (inst.spec.powerOff ? 'stopped' : 'running') as DesiredState,
          spec: {
            ...fresh.spec,
            ...(inst.spec.powerOff ? { powerOff: true } : {}),
            ...(inst.spec.reboots ? { reboots: inst.spec.reboots } : {}),
          },
        };
        const next = want ?? { ...inst, desired: 'absent' as DesiredState };
        if (inst.desired === 'absent' && !want) continue;
        const same =
          inst.desired === next.desired &&
          inst.provider === next.provider &&
          inst.node === next.node &&
          inst.vcpus === next.vcpus &&
          inst.memoryMiB === next.memoryMiB &&
          inst.diskGiB === next.diskGiB &&
          canonical(inst.spec) === canonical(next.spec);
        if (same) continue;
        const moved = inst.provider !== next.provider || inst.node !== next.node;
        const draft = { ...inst, ...next, fence: moved ? inst.fence + 1 : inst.fence };
        const e = await tx.appendEvent({
          actor: ACTOR,
          action: next.desired === 'absent' ? 'delete' : 'update',
          kind: 'Instance',
          parent: project,
          name: inst.name,
          provider: draft.provider,
          project,
          before: eventDoc(inst),
          after: eventDoc({ ...draft, revision: 0 }),
        });
        await tx.setInstanceDesired(inst.uid, { ...draft, revision: e.seq });
      }
      for (const [ordinal, want] of wanted) {
        const uid = randomUUID();
        const now = new Date().toISOString();
        const e = await tx.appendEvent({
          actor: ACTOR,
          action: 'create',
          kind: 'Instance',
          parent: project,
          name: want.name,
          provider: want.provider,
          project,
          before: null,
          after: eventDoc({ ...want, uid, fence: 1, revision: 0 }),
        });
        await tx.insertInstance({
          ...want,
          uid,
          ordinal,
          fence: 1,
          revision: e.seq,
          status: { phase: 'Pending', ports: [], restarts: 0, observedRevision: 0 },
          createdAt: now,
          updatedAt: now,
        });
      }
      if (w)
        await this.writeStatus(
          tx,
          w.uid,
          w.generation,
          w.status,
          w.spec as WorkloadSpec,
          project,
          name,
          reasons,
        );
    });
  }

  private async binding(tx: Store, spec: WorkloadSpec, reasons: string[]) {
    const pin = spec.placement?.node;
    if (!pin) {
      reasons.push(
        'no node: set spec.placement.node to PROVIDER/NODE (the global scheduler is not there yet)',
      );
      return undefined;
    }
    const [provider, node] = pin.split('/');
    if (!provider || !node || !(await tx.get('nodes', provider, node))) {
      reasons.push(`node '${pin}' does not exist`);
      return undefined;
    }
    return { provider, node };
  }

  private async image(tx: Store, project: string, name: string, reasons: string[]) {
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
    old: WorkloadStatus & { message?: string },
    spec: WorkloadSpec,
    project: string,
    name: string,
    reasons: string[],
  ): Promise<void> {
    const instances = await tx.listInstances({ project, workload: name });
    const ready = instances.filter((i) => i.desired === 'running' && i.status.phase === 'Running').length;
    const failed = instances.some((i) => i.status.phase === 'Failed');
    const phase =
      ready === spec.replicas ? 'Running' : failed ? 'Failed' : ready > 0 ? 'Degraded' : 'Pending';
    const status = {
      phase,
      observedGeneration: generation,
      readyReplicas: ready,
      ...(reasons.length ? { message: reasons.join('; ') } : {}),
    };
    if (canonical(status) === canonical(old)) return;
    await tx.update('workloads', uid, undefined, { status, columns: { phase }, bumpGeneration: false });
  }
}
