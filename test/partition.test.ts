// A network partition (issue: high availability): a real agent in its own network
// namespace runs two real VMs; its link to the control plane is cut for ten minutes
// (CONTINUUM_PARTITION_MS changes it). Its VMs keep running all along. The replica whose
// policy allows it is re-placed on the other node; the one pinned to the cut-off node is
// not. When the link comes back, the stale copy is stopped and removed, the pinned one
// goes on untouched, and nothing runs twice.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import { createNetwork, destroyNetwork, freeSubnet } from '../src/dev/netns.js';
import { QemuRuntime } from '../src/runtimes/index.js';
import { CLI } from './support/cli.js';
import { http } from './support/control-plane.js';
import { project, provider, site, workload } from './support/fixtures.js';
import { endAgentsAndVms, freePort, pidsMatching } from './support/processes.js';
import { testImage, uploadTestImage, waitFor } from './support/test-image.js';

const PREFIX = 'ctpart';
const PARTITION_MS = Number(process.env.CONTINUUM_PARTITION_MS ?? 10 * 60_000);

test(`an agent cut off for ${Math.round(PARTITION_MS / 1000)} s: its VMs keep running, what may move is re-placed, nothing runs twice on its return`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-partition-'));
  const net = await createNetwork(PREFIX, await freeSubnet('10.238.0.0'), 2);
  const children: ReturnType<typeof spawn>[] = [];
  let cp: ControlPlane | undefined;
  const image = testImage();
  const names = ['node-a', 'node-b'];
  try {
    cp = await startControlPlane({
      listen: `127.0.0.1:${await freePort()}`,
      agentListen: `${net.hostAddress}:${await freePort()}`,
      agentNames: [net.hostAddress],
      dataDir: join(dir, 'cp'),
      logLevel: 'silent',
    });
    const admin = http(cp.url, cp.adminToken!);
    const setup = await admin.post('/v1/apply', {
      documents: [provider('edge'), site('edge', 'fra'), project('demo')],
    });
    assert.equal(setup.status, 200, setup.text);
    await uploadTestImage(admin, 'demo', image);
    for (const [i, name] of names.entries()) {
      const tok = (await admin.post('/v1/providers/edge/sites/fra/join-tokens', {})).body.token;
      const args = ['agent', '--server', cp.gatewayUrl!, '--token', tok, '--name', name];
      args.push(
        '--data-dir',
        join(dir, name),
        '--port-bind-address',
        '0.0.0.0',
        '--heartbeat-interval',
        '1000',
      );
      const log = openSync(join(dir, `${name}.log`), 'a');
      children.push(
        spawn('ip', ['netns', 'exec', net.hosts[i]!.netns, process.execPath, CLI, ...args], {
          stdio: ['ignore', log, log],
        }),
      );
    }
    const nodeState = async (name: string) =>
      (await admin.get(`/v1/providers/edge/nodes/${name}`)).body.status?.state as string;
    await waitFor(
      'both nodes ready',
      async () => (await nodeState('node-a')) === 'ready' && (await nodeState('node-b')) === 'ready',
    );

    // Both start on node-a; `mobile` may then run anywhere in Germany, `pinned` only there.
    const mobile = (placement: object) => workload('demo', 'mobile', { image: 'testvm', placement });
    const pinned = workload('demo', 'pinned', { image: 'testvm', placement: { node: 'edge/node-a' } });
    assert.equal(
      (await admin.post('/v1/apply', { documents: [mobile({ node: 'edge/node-a' }), pinned] })).status,
      200,
    );
    const instances = async () => (await admin.get('/v1/projects/demo/instances')).body.items as any[];
    const running = await waitFor(
      'both running on node-a',
      async () => {
        const all = await instances();
        return (
          all.length === 2 &&
          all.every((i) => i.status.phase === 'Running' && i.spec.node === 'edge/node-a') &&
          all
        );
      },
      240_000,
    );
    assert.equal((await admin.post('/v1/apply', { documents: [mobile({ countries: ['DE'] })] })).status, 200);
    const uid = (w: string) => running.find((i) => i.spec.workload === w)!.metadata.uid as string;
    const qemuOn = (node: string, id: string) => pidsMatching(join(dir, node, 'instances', id));
    const before = { mobile: qemuOn('node-a', uid('mobile')), pinned: qemuOn('node-a', uid('pinned')) };
    assert.equal(before.mobile.length, 1);
    assert.equal(before.pinned.length, 1);

    // The cut: node-a's side of its link goes down.
    const cutAt = Date.now();
    execFileSync('ip', ['link', 'set', `${PREFIX}1h`, 'down']);
    await waitFor('node-a down', async () => (await nodeState('node-a')) === 'down', 60_000);
    const movedCopy = await waitFor(
      'mobile re-placed and running on node-b',
      async () => {
        const m = (await instances()).find((i) => i.spec.workload === 'mobile');
        return m?.spec.node === 'edge/node-b' && m.status.phase === 'Running' && m;
      },
      240_000,
    );
    const replacedMs = Date.now() - cutAt;
    const pinnedNow = (await instances()).find((i) => i.spec.workload === 'pinned');
    assert.equal(pinnedNow.spec.node, 'edge/node-a', 'a pinned replica is not re-placed');
    // Both VMs on node-a go on, cut off or not, until the partition ends.
    while (Date.now() - cutAt < PARTITION_MS) {
      assert.deepEqual(qemuOn('node-a', uid('pinned')), before.pinned, 'the pinned VM keeps running');
      assert.deepEqual(
        qemuOn('node-a', uid('mobile')),
        before.mobile,
        'the moved VM keeps running while cut off',
      );
      await new Promise((r) => setTimeout(r, Math.min(30_000, PARTITION_MS - (Date.now() - cutAt) + 10)));
    }
    execFileSync('ip', ['link', 'set', `${PREFIX}1h`, 'up']);
    const backAt = Date.now();
    await waitFor('node-a ready again', async () => (await nodeState('node-a')) === 'ready', 60_000);
    await waitFor(
      'the stale copy on node-a stopped and removed',
      async () =>
        qemuOn('node-a', uid('mobile')).length === 0 &&
        !(await new QemuRuntime({ dir: join(dir, 'node-a', 'instances') }).list()).includes(uid('mobile')),
      120_000,
    );
    const cleanedMs = Date.now() - backAt;
    t.diagnostic(
      `cut ${Math.round(PARTITION_MS / 1000)} s: re-placed and running elsewhere ${replacedMs} ms after the cut; stale copy gone ${cleanedMs} ms after the link came back`,
    );
    // Nothing twice: one mobile on node-b, the pinned one untouched on node-a.
    const after = await instances();
    assert.equal(after.length, 2);
    const m = after.find((i) => i.spec.workload === 'mobile');
    assert.deepEqual(
      [m.metadata.uid, m.spec.node, m.status.phase],
      [movedCopy.metadata.uid, 'edge/node-b', 'Running'],
    );
    const p = after.find((i) => i.spec.workload === 'pinned');
    assert.deepEqual([p.spec.node, p.status.phase], ['edge/node-a', 'Running']);
    assert.deepEqual(qemuOn('node-a', uid('pinned')), before.pinned, 'the pinned VM was never restarted');
    assert.equal(qemuOn('node-b', uid('mobile')).length, 1);
  } catch (err) {
    for (const n of names) {
      try {
        console.error(`--- ${n}.log\n${readFileSync(join(dir, `${n}.log`), 'utf8').slice(-20_000)}`);
      } catch {}
    }
    throw err;
  } finally {
    await endAgentsAndVms(children, dir, names);
    await cp?.close().catch(() => undefined);
    await destroyNetwork(PREFIX, 2);
    rmSync(dir, { recursive: true, force: true });
  }
});
