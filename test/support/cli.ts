// Runs the real `continuum` executable as a child process.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string> = {}, input?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

/** Starts a long-running CLI command and resolves once its stdout matches `ready`. */
export function startCli(
  args: string[],
  ready: RegExp,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; output: () => string; match: RegExpMatchArray }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${ready}: ${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = out.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve({ child, output: () => out, match: m });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`exited with ${code} before ready: ${out}`)));
  });
}

/**
 * A real agent process (`continuum agent`), its VMs' ports bound to loopback and its
 * heartbeats every second; with a join token it enrols first, without one it starts
 * from the identity in its data directory.
 */
export function startAgentProcess(opts: {
  dataDir: string;
  server?: string;
  token?: string;
  name?: string;
  /** More `continuum agent` flags. */
  extra?: readonly string[];
}) {
  return startCli(
    [
      'agent',
      ...(opts.server ? ['--server', opts.server] : []),
      ...(opts.token ? ['--token', opts.token] : []),
      ...(opts.name ? ['--name', opts.name] : []),
      '--data-dir',
      opts.dataDir,
      '--port-bind-address',
      '127.0.0.1',
      '--heartbeat-interval',
      '1000',
      '--stop-timeout',
      '1000',
      ...(opts.extra ?? []),
    ],
    /Continuum agent running as node (\S+)/,
  );
}
