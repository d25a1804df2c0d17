export { DevFederation, type DevOptions } from './dev.js';
export { canUseNamespaces, createNetwork, destroyNetwork } from './netns.js';
