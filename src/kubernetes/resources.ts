// The resources the Kubernetes facade serves. Every read and write goes through
// Continuum's ResourceService with the caller's principal, so a tenant sees and changes
// only its projects, as with the Continuum API.
import { deployments } from './apps.js';
import { CONTINUUM_RESOURCES } from './continuum-group.js';
import { events, namespaces, nodes, pods } from './core.js';
import type { KubeResource } from './kube-resource.js';

export { deployments, getScale, podInstance, setScale } from './apps.js';
export { CONTINUUM_GROUP, CONTINUUM_RESOURCES } from './continuum-group.js';
export { events, namespaces, nodes, pods } from './core.js';
export {
  type Column,
  humanAge,
  invalid,
  KubeError,
  type KubeResource,
  kubeErrorOf,
  type Scope,
} from './kube-resource.js';

export const RESOURCES: KubeResource[] = [
  namespaces,
  nodes,
  pods,
  events,
  deployments,
  ...CONTINUUM_RESOURCES,
];
