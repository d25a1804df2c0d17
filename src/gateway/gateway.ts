// The agent gateway: an HTTPS + WebSocket endpoint, separate from the API, that agents
// enrol through, fetch images from and keep one authenticated connection to. It pushes
// desired state down (the full set on connect, then changes by revision) and writes
// what agents report back into node and instance status. The sockets, TLS and message
// framing run in a worker thread (transport-worker.ts); this class decides and writes.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AuthFailureLimiter } from '../auth/index.js';
import { parseListen } from '../control-plane/paths.js';
import {
  type LatencyProbe,
  Problem,
  probeLocation,
  type SiteSpec,
  type SiteStatus,
  type SuspectRtt,
} from '../model/index.js';
import {
  AGENT_ENROL_PATH,
  AGENT_IMAGES_PATH,
  type AgentMessage,
  type AgentRequestMethod,
  type AgentRequests,
  CA_PATH,
  CLOSE_CODES,
  type DesiredInstance,
  type Inventory,
  type ObservedInstance,
  PROTOCOL_VERSION,
  type ServerMessage,
} from '../protocol/index.js';
import { minimumRttMs } from '../scheduler/index.js';
import {
  type Change,
  desiredInstanceOf,
  type InstanceStatus,
  instanceEventDoc,
  type NewEvent,
  type Store,
} from '../store/index.js';
import type { Enrolment } from './enrolment.js';
import { keepMetrics, metricsOf } from './kept-metrics.js';
import { capInventory, inventoryExcess, nodeLimits } from './node-limits.js';
import type { CertificateAuthority, ServingCertificate } from './pki.js';
import {
  type AgentLimits,
  type ConnectionEvent,
  DEFAULT_AGENT_LIMITS,
  type FromTransport,
  type HttpRequest,
  type HttpResponse,
  type RejectReason,
  type RelayRequest,
  type ToTransport,
} from './transport.js';

export interface GatewayOptions {
  store: Store;
  enrolment: Enrolment;
  ca: CertificateAuthority;
  cert: ServingCertificate;
  listen: string;
  /** Where uploaded image files are kept (images/sha256/<hex>). */
  imageDir: string;
  /**
   * The path of an image file's content on this replica, fetched from the database when
   * needed (PostgreSQL); default: DIR/sha256/<hex> in imageDir.
   */
  imageFile?: (sha256: string) => Promise<string | undefined>;
  /** Passes a request for an agent connected to another replica on to it. */
  forward?: (req: {
    provider: string;
    node: string;
    method: string;
    params: unknown;
    timeoutMs: number;
  }) => Promise<unknown>;
  /** A node's metrics and last heartbeat are written at most this often. */
  heartbeatWriteIntervalMs?: number;
  /** How long instance reports and desired-state pushes are gathered into one batch. */
  batchWindowMs?: number;
  /** Per-connection message limits (rate); sizes are the protocol's own. */
  limits?: AgentLimits;
  /** Failed authentications per source (shared with the API). */
  authLimiter?: AuthFailureLimiter;
}

/** One agent report waiting to be written: its observations and the sequence to acknowledge. */
interface Report {
  s: Session;
  observed: readonly ObservedInstance[];
  seq?: number;
}

/** Nodes whose heartbeats one transaction writes. */
const HEARTBEAT_WRITE_BATCH = 100;

/** Why a reported instance was not applied (sent back in the acknowledgement). */
export const REFUSED_NOT_BOUND = 'not bound to this node';

interface Session {
  /** The transport's connection. */
  conn: number;
  provider: string;
  node: string;
  credentialId: string;
  address: string;
  sentRevision: number;
  /** Desired-state changes waiting for the next push, by instance uid. */
  outbox?: Map<string, DesiredInstance>;
  lastWrite: number;
  /** The agent said hello (reported its inventory and instances): other messages count from then on. */
  greeted?: boolean;
  /** When the last heartbeat not written yet came (0: every heartbeat is written). */
  heardAt: number;
  /** That heartbeat's metrics (kept-metrics.ts), overwritten in place by the next. */
  metrics?: Float64Array;
  pending: Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>;
}

const key = (provider: string, node: string) => `${provider}/${node}`;

/** The relay's name for the control plane itself, receiving an export's disk (no provider: never a node). */
const EXPORT_RECEIVER = 'control-plane';

const json = (id: number, status: number, body: unknown): HttpResponse => ({
  id,
  status,
  contentType: 'application/json',
  body: JSON.stringify(body),
});

