// Exports of a project in open formats (EU Data Act, chapter VI): one tar archive that
// needs no Continuum to use. Each VM's disk as a standalone qcow2 (backing chain
// flattened, copied crash-consistently while the VM runs), the images, the cloud-init
// data, the manifests (YAML), the instances and their placement history, the residency
// report and the audit log (JSON), a README that says how to boot each VM with plain
// QEMU, and a SHA-256 manifest of every file signed with the federation's CA.
//
// An export is made in two steps: gathering (the disks come from the nodes; progress is
// visible) into the data directory, then as many downloads as the user wants. Every
// download's bytes are recorded in the audit trail; no switching or egress charge is
// ever applied.
import { randomUUID } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';
import { stringify } from 'yaml';
import { adminOfProjects, isFederationAdmin, type Principal } from '../auth/index.js';
import {
  API_VERSION,
  type ImageSpec,
  type ImageStatus,
  imageKind,
  Problem,
  projectKind,
  workloadKind,
} from '../model/index.js';
import { hashFile } from '../protocol/file-hash.js';
import type { ErasedArtefact } from '../protocol/index.js';
import type { Store, StoredResource } from '../store/index.js';
import { residencyReport } from './residency.js';
import { signDetached } from './signing.js';

export const EXPORT_PHASES = ['Gathering', 'Ready', 'Failed'] as const;
export type ExportPhase = (typeof EXPORT_PHASES)[number];

/** Fetches an instance's disk from its node into `file`; undefined: it has no disk. */
export type DiskFetcher = (
  at: { provider: string; node: string; uid: string },
  file: string,
  onProgress: (bytes: number) => void,
) => Promise<{ bytes: number; sha256: string } | undefined>;

export interface ExportJob {
  id: string;
  project: string;
  createdBy: string;
  createdAt: string;
  phase: ExportPhase;
  message?: string;
  /** Disks copied from their nodes so far, and the bytes of the one under way. */
  progress: { disksDone: number; disksTotal: number; bytesDone: number };
  /** The archive's size once it is ready. */
  size?: number;
  files?: number;
  /** Bytes served by downloads of this export (never charged). */
  bytesServed: number;
}

export interface ExportDeps {
  store: Store;
  /** Where exports are gathered (the data directory's exports/). */
  dir: string;
  /** The path of an image file's content by its SHA-256 on this replica (undefined: erased). */
  imageFile(sha256: string): Promise<string | undefined>;
  fetchDisk?: DiskFetcher;
  /** The federation's CA, which signs the manifest. */
  ca(): Promise<{ certPem: string; keyPem: string }>;
}

interface Entry {
  /** Path inside the bundle's top folder. */
  path: string;
  size: number;
}

const MANIFEST = 'SHA256SUMS';
const SIGNATURE = 'SHA256SUMS.sig';

/** The manifest of a stored object as `continuum apply -f` takes it back. */
export function manifestOf(kind: string, r: StoredResource, parent?: 'project'): object {
  return {
    apiVersion: API_VERSION,
    kind,
    metadata: {
      name: r.name,
      ...(parent ? { project: r.parent } : {}),
      ...(Object.keys(r.labels).length ? { labels: r.labels } : {}),
      ...(Object.keys(r.annotations).length ? { annotations: r.annotations } : {}),
    },
    spec: r.spec,
  };
}

export function canExport(p: Principal, project: string): boolean {
  return isFederationAdmin(p) || adminOfProjects(p).includes(project);
}

export class ExportService {
  private readonly jobs = new Map<string, ExportJob>();
  /** Exports being gathered now, by id. */
  private readonly gathering = new Map<string, Promise<void>>();

  constructor(private readonly deps: ExportDeps) {}

  /** Removes exports a previous run left (their list lived in its memory). */
  async clean(): Promise<void> {
    await fs.rm(this.deps.dir, { recursive: true, force: true });
  }

  /** Starts gathering an export of the project; the job is returned at once. */
  async start(p: Principal, project: string): Promise<ExportJob> {
    if (!(await this.deps.store.get('projects', '', project)))
      throw new Problem('not_found', `Project '${project}' not found`);
    if (!canExport(p, project))
      throw new Problem(
        'forbidden',
        `user '${p.user}' may not export project '${project}' (a project-admin of it may)`,
      );
    const job: ExportJob = {
      id: randomUUID(),
      project,
      createdBy: p.user,
      createdAt: new Date().toISOString(),
      phase: 'Gathering',
      progress: { disksDone: 0, disksTotal: 0, bytesDone: 0 },
      bytesServed: 0,
    };
    this.jobs.set(job.id, job);
    const gathering = this.gather(job).catch(async (err) => {
      job.phase = 'Failed';
      job.message = err instanceof Error ? err.message : String(err);
      await fs.rm(this.dirOf(job), { recursive: true, force: true }).catch(() => undefined);
    });
    this.gathering.set(job.id, gathering);
    void gathering.finally(() => this.gathering.delete(job.id));
    return job;
  }

