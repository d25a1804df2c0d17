export type { ApiContext } from './context.js';
export { type ApiOptions, buildApi } from './server.js';
