// An OCI image layout in a tar archive (what `umoci`, `skopeo copy … oci-archive:` and
// `buildah push … oci-archive:` write), checked before it is kept: every blob's
// content hashes to its name, the index names the tag to run, and its manifest, config
// and layers are all there with the sizes and digests their descriptors say.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar-stream';
import { Problem } from '../model/index.js';

export interface OciLayout {
  /** The tag that runs. */
  ref: string;
  /** Its manifest's digest (sha256:…). */
  manifest: string;
  layers: number;
  /** Bytes of the config and layers. */
  bytes: number;
}

interface Descriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
  annotations?: Record<string, string>;
}

const REF = 'org.opencontainers.image.ref.name';
/** JSON documents read whole; layers are only hashed. */
const SMALL = 4 * 1024 * 1024;

const bad = (message: string) => new Problem('checksum_mismatch', `not a valid OCI image layout: ${message}`);

/** Verifies the layout in `archive` and returns what runs (`ref`: the tag asked for, or the only/`latest` one). */
export async function verifyOciLayout(archive: string, ref?: string): Promise<OciLayout> {
  const blobs = new Map<string, { size: number; text?: string }>();
  let index: string | undefined;
  let layoutFile: string | undefined;
  const ex = extract();
  ex.on('entry', (header, stream, next) => {
    const name = header.name.replace(/^\.\//, '').replace(/\/+$/, '');
    if (header.type !== 'file') {
      stream.resume();
      next();
      return;
    }
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (data: unknown) => {
      const c = data as Buffer;
      hash.update(c);
      size += c.length;
      if (size <= SMALL) chunks.push(c);
    });
    stream.on('end', () => {
      const text = size <= SMALL ? Buffer.concat(chunks).toString('utf8') : undefined;
      const blob = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name);
      if (blob) {
        const actual = hash.digest('hex');
        if (actual !== blob[1]) {
          ex.destroy(bad(`blob ${name} has sha256 ${actual}: its content does not match its name`));
          return;
        }
        blobs.set(`sha256:${actual}`, { size, ...(text !== undefined ? { text } : {}) });
      } else if (name === 'index.json') index = text;
      else if (name === 'oci-layout') layoutFile = text;
      next();
    });
    stream.on('error', (err) => ex.destroy(err));
  });
  try {
    await pipeline(createReadStream(archive), ex);
  } catch (err) {
    if (err instanceof Problem) throw err;
    throw bad(`the archive cannot be read as tar: ${(err as Error).message}`);
  }
  if (!layoutFile) throw bad('it has no oci-layout file');
  if (!index) throw bad('it has no index.json');
  const parse = (text: string | undefined, what: string) => {
    try {
      return JSON.parse(text ?? '');
    } catch {
      throw bad(`${what} is not JSON`);
    }
  };
  const manifests = (parse(index, 'index.json').manifests ?? []) as Descriptor[];
  if (!manifests.length) throw bad('index.json lists no manifest');
  const tags = manifests.map((m) => m.annotations?.[REF]).filter((t): t is string => !!t);
  const chosen = ref
    ? manifests.find((m) => m.annotations?.[REF] === ref)
    : manifests.length === 1
      ? manifests[0]
      : manifests.find((m) => m.annotations?.[REF] === 'latest');
  if (!chosen)
    throw bad(
      ref
        ? `it has no tag '${ref}' (tags: ${tags.join(', ') || 'none'})`
        : `it has several manifests and no 'latest': name one with --ref (tags: ${tags.join(', ')})`,
    );
  const check = (d: Descriptor, what: string) => {
    if (!d.digest || !/^sha256:[0-9a-f]{64}$/.test(d.digest)) throw bad(`${what} has no sha256 digest`);
    const blob = blobs.get(d.digest);
    if (!blob) throw bad(`${what} ${d.digest} is not in the archive`);
    if (d.size !== undefined && d.size !== blob.size)
      throw bad(`${what} ${d.digest} is ${blob.size} bytes, its descriptor says ${d.size}`);
    return blob;
  };
  const manifest = parse(check(chosen, 'the manifest').text, 'the manifest');
  const config = check(manifest.config ?? {}, 'the config');
  const layers = (manifest.layers ?? []) as Descriptor[];
  let bytes = config.size;
  for (const [i, l] of layers.entries()) bytes += check(l, `layer ${i}`).size;
  return {
    ref: chosen.annotations?.[REF] ?? ref ?? 'latest',
    manifest: chosen.digest!,
    layers: layers.length,
    bytes,
  };
}
