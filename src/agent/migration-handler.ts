// The agent's side of migration, asked by the control plane. Live: as destination it
// starts the instance paused, waiting for the stream (and removes it if the migration
// fails); as source it streams the instance, reporting progress, until QEMU completes.
// Cold: the source stops the instance and sends its flattened disk; the destination
// keeps it, and makes the instance of it once the control plane has compared the two
// sides' SHA-256. The instance's binding moves only afterwards, by the control plane; the
// agent's reconcile then adopts the received VM (destination) or removes the stopped
// copy (source). The pre-shared key lives in these requests and QEMU, nowhere else.

import { promises as fs } from 'node:fs';
import type { AgentRequests, DesiredInstance, TransferProgress } from '../protocol/index.js';
import { canMigrate, type InstanceRuntimeSpec, type Runtime } from '../runtimes/index.js';
import { type ReceivedDisk, receiveDisk, sendDisk } from './disk-copy.js';
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
  /** The gateway this node's relay sockets go to (the replica it is connected to). */
  relayHome(): string;
  log(msg: string): void;
  /** False: this node takes no live migration (cold ones only). */
  live?: boolean;
}

type Params<M extends keyof AgentRequests> = AgentRequests[M]['params'];

export class MigrationHandler {
  /** Instances being sent, with their cancel flag: the reconcile leaves them alone. */
  private readonly sending = new Map<string, { migration: string; cancelled: boolean }>();
  /** Instances being received (not bound here yet): the reconcile leaves them alone. */
  private readonly receiving = new Map<string, string>();
  /** What a received migration holds open (its probe listener, its waiting relay sockets). */
  private readonly openFor = new Map<string, () => void>();
  /** Cold migrations received here: the instance's spec and its disk copy under way. */
  private readonly coldIn = new Map<string, { spec: InstanceRuntimeSpec; received: Promise<ReceivedDisk> }>();
  /** Instances whose disk an export is copying now. */
  private readonly exporting = new Set<string>();
  /** May this node take live migrations (an operator may turn them off; cold ones stay)? */
  private readonly live: boolean;

  private release(uid: string): void {
    this.openFor.get(uid)?.();
    this.openFor.delete(uid);
  }

  constructor(private readonly deps: MigrationHandlerDeps) {
    this.live = deps.live ?? true;
  }

  /** The instance is part of a migration this agent runs now. */
  busy(uid: string): boolean {
    return this.sending.has(uid) || this.receiving.has(uid);
  }

  private migrator() {
    const rt = this.deps.runtime;
    if (!canMigrate(rt)) throw new Error(`this node's runtime (${rt.name}) cannot migrate`);
    return rt;
  }

  private liveMigrator() {
    if (!this.live)
      throw new Error('this node takes no live migration (its agent runs with --no-live-migration)');
    return this.migrator();
  }

  /** Straight to the destination when it answers; else a local port that the relay carries. */
  private async route(p: Params<'migrate-send'>, streams: RelayStream[]) {
    const direct = p.to.probePort === undefined || (await reachable(p.to.host, p.to.probePort));
    if (direct) return { path: 'direct' as const, to: p.to, close: () => {} };
    const relayed = await sendRelayed(this.deps.relay, p.migration, streams, p.to.relay);
    const to = { host: '127.0.0.1', migrationPort: relayed.ports.migration!, nbdPort: relayed.ports.nbd };
    if (to.nbdPort === undefined) delete to.nbdPort;
    return { path: 'relay' as const, to, close: relayed.close };
  }

  /**
   * Destination: the source tries the probe; if it cannot reach it, the streams come
   * through the relay, whose sockets wait here from now on. All of it (and `close`) is
   * closed when the migration ends here. Returns the probe's port.
   */
  private async reachable(
    uid: string,
    migration: string,
    host: string,
    ports: Partial<Record<RelayStream, number>>,
    close: () => void = () => {},
  ): Promise<number> {
    const probe = await probeListener(host);
    const targets = Object.entries(ports).map(([stream, port]) => ({
      stream: stream as RelayStream,
      host,
      port: port!,
    }));
    const closeRelay = receiveRelayed(this.deps.relay, migration, targets, this.deps.log);
    this.openFor.set(uid, () => {
      probe.close();
      closeRelay();
      close();
    });
    return probe.port;
  }

  /**
   * Source: runs `fn` with the instance marked as being sent (the reconcile leaves it
   * alone; `migrate-cancel` sets the flag) and the route to the destination open.
   */
  private async sendOver<T>(
    p: Params<'migrate-send'>,
    streams: RelayStream[],
    fn: (route: Awaited<ReturnType<MigrationHandler['route']>>, flag: { cancelled: boolean }) => Promise<T>,
  ): Promise<T> {
    if (this.sending.has(p.uid)) throw new Error(`instance ${p.uid} is being migrated already`);
    const flag = { migration: p.migration, cancelled: false };
    this.sending.set(p.uid, flag);
    let closeRoute = () => {};
    try {
      const route = await this.route(p, streams);
      closeRoute = route.close;
      return await fn(route, flag);
    } finally {
      closeRoute();
      this.sending.delete(p.uid);
    }
  }

