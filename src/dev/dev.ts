// `continuum dev`: a whole federation on one machine for a first look. A control plane
// on SQLite, three providers in three countries with their nodes' agents (in network
// namespaces of their own when run as root, plain processes on loopback otherwise),
// the test image uploaded and a demo VM running. Stopping removes every VM, process
// and namespace it made.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient, answer, apiOf } from '../cli/client.js';
import { type ControlPlane, startControlPlane } from '../control-plane/index.js';
import { findCity } from '../model/index.js';
import { forgetCurrentDev, writeCurrentDev } from './current.js';
import { canUseNamespaces, createNetwork, type DevNetwork, destroyNetwork, freeSubnet } from './netns.js';
import { forgetRun, newPrefix, recordRun, removeInstances, sweepDeadRuns } from './runs.js';

export interface DevOptions {
  listen: string;
  agentPort: number;
  /** Port of the Kubernetes API facade on 127.0.0.1 (0: any free one; absent: none). */
  kubernetesPort?: number;
  dataDir?: string;
  keep?: boolean;
  namespaces?: boolean;
  /** The namespaces' /24 (a.b.c.0); default: the first of 10.237.N.0 no interface uses. */
  subnet?: string;
  /** The test image (vmlinuz, initrd.img, cmdline); built by scripts/build-test-image.sh. */
  imageDir: string;
  out?: (line: string) => void;
}

interface DevProvider {
  name: string;
  displayName: string;
  headquarters: string;
  certifications: string[];
  site: string;
  city: string;
  tier: string;
  carbon: number;
  nodes: number;
}

