// `continuum image upload`: declare an image from local files (their sha256 computed
// here) and upload them, with progress.
import { promises as fs } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import type { paths } from '../../api/client/index.js';
import { hashFile } from '../../protocol/file-hash.js';
import { ApiClient, answer, apiOf } from '../client.js';
import { resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import type { GlobalOptions } from '../program.js';
import { countedFile, progress } from '../progress.js';

export function imageCommands(program: Command, globals: () => GlobalOptions): void {
  const image = program.command('image').description('manage VM and container images');
  image
    .command('upload')
    .description('create or update an image from local files and upload them (verified by sha256)')
    .argument('<name>', 'image name')
    .option('--disk <file>', 'a qcow2 or raw disk image')
    .option('--format <format>', 'disk format: qcow2 or raw (default: from the file name)')
    .option('--kernel <file>', 'a kernel, for a kernel-initrd image')
    .option('--initrd <file>', 'an initrd, for a kernel-initrd image')
    .option('--cmdline <args>', 'kernel command line, for a kernel-initrd image')
    .option(
      '--oci <file>',
      'an OCI image layout as a tar archive, for containers (umoci, skopeo copy oci-archive:)',
    )
    .option('--ref <tag>', 'the tag in the OCI layout to run (default: the only one, or latest)')
    .option('--arch <arch>', 'architecture', 'x86_64')
    .option('--description <text>', 'description')
    .action((name: string, opts) => upload(globals(), name, opts));

  image
    .command('import')
    .description(
      'import a container image: an OCI image layout as a tar archive, its blobs, manifest and tag checked by the server',
    )
    .argument('<name>', 'image name in the project')
    .argument('<archive>', 'the OCI layout as a tar (umoci; skopeo copy docker-daemon:IMG oci-archive:FILE)')
    .option('--ref <tag>', 'the tag in the layout to run (default: the only one, or latest)')
    .option('--description <text>', 'description')
    .addHelpText(
      'after',
      `
The archive is hashed here (sha256: how nodes fetch it, as they fetch VM images); the
server keeps it only if every blob's content matches its digest and the tag's
manifest, config and layers are all there with the sizes their descriptors say.

  continuum -p shop image import busybox .cache/testoci/testoci.tar
  continuum -p shop image import web web-oci.tar --ref v2`,
    )
    .action((name: string, archive: string, opts) =>
      upload(globals(), name, { ...opts, oci: archive, arch: 'x86_64' }),
    );
}

async function upload(
  g: GlobalOptions,
  name: string,
  opts: Record<string, string | undefined>,
): Promise<void> {
  const conn = await resolveConnection(g);
  const project = g.project ?? conn.project;
  if (!project)
    throw new CliError('which project? pass -p PROJECT or set one with `continuum login --project`');
  const files: Record<string, string> = {};
  if (opts.disk) files.disk = opts.disk;
  if (opts.kernel) files.kernel = opts.kernel;
  if (opts.initrd) files.initrd = opts.initrd;
  if (opts.oci) files.oci = opts.oci;
  if (!Object.keys(files).length)
    throw new CliError('give --disk FILE, --kernel FILE [--initrd FILE], or --oci FILE');
  if ([files.disk, files.kernel ?? files.initrd, files.oci].filter(Boolean).length > 1)
    throw new CliError('an image is a disk, a kernel + initrd, or an OCI archive: give one');
  if (opts.ref && !files.oci) throw new CliError('--ref names a tag of an OCI image (--oci FILE)');
  const format = files.oci
    ? 'oci'
    : files.disk
      ? (opts.format ?? (/\.qcow2$/.test(files.disk) ? 'qcow2' : 'raw'))
      : 'kernel-initrd';
  const specFiles: Record<string, { sha256: string }> = {};
  const sizes: Record<string, number> = {};
  for (const [k, path] of Object.entries(files)) {
    try {
      sizes[k] = (await fs.stat(path)).size;
    } catch {
      throw new CliError(`${path}: no such file`);
    }
    process.stderr.write(`hashing ${basename(path)}…\n`);
    specFiles[k] = { sha256: (await hashFile(path)).sha256 };
  }
  const spec: Record<string, unknown> = { format, architecture: opts.arch, files: specFiles };
  if (opts.cmdline) spec.cmdline = opts.cmdline;
  if (opts.ref) spec.ref = opts.ref;
  if (opts.description) spec.description = opts.description;
  await answer(
    conn,
    apiOf(conn).POST('/v1/apply', {
      body: { documents: [{ kind: 'Image', metadata: { name, project }, spec }] },
    }),
  );
  // The files stream from disk (GiBs): through the streaming client, not a serialised body.
  const client = new ApiClient(conn);
  let result:
    | paths['/v1/projects/{project}/images/{name}/files/{file}']['put']['responses'][200]['content']['application/json']
    | undefined;
  for (const [k, path] of Object.entries(files)) {
    const bar = progress(`${k} ${basename(path)}`, sizes[k]!);
    const stream = countedFile(path, (n) => bar.add(n));
    result = await client.request<NonNullable<typeof result>>(
      'PUT',
      `/v1/projects/${project}/images/${name}/files/${k}`,
      {
        raw: stream,
        rawSize: sizes[k],
      },
    );
    bar.end();
  }
  process.stdout.write(`image/${project}/${name} ${result?.status.phase}\n`);
  const oci = result?.status.oci;
  if (oci)
    process.stdout.write(
      `  tag ${oci.ref}, manifest ${oci.manifest}, ${oci.layers} layer(s), ${oci.bytes} bytes: digests verified\n`,
    );
}
