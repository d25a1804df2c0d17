// The Continuum agent: enrols its node, keeps one WebSocket to the control plane, and
// runs a reconcile loop that makes the node's VMs match the desired state it holds on
// disk — with or without a connection (edge autonomy). Killing it leaves VMs running;
// a new agent adopts them from the runtime's state directory.
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import {
  AGENT_CONNECT_PATH,
  AGENT_ENROL_PATH,
  type DesiredInstance,
  type EnrolResponse,
  type Inventory,
  type LatencyProbe,
  type NodeMetrics,
  type ObservedInstance,
  PROTOCOL_VERSION,
  parseJoinToken,
  type ServerMessage,
} from '../protocol/index.js';
import {
  canMigrate,
  containersUnsupported,
  type InstanceObservation,
  type InstanceRuntimeSpec,
  NodeRuntime,
  QemuRuntime,
  RuncRuntime,
  type Runtime,
} from '../runtimes/index.js';
import { eraseHere } from './erasure.js';
import { ImageCache } from './image-cache.js';
import { detectInventory } from './inventory.js';
import { type AgentIdentity, type DesiredFile, LocalState } from './local-state.js';
import { nodeMetrics, processUsage } from './metrics.js';
import { MigrationHandler } from './migration-handler.js';
import { relayConnector } from './relay.js';
import { fetchPinnedCa, pinnedRequest, pinnedTls, readAll } from './tls.js';

export interface AgentOptions {
  dataDir: string;
  /** Gateway URL (https://host:port); needed to enrol. */
  server?: string;
  joinToken?: string;
  /** Node name; defaults to the hostname. */
  name?: string;
  runtime?: Runtime;
  /** Address forwarded VM ports listen on. */
  portBindAddress?: string;
  /** Address reported for forwarded ports; default: what the control plane sees. */
  advertiseAddress?: string;
  heartbeatIntervalMs?: number;
  reconcileIntervalMs?: number;
  /** How often configured latency targets are probed. */
  probeIntervalMs?: number;
  stopTimeoutMs?: number;
  /** Report this inventory instead of detecting the host's (simulated nodes). */
  inventory?: Inventory;
  /** Skip image downloads (simulated nodes run nothing). */
  skipImages?: boolean;
  /** Report these node metrics instead of reading /proc (simulated nodes). */
  metrics?: () => Promise<NodeMetrics>;
  /**
   * Keep the desired state on disk (default). Simulated nodes keep it in memory: their
   * instances do not outlive the process, and at fleet scale the writes of thousands of
   * agents in one process would be the simulator's main cost.
   */
  persistDesired?: boolean;
  /** Reports not acknowledged this long after they were sent are sent again. */
  resendAfterMs?: number;
  /** False: this node takes and sends no live migration (cold ones still). Default true. */
  liveMigration?: boolean;
  log?: (msg: string) => void;
}

const MAX_BACKOFF_MS = 10_000;

/** `--server` may list several gateway addresses (replicas of one control plane), comma-separated. */
export function serverList(server: string): string[] {
  const list = server
    .split(',')
    .map((s) => s.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  if (!list.length) throw new Error(`no control-plane address in '${server}'`);
  return list;
}

/** What requires re-creating the VM; power state and reboot requests do not. */
/** Round-trip time of a TCP handshake to HOST:PORT, in milliseconds. */
function tcpRtt(address: string, timeoutMs = 3000): Promise<number> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i);
  const port = Number(address.slice(i + 1));
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const sock = connect({ host, port, timeout: timeoutMs });
    sock.once('connect', () => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      sock.destroy();
      resolve(ms);
    });
    sock.once('timeout', () => {
      sock.destroy();
      reject(new Error('timed out'));
    });
    sock.once('error', reject);
  });
}

/**
 * The lowest of a few handshake times: a single one also measures whatever delayed this
 * process or the path at that moment; the minimum is the round trip itself.
 */
async function bestRtt(address: string, attempts = 3): Promise<number | undefined> {
  let best: number | undefined;
  for (let i = 0; i < attempts; i++) {
    const ms = await tcpRtt(address).catch(() => undefined);
    if (ms === undefined) break;
    if (best === undefined || ms < best) best = ms;
  }
  return best;
}

