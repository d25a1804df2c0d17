// Image files cached on the node by sha256, fetched from the control plane's gateway
// with the node's credential and verified before use.
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { AGENT_IMAGES_PATH } from '../protocol/index.js';
import type { AgentIdentity } from './local-state.js';
import { pinnedRequest, readAll } from './tls.js';

export class ImageCache {
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(private readonly dir: string) {}

  pathOf(sha256: string): string {
    return join(this.dir, 'sha256', sha256);
  }

  /** The local path of a verified file, downloading it first if needed. */
  ensure(id: AgentIdentity, sha256: string): Promise<string> {
    let p = this.inflight.get(sha256);
    if (!p) {
      p = this.fetch(id, sha256).finally(() => this.inflight.delete(sha256));
      this.inflight.set(sha256, p);
    }
    return p;
  }

  private async fetch(id: AgentIdentity, sha256: string): Promise<string> {
    const path = this.pathOf(sha256);
    if (
      await fs.stat(path).then(
        () => true,
        () => false,
      )
    )
      return path;
    await fs.mkdir(join(this.dir, 'sha256'), { recursive: true });
    const res = await pinnedRequest(`${id.server}${AGENT_IMAGES_PATH}/${sha256}`, id.caPem, {
      headers: { authorization: `Bearer ${id.credential}` },
    });
    if (res.status !== 200) {
      const text = await readAll(res.body);
      let msg = text;
      try {
        msg = JSON.parse(text).error.message;
      } catch {}
      throw new Error(`cannot fetch image file ${sha256.slice(0, 12)}…: ${msg || `HTTP ${res.status}`}`);
    }
    const tmp = join(this.dir, `.${randomUUID()}`);
    const hash = createHash('sha256');
    try {
      await pipeline(
        res.body,
        async function* (src: AsyncIterable<Buffer>) {
          for await (const c of src) {
            hash.update(c);
            yield c;
          }
        },
        createWriteStream(tmp),
      );
      const actual = hash.digest('hex');
      if (actual !== sha256)
        throw new Error(`image file failed verification: expected sha256 ${sha256}, got ${actual}`);
      await fs.rename(tmp, path);
      return path;
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }
}
