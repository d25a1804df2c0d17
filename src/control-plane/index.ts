export { DEFAULT_LISTEN, defaultDataDir, parseListen } from './paths.js';
export { ADMIN_TOKEN_FILE, type ControlPlane, type ControlPlaneOptions, startControlPlane } from './start.js';
