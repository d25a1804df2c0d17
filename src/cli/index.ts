export { ApiClient, ApiError } from './client.js';
export { type CliConfig, configPath, loadConfig, saveConfig } from './config.js';
export { CliError } from './errors.js';
export { parseManifests, readManifests } from './manifest.js';
