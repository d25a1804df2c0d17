// The part of Kubernetes' apps/v1 Deployment and v1 Pod template that Continuum runs,
// as strict JSON Schemas: a field outside them is an unknown field (named in the error,
// and absent from the OpenAPI document kubectl reads), never silently dropped.
import { type TSchema, Type } from 'typebox';
import { Annotations, Labels, strictObject } from '../model/common.js';

const StringMap = Labels;
const Quantity = Type.Union([Type.String(), Type.Number()], {
  description: 'a quantity: CPU in cores ("500m", "2"), memory in bytes ("64Mi", "1G")',
});

/** What a client may send in metadata; the server's own fields are accepted and ignored. */
export const ObjectMetaIn = strictObject({
  name: Type.Optional(Type.String()),
  namespace: Type.Optional(Type.String()),
  labels: Type.Optional(StringMap),
  annotations: Type.Optional(Annotations),
  uid: Type.Optional(Type.String()),
  resourceVersion: Type.Optional(Type.String()),
  generation: Type.Optional(Type.Integer()),
  creationTimestamp: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  managedFields: Type.Optional(Type.Array(Type.Unknown())),
  selfLink: Type.Optional(Type.String()),
});

const NodeSelectorRequirement = strictObject({
  key: Type.String(),
  operator: Type.Union(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'].map((o) => Type.Literal(o))),
  values: Type.Optional(Type.Array(Type.String())),
});

const NodeSelectorTerm = strictObject({
  matchExpressions: Type.Optional(Type.Array(NodeSelectorRequirement)),
  matchFields: Type.Optional(Type.Array(NodeSelectorRequirement)),
});

export const Affinity = strictObject({
  nodeAffinity: Type.Optional(
    strictObject({
      requiredDuringSchedulingIgnoredDuringExecution: Type.Optional(
        strictObject({ nodeSelectorTerms: Type.Array(NodeSelectorTerm) }),
      ),
      preferredDuringSchedulingIgnoredDuringExecution: Type.Optional(
        Type.Array(strictObject({ weight: Type.Integer(), preference: NodeSelectorTerm })),
      ),
    }),
  ),
});

const ResourceList = strictObject({ cpu: Type.Optional(Quantity), memory: Type.Optional(Quantity) });

export const Container = strictObject({
  name: Type.String({ description: 'the container’s name (one container per pod)' }),
  image: Type.String({ description: 'a Continuum image of the namespace’s project (format oci)' }),
  command: Type.Optional(Type.Array(Type.String())),
  args: Type.Optional(Type.Array(Type.String())),
  env: Type.Optional(
    Type.Array(strictObject({ name: Type.String(), value: Type.Optional(Type.String()) }), {
      'x-kubernetes-patch-merge-key': 'name',
      'x-kubernetes-patch-strategy': 'merge',
    }),
  ),
  ports: Type.Optional(
    Type.Array(
      strictObject({
        containerPort: Type.Integer({ minimum: 1, maximum: 65535 }),
        protocol: Type.Optional(Type.Union([Type.Literal('TCP'), Type.Literal('UDP')])),
        name: Type.Optional(Type.String()),
      }),
      { 'x-kubernetes-patch-merge-key': 'containerPort', 'x-kubernetes-patch-strategy': 'merge' },
    ),
  ),
  resources: Type.Optional(
    strictObject({ limits: Type.Optional(ResourceList), requests: Type.Optional(ResourceList) }),
  ),
  imagePullPolicy: Type.Optional(Type.String({ description: 'accepted; images come from the image store' })),
  terminationMessagePath: Type.Optional(Type.String()),
  terminationMessagePolicy: Type.Optional(Type.String()),
});

export const PodSpecIn = strictObject({
  containers: Type.Array(Container, {
    minItems: 1,
    'x-kubernetes-patch-merge-key': 'name',
    'x-kubernetes-patch-strategy': 'merge',
  }),
  nodeSelector: Type.Optional(StringMap),
  affinity: Type.Optional(Affinity),
  restartPolicy: Type.Optional(Type.Literal('Always', { description: 'Deployments always restart' })),
  terminationGracePeriodSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
  dnsPolicy: Type.Optional(Type.String()),
  schedulerName: Type.Optional(Type.String()),
  securityContext: Type.Optional(strictObject({})),
});

export const DeploymentSpecIn = strictObject({
  replicas: Type.Optional(Type.Integer({ minimum: 0, maximum: 10000 })),
  selector: strictObject({ matchLabels: Type.Optional(StringMap) }),
  template: strictObject({
    metadata: Type.Optional(
      strictObject({
        labels: Type.Optional(StringMap),
        annotations: Type.Optional(Annotations),
        creationTimestamp: Type.Optional(Type.Union([Type.String(), Type.Null()])),
      }),
    ),
    spec: PodSpecIn,
  }),
  strategy: Type.Optional(
    strictObject({
      type: Type.Optional(Type.Union([Type.Literal('RollingUpdate'), Type.Literal('Recreate')])),
      rollingUpdate: Type.Optional(
        strictObject({
          maxSurge: Type.Optional(Type.Union([Type.Integer(), Type.String()])),
          maxUnavailable: Type.Optional(Type.Union([Type.Integer(), Type.String()])),
        }),
      ),
    }),
  ),
  minReadySeconds: Type.Optional(Type.Integer({ minimum: 0 })),
  revisionHistoryLimit: Type.Optional(Type.Integer({ minimum: 0 })),
  progressDeadlineSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
});

export const DeploymentIn = strictObject({
  apiVersion: Type.Optional(Type.Literal('apps/v1')),
  kind: Type.Optional(Type.Literal('Deployment')),
  metadata: ObjectMetaIn,
  spec: DeploymentSpecIn,
  status: Type.Optional(Type.Unknown({ description: 'written by the server; ignored' })),
});

export const ScaleIn = strictObject({
  apiVersion: Type.Optional(Type.String()),
  kind: Type.Optional(Type.Literal('Scale')),
  metadata: Type.Optional(ObjectMetaIn),
  spec: strictObject({ replicas: Type.Integer({ minimum: 0, maximum: 10000 }) }),
  status: Type.Optional(Type.Unknown()),
});

/** Schemas of objects the facade only serves (documented loosely: they are outputs). */
export const Outputs: Record<string, TSchema> = {
  Pod: Type.Object({}, { additionalProperties: true, description: 'a replica (instance) of a workload' }),
  Node: Type.Object({}, { additionalProperties: true, description: 'a node of the federation (read-only)' }),
  Namespace: Type.Object({}, { additionalProperties: true, description: 'a Continuum project' }),
  Event: Type.Object({}, { additionalProperties: true, description: 'from the audit log and the scheduler' }),
};

export interface DeploymentSpec {
  replicas?: number;
  selector: { matchLabels?: Record<string, string> };
  template: {
    metadata?: {
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
      creationTimestamp?: string | null;
    };
    spec: {
      containers: ContainerSpec[];
      nodeSelector?: Record<string, string>;
      affinity?: {
        nodeAffinity?: {
          requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms: NodeSelectorTermSpec[] };
          preferredDuringSchedulingIgnoredDuringExecution?: unknown[];
        };
      };
      restartPolicy?: 'Always';
      [k: string]: unknown;
    };
  };
  [k: string]: unknown;
}

export interface NodeSelectorTermSpec {
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
  matchFields?: unknown[];
}

export interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { containerPort: number; protocol?: 'TCP' | 'UDP'; name?: string }[];
  resources?: {
    limits?: { cpu?: string | number; memory?: string | number };
    requests?: { cpu?: string | number; memory?: string | number };
  };
  [k: string]: unknown;
}