  /** An export of the project the principal may see. */
  get(p: Principal, project: string, id: string): ExportJob {
    const job = this.jobs.get(id);
    if (!job || job.project !== project || !canExport(p, project))
      throw new Problem('not_found', `export '${id}' of project '${project}' not found`);
    return job;
  }

  list(p: Principal, project: string): ExportJob[] {
    if (!canExport(p, project))
      throw new Problem('not_found', `no exports of project '${project}' for user '${p.user}'`);
    return [...this.jobs.values()].filter((j) => j.project === project);
  }

  /** A switching's erasure: every export of the project goes, each file hashed first. */
  async eraseProject(project: string): Promise<ErasedArtefact[]> {
    const out = [];
    for (const job of [...this.jobs.values()].filter((j) => j.project === project)) {
      this.jobs.delete(job.id);
      await this.gathering.get(job.id);
      const root = join(this.dirOf(job), 'bundle');
      const entries = await fs.readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
      const hashed = [];
      for (const e of entries.filter((x) => x.isFile())) {
        const path = join(e.parentPath, e.name);
        hashed.push({
          kind: 'export',
          name: `${job.id}/${path.slice(root.length + 1)}`,
          ...(await hashFile(path)),
        });
      }
      await fs.rm(this.dirOf(job), { recursive: true, force: true });
      const deletedAt = new Date().toISOString();
      out.push(...hashed.map((h) => ({ ...h, deletedAt })));
    }
    return out;
  }

  /** Removes an export and its files. */
  async remove(p: Principal, project: string, id: string): Promise<void> {
    const job = this.get(p, project, id);
    this.jobs.delete(id);
    // One still gathering is let finish first: its files would land after the removal.
    await this.gathering.get(id);
    await fs.rm(this.dirOf(job), { recursive: true, force: true });
  }

  private dirOf(job: ExportJob): string {
    return join(this.deps.dir, job.id);
  }

  /** The folder at the top of the archive. */
  static top(job: { project: string }): string {
    return `continuum-export-${job.project}`;
  }

  /**
   * The archive, streamed: its size is known before the first byte (the files are
   * gathered). The bytes sent are recorded when the download ends.
   */
  async download(p: Principal, project: string, id: string): Promise<{ size: number; stream: Readable }> {
    const job = this.get(p, project, id);
    if (job.phase !== 'Ready')
      throw new Problem(
        'conflict',
        job.phase === 'Failed'
          ? `export '${id}' failed: ${job.message}`
          : `export '${id}' is still gathering (${job.progress.disksDone}/${job.progress.disksTotal} disks): download it when it is Ready`,
      );
    const root = this.dirOf(job);
    const entries = JSON.parse(await fs.readFile(join(root, 'entries.json'), 'utf8')) as Entry[];
    const tar = pack();
    let sent = 0;
    // Counted as it passes (a 'data' listener would start the flow before the reply reads).
    const out = new Transform({
      transform(d: Buffer, _enc, done) {
        sent += d.length;
        done(null, d);
      },
    });
    const record = () => {
      job.bytesServed += sent;
      void this.deps.store
        .transaction((tx) =>
          tx.appendEvent({
            actor: p.user,
            action: 'download',
            kind: 'Export',
            parent: project,
            name: id,
            provider: null,
            project,
            before: null,
            after: { bytes: sent, size: job.size, complete: sent === job.size, charge: 0 },
          }),
        )
        .catch(() => undefined);
    };
    out.once('end', record);
    out.once('close', () => {
      if (!out.readableEnded) record();
    });
    const top = ExportService.top(job);
    void (async () => {
      for (const e of entries) {
        const entry = tar.entry({
          name: `${top}/${e.path}`,
          size: e.size,
          mode: 0o644,
          mtime: new Date(job.createdAt),
        });
        await pipeline(createReadStream(join(root, 'bundle', e.path)), entry);
      }
      tar.finalize();
    })().catch((err) => tar.destroy(err));
    tar.pipe(out);
    return { size: job.size!, stream: out };
  }

