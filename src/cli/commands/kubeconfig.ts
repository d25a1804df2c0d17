// `continuum kubeconfig`: a kubeconfig for the control plane's Kubernetes API facade,
// for the current user (its token) and project (the namespace), with the CA that
// signed the facade's certificate.
import { promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import { answer, apiOf } from '../client.js';
import { resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import type { GlobalOptions } from '../program.js';

interface Named<T> {
  name: string;
  [k: string]: T | string;
}

interface KubeConfig {
  apiVersion: string;
  kind: string;
  clusters: Named<unknown>[];
  users: Named<unknown>[];
  contexts: Named<unknown>[];
  'current-context'?: string;
  [k: string]: unknown;
}

/** Replaces (or adds) the entry of that name. */
function upsert<T extends { name: string }>(list: T[] | undefined, entry: T): T[] {
  return [...(list ?? []).filter((e) => e.name !== entry.name), entry];
}

export function kubeconfigCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('kubeconfig')
    .description('print a kubeconfig for kubectl (or merge it into a file), as the current user and project')
    .option('--file <path>', 'merge into this kubeconfig (made if missing) and make it the current context')
    .option('--context <name>', 'name of the context, cluster and user entries', 'continuum')
    .addHelpText(
      'after',
      `
The namespace is the project (-p/--project, or the one you logged in with); kubectl
sees projects as namespaces, container workloads as Deployments, their replicas as
Pods, nodes as Nodes, and Continuum's own kinds in the API group "continuum".

  continuum kubeconfig > ~/.kube/continuum.yaml && export KUBECONFIG=~/.kube/continuum.yaml
  continuum kubeconfig --file ~/.kube/config      # add it to your kubeconfig
  kubectl get nodes`,
    )
    .action(async (opts: { file?: string; context: string }) => {
      const g = globals();
      const conn = await resolveConnection(g);
      if (!conn.token) throw new CliError('no token: log in first with `continuum login`');
      const api = apiOf(conn);
      const facade = await answer(conn, api.GET('/v1/kubernetes'));
      const me = await answer(conn, api.GET('/v1/whoami'));
      const name = opts.context;
      const user = `${name}-${me.user}`;
      const cluster = {
        name,
        cluster: {
          server: facade.server,
          'certificate-authority-data': Buffer.from(facade.certificateAuthority).toString('base64'),
        },
      };
      const context = {
        name,
        context: { cluster: name, user, ...(conn.project ? { namespace: conn.project } : {}) },
      };
      const userEntry = { name: user, user: { token: conn.token } };
      if (!opts.file) {
        const config: KubeConfig = {
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [cluster],
          users: [userEntry],
          contexts: [context],
          'current-context': name,
        };
        process.stdout.write(YAML.stringify(config));
        return;
      }
      const path = opts.file.startsWith('~/') ? join(homedir(), opts.file.slice(2)) : opts.file;
      let existing: KubeConfig = { apiVersion: 'v1', kind: 'Config', clusters: [], users: [], contexts: [] };
      try {
        const parsed = YAML.parse(await fs.readFile(path, 'utf8'));
        if (parsed && typeof parsed === 'object') existing = { ...existing, ...parsed };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
          throw new CliError(`cannot read ${path}: ${(err as Error).message}`);
      }
      const merged: KubeConfig = {
        ...existing,
        clusters: upsert(existing.clusters, cluster),
        users: upsert(existing.users, userEntry),
        contexts: upsert(existing.contexts, context),
        'current-context': name,
      };
      await fs.mkdir(dirname(path), { recursive: true, mode: 0o700 });
      await fs.writeFile(path, YAML.stringify(merged), { mode: 0o600 });
      await fs.chmod(path, 0o600);
      process.stdout.write(
        `Wrote context '${name}' (user ${me.user}${conn.project ? `, namespace ${conn.project}` : ''}) to ${path}; kubectl uses it now\n`,
      );
    });
}
