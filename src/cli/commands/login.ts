// `continuum login` and `continuum whoami`.
import { promises as fs } from 'node:fs';
import type { Command } from 'commander';
import { currentDevPath, readCurrentDev } from '../../dev/current.js';
import { answer, apiOf } from '../client.js';
import { configPath, firstAnswering, loadConfig, resolveConnection, saveConfig } from '../config.js';
import { CliError } from '../errors.js';
import type { GlobalOptions } from '../program.js';

export function loginCommands(program: Command, globals: () => GlobalOptions): void {
  program
    .command('login')
    .description('check a server and token, and save them in the config file')
    .option('--token-file <file>', 'read the token from a file (e.g. the data directory’s admin-token)')
    .option(
      '--dev',
      'log in to the federation `continuum dev` (npm start) runs on this machine, as its admin',
    )
    .addHelpText(
      'after',
      `
Uses the global --server, --token and --project options:
  continuum login --server http://127.0.0.1:7400 --token-file ~/.local/share/continuum/admin-token
  continuum login --server https://cp.example.eu --token ctm_… --project shop
  continuum login --dev          # the federation npm start (continuum dev) runs here`,
    )
    .action(async (opts) => {
      const g = globals();
      if (opts.dev) {
        const dev = await readCurrentDev();
        if (!dev)
          throw new CliError(
            `no \`continuum dev\` runs on this machine (${currentDevPath()} names none alive): start it with npm start`,
          );
        g.server ??= dev.api;
        opts.tokenFile ??= dev.tokenFile;
      }
      if (!g.server)
        throw new CliError(
          'give --server URL, e.g. continuum login --server http://127.0.0.1:7400 --token-file FILE',
        );
      let token: string | undefined = g.token;
      if (opts.tokenFile) {
        try {
          token = (await fs.readFile(opts.tokenFile, 'utf8')).trim();
        } catch (err) {
          throw new CliError(`cannot read ${opts.tokenFile}: ${(err as NodeJS.ErrnoException).code}`);
        }
      }
      if (!token) throw new CliError('give --token or --token-file');
      // Several replicas' addresses (comma-separated) are kept as given; one that answers checks the token.
      const server = g.server
        .split(',')
        .map((u) => u.trim().replace(/\/+$/, ''))
        .filter(Boolean)
        .join(',');
      const conn = { server: await firstAnswering(server), token };
      const me = await answer(conn, apiOf(conn).GET('/v1/whoami'));
      const config = await loadConfig();
      await saveConfig({ ...config, server, token, ...(g.project ? { project: g.project } : {}) });
      process.stdout.write(`Logged in to ${server} as ${me.user}; saved to ${configPath()}\n`);
    });

  program
    .command('whoami')
    .description('show the user behind the configured token and its roles')
    .action(async () => {
      const g = globals();
      const conn = await resolveConnection(g);
      const me = await answer(conn, apiOf(conn).GET('/v1/whoami'));
      if (g.output === 'json' || g.output === 'yaml') {
        const { formatData } = await import('../output.js');
        process.stdout.write(`${formatData(g.output, me)}\n`);
        return;
      }
      const roles = me.roles.map((b) => [b.role, b.provider ?? b.project].filter(Boolean).join(':'));
      process.stdout.write(`${me.user}\t${roles.join(', ') || '(no roles)'}\n`);
    });
}
