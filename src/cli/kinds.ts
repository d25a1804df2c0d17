// Mapping what a user types (`sites`, `wl`, `sovcloud/fra-1`) to API paths.
import { findKind, KINDS, type KindDef } from '../model/index.js';
import { CliError } from './errors.js';

export function kindArg(name: string): KindDef {
  const def = findKind(name);
  if (!def) {
    const known = [...KINDS.map((k) => k.plural), 'instances', 'replicas'].join(', ');
    throw new CliError(`unknown kind '${name}' (one of ${known})`);
  }
  return def;
}

export interface Scope {
  provider?: string;
  project?: string;
}

/** Splits `owner/name` and resolves the owner from flags or the default project. */
export function target(def: KindDef, nameArg: string, scope: Scope): { parent: string; name: string } {
  const slash = nameArg.indexOf('/');
  if (slash >= 0) {
    if (!def.parent)
      throw new CliError(`${def.plural} are not owned by a provider or project; use just the name`);
    return { parent: nameArg.slice(0, slash), name: nameArg.slice(slash + 1) };
  }
  if (!def.parent) return { parent: '', name: nameArg };
  const parent = scope[def.parent];
  if (!parent)
    throw new CliError(
      `which ${def.parent}? write ${def.parent.toUpperCase()}/${nameArg} or pass --${def.parent}`,
    );
  return { parent, name: nameArg };
}
