// Property (fast-check): whatever sequence of node failures, recoveries and scaling
// happens, re-placement never leaves two live copies of a replica. Nodes are modelled
// as agents do it: a connected node runs exactly the instances bound to it (its full
// desired set); a failed node keeps running what it had, cut off, until it reconnects.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { ClusterCache, setNodeState, WorkloadController } from '../src/controllers/index.js';
import { simInventory } from '../src/sim/index.js';
import { Store } from '../src/store/index.js';

const NODES = ['n0', 'n1', 'n2', 'n3'];
const now = () => new Date().toISOString();

async function seed(store: Store) {
  await store.transaction(async (tx) => {
    const prov = { headquarters: 'DE', jurisdiction: 'EU', euControlled: true };
    await tx.insert('providers', {
      uid: randomUUID(),
      parent: '',
      name: 'p',
      labels: {},
      spec: prov,
      status: { sovereigntyLevel: 'eu-controlled' },
      createdBy: 't',
      columns: { country: 'DE', jurisdiction: 'EU' },
    });
    const site = {
      country: 'DE',
      location: { latitude: 50, longitude: 8 },
      tier: 'edge',
      carbonIntensity: 300,
    };
    await tx.insert('sites', {
      uid: randomUUID(),
      parent: 'p',
      name: 's',
      labels: {},
      spec: site,
      status: {},
      createdBy: 't',
      columns: { country: 'DE', tier: 'edge' },
    });
    for (const n of NODES)
      await tx.insert('nodes', {
        uid: randomUUID(),
        parent: 'p',
        name: n,
        labels: {},
        spec: { site: 's' },
        status: { state: 'ready', inventory: simInventory(n, { cpus: 2, memoryMiB: 4096 }) },
        createdBy: 't',
        columns: { site: 's', state: 'ready' },
      });
    await tx.insert('projects', {
      uid: randomUUID(),
      parent: '',
      name: 'q',
      labels: {},
      spec: {},
      status: { usage: { vcpus: 0, memoryMiB: 0, instances: 0 } },
      createdBy: 't',
      columns: {},
    });
    await tx.insert('images', {
      uid: randomUUID(),
      parent: 'q',
      name: 'img',
      labels: {},
      spec: { format: 'raw', files: { disk: { sha256: 'a'.repeat(64) } } },
      status: { phase: 'Available', files: { disk: { sha256: 'a'.repeat(64), size: 1, uploadedAt: now() } } },
      createdBy: 't',
      columns: {},
    });
    await tx.insert('workloads', {
      uid: randomUUID(),
      parent: 'q',
      name: 'w',
      labels: {},
      spec: { kind: 'vm', image: 'img', replicas: 3, resources: { vcpus: 1, memoryMiB: 512 } },
      status: { phase: 'Pending', observedGeneration: 0, readyReplicas: 0 },
      createdBy: 't',
      columns: { phase: 'Pending' },
    });
  });
}

type Op = { kind: 'fail' | 'recover'; node: number } | { kind: 'scale'; replicas: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('fail' as const), node: fc.integer({ min: 0, max: NODES.length - 1 }) }),
  fc.record({ kind: fc.constant('recover' as const), node: fc.integer({ min: 0, max: NODES.length - 1 }) }),
  fc.record({ kind: fc.constant('scale' as const), replicas: fc.integer({ min: 0, max: 6 }) }),
);

test('property: re-placement never leaves two live copies of a replica', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 12 }), async (ops) => {
      const dir = mkdtempSync(join(tmpdir(), 'continuum-prop-'));
      const store = await Store.open({ url: join(dir, 'p.db') });
      try {
        await seed(store);
        const cache = new ClusterCache(store);
        await cache.refresh();
        const controller = new WorkloadController({ store, cache });
        const up = new Set(NODES);
        /** What each node's agent runs: uid → fence. */
        const running = new Map<string, Map<string, number>>(NODES.map((n) => [n, new Map()]));
        const syncAgents = async () => {
          for (const n of up) {
            const bound = (await store.listInstances({ provider: 'p', node: n })).filter(
              (i) => i.desired !== 'absent',
            );
            running.set(n, new Map(bound.map((i) => [i.uid, i.fence])));
          }
        };
        const check = async () => {
          const live = (await store.listInstances({ workload: 'w' })).filter((i) => i.desired !== 'absent');
          const ordinals = live.map((i) => i.ordinal);
          assert.equal(new Set(ordinals).size, ordinals.length, 'one live instance per replica');
          for (const i of live) {
            const holders = NODES.filter((n) => up.has(n) && running.get(n)!.has(i.uid));
            assert.ok(holders.length <= 1, `instance ${i.name} runs on ${holders.join(' and ')}`);
            for (const n of NODES.filter((x) => !up.has(x) && running.get(x)!.has(i.uid)))
              if (n !== i.node)
                assert.ok(running.get(n)!.get(i.uid)! < i.fence, 'a cut-off copy carries an older fence');
          }
        };
        await controller.sync('q/w');
        await syncAgents();
        await check();
        for (const op of ops) {
          if (op.kind === 'scale') {
            const w = (await store.get('workloads', 'q', 'w'))!;
            await store.update('workloads', w.uid, undefined, {
              spec: { ...w.spec, replicas: op.replicas },
              bumpGeneration: true,
            });
          } else {
            const n = NODES[op.node]!;
            if (op.kind === 'fail') up.delete(n);
            else up.add(n);
            await setNodeState(store, 'p', n, op.kind === 'fail' ? 'down' : 'ready', 'test');
            await cache.refreshNode('p', n);
          }
          await controller.sync('q/w');
          await syncAgents();
          await check();
        }
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: 60 },
  );
});
