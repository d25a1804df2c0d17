// Import of an export bundle (src/resources/export.ts) into this federation: the project,
// its images, its workloads, and VMs that boot from the disks the bundle carries. The
// archive is read as it streams in; every file is checked against the signed SHA-256
// manifest before anything is written, so a corrupt or truncated bundle is refused with
// the file that fails and nothing half-imported.
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar-stream';
import { parse } from 'yaml';
import type { Principal } from '../auth/index.js';
import { type ImageSpec, type ImageStatus, imagePhase, Problem } from '../model/index.js';
import type { Store } from '../store/index.js';
import type { ResourceService } from './service.js';
import { verifyDetached } from './signing.js';

export interface ImportDeps {
  store: Store;
  resources: ResourceService;
  /** Where a bundle is unpacked while it is checked (inside the data directory). */
  dir: string;
  /** The path of an image file's content by its SHA-256 (where it is moved once checked). */
  imagePath(sha256: string): string;
  /** A file put in place: shared with the other replicas (PostgreSQL), or dropped again. */
  shareImage?(sha256: string): Promise<boolean>;
  dropImage?(sha256: string): Promise<void>;
}

export interface ImportResult {
  project: string;
  /** The SHA-256 fingerprint of the CA that signed the bundle. */
  signedBy: string;
  bytes: number;
  created: { kind: string; name: string }[];
  /** Workloads whose VMs boot from an exported disk: the disk image each now uses. */
  disks: { workload: string; instance: string; image: string }[];
  /** What of a workload's placement named the other federation's providers or nodes, and was left out. */
  adjusted: { workload: string; message: string }[];
}

const MAX_FILES = 100_000;
const bad = (message: string) => new Problem('invalid_request', message);

/** Unpacks the archive into `into`, hashing each file; returns path → SHA-256 and the top folder. */
async function unpack(body: Readable, into: string) {
  const hashes = new Map<string, string>();
  let top: string | undefined;
  let current = '';
  let bytes = 0;
  const ex = extract();
  ex.on('entry', (header, stream, next) => {
    const name = header.name.replace(/\/+$/, '');
    current = name;
    const fail = (msg: string) => {
      stream.resume();
      ex.destroy(bad(msg));
    };
    if (header.type === 'directory') {
      stream.resume();
      return next();
    }
    const parts = name.split('/');
    if (
      header.type !== 'file' ||
      name.startsWith('/') ||
      parts.some((p) => p === '..' || p === '' || p === '.')
    )
      return fail(`the bundle holds '${name}', which is not a plain file inside its folder`);
    if (parts.length < 2) return fail(`the bundle holds '${name}' outside its top folder`);
    top ??= parts[0];
    if (parts[0] !== top) return fail(`the bundle holds '${name}' outside its top folder '${top}'`);
    if (hashes.size >= MAX_FILES) return fail(`the bundle holds more than ${MAX_FILES} files`);
    const rel = parts.slice(1).join('/');
    if (hashes.has(rel)) return fail(`the bundle holds '${rel}' twice`);
    const file = join(into, 'files', randomUUID());
    const hash = createHash('sha256');
    // Hashed as it passes on to the file (no second reader of the entry).
    const hashing = new Transform({
      transform(d: Buffer, _enc, done) {
        hash.update(d);
        bytes += d.length;
        done(null, d);
      },
    });
    pipeline(stream, hashing, createWriteStream(file, { mode: 0o600 })).then(
      () => {
        hashes.set(rel, hash.digest('hex'));
        paths.set(rel, file);
        next();
      },
      (err: Error) => ex.destroy(err),
    );
  });
  const paths = new Map<string, string>();
  await fs.mkdir(join(into, 'files'), { recursive: true, mode: 0o700 });
  try {
    await pipeline(body, ex);
  } catch (err) {
    if (err instanceof Problem) throw err;
    const msg = (err as Error).message;
    throw bad(
      /unexpected end|premature|aborted|truncated/i.test(msg)
        ? `the bundle is truncated (it ends inside '${current}')`
        : `the bundle is not a readable tar archive (${msg}${current ? `, at '${current}'` : ''})`,
    );
  }
  if (!top) throw bad('the bundle is empty');
  return { hashes, paths, bytes };
}

