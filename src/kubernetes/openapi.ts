// OpenAPI v3 documents per group-version, as kubectl reads them: `kubectl apply` checks
// that a kind's PATCH takes `fieldValidation` (then the server validates, strictly),
// and `kubectl explain` prints the schemas. Writable kinds are described by the same
// schemas that validate them; read-only ones loosely.
import { createHash } from 'node:crypto';
import type { TSchema } from 'typebox';
import { findKind, manifestSchema } from '../model/index.js';
import type { KubeResource } from './resources.js';
import { DeploymentIn, Outputs, ScaleIn } from './schemas.js';

const gvPath = (r: KubeResource) => (r.group ? `apis/${r.group}/${r.version}` : `api/${r.version}`);

/** JSON Schema (TypeBox) to the OpenAPI 3.0 dialect Kubernetes clients parse. */
function toOpenApi(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toOpenApi);
  if (!schema || typeof schema !== 'object') return schema;
  const s = schema as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const anyOf = s.anyOf as Record<string, unknown>[] | undefined;
  if (anyOf) {
    const types = anyOf.map((a) => a.type);
    if (anyOf.every((a) => 'const' in a))
      return {
        type: 'string',
        enum: anyOf.map((a) => a.const),
        ...(s.description ? { description: s.description } : {}),
      };
    if (types.includes('null')) {
      const rest = anyOf.filter((a) => a.type !== 'null');
      if (rest.length === 1) return { ...(toOpenApi(rest[0]) as object), nullable: true };
    }
    if (types.includes('string') && (types.includes('integer') || types.includes('number')))
      return { 'x-kubernetes-int-or-string': true, ...(s.description ? { description: s.description } : {}) };
    return { ...(s.description ? { description: s.description } : {}) };
  }
  for (const [k, v] of Object.entries(s)) {
    if (k === 'patternProperties') {
      const [value] = Object.values(v as object);
      out.additionalProperties = toOpenApi(value);
    } else if (k === 'const') out.enum = [v];
    else if (k === 'properties')
      out.properties = Object.fromEntries(Object.entries(v as object).map(([p, x]) => [p, toOpenApi(x)]));
    else if (k === 'additionalProperties')
      out.additionalProperties = typeof v === 'object' ? toOpenApi(v) : v;
    else if (k === 'items') out.items = toOpenApi(v);
    // OpenAPI 3.0: the bound is minimum/maximum and exclusiveMinimum/Maximum a flag.
    else if (k === 'exclusiveMinimum' && typeof v === 'number')
      Object.assign(out, { minimum: v, exclusiveMinimum: true });
    else if (k === 'exclusiveMaximum' && typeof v === 'number')
      Object.assign(out, { maximum: v, exclusiveMaximum: true });
    else if (
      [
        'type',
        'description',
        'enum',
        'required',
        'minimum',
        'maximum',
        'minItems',
        'maxItems',
        'maxLength',
        'pattern',
        'format',
        'uniqueItems',
        'maxProperties',
      ].includes(k) ||
      k.startsWith('x-kubernetes-')
    )
      out[k] = v;
  }
  return out;
}

const componentName = (r: KubeResource) =>
  `${r.group ? `eu.continuum.${r.group}` : 'eu.continuum.core'}.${r.version}.${r.kind}`;

function schemaOf(r: KubeResource): unknown {
  const gvk = { group: r.group, version: r.version, kind: r.kind };
  let base: TSchema;
  if (r.kind === 'Deployment' && r.group === 'apps') base = DeploymentIn;
  else if (r.group && findKind(r.kind)?.creatable) base = manifestSchema(findKind(r.kind)!);
  else base = Outputs[r.kind] ?? ({ type: 'object' } as TSchema);
  const s = toOpenApi(JSON.parse(JSON.stringify(base))) as Record<string, unknown>;
  if (r.group === 'continuum' && s.properties) {
    // Kubernetes clients send the namespace (the project) and server fields back.
    const props = s.properties as Record<string, any>;
    const meta = props.metadata;
    if (meta?.properties)
      for (const f of ['namespace', 'uid', 'resourceVersion', 'creationTimestamp'])
        meta.properties[f] = { type: 'string' };
    props.status = { type: 'object', description: 'written by the system' };
    props.apiVersion = { type: 'string', enum: ['continuum/v1'] };
  }
  return { ...s, 'x-kubernetes-group-version-kind': [gvk] };
}