  private async gather(job: ExportJob): Promise<void> {
    const { store } = this.deps;
    const root = join(this.dirOf(job), 'bundle');
    await fs.mkdir(root, { recursive: true, mode: 0o700 });
    const files: string[] = [];
    const write = async (path: string, content: string | Buffer) => {
      await fs.mkdir(dirname(join(root, path)), { recursive: true });
      await fs.writeFile(join(root, path), content);
      files.push(path);
    };
    const yaml = (doc: object) => stringify(doc, { lineWidth: 0 });
    const project = job.project;

    const proj = await store.get('projects', '', project);
    if (!proj) throw new Error(`project '${project}' was deleted`);
    await write('project.yaml', yaml(manifestOf(projectKind.kind, proj)));
    const images = await store.list('images', { parents: [project] });
    for (const img of images) {
      await write(`images/${img.name}.yaml`, yaml(manifestOf(imageKind.kind, img, 'project')));
      const uploaded = (img.status as ImageStatus).files;
      for (const [file, f] of Object.entries(uploaded)) {
        if (!f || (img.spec as ImageSpec).files[file as keyof ImageSpec['files']]?.sha256 !== f.sha256)
          continue;
        const to = join(root, 'images', img.name, file);
        await fs.mkdir(dirname(to), { recursive: true });
        const from = await this.deps.imageFile(f.sha256);
        if (!from) throw new Error(`the content of image '${project}/${img.name}' ${file} is gone (erased)`);
        // Content-addressed files never change: a hard link where the file system allows.
        await fs.link(from, to).catch(() => fs.copyFile(from, to));
        files.push(`images/${img.name}/${file}`);
      }
    }
    const workloads = await store.list('workloads', { parents: [project] });
    for (const w of workloads)
      await write(`workloads/${w.name}.yaml`, yaml(manifestOf(workloadKind.kind, w, 'project')));

    const instances = (await store.listInstances({ project })).filter((i) => i.desired !== 'absent');
    const withDisk = instances.filter((i) => i.spec.image.format !== 'kernel-initrd' && i.node);
    job.progress.disksTotal = this.deps.fetchDisk ? withDisk.length : 0;
    const disks: Record<
      string,
      { file: string; bytes: number; sha256: string; takenAt: string; running: boolean }
    > = {};
    for (const i of this.deps.fetchDisk ? withDisk : []) {
      const path = `disks/${i.name}.qcow2`;
      await fs.mkdir(join(root, 'disks'), { recursive: true });
      job.progress.bytesDone = 0;
      const takenAt = new Date().toISOString();
      const got = await this.deps.fetchDisk!(
        { provider: i.provider, node: i.node, uid: i.uid },
        join(root, path),
        (b) => {
          job.progress.bytesDone = b;
        },
      ).catch((err: Error) => {
        throw new Error(`copying the disk of ${i.name} from ${i.provider}/${i.node}: ${err.message}`);
      });
      if (got) {
        files.push(path);
        disks[i.name] = { file: path, ...got, takenAt, running: i.status.phase === 'Running' };
      }
      job.progress.disksDone++;
    }
    for (const i of instances) {
      await write(
        `cloud-init/${i.name}/meta-data`,
        `instance-id: ${i.uid}\nlocal-hostname: ${i.spec.hostname}\n`,
      );
      await write(`cloud-init/${i.name}/user-data`, i.spec.userData ?? '#cloud-config\n{}\n');
    }
    const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
    await write(
      'instances.json',
      json(
        instances.map((i) => ({
          name: i.name,
          uid: i.uid,
          workload: i.workload,
          ordinal: i.ordinal,
          provider: i.provider,
          node: i.node,
          desired: i.desired,
          phase: i.status.phase,
          vcpus: i.vcpus,
          memoryMiB: i.memoryMiB,
          diskGiB: i.diskGiB,
          image: { name: i.spec.image.name, format: i.spec.image.format, files: i.spec.image.files },
          ...(i.spec.image.cmdline ? { cmdline: i.spec.image.cmdline } : {}),
          ports: i.spec.ports,
          disk: disks[i.name],
          createdAt: i.createdAt,
        })),
      ),
    );
    const history: unknown[] = [];
    const audit: unknown[] = [];
    for (let after = 0; ; ) {
      const page = await store.listEvents({
        scope: { providers: [], projects: [project] },
        after,
        limit: 1000,
      });
      if (!page.length) break;
      for (const e of page) {
        after = e.position;
        audit.push(e);
        if (e.kind === 'Instance') history.push(e);
      }
    }
    await write('placement-history.json', json(history));
    await write('audit.json', json(audit));
    const stays = await residencyReport(store, project);
    await write(
      'residency.json',
      json({
        project,
        generatedAt: new Date().toISOString(),
        countries: [...new Set(stays.map((s) => s.country))].sort(),
        stays,
      }),
    );
    const ca = await this.deps.ca();
    await write('ca.crt', ca.certPem);
    await write('README.md', readme(job, instances, disks, images));

    const sums: string[] = [];
    const entries: Entry[] = [];
    for (const path of files.sort()) {
      const { sha256, bytes } = await hashFile(join(root, path));
      sums.push(`${sha256}  ${path}`);
      entries.push({ path, size: bytes });
    }
    const manifest = `${sums.join('\n')}\n`;
    await write(MANIFEST, manifest);
    await write(SIGNATURE, signDetached(Buffer.from(manifest), ca.keyPem));
    entries.push({ path: MANIFEST, size: Buffer.byteLength(manifest) });
    entries.push({ path: SIGNATURE, size: (await fs.stat(join(root, SIGNATURE))).size });
    await fs.writeFile(join(this.dirOf(job), 'entries.json'), JSON.stringify(entries));
    // ustar: a 512-byte header per file (names stay within ustar's 100 + 155 characters:
    // project, image and workload names are at most 63), its content padded to 512, and
    // two zero blocks at the end.
    job.size = entries.reduce((n, e) => n + 512 + Math.ceil(e.size / 512) * 512, 0) + 1024;
    job.files = entries.length;
    job.phase = 'Ready';
    await store.transaction((tx) =>
      tx.appendEvent({
        actor: job.createdBy,
        action: 'export',
        kind: 'Export',
        parent: project,
        name: job.id,
        provider: null,
        project,
        before: null,
        after: { size: job.size, files: job.files, disks: Object.keys(disks).length, charge: 0 },
      }),
    );
  }
}

