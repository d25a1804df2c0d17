// Image content: uploads stream to a temporary file while being hashed, and are kept
// under images/sha256/<hex> only when the hash matches what the image declares.
//
// On PostgreSQL every control-plane replica must reach every file: the content is also
// stored in the database in chunks (image_chunks), and a replica that lacks a file
// streams it from there into its data directory (checked against its hash) the first
// time it serves it. A cached file whose chunks are gone (erased) is removed when next
// asked for, and by a sweep every minute. SQLite keeps files in the data directory only.
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
import { eraseFile } from '../protocol/file-hash.js';
import type { ErasedArtefact } from '../protocol/index.js';
import type { Store } from '../store/index.js';
import { type OciLayout, verifyOciLayout } from './oci-layout.js';
import { render } from './render.js';
import type { ResourceService } from './service.js';

/** Bytes per row of image_chunks. */
export const IMAGE_CHUNK_BYTES = 1024 * 1024;

export class ImageFiles {
  /** Files being fetched from the database, so that two readers share one fetch. */
  private readonly fetching = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly store: Store,
    private readonly resources: ResourceService,
    private readonly dir: string,
    private readonly maxBytes: number,
  ) {}

  pathOf(sha256: string): string {
    return join(this.dir, 'sha256', sha256);
  }

  /** Content in the database as well as in files (PostgreSQL: replicas share it). */
  private get shared(): boolean {
    return this.store.engine === 'postgres';
  }

  /**
   * The path of a file's content on this replica, fetched from the database when this
   * replica does not have it yet; undefined when it was never uploaded or was erased.
   */
  async local(sha256: string): Promise<string | undefined> {
    const path = this.pathOf(sha256);
    const here = await fs.stat(path).then(
      () => true,
      () => false,
    );
    if (!this.shared) return here ? path : undefined;
    const stored = await this.store.kysely
      .selectFrom('image_chunks')
      .select('idx')
      .where('sha256', '=', sha256)
      .where('idx', '=', 0)
      .executeTakeFirst();
    if (!stored) {
      // Erased (by another replica): this copy goes too.
      if (here) await fs.rm(path, { force: true });
      return undefined;
    }
    if (here) return path;
    let p = this.fetching.get(sha256);
    if (!p) {
      p = this.fetch(sha256).finally(() => this.fetching.delete(sha256));
      this.fetching.set(sha256, p);
    }
    return p;
  }

  /** Streams a file's chunks from the database into the data directory, checking its hash. */
  private async fetch(sha256: string): Promise<string | undefined> {
    await fs.mkdir(join(this.dir, 'tmp'), { recursive: true, mode: 0o700 });
    await fs.mkdir(join(this.dir, 'sha256'), { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, 'tmp', randomUUID());
    const hash = createHash('sha256');
    const store = this.store;
    try {
      await pipeline(
        async function* () {
          for (let idx = 0; ; idx++) {
            const row = await store.kysely
              .selectFrom('image_chunks')
              .select('data')
              .where('sha256', '=', sha256)
              .where('idx', '=', idx)
              .executeTakeFirst();
            if (!row) return;
            const chunk = Buffer.from(row.data as Uint8Array);
            hash.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(tmp, { mode: 0o600 }),
      );
      const actual = hash.digest('hex');
      if (actual !== sha256)
        throw new Error(`image file ${sha256} read from the database hashes to ${actual}: not used`);
      await fs.rename(tmp, this.pathOf(sha256));
      return this.pathOf(sha256);
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  /** Copies a verified file into the database, chunk by chunk (PostgreSQL); true when it was not there. */
  private async share(sha256: string, path: string): Promise<boolean> {
    if (!this.shared) return false;
    const have = await this.store.kysely
      .selectFrom('image_chunks')
      .select((eb) => eb.fn.count('idx').as('n'))
      .where('sha256', '=', sha256)
      .executeTakeFirst();
    const size = (await fs.stat(path)).size;
    if (Number(have?.n ?? 0) === Math.max(1, Math.ceil(size / IMAGE_CHUNK_BYTES))) return false;
    await this.store.kysely.transaction().execute(async (trx) => {
      await trx.deleteFrom('image_chunks').where('sha256', '=', sha256).execute();
      let idx = 0;
      let wrote = false;
      for await (const chunk of createReadStream(path, { highWaterMark: IMAGE_CHUNK_BYTES })) {
        await trx
          .insertInto('image_chunks')
          .values({ sha256, idx: idx++, data: chunk as Buffer })
          .execute();
        wrote = true;
      }
      // An empty file is one empty chunk: its presence says the file exists.
      if (!wrote)
        await trx
          .insertInto('image_chunks')
          .values({ sha256, idx: 0, data: Buffer.alloc(0) })
          .execute();
    });
    return true;
  }

  /**
   * A verified file put in this data directory by another path (an import): shared too.
   * True when the database did not have it (drop takes it back).
   */
  async adopt(sha256: string): Promise<boolean> {
    return this.share(sha256, this.pathOf(sha256));
  }

  /** Takes back what adopt shared (the import that placed it failed). */
  async drop(sha256: string): Promise<void> {
    if (this.shared)
      await this.store.kysely.deleteFrom('image_chunks').where('sha256', '=', sha256).execute();
  }

  /** Erases a file's content: this replica's copy (hashed for the certificate) and the database's chunks. */
  async erase(sha256: string): Promise<ErasedArtefact | undefined> {
    const path = await this.local(sha256).catch(() => undefined);
    const erased = path ? await eraseFile(path, 'image', sha256) : undefined;
    if (this.shared)
      await this.store.kysely.deleteFrom('image_chunks').where('sha256', '=', sha256).execute();
    return erased;
  }

  /** Removes copies in this data directory whose content was erased elsewhere (PostgreSQL). */
  async sweep(): Promise<number> {
    if (!this.shared) return 0;
    const names = await fs.readdir(join(this.dir, 'sha256')).catch(() => [] as string[]);
    let removed = 0;
    for (const sha of names) {
      if (!/^[0-9a-f]{64}$/.test(sha)) continue;
      if ((await this.local(sha)) === undefined) removed++;
    }
    return removed;
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
      await this.share(actual, this.pathOf(actual));
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
    const path = await this.local(uploaded.sha256);
    if (!path)
      throw new Problem('not_found', `the content of image '${project}/${name}' ${file} is gone (erased)`);
    return {
      stream: createReadStream(path),
      size: uploaded.size,
      sha256: uploaded.sha256,
    };
  }
}
