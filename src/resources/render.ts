// Turns stored rows into the wire shape, and back into the pieces a write needs.
import { API_VERSION, type KindDef, type ResourceObject } from '../model/index.js';
import type { StoredResource, StoredText } from '../store/index.js';

export function render(def: KindDef, r: StoredResource): ResourceObject {
  return {
    apiVersion: API_VERSION,
    kind: def.kind,
    metadata: {
      name: r.name,
      ...(def.parent ? { [def.parent]: r.parent } : {}),
      uid: r.uid,
      generation: r.generation,
      labels: { ...r.labels },
      ...(Object.keys(r.annotations).length ? { annotations: { ...r.annotations } } : {}),
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
      createdBy: r.createdBy,
    },
    spec: r.spec,
    status: r.status,
  };
}

/**
 * render's JSON text, written around the stored JSON fields without parsing them: a list
 * of 100 workloads is about 130 KB that the store read as text and the client reads as
 * text. The same fields in the same order as render gives.
 */
export function renderText(def: KindDef, r: StoredText): string {
  const q = JSON.stringify;
  const annotations =
    r.annotations && !EMPTY_OBJECT.test(r.annotations) ? `,"annotations":${r.annotations}` : '';
  return `{"apiVersion":${q(API_VERSION)},"kind":${q(def.kind)},"metadata":{"name":${q(r.name)}${
    def.parent ? `,${q(def.parent)}:${q(r.parent)}` : ''
  },"uid":${q(r.uid)},"generation":${r.generation},"labels":${r.labels}${annotations},"createdAt":${q(
    r.createdAt,
  )},"updatedAt":${q(r.updatedAt)},"createdBy":${q(r.createdBy)}},"spec":${r.spec},"status":${r.status}}`;
}

const EMPTY_OBJECT = /^\s*\{\s*\}\s*$/;

/** JSON with object keys sorted, so that equal documents compare equal as strings. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, v[k]]),
        )
      : v,
  );
}

export function encodeCursor(r: { parent: string; name: string }): string {
  return Buffer.from(JSON.stringify([r.parent, r.name])).toString('base64url');
}

export function decodeCursor(cursor: string): { parent: string; name: string } | undefined {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string')
      return { parent: v[0], name: v[1] };
  } catch {}
  return undefined;
}

/** The provider and project an object belongs to, for scoping audit events. */
export function eventScopeOf(def: KindDef, parent: string, name: string) {
  if (def.kind === 'Provider') return { provider: name, project: null };
  if (def.kind === 'Project') return { provider: null, project: name };
  if (def.parent === 'provider') return { provider: parent, project: null };
  if (def.parent === 'project') return { provider: null, project: parent };
  return { provider: null, project: null };
}
