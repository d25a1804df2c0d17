// The three patch formats kubectl sends, applied to a JSON object: JSON merge patch
// (RFC 7386), JSON patch (RFC 6902) and Kubernetes' strategic merge patch — a merge
// patch whose lists of objects with a merge key (containers by name, ports by
// containerPort …) merge element by element, with its directives ($patch,
// $setElementOrder, $deleteFromPrimitiveList, $retainKeys).

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

export class PatchError extends Error {}

const isObject = (v: unknown): v is JsonObject => !!v && typeof v === 'object' && !Array.isArray(v);

/** RFC 7386: objects merge, null removes, everything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

/** RFC 6902 (add, remove, replace, move, copy, test). */
export function jsonPatch(target: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch is a list of operations');
  let doc = structuredClone(target);
  const parse = (path: unknown): string[] => {
    if (typeof path !== 'string' || (path !== '' && !path.startsWith('/')))
      throw new PatchError(`invalid JSON pointer ${JSON.stringify(path)}`);
    return path === ''
      ? []
      : path
          .slice(1)
          .split('/')
          .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  };
  const parentOf = (parts: string[]): [Json, string] => {
    let cur: Json = doc;
    for (const p of parts.slice(0, -1)) {
      const next: Json | undefined = Array.isArray(cur) ? cur[Number(p)] : isObject(cur) ? cur[p] : undefined;
      if (next === undefined) throw new PatchError(`path /${parts.join('/')} does not exist`);
      cur = next;
    }
    return [cur, parts.at(-1)!];
  };
  const get = (parts: string[]): Json => {
    if (!parts.length) return doc;
    const [parent, key] = parentOf(parts);
    const v = Array.isArray(parent) ? parent[Number(key)] : isObject(parent) ? parent[key] : undefined;
    if (v === undefined) throw new PatchError(`path /${parts.join('/')} does not exist`);
    return v;
  };
  const remove = (parts: string[]): Json => {
    const v = get(parts);
    const [parent, key] = parentOf(parts);
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete (parent as JsonObject)[key];
    return v;
  };
  const add = (parts: string[], value: Json) => {
    if (!parts.length) {
      doc = value;
      return;
    }
    const [parent, key] = parentOf(parts);
    if (Array.isArray(parent)) {
      const i = key === '-' ? parent.length : Number(key);
      if (!Number.isInteger(i) || i < 0 || i > parent.length)
        throw new PatchError(`index ${key} out of range`);
      parent.splice(i, 0, value);
    } else if (isObject(parent)) parent[key] = value;
    else throw new PatchError(`path /${parts.join('/')} has no parent object`);
  };
  for (const [i, op] of ops.entries()) {
    if (!isObject(op)) throw new PatchError(`operation ${i} is not an object`);
    const path = parse(op.path);
    switch (op.op) {
      case 'add':
        add(path, structuredClone(op.value ?? null));
        break;
      case 'remove':
        remove(path);
        break;
      case 'replace':
        remove(path);
        add(path, structuredClone(op.value ?? null));
        break;
      case 'move':
        add(path, remove(parse(op.from)));
        break;
      case 'copy':
        add(path, structuredClone(get(parse(op.from))));
        break;
      case 'test':
        if (JSON.stringify(get(path)) !== JSON.stringify(op.value))
          throw new PatchError(`test failed at ${String(op.path)}`);
        break;
      default:
        throw new PatchError(`operation ${i}: unknown op ${JSON.stringify(op.op)}`);
    }
  }
  return doc;
}

/** Merge keys of lists, by the list's field name (the ones Continuum's kinds have). */
export type MergeKeys = Readonly<Record<string, string>>;

/** The merge keys of the pod template's lists, as Kubernetes declares them. */
export const POD_MERGE_KEYS: MergeKeys = {
  containers: 'name',
  env: 'name',
  ports: 'containerPort',
  volumeMounts: 'mountPath',
  tolerations: 'key',
};