export class AgentGateway extends EventEmitter {
  private worker?: Worker;
  private stopped?: Promise<void>;
  private closing = false;
  /** Where the transport listens (the port it bound, to restart it there). */
  private bound?: { host: string; port: number };
  private readonly sessions = new Map<string, Session>();
  private readonly byConn = new Map<number, Session>();
  /** Serialized messages waiting for the next hand-over to the transport. */
  private outgoing: [number, string][] = [];
  private nextRequestId = 1;
  private readonly measurements = new Map<string, Map<string, Map<string, number>>>();
  private unsubscribe?: () => void;
  /** Migrations whose streams the relay may carry: their source and destination nodes. */
  private readonly relayGrants = new Map<string, { source: string; target: string }>();
  /** Exports whose disk the control plane receives through the relay: its side's token. */
  private readonly exportTokens = new Map<string, string>();
  /** Image files nodes may fetch for migrations they receive: sha256 → grants, by node. */
  private readonly imageGrants = new Map<string, Map<string, number>>();
  /** Instance reports waiting for the next batch write. */
  private observedQueue: Report[] = [];
  private observedFlush?: Promise<void>;
  /** Sessions with desired-state changes to push. */
  private readonly pushQueue = new Set<Session>();
  private pushTimer?: NodeJS.Timeout;
  private heartbeatTimer?: NodeJS.Timeout;
  private heartbeatsWriting?: Promise<void>;
  /** Agent messages the transport refused, by reason; reported instances not applied. */
  readonly stats = {
    rejected: {} as Partial<Record<RejectReason | 'capped', number>>,
    refusedInstances: 0,
    transportRestarts: 0,
    /**
     * Writes of what agents sent that failed: instance reports (not acknowledged, so the
     * agent sends them again), heartbeat times and metrics (written with the next one),
     * and other messages (a hello's inventory, probe results).
     */
    failedWrites: { reports: 0, heartbeats: 0, messages: 0 },
    /** Bytes of migration streams relayed (both ways) for nodes that cannot reach each other. */
    relayedBytes: 0,
  };
  url = '';
  private readonly limiter: AuthFailureLimiter;

  constructor(private readonly opts: GatewayOptions) {
    super();
    this.limiter = opts.authLimiter ?? new AuthFailureLimiter();
  }

  async start(): Promise<string> {
    const { host, port } = parseListen(this.opts.listen);
    const bound = await this.spawnTransport(host, port);
    this.bound = { host, port: bound };
    this.url = `https://${host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${bound}`;
    this.unsubscribe = this.opts.store.changes.subscribe((changes) => this.route(changes));
    this.heartbeatTimer = setInterval(() => {
      // One pass at a time: a pass may outlast the interval at fleet scale.
      this.heartbeatsWriting ??= this.writeHeartbeats()
        .catch((err) => {
          this.stats.failedWrites.heartbeats++;
          this.emit('error', err);
        })
        .finally(() => {
          this.heartbeatsWriting = undefined;
        });
    }, 1000);
    this.heartbeatTimer.unref();
    return this.url;
  }

  /** Starts the transport worker listening on host:port; resolves with the port it bound. */
  private async spawnTransport(host: string, port: number): Promise<number> {
    const worker = new Worker(new URL('./transport-worker.js', import.meta.url), {
      workerData: {
        host,
        port,
        keyPem: this.opts.cert.keyPem,
        certPem: this.opts.cert.certPem,
        limits: this.opts.limits ?? DEFAULT_AGENT_LIMITS,
        // Short: the main thread batches reports again for its writes.
        flushMs: 5,
      },
    });
    const bound = await new Promise<number>((resolve, reject) => {
      const early = (err: Error) => reject(err);
      worker.once('error', early);
      worker.once('exit', (code) => reject(new Error(`the agent transport exited (${code})`)));
      const first = (m: FromTransport) => {
        worker.off('message', first);
        worker.off('error', early);
        if (m.type === 'listening') resolve(m.port);
        else reject(new Error(`agent gateway cannot listen on ${host}:${port}: ${(m as any).message}`));
      };
      worker.on('message', first);
    }).catch(async (err) => {
      await worker.terminate();
      throw err;
    });
    worker.removeAllListeners('exit');
    if (this.closing) {
      await worker.terminate();
      return bound;
    }
    this.worker = worker;
    worker.on('message', (m: FromTransport) => this.fromTransport(m));
    worker.on('error', (err) => this.emit('error', err));
    this.stopped = new Promise((resolve) =>
      worker.once('exit', (code) => {
        if (this.worker === worker) {
          // Not asked to stop: every agent connection went with it. Agents reconnect
          // once a new transport listens on the same port.
          this.worker = undefined;
          for (const s of [...this.sessions.values()]) this.detach(s.conn);
          this.stats.transportRestarts++;
          this.emit('error', new Error(`the agent transport stopped (exit ${code}); restarting it`));
          void this.respawn();
        }
        resolve();
      }),
    );
    return bound;
  }

