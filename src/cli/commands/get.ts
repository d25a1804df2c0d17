// `continuum get` and `continuum describe`.
import type { Command } from 'commander';
import YAML from 'yaml';
import type { paths } from '../../api/client/index.js';
import { KINDS } from '../../model/index.js';
import { allPages, answer, apiOf } from '../client.js';
import { COLUMNS } from '../columns.js';
import { type Connection, resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import { getObject, listObjects } from '../kind-api.js';
import { kindArg, target } from '../kinds.js';
import { age, formatData, table } from '../output.js';
import type { GlobalOptions } from '../program.js';
import { sovereigntySection } from '../provider-record.js';

const FILTER_FLAGS = ['country', 'tier', 'site', 'state', 'phase', 'jurisdiction'] as const;

export function getCommands(program: Command, globals: () => GlobalOptions): void {
  const get = program
    .command('get')
    .description(
      `list objects of a kind, or show one (kinds: ${[...KINDS.map((k) => k.plural), 'instances', 'replicas'].join(', ')})`,
    )
    .argument('<kind>', 'kind, plural or short name (e.g. sites, wl)')
    .argument('[name]', 'one object; OWNER/NAME for sites, nodes, images and workloads')
    .option('-A, --all-projects', 'list across every project you can see, ignoring the default project')
    .option('-w, --watch', 'keep listing: print the table again whenever it changes (Ctrl-C ends)');
  for (const f of FILTER_FLAGS)
    get.option(`--${f} <value>`, `only objects with this ${f} (where the kind has one)`);
  get.addHelpText(
    'after',
    `
Examples:
  continuum get providers
  continuum get sites --country DE
  continuum get site sovcloud/fra-1 -o yaml
  continuum get workloads -p shop
  continuum get migrations -p shop -w
  continuum get replicas          # the control plane's replicas and which one leads`,
  );
  get.action(async (kind: string, name: string | undefined, opts) => {
    const g = globals();
    if (INSTANCE_ALIASES.includes(kind.toLowerCase())) return getInstances(g, name, opts);
    if (REPLICA_ALIASES.includes(kind.toLowerCase())) return getReplicas(g, name);
    const def = kindArg(kind);
    const conn = await resolveConnection(g);
    const scope = { provider: g.provider, project: g.project ?? conn.project };
    const query: Record<string, string> = {};
    for (const f of FILTER_FLAGS) {
      if (opts[f] === undefined) continue;
      if (!def.filters.includes(f)) {
        throw new CliError(
          `${def.plural} cannot be filtered by --${f}${def.filters.length ? ` (filters: ${def.filters.map((x) => `--${x}`).join(', ')})` : ''}`,
        );
      }
      query[f] = opts[f];
    }
    if (def.parent === 'provider' && g.provider) query.provider = g.provider;
    if (def.parent === 'project' && !opts.allProjects && scope.project) query.project = scope.project;
    const one = name ? target(def, name, scope) : undefined;
    const load = async () =>
      one ? [await getObject(conn, def, one.parent, one.name)] : await listObjects(conn, def, query);
    const out = g.output;
    const render = (items: any[]): string => {
      if (out === 'json' || out === 'yaml') return `${formatData(out, name ? items[0] : { items })}\n`;
      if (out === 'name')
        return items
          .map((o) => `${def.plural}/${def.parent ? `${o.metadata[def.parent]}/` : ''}${o.metadata.name}\n`)
          .join('');
      if (!items.length) return '';
      const cols = COLUMNS[def.kind]!;
      return `${table(
        cols.map((c) => c[0]),
        items.map((o) => cols.map((c) => c[1](o))),
      )}\n`;
    };
    if (!opts.watch) {
      const items = await load();
      if (!items.length && out === 'table') process.stderr.write(`No ${def.plural} found.\n`);
      process.stdout.write(render(items));
      return;
    }
    // Watching: the table again whenever it changes (in place on a terminal).
    let last: string | undefined;
    for (;;) {
      const text = render(await load()) || `No ${def.plural} found.\n`;
      if (text !== last) {
        if (process.stdout.isTTY && last !== undefined) process.stdout.write('\x1b[H\x1b[2J');
        process.stdout.write(process.stdout.isTTY || last === undefined ? text : `\n${text}`);
        last = text;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  });

  program
    .command('describe')
    .description('show one object in full, with its recent events')
    .argument('<kind>', 'kind, plural or short name')
    .argument('<name>', 'name, or OWNER/NAME')
    .action(async (kind: string, name: string) => {
      const g = globals();
      if (INSTANCE_ALIASES.includes(kind.toLowerCase())) return describeInstance(g, name);
      const def = kindArg(kind);
      const conn = await resolveConnection(g);
      const t = target(def, name, { provider: g.provider, project: g.project ?? conn.project });
      const obj = await getObject(conn, def, t.parent, t.name);
      const events = await recentEvents(conn, def.kind, t.name, t.parent);
      const lines = [
        `Kind:        ${def.kind}`,
        `Name:        ${obj.metadata.name}`,
        ...(def.parent
          ? [`${`${def.parent[0]!.toUpperCase()}${def.parent.slice(1)}:`.padEnd(13)}${t.parent}`]
          : []),
        `Generation:  ${obj.metadata.generation}`,
        `Created:     ${obj.metadata.createdAt} by ${obj.metadata.createdBy}`,
        `Updated:     ${obj.metadata.updatedAt}`,
        `Labels:      ${
          Object.entries(obj.metadata.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ') || '-'
        }`,
        'Spec:',
        block(obj.spec),
        'Status:',
        block(obj.status),
        ...(def.kind === 'Provider' ? sovereigntySection(obj) : []),
        ...eventLines(events),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

const INSTANCE_ALIASES = ['instance', 'instances', 'inst', 'vm', 'vms'];
const REPLICA_ALIASES = ['replica', 'replicas'];

type Replica = paths['/v1/replicas']['get']['responses'][200]['content']['application/json']['items'][number];

const REPLICA_COLUMNS: [string, (r: Replica) => string][] = [
  ['NAME', (r) => (r.answering ? `${r.name} *` : r.name)],
  ['ADDRESS', (r) => r.address],
  ['LEADER', (r) => String(r.leader)],
  ['EPOCH', (r) => (r.epoch === null ? '-' : String(r.epoch))],
  ['LEASE EXPIRES', (r) => r.leaseExpiresAt ?? '-'],
  ['LAST SEEN', (r) => `${age(r.lastSeen)} ago`],
  ['VERSION', (r) => r.version],
  ['AGE', (r) => age(r.startedAt)],
];

/** `get replicas`: every control-plane replica on the database (* marks the one that answered). */
async function getReplicas(g: GlobalOptions, name: string | undefined) {
  const conn = await resolveConnection(g);
  const { items: all } = await answer(conn, apiOf(conn).GET('/v1/replicas'));
  const items = name ? all.filter((r) => r.name === name) : all;
  if (name && !items.length)
    throw new CliError(
      `replica '${name}' not found (replicas: ${all.map((r) => r.name).join(', ') || 'none'})`,
    );
  if (g.output === 'json' || g.output === 'yaml')
    process.stdout.write(`${formatData(g.output, name ? items[0] : { items })}\n`);
  else if (g.output === 'name') for (const r of items) process.stdout.write(`replicas/${r.name}\n`);
  else
    process.stdout.write(
      `${table(
        REPLICA_COLUMNS.map((c) => c[0]),
        items.map((r) => REPLICA_COLUMNS.map((c) => c[1](r))),
      )}\n`,
    );
}

/** An instance as the API answers it (from the generated OpenAPI types). */
type Instance =
  paths['/v1/projects/{project}/instances/{name}']['get']['responses'][200]['content']['application/json'];

const INSTANCE_COLUMNS: [string, (i: Instance) => string][] = [
  ['PROJECT', (i) => i.metadata.project],
  ['NAME', (i) => i.metadata.name],
  ['WORKLOAD', (i) => i.spec.workload],
  ['NODE', (i) => i.spec.node],
  ['DESIRED', (i) => i.spec.desired],
  ['PHASE', (i) => i.status.phase],
  ['PORTS', (i) => i.status.ports.map((p) => `${p.address}:${p.host}->${p.guest}`).join(',') || '-'],
  ['RESTARTS', (i) => String(i.status.restarts)],
  ['AGE', (i) => age(i.metadata.createdAt)],
];

async function getInstances(g: GlobalOptions, name: string | undefined, opts: Record<string, unknown>) {
  const conn = await resolveConnection(g);
  const api = apiOf(conn);
  const project = g.project ?? conn.project;
  let items: Instance[];
  if (name) {
    const [a, b] = name.split('/');
    const p = b ? a : project;
    const n = (b ?? a)!;
    if (!p) throw new CliError(`which project? write PROJECT/${name} or pass -p PROJECT`);
    items = [
      await answer(
        conn,
        api.GET('/v1/projects/{project}/instances/{name}', { params: { path: { project: p, name: n } } }),
      ),
    ];
  } else {
    const only = project && !opts.allProjects ? { project } : {};
    items = await allPages((cursor) =>
      answer(conn, api.GET('/v1/instances', { params: { query: { ...only, limit: 1000, cursor } } })),
    );
  }
  if (g.output === 'json' || g.output === 'yaml') {
    process.stdout.write(`${formatData(g.output, name ? items[0] : { items })}\n`);
  } else if (g.output === 'name') {
    for (const i of items) process.stdout.write(`instances/${i.metadata.project}/${i.metadata.name}\n`);
  } else if (!items.length) {
    process.stderr.write('No instances found.\n');
  } else {
    process.stdout.write(
      `${table(
        INSTANCE_COLUMNS.map((c) => c[0]),
        items.map((i) => INSTANCE_COLUMNS.map((c) => c[1](i))),
      )}\n`,
    );
  }
}

/** The recent events of an object, as describe shows them. */
function eventLines(events: readonly any[]): string[] {
  if (!events.length) return ['Events:', '  <none>'];
  return [
    'Events:',
    indent(
      table(
        ['AGE', 'ACTION', 'BY'],
        events.map((e) => [age(e.time), e.action, e.actor]),
      ),
    ),
  ];
}

/** An object as indented YAML, or `<none>` when it has nothing in it. */
function block(o: unknown): string {
  return o && typeof o === 'object' && Object.keys(o).length ? indent(YAML.stringify(o)) : '  <none>';
}

/** `describe instance`: where it runs, its state and its recent events. */
async function describeInstance(g: GlobalOptions, arg: string): Promise<void> {
  const conn = await resolveConnection(g);
  const slash = arg.indexOf('/');
  const project = slash >= 0 ? arg.slice(0, slash) : (g.project ?? conn.project);
  const name = slash >= 0 ? arg.slice(slash + 1) : arg;
  if (!project) throw new CliError(`which project? write PROJECT/${arg} or pass -p PROJECT`);
  const i = await answer(
    conn,
    apiOf(conn).GET('/v1/projects/{project}/instances/{name}', { params: { path: { project, name } } }),
  );
  const events = await recentEvents(conn, 'Instance', name, project);
  const lines = [
    'Kind:        Instance',
    `Name:        ${i.metadata.name}`,
    `Project:     ${project}`,
    `Workload:    ${i.spec.workload}`,
    `Node:        ${i.spec.node} (fence ${i.spec.fence})`,
    'Spec:',
    block(i.spec),
    'Status:',
    block(i.status),
    ...eventLines(events),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The last ten events of one object (the log is asked for its kind and name; the owner is matched here). */
async function recentEvents(conn: Connection, kind: string, name: string, parent: string) {
  const { items } = await answer(
    conn,
    apiOf(conn).GET('/v1/events', { params: { query: { kind, name, limit: 1000 } } }),
  );
  return items.filter((e) => e.parent === parent).slice(-10);
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
