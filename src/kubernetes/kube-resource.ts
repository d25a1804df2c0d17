// What the Kubernetes facade's resources share: the resource interface, Kubernetes
// errors, and the helpers that read Continuum's objects with the caller's principal.
import type { Principal } from '../auth/index.js';
import { type KindDef, Problem, projectKind, type ResourceObject, workloadKind } from '../model/index.js';
import type { FieldError } from '../model/problem.js';
import type { ResourceService } from '../resources/index.js';
import type { InstanceRecord, Store } from '../store/index.js';
import type { KubeObject } from './objects.js';

export interface Column {
  name: string;
  type?: 'string' | 'integer' | 'number' | 'date';
  format?: string;
  description?: string;
  /** 0: always shown; 1: with -o wide. */
  priority?: number;
  cell(o: KubeObject): unknown;
}

export interface Scope {
  p: Principal;
  resources: ResourceService;
  store: Store;
}

export interface KubeResource {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  columns: Column[];
  list(s: Scope, namespace: string | undefined): Promise<KubeObject[]>;
  get(s: Scope, namespace: string | undefined, name: string): Promise<KubeObject>;
  /** Writable resources: the object as written, from a full object (create and replace). */
  create?(s: Scope, namespace: string | undefined, body: unknown, dryRun: boolean): Promise<KubeObject>;
  replace?(
    s: Scope,
    namespace: string | undefined,
    name: string,
    body: unknown,
    dryRun: boolean,
  ): Promise<KubeObject>;
  remove?(s: Scope, namespace: string | undefined, name: string): Promise<KubeObject>;
  /** Lists with merge keys for strategic merge patches. */
  mergeKeys?: Record<string, string>;
  /** The configuration a server-side apply manager applied last (kept by the facade). */
  appliedBy?(s: Scope, namespace: string | undefined, name: string, manager: string): Promise<unknown>;
}

/** A Kubernetes error: kubectl prints `Error from server (<reason>): <message>`. */
export class KubeError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: {
      name?: string;
      group?: string;
      kind?: string;
      causes?: { reason: string; message: string; field: string }[];
    },
  ) {
    super(message);
  }
}

const PROBLEM_REASONS: Record<string, [number, string]> = {
  not_found: [404, 'NotFound'],
  parent_not_found: [404, 'NotFound'],
  already_exists: [409, 'AlreadyExists'],
  conflict: [409, 'Conflict'],
  has_dependents: [409, 'Conflict'],
  forbidden: [403, 'Forbidden'],
  quota_exceeded: [403, 'Forbidden'],
  unauthenticated: [401, 'Unauthorized'],
  method_not_allowed: [405, 'MethodNotAllowed'],
  too_many_requests: [429, 'TooManyRequests'],
  node_unreachable: [503, 'ServiceUnavailable'],
  payload_too_large: [413, 'RequestEntityTooLarge'],
  unsupported_media_type: [415, 'UnsupportedMediaType'],
};

/** The Kubernetes form of a Continuum Problem about `kind "name"`. */
export function kubeErrorOf(
  err: Problem,
  what: { kind: string; group: string; name?: string; plural: string },
): KubeError {
  const qualified = what.group ? `${what.plural}.${what.group}` : what.plural;
  if (err.code === 'validation_failed' || err.code === 'invalid_json' || err.code === 'invalid_yaml')
    return invalid(what, err.details.length ? err.details : [{ path: '', message: err.message }]);
  const [code, reason] = PROBLEM_REASONS[err.code] ?? [500, 'InternalError'];
  const project = /^project '([^']+)' not found$/.exec(err.message);
  const message = project
    ? `namespaces "${project[1]}" not found`
    : reason === 'NotFound' && what.name && err.code === 'not_found'
      ? `${qualified} "${what.name}" not found`
      : err.message;
  return new KubeError(code, reason, message, {
    ...(what.name ? { name: what.name } : {}),
    group: what.group,
    kind: what.plural,
  });
}

