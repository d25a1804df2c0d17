// `continuum join-token …` and `continuum node revoke`.
import type { Command } from 'commander';
import { answer, apiOf } from '../client.js';
import { resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import { formatData, table } from '../output.js';
import type { GlobalOptions } from '../program.js';

function siteOf(arg: string, provider: string | undefined): { provider: string; site: string } {
  const [a, b] = arg.split('/');
  if (b) return { provider: a!, site: b };
  if (!provider) throw new CliError(`which provider? write PROVIDER/${arg} or pass --provider`);
  return { provider, site: a! };
}

export function nodeCommands(program: Command, globals: () => GlobalOptions): void {
  const jt = program.command('join-token').description('tokens with which agents enrol nodes at a site');
  jt.command('create')
    .description('create a join token for a site; prints the token and the agent command')
    .argument('<site>', 'PROVIDER/SITE')
    .option('--expires-in-hours <h>', 'validity', (v) => Number(v), 24)
    .option('--max-uses <n>', 'how many nodes may enrol with it', (v) => Number.parseInt(v, 10), 1)
    .option('--description <text>', 'what it is for')
    .option(
      '--replaces <node>',
      'enrol a new machine under the name of this existing node of the site (its old credentials and instances go)',
    )
    .action(async (site: string, opts) => {
      const g = globals();
      const s = siteOf(site, g.provider);
      const conn = await resolveConnection(g);
      const body: Record<string, unknown> = { expiresInHours: opts.expiresInHours, maxUses: opts.maxUses };
      if (opts.description) body.description = opts.description;
      if (opts.replaces) body.replaces = opts.replaces;
      const t = await answer(
        conn,
        apiOf(conn).POST('/v1/providers/{provider}/sites/{site}/join-tokens', {
          params: { path: { provider: s.provider, site: s.site } },
          body,
        }),
      );
      if (g.output === 'json' || g.output === 'yaml')
        return void process.stdout.write(`${formatData(g.output, t)}\n`);
      process.stdout.write(`${t.token}\n`);
      process.stderr.write(
        `Join token ${t.id} for ${s.provider}/${s.site}: ${t.maxUses} use(s), expires ${t.expiresAt}.\nOn the node, run:\n  ${t.command}\n`,
      );
    });
  jt.command('list')
    .description("list a site's join tokens")
    .argument('<site>', 'PROVIDER/SITE')
    .action(async (site: string) => {
      const g = globals();
      const s = siteOf(site, g.provider);
      const conn = await resolveConnection(g);
      const { items } = await answer(
        conn,
        apiOf(conn).GET('/v1/providers/{provider}/sites/{site}/join-tokens', {
          params: { path: { provider: s.provider, site: s.site } },
        }),
      );
      if (g.output === 'json' || g.output === 'yaml')
        return void process.stdout.write(`${formatData(g.output, items)}\n`);
      const rows = items.map((t: any) => [
        t.id,
        `${t.uses}/${t.maxUses}`,
        t.expiresAt,
        t.createdBy,
        t.description || '-',
      ]);
      process.stdout.write(`${table(['ID', 'USES', 'EXPIRES', 'BY', 'DESCRIPTION'], rows)}\n`);
    });
  jt.command('revoke')
    .description('revoke a join token')
    .argument('<site>', 'PROVIDER/SITE')
    .argument('<id>', 'token id')
    .action(async (site: string, id: string) => {
      const g = globals();
      const s = siteOf(site, g.provider);
      const conn = await resolveConnection(g);
      await answer(
        conn,
        apiOf(conn).DELETE('/v1/providers/{provider}/sites/{site}/join-tokens/{id}', {
          params: { path: { provider: s.provider, site: s.site, id } },
        }),
      );
      process.stdout.write(`join token ${id} revoked\n`);
    });

  const node = program.command('node').description('node operations');
  node
    .command('revoke')
    .description("revoke a node's credentials and disconnect its agent")
    .argument('<node>', 'PROVIDER/NODE')
    .action(async (arg: string) => {
      const g = globals();
      const [provider, name] = arg.includes('/') ? arg.split('/') : [g.provider, arg];
      if (!provider || !name) throw new CliError('write PROVIDER/NODE');
      const conn = await resolveConnection(g);
      const r = await answer(
        conn,
        apiOf(conn).POST('/v1/providers/{provider}/nodes/{name}/revoke', {
          params: { path: { provider, name } },
        }),
      );
      process.stdout.write(`node ${provider}/${name}: ${r.revoked} credential(s) revoked\n`);
    });
}