const QUERY = (name: string, description: string) => ({
  name,
  in: 'query',
  description,
  schema: { type: 'string' },
  required: false,
});
const WRITE_PARAMS = [
  QUERY('dryRun', 'All: check everything, write nothing'),
  QUERY('fieldManager', 'the name of the writer (server-side apply)'),
  QUERY('fieldValidation', 'Strict (always, here): unknown fields are refused with their names'),
];

function operations(r: KubeResource) {
  const gvk = { group: r.group, version: r.version, kind: r.kind };
  const ref = { $ref: `#/components/schemas/${componentName(r)}` };
  const ok = (description: string, schema: object = ref) => ({
    '200': { description, content: { 'application/json': { schema } } },
  });
  const op = (action: string, description: string, extra: object = {}) => ({
    description,
    operationId: `${action}${r.kind}`,
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvk,
    responses: ok(description),
    ...extra,
  });
  const base = `/${gvPath(r)}${r.namespaced ? '/namespaces/{namespace}' : ''}/${r.plural}`;
  const pathParams = [
    ...(r.namespaced ? [{ name: 'namespace', in: 'path', required: true, schema: { type: 'string' } }] : []),
  ];
  const nameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
  const body = { requestBody: { content: { 'application/json': { schema: ref } }, required: true } };
  const paths: Record<string, object> = {
    [base]: {
      parameters: pathParams,
      get: op('list', `list ${r.plural}`, {
        parameters: [QUERY('labelSelector', ''), QUERY('fieldSelector', ''), QUERY('watch', '')],
      }),
      ...(r.create ? { post: op('post', `create a ${r.kind}`, { ...body, parameters: WRITE_PARAMS }) } : {}),
    },
    [`${base}/{name}`]: {
      parameters: [...pathParams, nameParam],
      get: op('get', `read a ${r.kind}`),
      ...(r.replace
        ? {
            put: op('put', `replace a ${r.kind}`, { ...body, parameters: WRITE_PARAMS }),
            patch: op('patch', `patch a ${r.kind}`, {
              parameters: [...WRITE_PARAMS, QUERY('force', 'server-side apply: take fields over')],
              requestBody: {
                content: Object.fromEntries(
                  [
                    'application/merge-patch+json',
                    'application/strategic-merge-patch+json',
                    'application/json-patch+json',
                    'application/apply-patch+yaml',
                  ].map((t) => [t, { schema: { type: 'object' } }]),
                ),
                required: true,
              },
            }),
          }
        : {}),
      ...(r.remove ? { delete: op('delete', `delete a ${r.kind}`) } : {}),
    },
  };
  return paths;
}

export function openApiDocument(resources: readonly KubeResource[], path: string): object | undefined {
  const mine = resources.filter((r) => gvPath(r) === path);
  if (!mine.length) return undefined;
  const paths: Record<string, object> = {};
  const schemas: Record<string, unknown> = {};
  for (const r of mine) {
    Object.assign(paths, operations(r));
    schemas[componentName(r)] = schemaOf(r);
  }
  if (path === 'apis/apps/v1') {
    schemas['eu.continuum.autoscaling.v1.Scale'] = {
      ...(toOpenApi(JSON.parse(JSON.stringify(ScaleIn))) as object),
      'x-kubernetes-group-version-kind': [{ group: 'autoscaling', version: 'v1', kind: 'Scale' }],
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Continuum (Kubernetes API facade)', version: 'v1' },
    paths,
    components: { schemas },
  };
}

/** The index: each group-version's document with a hash, so clients can cache it. */
export function openApiIndex(resources: readonly KubeResource[]): object {
  const out: Record<string, { serverRelativeURL: string }> = {};
  for (const path of new Set(resources.map(gvPath))) {
    const hash = createHash('sha256')
      .update(JSON.stringify(openApiDocument(resources, path)))
      .digest('hex')
      .slice(0, 32)
      .toUpperCase();
    out[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${hash}` };
  }
  return { paths: out };
}
