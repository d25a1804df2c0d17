// Reading and deleting an object of any kind through the typed client: each kind's item
// path in the API, checked against the generated OpenAPI types at build time (a kind
// whose route moved breaks the build, not a user's command).
import type { paths } from '../api/client/index.js';
import type { KindDef } from '../model/index.js';
import { allPages, answer, apiOf } from './client.js';
import type { Connection } from './config.js';

const ITEM_PATHS = {
  Provider: '/v1/providers/{name}',
  Site: '/v1/providers/{provider}/sites/{name}',
  Node: '/v1/providers/{provider}/nodes/{name}',
  Project: '/v1/projects/{name}',
  User: '/v1/users/{name}',
  Image: '/v1/projects/{project}/images/{name}',
  Workload: '/v1/projects/{project}/workloads/{name}',
  Migration: '/v1/projects/{project}/migrations/{name}',
  SwitchingRequest: '/v1/projects/{project}/switchings/{name}',
} as const satisfies Record<string, keyof paths>;

const LIST_PATHS = {
  Provider: '/v1/providers',
  Site: '/v1/sites',
  Node: '/v1/nodes',
  Project: '/v1/projects',
  User: '/v1/users',
  Image: '/v1/images',
  Workload: '/v1/workloads',
  Migration: '/v1/migrations',
  SwitchingRequest: '/v1/switchings',
} as const satisfies Record<keyof typeof ITEM_PATHS, keyof paths>;

type ItemPath = (typeof ITEM_PATHS)[keyof typeof ITEM_PATHS];
/** An object of some kind, as the API answers it. */
export type KindObject = paths[ItemPath]['get']['responses'][200]['content']['application/json'];

function pathOf<T extends Record<string, string>>(table: T, def: KindDef): T[keyof T] {
  const path = table[def.kind as keyof T];
  if (!path) throw new Error(`no API path known for kind ${def.kind}`);
  return path;
}

/** Every object of a kind the user may see, page by page (`query`: the owner and filter columns). */
export async function listObjects(conn: Connection, def: KindDef, query: Record<string, string>) {
  return allPages<KindObject>((cursor) =>
    answer(
      conn,
      apiOf(conn).GET(pathOf(LIST_PATHS, def), {
        params: { query: { ...query, limit: 1000, ...(cursor ? { cursor } : {}) } },
      }),
    ),
  );
}

/** `parent`: the owning provider or project ('' for kinds without an owner). */
export function getObject(conn: Connection, def: KindDef, parent: string, name: string): Promise<KindObject> {
  return answer(
    conn,
    apiOf(conn).GET(pathOf(ITEM_PATHS, def), {
      params: { path: { provider: parent, project: parent, name } },
    }),
  );
}

export function deleteObject(conn: Connection, def: KindDef, parent: string, name: string) {
  return answer(
    conn,
    apiOf(conn).DELETE(pathOf(ITEM_PATHS, def), {
      params: { path: { provider: parent, project: parent, name } },
    }),
  );
}
