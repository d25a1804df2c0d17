// The Kubernetes API facade with the real kubectl, over real containers: a control
// plane with its facade, three real agent processes (nodes of providers in Germany,
// France and Italy) running runc containers, and kubectl reading kubeconfigs that
// `continuum kubeconfig` wrote. Deployments are applied, listed, logged, scaled,
// re-applied, refused, left pending with the scheduler's reasons, watched, re-placed
// when their node fails and deleted; a tenant's kubeconfig sees only its project.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import { RuncRuntime } from '../src/runtimes/index.js';
import { runCli, startAgentProcess, type startCli } from './support/cli.js';
import { type Http, http, userWithToken } from './support/control-plane.js';
import { project, provider, site } from './support/fixtures.js';
import { freePort } from './support/processes.js';
import { uploadTestContainerImage } from './support/test-container.js';
import { waitFor } from './support/test-image.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const NODES = [
  { provider: 'alpha', site: 'fra', country: 'DE', lat: 50.1, lon: 8.7 },
  { provider: 'beta', site: 'par', country: 'FR', lat: 48.9, lon: 2.35 },
  { provider: 'gamma', site: 'mil', country: 'IT', lat: 45.5, lon: 9.2 },
] as const;

const deployment = (env: string, extra = '') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: httpd
          image: busybox
          ports:
            - containerPort: 8080
          resources:
            limits: {cpu: 500m, memory: 64Mi}
          env:
            - name: GREETING
              value: ${env}${extra}
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - key: topology.kubernetes.io/region
                    operator: In
                    values: [DE, FR]
