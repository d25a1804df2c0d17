// The agent's side of live migration, asked by the control plane: as destination it
// starts the instance paused, waiting for the stream (and removes it if the migration
// fails); as source it streams the instance, reporting progress, until QEMU completes.
// The instance's binding moves only afterwards, by the control plane; the agent's
// reconcile then adopts the received VM (destination) or removes the stopped copy
// (source). The pre-shared key lives in these two requests and QEMU, nowhere else.
import type { AgentRequests, DesiredInstance, TransferProgress } from '../protocol/index.js';
import { canMigrate, type InstanceRuntimeSpec, type Runtime } from '../runtimes/index.js';
import {
  probeListener,
  type RelayConnect,
  type RelayStream,
  reachable,
  receiveRelayed,
  sendRelayed,
} from './relay.js';

export interface MigrationHandlerDeps {
  runtime: Runtime;
  /** The runtime spec of an instance (its image files fetched and verified). */
  specOf(d: DesiredInstance): Promise<InstanceRuntimeSpec>;
  /** The address this node is reached at (what it reports in `hello`). */
  address(): string;
  /** Sends a progress message to the control plane. */
  progress(migration: string, p: TransferProgress): void;
  /** Opens a socket to the gateway's relay (for nodes that cannot reach each other). */
  relay: RelayConnect;
  log(msg: string): void;
}

type Params<M extends keyof AgentRequests> = AgentRequests[M]['params'];

export class MigrationHandler {
  /** Instances being sent, with their cancel flag: the reconcile leaves them alone. */
  private readonly sending = new Map<string, { migration: string; cancelled: boolean }>();
  /** Instances being received (not bound here yet): the reconcile leaves them alone. */
  private readonly receiving = new Map<string, string>();
  /** What a received migration holds open (its probe listener, its waiting relay sockets). */
  private readonly openFor = new Map<string, () => void>();

  private release(uid: string): void {
    this.openFor.get(uid)?.();
    this.openFor.delete(uid);
  }

  constructor(private readonly deps: MigrationHandlerDeps) {}

  /** The instance is part of a migration this agent runs now. */
  busy(uid: string): boolean {
    return this.sending.has(uid) || this.receiving.has(uid);
  }

  private migrator() {
    const rt = this.deps.runtime;
    if (!canMigrate(rt)) throw new Error(`this node's runtime (${rt.name}) cannot migrate live`);
    return rt;
  }

  async receive(p: Params<'migrate-receive'>): Promise<AgentRequests['migrate-receive']['result']> {
    const rt = this.migrator();
    const uid = p.instance.uid;
    if ((await rt.inspect(uid)).state === 'running' && !this.receiving.has(uid))
      throw new Error(`instance ${uid} already runs on this node`);
    this.receiving.set(uid, p.migration);
    try {
      const spec = await this.deps.specOf(p.instance);
      const endpoint = await rt.receiveMigration(spec, p.secret, this.deps.address());
      // The source tries the probe; if it cannot reach it, the streams come through the
      // relay, whose sockets wait here from now on.
      const probe = await probeListener(endpoint.host);
      const targets: { stream: RelayStream; host: string; port: number }[] = [
        { stream: 'migration', host: endpoint.host, port: endpoint.migrationPort },
      ];
      if (endpoint.nbdPort) targets.push({ stream: 'nbd', host: endpoint.host, port: endpoint.nbdPort });
      const closeRelay = receiveRelayed(this.deps.relay, p.migration, targets, this.deps.log);
      this.openFor.set(uid, () => {
        probe.close();
        closeRelay();
      });
      this.deps.log(
        `migration ${p.migration}: receiving ${p.instance.name} on port ${endpoint.migrationPort}`,
      );
      return { ...endpoint, probePort: probe.port };
    } catch (err) {
      this.receiving.delete(uid);
      this.release(uid);
      throw err;
    }
  }

  async send(p: Params<'migrate-send'>): Promise<TransferProgress> {
    const rt = this.migrator();
    if (this.sending.has(p.uid)) throw new Error(`instance ${p.uid} is being migrated already`);
    const flag = { migration: p.migration, cancelled: false };
    this.sending.set(p.uid, flag);
    let closeRelay = () => {};
    try {
      // Straight to the destination when it answers; else through the gateway's relay.
      const direct = p.to.probePort === undefined || (await reachable(p.to.host, p.to.probePort));
      const path = direct ? ('direct' as const) : ('relay' as const);
      let to = p.to;
      if (!direct) {
        const streams: RelayStream[] = p.to.nbdPort ? ['migration', 'nbd'] : ['migration'];
        const relayed = await sendRelayed(this.deps.relay, p.migration, streams);
        closeRelay = relayed.close;
        to = { host: '127.0.0.1', migrationPort: relayed.ports.migration!, nbdPort: relayed.ports.nbd };
        if (to.nbdPort === undefined) delete to.nbdPort;
      }
      this.deps.log(`migration ${p.migration}: sending ${p.uid} to ${p.to.host} (${path})`);
      const done = await rt.sendMigration(p.uid, to, p.secret, {
        onProgress: (progress) => this.deps.progress(p.migration, { ...progress, path }),
        cancelled: () => flag.cancelled,
      });
      return { ...done, path };
    } finally {
      closeRelay();
      this.sending.delete(p.uid);
    }
  }

  cancel(p: Params<'migrate-cancel'>): { cancelled: boolean } {
    const flag = this.sending.get(p.uid);
    if (!flag || flag.migration !== p.migration) return { cancelled: false };
    flag.cancelled = true;
    return { cancelled: true };
  }

  async state(p: Params<'migrate-state'>): Promise<{ state: string }> {
    return { state: await this.migrator().incomingState(p.uid) };
  }

  /** The migration failed or was cancelled: what was prepared here goes (a copy bound here never). */
  async abort(
    p: Params<'migrate-abort'>,
    boundHere: (uid: string) => boolean,
  ): Promise<{ removed: boolean }> {
    const rt = this.deps.runtime;
    this.receiving.delete(p.uid);
    this.release(p.uid);
    if (boundHere(p.uid)) return { removed: false };
    const obs = await rt.inspect(p.uid);
    if (obs.state === 'absent' || !obs.incoming) return { removed: false };
    await rt.delete(p.uid);
    this.deps.log(`migration ${p.migration}: removed the copy prepared for ${p.uid}`);
    return { removed: true };
  }

  /** The control plane bound the received instance here: it is this node's now. */
  adopted(uid: string): void {
    this.receiving.delete(uid);
    this.release(uid);
  }
}
