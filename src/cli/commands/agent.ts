// `continuum agent`: listed in the CLI's help, run by the agent's own lean entry point
// (src/agent/main.ts), which takes its options itself. `continuum agent …` reaches that
// entry point without loading this program (src/cli/main.ts); this command is the path
// for `continuum --server URL --token T agent …`.
import type { Command } from 'commander';

export function agentCommand(program: Command): void {
  program
    .command('agent')
    .description(
      "run the node agent: enrol with a join token once, then keep this node's VMs as the control plane wants (see `continuum agent --help`; also installed as continuum-agent)",
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]')
    .action(async (_args: string[], _opts: unknown, cmd: Command) => {
      const globals = cmd.parent?.opts() ?? {};
      const { runAgent } = await import('../../agent/main.js');
      await runAgent(cmd.args, { server: globals.server, token: globals.token });
    });
}
