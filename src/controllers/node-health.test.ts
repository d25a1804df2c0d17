import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { Store } from '../store/index.js';
import { NodeHealthController, setNodeIntent } from './node-health.js';

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

/** Node health on a clock the test moves by hand, ticked by the test (default timings). */
async function clockedHealth(store: Store, onError?: (node: string) => void) {
  let t = 1_000_000;
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  const health = new NodeHealthController({
    store,
    suspectAfterMs: 10_000,
    downAfterMs: 15_000,
    startupGraceMs: 0,
    clock,
    ...(onError ? { onError } : {}),
  });
  await health.start({ timer: false });
  return { clock, health };
}

test('node health, on a test clock: silence demotes, a heartbeat promotes, a drain survives both', async () => {
  const store = await storeWithNode();
  const { clock, health } = await clockedHealth(store);
  try {
    await health.seen('p', 'n1');
    assert.ok(await setNodeIntent(store, 'p', 'n1', 'drain', 'ops', { unschedulable: true, drain: true }));
    clock.advance(10_001);
    await health.tick();
    assert.equal(await state(store), 'suspect');
    clock.advance(5_000);
    await health.tick();
    assert.equal(await state(store), 'down');
    await health.seen('p', 'n1');
    const row = (await store.get('nodes', 'p', 'n1'))!;
    assert.equal(row.status.state, 'ready');
    // The blip did not end the drain: intent is in the spec, health in the status.
    assert.deepEqual([row.spec.drain, row.spec.unschedulable], [true, true]);
    const actions = (await store.listEvents({ kind: 'Node' })).map((e) => e.action);
    assert.deepEqual(actions, ['drain', 'suspect', 'down', 'ready']);
  } finally {
    health.stop();
    await store.close();
  }
});

test('node health: a state write that fails is retried for that node, not lost', async () => {
  const store = await storeWithNode();
  const errors: string[] = [];
  const { clock, health } = await clockedHealth(store, (node) => errors.push(node));
  // The store refuses the next transaction (a connection lost for a moment).
  const transaction = store.transaction.bind(store);
  let failures = 1;
  store.transaction = (async (fn: any) => {
    if (failures-- > 0) throw new Error('connection lost');
    return transaction(fn);
  }) as typeof store.transaction;
  try {
    clock.advance(10_001);
    await health.tick();
    assert.deepEqual(errors, ['p/n1']);
    assert.equal(await state(store), 'ready', 'the failed write changed nothing');
    // Retried by the queue after its backoff, with no tick in between.
    for (let i = 0; i < 50 && (await state(store)) !== 'suspect'; i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(await state(store), 'suspect', 'written by the retry');
  } finally {
    health.stop();
    await store.close();
  }
});

test('a node stored as draining by an older version is upgraded to a drain in its spec', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-intent-'));
  const url = join(dir, 'db.sqlite');
  try {
    const store = await Store.open({ url });
    await store.transaction((tx) =>
      tx.insert('nodes', {
        uid: randomUUID(),
        parent: 'p',
        name: 'old',
        labels: {},
        spec: { site: 's', unschedulable: true },
        status: { state: 'draining' },
        createdBy: 'agent',
        columns: { site: 's', state: 'draining' },
      }),
    );
    await store.close();
    // As the database was before migration 0004.
    const db = new Database(url);
    db.prepare("DELETE FROM kysely_migration WHERE name >= '0004_node_intent'").run();
    for (const t of ['replicas', 'leases', 'changes', 'image_chunks']) db.prepare(`DROP TABLE ${t}`).run();
    db.prepare('DROP INDEX events_position').run();
    db.prepare('ALTER TABLE events DROP COLUMN position').run();
    db.prepare('DROP TABLE migrations').run();
    db.prepare('DROP TABLE switchings').run();
    for (const t of ['providers', 'sites', 'nodes', 'projects', 'users', 'workloads', 'images'])
      db.prepare(`ALTER TABLE ${t} DROP COLUMN annotations`).run();
    db.close();
    const upgraded = await Store.open({ url });
    const row = (await upgraded.get('nodes', 'p', 'old'))!;
    assert.deepEqual(row.spec, { site: 's', unschedulable: true, drain: true });
    assert.equal(row.status.state, 'ready');
    assert.deepEqual(
      (await upgraded.list('nodes', { where: { state: 'ready' } })).map((n) => n.name),
      ['old'],
    );
    await upgraded.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
