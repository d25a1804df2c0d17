// A file's SHA-256 and size, read as a stream: what exports, erasures and their
// certificates record (the control plane's side and the agent's alike).
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import type { ErasedArtefact } from './index.js';

export async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const d of createReadStream(path)) {
    hash.update(d as Buffer);
    bytes += (d as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Hashes a file, then deletes it: what an erasure certificate lists (undefined: no such file). */
export async function eraseFile(
  path: string,
  kind: string,
  name: string,
): Promise<ErasedArtefact | undefined> {
  const h = await hashFile(path).catch(() => undefined);
  if (!h) return undefined;
  await fs.rm(path, { force: true });
  return { kind, name, ...h, deletedAt: new Date().toISOString() };
}