/**
 * The register of what an export holds and in which formats and standards (EU Data Act,
 * Art. 26): published at /public/export-formats and written into every export's README.
 */
export const EXPORT_FORMATS: readonly {
  paths: string[];
  what: string;
  format: string;
  standards: string[];
}[] = [
  {
    paths: ['project.yaml', 'workloads/NAME.yaml', 'images/NAME.yaml'],
    what: 'the manifests of the project, its workloads and images (`continuum apply -f` takes them back)',
    format: 'YAML',
    standards: ['YAML 1.2', 'Continuum API continuum/v1 (OpenAPI 3 at /openapi.json)'],
  },
  {
    paths: ['images/NAME/disk', 'images/NAME/kernel', 'images/NAME/initrd', 'images/NAME/oci'],
    what: 'the image files, as uploaded',
    format: 'qcow2 or raw disk images; Linux kernel and initramfs; OCI image layouts (tar) of containers',
    standards: ['QEMU qcow2 version 3', 'raw disk image', 'OCI Image Format Specification v1'],
  },
  {
    paths: ['disks/INSTANCE.qcow2'],
    what: "each VM's disk, its backing chain flattened, copied crash-consistently while it ran (or as left when stopped)",
    format: 'qcow2',
    standards: ['QEMU qcow2 version 3'],
  },
  {
    paths: ['cloud-init/INSTANCE/meta-data', 'cloud-init/INSTANCE/user-data'],
    what: 'the cloud-init data each VM was given',
    format: 'cloud-init NoCloud',
    standards: ['cloud-init NoCloud data source'],
  },
  {
    paths: ['instances.json'],
    what: 'the VMs and containers: where they ran, their resources, images and disks',
    format: 'JSON',
    standards: ['RFC 8259', 'RFC 3339 times'],
  },
  {
    paths: ['placement-history.json', 'audit.json'],
    what: "every placement, re-placement and migration; the project's whole audit log",
    format: 'JSON (audit events)',
    standards: ['RFC 8259', 'RFC 3339 times'],
  },
  {
    paths: ['residency.json'],
    what: 'every country, provider, site and node the VMs and their disks have been in, with time ranges',
    format: 'JSON',
    standards: ['RFC 8259', 'ISO 3166-1 alpha-2 country codes'],
  },
  {
    paths: ['SHA256SUMS', 'SHA256SUMS.sig', 'ca.crt'],
    what: "the SHA-256 of every file, signed with the federation's CA",
    format: 'sha256sum lines; ECDSA P-256 signature over SHA-256 (DER); X.509 certificate (PEM)',
    standards: ['FIPS 180-4 SHA-256', 'FIPS 186 ECDSA', 'RFC 5280 X.509'],
  },
  {
    paths: ['continuum-export-PROJECT/'],
    what: 'all of the above in one folder',
    format: 'tar',
    standards: ['POSIX.1-1988 ustar'],
  },
];

