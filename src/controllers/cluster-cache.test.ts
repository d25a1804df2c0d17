import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seedSmallFederation } from '../../test/support/small-federation.js';
import { DEFAULT_CPU_OVERCOMMIT } from '../model/index.js';
import { roomOf } from '../scheduler/pipeline.js';
import { Store } from '../store/index.js';
import { ClusterCache, HOST_RESERVED_MIB } from './cluster-cache.js';

test('cluster cache: a site or provider change rebuilds only its nodes and keeps their allocations', async () => {
  const store = await Store.open({ url: ':memory:' });
  try {
    await seedSmallFederation(store, { providers: ['p1', 'p2'], site: 'fra', nodes: ['n1'] });
    const cache = new ClusterCache(store);
    await cache.refresh();
    const v0 = cache.version;
    cache.reserve('p1/n1', { vcpus: 3, memoryMiB: 1024, diskGiB: 10 });
    assert.equal(cache.version, v0, 'allocations leave static filter results valid');

    await store.transaction(async (tx) => {
      const site = (await tx.get('sites', 'p1', 'fra'))!;
      await tx.update('sites', site.uid, undefined, {
        status: { measuredRttMs: { Berlin: 7.5 } },
        bumpGeneration: false,
      });
      const prov = (await tx.get('providers', '', 'p1'))!;
      await tx.update('providers', prov.uid, undefined, {
        spec: { ...prov.spec, certifications: ['C5'] },
        bumpGeneration: true,
      });
    });
    await cache.refreshSite('p1', 'fra');
    const v1 = cache.version;
    assert.ok(v1 > v0, 'a site change voids static filter results');
    await cache.refreshProvider('p1');
    const v2 = cache.version;
    assert.ok(v2 > v1, 'a provider change voids static filter results');
    // Health and cordons are checked at every placement: the same node object, updated.
    const held = cache.get('p1/n1')!;
    assert.equal(held.ready, true);
    await store.transaction(async (tx) => {
      const node = (await tx.get('nodes', 'p1', 'n1'))!;
      await tx.update('nodes', node.uid, undefined, {
        spec: { ...node.spec, unschedulable: true },
        status: { ...node.status, state: 'down' },
        columns: { state: 'down' },
        bumpGeneration: true,
      });
    });
    await cache.refreshNode('p1', 'n1');
    assert.equal(cache.version, v2, 'a node going down or cordoned leaves static results valid');
    assert.equal(cache.get('p1/n1'), held);
    assert.deepEqual([held.ready, held.unschedulable, held.state], [false, true, 'down']);
    // Its labels are judged by a static filter: a new version.
    await store.transaction(async (tx) => {
      const node = (await tx.get('nodes', 'p1', 'n1'))!;
      await tx.update('nodes', node.uid, undefined, { labels: { disk: 'ssd' }, bumpGeneration: true });
    });
    await cache.refreshNode('p1', 'n1');
    assert.ok(cache.version > v2, 'a node attribute change voids static filter results');
    const n = cache.get('p1/n1')!;
    assert.equal(n.ready, false);
    assert.deepEqual(n.siteInfo.measuredRttMs, { Berlin: 7.5 });
    assert.deepEqual(n.providerInfo.certifications, ['C5']);
    assert.equal(n.allocated.vcpus, 3, 'allocations survive the rebuild');
    // The other provider's node, at a site of the same name, is untouched.
    assert.equal(cache.get('p2/n1')!.siteInfo.measuredRttMs, undefined);
    assert.deepEqual(cache.get('p2/n1')!.providerInfo.certifications, []);

    // A deleted site takes its nodes out of the candidates.
    await store.transaction(async (tx) => tx.delete('sites', (await tx.get('sites', 'p2', 'fra'))!.uid));
    await cache.refreshSite('p2', 'fra');
    assert.equal(cache.get('p2/n1'), undefined);
    assert.equal(cache.size, 1);
  } finally {
    await store.close();
  }
});

