// The `continuum` command: the control plane server and a kubectl-like client.
import { Command, Option } from 'commander';
import { VERSION } from '../version.js';
import { agentCommand } from './commands/agent.js';
import { applyCommands } from './commands/apply.js';
import { devCommand } from './commands/dev.js';
import { drainCommands } from './commands/drain.js';
import { eventsCommand } from './commands/events.js';
import { explainCommand } from './commands/explain.js';
import { exportCommands } from './commands/export.js';
import { getCommands } from './commands/get.js';
import { imageCommands } from './commands/image.js';
import { instanceCommands } from './commands/instances.js';
import { kubeconfigCommand } from './commands/kubeconfig.js';
import { loginCommands } from './commands/login.js';
import { migrateCommand } from './commands/migrate.js';
import { nodeCommands } from './commands/nodes.js';
import { reportCommand } from './commands/report.js';
import { serverCommand } from './commands/server.js';
import { simCommand } from './commands/sim.js';
import { switchingCommands } from './commands/switching.js';
import { tokenCommands } from './commands/token.js';
import { CliError } from './errors.js';
import { OUTPUT_FORMATS, type OutputFormat } from './output.js';

export interface GlobalOptions {
  server?: string;
  token?: string;
  project?: string;
  provider?: string;
  output: OutputFormat;
}

export function buildProgram(): Command {
  const program = new Command('continuum')
    .version(VERSION)
    .description('Continuum: one control plane over many European cloud-edge providers')
    .option(
      '--server <url>',
      "control plane URL; several replicas' URLs comma-separated (the first that answers is used) (default: config file, or CONTINUUM_SERVER)",
    )
    .option('--token <token>', 'API token (default: config file, or CONTINUUM_TOKEN)')
    .option(
      '-p, --project <name>',
      'project of images and workloads (default: config file, or CONTINUUM_PROJECT)',
    )
    .option('--provider <name>', 'provider of sites and nodes')
    // Checked when a command reads it (globals()): `export` takes -o as its archive file.
    .addOption(
      new Option(
        '-o, --output <format>',
        `output format: ${OUTPUT_FORMATS.join(', ')} (export: the archive file)`,
      ).default('table'),
    )
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });
  const globals = () => {
    const o = program.opts() as GlobalOptions;
    if (!(OUTPUT_FORMATS as readonly string[]).includes(o.output))
      throw new CliError(
        `option '-o, --output <format>' argument '${o.output}' is invalid. Allowed choices are ${OUTPUT_FORMATS.join(', ')}.`,
      );
    return o;
  };
  serverCommand(program);
  loginCommands(program, globals);
  getCommands(program, globals);
  applyCommands(program, globals);
  tokenCommands(program, globals);
  imageCommands(program, globals);
  eventsCommand(program, globals);
  instanceCommands(program, globals);
  nodeCommands(program, globals);
  migrateCommand(program, globals);
  agentCommand(program);
  devCommand(program);
  explainCommand(program, globals);
  reportCommand(program, globals);
  exportCommands(program, () => program.opts() as GlobalOptions);
  drainCommands(program, globals);
  switchingCommands(program, globals);
  simCommand(program, globals);
  kubeconfigCommand(program, globals);
  program.addHelpText(
    'after',
    `
Getting started:
  continuum server                                  # run the control plane (SQLite)
  continuum login --server http://127.0.0.1:7400 --token-file ~/.local/share/continuum/admin-token
  continuum apply -f examples/federation.yaml
  continuum get sites`,
  );
  return program;
}

export async function main(argv = process.argv): Promise<void> {
  // Output piped into a reader that stops early (`logs -f | head`): a quiet end, as any
  // command-line tool does, not a stack trace. Not for the commands that run until
  // stopped (dev, server, sim, agent): they clean up first and handle their output.
  if (!argv.slice(2).some((a) => ['dev', 'server', 'sim'].includes(a)))
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    // Unexpected failures (port in use, database unreachable …): the message is what
    // matters; CONTINUUM_DEBUG=1 shows the stack.
    process.stderr.write(`error: ${(err as Error).message}\n`);
    if (process.env.CONTINUUM_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    process.exitCode = 1;
  }
}
