// Global placement with the real control plane and simulated nodes (real agents over the
// real protocol, with the simulated runtime): residency and sovereignty rules, spread,
// explanations of unplaceable replicas, scaling, node failure with fencing, and drain.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import { REASONS } from '../src/scheduler/index.js';
import { type SimNode, startSimNode } from '../src/sim/index.js';
import { runCli } from './support/cli.js';
import { type Http, http } from './support/control-plane.js';
import { project, provider, site } from './support/fixtures.js';
import { waitFor } from './support/test-image.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('global placement and self-healing', () => {
  let dir: string;
  let cp: ControlPlane;
  let admin: Http;
  const nodes = new Map<string, SimNode>();
  const tokens = new Map<string, string>();

  const addNode = async (prov: string, name: string, inventory = {}) => {
    const n = await startSimNode(cp.gatewayUrl!, join(dir, 'nodes'), {
      name,
      joinToken: tokens.get(prov)!,
      inventory,
    });
    nodes.set(name, n);
    await waitFor(
      `${name} ready`,
      async () => (await admin.get(`/v1/providers/${prov}/nodes/${name}`)).body.status?.state === 'ready',
    );
    return n;
  };
  const workload = (name: string, spec: object) =>
    admin.post('/v1/apply', {
      documents: [
        {
          kind: 'Workload',
          metadata: { name, project: 'shop' },
          spec: { kind: 'vm', image: 'img', replicas: 1, resources: { vcpus: 1, memoryMiB: 512 }, ...spec },
        },
      ],
    });
  const instances = async (w: string) =>
    (await admin.get(`/v1/projects/shop/instances?workload=${w}`)).body.items as any[];
  const running = (w: string, n: number) =>
    waitFor(`${w}: ${n} running`, async () => {
      const items = await instances(w);
      return items.length === n && items.every((i) => i.status.phase === 'Running') && items;
    });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'continuum-sched-'));
    cp = await startControlPlane({
      listen: '127.0.0.1:0',
      agentListen: '127.0.0.1:0',
      dataDir: join(dir, 'cp'),
      nodeSuspectAfterMs: 1500,
      nodeDownAfterMs: 3000,
    });
    admin = http(cp.url, cp.adminToken!);
    const r = await admin.post('/v1/apply', {
      documents: [
        provider('de-cloud', { headquarters: 'DE', certifications: ['C5'] }),
        site('de-cloud', 'fra-1'),
        provider('es-edge', { headquarters: 'ES', certifications: [] }),
        site('es-edge', 'mad-1', {
          country: 'ES',
          location: { latitude: 40.42, longitude: -3.7 },
          tier: 'edge',
          carbonIntensity: 150,
        }),
        provider('us-cloud', {
          headquarters: 'US',
          jurisdiction: 'non-EU',
          euControlled: false,
          certifications: [],
        }),
        site('us-cloud', 'par-1', {
          country: 'FR',
          location: { latitude: 48.86, longitude: 2.35 },
          carbonIntensity: 55,
        }),
        project('shop'),
        {
          kind: 'Image',
          metadata: { name: 'img', project: 'shop' },
          spec: { format: 'raw', files: { disk: { sha256: sha('disk') } } },
        },
      ],
    });
    assert.equal(r.status, 200, r.text);
    await admin.put('/v1/projects/shop/images/img/files/disk', Buffer.from('disk'));
    for (const [p, s] of [
      ['de-cloud', 'fra-1'],
      ['es-edge', 'mad-1'],
      ['us-cloud', 'par-1'],
    ] as const) {
      const t = await admin.post(`/v1/providers/${p}/sites/${s}/join-tokens`, { maxUses: 10 });
      tokens.set(p, t.body.token);
    }
    await addNode('de-cloud', 'de-1');
    await addNode('de-cloud', 'de-2');
    await addNode('es-edge', 'es-1');
    await addNode('us-cloud', 'us-1');
  });

  after(async () => {
    for (const n of nodes.values()) await n.agent.stop();
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a workload restricted to one country lands only there', async () => {
    assert.equal((await workload('es-only', { replicas: 3, placement: { countries: ['ES'] } })).status, 200);
    const items = await running('es-only', 3);
    assert.deepEqual([...new Set(items.map((i) => i.spec.node))], ['es-edge/es-1']);
  });

  test('sovereignty rules keep replicas off non-EU providers', async () => {
    await workload('sovereign', {
      replicas: 4,
      placement: { jurisdiction: 'EU', euControlled: true, weights: { carbon: 100 } },
    });
    const items = await running('sovereign', 4);
    assert.ok(
      items.every((i) => !i.spec.node.startsWith('us-cloud/')),
      JSON.stringify(items.map((i) => i.spec.node)),
    );
  });

  test('a hard spread puts replicas on as many providers as asked', async () => {
    await workload('spread', {
      replicas: 3,
      placement: { spread: { across: 'provider', minDomains: 3, mode: 'hard' } },
    });
    const items = await running('spread', 3);
    assert.equal(new Set(items.map((i) => i.spec.node.split('/')[0])).size, 3);
  });

  test('an unplaceable replica stays pending with its reasons, and is placed when capacity appears', async () => {
    await workload('big', { replicas: 1, resources: { vcpus: 100, memoryMiB: 512 } });
    const w = await waitFor('pending with reasons', async () => {
      const x = (await admin.get('/v1/projects/shop/workloads/big')).body;
      return x.status.placement?.pending === 1 && x;
    });
    assert.equal(w.status.phase, 'Pending');
    assert.equal(w.status.placement.message, `0/4 nodes are available: 4 ${REASONS.resources}`);
    assert.deepEqual(w.status.placement.explanation.exhausted, { vcpus: 4 });
    const explain = await runCli(['--server', cp.url, '--token', cp.adminToken!, 'explain', 'shop/big']);
    assert.match(explain.stdout, /0\/4 nodes are available: 4 resources exhausted/);
    assert.match(explain.stdout, /out of: vcpus on 4 node\(s\)/);
    await addNode('de-cloud', 'de-big', { cpus: 32 });
    const [i] = await running('big', 1);
    assert.equal(i.spec.node, 'de-cloud/de-big');
    // The explanation says what the node offered and how: 32 CPUs at the default 4:1.
    const placed = await runCli(['--server', cp.url, '--token', cp.adminToken!, 'explain', 'shop/big']);
    assert.match(
      placed.stdout,
      /de-cloud\/de-big .*\n\s+vCPU 0\/128 \(32 CPUs, overcommit 4:1\), memory 0\/\d+ MiB/,
    );
  });

  test('scaling up and down adds and removes replicas; deleting removes them everywhere', async () => {
    await workload('scale', { replicas: 1 });
    await running('scale', 1);
    await workload('scale', { replicas: 4 });
    await running('scale', 4);
    await workload('scale', { replicas: 2 });
    const two = await running('scale', 2);
    assert.deepEqual(two.map((i) => i.metadata.name).sort(), ['scale-0', 'scale-1']);
    assert.equal((await admin.del('/v1/projects/shop/workloads/scale')).status, 200);
    await waitFor('all gone', async () => (await instances('scale')).length === 0);
    for (const n of nodes.values())
      assert.ok(!(await n.runtime.list()).some((id) => two.some((i) => i.metadata.uid === id)));
  });

  test('when a node goes down its replica is re-placed, and the returning node stops its stale copy', async () => {
    await workload('heal', { replicas: 1, placement: { countries: ['DE'] } });
    const [first] = await running('heal', 1);
    const nodeName = first.spec.node.split('/')[1];
    const victim = nodes.get(nodeName)!;
    await victim.agent.stop();
    const t0 = Date.now();
    const moved = await waitFor('re-placed and running', async () => {
      const [i] = await instances('heal');
      return i && i.spec.node !== first.spec.node && i.status.phase === 'Running' && i;
    });
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 30_000, `replacement took ${elapsed} ms`);
    assert.equal(moved.metadata.uid, first.metadata.uid, 'the same instance, re-bound');
    assert.equal(moved.spec.fence, first.spec.fence + 1, 'fenced by a new generation');
    assert.equal((await admin.get(`/v1/providers/de-cloud/nodes/${nodeName}`)).body.status.state, 'down');
    assert.deepEqual(
      await victim.runtime.list().then((l) => l.includes(first.metadata.uid)),
      true,
      'stale copy still on the silent node',
    );
    // The old node comes back with the same runtime: its copy must go.
    const back = await startSimNode(
      cp.gatewayUrl!,
      join(dir, 'nodes'),
      { name: nodeName, joinToken: '' },
      victim.runtime,
    );
    nodes.set(nodeName, back);
    await waitFor(
      'stale copy removed',
      async () => !(await victim.runtime.list()).includes(first.metadata.uid),
    );
    const live = [...nodes.values()].filter((n) => n.runtime !== victim.runtime);
    const copies = (await Promise.all(live.map((n) => n.runtime.list())))
      .flat()
      .filter((id) => id === first.metadata.uid);
    assert.equal(copies.length, 1, 'exactly one live copy');
    await waitFor(
      'node ready again',
      async () => (await admin.get(`/v1/providers/de-cloud/nodes/${nodeName}`)).body.status.state === 'ready',
    );
  });

  test('a change reaches only the instances it names; the periodic pass heals the rest', async () => {
    // A node whose periodic pass runs only when asked (kick), so that nothing else heals.
    const n = await startSimNode(
      cp.gatewayUrl!,
      join(dir, 'nodes'),
      { name: 'es-2', joinToken: tokens.get('es-edge')! },
      undefined,
      { reconcileIntervalMs: 3_600_000 },
    );
    nodes.set('es-2', n);
    await waitFor(
      'es-2 ready',
      async () => (await admin.get('/v1/providers/es-edge/nodes/es-2')).body.status?.state === 'ready',
    );
    await workload('pin-a', { placement: { node: 'es-edge/es-2' } });
    const [a] = await running('pin-a', 1);
    n.runtime.crash(a.metadata.uid);
    // A new instance on the node: its pass covers it alone and leaves the crashed VM be.
    await workload('pin-b', { placement: { node: 'es-edge/es-2' } });
    await running('pin-b', 1);
    assert.equal((await n.runtime.inspect(a.metadata.uid)).state, 'crashed');
    // The periodic pass walks every instance: the crashed VM is restarted and reported.
    n.agent.kick();
    await waitFor('pin-a restarted', async () => {
      const [i] = await instances('pin-a');
      return i.status.phase === 'Running' && i.status.restarts === 1;
    });
    assert.equal((await n.runtime.inspect(a.metadata.uid)).state, 'running');
    // explain says the workload is pinned, and what that means.
    const explained = await runCli(['--server', cp.url, '--token', cp.adminToken!, 'explain', 'shop/pin-a']);
    assert.match(
      explained.stdout,
      /Pinned to node es-edge\/es-2 \(spec\.placement\.node\): the scheduler considers no other node/,
    );
    const described = await runCli([
      '--server',
      cp.url,
      '--token',
      cp.adminToken!,
      'describe',
      'instance',
      'shop/pin-a-0',
    ]);
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, /^Node: +es-edge\/es-2 \(fence \d+\)$/m);
    assert.match(described.stdout, /^Events:\n {2}AGE +ACTION +BY\n[\s\S]*create/m);
  });

  test('draining a node moves its replicas off first', async () => {
    await workload('drainme', { replicas: 2, placement: { providers: { allow: ['de-cloud'] } } });
    const items = await running('drainme', 2);
    const target = items[0].spec.node as string;
    const r = await admin.post(`/v1/providers/${target.replace('/', '/nodes/')}/drain`, {});
    assert.equal(r.status, 200, r.text);
    const after = await waitFor('moved off', async () => {
      const x = await instances('drainme');
      return x.length === 2 && x.every((i) => i.spec.node !== target && i.status.phase === 'Running') && x;
    });
    assert.equal(after.length, 2);
    // The drained node, still connected, stops its copy: never two live copies.
    const drained = nodes.get(target.split('/')[1]!)!;
    await waitFor(
      'copy on the drained node removed',
      async () => !(await drained.runtime.list()).includes(items[0].metadata.uid),
    );
    // The drain is the node's spec; its status keeps its health.
    const node = (await admin.get(`/v1/providers/${target.replace('/', '/nodes/')}`)).body;
    assert.deepEqual([node.spec.drain, node.spec.unschedulable, node.status.state], [true, true, 'ready']);
    await admin.post(`/v1/providers/${target.replace('/', '/nodes/')}/uncordon`, {});
  });

  /** A TCP listener on loopback for the agents to time: a round trip of well under 1 ms. */
  const probeTarget = async () => {
    const { createServer } = await import('node:net');
    const server = createServer((c) => c.end()).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    return { server, address: `127.0.0.1:${(server.address() as { port: number }).port}` };
  };
  const setProbes = async (latencyProbes: object[], over: object = {}) => {
    const fra = (await admin.get('/v1/providers/de-cloud/sites/fra-1')).body;
    const r = await admin.put('/v1/providers/de-cloud/sites/fra-1', {
      metadata: { name: 'fra-1', provider: 'de-cloud' },
      spec: { ...fra.spec, tier: 'regional', latencyProbes, ...over },
    });
    assert.equal(r.status, 200, r.text);
  };

  test('a measured round-trip time replaces the estimate', async () => {
    // Users in Frankfurt: the estimate for the site there, made a core site for this test,
    // is its tier overhead, 2 ms, above the rule's 1.9 ms; the probe (the lowest of three
    // loopback handshakes) measures less, which physics allows at no distance.
    const { server, address } = await probeTarget();
    try {
      await setProbes([], { tier: 'core' });
      await workload('in-frankfurt', { placement: { latency: [{ city: 'Frankfurt', maxRttMs: 1.9 }] } });
      const w = await waitFor('unplaceable by estimate', async () => {
        const x = (await admin.get('/v1/projects/shop/workloads/in-frankfurt')).body;
        return x.status.placement?.pending === 1 && x;
      });
      assert.match(w.status.placement.message, new RegExp(REASONS.latency));
      await setProbes([{ name: 'Frankfurt', address }], { tier: 'core' });
      const site = await waitFor('measured', async () => {
        const x = (await admin.get('/v1/providers/de-cloud/sites/fra-1')).body;
        return x.status.measuredRttMs?.Frankfurt !== undefined && x;
      });
      assert.ok(site.status.measuredRttMs.Frankfurt < 1.9, JSON.stringify(site.status));
      const [i] = await running('in-frankfurt', 1);
      assert.match(i.spec.node, /^de-cloud\//);
    } finally {
      server.close();
      await setProbes([]);
    }
  });

  test('a round-trip time faster than light in fibre is refused, counted and shown as suspect', async () => {
    // Frankfurt–Lisbon is about 1,880 km: no round trip takes less than 18.8 ms. The
    // probe on loopback answers in a fraction of a millisecond.
    const { server, address } = await probeTarget();
    const refusals = async () => {
      const text = (await admin.get('/metrics')).text;
      return Number(
        /continuum_agent_messages_rejected_total\{reason="rtt_below_physics"\} (\d+)/.exec(text)?.[1] ?? 0,
      );
    };
    try {
      const before = await refusals();
      await workload('near-lisbon', { placement: { latency: [{ city: 'Lisbon', maxRttMs: 5 }] } });
      await setProbes([{ name: 'Lisbon', address }]);
      const site = await waitFor('suspect', async () => {
        const x = (await admin.get('/v1/providers/de-cloud/sites/fra-1')).body;
        return x.status.suspectRttMs?.Lisbon && x;
      });
      const suspect = site.status.suspectRttMs.Lisbon;
      assert.ok(suspect.reportedMs < 5, JSON.stringify(suspect));
      assert.ok(suspect.minimumMs > 18 && suspect.minimumMs < 20, JSON.stringify(suspect));
      assert.match(suspect.node, /^de-/);
      assert.equal(site.status.measuredRttMs?.Lisbon, undefined);
      assert.ok((await refusals()) > before);
      // The estimate (about 35 ms) still decides: nothing is placed within 5 ms of Lisbon.
      const w = (await admin.get('/v1/projects/shop/workloads/near-lisbon')).body;
      assert.equal(w.status.placement?.pending, 1);
      assert.match(w.status.placement.message, new RegExp(REASONS.latency));
      // A probe whose location is unknown cannot be checked, so it is not accepted.
      const fra = (await admin.get('/v1/providers/de-cloud/sites/fra-1')).body;
      const unknown = await admin.put('/v1/providers/de-cloud/sites/fra-1', {
        metadata: { name: 'fra-1', provider: 'de-cloud' },
        spec: { ...fra.spec, latencyProbes: [{ name: 'Atlantis', address }] },
      });
      assert.equal(unknown.status, 422);
      assert.match(unknown.body.error.details[0].path, /spec\.latencyProbes\[0\]\.name/);
      assert.match(
        unknown.body.error.details[0].message,
        /not a known city: give the target's latitude and longitude/,
      );
    } finally {
      server.close();
      await setProbes([]);
    }
  });

  /** The workload once its status reflects the current generation and `ok` holds. */
  const settled = (w: string, ok: (x: any) => boolean) =>
    waitFor(`${w} settled`, async () => {
      const x = (await admin.get(`/v1/projects/shop/workloads/${w}`)).body;
      return x.status.observedGeneration === x.metadata.generation && ok(x) && x;
    });
  const onNodes = async (w: string) => (await instances(w)).map((i) => i.spec.node).sort();
  const noCopyLeft = async (uids: string[], node: string) =>
    waitFor(`copies gone from ${node}`, async () => {
      const there = await nodes.get(node)!.runtime.list();
      return uids.every((u) => !there.includes(u));
    });

  test('a policy change moves the replicas that no longer comply, or reports them out of policy', async () => {
    await workload('rules', { replicas: 2, placement: { countries: ['DE'] } });
    const first = await running('rules', 2);
    assert.ok(first.every((i) => i.spec.node.startsWith('de-cloud/')));
    // Residency changes to Spain: both move, and the German nodes stop their copies.
    await workload('rules', { replicas: 2, placement: { countries: ['ES'] } });
    await waitFor('moved to Spain', async () => {
      const items = await instances('rules');
      return items.every((i) => i.spec.node.startsWith('es-edge/') && i.status.phase === 'Running') && items;
    });
    for (const i of first) await noCopyLeft([i.metadata.uid], i.spec.node.split('/')[1]!);
    // To Italy, where nothing runs: they stay, and say so; nothing is silently Running.
    await workload('rules', { replicas: 2, placement: { countries: ['IT'] } });
    const flagged = await settled('rules', (x) => x.status.outOfPolicy?.length === 2);
    assert.equal(flagged.status.phase, 'Degraded');
    const inSpain = await onNodes('rules');
    assert.ok(
      inSpain.every((n) => n.startsWith('es-edge/')),
      'they stay where they run',
    );
    assert.deepEqual(
      flagged.status.outOfPolicy.map((o: any) => [o.replica, o.reasons]),
      [
        ['rules-0', [REASONS.country]],
        ['rules-1', [REASONS.country]],
      ],
    );
    assert.deepEqual(flagged.status.outOfPolicy.map((o: any) => o.node).sort(), inSpain);
    assert.match(flagged.status.message, /2 replica\(s\) out of policy/);
    const explain = await runCli(['--server', cp.url, '--token', cp.adminToken!, 'explain', 'shop/rules']);
    assert.match(explain.stdout, /rules-0 +on es-edge\/es-\d +Running {2}OUT OF POLICY: country not allowed/);
    assert.match(explain.stdout, /no compliant node: 0\/\d+ nodes are available/);
    // Back to a rule they meet: compliant again.
    await workload('rules', { replicas: 2, placement: { countries: ['ES', 'IT'] } });
    const ok = await settled('rules', (x) => !x.status.outOfPolicy && x.status.phase === 'Running');
    assert.equal(ok.status.readyReplicas, 2);
    const again = await runCli(['--server', cp.url, '--token', cp.adminToken!, 'explain', 'shop/rules']);
    assert.match(again.stdout, /rules-0 +on es-edge\/es-\d +Running {2}complies/);
    await admin.del('/v1/projects/shop/workloads/rules');
  });

  test('a provider that loses a certification has its replicas re-checked and moved', async () => {
    await workload('certified', { replicas: 1, placement: { certifications: ['C5'] } });
    const [before] = await running('certified', 1);
    assert.match(before.spec.node, /^de-cloud\//);
    const setCerts = async (name: string, certifications: string[], over: object = {}) => {
      const p = (await admin.get(`/v1/providers/${name}`)).body;
      const r = await admin.put(`/v1/providers/${name}`, {
        metadata: { name },
        spec: { ...p.spec, certifications, ...over },
      });
      assert.equal(r.status, 200, r.text);
    };
    try {
      await setCerts('de-cloud', []);
      const flagged = await settled('certified', (x) => x.status.outOfPolicy?.length === 1);
      assert.deepEqual(flagged.status.outOfPolicy[0].reasons, [REASONS.certification]);
      // Another provider gains the certification: the waiting replica moves there.
      await setCerts('es-edge', ['C5']);
      await waitFor('moved to the certified provider', async () => {
        const [i] = await instances('certified');
        return i?.spec.node.startsWith('es-edge/') && i.status.phase === 'Running';
      });
      await settled('certified', (x) => !x.status.outOfPolicy);
      await noCopyLeft([before.metadata.uid], before.spec.node.split('/')[1]!);
    } finally {
      await setCerts('de-cloud', ['C5']);
      await setCerts('es-edge', []);
      await admin.del('/v1/projects/shop/workloads/certified');
    }
  });

  test("a node's labels and a workload's size are re-checked; a node is never bound beyond its capacity", async () => {
    const label = async (node: string, labels: Record<string, string>) => {
      const n = (await admin.get(`/v1/providers/de-cloud/nodes/${node}`)).body;
      const r = await admin.put(`/v1/providers/de-cloud/nodes/${node}`, {
        metadata: { name: node, provider: 'de-cloud', labels },
        spec: n.spec,
      });
      assert.equal(r.status, 200, r.text);
    };
    try {
      await label('de-2', { tier: 'gold' });
      await workload('gold', { replicas: 1, placement: { nodeSelector: { tier: 'gold' } } });
      const [first] = await running('gold', 1);
      assert.equal(first.spec.node, 'de-cloud/de-2');
      await label('de-2', {});
      await label('de-1', { tier: 'gold' });
      await waitFor('followed the label', async () => {
        const [i] = await instances('gold');
        return i?.spec.node === 'de-cloud/de-1' && i.status.phase === 'Running';
      });

      // Pinned to de-1 (8 CPUs at 4:1, 32 vCPUs): growing past what is free there cannot
      // move, so the replica keeps its old size and is reported; shrinking back fits.
      await workload('pinned', { replicas: 1, placement: { node: 'de-cloud/de-1' } });
      await running('pinned', 1);
      await workload('pinned', {
        replicas: 1,
        resources: { vcpus: 32, memoryMiB: 512 },
        placement: { node: 'de-cloud/de-1' },
      });
      const flagged = await settled('pinned', (x) => x.status.outOfPolicy?.length === 1);
      assert.deepEqual(flagged.status.outOfPolicy[0].reasons, [REASONS.resources]);
      const [kept] = await instances('pinned');
      assert.equal(kept.spec.vcpus, 1, 'the size that does not fit is not applied');
      const onDe1 = (await admin.get('/v1/instances?node=de-cloud/de-1')).body.items.filter(
        (i: any) => i.spec.desired !== 'absent',
      );
      assert.ok(
        onDe1.reduce((sum: number, i: any) => sum + i.spec.vcpus, 0) <= 32,
        'de-1 bound beyond 32 vCPUs',
      );
      await workload('pinned', {
        replicas: 1,
        resources: { vcpus: 2, memoryMiB: 512 },
        placement: { node: 'de-cloud/de-1' },
      });
      await settled('pinned', (x) => !x.status.outOfPolicy);
      await waitFor('resized in place', async () => (await instances('pinned'))[0]?.spec.vcpus === 2);
    } finally {
      await label('de-1', {});
      await admin.del('/v1/projects/shop/workloads/gold');
      await admin.del('/v1/projects/shop/workloads/pinned');
    }
  });

  test('an explanation counts the nodes a residency rule excludes', async () => {
    const total = (await admin.get('/v1/nodes')).body.items.length;
    await workload('italy', { placement: { countries: ['IT'] } });
    const w = await waitFor('pending', async () => {
      const x = (await admin.get('/v1/projects/shop/workloads/italy')).body;
      return x.status.placement?.pending === 1 && x;
    });
    assert.equal(w.status.placement.message, `0/${total} nodes are available: ${total} ${REASONS.country}`);
  });
});
