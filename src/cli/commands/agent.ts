// `continuum agent`: run the node agent in the foreground (systemd runs it the same way).
import type { Command } from 'commander';
import { Agent } from '../../agent/index.js';

export const DEFAULT_AGENT_DATA_DIR = '/var/lib/continuum-agent';

export function agentCommand(program: Command): void {
  program
    .command('agent')
    .description(
      "run the node agent: enrol with a join token once, then keep this node's VMs as the control plane wants",
    )
    .option(
      '--server <url>',
      "the control plane's agent gateway, e.g. https://cp.example.eu:7401 (needed to enrol)",
    )
    .option('--token <token>', 'join token from `continuum join-token create` (needed to enrol)')
    .option(
      '--data-dir <dir>',
      'identity, desired state, image cache and VMs',
      process.env.CONTINUUM_AGENT_DATA_DIR ?? DEFAULT_AGENT_DATA_DIR,
    )
    .option('--name <name>', 'node name (default: the hostname)')
    .option('--port-bind-address <addr>', 'address forwarded VM ports listen on', '0.0.0.0')
    .option(
      '--advertise-address <addr>',
      'address reported for forwarded ports (default: as seen by the control plane)',
    )
    .option('--heartbeat-interval <ms>', 'heartbeat interval', (v) => Number.parseInt(v, 10), 5000)
    .option(
      '--stop-timeout <ms>',
      'grace period for a guest to power off before it is forced',
      (v) => Number.parseInt(v, 10),
      10_000,
    )
    .addHelpText(
      'after',
      `
The first start enrols the node (--server and --token); later starts reuse the
credential kept in the data directory. Stopping the agent leaves its VMs running;
the next agent adopts them.`,
    )
    .action(async (opts, cmd: Command) => {
      const globals = cmd.parent?.opts() ?? {};
      const agent = new Agent({
        dataDir: opts.dataDir,
        server: opts.server ?? globals.server,
        joinToken: opts.token ?? globals.token,
        name: opts.name,
        portBindAddress: opts.portBindAddress,
        advertiseAddress: opts.advertiseAddress,
        heartbeatIntervalMs: opts.heartbeatInterval,
        stopTimeoutMs: opts.stopTimeout,
      });
      const id = await agent.start();
      process.stdout.write(
        `Continuum agent running as node ${id.provider}/${id.node} (site ${id.site}), control plane ${id.server}\n`,
      );
      const stop = async (signal: string) => {
        process.stdout.write(`${signal}: agent stopping; VMs keep running\n`);
        await agent.stop();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
    });
}