/** Checks every file against SHA256SUMS and its signature; returns the signer's fingerprint. */
async function check(hashes: Map<string, string>, paths: Map<string, string>): Promise<string> {
  const need = (rel: string) => {
    const p = paths.get(rel);
    if (!p) throw bad(`the bundle has no ${rel}: it is not a Continuum export, or it is incomplete`);
    return p;
  };
  const manifest = await fs.readFile(need('SHA256SUMS'));
  const signature = await fs.readFile(need('SHA256SUMS.sig'));
  const certPem = await fs.readFile(need('ca.crt'), 'utf8');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw bad("the bundle's ca.crt is not a certificate");
  }
  if (!verifyDetached(manifest, signature, certPem))
    throw bad(
      "SHA256SUMS does not verify against SHA256SUMS.sig with the bundle's ca.crt: the manifest was changed",
    );
  const listed = new Map<string, string>();
  for (const [n, line] of manifest.toString('utf8').split('\n').entries()) {
    if (!line) continue;
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (!m) throw bad(`SHA256SUMS line ${n + 1} is not '<sha256>  <path>'`);
    listed.set(m[2]!, m[1]!);
  }
  for (const [rel, sha] of listed) {
    const got = hashes.get(rel);
    if (got === undefined)
      throw bad(`'${rel}' is listed in SHA256SUMS but missing from the bundle (truncated?)`);
    if (got !== sha)
      throw new Problem(
        'checksum_mismatch',
        `'${rel}' fails its checksum (SHA-256 ${got}, SHA256SUMS says ${sha})`,
      );
  }
  for (const rel of hashes.keys())
    if (!listed.has(rel) && rel !== 'SHA256SUMS' && rel !== 'SHA256SUMS.sig')
      throw bad(`'${rel}' is in the bundle but not in SHA256SUMS`);
  return cert.fingerprint256.replace(/:/g, '').toLowerCase();
}

/**
 * A workload's placement names providers and nodes of the federation it came from: those
 * this one does not have are left out (a pin, allowed or denied providers), each said.
 */
async function localise(store: Store, doc: any): Promise<{ workload: string; message: string }[]> {
  const out: { workload: string; message: string }[] = [];
  const p = doc?.spec?.placement;
  const workload = String(doc?.metadata?.name);
  if (!p || typeof p !== 'object') return out;
  if (typeof p.node === 'string') {
    const [provider, node] = p.node.split('/');
    if (!(await store.get('nodes', provider ?? '', node ?? ''))) {
      delete p.node;
      out.push({
        workload,
        message: `its pin to node ${provider}/${node}, which this federation does not have, is left out`,
      });
    }
  }
  for (const key of ['allow', 'deny'] as const) {
    const names = p.providers?.[key];
    if (!Array.isArray(names)) continue;
    const here: string[] = [];
    for (const n of names) if (typeof n === 'string' && (await store.get('providers', '', n))) here.push(n);
    const gone = names.filter((n: unknown) => !here.includes(n as string));
    if (!gone.length) continue;
    out.push({
      workload,
      message: `providers.${key} named ${gone.join(', ')}, which this federation does not have: left out`,
    });
    if (here.length) p.providers[key] = here;
    else delete p.providers[key];
  }
  if (p.providers && !Object.keys(p.providers).length) delete p.providers;
  return out;
}

/** The name of the image made of an instance's exported disk. */
const diskImage = (instance: string) => `${instance}-disk`;

