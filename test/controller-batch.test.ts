// The workload controller converges queued workloads in batches, one transaction each:
// when one workload's writes fail, the others still land, nothing it reserved lingers
// in the scheduler's view of capacity, and it is placed once the cause is gone. The
// failure is a real one: an SQLite trigger refusing that workload's instance rows.
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
