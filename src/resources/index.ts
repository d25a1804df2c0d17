export { dependentsOf } from './dependents.js';
export { BOOTSTRAP_ADMIN, IdentityService, type TokenInfo } from './identity.js';
export { ImageFiles } from './image-files.js';
export { projectUsage, updateProjectUsage } from './quota.js';
export { canonical, decodeCursor, encodeCursor, render } from './render.js';
export {
  APPLY_ACTIONS,
  type ApplyAction,
  type ListOptions,
  ResourceService,
  type WriteResult,
} from './service.js';