`;

describe('kubectl against the Kubernetes API facade', () => {
  let dir: string;
  let cp: ControlPlane;
  let admin: Http;
  const agents = new Map<string, Awaited<ReturnType<typeof startCli>>>();
  const agentDir = (p: string) => join(dir, `agent-${p}`);
  let adminConfig: string;
  let tenantConfig: string;

  const kubectl = (config: string, args: string[], timeout = 60_000): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        'kubectl',
        args,
        { env: { ...process.env, KUBECONFIG: config, HOME: join(dir, 'home') }, timeout },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const k = (...args: string[]) => kubectl(adminConfig, args);
  const manifest = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  /** `kubectl get pods -o wide` as rows of NAME, READY, STATUS, RESTARTS, AGE, IP, NODE. */
  const pods = async () => {
    const r = await k('get', 'pods', '-o', 'wide');
    assert.equal(r.code, 0, r.stderr);
    return r.stdout
      .trim()
      .split('\n')
      .slice(1)
      .filter(Boolean)
      .map((l) => {
        const [name, ready, status, restarts, age, ip, node] = l.split(/\s+/);
        return { name: name!, ready, status, restarts, age, ip, node: node! };
      });
  };
  const runningPods = (prefix: string, n: number) =>
    waitFor(
      `${n} running ${prefix} pods`,
      async () => {
        const all = (await pods()).filter((p) => p.name.startsWith(`${prefix}-`));
        return all.length === n && all.every((p) => p.status === 'Running' && p.ready === '1/1') && all;
      },
      90_000,
    );
  const startAgent = async (p: string, extra: string[]) => {
    agents.set(p, await startAgentProcess({ dataDir: agentDir(p), extra }));
  };
  const killAgent = async (p: string) => {
    const a = agents.get(p);
    agents.delete(p);
    if (a && a.child.exitCode === null && a.child.signalCode === null) {
      a.child.kill('SIGKILL');
      await once(a.child, 'exit');
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'continuum-kubectl-'));
    mkdirSync(join(dir, 'home'));
    cp = await startControlPlane({
      listen: `127.0.0.1:${await freePort()}`,
      agentListen: `127.0.0.1:${await freePort()}`,
      kubernetesListen: `127.0.0.1:${await freePort()}`,
      dataDir: join(dir, 'cp'),
      nodeSuspectAfterMs: 3000,
      nodeDownAfterMs: 5000,
    });
    admin = http(cp.url, cp.adminToken!);
    const setup = await admin.post('/v1/apply', {
      documents: [
        ...NODES.flatMap((n) => [
          provider(n.provider, { headquarters: n.country }),
          site(n.provider, n.site, { country: n.country, location: { latitude: n.lat, longitude: n.lon } }),
        ]),
        project('shop'),
        project('other'),
      ],
    });
    assert.equal(setup.status, 200, setup.text);
    await uploadTestContainerImage(admin, 'shop');
    for (const n of NODES) {
      const jt = (await admin.post(`/v1/providers/${n.provider}/sites/${n.site}/join-tokens`, { maxUses: 1 }))
        .body;
      await startAgent(n.provider, ['--server', cp.gatewayUrl!, '--token', jt.token, '--name', 'n1']);
    }
    await waitFor('three ready nodes', async () => {
      const all = await Promise.all(NODES.map((n) => admin.get(`/v1/providers/${n.provider}/nodes/n1`)));
      return all.every((r) => r.body.status?.state === 'ready' && r.body.status.inventory?.containers);
    });
    const cli = (token: string, args: string[]) => runCli(['--server', cp.url, '--token', token, ...args]);
    const written = await cli(cp.adminToken!, [
      '-p',
      'shop',
      'kubeconfig',
      '--file',
      join(dir, 'admin.kubeconfig'),
    ]);
    assert.equal(written.code, 0, written.stderr);
    adminConfig = join(dir, 'admin.kubeconfig');
    const olga = await userWithToken(admin, 'olga', [{ role: 'project-admin', project: 'other' }]);
    const printed = await cli(olga, ['-p', 'other', 'kubeconfig']);
    assert.equal(printed.code, 0, printed.stderr);
    tenantConfig = manifest('olga.kubeconfig', printed.stdout);
  });

  after(async () => {
    for (const p of [...agents.keys()]) await killAgent(p);
    for (const n of NODES) {
      const rt = new RuncRuntime({ dir: join(agentDir(n.provider), 'containers') });
      for (const id of await rt.list().catch(() => [])) await rt.delete(id);
    }
    await cp.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test('kubectl sees the federation: version, nodes with topology labels, namespaces, Continuum kinds', async () => {
    const v = await k('version');
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /Server Version: v1\.32\.0-continuum/);
    const nodes = await k('get', 'nodes', '-L', 'topology.kubernetes.io/region');
    assert.equal(nodes.code, 0, nodes.stderr);
    for (const n of NODES)
      assert.match(
        nodes.stdout,
        new RegExp(
          `^${n.provider}\\.n1\\s+Ready\\s+${n.provider}\\s+${n.country}\\s+${n.provider}\\.${n.site}\\s`,
          'm',
        ),
      );
    const ns = await k('get', 'namespaces');
    assert.match(ns.stdout, /^shop\s+Active/m);
    const sites = await k('get', 'sites');
    assert.equal(sites.code, 0, sites.stderr);
    for (const n of NODES)
      assert.match(sites.stdout, new RegExp(`^${n.provider}\\s+${n.site}\\s+${n.country}\\s`, 'm'));
  });

  test('apply a Deployment restricted to two countries: 3 pods Running there on two providers, logs, HTTP', async () => {
    const file = manifest('web.yaml', deployment('hello'));
    const created = await k('apply', '-f', file);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout.trim(), 'deployment.apps/web created');
    const running = await runningPods('web', 3);
    for (const p of running) assert.match(p.node, /^(alpha|beta)\.n1$/, `${p.name} on ${p.node}`);
    assert.ok(new Set(running.map((p) => p.node.split('.')[0])).size >= 2, 'on at least two providers');
    const rollout = await k('rollout', 'status', 'deployment/web', '--timeout=60s');
    assert.equal(rollout.code, 0, `${rollout.stdout}${rollout.stderr}`);
    assert.match(rollout.stdout, /deployment "web" successfully rolled out/);

    const logs = await waitFor('its output', async () => {
      const r = await k('logs', 'web-0');
      return r.code === 0 && /tick 2 on web-0/.test(r.stdout) && r.stdout;
    });
    assert.match(logs, /tick 1 on web-0/);
    // Followed: new lines arrive while kubectl waits.
    const follow = spawn('kubectl', ['logs', '-f', 'web-0'], {
      env: { ...process.env, KUBECONFIG: adminConfig, HOME: join(dir, 'home') },
    });
    let followed = '';
    follow.stdout!.on('data', (d) => {
      followed += d.toString();
    });
    try {
      const last = Math.max(...[...logs.matchAll(/tick (\d+) on web-0/g)].map((m) => Number(m[1])));
      await waitFor('a newer line followed', async () =>
        new RegExp(`tick ${last + 2} on web-0`).test(followed),
      );
    } finally {
      follow.kill();
    }
    const tail = await k('logs', 'web-0', '--tail=1');
    assert.equal(tail.stdout.trim().split('\n').length, 1);
    // Its forwarded port answers, where the pod says.
    const pod = JSON.parse((await k('get', 'pod', 'web-1', '-o', 'json')).stdout);
    const port = pod.spec.containers[0].ports[0];
    assert.equal(port.containerPort, 8080);
    const body = await waitFor('HTTP', async () =>
      (
        await fetch(`http://${pod.status.hostIP}:${port.hostPort}/`, { signal: AbortSignal.timeout(3000) })
      ).text(),
    );
    assert.equal(body, 'hello from the test container\n');
    assert.equal(pod.status.containerStatuses[0].ready, true);
    assert.match(pod.spec.nodeName, /^(alpha|beta)\.n1$/);
  });

  test('re-applying: edited says configured, unchanged says unchanged, server-side apply too', async () => {
    const edited = await k('apply', '-f', manifest('web2.yaml', deployment('bonjour')));
    assert.equal(edited.code, 0, edited.stderr);
    assert.equal(edited.stdout.trim(), 'deployment.apps/web configured');
    const again = await k('apply', '-f', join(dir, 'web2.yaml'));
    assert.equal(again.stdout.trim(), 'deployment.apps/web unchanged');
    const env = await k(
      'get',
      'deployment',
      'web',
      '-o',
      'jsonpath={.spec.template.spec.containers[0].env[0].value}',
    );
    assert.equal(env.stdout, 'bonjour');
    const ssa = await k('apply', '--server-side', '-f', join(dir, 'web.yaml'));
    assert.equal(ssa.code, 0, ssa.stderr);
    assert.equal(ssa.stdout.trim(), 'deployment.apps/web serverside-applied');
    const back = await k(
      'get',
      'deployment',
      'web',
      '-o',
      'jsonpath={.spec.template.spec.containers[0].env[0].value}',
    );
    assert.equal(back.stdout, 'hello');
    // The workload behind it, as Continuum sees it.
    const w = (await admin.get('/v1/projects/shop/workloads/web')).body;
    assert.deepEqual(w.spec.placement, { countries: ['DE', 'FR'] });
    assert.deepEqual(w.spec.resources, { vcpus: 1, memoryMiB: 64 });
    assert.deepEqual(w.spec.container.env, { GREETING: 'hello' });
  });

  test('kubectl scale, watched with get -w', async () => {
    const watcher: ChildProcess = spawn('kubectl', ['get', 'pods', '-w', '--no-headers'], {
      env: { ...process.env, KUBECONFIG: adminConfig, HOME: join(dir, 'home') },
    });
    let seen = '';
    watcher.stdout!.on('data', (d) => {
      seen += d.toString();
    });
    try {
      await waitFor('the watch lists the pods', async () => /web-2/.test(seen));
      const scaled = await k('scale', 'deployment', 'web', '--replicas=4');
      assert.equal(scaled.code, 0, scaled.stderr);
      assert.equal(scaled.stdout.trim(), 'deployment.apps/web scaled');
      await runningPods('web', 4);
      await waitFor('the watch shows web-3 running', async () => /^web-3\s+1\/1\s+Running/m.test(seen));
      assert.equal((await k('scale', 'deployment', 'web', '--replicas=3')).code, 0);
      await runningPods('web', 3);
    } finally {
      watcher.kill();
    }
    const d = await k('get', 'deployment', 'web');
    assert.match(d.stdout, /^web\s+3\/3\s+3\s+3\s/m);
  });

  test('an unknown field is refused with its name; nothing changes', async () => {
    const bad = deployment('hello', '\n              valueFrom: {}\n          livenessProbe: {}');
    const r = await k('apply', '-f', manifest('bad.yaml', bad));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /strict decoding error: unknown field/);
    assert.match(r.stderr, /unknown field "spec\.template\.spec\.containers\[0\]\.env\[0\]\.valueFrom"/);
    assert.match(r.stderr, /unknown field "spec\.template\.spec\.containers\[0\]\.livenessProbe"/);
    const created = await k(
      'apply',
      '-f',
      manifest('bad-new.yaml', bad.replace('name: web', 'name: web-bad')),
    );
    assert.notEqual(created.code, 0);
    assert.match(created.stderr, /unknown field "spec\.template\.spec\.containers\[0\]\.livenessProbe"/);
    assert.equal((await admin.get('/v1/projects/shop/workloads/web-bad')).status, 404);
    // kubectl's generators send protobuf: refused with the way that works, which does.
    const generated = await k('create', 'deployment', 'gen', '--image=busybox');
    assert.notEqual(generated.code, 0);
    assert.match(generated.stderr, /--dry-run=client -o yaml \| kubectl apply -f -/);
    const piped = await new Promise<Run>((resolve) =>
      execFile(
        'bash',
        [
          '-o',
          'pipefail',
          '-c',
          'kubectl create deployment gen --image=busybox --replicas=0 --dry-run=client -o yaml | kubectl apply -f -',
        ],
        { env: { ...process.env, KUBECONFIG: adminConfig, HOME: join(dir, 'home') }, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
      ),
    );
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout.trim(), 'deployment.apps/gen created');
    assert.equal((await k('delete', 'deployment', 'gen')).code, 0);
  });

  test('an unplaceable Deployment leaves pods Pending with the scheduler’s reasons in describe', async () => {
    const big = `apiVersion: apps/v1
kind: Deployment
metadata: {name: big}
spec:
  replicas: 2
  selector: {matchLabels: {app: big}}
  template:
    metadata: {labels: {app: big}}
    spec:
      nodeSelector: {topology.kubernetes.io/region: IT}
      containers:
        - {name: c, image: busybox, resources: {limits: {memory: 900Gi}}}
`;
    assert.equal((await k('apply', '-f', manifest('big.yaml', big))).code, 0);
    const pending = await waitFor('pending pods', async () => {
      const all = (await pods()).filter((p) => p.name.startsWith('big-'));
      return all.length === 2 && all.every((p) => p.status === 'Pending') && all;
    });
    assert.equal(pending[0]!.node, '<none>');
    const d = await waitFor('scheduler reasons', async () => {
      const r = await k('describe', 'pod', 'big-0');
      return /FailedScheduling/.test(r.stdout) && r.stdout;
    });
    assert.match(d, /PodScheduled\s+False/);
    assert.match(d, /Warning\s+FailedScheduling\s+.*nodes are available/);
    assert.match(d, /country not allowed/);
    assert.match(d, /1 insufficient memoryMiB/);
    assert.equal((await k('delete', 'deployment', 'big')).code, 0);
  });

  test('a tenant’s kubeconfig sees and changes only its own project', async () => {
    const t = (...args: string[]) => kubectl(tenantConfig, args);
    const ns = await t('get', 'namespaces');
    assert.equal(ns.code, 0, ns.stderr);
    assert.deepEqual(
      ns.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(/\s+/)[0]),
      ['other'],
    );
    const list = await t('get', 'pods', '-n', 'shop');
    assert.notEqual(list.code, 0);
    assert.match(list.stderr, /namespaces "shop" not found/);
    const del = await t('delete', 'deployment', 'web', '-n', 'shop');
    assert.notEqual(del.code, 0);
    const apply = await t('apply', '-n', 'shop', '-f', join(dir, 'web.yaml'));
    assert.notEqual(apply.code, 0);
    assert.match(apply.stderr, /namespaces "shop" not found/);
    const all = await t('get', 'deployments', '-A');
    assert.doesNotMatch(all.stdout, /web/);
    assert.equal((await k('get', 'deployment', 'web')).code, 0, 'the owner’s Deployment is untouched');
    const stranger = await kubectl(tenantConfig, ['--token', 'ctm_not-a-token', 'get', 'pods']);
    assert.notEqual(stranger.code, 0);
    assert.match(stranger.stderr, /You must be logged in to the server \(Unauthorized\)/);
  });

  test('Continuum’s own kinds through kubectl: a VM workload applied from a file', async () => {
    const vm = manifest(
      'vm.yaml',
      `apiVersion: continuum/v1
kind: Workload
metadata: {name: vm1}
spec:
  kind: vm
  image: busybox
  replicas: 0
  resources: {vcpus: 1, memoryMiB: 256}
  placement: {countries: [FR]}
`,
    );
    const r = await k('apply', '-f', vm);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'workload.continuum/vm1 created');
    assert.equal((await k('apply', '-f', vm)).stdout.trim(), 'workload.continuum/vm1 unchanged');
    const w = (await admin.get('/v1/projects/shop/workloads/vm1')).body;
    assert.equal(w.spec.kind, 'vm');
    const list = await k('get', 'workloads');
    assert.match(list.stdout, /^shop\s+vm1\s+vm\s/m);
    assert.equal((await k('delete', '-f', vm)).code, 0);
  });

  test('a node failure re-places its pods elsewhere; the node back removes its fenced copies', async () => {
    const before = await runningPods('web', 3);
    const victim = before.find((p) => p.node === 'alpha.n1') ?? before[0]!;
    const provider = victim.node.split('.')[0]!;
    const survivor = provider === 'alpha' ? 'beta.n1' : 'alpha.n1';
    const uid = JSON.parse((await k('get', 'pod', victim.name, '-o', 'json')).stdout).metadata.uid;
    await killAgent(provider);
    const after = await waitFor(
      'pods re-placed',
      async () => {
        const all = (await pods()).filter((p) => p.name.startsWith('web-'));
        return all.length === 3 && all.every((p) => p.status === 'Running' && p.node === survivor) && all;
      },
      120_000,
    );
    assert.equal(after.length, 3);
    const node = await k('get', 'node', victim.node);
    assert.match(node.stdout, /NotReady/);
    // The agent comes back: the fenced copy it still runs is removed.
    const n = NODES.find((x) => x.provider === provider)!;
    await startAgent(provider, []);
    await waitFor(
      'the node ready again',
      async () => (await admin.get(`/v1/providers/${n.provider}/nodes/n1`)).body.status?.state === 'ready',
    );
    const rt = new RuncRuntime({ dir: join(agentDir(provider), 'containers') });
    await waitFor('the fenced container removed', async () => !(await rt.list()).includes(uid), 60_000);
  });

  test('kubectl delete removes the Deployment, its pods and their containers', async () => {
    const r = await k('delete', 'deployment', 'web');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'deployment.apps "web" deleted');
    await waitFor('no pods', async () => (await pods()).length === 0);
    for (const n of NODES) {
      const rt = new RuncRuntime({ dir: join(agentDir(n.provider), 'containers') });
      await waitFor(`no containers on ${n.provider}`, async () => (await rt.list()).length === 0);
    }
    const gone = await k('get', 'deployment', 'web');
    assert.match(gone.stderr, /deployments.apps "web" not found/);
  });
});
