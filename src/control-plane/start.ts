// Starts one control-plane process: data directory, store (SQLite by default,
// PostgreSQL by URL), first-start admin token, and the HTTP API.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import { type ApiContext, buildApi } from '../api/index.js';
import { AuthFailureLimiter, type FailureLimiterOptions } from '../auth/index.js';
import {
  admitMigration,
  ClusterCache,
  MigrationController,
  NodeHealthController,
  WorkloadController,
} from '../controllers/index.js';
import { admitSwitching, SwitchingActions } from '../controllers/switching-actions.js';
import { SwitchingController } from '../controllers/switching-controller.js';
import {
  AgentGateway,
  type AgentLimits,
  CA_KEY_FILE,
  type CertificateAuthority,
  Enrolment,
  fetchDisk,
  issueServingCertificate,
  loadOrCreateCa,
  localNames,
  MetricsHistory,
  type RelayElsewhere,
  type ServingCertificate,
} from '../gateway/index.js';
import { buildKubernetesApi } from '../kubernetes/index.js';
import { loadFramework, useFramework } from '../model/index.js';
import type { NodeMetrics, TransferProgress } from '../protocol/index.js';
import { ExportService } from '../resources/export.js';
import { IdentityService } from '../resources/index.js';
import { ResourceService } from '../resources/service.js';
import { engineOf, FeedFollower, forgetReplicas, type Presence, pruneFeed, Store } from '../store/index.js';
import { VERSION } from '../version.js';
import { ClusterAgents } from './cluster-agents.js';
import {
  agentRequestRoute,
  exportRelayElsewhere,
  forwardAgentRequest,
  type GrantMessage,
  grantRoute,
  metricsAcrossReplicas,
  nodeMetricsRoute,
  replicaKey,
  shareGrant,
} from './forwarding.js';
import { defaultReplicaName, Leadership, REPLICA_FORGET_MS } from './leadership.js';
import { parseListen } from './paths.js';
import { PresenceNotes } from './presence.js';

export interface ControlPlaneOptions {
  listen: string;
  dataDir: string;
  /**
   * A file of weights of the sovereignty objectives (the format of
   * data/sovereignty-weights.json) to score providers with instead of the shipped one.
   */
  sovereigntyWeights?: string;
  /** postgres://… selects PostgreSQL; absent means SQLite in the data directory. */
  databaseUrl?: string;
  /** PostgreSQL schema to use (tests isolate themselves with it). */
  databaseSchema?: string;
  logLevel?: string;
  /** Where agents connect (HTTPS + WebSocket); empty to run no gateway. */
  agentListen?: string;
  /** Extra host names or addresses agents reach the gateway by (for its certificate). */
  agentNames?: readonly string[];
  /** Agent silence after which a node is suspect / down (and its replicas re-placed). */
  nodeSuspectAfterMs?: number;
  nodeDownAfterMs?: number;
  /** The federation CA's private key (default DATA_DIR/ca.key); replicas share a copy. */
  caKeyFile?: string;
  /** Bytes an event-stream client may leave unread before it is disconnected. */
  sseBufferBytes?: number;
  /** Serve /metrics without a token. */
  metricsPublic?: boolean;
  /** Failed authentications allowed per source and window (API and agent gateway alike). */
  authFailures?: FailureLimiterOptions;
  /** Per-connection limits of agent messages (default: DEFAULT_AGENT_LIMITS). */
  agentLimits?: AgentLimits;
  /**
   * The time switching requests run on (default: now). Tests move it through months in
   * seconds; a production control plane never sets it.
   */
  clock?: () => Date;
  /** How often the switching controller looks at open requests (default 5 s). */
  switchingIntervalMs?: number;
  /** Where the Kubernetes API facade listens (HTTPS, the federation CA's certificate); empty for none. */
  kubernetesListen?: string;
  /** How often a Kubernetes watch looks for changes (default 1 s). */
  kubernetesWatchIntervalMs?: number;
  /**
   * This replica's name among those on one PostgreSQL database (default HOST-PORT);
   * SQLite's single process is 'local'.
   */
  replicaName?: string;
  /** The API URL clients and other replicas reach this one at (default: the listen address). */
  advertise?: string;
  /** The leader's lease and how often it is renewed (PostgreSQL; defaults 10 s and 2 s). */
  leaseTtlMs?: number;
  leaseRenewMs?: number;
}