function formatTable(): string {
  const rows = EXPORT_FORMATS.map(
    (f) => `| ${f.paths.map((p) => `\`${p}\``).join(', ')} | ${f.what} | ${f.format} |`,
  );
  return ['| path | what | format |', '|---|---|---|', ...rows].join('\n');
}

/** The README of an export: what is in it, how to check it, how to boot each VM with plain QEMU. */
function readme(
  job: ExportJob,
  instances: {
    name: string;
    vcpus: number;
    memoryMiB: number;
    spec: {
      image: { name: string; format: string; cmdline?: string; ref?: string };
      ports: { guest: number }[];
      container?: { command?: string[]; args?: string[]; env?: Record<string, string> };
    };
  }[],
  disks: Record<string, { file: string }>,
  images: StoredResource[],
): string {
  const top = ExportService.top(job);
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const runs = instances
    .filter((i) => i.spec.image.format === 'oci')
    .map((i) => {
      const img = i.spec.image;
      const c = i.spec.container ?? {};
      const ref = img.ref ?? 'latest';
      const podman = [
        'podman run --rm',
        `--memory ${i.memoryMiB}m --cpus ${i.vcpus}`,
        ...i.spec.ports.map((p) => `-p ${p.guest}:${p.guest}`),
        ...Object.entries(c.env ?? {}).map(([k, v]) => `-e ${quote(`${k}=${v}`)}`),
        ...(c.command ? [`--entrypoint ${quote(JSON.stringify(c.command))}`] : []),
        `oci-archive:images/${img.name}/oci:${ref}`,
        ...(c.args ?? []).map(quote),
      ].join(' ');
      return `### ${i.name}

\`\`\`sh
${podman}
# or with umoci and runc:
mkdir -p layouts/${img.name} && tar -xf images/${img.name}/oci -C layouts/${img.name}
umoci unpack --image layouts/${img.name}:${ref} bundles/${i.name}
runc run --bundle bundles/${i.name} ${i.name}
\`\`\`
`;
    });
  const boots = instances
    .filter((i) => i.spec.image.format !== 'oci')
    .map((i) => {
      const img = i.spec.image;
      const args = [
        'qemu-system-x86_64',
        '-machine',
        'q35',
        '-cpu',
        'max',
        '-m',
        String(i.memoryMiB),
        '-smp',
        String(i.vcpus),
        '-nographic',
      ];
      const disk = disks[i.name];
      if (img.format === 'kernel-initrd') {
        const has = images.find((m) => m.name === img.name);
        const files = (has?.status as ImageStatus | undefined)?.files ?? {};
        args.push('-kernel', `images/${img.name}/kernel`);
        if (files.initrd) args.push('-initrd', `images/${img.name}/initrd`);
        if (img.cmdline) args.push('-append', quote(img.cmdline));
      }
      if (disk) args.push('-drive', `if=virtio,format=qcow2,file=${disk.file}`);
      else if (img.format !== 'kernel-initrd')
        args.push('-drive', `if=virtio,format=${img.format},file=images/${img.name}/disk`);
      args.push('-drive', `if=virtio,format=raw,readonly=on,file=cloud-init/${i.name}/seed.iso`);
      return `### ${i.name}\n\n\`\`\`sh\ngenisoimage -quiet -output cloud-init/${i.name}/seed.iso -volid cidata -rational-rock -joliet cloud-init/${i.name}/meta-data cloud-init/${i.name}/user-data\n${args.join(' ')}\n\`\`\`\n`;
    });
  return `# Export of project ${job.project}

Made by Continuum on ${job.createdAt} for ${job.createdBy} (export ${job.id}). Everything
here is in open formats and needs no Continuum to use.

${formatTable()}

## Check it

\`\`\`sh
cd ${top}
sha256sum -c SHA256SUMS
openssl x509 -in ca.crt -pubkey -noout > ca.pub
openssl dgst -sha256 -verify ca.pub -signature SHA256SUMS.sig SHA256SUMS
openssl x509 -in ca.crt -noout -fingerprint -sha256   # compare with your federation's CA fingerprint
\`\`\`

## Boot each VM with plain QEMU

From this folder (add \`-accel kvm\` where the host has KVM; Ctrl-A X leaves QEMU):

${boots.join('\n') || 'The project had no VMs.\n'}
## Run each container

With Podman, or with umoci and runc (the command, arguments, environment and ports it
had are in \`workloads/\` and \`instances.json\`):

${runs.join('\n') || 'The project had no containers.\n'}`;
}
