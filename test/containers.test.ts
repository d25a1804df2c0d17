// Containers end to end with real parts: a control plane, a real agent process (which
// finds runc, umoci and socat here and says so in its inventory), and real runc
// containers from an OCI image uploaded like a VM image. A container workload is placed,
// runs, answers on its forwarded port, logs, stops and starts, outlives its agent killed
// with kill -9, and goes away with its workload; images of the wrong kind and VM-only
// fields are refused with the reason.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import { RuncRuntime } from '../src/runtimes/index.js';
import { CLI, runCli, startAgentProcess, type startCli } from './support/cli.js';
import { type Http, http } from './support/control-plane.js';
import { project, provider, site } from './support/fixtures.js';
import { freePort } from './support/processes.js';
import { testContainerImage } from './support/test-container.js';
import { waitFor } from './support/test-image.js';

describe('containers on a real agent', () => {
  let dir: string;
  let cp: ControlPlane;
  let admin: Http;
  let agentDir: string;
  let agent: Awaited<ReturnType<typeof startCli>> | undefined;

  const startAgent = async (extra: string[] = []) => {
    agent = await startAgentProcess({ dataDir: agentDir, extra });
    return agent;
  };
  const killAgent = async () => {
    const a = agent;
    agent = undefined;
    if (a && a.child.exitCode === null && a.child.signalCode === null) {
      a.child.kill('SIGKILL');
      await once(a.child, 'exit');
    }
  };
  const instance = async (name = 'web-0') => (await admin.get(`/v1/projects/shop/instances/${name}`)).body;
  const serve = async (i: any) => {
    const p = i.status.ports[0];
    return (await fetch(`http://${p.address}:${p.host}/`, { signal: AbortSignal.timeout(3000) })).text();
  };
  const runcList = () => execFileSync('runc', ['list', '-q'], { encoding: 'utf8' });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'continuum-containers-'));
    agentDir = join(dir, 'agent');
    cp = await startControlPlane({
      listen: `127.0.0.1:${await freePort()}`,
      agentListen: `127.0.0.1:${await freePort()}`,
      dataDir: join(dir, 'cp'),
    });
    admin = http(cp.url, cp.adminToken!);
    const oci = readFileSync(testContainerImage());
    const sha = createHash('sha256').update(oci).digest('hex');
    const setup = await admin.post('/v1/apply', {
      documents: [
        provider('edge-a'),
        site('edge-a', 'site-1'),
        project('shop'),
        {
          kind: 'Image',
          metadata: { name: 'busybox', project: 'shop' },
          spec: { format: 'oci', files: { oci: { sha256: sha } } },
        },
      ],
    });
    assert.equal(setup.status, 200, setup.text);
    const up = await admin.put('/v1/projects/shop/images/busybox/files/oci', oci);
    assert.equal(up.status, 200, up.text);
    assert.equal(up.body.status.phase, 'Available');
    const jt = (await admin.post('/v1/providers/edge-a/sites/site-1/join-tokens', { maxUses: 1 })).body;
    await startAgent(['--server', cp.gatewayUrl!, '--token', jt.token, '--name', 'node-1']);
    await waitFor('node ready', async () => {
      const n = (await admin.get('/v1/providers/edge-a/nodes/node-1')).body;
      return n.status?.state === 'ready';
    });
  });

  after(async () => {
    await killAgent();
    const rt = new RuncRuntime({ dir: join(agentDir, 'containers') });
    for (const id of await rt.list()) await rt.delete(id);
    await cp.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the node says it runs containers; the CLI uploads an OCI archive as an image', async () => {
    const n = (await admin.get('/v1/providers/edge-a/nodes/node-1')).body;
    assert.equal(n.status.inventory.containers, true);
    const cli = (args: string[]) =>
      runCli(['--server', cp.url, '--token', cp.adminToken!, '-p', 'shop', ...args]);
    const up = await cli(['image', 'upload', 'busybox-cli', '--oci', testContainerImage()]);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /^image\/shop\/busybox-cli Available$/m);
    const img = (await admin.get('/v1/projects/shop/images/busybox-cli')).body;
    assert.equal(img.spec.format, 'oci');
    const both = await cli(['image', 'upload', 'x', '--oci', testContainerImage(), '--disk', '/dev/null']);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /a disk, a kernel \+ initrd, or an OCI archive: give one/);
  });

  test('a container workload runs, answers on its port, logs, stops and starts', async () => {
    const apply = await admin.post('/v1/apply', {
      documents: [
        {
          kind: 'Workload',
          metadata: { name: 'web', project: 'shop' },
          spec: {
            kind: 'container',
            image: 'busybox',
            replicas: 1,
            resources: { vcpus: 1, memoryMiB: 64 },
            ports: [{ guest: 8080 }],
            container: { env: { GREETING: 'hallo' } },
          },
        },
      ],
    });
    assert.equal(apply.status, 200, apply.text);
    const running = await waitFor('instance running', async () => {
      const i = await instance();
      return i.status?.phase === 'Running' && i.status.ports.length && i;
    });
    assert.equal(running.spec.node, 'edge-a/node-1');
    assert.equal(await waitFor('http', () => serve(running)), 'hello from the test container\n');
    const logs = await waitFor('its output', async () => {
      const r = await runCli(['--server', cp.url, '--token', cp.adminToken!, '-p', 'shop', 'logs', 'web-0']);
      return r.code === 0 && /tick 2 on web-0/.test(r.stdout) && r.stdout;
    });
    assert.match(logs, /tick 1 on web-0/);
    // Followed output piped into a reader that stops early ends quietly.
    // (asynchronously: the control plane answering the CLI runs in this process)
    const piped = await promisify(execFile)(
      'bash',
      ['-o', 'pipefail', '-c', `"${process.execPath}" "${CLI}" -p shop logs web-0 -f | head -n 2`],
      {
        encoding: 'utf8',
        env: { ...process.env, CONTINUUM_SERVER: cp.url, CONTINUUM_TOKEN: cp.adminToken! },
        timeout: 30_000,
      },
    );
    assert.equal(piped.stdout.split('\n').filter(Boolean).length, 2, piped.stdout);
    assert.equal(piped.stderr, '');
    assert.match(runcList(), new RegExp(running.metadata.uid));

    assert.equal((await admin.post('/v1/projects/shop/instances/web-0/stop', {})).status, 200);
    await waitFor('stopped', async () => (await instance()).status.phase === 'Stopped');
    await assert.rejects(serve(running));
    assert.equal((await admin.post('/v1/projects/shop/instances/web-0/start', {})).status, 200);
    const again = await waitFor('started', async () => {
      const i = await instance();
      return i.status.phase === 'Running' && i;
    });
    await waitFor('http after start', () => serve(again));
  });

  test('the agent killed with kill -9 and restarted adopts its running container', async () => {
    const before = await instance();
    const pidOf = () =>
      JSON.parse(execFileSync('runc', ['state', before.metadata.uid], { encoding: 'utf8' })).pid;
    const pid = pidOf();
    await killAgent();
    // The container keeps serving while its agent is away.
    assert.equal(await serve(before), 'hello from the test container\n');
    await startAgent();
    await waitFor('the node back', async () => {
      const n = (await admin.get('/v1/providers/edge-a/nodes/node-1')).body;
      return n.status?.state === 'ready';
    });
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(pidOf(), pid, 'the same container, not a new one');
    assert.equal((await instance()).status.phase, 'Running');
  });

  test('images of the wrong kind and VM-only fields are refused with the reason', async () => {
    const wl = (name: string, spec: object) => ({
      kind: 'Workload',
      metadata: { name, project: 'shop' },
      spec: { replicas: 1, resources: { vcpus: 1, memoryMiB: 64 }, ...spec },
    });
    const bad = await admin.post('/v1/apply', {
      documents: [wl('bad', { kind: 'container', image: 'busybox', userData: '#cloud-config\n' })],
    });
    assert.equal(bad.status, 422);
    assert.deepEqual(bad.body.error.details, [
      { path: 'spec.userData', message: 'containers take no cloud-init user data (use spec.container.env)' },
    ]);
    const vmWithOci = await admin.post('/v1/apply', {
      documents: [wl('vm', { kind: 'vm', image: 'busybox' })],
    });
    assert.equal(vmWithOci.status, 200, vmWithOci.text);
    const w = await waitFor('its status', async () => {
      const x = (await admin.get('/v1/projects/shop/workloads/vm')).body;
      return x.status.message && x;
    });
    assert.match(
      w.status.message,
      /image 'busybox' is an OCI image: a VM runs a qcow2, raw or kernel-initrd image/,
    );
    assert.equal((await admin.del('/v1/projects/shop/workloads/vm')).status, 200);
    const migrate = await admin.post('/v1/projects/shop/migrations', {
      metadata: { name: 'move-web' },
      spec: { instance: 'web-0' },
    });
    assert.equal(migrate.status, 422, migrate.text);
    assert.match(migrate.body.error.message, /containers do not migrate/);
  });

  test('an export carries the OCI image and says how to run the container without Continuum', async () => {
    const file = join(dir, 'shop-export.tar');
    const r = await runCli([
      '--server',
      cp.url,
      '--token',
      cp.adminToken!,
      'export',
      'project',
      'shop',
      '-o',
      file,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const listing = execFileSync('tar', ['-tf', file], { encoding: 'utf8' });
    assert.match(listing, /^continuum-export-shop\/images\/busybox\/oci$/m);
    const readme = execFileSync('tar', ['-xOf', file, 'continuum-export-shop/README.md'], {
      encoding: 'utf8',
    });
    assert.match(readme, /## Run each container/);
    assert.match(
      readme,
      /podman run --rm --memory 64m --cpus 1 -p 8080:8080 -e 'GREETING=hallo' oci-archive:images\/busybox\/oci:latest/,
    );
    assert.match(readme, /umoci unpack --image layouts\/busybox:latest bundles\/web-0/);
    assert.doesNotMatch(readme, /### web-0\n\n```sh\ngenisoimage/, 'no VM boot line for a container');
  });

  test('deleting the workload removes the container, its supervisor and its network', async () => {
    const uid = (await instance()).metadata.uid;
    assert.equal((await admin.del('/v1/projects/shop/workloads/web')).status, 200);
    await waitFor(
      'the instance gone',
      async () => (await admin.get('/v1/projects/shop/instances/web-0')).status === 404,
    );
    await waitFor('the container gone', async () => !runcList().includes(uid));
    assert.deepEqual(await new RuncRuntime({ dir: join(agentDir, 'containers') }).list(), []);
  });
});