/** The controllers one replica runs while it leads (all write through its fenced store). */
interface Controllers {
  cache: ClusterCache;
  controller: WorkloadController;
  migrations: MigrationController;
  health: NodeHealthController;
  switching: SwitchingController;
  /** Prunes the change feed and forgets replicas long gone. */
  housekeeping: NodeJS.Timeout;
}

export interface ControlPlane {
  url: string;
  app: FastifyInstance;
  ctx: ApiContext;
  store: Store;
  dataDir: string;
  storeDescription: string;
  /** Set only on the first start of a fresh store. */
  adminToken?: string;
  adminTokenFile: string;
  gateway?: AgentGateway;
  /** The agent gateway's URL, when it runs. */
  gatewayUrl?: string;
  /** The Kubernetes API facade's URL, when it runs. */
  kubernetesUrl?: string;
  caFingerprint?: string;
  /** This replica's name and its part in the leader's lease. */
  replica: string;
  leadership: Leadership;
  /** PostgreSQL: the durable change feed this replica follows. */
  follower?: FeedFollower;
  /** The controllers, while this replica leads (each getter throws when it does not). */
  readonly controller: WorkloadController;
  readonly migrations: MigrationController;
  readonly health: NodeHealthController;
  readonly switching: SwitchingController;
  close(): Promise<void>;
}

export const ADMIN_TOKEN_FILE = 'admin-token';
export const DEFAULT_AGENT_LISTEN = '127.0.0.1:7401';
export const DEFAULT_KUBERNETES_LISTEN = '127.0.0.1:7402';

/**
 * The data directory holds the database, its WAL, the CA key and the admin token: it is
 * made 0700 and every file in it 0600 (folders 0700), whether it existed before or not.
 */
