// `continuum server`: run the control plane in the foreground.
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import {
  DEFAULT_AGENT_LISTEN,
  DEFAULT_KUBERNETES_LISTEN,
  DEFAULT_LEASE_RENEW_MS,
  DEFAULT_LEASE_TTL_MS,
  DEFAULT_LISTEN,
  defaultDataDir,
  guardControlPlane,
  startControlPlane,
} from '../../control-plane/index.js';

export function serverCommand(program: Command): void {
  program
    .command('server')
    .description('run the control plane (SQLite in the data directory unless a PostgreSQL URL is given)')
    .option('--listen <host:port>', 'address of the HTTP API', process.env.CONTINUUM_LISTEN ?? DEFAULT_LISTEN)
    .option('--data-dir <dir>', 'data directory (SQLite database, images, admin token)', defaultDataDir())
    .option(
      '--database-url <url>',
      'postgres://… to use PostgreSQL (env CONTINUUM_DATABASE_URL)',
      process.env.CONTINUUM_DATABASE_URL,
    )
    .option(
      '--agent-listen <host:port>',
      'address of the agent gateway (HTTPS + WebSocket); "" for none',
      process.env.CONTINUUM_AGENT_LISTEN ?? DEFAULT_AGENT_LISTEN,
    )
    .option(
      '--kubernetes-listen <host:port>',
      'address of the Kubernetes API facade for kubectl (HTTPS); "" for none',
      process.env.CONTINUUM_KUBERNETES_LISTEN ?? DEFAULT_KUBERNETES_LISTEN,
    )
    .option(
      '--agent-name <name>',
      'a host name or address agents reach the gateway by, for its certificate (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '--ca-key-file <file>',
      "the federation CA's private key (default DATA_DIR/ca.key; mode 0600). Back it up; replicas share a copy",
      process.env.CONTINUUM_CA_KEY_FILE,
    )
    .option(
      '--sovereignty-weights <file>',
      "weights of the sovereignty objectives in providers' scores (JSON like data/sovereignty-weights.json; summing to 100)",
      process.env.CONTINUUM_SOVEREIGNTY_WEIGHTS,
    )
    .option(
      '--node-suspect-after <ms>',
      'agent silence after which a node is suspect',
      (v) => Number.parseInt(v, 10),
      10_000,
    )
    .option(
      '--node-down-after <ms>',
      'agent silence after which a node is down and its replicas are re-placed',
      (v) => Number.parseInt(v, 10),
      15_000,
    )
    .option(
      '--replica-name <name>',
      "this replica's name among those sharing one PostgreSQL database (default HOST-PORT; env CONTINUUM_REPLICA_NAME)",
      process.env.CONTINUUM_REPLICA_NAME,
    )
    .option(
      '--advertise <url>',
      'the API URL clients and agents reach this replica at (default: the --listen address; env CONTINUUM_ADVERTISE)',
      process.env.CONTINUUM_ADVERTISE,
    )
    .option(
      '--lease-ttl <ms>',
      "how long the leader's lease lasts unless renewed: a new leader takes over at most this long after the old one died (PostgreSQL)",
      (v) => Number.parseInt(v, 10),
      DEFAULT_LEASE_TTL_MS,
    )
    .option(
      '--lease-renew <ms>',
      'how often the leader renews its lease (at most half the TTL)',
      (v) => Number.parseInt(v, 10),
      DEFAULT_LEASE_RENEW_MS,
    )
    .option(
      '--metrics-public',
      "serve /metrics without a token (default: a federation-admin's or metrics-reader's token)",
    )
    .option(
      '--log-level <level>',
      'request log level: silent, error, warn, info, debug',
      process.env.CONTINUUM_LOG_LEVEL ?? 'warn',
    )
    .action(async (opts) => {
      // Everything this process writes (database, WAL, keys, images) is for it alone.
      process.umask(0o077);
      const cp = await startControlPlane({
        ...(opts.caKeyFile ? { caKeyFile: opts.caKeyFile } : {}),
        ...(opts.sovereigntyWeights ? { sovereigntyWeights: opts.sovereigntyWeights } : {}),
        listen: opts.listen,
        dataDir: opts.dataDir,
        databaseUrl: opts.databaseUrl || undefined,
        logLevel: opts.logLevel,
        agentListen: opts.agentListen,
        kubernetesListen: opts.kubernetesListen,
        agentNames: opts.agentName ?? [],
        nodeSuspectAfterMs: opts.nodeSuspectAfter,
        nodeDownAfterMs: opts.nodeDownAfter,
        ...(opts.replicaName ? { replicaName: opts.replicaName } : {}),
        ...(opts.advertise ? { advertise: opts.advertise } : {}),
        leaseTtlMs: opts.leaseTtl,
        leaseRenewMs: opts.leaseRenew,
        ...(opts.metricsPublic ? { metricsPublic: true } : {}),
      });
      const out = process.stdout;
      out.write(`Continuum control plane listening on ${cp.url}\n`);
      out.write(
        `  console:  ${cp.url}/\n  store:    ${cp.storeDescription}\n  data dir: ${cp.dataDir}\n  API:      ${cp.url}/openapi.json\n`,
      );
      if (cp.store.engine === 'postgres') {
        const lease = cp.leadership.lease;
        out.write(
          `  replica:  ${cp.replica} (${cp.leadership.leading ? `leader, epoch ${lease?.epoch}` : `following ${lease?.replica ?? 'no leader yet'}`}; continuum get replicas)\n`,
        );
      }
      if (cp.gatewayUrl) out.write(`  agents:   ${cp.gatewayUrl} (CA sha256 ${cp.caFingerprint})\n`);
      if (cp.kubernetesUrl)
        out.write(`  kubectl:  ${cp.kubernetesUrl} (continuum kubeconfig writes a kubeconfig)\n`);
      if (cp.adminToken) {
        out.write(`\nFirst start: created user 'admin' (federation-admin). Its token is shown only now\n`);
        out.write(`and saved to ${cp.adminTokenFile} (mode 0600):\n\n  ${cp.adminToken}\n\n`);
        out.write(`The web console, signed in as admin:\n  ${cp.url}/#token=${cp.adminToken}\n\n`);
      }
      // Another replica of the database made the admin (and its token file) at its first start.
      out.write(
        existsSync(cp.adminTokenFile)
          ? `Log in with:\n  continuum login --server ${cp.url} --token-file ${cp.adminTokenFile}\n`
          : `Log in with:\n  continuum login --server ${cp.url} --token TOKEN   # the admin token of the database's first start\n`,
      );
      // An unhandled rejection is a bug to log and count, not a reason to drop every agent.
      guardControlPlane(cp.ctx.metrics.registry, (err) =>
        cp.app.log.error({ err }, 'unhandled promise rejection (a bug; the control plane keeps running)'),
      );
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        out.write(`\n${signal}: shutting down\n`);
        await cp.close();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
    });
}
