// `continuum report residency`: every country, provider, site and node a project's VMs
// (and their disks) have been on, with time ranges — a table, JSON, YAML or CSV.
import type { Command } from 'commander';
import { residencyCsv } from '../../resources/residency.js';
import { answer, apiOf } from '../client.js';
import { resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import { formatData, table } from '../output.js';
import type { GlobalOptions } from '../program.js';

export function reportCommand(program: Command, globals: () => GlobalOptions): void {
  const report = program.command('report').description('reports built from the audit trail');
  report
    .command('residency')
    .description("where a project's VMs and their disks have been: country, provider, site, node, from–to")
    .argument('[instance]', 'one instance (INSTANCE or PROJECT/INSTANCE); default: the whole project')
    .option('--workload <name>', "only this workload's instances")
    .option('--csv', 'CSV (RFC 4180), as the API gives it with format=csv')
    .addHelpText(
      'after',
      `
Each row is one stay: the instance was bound to the node from FROM until TO (empty: it
is there now), having been placed, re-placed (its node failed, a rule changed, a drain)
or migrated there. Built from the audit trail, so it covers deleted instances too.

Examples:
  continuum -p shop report residency
  continuum -p shop report residency --workload web --csv > residency.csv
  continuum report residency shop/web-0 -o json`,
    )
    .action(async (arg: string | undefined, opts: { workload?: string; csv?: boolean }) => {
      const g = globals();
      const conn = await resolveConnection(g);
      let project = g.project ?? conn.project;
      let instance: string | undefined;
      if (arg) {
        const slash = arg.indexOf('/');
        if (slash >= 0) [project, instance] = [arg.slice(0, slash), arg.slice(slash + 1)];
        else instance = arg;
      }
      if (!project) throw new CliError('which project? pass -p PROJECT (or PROJECT/INSTANCE)');
      if (instance && opts.workload) throw new CliError('give an instance or --workload, not both');
      const r = await answer(
        conn,
        apiOf(conn).GET('/v1/projects/{project}/residency', {
          params: {
            path: { project },
            query: {
              ...(opts.workload ? { workload: opts.workload } : {}),
              ...(instance ? { instance } : {}),
            },
          },
        }),
      );
      if (opts.csv) return void process.stdout.write(residencyCsv(r.stays));
      if (g.output === 'json' || g.output === 'yaml')
        return void process.stdout.write(`${formatData(g.output, r)}\n`);
      if (!r.stays.length)
        return void process.stdout.write(`no VM of project ${project} has run anywhere yet\n`);
      process.stdout.write(
        `${table(
          ['INSTANCE', 'COUNTRY', 'PROVIDER', 'SITE', 'NODE', 'FROM', 'TO', 'HOW'],
          r.stays.map((s) => [
            s.instance,
            s.country,
            s.provider,
            s.site,
            s.node,
            s.from,
            s.to ?? 'now',
            s.how,
          ]),
        )}\ncountries: ${r.countries.join(', ')}\n`,
      );
    });
}