/** Hashes per desired instance object: a new revision arrives as a new object. */
const specHashes = new WeakMap<DesiredInstance, string>();

function specHash(d: DesiredInstance): string {
  let hash = specHashes.get(d);
  if (hash === undefined) {
    const { powerOff: _p, reboots: _r, ...spec } = d.spec;
    hash = createHash('sha256')
      .update(JSON.stringify([d.vcpus, d.memoryMiB, d.diskGiB, spec, d.fence]))
      .digest('hex');
    specHashes.set(d, hash);
  }
  return hash;
}

export class Agent {
  readonly state: LocalState;
  readonly runtime: Runtime;
  private readonly images: ImageCache;
  /** Instances an erasure deleted: never made again here, whatever the desired state says. */
  private readonly erased = new Set<string>();
  private identity?: AgentIdentity;
  private desired!: DesiredFile;
  private inventory?: Inventory;
  private ws?: WebSocket;
  private stopped = false;
  private connected = false;
  private attempts = 0;
  /** The control plane's gateway addresses (its replicas), tried in turn. */
  private servers: string[] = [];
  private timers: NodeJS.Timeout[] = [];
  private reconnectTimer?: NodeJS.Timeout;
  private reconciling = false;
  /** What the next pass covers: every instance, or only those a change named. */
  private fullPassDue = false;
  private dirty = new Set<string>();
  private readonly applied = new Map<string, string>();
  private readonly lastReported = new Map<string, string>();
  /** Reports sent and not acknowledged yet, by instance: resent until they are. */
  private readonly unacked = new Map<string, { seq: number; observed: ObservedInstance; sentAt: number }>();
  private reportSeq = 0;
  private readonly errors = new Map<string, string>();
  private probes: LatencyProbe[] = [];
  private readonly log: (msg: string) => void;
  private readonly migrations: MigrationHandler;
  /** The address this node reports (where other nodes reach it, e.g. for a migration). */
  private address = '';

  constructor(private readonly opts: AgentOptions) {
    this.state = new LocalState(opts.dataDir, opts.persistDesired ?? true);
    this.images = new ImageCache(join(opts.dataDir, 'images'));
    this.log = opts.log ?? ((m) => process.stderr.write(`[agent] ${m}\n`));
    this.runtime = opts.runtime ?? this.defaultRuntime();
    this.migrations = new MigrationHandler({
      runtime: this.runtime,
      specOf: (d) => this.specOf(d),
      address: () => this.address,
      progress: (migration, progress) => this.send({ type: 'migration', migration, progress }),
      relay: relayConnector(
        () => this.identity!,
        () => this.servers,
      ),
      relayHome: () => this.identity!.server,
      log: this.log,
      live: opts.liveMigration ?? true,
    });
  }

