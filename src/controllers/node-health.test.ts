import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { Store } from '../store/index.js';
import { NodeHealthController } from './node-health.js';

async function storeWithNode() {
  const store = await Store.open({ url: ':memory:' });
  await store.transaction((tx) =>
    tx.insert('nodes', {
      uid: randomUUID(),
      parent: 'p',
      name: 'n1',
      labels: {},
      spec: { site: 's' },
      status: { state: 'ready' },
      createdBy: 'test',
      columns: { site: 's', state: 'ready' },
    }),
  );
  return store;
}

const state = async (store: Store) => (await store.get('nodes', 'p', 'n1'))?.status.state;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('node health: a silent node turns suspect, then down; a stall of the control plane is not its fault', async () => {
  const store = await storeWithNode();
  const health = new NodeHealthController({
    store,
    suspectAfterMs: 1500,
    downAfterMs: 4000,
    checkIntervalMs: 100,
    startupGraceMs: 0,
  });
  await health.start();
  try {
    await health.seen('p', 'n1');
    // The control plane's own thread is blocked for 2.5 s: the node's heartbeats would
    // have waited unread, so the silence does not count.
    const until = Date.now() + 2500;
    while (Date.now() < until) {}
    await sleep(300);
    assert.equal(await state(store), 'ready');
    // Real silence does.
    await sleep(1600);
    assert.equal(await state(store), 'suspect');
    await sleep(2600);
    assert.equal(await state(store), 'down');
    await health.seen('p', 'n1');
    assert.equal(await state(store), 'ready');
  } finally {
    health.stop();
    await store.close();
  }
});
