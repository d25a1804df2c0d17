import type { KindDef } from '../kind.js';
import { imageKind } from './image.js';
import { migrationKind } from './migration.js';
import { nodeKind } from './node.js';
import { projectKind } from './project.js';
import { providerKind } from './provider.js';
import { siteKind } from './site.js';
import { switchingKind } from './switching.js';
import { userKind } from './user.js';
import { workloadKind } from './workload.js';

/** Every kind, in dependency order: a kind's parent comes before it (apply relies on this). */
export const KINDS: readonly KindDef[] = [
  providerKind,
  siteKind,
  nodeKind,
  projectKind,
  userKind,
  imageKind,
  workloadKind,
  migrationKind,
  switchingKind,
];

const byName = new Map<string, KindDef>();
for (const k of KINDS) {
  byName.set(k.kind.toLowerCase(), k);
  for (const a of k.aliases) byName.set(a, k);
}

/** Finds a kind by its name (`Site`), plural or alias (`sites`, `site`), case-insensitively. */
export function findKind(name: string): KindDef | undefined {
  return byName.get(name.toLowerCase());
}