  get node(): AgentIdentity | undefined {
    return this.identity;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  async start(): Promise<AgentIdentity> {
    await this.state.init();
    let identity = await this.state.loadIdentity();
    if (!identity) identity = await this.enrol();
    else if (this.opts.server && serverList(this.opts.server).join(',') !== identity.server) {
      // The control plane's addresses changed (replicas added or moved): the pinned CA and
      // the credential stay.
      identity = { ...identity, server: serverList(this.opts.server).join(',') };
      await this.state.saveIdentity(identity);
    }
    this.servers = serverList(identity.server);
    // At run time `identity.server` is the replica in use; the saved identity lists them all.
    this.identity = { ...identity, server: this.servers[0]! };
    this.desired = await this.state.loadDesired();
    for (const [uid, d] of Object.entries(this.desired.instances)) {
      // Instances already created by an earlier agent count as applied when present.
      if ((await this.runtime.inspect(uid)).state !== 'absent') this.applied.set(uid, specHash(d));
    }
    this.inventory = this.opts.inventory ?? (await detectInventory(this.opts.dataDir));
    this.timers.push(setInterval(() => this.kick(), this.opts.reconcileIntervalMs ?? 2000));
    this.timers.push(
      setInterval(() => this.heartbeat().catch(() => undefined), this.opts.heartbeatIntervalMs ?? 5000),
    );
    this.timers.push(
      setInterval(() => this.probe().catch(() => undefined), this.opts.probeIntervalMs ?? 30_000),
    );
    const resendAfter = this.opts.resendAfterMs ?? 5000;
    this.timers.push(setInterval(() => this.resendUnacked(resendAfter), Math.max(100, resendAfter / 2)));
    this.kick();
    this.connect();
    return this.identity;
  }

  /** Stops the agent; its VMs keep running. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.ws?.terminate();
    while (this.reconciling) await new Promise((r) => setTimeout(r, 50));
  }

  // ---- enrolment ------------------------------------------------------------

  private async enrol(): Promise<AgentIdentity> {
    const { server, joinToken } = this.opts;
    if (!server || !joinToken)
      throw new Error(
        `this node is not enrolled yet (no ${join(this.opts.dataDir, 'identity.json')}): give --server and --token`,
      );
    const parsed = parseJoinToken(joinToken);
    if (!parsed) throw new Error('the join token is malformed (expected ctj_<id>_<secret>_<ca sha256>)');
    // Any of the control plane's replicas enrols a node: the first that answers.
    const servers = serverList(server);
    let base = servers[0]!;
    let caPem: string | undefined;
    for (const candidate of servers) {
      try {
        caPem = await fetchPinnedCa(candidate, parsed.caFingerprint);
        base = candidate;
        break;
      } catch (err) {
        if (candidate === servers[servers.length - 1]) throw err;
        this.log(`${candidate}: ${(err as Error).message}; trying the next address`);
      }
    }
    if (!caPem) throw new Error('no control-plane address answered');
    const inventory = this.opts.inventory ?? (await detectInventory(this.opts.dataDir));
    const res = await pinnedRequest(`${base}${AGENT_ENROL_PATH}`, caPem, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        token: joinToken,
        inventory,
        ...(this.opts.name ? { name: this.opts.name } : {}),
      }),
    });
    const text = await readAll(res.body);
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`enrolment failed: HTTP ${res.status}`);
    }
    if (res.status !== 200)
      throw new Error(`enrolment refused: ${body?.error?.message ?? `HTTP ${res.status}`}`);
    const e = body as EnrolResponse;
    const identity: AgentIdentity = {
      server: servers.join(','),
      caPem,
      caFingerprint: parsed.caFingerprint,
      credential: e.credential,
      provider: e.provider,
      site: e.site,
      node: e.node,
    };
    await this.state.saveIdentity(identity);
    this.log(`enrolled as node ${e.provider}/${e.node} at site ${e.site}`);
    return identity;
  }

  // ---- connection -------------------------------------------------------------

  private connect(): void {
    if (this.stopped || !this.identity) return;
    const id = this.identity;
    const url = `${id.server.replace(/^http/, 'ws')}${AGENT_CONNECT_PATH}`;
    const ws = new WebSocket(url, {
      ...pinnedTls(id.caPem),
      headers: { authorization: `Bearer ${id.credential}` },
      handshakeTimeout: 10_000,
    });
    this.ws = ws;
    ws.on('open', () => {
      this.attempts = 0;
      if (this.servers.length > 1) this.log(`connected to ${id.server}`);
      this.connected = true;
      const local = (ws as unknown as { _socket?: { localAddress?: string } })._socket?.localAddress;
      this.address = this.opts.advertiseAddress ?? local?.replace(/^::ffff:/, '') ?? '';
      this.hello(ws, this.address).catch((err) => this.log(`hello failed: ${(err as Error).message}`));
    });
    ws.on('message', (data) => {
      try {
        this.onMessage(JSON.parse(String(data)) as ServerMessage).catch((err) =>
          this.log(`handling a message failed: ${(err as Error).message}`),
        );
      } catch {
        this.log('ignored a malformed message from the control plane');
      }
    });
    ws.on('unexpected-response', (_req, res) => {
      this.log(`control plane refused the connection: HTTP ${res.statusCode} (credential revoked?)`);
      ws.terminate();
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      const was = this.connected;
      this.connected = false;
      if (this.ws === ws) this.ws = undefined;
      if (this.stopped) return;
      // Several replicas: the next one is tried at once; backoff only once each was tried.
      const n = this.servers.length;
      if (n > 1 && this.identity) {
        this.identity = {
          ...this.identity,
          server: this.servers[(this.servers.indexOf(id.server) + 1) % n]!,
        };
      }
      const round = Math.floor(this.attempts / n);
      const delay =
        n > 1 && this.attempts % n !== n - 1
          ? 100
          : Math.min(MAX_BACKOFF_MS, 500 * 2 ** round) * (0.75 + Math.random() * 0.5);
      this.attempts++;
      if (was)
        this.log(
          `disconnected; reconnecting${n > 1 ? ` to ${this.identity?.server}` : ''} in ${Math.round(delay)} ms`,
        );
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
  }

  private send(msg: object): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private async hello(ws: WebSocket, address: string): Promise<void> {
    const instances: ObservedInstance[] = [];
    for (const uid of Object.keys(this.desired.instances)) instances.push(await this.observe(uid));
    this.lastReported.clear();
    for (const o of instances) this.lastReported.set(o.uid, JSON.stringify(o));
    if (ws.readyState !== WebSocket.OPEN) return;
    // The hello reports every instance: it stands for whatever was not acknowledged.
    const seq = ++this.reportSeq;
    this.unacked.clear();
    for (const o of instances) this.unacked.set(o.uid, { seq, observed: o, sentAt: Date.now() });
    ws.send(
      JSON.stringify({
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        lastRevision: this.desired.revision,
        inventory: {
          ...this.inventory,
          liveMigration: canMigrate(this.runtime) && (this.opts.liveMigration ?? true),
          coldMigration: canMigrate(this.runtime),
          containers: this.runtime.kinds.includes('container'),
        },
        address,
        instances,
        seq,
      }),
    );
  }

  /** Sends instance reports with a sequence number; they are kept until acknowledged. */
  private report(instances: ObservedInstance[]): void {
    const seq = ++this.reportSeq;
    const now = Date.now();
    for (const o of instances) this.unacked.set(o.uid, { seq, observed: o, sentAt: now });
    this.send({ type: 'observed', instances, seq });
  }

  /** Reports the control plane did not acknowledge in time (its write failed) go again. */
  private resendUnacked(afterMs: number): void {
    if (!this.connected) return;
    const now = Date.now();
    const due = [...this.unacked.values()].filter((u) => now - u.sentAt >= afterMs).map((u) => u.observed);
    if (due.length) this.report(due);
  }

  private onAck(seq: number, refused: readonly { uid: string; reason: string }[] = []): void {
    let forgot = false;
    for (const [uid, u] of this.unacked) {
      if (u.seq > seq) continue;
      this.unacked.delete(uid);
      // An absent instance is forgotten once the control plane has stored that it is gone.
      const d = this.desired.instances[uid];
      if (u.observed.phase === 'Absent' && d?.desired === 'absent') {
        delete this.desired.instances[uid];
        delete this.desired.restarts[uid];
        delete this.desired.reboots[uid];
        this.lastReported.delete(uid);
        forgot = true;
      }
    }
    for (const r of refused) {
      this.unacked.delete(r.uid);
      this.log(`control plane refused the report of instance ${r.uid}: ${r.reason}`);
    }
    if (forgot)
      this.state
        .saveDesired(this.desired)
        .catch((err) => this.log(`saving state failed: ${(err as Error).message}`));
  }

  private async onMessage(msg: ServerMessage): Promise<void> {
    if (msg.type === 'desired') {
      const d = this.desired;
      if (msg.full) {
        const incoming = new Set(msg.instances.map((i) => i.uid));
        // Anything the control plane no longer knows for this node must go.
        for (const [uid, inst] of Object.entries(d.instances))
          if (!incoming.has(uid)) d.instances[uid] = { ...inst, desired: 'absent' };
        d.synced = true;
      }
      for (const inst of msg.instances) {
        const have = d.instances[inst.uid];
        if (!have || inst.revision > have.revision || msg.full) d.instances[inst.uid] = inst;
      }
      d.revision = Math.max(d.revision, msg.revision);
      await this.state.saveDesired(d);
      this.kick(msg.full ? undefined : msg.instances.map((i) => i.uid));
      return;
    }
    if (msg.type === 'ack') {
      this.onAck(msg.seq, msg.refused);
      return;
    }
    if (msg.type === 'config') {
      this.probes = msg.probes;
      this.probe().catch(() => undefined);
      return;
    }
    if (msg.type === 'request') {
      try {
        this.send({ type: 'reply', id: msg.id, ok: true, result: await this.answer(msg) });
      } catch (err) {
        this.send({ type: 'reply', id: msg.id, ok: false, error: (err as Error).message });
      }
    }
  }

  /** Answers a request of the control plane (a console read, a step of a migration). */
  private async answer(msg: Extract<ServerMessage, { type: 'request' }>): Promise<unknown> {
    switch (msg.method) {
      case 'console': {
        const { uid, offset, limit } = msg.params;
        if (!this.desired.instances[uid]) throw new Error('no such instance on this node');
        return this.runtime.readConsole(uid, offset, Math.min(limit, 1024 * 1024));
      }
      case 'migrate-receive':
        return this.migrations.receive(msg.params);
      case 'migrate-send':
        return this.migrations.send(msg.params);
      case 'migrate-cancel':
        return this.migrations.cancel(msg.params);
      case 'migrate-state':
        return this.migrations.state(msg.params);
      case 'migrate-finish':
        return this.migrations.finish(msg.params);
      case 'migrate-reclaim': {
        const r = await this.migrations.reclaim(msg.params);
        if (r.reclaimed) this.kick();
        return r;
      }
      case 'erase': {
        // From now on the reconcile leaves these alone (their rows go next).
        for (const uid of msg.params.uids) this.erased.add(uid);
        return eraseHere(
          {
            runtime: this.runtime,
            imagePath: (sha) => this.images.pathOf(sha),
            instances: () =>
              Object.values(this.desired.instances).filter(
                (d) => !this.erased.has(d.uid) && d.desired !== 'absent',
              ),
            log: (m) => this.log(m),
          },
          msg.params,
        );
      }
      case 'export-disk':
        return this.migrations.exportDisk(msg.params);
      case 'migrate-abort':
        return this.migrations.abort(msg.params, (uid) => {
          const d = this.desired.instances[uid];
          return !!d && d.desired !== 'absent';
        });
    }
  }

  /** Times a TCP connection to each probe target and reports the round-trip times. */
  private async probe(): Promise<void> {
    if (!this.connected || !this.probes.length) return;
    const rttMs: Record<string, number> = {};
    await Promise.all(
      this.probes.map(async (p) => {
        const ms = await bestRtt(p.address);
        if (ms !== undefined) rttMs[p.name] = ms;
      }),
    );
    if (Object.keys(rttMs).length) this.send({ type: 'probes', rttMs });
  }

  private async heartbeat(): Promise<void> {
    if (!this.connected) return;
    const usage = [];
    for (const uid of Object.keys(this.desired.instances)) {
      const o = await this.runtime.inspect(uid);
      const u = o.pid ? await processUsage(o.pid) : undefined;
      if (u) usage.push({ uid, ...u });
    }
    this.send({ type: 'heartbeat', metrics: await (this.opts.metrics ?? nodeMetrics)(), usage });
  }

  // ---- reconcile ------------------------------------------------------------------

  /**
   * Runs a reconcile pass now (or right after the current one): over the instances named,
   * or over every instance (the periodic pass that heals, a full desired set) when none are.
   * A node with many VMs then pays per change, not per instance it holds.
   */
  kick(uids?: Iterable<string>): void {
    if (this.stopped) return;
    if (uids) for (const uid of uids) this.dirty.add(uid);
    else this.fullPassDue = true;
    if (this.reconciling) return;
    this.reconciling = true;
    void (async () => {
      try {
        while ((this.fullPassDue || this.dirty.size) && !this.stopped) {
          const only = this.fullPassDue ? undefined : this.dirty;
          this.fullPassDue = false;
          this.dirty = new Set();
          await this.reconcileAll(only);
        }
      } catch (err) {
        this.log(`reconcile failed: ${(err as Error).message}`);
      } finally {
        this.reconciling = false;
      }
    })();
  }

  private async reconcileAll(only?: ReadonlySet<string>): Promise<void> {
    const d = this.desired;
    const uids = only ? [...only].filter((uid) => d.instances[uid]) : Object.keys(d.instances);
    for (const uid of uids) {
      try {
        await this.reconcile(uid);
        this.errors.delete(uid);
      } catch (err) {
        this.errors.set(uid, (err as Error).message);
        this.log(`instance ${d.instances[uid]?.name ?? uid}: ${(err as Error).message}`);
      }
    }
    if (d.synced && !only) {
      for (const uid of await this.runtime.list()) {
        if (d.instances[uid] || this.migrations.busy(uid)) continue;
        // Made of a cold migration's copy: the control plane binds it here, or removes it
        // (`migrate-abort`) when the migration fails; the source's copy is stopped meanwhile.
        const o = await this.runtime.inspect(uid);
        if (o.received) continue;
        // Prepared for a migration that may still be bound here: kept while its stream
        // can still complete; gone once it cannot (its QEMU died, or the stream failed).
        if (o.incoming && o.state === 'running' && canMigrate(this.runtime)) {
          const state = await this.runtime.incomingState(uid).catch(() => 'failed');
          if (state !== 'failed' && state !== 'cancelled') continue;
        }
        this.log(`removing VM ${uid}: not in this node's desired state`);
        await this.runtime.delete(uid).catch(() => undefined);
      }
    }
    const changed: ObservedInstance[] = [];
    for (const uid of uids) {
      if (!d.instances[uid]) continue; // forgotten meanwhile (acknowledged as gone)
      if (this.erased.has(uid) && d.instances[uid]!.desired !== 'absent') continue;
      const seen = await this.runtime.inspect(uid);
      // Migrated away or still arriving (not being sent: that one still runs here): not
      // this node's to report until its binding moves.
      const inFlight = !this.migrations.busy(uid) && (seen.migratedAway || seen.incoming || seen.received);
      if (d.instances[uid]!.desired !== 'absent' && inFlight) continue;
      const o = await this.observe(uid, seen);
      const s = JSON.stringify(o);
      if (this.lastReported.get(uid) !== s) {
        changed.push(o);
        if (this.connected) this.lastReported.set(uid, s);
      }
    }
    if (changed.length && this.connected) this.report(changed);
  }

  private async reconcile(uid: string): Promise<void> {
    const d = this.desired.instances[uid]!;
    // Erased here: reported gone once its row says absent, never made again before that.
    if (this.erased.has(uid) && d.desired !== 'absent') return;
    const obs = await this.runtime.inspect(uid);
    if (d.desired === 'absent') {
      if (obs.state !== 'absent') await this.runtime.delete(uid);
      this.applied.delete(uid);
      return;
    }
    const hash = specHash(d);
    // A copy that migrated away waits for its removal; one being sent is left alone.
    if (obs.migratedAway || this.migrations.busy(uid)) {
      if (!obs.incoming && !obs.received) return;
    }
    if (obs.incoming) {
      // Received by live migration and now bound here: this node's from now on.
      const state = await this.migrator().incomingState(uid);
      if (state === 'active' || state === 'setup') return;
      if (state === 'completed') {
        await this.migrator().completeIncoming(uid);
        this.migrations.adopted(uid);
        this.applied.set(uid, hash);
        this.desired.reboots[uid] = d.spec.reboots ?? 0;
        this.log(`instance ${d.name}: received by live migration, running here`);
      } else this.migrations.adopted(uid);
    }
    // Read again only when a received copy was just adopted (its state changed).
    if (obs.received) {
      // Made of a cold migration's disk copy and now bound here: started below.
      await this.migrator().adoptReceived(uid);
      this.migrations.adopted(uid);
      this.applied.set(uid, hash);
      this.desired.reboots[uid] = d.spec.reboots ?? 0;
      this.log(`instance ${d.name}: received by cold migration, starting here`);
    }
    const present = (obs.incoming ? await this.runtime.inspect(uid) : obs).state !== 'absent';
    if (this.applied.get(uid) !== hash || !present) {
      if (present) await this.runtime.delete(uid);
      await this.runtime.create(await this.specOf(d));
      this.applied.set(uid, hash);
      this.desired.reboots[uid] = d.spec.reboots ?? 0;
    }
    const now = await this.runtime.inspect(uid);
    const reboots = d.spec.reboots ?? 0;
    if (reboots > (this.desired.reboots[uid] ?? 0)) {
      this.desired.reboots[uid] = reboots;
      await this.state.saveDesired(this.desired);
      if (now.state === 'running' && d.desired === 'running') {
        this.log(`instance ${d.name}: rebooting`);
        await this.runtime.reboot(uid);
        return;
      }
    }
    if (d.desired === 'running' && now.state !== 'running') {
      if (now.state === 'crashed') {
        this.desired.restarts[uid] = (this.desired.restarts[uid] ?? 0) + 1;
        this.log(`instance ${d.name} crashed; restarting (restart ${this.desired.restarts[uid]})`);
        await this.state.saveDesired(this.desired);
      }
      await this.runtime.start(uid);
    } else if (d.desired === 'stopped' && now.state === 'running') {
      await this.runtime.stop(uid);
    }
  }

  /** QEMU for VMs, and runc for containers where this host can run them. */
  private defaultRuntime(): Runtime {
    const common = { portBindAddress: this.opts.portBindAddress, stopTimeoutMs: this.opts.stopTimeoutMs };
    const vms = new QemuRuntime({ dir: join(this.opts.dataDir, 'instances'), ...common });
    const why = containersUnsupported();
    if (why) this.log(`this node runs VMs only: ${why}`);
    return new NodeRuntime(
      vms,
      why ? undefined : new RuncRuntime({ dir: join(this.opts.dataDir, 'containers'), ...common }),
    );
  }

  /** The runtime spec of an instance, its image files fetched and verified first. */
  private async specOf(d: DesiredInstance): Promise<InstanceRuntimeSpec> {
    const files: { disk?: string; kernel?: string; initrd?: string; oci?: string } = {};
    for (const [k, f] of Object.entries(d.spec.image.files)) {
      if (f)
        files[k as keyof typeof files] = this.opts.skipImages
          ? `simulated:${f.sha256}`
          : await this.images.ensure(this.identity!, f.sha256);
    }
    return {
      id: d.uid,
      hostname: d.spec.hostname,
      vcpus: d.vcpus,
      memoryMiB: d.memoryMiB,
      diskGiB: d.diskGiB,
      image: {
        format: d.spec.image.format,
        files,
        ...(d.spec.image.cmdline ? { cmdline: d.spec.image.cmdline } : {}),
        ...(d.spec.image.ref ? { ref: d.spec.image.ref } : {}),
      },
      ...(d.spec.userData !== undefined ? { userData: d.spec.userData } : {}),
      ...(d.spec.container ? { container: d.spec.container } : {}),
      ports: d.spec.ports,
    };
  }

  private migrator() {
    if (!canMigrate(this.runtime)) throw new Error(`the ${this.runtime.name} runtime cannot migrate live`);
    return this.runtime;
  }

  /** What to report of an instance (`seen`: the runtime's observation, if just read). */
  private async observe(uid: string, seen?: InstanceObservation): Promise<ObservedInstance> {
    const d = this.desired.instances[uid]!;
    const o = seen ?? (await this.runtime.inspect(uid));
    const error = this.errors.get(uid);
    const phase: ObservedInstance['phase'] =
      d.desired === 'absent'
        ? o.state === 'absent'
          ? 'Absent'
          : 'Deleting'
        : error
          ? 'Failed'
          : o.state === 'running'
            ? 'Running'
            : o.state === 'stopped' && d.desired === 'stopped'
              ? 'Stopped'
              : 'Creating';
    return {
      uid,
      revision: d.revision,
      phase,
      ports: o.state === 'running' ? o.ports : [],
      restarts: this.desired.restarts[uid] ?? 0,
      ...(error ? { message: error } : {}),
      ...(o.startedAt && o.state === 'running' ? { startedAt: o.startedAt } : {}),
      ...(o.accelerator ? { accelerator: o.accelerator } : {}),
    };
  }
}
