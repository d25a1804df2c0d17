#!/usr/bin/env node
// `continuum-agent` (and `continuum agent`): the node agent's own entry point. It loads
// the agent, the protocol's types, the runtimes and ws — not the CLI, the API client or
// anything of the control plane — so an edge node spends its memory on its VMs.
// Options are parsed with node:util's parseArgs for the same reason.
// The entry scripts (bin/continuum-agent, src/cli/main.ts) load lean-flags before this
// module; imported here too for any other way in.
import './lean-flags.js';
import { parseArgs } from 'node:util';
import { VERSION } from '../version.js';
import { Agent } from './agent.js';

export const DEFAULT_AGENT_DATA_DIR = '/var/lib/continuum-agent';

const HELP = `Usage: continuum-agent [options]

Run the node agent: enrol with a join token once, then keep this node's VMs as the
control plane wants.

Options:
  --server <url>[,<url>…]     the control plane's agent gateway, e.g. https://cp.example.eu:7401;
                              several replicas' gateways comma-separated (the agent moves to the
                              next when its own goes away). Needed to enrol; given later, it
                              replaces the addresses kept (default: CONTINUUM_AGENT_SERVER)
  --token <token>             join token from \`continuum join-token create\` (needed to enrol;
                              default: CONTINUUM_AGENT_TOKEN)
  --data-dir <dir>            identity, desired state, image cache and VMs
                              (default: CONTINUUM_AGENT_DATA_DIR or ${DEFAULT_AGENT_DATA_DIR})
  --name <name>               node name (default: the hostname)
  --port-bind-address <addr>  address forwarded VM ports listen on (default: 0.0.0.0)
  --advertise-address <addr>  address reported for forwarded ports
                              (default: as seen by the control plane)
  --heartbeat-interval <ms>   heartbeat interval (default: 5000)
  --stop-timeout <ms>         grace period for a guest to power off before it is forced
                              (default: 10000)
  --no-live-migration         take and send no live migration (where policy or the network
                              forbids streams between nodes): instances move cold (stopped,
                              disk copied, started) to and from this node
  -V, --version               print the version
  -h, --help                  show this help

The first start enrols the node (--server and --token); later starts reuse the
credential kept in the data directory. Stopping the agent leaves its VMs running;
the next agent adopts them.
`;

/** A command-line mistake: printed with the help hint, exit code 2. */
export class UsageError extends Error {}

export interface AgentArgs {
  help?: boolean;
  version?: boolean;
  dataDir: string;
  server?: string;
  token?: string;
  name?: string;
  portBindAddress: string;
  advertiseAddress?: string;
  heartbeatIntervalMs: number;
  stopTimeoutMs: number;
  liveMigration: boolean;
}

function milliseconds(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`${flag} must be a whole number of milliseconds above 0 (got '${value}')`);
  return n;
}

/** Reads the agent's command line; `defaults` carries `continuum --server … agent`'s globals. */
export function parseAgentArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  defaults: { server?: string; token?: string } = {},
): AgentArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        server: { type: 'string' },
        token: { type: 'string' },
        'data-dir': { type: 'string' },
        name: { type: 'string' },
        'port-bind-address': { type: 'string' },
        'advertise-address': { type: 'string' },
        'heartbeat-interval': { type: 'string' },
        'stop-timeout': { type: 'string' },
        'no-live-migration': { type: 'boolean' },
        version: { type: 'boolean', short: 'V' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    // parseArgs names the option; its advice about '--' does not apply here.
    throw new UsageError((err as Error).message.split('. To specify')[0]!);
  }
  const str = (k: string) => values[k] as string | undefined;
  const server = str('server') ?? defaults.server ?? env.CONTINUUM_AGENT_SERVER;
  const token = str('token') ?? defaults.token ?? env.CONTINUUM_AGENT_TOKEN;
  const name = str('name');
  const advertiseAddress = str('advertise-address');
  return {
    help: values.help === true,
    version: values.version === true,
    dataDir: str('data-dir') ?? env.CONTINUUM_AGENT_DATA_DIR ?? DEFAULT_AGENT_DATA_DIR,
    ...(server ? { server } : {}),
    ...(token ? { token } : {}),
    ...(name ? { name } : {}),
    portBindAddress: str('port-bind-address') ?? '0.0.0.0',
    ...(advertiseAddress ? { advertiseAddress } : {}),
    heartbeatIntervalMs: milliseconds('--heartbeat-interval', str('heartbeat-interval'), 5000),
    stopTimeoutMs: milliseconds('--stop-timeout', str('stop-timeout'), 10_000),
    liveMigration: values['no-live-migration'] !== true,
  };
}

/** Runs the agent in the foreground until SIGINT/SIGTERM; sets the exit code on failure. */
export async function runAgent(
  argv: string[],
  defaults: { server?: string; token?: string } = {},
): Promise<void> {
  let args: AgentArgs;
  try {
    args = parseAgentArgs(argv, process.env, defaults);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`error: ${err.message}\n(see continuum-agent --help)\n`);
    process.exitCode = 2;
    return;
  }
  if (args.help) return void process.stdout.write(HELP);
  if (args.version) return void process.stdout.write(`${VERSION}\n`);
  const agent = new Agent({
    dataDir: args.dataDir,
    ...(args.server ? { server: args.server } : {}),
    ...(args.token ? { joinToken: args.token } : {}),
    ...(args.name ? { name: args.name } : {}),
    portBindAddress: args.portBindAddress,
    ...(args.advertiseAddress ? { advertiseAddress: args.advertiseAddress } : {}),
    heartbeatIntervalMs: args.heartbeatIntervalMs,
    stopTimeoutMs: args.stopTimeoutMs,
    liveMigration: args.liveMigration,
  });
  let id: Awaited<ReturnType<Agent['start']>>;
  try {
    id = await agent.start();
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    if (process.env.CONTINUUM_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    process.exitCode = 1;
    return;
  }
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
}