  private async respawn(): Promise<void> {
    const { host, port } = this.bound!;
    for (let attempt = 0; !this.closing; attempt++) {
      try {
        await this.spawnTransport(host, port);
        return;
      } catch (err) {
        this.emit('error', new Error(`restarting the agent transport failed: ${(err as Error).message}`));
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
      }
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    this.unsubscribe?.();
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.heartbeatsWriting;
    if (this.pushTimer) clearTimeout(this.pushTimer);
    await this.observedFlush?.catch(() => undefined);
    const worker = this.worker;
    this.worker = undefined;
    for (const s of [...this.sessions.values()]) this.detach(s.conn);
    if (worker) {
      const done = new Promise<void>((resolve) => {
        worker.on('message', (m: FromTransport) => m.type === 'stopped' && resolve());
        worker.once('exit', () => resolve());
      });
      this.toTransport({ type: 'stop' }, worker);
      await done;
      await worker.terminate();
      await this.stopped;
    }
  }

  private toTransport(m: ToTransport, worker = this.worker): void {
    worker?.postMessage(m);
  }

  private fromTransport(m: FromTransport): void {
    // Closed: what the transport still had in flight is dropped (the store may be closed).
    if (!this.worker) return;
    switch (m.type) {
      case 'events':
        for (const e of m.events) this.onConnectionEvent(e);
        return;
      case 'relayed':
        this.stats.relayedBytes += m.bytes;
        return;
      case 'authenticate':
        void (async () =>
          this.exportReceiver(m.authorization, m.relay) ??
          this.authenticate(m.authorization, m.remoteAddress))()
          .then((a) => ('node' in a && m.relay && !this.mayRelay(a.node, m.relay) ? { retryAfter: 0 } : a))
          .catch(() => ({ retryAfter: 0 }))
          .then((a) =>
            this.toTransport({
              type: 'authenticated',
              id: m.id,
              ...('node' in a ? { node: a.node } : a.retryAfter ? { retryAfter: a.retryAfter } : {}),
            }),
          );
        return;
      case 'http':
        void this.handleHttp(m.request)
          .catch((err) => {
            const p = err instanceof Problem ? err : new Problem('internal', 'internal error');
            if (!(err instanceof Problem)) this.emit('error', err);
            return {
              ...json(m.request.id, p.status, p.toJSON()),
              ...(p.retryAfterS !== undefined ? { retryAfter: p.retryAfterS } : {}),
            };
          })
          .then((response) => this.toTransport({ type: 'http', response }));
        return;
      case 'error':
        this.emit('error', new Error(m.message));
        return;
    }
  }

  private onConnectionEvent(e: ConnectionEvent): void {
    if (e.t === 'attached') this.attach(e.conn, e.node, e.address);
    else if (e.t === 'closed') this.detach(e.conn);
    else if (e.t === 'rejected') {
      const s = this.byConn.get(e.conn);
      this.rejected(e.reason, s ? key(s.provider, s.node) : '', e.detail);
    } else {
      const s = this.byConn.get(e.conn);
      if (s)
        this.handleMessage(s, e.msg).catch((err) => {
          this.stats.failedWrites.messages++;
          this.emit('error', err);
        });
    }
  }

  /** Counts what was refused of a node (a message, or a capped inventory claim) and says so. */
  private rejected(reason: RejectReason | 'capped', node: string, detail: string): void {
    this.stats.rejected[reason] = (this.stats.rejected[reason] ?? 0) + 1;
    this.emit('rejected', reason, node, detail);
  }

  /** Agents connected now. */
  get connectedCount(): number {
    return this.sessions.size;
  }

  isConnected(provider: string, node: string): boolean {
    return this.sessions.has(key(provider, node));
  }

  /** Closes a node's connection (after its credentials were revoked). */
  disconnect(provider: string, node: string, reason = 'credential revoked'): void {
    const s = this.sessions.get(key(provider, node));
    if (s) this.toTransport({ type: 'close', conn: s.conn, code: 4001, reason });
  }

  /**
   * Lets the two nodes of a migration connect to the relay for its streams (the source to
   * send, the destination to receive); returns the function that ends the permission.
   */
  allowRelay(migration: string, source: string, target: string): () => void {
    this.relayGrants.set(migration, { source, target });
    return () => this.relayGrants.delete(migration);
  }

  /**
   * Lets a node send the disk of an export through the relay, and the control plane
   * receive it with the returned one-time token; returns the token and the function that
   * ends both permissions.
   */
  allowExport(
    exportId: string,
    provider: string,
    node: string,
    /** Another replica's, for an export it receives through this gateway. */
    given?: string,
  ): { token: string; close: () => void } {
    const token = given ?? randomBytes(32).toString('base64url');
    this.relayGrants.set(exportId, { source: key(provider, node), target: key('', EXPORT_RECEIVER) });
    this.exportTokens.set(exportId, token);
    return {
      token,
      close: () => {
        this.relayGrants.delete(exportId);
        this.exportTokens.delete(exportId);
      },
    };
  }

  /** The control plane's own receiving side of an export's relay stream. */
  private exportReceiver(authorization: string, r: RelayRequest | undefined) {
    const token = r?.side === 'receive' ? this.exportTokens.get(r.migration) : undefined;
    if (!token) return undefined;
    const given = Buffer.from(authorization);
    const wanted = Buffer.from(`Bearer ${token}`);
    return given.length === wanted.length && timingSafeEqual(given, wanted)
      ? { node: { provider: '', node: EXPORT_RECEIVER, credentialId: '' } }
      : undefined;
  }

  private mayRelay(node: { provider: string; node: string }, r: RelayRequest): boolean {
    const g = this.relayGrants.get(r.migration);
    return !!g && (r.side === 'send' ? g.source : g.target) === key(node.provider, node.node);
  }

  /**
   * Lets a node fetch image files of an instance not bound to it yet (the destination of
   * a migration); returns the function that takes the grant back.
   */
  allowImages(provider: string, node: string, sha256s: readonly string[]): () => void {
    const k = key(provider, node);
    const grants = this.imageGrants.get(k) ?? new Map<string, number>();
    this.imageGrants.set(k, grants);
    for (const sha of sha256s) grants.set(sha, (grants.get(sha) ?? 0) + 1);
    return () => {
      for (const sha of sha256s) {
        const n = (grants.get(sha) ?? 1) - 1;
        if (n > 0) grants.set(sha, n);
        else grants.delete(sha);
      }
      if (!grants.size) this.imageGrants.delete(k);
    };
  }

  /**
   * Asks an agent something and waits for its reply: this gateway's own, or, when the
   * agent is connected to another replica, through it (opts.forward).
   */
  async request<M extends AgentRequestMethod>(
    provider: string,
    node: string,
    method: M,
    params: AgentRequests[M]['params'],
    timeoutMs = 10_000,
  ): Promise<AgentRequests[M]['result']> {
    if (!this.sessions.has(key(provider, node)) && this.opts.forward)
      return (await this.opts.forward({
        provider,
        node,
        method,
        params,
        timeoutMs,
      })) as AgentRequests[M]['result'];
    return this.requestLocal(provider, node, method, params, timeoutMs);
  }

  /** Where the transport listens (host as given: a wildcard says any of the host's addresses). */
  get listening(): { host: string; port: number } | undefined {
    return this.bound;
  }

  /** Whether this gateway holds the node's connection. */
  holds(provider: string, node: string): boolean {
    return this.sessions.has(key(provider, node));
  }

  /** Asks an agent connected to this gateway. */
  async requestLocal<M extends AgentRequestMethod>(
    provider: string,
    node: string,
    method: M,
    params: AgentRequests[M]['params'],
    timeoutMs = 10_000,
  ): Promise<AgentRequests[M]['result']> {
    const s = this.sessions.get(key(provider, node));
    if (!s) throw new Problem('node_unreachable', `node '${provider}/${node}' is not connected`);
    const id = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        s.pending.delete(id);
        reject(new Problem('node_unreachable', `node '${provider}/${node}' did not answer in time`));
      }, timeoutMs);
      s.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.send(s, { type: 'request', id, method, params } as ServerMessage);
    });
  }

  private send(s: Session, msg: ServerMessage): void {
    if (this.byConn.get(s.conn) !== s) return;
    // Everything sent in one turn of the event loop reaches the transport as one hand-over.
    if (!this.outgoing.length)
      setImmediate(() => {
        const items = this.outgoing;
        this.outgoing = [];
        this.toTransport({ type: 'send', items });
      });
    this.outgoing.push([s.conn, JSON.stringify(msg)]);
  }

  // ---- HTTP: CA, enrolment, images --------------------------------------------

  private async handleHttp(req: HttpRequest): Promise<HttpResponse> {
    const { id, method, path } = req;
    if (method === 'GET' && path === CA_PATH)
      return { id, status: 200, contentType: 'application/x-pem-file', body: this.opts.ca.certPem };
    if (method === 'GET' && path === '/healthz') return json(id, 200, { status: 'ok' });
    if (method === 'POST' && path === AGENT_ENROL_PATH) {
      let body: any;
      try {
        body = JSON.parse(req.body ?? '');
      } catch (err) {
        throw new Problem('invalid_json', `request body is not valid JSON: ${(err as Error).message}`);
      }
      try {
        const enrolled = await this.opts.enrolment.enrol(body);
        this.limiter.succeeded(req.remoteAddress);
        return json(id, 200, enrolled);
      } catch (err) {
        if (err instanceof Problem && err.code === 'unauthenticated') {
          const wait = this.limiter.failed(req.remoteAddress, 'join-token');
          if (wait) throw Problem.tooManyFailures(wait);
        }
        throw err;
      }
    }
    if (method === 'GET' && path.startsWith(`${AGENT_IMAGES_PATH}/`)) return this.serveImage(req);
    throw new Problem('not_found', `no route ${method} ${path}`);
  }

  /** A node's credential; a failure counts against the source address (retryAfter: over its limit). */
  private async authenticate(
    authorization: string | undefined,
    source: string,
  ): Promise<{ node: { provider: string; node: string; credentialId: string } } | { retryAfter: number }> {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    const node = m ? await this.opts.enrolment.authenticateNode(m[1]!) : undefined;
    if (!node) return { retryAfter: this.limiter.failed(source, 'node-credential') };
    this.limiter.succeeded(source);
    return { node };
  }

  private async serveImage(req: HttpRequest): Promise<HttpResponse> {
    const auth = await this.authenticate(req.authorization, req.remoteAddress);
    if (!('node' in auth)) {
      if (auth.retryAfter) throw Problem.tooManyFailures(auth.retryAfter);
      throw new Problem('unauthenticated', 'a valid node credential is required');
    }
    const node = auth.node;
    const sha = req.path.slice(AGENT_IMAGES_PATH.length + 1);
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new Problem('not_found', 'unknown image file');
    // A node may fetch only files of images its own instances use.
    const mine = await this.opts.store.listInstances({ provider: node.provider, node: node.node });
    const allowed =
      !!this.imageGrants.get(key(node.provider, node.node))?.has(sha) ||
      mine.some((i) => Object.values(i.spec.image.files).some((f) => f?.sha256 === sha));
    if (!allowed) throw new Problem('not_found', 'no instance on this node uses that image file');
    const file = this.opts.imageFile
      ? await this.opts.imageFile(sha)
      : join(this.opts.imageDir, 'sha256', sha);
    const stat = file ? await fs.stat(file).catch(() => undefined) : undefined;
    if (!stat) throw new Problem('not_found', 'the image file has not been uploaded');
    return { id: req.id, status: 200, file: file!, size: stat.size };
  }

  // ---- WebSocket sessions -----------------------------------------------------

  private attach(
    conn: number,
    node: { provider: string; node: string; credentialId: string },
    address: string,
  ): void {
    const k = key(node.provider, node.node);
    const old = this.sessions.get(k);
    if (old)
      this.toTransport({
        type: 'close',
        conn: old.conn,
        code: 4000,
        reason: 'replaced by a newer connection',
      });
    const s: Session = {
      conn,
      ...node,
      address,
      sentRevision: 0,
      lastWrite: 0,
      heardAt: 0,
      pending: new Map(),
    };
    this.sessions.set(k, s);
    this.byConn.set(conn, s);
  }

  private detach(conn: number): void {
    const s = this.byConn.get(conn);
    if (!s) return;
    this.byConn.delete(conn);
    const k = key(s.provider, s.node);
    for (const p of s.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Problem('node_unreachable', `node '${k}' disconnected`));
    }
    if (this.sessions.get(k) === s) {
      this.sessions.delete(k);
      this.emit('disconnected', s.provider, s.node);
    }
  }

  private async handleMessage(s: Session, msg: AgentMessage): Promise<void> {
    if (!s.greeted && msg.type !== 'hello') {
      this.rejected('invalid', key(s.provider, s.node), `${msg.type} before hello`);
      this.toTransport({
        type: 'close',
        conn: s.conn,
        code: CLOSE_CODES.invalid,
        reason: 'the first message must be hello',
      });
      return;
    }
    switch (msg.type) {
      case 'hello': {
        if (msg.protocol !== PROTOCOL_VERSION) {
          this.toTransport({
            type: 'close',
            conn: s.conn,
            code: 4003,
            reason: `protocol ${msg.protocol} not supported (server speaks ${PROTOCOL_VERSION})`,
          });
          return;
        }
        if (msg.address) s.address = msg.address;
        s.greeted = true;
        await this.writeNodeStatus(s, {
          ...(await this.boundedInventory(s, msg.inventory)),
          address: s.address,
        });
        await this.applyObserved(s, msg.instances, msg.seq);
        await this.pushFull(s);
        await this.sendConfig(s);
        this.emit('connected', s.provider, s.node);
        return;
      }
      case 'heartbeat':
        // Written in batches (writeHeartbeats); the node-health controller hears it now.
        s.heardAt = Date.now();
        s.metrics = keepMetrics(s.metrics, msg.metrics);
        this.emit('heartbeat', s.provider, s.node, msg);
        return;
      case 'probes':
        await this.recordProbes(s, msg.rttMs);
        return;
      case 'observed':
        await this.applyObserved(s, msg.instances, msg.seq);
        return;
      case 'migration':
        // Progress of a migration this node sends: the migration controller checks it is one.
        this.emit('migration-progress', msg.migration, msg.progress, s.provider, s.node);
        return;
      case 'reply': {
        const p = s.pending.get(msg.id);
        if (!p) return;
        s.pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(new Problem('node_unreachable', msg.error));
        return;
      }
    }
  }

  /**
   * The inventory to record: the agent's claim, capped at the largest node its provider
   * and site declare; the claim itself is kept beside it when it was more.
   */
  private async boundedInventory(s: Session, claim: Inventory): Promise<Record<string, unknown>> {
    const store = this.opts.store;
    const node = await store.get('nodes', s.provider, s.node);
    const site = node && (await store.get('sites', s.provider, node.spec.site));
    const provider = await store.get('providers', '', s.provider);
    if (!site || !provider) return { inventory: claim, inventoryClaim: undefined };
    const limits = nodeLimits({ name: provider.name, ...provider.spec }, { name: site.name, ...site.spec });
    const excess = inventoryExcess(claim, limits);
    if (!excess.length) return { inventory: claim, inventoryClaim: undefined };
    this.rejected('capped', key(s.provider, s.node), excess.map((e) => e.message).join('; '));
    return {
      inventory: capInventory(claim, limits),
      inventoryClaim: { inventory: claim, cappedBy: excess.map((e) => `${e.path} ${e.message}`).join('; ') },
    };
  }

  private async writeNodeStatus(s: Session, patch: Record<string, unknown>): Promise<void> {
    s.lastWrite = Date.now();
    s.heardAt = 0;
    await this.opts.store.transaction((tx) =>
      this.patchNodeStatus(
        tx,
        s,
        Object.assign({}, patch, { lastHeartbeat: new Date(s.lastWrite).toISOString() }),
      ),
    );
  }

  /**
   * Merges fields into a node's status, leaving its state to the node-health controller.
   */
  private async patchNodeStatus(tx: Store, s: Session, patch: Record<string, unknown>): Promise<void> {
    const row = await tx.get('nodes', s.provider, s.node);
    if (!row) return;
    const status = { ...row.status, ...patch };
    await tx.setStatus('nodes', row.uid, status, { state: status.state });
  }

  /**
   * Writes the metrics and heartbeat time of nodes whose last write is older than the
   * interval, HEARTBEAT_WRITE_BATCH nodes to a transaction: at fleet scale one write per
   * heartbeat would be most of the store's work. Between transactions the event loop
   * serves what waits: on SQLite a transaction holds the thread until it commits, and
   * one of a thousand nodes held the API's requests for a quarter of a second.
   */
  private async writeHeartbeats(): Promise<void> {
    const now = Date.now();
    const interval = this.opts.heartbeatWriteIntervalMs ?? 10_000;
    const due = [...this.sessions.values()].filter((s) => s.heardAt && now - s.lastWrite >= interval);
    for (let at = 0; at < due.length; at += HEARTBEAT_WRITE_BATCH) {
      if (at) await new Promise((r) => setImmediate(r));
      // A batch in one statement that sets the two fields in the database: on PostgreSQL
      // a statement is a round trip, and one a node was most of the store's work.
      const batch = due.slice(at, at + HEARTBEAT_WRITE_BATCH).flatMap((s) => {
        if (!s.heardAt || !s.metrics) return [];
        const patch = { metrics: metricsOf(s.metrics), lastHeartbeat: new Date(s.heardAt).toISOString() };
        s.heardAt = 0;
        s.lastWrite = now;
        return [{ s, patch }];
      });
      await this.opts.store.transaction((tx) =>
        tx.mergeStatuses(
          'nodes',
          ['metrics', 'lastHeartbeat'],
          batch.map(({ s, patch }) => ({ parent: s.provider, name: s.node, values: patch })),
          { bookkeeping: true },
        ),
      );
    }
  }

  /** Latency probe targets of the node's site. */
  private async sendConfig(s: Session): Promise<void> {
    const node = await this.opts.store.get('nodes', s.provider, s.node);
    const site = node && (await this.opts.store.get('sites', s.provider, node.spec.site));
    this.send(s, { type: 'config', probes: site?.spec.latencyProbes ?? [] });
  }

  /**
   * Keeps the lowest round-trip time any node of the site reported per target. A time
   * below the physical minimum for the distance (light in fibre, there and back) is
   * refused: counted, named in the site's `status.suspectRttMs`, and not used.
   */
  private async recordProbes(s: Session, rtt: Record<string, number>): Promise<void> {
    const node = await this.opts.store.get('nodes', s.provider, s.node);
    if (!node) return;
    const siteKey = `${s.provider}/${node.spec.site}`;
    const perTarget = this.measurements.get(siteKey) ?? new Map<string, Map<string, number>>();
    this.measurements.set(siteKey, perTarget);
    const suspect: Record<string, SuspectRtt> = {};
    await this.opts.store.transaction(async (tx) => {
      const site = await tx.get('sites', s.provider, node.spec.site);
      if (!site) return;
      const probes = new Map<string, LatencyProbe>(
        ((site.spec as SiteSpec).latencyProbes ?? []).map((p) => [p.name, p]),
      );
      for (const [name, ms] of Object.entries(rtt)) {
        const probe = probes.get(name);
        if (!probe || !Number.isFinite(ms) || ms < 0) continue;
        const where = probeLocation(probe);
        const minimumMs = where ? minimumRttMs(site.spec.location, where) : 0;
        if (ms < minimumMs) {
          suspect[name] = {
            node: s.node,
            reportedMs: Math.round(ms * 100) / 100,
            minimumMs: Math.round(minimumMs * 100) / 100,
            at: new Date().toISOString(),
          };
          continue;
        }
        const byNode = perTarget.get(name) ?? new Map<string, number>();
        byNode.set(s.node, ms);
        perTarget.set(name, byNode);
      }
      const measured: Record<string, number> = {};
      for (const [name, byNode] of perTarget)
        if (probes.has(name)) measured[name] = Math.round(Math.min(...byNode.values()) * 100) / 100;
      const status = site.status as SiteStatus;
      const suspectRttMs = { ...status.suspectRttMs, ...suspect };
      for (const name of Object.keys(suspectRttMs)) if (!probes.has(name)) delete suspectRttMs[name];
      const next: SiteStatus = { ...status, measuredRttMs: measured, suspectRttMs };
      if (!Object.keys(suspectRttMs).length) delete next.suspectRttMs;
      if (JSON.stringify(next) === JSON.stringify(status)) return;
      // The change feed tells the workload controller: replicas near the site are re-checked.
      await tx.update('sites', site.uid, undefined, { status: next, bumpGeneration: false });
    });
    for (const [name, v] of Object.entries(suspect))
      this.emit(
        'rejected',
        'rtt_below_physics',
        `${s.provider}/${s.node}`,
        `${name}: ${v.reportedMs} ms reported, at least ${v.minimumMs} ms for the distance`,
      );
  }

  private async pushFull(s: Session): Promise<void> {
    const all = await this.opts.store.listInstances({ provider: s.provider, node: s.node });
    const revision = all.reduce((m, i) => Math.max(m, i.revision), 0);
    s.sentRevision = revision;
    this.send(s, { type: 'desired', full: true, revision, instances: all.map(desiredInstanceOf) });
  }

  /**
   * From the change feed: instance writes reach the agents of the nodes they are bound
   * to, as written (no read back), and a node an instance moved off gets it as absent, so
   * that it stops its copy; a site's new spec (its probe targets) reaches its provider's
   * connected nodes.
   */
  private route(changes: readonly Change[]): void {
    let pushed = false;
    for (const c of changes) {
      if (c.table === 'sites' && c.part !== 'status') {
        for (const s of this.sessions.values())
          if (s.provider === c.parent) this.sendConfig(s).catch((err) => this.emit('error', err));
      }
      if (c.table !== 'instances' || !c.write) continue;
      const { record, previous } = c.write;
      const d = desiredInstanceOf(record);
      this.queuePush(record.provider, record.node, d);
      if (previous) this.queuePush(previous.provider, previous.node, { ...d, desired: 'absent' });
      pushed = true;
    }
    if (!pushed) return;
    // Changes committed close together reach each node as one message.
    this.pushTimer ??= setTimeout(() => {
      this.pushTimer = undefined;
      for (const s of this.pushQueue) this.flushPush(s);
      this.pushQueue.clear();
    }, this.opts.batchWindowMs ?? 20);
  }

  private queuePush(provider: string, node: string, d: DesiredInstance): void {
    const s = this.sessions.get(key(provider, node));
    if (!s) return; // it gets its full desired state when it connects
    s.outbox ??= new Map();
    s.outbox.set(d.uid, d);
    this.pushQueue.add(s);
  }

  private flushPush(s: Session): void {
    const instances = [...(s.outbox?.values() ?? [])];
    s.outbox = undefined;
    if (!instances.length || this.sessions.get(key(s.provider, s.node)) !== s) return;
    const revision = instances.reduce((m, i) => Math.max(m, i.revision), s.sentRevision);
    s.sentRevision = revision;
    this.send(s, { type: 'desired', full: false, revision, instances });
  }

  /**
   * Records what an agent reports about its instances. Reports arriving close together
   * are written in one transaction; the promise settles when this one is written (or
   * failed: the agent, not acknowledged, sends it again).
   */
  private applyObserved(s: Session, observed: readonly ObservedInstance[], seq?: number): Promise<void> {
    if (!observed.length) {
      if (seq !== undefined) this.send(s, { type: 'ack', seq });
      return Promise.resolve();
    }
    this.observedQueue.push({ s, observed, ...(seq !== undefined ? { seq } : {}) });
    this.observedFlush ??= new Promise<void>((resolve) =>
      setTimeout(resolve, this.opts.batchWindowMs ?? 20),
    ).then(() => {
      const batch = this.observedQueue;
      this.observedQueue = [];
      this.observedFlush = undefined;
      return this.writeObservedBatch(batch);
    });
    return this.observedFlush;
  }

  /**
   * One transaction for the batch (at fleet scale a commit per report would be most of
   * the store's work); if it fails, each node's reports are written again on their own,
   * so that one node's report that cannot be written never drops another node's.
   */
  private async writeObservedBatch(batch: Report[]): Promise<void> {
    const failed = (s: Session, err: unknown): void => {
      this.stats.failedWrites.reports++;
      this.emit(
        'error',
        new Error(`writing reports of node ${key(s.provider, s.node)} failed: ${(err as Error).message}`),
      );
    };
    try {
      await this.writeObserved(batch);
    } catch (err) {
      // Only on failure: the common path must not pay for the grouping.
      const bySession = new Map<Session, Report[]>();
      for (const r of batch) {
        const reports = bySession.get(r.s);
        if (reports) reports.push(r);
        else bySession.set(r.s, [r]);
      }
      if (bySession.size === 1) return failed(batch[0]!.s, err);
      for (const [s, reports] of bySession) await this.writeObserved(reports).catch((e) => failed(s, e));
    }
  }

  private async writeObserved(batch: readonly Report[]): Promise<void> {
    const refusedByReport = new Map<Report, { uid: string; reason: string }[]>();
    const reported = (s: Session, o: ObservedInstance, phase: InstanceStatus['phase']): InstanceStatus => ({
      phase,
      ports: o.ports.map((p) => ({ ...p, address: s.address })),
      restarts: o.restarts,
      observedRevision: o.revision,
      ...(o.message ? { message: o.message } : {}),
      ...(o.startedAt ? { startedAt: o.startedAt } : {}),
      ...(o.accelerator ? { accelerator: o.accelerator } : {}),
    });
    await this.opts.store.transaction(async (tx) => {
      refusedByReport.clear();
      // The common case, a few statements for the whole batch: live instances still bound
      // to the node reporting them (the latest report of each wins).
      const live = new Map<string, { uid: string; provider: string; node: string; status: InstanceStatus }>();
      for (const { s, observed } of batch)
        for (const o of observed)
          if (o.phase !== 'Absent')
            live.set(`${o.uid} ${s.provider}/${s.node}`, {
              uid: o.uid,
              provider: s.provider,
              node: s.node,
              status: reported(s, o, o.phase),
            });
      const written = live.size ? await tx.reportInstanceStatuses([...live.values()]) : new Map();
      // The rest — instances gone from their node, being deleted, or not the reporter's —
      // read in one statement, and those gone deleted in one, with their events: after a
      // fleet-wide move every old copy reports its end.
      const rest = batch.flatMap((report) =>
        report.observed
          .filter(
            (o) => o.phase === 'Absent' || !written.has(`${o.uid} ${report.s.provider}/${report.s.node}`),
          )
          .map((o) => ({ report, o })),
      );
      if (!rest.length) return;
      const states = await tx.getInstanceStatesByUid([...new Set(rest.map(({ o }) => o.uid))]);
      const gone: string[] = [];
      const events: NewEvent[] = [];
      for (const { report, o } of rest) {
        const { s } = report;
        const inst = states.get(o.uid);
        if (!inst || inst.provider !== s.provider || inst.node !== s.node) {
          // Another node's instance (or one gone): never applied. A node that was
          // moved off an instance reports it once more, harmlessly, before it learns.
          const refused = refusedByReport.get(report) ?? [];
          refused.push({ uid: o.uid, reason: REFUSED_NOT_BOUND });
          refusedByReport.set(report, refused);
          continue;
        }
        if (o.phase === 'Absent') {
          if (inst.desired !== 'absent') continue;
          // Gone for the reports after this one in the batch, as it will be in the store.
          states.delete(inst.uid);
          gone.push(inst.uid);
          events.push({
            actor: `node:${s.provider}/${s.node}`,
            action: 'delete',
            kind: 'Instance',
            parent: inst.project,
            name: inst.name,
            provider: inst.provider,
            project: inst.project,
            before: instanceEventDoc(inst),
            after: null,
          });
          continue;
        }
        // Being deleted: the agent is still at it.
        const status = reported(s, o, 'Deleting');
        if (JSON.stringify(status) === JSON.stringify(inst.status)) continue;
        await tx.setInstanceStatus(inst.uid, status);
        states.set(inst.uid, Object.assign({}, inst, { status }));
      }
      if (gone.length) {
        await tx.deleteInstances(gone);
        await tx.appendEvents(events);
      }
    });
    // Committed: acknowledge each report (agents resend what is not acknowledged).
    for (const report of batch) {
      const refused = refusedByReport.get(report);
      if (refused) this.stats.refusedInstances += refused.length;
      if (report.seq !== undefined)
        this.send(report.s, { type: 'ack', seq: report.seq, ...(refused ? { refused } : {}) });
    }
  }
}
