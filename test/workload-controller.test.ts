// The workload controller on a real store, without agents: batches of workloads in one
// transaction, where one workload's writes fail (a real failure: an SQLite trigger
// refusing its instance rows) without holding back the others; and replicas waiting
// for capacity placed as soon as another workload gives some back.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import SQLite from 'better-sqlite3';
import { ClusterCache, WorkloadController } from '../src/controllers/index.js';
import { Store } from '../src/store/index.js';
import { seedSmallFederation } from './support/small-federation.js';

const NODES = ['n0', 'n1', 'n2'];

test('a workload whose writes fail does not hold back its batch, and leaves no reservation behind', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-batch-'));
  const file = join(dir, 'c.db');
  const store = await Store.open({ url: file });
  const admin = new SQLite(file);
  try {
    await seedSmallFederation(store, {
      nodes: NODES,
      workloads: [
        { name: 'good', replicas: 2 },
        { name: 'bad', replicas: 2 },
        { name: 'good2', replicas: 1 },
      ],
    });
    admin.exec(`CREATE TRIGGER refuse_bad BEFORE INSERT ON instances WHEN NEW.workload = 'bad'
                BEGIN SELECT RAISE(ABORT, 'injected failure for workload bad'); END`);
    const cache = new ClusterCache(store);
    await cache.refresh();
    const controller = new WorkloadController({ store, cache });
    const allocated = () => NODES.reduce((n, k) => n + cache.get(`p/${k}`)!.allocated.vcpus, 0);

    const item = (key: string) => ({ key, queuedAt: performance.now(), low: false });
    const errors = await controller.syncItems([item('q/good'), item('q/bad'), item('q/good2')]);
    assert.equal(errors[0], undefined);
    assert.match(String(errors[1]), /injected failure for workload bad/);
    assert.equal(errors[2], undefined);

    const live = async (w: string) => (await store.listInstances({ project: 'q', workload: w })).length;
    assert.deepEqual([await live('good'), await live('bad'), await live('good2')], [2, 0, 1]);
    assert.equal(allocated(), 3, 'capacity held by the three placed replicas only');
    assert.equal((await store.get('workloads', 'q', 'good2'))!.status.placement.placed, 1);

    admin.exec('DROP TRIGGER refuse_bad');
    await controller.sync('q/bad');
    assert.equal(await live('bad'), 2);
    assert.equal(allocated(), 5);
  } finally {
    admin.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a replica waiting for capacity is placed as soon as another workload gives it back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-freed-'));
  const store = await Store.open({ url: join(dir, 'c.db') });
  try {
    // One node with room for two replicas of 512 MiB (1536 MiB less 512 reserved).
    await seedSmallFederation(store, {
      nodes: ['n0'],
      cpus: 1,
      memoryMiB: 1536,
      workloads: [
        { name: 'big', replicas: 2 },
        { name: 'waiting', replicas: 1 },
      ],
    });
    const cache = new ClusterCache(store);
    // No resync during the test: only the freed capacity can get 'waiting' placed.
    const controller = new WorkloadController({ store, cache, resyncIntervalMs: 3_600_000 });
    await controller.start();
    await controller.idle();
    const placement = async (w: string) => (await store.get('workloads', 'q', w))!.status.placement;
    assert.equal((await placement('big')).placed, 2);
    assert.equal((await placement('waiting')).pending, 1);
    assert.match((await placement('waiting')).message, /0\/1 nodes are available: 1 /);

    await store.transaction(async (tx) => {
      const big = (await tx.get('workloads', 'q', 'big'))!;
      await tx.update('workloads', big.uid, big.generation, {
        spec: { ...big.spec, replicas: 1 },
        bumpGeneration: true,
      });
    });
    await controller.idle();
    assert.equal((await placement('waiting')).placed, 1, 'placed in the room the scale-down gave back');
    controller.stop();
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the controller follows the change feed alone: a reported status and a node gone down wake it, with no audit event', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-feed-'));
  const store = await Store.open({ url: join(dir, 'c.db') });
  try {
    await seedSmallFederation(store, { nodes: ['n0', 'n1'], workloads: [{ name: 'web', replicas: 1 }] });
    const controller = new WorkloadController({
      store,
      cache: new ClusterCache(store),
      resyncIntervalMs: 3_600_000,
    });
    await controller.start();
    await controller.idle();
    const [inst] = await store.listInstances({ project: 'q', workload: 'web' });
    assert.ok(inst, 'placed');
    const events = await store.lastEventPosition();

    // What an agent's report writes, written by the store alone (no gateway to call anyone).
    await store.setInstanceStatus(inst.uid, {
      phase: 'Running',
      ports: [],
      restarts: 0,
      observedRevision: 1,
    });
    await controller.idle();
    const web = (await store.get('workloads', 'q', 'web'))!;
    assert.deepEqual([web.status.phase, web.status.readyReplicas], ['Running', 1]);

    // The node goes down: a status write only, no audit event; the replica moves.
    const node = (await store.get('nodes', 'p', inst.node))!;
    await store.setStatus('nodes', node.uid, { ...node.status, state: 'down' }, { state: 'down' });
    await controller.idle();
    const [moved] = await store.listInstances({ project: 'q', workload: 'web' });
    assert.notEqual(moved!.node, inst.node, 're-placed off the node that went down');
    assert.equal(moved!.fence, inst.fence + 1);
    assert.ok(
      (await store.listEvents({ after: events })).every((e) => e.actor === 'controller:workloads'),
      'no audit event but the controller’s own record of the move',
    );
    controller.stop();
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
