// A file's SHA-256 and size, read as a stream: what exports, erasures and their
// certificates record (the control plane's side and the agent's alike).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const d of createReadStream(path)) {
    hash.update(d as Buffer);
    bytes += (d as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}
