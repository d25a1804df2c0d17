// The wire shape of every resource: `{apiVersion, kind, metadata, spec, status}`.
// Manifests (what users write) carry metadata and spec; the system adds status.
import { Type } from 'typebox';
import { Annotations, Labels, Name, strictObject, Timestamp } from './common.js';
import type { KindDef } from './kind.js';

export const API_VERSION = 'continuum/v1';

export interface Metadata {
  name: string;
  provider?: string;
  project?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  generation?: number;
}

export interface Manifest {
  apiVersion?: string;
  kind?: string;
  metadata: Metadata;
  spec: any;
}

export interface ResourceObject {
  apiVersion: string;
  kind: string;
  metadata: Required<Pick<Metadata, 'name' | 'labels' | 'generation'>> &
    Pick<Metadata, 'provider' | 'project' | 'annotations'> & {
      uid: string;
      createdAt: string;
      updatedAt: string;
      createdBy: string;
    };
  spec: any;
  status: any;
}

const manifestSchemas = new WeakMap<KindDef, ReturnType<typeof buildManifestSchema>>();

/** The schema of a kind's manifest; one object per kind, so its compiled validator is reused. */
export function manifestSchema(def: KindDef) {
  let schema = manifestSchemas.get(def);
  if (!schema) {
    schema = buildManifestSchema(def);
    manifestSchemas.set(def, schema);
  }
  return schema;
}

function buildManifestSchema(def: KindDef) {
  return strictObject({
    apiVersion: Type.Optional(Type.Literal(API_VERSION)),
    kind: Type.Optional(Type.Literal(def.kind)),
    metadata: strictObject({
      name: Name,
      ...(def.parent ? { [def.parent]: Type.Optional(Name) } : {}),
      labels: Type.Optional(Labels),
      annotations: Type.Optional(Annotations),
      generation: Type.Optional(
        Type.Integer({ minimum: 1, description: 'for updates: the generation the change is based on' }),
      ),
    }),
    spec: def.spec,
  });
}

export function objectSchema(def: KindDef) {
  return Type.Object(
    {
      apiVersion: Type.Literal(API_VERSION),
      kind: Type.Literal(def.kind),
      metadata: Type.Object({
        name: Name,
        ...(def.parent ? { [def.parent]: Name } : {}),
        uid: Type.String(),
        generation: Type.Integer(),
        labels: Labels,
        annotations: Type.Optional(Annotations),
        createdAt: Timestamp,
        updatedAt: Timestamp,
        createdBy: Type.String(),
      }),
      spec: def.spec,
      status: def.status,
    },
    { description: def.description },
  );
}
