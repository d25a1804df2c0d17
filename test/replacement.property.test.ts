// Property (fast-check): whatever sequence of node failures, recoveries and scaling
// happens, re-placement never leaves two live copies of a replica. Nodes are modelled
// as agents do it: a connected node runs exactly the instances bound to it (its full
// desired set); a failed node keeps running what it had, cut off, until it reconnects.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { ClusterCache, setNodeState, WorkloadController } from '../src/controllers/index.js';
import { Store } from '../src/store/index.js';
import { seedSmallFederation } from './support/small-federation.js';

const NODES = ['n0', 'n1', 'n2', 'n3'];

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
        await seedSmallFederation(store, { nodes: NODES, workloads: [{ name: 'w', replicas: 3 }] });
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
