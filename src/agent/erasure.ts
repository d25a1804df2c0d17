// A switching's erasure on this node: everything a project held here goes — its
// instances' disks, cloud-init seeds, console logs and metadata, and its image files that
// no other instance here uses — each hashed before it is deleted, so that the control
// plane can list it in the erasure certificate with its checksum and deletion time.
import { promises as fs } from 'node:fs';
import { hashFile } from '../protocol/file-hash.js';
import type { AgentRequests, DesiredInstance, ErasedArtefact } from '../protocol/index.js';
import type { Runtime } from '../runtimes/index.js';

type Params = AgentRequests['erase']['params'];
type Result = AgentRequests['erase']['result'];

function kindOf(file: string): string {
  if (/^disk\.qcow2$|disk/.test(file)) return 'disk';
  if (/^seed/.test(file)) return 'cloud-init';
  if (/console/.test(file)) return 'console-log';
  if (/\.json$|\.pid$/.test(file)) return 'metadata';
  return 'file';
}

export async function eraseHere(
  deps: {
    runtime: Runtime;
    /** The cached image file of a checksum. */
    imagePath(sha256: string): string;
    /** What this node runs now, erased instances left out. */
    instances(): DesiredInstance[];
    log(msg: string): void;
  },
  p: Params,
): Promise<Result> {
  const artefacts: ErasedArtefact[] = [];
  const absent: string[] = [];
  const present = new Set(await deps.runtime.list());
  for (const uid of p.uids) {
    if (!present.has(uid)) {
      absent.push(uid);
      continue;
    }
    const files = (await deps.runtime.files?.(uid)) ?? [];
    const hashed: Omit<ErasedArtefact, 'deletedAt'>[] = [];
    for (const f of files) {
      const h = await hashFile(f.path).catch(() => undefined);
      if (h) hashed.push({ kind: kindOf(f.name), name: `${uid}/${f.name}`, ...h });
    }
    await deps.runtime.delete(uid);
    const deletedAt = new Date().toISOString();
    for (const h of hashed) artefacts.push({ ...h, deletedAt });
    deps.log(`erasure of project ${p.project}: instance ${uid} deleted (${hashed.length} files)`);
  }
  const inUse = new Set<string>();
  for (const d of deps.instances())
    for (const f of Object.values(d.spec.image.files)) if (f) inUse.add(f.sha256);
  const kept: Result['kept'] = [];
  for (const sha of p.images) {
    const path = deps.imagePath(sha);
    const h = await hashFile(path).catch(() => undefined);
    if (!h) continue;
    if (inUse.has(sha)) {
      kept.push({ sha256: sha, reason: 'used by another instance on this node (shared content)' });
      continue;
    }
    await fs.rm(path, { force: true });
    artefacts.push({ kind: 'image', name: sha, ...h, deletedAt: new Date().toISOString() });
  }
  return { artefacts, absent, kept };
}
