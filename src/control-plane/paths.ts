// Default locations, following the XDG base directory conventions.
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CONTINUUM_DATA_DIR) return env.CONTINUUM_DATA_DIR;
  const base = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'continuum');
}

export const DEFAULT_LISTEN = '127.0.0.1:7400';

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen) ?? /^()()(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535)
    throw new Error(`invalid listen address '${listen}' (expected HOST:PORT, e.g. 127.0.0.1:7400)`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}