/** A strategic merge patch: a merge patch, but lists with a merge key merge by it. */
export function strategicMergePatch(target: Json, patch: Json, keys: MergeKeys = POD_MERGE_KEYS): Json {
  if (!isObject(patch)) return patch;
  if (patch.$patch === 'replace') {
    const { $patch: _, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch.$patch === 'delete') return null;
  let out: JsonObject = isObject(target) ? { ...target } : {};
  const retain = patch.$retainKeys;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const drop = new Set((Array.isArray(v) ? v : []).map((x) => JSON.stringify(x)));
      const cur = out[field];
      if (Array.isArray(cur)) out[field] = cur.filter((x) => !drop.has(JSON.stringify(x)));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const key = keys[k];
    if (Array.isArray(v) && key && v.every(isObject)) out[k] = mergeList(out[k], v, key, keys);
    else if (isObject(v)) {
      const merged = strategicMergePatch(out[k] ?? null, v, keys);
      if (merged === null) delete out[k];
      else out[k] = merged;
    } else out[k] = Array.isArray(v) ? stripDirectives(v) : v;
  }
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith('$setElementOrder/') || !Array.isArray(v)) continue;
    const field = k.slice('$setElementOrder/'.length);
    const key = keys[field];
    const cur = out[field];
    if (!key || !Array.isArray(cur)) continue;
    const rank = new Map(v.map((e, i) => [JSON.stringify(isObject(e) ? e[key] : e), i]));
    out[field] = [...cur].sort(
      (a, b) =>
        (rank.get(JSON.stringify(isObject(a) ? a[key] : a)) ?? rank.size) -
        (rank.get(JSON.stringify(isObject(b) ? b[key] : b)) ?? rank.size),
    );
  }
  if (Array.isArray(retain)) {
    const keep = new Set(retain.filter((x): x is string => typeof x === 'string'));
    out = Object.fromEntries(Object.entries(out).filter(([k]) => keep.has(k)));
  }
  return out;
}

function mergeList(current: Json | undefined, patch: JsonObject[], key: string, keys: MergeKeys): Json[] {
  if (patch.some((e) => e.$patch === 'replace'))
    return patch.filter((e) => e.$patch !== 'replace').map(stripDirectives);
  const out: Json[] = Array.isArray(current) ? [...current] : [];
  const indexOf = (k: Json | undefined) =>
    out.findIndex((e) => isObject(e) && JSON.stringify(e[key]) === JSON.stringify(k));
  for (const e of patch) {
    const i = indexOf(e[key]);
    if (e.$patch === 'delete') {
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i >= 0) out[i] = strategicMergePatch(out[i]!, e, keys);
    else out.push(stripDirectives(e));
  }
  return out;
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([k]) => !k.startsWith('$'))
      .map(([k, x]) => [k, stripDirectives(x)]),
  );
}

/**
 * Server-side apply without field ownership by other managers: the applied
 * configuration is merged in, and what the same manager applied before but no longer
 * does is removed (`previous` is that manager's last configuration).
 */
export function serverSideApply(
  current: Json,
  config: Json,
  previous: Json | undefined,
  keys = POD_MERGE_KEYS,
): Json {
  const removal = previous === undefined ? {} : removedBetween(previous, config, keys);
  return strategicMergePatch(strategicMergePatch(current, removal, keys), config, keys);
}

/** A strategic merge patch that removes what `before` set and `after` no longer does. */
function removedBetween(before: Json, after: Json, keys: MergeKeys): JsonObject {
  const out: JsonObject = {};
  if (!isObject(before)) return out;
  const next = isObject(after) ? after : {};
  for (const [k, v] of Object.entries(before)) {
    if (!(k in next)) {
      out[k] = null;
      continue;
    }
    const key = keys[k];
    const w = next[k]!;
    if (isObject(v) && isObject(w)) {
      const sub = removedBetween(v, w, keys);
      if (Object.keys(sub).length) out[k] = sub;
    } else if (key && Array.isArray(v) && Array.isArray(w)) {
      const list: JsonObject[] = [];
      for (const e of v) {
        if (!isObject(e)) continue;
        const match = w.find((x) => isObject(x) && JSON.stringify(x[key]) === JSON.stringify(e[key]));
        if (!match) list.push({ [key]: e[key] ?? null, $patch: 'delete' });
        else {
          const sub = removedBetween(e, match, keys);
          if (Object.keys(sub).length) list.push({ ...sub, [key]: e[key] ?? null });
        }
      }
      if (list.length) out[k] = list;
    }
  }
  return out;
}
