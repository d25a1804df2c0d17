export {
  AUTH_KINDS,
  AuthFailureLimiter,
  type AuthKind,
  DEFAULT_AUTH_FAILURES,
  DEFAULT_AUTH_WINDOW_MS,
  type FailureLimiterOptions,
} from './failure-limiter.js';
export {
  type Action,
  canRead,
  canReadParent,
  canWrite,
  eventScope,
  type InstanceAccess,
  instanceAccess,
  type ListScope,
  listScope,
  refusedChange,
} from './policy.js';
export {
  adminOfProjects,
  adminOfProviders,
  coversBinding,
  isFederationAdmin,
  type Principal,
  projectsOf,
} from './principal.js';
export {
  generateToken,
  hashSecret,
  type NewToken,
  parseToken,
  secretMatches,
  TOKEN_PREFIX,
} from './tokens.js';
