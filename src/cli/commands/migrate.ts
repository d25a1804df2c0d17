// `continuum migrate`: moves an instance to another node, live or cold, by creating a Migration;
// `--wait` follows it with a progress bar. `continuum migrate cancel NAME` cancels one
// before its switch-over.
import type { Command } from 'commander';
import { answer, apiOf } from '../client.js';
import { type Connection, resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import type { GlobalOptions } from '../program.js';

const DONE = ['Succeeded', 'Failed', 'Cancelled'];

function split(arg: string, project: string | undefined, what: string): { project: string; name: string } {
  const slash = arg.indexOf('/');
  if (slash >= 0) return { project: arg.slice(0, slash), name: arg.slice(slash + 1) };
  if (!project) throw new CliError(`which project? write PROJECT/${arg} or pass -p PROJECT (${what})`);
  return { project, name: arg };
}

const mib = (b: number) => `${Math.round(b / 1024 / 1024)} MiB`;

/** "[#######-------------]  35%  90/256 MiB at 812 Mbit/s, dirtying 310 pages/s  Migrating". */
export function progressLine(status: any, width = 24): string {
  const p = status.progress ?? {};
  let done: number | undefined;
  let total: number | undefined;
  if ((status.phase === 'Mirroring' || status.phase === 'Copying') && p.diskTotal)
    [done, total] = [p.diskDone ?? 0, p.diskTotal];
  else if (p.ramTransferred !== undefined && p.ramRemaining !== undefined)
    [done, total] = [p.ramTransferred, p.ramTransferred + p.ramRemaining];
  if (status.phase === 'Succeeded') [done, total] = [1, 1];
  const frac = total ? Math.min(1, (done ?? 0) / total) : 0;
  const filled = Math.round(frac * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(frac * 100)).padStart(3)}%`;
  const parts = [bar];
  if (total && total > 1) parts.push(`${mib(done ?? 0)}/${mib(total)}`);
  if (p.mbps) parts.push(`at ${Math.round(p.mbps)} Mbit/s`);
  if (p.dirtyPagesRate) parts.push(`dirtying ${Math.round(p.dirtyPagesRate)} pages/s`);
  parts.push(status.phase);
  return parts.join('  ');
}

/** How a finished migration went, in one line. */
export function outcome(m: any): string {
  const s = m.status;
  const where = `${s.from ?? '?'} → ${s.target ?? '?'}`;
  const total = `total ${((s.totalTimeMs ?? 0) / 1000).toFixed(1)} s`;
  if (s.phase === 'Succeeded' && s.mode === 'cold')
    return `migrated ${m.spec.instance} ${where} (cold, ${s.path ?? 'direct'}; ${s.modeReason ?? 'cold'}): stopped, ${s.progress?.diskTotal ? `${mib(s.progress.diskTotal)} of disk copied and checked` : 'no disk to copy'}, ${total}`;
  if (s.phase === 'Succeeded')
    return `migrated ${m.spec.instance} ${where} (${s.mode ?? 'live'}, ${s.path ?? 'direct'}): downtime ${s.downtimeMs ?? '?'} ms, ${total}`;
  return `migration ${m.metadata.name} ${s.phase.toLowerCase()}: ${s.message ?? 'no reason given'}`;
}

/** A migration of the project, as the API has it now. */
function migrationOf(conn: Connection, project: string, name: string) {
  return answer(
    conn,
    apiOf(conn).GET('/v1/projects/{project}/migrations/{name}', { params: { path: { project, name } } }),
  );
}

async function follow(conn: Connection, project: string, name: string) {
  const tty = process.stderr.isTTY;
  let last = '';
  for (;;) {
    const m = await migrationOf(conn, project, name);
    const line = progressLine(m.status);
    if (line !== last) {
      process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
      last = line;
    }
    if (DONE.includes(m.status.phase)) {
      if (tty) process.stderr.write('\n');
      return m;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

export function migrateCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('migrate')
    .description('move a running instance to another node, live or cold (or: migrate cancel MIGRATION)')
    .argument('<instance>', 'INSTANCE or PROJECT/INSTANCE to move (or "cancel")')
    .argument('[migration]', 'with "cancel": the MIGRATION or PROJECT/MIGRATION to cancel')
    .option('--to <provider/node>', 'move to this node')
    .option('--to-site <provider/site>', 'move to the best node of this site')
    .option('--to-provider <provider>', 'move to the best node of this provider')
    .option(
      '--cold',
      'stop it, copy its disk, start it there (default: live where both nodes can, else cold)',
    )
    .option('--live', 'live only: refused when the nodes cannot migrate live')
    .option('--name <name>', 'name of the Migration object (default: INSTANCE-m and a timestamp)')
    .option('--wait', 'follow the migration with a progress bar until it ends')
    .addHelpText(
      'after',
      `
With no target the scheduler picks the best node the workload's policy allows; a target
the policy forbids is refused with the scheduler's reasons. Memory and disk are streamed
over TLS with a key made for this one migration; the VM keeps running on its node until
the destination has it. Where live migration is impossible (another CPU architecture or
kind of virtualisation, a node whose agent runs with --no-live-migration) the instance
moves cold: stopped, its disk flattened and copied (checked by SHA-256), started there;
the migration says which mode it used and why.

Examples:
  continuum -p shop migrate web-0 --to edge-fr/node-2 --wait
  continuum migrate shop/web-0 --to-provider iberia-edge
  continuum get migrations -p shop
  continuum migrate cancel shop/web-0-m1733000000`,
    )
    .action(async (arg: string, second: string | undefined, opts) => {
      const g = globals();
      const conn = await resolveConnection(g);
      const defaultProject = g.project ?? conn.project;
      if (arg === 'cancel') {
        if (!second) throw new CliError('which migration? continuum migrate cancel MIGRATION');
        const { project, name } = split(second, defaultProject, 'the migration');
        const m = await migrationOf(conn, project, name);
        if (DONE.includes(m.status.phase))
          throw new CliError(`migration ${project}/${name} has ended (${m.status.phase}); nothing to cancel`);
        await answer(
          conn,
          apiOf(conn).PUT('/v1/projects/{project}/migrations/{name}', {
            params: { path: { project, name } },
            body: { kind: 'Migration', metadata: { name, project }, spec: { ...m.spec, cancel: true } },
          }),
        );
        process.stdout.write(`migration/${project}/${name} cancel requested\n`);
        if (opts.wait) {
          const end = await follow(conn, project, name);
          process.stdout.write(`${outcome(end)}\n`);
        }
        return;
      }
      if (second) throw new CliError(`unexpected argument '${second}' (did you mean --to ${second}?)`);
      const targets = [opts.to, opts.toSite, opts.toProvider].filter((x) => x !== undefined);
      if (targets.length > 1) throw new CliError('give one of --to, --to-site and --to-provider');
      if (opts.cold && opts.live) throw new CliError('give --cold or --live, not both');
      const mode = opts.cold ? 'cold' : opts.live ? 'live' : undefined;
      const { project, name: instance } = split(arg, defaultProject, 'the instance');
      const name = opts.name ?? `${instance}-m${Math.floor(Date.now() / 1000)}`;
      const to = opts.to
        ? { node: opts.to }
        : opts.toSite
          ? { site: opts.toSite }
          : opts.toProvider
            ? { provider: opts.toProvider }
            : undefined;
      const created = await answer(
        conn,
        apiOf(conn).POST('/v1/projects/{project}/migrations', {
          params: { path: { project } },
          body: {
            kind: 'Migration',
            metadata: { name, project },
            spec: { instance, ...(to ? { to } : {}), ...(mode ? { mode } : {}) },
          },
        }),
      );
      process.stdout.write(`migration/${project}/${created.metadata.name} created\n`);
      if (!opts.wait) return;
      const end = await follow(conn, project, name);
      process.stdout.write(`${outcome(end)}\n`);
      if (end.status.phase !== 'Succeeded') process.exitCode = 1;
    });
}
