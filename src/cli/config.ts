// The CLI's config file: server URL, token and default project. Flags and environment
// variables (CONTINUUM_SERVER, CONTINUUM_TOKEN, CONTINUUM_PROJECT) override it.
import { promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import YAML from 'yaml';
import { CliError } from './errors.js';

export interface CliConfig {
  server?: string;
  token?: string;
  project?: string;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CONTINUUM_CONFIG) return env.CONTINUUM_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'continuum', 'config.yaml');
}

export async function loadConfig(path = configPath()): Promise<CliConfig> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  const value = YAML.parse(text) ?? {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new CliError(`${path}: expected a mapping`);
  for (const key of Object.keys(value)) {
    if (!['server', 'token', 'project'].includes(key))
      throw new CliError(`${path}: unknown setting '${key}'`);
    if (typeof value[key] !== 'string') throw new CliError(`${path}: '${key}' must be a string`);
  }
  return value as CliConfig;
}

export async function saveConfig(config: CliConfig, path = configPath()): Promise<void> {
  await fs.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await fs.writeFile(path, YAML.stringify(config), { mode: 0o600 });
  await fs.chmod(path, 0o600);
}

export interface Connection {
  server: string;
  token?: string;
  project?: string;
}

/** Resolves where to connect: flags, then environment, then the config file. */
export async function resolveConnection(flags: {
  server?: string;
  token?: string;
  project?: string;
}): Promise<Connection> {
  const config = await loadConfig();
  // An empty variable counts as unset, as shells make it easy to leave one empty.
  const env = (name: string) => process.env[name] || undefined;
  const server = flags.server ?? env('CONTINUUM_SERVER') ?? config.server;
  if (!server)
    throw new CliError(
      'no server configured: run `continuum login --server URL --token TOKEN` or pass --server',
    );
  return {
    server: await firstAnswering(server),
    token: flags.token ?? env('CONTINUUM_TOKEN') ?? config.token,
    project: flags.project ?? env('CONTINUUM_PROJECT') ?? config.project,
  };
}

/** How long a replica gets to answer /healthz before the next address is tried. */
const PROBE_TIMEOUT_MS = 2000;

/**
 * A server setting may list several replicas of one control plane, comma-separated: the
 * first whose /healthz answers (its store reachable) is used. One address is used as is.
 */
export async function firstAnswering(server: string): Promise<string> {
  const list = server
    .split(',')
    .map((s) => s.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  if (list.length <= 1) return list[0] ?? server;
  const failures: string[] = [];
  for (const url of list) {
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      await res.body?.cancel();
      if (res.ok) return url;
      failures.push(`${url} (HTTP ${res.status})`);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      failures.push(`${url} (${cause?.code ?? cause?.message ?? (err as Error).message})`);
    }
  }
  throw new CliError(`none of the control plane's replicas answered: ${failures.join(', ')}`);
}
