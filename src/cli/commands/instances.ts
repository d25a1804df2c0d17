// `continuum logs`, and power actions on instances.
import type { Command } from 'commander';
import { answer, apiOf } from '../client.js';
import { resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import type { GlobalOptions } from '../program.js';

function instanceOf(arg: string, project: string | undefined): { project: string; name: string } {
  const [a, b] = arg.split('/');
  if (b) return { project: a!, name: b };
  if (!project) throw new CliError(`which project? write PROJECT/${arg} or pass -p PROJECT`);
  return { project, name: a! };
}

export function instanceCommands(program: Command, globals: () => GlobalOptions): void {
  program
    .command('logs')
    .description("print an instance's serial console")
    .argument('<instance>', 'INSTANCE or PROJECT/INSTANCE (instances are named WORKLOAD-N)')
    .option('-f, --follow', 'keep printing new output')
    .option('--tail <bytes>', 'start this many bytes before the end', (v) => Number.parseInt(v, 10))
    .action(async (arg: string, opts) => {
      const g = globals();
      const conn = await resolveConnection(g);
      const { project, name } = instanceOf(arg, g.project ?? conn.project);
      const api = apiOf(conn);
      const read = (from: number) =>
        answer(
          conn,
          api.GET('/v1/projects/{project}/instances/{name}/console', {
            params: { path: { project, name }, query: { offset: from, limit: 1048576 } },
          }),
        );
      let offset = 0;
      if (opts.tail !== undefined) {
        let end = 0;
        for (;;) {
          const r = await read(end);
          if (r.next === end) break;
          end = r.next;
        }
        offset = Math.max(0, end - opts.tail);
      }
      for (;;) {
        const r = await read(offset);
        if (r.data) process.stdout.write(r.data);
        const moved = r.next !== offset;
        offset = r.next;
        if (!moved) {
          if (!opts.follow) return;
          await new Promise((res) => setTimeout(res, 1000));
        }
      }
    });

  for (const action of ['start', 'stop', 'reboot'] as const) {
    program
      .command(action)
      .description(`${action} an instance`)
      .argument('<instance>', 'INSTANCE or PROJECT/INSTANCE')
      .action(async (arg: string) => {
        const g = globals();
        const conn = await resolveConnection(g);
        const { project, name } = instanceOf(arg, g.project ?? conn.project);
        await answer(
          conn,
          apiOf(conn).POST(
            `/v1/projects/{project}/instances/{name}/${action as 'start' | 'stop' | 'reboot'}`,
            {
              params: { path: { project, name } },
            },
          ),
        );
        process.stdout.write(`instance/${project}/${name} ${action} requested\n`);
      });
  }
}
