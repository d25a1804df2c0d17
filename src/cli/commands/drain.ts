// `continuum drain` and `continuum uncordon`: a node, a site or a provider. A drain moves
// every replica away (live where it can) and places nothing new there; `--wait` follows
// it until no replica is left, or those left have nowhere to go.
import type { Command } from 'commander';
import { answer, apiOf } from '../client.js';
import { type Connection, resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import type { GlobalOptions } from '../program.js';

const DRAIN_TARGETS = ['node', 'site', 'provider'] as const;
/** A drain that moves nothing for this long is reported as stuck. */
const STALL_MS = 5 * 60_000;

export function drainCommands(program: Command, globals: () => GlobalOptions): void {
  program
    .command('drain')
    .description(
      'move every replica off a node, a site or a provider (live where it can), and place nothing new there',
    )
    .argument('<what>', 'node, site or provider (or directly PROVIDER/NODE)')
    .argument('[name]', 'PROVIDER/NODE, PROVIDER/SITE or PROVIDER')
    .option('--wait', 'follow the drain until no replica is left, or those left cannot go anywhere')
    .option('--parallel <n>', 'at most this many replicas of each node migrate live at a time', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 1000)
        throw new CliError(`--parallel must be a whole number from 1 to 1000, not '${v}'`);
      return n;
    })
    .addHelpText(
      'after',
      `
Examples:
  continuum drain rhine-cloud/fra-1-node-2 --wait
  continuum drain site rhine-cloud/fra-1 --parallel 2
  continuum drain provider rhine-cloud
  continuum uncordon site rhine-cloud/fra-1`,
    )
    .action(async (what: string, name: string | undefined, opts) =>
      drainAction(globals(), what, name, 'drain', !!opts.wait, opts.parallel),
    );
  program
    .command('uncordon')
    .description('make a drained or cordoned node, site or provider schedulable again')
    .argument('<what>', 'node, site or provider (or directly PROVIDER/NODE)')
    .argument('[name]', 'PROVIDER/NODE, PROVIDER/SITE or PROVIDER')
    .action(async (what: string, name: string | undefined) =>
      drainAction(globals(), what, name, 'uncordon', false),
    );
}

async function drainAction(
  g: GlobalOptions,
  whatArg: string,
  nameArg: string | undefined,
  action: 'drain' | 'uncordon',
  wait: boolean,
  parallel?: number,
): Promise<void> {
  // `continuum drain P/N` is a node, as it always was; `continuum drain site P/S` names the kind.
  const [what, arg] = nameArg === undefined ? ['node', whatArg] : [whatArg, nameArg];
  if (!(DRAIN_TARGETS as readonly string[]).includes(what))
    throw new CliError(`cannot ${action} a '${what}': give node, site or provider`);
  const conn = await resolveConnection(g);
  const api = apiOf(conn);
  const verb = action === 'drain' ? 'draining' : 'schedulable';
  const body = action === 'drain' ? { body: parallel ? { parallel } : {} } : {};
  let nodes: string[];
  if (what === 'provider') {
    const r = await answer(
      conn,
      api.POST(`/v1/providers/{provider}/${action}`, { params: { path: { provider: arg } }, ...body }),
    );
    nodes = r.nodes;
    process.stdout.write(`provider ${arg}: ${nodes.length} node(s) ${verb}\n`);
  } else {
    const [provider, name] = arg.includes('/') ? arg.split('/') : [g.provider, arg];
    if (!provider || !name) throw new CliError(`write PROVIDER/${what.toUpperCase()}`);
    if (what === 'site') {
      const r = await answer(
        conn,
        api.POST(`/v1/providers/{provider}/sites/{site}/${action}`, {
          params: { path: { provider, site: name } },
          ...body,
        }),
      );
      nodes = r.nodes;
      process.stdout.write(`site ${provider}/${name}: ${nodes.length} node(s) ${verb}\n`);
    } else {
      const r = await answer(
        conn,
        api.POST(`/v1/providers/{provider}/nodes/{name}/${action}`, {
          params: { path: { provider, name } },
          ...body,
        }),
      );
      nodes = [r.node];
      process.stdout.write(`node ${r.node} ${r.state}\n`);
    }
  }
  if (wait && action === 'drain') await followDrain(conn, nodes);
}

/** Until no replica is left on the nodes, or every one left waits for a node to go to. */
async function followDrain(conn: Connection, nodes: readonly string[]): Promise<void> {
  const api = apiOf(conn);
  const tty = process.stderr.isTTY;
  let start: number | undefined;
  let last = '';
  let lastLeft = -1;
  let since = Date.now();
  for (;;) {
    const left: any[] = [];
    for (const n of nodes)
      for (let cursor: string | undefined, first = true; first || cursor; first = false) {
        const page = await answer(
          conn,
          api.GET('/v1/instances', {
            params: { query: { node: n, limit: 1000, ...(cursor ? { cursor } : {}) } },
          }),
        );
        left.push(...page.items.filter((i: any) => i.spec.desired !== 'absent'));
        cursor = page.nextCursor;
      }
    start ??= left.length;
    // Why those left stay, from their workloads (a provider-admin does not see tenants'
    // workloads: then only the count is known).
    const stuck = new Map<string, string>();
    const workloads = new Map<string, Promise<any>>();
    for (const i of left) {
      const path = `${i.metadata.project}/${i.spec.workload}`;
      if (!workloads.has(path))
        workloads.set(
          path,
          answer(
            conn,
            api.GET('/v1/projects/{project}/workloads/{name}', {
              params: { path: { project: i.metadata.project, name: i.spec.workload } },
            }),
          ).catch(() => undefined),
        );
      const msg: string | undefined = (await workloads.get(path))?.status?.message;
      if (msg && /waits for a node to replace|out of policy/.test(msg))
        stuck.set(`${i.metadata.project}/${i.metadata.name}`, msg);
    }
    const line = `${Math.max(0, start - left.length)}/${start} replica(s) moved, ${left.length} left${stuck.size ? `, ${stuck.size} with nowhere to go` : ''}`;
    if (line !== last) {
      process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
      last = line;
    }
    if (!left.length) {
      if (tty) process.stderr.write('\n');
      process.stdout.write(`drained: ${start} replica(s) moved\n`);
      return;
    }
    if (stuck.size === left.length) {
      if (tty) process.stderr.write('\n');
      for (const [name, msg] of stuck) process.stdout.write(`${name} stays: ${msg}\n`);
      throw new CliError(
        `${left.length} replica(s) cannot go anywhere; they stay until a node can take them`,
      );
    }
    if (left.length !== lastLeft) [lastLeft, since] = [left.length, Date.now()];
    if (Date.now() - since > STALL_MS)
      throw new CliError(`${left.length} replica(s) left and none moved for ${STALL_MS / 60_000} minutes`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
