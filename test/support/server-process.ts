// `continuum server` as a real process (for tests that kill -9 a control plane): its
// ports chosen once, so that a restart comes back where agents look for it.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCli } from './cli.js';
import { freePort } from './processes.js';

export interface ServerProcess {
  name: string;
  url: string;
  gateway: string;
  dataDir: string;
  child: ChildProcess;
  output(): string;
  /** The admin token of the database's first start (read from the data directory). */
  adminToken(): string;
  /** kill -9: no shutdown at all; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM: a clean stop. */
  stop(): Promise<void>;
  /** Starts it again on the same ports, data directory and database. */
  restart(): Promise<ServerProcess>;
}

export interface ServerProcessOptions {
  dataDir: string;
  databaseUrl?: string;
  name?: string;
  caKeyFile?: string;
  extra?: readonly string[];
}

export async function startServerProcess(
  o: ServerProcessOptions,
  ports?: { api: number; gateway: number },
): Promise<ServerProcess> {
  const p = ports ?? { api: await freePort(), gateway: await freePort() };
  const { child, output } = await startCli(
    [
      'server',
      '--listen',
      `127.0.0.1:${p.api}`,
      '--agent-listen',
      `127.0.0.1:${p.gateway}`,
      '--kubernetes-listen',
      '',
      '--data-dir',
      o.dataDir,
      ...(o.databaseUrl ? ['--database-url', o.databaseUrl] : []),
      ...(o.name ? ['--replica-name', o.name] : []),
      ...(o.caKeyFile ? ['--ca-key-file', o.caKeyFile] : []),
      ...(o.extra ?? []),
    ],
    /Log in with:/,
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    name: o.name ?? 'local',
    url: `http://127.0.0.1:${p.api}`,
    gateway: `https://127.0.0.1:${p.gateway}`,
    dataDir: o.dataDir,
    child,
    output,
    adminToken: () => readFileSync(join(o.dataDir, 'admin-token'), 'utf8').trim(),
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
    restart: () => startServerProcess(o, p),
  };
}
