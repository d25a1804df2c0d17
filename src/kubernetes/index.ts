export { buildKubernetesApi, type KubernetesOptions } from './server.js';
