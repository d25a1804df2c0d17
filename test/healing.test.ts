// Global placement and self-healing with real agents and real VMs: two nodes of two
// providers in two countries (agents as separate processes). A workload restricted to
// one country lands there; killing a node's agent and its VMs gets the replica running
// on the other node within 30 seconds, with the default health timings.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import { QemuRuntime } from '../src/runtimes/index.js';
import { startCli } from './support/cli.js';
import { type Http, http } from './support/control-plane.js';
import { project, provider, site } from './support/fixtures.js';
import { pidsMatching } from './support/processes.js';
import { testImage, uploadTestImage, waitFor } from './support/test-image.js';

describe('self-healing with real agents and VMs', () => {
  let dir: string;
  let cp: ControlPlane;
  let admin: Http;
  const agents = new Map<string, Awaited<ReturnType<typeof startCli>>>();
  const image = testImage();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'continuum-heal-'));
    cp = await startControlPlane({
      listen: '127.0.0.1:0',
      agentListen: '127.0.0.1:0',
      dataDir: join(dir, 'cp'),
    });
    admin = http(cp.url, cp.adminToken!);
    const r = await admin.post('/v1/apply', {
      documents: [
        provider('de-cloud'),
        site('de-cloud', 'fra-1'),
        provider('pl-edge', { headquarters: 'PL' }),
        site('pl-edge', 'waw-1', {
          country: 'PL',
          location: { latitude: 52.23, longitude: 21.01 },
          carbonIntensity: 660,
        }),
        project('demo'),
      ],
    });
    assert.equal(r.status, 200, r.text);
    await uploadTestImage(admin, 'demo', image);
    for (const [p, s, node] of [
      ['de-cloud', 'fra-1', 'de-node'],
      ['pl-edge', 'waw-1', 'pl-node'],
    ] as const) {
      const t = (await admin.post(`/v1/providers/${p}/sites/${s}/join-tokens`, {})).body;
      const a = await startCli(
        [
          'agent',
          '--server',
          cp.gatewayUrl!,
          '--token',
          t.token,
          '--data-dir',
          join(dir, node),
          '--name',
          node,
          '--port-bind-address',
          '127.0.0.1',
          '--stop-timeout',
          '1000',
        ],
        /Continuum agent running as node/,
      );
      agents.set(node, a);
    }
    await waitFor(
      'nodes ready',
      async () => (await admin.get('/v1/nodes?state=ready')).body.items.length === 2,
    );
  });

  after(async () => {
    for (const a of agents.values()) {
      if (a.child.exitCode === null && a.child.signalCode === null) {
        a.child.kill('SIGKILL');
        await once(a.child, 'exit');
      }
    }
    for (const node of ['de-node', 'pl-node']) {
      const rt = new QemuRuntime({ dir: join(dir, node, 'instances') });
      for (const id of await rt.list()) await rt.delete(id);
    }
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const serve = async (i: any) => {
    const p = i.status.ports[0];
    return (await fetch(`http://${p.address}:${p.host}/`, { signal: AbortSignal.timeout(3000) })).text();
  };

  test('a workload restricted to one country lands only there', async () => {
    await admin.post('/v1/projects/demo/workloads', {
      metadata: { name: 'pl-only' },
      spec: {
        kind: 'vm',
        image: 'testvm',
        replicas: 1,
        resources: { vcpus: 1, memoryMiB: 256 },
        ports: [{ guest: 80 }],
        placement: { countries: ['PL'] },
      },
    });
    const i = await waitFor('running', async () => {
      const x = (await admin.get('/v1/projects/demo/instances/pl-only-0')).body;
      return x.status?.phase === 'Running' && x;
    });
    assert.equal(i.spec.node, 'pl-edge/pl-node');
    assert.match(await waitFor('http', () => serve(i)), /^hello from pl-only-0/);
    assert.equal((await admin.del('/v1/projects/demo/workloads/pl-only')).status, 200);
  });

  test("killing a node's agent and its VMs gets the replica running on another node within 30 s", async () => {
    await admin.post('/v1/projects/demo/workloads', {
      metadata: { name: 'web' },
      spec: {
        kind: 'vm',
        image: 'testvm',
        replicas: 1,
        resources: { vcpus: 1, memoryMiB: 256 },
        ports: [{ guest: 80 }],
        placement: { weights: { carbon: 100 } },
      },
    });
    const first = await waitFor('running', async () => {
      const x = (await admin.get('/v1/projects/demo/instances/web-0')).body;
      return x.status?.phase === 'Running' && x;
    });
    assert.equal(first.spec.node, 'de-cloud/de-node', 'the greener site first');
    const victim = agents.get('de-node')!;
    const t0 = Date.now();
    victim.child.kill('SIGKILL');
    for (const pid of pidsMatching(join(dir, 'de-node', 'instances'))) process.kill(pid, 'SIGKILL');
    const moved = await waitFor(
      'replaced and serving',
      async () => {
        const x = (await admin.get('/v1/projects/demo/instances/web-0')).body;
        if (x.spec.node !== 'pl-edge/pl-node' || x.status.phase !== 'Running') return false;
        return (await serve(x).catch(() => '')).startsWith('hello from web-0') && x;
      },
      60_000,
    );
    const elapsed = Date.now() - t0;
    assert.ok(elapsed <= 30_000, `failure to replacement took ${elapsed} ms`);
    assert.equal(moved.spec.fence, first.spec.fence + 1);
    assert.equal((await admin.get('/v1/providers/de-cloud/nodes/de-node')).body.status.state, 'down');
  });
});