const PROVIDERS: DevProvider[] = [
  {
    name: 'rhine-cloud',
    displayName: 'Rhine Cloud GmbH',
    headquarters: 'DE',
    certifications: ['C5', 'ISO27001'],
    site: 'fra-1',
    city: 'Frankfurt',
    tier: 'regional',
    carbon: 380,
    nodes: 2,
  },
  {
    name: 'iberia-edge',
    displayName: 'Iberia Edge S.L.',
    headquarters: 'ES',
    certifications: ['ENS-high'],
    site: 'mad-1',
    city: 'Madrid',
    tier: 'edge',
    carbon: 150,
    nodes: 1,
  },
  {
    name: 'nordic-edge',
    displayName: 'Nordic Edge AB',
    headquarters: 'SE',
    certifications: ['ISO27001'],
    site: 'sto-1',
    city: 'Stockholm',
    tier: 'edge',
    carbon: 30,
    nodes: 1,
  },
];

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export class DevFederation {
  cp?: ControlPlane;
  network?: DevNetwork;
  private agents: { node: string; child: ChildProcess; dir: string }[] = [];
  private dataDir = '';
  private stopping?: Promise<void>;
  /** This run's prefix of bridge and namespace names (unique per run). */
  private prefix = '';

  constructor(private readonly opts: DevOptions) {}

  private say(line: string) {
    (this.opts.out ?? ((l) => process.stdout.write(`${l}\n`)))(line);
  }

  async start(): Promise<{ demoUrl: string }> {
    const o = this.opts;
    this.dataDir = o.dataDir ?? (await fs.mkdtemp(join(tmpdir(), 'continuum-dev-')));
    const useNetns = (o.namespaces ?? true) && canUseNamespaces();
    const nodeCount = PROVIDERS.reduce((n, p) => n + p.nodes, 0);
    if (useNetns) {
      const swept = await sweepDeadRuns();
      if (swept.length)
        this.say(`removed what ${swept.length} earlier run(s) left behind (${swept.join(', ')})`);
      this.prefix = newPrefix();
      const subnet = o.subnet ?? (await freeSubnet('10.237.0.0'));
      await recordRun({
        pid: process.pid,
        prefix: this.prefix,
        nodes: nodeCount,
        dataDir: this.dataDir,
        temporary: !o.keep && !o.dataDir,
      });
      this.say(`creating ${nodeCount} network namespaces on bridge ${this.prefix}br (${subnet})`);
      this.network = await createNetwork(this.prefix, subnet, nodeCount);
    } else {
      this.say('running agents as processes on loopback (network namespaces need root)');
    }
    const gatewayHost = this.network?.hostAddress ?? '127.0.0.1';
    this.say('starting the control plane (SQLite)');
    this.cp = await startControlPlane({
      listen: o.listen,
      dataDir: join(this.dataDir, 'control-plane'),
      agentListen: `${gatewayHost}:${o.agentPort}`,
      agentNames: [gatewayHost],
      ...(o.kubernetesPort !== undefined ? { kubernetesListen: `127.0.0.1:${o.kubernetesPort}` } : {}),
    });
    const cp = this.cp;

    const docs: unknown[] = [];
    for (const p of PROVIDERS) {
      const city = findCity(p.city)!;
      docs.push(
        {
          kind: 'Provider',
          metadata: { name: p.name },
          spec: {
            displayName: p.displayName,
            headquarters: p.headquarters,
            jurisdiction: 'EU',
            euControlled: true,
            certifications: p.certifications,
          },
        },
        {
          kind: 'Site',
          metadata: { name: p.site, provider: p.name },
          spec: {
            country: city.country,
            region: p.city,
            location: { latitude: city.latitude, longitude: city.longitude },
            tier: p.tier,
            carbonIntensity: p.carbon,
            prices: { vcpuHour: 0.02, memoryGbHour: 0.003 },
          },
        },
      );
    }
    docs.push({
      kind: 'Project',
      metadata: { name: 'demo' },
      spec: { displayName: 'Demo project', quota: { vcpus: 16, memoryMiB: 16384, instances: 16 } },
    });
    const conn = { server: cp.url, token: cp.adminToken };
    const typed = apiOf(conn);
    await answer(conn, typed.POST('/v1/apply', { body: { documents: docs } }));

    let host = 0;
    for (const p of PROVIDERS) {
      const jt = await answer(
        conn,
        typed.POST('/v1/providers/{provider}/sites/{site}/join-tokens', {
          params: { path: { provider: p.name, site: p.site } },
          body: { maxUses: p.nodes, expiresInHours: 1, description: 'continuum dev' },
        }),
      );
      for (let n = 1; n <= p.nodes; n++) {
        const node = `${p.site}-node-${n}`;
        const h = this.network?.hosts[host++];
        await this.startAgent(`${p.name}/${node}`, node, jt.token, h?.netns, h ? '0.0.0.0' : '127.0.0.1');
      }
    }
    this.say(`waiting for ${nodeCount} nodes to enrol`);
    await this.until(
      async () =>
        (await answer(conn, typed.GET('/v1/nodes', { params: { query: { state: 'ready' } } }))).items
          .length === nodeCount,
      60_000,
      'nodes to enrol',
    );

    this.say('uploading the test image');
    const kernel = readFileSync(join(o.imageDir, 'vmlinuz'));
    const initrd = readFileSync(join(o.imageDir, 'initrd.img'));
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    await answer(
      conn,
      typed.POST('/v1/projects/{project}/images', {
        params: { path: { project: 'demo' } },
        body: {
          metadata: { name: 'testvm' },
          spec: {
            format: 'kernel-initrd',
            description: 'Continuum test image: busybox, HTTP on port 80, a counter on the console',
            files: { kernel: { sha256: sha(kernel) }, initrd: { sha256: sha(initrd) } },
            cmdline: readFileSync(join(o.imageDir, 'cmdline'), 'utf8').trim(),
          },
        },
      }),
    );
    // Raw uploads go through the streaming client.
    const raw = new ApiClient(conn);
    await raw.request('PUT', '/v1/projects/demo/images/testvm/files/kernel', { raw: kernel });
    await raw.request('PUT', '/v1/projects/demo/images/testvm/files/initrd', { raw: initrd });

    // Not pinned: for users in Madrid, within 60 ms — Madrid's node is the closest, and
    // every node of the federation qualifies, so it can be migrated or drained anywhere.
    this.say(
      'deploying the demo workload "hello" for users in Madrid (within 60 ms: placed on iberia-edge/mad-1-node-1)',
    );
    await answer(
      conn,
      typed.POST('/v1/projects/{project}/workloads', {
        params: { path: { project: 'demo' } },
        body: {
          metadata: { name: 'hello' },
          spec: {
            kind: 'vm',
            image: 'testvm',
            replicas: 1,
            resources: { vcpus: 1, memoryMiB: 256 },
            ports: [{ guest: 80 }],
            placement: { latency: [{ city: 'Madrid', maxRttMs: 60 }], weights: { latency: 100 } },
          },
        },
      }),
    );
    const inst = await this.until(
      async () => {
        const i = await answer(
          conn,
          typed.GET('/v1/projects/{project}/instances/{name}', {
            params: { path: { project: 'demo', name: 'hello-0' } },
          }),
        );
        return i.status.phase === 'Running' && i.status.ports.length ? i : undefined;
      },
      120_000,
      'the demo VM to boot',
    );
    const port = inst.status.ports[0]!;
    const demoUrl = `http://${port.address}:${port.host}/`;
    // Running means QEMU runs; the guest's web server starts a little later. The link
    // printed must answer when it is opened.
    await this.until(
      async () => (await fetch(demoUrl, { signal: AbortSignal.timeout(5000) })).ok,
      120_000,
      "the demo VM's web server to answer",
    );
    // `continuum login --dev` finds this run here.
    await writeCurrentDev({ pid: process.pid, api: cp.url, tokenFile: cp.adminTokenFile }).catch((err) =>
      this.say(`could not record this run for \`continuum login --dev\`: ${(err as Error).message}`),
    );
    return { demoUrl };
  }

  private async startAgent(
    label: string,
    node: string,
    token: string,
    netns: string | undefined,
    bind: string,
  ) {
    const dir = join(this.dataDir, 'agents', node);
    const args = [
      CLI,
      'agent',
      '--server',
      this.cp!.gatewayUrl!,
      '--token',
      token,
      '--data-dir',
      dir,
      '--name',
      node,
      '--port-bind-address',
      bind,
      '--stop-timeout',
      '2000',
    ];
    // nsenter joins the node's network namespace only; `ip netns exec` would also mount a
    // sysfs of its own, without the cgroup hierarchy that runc needs for containers.
    const child = netns
      ? spawn('nsenter', [`--net=/var/run/netns/${netns}`, '--', process.execPath, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const logFile = await fs.open(join(this.dataDir, `agent-${node}.log`), 'a');
    child.stdout!.on('data', (d) => void logFile.write(d));
    child.stderr!.on('data', (d) => void logFile.write(d));
    child.on('exit', () => void logFile.close());
    this.agents.push({ node, child, dir });
    this.say(`  agent ${label}${netns ? ` in namespace ${netns}` : ''}`);
  }

  private async until<T>(
    fn: () => Promise<T | undefined | false>,
    timeoutMs: number,
    what: string,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn().catch(() => undefined);
      if (v) return v;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; agent logs are in ${this.dataDir}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  get dir(): string {
    return this.dataDir;
  }

  /** Stops agents, removes every VM, namespace and (unless kept) the data directory. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const a of this.agents) {
        if (a.child.exitCode === null && a.child.signalCode === null) {
          a.child.kill('SIGTERM');
          await Promise.race([once(a.child, 'exit'), new Promise((r) => setTimeout(r, 5000))]);
          if (a.child.exitCode === null) a.child.kill('SIGKILL');
        }
        await removeInstances(a.dir);
      }
      await this.cp?.close().catch(() => undefined);
      if (this.prefix) await destroyNetwork(this.prefix, this.network?.hosts.length ?? 0);
      if (!this.opts.keep && !this.opts.dataDir) await fs.rm(this.dataDir, { recursive: true, force: true });
      if (this.prefix) await forgetRun(this.prefix);
      await forgetCurrentDev(process.pid).catch(() => undefined);
    })();
    return this.stopping;
  }
}
