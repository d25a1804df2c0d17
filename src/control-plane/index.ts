export { guardControlPlane, guardProcess } from './guard.js';
export {
  DEFAULT_LEASE_RENEW_MS,
  DEFAULT_LEASE_TTL_MS,
  defaultReplicaName,
  Leadership,
} from './leadership.js';
export { DEFAULT_LISTEN, defaultDataDir, parseListen } from './paths.js';
export {
  ADMIN_TOKEN_FILE,
  type ControlPlane,
  type ControlPlaneOptions,
  DEFAULT_AGENT_LISTEN,
  DEFAULT_KUBERNETES_LISTEN,
  startControlPlane,
} from './start.js';