test('cluster cache: a failed transaction undoes its reservations and releases without a reload', async () => {
  const store = await Store.open({ url: ':memory:' });
  try {
    await seedSmallFederation(store, { providers: ['p1'], site: 'fra', nodes: ['n1', 'n2'] });
    const cache = new ClusterCache(store);
    await cache.refresh();
    cache.reserve('p1/n1', { vcpus: 2, memoryMiB: 512, diskGiB: 5 });
    const before = () => ['p1/n1', 'p1/n2'].map((k) => ({ ...cache.get(k)!.allocated }));
    const committed = before();

    cache.begin();
    cache.release('p1/n1', { vcpus: 2, memoryMiB: 512, diskGiB: 5 });
    cache.reserve('p1/n2', { vcpus: 2, memoryMiB: 512, diskGiB: 5, accelerators: 1 });
    cache.reserve('p1/n2', { vcpus: 1, memoryMiB: 256, diskGiB: 1 });
    assert.notDeepEqual(before(), committed);
    await cache.rollback();
    assert.deepEqual(before(), committed, 'back to what was committed');

    // What a committed transaction reserved stays.
    cache.begin();
    cache.reserve('p1/n2', { vcpus: 4, memoryMiB: 1024, diskGiB: 10 });
    await cache.commit();
    assert.equal(cache.get('p1/n2')!.allocated.vcpus, 4);
    await cache.rollback(); // nothing recorded any more: a no-op
    assert.equal(cache.get('p1/n2')!.allocated.vcpus, 4);
  } finally {
    await store.close();
  }
});

test('cluster cache: a residency scan yields each node of the allowed countries once, and follows site changes', async () => {
  const store = await Store.open({ url: ':memory:' });
  try {
    await seedSmallFederation(store, { providers: ['p1', 'p2', 'p3'], site: 's', nodes: ['n1', 'n2'] });
    const moveSite = (provider: string, country: string) =>
      store.transaction(async (tx) => {
        const site = (await tx.get('sites', provider, 's'))!;
        await tx.update('sites', site.uid, undefined, {
          spec: { ...site.spec, country },
          bumpGeneration: true,
        });
      });
    await moveSite('p2', 'FR');
    await moveSite('p3', 'PL');
    const cache = new ClusterCache(store);
    await cache.refresh();
    const scan = (countries?: string[]) =>
      [...cache.candidates(countries ? { countries } : {})].map((n) => n.key).sort();

    for (let i = 0; i < 5; i++) {
      // Every start position of the rotating scan covers the same nodes, each once.
      assert.deepEqual(scan(['PL', 'DE']), ['p1/n1', 'p1/n2', 'p3/n1', 'p3/n2']);
      assert.deepEqual(scan(['FR', 'FR']), ['p2/n1', 'p2/n2']);
    }
    assert.deepEqual(scan(['ES']), []);
    assert.equal(scan().length, 6);

    await moveSite('p2', 'PL');
    await cache.refreshSite('p2', 's');
    assert.deepEqual(scan(['PL']), ['p2/n1', 'p2/n2', 'p3/n1', 'p3/n2']);
    assert.deepEqual(scan(['FR']), []);
  } finally {
    await store.close();
  }
});

test("cluster cache: a node offers its CPUs times its site's overcommit (default 4:1), memory once", async () => {
  const store = await Store.open({ url: ':memory:' });
  try {
    await seedSmallFederation(store, { providers: ['p1'], site: 'fra', nodes: ['n1'] });
    const cache = new ClusterCache(store);
    await cache.refresh();
    const inv = ((await store.get('nodes', 'p1', 'n1'))!.status as any).inventory;
    const before = cache.get('p1/n1')!;
    assert.equal(before.capacity.vcpus, inv.cpus * DEFAULT_CPU_OVERCOMMIT);
    assert.deepEqual(before.host, { cpus: inv.cpus, cpuOvercommit: DEFAULT_CPU_OVERCOMMIT });
    assert.equal(before.capacity.memoryMiB, inv.memoryMiB - HOST_RESERVED_MIB);
    assert.match(
      roomOf(before),
      new RegExp(`^vCPU 0/${inv.cpus * 4} \\(${inv.cpus} CPUs, overcommit 4:1\\)`),
    );

    await store.transaction(async (tx) => {
      const site = (await tx.get('sites', 'p1', 'fra'))!;
      await tx.update('sites', site.uid, undefined, {
        spec: { ...site.spec, cpuOvercommit: 1 },
        bumpGeneration: true,
      });
    });
    await cache.refreshSite('p1', 'fra');
    const after = cache.get('p1/n1')!;
    assert.equal(after.capacity.vcpus, inv.cpus);
    assert.equal(after.capacity.memoryMiB, before.capacity.memoryMiB, 'memory is never overcommitted');
  } finally {
    await store.close();
  }
});