/** 400 for unknown fields (strict decoding, as the API server says it); 422 for bad values. */
export function invalid(
  what: { kind: string; group: string; name?: string },
  errors: readonly FieldError[],
): KubeError {
  const unknown = errors.filter((e) => e.message.startsWith("unknown field '"));
  if (unknown.length) {
    const fields = unknown.map((e) => {
      const field = e.message.slice("unknown field '".length, -1);
      return `unknown field "${e.path ? `${e.path}.${field}` : field}"`;
    });
    return new KubeError(
      400,
      'BadRequest',
      `${what.kind} in version "v1" cannot be handled as a ${what.kind}: strict decoding error: ${fields.join(', ')}`,
    );
  }
  const kindName = what.group ? `${what.kind}.${what.group}` : what.kind;
  const list = errors.map((e) => `${e.path ? `${e.path}: ` : ''}${e.message}`);
  return new KubeError(
    422,
    'Invalid',
    `${kindName} "${what.name ?? ''}" is invalid: ${list.length === 1 ? list[0] : `[${list.join(', ')}]`}`,
    {
      ...(what.name ? { name: what.name } : {}),
      group: what.group,
      kind: what.kind,
      causes: errors.map((e) => ({ reason: 'FieldValueInvalid', message: e.message, field: e.path })),
    },
  );
}

/** Every visible object of a kind (all pages). */
export async function listAll(s: Scope, def: KindDef, parent?: string): Promise<ResourceObject[]> {
  const out: ResourceObject[] = [];
  let cursor: string | undefined;
  do {
    const page = await s.resources.list(s.p, def, {
      limit: 1000,
      ...(parent !== undefined ? { parent } : {}),
      ...(cursor ? { cursor } : {}),
    });
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

export const nameColumn: Column = {
  name: 'Name',
  type: 'string',
  format: 'name',
  cell: (o) => o.metadata.name,
};
export const ageColumn: Column = {
  name: 'Age',
  type: 'string',
  cell: (o) => humanAge(o.metadata.creationTimestamp),
};

/** Kubernetes' short ages: 45s, 3m12s, 5h, 2d4h, 90d. */
export function humanAge(ts: string | undefined, now = Date.now()): string {
  if (!ts) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(ts)) / 1000));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const d = Math.floor(h / 24);
  if (s < 120) return `${s}s`;
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  if (h < 3) return `${m}m`;
  if (h < 8) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  if (h < 48) return `${h}h`;
  if (d < 8) return `${d}d${h % 24 ? `${h % 24}h` : ''}`;
  return `${d}d`;
}

export async function namespaceRequired(ns: string | undefined): Promise<string> {
  if (!ns) throw new KubeError(400, 'BadRequest', 'a namespace (a Continuum project) is required');
  return ns;
}

/** Container workloads of a project (or of every visible project) with their instances. */
export async function containerWorkloads(s: Scope, ns: string | undefined, opts: { deleted?: boolean } = {}) {
  const projects = ns ? [ns] : (await listAll(s, projectKind)).map((p) => p.metadata.name);
  const out: { w: ResourceObject; instances: InstanceRecord[] }[] = [];
  for (const project of projects) {
    const all = await listAll(s, workloadKind, project);
    const workloads = all.filter((w) => w.spec.kind === 'container');
    const byWorkload = new Map<string, InstanceRecord[]>();
    for (const i of await s.store.listInstances({ project }))
      byWorkload.set(i.workload, [...(byWorkload.get(i.workload) ?? []), i]);
    for (const w of workloads) out.push({ w, instances: byWorkload.get(w.metadata.name) ?? [] });
    if (!opts.deleted) continue;
    // A deleted Deployment's containers, until their nodes have removed them (Terminating pods).
    const known = new Set(all.map((w) => w.metadata.name));
    for (const [name, instances] of byWorkload)
      if (!known.has(name) && instances.some((i) => i.spec.image.format === 'oci'))
        out.push({ w: deletedWorkload(project, name, instances), instances });
  }
  return out;
}

/** Stands in for a workload already deleted, so that its last instances render as pods. */
function deletedWorkload(project: string, name: string, instances: InstanceRecord[]): ResourceObject {
  const i = instances[0]!;
  return {
    apiVersion: 'continuum/v1',
    kind: 'Workload',
    metadata: {
      name,
      project,
      uid: '',
      generation: 0,
      labels: {},
      createdAt: i.createdAt,
      updatedAt: i.updatedAt,
      createdBy: '',
    },
    spec: {
      kind: 'container',
      image: i.spec.image.name,
      replicas: 0,
      resources: { vcpus: i.vcpus, memoryMiB: i.memoryMiB },
    },
    status: {},
  };
}

export function wrap<T>(
  what: { kind: string; group: string; plural: string; name?: string },
  fn: () => Promise<T>,
): Promise<T> {
  return fn().catch((err) => {
    throw err instanceof Problem ? kubeErrorOf(err, what) : err;
  });
}