export async function importBundle(deps: ImportDeps, p: Principal, body: Readable): Promise<ImportResult> {
  const work = join(deps.dir, randomUUID());
  try {
    const { hashes, paths, bytes } = await unpack(body, work);
    const signedBy = await check(hashes, paths);
    const read = async (rel: string) => fs.readFile(paths.get(rel)!, 'utf8');
    const yamlOf = async (rel: string) => {
      try {
        return parse(await read(rel)) as any;
      } catch (err) {
        throw bad(`${rel} is not valid YAML: ${(err as Error).message}`);
      }
    };
    if (!paths.has('project.yaml')) throw bad('the bundle has no project.yaml');
    const projectDoc = await yamlOf('project.yaml');
    const project = projectDoc?.metadata?.name;
    if (typeof project !== 'string') throw bad('project.yaml names no project (metadata.name)');
    if (await deps.store.get('projects', '', project))
      throw new Problem(
        'conflict',
        `project '${project}' exists in this federation already: an import creates it (delete it first, or import into another federation)`,
      );
    const docs: { from: string; doc: any }[] = [{ from: 'project.yaml', doc: projectDoc }];
    const rels = [...paths.keys()].sort();
    for (const rel of rels.filter((r) => /^images\/[^/]+\.yaml$/.test(r)))
      docs.push({ from: rel, doc: await yamlOf(rel) });
    // Image files go into the image store by their checksum; the image is Available then.
    const files: { image: string; file: string; sha256: string; path: string }[] = [];
    for (const { doc } of docs.slice(1)) {
      const name = doc?.metadata?.name;
      for (const [file, ref] of Object.entries(
        (doc?.spec?.files ?? {}) as Record<string, { sha256?: string }>,
      )) {
        const rel = `images/${name}/${file}`;
        if (!paths.has(rel)) continue;
        if (ref?.sha256 !== hashes.get(rel))
          throw bad(`${rel} is not the file images/${name}.yaml declares (SHA-256 differs)`);
        files.push({ image: name, file, sha256: ref.sha256!, path: paths.get(rel)! });
      }
    }
    // Each VM's disk becomes an image; its workload boots from it (a workload of several
    // replicas from the disk of its first one: the others' are imported as images too).
    const instances = paths.has('instances.json') ? (JSON.parse(await read('instances.json')) as any[]) : [];
    const disks: ImportResult['disks'] = [];
    const adjusted: ImportResult['adjusted'] = [];
    const workloadDisk = new Map<string, string>();
    for (const i of [...instances].sort((a, b) => a.ordinal - b.ordinal)) {
      const rel = i?.disk?.file;
      if (typeof rel !== 'string') continue;
      if (!paths.has(rel)) throw bad(`instances.json names the disk ${rel}, which is not in the bundle`);
      const image = diskImage(i.name);
      docs.push({
        from: rel,
        doc: {
          kind: 'Image',
          metadata: { name: image, project, labels: { 'continuum.eu/imported-disk-of': i.name } },
          spec: {
            format: 'qcow2',
            description: `the disk of ${i.name}, exported ${i.disk.takenAt ?? ''}`.trim(),
            files: { disk: { sha256: hashes.get(rel) } },
          },
        },
      });
      files.push({ image, file: 'disk', sha256: hashes.get(rel)!, path: paths.get(rel)! });
      if (!workloadDisk.has(i.workload)) workloadDisk.set(i.workload, image);
      disks.push({ workload: i.workload, instance: i.name, image });
    }
    for (const rel of rels.filter((r) => /^workloads\/[^/]+\.yaml$/.test(r))) {
      const doc = await yamlOf(rel);
      const image = workloadDisk.get(doc?.metadata?.name);
      if (image && doc?.spec) doc.spec.image = image;
      adjusted.push(...(await localise(deps.store, doc)));
      docs.push({ from: rel, doc });
    }
    for (const d of docs) if (d.doc?.metadata && d.doc.kind !== 'Project') d.doc.metadata.project = project;

    const documents = docs.map((d) => d.doc);
    const setFiles = async (tx: Store) => {
      const now = new Date().toISOString();
      for (const image of new Set(files.map((f) => f.image))) {
        const row = await tx.get('images', project, image);
        if (!row) continue;
        const spec = row.spec as ImageSpec;
        const got: ImageStatus['files'] = {};
        for (const f of files.filter((x) => x.image === image))
          got[f.file as keyof ImageStatus['files']] = {
            sha256: f.sha256,
            size: (await fs.stat(f.path)).size,
            uploadedAt: now,
          };
        await tx.update('images', row.uid, undefined, {
          status: { phase: imagePhase(spec, got), files: got },
          bumpGeneration: false,
        });
      }
      await tx.appendEvent({
        actor: p.user,
        action: 'import',
        kind: 'Project',
        parent: '',
        name: project,
        provider: null,
        project,
        before: null,
        after: { bytes, signedBy, documents: documents.length, charge: 0 },
      });
    };
    const blame = (err: unknown) => {
      if (err instanceof Problem && err.document !== undefined)
        err.message = `${docs[err.document]!.from}: ${err.message}`;
      return err;
    };
    // Everything checked first (a dry run), then the files put in place, then all written
    // in one transaction.
    await deps.resources.apply(p, documents, true).catch((err) => {
      throw blame(err);
    });
    const placed: string[] = [];
    /** Of those, the ones this import put into the database (PostgreSQL). */
    const shared: string[] = [];
    for (const f of files) {
      const to = deps.imagePath(f.sha256);
      if (
        await fs.stat(to).then(
          () => true,
          () => false,
        )
      )
        continue;
      await fs.mkdir(join(to, '..'), { recursive: true, mode: 0o700 });
      // Checked content, kept by its checksum (a copy where the unpacked file is needed twice).
      await fs.copyFile(f.path, `${to}.${process.pid}.tmp`);
      await fs.rename(`${to}.${process.pid}.tmp`, to);
      placed.push(f.sha256);
      if (await deps.shareImage?.(f.sha256)) shared.push(f.sha256);
    }
    const results = await deps.resources.apply(p, documents, false, setFiles).catch(async (err) => {
      // Nothing half-imported: the files put in place for it go too.
      for (const sha of placed) await fs.rm(deps.imagePath(sha), { force: true });
      for (const sha of shared) await deps.dropImage?.(sha);
      throw blame(err);
    });
    return {
      project,
      signedBy,
      bytes,
      created: results.map((r) => ({ kind: r.object.kind, name: r.object.metadata.name })),
      disks,
      adjusted,
    };
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
