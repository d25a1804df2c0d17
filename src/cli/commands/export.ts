// `continuum export project P -o bundle.tar` and `continuum import bundle.tar`: a
// project out of the federation in open formats (EU Data Act, chapter VI) and into
// another one, with progress on both.
import { createWriteStream, promises as fs } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { paths } from '../../api/client/index.js';
import { ApiClient, answer, apiOf } from '../client.js';
import { resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import { formatData } from '../output.js';
import type { GlobalOptions } from '../program.js';
import { countedFile, counting, progress } from '../progress.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

export function exportCommands(program: Command, globals: () => GlobalOptions): void {
  program
    .command('export')
    .description('export a project in open formats: one tar archive that needs no Continuum to use')
    .argument('<kind>', 'what to export: project')
    .argument('<name>', "the project's name")
    // -o is the global option (an output format elsewhere), read raw: the archive file.
    .usage('project NAME -o FILE')
    .addHelpText(
      'after',
      `
The archive holds each VM's disk as a standalone qcow2 (copied crash-consistently while
it runs), the images, the cloud-init data, the manifests (YAML), the instances with
their placement history, the residency report and the audit log (JSON), a SHA-256
manifest signed with the federation's CA, and a README that says how to check it and
boot each VM with plain QEMU. Exports are never charged; their bytes are recorded.

Examples:
  continuum export project shop -o shop.tar
  tar xf shop.tar && cd continuum-export-shop && sha256sum -c SHA256SUMS
  continuum --server http://other:7400 import shop.tar`,
    )
    .action(async (kind: string, name: string) => {
      const output = globals().output as string;
      if (output === 'table')
        throw new CliError('where to? give the archive file with -o FILE (or -o - for standard output)');
      if (kind !== 'project')
        throw new CliError(
          `cannot export '${kind}': only a project is exported (continuum export project NAME)`,
        );
      const c = new ApiClient(await resolveConnection(globals()));
      const api = apiOf(c.conn);
      let job = await answer(
        c.conn,
        api.POST('/v1/projects/{project}/exports', { params: { path: { project: name } } }),
      );
      const log = (s: string) => process.stderr.write(s);
      let shown = '';
      while (job.phase === 'Gathering') {
        const p = job.progress;
        const line = p.disksTotal
          ? `copying disks from their nodes: ${p.disksDone}/${p.disksTotal}${p.bytesDone ? `, ${mib(p.bytesDone)} of the current one` : ''}`
          : 'gathering';
        if (line !== shown && process.stderr.isTTY) log(`\r${line.padEnd(70)}`);
        shown = line;
        await sleep(500);
        job = await answer(
          c.conn,
          api.GET('/v1/projects/{project}/exports/{id}', { params: { path: { project: name, id: job.id } } }),
        );
      }
      if (process.stderr.isTTY && shown) log('\n');
      if (job.phase === 'Failed') throw new CliError(`the export failed: ${job.message}`);
      const res = await c.download(`/v1/projects/${name}/exports/${job.id}/bundle`);
      const total = Number(res.headers.get('content-length') ?? job.size);
      const bar = progress(`export ${name}`, total, 'downloaded');
      const body = Readable.fromWeb(res.body as any);

      const out = output === '-' ? process.stdout : createWriteStream(`${output}.partial`);
      try {
        await pipeline(
          body,
          counting((n) => bar.add(n)),
          out,
        );
      } catch (err) {
        if (output !== '-') await fs.rm(`${output}.partial`, { force: true });
        throw new CliError(`the download broke off: ${(err as Error).message}`);
      }
      bar.end();
      if (output !== '-') {
        const size = (await fs.stat(`${output}.partial`)).size;
        if (size !== total)
          throw new CliError(`the download is incomplete (${size} of ${total} bytes); run the export again`);
        await fs.rename(`${output}.partial`, output);
        log(`${output}: ${job.files} files, ${mib(size)}, export ${job.id}\n`);
      }
    });

  program
    .command('import')
    .description(
      'import an export bundle (continuum export) into this federation: project, images, workloads, disks',
    )
    .argument('<file>', 'the archive')
    .addHelpText(
      'after',
      `
Every file is checked against the bundle's signed SHA-256 manifest before anything is
written; a corrupt or truncated bundle is refused, naming the file that fails. The
project must not exist here yet. Each VM's disk becomes an image (INSTANCE-disk) and its
workload boots from it (a workload of several replicas from its first replica's disk).

Example:
  continuum import shop.tar`,
    )
    .action(async (file: string) => {
      const g = globals();
      const c = new ApiClient(await resolveConnection(g));
      const size = await fs.stat(file).then(
        (s) => s.size,
        () => {
          throw new CliError(`cannot read ${file}`);
        },
      );
      const bar = progress(`import ${file}`, size);
      const stream = countedFile(file, (n) => bar.add(n));
      const r = await c.request<
        paths['/v1/imports']['post']['responses'][201]['content']['application/json']
      >('POST', '/v1/imports', {
        raw: stream,
        rawSize: size,
        rawType: 'application/x-tar',
      });
      bar.end();
      if (g.output === 'json' || g.output === 'yaml')
        return void process.stdout.write(`${formatData(g.output, r)}\n`);
      process.stdout.write(
        `project/${r.project} imported (${mib(r.bytes)}, signed by CA ${r.signedBy.slice(0, 16)}…)\n` +
          r.created.map((o) => `  ${o.kind.toLowerCase()}/${o.name} created\n`).join('') +
          r.disks
            .map((d) => `  workload ${d.workload}: ${d.instance}'s disk is image ${d.image}\n`)
            .join('') +
          r.adjusted.map((a) => `  workload ${a.workload}: ${a.message}\n`).join(''),
      );
    });
}
