// `continuum apply -f` and `continuum delete`.
import type { Command } from 'commander';
import { ApiError, answer, apiOf } from '../client.js';
import { resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import { deleteObject } from '../kind-api.js';
import { kindArg, target } from '../kinds.js';
import { describeDoc, type ManifestDoc, readManifests } from '../manifest.js';
import type { GlobalOptions } from '../program.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Names the file, document and field path of a server-side error about a document. */
function explain(err: unknown, docs: readonly ManifestDoc[]): never {
  if (err instanceof ApiError && err.body.document !== undefined) {
    const doc = docs[err.body.document];
    if (doc) {
      const details = err.body.details?.length
        ? err.body.details.map((d) => `\n  ${d.path ? `${d.path}: ` : ''}${d.message}`).join('')
        : ` ${err.body.message}`;
      throw new CliError(`${describeDoc(doc)}:${details}\nnothing was applied`);
    }
  }
  throw err;
}

export function applyCommands(program: Command, globals: () => GlobalOptions): void {
  program
    .command('apply')
    .description('create or update the objects in manifest files, all or nothing (idempotent)')
    .requiredOption(
      '-f, --filename <file>',
      'YAML or JSON file with one or more documents; - for stdin',
      collect,
    )
    .option('--dry-run', 'validate and check permissions only; change nothing')
    .addHelpText(
      'after',
      `
A manifest document:
  kind: Site
  metadata: {name: fra-1, provider: sovcloud}
  spec: {country: DE, tier: regional, location: {latitude: 50.11, longitude: 8.68}, carbonIntensity: 380}

Images and workloads without metadata.project go to --project (or the configured default).`,
    )
    .action(async (opts) => {
      const g = globals();
      const conn = await resolveConnection(g);
      const docs = await readManifests(opts.filename);
      const project = g.project ?? conn.project;
      const documents = docs.map((d) => {
        const body = d.body;
        if (
          (body.kind === 'Workload' || body.kind === 'Image') &&
          body.metadata &&
          !body.metadata.project &&
          project
        )
          return { ...body, metadata: { ...body.metadata, project } };
        return body;
      });
      const res = await answer(
        conn,
        apiOf(conn).POST('/v1/apply', {
          body: { documents },
          params: { query: opts.dryRun ? { dryRun: true } : {} },
        }),
      ).catch((err) => explain(err, docs));
      for (const r of res.results) {
        const owner = r.provider ?? r.project;
        process.stdout.write(
          `${r.kind.toLowerCase()}/${owner ? `${owner}/` : ''}${r.name} ${r.action}${res.dryRun ? ' (dry run)' : ''}\n`,
        );
      }
    });

  program
    .command('delete')
    .description('delete an object, or every object of manifest files (in reverse order)')
    .argument('[kind]', 'kind, plural or short name')
    .argument('[name]', 'name, or OWNER/NAME')
    .option('-f, --filename <file>', 'delete the objects these manifests describe', collect)
    .option('--ignore-not-found', 'treat objects that do not exist as deleted')
    .action(async (kind: string | undefined, name: string | undefined, opts) => {
      const g = globals();
      const conn = await resolveConnection(g);
      const scope = { provider: g.provider, project: g.project ?? conn.project };
      const targets: { def: ReturnType<typeof kindArg>; parent: string; name: string; where?: string }[] = [];
      if (opts.filename) {
        if (kind) throw new CliError('give either KIND NAME or -f FILE, not both');
        const docs = await readManifests(opts.filename);
        for (const d of docs.reverse()) {
          const def = kindArg(String(d.body.kind ?? ''));
          const meta = d.body.metadata ?? {};
          if (typeof meta.name !== 'string')
            throw new CliError(`${describeDoc(d)}: metadata.name: is required`);
          const owner = def.parent ? (meta[def.parent] ?? scope[def.parent]) : '';
          if (def.parent && !owner)
            throw new CliError(`${describeDoc(d)}: metadata.${def.parent}: is required`);
          targets.push({ def, parent: owner, name: meta.name, where: describeDoc(d) });
        }
      } else {
        if (!kind || !name) throw new CliError('give KIND NAME, or -f FILE');
        const def = kindArg(kind);
        targets.push({ def, ...target(def, name, scope) });
      }
      for (const t of targets) {
        const label = `${t.def.kind.toLowerCase()}/${t.def.parent ? `${t.parent}/` : ''}${t.name}`;
        try {
          await deleteObject(conn, t.def, t.parent, t.name);
          process.stdout.write(`${label} deleted\n`);
        } catch (err) {
          if (opts.ignoreNotFound && err instanceof ApiError && err.status === 404) {
            process.stdout.write(`${label} not found\n`);
            continue;
          }
          if (err instanceof CliError && t.where) throw new CliError(`${t.where}: ${err.message}`);
          throw err;
        }
      }
    });
}