  /** Destination of a cold migration: a listener for the disk, reachable directly or through the relay. */
  private async receiveCold(
    p: Params<'migrate-receive'>,
  ): Promise<AgentRequests['migrate-receive']['result']> {
    const rt = this.migrator();
    const uid = p.instance.uid;
    if ((await rt.inspect(uid)).state !== 'absent' && !this.receiving.has(uid))
      throw new Error(`instance ${uid} already exists on this node`);
    this.receiving.set(uid, p.migration);
    try {
      const spec = await this.deps.specOf(p.instance);
      const host = this.deps.address();
      const disk = await receiveDisk(host, p.secret, await rt.prepareReceive(uid));
      this.coldIn.set(uid, { spec, received: disk.received });
      const probePort = await this.reachable(uid, p.migration, host, { migration: disk.port }, disk.close);
      this.deps.log(
        `migration ${p.migration}: receiving ${p.instance.name}'s disk (cold) on port ${disk.port}`,
      );
      return { host, migrationPort: disk.port, probePort, relay: this.deps.relayHome() };
    } catch (err) {
      this.receiving.delete(uid);
      this.coldIn.delete(uid);
      this.release(uid);
      throw err;
    }
  }

  /**
   * Source of a cold migration: stops the instance, flattens its disk and sends it. The
   * stopped copy is then marked sent (never started here again) until its binding moves
   * away (removed) or the migration fails later (`migrate-reclaim`).
   */
  private async sendCold(p: Params<'migrate-send'>): Promise<TransferProgress> {
    const rt = this.migrator();
    return this.sendOver(p, ['migration'], async (route, flag) => {
      let exported: string | undefined;
      try {
        this.deps.log(
          `migration ${p.migration}: stopping ${p.uid} to send its disk to ${p.to.host} (cold, ${route.path})`,
        );
        this.deps.progress(p.migration, { phase: 'copying', path: route.path });
        await rt.stop(p.uid);
        if (flag.cancelled) throw new Error('cancelled');
        exported = await rt.exportDisk(p.uid);
        const sent = await sendDisk(route.to.host, route.to.migrationPort, p.secret, exported, {
          onProgress: (progress) => this.deps.progress(p.migration, { ...progress, path: route.path }),
          cancelled: () => flag.cancelled,
        });
        await rt.markSent(p.uid);
        return {
          phase: 'completed' as const,
          diskDone: sent.bytes,
          diskTotal: sent.bytes,
          sha256: sent.sha256,
          path: route.path,
        };
      } catch (err) {
        // Not sent: the copy here is the instance still; the reconcile starts it again.
        if (exported) await fs.rm(exported, { force: true });
        throw err;
      }
    });
  }

  /** Destination of a cold migration: the copy checked against the source's SHA-256 becomes the instance. */
  async finish(p: Params<'migrate-finish'>): Promise<{ state: string }> {
    const rt = this.migrator();
    const cold = this.coldIn.get(p.uid);
    if (!cold || this.receiving.get(p.uid) !== p.migration)
      throw new Error(`no cold migration ${p.migration} of instance ${p.uid} is received here`);
    const got = await cold.received;
    if (got.sha256 !== p.sha256)
      throw new Error(
        `the disk copy does not match: SHA-256 ${got.sha256} received (${got.bytes} bytes), ${p.sha256} sent`,
      );
    await rt.finishReceive(cold.spec, got.bytes > 0);
    this.coldIn.delete(p.uid);
    this.deps.log(
      `migration ${p.migration}: ${cold.spec.hostname}'s disk received and checked (${got.bytes} bytes)`,
    );
    return { state: 'completed' };
  }

  /** Source of a cold migration that failed after the copy was sent: the stopped copy is this node's again. */
  async reclaim(p: Params<'migrate-reclaim'>): Promise<{ reclaimed: boolean }> {
    if (this.sending.has(p.uid)) return { reclaimed: false };
    const rt = this.migrator();
    const obs = await rt.inspect(p.uid);
    if (!obs.migratedAway) return { reclaimed: false };
    await rt.reclaim(p.uid);
    const back = !(await rt.inspect(p.uid)).migratedAway;
    if (back) this.deps.log(`migration ${p.migration}: ${p.uid} stays here; it starts again`);
    return { reclaimed: back };
  }

