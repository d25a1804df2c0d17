// `continuum sim`: a fleet of simulated nodes (real agents, simulated runtime) joined
// to a control plane, for scale tests and demos.
import type { Command } from 'commander';
import { runFleet } from '../../sim/index.js';
import { resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import type { GlobalOptions } from '../program.js';

export function simCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('sim')
    .description(
      'join thousands of simulated nodes (real agents and protocol, simulated VMs) to a control plane',
    )
    .option('--nodes <n>', 'number of nodes', (v) => Number.parseInt(v, 10), 1000)
    .option(
      '--providers <n>',
      'number of providers (each with 1–3 sites in European cities)',
      (v) => Number.parseInt(v, 10),
      50,
    )
    .option('--seed <n>', 'seed of the generated federation', (v) => Number.parseInt(v, 10), 42)
    .option(
      '--heartbeat-interval <ms>',
      'heartbeat interval of every node',
      (v) => Number.parseInt(v, 10),
      5000,
    )
    .option(
      '--data-dir <dir>',
      'where the simulated agents keep their state (default: a temporary directory)',
    )
    .addHelpText(
      'after',
      `
Uses the configured server and token (a federation-admin's): it creates the providers
and sites, issues join tokens and enrols every node through the agent gateway.

Example, with \`continuum server\` running:
  continuum sim --nodes 2000 --providers 100`,
    )
    .action(async (opts) => {
      const conn = await resolveConnection(globals());
      if (!conn.token)
        throw new CliError('a federation-admin token is needed: run `continuum login` or pass --token');
      if (opts.nodes < 1 || opts.providers < 1)
        throw new CliError('--nodes and --providers must be at least 1');
      const t0 = Date.now();
      let last = 0;
      const fleet = await runFleet({
        api: conn.server,
        token: conn.token,
        nodes: opts.nodes,
        providers: opts.providers,
        seed: opts.seed,
        heartbeatIntervalMs: opts.heartbeatInterval,
        dataDir: opts.dataDir,
        onProgress: (done, total) => {
          if (done === total || Date.now() - last > 1000) {
            last = Date.now();
            process.stderr.write(`\renrolled ${done}/${total} nodes`);
          }
        },
      });
      process.stderr.write('\n');
      process.stdout.write(
        `${fleet.nodes.length} simulated nodes of ${opts.providers} providers are running (enrolled in ${((Date.now() - t0) / 1000).toFixed(1)} s). Ctrl-C stops them.\n`,
      );
      const stop = async () => {
        process.stdout.write('stopping simulated nodes…\n');
        await fleet.stop();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop());
      process.on('SIGTERM', () => void stop());
    });
}
