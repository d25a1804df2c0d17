// `continuum token create|list|revoke`.
import type { Command } from 'commander';
import { answer, apiOf } from '../client.js';
import { resolveConnection } from '../config.js';
import { formatData, table } from '../output.js';
import type { GlobalOptions } from '../program.js';

export function tokenCommands(program: Command, globals: () => GlobalOptions): void {
  const token = program.command('token').description('issue, list and revoke API tokens');

  const client = async () => {
    const conn = await resolveConnection(globals());
    return { conn, api: apiOf(conn) };
  };
  type Client = Awaited<ReturnType<typeof client>>;
  const self = async (c: Client) => (await answer(c.conn, c.api.GET('/v1/whoami'))).user;

  token
    .command('create')
    .description('issue a token (for yourself, or with --user for a user you administer); shown only once')
    .option('--user <name>', 'the user the token is for')
    .option('--description <text>', 'what the token is for')
    .option('--expires-in-days <n>', 'expiry; default: never', (v) => Number.parseInt(v, 10))
    .action(async (opts) => {
      const c = await client();
      const user = opts.user ?? (await self(c));
      const body: Record<string, unknown> = {};
      if (opts.description) body.description = opts.description;
      if (opts.expiresInDays !== undefined) body.expiresInDays = opts.expiresInDays;
      const t = await answer(
        c.conn,
        c.api.POST('/v1/users/{name}/tokens', { params: { path: { name: user } }, body }),
      );
      const g = globals();
      if (g.output === 'json' || g.output === 'yaml') process.stdout.write(`${formatData(g.output, t)}\n`);
      else process.stdout.write(`${t.token}\n`);
      process.stderr.write(
        `Token ${t.id} for user ${user}${t.expiresAt ? `, expires ${t.expiresAt}` : ''}. It is not shown again.\n`,
      );
    });

  token
    .command('list')
    .description('list tokens (never their secrets)')
    .option('--user <name>', 'whose tokens')
    .action(async (opts) => {
      const c = await client();
      const user = opts.user ?? (await self(c));
      const { items } = await answer(
        c.conn,
        c.api.GET('/v1/users/{name}/tokens', { params: { path: { name: user } } }),
      );
      const g = globals();
      if (g.output === 'json' || g.output === 'yaml')
        return void process.stdout.write(`${formatData(g.output, items)}\n`);
      const rows = items.map((t: any) => [
        t.id,
        t.description || '-',
        t.createdAt,
        t.expiresAt ?? 'never',
        t.lastUsedAt ?? 'never',
      ]);
      process.stdout.write(`${table(['ID', 'DESCRIPTION', 'CREATED', 'EXPIRES', 'LAST USED'], rows)}\n`);
    });

  token
    .command('revoke')
    .description('revoke a token by id')
    .argument('<id>', 'token id (the part after ctm_)')
    .action(async (id: string) => {
      const c = await client();
      await answer(c.conn, c.api.DELETE('/v1/tokens/{id}', { params: { path: { id } } }));
      process.stdout.write(`token ${id} revoked\n`);
    });
}
