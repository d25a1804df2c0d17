// Image content: uploads stream to a temporary file while being hashed, and are kept
// under images/sha256/<hex> only when the hash matches what the image declares.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { canWrite, type Principal } from '../auth/index.js';
import {
  IMAGE_FILES,
  type ImageFile,
  type ImageSpec,
  type ImageStatus,
  imageKind,
  imagePhase,
  Problem,
} from '../model/index.js';
import type { Store } from '../store/index.js';
import { type OciLayout, verifyOciLayout } from './oci-layout.js';
import { render } from './render.js';
import type { ResourceService } from './service.js';

export class ImageFiles {
  constructor(
    private readonly store: Store,
    private readonly resources: ResourceService,
    private readonly dir: string,
    private readonly maxBytes: number,
  ) {}

  pathOf(sha256: string): string {
    return join(this.dir, 'sha256', sha256);
  }

  private checkFileName(file: string): asserts file is ImageFile {
    if (!(IMAGE_FILES as readonly string[]).includes(file))
      throw Problem.invalid([{ path: 'file', message: `must be one of: ${IMAGE_FILES.join(', ')}` }]);
  }

  async upload(p: Principal, project: string, name: string, file: string, body: Readable) {
    this.checkFileName(file);
    const image = await this.resources.readVisible(this.store, p, imageKind, project, name);
    if (!canWrite(p, imageKind, 'update', project, name))
      throw new Problem('forbidden', `user '${p.user}' may not upload to image '${project}/${name}'`);
    const declared = (image.spec as ImageSpec).files[file];
    if (!declared)
      throw Problem.invalid([{ path: 'file', message: `image '${name}' declares no ${file} file` }]);

    await fs.mkdir(join(this.dir, 'tmp'), { recursive: true, mode: 0o700 });
    await fs.mkdir(join(this.dir, 'sha256'), { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, 'tmp', randomUUID());
    const hash = createHash('sha256');
    let size = 0;
    let oci: OciLayout | undefined;
    const limit = this.maxBytes;
    try {
      await pipeline(
        body,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            size += chunk.length;
            if (size > limit)
              throw new Problem('payload_too_large', `image files are limited to ${limit} bytes`);
            hash.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(tmp, { mode: 0o600 }),
      );
      const actual = hash.digest('hex');
      if (actual !== declared.sha256)
        throw new Problem(
          'checksum_mismatch',
          `uploaded ${file} has sha256 ${actual}, but image '${name}' declares ${declared.sha256}; nothing was stored`,
        );
      // A container image is kept only when its layout holds together: blobs, tag, manifest.
      if (file === 'oci') oci = await verifyOciLayout(tmp, (image.spec as ImageSpec).ref);
      await fs.rename(tmp, this.pathOf(actual));
    } finally {
      await fs.rm(tmp, { force: true });
    }

    return this.store.transaction(async (tx) => {
      const current = await tx.get('images', project, name);
      const spec = current?.spec as ImageSpec | undefined;
      if (!current || spec?.files[file]?.sha256 !== declared.sha256)
        throw new Problem('conflict', `image '${project}/${name}' changed during the upload; upload again`);
      const old = current.status as ImageStatus;
      const files = {
        ...old.files,
        [file]: { sha256: declared.sha256, size, uploadedAt: new Date().toISOString() },
      };
      const status: ImageStatus = {
        phase: imagePhase(spec, files),
        files,
        ...(oci ? { oci } : file !== 'oci' && old.oci ? { oci: old.oci } : {}),
      };
      const res = await tx.update('images', current.uid, undefined, { status, bumpGeneration: false });
      if (!res.ok) throw new Problem('conflict', `image '${project}/${name}' was deleted during the upload`);
      const after = render(imageKind, res.resource);
      await tx.appendEvent({
        actor: p.user,
        action: 'upload',
        kind: 'Image',
        parent: project,
        name,
        provider: null,
        project,
        before: render(imageKind, current),
        after,
      });
      return after;
    });
  }

  /** Opens an uploaded file for reading; the caller streams it. */
  async open(p: Principal, project: string, name: string, file: string) {
    this.checkFileName(file);
    const image = await this.resources.readVisible(this.store, p, imageKind, project, name);
    const uploaded = (image.status as ImageStatus).files[file];
    if (!uploaded) throw new Problem('not_found', `image '${project}/${name}' has no uploaded ${file} file`);
    return {
      stream: createReadStream(this.pathOf(uploaded.sha256)),
      size: uploaded.size,
      sha256: uploaded.sha256,
    };
  }
}