export async function lockDown(dir: string): Promise<void> {
  await fs.chmod(dir, 0o700);
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(e.parentPath ?? e.path, e.name);
    if (e.isDirectory()) await fs.chmod(path, 0o700);
    else if (e.isFile()) await fs.chmod(path, 0o600);
  }
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const { host, port } = parseListen(opts.listen);
  // Checked before anything starts: weights that do not make a framework stop the start.
  if (opts.sovereigntyWeights) useFramework(loadFramework(opts.sovereigntyWeights));
  await fs.mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  const url = opts.databaseUrl ?? join(opts.dataDir, 'continuum.db');
  const engine = engineOf(url);
  if (opts.databaseUrl && engine !== 'postgres')
    throw new Error(
      `unsupported database URL '${opts.databaseUrl}': use postgres://user@host:port/db, or leave it unset for SQLite`,
    );
  const storeDescription =
    engine === 'postgres' ? `postgres ${new URL(url).host}${new URL(url).pathname}` : `sqlite ${url}`;
  const replica = opts.replicaName ?? (engine === 'postgres' ? defaultReplicaName(port) : 'local');
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/.test(replica))
    throw new Error(
      `invalid replica name '${replica}': letters, digits, '.', '_', ':' and '-', at most 63, starting with a letter or digit`,
    );
  /** Until the API's logger exists, what the store and the feed have to say goes to stderr. */
  let warn = (msg: string, err?: unknown) => console.error(msg, err ?? '');
  const store = await Store.open({
    url,
    schema: opts.databaseSchema,
    replica,
    onConnectionError: (err) => warn('a database connection broke; the next query opens another', err),
  });
  let follower: FeedFollower | undefined;
  try {
    if (engine === 'postgres') {
      follower = new FeedFollower(store, { log: (msg, err) => warn(msg, err) });
      await follower.start();
    }
    // After the store opened (its WAL exists); what is made later is made private.
    await lockDown(opts.dataDir);
    const adminToken = await new IdentityService(store).bootstrap();
    const adminTokenFile = join(opts.dataDir, ADMIN_TOKEN_FILE);
    if (adminToken) await fs.writeFile(adminTokenFile, `${adminToken}\n`, { mode: 0o600 });
    const logger = opts.logLevel && opts.logLevel !== 'silent' ? { level: opts.logLevel } : false;
    const imageDir = join(opts.dataDir, 'images');
    const authLimiter = new AuthFailureLimiter(opts.authFailures);
    const built = await buildApi({
      store,
      imageDir,
      logger,
      version: VERSION,
      authLimiter,
      ...(opts.sseBufferBytes ? { sseBufferBytes: opts.sseBufferBytes } : {}),
      ...(opts.metricsPublic ? { metricsPublic: true } : {}),
    });
    const { app, ctx } = built;
    warn = (msg, err) => app.log.warn({ err }, msg);
    /** The controllers, while this replica leads. */
    let current: Controllers | undefined;
    // A migration's target is checked against the leader's view of the fleet; a replica
    // that does not lead reads the fleet for it (migrations are created seldom).
    const standbyCache = new ClusterCache(store);
    ctx.resources.admission.set('Migration', async (tx, parent, name, spec, existing) => {
      if (current) return admitMigration(current.cache)(tx, parent, name, spec, existing);
      await standbyCache.refresh();
      return admitMigration(standbyCache)(tx, parent, name, spec, existing);
    });
    const clock = opts.clock ?? (() => new Date());
    ctx.resources.admission.set('SwitchingRequest', admitSwitching(clock));
    const presence = new PresenceNotes(store, (msg, err) => app.log.warn({ err }, msg));
    let gateway: AgentGateway | undefined;
    /** The agents as the migration controller sees them (on every replica's gateway). */
    let agents: ClusterAgents | undefined;
    /** Ends the grants other replicas gave this one. */
    let endGrants = () => {};
    /** An export's disk from a node held by another replica comes through that one's relay. */
    let exportElsewhere: RelayElsewhere | undefined;
    let caFingerprint: string | undefined;
    let gatewayCa: CertificateAuthority | undefined;
    /** The gateway's certificate; the Kubernetes facade serves the same names with it. */
    let servingCert: ServingCertificate | undefined;
    const agentListen = opts.agentListen ?? DEFAULT_AGENT_LISTEN;
    if (agentListen) {
      const ca = await loadOrCreateCa(store, opts.caKeyFile ?? join(opts.dataDir, CA_KEY_FILE));
      gatewayCa = ca;
      caFingerprint = ca.fingerprint;
      const cert = await issueServingCertificate(ca, [...localNames(), ...(opts.agentNames ?? [])]);
      servingCert = cert;
      const enrolment = new Enrolment(store, () => ca.fingerprint);
      // Replicas pass requests for agents connected elsewhere to each other (PostgreSQL).
      const signing = replicaKey(ca.keyPem);
      gateway = new AgentGateway({
        ...(engine === 'postgres'
          ? {
              forward: (req: Parameters<typeof forwardAgentRequest>[2]) =>
                forwardAgentRequest(store, signing, req),
            }
          : {}),
        store,
        enrolment,
        ca,
        cert,
        listen: agentListen,
        imageDir,
        imageFile: (sha) => ctx.images.local(sha),
        authLimiter,
        ...(opts.agentLimits ? { limits: opts.agentLimits } : {}),
      });
      gateway.on('error', (err) => app.log.error({ err }, 'agent gateway'));
      const history = new MetricsHistory();
      ctx.nodeMetrics = async (provider, names) => new Map(names.map((n) => [n, history.of(provider, n)]));
      // Replicas: agent requests, grants, exports' relays and node metrics reach the
      // replica holding the agent.
      let share: ((msg: GrantMessage) => Promise<unknown>) | undefined;
      if (engine === 'postgres') {
        const log = (m: string, err?: unknown) => app.log.warn({ err }, m);
        agentRequestRoute(app, gateway, signing, authLimiter);
        endGrants = grantRoute(app, gateway, signing, authLimiter);
        exportElsewhere = exportRelayElsewhere(store, signing, log);
        share = (msg) => shareGrant(store, signing, msg, log);
        nodeMetricsRoute(app, history, signing, authLimiter);
        ctx.nodeMetrics = metricsAcrossReplicas(store, signing, history, log);
      }
      agents = new ClusterAgents(gateway, share);
      // The progress of a migration an agent here sends reaches the leader's controller.
      gateway.on('migration-progress', (m: string, p: TransferProgress, provider: string, node: string) => {
        if (!current) presence.progress(m, p, provider, node);
      });
      // Node health queues the node and retries a failed write itself (onError logs it).
      // A replica that does not lead passes what it heard to the leader's through the feed.
      gateway.on('connected', (p: string, n: string) =>
        current ? void current.health.connected(p, n) : presence.connected(p, n),
      );
      gateway.on('heartbeat', (p: string, n: string, msg: { metrics: NodeMetrics }) => {
        ctx.metrics.agentHeartbeats.inc();
        history.record(p, n, msg.metrics);
        if (current) void current.health.seen(p, n);
        else presence.seen(p, n);
      });
      const rejected = new Counter({
        name: 'continuum_agent_messages_rejected_total',
        help: 'agent messages refused by the gateway (the connection is closed), inventories capped and round-trip times below the physical minimum (not used), by reason',
        labelNames: ['reason'] as const,
        registers: [ctx.metrics.registry],
      });
      gateway.on('rejected', (reason: string, node: string, detail: string) => {
        rejected.inc({ reason });
        app.log.warn({ node, reason, detail }, 'agent message refused');
      });
      const stats = gateway.stats;
      /** A gauge read from the gateway when Prometheus scrapes. */
      const reading = (name: string, help: string, read: () => number) =>
        new Gauge({
          name,
          help,
          registers: [ctx.metrics.registry],
          collect() {
            this.set(read());
          },
        });
      reading(
        'continuum_agent_reports_refused_instances',
        'instances named in agent reports that were not bound to the reporting node (not applied)',
        () => stats.refusedInstances,
      );
      new Gauge({
        name: 'continuum_agent_gateway_failed_writes',
        help: 'writes of what agents sent that failed, by what: reports (resent by the agent until acknowledged), heartbeats (written with the next), messages (hello inventories, probe results)',
        labelNames: ['what'] as const,
        registers: [ctx.metrics.registry],
        collect() {
          for (const [what, n] of Object.entries(stats.failedWrites)) this.set({ what }, n);
        },
      });
      reading(
        'continuum_agent_gateway_relayed_bytes',
        'bytes of live-migration streams the gateway relayed between nodes that could not reach each other (both ways)',
        () => stats.relayedBytes,
      );
      reading(
        'continuum_agent_transport_restarts',
        "times the agent gateway's transport thread died and was started again",
        () => stats.transportRestarts,
      );
      ctx.gateway = gateway;
      const connected = gateway;
      reading(
        'continuum_agents_connected',
        'node agents connected to the agent gateway',
        () => connected.connectedCount,
      );
      ctx.enrolment = enrolment;
      ctx.gatewayUrl = await gateway.start();
    }
    // Exports and erasure certificates are signed with the CA; a control plane without the
    // gateway (no nodes) loads it on first use.
    let federationCa = gatewayCa;
    const ca = async () => {
      federationCa ??= await loadOrCreateCa(store, opts.caKeyFile ?? join(opts.dataDir, CA_KEY_FILE));
      return federationCa;
    };
    ctx.exports = new ExportService({
      store,
      dir: join(opts.dataDir, 'exports'),
      imageFile: (sha) => ctx.images.local(sha),
      ca,
      ...(gateway && gatewayCa
        ? {
            fetchDisk: (at, file, onProgress) =>
              fetchDisk(gateway!, gatewayCa!.certPem, at, file, onProgress, exportElsewhere),
          }
        : {}),
    });
    const exports = ctx.exports;
    const switchingOn = (on: Store, resources: ResourceService) =>
      new SwitchingController({
        store: on,
        resources,
        ...(gateway ? { agents: gateway } : {}),
        ca,
        eraseExports: (project) => exports.eraseProject(project),
        eraseImageFile: (sha) => ctx.images.erase(sha),
        clock,
        ...(opts.switchingIntervalMs ? { intervalMs: opts.switchingIntervalMs } : {}),
        log: (msg, err) => app.log.warn({ err }, msg),
      });
    const switchingApi = {
      // Not started: it reads certificates for the API on a replica that does not lead.
      controller: switchingOn(store, ctx.resources),
      actions: new SwitchingActions(store, clock),
      caPem: async () => (await ca()).certPem,
    };
    ctx.switching = switchingApi;
    await ctx.exports.clean();
    ctx.importDir = join(opts.dataDir, 'imports');
    await fs.rm(ctx.importDir, { recursive: true, force: true });

    /** Builds and starts the controllers on a store fenced by this replica's lease. */
    const lead = async (): Promise<void> => {
      const fenced = store.fenced(leadership.fence);
      const cache = new ClusterCache(fenced);
      // Created first, started after the workload controller: each knows the other's part.
      let migrations: MigrationController | undefined;
      const controller = new WorkloadController({
        store: fenced,
        cache,
        migrating: () => migrations?.migrating ?? new Set(),
        live: (inst) => migrations?.live(inst) ?? false,
        log: (msg, err) => app.log.warn({ err }, msg),
        onPlaced: (replicas, pass, queued) => {
          ctx.metrics.placements.inc(replicas);
          // Once per pass: its replicas share the times, and a summary observation costs
          // five digest updates (one per age bucket) — per replica it was 3 % of the thread.
          ctx.metrics.placementSeconds.observe(pass);
          ctx.metrics.placementQueueSeconds.observe(queued);
        },
      });
      const health = new NodeHealthController({
        store: fenced,
        suspectAfterMs: opts.nodeSuspectAfterMs,
        downAfterMs: opts.nodeDownAfterMs,
        onError: (node, err) =>
          app.log.warn({ err, node }, 'node health: writing a node state failed; retried'),
      });
      migrations = new MigrationController({
        store: fenced,
        cache,
        ...(agents ? { agents } : {}),
        log: (msg, err) => app.log.warn({ err }, msg),
      });
      const resources = new ResourceService(fenced);
      for (const [kind, admit] of ctx.resources.admission) resources.admission.set(kind, admit);
      const switching = switchingOn(fenced, resources);
      const housekeeping = setInterval(() => {
        const work = store.engine === 'postgres' ? pruneFeed(store) : Promise.resolve(0);
        work
          .then(() => forgetReplicas(store, { staleMs: REPLICA_FORGET_MS }))
          .catch((err) => app.log.warn({ err }, 'housekeeping of the change feed failed; retried'));
      }, 60_000);
      housekeeping.unref();
      const c: Controllers = { cache, controller, migrations, health, switching, housekeeping };
      current = c;
      ctx.health = health;
      ctx.switching = { ...switchingApi, controller: switching };
      await controller.start();
      await migrations.start();
      await health.start();
      await switching.start();
    };
    const stepDown = async (): Promise<void> => {
      const c = current;
      current = undefined;
      ctx.health = undefined;
      ctx.switching = switchingApi;
      if (!c) return;
      clearInterval(c.housekeeping);
      c.switching.stop();
      c.health.stop();
      c.migrations.stop();
      c.controller.stop();
    };
    // Agents heard by another replica count for the leader's node health.
    // So does the progress of the migrations their agents send.
    store.committed.on('presence', (p: Presence) => {
      if (!current || p.replica === replica) return;
      const nodeOf = (key: string) => key.split('/') as [string, string];
      for (const key of p.connected) void current.health.connected(...nodeOf(key));
      for (const key of p.seen) void current.health.seen(...nodeOf(key));
      for (const m of p.progress ?? []) agents?.heard(m.migration, m.progress, m.provider, m.node);
    });
    let kube: FastifyInstance | undefined;
    if (opts.kubernetesListen) {
      const k = parseListen(opts.kubernetesListen);
      const fedCa = await ca();
      const cert =
        servingCert ?? (await issueServingCertificate(fedCa, [...localNames(), ...(opts.agentNames ?? [])]));
      kube = await buildKubernetesApi({
        store,
        resources: ctx.resources,
        identity: ctx.identity,
        authLimiter,
        ...(gateway ? { gateway } : {}),
        version: VERSION,
        tls: { key: cert.keyPem, cert: cert.certPem },
        ...(opts.kubernetesWatchIntervalMs ? { watchIntervalMs: opts.kubernetesWatchIntervalMs } : {}),
        ...(logger ? { logger } : {}),
      });
      await kube.listen({ host: k.host, port: k.port });
      const a = kube.server.address();
      const kHost = k.host.includes(':') ? `[${k.host}]` : k.host === '0.0.0.0' ? '127.0.0.1' : k.host;
      ctx.kubernetes = {
        url: `https://${kHost}:${typeof a === 'object' && a ? a.port : k.port}`,
        caPem: fedCa.certPem,
      };
    }
    await app.listen({ host, port });
    const addr = app.server.address();
    const boundPort = typeof addr === 'object' && addr ? addr.port : port;
    const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
    const apiUrl = `http://${shownHost}:${boundPort}`;
    const leadership = new Leadership({
      store,
      name: replica,
      address: opts.advertise ?? apiUrl,
      gateway: ctx.gatewayUrl ?? '',
      version: VERSION,
      ...(opts.leaseTtlMs ? { ttlMs: opts.leaseTtlMs } : {}),
      ...(opts.leaseRenewMs ? { renewMs: opts.leaseRenewMs } : {}),
      onLead: lead,
      onLose: stepDown,
      log: (msg, err) => (err ? app.log.warn({ err }, msg) : app.log.info(msg)),
    });
    await leadership.start();
    presence.start(() => current === undefined);
    // Image content erased through another replica goes from this data directory too.
    const sweep =
      store.engine === 'postgres'
        ? setInterval(
            () =>
              void ctx.images
                .sweep()
                .catch((err) => app.log.warn({ err }, 'sweeping erased image files failed')),
            60_000,
          )
        : undefined;
    sweep?.unref();
    const running = (): Controllers => {
      if (!current) throw new Error(`replica ${replica} does not lead: its controllers do not run`);
      return current;
    };
    return {
      url: apiUrl,
      app,
      ctx,
      store,
      dataDir: opts.dataDir,
      storeDescription,
      adminToken,
      adminTokenFile,
      gateway,
      gatewayUrl: ctx.gatewayUrl,
      kubernetesUrl: ctx.kubernetes?.url,
      caFingerprint,
      replica,
      leadership,
      ...(follower ? { follower } : {}),
      get controller() {
        return running().controller;
      },
      get migrations() {
        return running().migrations;
      },
      get health() {
        return running().health;
      },
      get switching() {
        return running().switching;
      },
      async close() {
        if (sweep) clearInterval(sweep);
        await leadership.stop();
        await presence.stop();
        endGrants();
        await gateway?.close();
        await kube?.close();
        await app.close();
        await follower?.stop();
        await store.close();
      },
    };
  } catch (err) {
    await follower?.stop();
    await store.close();
    throw err;
  }
}