  async receive(p: Params<'migrate-receive'>): Promise<AgentRequests['migrate-receive']['result']> {
    if (p.mode === 'cold') return this.receiveCold(p);
    const rt = this.liveMigrator();
    const uid = p.instance.uid;
    if ((await rt.inspect(uid)).state === 'running' && !this.receiving.has(uid))
      throw new Error(`instance ${uid} already runs on this node`);
    this.receiving.set(uid, p.migration);
    try {
      const spec = await this.deps.specOf(p.instance);
      const endpoint = await rt.receiveMigration(spec, p.secret, this.deps.address());
      const probePort = await this.reachable(uid, p.migration, endpoint.host, {
        migration: endpoint.migrationPort,
        ...(endpoint.nbdPort ? { nbd: endpoint.nbdPort } : {}),
      });
      this.deps.log(
        `migration ${p.migration}: receiving ${p.instance.name} on port ${endpoint.migrationPort}`,
      );
      // Where this destination's relay sockets wait, for the source to meet them there.
      return { ...endpoint, probePort, relay: this.deps.relayHome() };
    } catch (err) {
      this.receiving.delete(uid);
      this.release(uid);
      throw err;
    }
  }

  async send(p: Params<'migrate-send'>): Promise<TransferProgress> {
    if (p.mode === 'cold') return this.sendCold(p);
    const rt = this.liveMigrator();
    return this.sendOver(p, p.to.nbdPort ? ['migration', 'nbd'] : ['migration'], async (route, flag) => {
      const path = route.path;
      this.deps.log(`migration ${p.migration}: sending ${p.uid} to ${p.to.host} (${path})`);
      const done = await rt.sendMigration(p.uid, route.to, p.secret, {
        onProgress: (progress) => this.deps.progress(p.migration, { ...progress, path }),
        cancelled: () => flag.cancelled,
      });
      return { ...done, path };
    });
  }

  cancel(p: Params<'migrate-cancel'>): { cancelled: boolean } {
    const flag = this.sending.get(p.uid);
    if (!flag || flag.migration !== p.migration) return { cancelled: false };
    flag.cancelled = true;
    return { cancelled: true };
  }

  async state(p: Params<'migrate-state'>): Promise<{ state: string }> {
    // A cold copy under way or not checked yet; checked, the runtime says `completed`.
    if (this.coldIn.has(p.uid)) return { state: 'active' };
    return { state: await this.migrator().incomingState(p.uid) };
  }

  /** The migration failed or was cancelled: what was prepared here goes (a copy bound here never). */
  async abort(
    p: Params<'migrate-abort'>,
    boundHere: (uid: string) => boolean,
  ): Promise<{ removed: boolean }> {
    const rt = this.deps.runtime;
    this.receiving.delete(p.uid);
    this.coldIn.delete(p.uid);
    this.release(p.uid);
    if (boundHere(p.uid)) return { removed: false };
    const obs = await rt.inspect(p.uid);
    // A cold copy not made into an instance yet is a directory without one: absent.
    if (obs.state === 'absent' && (await rt.list()).includes(p.uid)) {
      await rt.delete(p.uid);
      return { removed: true };
    }
    if (obs.state === 'absent' || !(obs.incoming || obs.received)) return { removed: false };
    await rt.delete(p.uid);
    this.deps.log(`migration ${p.migration}: removed the copy prepared for ${p.uid}`);
    return { removed: true };
  }

  /**
   * An export of the instance's project: its disk copied (crash-consistent while it runs)
   * and sent to the control plane through the gateway's relay, under the export's key.
   */
  async exportDisk(p: Params<'export-disk'>): Promise<AgentRequests['export-disk']['result']> {
    const rt = this.migrator();
    if (this.busy(p.uid)) throw new Error(`instance ${p.uid} is being migrated: export it afterwards`);
    if (this.exporting.has(p.uid)) throw new Error(`instance ${p.uid} is being exported already`);
    this.exporting.add(p.uid);
    let file: string | undefined;
    let route: { close: () => void } | undefined;
    try {
      file = await rt.snapshotDisk(p.uid);
      const relayed = await sendRelayed(this.deps.relay, p.export, ['migration']);
      route = relayed;
      this.deps.log(`export ${p.export}: sending ${p.uid}'s disk to the control plane`);
      const sent = await sendDisk('127.0.0.1', relayed.ports.migration!, p.secret, file);
      return { bytes: sent.bytes, sha256: sent.sha256 };
    } finally {
      route?.close();
      if (file) await fs.rm(file, { force: true });
      this.exporting.delete(p.uid);
    }
  }

  /** The control plane bound the received instance here: it is this node's now. */
  adopted(uid: string): void {
    this.receiving.delete(uid);
    this.release(uid);
  }
}
